"""report.html of `agentcore train`, opened in a real browser (headless Chromium): a sweep of two
runs with two seeds each draws one SVG path per run and seed in every chart, each with one point
per metrics.csv row that has the value; the tables show the report's numbers; the page runs no
script and asks for nothing over the network; the experiment's name, markup included, is text.
A screenshot goes to <build>/screenshots/report.png."""
import csv
import json
import os
import subprocess
import unittest

import browser
from browser import screenshot
from harness import BIN, SRC, temp_dir

XSS = "<img src=x onerror=alert(1)>"
ITERATIONS, EVAL_INTERVAL = 12, 5


class ReportHtmlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = temp_dir(cls, "ac-report-")
        exp = os.path.join(cls.dir, "exp.lua")
        with open(exp, "w") as f:
            f.write(f"""return {{
  name = {json.dumps("calc " + XSS)}, agent = "calculator", seed = 3, seeds = 2,
  data = {{ generator = {json.dumps(os.path.join(SRC, "examples/calculator/data.lua"))}, n_train = 120, n_eval = 30 }},
  config = {{ n_iterations = {ITERATIONS}, batch_size = 8, n_trajectories_per_query = 4, beta = 0.0,
             max_steps_per_trajectory = 8, eval_interval = {EVAL_INTERVAL} }},
  sweep = {{ learning_rate = {{ 0.0001, 0.001 }} }},
}}""")
        cls.out = os.path.join(cls.dir, "out")
        r = subprocess.run([BIN, "train", exp, "--out", cls.out, "--json"], capture_output=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError("agentcore train failed: " + r.stderr.decode(errors="replace"))
        cls.report = json.loads(r.stdout.decode().splitlines()[-1])
        with open(os.path.join(cls.out, "metrics.csv"), newline="") as f:
            cls.rows = list(csv.DictReader(f))
        cls.driver = browser.start(cls)
        cls.driver.get("file://" + os.path.join(cls.out, "report.html"))

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def expected_points(self, run, seed, column):
        return sum(1 for r in self.rows if r["run"] == run and r["seed"] == str(seed) and r[column] != "")

    def test_curves_one_path_per_run_and_seed_with_every_point(self):
        paths = self.js("""return [...document.querySelectorAll('svg.plot path.series')].map(p => ({
            metric: p.dataset.metric, run: p.dataset.run, seed: Number(p.dataset.seed),
            points: (p.getAttribute('d').match(/[ML]/g) || []).length,
            length: p.getTotalLength(), box: p.getBBox().width}))""")
        runs = [r["run"] for r in self.report["runs"]]
        self.assertEqual(runs, ["learning_rate=0.0001", "learning_rate=0.001"])
        columns = {"avg_reward": "avg_reward", "success_rate": "success_rate", "validation_success": "validation_success",
                   "loss": "loss", "kl": "kl", "entropy": "entropy", "clip_fraction": "clip_fraction"}
        self.assertEqual({p["metric"] for p in paths}, set(columns))
        for metric, column in columns.items():
            mine = [p for p in paths if p["metric"] == metric]
            self.assertEqual(sorted((p["run"], p["seed"]) for p in mine), sorted((r, s) for r in runs for s in (3, 4)), metric)
            for p in mine:
                self.assertEqual(p["points"], self.expected_points(p["run"], p["seed"], column), (metric, p))
        reward = [p for p in paths if p["metric"] == "avg_reward"]
        self.assertTrue(all(p["points"] == ITERATIONS for p in reward))
        val = [p for p in paths if p["metric"] == "validation_success"]
        self.assertTrue(all(p["points"] == 1 + ITERATIONS // EVAL_INTERVAL + 1 for p in val), val)  # 0, 5, 10, 12
        # drawn: every path has a length on screen
        self.assertTrue(all(p["length"] > 0 and p["box"] > 0 for p in paths if p["metric"] != "clip_fraction"), paths)
        screenshot(self.driver, "report")

    def test_tables_hold_the_report(self):
        text = self.js("return document.body.innerText")
        t = self.report["trained"]
        lo, hi = t["success_rate_ci95"]
        self.assertIn(f"{t['success_rate']:.3f} [{lo:.3f}, {hi:.3f}]", text)
        b = self.report["baseline"]
        self.assertIn(f"{b['success_rate']:.3f} [{b['success_rate_ci95'][0]:.3f}, {b['success_rate_ci95'][1]:.3f}]", text)
        self.assertIn(f"p = {self.report['p_value']:.3g}", text)
        rows = self.js("return [...document.querySelectorAll('table.runs tbody tr')].map(r => [r.cells[0].textContent,"
                       " r.classList.contains('selected')])")
        winner = self.report["seeds"]
        self.assertEqual(rows, [[r["run"], r["seeds"] == winner] for r in self.report["runs"]])
        seeds = self.js("return [...document.querySelectorAll('table.seeds tbody tr')].map(r => r.cells[0].textContent)")
        self.assertEqual(seeds, ["3", "4", "mean [95 %]"])

    def test_text_not_markup_no_script_nothing_fetched(self):
        self.assertEqual(self.js("return document.querySelector('h1').textContent"), "calc " + XSS)
        self.assertEqual(self.js("return document.title"), f"calc {XSS} – agentcore report")
        self.assertEqual(self.js("return document.images.length + document.scripts.length"), 0)
        self.assertEqual(self.js("return performance.getEntriesByType('resource').length"), 0)
        from selenium.common.exceptions import NoAlertPresentException
        with self.assertRaises(NoAlertPresentException):
            self.driver.switch_to.alert.text


if __name__ == "__main__":
    unittest.main(verbosity=2)
