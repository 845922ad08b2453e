"""`agentcore train EXPERIMENT.lua` learns: the calculator experiment (cut to 200 iterations) must
lift held-out success from <= 30 % (untrained) to >= 20 %, well above the random policy's, with
p < 0.001, over three seeds, with its report (per seed, mean, interval, random baseline, selection
on validation) and the CSV of the validation curve; the inventory agent as shipped must learn to
read a tool's result.

(Calculator v1, whose policy chose tools only, went to >= 90 % in about 3 s per seed. With v2 the
policy also picks every operand and the answer among the numbers it has seen: 200 iterations of
the bag policy measured 0.28-0.36 held-out success on seeds 1-5 (mean 0.31, random 0.03-0.06) in
14-34 s per seed on the 2 shared cores; bench/learning.sh has the whole runs. How fast it trains
is measured there, not asserted here.)

Skipped under ASan+UBSan (several times slower there; the training code runs under the
sanitizers in unit_trainer and in the short experiments of test_experiment.py)."""
import csv
import json
import os
import subprocess
import sys
import unittest

from harness import BIN, SANITIZED, SLOW, SRC, main, temp_dir
from test_experiment import small_experiment, train


@unittest.skipIf(SANITIZED, "learning runs are measured in the plain build")
class CalculatorLearnsTest(unittest.TestCase):
    def test_calculator_learns(self):
        """Three seeds: each lifts held-out success; the report has per-seed results, the mean and a
        95 % interval; the CSV has a validation row every eval_interval iterations."""
        out = temp_dir(self, "ac-exp-")
        r = train(small_experiment(self, 200), "--seeds", "3", "--json", "--out", out, timeout=1200)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        report = json.loads(r.stdout.decode().strip().splitlines()[-1])  # the last line is the report
        for side in ("baseline", "trained", "random"):
            for key in ("success_rate", "avg_reward", "avg_steps", "tool_accuracy"):
                self.assertIsInstance(report[side][key], float, (side, key))
        self.assertLessEqual(report["baseline"]["success_rate"], 0.30, report["baseline"])
        self.assertGreaterEqual(report["trained"]["success_rate"], 0.20, report["trained"])  # v1: 0.90
        self.assertLess(report["p_value"], 0.001)
        self.assertGreater(report["iterations"], 0)
        self.assertEqual(report["trajectories"], report["iterations"] * 16 * 8)
        lo, hi = report["trained"]["success_rate_ci95"]
        self.assertTrue(lo <= report["trained"]["success_rate"] <= hi)
        self.assertIn("sign-flip", report["reward_test"])
        self.assertLess(report["p_value_reward"], 0.001)
        # selected on validation, never on the evaluation data
        self.assertEqual(report["selected"]["by"], "validation")
        self.assertGreater(report["selected"]["validation_queries"], 0)
        # three seeds, side by side, and their mean with an interval
        seeds = report["seeds"]
        self.assertEqual([s["seed"] for s in seeds], [1, 2, 3])
        self.assertEqual(seeds[0]["trained"], report["trained"])
        for s in seeds:
            self.assertGreater(s["wall_ms"], 0)
            self.assertGreater(s["trained"]["success_rate"], s["random"]["success_rate"] + 0.15, s)  # v1: + 0.5
        m = report["mean"]["trained_success_rate"]
        rates = [s["trained"]["success_rate"] for s in seeds]
        self.assertAlmostEqual(m["mean"], sum(rates) / 3)
        self.assertLessEqual(m["ci95"][0], m["mean"])
        self.assertGreaterEqual(m["ci95"][1], m["mean"])
        self.assertGreaterEqual(m["mean"], 0.20, report["mean"])  # v1: 0.90
        self.assertGreater(m["ci95"][0], report["mean"]["random_success_rate"]["ci95"][1], report["mean"])
        for key in ("baseline_success_rate", "random_success_rate", "validation_success_rate"):
            self.assertIn("ci95", report["mean"][key])
        with open(os.path.join(out, "report.json")) as f:
            self.assertEqual(json.load(f)["trained"], report["trained"])
        with open(os.path.join(out, "metrics.csv")) as f:
            rows = [row for row in csv.DictReader(f) if row["seed"] == "1"]
        self.assertEqual(len(rows), report["iterations"] + 1)  # iteration 0: the untrained policy
        for key in ("loss", "avg_reward", "reward_std", "kl", "clip_fraction", "clip_low", "clip_high", "entropy",
                    "zero_var_frac", "trajectories", "cost_usd", "wall_ms", "validation_success"):
            self.assertIn(key, rows[0])
        validated = [int(row["iteration"]) for row in rows if row["validation_success"] != ""]
        interval = report["config"]["eval_interval"]
        self.assertEqual(validated, list(range(0, report["iterations"] + 1, interval)))
        self.assertGreater(float(rows[-1]["avg_reward"]), float(rows[1]["avg_reward"]))
        self.assertGreater(float(rows[-1]["validation_success"]), float(rows[0]["validation_success"]))



