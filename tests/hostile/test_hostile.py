"""Hostile plugins, end to end: every attack in plugins/agents/h_*.lua (its `-- expect:` line says
how it must end) runs as a job of one principal while another principal trains the calculator at
the same time. Each attack must end with its job failed cleanly within a deadline, the server up,
and the other principal's job bit-identical to the same job run alone (same trajectories, actions,
rewards and metrics). Also: a hostile validator, a plugin that crashes the server (failed at start
after two crashes, not crash-looped), and SIGTERM while a plugin call is stuck."""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from harness import SRC, Server, claims, make_jwt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ATTACKS = sorted(glob.glob(os.path.join(HERE, "plugins", "agents", "h_*.lua")))
ALICE = make_jwt(claims("alice", ttl=7200))    # trains the calculator
MALLORY = make_jwt(claims("mallory", ttl=7200))  # runs the attacks
DEADLINE_S = 120  # generous: the suite must pass on a machine kept busy by other work


def expectation(path):
    """The `-- expect: STATUS: message part | other part` line of an attack plugin: the parts the
    error may contain (one of them). On a busy machine the wall-clock limit of a call can come
    before its instruction or memory budget: either is the clean end the attack must get."""
    with open(path) as f:
        m = re.search(r"^-- expect: ([a-z]+)(?:: (.*))?$", f.read(), re.M)
    if not m:
        raise ValueError(f"{path}: no '-- expect:' line")
    return m.group(1), m.group(2).split(" | ") if m.group(2) else None


def calculator_data():
    out = subprocess.run(["lua5.4", os.path.join(SRC, "examples/gen_data.lua"), "calculator", "7"],
                         capture_output=True, check=True, cwd=SRC)
    return json.loads(out.stdout)


DATA = calculator_data()
VICTIM = {"agent_id": "calculator",
          "config": {"n_iterations": 4, "batch_size": 4, "n_trajectories_per_query": 4,
                     "beta": 0.0, "max_steps_per_trajectory": 8, "checkpoint_interval": 2, "seed": 7},
          "training_data": DATA["training_data"], "evaluation_data": DATA["evaluation_data"][:16]}


def hostile(agent_id):
    return {"agent_id": agent_id,
            "config": {"n_iterations": 3, "batch_size": 2, "n_trajectories_per_query": 2, "seed": 1,
                       "max_steps_per_trajectory": 4, "checkpoint_interval": 1},
            "training_data": DATA["training_data"], "evaluation_data": DATA["evaluation_data"][:4]}


def config(plugins_dir, extra=""):
    names = [os.path.basename(p)[:-4] for p in ATTACKS]
    bindings = ",\n".join(f'    ["{n}"] = {{ agent = "{n}", reward = "calculator", validator = "default" }}'
                          for n in names)
    return f"""return {{
  threads = 2, workers = 2, plugins_dir = "{plugins_dir}",
  rate_limits = {{ get_status = {{ limit = 1000000 }}, start_grpo = {{ limit = 1000000 }},
                  export_trajectories = {{ limit = 1000000 }}, other = {{ limit = 1000000 }} }},
  budgets = {{ default_usd = 1000000 }},
  plugin_limits = {{ max_instructions = 20000000, max_wall_ms = 1000, max_call_mb = 32,
                    abandon_after_ms = 1500 }},
  agents = {{
{bindings},
    ["h-validator"] = {{ agent = "calculator", reward = "calculator", validator = "h_cjson" }},
  }},
  {extra}
}}"""


def plugins_copy(tmp):
    """The project's plugins plus the hostile ones, in a directory of the test's own."""
    d = os.path.join(tmp, "plugins")
    shutil.copytree(os.path.join(SRC, "plugins"), d)
    shutil.copy(os.path.join(HERE, "plugins", "hostile_base.lua"), d)
    for p in ATTACKS:
        shutil.copy(p, os.path.join(d, "agents"))
    shutil.copy(os.path.join(HERE, "plugins", "validators", "h_cjson.lua"), os.path.join(d, "validators"))
    return d


def call(server, method, params, token):
    """A call that answers 429 is retried after its Retry-After; any other error is returned."""
    deadline = time.time() + DEADLINE_S
    while True:
        status, headers, resp = server.call(method, params, token)
        if status != 429 or time.time() > deadline:
            return resp
        time.sleep(float(headers.get("retry-after", "1")))


def result(resp):
    if "result" not in resp:
        raise AssertionError(f"call failed: {resp}")
    return resp["result"]


def wait_final(server, job, token, timeout=DEADLINE_S):
    deadline = time.time() + timeout
    pause = 0.05
    while True:
        st = result(call(server, "training.get_status", {"job_id": job}, token))
        if st["status"] in ("completed", "failed", "cancelled") or time.time() > deadline:
            return st
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)


