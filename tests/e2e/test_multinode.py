"""Several agentcore nodes over one PostgreSQL database (store.backend = "postgresql"), a real
PostgreSQL started by the test (pgcluster.py) and real agentcore processes on loopback:

- a job started on node A (an API-only node, workers = 0) is run by node B and visible from both;
  a cancel asked on A reaches the job running on B well before any lease could run out;
- kill -9 of the node that runs a job: the other node takes the job once its lease runs out and
  finishes it; the exported trajectories equal an uninterrupted run's (ids, rewards, actions),
  none lost or duplicated;
- a webhook receiver sees each event of jobs run on both nodes exactly once;
- 20 concurrent start_grpo calls spread over both nodes never take a principal past its budget;
- a node refuses to start on a schema newer than its binary, with a message that says so, on an
  older one when auto_migrate is off (until `agentcore migrate`), and on a server that cannot be
  reached."""
import concurrent.futures
import os
import subprocess
import unittest

import pgcluster
from harness import BIN, Server, claims, main, make_jwt, poll
from test_training import final, job_params, wait
from test_webhooks import Receiver, SECRET

LEASE_S = 3


def node_config(name, workers=1, extra=""):
    return ('return { workers = %d, store = { node = "%s", lease_s = %d }, '
            'rate_limits = { start_grpo = { limit = 1000 }, export_trajectories = { limit = 1000 } }%s }'
            % (workers, name, LEASE_S, extra))


