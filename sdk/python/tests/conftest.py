"""Makes the SDK in ../agentcore importable without installing it, and provides the fixtures
that run the real agentcore binary (see test_sdk.py). AC_TEST_STORE=postgresql runs them on the
PostgreSQL store: a database per server on a PostgreSQL started for the session."""
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_DIR = os.path.dirname(HERE)
if SDK_DIR not in sys.path:
    sys.path.insert(0, SDK_DIR)

from agentcore.sdk import TrainingClient  # noqa: E402

SRC = os.path.abspath(os.environ.get("AC_SOURCE_DIR") or os.path.join(SDK_DIR, "..", ".."))
BIN = os.environ.get("AGENTCORE_BIN") or os.path.join(SRC, "build", "agentcore")
ALL_PERMS = ["training:start", "training:view", "training:cancel", "training:evaluate", "data:export",
             "webhooks:manage"]

# The main server: generous limits, so that the tests of the methods are not rate limited
# (the rate-limit tests run their own server); private webhook targets allowed (loopback).
MAIN_CONFIG = """return {
  rate_limits = {
    start_grpo = { limit = 1000, window_s = 60 },
    get_status = { limit = 100000, window_s = 60 },
    cancel = { limit = 1000, window_s = 60 },
    evaluate = { limit = 1000, window_s = 60 },
    export_trajectories = { limit = 1000, window_s = 60 },
    other = { limit = 100000, window_s = 60 },
  },
  webhooks = { allow_private = true },
}
"""


def pg_database():
    """AC_TEST_STORE=postgresql: a new database on the PostgreSQL this test process starts (the
    e2e tests' tests/e2e/pgcluster.py), stopped when the process exits."""
    sys.path.insert(0, os.path.join(SRC, "tests", "e2e"))
    import pgcluster
    return pgcluster.shared().new_database()


class Server:
    """One `agentcore serve` process on a loopback port, with its own data directory and JWT
    secret. `config`: the text of a Lua config file, or None."""

    def __init__(self, tmpdir, config=None):
        if not os.access(BIN, os.X_OK):
            raise RuntimeError(f"no agentcore binary at {BIN} (build it, or set AGENTCORE_BIN)")
        self.tmp = str(tmpdir)
        self.secret = secrets.token_hex(24)
        self.env = dict(os.environ, AGENTCORE_JWT_SECRET=self.secret)
        if os.environ.get("AC_TEST_STORE") == "postgresql" and "AGENTCORE_STORE_DSN" not in self.env:
            self.env["AGENTCORE_STORE_DSN"] = pg_database()
        cmd = [BIN, "serve", "--listen", "127.0.0.1:0", "--data", os.path.join(self.tmp, "data")]
        if config is not None:
            path = os.path.join(self.tmp, "server.lua")
            with open(path, "w") as f:
                f.write(config)
            cmd += ["--config", path]
        self.log_path = os.path.join(self.tmp, "stderr.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, env=self.env, cwd=SRC)
        line = self.proc.stdout.readline().decode(errors="replace")
        m = re.search(r"port=(\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError(f"the server did not start: {line!r}\n{self.stderr()}")
        self.port = int(m.group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    def token(self, sub="alice", perms=ALL_PERMS, secret=None):
        """A token from `agentcore token` (signed with this server's secret unless told)."""
        env = dict(self.env, AGENTCORE_JWT_SECRET=secret) if secret else self.env
        out = subprocess.run([BIN, "token", "--sub", sub, "--perms", ",".join(perms)], env=env,
                             capture_output=True, check=True, timeout=30)
        return out.stdout.decode().strip()

    def client(self, sub="alice", perms=ALL_PERMS, **kw):
        return TrainingClient(self.url, self.token(sub, perms), **kw)

    def stderr(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        """SIGTERM, then the exit status; a sanitizer report in the log fails the test."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("the server did not stop within 30 s of SIGTERM")
        code = self.proc.returncode
        self.proc.stdout.close()
        self._log.close()
        self.proc = None
        log = self.stderr()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in log:
                raise AssertionError("sanitizer report from the server:\n" + log[-4000:])
        return code


@pytest.fixture(scope="session")
def data():
    """{"training_data": [...256], "evaluation_data": [...64]} for the calculator agent."""
    out = subprocess.run(["lua5.4", "examples/gen_data.lua", "calculator", "7"], cwd=SRC, capture_output=True,
                         check=True, timeout=60)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("main"), MAIN_CONFIG)
    yield s
    assert s.stop() == 0, s.stderr()


@pytest.fixture
def make_server(tmp_path_factory):
    """make_server(config_text) -> a Server stopped at the end of the test."""
    started = []

    def make(config=None):
        s = Server(tmp_path_factory.mktemp("srv"), config)
        started.append(s)
        return s

    yield make
    codes = []
    for s in started:  # every server is stopped, even when one of them fails
        try:
            codes.append((s.stop(), s))
        except AssertionError as e:
            codes.append((e, s))
    for code, s in codes:
        assert code == 0, f"{code}\n{s.stderr()}"


@pytest.fixture(scope="session")
def src_dir():
    return SRC


@pytest.fixture
def broken_plugins(tmp_path):
    """A copy of the plugins directory plus a validator that always raises."""
    dst = tmp_path / "plugins"
    shutil.copytree(os.path.join(SRC, "plugins"), str(dst))
    (dst / "validators" / "sdk_broken.lua").write_text(
        'return {\n  name = "sdk_broken",\n  version = "1.0.0",\n'
        '  description = "always raises (SDK test of -32603)",\n'
        '  validate = function() error("deliberately broken validator") end,\n}\n')
    return str(dst)
