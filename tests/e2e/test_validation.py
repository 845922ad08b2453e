"""Three splits and reproducibility in the service: validation (given or held out of the training
data) chooses the best checkpoint and the evaluation data never does; the learning curve through
training.get_metrics; a job without a seed draws one, shows it and can be run again exactly; a
stochastic agent (ctx.rng) resumed after kill -9 ends as if never interrupted."""
import os

from harness import Server, ServerTest, claims, make_jwt, main, temp_dir
from test_training import DATA, final, job_params, wait

DICE = '''-- A stochastic environment: a coin tossed with the episode's generator; the agent must call it.
local agent = { name = "dice", version = "1", max_steps = 2,
  tools = { { name = "heads", cost_usd = 0 }, { name = "tails", cost_usd = 0 } } }
function agent.init(query, ctx)
  return { coin = ctx.rng.int(0, 1) == 1 and "heads" or "tails", noise = math.random(1, 1000000) }
end
function agent.observe(s) return "the coin shows " .. s.coin end
function agent.legal(s) return { "heads", "tails" } end
function agent.step(s, tool, args)
  local work = 0  -- a tool that takes a few milliseconds, so the test can kill the job mid-run
  for i = 1, 300000 do work = work + i % 7 end
  s.call = tool
  return { call = tool, coin = s.coin, noise = s.noise, work = work }, true
end
function agent.final(s) return { correct = s.call == s.coin } end
return agent
'''
DICE_REWARD = '''return { name = "dice", version = "1", range = { 0, 1 },
  score = function(t, expected) return t.final.correct and 1 or 0 end }
'''
TOSSES = [{"query": f"toss number {i}", "expected_outcome": {}} for i in range(120)]
HELD_OUT_TOSSES = [{"query": f"held-out toss {i}", "expected_outcome": {}} for i in range(20)]


def dice_plugins(test):
    d = temp_dir(test, "ac-dice-")
    os.makedirs(os.path.join(d, "agents"))
    os.makedirs(os.path.join(d, "rewards"))
    with open(os.path.join(d, "agents", "dice.lua"), "w") as f:
        f.write(DICE)
    with open(os.path.join(d, "rewards", "dice.lua"), "w") as f:
        f.write(DICE_REWARD)
    return d


def export_all(server, job, token=None):
    return server.result("training.export_trajectories", {"job_id": job, "limit": 10000}, token)


def fingerprint(ex):
    return [(t["trajectory_id"], t["reward"], [(s["state"]["context"], s["action"], s["result"]) for s in t["steps"]])
            for t in ex["trajectories"]]


class CurveAndSeedTest(ServerTest):
    CONFIG = ("return { rate_limits = { export_trajectories = { limit = 1000 }, evaluate = { limit = 100 },"
              " other = { limit = 10000 }, get_status = { limit = 10000 } } }")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        p = job_params(n_iterations=20, eval_interval=5)
        del p["config"]["seed"]
        cls.job = cls.server.result("training.start_grpo", p)["job_id"]
        cls.status = wait(cls.server, cls.job, final)

    def test_a_job_without_a_seed_draws_one_and_runs_again_exactly(self):
        seed = self.status["seed"]
        self.assertIsInstance(seed, int)
        self.assertGreater(seed, 0)
        again = self.server.result("training.start_grpo", job_params(n_iterations=20, eval_interval=5, seed=seed))
        st = wait(self.server, again["job_id"], final)
        self.assertEqual(st["seed"], seed)
        a, b = export_all(self.server, self.job), export_all(self.server, again["job_id"])
        self.assertEqual([t["reward"] for t in a["trajectories"]], [t["reward"] for t in b["trajectories"]])
        self.assertEqual([[s["action"] for s in t["steps"]] for t in a["trajectories"]],
                         [[s["action"] for s in t["steps"]] for t in b["trajectories"]])
        for key in ("train_loss", "avg_reward", "validation_accuracy"):
            self.assertEqual(self.status["metrics"][key], st["metrics"][key], key)

    def test_learning_curve(self):
        r = self.server.result("training.get_metrics", {"job_id": self.job})
        rows = r["metrics"]
        self.assertEqual([x["iteration"] for x in rows], list(range(0, 21)))
        self.assertFalse(r["has_more"])
        validated = [x["iteration"] for x in rows if "validation_accuracy" in x]
        self.assertEqual(validated, [0, 5, 10, 15, 20])  # the untrained policy, then every eval_interval
        for x in rows[1:]:
            for key in ("train_loss", "avg_reward", "success_rate", "kl", "entropy", "clip_fraction", "clip_low",
                        "clip_high", "grad_norm", "cost_usd"):
                self.assertIn(key, x)
        # the last validation point is what get_status shows
        self.assertEqual(rows[-1]["validation_accuracy"], self.status["metrics"]["validation_accuracy"])
        # paging
        page = self.server.result("training.get_metrics", {"job_id": self.job, "from_iteration": 3, "limit": 5})
        self.assertEqual([x["iteration"] for x in page["metrics"]], [3, 4, 5, 6, 7])
        self.assertEqual((page["has_more"], page["next_from_iteration"]), (True, 8))
        # events: one training.validation per point after the start
        ev = self.server.result("training.list_events", {"job_id": self.job, "limit": 1000})["events"]
        self.assertEqual([e["data"]["iteration"] for e in ev if e["event"] == "training.validation"], [5, 10, 15, 20])
        # tenancy and errors
        _, _, resp = self.server.call("training.get_metrics", {"job_id": self.job}, make_jwt(claims("mallory")))
        self.assertEqual(resp["error"]["code"], -32001)
        _, _, resp = self.server.call("training.get_metrics", {"job_id": self.job, "limit": 0})
        self.assertEqual((resp["error"]["code"], resp["error"]["data"]["field"]), (-32602, "limit"))

    def test_evaluate_says_which_checkpoint_and_why(self):
        r = self.server.result("training.evaluate", {"job_id": self.job})
        self.assertEqual(r["selected_by"], "validation")
        self.assertEqual(r["checkpoint_id"], self.status["best_checkpoint_id"])
        cks = self.server.result("training.list_checkpoints", {"job_id": self.job})["checkpoints"]
        best = max(cks, key=lambda c: (c["validation_accuracy"], c["iteration"]))
        self.assertEqual(r["checkpoint_iteration"], best["iteration"])
        given = cks[0]["checkpoint_id"]
        r = self.server.result("training.evaluate", {"job_id": self.job, "checkpoint_id": given})
        self.assertEqual((r["selected_by"], r["checkpoint_id"]), ("given", given))


