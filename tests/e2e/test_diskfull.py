"""A full disk and a shared data directory, end to end.

The data directory sits on a small tmpfs. A job that completes first, then a job whose
trajectories fill the disk: it ends failed with the storage error, new jobs are refused with a
clear error, /healthz says degraded (503); when the tmpfs grows the server is ok again without a
restart, and after a restart everything written before the fault is as it was. A job whose
failure cannot be written either (fault point store.reserved) shows failed in memory, does not
resume into the fault after kill -9, and resumes once there is space.

Mounting needs root (as here and in CI) or an unprivileged user namespace: without the first
the script re-runs itself under `unshare --user --map-root-user --mount`; with neither it fails
and says why (it never skips).

A second server on the same --data exits non-zero with a clear message while the first keeps
serving; after the first is killed with -9 a new one starts."""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

from harness import BIN, Server, claims, make_jwt, main
from test_training import final, job_params, wait

CONFIG = """return {
  training = { max_trajectories_per_job = 100000000 },
  rate_limits = { get_status = { limit = 100000 }, start_grpo = { limit = 1000 },
                  export_trajectories = { limit = 1000 }, other = { limit = 100000 } },
}"""
# The job that fills the disk: 128 trajectories an iteration (about 0.35 MB) and a checkpoint every
# 10 (about 6.5 MB with the actor's default sizes), far more iterations than the tmpfs holds, and no
# retention dropping old ones. The first job (20 iterations of 32 trajectories, two checkpoints)
# takes about 16 MB: SMALL_MB leaves the filler room to start.
FILLER = dict(n_iterations=5000, batch_size=16, n_trajectories_per_query=8, checkpoint_interval=10)
SMALL_MB = 24
BIG_MB = 64


def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError as e:
        return subprocess.CompletedProcess(cmd, 127, "", str(e))


def can_mount():
    """None when this process may mount a tmpfs, else mount's complaint."""
    d = tempfile.mkdtemp(prefix="ac-diskfull-probe-")
    try:
        r = run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", d])
        if r.returncode == 0:
            run(["umount", d])
            return None
        return (r.stderr or r.stdout).strip() or f"mount exited {r.returncode}"
    finally:
        os.rmdir(d)


def ensure_mount_or_reexec():
    if os.environ.get("AC_DISKFULL_FORCE_UNSHARE") != "1" or os.environ.get("AC_DISKFULL_UNSHARED") == "1":
        why = can_mount()
        if why is None:
            return
        if os.environ.get("AC_DISKFULL_UNSHARED") == "1":
            sys.exit(f"test_diskfull: cannot mount a tmpfs even in a user namespace: {why}")
    else:
        why = "AC_DISKFULL_FORCE_UNSHARE=1"
    cmd = ["unshare", "--user", "--map-root-user", "--mount"]
    r = run(cmd + ["true"])
    if r.returncode != 0:
        sys.exit(f"test_diskfull: cannot mount a tmpfs ({why}) and cannot make a user namespace "
                 f"({(r.stderr or r.stdout).strip()}): these tests need one of the two")
    env = dict(os.environ, AC_DISKFULL_UNSHARED="1")
    sys.exit(subprocess.call(cmd + [sys.executable] + sys.argv, env=env))


class Tmpfs:
    """A tmpfs of size_mb at a fresh directory; grow() remounts it larger, keeping the files."""

    def __init__(self, size_mb):
        self.dir = tempfile.mkdtemp(prefix="ac-diskfull-")
        r = run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", self.dir])
        if r.returncode != 0:
            os.rmdir(self.dir)
            raise RuntimeError(f"mount tmpfs: {r.stderr.strip()}")

    def grow(self, size_mb):
        r = run(["mount", "-o", f"remount,size={size_mb}m", self.dir])
        if r.returncode != 0:
            raise RuntimeError(f"remount tmpfs: {r.stderr.strip()}")

    def free_kib(self):
        st = os.statvfs(self.dir)
        return st.f_bavail * st.f_frsize // 1024

    def close(self):
        if run(["umount", self.dir]).returncode != 0:
            run(["umount", "-l", self.dir])  # something still holds it: detach now, freed when released
        os.rmdir(self.dir)


def healthz(server):
    status, _, body = server.request("GET", "/healthz")
    return status, json.loads(body)