@unittest.skipIf(SANITIZED, "learning runs are measured in the plain build")
class OtherAgentsTest(unittest.TestCase):
    def test_inventory_learns(self):
        """The inventory agent as shipped (1000 iterations): it must read check_stock's result to
        choose between order and back_order. (support takes about 6 minutes on two busy cores:
        bench/learning.sh runs it, with every agent.)"""
        for name in ("inventory",):
            r = train(f"examples/{name}/experiment.lua", "--json", "--out", temp_dir(self), timeout=1200)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            report = json.loads(r.stdout.decode().splitlines()[-1])
            self.assertGreater(report["trained"]["success_rate"], report["baseline"]["success_rate"] + 0.3, name)
            self.assertLess(report["p_value"], 0.001, name)


class BlindControlTest(unittest.TestCase):
    """The control of the learning benchmark: the inventory agent blind to its tool results
    (examples/inventory/experiment_blind.lua), a few iterations in the real host, and its rows in
    bench/learning_table.py's table beside the real agent's. (Its whole run and figures are in
    bench/learning.md; that the blind agent's episodes score as the real agent's is
    spec/agents/inventory_blind_spec.lua.)"""

    def run_table(self, *runs):
        d = temp_dir(self, "ac-table-")
        md, out_csv = os.path.join(d, "learning.md"), os.path.join(d, "learning.csv")
        r = subprocess.run([sys.executable, os.path.join(SRC, "bench/learning_table.py"), "--md", md,
                            "--csv", out_csv, *runs], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        with open(md) as f, open(out_csv) as g:
            return f.read(), list(csv.DictReader(g))

    def test_blind_control_trains_and_is_the_control_row(self):
        outs = {}
        for name, path in (("inventory", "examples/inventory/experiment.lua"),
                           ("inventory-blind", "examples/inventory/experiment_blind.lua")):
            outs[name] = temp_dir(self)
            r = train(path, "--seeds", "2", "--set", "n_iterations=3", "--json", "--out", outs[name],
                      timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            report = json.loads(r.stdout.decode().splitlines()[-1])
            self.assertEqual(report["agent"], name.replace("-", "_"))
        # an episode of the trained blind policy in the host: no tool result reaches its context.
        # Sampled (seeds in turn) until one makes tool calls before it answers: a policy of three
        # iterations may answer at once when greedy.
        for seed in range(1, 41):
            r = subprocess.run([BIN, "run", "examples/inventory/experiment_blind.lua", "--checkpoint",
                                os.path.join(outs["inventory-blind"], "best.ckpt"), "--query",
                                "Order 3 kettles and 5 lamps.", "--expected",
                                '{"items":[{"item":"kettle","qty":3},{"item":"lamp","qty":5}],"min_steps":5}',
                                "--sample", "--seed", str(seed)],
                               capture_output=True, timeout=60 * SLOW, cwd=SRC)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            episode = json.loads(r.stdout.decode())
            if len(episode["steps"]) > 2:
                break
        self.assertGreater(len(episode["steps"]), 2)
        for step in episode["steps"]:
            self.assertEqual(step["result"], {}, step)
            for line in step["state"]["context"].splitlines():
                if line.startswith("result:"):
                    self.assertEqual(line, "result:", step)
        md, rows = self.run_table("inventory:bag:" + outs["inventory"],
                                  "inventory-blind:bag:" + outs["inventory-blind"])
        for split in ("test_iid", "test_templates", "test_compositions"):
            self.assertIn(f"| inventory | bag | {split} |", md)
            self.assertIn(f"| inventory (control: blind to tool results) | bag | {split} |", md)
        self.assertIn("`blind to tool results`: every tool call shows the policy an empty result", md)
        self.assertEqual([r["agent"] for r in rows], ["inventory"] * 3 + ["inventory-blind"] * 3)
        self.assertEqual({r["seeds"] for r in rows}, {"2"})
        # without a control, the table says nothing of controls
        md, _ = self.run_table("inventory:bag:" + outs["inventory"])
        self.assertNotIn("control", md)


if __name__ == "__main__":
    main()