def fingerprint(server, job):
    """What must not change when another principal's plugins misbehave next to this job."""
    st = wait_final(server, job, ALICE)
    ex = result(call(server, "training.export_trajectories", {"job_id": job, "limit": 10000}, ALICE))
    trajs = [(t["trajectory_id"], t["reward"], t["success"], t["normalized_reward"],
              [(s["state"]["context"], s["action"]["tool"], json.dumps(s["action"]["params"], sort_keys=True),
                json.dumps(s["result"], sort_keys=True)) for s in t["steps"]])
             for t in ex["trajectories"]]
    metrics = {k: st["metrics"].get(k) for k in ("train_loss", "avg_reward", "validation_accuracy", "kl",
                                                  "entropy", "grad_norm")}
    return st["status"], st["cost_usd"], metrics, trajs


class HostileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ac-hostile-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cls.plugins = plugins_copy(cls.tmp)
        cls.server = Server(config(cls.plugins), env={"AGENTCORE_FAULT": "lua.stall,lua.crash"})
        cls.addClassCleanup(cls.server.close)
        job = result(call(cls.server, "training.start_grpo", VICTIM, ALICE))["job_id"]
        cls.alone = fingerprint(cls.server, job)
        assert cls.alone[0] == "completed", cls.alone

    def healthy(self):
        status, _, body = self.server.request("GET", "/healthz")
        self.assertEqual(status, 200, body)

    def test_attacks(self):
        for path in ATTACKS:
            name = os.path.basename(path)[:-4]
            status, part = expectation(path)
            if status != "failed":
                continue
            with self.subTest(attack=name):
                t0 = time.time()
                bad = result(call(self.server, "training.start_grpo", hostile(name), MALLORY))["job_id"]
                good = result(call(self.server, "training.start_grpo", VICTIM, ALICE))["job_id"]
                st = wait_final(self.server, bad, MALLORY)
                took = time.time() - t0
                print(f"  {name}: {st['status']} in {took:.1f} s: {st.get('error', '')[:150]}")
                self.assertEqual(st["status"], "failed", st)
                self.assertTrue(any(p in st.get("error", "") for p in part), (part, st))
                self.assertLess(took, DEADLINE_S)
                self.healthy()
                self.assertEqual(fingerprint(self.server, good), self.alone,
                                 "the other principal's job changed next to the attack")

    def test_hostile_validator(self):
        p = hostile("h-validator")
        p["agent_id"] = "h-validator"
        resp = call(self.server, "training.start_grpo", p, MALLORY)
        self.assertEqual(resp["error"]["code"], -32603, resp)
        self.healthy()

    def test_sigterm_with_a_stuck_plugin_call(self):
        """Own server: a plugin call stuck in C for a minute; the watchdog fails the job, a new
        worker takes the next job, and SIGTERM still ends the server within seconds."""
        server = Server(config(self.plugins), env={"AGENTCORE_FAULT": "lua.stall"})
        self.addCleanup(server.close)
        bad = result(call(server, "training.start_grpo", hostile("h_stall"), MALLORY))["job_id"]
        st = wait_final(server, bad, MALLORY)
        self.assertEqual(st["status"], "failed", st)
        self.assertIn("abandoned", st["error"])
        good = result(call(server, "training.start_grpo", VICTIM, ALICE))["job_id"]
        self.assertEqual(fingerprint(server, good), self.alone)
        # a second stuck call, and stop while it is stuck
        bad2 = result(call(server, "training.start_grpo", hostile("h_stall"), MALLORY))["job_id"]
        deadline = time.time() + DEADLINE_S
        while result(call(server, "training.get_status", {"job_id": bad2}, MALLORY))["status"] != "running":
            self.assertLess(time.time(), deadline)
            time.sleep(0.1)
        t0 = time.time()
        code = server.stop(timeout=60)
        took = time.time() - t0
        print(f"  SIGTERM with a stuck plugin call: exit {code} in {took:.1f} s")
        self.assertEqual(code, 0)
        self.assertLess(took, 30)

    def test_crash_is_not_resumed_forever(self):
        """Own server: a plugin crashes the process. The job resumes once after the first crash;
        after the second it is failed at start and the server stays up. Another principal's job,
        interrupted by both crashes, resumes and ends as if alone."""
        server = Server(config(self.plugins), env={"AGENTCORE_FAULT": "lua.crash"})
        self.addCleanup(server.close)
        # the victim first: the attack kills the server as soon as a worker takes it
        good = result(call(server, "training.start_grpo", VICTIM, ALICE))["job_id"]
        bad = result(call(server, "training.start_grpo", hostile("h_crash"), MALLORY))["job_id"]
        for crash in (1, 2):
            code = server.proc.wait(timeout=DEADLINE_S)
            self.assertEqual(code, -signal.SIGABRT, f"crash {crash}: {server.stderr()[-2000:]}")
            server.stop()
            server.start()
        st = result(call(server, "training.get_status", {"job_id": bad}, MALLORY))
        self.assertEqual(st["status"], "failed", st)
        self.assertIn("crashed", st["error"])
        self.assertEqual(fingerprint(server, good), self.alone)
        self.assertIsNone(server.proc.poll())


if __name__ == "__main__":
    unittest.main(verbosity=2)
