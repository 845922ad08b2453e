#!/usr/bin/env python3
"""Jobs on the defaults: does a job sent with only agent_id, training_data and evaluation_data
reach >= 0.9 held-out success for each example agent?

Starts the real server (build/agentcore serve) on 127.0.0.1 with a free port, a temporary data
directory and a random JWT secret, and nothing else changed; for each example agent and data seed
generates the data with the agent's generator (examples/<agent>/data.lua, through lua5.4 and
lua-cjson), starts a job with training.start_grpo whose params are only agent_id, training_data
and evaluation_data (no config, no validation_data: validation is the default share held out of
training_data), waits for it to end (training.get_status), and reads its held-out success with
training.evaluate on the job's best checkpoint (selected on that validation split; the evaluation
data chooses nothing). Writes the table to bench/defaults.md.

usage (from anywhere; Python 3 standard library and lua5.4 with lua-cjson):

  python3 bench/defaults_jobs.py              # SEEDS=3, the four agents: about an hour on 2 cores
  SEEDS=2 AGENTS=calculator,support python3 bench/defaults_jobs.py
  python3 bench/defaults_jobs.py --quick      # a try: 1 agent, 1 seed, config n_iterations 20

environment:
  SEEDS          data seeds per agent, 1..SEEDS (default 3; --quick: 1)
  AGENTS         comma-separated agents (default calculator,support,inventory,files; --quick:
                 calculator)
  AGENTCORE_BIN  the binary (default build/agentcore of this checkout)
  N_TRAIN        "experiment" (default): the training-set size of examples/<agent>/experiment.lua
                 (512 calculator, 1024 the others); "generator": the generator's own default (256)
  WORKERS        the server's training workers (server config `workers`); unset: the server's
                 default (1, jobs run one after the other). Not a job setting: it says how many
                 jobs run at once, each on its own defaults.
  JOB_TIMEOUT_S  how long one job may take from its start before the benchmark gives up on it
                 (default 7200)

--quick sends config {"n_iterations": N} (--iterations, default 20): NOT the defaults; it prints
its table and never writes bench/defaults.md. --config JSON sends that config (a control run, e.g.
'{"max_budget_usd": 100000}' to see what the default budget costs): NOT the defaults either; it
prints its table and writes only to an --out given explicitly.
"""
import argparse
import datetime
import http.client
import json
import math
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BIN = os.environ.get("AGENTCORE_BIN") or os.path.join(ROOT, "build", "agentcore")
ALL_AGENTS = ["calculator", "support", "inventory", "files"]
TARGET = 0.9
PERMS = "training:start,training:view,training:cancel,training:evaluate"
FINAL = ("completed", "failed", "cancelled")

# Generates one agent's data set and prints it as JSON: the generator's evaluation_data split is
# the held-out set (new queries in the training phrasings).
LUA_DRIVER = r"""
local root, name, seed, mode = ...
package.path = root .. "lua/?.lua;" .. root .. "lua/?/init.lua;" .. root .. "plugins/?.lua;"
  .. root .. "examples/?.lua;" .. package.path
local cjson = require("cjson")
local gen = require(name .. ".data")
local ok, exp = pcall(dofile, root .. "examples/" .. name .. "/experiment.lua")
local exp_train = ok and type(exp) == "table" and exp.data and exp.data.n_train or nil
local n_train = nil
if mode == "experiment" then n_train = exp_train end
local d = gen.generate(math.tointeger(tonumber(seed)), n_train, nil)
io.write(cjson.encode({
  training_data = d.training_data, evaluation_data = d.evaluation_data,
  generator_default_train = gen.DEFAULT_TRAIN, generator_default_eval = gen.DEFAULT_EVAL,
  experiment_n_train = exp_train or cjson.null,
}), "\n")
"""

# Student t quantiles t_{0.975, df}, df 1..30; above 30 the normal 1.96 is close enough.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042]


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def mean_ci(values):
    """Mean and the half-width of its 95 % Student t interval (None for fewer than 2 values)."""
    n = len(values)
    if n == 0:
        return None, None
    m = sum(values) / n
    if n < 2:
        return m, None
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    t = T975[n - 2] if n - 1 <= len(T975) else 1.96
    return m, t * sd / math.sqrt(n)


