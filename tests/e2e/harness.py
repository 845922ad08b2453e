"""End-to-end harness: starts the real agentcore binary on a loopback port with a temporary data
directory and talks HTTP to it (http.client for HTTP/1.1, curl for h2c and TLS h2)."""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import http.client
import unittest

BIN = os.environ.get("AGENTCORE_BIN") or os.path.join(os.path.dirname(__file__), "../../build/agentcore")
SRC = os.environ.get("AC_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "../..")
SECRET = "e2e-test-secret-0123456789abcdef"
ALL_PERMS = "training:start,training:view,training:cancel,training:evaluate,data:export"
# AC_TEST_STORE=postgresql runs the same tests against the PostgreSQL backend: every server gets a
# database of its own on a PostgreSQL the test process starts (pgcluster.py); a server started
# again on the same data directory gets the same database back.
STORE = os.environ.get("AC_TEST_STORE", "lmdb")
_databases = {}


def store_dsn(data_dir):
    """The DSN of data_dir's database (made at the first call) when the tests run on PostgreSQL;
    None on LMDB."""
    if STORE != "postgresql":
        return None
    if data_dir not in _databases:
        import pgcluster
        _databases[data_dir] = pgcluster.shared().new_database()
    return _databases[data_dir]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims, secret=SECRET, alg="HS256", header=None):
    """Builds an HS256 token by hand, so tests can make the bad ones libjwt would not."""
    head = header or {"alg": alg, "typ": "JWT"}
    signing = b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())
    if alg == "none":
        return signing + "."
    sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(sig)


def claims(sub="alice", perms=ALL_PERMS, ttl=3600, **extra):
    now = int(time.time())
    c = {"sub": sub, "permissions": perms.split(",") if isinstance(perms, str) else perms, "exp": now + ttl}
    c.update(extra)
    return c


def retry_after(status, headers, resp):
    """The seconds a rate-limited answer (HTTP 429 or a -32029 error, single or in a batch) asks
    to wait: data.retry_after_s, else Retry-After, else 1. None when the answer is not one."""
    errs = [r.get("error") for r in (resp if isinstance(resp, list) else [resp]) if isinstance(r, dict)]
    limited = [e for e in errs if isinstance(e, dict) and e.get("code") == -32029]
    if status != 429 and not limited:
        return None
    data = (limited[0].get("data") if limited else None) or {}
    for v in (data.get("retry_after_s"), (headers or {}).get("retry-after")):
        try:
            return max(float(v), 0.05)
        except (TypeError, ValueError):
            pass
    return 1.0


def _sanitized():
    """Whether BIN is the ASan+UBSan build (tests/run_all.sh runs the suite again with it)."""
    try:
        r = subprocess.run(["ldd", BIN], capture_output=True, text=True, timeout=30)
        return "libasan" in r.stdout
    except (OSError, subprocess.SubprocessError):
        return False


SANITIZED = _sanitized()
# Deadlines of waits for work the server does (training, evaluating) are multiplied by this:
# the sanitized build trains several times slower.
SLOW = 4 if SANITIZED else 1


def poll(check, timeout=120, what="the condition", first=0.1, cap=1.0):
    """Calls check() until it returns something true, and returns that. Waits first seconds after
    the first try, half as long again after each next one, at most cap: a poll of the server
    stays well under its rate limits (100 calls/min) however long it lasts. Raises
    AssertionError naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    delay = first
    while True:
        value = check()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(min(delay, left))
        delay = min(delay * 1.5, cap)


def temp_dir(case, prefix="ac-e2e-"):
    """A new temporary directory, removed whatever happens when the test ends (case: a TestCase)
    or when its class's tests end (case: a TestCase class, e.g. in setUpClass)."""
    d = tempfile.mkdtemp(prefix=prefix)
    if isinstance(case, type):
        case.addClassCleanup(shutil.rmtree, d, ignore_errors=True)
    else:
        case.addCleanup(shutil.rmtree, d, ignore_errors=True)
    return d


def queries(n, prefix="add", start=0):
    return [{"query": f"{prefix} {i} and {i + 1}", "expected_outcome": {"answer": 2 * i + 1}}
            for i in range(start, start + n)]


