"""The training service end to end: jobs run on workers, with status, evaluate, export,
checkpoints, events, cancel during a run, the budget stop, plugin failures, retention,
per-principal budgets, and kill -9 then resume with the same final result."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from harness import SLOW, SRC, Server, ServerTest, claims, make_jwt, main, poll, queries

UNKNOWN = "550e8400-e29b-41d4-a716-446655440000"


def calculator_data(seed=7):
    out = subprocess.run(["lua5.4", os.path.join(SRC, "examples/gen_data.lua"), "calculator", str(seed)],
                         capture_output=True, check=True, cwd=SRC)
    return json.loads(out.stdout)


DATA = calculator_data()
FAST = {"batch_size": 8, "n_trajectories_per_query": 4, "beta": 0.0,
        "max_steps_per_trajectory": 8, "checkpoint_interval": 10, "seed": 42}


def job_params(**config):
    cfg = dict(FAST, **config)
    return {"agent_id": "calculator", "config": cfg, "training_data": DATA["training_data"],
            "evaluation_data": DATA["evaluation_data"]}


def wait(server, job, until, token=None, timeout=120):
    """Polls get_status (backing off, within the rate limit, waiting out a -32029) until
    until(status) holds; returns that status. Fails with the last status seen after timeout
    seconds (SLOW times that under ASan), or with the error a call answered."""
    timeout *= SLOW
    deadline = time.monotonic() + timeout
    last = {}

    def check():
        last["status"] = server.result("training.get_status", {"job_id": job}, token,
                                       timeout=max(deadline - time.monotonic(), 1))
        return last["status"] if until(last["status"]) else None

    try:
        return poll(check, timeout, f"job {job}")
    except AssertionError as e:
        raise AssertionError(f"{e}; last status: {last.get('status')}") from None


def final(st):
    return st["status"] in ("completed", "failed", "cancelled")


ITERATIONS = 60
TRAJECTORIES = ITERATIONS * 16 * 8


class CompletedJobTest(ServerTest):
    CONFIG = "return { rate_limits = { export_trajectories = { limit = 1000 }, evaluate = { limit = 100 } } }"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()  # the server's cleanup is registered there, before this can fail
        # 16 queries x 8 rollouts, 60 iterations at a learning rate of 3e-4 with the KL penalty: enough
        # that the bag policy calls the right operations on the right operands of held-out queries
        # (measured: avg_reward_improvement 0.13-0.15, p_value_reward <= 0.0007 over seeds 42-47,
        # a job of 8-16 s). Exact answers come much later (about 150-300 iterations), see test_evaluate.
        cls.job = cls.server.result("training.start_grpo",
                                    job_params(n_iterations=ITERATIONS, batch_size=16, n_trajectories_per_query=8,
                                               learning_rate=0.0003, beta=0.04, checkpoint_interval=20))["job_id"]
        cls.status = wait(cls.server, cls.job, final)

    def test_status_after_completion(self):
        st = self.status
        self.assertEqual(st["status"], "completed", st)
        self.assertEqual((st["current_iteration"], st["total_iterations"], st["progress_percent"]),
                         (ITERATIONS, ITERATIONS, 100.0))
        m = st["metrics"]
        self.assertEqual(m["trajectories_generated"], TRAJECTORIES)
        for key in ("train_loss", "avg_reward", "validation_accuracy", "kl", "entropy", "clip_fraction",
                    "reward_std", "zero_variance_groups"):
            self.assertIsInstance(m[key], float, key)
        self.assertRegex(st["cost_usd"], r"^\d+\.\d\d$")
        self.assertEqual(st["budget_usd"], "100.00")
        self.assertGreater(float(st["cost_usd"]), 0)
        self.assertRegex(st["started_at"], r"Z$")
        self.assertIsNotNone(st["best_checkpoint_id"])

    def test_checkpoints_and_events(self):
        _, _, resp = self.server.call("training.list_checkpoints", {"job_id": self.job})
        cks = resp["result"]["checkpoints"]
        self.assertEqual([c["iteration"] for c in cks], [20, 40, 60])
        self.assertEqual(sum(c["is_best"] for c in cks), 1)
        self.assertTrue(cks[-1]["is_latest"])
        best = max(cks, key=lambda c: (c["validation_accuracy"], c["iteration"]))
        self.assertEqual(resp["result"]["best_checkpoint_id"], best["checkpoint_id"])
        events, cursor = [], 0
        while True:  # page through with the cursor
            _, _, resp = self.server.call("training.list_events", {"job_id": self.job, "cursor": cursor, "limit": 2})
            events += resp["result"]["events"]
            cursor = resp["result"]["next_cursor"]
            if not resp["result"]["has_more"]:
                break
        kinds = [e["event"] for e in events]
        self.assertEqual(kinds[0], "training.job.started")
        self.assertEqual(kinds.count("training.job.progress"), ITERATIONS // 10)
        self.assertEqual(kinds[-1], "training.job.completed")
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)))
        done = events[-1]["data"]
        self.assertEqual(done["job_id"], self.job)
        self.assertIn("success_rate", done["final_metrics"])
        self.assertRegex(done["final_metrics"]["cost_usd"], r"^\d+\.\d\d$")

    def test_evaluate(self):
        status, _, resp = self.server.call("training.evaluate", {"job_id": self.job}, id="eval-001")
        self.assertEqual(status, 200)
        r = resp["result"]
        self.assertEqual(r["checkpoint_id"], self.status["best_checkpoint_id"])
        for key in ("success_rate", "avg_reward", "avg_steps", "tool_accuracy"):
            self.assertIsInstance(r["metrics"][key], float)
        bc = r["baseline_comparison"]
        for key in ("success_rate_improvement", "avg_reward_improvement", "p_value"):
            self.assertIsInstance(bc[key], float)
        self.assertEqual(bc["statistically_significant"], bc["p_value"] < 0.05)
        self.assertEqual(r["queries_evaluated"], len(DATA["evaluation_data"]))
        self.assertIsInstance(r["evaluation_duration_ms"], int)
        # training helps on held-out queries: the trained policy earns more of the reward (the right
        # operations on the right operands) than the untrained one, significantly. The calculator's
        # exact answers (success_rate_improvement > 0.2, the assertion of calculator v1) need about
        # 150-300 iterations of the bag policy: minutes for a test, so not asserted here.
        self.assertGreater(bc["avg_reward_improvement"], 0.05, r)
        self.assertLess(bc["p_value_reward"], 0.01, r)
        # a given checkpoint and custom queries
        _, _, cks = self.server.call("training.list_checkpoints", {"job_id": self.job})
        first = cks["result"]["checkpoints"][0]["checkpoint_id"]
        _, _, resp = self.server.call("training.evaluate", {"job_id": self.job, "checkpoint_id": first,
                                                            "evaluation_queries": DATA["evaluation_data"][:5]})
        self.assertEqual((resp["result"]["checkpoint_id"], resp["result"]["queries_evaluated"]), (first, 5))

    def test_evaluate_errors(self):
        _, _, resp = self.server.call("training.evaluate", {"job_id": self.job, "checkpoint_id": UNKNOWN})
        self.assertEqual((resp["error"]["code"], resp["error"]["data"]["field"]), (-32001, "checkpoint_id"))
        _, _, resp = self.server.call("training.evaluate", {"job_id": UNKNOWN})
        self.assertEqual(resp["error"]["code"], -32001)
        _, _, resp = self.server.call("training.evaluate", {"job_id": self.job, "evaluation_queries": []})
        self.assertEqual(resp["error"]["code"], -40004)
        _, _, resp = self.server.call("training.evaluate", {"job_id": self.job,
                                                            "evaluation_queries": [{"query": 5}]})
        self.assertEqual((resp["error"]["code"], resp["error"]["data"]["field"]),
                         (-32602, "evaluation_queries[0].query"))

    def test_export(self):
        call = lambda **p: self.server.call("training.export_trajectories", dict(p, job_id=self.job))[2]
        everything = call(limit=10000)["result"]
        self.assertEqual(everything["total_count"], TRAJECTORIES)
        self.assertEqual(everything["returned_count"], TRAJECTORIES)
        self.assertFalse(everything["has_more"])
        ids = [t["trajectory_id"] for t in everything["trajectories"]]
        self.assertEqual(len(set(ids)), len(ids))
        t = everything["trajectories"][0]
        for key in ("trajectory_id", "query", "steps", "reward", "normalized_reward", "advantage", "success",
                    "execution_time_ms"):
            self.assertIn(key, t)
        step = t["steps"][0]
        for key in ("state", "action", "result", "timestamp", "duration_ms"):
            self.assertIn(key, step)
        self.assertEqual(set(step["action"]), {"tool", "params"})
        # the policy chose the arguments: for the calculator, numbers it saw in the query or a result
        for t in everything["trajectories"][:200]:
            for k, s in enumerate(t["steps"]):
                params = s["action"]["params"]
                self.assertEqual(set(params), {"value"} if s["action"]["tool"] == "answer" else {"a", "b"}, s)
                seen = {float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", s["state"]["context"])}
                for v in params.values():
                    self.assertIsInstance(v, (int, float))
                    # (the export prints reals with 15 significant digits, the context with up to 17)
                    self.assertTrue(any(abs(v - x) <= 1e-12 * max(1.0, abs(x)) for x in seen), (k, s))
        page = call(limit=100, offset=250)["result"]
        self.assertEqual((page["returned_count"], page["has_more"], page["total_count"]), (100, True, TRAJECTORIES))
        self.assertEqual([x["trajectory_id"] for x in page["trajectories"]], ids[250:350])  # stable order
        ok = call(success_only=True, limit=10000)["result"]
        self.assertEqual(ok["total_count"], sum(1 for x in everything["trajectories"] if x["success"]))
        self.assertTrue(all(x["success"] for x in ok["trajectories"]))
        hi = call(min_reward=0.5, limit=10000)["result"]
        self.assertEqual(hi["total_count"], sum(1 for x in everything["trajectories"] if x["reward"] >= 0.5))
        last = call(limit=10, offset=TRAJECTORIES - 5)["result"]
        self.assertEqual((last["returned_count"], last["has_more"]), (5, False))
        _, _, resp = self.server.call("training.export_trajectories", {"job_id": self.job, "limit": 10001})
        self.assertEqual((resp["error"]["code"], resp["error"]["data"]["field"]), (-40005, "limit"))
        _, _, resp = self.server.call("training.export_trajectories", {"job_id": UNKNOWN})
        self.assertEqual(resp["error"]["code"], -32001)

    def test_other_tenant_sees_nothing(self):
        bob = make_jwt(claims("bob"))
        for method in ("training.evaluate", "training.export_trajectories", "training.list_checkpoints",
                       "training.list_events", "training.get_status", "training.cancel"):
            _, _, resp = self.server.call(method, {"job_id": self.job}, bob)
            self.assertEqual(resp["error"]["code"], -32001, method)
        _, _, resp = self.server.call("training.list_jobs", {}, bob)
        self.assertEqual(resp["result"]["total_count"], 0)
        _, _, resp = self.server.call("training.list_jobs", {"status": "completed"})
        self.assertIn(self.job, [j["job_id"] for j in resp["result"]["jobs"]])
        # a list row carries the cost and budget as get_status shows them (the dashboard's list)
        row = next(j for j in resp["result"]["jobs"] if j["job_id"] == self.job)
        self.assertEqual((row["cost_usd"], row["budget_usd"]), (self.status["cost_usd"], self.status["budget_usd"]))
        _, _, resp = self.server.call("training.list_jobs", {"status": "weird"})
        self.assertEqual(resp["error"]["code"], -32602)


class CancelAndBudgetTest(ServerTest):
    CONFIG = "return { workers = 2, rate_limits = { start_grpo = { limit = 1000 } } }"

    def test_cancel_running_job_saves_a_checkpoint(self):
        _, _, resp = self.server.call("training.start_grpo", job_params(n_iterations=10000, checkpoint_interval=1000))
        job = resp["result"]["job_id"]
        wait(self.server, job, lambda s: s["current_iteration"] >= 2)
        _, _, resp = self.server.call("training.cancel", {"job_id": job, "reason": "enough"})
        r = resp["result"]
        self.assertEqual(r["status"], "cancelled", r)
        self.assertTrue(r["checkpoint_saved"])
        self.assertGreaterEqual(r["iterations_completed"], 2)
        _, _, cks = self.server.call("training.list_checkpoints", {"job_id": job})
        self.assertIn(r["checkpoint_id"], [c["checkpoint_id"] for c in cks["result"]["checkpoints"]])
        _, _, st = self.server.call("training.get_status", {"job_id": job})
        self.assertEqual((st["result"]["status"], st["result"]["cancel_reason"]), ("cancelled", "enough"))
        _, _, resp = self.server.call("training.cancel", {"job_id": job})
        self.assertEqual(resp["error"]["code"], -40003)

    def test_budget_stop(self):
        # each agent step costs 0.0001 (an operation; answer is free) + 0.00001 (policy step): about
        # 0.01 USD per iteration
        _, _, resp = self.server.call("training.start_grpo", job_params(n_iterations=1000, max_budget_usd=0.1))
        job = resp["result"]["job_id"]
        st = wait(self.server, job, final)
        self.assertEqual((st["status"], st["cancel_reason"]), ("cancelled", "budget_exceeded"), st)
        self.assertLessEqual(float(st["cost_usd"]), 0.1)
        self.assertGreater(float(st["cost_usd"]), 0.09)
        self.assertIsNotNone(st["latest_checkpoint_id"])
        _, _, ev = self.server.call("training.list_events", {"job_id": job, "limit": 1000})
        warnings = [e["data"]["threshold_percent"] for e in ev["result"]["events"]
                    if e["event"] == "training.budget.warning"]
        self.assertEqual(warnings, [75, 90])
        self.assertEqual(ev["result"]["events"][-1]["event"], "training.job.cancelled")
        self.assertEqual(ev["result"]["events"][-1]["data"]["reason"], "budget_exceeded")


class PrincipalBudgetTest(ServerTest):
    CONFIG = "return { workers = 1, budgets = { default_usd = 100, principals = { rich = 1000 } } }"

    def test_reservations_count_against_the_budget(self):
        tok = make_jwt(claims("poor"))
        _, _, resp = self.server.call("training.start_grpo", job_params(n_iterations=10000, max_budget_usd=60), tok)
        first = resp["result"]["job_id"]
        _, _, resp = self.server.call("training.start_grpo", job_params(max_budget_usd=50), tok)
        self.assertEqual(resp["error"]["code"], -40001, resp)
        self.assertEqual(resp["error"]["data"]["field"], "max_budget_usd")
        self.assertEqual(resp["error"]["data"]["available_usd"], "40.00")
        _, _, resp = self.server.call("training.start_grpo", job_params(max_budget_usd=50), make_jwt(claims("rich")))
        self.assertIn("result", resp)
        self.server.call("training.cancel", {"job_id": first}, tok)  # ends it: its reservation becomes its cost
        _, _, resp = self.server.call("training.start_grpo", job_params(max_budget_usd=50), tok)
        self.assertIn("result", resp, resp)


class PluginFailureTest(ServerTest):
    @classmethod
    def setUpClass(cls):
        cls.plugins = tempfile.mkdtemp(prefix="ac-plugins-")
        cls.addClassCleanup(shutil.rmtree, cls.plugins, ignore_errors=True)
        for kind in ("agents", "rewards", "validators", "webhooks"):
            shutil.copytree(os.path.join(SRC, "plugins", kind), os.path.join(cls.plugins, kind))
        with open(os.path.join(cls.plugins, "agents", "flaky.lua"), "w") as f:
            f.write('local a = dofile == nil and require("agentcore") and {}\n'
                    'a = { name = "flaky", version = "1", tools = { { name = "go", cost_usd = 0 },\n'
                    '  { name = "stop", args = { { name = "n", type = "number" } } } } }\n'
                    'function a.init(q) return { n = 0 } end\n'
                    'function a.observe(s) return "step " .. s.n end\n'
                    'function a.legal(s) return { "go" } end\n'
                    'function a.step(s, tool, args)\n'
                    '  error("the tool broke")\n'
                    'end\n'
                    'function a.final(s) error("no answer either") end\n'
                    'return a\n')
        for name in ("flaky", "stuck"):
            shutil.copy(os.path.join(SRC, "plugins", "rewards", "calculator.lua"),
                        os.path.join(cls.plugins, "rewards", name + ".lua"))
        with open(os.path.join(cls.plugins, "agents", "stuck.lua"), "w") as f:
            f.write('local a = { name = "stuck", version = "1", tools = { { name = "go", cost_usd = 0 } } }\n'
                    'function a.init(q) return { held = q:find("^held") ~= nil } end\n'
                    'function a.step(s, tool, args) while not s.held do end return {}, true end\n'
                    'function a.final(s) return {} end\n'
                    'return a\n')
        # the limits let stuck's calls run until something interrupts them
        cls.CONFIG = ('return { plugins_dir = "%s", training = { max_failure_rate = 0.5 }, '
                      'plugin_limits = { max_wall_ms = 600000, max_instructions = 100000000000 } }' % cls.plugins)
        super().setUpClass()

    def cancel_stuck(self, until, **data):
        """Starts a job of the stuck agent, cancels it once until(status), returns its final status."""
        p = dict(job_params(n_iterations=5, max_steps_per_trajectory=1), agent_id="stuck", **data)
        _, _, resp = self.server.call("training.start_grpo", p)
        self.assertIn("result", resp, resp)
        job = resp["result"]["job_id"]
        wait(self.server, job, until)
        _, _, resp = self.server.call("training.cancel", {"job_id": job})
        self.assertEqual(resp.get("result", {}).get("status"), "cancelled", resp)
        return wait(self.server, job, final)

    def test_cancel_interrupting_training_steps_is_no_plugin_failure(self):
        # the held-out queries end at once: once they are scored the first iteration runs, and the
        # cancel interrupts its (last) steps; the episodes it broke neither fail the job nor count
        st = self.cancel_stuck(lambda s: s["metrics"]["validation_accuracy"] is not None,
                               validation_data=queries(20, prefix="held"))
        self.assertEqual((st["status"], st["current_iteration"], st["plugin_failures"]), ("cancelled", 0, 0), st)

    def test_cancel_interrupting_validation_records_no_score(self):
        # every validation episode is stuck: the first validation is cut short
        st = self.cancel_stuck(lambda s: s["status"] != "queued")
        self.assertEqual(st["status"], "cancelled", st)
        self.assertIsNone(st["metrics"]["validation_accuracy"], st)

    def test_failures_above_the_rate_fail_the_job(self):
        p = job_params(n_iterations=50)
        p["agent_id"] = "flaky"
        _, _, resp = self.server.call("training.start_grpo", p)
        st = wait(self.server, resp["result"]["job_id"], final)
        self.assertEqual(st["status"], "failed", st)
        # each episode fails twice (its tool, then its final answer): counted once, as an episode
        self.assertIn("plugin failures: 32 of 32 episodes", st["error"])
        self.assertEqual((st["plugin_failures"], st["episodes"]), (32, 32), st)
        self.assertEqual(st["metrics"]["plugin_failures"], {"tool": 32, "agent": 32, "reward": 0}, st)
        self.assertIn("flaky.lua:8:", st["error"])  # a sample message names file:line

    def test_unknown_agent(self):
        p = job_params()
        p["agent_id"] = "no-such-agent"
        _, _, resp = self.server.call("training.start_grpo", p)
        self.assertEqual((resp["error"]["code"], resp["error"]["data"]["field"]), (-32600, "agent_id"))


class PolicyConfigTest(ServerTest):
    def test_the_job_runs_the_policy_its_config_names(self):
        # the policy's keys are nested ({"policy": {...}}): the job's stored config keeps them, so
        # the worker that runs it (or resumes it) builds that policy, not the default bag
        policy = {"kind": "sequence", "max_tokens": 64, "d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32}
        p = job_params(n_iterations=2, batch_size=4, n_trajectories_per_query=4, policy=policy)
        job = self.server.result("training.start_grpo", p)["job_id"]
        st = wait(self.server, job, final)
        self.assertEqual(st["status"], "completed", st)
        ck = self.server.result("training.export_checkpoint", {"job_id": job})
        self.assertEqual(ck["policy"]["kind"], "sequence", ck["policy"])
        # the same shape again: fine-tuning from it needs the checkpoint's policy keys
        p2 = job_params(n_iterations=1, batch_size=4, n_trajectories_per_query=4, policy=policy)
        p2["init_checkpoint"] = ck["checkpoint_id"]
        _, _, resp = self.server.call("training.start_grpo", p2)
        self.assertIn("result", resp, resp)
        self.assertEqual(wait(self.server, resp["result"]["job_id"], final)["status"], "completed")


class RetentionTest(ServerTest):
    CONFIG = "return { training = { max_trajectories_per_job = 100 } }"

    def test_oldest_iterations_are_dropped(self):
        _, _, resp = self.server.call("training.start_grpo", job_params(n_iterations=12))
        job = resp["result"]["job_id"]
        st = wait(self.server, job, final)
        self.assertEqual(st["status"], "completed")
        self.assertLessEqual(st["trajectories_stored"], 100)
        self.assertEqual(st["oldest_iteration"], 12 - st["trajectories_stored"] // 32 + 1)
        _, _, ex = self.server.call("training.export_trajectories", {"job_id": job, "limit": 1000})
        self.assertEqual(ex["result"]["total_count"], st["trajectories_stored"])
        self.assertTrue(all(t["iteration"] >= st["oldest_iteration"] for t in ex["result"]["trajectories"]))
        self.assertEqual(st["metrics"]["trajectories_generated"], 12 * 32)


class CrashResumeTest(ServerTest):
    CONFIG = "return { workers = 1, rate_limits = { export_trajectories = { limit = 1000 } } }"

    def run_to_end(self, server, kill_at=None):
        _, _, resp = server.call("training.start_grpo", job_params(n_iterations=40))
        job = resp["result"]["job_id"]
        if kill_at is not None:
            st = wait(server, job, lambda s: s["current_iteration"] >= kill_at)
            self.assertLess(st["current_iteration"], 40, "the job ended before the kill")
            server.kill9()
            server.start()
        st = wait(server, job, final)
        _, _, ex = server.call("training.export_trajectories", {"job_id": job, "limit": 10000})
        return st, ex["result"]

    def test_kill9_then_resume_equals_uninterrupted(self):
        crashed, crashed_ex = self.run_to_end(self.server, kill_at=15)
        with Server(self.CONFIG) as other:
            clean, clean_ex = self.run_to_end(other)
        self.assertEqual(crashed["status"], "completed", crashed)
        self.assertEqual(crashed_ex["total_count"], 40 * 32)  # none lost, none duplicated
        ids = [t["trajectory_id"] for t in crashed_ex["trajectories"]]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(ids, [t["trajectory_id"] for t in clean_ex["trajectories"]])
        # the same seed gives the same run: every reward and every action
        self.assertEqual([t["reward"] for t in crashed_ex["trajectories"]],
                         [t["reward"] for t in clean_ex["trajectories"]])
        self.assertEqual([[s["action"] for s in t["steps"]] for t in crashed_ex["trajectories"]],
                         [[s["action"] for s in t["steps"]] for t in clean_ex["trajectories"]])  # tools and arguments
        for key in ("train_loss", "avg_reward", "validation_accuracy", "kl"):
            self.assertEqual(crashed["metrics"][key], clean["metrics"][key], key)
        self.assertEqual(crashed["cost_usd"], clean["cost_usd"])


if __name__ == "__main__":
    main()
