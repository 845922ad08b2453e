"""`agentcore train EXPERIMENT.lua`: the calculator experiment must lift held-out success from
<= 30 % (untrained) to >= 20 %, well above the random policy's, with p < 0.001 in under 90 s per
seed, over three seeds; reports (per seed, mean, interval, random baseline, selection on
validation), CSV with the validation curve, the same seed giving the same result, sweeps picked on
validation, and bad experiment files.

(Calculator v1, whose policy chose tools only, went to >= 90 % in about 3 s per seed, and the test
ran five seeds in under 60 s each. With v2 the policy also picks every operand and the answer among
the numbers it has seen: examples/calculator/experiment.lua cut to 200 iterations of the bag policy,
measured 0.28-0.36 held-out success on seeds 1-5 (mean 0.31, random 0.03-0.06) in 14-34 s per seed
on the 2 shared cores, 76 s when the whole suite ran beside it; about 0.3-0.5 after 1000
iterations.)"""
import csv
import json
import os
import re
import subprocess
import unittest

from harness import BIN, SRC, main, temp_dir



def under_asan():
    """ASan + UBSan builds (tests/run_all.sh runs the suite again so) train several times slower."""
    r = subprocess.run(["ldd", BIN], capture_output=True, text=True)
    return "libasan" in r.stdout


ASAN = under_asan()
SEED_WALL_MS = 90000  # per seed, not asserted under ASan


def train(*args, timeout=300):
    return subprocess.run([BIN, "train", *args], capture_output=True, timeout=timeout * (4 if ASAN else 1), cwd=SRC)


def small_experiment(case, n_iterations=20):
    """A copy of the calculator experiment with its generator, cut to n_iterations: for what does
    not need the whole run."""
    d = temp_dir(case, "ac-exp-")
    with open(os.path.join(SRC, "examples/calculator/experiment.lua")) as f:
        text = f.read()
    cut, n = re.subn(r"n_iterations = \d+,", "n_iterations = %d," % n_iterations, text)
    assert n == 1, "examples/calculator/experiment.lua changed: update this test"
    with open(os.path.join(d, "experiment.lua"), "w") as f:
        f.write(cut)
    with open(os.path.join(SRC, "examples/calculator/data.lua")) as src, open(os.path.join(d, "data.lua"), "w") as f:
        f.write(src.read())
    return os.path.join(d, "experiment.lua")


class CalculatorExperimentTest(unittest.TestCase):
    def test_calculator_learns(self):
        """Three seeds: each lifts held-out success; the report has per-seed results, the mean and a
        95 % interval; the CSV has a validation row every eval_interval iterations."""
        out = temp_dir(self, "ac-exp-")
        r = train(small_experiment(self, 200), "--seeds", "3", "--json", "--out", out)
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
            if not ASAN:
                self.assertLess(s["wall_ms"], SEED_WALL_MS)
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

    def test_same_seed_same_result(self):
        path, outs = small_experiment(self), [temp_dir(self), temp_dir(self)]
        a = train(path, "--json", "--seed", "3", "--out", outs[0])
        b = train(path, "--json", "--seed", "3", "--out", outs[1])
        self.assertEqual((a.returncode, b.returncode), (0, 0), a.stderr.decode() + b.stderr.decode())
        ra = json.loads(a.stdout.decode().splitlines()[-1])
        rb = json.loads(b.stdout.decode().splitlines()[-1])
        self.assertEqual(ra["trained"], rb["trained"])
        self.assertEqual(ra["final_iteration"], rb["final_iteration"])
        # and every iteration on the way (all but the wall clock)
        curves = []
        for out in outs:
            with open(os.path.join(out, "metrics.csv")) as f:
                curves.append([{k: v for k, v in row.items() if k != "wall_ms"} for row in csv.DictReader(f)])
        self.assertEqual(len(curves[0]), 21)
        self.assertEqual(curves[0], curves[1])


class OtherAgentsTest(unittest.TestCase):
    def test_inventory_learns(self):
        """The inventory agent as shipped (300 iterations): it must read check_stock's result to
        choose between order and back_order. (support needs 600 iterations, about 6 minutes on
        two busy cores: bench/learning.sh runs it, with every agent.)"""
        for name in ("inventory",):
            r = train(f"examples/{name}/experiment.lua", "--json", "--out", temp_dir(self))
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            report = json.loads(r.stdout.decode().splitlines()[-1])
            self.assertGreater(report["trained"]["success_rate"], report["baseline"]["success_rate"] + 0.3, name)
            self.assertLess(report["p_value"], 0.001, name)


