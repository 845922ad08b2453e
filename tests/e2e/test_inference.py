"""Using what was trained, end to end: agents.act answers the call the greedy evaluation made at
each step, agents.run replays a solved query, tenancy and permissions; the fine-tuning datasets
(jsonl, openai_chat); a checkpoint exported, imported into a fresh server (another data
directory) that evaluates it bit for bit the same, and a job started from it (init_checkpoint)
whose iteration-0 validation is the source checkpoint's."""
import base64
import json
import math
import os
import struct
import subprocess
import unittest
import zlib

from harness import ALL_PERMS, BIN, SRC, Server, ServerTest, claims, main, make_jwt, temp_dir
from test_training import DATA, FAST, final, wait

PERMS = ALL_PERMS + ",agents:invoke"
TOKEN = make_jwt(claims(perms=PERMS))
UNKNOWN = "550e8400-e29b-41d4-a716-446655440000"
CONFIG = ("return { rate_limits = { export_trajectories = { limit = 1000 }, evaluate = { limit = 100 },"
          " start_grpo = { limit = 100 } } }")


def short(queries):
    """Queries of one or two operations: 60 iterations solve about half of the held-out ones."""
    return [q for q in queries if len(q["expected_outcome"]["ops"]) <= 2]


TRAIN = short(DATA["training_data"])
EVAL = short(DATA["evaluation_data"])
VALID, TRAIN = TRAIN[:40], TRAIN[40:]  # given, so that a job started from a checkpoint validates on the same


def params(**config):
    cfg = dict(FAST, n_iterations=60, batch_size=16, n_trajectories_per_query=8, learning_rate=0.0003, beta=0.04,
               checkpoint_interval=20, eval_interval=20)
    cfg.update(config)
    return {"agent_id": "calculator", "config": cfg, "training_data": TRAIN, "evaluation_data": EVAL,
            "validation_data": VALID}