def parse_time(s):
    if not s:
        return None
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def fmt_s(seconds):
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


# ---- the server ------------------------------------------------------------------------------
class Server:
    def __init__(self, workers=None):
        self.tmp = tempfile.mkdtemp(prefix="ac-defaults-")
        self.secret = secrets.token_hex(32)
        self.env = dict(os.environ, AGENTCORE_JWT_SECRET=self.secret)
        self.env.pop("AGENTCORE_STORE_DSN", None)  # the embedded LMDB store, in the temp dir
        self.proc = None
        self.port = None
        cmd = [BIN, "serve", "--listen", "127.0.0.1:0", "--data", os.path.join(self.tmp, "data")]
        if workers is not None:
            cfg = os.path.join(self.tmp, "server.lua")
            with open(cfg, "w") as f:
                f.write(f"return {{ workers = {int(workers)} }}\n")
            cmd += ["--config", cfg]
        self.cmd = cmd
        self.log_path = os.path.join(self.tmp, "server.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, env=self.env, cwd=ROOT)
        line = self.proc.stdout.readline().decode(errors="replace")
        m = re.search(r"port=(\d+)", line)
        if not m:
            raise RuntimeError(f"the server did not start: {line!r}\n{self.stderr()[-2000:]}")
        self.port = int(m.group(1))

    def stderr(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def token(self, sub):
        out = subprocess.run([BIN, "token", "--sub", sub, "--perms", PERMS, "--ttl", "172800"],
                             env=self.env, capture_output=True, text=True, timeout=60, cwd=ROOT)
        if out.returncode != 0:
            raise RuntimeError(f"agentcore token failed: {out.stderr}")
        return out.stdout.strip().splitlines()[-1].strip()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def close(self):
        proc, self.proc = self.proc, None
        try:
            if proc is not None:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                proc.stdout.close()
        finally:
            self.log.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


class RpcError(Exception):
    def __init__(self, method, error):
        super().__init__(f"{method}: {json.dumps(error)}")
        self.error = error


class Client:
    """JSON-RPC over HTTP/1.1 as one principal; waits out rate limits (429 / -32029 and its
    Retry-After) instead of calling again."""

    def __init__(self, server, token):
        self.server = server
        self.token = token
        self.n = 0

    def call(self, method, params, timeout=600, rate_wait=900):
        deadline = time.monotonic() + rate_wait
        while True:
            self.n += 1
            body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": self.n}).encode()
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=timeout)
            try:
                conn.request("POST", "/api/v1/jsonrpc", body=body, headers={
                    "Content-Type": "application/json", "Authorization": "Bearer " + self.token})
                r = conn.getresponse()
                status, headers, data = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
            finally:
                conn.close()
            resp = json.loads(data) if data else {}
            err = resp.get("error") if isinstance(resp, dict) else None
            if status == 429 or (err and err.get("code") == -32029):
                wait = None
                for v in ((err or {}).get("data", {}).get("retry_after_s"), headers.get("retry-after")):
                    try:
                        wait = max(float(v), 0.05)
                        break
                    except (TypeError, ValueError):
                        pass
                wait = wait if wait is not None else 1.0
                if time.monotonic() + wait > deadline:
                    raise RuntimeError(f"{method}: still rate limited after {rate_wait} s")
                log(f"{method}: rate limited, waiting {wait:g} s (Retry-After)")
                time.sleep(wait)
                continue
            if err is not None:
                raise RpcError(method, err)
            if "result" not in resp:
                raise RuntimeError(f"{method}: HTTP {status} {data[:300]!r}")
            return resp["result"]


# ---- data --------------------------------------------------------------------------------------
def generate(agent, seed, mode):
    out = subprocess.run(["lua5.4", "-", ROOT + "/", agent, str(seed), mode], input=LUA_DRIVER,
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"data generation for {agent} seed {seed} failed: {out.stderr}")
    return json.loads(out.stdout)


# ---- the machine -------------------------------------------------------------------------------
def machine():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(os.cpu_count())
    return {"nproc": nproc, "cpu": model or platform.processor() or "unknown"}


def loadavg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def others_running():
    """Other training on the machine while the benchmark runs (the lead's learning benchmark)."""
    try:
        out = subprocess.run(["pgrep", "-f", "learning.sh|agentcore train"], capture_output=True, text=True)
        return len([p for p in out.stdout.split() if p.strip()])
    except OSError:
        return 0


def git_commit():
    try:
        c = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        d = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True)
        return c.stdout.strip() + ("+dirty" if d.stdout.strip() else "")
    except OSError:
        return "unknown"