def wait_for(what, pred, timeout=60):
    deadline = time.time() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def export_all(server, job):
    _, _, resp = server.call("training.export_trajectories", {"job_id": job, "limit": 10000})
    return resp["result"]


def events(server, job):
    _, _, resp = server.call("training.list_events", {"job_id": job, "limit": 1000})
    return resp["result"]["events"]


def status(server, job):
    _, _, resp = server.call("training.get_status", {"job_id": job})
    return resp["result"]


class DiskFullTest(unittest.TestCase):
    """One server on a small tmpfs, through the fault, the recovery and a restart (in order)."""

    @classmethod
    def setUpClass(cls):
        cls.fs = Tmpfs(SMALL_MB)
        cls.addClassCleanup(cls.fs.close)
        cls.server = Server(CONFIG, data_dir=os.path.join(cls.fs.dir, "data"))
        cls.addClassCleanup(cls.server.close)  # runs before the unmount (cleanups go in reverse)

    def test_1_a_job_completes_before_the_fault(self):
        self.assertEqual(healthz(self.server), (200, {"status": "ok"}))
        _, _, resp = self.server.call("training.start_grpo", job_params(n_iterations=20))
        cls = type(self)
        cls.first = resp["result"]["job_id"]
        st = wait(self.server, cls.first, final)
        self.assertEqual(st["status"], "completed", st)
        cls.first_export = export_all(self.server, cls.first)
        self.assertEqual(cls.first_export["total_count"], 20 * 8 * 4)
        _, _, resp = self.server.call("training.list_checkpoints", {"job_id": cls.first})
        cls.first_checkpoints = resp["result"]
        cls.first_events = events(self.server, cls.first)

    def test_2_the_job_that_fills_the_disk_fails_with_the_storage_error(self):
        _, _, resp = self.server.call("training.start_grpo", job_params(**FILLER))
        cls = type(self)
        cls.filler = resp["result"]["job_id"]
        st = wait(self.server, cls.filler, final, timeout=180)
        self.assertEqual(st["status"], "failed", st)
        self.assertRegex(st["error"], r"^store: cannot write: No space left on device", st)
        self.assertLess(st["current_iteration"], FILLER["n_iterations"])
        self.assertLess(self.fs.free_kib(), 2048, "the tmpfs is full")
        last = events(self.server, cls.filler)[-1]
        self.assertEqual(last["event"], "training.job.failed")
        self.assertEqual(last["data"]["error"], st["error"])
        # what was committed before the fault is all there: every stored trajectory exports
        cls.filler_status = st
        self.assertEqual(export_all(self.server, cls.filler)["total_count"], st["trajectories_stored"])
        self.assertEqual(st["trajectories_stored"], st["current_iteration"] * 128)

    def test_3_new_jobs_are_refused_and_healthz_is_degraded(self):
        code, body = healthz(self.server)
        self.assertEqual(code, 503, body)
        self.assertEqual(body["status"], "degraded")
        self.assertIn("No space left on device", body["store"])
        status_code, _, resp = self.server.call("training.start_grpo", job_params(n_iterations=5))
        self.assertEqual(status_code, 200)
        self.assertEqual(resp["error"]["code"], -32603, resp)
        self.assertIn("no new job is accepted", resp["error"]["data"]["error"])
        self.assertEqual(resp["error"]["data"]["field"], "store")
        self.assertIn("No space left on device", resp["error"]["data"]["error"])
        # reads go on: status and export of the first job
        self.assertEqual(status(self.server, self.first)["status"], "completed")
        self.assertEqual(export_all(self.server, self.first), self.first_export)
        token = make_jwt(claims(perms="metrics:view"))
        _, _, text = self.server.request("GET", "/metrics", headers={"Authorization": "Bearer " + token})
        self.assertIn("agentcore_store_degraded 1\n", text.decode())

    def test_4_space_comes_back_and_the_server_is_ok_without_a_restart(self):
        self.fs.grow(BIG_MB)
        wait_for("/healthz ok after the tmpfs grew", lambda: healthz(self.server)[0] == 200, timeout=60)
        self.assertEqual(healthz(self.server), (200, {"status": "ok"}))
        _, _, resp = self.server.call("training.start_grpo", job_params(n_iterations=5))
        self.assertIn("result", resp, resp)
        self.assertEqual(wait(self.server, resp["result"]["job_id"], final)["status"], "completed")

    def test_5_after_a_restart_everything_written_before_is_intact(self):
        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        self.assertEqual(healthz(self.server), (200, {"status": "ok"}))
        self.assertEqual(export_all(self.server, self.first), self.first_export)
        _, _, resp = self.server.call("training.list_checkpoints", {"job_id": self.first})
        self.assertEqual(resp["result"], self.first_checkpoints)
        self.assertEqual(events(self.server, self.first), self.first_events)
        st = status(self.server, self.filler)
        self.assertEqual((st["status"], st["error"], st["current_iteration"]),
                         ("failed", self.filler_status["error"], self.filler_status["current_iteration"]))
        self.assertEqual(export_all(self.server, self.filler)["total_count"], self.filler_status["trajectories_stored"])
        _, _, resp = self.server.call("training.start_grpo", job_params(n_iterations=5))
        self.assertEqual(wait(self.server, resp["result"]["job_id"], final)["status"], "completed")


