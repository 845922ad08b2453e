#!/usr/bin/env python3
"""Runs a PostgreSQL for the benchmarks (tests/e2e/pgcluster.py, fsync on: the durability the
LMDB side has) until SIGTERM/SIGINT or the end of stdin; prints `DSN <dsn>` once it accepts
connections. Used by bench/training_bench.sh (STORE=postgresql)."""
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import pgcluster  # noqa: E402

cluster = pgcluster.Cluster(durable=True)
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: done.set())
signal.signal(signal.SIGINT, lambda *a: done.set())
try:
    print("DSN " + cluster.new_database(), flush=True)
    done.wait()
finally:
    cluster.stop()
