"""Webhooks end to end, with a receiver on loopback: all six event kinds arrive signed as
Standard Webhooks does; a receiver that fails its first deliveries still gets every event (same
webhook-id); events pending at a restart are delivered after it; a policy plugin's filter and
transform take effect; a failing policy fails closed (dropped, counted, shown on the
subscription) unless on_policy_error = "deliver"; policies cannot set framing, hop-by-hop or
signature headers; private targets and URLs with control characters are refused; events "*";
API subscriptions with status and 410."""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import SRC, Server, claims, make_jwt, main, poll
from test_training import final, job_params, wait

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
SIX = {"training.job.started", "training.job.progress", "training.job.completed", "training.job.failed",
       "training.job.cancelled", "training.budget.warning"}


def verify(secret, headers, body):
    key = base64.b64decode(secret[len("whsec_"):])
    msg = f'{headers["webhook-id"]}.{headers["webhook-timestamp"]}.'.encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split())


class Receiver:
    """Records every request; the first `fail_first` requests of each webhook-id get 500, and
    paths listed in `status_for` get that status."""

    def __init__(self, port=0, fail_first=0, status_for=None):
        self.requests = []
        self.lock = threading.Lock()
        self.fail_first = fail_first
        self.status_for = status_for or {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with outer.lock:
                    hdrs = {k.lower(): v for k, v in self.headers.items()}
                    seen = sum(1 for r in outer.requests if r["headers"].get("webhook-id") == hdrs.get("webhook-id"))
                    status = outer.status_for.get(self.path, 500 if seen < outer.fail_first else 200)
                    outer.requests.append({"path": self.path, "headers": hdrs, "body": body, "status": status})
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def ok(self, path=None):
        """The requests answered 2xx (optionally to one path), parsed."""
        with self.lock:
            return [dict(r, payload=json.loads(r["body"])) for r in self.requests
                    if r["status"] < 300 and (path is None or r["path"] == path)]

    def wait_for(self, pred, timeout=60):
        """Polls pred (a local check: no call to the server) until it holds; False after timeout."""
        try:
            return bool(poll(pred, timeout, "the receiver", first=0.05, cap=0.25))
        except AssertionError:
            return False

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def plugins_with(case, extra):
    """A copy of plugins/ with extra files {relative path: text}, removed when the test ends."""
    d = tempfile.mkdtemp(prefix="ac-plugins-")
    case.addCleanup(shutil.rmtree, d, ignore_errors=True)
    for kind in ("agents", "rewards", "validators", "webhooks"):
        shutil.copytree(os.path.join(SRC, "plugins", kind), os.path.join(d, kind))
    for rel, text in extra.items():
        with open(os.path.join(d, rel), "w") as f:
            f.write(text)
    return d


FLAKY = ('local a = { name = "flaky", version = "1", tools = { { name = "go", cost_usd = 0 } } }\n'
         'function a.init(q) return {} end\nfunction a.observe(s) return "x" end\n'
         'function a.legal(s) return { "go" } end\nfunction a.step(s, tool, args) error("broken tool") end\n'
         'function a.final(s) return {} end\nreturn a\n')


def config(receiver_url, plugins=None, allow_private=True, schedule="{ 0, 0.2, 0.3, 0.5, 1 }", extra=""):
    return ('return { workers = 2, %s webhooks = { secret = "%s", allow_private = %s, retry_schedule_s = %s,\n'
            '  subscriptions = { { url = "%s", events = { "*" } } } }, rate_limits = { start_grpo = { limit = 100 } }%s }'
            % ('plugins_dir = "%s",' % plugins if plugins else "", SECRET, "true" if allow_private else "false",
               schedule, receiver_url, extra))


class SixEventsTest(unittest.TestCase):
    def test_all_six_event_kinds_arrive_signed(self):
        receiver = Receiver(fail_first=2)  # also: the first two attempts of every message fail
        self.addCleanup(receiver.close)
        with open(os.path.join(SRC, "plugins/rewards/calculator.lua")) as f:
            plugins = plugins_with(self, {"agents/flaky.lua": FLAKY, "rewards/flaky.lua": f.read()})
        server = Server(config(f"http://127.0.0.1:{receiver.port}/hook", plugins))
        self.addCleanup(server.close)
        jobs = {}
        jobs["completed"] = server.result("training.start_grpo", job_params(n_iterations=20))["job_id"]
        jobs["cancelled"] = server.result("training.start_grpo",
                                          job_params(n_iterations=1000, max_budget_usd=0.1))["job_id"]
        p = job_params(n_iterations=5)
        p["agent_id"] = "flaky"
        jobs["failed"] = server.result("training.start_grpo", p)["job_id"]
        for kind, job in jobs.items():
            st = wait(server, job, final)
            self.assertEqual(st["status"], kind)
            if kind == "failed":  # by its failing tool, not by a plugin that does not load
                self.assertIn("broken tool", st["error"], st)
        got = lambda: {x["payload"]["event"] for x in receiver.ok()}
        self.assertTrue(receiver.wait_for(lambda: SIX <= got()), got())
        # every recorded event of these jobs arrives, each once with a 2xx (at least once)
        ev = server.result("training.list_events", {"job_id": jobs["completed"], "limit": 1000})
        expected = [e["event"] for e in ev["events"]]
        self.assertTrue(receiver.wait_for(lambda: sorted(
            x["payload"]["event"] for x in receiver.ok() if x["payload"]["data"]["job_id"] == jobs["completed"])
            == sorted(expected)))
        for x in receiver.ok():
            h = x["headers"]
            self.assertTrue(verify(SECRET, h, x["body"]), h)
            self.assertLess(abs(int(h["webhook-timestamp"]) - time.time()), 60)
            self.assertEqual(set(x["payload"]), {"event", "timestamp", "data"})
            self.assertIn(x["payload"]["data"]["job_id"], jobs.values())
            # the failed attempts carried the same webhook-id: at-least-once with one identity
            tries = [r for r in receiver.requests if r["headers"]["webhook-id"] == h["webhook-id"]]
            self.assertEqual([r["status"] for r in tries], [500, 500, 200])
        done = [x["payload"] for x in receiver.ok() if x["payload"]["event"] == "training.job.completed"][0]
        self.assertEqual(done["data"]["status"], "completed")
        self.assertIn("success_rate", done["data"]["final_metrics"])
        self.assertRegex(done["data"]["final_metrics"]["cost_usd"], r"^\d+\.\d\d$")
        warn = [x["payload"]["data"]["threshold_percent"] for x in receiver.ok()
                if x["payload"]["event"] == "training.budget.warning"]
        self.assertEqual(sorted(warn), [75, 90])


class RestartTest(unittest.TestCase):
    def test_events_pending_at_a_restart_are_delivered_after_it(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nobody listens there yet: deliveries fail and stay in the outbox
        # retries every 2 s for 30 s: they outlive the restart
        cfg = config(f"http://127.0.0.1:{port}/late", schedule="{ 0" + ", 2" * 15 + " }")
        server = Server(cfg)
        self.addCleanup(server.close)
        job = server.result("training.start_grpo", job_params(n_iterations=10))["job_id"]
        self.assertEqual(wait(server, job, final)["status"], "completed")
        self.assertEqual(server.stop(), 0)
        receiver = Receiver(port=port)
        self.addCleanup(receiver.close)
        server.start()
        self.assertTrue(receiver.wait_for(lambda: len(receiver.ok()) >= 4, timeout=40))
        kinds = sorted(x["payload"]["event"] for x in receiver.ok())
        self.assertEqual(kinds, ["training.job.completed", "training.job.progress", "training.job.started",
                                 "training.validation"])


POLICY = '''return { name = "test_policy", version = "1",
  route = function(event, target)
    if event.event == "training.job.progress" then return false end      -- filter
    if event.event == "training.job.completed" then                       -- transform
      event.data.note = "seen by the policy"
      return { payload = event, headers = { ["x-policy"] = "yes" } }
    end
    if event.event == "training.job.started" then                         -- route to two URLs
      return { {}, { url = target.url .. "-copy" } }
    end
    return true
  end }
'''


class PolicyTest(unittest.TestCase):
    def test_filter_transform_and_route(self):
        receiver = Receiver()
        self.addCleanup(receiver.close)
        plugins = plugins_with(self, {"webhooks/test_policy.lua": POLICY})
        cfg = config(f"http://127.0.0.1:{receiver.port}/hook", plugins)
        server = Server(cfg.replace("allow_private = true,", 'allow_private = true, policy = "test_policy",'))
        self.addCleanup(server.close)
        job = server.result("training.start_grpo", job_params(n_iterations=20))["job_id"]
        self.assertEqual(wait(server, job, final)["status"], "completed")
        # the job's last event (completed) delivered: every event of the job was fanned out
        # before it, so the progress events missing by then were dropped, not late. (Waiting for
        # fewer deliveries raced with the completed one on a busy machine.)
        def kinds():
            return [x["payload"]["event"] for x in receiver.ok("/hook")]
        self.assertTrue(receiver.wait_for(lambda: "training.job.completed" in kinds() and len(kinds()) >= 4
                                          and receiver.ok("/hook-copy")), kinds())
        got = kinds()
        self.assertNotIn("training.job.progress", got)
        self.assertEqual(sorted(got), ["training.job.completed", "training.job.started", "training.validation",
                                         "training.validation"])
        done = [x for x in receiver.ok("/hook") if x["payload"]["event"] == "training.job.completed"][0]
        self.assertEqual(done["payload"]["data"]["note"], "seen by the policy")
        self.assertEqual(done["headers"]["x-policy"], "yes")
        self.assertTrue(verify(SECRET, done["headers"], done["body"]))  # the transformed body is signed
        self.assertEqual([x["payload"]["event"] for x in receiver.ok("/hook-copy")], ["training.job.started"])


# A policy with a bug per subscription path; /good is delivered as is.
FAILING_POLICY = r'''return { name = "failing", version = "1",
  route = function(event, target)
    local path = target.url:match("^http://[^/]+(/[a-z]+)")
    if path == "/raises" then error("policy bug on " .. event.event) end
    if path == "/garbage" then return 42 end
    if path == "/host" then return { headers = { Host = "evil.example" } } end
    if path == "/length" then return { headers = { ["Content-Length"] = "0", ["x-fine"] = "1" } } end
    if path == "/chunked" then return { headers = { ["transfer-encoding"] = "chunked" } } end
    if path == "/signature" then return { headers = { ["Webhook-Signature"] = "v1,forged" } } end
    if path == "/proxy" then return { headers = { ["Proxy-Authorization"] = "Basic eA==" } } end
    if path == "/name" then return { headers = { ["bad name"] = "x" } } end
    if path == "/value" then return { headers = { ["x-split"] = "a\r\nX-Injected: 1" } } end
    if path == "/route" then return { url = target.url .. "-elsewhere\r\nX-Injected: 1" } end
    return true
  end }
'''
BROKEN = {"/raises": "policy bug on training.job.", "/garbage": "route returned",
          "/host": "header 'Host' may not be set", "/length": "header 'Content-Length' may not be set",
          "/chunked": "header 'transfer-encoding' may not be set",
          "/signature": "header 'Webhook-Signature' may not be set",
          "/proxy": "header 'Proxy-Authorization' may not be set", "/name": "'bad name' is not an HTTP token",
          "/value": "header 'x-split': the value holds a control character", "/route": "url holds a control character"}
METRICS = make_jwt(claims(perms="metrics:view"))


class PolicyErrorTest(unittest.TestCase):
    """A failing policy fails closed: nothing is delivered for it, and the operator and the
    subscription's owner can see why. With on_policy_error = "deliver" it fails open, on purpose."""

    def run_job(self, on_policy_error=None):
        receiver = Receiver()
        self.addCleanup(receiver.close)
        plugins = plugins_with(self, {"webhooks/failing.lua": FAILING_POLICY})
        mode = 'on_policy_error = "%s",' % on_policy_error if on_policy_error else ""
        server = Server('return { plugins_dir = "%s", webhooks = { policy = "failing", allow_private = true, %s '
                        'secret = "%s", retry_schedule_s = { 0, 0.2 } } }' % (plugins, mode, SECRET))
        self.addCleanup(server.close)
        tok = make_jwt(claims(perms="training:start,training:view,webhooks:manage"))
        url = f"http://127.0.0.1:{receiver.port}"
        subs = {path: server.result("webhooks.subscribe", {"url": url + path, "events": "*"}, tok)
                for path in ["/good"] + list(BROKEN)}
        self.secrets = {path: sub["secret"] for path, sub in subs.items()}
        subs = {path: sub["subscription_id"] for path, sub in subs.items()}
        p = job_params(n_iterations=10)
        p["webhooks"] = [{"url": url + "/raises/job", "events": ["*"]}]  # a job's own subscription fails too
        job = server.result("training.start_grpo", p, tok)["job_id"]
        self.assertEqual(wait(server, job, final, tok)["status"], "completed")
        n_events = len(server.result("training.list_events", {"job_id": job, "limit": 1000}, tok)["events"])
        # every event is fanned out to every subscription in one pass: once /good has them all,
        # the others have had theirs
        self.assertTrue(receiver.wait_for(lambda: len(receiver.ok("/good")) == n_events), receiver.ok("/good"))
        listed = {s["subscription_id"]: s for s in server.result("webhooks.list", {}, tok)["subscriptions"]}
        return server, receiver, subs, listed, n_events

    def metric(self, server, name):
        status, _, body = server.request("GET", "/metrics", headers={"Authorization": "Bearer " + METRICS})
        self.assertEqual(status, 200)
        return int(re.search(r"^%s (\d+)$" % name, body.decode(), re.M).group(1))

    def test_failing_policy_drops_the_delivery(self):
        server, receiver, subs, listed, n_events = self.run_job()
        paths = {r["path"] for r in receiver.requests}
        self.assertEqual(paths, {"/good"}, "a failing policy delivered something")
        self.assertEqual({x["payload"]["event"] for x in receiver.ok("/good")},
                         {"training.job.started", "training.job.progress", "training.validation",
                          "training.job.completed"})
        self.assertEqual(listed[subs["/good"]]["policy_errors"], 0)
        self.assertIsNone(listed[subs["/good"]]["last_policy_error"])
        for path, why in BROKEN.items():
            sub = listed[subs[path]]
            self.assertEqual(sub["policy_errors"], n_events, (path, sub))
            self.assertIn(why, sub["last_policy_error"]["error"], path)
            self.assertRegex(sub["last_policy_error"]["at"], r"Z$")
            self.assertEqual((sub["deliveries"], sub["failures"]), (0, 0), path)
            self.assertNotIn("plugins/", sub["last_policy_error"]["error"])  # no server path for the client
        # the operator: a counter (every subscription, the job's own too) and the whole story in the log
        self.assertEqual(self.metric(server, "agentcore_webhook_policy_errors_total"), (len(BROKEN) + 1) * n_events)
        log = server.stderr()
        self.assertIn("webhook policy error", log)
        self.assertIn("plugins/webhooks/failing.lua:4: policy bug on training.job.started", log)
        self.assertIn("stack traceback:", log)
        self.assertIn("delivery dropped", log)

    def test_on_policy_error_deliver_sends_the_event_unchanged(self):
        server, receiver, subs, listed, n_events = self.run_job("deliver")
        kinds = {"training.job.started", "training.job.progress", "training.validation", "training.job.completed"}
        for path in ["/good"] + list(BROKEN):
            if path == "/route":
                continue  # its policy routed elsewhere: unchanged means to the subscription's own URL
            self.assertTrue(receiver.wait_for(lambda: len(receiver.ok(path)) == n_events), path)
            got = receiver.ok(path)
            self.assertEqual({x["payload"]["event"] for x in got}, kinds, path)
            for x in got:  # as the event is: no header of the failing answer, signed as usual
                self.assertTrue(verify(self.secrets[path], x["headers"], x["body"]), path)
                self.assertEqual(x["headers"]["host"], f"127.0.0.1:{receiver.port}")
                self.assertNotIn("x-fine", x["headers"])
                self.assertNotIn("x-injected", x["headers"])
                self.assertNotIn("proxy-authorization", x["headers"])
        self.assertTrue(receiver.wait_for(lambda: len(receiver.ok("/route")) == n_events))
        self.assertTrue(receiver.wait_for(lambda: len(receiver.ok("/raises/job")) == n_events))
        self.assertNotIn("x-injected", str(receiver.requests).lower())
        self.assertEqual(listed[subs["/raises"]]["policy_errors"], n_events)
        self.assertGreaterEqual(self.metric(server, "agentcore_webhook_policy_errors_total"), len(BROKEN) * n_events)
        self.assertIn("delivered unchanged", server.stderr())


class SubscriptionTest(unittest.TestCase):
    def test_private_targets_are_refused(self):
        with Server('return { webhooks = { secret = "%s" } }' % SECRET) as server:
            tok = make_jwt(claims(perms="webhooks:manage"))
            for url in ("http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://[::1]:80/x", "http://localhost/x",
                        "ftp://example.com/x"):
                _, _, r = server.call("webhooks.subscribe", {"url": url, "events": ["*"]}, tok)
                self.assertEqual((r["error"]["code"], r["error"]["data"]["field"]), (-32602, "url"), url)
            p = job_params()
            p["webhooks"] = [{"url": "http://192.168.1.1/hook", "events": ["*"]}]
            _, _, r = server.call("training.start_grpo", p)
            self.assertEqual((r["error"]["code"], r["error"]["data"]["field"]), (-32600, "webhooks[0].url"))
            _, _, r = server.call("webhooks.subscribe", {"url": "https://example.com/x", "events": ["nope"]}, tok)
            self.assertEqual(r["error"]["data"]["field"], "events")

    def test_urls_with_control_characters_are_refused_even_with_allow_private(self):
        bad = ["http://127.0.0.1:9/x\r\nX-Injected: 1", "http://127.0.0.1:9/a b", "http://127.0.0.1:9/\tx",
               "http://127.0.0.1:9/x\x7f", "http://127.0.0.1:9/x\u0085y", "http://127.0.0.1:9/\nx"]
        with Server('return { webhooks = { secret = "%s", allow_private = true } }' % SECRET) as server:
            tok = make_jwt(claims(perms="webhooks:manage"))
            for url in bad:
                _, _, r = server.call("webhooks.subscribe", {"url": url, "events": ["*"]}, tok)
                self.assertEqual((r["error"]["code"], r["error"]["data"]["field"]), (-32602, "url"), (url, r))
                self.assertIn("control character or a space", r["error"]["data"]["error"])
                p = job_params()
                p["webhooks"] = [{"url": "http://127.0.0.1:9/ok", "events": ["*"]}, {"url": url, "events": ["*"]}]
                _, _, r = server.call("training.start_grpo", p)
                self.assertEqual((r["error"]["code"], r["error"]["data"]["field"]), (-32600, "webhooks[1].url"), url)
            self.assertEqual(server.result("webhooks.list", {}, tok)["subscriptions"], [])  # nothing stored
            # the same URL without the CR LF is fine: only the characters were refused
            self.assertIn("subscription_id", server.result(
                "webhooks.subscribe", {"url": "http://127.0.0.1:9/x", "events": ["*"]}, tok))
        # and in the server's config: it does not start, and says which subscription
        for url in ("http://127.0.0.1:9/x\\r\\nX-Injected: 1", "http://127.0.0.1:9/a b"):
            with self.assertRaises(RuntimeError) as cm:
                Server('return { webhooks = { secret = "%s", allow_private = true, subscriptions = {\n'
                       '  { url = "http://127.0.0.1:9/ok", events = "*" }, { url = "%s", events = { "*" } } } } }'
                       % (SECRET, url))
            self.assertIn("webhooks.subscriptions[2].url", str(cm.exception))
            self.assertIn("control character or a space", str(cm.exception))

    def test_events_star_as_a_string(self):
        receiver = Receiver()
        self.addCleanup(receiver.close)
        url = f"http://127.0.0.1:{receiver.port}"
        cfg = ('return { webhooks = { secret = "%s", allow_private = true, subscriptions = {\n'
               '  { url = "%s/config", events = "*" } } } }' % (SECRET, url))
        with Server(cfg) as server:
            tok = make_jwt(claims(perms="training:start,training:view,webhooks:manage"))
            sub = server.result("webhooks.subscribe", {"url": url + "/api", "events": "*"}, tok)
            self.assertEqual(sub["events"], "*")
            self.assertIn("subscription_id", server.result(
                "webhooks.subscribe", {"url": url + "/list", "events": ["*"]}, tok))
            for events, field in (("training.job.completed", "events"), ("all", "events"), ([], "events"),
                                  (["*", "nope"], "events"), (7, "events")):
                _, _, r = server.call("webhooks.subscribe", {"url": url + "/x", "events": events}, tok)
                self.assertEqual((r["error"]["code"], r["error"]["data"]["field"]), (-32602, field), (events, r))
            p = job_params(n_iterations=10)
            p["webhooks"] = [{"url": url + "/job", "events": "*"}]
            job = server.result("training.start_grpo", p, tok)["job_id"]
            p["webhooks"] = [{"url": url + "/job", "events": "training.job.completed"}]
            _, _, r = server.call("training.start_grpo", p, tok)
            self.assertEqual((r["error"]["code"], r["error"]["data"]["field"]), (-32600, "webhooks[0].events"), r)
            self.assertEqual(wait(server, job, final, tok)["status"], "completed")
            every = lambda path: {x["payload"]["event"] for x in receiver.ok(path)}
            kinds = {"training.job.started", "training.job.progress", "training.validation", "training.job.completed"}
            self.assertTrue(receiver.wait_for(lambda: all(every(p) == kinds for p in ("/config", "/api", "/list",
                                                                                        "/job"))),
                            {p: every(p) for p in ("/config", "/api", "/list", "/job")})

    def test_api_subscriptions(self):
        receiver = Receiver(status_for={"/gone": 410})
        self.addCleanup(receiver.close)
        server = Server('return { webhooks = { allow_private = true, retry_schedule_s = { 0, 0.2 } } }')
        try:
            alice = make_jwt(claims("alice", perms="training:start,training:view,webhooks:manage"))
            bob = make_jwt(claims("bob", perms="training:start,training:view,webhooks:manage"))
            url = f"http://127.0.0.1:{receiver.port}"
            _, _, r = server.call("webhooks.subscribe", {"url": url + "/alice", "events": ["training.job.completed"]},
                                  alice)
            sub = r["result"]
            self.assertTrue(sub["secret"].startswith("whsec_"))
            _, _, r = server.call("webhooks.subscribe", {"url": url + "/gone", "events": ["*"]}, alice)
            gone = r["result"]["subscription_id"]
            _, _, r = server.call("training.start_grpo", job_params(n_iterations=10), bob)
            self.assertEqual(wait(server, r["result"]["job_id"], final, bob)["status"], "completed")
            _, _, r = server.call("training.start_grpo", job_params(n_iterations=10), alice)
            job = r["result"]["job_id"]
            self.assertEqual(wait(server, job, final, alice)["status"], "completed")
            self.assertTrue(receiver.wait_for(lambda: receiver.ok("/alice")))
            got = receiver.ok("/alice")
            self.assertEqual([(x["payload"]["event"], x["payload"]["data"]["job_id"]) for x in got],
                             [("training.job.completed", job)])  # only alice's job, only what she asked for
            self.assertTrue(verify(sub["secret"], got[0]["headers"], got[0]["body"]))
            def listed():
                return {s["subscription_id"]: s for s in server.result("webhooks.list", {}, alice)["subscriptions"]}
            # the server records the outcomes just after the receiver answered
            poll(lambda: listed()[sub["subscription_id"]]["last_status"] == 200 and listed()[gone]["disabled"],
                 60, "the outcomes in webhooks.list")
            subs = listed()
            self.assertEqual((subs[sub["subscription_id"]]["last_status"], subs[sub["subscription_id"]]["failures"]),
                             (200, 0))
            self.assertNotIn("secret", subs[sub["subscription_id"]])
            self.assertTrue(subs[gone]["disabled"])  # 410 Gone turned it off
            self.assertEqual(subs[gone]["last_status"], 410)
            _, _, r = server.call("webhooks.list", {}, bob)
            self.assertEqual(r["result"]["subscriptions"], [])
            _, _, r = server.call("webhooks.unsubscribe", {"subscription_id": gone}, bob)
            self.assertEqual(r["error"]["code"], -32001)
            _, _, r = server.call("webhooks.unsubscribe", {"subscription_id": gone}, alice)
            self.assertTrue(r["result"]["unsubscribed"])
            _, _, r = server.call("webhooks.list", {}, make_jwt(claims("alice", perms="training:view")))
            self.assertEqual(r["error"]["code"], -32003)
        finally:
            server.close()


if __name__ == "__main__":
    main()