class TwoNodes(unittest.TestCase):
    """Each test gets a database of its own and starts its own nodes on it."""

    @classmethod
    def setUpClass(cls):
        cls.pg = pgcluster.shared()

    def node(self, dsn, name, workers=1, extra=""):
        s = Server(node_config(name, workers, extra), env={"AGENTCORE_STORE_DSN": dsn})
        self.addCleanup(s.close)
        return s

    def running_node(self, dsn, job):
        rows = self.pg.psql(pgcluster.db_name(dsn), f"SELECT lease_node FROM jobs WHERE id = '{job}' AND status = 1")
        return rows[0][0] if rows else None

    def test_job_started_on_a_runs_on_b_and_cancel_from_a_reaches_it(self):
        dsn = self.pg.new_database()
        a = self.node(dsn, "node-a", workers=0)
        b = self.node(dsn, "node-b", workers=1)
        job = a.result("training.start_grpo", job_params(n_iterations=6))["job_id"]
        st_b = wait(b, job, final)
        st_a = a.result("training.get_status", {"job_id": job})
        self.assertEqual(st_b["status"], "completed", st_b)
        self.assertEqual(st_a["status"], "completed", st_a)
        self.assertEqual(st_a["metrics"], st_b["metrics"])
        ex_a = a.result("training.export_trajectories", {"job_id": job, "limit": 1000})
        ex_b = b.result("training.export_trajectories", {"job_id": job, "limit": 1000})
        self.assertEqual(ex_a, ex_b)
        self.assertEqual(ex_a["total_count"], 6 * 8 * 4)
        listed = a.result("training.list_jobs", {})
        self.assertIn(job, [j["job_id"] for j in listed["jobs"]])

        # a long job on B, cancelled through A: B's keeper hears it (NOTIFY) and the runner stops
        long_job = a.result("training.start_grpo", job_params(n_iterations=500))["job_id"]
        wait(a, long_job, lambda s: s["status"] == "running" and s["current_iteration"] >= 1)
        self.assertEqual(self.running_node(dsn, long_job), "node-b")
        self.assertIn(a.result("training.cancel", {"job_id": long_job})["status"], ("running", "cancelled"))
        st = wait(a, long_job, final, timeout=60)
        self.assertEqual(st["status"], "cancelled", st)
        self.assertLess(st["current_iteration"], 500)

    def run_job(self, server, kill=None, survivor=None):
        job = server.result("training.start_grpo", job_params(n_iterations=40))["job_id"]
        if kill is not None:
            st = wait(server, job, lambda s: s["current_iteration"] >= 15)
            self.assertLess(st["current_iteration"], 40, "the job ended before the kill")
            holder = self.running_node(kill[0], job)
            victim, survivor = (kill[1], kill[2]) if holder == "node-a" else (kill[2], kill[1])
            victim.kill9()
            server = survivor
        st = wait(server, job, final, timeout=300)
        ex = server.result("training.export_trajectories", {"job_id": job, "limit": 10000})
        return job, st, ex, survivor

    def test_kill9_of_the_running_node_another_finishes_the_job(self):
        dsn = self.pg.new_database()
        a = self.node(dsn, "node-a")
        b = self.node(dsn, "node-b")
        job, crashed, crashed_ex, survivor = self.run_job(a, kill=(dsn, a, b))
        self.assertIn("resuming", survivor.stderr())
        clean_dsn = self.pg.new_database()
        _, clean, clean_ex, _ = self.run_job(self.node(clean_dsn, "node-c"))
        self.assertEqual(crashed["status"], "completed", crashed)
        self.assertEqual(crashed_ex["total_count"], 40 * 32)  # none lost, none duplicated
        ids = [t["trajectory_id"] for t in crashed_ex["trajectories"]]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(ids, [t["trajectory_id"] for t in clean_ex["trajectories"]])
        self.assertEqual([t["reward"] for t in crashed_ex["trajectories"]],
                         [t["reward"] for t in clean_ex["trajectories"]])
        self.assertEqual([[s["action"] for s in t["steps"]] for t in crashed_ex["trajectories"]],
                         [[s["action"] for s in t["steps"]] for t in clean_ex["trajectories"]])
        for key in ("train_loss", "avg_reward", "validation_accuracy", "kl"):
            self.assertEqual(crashed["metrics"][key], clean["metrics"][key], key)
        # in the database itself: one row per (iteration, index), the job's run moved past the
        # dead node's
        rows = self.pg.psql(pgcluster.db_name(dsn), f"SELECT count(*), count(DISTINCT (iteration, idx)) "
                                                    f"FROM trajectories WHERE job_id = '{job}'")
        self.assertEqual(rows, [["1280", "1280"]])
        run = self.pg.psql(pgcluster.db_name(dsn), f"SELECT run FROM jobs WHERE id = '{job}'")
        self.assertGreaterEqual(int(run[0][0]), 2)

    def test_webhook_events_are_delivered_once_across_nodes(self):
        receiver = Receiver()
        self.addCleanup(receiver.close)
        dsn = self.pg.new_database()
        hooks = ('webhooks = { secret = "%s", allow_private = true, retry_schedule_s = { 0, 0.2, 0.5 }, '
                 'subscriptions = { { url = "http://127.0.0.1:%d/hook", events = { "*" } } } }'
                 % (SECRET, receiver.port))
        a = self.node(dsn, "node-a", extra=", " + hooks)
        b = self.node(dsn, "node-b", extra=", " + hooks)
        jobs = [(a if i % 2 else b).result("training.start_grpo", job_params(n_iterations=3))["job_id"]
                for i in range(6)]
        for j in jobs:
            wait(a, j, final)

        def all_completed():
            done = {r["payload"]["data"]["job_id"] for r in receiver.ok()
                    if r["payload"]["event"] == "training.job.completed"}
            return set(jobs) <= done
        self.assertTrue(receiver.wait_for(all_completed, timeout=120), "every job's completion arrived")
        got = [(r["payload"]["data"]["job_id"], r["payload"]["event"], r["headers"]["webhook-id"]) for r in receiver.ok()]
        ids = [g[2] for g in got]
        self.assertEqual(len(ids), len(set(ids)), "a webhook-id arrived twice")
        per_job = {}
        for job, kind, _ in got:
            per_job.setdefault((job, kind), 0)
            per_job[(job, kind)] += 1
        for j in jobs:
            self.assertEqual(per_job.get((j, "training.job.started")), 1, j)
            self.assertEqual(per_job.get((j, "training.job.completed")), 1, j)
        # both nodes ran jobs (six short jobs, two workers), and the outbox is empty
        nodes = self.pg.psql(pgcluster.db_name(dsn), "SELECT count(*) FROM outbox")
        self.assertEqual(nodes, [["0"]])

    def test_concurrent_starts_on_both_nodes_stay_within_the_budget(self):
        dsn = self.pg.new_database()
        budget = ", budgets = { default_usd = 70 }"
        a = self.node(dsn, "node-a", workers=0, extra=budget)
        b = self.node(dsn, "node-b", workers=0, extra=budget)
        token = make_jwt(claims(sub="carol"))
        params = job_params(max_budget_usd=10)

        def start(i):
            _, _, resp = (a if i % 2 else b).call("training.start_grpo", params, token=token)
            return resp

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(start, range(20)))
        ok = [r for r in answers if "result" in r]
        refused = [r for r in answers if "error" in r]
        self.assertEqual(len(ok), 7, answers)  # 7 x 10 USD = the 70 USD budget, exactly
        self.assertEqual(len(refused), 13)
        self.assertTrue(all(r["error"]["code"] == -40001 for r in refused), refused)
        rows = self.pg.psql(pgcluster.db_name(dsn), "SELECT count(*), sum(budget_micro) FROM jobs WHERE owner = 'carol'")
        self.assertEqual(rows, [["7", str(70 * 1000000)]])


