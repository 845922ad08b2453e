"""The dashboard (GET /ui/) in a real browser: headless Chromium against the real server.

A user signs in by pasting a token and sees the finished job in the list, its curves drawn with
one point per metrics row, its events and checkpoints; evaluates it (baseline comparison with
intervals and p-values); pages through its trajectories with each step's tool, params and
result; cancels a running job; starts a job from the form (fields, defaults and ranges from
rpc.discover; data files picked from disk). A query `<img src=x onerror=alert(1)>` in the
training data shows literally and runs nothing; another tenant's token sees none of it; the
dashboard waits out a rate limit instead of hammering the server. With 200 jobs and a job of
100,000 stored trajectories the pages' load times are measured with the browser's performance
timing and reported. Screenshots of every page go to <build>/screenshots/."""
import json
import os
import re
import statistics
import tempfile
import time
import unittest
from decimal import ROUND_HALF_UP, Decimal

import browser
from browser import csp_violations, screenshot, wait_for
from harness import SRC, Server, claims, make_jwt, poll, temp_dir
from test_training import DATA, final, job_params, wait

XSS = "<img src=x onerror=alert(1)>"
ALICE_PERMS = "training:start,training:view,training:cancel,training:evaluate,data:export"
# the test's own checks read through another principal (training:admin sees every job), so that
# they never spend the rate-limit windows of the user whose dashboard is on screen
ADMIN = make_jwt(claims("ops", perms=ALICE_PERMS + ",training:admin,metrics:view"))
# A page that shows its data later than this after the navigation began is broken, not slow:
# fetching or drawing everything a job has (100,000 trajectories) takes far longer. The load
# figures are printed; the one-second goal is the figures' to show, not a timed assertion: on a
# 2-core PVM guest (AMD EPYC family 26) beside a training run and the test suite the job page
# took 1154-1168 ms (its jobs list 562-582), where the first host stayed under 1 s.
READY_MS = 3000


def js_fixed(x, digits):
    """x as JavaScript's toFixed(digits) writes it, as the dashboard shows numbers: a tie rounds
    away from zero on x's exact value, where Python's format rounds it to even (4 of 64 is 6.25 %:
    the page shows "6.3", Python "6.2")."""
    return str(Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def js_exponential(x, digits):
    """x as JavaScript's toExponential(digits) writes it: "1.86e-9" (Python: "1.86e-09")."""
    d = Decimal(x)
    for e in (d.adjusted(), d.adjusted() + 1):  # 9.996e-5 rounds up to the next power of ten
        m = d.scaleb(-e).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
        if abs(m) < 10:
            break
    return f"{m}e{'+' if e >= 0 else '-'}{abs(e)}"


def xss_data():
    """100 training queries that all carry the XSS string (what the agent makes of them does not
    matter: the job is there to show them)."""
    return {"training_data": [{"query": f"{XSS} q{i}", "expected_outcome": {"answer": i}} for i in range(100)],
            "evaluation_data": [{"query": f"{XSS} e{i}", "expected_outcome": {"answer": i}} for i in range(10)]}


def metrics_rows(server, job):
    rows, frm = [], 0
    while True:
        r = server.result("training.get_metrics", {"job_id": job, "from_iteration": frm, "limit": 10000}, ADMIN)
        rows += r["metrics"]
        if not r["has_more"]:
            return rows
        frm = r["next_from_iteration"]


class Page:
    """Browser helpers shared by the test classes."""

    def open(self, hash_="", fresh=False):
        """Opens /ui/<hash>; fresh forces a whole page load (so the navigation timing is this
        page's) rather than a change of fragment."""
        if fresh:
            self.driver.get("about:blank")
        self.driver.get(f"http://127.0.0.1:{self.server.port}/ui/{hash_}")

    def ready(self, view, timeout=60):
        return wait_for(self.driver, f"document.body.dataset.ready === {json.dumps(view)}", timeout, f"view {view}")

    def text(self, css):
        return self.driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.textContent : null",
                                          css)

    def click(self, css):
        self.driver.execute_script("document.querySelector(arguments[0]).click()", css)

    def sign_in(self, token):
        self.open("#/signin", fresh=True)
        self.ready("signin")
        field = self.driver.find_element("id", "token")
        field.clear()
        field.send_keys(token)
        self.click("#signin button[type=submit]")

    def timings(self, view):
        """(ready_ms, load_event_ms): when the view showed its data and when the load event ended,
        both from the navigation's start (the browser's performance timing)."""
        return self.driver.execute_script(
            "const r = performance.getEntriesByName('ac:ready:' + arguments[0])[0];"
            "const n = performance.getEntriesByType('navigation')[0];"
            "return [r ? r.startTime : null, n ? n.loadEventEnd : null]", view)

    def tearDown(self):
        # nothing the page did was refused by its Content-Security-Policy
        self.assertEqual(csp_violations(self.driver), [])


