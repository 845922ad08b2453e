"""Large bodies cannot stall the server: the token is checked from the headers before the body is
parsed (or copied), bodies above limits.parse_on_loop_bytes are parsed on the RPC workers under
a bound of JSON values, and memory goes back to the kernel afterwards (README, "Limits").

The attack: 8 concurrent 16 MiB bodies of 8 M array elements over separate connections, while
another thread polls GET /healthz. Run this file directly to see the measured figures (lines
starting with "bigbody:" on stderr)."""
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import unittest

from harness import Server, claims, make_jwt, main

N_VALUES = 8 * 1024 * 1024 - 1  # "[0,0,...,0]" is then 16 MiB - 1 byte: just under the default body limit
BIG = b"[" + b"0," * (N_VALUES - 1) + b"0]"
N_ATTACKERS = 8
MAX_VALUES = 1000000  # limits.max_json_values (the default)
UNKNOWN = "550e8400-e29b-41d4-a716-446655440000"

# The attack lasts until the probe has this many /healthz samples (so that p99 is not just the
# worst sample), or ATTACK_MAX_S; every attacker sends at least one body.
MIN_PROBES = 200
ATTACK_MAX_S = 20.0
PROBE_INTERVAL_S = 0.005
# Each connection sends at most this many bytes/s: 8 together 200 MB/s (1.6 Gbit/s), more than a
# 1 Gbit/s link delivers. Unpaced, 8 local senders push bodies through loopback as fast as memory
# allows and the server spends both cores taking them in, whatever it then does with them (see
# Attack); the code before this test stalled for seconds even with paced senders.
RATE = 25e6

# Measured on this 2-core machine, shared with other sessions (more in the commit messages): a
# 401 to a paced 16 MiB body came 0.67-0.69 s after its first byte (0.67 s is the sending), at
# most 21 ms after its last; the code before answered up to 4.5 s after the last byte and 10 s
# after the first. /healthz p99 (with the held-back probes) 13-18 ms, against 2.9 s before (and
# 24-66 ms with the senders in lock-step, see Attack; ctest runs this test alone, RUN_SERIAL,
# as another test beside it is measured too). RSS came back to 16.6-16.8 MiB from 19-21 MiB
# before the attack (the warm-up leaves more than the attack), against 464 MiB before.
# On another 2-core host (a PVM guest on an AMD EPYC of family 26, 2026-12-02), where a page
# fault costs far more, the same code measured p50 33-37 ms and p99 106-232 ms, quiet or beside a
# training run: the loop's time went to page faults in fresh buffer memory (23 % of perf's
# samples), glibc's memmove of the doubling buffers (25 %) and the kernel's copy of received bytes
# (10 %). So the p99 bound is not the 13-18 ms of the first host with a margin, but one that
# still fails the stalls this test was written for (2.9 s before the limits): what a host's
# memory costs is measured, not asserted (the figures are logged; README, "Limits").
# The 401 bound has a wide margin too.
REFUSED_WITHIN_S = 5.0
HEALTHZ_P99_MS = 500.0
# Under ASan + UBSan (tests/run_all.sh runs the suite again so) every large allocation and copy
# costs several times more (ASan maps and poisons its shadow too): p99 was 130 ms there on the
# first host, 609 ms on the PVM guest beside a training run. The bound still catches a loop that
# parses 16 MiB (seconds).
HEALTHZ_P99_MS_ASAN = 2000.0
RSS_SLACK = 1.20       # after the attack RSS comes back within 20 % of its value before it
RSS_DEADLINE_S = 30.0  # ... within this long (the kernel may take a moment)


def log(msg):
    sys.stderr.write("bigbody: " + msg + "\n")
    sys.stderr.flush()


def proc_status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def under_asan(pid):
    """ASan's allocator keeps freed memory in its quarantine: RSS then says nothing about glibc's."""
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