class StartTest(unittest.TestCase):
    def test_schema_newer_than_the_binary_is_refused(self):
        pg = pgcluster.shared()
        dsn = pg.new_database()
        with Server(node_config("node-a"), env={"AGENTCORE_STORE_DSN": dsn}):
            pass
        pg.psql(pgcluster.db_name(dsn), "INSERT INTO agentcore_schema (version, agentcore) VALUES (999, 'future')")
        out = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--data", pg.tmp + "/nodedata"],
                             env=dict(os.environ, AGENTCORE_STORE_DSN=dsn, AGENTCORE_JWT_SECRET="x" * 32),
                             capture_output=True, timeout=60)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("version 999, newer than this agentcore's", out.stderr.decode())

    def test_migrate_before_start_when_auto_migrate_is_off(self):
        pg = pgcluster.shared()
        dsn = pg.new_database()
        cfg = node_config("node-a").replace("lease_s", "auto_migrate = false, lease_s")
        with self.assertRaises(RuntimeError) as refused:
            Server(cfg, env={"AGENTCORE_STORE_DSN": dsn})
        self.assertIn("version 0, older than this agentcore's", str(refused.exception))
        self.assertIn("agentcore migrate", str(refused.exception))

        def migrate(*flags):
            out = subprocess.run([BIN, "migrate", "--dsn", dsn, *flags], capture_output=True, timeout=60)
            return out.returncode, out.stdout.decode() + out.stderr.decode()
        rc, text = migrate("--check")
        self.assertEqual(rc, 1, text)
        self.assertIn("schema version 0 -> 0", text)
        rc, text = migrate()
        self.assertEqual(rc, 0, text)
        self.assertRegex(text, r"schema version 0 -> [1-9]")
        self.assertEqual(migrate("--check")[0], 0)
        with Server(cfg, env={"AGENTCORE_STORE_DSN": dsn}) as s:
            self.assertIn("job_id", s.result("training.start_grpo", job_params(n_iterations=1)))

    def test_unreachable_server_is_a_clear_error(self):
        port = pgcluster.free_port()
        out = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--data", pgcluster.shared().tmp + "/n2"],
                             env=dict(os.environ, AGENTCORE_STORE_DSN=f"postgresql://u:secretpw@127.0.0.1:{port}/x",
                                      AGENTCORE_JWT_SECRET="x" * 32),
                             capture_output=True, timeout=60)
        err = out.stderr.decode()
        self.assertNotEqual(out.returncode, 0)
        self.assertIn(f"cannot connect to PostgreSQL at 127.0.0.1:{port}/x", err)
        self.assertNotIn("secretpw", err)


if __name__ == "__main__":
    main()
