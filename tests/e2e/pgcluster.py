"""A real PostgreSQL for the tests: Debian's postgresql-15 binaries (initdb, postgres) run in a
temporary directory, listening on a free loopback port and on a unix socket in that directory,
with trust authentication for the cluster's superuser "agentcore" over loopback only.

initdb and postgres refuse to run as root: when the tests run as root the cluster belongs to
the unprivileged user "postgres" (Debian's package creates it), else to the current user.

The postmaster is a direct child of the test process with a parent-death signal (SIGQUIT, an
immediate shutdown): a test process that is killed does not leave a database running. A test
process that ends normally stops it with a fast shutdown (stop(), or the atexit hook of
shared()).

Each agentcore server of a test gets a database of its own (new_database), so that tests that
share the cluster do not see each other's jobs; nodes that must share one are given the same
DSN."""
import atexit
import ctypes
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

PR_SET_PDEATHSIG = 1
SUPERUSER = "agentcore"


def bin_dir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not dirs or not os.path.exists(os.path.join(dirs[-1], "initdb")):
        raise RuntimeError("PostgreSQL's server binaries are missing: apt-get install postgresql "
                           "(tests/setup.sh installs it)")
    return dirs[-1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One PostgreSQL server. durable=False turns fsync off (tests: a crash of agentcore is what
    they test, not one of the machine); the benchmark keeps it on."""

    def __init__(self, durable=False):
        self.bin = bin_dir()
        self.proc = None
        self.tmp = tempfile.mkdtemp(prefix="ac-pg-")
        self.uid = self.gid = None
        self.n_db = 0
        self.lock = threading.Lock()
        try:
            if os.geteuid() == 0:
                pw = pwd.getpwnam("postgres")
                self.uid, self.gid = pw.pw_uid, pw.pw_gid
                os.chown(self.tmp, self.uid, self.gid)
            self.data = os.path.join(self.tmp, "pgdata")
            self._run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", SUPERUSER, "--auth=trust",
                       "-E", "UTF8", "--locale=C", "--no-sync"])
            self._start(durable)
        except BaseException:
            self.stop()
            raise

    def _as_owner(self):
        uid, gid = self.uid, self.gid

        def fn():
            if uid is not None:
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
            # after the credentials change (which clears it): the postmaster ends with us
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGQUIT, 0, 0, 0)
        return fn

    def _run(self, cmd):
        out = subprocess.run(cmd, preexec_fn=self._as_owner(), capture_output=True, cwd=self.tmp, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {out.stderr.decode(errors='replace')}")

    def _start(self, durable):
        for attempt in range(5):
            self.port = free_port()
            self.log = open(os.path.join(self.tmp, "postgres.log"), "ab")
            opts = ["-c", "listen_addresses=127.0.0.1", "-p", str(self.port), "-k", self.tmp,
                    "-c", "max_connections=300", "-c", "shared_buffers=64MB"]
            if not durable:
                opts += ["-c", "fsync=off", "-c", "full_page_writes=off"]
            self.proc = subprocess.Popen([os.path.join(self.bin, "postgres"), "-D", self.data] + opts,
                                         preexec_fn=self._as_owner(), stdout=self.log, stderr=self.log,
                                         cwd=self.tmp)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.proc.poll() is None:
                ready = subprocess.run([os.path.join(self.bin, "pg_isready"), "-q", "-h", "127.0.0.1",
                                        "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres"])
                if ready.returncode == 0:
                    return
                time.sleep(0.1)
            self._kill()  # the port was taken meanwhile, or it did not come up: another port
        raise RuntimeError("PostgreSQL did not start: " + self.server_log()[-2000:])

    def server_log(self):
        try:
            with open(os.path.join(self.tmp, "postgres.log"), "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _kill(self):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # fast shutdown: sessions are ended, nothing to wait for
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGQUIT)
                proc.wait()
        self.log.close()

    def stop(self):
        try:
            self._kill()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- databases and SQL -----------------------------------------------------------------------
    def dsn(self, db):
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{db}"

    def psql(self, db, sql):
        """Runs sql in db; returns the rows as lists of strings (unaligned, tab-separated)."""
        out = subprocess.run([os.path.join(self.bin, "psql"), "-X", "-q", "-A", "-t", "-F", "\t",
                              "-v", "ON_ERROR_STOP=1", "-d", self.dsn(db), "-c", sql],
                             capture_output=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"psql: {out.stderr.decode(errors='replace')}")
        return [line.split("\t") for line in out.stdout.decode().splitlines() if line]

    def new_database(self):
        """A new empty database; returns its DSN."""
        with self.lock:
            self.n_db += 1
            name = f"t{os.getpid()}_{self.n_db}"
        self.psql("postgres", f"CREATE DATABASE {name}")
        return self.dsn(name)


_shared = None


def shared():
    """The test process's cluster, started at the first call and stopped at exit."""
    global _shared
    if _shared is None:
        _shared = Cluster()
        atexit.register(_shared.stop)
    return _shared


def db_name(dsn):
    return dsn.rsplit("/", 1)[1]