class HealthzProbe(threading.Thread):
    """GET /healthz every PROBE_INTERVAL_S (or as soon as the previous probe is done), over a new
    connection each time (so that every event loop gets probes, the kernel spreading connections
    over the SO_REUSEPORT listeners), until stopped. Records (start time, latency in ms) of each
    probe, and failures."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.halt = threading.Event()
        self.samples = []
        self.failures = []

    def run(self):
        while not self.halt.is_set():
            t0 = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    self.failures.append(f"status {r.status}")
            except (OSError, http.client.HTTPException) as e:
                self.failures.append(repr(e))
            finally:
                conn.close()
            t1 = time.perf_counter()
            self.samples.append((t0, (t1 - t0) * 1000.0))
            self.halt.wait(max(0.0, t0 + PROBE_INTERVAL_S - t1))  # pacing

    def count_since(self, t):
        return sum(1 for t0, _ in self.samples if t0 >= t)

    def latencies(self, t_from, t_to):
        """Latencies (ms) of the probes started in [t_from, t_to], corrected for coordinated
        omission as HdrHistogram does: a probe that took L ms held back the probes due every
        PROBE_INTERVAL_S meanwhile, which count as L - interval, L - 2 interval, ... Without it,
        a loop stalled for 5 s shows as one slow sample among hundreds of fast ones, and p99
        misses it."""
        out = []
        step = PROBE_INTERVAL_S * 1000.0
        for t0, lat in self.samples:
            if t_from <= t0 <= t_to:
                out.append(lat)
                held = lat - step
                while held >= step:
                    out.append(held)
                    held -= step
        return out

    def stop(self):
        self.halt.set()
        self.join(timeout=90)


def send_paced(conn, body, rate):
    """Sends body at `rate` bytes/s (in 256 KiB pieces) over conn, whose headers are sent."""
    t0 = time.perf_counter()
    piece = 256 * 1024
    for off in range(0, len(body), piece):
        conn.send(body[off:off + piece])
        ahead = t0 + (off + piece) / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)  # pacing, as a network link would


def post_big(port, token, rate, delay, barrier, stop, max_rounds, out):
    """After `delay` s, POSTs BIG at `rate` bytes/s over a new connection each time, at least
    once, until stop is set or max_rounds are done; appends status, parsed response and timings
    of each to out."""
    barrier.wait(timeout=60)
    time.sleep(delay)  # the sender's place in the staggered start (see Attack)
    for i in range(max_rounds):
        if i > 0 and stop.is_set():
            break
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        try:
            t0 = time.perf_counter()
            conn.putrequest("POST", "/api/v1/jsonrpc")
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(BIG)))
            if token is not None:
                conn.putheader("Authorization", "Bearer " + token)
            conn.endheaders()
            send_paced(conn, BIG, rate)
            t_sent = time.perf_counter()
            r = conn.getresponse()
            data = r.read()
            t1 = time.perf_counter()
            out.append({"status": r.status, "headers": {k.lower(): v for k, v in r.getheaders()},
                        "resp": json.loads(data) if data else None, "total_s": t1 - t0, "after_send_s": t1 - t_sent})
        except Exception as e:  # recorded, then asserted on: a dropped connection is a finding
            out.append({"error": repr(e)})
        finally:
            conn.close()


def attacker_main(port, n, max_rounds, rate, token):
    """The attacking process (see Attack): prints "go" as its n senders start, stops them when a
    line arrives on stdin (or it closes), then prints their results as one JSON line."""
    out = []
    stop = threading.Event()
    barrier = threading.Barrier(n + 1)
    stagger = float(os.environ.get("BIGBODY_STAGGER", "1"))  # 0: lock-step (see Attack)
    threads = [threading.Thread(target=post_big, args=(port, token, rate, stagger * i * len(BIG) / rate / n, barrier,
                                                       stop, max_rounds, out))
               for i in range(n)]
    for t in threads:
        t.start()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    print("go", flush=True)
    barrier.wait(timeout=60)
    for t in threads:
        t.join(timeout=600)
    print(json.dumps(out), flush=True)


class Attack:
    """n concurrent senders POSTing BIG over new connections at RATE bytes/s each, with a /healthz
    probe running throughout. The attack goes on until the probe has MIN_PROBES samples (or
    ATTACK_MAX_S), so that p99 is a percentile.

    Sender i starts i/n of a body's sending time after the first, as independent clients would:
    all n bodies are in flight together most of the time. In lock-step (BIGBODY_STAGGER=0 in the
    environment) every body crosses 1, 2, 4, 8 and 16 MiB at the same moment, and h2o 2.2.5 copies
    each into a buffer twice the size at those points, in fresh memory (12-21 ms for the last
    16 MiB here): an event loop holding 4 such connections stalls for 40-100 ms at the last of
    them. /healthz p99 was then 24-66 ms, against 11-13 ms staggered (README, "Limits").

    The senders run in a separate process at the lowest CPU priority (nice 19): on a 2-core
    machine, 8 local senders pushing 16 MiB each through loopback otherwise take the CPU from
    the probe and the server alike (the kernel's side of loopback TCP runs in the sender's
    context), and /healthz would measure the load generator rather than the server. An attacker
    elsewhere does not spend our CPU on its sending either."""

    def __init__(self, server, token, n, max_rounds=1000):
        self.server, self.token, self.n, self.max_rounds = server, token, n, max_rounds

    def run(self):
        probe = HealthzProbe(self.server.port)
        probe.start()
        child = None
        go = results = b""
        try:
            while probe.count_since(0) < 20:  # the probe is up before the attack starts
                time.sleep(0.01)
            cmd = [sys.executable, os.path.abspath(__file__), "--attack", str(self.server.port), str(self.n),
                   str(self.max_rounds), str(RATE), self.token or ""]
            child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     preexec_fn=lambda: os.nice(19))
            go = child.stdout.readline()
            t_start = time.perf_counter()
            while probe.count_since(t_start) < MIN_PROBES and time.perf_counter() - t_start < ATTACK_MAX_S:
                time.sleep(0.05)
            try:
                child.stdin.write(b"stop\n")
                child.stdin.close()
            except BrokenPipeError:  # the attacker is gone already: its exit status says why
                pass
            results = child.stdout.readline()
            t_end = time.perf_counter()
            child.wait(timeout=60)
        finally:
            probe.stop()  # the probe in flight, if any, completes and counts
            if child is not None:
                if child.poll() is None:
                    child.kill()
                    child.wait()
                child.stdout.close()
        if go.strip() != b"go" or child.returncode != 0:
            raise AssertionError(f"the attacking process failed (exit {child.returncode}): {go!r} {results[:300]!r}")
        self.wall_s = t_end - t_start
        self.results = json.loads(results)
        self.healthz = probe.latencies(t_start, t_end)
        self.probes = probe.count_since(t_start) - probe.count_since(t_end + 1e-9)
        self.healthz_failures = probe.failures
        return self


class BigBodyTest(unittest.TestCase):
    CONFIG = "return { threads = 2, rpc_workers = 2 }"  # every limit at its default

    def setUp(self):
        self.server = Server(self.CONFIG)
        self.addCleanup(self.server.close)
        self.pid = self.server.proc.pid
        self.asan = under_asan(self.pid)

    def rss(self):
        return proc_status_kib(self.pid, "VmRSS")

    def warm_up(self):
        """Ordinary traffic first, small and large bodies, so that RSS 'before' is the working size
        of a server that has served requests (its threads' malloc arenas exist), not its size at
        start."""
        tok = make_jwt(claims("warm"))
        call = {"jsonrpc": "2.0", "method": "training.get_status", "params": {"job_id": UNKNOWN}}
        for i in range(3):
            status, _, _ = self.server.call("training.list_jobs", {}, tok, id=i)
            self.assertEqual(status, 200)
            status, _, _ = self.server.post(dict(call, id="w" * 100000), tok)  # large: on a worker
            self.assertEqual(status, 200)
            status, _, _ = self.server.post(b"[" + b"0," * 500000 + b"0]", None, raw=True)
            self.assertEqual(status, 401)
            self.server.request("GET", "/healthz")

    def healthz_figures(self, attack, what):
        lat = attack.healthz
        p50, p99, worst = pct(lat, 50), pct(lat, 99), max(lat)
        log(f"{what}: /healthz during the attack ({attack.wall_s:.2f} s): {attack.probes} probes "
            f"({len(lat)} samples with the held-back ones), p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms, "
            f"failures {len(attack.healthz_failures)}")
        return p99

    def check_healthz(self, attack, p99):
        self.assertGreaterEqual(len(attack.healthz), 10, "the probe ran during the attack")
        self.assertEqual(attack.healthz_failures, [], "no /healthz probe failed")
        bound = HEALTHZ_P99_MS_ASAN if self.asan else HEALTHZ_P99_MS
        self.assertLess(p99, bound, f"/healthz p99 {p99:.1f} ms during the attack")

    def rss_after(self, before, what):
        """Polls VmRSS until it is back within RSS_SLACK of before (or the deadline); logs the figures."""
        peak = proc_status_kib(self.pid, "VmHWM")
        deadline = time.monotonic() + RSS_DEADLINE_S
        after = self.rss()
        while after > before * RSS_SLACK and time.monotonic() < deadline and not self.asan:
            time.sleep(0.2)
            after = self.rss()
        log(f"{what}: RSS before {before / 1024:.1f} MiB, peak (VmHWM) {peak / 1024:.1f} MiB, "
            f"after {after / 1024:.1f} MiB{' (ASan build: not asserted)' if self.asan else ''}")
        return after

    def check_rss(self, before, after):
        if not self.asan:
            self.assertLessEqual(after, before * RSS_SLACK,
                                 f"RSS {after} KiB did not come back within 20 % of {before} KiB")

    def test_unauthenticated_big_bodies_get_401_at_once(self):
        self.warm_up()
        before = self.rss()
        attack = Attack(self.server, None, N_ATTACKERS).run()
        failed = [r["error"] for r in attack.results if "error" in r]
        done = [r for r in attack.results if "error" not in r]
        totals = [r["total_s"] for r in done] or [float("nan")]
        after_send = [r["after_send_s"] * 1000 for r in done] or [float("nan")]
        log(f"unauthenticated: {len(attack.results)} bodies of {len(BIG)} bytes from {N_ATTACKERS} connections "
            f"at a time; 401 after (sending included) min {min(totals):.3f} s, median {pct(totals, 50):.3f} s, "
            f"max {max(totals):.3f} s; after the last byte was sent median {pct(after_send, 50):.1f} ms, "
            f"max {max(after_send):.1f} ms; failed: {len(failed)}")
        p99 = self.healthz_figures(attack, "unauthenticated")
        after = self.rss_after(before, "unauthenticated")
        self.assertEqual(failed, [], "no big request's connection failed")
        self.assertGreaterEqual(len(done), N_ATTACKERS)
        for r in done:
            self.assertEqual(r["status"], 401, r.get("resp"))
            self.assertEqual(r["headers"].get("www-authenticate"), 'Bearer error="invalid_token"')
            self.assertEqual(r["resp"]["error"]["code"], -32002)
            self.assertEqual(r["resp"]["error"]["data"], {"error": "missing token"})
            self.assertIsNone(r["resp"]["id"])
        self.assertLess(max(totals), REFUSED_WITHIN_S, "every 401 came promptly")
        self.check_healthz(attack, p99)
        self.check_rss(before, after)

    def test_authenticated_big_body_is_refused_by_the_value_bound(self):
        self.warm_up()
        before = self.rss()
        tok = make_jwt(claims("bigbody"))
        # one sender, under rate_limits.large_requests (30 per minute by default)
        attack = Attack(self.server, tok, 1, max_rounds=25).run()
        failed = [r["error"] for r in attack.results if "error" in r]
        done = [r for r in attack.results if "error" not in r]
        totals = [r["total_s"] for r in done] or [float("nan")]
        log(f"authenticated: {len(attack.results)} bodies of {len(BIG)} bytes ({N_VALUES} values), one at a time; "
            f"answered after (sending included) median {pct(totals, 50):.3f} s, max {max(totals):.3f} s; "
            f"failed: {len(failed)}; first answer: {json.dumps(done[0]['resp'] if done else None)[:300]}")
        p99 = self.healthz_figures(attack, "authenticated")
        after = self.rss_after(before, "authenticated")
        self.assertEqual(failed, [], "no big request's connection failed")
        self.assertGreaterEqual(len(done), 1)
        for r in done:
            self.assertEqual(r["status"], 200, r.get("resp"))
            err = r["resp"]["error"]
            self.assertEqual(err["code"], -32600, err)
            self.assertEqual(err["data"]["field"], "body", err)
            self.assertEqual(err["data"]["limit"], MAX_VALUES, err)
            self.assertIn(str(MAX_VALUES), err["data"]["error"], err)
            self.assertIsNone(r["resp"]["id"])
        self.assertLess(max(totals), REFUSED_WITHIN_S)
        self.check_healthz(attack, p99)
        self.check_rss(before, after)

    def test_parsed_large_bodies_leave_no_memory_behind(self):
        """Bodies within the value bound are parsed (on a worker): jansson's many small blocks
        are freed there, and malloc_trim gives them back to the kernel."""
        self.warm_up()
        before = self.rss()
        tok = make_jwt(claims("parsed"))
        n = 900000  # under limits.max_json_values: parsed in full (~40 MB of jansson values)
        body = (b'{"jsonrpc":"2.0","method":"training.get_status","id":7,"params":{"job_id":"' + UNKNOWN.encode()
                + b'","x":[' + b"0," * (n - 1) + b"0]}}")
        for _ in range(4):
            t0 = time.perf_counter()
            status, _, resp = self.server.post(body, tok, raw=True)
            elapsed = time.perf_counter() - t0
            self.assertEqual(status, 200, resp)
            self.assertEqual(resp["error"]["data"]["field"], "x", resp)  # parsed: the unknown parameter is named
            self.assertEqual(resp["id"], 7)
        log(f"parsed: 4 bodies of {len(body)} bytes ({n + 9} values) answered, the last after {elapsed:.3f} s")
        after = self.rss_after(before, "parsed")
        self.check_rss(before, after)


# A body just over limits.parse_on_loop_bytes (64 KiB): it goes to the RPC workers.
LARGE_ID = "x" * 70000


class LargePathTest(unittest.TestCase):
    """What a large body gets on the worker path: the same answers, and its own per-principal
    limit checked before parsing."""
    CONFIG = "return { threads = 1, rate_limits = { large_requests = { limit = 2, window_s = 60 } } }"

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.CONFIG)

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_large_body_is_answered_like_a_small_one(self):
        tok = make_jwt(claims("large-ok"))
        call = {"jsonrpc": "2.0", "method": "training.get_status", "params": {"job_id": UNKNOWN}, "id": LARGE_ID}
        status, headers, resp = self.server.post(call, tok)
        self.assertEqual(status, 200, resp)
        self.assertEqual(resp["error"]["code"], -32001)  # no such job: handled like any call
        self.assertEqual(resp["id"], LARGE_ID)            # the id is echoed exactly
        self.assertEqual(headers["x-ratelimit-limit"], "100")  # the method's window, as for small bodies
        status, _, resp = self.server.post([call, dict(call, id=2)], tok)  # a batch too
        self.assertEqual(status, 200, resp)
        self.assertEqual([r["id"] for r in resp], [LARGE_ID, 2])

    def test_large_requests_are_limited_per_principal_before_parsing(self):
        tok = make_jwt(claims("large-limited"))
        junk = b"{" + b" " * 70000  # not JSON: a parsed body is -32700
        for _ in range(2):
            status, _, resp = self.server.post(junk, tok, raw=True)
            self.assertEqual(status, 200)
            self.assertEqual(resp["error"]["code"], -32700)
        status, headers, resp = self.server.post(junk, tok, raw=True)
        self.assertEqual(status, 429, resp)  # refused before parsing: not -32700
        self.assertEqual(resp["error"]["code"], -32029)
        self.assertEqual(resp["error"]["data"]["field"], "body")
        self.assertEqual(resp["error"]["data"]["limit"], 2)
        self.assertEqual(headers["retry-after"], str(resp["error"]["data"]["retry_after_s"]))
        self.assertEqual(headers["x-ratelimit-limit"], "2")
        self.assertIsNone(resp["id"])
        # small bodies of the same principal are not affected, nor large ones of another
        status, _, resp = self.server.call("training.list_jobs", {}, tok)
        self.assertEqual(status, 200, resp)
        status, _, resp = self.server.post(junk, make_jwt(claims("large-other")), raw=True)
        self.assertEqual(resp["error"]["code"], -32700)

    def test_unauthenticated_large_body_is_401_before_the_large_window(self):
        junk = b"{" + b" " * 70000
        for _ in range(3):  # over the window of 2, were it counted: it is not, there is no principal
            status, headers, resp = self.server.post(junk, None, raw=True)
            self.assertEqual(status, 401, resp)
            self.assertIsNone(resp["id"])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--attack"]:
        attacker_main(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6] or None)
    else:
        main()