def grpo_defaults():
    out = subprocess.run([BIN, "config", "--reference", "--json"], capture_output=True, text=True, timeout=60)
    keys = {}
    for section in json.loads(out.stdout)["grpo"]:
        prefix = section["section"] + "." if section["section"] else ""
        for k in section["keys"]:
            keys[prefix + k["key"]] = k["default"]
    return keys


# ---- one job -----------------------------------------------------------------------------------
class Job:
    def __init__(self, agent, seed):
        self.agent, self.seed = agent, seed
        self.sub = f"defaults-{agent}-s{seed}"
        self.client = None
        self.job_id = None
        self.status = None
        self.sent_config = None        # None: the request had no config at all
        self.n_train = self.n_eval = None
        self.submitted = None          # monotonic
        self.seen_running = None       # monotonic, first poll that saw it running
        self.ended = None              # monotonic, first poll that saw it final
        self.next_poll = 0.0
        self.delay = 1.0
        self.last_print = 0.0
        self.last = {}
        self.evaluation = None
        self.best_val = None
        self.note = []
        self.cancel_sent = False

    def label(self):
        return f"{self.agent} seed {self.seed}"

    def wall_s(self):
        """The job's run on its worker: started_at to finished_at (server clock, 1 s steps); the
        client's view (first poll running to first poll ended) when those are missing."""
        a, b = parse_time(self.last.get("started_at")), parse_time(self.last.get("finished_at") or self.last.get("cancelled_at"))
        if a and b:
            return (b - a).total_seconds()
        if self.seen_running and self.ended:
            return self.ended - self.seen_running
        return None


def probe_config(server):
    """Whether training.start_grpo takes a request without config: sent with 5 training queries,
    which no validator accepts, so that no job is made either way. Returns the error refusing
    the missing config, or None when the request got past that check."""
    client = Client(server, server.token("defaults-probe"))
    q = [{"query": f"probe {i}", "expected_outcome": {}} for i in range(5)]
    try:
        r = client.call("training.start_grpo", {"agent_id": "calculator", "training_data": q})
    except RpcError as e:
        d = e.error.get("data") or {}
        return e.error if d.get("field") == "config" else None
    # Accepted (a validator that takes 5 queries): cancel the job the probe made.
    client.call("training.cancel", {"job_id": r["job_id"], "reason": "probe"})
    return None


def start_job(server, job, config, probe_config_required):
    job.client = Client(server, server.token(job.sub))
    data = generate(job.agent, job.seed, N_TRAIN_MODE)
    job.n_train, job.n_eval = len(data["training_data"]), len(data["evaluation_data"])
    params = {"agent_id": job.agent, "training_data": data["training_data"],
              "evaluation_data": data["evaluation_data"]}
    if config is not None:
        params["config"] = config
        job.sent_config = config
    try:
        r = job.client.call("training.start_grpo", params)
    except RpcError as e:
        d = e.error.get("data") or {}
        if config is None and d.get("field") == "config":
            # The acceptance point's request as such is refused: say so, and send the documented
            # equivalent ("config": {} takes every default) so that the defaults are measured.
            probe_config_required.append(e.error)
            params["config"] = {}
            job.sent_config = {}
            r = job.client.call("training.start_grpo", params)
        else:
            raise
    job.job_id = r["job_id"]
    job.status = r["status"]
    job.submitted = time.monotonic()
    log(f"{job.label()}: job {job.job_id} {job.status} ({job.n_train} training, {job.n_eval} held-out "
        f"queries, {r.get('total_iterations')} iterations)")


