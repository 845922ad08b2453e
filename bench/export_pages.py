#!/usr/bin/env python3
"""Times training.export_trajectories pages over ONE kept-alive HTTP/1.1 connection.

Used by bench/training_bench.sh:
  python3 bench/export_pages.py --port PORT --token JWT --job JOB_ID [--n 20] [--pages 0:100,90000:100]

For each page (offset:limit): 2 warm-up requests, then --n timed ones, one at a time. A request's
time runs from sending it to having read the whole response body (what a client waits for);
checking the JSON happens outside the timed part. Every response must be HTTP 200 with a result
of exactly `limit` trajectories starting at trajectory number `offset` (ids traj-IIIIII-NNNN:
iteration I from 1, index N within the iteration). Prints one RESULT line per page as JSON.
"""
import argparse
import http.client
import json
import math
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--job", required=True)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--per-iteration", type=int, default=0,
                    help="trajectories per iteration (batch_size x n_trajectories_per_query): checks the first id")
    ap.add_argument("--pages", default="0:100,90000:100,0:1000,90000:1000")
    a = ap.parse_args()

    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)
    headers = {"Authorization": "Bearer " + a.token, "Content-Type": "application/json"}
    sock = None

    def call(offset, limit):
        nonlocal sock
        body = json.dumps({"jsonrpc": "2.0", "method": "training.export_trajectories", "id": 1,
                           "params": {"job_id": a.job, "offset": offset, "limit": limit}}).encode()
        t0 = time.perf_counter()
        conn.request("POST", "/api/v1/jsonrpc", body, headers)
        resp = conn.getresponse()
        data = resp.read()
        dt = time.perf_counter() - t0
        if sock is None:
            sock = conn.sock
        elif conn.sock is not sock:
            sys.exit("export_pages: the connection was not kept alive")
        if resp.status != 200:
            sys.exit("export_pages: HTTP %d: %s" % (resp.status, data[:300]))
        r = json.loads(data)
        if "error" in r:
            sys.exit("export_pages: %s" % json.dumps(r["error"]))
        res = r["result"]
        if res["returned_count"] != limit or len(res["trajectories"]) != limit:
            sys.exit("export_pages: asked for %d, got %d" % (limit, res["returned_count"]))
        first = res["trajectories"][0]["trajectory_id"]
        if a.per_iteration:
            want = "traj-%06d-%04d" % (offset // a.per_iteration + 1, offset % a.per_iteration)
            if first != want:
                sys.exit("export_pages: offset %d starts at %s, expected %s" % (offset, first, want))
        return dt, len(data), res["total_count"], first

    for page in a.pages.split(","):
        offset, limit = (int(x) for x in page.split(":"))
        for _ in range(2):
            call(offset, limit)
        times, size, total, first = [], 0, 0, ""
        for _ in range(a.n):
            dt, size, total, first = call(offset, limit)
            times.append(dt * 1000)
        times.sort()
        p99 = times[max(0, math.ceil(0.99 * len(times)) - 1)]  # nearest rank: of 20, the largest
        print("RESULT " + json.dumps({"offset": offset, "limit": limit, "n": a.n,
                                      "median_ms": round(statistics.median(times), 2),
                                      "p99_ms": round(p99, 2), "min_ms": round(times[0], 2),
                                      "bytes": size, "total_count": total, "first_id": first}), flush=True)


if __name__ == "__main__":
    main()