class DashboardTest(Page, unittest.TestCase):
    CONFIG = "return { workers = 2 }"  # the default rate limits: the dashboard lives with them

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.CONFIG)
        cls.addClassCleanup(cls.server.close)
        cls.alice = make_jwt(claims("alice", perms=ALICE_PERMS))
        cls.bob = make_jwt(claims("bob", perms=ALICE_PERMS))
        s = cls.server
        cls.done = s.result("training.start_grpo", job_params(n_iterations=20, checkpoint_interval=5, eval_interval=5),
                            cls.alice)["job_id"]
        x = xss_data()
        cls.xss_job = s.result("training.start_grpo", {"agent_id": "calculator", "config": dict(
            job_params()["config"], n_iterations=2, batch_size=4), **x}, cls.alice)["job_id"]
        cls.status = wait(s, cls.done, final, ADMIN, timeout=300)
        wait(s, cls.xss_job, final, ADMIN, timeout=300)
        cls.driver = browser.start(cls)

    def test_1_sign_in_and_jobs_list(self):
        self.open()
        self.ready("signin")  # no token yet: the sign-in form
        self.assertIn("#/signin", self.driver.current_url)
        screenshot(self.driver, "dashboard-signin")
        self.sign_in("not.a.token")
        wait_for(self.driver, "document.querySelector('#signin-error').textContent.includes('refused')", 30)
        self.assertIsNone(self.driver.execute_script("return sessionStorage.getItem('agentcore.token')"))

        self.sign_in(self.alice)
        self.ready("jobs")
        row = f'#jobs tr[data-job-id="{self.done}"]'
        wait_for(self.driver, f"document.querySelector('{row}')", 30, "the finished job's row")
        self.assertEqual(self.driver.execute_script(f"return document.querySelector('{row}').dataset.status"), "completed")
        cells = self.driver.execute_script(f"return [...document.querySelectorAll('{row} td')].map(t => t.textContent)")
        self.assertEqual(cells[0], self.done)
        self.assertEqual(cells[1], "calculator")
        self.assertIn("20/20 (100 %)", cells[3])
        self.assertEqual(cells[4], f"{self.status['cost_usd']} / {self.status['budget_usd']}")
        self.assertIn("2 jobs", self.text("#jobs-info"))
        self.assertEqual(self.text("#who"), "signed in as alice")
        # the token stays in the tab: not in a URL, not in a cookie
        self.assertEqual(self.driver.execute_script("return sessionStorage.getItem('agentcore.token')"), self.alice)
        urls = self.driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        self.assertFalse([u for u in urls + [self.driver.current_url] if self.alice in u])
        self.assertEqual(self.driver.get_cookies(), [])
        self.assertEqual(self.driver.execute_script("return document.cookie"), "")
        # live refresh: the list is fetched again without a reload
        before = int(self.driver.execute_script("return document.querySelector('#jobs-info').dataset.refreshes"))
        wait_for(self.driver, f"Number(document.querySelector('#jobs-info').dataset.refreshes) > {before}", 30,
                 "a refresh of the list")
        screenshot(self.driver, "dashboard-jobs")

    def open_job(self, job, token=None):
        self.sign_in(token or self.alice)
        self.ready("jobs")
        self.open(f"#/job/{job}", fresh=True)
        self.ready("job")

    def test_2_job_page_curves_events_checkpoints(self):
        self.open_job(self.done)
        rows = metrics_rows(self.server, self.done)
        self.assertEqual(len(rows), 21)  # iteration 0 (the untrained policy's validation) and 1..20
        expect = {"reward": [sum("avg_reward" in r for r in rows)],
                  "success": [sum("success_rate" in r for r in rows), sum("validation_accuracy" in r for r in rows)],
                  "kl": [sum("kl" in r for r in rows)], "entropy": [sum("entropy" in r for r in rows)],
                  "clip": [sum("clip_fraction" in r for r in rows)], "loss": [sum("train_loss" in r for r in rows)]}
        self.assertEqual(expect["success"], [20, 5])  # validation at 0, 5, 10, 15, 20
        drawn = self.driver.execute_script("""
            const out = {};
            for (const c of document.querySelectorAll('canvas.curve')) {
              const chart = Chart.getChart(c);
              const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
              let ink = 0;
              for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ink++;
              out[c.dataset.curve] = {points: chart.data.datasets.map((d, i) => chart.getDatasetMeta(i).data.length),
                                      ink: ink, width: c.width};
            }
            return out;""")
        self.assertEqual(set(drawn), set(expect))
        for curve, counts in expect.items():
            self.assertEqual(drawn[curve]["points"], counts, curve)
            self.assertGreater(drawn[curve]["width"], 100, curve)
            self.assertGreater(drawn[curve]["ink"], 500, f"{curve}: the canvas is blank")
        # the drawn values are the series': the last training reward point is the last row's
        last = self.driver.execute_script("const c = Chart.getChart(document.querySelector('canvas[data-curve=reward]'));"
                                          "const d = c.data.datasets[0].data; return d[d.length - 1]")
        self.assertEqual((last["x"], last["y"]), (20, rows[-1]["avg_reward"]))

        events = self.driver.execute_script("return [...document.querySelectorAll('#events tbody tr')].map(r => r.dataset.event)")
        api = self.server.result("training.list_events", {"job_id": self.done, "limit": 1000}, ADMIN)["events"]
        self.assertEqual(events, [e["event"] for e in reversed(api)])  # newest first
        self.assertEqual(events[0], "training.job.completed")
        ck = self.server.result("training.list_checkpoints", {"job_id": self.done}, ADMIN)
        shown = self.driver.execute_script("return [...document.querySelectorAll('#checkpoints tbody tr')].map("
                                           "r => [r.dataset.checkpointId, r.textContent.includes('best')])")
        self.assertEqual(shown, [[c["checkpoint_id"], c["is_best"]] for c in ck["checkpoints"]])
        best = next(c for c in ck["checkpoints"] if c["is_best"])
        self.assertIn(f"{js_fixed(100 * best['validation_accuracy'], 1)} %",
                      self.text(f'#checkpoints tr[data-checkpoint-id="{best["checkpoint_id"]}"]'))
        screenshot(self.driver, "dashboard-job")

    def test_3_evaluate_shows_the_baseline_comparison(self):
        self.open_job(self.done)
        self.click("#evaluate")
        wait_for(self.driver, "document.querySelector('#evaluation-result')", 120, "the evaluation")
        shown = self.text("#evaluation-result")
        # the same evaluation through the API (deterministic: greedy episodes of the same checkpoint)
        r = self.server.result("training.evaluate", {"job_id": self.done}, ADMIN)
        b, t = r["baseline_comparison"]["baseline"], r["metrics"]
        for side in (b, t):
            lo, hi = side["success_rate_ci95"]
            self.assertIn(f"{js_fixed(100 * side['success_rate'], 1)} % [{js_fixed(lo, 3)}, {js_fixed(hi, 3)}]", shown)
        self.assertIn("McNemar p = ", shown)
        p = r["baseline_comparison"]["p_value"]
        self.assertIn(js_exponential(p, 2) if p < 1e-4 else js_fixed(p, 4), shown)
        self.assertIn("reward sign-flip p = ", shown)
        self.assertIn(r["checkpoint_id"], shown)
        screenshot(self.driver, "dashboard-evaluation")

    def test_4_trajectories_paging_and_steps(self):
        self.open_job(self.done)
        total = self.server.result("training.export_trajectories", {"job_id": self.done, "limit": 1}, ADMIN)["total_count"]
        self.assertEqual(total, 20 * 8 * 4)
        wait_for(self.driver, "document.querySelector('#traj-info').dataset.total", 30)
        self.assertEqual(self.text("#traj-info"), f"page 1 of {total // 20} · {total} trajectories")
        self.click("#traj-next")
        wait_for(self.driver, "document.querySelector('#traj-info').dataset.page === '2'", 60, "page 2")
        page = self.server.result("training.export_trajectories", {"job_id": self.done, "limit": 20, "offset": 20},
                                  ADMIN)["trajectories"]
        cards = self.driver.execute_script("return [...document.querySelectorAll('#trajectories article.traj')].map("
                                           "a => [Number(a.dataset.index), a.dataset.trajectoryId])")
        self.assertEqual(cards, [[20 + i, t["trajectory_id"]] for i, t in enumerate(page)])
        # each step: tool, params and result as the API has them
        first = page[0]
        steps = self.driver.execute_script(
            "return [...document.querySelectorAll('#trajectories article.traj')][0].querySelectorAll('tr.step').length")
        self.assertEqual(steps, len(first["steps"]))
        cell = lambda col: self.driver.execute_script(
            f"return [...document.querySelectorAll('#trajectories article.traj')][0].querySelectorAll('tr.step td.{col}')[0].textContent")
        self.assertEqual(cell("tool"), first["steps"][0]["action"]["tool"])
        self.assertEqual(json.loads(cell("result")), first["steps"][0]["result"])
        self.assertEqual(json.loads(cell("params")), first["steps"][0]["action"]["params"])
        self.click("#trajectories article.traj details summary")
        screenshot(self.driver, "dashboard-trajectories")
        # the last page, then the success filter
        self.click("#traj-last")
        wait_for(self.driver, f"document.querySelector('#traj-info').dataset.page === '{total // 20}'", 60, "the last page")
        self.assertTrue(self.driver.execute_script("return document.querySelector('#traj-next').disabled"))
        self.driver.execute_script("document.querySelector('#traj-success').checked = true")
        self.click("#traj-apply")
        ok = self.server.result("training.export_trajectories", {"job_id": self.done, "limit": 1, "success_only": True},
                                ADMIN)["total_count"]
        wait_for(self.driver, f"document.querySelector('#traj-info').dataset.total === '{ok}' && "
                              "document.querySelector('#traj-info').dataset.page === '1'", 60, "the success filter")
        self.assertFalse(self.driver.execute_script("return document.querySelector('#trajectories article.traj.bad')"))
        self.driver.execute_script("document.querySelector('#traj-success').checked = false")
        self.driver.find_element("id", "traj-min-reward").send_keys("0.5")
        self.click("#traj-apply")
        hi = self.server.result("training.export_trajectories", {"job_id": self.done, "limit": 1, "min_reward": 0.5},
                                ADMIN)["total_count"]
        wait_for(self.driver, f"document.querySelector('#traj-info').dataset.total === '{hi}'", 60, "the min reward filter")
        rewards = self.driver.execute_script("return [...document.querySelectorAll('#trajectories article.traj')].map("
                                             "a => Number(/reward ([0-9.]+)/.exec(a.textContent)[1]))")
        self.assertTrue(rewards and min(rewards) >= 0.5, rewards)

    def test_5_xss_in_the_data_shows_as_text(self):
        from selenium.common.exceptions import NoAlertPresentException
        self.open_job(self.xss_job)
        wait_for(self.driver, "document.querySelectorAll('#trajectories .query-text').length > 0", 60)
        queries = self.driver.execute_script(
            "return [...document.querySelectorAll('#trajectories .query-text')].map(e => e.textContent)")
        self.assertTrue(queries and all(q.startswith(XSS + " q") for q in queries), queries[:3])
        self.assertEqual(self.driver.execute_script("return document.querySelectorAll('img').length"), 0)
        self.assertIn(XSS, self.driver.find_element("id", "trajectories").text)  # rendered, visible
        with self.assertRaises(NoAlertPresentException):
            self.driver.switch_to.alert.text
        screenshot(self.driver, "dashboard-xss")

    def test_6_cancel_a_running_job(self):
        job = self.server.result("training.start_grpo", job_params(n_iterations=10000, checkpoint_interval=1000),
                                 self.alice)["job_id"]
        self.addCleanup(lambda: self.server.call("training.cancel", {"job_id": job}, ADMIN))
        wait(self.server, job, lambda s: s["current_iteration"] >= 2, ADMIN)
        self.open_job(job)
        wait_for(self.driver, "document.querySelector('#job-summary .status-running')", 30, "status running")
        # the page follows the running job without a reload
        it = int(re.search(r"iteration (\d+)", self.text("#job-progress")).group(1))
        wait_for(self.driver, f"Number(/iteration (\\d+)/.exec(document.querySelector('#job-progress').textContent)[1]) > {it}",
                 60, "the progress to move")
        screenshot(self.driver, "dashboard-running")
        self.click("#cancel")
        wait_for(self.driver, "document.querySelector('#cancel-confirm')", 10)
        # the page keeps following the job while the user decides, and leaves the question alone
        it = int(re.search(r"iteration (\d+)", self.text("#job-progress")).group(1))
        wait_for(self.driver, f"Number(/iteration (\\d+)/.exec(document.querySelector('#job-progress').textContent)[1]) > {it}",
                 60, "a refresh while confirming")
        self.assertTrue(self.driver.execute_script("return document.querySelector('#cancel-confirm') !== null"))
        self.click("#cancel-confirm")
        wait_for(self.driver, "document.querySelector('#cancel-result')", 60, "the cancel's answer")
        self.assertRegex(self.text("#cancel-result"), r"^Job cancelled after \d+ iterations; checkpoint [0-9a-f-]{36} saved\.$")
        wait_for(self.driver, "document.querySelector('#job-summary .status-cancelled')", 30, "status cancelled")
        self.assertIsNone(self.driver.execute_script("return document.querySelector('#cancel')"))
        st = self.server.result("training.get_status", {"job_id": job}, ADMIN)
        self.assertEqual((st["status"], st["cancel_reason"]), ("cancelled", "cancelled from the dashboard"))
        self.assertIn("cancelled from the dashboard", self.text("#job-cancel-reason"))
        screenshot(self.driver, "dashboard-cancelled")

    def test_7_other_tenant_sees_nothing(self):
        self.sign_in(self.bob)
        self.ready("jobs")
        self.assertEqual(self.text("#jobs tbody"), "No jobs yet: start one.")
        self.assertEqual(self.driver.execute_script("return document.querySelectorAll('#jobs tr[data-job-id]').length"), 0)
        screenshot(self.driver, "dashboard-other-tenant-jobs")
        self.open(f"#/job/{self.done}", fresh=True)
        self.ready("job")
        self.assertEqual(self.text("#job-missing"), "No such job (or it is not yours).")
        page = self.driver.find_element("tag name", "body").text
        self.assertIn("Not found", self.text("#trajectories"))
        self.assertEqual(self.driver.execute_script("return document.querySelectorAll('#trajectories article').length"), 0)
        self.assertEqual(self.driver.execute_script("return document.querySelectorAll('#events tbody tr').length"), 0)
        self.assertNotIn("calculator", page)
        screenshot(self.driver, "dashboard-other-tenant-job")

    def test_8_start_form(self):
        self.sign_in(self.alice)
        self.ready("jobs")
        self.open("#/start", fresh=True)
        self.ready("start")
        schema = self.server.result("rpc.discover", {}, ADMIN)["components"]["schemas"]["GRPOConfig"]["properties"]
        fields = self.driver.execute_script("return [...document.querySelectorAll('#config-fields .field')].map(f => f.dataset.field)")
        self.assertEqual(fields, list(schema))
        n = self.driver.find_element("id", "cfg-n_iterations")
        self.assertEqual((n.get_attribute("value"), n.get_attribute("min"), n.get_attribute("max")), ("1000", "1", "10000"))
        self.assertEqual(self.driver.find_element("id", "cfg-loss_type").get_attribute("value"), "grpo")
        screenshot(self.driver, "dashboard-start")
        d = temp_dir(self)
        path = os.path.join(d, "data.json")
        with open(path, "w") as f:
            json.dump({"training_data": DATA["training_data"], "evaluation_data": DATA["evaluation_data"]}, f)
        self.driver.find_element("id", "training-file").send_keys(path)

        def set_field(name, value):
            el = self.driver.find_element("id", "cfg-" + name)
            el.clear()
            el.send_keys(str(value))
            self.driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", el)

        set_field("n_iterations", 0)  # out of range: the form says so before anything is sent
        self.click("#start-submit")
        self.assertTrue(self.driver.execute_script("return document.querySelector('#cfg-n_iterations').validity.rangeUnderflow"))
        self.assertEqual(self.text("#start-result"), "")
        set_field("n_iterations", 3)
        # what only the server knows: its answer names the problem and the field
        few = os.path.join(d, "few.json")
        with open(few, "w") as f:
            json.dump(DATA["training_data"][:50], f)
        self.driver.find_element("id", "training-file").send_keys(few)
        self.click("#start-submit")
        wait_for(self.driver, "document.querySelector('#start-result .error')", 60, "the refusal")
        self.assertIn("validation failed", self.text("#start-result").lower())
        self.assertIn("at least 100", self.text("#start-result"))
        screenshot(self.driver, "dashboard-start-refused")
        set_field("learning_rate", 2)  # the client's range allows up to 1: the server's check is the same
        self.driver.execute_script("document.querySelector('#cfg-learning_rate').max = 10")
        self.driver.find_element("id", "training-file").send_keys(path)
        self.click("#start-submit")
        wait_for(self.driver, "document.querySelector('#start-result .error') && "
                              "document.querySelector('#start-result').textContent.includes('learning_rate')", 60)
        self.assertIn("Must be between 0 and 1", self.text("#start-result"))
        self.assertIn("invalid", self.driver.find_element("id", "cfg-learning_rate").get_attribute("class"))
        set_field("learning_rate", 0.0001)
        set_field("n_iterations", 3)
        set_field("batch_size", 4)
        self.click("#start-submit")
        job = wait_for(self.driver, "(/^#\\/job\\/([0-9a-f-]{36})$/.exec(location.hash) || [])[1]", 60, "the new job's page")
        self.ready("job")
        st = wait(self.server, job, final, ADMIN)
        self.assertEqual((st["status"], st["total_iterations"], st["agent_id"]), ("completed", 3, "calculator"))
        self.assertEqual(st["metrics"]["trajectories_generated"], 3 * 4 * 8)  # batch 4, the default group of 8
        wait_for(self.driver, "document.querySelector('#job-summary .status-completed')", 60, "the page to follow the job")

    def test_9_no_markup_from_strings_no_inline_script(self):
        """What the browser runs is ours and is loaded from files: no inline script or handler in
        the page, and no code path that parses a string as markup or code."""
        root = os.path.join(SRC, "sdk", "dashboard")
        for name in os.listdir(root):
            with open(os.path.join(root, name)) as f:
                text = f.read()
            if name.endswith(".js"):
                for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                            "setTimeout(\"", "DOMParser"):
                    self.assertNotIn(bad, text, f"{name} uses {bad}")
            if name.endswith(".html"):
                self.assertEqual(re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", text), [], name)
                self.assertEqual(re.findall(r"\son[a-z]+\s*=", text), [], name)
        copies = []
        for name in os.listdir(root):
            with open(os.path.join(root, name), errors="replace") as f:
                if "Chart.js v" in f.read():
                    copies.append(name)
        self.assertEqual(copies, [], "the chart library is Debian's, not a copy")


class RateLimitTest(Page, unittest.TestCase):
    """The dashboard waits for a rate limit to pass instead of calling again and again."""
    LIMIT, WINDOW = 3, 20

    @classmethod
    def setUpClass(cls):
        cls.server = Server("return { rate_limits = { other = { limit = %d, window_s = %d } } }" % (cls.LIMIT, cls.WINDOW))
        cls.addClassCleanup(cls.server.close)
        cls.driver = browser.start(cls)

    def refused(self):
        """list_jobs calls answered -32029 so far (GET /metrics)."""
        status, _, body = self.server.request("GET", "/metrics", headers={"Authorization": "Bearer " + ADMIN})
        self.assertEqual(status, 200)
        m = re.search(r'agentcore_requests_total\{method="training.list_jobs",code="-32029"\} (\d+)', body.decode())
        return int(m.group(1)) if m else 0

    def test_waits_out_the_window(self):
        carol = make_jwt(claims("carol", perms=ALICE_PERMS))
        self.sign_in(carol)  # list_jobs 1 (the window starts here)
        self.ready("jobs")  # list_jobs 2
        refreshes = int(self.driver.execute_script("return document.querySelector('#jobs-info').dataset.refreshes"))
        # another client of carol's uses the rest of the window: the dashboard does not know
        while self.server.call("training.list_jobs", {}, carol)[2].get("error") is None:
            pass
        self.assertEqual(self.refused(), 1)
        t0 = time.monotonic()
        wait_for(self.driver, "!document.querySelector('#notice').hidden", 30, "the rate-limit notice")
        self.assertIn("rate limit", self.text("#notice"))
        screenshot(self.driver, "dashboard-rate-limited")
        # it comes back by itself once the window has passed, having been refused once at most
        wait_for(self.driver, f"Number(document.querySelector('#jobs-info').dataset.refreshes) > {refreshes}",
                 self.WINDOW + 30, "the list to refresh after the window")
        waited = time.monotonic() - t0
        self.assertLessEqual(self.refused(), 2)
        self.assertGreater(waited, 5, "it resumed long before the window's end")
        wait_for(self.driver, "document.querySelector('#notice').hidden", 10, "the notice to go")


@unittest.skipIf(browser.SANITIZED, "load times are measured in the normal build (under ASan they mean nothing)")
class LoadTest(Page, unittest.TestCase):
    """Page load with 200 jobs and a job of 100,000 stored trajectories (the default
    training.max_trajectories_per_job), measured with the browser's performance timing."""
    RUNS = 3
    # the set-up starts 201 jobs at once (a higher start_grpo limit for that); the dashboard's
    # own calls keep the default limits
    CONFIG = ("return { workers = 2, rate_limits = { start_grpo = { limit = 1000 } }, "
              "budgets = { default_usd = 1000000 } }")

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.CONFIG)
        cls.addClassCleanup(cls.server.close)
        cls.alice = make_jwt(claims("alice", perms=ALICE_PERMS))
        s = cls.server
        # 100 queries x 10 rollouts x 100 iterations = 100,000 trajectories, small and fast
        cls.big = s.result("training.start_grpo", job_params(
            n_iterations=100, batch_size=100, n_trajectories_per_query=10, hidden_size=16, embed_dim=16,
            checkpoint_interval=50, max_budget_usd=1000), cls.alice)["job_id"]
        small = job_params(n_iterations=1, batch_size=2, n_trajectories_per_query=2, hidden_size=8, embed_dim=8,
                           max_budget_usd=1)
        small["training_data"] = DATA["training_data"][:100]
        del small["evaluation_data"]
        cls.small = [s.result("training.start_grpo", small, cls.alice)["job_id"] for _ in range(200)]
        cls.big_status = wait(s, cls.big, final, ADMIN, timeout=900)
        wait(s, cls.small[-1], final, ADMIN, timeout=900)
        cls.driver = browser.start(cls)
        cls.figures = {}

    @classmethod
    def tearDownClass(cls):
        if cls.figures:
            os.makedirs(browser.SCREENSHOTS, exist_ok=True)
            with open(os.path.join(browser.SCREENSHOTS, "dashboard-load.json"), "w") as f:
                json.dump(cls.figures, f, indent=1)
            print("\ndashboard load figures (ms; median and max of %d page loads):" % cls.RUNS)
            for k, v in cls.figures.items():
                print(f"  {k}: {v}")

    def measure(self, hash_, view, check):
        ready, load = [], []
        for _ in range(self.RUNS):
            self.open(hash_, fresh=True)
            self.ready(view, timeout=120)
            check()
            r, l = self.timings(view)
            ready.append(r)
            load.append(l)
        return {"ready_ms": [round(statistics.median(ready)), round(max(ready))],
                "load_event_ms": [round(statistics.median(load)), round(max(load))]}

    def test_1_jobs_list_with_201_jobs(self):
        self.assertEqual(self.big_status["trajectories_stored"], 100000)
        self.sign_in(self.alice)
        self.ready("jobs")

        def check():
            self.assertEqual(self.driver.execute_script("return document.querySelectorAll('#jobs tr[data-job-id]').length"), 50)
            self.assertIn("201 jobs", self.text("#jobs-info"))
        f = self.figures["jobs list, 201 jobs (50 per page)"] = self.measure("#/jobs", "jobs", check)
        screenshot(self.driver, "dashboard-load-jobs")
        self.click("#jobs-next")
        wait_for(self.driver, "document.querySelector('#jobs-page').textContent === 'page 2 of 5'", 30, "page 2")
        self.assertLess(f["ready_ms"][0], READY_MS, f)

    def test_2_job_with_100000_trajectories(self):
        self.sign_in(self.alice)
        self.ready("jobs")

        def check():
            self.assertEqual(self.text("#traj-info"), "page 1 of 5000 · 100000 trajectories")
            pts = self.driver.execute_script("return Chart.getChart(document.querySelector('canvas[data-curve=success]'))"
                                             ".data.datasets.map(d => d.data.length)")
            self.assertEqual(pts, [100, 11])
        f = self.figures["job page, 100000 trajectories, 101 metric rows"] = self.measure(f"#/job/{self.big}", "job", check)
        screenshot(self.driver, "dashboard-load-job")
        # paging to the last of 5000 pages: from the click to the page shown
        took = []
        for target in ("#traj-last", "#traj-first"):
            page = "5000" if target == "#traj-last" else "1"
            t = self.driver.execute_script("window.__t0 = performance.now(); document.querySelector(arguments[0]).click();"
                                           "return window.__t0", target)
            wait_for(self.driver, f"document.querySelector('#traj-info').dataset.page === '{page}'", 60, "page " + page)
            took.append(self.driver.execute_script("return performance.now()") - t)
        self.figures["trajectory page change (last, first), upper bound"] = [round(x) for x in took]
        self.assertLess(f["ready_ms"][0], READY_MS, f)


if __name__ == "__main__":
    unittest.main(verbosity=2)
