"""`agentcore train EXPERIMENT.lua`: the calculator experiment must lift held-out success from
<= 30 % to >= 90 % with p < 0.001 in under 60 s; reports, CSV, sweeps and bad experiment files."""
import csv
import json
import os
import subprocess
import unittest

from harness import BIN, SRC, main, temp_dir


def train(*args, timeout=300):
    return subprocess.run([BIN, "train", *args], capture_output=True, timeout=timeout, cwd=SRC)


class CalculatorExperimentTest(unittest.TestCase):
    def test_calculator_learns(self):
        out = temp_dir(self, "ac-exp-")
        r = train("examples/calculator/experiment.lua", "--json", "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        report = json.loads(r.stdout.decode().strip().splitlines()[-1])  # the last line is the report
        for side in ("baseline", "trained"):
            for key in ("success_rate", "avg_reward", "avg_steps", "tool_accuracy"):
                self.assertIsInstance(report[side][key], float, (side, key))
        self.assertLessEqual(report["baseline"]["success_rate"], 0.30, report["baseline"])
        self.assertGreaterEqual(report["trained"]["success_rate"], 0.90, report["trained"])
        self.assertLess(report["p_value"], 0.001)
        self.assertLess(report["wall_ms"], 60000)
        self.assertGreater(report["iterations"], 0)
        self.assertEqual(report["trajectories"], report["iterations"] * 16 * 8)
        lo, hi = report["trained"]["success_rate_ci95"]
        self.assertTrue(lo <= report["trained"]["success_rate"] <= hi)
        self.assertIn("sign-flip", report["reward_test"])
        self.assertLess(report["p_value_reward"], 0.001)
        with open(os.path.join(out, "report.json")) as f:
            self.assertEqual(json.load(f)["trained"], report["trained"])
        with open(os.path.join(out, "metrics.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), report["iterations"])
        for key in ("loss", "avg_reward", "reward_std", "kl", "clip_fraction", "entropy", "zero_var_frac",
                    "trajectories", "cost_usd", "wall_ms"):
            self.assertIn(key, rows[0])
        self.assertGreater(float(rows[-1]["avg_reward"]), float(rows[0]["avg_reward"]))

    def test_same_seed_same_result(self):
        a = train("examples/calculator/experiment.lua", "--json", "--seed", "3", "--out", temp_dir(self))
        b = train("examples/calculator/experiment.lua", "--json", "--seed", "3", "--out", temp_dir(self))
        ra = json.loads(a.stdout.decode().splitlines()[-1])
        rb = json.loads(b.stdout.decode().splitlines()[-1])
        self.assertEqual(ra["trained"], rb["trained"])
        self.assertEqual(ra["final_iteration"], rb["final_iteration"])


class OtherAgentsTest(unittest.TestCase):
    def test_codegen_and_support_learn(self):
        for name in ("codegen", "support"):
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
            f.write(open(os.path.join(SRC, "examples/calculator/data.lua")).read())
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
        with open(os.path.join(d, "out", "metrics.csv")) as f:
            self.assertEqual(len({row["run"] for row in csv.DictReader(f)}), 4)

    def test_bad_experiment_files(self):
        cases = [('return { agent = "calculator", data = { generator = "data.lua" }, bogus = 1 }', "bogus"),
                 ('return { data = { generator = "data.lua" } }', "'agent'"),
                 ('return { agent = "calculator", data = { generator = "data.lua" },\n'
                  '  config = { n_iterations = 0 } }', "config.n_iterations"),
                 ('return { agent = "nope", data = { generator = "data.lua" } }', "nope"),
                 ('return { agent = "calculator", data = { generator = "missing.lua" } }', "missing.lua"),
                 ('return { agent = "calculator",\n  data = { generator = "data.lua" } +\n}', "exp.lua:3:")]
        for text, needle in cases:
            d, path = self.write(text)
            r = train(path, "--out", os.path.join(d, "out"))
            self.assertEqual(r.returncode, 1, text)
            self.assertIn(needle, r.stderr.decode(), text)


if __name__ == "__main__":
    main()
