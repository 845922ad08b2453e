#!/usr/bin/env python3
"""agents.act under load, side by side with training.get_status, on HTTP/1.1 (wrk) and h2c
(h2load): requests per second and latency percentiles of the real server (build/agentcore).

It starts the server on a loopback port with a temporary data directory and rate limits out of
the way, trains a small calculator job (the default bag policy, 542023 parameters), makes one
agents.act call so that the policy is in the cache (a cached policy answers on the event loop:
one forward pass), then loads each method in turn with the same client settings. The agents.act
body asks for the second step of an episode (a history of one call) with top_k 3.

usage: python3 bench/act_bench.py        (about a minute and a half with the defaults)
environment (defaults in brackets):
  DURATION [10]          seconds per run
  REPS [3]               runs per measurement (medians are reported)
  CONNS [16]             wrk -c and h2load -c
  H2_STREAMS [10]        h2load -m
  SERVER_THREADS [2]     the server's `threads`
  AGENTCORE_BIN [build/agentcore of this checkout]

Everything it starts is stopped when it ends (try/finally). See bench/README.md for figures."""
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("AGENTCORE_BIN") or os.path.join(ROOT, "build", "agentcore")
DURATION = int(os.environ.get("DURATION", "10"))
REPS = int(os.environ.get("REPS", "3"))
CONNS = int(os.environ.get("CONNS", "16"))
H2_STREAMS = int(os.environ.get("H2_STREAMS", "10"))
SERVER_THREADS = int(os.environ.get("SERVER_THREADS", "2"))
SECRET = "act-bench-secret-0123456789abcdef0123"
CONFIG = """return {
  threads = %d,
  rate_limits = {
    get_status = { limit = 0 }, act = { limit = 0 }, start_grpo = { limit = 0 }, other = { limit = 0 },
  },
}
""" % SERVER_THREADS


def log(msg):
    sys.stderr.write("[act_bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))


def rpc(port, token, method, params):
    req = urllib.request.Request("http://127.0.0.1:%d/api/v1/jsonrpc" % port, method="POST",
                                 data=json.dumps({"jsonrpc": "2.0", "method": method, "params": params,
                                                  "id": 1}).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=60) as r:
        resp = json.loads(r.read())
    if "result" not in resp:
        raise RuntimeError("%s: %s" % (method, resp))
    return resp["result"]


def wrk(port, token, body_file):
    env = dict(os.environ, WRK_BODY_FILE=body_file, WRK_AUTH="Bearer " + token)
    out = subprocess.run(["wrk", "-t1", "-c%d" % CONNS, "-d%ds" % DURATION, "--latency", "-s",
                          os.path.join(ROOT, "bench", "wrk_post.lua"), "http://127.0.0.1:%d/api/v1/jsonrpc" % port],
                         capture_output=True, text=True, env=env, timeout=DURATION + 60)
    m = re.search(r"WRK_RESULT (.*)", out.stdout)
    if not m:
        raise RuntimeError("wrk: " + out.stdout[-800:] + out.stderr[-800:])
    kv = dict(x.split("=") for x in m.group(1).split())
    if int(kv["err_status"]) or int(kv["err_timeout"]):
        raise RuntimeError("wrk saw errors: " + m.group(1))
    return float(kv["rps"]), int(kv["p50_us"]) / 1000, int(kv["p99_us"]) / 1000


def h2load(port, token, body_file, work):
    logf = os.path.join(work, "h2load.log")
    out = subprocess.run(["h2load", "-t1", "-c%d" % CONNS, "-m%d" % H2_STREAMS, "-D%d" % DURATION,
                          "-d", body_file, "-H", "Content-Type: application/json", "-H",
                          "Authorization: Bearer " + token, "--log-file=" + logf,
                          "http://127.0.0.1:%d/api/v1/jsonrpc" % port],
                         capture_output=True, text=True, timeout=DURATION + 60)
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out.stdout)
    st = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed", out.stdout)
    if not m or not st or int(st.group(2)):
        raise RuntimeError("h2load: " + out.stdout[-1200:])
    lat = []
    with open(logf) as f:
        for line in f:  # start (s), status, duration (us)
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "200":
                lat.append(int(parts[2]))
    lat.sort()
    os.unlink(logf)
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] / 1000
    return float(m.group(3)), pct(50), pct(99)


def main():
    for tool in ("wrk", "h2load"):
        if shutil.which(tool) is None:
            sys.exit("act_bench: %s is missing (Debian: %s)" % (tool, "wrk" if tool == "wrk" else "nghttp2-client"))
    work = tempfile.mkdtemp(prefix="ac-act-bench-")
    proc = None
    try:
        with open(os.path.join(work, "server.lua"), "w") as f:
            f.write(CONFIG)
        env = dict(os.environ, AGENTCORE_JWT_SECRET=SECRET)
        proc = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data", os.path.join(work, "data"),
                                 "--config", os.path.join(work, "server.lua")], stdout=subprocess.PIPE,
                                stderr=open(os.path.join(work, "stderr.log"), "wb"), env=env)
        port = int(re.search(r"port=(\d+)", proc.stdout.readline().decode()).group(1))
        token = subprocess.run([BIN, "token", "--sub", "bench", "--perms",
                                "training:start,training:view,agents:invoke", "--ttl", "7200"], env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
        data = json.loads(subprocess.run(["lua5.4", "examples/gen_data.lua", "calculator", "7"], cwd=ROOT,
                                         capture_output=True, check=True).stdout)
        log("training a small calculator job")
        job = rpc(port, token, "training.start_grpo", {
            "agent_id": "calculator", "training_data": data["training_data"],
            "config": {"n_iterations": 5, "batch_size": 8, "n_trajectories_per_query": 4, "seed": 1}})["job_id"]
        deadline = time.monotonic() + 300
        while rpc(port, token, "training.get_status", {"job_id": job})["status"] != "completed":
            if time.monotonic() > deadline:
                raise RuntimeError("the job did not complete")
            time.sleep(0.5)
        act = {"job_id": job, "query": "Take 14, subtract 2.", "top_k": 3,
               "history": [{"tool": "subtract", "params": {"a": 14, "b": 2}, "result": {"value": 12}}]}
        first = rpc(port, token, "agents.act", act)  # loads the checkpoint into the cache
        log("agents.act answers %s %s" % (first["tool"], json.dumps(first["params"])))
        bodies = {}
        for name, method, params in (("training.get_status", "training.get_status", {"job_id": job}),
                                     ("agents.act", "agents.act", act)):
            path = os.path.join(work, name + ".json")
            with open(path, "w") as f:
                json.dump({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}, f)
            bodies[name] = path
        rows = []
        for proto, fn in (("http/1.1 (wrk)", lambda b: wrk(port, token, b)),
                          ("h2c (h2load)", lambda b: h2load(port, token, b, work))):
            for name, body in bodies.items():
                runs = []
                for rep in range(REPS):
                    runs.append(fn(body))
                    log("%s %s run %d: %.0f req/s, p50 %.2f ms, p99 %.2f ms" % ((name, proto, rep + 1) + runs[-1]))
                rows.append((name, proto, statistics.median(r[0] for r in runs),
                             statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs)))
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        print("| method | protocol | req/s | p50 | p99 |")
        print("|---|---|---|---|---|")
        for r in rows:
            print("| `%s` | %s | %.0f | %.2f ms | %.2f ms |" % r)
        print("\n%d s per run, medians of %d; %d connections (h2c: %d streams each); server threads %d; "
              "load average %s when it ended" % (DURATION, REPS, CONNS, H2_STREAMS, SERVER_THREADS, load))
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
