"""training.start_grpo / get_status / cancel backed by LMDB: validation and fields as documented in docs/api.md,
durability across kill -9, a clean SIGTERM stop, and -32603 answers that keep the server's
internals (file paths, Lua tracebacks) in its log under a reference the client gets."""
import json
import os
import re
import shutil
import tempfile
import unittest

from harness import SRC, Server, ServerTest, claims, make_jwt, main, poll, queries

UNKNOWN = "550e8400-e29b-41d4-a716-446655440000"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def start_params(**over):
    p = {"agent_id": "calculator", "config": {"n_iterations": 500, "batch_size": 16, "max_budget_usd": 50.0},
         "training_data": queries(100), "evaluation_data": queries(20, prefix="multiply")}
    p.update(over)
    return p


class StartTest(ServerTest):
    CONFIG = "return { rate_limits = { start_grpo = { limit = 1000 } } }"

    def start(self, **over):
        return self.server.call("training.start_grpo", start_params(**over), id="train-001")

    def test_start_returns_spec_response(self):
        status, headers, resp = self.start()
        self.assertEqual(status, 200, resp)
        r = resp["result"]
        self.assertRegex(r["job_id"], UUID)
        self.assertEqual(r["status"], "queued")
        self.assertEqual(r["agent_id"], "calculator")
        self.assertEqual(r["total_iterations"], 500)
        self.assertRegex(r["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(resp["id"], "train-001")
        self.assertEqual(headers["x-ratelimit-limit"], "1000")  # the config above

    def test_config_ranges(self):
        cases = [("n_iterations", 0, "Must be between 1 and 10000"), ("n_iterations", 10001, None),
                 ("batch_size", 129, "Must be between 1 and 128"), ("n_trajectories_per_query", 17, None),
                 ("learning_rate", 1.5, "Must be between 0 and 1"), ("max_budget_usd", -1, "Must be at least 0"),
                 ("checkpoint_interval", 0, None), ("max_steps_per_trajectory", 101, None),
                 ("gamma", 1.01, None), ("n_iterations", "ten", "Must be an integer"),
                 ("n_iterations", 2.5, "Must be an integer"), ("learning_rate", "x", "Must be a number"),
                 ("no_such_option", 1, "Unknown configuration field")]
        for field, value, message in cases:
            _, _, resp = self.start(config={field: value})
            self.assertEqual(resp["error"]["code"], -32600, (field, value, resp))
            self.assertEqual(resp["error"]["message"], "Invalid training configuration")
            self.assertEqual(resp["error"]["data"]["field"], field)
            if message:
                self.assertEqual(resp["error"]["data"]["error"], message)

    def test_defaults_apply(self):
        _, _, resp = self.start(config={})
        self.assertEqual(resp["result"]["total_iterations"], 1000)
        _, _, st = self.server.call("training.get_status", {"job_id": resp["result"]["job_id"]})
        self.assertEqual(st["result"]["budget_usd"], "100.00")

    def test_missing_or_wrong_parameters(self):
        for missing in ("agent_id", "config", "training_data"):
            p = start_params()
            del p[missing]
            _, _, resp = self.server.call("training.start_grpo", p)
            self.assertEqual(resp["error"]["code"], -32600, resp)
            self.assertEqual(resp["error"]["data"]["field"], missing)
        _, _, resp = self.start(agent_id="bad id!")
        self.assertEqual(resp["error"]["data"]["field"], "agent_id")
        _, _, resp = self.start(training_data={"query": "x"})
        self.assertEqual(resp["error"]["data"]["field"], "training_data")

    def test_too_few_training_queries(self):
        _, _, resp = self.start(training_data=queries(99))
        self.assertEqual(resp["error"]["code"], -40002)
        self.assertEqual(resp["error"]["data"]["field"], "training_data")
        self.assertIn("at least 100", resp["error"]["data"]["error"])

    def test_every_problem_is_listed_with_index_and_field(self):
        data = queries(100)
        data[3] = {"query": "", "expected_outcome": {}}
        data[7] = {"query": "ok", "expected_outcome": "yes"}
        data[9] = "not an object"
        evaluation = [{"query": data[0]["query"], "expected_outcome": {}}]
        _, _, resp = self.start(training_data=data, evaluation_data=evaluation)
        self.assertEqual(resp["error"]["code"], -40002)
        problems = {(p["index"], p["field"]) for p in resp["error"]["data"]["problems"]}
        self.assertEqual(problems, {(3, "training_data[3].query"), (7, "training_data[7].expected_outcome"),
                                    (9, "training_data[9]"), (0, "evaluation_data[0].query")})
        self.assertEqual(resp["error"]["data"]["field"], "training_data[3].query")


class StatusCancelTest(ServerTest):
    """One worker, held by a long job: the jobs these tests start stay queued."""
    CONFIG = "return { workers = 1, rate_limits = { start_grpo = { limit = 1000 } } }"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        p = start_params(config={"n_iterations": 10000, "batch_size": 128, "n_trajectories_per_query": 16})
        cls.blocker = cls.server.result("training.start_grpo", p)["job_id"]
        # until the worker holds it
        poll(lambda: cls.server.result("training.get_status", {"job_id": cls.blocker})["status"] == "running",
             60, "the blocking job to run")

    def new_job(self, token=None):
        _, _, resp = self.server.call("training.start_grpo", start_params(), token)
        return resp["result"]["job_id"]

    def test_status_fields(self):
        job = self.new_job()
        status, _, resp = self.server.call("training.get_status", {"job_id": job}, id="status-001")
        self.assertEqual(status, 200)
        r = resp["result"]
        for key in ("job_id", "agent_id", "status", "current_iteration", "total_iterations", "progress_percent",
                    "metrics", "cost_usd", "budget_usd", "budget_remaining_percent", "started_at",
                    "estimated_completion", "best_checkpoint_id"):
            self.assertIn(key, r)
        for key in ("train_loss", "validation_accuracy", "avg_reward", "trajectories_generated"):
            self.assertIn(key, r["metrics"])
        self.assertEqual(r["status"], "queued")
        self.assertEqual((r["current_iteration"], r["total_iterations"], r["progress_percent"]), (0, 500, 0.0))
        self.assertEqual((r["cost_usd"], r["budget_usd"], r["budget_remaining_percent"]), ("0.00", "50.00", 100.0))

    def test_status_errors(self):
        _, _, resp = self.server.call("training.get_status", {"job_id": "job-1"})
        self.assertEqual(resp["error"]["code"], -32602)
        _, _, resp = self.server.call("training.get_status", {"job_id": UNKNOWN})
        self.assertEqual(resp["error"]["code"], -32001)

    def test_cancel_queued_then_again(self):
        job = self.new_job()
        _, _, resp = self.server.call("training.cancel", {"job_id": job, "reason": "Budget exceeded manually"},
                                      id="cancel-001")
        r = resp["result"]
        self.assertEqual((r["job_id"], r["status"], r["iterations_completed"], r["checkpoint_saved"]),
                         (job, "cancelled", 0, False))
        self.assertRegex(r["cancelled_at"], r"Z$")
        _, _, st = self.server.call("training.get_status", {"job_id": job})
        self.assertEqual(st["result"]["status"], "cancelled")
        _, _, resp = self.server.call("training.cancel", {"job_id": job})
        self.assertEqual(resp["error"]["code"], -40003)
        _, _, resp = self.server.call("training.cancel", {"job_id": UNKNOWN})
        self.assertEqual(resp["error"]["code"], -32001)


class DurabilityTest(ServerTest):
    def test_kill9_loses_no_committed_job(self):
        jobs = []
        for i in range(5):
            _, _, resp = self.server.call("training.start_grpo", start_params())
            jobs.append(resp["result"]["job_id"])
        _, _, resp = self.server.call("training.cancel", {"job_id": jobs[0]})
        self.assertEqual(resp["result"]["status"], "cancelled")
        self.server.kill9()
        self.server.start()
        for i, job in enumerate(jobs):
            _, _, resp = self.server.call("training.get_status", {"job_id": job})
            # the workers may have started them meanwhile; none is lost, the cancelled one stays so
            if i == 0:
                self.assertEqual(resp["result"]["status"], "cancelled", resp)
            else:
                self.assertIn(resp["result"]["status"], ("queued", "running", "completed"), resp)

    def test_sigterm_stops_cleanly(self):
        server = Server()
        try:
            _, _, resp = server.call("training.start_grpo", start_params())
            job = resp["result"]["job_id"]
            self.assertEqual(server.stop(), 0)
            self.assertIn("stopped", server.stderr())
            server.start()
            _, _, resp = server.call("training.get_status", {"job_id": job})
            self.assertIn(resp["result"]["status"], ("queued", "running", "completed"))
        finally:
            server.close()


BROKEN_VALIDATOR = """return { name = "broken", version = "1",
  validate = function(training)
    local function check(q)
      error("deliberately broken validator")
    end
    local problems = check(training[1])
    return problems
  end }
"""


class InternalErrorTest(unittest.TestCase):
    def broken_server(self, extra=""):
        """A server whose agent "calc-broken" has a validator that raises; stopped at the end."""
        plugins = tempfile.mkdtemp(prefix="ac-plugins-")
        self.addCleanup(shutil.rmtree, plugins, ignore_errors=True)
        for kind in ("agents", "rewards", "validators", "webhooks"):
            shutil.copytree(os.path.join(SRC, "plugins", kind), os.path.join(plugins, kind))
        with open(os.path.join(plugins, "validators", "broken.lua"), "w") as f:
            f.write(BROKEN_VALIDATOR)
        server = Server('return { plugins_dir = "%s", agents = { ["calc-broken"] = { agent = "calculator", '
                        'validator = "broken" } } %s }' % (plugins, extra))
        self.addCleanup(server.close)
        return server

    def test_store_failure_is_internal_error(self):
        with Server(env={"AGENTCORE_FAULT": "store.write"}) as server:
            status, _, resp = server.call("training.start_grpo", start_params())
            self.assertEqual(status, 200)
            self.assertEqual(resp["error"]["code"], -32603, resp)
            self.assertEqual(resp["error"]["message"], "Internal error", resp)
            self.assertIn("store", resp["error"]["data"]["error"])
            ref = resp["error"]["data"]["ref"]
            self.assertIn(f"ref={ref}", server.stderr())
            _, _, resp = server.call("training.get_status", {"job_id": UNKNOWN})
            self.assertEqual(resp["error"]["code"], -32001)  # reads still work

    def test_plugin_failure_keeps_paths_and_traceback_in_the_log(self):
        server = self.broken_server()
        status, _, resp = server.call("training.start_grpo", start_params(agent_id="calc-broken"))
        self.assertEqual(status, 200)
        err = resp["error"]
        self.assertEqual((err["code"], err["message"]), (-32603, "Internal error"), resp)
        self.assertEqual(set(err["data"]), {"error", "ref"}, resp)
        self.assertIn("deliberately broken validator", err["data"]["error"])
        text = json.dumps(resp)
        for leak in ("plugins/", "/validators/", "traceback", "stack traceback", "in function", SRC.rstrip("/")):
            self.assertNotIn(leak, text, resp)
        # the operator's side: the whole message, the file path and the traceback, under that ref
        log = server.stderr()
        lines = [l for l in log.splitlines() if "ref=" + err["data"]["ref"] in l]
        self.assertEqual(len(lines), 1, log)
        self.assertIn("plugins/validators/broken.lua:4: deliberately broken validator", lines[0])
        after = log[log.index(lines[0]):]
        self.assertIn("stack traceback:", after)
        self.assertIn("broken.lua:6:", after)  # the caller's line too

    def test_expose_internal_restores_the_detail(self):
        server = self.broken_server(", errors = { expose_internal = true }")
        _, _, resp = server.call("training.start_grpo", start_params(agent_id="calc-broken"))
        err = resp["error"]
        self.assertEqual(err["code"], -32603, resp)
        self.assertIn("plugins/validators/broken.lua:4: deliberately broken validator", err["message"])
        self.assertIn("stack traceback:", err["data"]["traceback"])
        self.assertIn("ref=" + err["data"]["ref"], server.stderr())


if __name__ == "__main__":
    main()