class EvaluationChoosesNothingTest(ServerTest):
    CONFIG = "return { workers = 2, rate_limits = { get_status = { limit = 10000 }, other = { limit = 10000 } } }"

    def test_scrambled_evaluation_labels_choose_the_same_checkpoint(self):
        """Without validation_data the job holds some of its training data out; the evaluation
        data (here with every expected answer wrong) never influences which checkpoint is best."""
        jobs = []
        for scramble in (False, True):
            p = job_params(n_iterations=30, checkpoint_interval=5, eval_interval=5)
            if scramble:
                p["evaluation_data"] = [dict(q, expected_outcome={"answer": 987654321.5}) for q in p["evaluation_data"]]
            jobs.append(self.server.result("training.start_grpo", p)["job_id"])
        sts = [wait(self.server, j, final) for j in jobs]
        for st in sts:
            self.assertEqual(st["status"], "completed", st)
        cks = [self.server.result("training.list_checkpoints", {"job_id": j})["checkpoints"] for j in jobs]
        self.assertEqual([(c["iteration"], c["validation_accuracy"], c["is_best"]) for c in cks[0]],
                         [(c["iteration"], c["validation_accuracy"], c["is_best"]) for c in cks[1]])
        best = [next(c["iteration"] for c in x if c["is_best"]) for x in cks]
        self.assertEqual(best[0], best[1])
        # what is reported does differ: nothing answers 987654321.5
        ev = [self.server.result("training.evaluate", {"job_id": j}) for j in jobs]
        self.assertEqual(ev[0]["checkpoint_iteration"], ev[1]["checkpoint_iteration"])
        self.assertEqual(ev[1]["metrics"]["success_rate"], 0.0)

    def test_given_validation_data_is_used(self):
        p = job_params(n_iterations=10, checkpoint_interval=5)
        p["validation_data"] = DATA["evaluation_data"][:30]
        p["evaluation_data"] = DATA["evaluation_data"][30:]
        job = self.server.result("training.start_grpo", p)["job_id"]
        self.assertEqual(wait(self.server, job, final)["status"], "completed")
        rows = self.server.result("training.get_metrics", {"job_id": job})["metrics"]
        ev = self.server.result("training.list_events", {"job_id": job, "limit": 1000})["events"]
        self.assertEqual([e["data"]["queries"] for e in ev if e["event"] == "training.validation"], [30])
        self.assertIn("validation_accuracy", rows[0])
        # a bad validation set is refused like bad data
        p["validation_data"] = [{"query": ""}]
        _, _, resp = self.server.call("training.start_grpo", p)
        self.assertEqual(resp["error"]["code"], -40002, resp)
        self.assertTrue(resp["error"]["data"]["field"].startswith("validation_data[0]"), resp)


class StochasticResumeTest(ServerTest):
    def setUp(self):
        self.plugins = dice_plugins(self)
        self.config = ('return { workers = 1, plugins_dir = "%s", rate_limits = { export_trajectories = '
                       '{ limit = 1000 }, get_status = { limit = 10000 } } }' % self.plugins)

    def run_to_end(self, server, kill_at=None):
        p = {"agent_id": "dice", "training_data": TOSSES, "evaluation_data": HELD_OUT_TOSSES,
             "config": {"n_iterations": 30, "batch_size": 8, "n_trajectories_per_query": 4, "seed": 9,
                        "checkpoint_interval": 10}}
        job = server.result("training.start_grpo", p)["job_id"]
        if kill_at is not None:
            st = wait(server, job, lambda s: s["current_iteration"] >= kill_at)
            self.assertLess(st["current_iteration"], 30, "the job ended before the kill")
            server.kill9()
            server.start()
        st = wait(server, job, final)
        return st, export_all(server, job)

    def test_kill9_with_a_stochastic_agent(self):
        with Server(self.config) as server:
            crashed, crashed_ex = self.run_to_end(server, kill_at=5)
        with Server(self.config) as server:
            clean, clean_ex = self.run_to_end(server)
        self.assertEqual((crashed["status"], clean["status"]), ("completed", "completed"))
        self.assertEqual(crashed_ex["total_count"], 30 * 32)
        # the environment really is random: both sides of the coin, and noise that varies
        coins = {s["result"]["coin"] for t in clean_ex["trajectories"] for s in t["steps"]}
        self.assertEqual(coins, {"heads", "tails"})
        self.assertGreater(len({s["result"]["noise"] for t in clean_ex["trajectories"] for s in t["steps"]}), 100)
        # and the resumed run drew exactly the same numbers
        self.assertEqual(fingerprint(crashed_ex), fingerprint(clean_ex))
        for key in ("train_loss", "avg_reward", "validation_accuracy"):
            self.assertEqual(crashed["metrics"][key], clean["metrics"][key], key)


if __name__ == "__main__":
    main()