class Server:
    """One agentcore process. `config` is the text of a Lua config file (optional)."""

    def __init__(self, config=None, env=None, data_dir=None, args=()):
        self.proc = None
        self.log = None
        self.closed = False
        self.tmp = tempfile.mkdtemp(prefix="ac-e2e-")
        try:
            self._setup(config, env, data_dir, args)
        except BaseException:
            self.close(check=False)  # a server that did not start leaves nothing behind
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _setup(self, config, env, data_dir, args):
        self.data = data_dir or os.path.join(self.tmp, "data")
        self.config_path = None
        if config is not None:
            self.config_path = os.path.join(self.tmp, "server.lua")
            with open(self.config_path, "w") as f:
                f.write(config)
        self.env = dict(os.environ, AGENTCORE_JWT_SECRET=SECRET)
        if env:
            self.env.update(env)
        dsn = store_dsn(self.data)
        if dsn is not None and "AGENTCORE_STORE_DSN" not in self.env:
            self.env["AGENTCORE_STORE_DSN"] = dsn
        self.args = list(args)
        self.port = None
        self.tls_port = None
        self.start()

    def command(self):
        cmd = [BIN, "serve", "--listen", "127.0.0.1:0", "--data", self.data]
        if self.config_path:
            cmd += ["--config", self.config_path]
        return cmd + self.args

    def start(self):
        self.log = open(os.path.join(self.tmp, "stderr.log"), "ab")
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=self.log, env=self.env)
        line = self.proc.stdout.readline().decode()
        m = re.search(r"port=(\d+)", line)
        if not m:
            self.stop(signal.SIGKILL)
            raise RuntimeError(f"server did not start: {line!r} {self.stderr()}")
        self.port = int(m.group(1))
        t = re.search(r"tls_port=(\d+)", line)
        self.tls_port = int(t.group(1)) if t else None

    def stderr(self):
        try:
            with open(os.path.join(self.tmp, "stderr.log"), "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=60):
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    raise AssertionError(f"the server did not stop within {timeout} s of signal {sig}: killed")
            return proc.returncode
        finally:
            proc.stdout.close()
            if self.log:
                self.log.close()

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def close(self, check=True):
        """Stops the server and removes its files; a second call does nothing. With check, a
        sanitizer report in the server's log fails the test that ran it (ASan+UBSan builds)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.stop()
            log = self.stderr() if check else ""
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                if marker in log:
                    raise AssertionError("sanitizer report from the server:\n" + log[-4000:])
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- HTTP/1.1 -----------------------------------------------------------------------------
    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def post(self, body, token=None, content_type="application/json", raw=False):
        headers = {"Content-Type": content_type} if content_type else {}
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        data = body if raw else json.dumps(body).encode()
        status, hdrs, resp = self.request("POST", "/api/v1/jsonrpc", data, headers)
        parsed = json.loads(resp) if resp else None
        return status, hdrs, parsed

    def call(self, method, params=None, token=None, id="1"):
        """One call; returns (status, headers, response object)."""
        req = {"jsonrpc": "2.0", "method": method, "id": id}
        if params is not None:
            req["params"] = params
        return self.post(req, token if token is not None else make_jwt(claims()))

    def result(self, method, params=None, token=None, timeout=120):
        """One call's result. A rate-limited answer is retried after the wait it asks for, within
        timeout seconds; any other error fails with an AssertionError naming the method."""
        deadline = time.monotonic() + timeout
        while True:
            status, headers, resp = self.call(method, params, token)
            wait = retry_after(status, headers, resp)
            if wait is None:
                if not isinstance(resp, dict) or "result" not in resp:
                    raise AssertionError(f"{method} {params if method != 'training.start_grpo' else ''} "
                                         f"failed: HTTP {status} {resp}")
                return resp["result"]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{method}: still rate limited after {timeout} s: {resp}")
            time.sleep(min(wait, left))

    # ---- curl (h2c, TLS h2) --------------------------------------------------------------------
    def curl(self, body, token, *flags, url=None):
        url = url or f"http://127.0.0.1:{self.port}/api/v1/jsonrpc"
        out = subprocess.run(["curl", "-s", "-S", "-i", *flags, "-X", "POST", url,
                              "-H", "Content-Type: application/json", "-H", f"Authorization: Bearer {token}",
                              "--data-binary", "@-"], input=body, capture_output=True, timeout=60)
        return out.returncode, out.stdout.decode(errors="replace"), out.stderr.decode(errors="replace")


class ServerTest(unittest.TestCase):
    """A test case with one server for the whole class (config from CONFIG)."""
    CONFIG = None

    @classmethod
    def setUpClass(cls):
        # registered before anything else can fail: a failing setUpClass skips tearDownClass,
        # but class cleanups always run
        cls.server = Server(cls.CONFIG)
        cls.addClassCleanup(cls.server.close)

    def assertError(self, resp, code, field=None):
        self.assertIn("error", resp, resp)
        self.assertEqual(resp["error"]["code"], code, resp)
        if field is not None:
            self.assertEqual(resp["error"].get("data", {}).get("field"), field, resp)


def main():
    unittest.main(verbosity=2)