def poll_job(job, timeout_s):
    now = time.monotonic()
    s = job.client.call("training.get_status", {"job_id": job.job_id})
    job.last = s
    job.status = s["status"]
    if job.status == "running" and job.seen_running is None:
        job.seen_running = now
    if job.status in FINAL:
        job.ended = now
        return True
    if job.status == "running" and now - job.last_print > 60:
        job.last_print = now
        m = s.get("metrics") or {}
        va = m.get("validation_accuracy")
        log(f"{job.label()}: iteration {s.get('current_iteration')}/{s.get('total_iterations')}, "
            f"validation {va if va is None else round(va, 3)}, success {round(m.get('success_rate') or 0, 3)}, "
            f"cost {s.get('cost_usd')} USD")
    started = job.seen_running or job.submitted
    if job.status == "running" and now - started > timeout_s and not job.cancel_sent:
        job.cancel_sent = True
        job.note.append(f"cancelled by the benchmark after {timeout_s} s")
        try:
            job.client.call("training.cancel", {"job_id": job.job_id, "reason": "benchmark timeout"})
        except RpcError as e:
            log(f"{job.label()}: cancel: {e}")
    return False


def finish_job(job):
    s = job.last
    log(f"{job.label()}: {job.status}{' (' + s['cancel_reason'] + ')' if s.get('cancel_reason') else ''}"
        f"{' error: ' + str(s.get('error')) if s.get('error') else ''} after {s.get('current_iteration')} "
        f"iterations, {fmt_s(job.wall_s())}, cost {s.get('cost_usd')} USD")
    if s.get("cancel_reason"):
        job.note.append(f"cancelled: {s['cancel_reason']}")
    if s.get("error"):
        job.note.append(f"failed: {str(s['error'])[:200]}")
    try:
        # No checkpoint_id: the best checkpoint by validation accuracy (the share held out of
        # training_data); no evaluation_queries: the job's evaluation_data.
        job.evaluation = job.client.call("training.evaluate", {"job_id": job.job_id}, timeout=1800)
        ev = job.evaluation
        try:
            cps = job.client.call("training.list_checkpoints", {"job_id": job.job_id})
            for c in cps.get("checkpoints", []):
                if c.get("checkpoint_id") == ev.get("checkpoint_id"):
                    job.best_val = c.get("validation_accuracy")
        except RpcError as e:
            log(f"{job.label()}: list_checkpoints: {e}")
        if ev.get("selected_by") != "validation":
            job.note.append(f"checkpoint selected_by {ev.get('selected_by')}")
        log(f"{job.label()}: held-out success {ev['metrics']['success_rate']:.3f} "
            f"(untrained {ev['baseline_comparison']['baseline']['success_rate']:.3f}), checkpoint of "
            f"iteration {ev.get('checkpoint_iteration')} selected_by {ev.get('selected_by')}, "
            f"validation {job.best_val}")
    except RpcError as e:
        job.note.append(f"no evaluation: {e.error.get('message')}")
        log(f"{job.label()}: evaluate: {e}")


def success(job):
    """Held-out success; a job with nothing to evaluate counts as 0 (it reached nothing)."""
    if job.evaluation:
        return job.evaluation["metrics"]["success_rate"]
    return 0.0