class ExperimentFileTest(unittest.TestCase):
    def write(self, text):
        d = temp_dir(self, "ac-exp-")
        with open(os.path.join(d, "exp.lua"), "w") as f:
            f.write(text)
        with open(os.path.join(d, "data.lua"), "w") as f:
            with open(os.path.join(SRC, "examples/calculator/data.lua")) as src:
                f.write(src.read())
        return d, os.path.join(d, "exp.lua")

    def test_sweep_runs_side_by_side(self):
        d, path = self.write('return { agent = "calculator", data = { generator = "data.lua" },\n'
                             '  config = { n_iterations = 3, batch_size = 4, n_trajectories_per_query = 4 },\n'
                             '  sweep = { learning_rate = { 0.0001, 0.0003 }, beta = { 0.0, 0.04 } } }\n')
        r = train(path, "--json", "--out", os.path.join(d, "out"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        report = json.loads(r.stdout.decode().splitlines()[-1])
        runs = report["runs"]
        self.assertEqual(len(runs), 4)
        self.assertEqual(sorted((x["config"]["learning_rate"], x["config"]["beta"]) for x in runs),
                         [(0.0001, 0.0), (0.0001, 0.04), (0.0003, 0.0), (0.0003, 0.04)])
        # the winner is the best on validation; every run reports its evaluation result
        self.assertEqual(report["sweep_selected_by"], "mean validation success")
        best = max(runs, key=lambda x: x["mean"]["validation_success_rate"]["mean"])
        self.assertEqual(report["mean"]["validation_success_rate"]["mean"],
                         best["mean"]["validation_success_rate"]["mean"])
        for x in runs:
            self.assertIn("trained_success_rate", x["mean"])
        with open(os.path.join(d, "out", "metrics.csv")) as f:
            self.assertEqual(len({row["run"] for row in csv.DictReader(f)}), 4)

    def test_evaluation_data_chooses_nothing(self):
        """Scrambling the evaluation data's expected answers changes what is reported on it, never
        what is selected: the same checkpoint iteration, the same sweep winner, the same validation."""
        d = temp_dir(self, "ac-exp-")
        gen = subprocess.run(["lua5.4", "examples/gen_data.lua", "calculator", "7"], capture_output=True, check=True,
                             cwd=SRC)
        data = json.loads(gen.stdout)
        scrambled = [dict(q, expected_outcome={"answer": -1}) for q in data["evaluation_data"]]
        for name, value in (("train.json", data["training_data"]), ("eval.json", data["evaluation_data"]),
                            ("eval_scrambled.json", scrambled)):
            with open(os.path.join(d, name), "w") as f:
                json.dump(value, f)
        reports = []
        for ev in ("eval.json", "eval_scrambled.json"):
            path = os.path.join(d, "exp_" + ev + ".lua")
            with open(path, "w") as f:
                f.write('return { agent = "calculator", data = { training = "train.json", evaluation = "%s" },\n'
                        '  config = { n_iterations = 30, max_steps_per_trajectory = 8 },\n'
                        '  sweep = { learning_rate = { 0.00003, 0.0001 } } }\n' % ev)
            r = train(path, "--json", "--out", os.path.join(d, "out_" + ev))
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            reports.append(json.loads(r.stdout.decode().splitlines()[-1]))
        a, b = reports
        self.assertEqual(a["selected"], b["selected"])
        self.assertEqual(a["config"], b["config"])
        self.assertEqual([x["mean"]["validation_success_rate"] for x in a["runs"]],
                         [x["mean"]["validation_success_rate"] for x in b["runs"]])
        self.assertGreater(a["trained"]["success_rate"], 0)
        self.assertEqual(b["trained"]["success_rate"], 0)  # nothing answers -1

    def test_bad_experiment_files(self):
        cases = [('return { agent = "calculator", data = { generator = "data.lua" }, bogus = 1 }', "bogus"),
                 ('return { data = { generator = "data.lua" } }', "'agent'"),
                 ('return { agent = "calculator", data = { generator = "data.lua" },\n'
                  '  config = { n_iterations = 0 } }', "config.n_iterations"),
                 ('return { agent = "nope", data = { generator = "data.lua" } }', "nope"),
                 ('return { agent = "calculator", data = { generator = "missing.lua" } }', "missing.lua"),
                 ('return { agent = "calculator",\n  data = { generator = "data.lua" } +\n}', "exp.lua:3:"),
                 # the keys of the file's table (core/engine/experiment.c), data's included
                 ('return { agent = "calculator", data = { generator = "data.lua", n_trian = 50 } }',
                  "unknown key 'data.n_trian'"),
                 ('return { agent = "calculator", data = { generator = "data.lua", n_train = 0 } }',
                  "'data.n_train' must be an integer from 1 to 1000000"),
                 ('return { agent = "calculator", name = 5, data = { generator = "data.lua" } }',
                  "'name' must be a string"),
                 ('return { agent = "calculator", seeds = 0, data = { generator = "data.lua" } }',
                  "'seeds' must be an integer from 1 to 64"),
                 ('return { agent = "calculator", data = "data.lua" }', "'data' must be a table"),
                 ('return { agent = "calculator", data = { generator = "data.lua" }, sweep = { 1, 2 } }',
                  "'sweep' must map config keys to lists of values")]
        for text, needle in cases:
            d, path = self.write(text)
            r = train(path, "--out", os.path.join(d, "out"))
            self.assertEqual(r.returncode, 1, text)
            self.assertIn(needle, r.stderr.decode(), text)


if __name__ == "__main__":
    main()
