#!/usr/bin/env python3
"""Two nodes vs one on a many-jobs workload, on one PostgreSQL (started here: tests/e2e/pgcluster.py,
fsync on). Each setup gets a fresh database; --jobs jobs of --iterations iterations (the
calculator, 8 queries x 4 rollouts) are started at once, spread over the setup's nodes, and the
time from the first start to the last completion is measured. Setups:

  one node, workers = 1    the baseline
  two nodes, workers = 1   the same database, each node claims jobs from the shared queue
  one node, workers = 2    the control: the same number of training threads in one process

  AGENTCORE_BIN=build/agentcore python3 bench/multinode_bench.py [--jobs 16] [--iterations 20] [--runs 2]

A job's iterations are CPU-bound (rollouts, the GRPO update): on the 2-core machine two training
threads can at best double the throughput of one, whichever process they are in, and the API,
PostgreSQL and anything else running on the machine take from the same two cores."""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import pgcluster  # noqa: E402
from harness import Server, poll  # noqa: E402
from test_training import job_params  # noqa: E402

CONFIG = ('return { workers = %d, store = { node = "%s" }, budgets = { default_usd = 1e9 }, '
          'rate_limits = { start_grpo = { limit = 100000 }, get_status = { limit = 100000 } } }')


def run(cluster, n_nodes, workers, jobs, iterations):
    dsn = cluster.new_database()
    nodes = [Server(CONFIG % (workers, f"bench-{i}"), env={"AGENTCORE_STORE_DSN": dsn}) for i in range(n_nodes)]
    try:
        t0 = time.monotonic()
        ids = [nodes[i % n_nodes].result("training.start_grpo", job_params(n_iterations=iterations))["job_id"]
               for i in range(jobs)]

        def done():
            rows = cluster.psql(pgcluster.db_name(dsn), "SELECT count(*) FILTER (WHERE status = 2), "
                                                        "count(*) FILTER (WHERE status IN (3, 4)) FROM jobs")
            completed, bad = int(rows[0][0]), int(rows[0][1])
            if bad:
                raise AssertionError(f"{bad} jobs failed or were cancelled")
            return completed == len(ids)
        poll(done, 3600, "every job", first=0.2, cap=0.5)
        elapsed = time.monotonic() - t0
        per_node = cluster.psql(pgcluster.db_name(dsn), "SELECT count(*) FROM events "
                                                        "WHERE body->>'event' = 'training.job.started'")
        return elapsed, int(per_node[0][0])
    finally:
        for n in nodes:
            n.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--runs", type=int, default=2)
    a = ap.parse_args()
    cluster = pgcluster.Cluster(durable=True)
    try:
        rows = []
        for label, n_nodes, workers in (("one node, workers = 1", 1, 1), ("two nodes, workers = 1 each", 2, 1),
                                        ("one node, workers = 2", 1, 2)):
            times = []
            for _ in range(a.runs):
                load = open("/proc/loadavg").read().split()[0]
                elapsed, started = run(cluster, n_nodes, workers, a.jobs, a.iterations)
                assert started == a.jobs, f"{started} jobs started, {a.jobs} expected"
                times.append(elapsed)
                print(f"  {label}: {elapsed:.1f} s (load avg {load})", flush=True)
            rows.append((label, statistics.median(times)))
        print(f"\n{a.jobs} jobs x {a.iterations} iterations, median of {a.runs} runs")
        print("| setup | wall clock (s) | jobs/min | vs one node |")
        print("|---|---:|---:|---:|")
        base = rows[0][1]
        for label, t in rows:
            print(f"| {label} | {t:.1f} | {a.jobs * 60 / t:.1f} | {base / t:.2f}x |")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