# ---- the report ----------------------------------------------------------------------------------
def report(jobs, agents, seeds, ctx):
    lines = []
    w = lines.append
    quick = ctx["quick"]
    w("# Jobs on the defaults: held-out success per example agent")
    w("")
    if quick:
        w(f"**--quick: config {json.dumps(ctx['quick_config'])} — NOT the defaults; a try of the script, "
          "not a result.**")
        w("")
    elif ctx["quick_config"] is not None:
        w(f"**Control run: config {json.dumps(ctx['quick_config'])} — NOT the defaults (every other "
          "key takes its default).**")
        w("")
    w("The acceptance point: *a job sent with only `agent_id`, `training_data` (>= 100) and "
      "`evaluation_data` for each example agent reaches >= 0.9 held-out success with the defaults.*")
    w("")
    w(f"Each job: `training.start_grpo` with params {ctx['params_desc']}; the server on its embedded "
      f"defaults{ctx['server_desc']}. Held-out success = `training.evaluate` on the job's best "
      "checkpoint (`selected_by` `validation`: the share of training_data the job holds out, "
      "`validation_fraction` 0.2) over the generator's `evaluation_data` (64 new queries in the "
      "training phrasings), greedy. Interval: 95 % Student t over the seeds. Wall time: the job's "
      "`started_at` to `finished_at` on its worker (queueing excluded).")
    w("")
    e = ctx["probe"] or (ctx["config_refused"][0] if ctx["config_refused"] else None)
    if e:
        w(f"**The request as the acceptance point words it (no `config`) is refused by this build**: "
          f"`{json.dumps(e)}` (docs/api.md lists `config` as required). "
          + ("The jobs below were sent with `\"config\": {}` (docs/api.md: \"`{}` takes every "
             "default\") to measure the defaults anyway." if ctx["quick_config"] is None else ""))
        w("")
    else:
        w("A request without `config` is accepted by this build.")
        w("")
    w("| agent | held-out success, mean ± 95 % | per seed | jobs >= 0.90 | target >= 0.90 | "
      "untrained | wall time per job (m:ss) |")
    w("|---|---|---|---|---|---|---|")
    verdicts = {}
    for agent in agents:
        js = [j for j in jobs if j.agent == agent]
        vals = [success(j) for j in js]
        m, h = mean_ci(vals)
        if m is None:
            continue
        ci = f"{m:.3f} ± {h:.3f}" if h is not None else f"{m:.3f} (one seed)"
        per = ", ".join(f"{v:.3f}" for v in vals)
        k = sum(1 for v in vals if v >= TARGET)
        if m >= TARGET:
            verdict = "met" + ("" if k == len(vals) else f" on the mean ({len(vals) - k} job(s) below)")
        else:
            verdict = f"missed by {TARGET - m:.3f}"
        verdicts[agent] = verdict
        base = [j.evaluation["baseline_comparison"]["baseline"]["success_rate"] for j in js if j.evaluation]
        bm = f"{sum(base) / len(base):.3f}" if base else "-"
        walls = ", ".join(fmt_s(j.wall_s()) for j in js)
        w(f"| {agent} | {ci} | {per} | {k}/{len(vals)} | {verdict} | {bm} | {walls} |")
    w("")
    w("Per job:")
    w("")
    w("| agent | seed | status | iterations | selected checkpoint (iteration, validation) | held-out success "
      "[Wilson 95 %] | untrained | last iteration's training success | cost USD | wall | note |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for j in jobs:
        s = j.last
        ev = j.evaluation
        if ev:
            ci = ev["metrics"].get("success_rate_ci95") or [None, None]
            held = f"{ev['metrics']['success_rate']:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]"
            sel = f"{ev.get('checkpoint_iteration')}, {j.best_val:.3f}" if j.best_val is not None else \
                f"{ev.get('checkpoint_iteration')}, -"
            base = f"{ev['baseline_comparison']['baseline']['success_rate']:.3f}"
        else:
            held, sel, base = "0 (none)", "-", "-"
        ts = (s.get("metrics") or {}).get("success_rate")
        train_succ = f"{ts:.3f}" if isinstance(ts, (int, float)) else "-"
        w(f"| {j.agent} | {j.seed} | {j.status} | {s.get('current_iteration')}/{s.get('total_iterations')} | "
          f"{sel} | {held} | {base} | {train_succ} | {s.get('cost_usd')} | {fmt_s(j.wall_s())} | {'; '.join(j.note)} |")
    w("")
    d = ctx["defaults"]
    w("The defaults the jobs trained with (`agentcore config --reference`), beside what "
      "examples/<agent>/experiment.lua (bench/learning.md) sets:")
    w("")
    w("| key | default | experiment files |")
    w("|---|---|---|")
    for key, exp in (("n_iterations", "1000"), ("batch_size", "16"), ("n_trajectories_per_query", "8"),
                     ("learning_rate", "default"), ("beta", "default"),
                     ("max_steps_per_trajectory", "14 support, inventory; 10 files; default calculator"),
                     ("policy.max_tokens", "256 support, inventory, files; default calculator"),
                     ("eval_interval", "25 calculator; default others"), ("checkpoint_interval", "default"),
                     ("validation_fraction", "not used: the generator's validation_data (64)"),
                     ("max_budget_usd", "not enforced offline: `agentcore train` runs without a budget"),
                     ("seed", "1..N (--seeds)")):
        if key in d:
            w(f"| `{key}` | {d[key]} | {exp} |")
    w("")
    w(f"Data: examples/<agent>/data.lua, seeds 1..{seeds}; training_data {ctx['n_train_desc']}, "
      "evaluation_data the generator's split of 64; no validation_data.")
    w("")
    w(f"Machine: {ctx['machine']['nproc']} cores, {ctx['machine']['cpu']}; load average "
      f"{ctx['load_start']:.2f} at the start, {ctx['load_end']:.2f} at the end; "
      f"{ctx['others_start']} other training process(es) (`bench/learning.sh`, `agentcore train`) at the "
      f"start, {ctx['others_end']} at the end. Commit {ctx['commit']}; {ctx['started']} to "
      f"{ctx['finished']} UTC ({fmt_s(ctx['total_s'])} in all).")
    w("")
    w("Command (from the repository root):")
    w("")
    w("```")
    w(ctx["command"])
    w("```")
    if ctx.get("extra"):
        w("")
        w(ctx["extra"])
    return "\n".join(lines) + "\n", verdicts


# ---- main ----------------------------------------------------------------------------------------
N_TRAIN_MODE = "experiment"


def main():
    global N_TRAIN_MODE
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="a try: 1 agent, 1 seed, config n_iterations (NOT the defaults); never writes bench/defaults.md")
    ap.add_argument("--iterations", type=int, default=20, help="--quick: n_iterations (default 20)")
    ap.add_argument("--config", default=None,
                    help="a control run: this JSON object as the jobs' config (NOT the defaults)")
    ap.add_argument("--out", default=None,
                    help="where to write the table (default bench/defaults.md; with --config only when given; "
                         "never with --quick)")
    ap.add_argument("--note", default="", help="a sentence added under the table (why fewer seeds, say)")
    args = ap.parse_args()

    seeds = int(os.environ.get("SEEDS") or (1 if args.quick else 3))
    agents = [a.strip() for a in (os.environ.get("AGENTS") or ("calculator" if args.quick else ",".join(ALL_AGENTS))).split(",") if a.strip()]
    N_TRAIN_MODE = os.environ.get("N_TRAIN", "experiment")
    if N_TRAIN_MODE not in ("experiment", "generator"):
        sys.exit("N_TRAIN must be 'experiment' or 'generator'")
    workers = os.environ.get("WORKERS")
    timeout_s = float(os.environ.get("JOB_TIMEOUT_S", "7200"))
    for a in agents:
        if not os.path.isfile(os.path.join(ROOT, "examples", a, "data.lua")):
            sys.exit(f"no generator examples/{a}/data.lua")
    if not os.access(BIN, os.X_OK):
        sys.exit(f"no agentcore binary at {BIN} (build it, or set AGENTCORE_BIN)")
    if shutil.which("lua5.4") is None:
        sys.exit("lua5.4 is not on PATH")
    quick_config = {"n_iterations": args.iterations} if args.quick else None
    if args.config is not None:
        given = json.loads(args.config)
        if not isinstance(given, dict):
            sys.exit("--config must be a JSON object")
        quick_config = dict(given, **(quick_config or {}))
    out = None if args.quick else (args.out or (None if args.config is not None else
                                                 os.path.join(ROOT, "bench", "defaults.md")))

    env_parts = [f"SEEDS={seeds}", f"AGENTS={','.join(agents)}"]
    if N_TRAIN_MODE != "experiment":
        env_parts.append(f"N_TRAIN={N_TRAIN_MODE}")
    if workers:
        env_parts.append(f"WORKERS={workers}")
    if os.environ.get("AGENTCORE_BIN"):
        env_parts.append(f"AGENTCORE_BIN={shlex.quote(os.environ['AGENTCORE_BIN'])}")
    argv = ["python3", "bench/defaults_jobs.py"] + sys.argv[1:]
    command = " ".join(env_parts + [shlex.quote(a) for a in argv])

    ctx = {"quick": args.quick, "quick_config": quick_config, "machine": machine(), "load_start": loadavg(),
           "others_start": others_running(), "commit": git_commit(), "defaults": grpo_defaults(),
           "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "command": command,
           "config_refused": [], "probe": None}
    t0 = time.monotonic()

    def on_signal(signum, _frame):
        raise SystemExit(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    server = Server(workers)
    jobs = []
    try:
        log(f"server on 127.0.0.1:{server.port} (pid {server.proc.pid}), data in {server.tmp}"
            f"{', workers = ' + workers if workers else ', server defaults'}")
        refused = probe_config(server)
        ctx["probe"] = refused
        log("a request without config: " + ("refused " + json.dumps(refused) if refused else "accepted"))
        # Seed-major order: a run cut short still has every agent's first seeds.
        for seed in range(1, seeds + 1):
            for agent in agents:
                jobs.append(Job(agent, seed))
        # Every job is its own principal (JWT sub): each has the default principal budget (1000
        # USD, against which queued and running jobs reserve their max_budget_usd) and its own rate
        # limit windows, so no job is refused or slowed because of another. They queue on the
        # server's training workers in this order.
        for job in jobs:
            start_job(server, job, quick_config, ctx["config_refused"])
        pending = list(jobs)
        while pending:
            now = time.monotonic()
            for job in list(pending):
                if now < job.next_poll:
                    continue
                if poll_job(job, timeout_s):
                    pending.remove(job)
                    finish_job(job)
                    continue
                # Poll a running job every few seconds (up to 15 s as it goes on), a queued one
                # less often; a poll is cheap and well under get_status's 100 calls per minute.
                cap = 15.0 if job.status == "running" else 30.0
                job.delay = min(job.delay * 1.5, cap)
                job.next_poll = time.monotonic() + job.delay
            if not server.alive():
                raise RuntimeError("the server exited:\n" + server.stderr()[-3000:])
            if pending:
                time.sleep(max(0.05, min(j.next_poll for j in pending) - time.monotonic()))
    finally:
        server.close()

    ctx["load_end"] = loadavg()
    ctx["others_end"] = others_running()
    ctx["finished"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    ctx["total_s"] = time.monotonic() - t0
    ctx["params_desc"] = ("`agent_id`, `training_data`, `evaluation_data` and `config` "
                          f"{json.dumps(quick_config)}" if quick_config is not None else
                          "only `agent_id`, `training_data` and `evaluation_data` (no `config`, no `validation_data`)")
    ctx["server_desc"] = (f" except `workers = {workers}` (jobs running at once; no job setting)" if workers else
                          " (one training worker: the jobs ran one after the other)")
    ctx["server_desc"] += " plus what a private run needs: `--listen 127.0.0.1:0`, `--data` a temporary directory, a random `AGENTCORE_JWT_SECRET`"
    sizes = sorted({(j.agent, j.n_train) for j in jobs})
    ctx["n_train_desc"] = ("the experiment file's n_train" if N_TRAIN_MODE == "experiment" else
                           "the generator's default size") + " (" + ", ".join(f"{a} {n}" for a, n in sizes) + ")"
    ctx["extra"] = args.note
    text, verdicts = report(jobs, agents, seeds, ctx)
    print(text)
    if out is None:
        log("bench/defaults.md not written" + (" (--quick)" if args.quick else " (--config: a control run)"))
    else:
        with open(out, "w") as f:
            f.write(text)
        log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