class UnwrittenFailureTest(unittest.TestCase):
    """Even the failure record cannot be written (store.reserved): the job shows failed from
    memory; after kill -9 on a disk still full it does not resume; with space it resumes, and
    when it fills the disk again its failure is written."""

    def test_unwritten_failure_then_restart(self):
        fs = Tmpfs(SMALL_MB)
        self.addCleanup(fs.close)
        data = os.path.join(fs.dir, "data")
        server = Server(CONFIG, data_dir=data, env={"AGENTCORE_FAULT": "store.reserved"})
        self.addCleanup(server.close)
        _, _, resp = server.call("training.start_grpo", job_params(**FILLER))
        job = resp["result"]["job_id"]
        st = wait(server, job, final, timeout=180)
        self.assertEqual(st["status"], "failed", st)
        self.assertIs(st["error_saved"], False, st)
        self.assertRegex(st["error"], r"^store: cannot write: No space left on device")
        self.assertIn("No space left on device", st["store_error"])
        stopped_at = st["current_iteration"]
        self.assertEqual(healthz(server)[0], 503)

        server.kill9()
        server.env.pop("AGENTCORE_FAULT")
        server.start()  # on the disk still full: the interrupted job is queued again, not run
        code, body = healthz(server)
        self.assertEqual((code, body["status"]), (503, "degraded"), body)
        deadline = time.time() + 3  # a worker would claim within its 0.5 s idle poll
        while time.time() < deadline:
            st = status(server, job)
            self.assertEqual((st["status"], st["current_iteration"]), ("running", stopped_at), st)
            self.assertIn("No space left on device", st["store_error"])
            time.sleep(0.1)
        self.assertNotIn("error_saved", st)  # the restarted process has no memory of the failure

        fs.grow(BIG_MB)  # space: the job resumes from its checkpoint, fills this too, and fails for good
        wait_for("the job resuming", lambda: status(server, job)["current_iteration"] > stopped_at)
        st = wait(server, job, final, timeout=300)
        self.assertEqual(st["status"], "failed", st)
        self.assertRegex(st["error"], r"^store: cannot write: No space left on device")
        self.assertNotIn("error_saved", st)
        self.assertEqual(events(server, job)[-1]["event"], "training.job.failed")


class DataDirLockTest(unittest.TestCase):
    def test_second_server_on_the_same_data_exits(self):
        first = Server(CONFIG)
        self.addCleanup(first.close)
        _, _, resp = first.call("training.start_grpo", job_params(n_iterations=5))
        job = resp["result"]["job_id"]
        second = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--data", first.data],
                                capture_output=True, text=True, timeout=60, env=first.env)
        self.assertNotEqual(second.returncode, 0)
        self.assertIn(f"data directory {first.data} is in use by another agentcore (pid {first.proc.pid})",
                      second.stderr)
        self.assertEqual(second.stdout, "", "it never listened")
        # the first one goes on as if nothing happened
        self.assertEqual(healthz(first), (200, {"status": "ok"}))
        self.assertEqual(wait(first, job, final)["status"], "completed")
        _, _, resp = first.call("training.start_grpo", job_params(n_iterations=5))
        self.assertIn("result", resp, resp)

        first.kill9()  # the kernel drops the flock with the process
        first.start()
        self.assertEqual(healthz(first), (200, {"status": "ok"}))
        self.assertEqual(status(first, job)["status"], "completed")


if __name__ == "__main__":
    ensure_mount_or_reexec()
    main()