class InferenceTest(ServerTest):
    CONFIG = CONFIG

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.job = cls.server.result("training.start_grpo", params(), TOKEN)["job_id"]
        cls.status = wait(cls.server, cls.job, final, TOKEN, timeout=300)
        assert cls.status["status"] == "completed", cls.status
        cls.eval = cls.server.result("training.evaluate", {"job_id": cls.job, "include_trajectories": True}, TOKEN)

    def call(self, method, p, token=TOKEN):
        return self.server.call(method, p, token)[2]

    def test_evaluate_include_trajectories(self):
        trajs = self.eval["trajectories"]
        self.assertEqual(len(trajs), len(EVAL))
        self.assertEqual([t["query"] for t in trajs], [q["query"] for q in EVAL])
        solved = sum(t["success"] for t in trajs)
        self.assertEqual(solved / len(trajs), self.eval["metrics"]["success_rate"])
        self.assertGreater(solved, 0, self.eval["metrics"])

    def test_act_is_the_greedy_evaluation(self):
        """At every step of every evaluated episode, agents.act given the episode so far names the
        call the evaluation made (the tool and its arguments), with a log-probability <= 0 and its
        alternatives most probable first."""
        checked = 0
        for t in self.eval["trajectories"][:8]:
            history = []
            for step in t["steps"]:
                r = self.server.result("agents.act", {"job_id": self.job, "query": t["query"],
                                                      "history": history, "top_k": 3}, TOKEN)
                self.assertEqual((r["tool"], r["params"]), (step["action"]["tool"], step["action"]["params"]),
                                 (t["query"], history))
                self.assertEqual(r["checkpoint_id"], self.eval["checkpoint_id"])
                self.assertLessEqual(r["log_prob"], 0.0)
                alts = r["alternatives"]
                self.assertTrue(1 <= len(alts) <= 3, alts)
                self.assertEqual([a["p"] for a in alts], sorted([a["p"] for a in alts], reverse=True))
                self.assertLessEqual(sum(a["p"] for a in alts), 1 + 1e-9)
                # the greedy call takes each decision's best option: not always the likeliest whole
                # call, but when listed its probability is at least its path's
                same = [a for a in alts if (a["tool"], a["params"]) == (r["tool"], r["params"])]
                if same:
                    self.assertGreaterEqual(same[0]["p"], math.exp(r["log_prob"]) - 1e-9)
                history.append({"tool": step["action"]["tool"], "params": step["action"]["params"],
                                "result": step["result"]})
                checked += 1
        self.assertGreater(checked, 8)

    def test_act_by_checkpoint_and_sampled(self):
        t = self.eval["trajectories"][0]
        r = self.server.result("agents.act", {"checkpoint_id": self.eval["checkpoint_id"], "query": t["query"]},
                               TOKEN)
        self.assertEqual((r["tool"], r["params"], r["job_id"]),
                         (t["steps"][0]["action"]["tool"], t["steps"][0]["action"]["params"], self.job))
        a = self.server.result("agents.act", {"job_id": self.job, "query": t["query"], "greedy": False,
                                              "seed": 5}, TOKEN)
        b = self.server.result("agents.act", {"job_id": self.job, "query": t["query"], "greedy": False,
                                              "seed": 5}, TOKEN)
        self.assertEqual((a["tool"], a["params"], a["log_prob"]), (b["tool"], b["params"], b["log_prob"]))

    def test_run_replays_a_solved_query(self):
        i = next(i for i, t in enumerate(self.eval["trajectories"]) if t["success"])
        t = self.eval["trajectories"][i]
        r = self.server.result("agents.run", {"job_id": self.job, "query": EVAL[i]["query"],
                                              "expected_outcome": EVAL[i]["expected_outcome"]}, TOKEN)
        self.assertIs(r["success"], True, r)
        self.assertEqual(r["reward"], t["reward"])
        self.assertEqual([s["action"] for s in r["trajectory"]["steps"]], [s["action"] for s in t["steps"]])
        self.assertEqual(r["trajectory"]["final"], t["final"])
        self.assertGreater(r["cost_usd"], 0)
        # without expected_outcome: the same episode, not scored
        r2 = self.server.result("agents.run", {"job_id": self.job, "query": EVAL[i]["query"]}, TOKEN)
        self.assertIsNone(r2["reward"])
        self.assertEqual([s["action"] for s in r2["trajectory"]["steps"]], [s["action"] for s in t["steps"]])
        st = self.server.result("training.get_status", {"job_id": self.job}, TOKEN)
        self.assertGreater(st["inference_cost_usd"], 0)

    def test_tenancy_and_permissions(self):
        q = {"job_id": self.job, "query": "Take 3, add 4."}
        bob = make_jwt(claims(sub="bob", perms=PERMS))
        for method in ("agents.act", "agents.run"):
            self.assertError(self.call(method, q, bob), -32001, "job_id")
            self.assertError(self.call(method, {"checkpoint_id": self.eval["checkpoint_id"], "query": "x"}, bob),
                             -32001, "checkpoint_id")
            self.assertError(self.call(method, dict(q, job_id=UNKNOWN)), -32001, "job_id")
            resp = self.call(method, q, make_jwt(claims(perms=ALL_PERMS)))
            self.assertError(resp, -32003)
            self.assertEqual(resp["error"]["data"]["required"], "agents:invoke")
        self.assertError(self.call("training.export_checkpoint", {"job_id": self.job}, bob), -32001, "job_id")

    def test_bad_parameters(self):
        base = {"job_id": self.job, "query": "Take 3, add 4."}
        for p, field in ((dict(base, history=[{"tool": "fly"}]), "history[0].tool"),
                         (dict(base, history=[{"tool": "add", "params": 3}]), "history[0].params"),
                         (dict(base, legal=["nope"]), "legal[0]"),
                         (dict(base, query=""), "query"),
                         ({"query": "x"}, "job_id"),
                         (dict(base, checkpoint_id=UNKNOWN), "checkpoint_id")):
            resp = self.call("agents.act", p)
            self.assertIn(resp["error"]["code"], (-32602, -32001), resp)
            self.assertEqual(resp["error"]["data"]["field"], field, resp)

    def test_export_formats(self):
        base = {"job_id": self.job, "success_only": True, "limit": 5}
        plain = self.server.result("training.export_trajectories", base, TOKEN)
        lines = self.server.result("training.export_trajectories", dict(base, format="jsonl"), TOKEN)
        self.assertEqual([json.loads(x) for x in lines["jsonl"].splitlines()], plain["trajectories"])
        chat = self.server.result("training.export_trajectories", dict(base, format="openai_chat"), TOKEN)
        records = [json.loads(x) for x in chat["jsonl"].splitlines()]
        self.assertEqual(len(records), len(plain["trajectories"]))
        for rec, traj in zip(records, plain["trajectories"]):
            check_chat_record(self, rec, traj)
        self.assertError(self.call("training.export_trajectories", dict(base, format="csv")), -32602, "format")

    def test_export_import_evaluate_and_fine_tune(self):
        ck = self.server.result("training.export_checkpoint", {"job_id": self.job}, TOKEN)
        blob = base64.b64decode(ck["data"])
        self.assertEqual(len(blob), ck["bytes"])
        self.assertEqual((blob[:8], struct.unpack("<I", blob[8:12])[0]), (b"ACCKPT\r\n", ck["version"]))
        self.assertEqual("%08x" % zlib.crc32(blob[:-4]), ck["crc32"])
        self.assertEqual(struct.unpack("<I", blob[-4:])[0], zlib.crc32(blob[:-4]))
        self.assertEqual(ck["checkpoint_id"], self.status["best_checkpoint_id"])
        with Server(CONFIG) as other:
            imp = other.result("training.import_checkpoint", {"checkpoint": ck["data"]}, TOKEN)
            self.assertEqual((imp["status"], imp["agent_id"], imp["iteration"]),
                             ("completed", "calculator", ck["iteration"]))
            theirs = other.result("training.evaluate", {"job_id": imp["job_id"], "evaluation_queries": EVAL}, TOKEN)
            self.assertEqual(theirs["metrics"], self.eval["metrics"])
            self.assertEqual(theirs["baseline_comparison"], self.eval["baseline_comparison"])
            # the same file back out
            again = other.result("training.export_checkpoint", {"job_id": imp["job_id"]}, TOKEN)
            self.assertEqual(again["data"], ck["data"])
            # a damaged file is refused, naming it
            bad = bytearray(blob)
            bad[len(bad) // 2] ^= 1
            resp = other.call("training.import_checkpoint", {"checkpoint": base64.b64encode(bad).decode()},
                              TOKEN)[2]
            self.assertError(resp, -32602, "checkpoint")
            self.assertError(other.call("training.import_checkpoint", {"checkpoint": "not base64!"}, TOKEN)[2],
                             -32602, "checkpoint")
            # fine-tuning the imported policy: its iteration-0 validation is the source checkpoint's
            ft = other.result("training.start_grpo", dict(params(n_iterations=2, eval_interval=1,
                                                                 checkpoint_interval=1),
                                                          init_checkpoint=imp["checkpoint_id"]), TOKEN)["job_id"]
            st = wait(other, ft, final, TOKEN, timeout=300)
            self.assertEqual(st["status"], "completed", st)
            self.assertEqual(st["init_checkpoint_id"], imp["checkpoint_id"])
            rows = other.result("training.get_metrics", {"job_id": ft}, TOKEN)["metrics"]
            self.assertEqual(rows[0]["iteration"], 0)
            self.assertEqual(rows[0]["validation_accuracy"], ck["validation_accuracy"])
            # its untrained side, in evaluate, is the imported policy
            ev = other.result("training.evaluate", {"job_id": ft, "evaluation_queries": EVAL}, TOKEN)
            self.assertEqual(ev["baseline_comparison"]["baseline"]["success_rate"],
                             self.eval["metrics"]["success_rate"])
            self.assertEqual(ev["baseline_comparison"]["baseline"]["avg_reward"], self.eval["metrics"]["avg_reward"])
            # a shape field that contradicts the checkpoint, and a checkpoint of nobody's
            resp = other.call("training.start_grpo", dict(params(hidden_size=8), init_checkpoint=imp["checkpoint_id"]),
                              TOKEN)[2]
            self.assertError(resp, -32600, "config.hidden_size")
            resp = other.call("training.start_grpo", dict(params(), init_checkpoint=UNKNOWN), TOKEN)[2]
            self.assertError(resp, -32001, "init_checkpoint")


class CliTest(unittest.TestCase):
    """agentcore train --out leaves the selected policy's checkpoint; agentcore act and agentcore run
    use it offline, and a server that imports it answers the same."""

    @classmethod
    def setUpClass(cls):
        cls.out = temp_dir(cls)
        r = cls.cli("train", "examples/calculator/experiment.lua", "--set", "n_iterations=10", "--set",
                    "eval_interval=5", "--out", cls.out, "--json")
        assert r.returncode == 0, r.stderr
        cls.report = json.loads(r.stdout.splitlines()[-1])
        cls.ckpt = os.path.join(cls.out, "best.ckpt")

    @staticmethod
    def cli(*args):
        return subprocess.run([BIN, *args], capture_output=True, text=True, cwd=SRC, timeout=300)

    def test_train_out_leaves_the_checkpoints(self):
        self.assertEqual(self.report["best_checkpoint"], "best.ckpt")
        (seed,) = self.report["seeds"]  # one run of one seed: the report is that run's
        with open(self.ckpt, "rb") as a, open(os.path.join(self.out, seed["checkpoint"]), "rb") as b:
            blob = a.read()
            self.assertEqual(blob, b.read())
        self.assertEqual(blob[:8], b"ACCKPT\r\n")
        self.assertEqual(struct.unpack("<I", blob[-4:])[0], zlib.crc32(blob[:-4]))
        # the iteration validation selected (docs/checkpoints.md: the body's fields in order)
        off = 24 + 324
        (n,) = struct.unpack("<Q", blob[off:off + 8])
        off += 8 + 4 * n + 20 + 16 + 8 * n + 32
        self.assertEqual(struct.unpack("<Q", blob[off:off + 8])[0], seed["selected"]["iteration"])
        meta = json.loads(blob[off + 12:-4])
        self.assertEqual((meta["agent_id"], meta["agent"]["name"]), ("calculator", "calculator"))

    def test_act_and_run_offline_then_in_a_server(self):
        q = "Take 14, subtract 2."
        act = self.cli("act", self.ckpt, "--query", q, "--top-k", "2")
        self.assertEqual(act.returncode, 0, act.stderr)
        a = json.loads(act.stdout)
        run = self.cli("run", "examples/calculator/experiment.lua", "--checkpoint", self.ckpt, "--query", q,
                       "--expected", json.dumps({"ops": ["subtract"], "values": [12], "answer": 12}))
        self.assertEqual(run.returncode, 0, run.stderr)
        t = json.loads(run.stdout)
        self.assertEqual((t["steps"][0]["action"]["tool"], t["steps"][0]["action"]["params"]),
                         (a["tool"], a["params"]))
        self.assertIsInstance(t["reward"], float)
        # the next step, offline, is the run's second call
        if len(t["steps"]) > 1:
            h = [{"tool": s["action"]["tool"], "params": s["action"]["params"], "result": s["result"]}
                 for s in t["steps"][:1]]
            b = json.loads(self.cli("act", self.ckpt, "--query", q, "--history", json.dumps(h)).stdout)
            self.assertEqual((b["tool"], b["params"]), (t["steps"][1]["action"]["tool"],
                                                        t["steps"][1]["action"]["params"]))
        with open(self.ckpt, "rb") as f:
            data = base64.b64encode(f.read()).decode()
        with Server(CONFIG) as s:
            imp = s.result("training.import_checkpoint", {"checkpoint": data}, TOKEN)  # agent_id from the file
            r = s.result("agents.act", {"job_id": imp["job_id"], "query": q, "top_k": 2}, TOKEN)
        self.assertEqual((r["tool"], r["params"], r["alternatives"]), (a["tool"], a["params"], a["alternatives"]))
        self.assertAlmostEqual(r["log_prob"], a["log_prob"], places=12)

    def test_policy_cache_is_bounded_lru(self):
        """inference.cache_policies = 1: two checkpoints (the same file imported twice) take
        turns in the cache; GET /metrics counts the hits, misses and evictions."""
        with open(self.ckpt, "rb") as f:
            data = base64.b64encode(f.read()).decode()
        config = CONFIG[:-1] + ", inference = { cache_policies = 1 } }"
        with Server(config) as s:
            a = s.result("training.import_checkpoint", {"checkpoint": data}, TOKEN)["checkpoint_id"]
            b = s.result("training.import_checkpoint", {"checkpoint": data}, TOKEN)["checkpoint_id"]
            answers = [s.result("agents.act", {"checkpoint_id": c, "query": "Take 3, add 4."}, TOKEN)
                       for c in (a, a, b, a)]
            self.assertEqual(len({json.dumps([r["tool"], r["params"], r["log_prob"]]) for r in answers}), 1)
            self.assertEqual([r["checkpoint_id"] for r in answers], [a, a, b, a])
            _, _, body = s.request("GET", "/metrics", headers={
                "Authorization": "Bearer " + make_jwt(claims(perms="metrics:view"))})
        text = body.decode()
        for line in ('agentcore_policies_loaded 1', 'agentcore_policy_cache_total{result="hit"} 1',
                     'agentcore_policy_cache_total{result="miss"} 3',
                     'agentcore_policy_cache_total{result="evicted"} 2'):
            self.assertIn(line + "\n", text)

    def test_run_is_charged_within_the_budget(self):
        """agents.run reserves the episode's most (max_steps x (step cost + the dearest tool))
        against the principal's budget first: over it, -40001 and nothing charged; under it, the
        episode's cost lands in the job's inference_cost_usd."""
        with open(self.ckpt, "rb") as f:
            data = base64.b64encode(f.read()).decode()
        poor = make_jwt(claims(sub="poor", perms=PERMS))
        with Server(CONFIG[:-1] + ", budgets = { principals = { poor = 0.0005 } } }") as s:
            job = s.result("training.import_checkpoint", {"checkpoint": data}, poor)["job_id"]
            q = {"job_id": job, "query": "Take 3, add 4."}
            resp = s.call("agents.run", dict(q, max_steps=8), poor)[2]  # 8 x 0.00011 > 0.0005
            self.assertEqual((resp["error"]["code"], resp["error"]["data"]["field"]), (-40001, "budget"), resp)
            self.assertNotIn("inference_cost_usd", s.result("training.get_status", {"job_id": job}, poor))
            r = s.result("agents.run", dict(q, max_steps=2), poor)  # 2 x 0.00011 fits
            st = s.result("training.get_status", {"job_id": job}, poor)
        self.assertGreater(r["cost_usd"], 0)
        self.assertAlmostEqual(st["inference_cost_usd"], r["cost_usd"], places=9)

    def test_bad_use(self):
        r = self.cli("act", self.ckpt)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--query", r.stderr)
        r = self.cli("act", os.path.join(self.out, "metrics.csv"), "--query", "x")
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad magic", r.stderr)
        r = self.cli("act", self.ckpt, "--query", "x", "--history", '[{"tool": "fly"}]')
        self.assertEqual(r.returncode, 1)
        self.assertIn("history[0].tool", r.stderr)
        r = self.cli("run", "examples/calculator/experiment.lua", "--checkpoint", self.ckpt)
        self.assertEqual(r.returncode, 2)


def check_chat_record(case, rec, traj):
    """rec is traj as docs/api.md's openai_chat shape: system, user, then for each step an
    assistant message with one tool call and its tool message, then the final answer."""
    case.assertEqual(set(rec), {"messages", "tools"})
    names = [t["function"]["name"] for t in rec["tools"]]
    case.assertIn("add", names)
    for t in rec["tools"]:
        case.assertEqual(t["type"], "function")
        p = t["function"]["parameters"]
        case.assertEqual((p["type"], p["additionalProperties"]), ("object", False))
        case.assertEqual(set(p["required"]), set(p["properties"]))
    m = rec["messages"]
    case.assertEqual([x["role"] for x in m[:2]], ["system", "user"])
    case.assertEqual(m[1]["content"], traj["query"])
    body = m[2:-1] if m[-1]["role"] == "assistant" and "tool_calls" not in m[-1] else m[2:]
    case.assertEqual(len(body), 2 * len(traj["steps"]))
    for k, step in enumerate(traj["steps"]):
        call, result = body[2 * k], body[2 * k + 1]
        case.assertEqual(call["role"], "assistant")
        (tc,) = call["tool_calls"]
        case.assertEqual((tc["type"], tc["function"]["name"]), ("function", step["action"]["tool"]))
        case.assertEqual(json.loads(tc["function"]["arguments"]), step["action"]["params"])
        case.assertEqual((result["role"], result["tool_call_id"]), ("tool", tc["id"]))
        case.assertEqual(json.loads(result["content"]), step["result"])


if __name__ == "__main__":
    main()
