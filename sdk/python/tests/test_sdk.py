"""The Python SDK against the real agentcore server (conftest.py starts it), plus the webhook
signature verifier.

Run: sdk/python/tests/run.sh   (or /usr/bin/python3 -m pytest sdk/python/tests)
Env: AGENTCORE_BIN (default <repo>/build/agentcore), AC_SOURCE_DIR (default <repo>).
"""
import base64
import http.server
import json
import socket
import threading
import time
import uuid

import pytest

from agentcore import sdk
from agentcore.sdk import (AgentCoreError, BudgetExceeded, CannotCancel, EvaluationFailed, ExportLimitExceeded,
                           Forbidden, HTTPError, InternalError, InvalidParams, InvalidRequest, JobWaitTimeout,
                           MethodNotFound, NotFound, ParseError, RateLimited, TrainingClient, TransportError,
                           Unauthorized, ValidationFailed, WebhookVerificationError, sign_webhook, verify_webhook)

FAST = {"n_iterations": 20, "batch_size": 8, "n_trajectories_per_query": 4, "beta": 0.0,
        "max_steps_per_trajectory": 8, "checkpoint_interval": 10}
LONG = dict(FAST, n_iterations=10000, checkpoint_interval=1000)


def start(client, data, config=FAST, with_eval=True, **kw):
    return client.start_training("calculator", dict(config), data["training_data"],
                                 evaluation_data=data["evaluation_data"] if with_eval else None, **kw)


def recording_sleeps(client, really=True):
    """Replaces the client's sleep with one that records each wait (and still waits)."""
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        if really:
            time.sleep(s)

    client._sleep = sleep
    return sleeps


@pytest.fixture(scope="module")
def alice(server):
    return server.client("alice")


@pytest.fixture(scope="module")
def trained(server, alice, data):
    """A completed FAST job of alice's, with evaluation data: (job_id, final status)."""
    job = start(alice, data)
    final = alice.wait_for_completion(job["job_id"], poll_interval=0.25, timeout=120)
    assert final["status"] == "completed", final
    return job["job_id"], final


# ---- the lifecycle -----------------------------------------------------------------------------


def test_start_wait_for_completion_and_status(alice, data):
    job = start(alice, data)
    assert job["status"] == "queued"
    assert job["agent_id"] == "calculator"
    assert job["total_iterations"] == 20
    uuid.UUID(job["job_id"])

    seen = []
    final = alice.wait_for_completion(job["job_id"], poll_interval=0.25, on_progress=seen.append, timeout=120)
    assert final["status"] == "completed", final
    assert seen, "on_progress was never called"
    assert seen[-1] == final, "on_progress gets the final status too"
    iterations = [s["current_iteration"] for s in seen]
    assert iterations == sorted(iterations)
    assert all(s["job_id"] == job["job_id"] for s in seen)

    status = alice.get_status(job["job_id"])
    assert status["status"] == "completed"
    assert status["current_iteration"] == status["total_iterations"] == 20
    assert status["progress_percent"] == 100.0
    assert status["best_checkpoint_id"]
    for key in ("train_loss", "validation_accuracy", "avg_reward", "trajectories_generated"):
        assert key in status["metrics"]
    assert alice.last_rate_limit is not None and alice.last_rate_limit["limit"] == 100000


def test_wait_for_completion_times_out_then_cancel(alice, data):
    job = start(alice, data, LONG)["job_id"]
    polls = []
    t0 = time.monotonic()
    with pytest.raises(JobWaitTimeout) as exc:
        alice.wait_for_completion(job, poll_interval=0.25, on_progress=polls.append, timeout=1.0)
    assert time.monotonic() - t0 < 10
    assert exc.value.status["status"] in ("queued", "running")
    assert isinstance(exc.value, TimeoutError)
    assert len(polls) >= 2

    cancelled = alice.cancel(job, reason="enough from the SDK test")
    assert cancelled["job_id"] == job
    assert cancelled["status"] == "cancelled", cancelled
    status = alice.get_status(job)
    assert status["status"] == "cancelled"
    assert status["cancel_reason"] == "enough from the SDK test"
    # a final status: wait returns at once
    assert alice.wait_for_completion(job, poll_interval=60)["status"] == "cancelled"

    with pytest.raises(CannotCancel) as exc:
        alice.cancel(job)
    assert exc.value.code == -40003


def test_cancel_of_a_finished_job_raises_cannot_cancel(alice, trained):
    job, _ = trained
    with pytest.raises(CannotCancel) as exc:
        alice.cancel(job, reason="too late")
    assert exc.value.code == -40003
    assert "completed" in str(exc.value)


def test_evaluate(alice, trained, data):
    job, final = trained
    res = alice.evaluate(job)
    assert res["job_id"] == job
    assert res["checkpoint_id"] == final["best_checkpoint_id"]
    assert res["queries_evaluated"] == len(data["evaluation_data"])
    for key in ("success_rate", "avg_reward", "avg_steps", "tool_accuracy"):
        assert key in res["metrics"]
    assert "p_value" in res["baseline_comparison"]

    checkpoints = alice.list_checkpoints(job)["checkpoints"]
    first = min(checkpoints, key=lambda c: c["iteration"])
    res = alice.evaluate(job, checkpoint_id=first["checkpoint_id"], evaluation_queries=data["evaluation_data"][:10])
    assert res["checkpoint_id"] == first["checkpoint_id"]
    assert res["queries_evaluated"] == 10


def test_export_and_iter_trajectories(alice, trained):
    job, final = trained
    page = alice.export_trajectories(job, limit=5)
    total = page["total_count"]
    assert total == final["trajectories_stored"] > 0
    assert page["returned_count"] == len(page["trajectories"]) == 5
    assert page["has_more"] is True
    second = alice.export_trajectories(job, limit=5, offset=5)
    assert {t["trajectory_id"] for t in page["trajectories"]}.isdisjoint(
        t["trajectory_id"] for t in second["trajectories"])

    # every page, counted
    pages = []
    real_export = alice.export_trajectories

    def counting_export(*a, **kw):
        r = real_export(*a, **kw)
        pages.append(r["returned_count"])
        return r

    alice.export_trajectories = counting_export
    try:
        ids = [t["trajectory_id"] for t in alice.iter_trajectories(job, page_size=150)]
    finally:
        del alice.export_trajectories
    assert len(ids) == total
    assert len(set(ids)) == total
    assert len(pages) == -(-total // 150) and len(pages) >= 3, pages

    # filters go through to every page
    wins = list(alice.iter_trajectories(job, page_size=40, success_only=True))
    assert wins and all(t["success"] for t in wins)
    assert len(wins) == alice.export_trajectories(job, success_only=True, limit=1)["total_count"] < total
    high = list(alice.iter_trajectories(job, page_size=200, min_reward=0.5))
    assert all(t["reward"] >= 0.5 for t in high)
    assert list(alice.iter_trajectories(job, page_size=100, offset=total - 3)) == \
        alice.export_trajectories(job, offset=total - 3)["trajectories"]
    with pytest.raises(TypeError):
        list(alice.iter_trajectories(job, sucess_only=True))


def test_list_jobs_checkpoints_events(server, alice, trained):
    job, final = trained
    jobs = alice.list_jobs()
    assert job in [j["job_id"] for j in jobs["jobs"]]
    assert jobs["total_count"] >= 1
    completed = alice.list_jobs(status="completed", limit=1)
    assert completed["returned_count"] == 1 and completed["jobs"][0]["status"] == "completed"
    assert job in [j["job_id"] for j in alice.iter_jobs(status="completed", page_size=1)]
    assert len(list(alice.iter_jobs(page_size=1))) == alice.list_jobs()["total_count"]

    ck = alice.list_checkpoints(job)
    assert ck["best_checkpoint_id"] == final["best_checkpoint_id"]
    assert [c["iteration"] for c in ck["checkpoints"]] == [10, 20]
    assert sum(c["is_best"] for c in ck["checkpoints"]) == 1

    ev = alice.list_events(job, limit=2)
    assert [e["event"] for e in ev["events"]][0] == "training.job.started"
    assert ev["has_more"] is True
    rest = alice.list_events(job, cursor=ev["next_cursor"])
    assert rest["events"][-1]["event"] == "training.job.completed"
    everything = list(alice.iter_events(job, page_size=1))
    assert everything == ev["events"] + rest["events"]

    # another principal sees none of it
    bob = server.client("bob")
    assert job not in [j["job_id"] for j in bob.list_jobs()["jobs"]]


# ---- every error the server produces, typed --------------------------------------------------


def test_not_found(server, alice, trained):
    job, _ = trained
    with pytest.raises(NotFound) as exc:
        alice.get_status(str(uuid.uuid4()))
    assert exc.value.code == -32001 and exc.value.field == "job_id"
    with pytest.raises(NotFound):
        server.client("mallory").get_status(job)  # another principal's job
    with pytest.raises(NotFound) as exc:
        alice.evaluate(job, checkpoint_id=str(uuid.uuid4()))
    assert exc.value.field == "checkpoint_id"
    with pytest.raises(NotFound):
        alice.list_checkpoints(str(uuid.uuid4()))


def test_invalid_params(alice, trained):
    job, _ = trained
    with pytest.raises(InvalidParams) as exc:
        alice.get_status("not-a-uuid")
    assert exc.value.code == -32602 and exc.value.field == "job_id"
    with pytest.raises(InvalidParams) as exc:
        alice.export_trajectories(job, limit=0)
    assert exc.value.field == "limit"
    with pytest.raises(InvalidParams) as exc:
        alice.list_jobs(status="sleeping")
    assert exc.value.field == "status"


def test_invalid_request_bad_config(alice, data):
    with pytest.raises(InvalidRequest) as exc:
        start(alice, data, dict(FAST, n_iterations=0))
    assert exc.value.code == -32600
    assert exc.value.data == {"field": "n_iterations", "error": "Must be between 1 and 10000"}
    with pytest.raises(InvalidRequest) as exc:
        alice.start_training("no-such-agent", FAST, data["training_data"])
    assert exc.value.field == "agent_id"


def test_validation_failed_lists_problems(alice, data):
    with pytest.raises(ValidationFailed) as exc:
        alice.start_training("calculator", FAST, data["training_data"][:99])
    e = exc.value
    assert e.code == -40002
    assert e.problems and e.problems[0]["field"] == "training_data"
    assert "99" in e.problems[0]["error"]

    bad = [dict(q) for q in data["training_data"][:120]]
    bad[3] = {"query": "", "expected_outcome": {}}
    bad[7] = {"query": "fine", "expected_outcome": "not an object"}
    with pytest.raises(ValidationFailed) as exc:
        alice.start_training("calculator", FAST, bad, evaluation_data=[data["training_data"][0]])
    fields = {p["field"] for p in exc.value.problems}
    assert {"training_data[3].query", "training_data[7].expected_outcome", "evaluation_data[0].query"} <= fields
    assert len(exc.value.problems) == 3


def test_export_limit_exceeded(alice, trained):
    job, _ = trained
    with pytest.raises(ExportLimitExceeded) as exc:
        alice.export_trajectories(job, limit=10001)
    assert exc.value.code == -40005 and exc.value.field == "limit"
    assert alice.export_trajectories(job, limit=10000)["returned_count"] == alice.export_trajectories(
        job, limit=1)["total_count"]


def test_evaluation_failed_without_evaluation_data(alice, data):
    job = start(alice, data, with_eval=False)["job_id"]
    with pytest.raises(EvaluationFailed) as exc:
        alice.evaluate(job)
    assert exc.value.code == -40004 and exc.value.field == "evaluation_data"
    assert alice.wait_for_completion(job, poll_interval=0.25, timeout=120)["status"] == "completed"
    # with queries of its own the same job evaluates
    assert alice.evaluate(job, evaluation_queries=data["evaluation_data"][:8])["queries_evaluated"] == 8


def test_unauthorized(server):
    for token in ("not-a-jwt", server.token("alice", secret="another-secret-0123456789abcdef"), ""):
        client = TrainingClient(server.url, token, max_retries=3, backoff=0.01)
        sleeps = recording_sleeps(client)
        with pytest.raises(Unauthorized) as exc:
            client.list_jobs()
        assert exc.value.code == -32002
        assert exc.value.data and exc.value.data.get("error"), exc.value.data
        assert sleeps == [], "an authentication error is never retried"


def test_forbidden(server, data):
    viewer = server.client("viewer", ["training:view"])
    with pytest.raises(Forbidden) as exc:
        start(viewer, data)
    assert exc.value.code == -32003
    assert exc.value.required == "training:start"
    with pytest.raises(Forbidden) as exc:
        viewer.export_trajectories(str(uuid.uuid4()))
    assert exc.value.required == "data:export"
    assert viewer.list_jobs()["total_count"] == 0


def test_method_not_found(alice):
    with pytest.raises(MethodNotFound) as exc:
        alice.call("training.no_such_method", {})
    assert exc.value.code == -32601


def test_parse_error(alice):
    with pytest.raises(ParseError) as exc:
        alice._send_raw(b'{"jsonrpc": "2.0", "method": ')
    assert exc.value.code == -32700


def test_nan_is_refused_before_sending(alice, data):
    with pytest.raises(ValueError):
        start(alice, data, dict(FAST, learning_rate=float("nan")))


def test_internal_error(make_server, broken_plugins, data):
    srv = make_server('return { plugins_dir = "%s", agents = { ["calc-broken"] = '
                      '{ agent = "calculator", validator = "sdk_broken" } } }' % broken_plugins)
    client = srv.client("alice", max_retries=3, backoff=0.01)
    sleeps = recording_sleeps(client)
    with pytest.raises(InternalError) as exc:
        client.start_training("calc-broken", FAST, data["training_data"])
    e = exc.value
    assert e.code == -32603 and e.message == "Internal error"
    assert "deliberately broken validator" in e.data["error"]
    # the server's paths and traceback stay in its log, under the ref the client got
    assert "plugins/" not in str(e.data) and "traceback" not in str(e.data), e.data
    assert f"ref={e.data['ref']}" in srv.stderr()
    assert "stack traceback" in srv.stderr()
    assert sleeps == [], "a server error is never retried"


def test_budget_exceeded(make_server, data):
    srv = make_server("return { budgets = { default_usd = 10 } }")
    client = srv.client("alice")
    with pytest.raises(BudgetExceeded) as exc:
        start(client, data, dict(FAST, max_budget_usd=50))
    e = exc.value
    assert e.code == -40001 and e.field == "max_budget_usd"
    assert e.data["budget_usd"] == "10.00"
    assert start(client, data, dict(FAST, max_budget_usd=5))["status"] == "queued"


def test_http_errors(server, alice, data):
    wrong_path = TrainingClient(server.url + "/nowhere", alice.api_key)
    with pytest.raises(HTTPError) as exc:
        wrong_path.list_jobs()
    assert exc.value.status == 404

    # a body over limits.max_body_bytes (16 MiB): 413 with a JSON-RPC error body
    big = [{"query": f"{i} " + "x" * 4000, "expected_outcome": {"answer": i}} for i in range(4300)]
    with pytest.raises(HTTPError) as exc:
        alice.start_training("calculator", FAST, big)
    assert exc.value.status == 413
    assert exc.value.code == -32600


# ---- retries -------------------------------------------------------------------------------------

RATE_CONFIG = "return { rate_limits = { get_status = { limit = 2, window_s = 2 } } }"


@pytest.fixture(scope="module")
def rate_server(tmp_path_factory, data):
    from conftest import Server
    s = Server(tmp_path_factory.mktemp("rate"), RATE_CONFIG)
    client = s.client("owner")
    job = start(client, data)["job_id"]
    # every principal that polls this job needs training:admin to see it
    yield s, job
    assert s.stop() == 0, s.stderr()


ADMIN_VIEW = ["training:view", "training:admin"]


def test_rate_limited_is_retried_after_retry_after(rate_server):
    srv, job = rate_server
    client = srv.client("rl-retry", ADMIN_VIEW, max_retries=5, backoff=0.01)
    sleeps = recording_sleeps(client)
    t0 = time.monotonic()
    # 5 calls at 2 per 2 s window: at least one is refused with 429 and retried
    statuses = [client.get_status(job) for _ in range(5)]
    assert all(s["job_id"] == job for s in statuses)
    assert sleeps, "no call was rate limited"
    assert all(0 < s <= 2 for s in sleeps), sleeps
    assert time.monotonic() - t0 >= min(sleeps)


def test_wait_for_completion_waits_out_rate_limits(rate_server):
    srv, job = rate_server
    client = srv.client("rl-wait", ADMIN_VIEW, max_retries=0)
    for _ in range(2):  # the window's two calls: the wait's first poll is refused
        client.get_status(job)
    sleeps = recording_sleeps(client)
    final = client.wait_for_completion(job, poll_interval=0.01, timeout=120)
    assert final["status"] == "completed", final
    assert any(0.5 <= s <= 2 for s in sleeps), sleeps  # it waited what the server asked


def test_rate_limited_without_retries_raises(rate_server):
    srv, job = rate_server
    client = srv.client("rl-noretry", ADMIN_VIEW, max_retries=0)
    sleeps = recording_sleeps(client)
    with pytest.raises(RateLimited) as exc:
        for _ in range(5):
            client.get_status(job)
    e = exc.value
    assert e.code == -32029
    assert e.retry_after is not None and 0 < e.retry_after <= 2
    assert e.data["retry_after_s"] == e.retry_after
    assert sleeps == []
    assert client.last_rate_limit["limit"] == 2 and client.last_rate_limit["remaining"] == 0


def test_rate_limited_retry_wait_is_capped(rate_server):
    srv, job = rate_server
    client = srv.client("rl-capped", ADMIN_VIEW, max_retries=2, max_retry_wait=0.01)
    sleeps = recording_sleeps(client)
    with pytest.raises(RateLimited):
        for _ in range(5):
            client.get_status(job)
    assert sleeps == [0.01, 0.01]


def test_batch_calls_each_count_against_the_rate_limit(rate_server):
    srv, job = rate_server
    client = srv.client("rl-batch", ADMIN_VIEW)
    out = client.batch([("training.get_status", {"job_id": job})] * 3)
    assert [type(r).__name__ for r in out] == ["dict", "dict", "RateLimited"]
    assert out[2].retry_after > 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_connection_error_is_retried_with_backoff():
    client = TrainingClient(f"http://127.0.0.1:{free_port()}", "token", max_retries=3, backoff=0.01)
    sleeps = recording_sleeps(client)
    t0 = time.monotonic()
    with pytest.raises(TransportError) as exc:
        client.list_jobs()
    assert time.monotonic() - t0 < 5
    assert exc.value.attempts == 4
    assert sleeps == [0.01, 0.02, 0.04]
    assert isinstance(exc.value.__cause__, ConnectionError)
    assert isinstance(exc.value, AgentCoreError) and exc.value.code is None

    once = TrainingClient(f"http://127.0.0.1:{free_port()}", "token", max_retries=0)
    sleeps = recording_sleeps(once)
    with pytest.raises(TransportError) as exc:
        once.get_status(str(uuid.uuid4()))
    assert exc.value.attempts == 1 and sleeps == []


def test_read_timeout_is_retried():
    # a listener that never accepts: the kernel completes the handshake, nobody answers
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    try:
        client = TrainingClient(f"http://127.0.0.1:{lsock.getsockname()[1]}", "token", timeout=0.2,
                                max_retries=1, backoff=0.01)
        sleeps = recording_sleeps(client)
        t0 = time.monotonic()
        with pytest.raises(TransportError) as exc:
            client.list_jobs()
        assert 0.4 <= time.monotonic() - t0 < 5
        assert exc.value.attempts == 2 and sleeps == [0.01]
        assert isinstance(exc.value.__cause__, (TimeoutError, socket.timeout))
    finally:
        lsock.close()


# ---- batch ---------------------------------------------------------------------------------------


def test_batch(server, alice, trained):
    job, _ = trained
    missing = str(uuid.uuid4())
    out = alice.batch([
        ("training.get_status", {"job_id": job}),
        {"method": "training.get_status", "params": {"job_id": missing}},
        ("training.list_checkpoints", {"job_id": job}),
        ("training.get_status", {"job_id": "nope"}),
        ("training.no_such_method", None),
    ])
    assert out[0]["status"] == "completed"
    assert isinstance(out[1], NotFound)
    assert out[2]["job_id"] == job
    assert isinstance(out[3], InvalidParams)
    assert isinstance(out[4], MethodNotFound)

    with pytest.raises(InvalidRequest):
        alice.batch([])  # an empty batch is one -32600
    with pytest.raises(Unauthorized):
        TrainingClient(server.url, "bad-token").batch([("training.list_jobs", {})])


# ---- webhook subscriptions (the server methods may not exist yet) -----------------------------


def _subscribe_or_skip(client, events, url):
    try:
        return client.subscribe_webhook(events, url)
    except MethodNotFound:
        pytest.skip("the server does not answer webhooks.subscribe yet (-32601 Method not found)")


class _Hooks(http.server.BaseHTTPRequestHandler):
    received = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append(({k: v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def hook_receiver():
    received = []
    handler = type("Hooks", (_Hooks,), {"received": received})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", received
    httpd.shutdown()
    httpd.server_close()


def test_webhook_subscriptions_and_signed_delivery(server, data, hook_receiver):
    url, received = hook_receiver
    client = server.client("hooked")
    sub = _subscribe_or_skip(client, ["training.job.completed"], url)
    sub_id = sub.get("subscription_id") or sub.get("id")
    secret = sub.get("secret")
    assert sub_id, sub
    assert secret and secret.startswith("whsec_"), sub
    assert sub["url"] == url and sub["events"] == ["training.job.completed"]
    listed = client.list_webhooks()["subscriptions"]
    assert [s["subscription_id"] for s in listed] == [sub_id]
    assert secret not in json.dumps(listed), "the secret is shown only when subscribing"

    job = start(client, data)["job_id"]
    assert client.wait_for_completion(job, poll_interval=0.25, timeout=120)["status"] == "completed"
    deadline = time.monotonic() + 30
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received, "no webhook delivery within 30 s of the job's completion"
    headers, body = received[0]
    payload = verify_webhook(body, headers, secret)
    assert payload["event"] == "training.job.completed"
    assert payload["data"]["job_id"] == job
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body + b" ", headers, secret)

    assert client.unsubscribe_webhook(sub_id) == {"subscription_id": sub_id, "unsubscribed": True}
    assert client.list_webhooks()["subscriptions"] == []
    with pytest.raises(NotFound):
        client.unsubscribe_webhook(sub_id)


def test_job_webhooks_signed_with_the_jobs_own_secret(server, data, hook_receiver):
    url, received = hook_receiver
    client = server.client("job-hooks")
    secret = "whsec_" + base64.b64encode(b"a secret of this job's own here!").decode()
    try:
        job = start(client, data, webhooks=[{"url": url, "events": ["training.job.started",
                                                                    "training.job.completed"], "secret": secret}])
    except InvalidRequest as e:
        if e.field == "webhooks":
            pytest.skip("the server does not take start_grpo's webhooks parameter yet: %s" % e)
        raise
    job = job["job_id"]
    assert client.wait_for_completion(job, poll_interval=0.25, timeout=120)["status"] == "completed"
    deadline = time.monotonic() + 30
    while len(received) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    events = sorted(verify_webhook(body, headers, secret)["event"] for headers, body in received)
    assert events == ["training.job.completed", "training.job.started"]
    with pytest.raises(WebhookVerificationError):
        verify_webhook(received[0][1], received[0][0], SECRET)  # not the module's test secret
    with pytest.raises(InvalidRequest) as exc:
        start(client, data, webhooks=[{"url": url, "events": ["*"], "secret": "not-whsec"}])
    assert exc.value.field == "webhooks[0].secret"


def test_webhook_subscription_errors(server):
    client = server.client("hook-errors")
    with pytest.raises(InvalidParams):
        _subscribe_or_skip(client, ["training.job.no_such_event"], "https://example.com/hook")
    with pytest.raises(InvalidParams):
        client.subscribe_webhook(["training.job.completed"], "ftp://example.com/hook")
    with pytest.raises(Forbidden) as exc:
        server.client("no-hooks", ["training:view"]).subscribe_webhook(["*"], "https://example.com/hook")
    assert exc.value.required == "webhooks:manage"


# ---- webhook signature verification (Standard Webhooks) --------------------------------------

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
BODY = json.dumps({"event": "training.job.completed", "timestamp": "2025-10-17T12:00:00Z",
                   "data": {"job_id": "550e8400-e29b-41d4-a716-446655440000", "status": "completed"}}).encode()
NOW = 1_760_000_000


def signed_headers(body=BODY, secret=SECRET, ts=NOW, msg_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"):
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sign_webhook(body, msg_id, ts, secret)}


def test_verify_webhook_valid():
    payload = verify_webhook(BODY, signed_headers(), SECRET, now=NOW)
    assert payload == json.loads(BODY)
    # header names are case-insensitive; a str body is the same bytes in UTF-8
    upper = {k.title(): v for k, v in signed_headers().items()}
    assert verify_webhook(BODY.decode(), upper, SECRET, now=NOW + 299) == payload
    assert verify_webhook(BODY, signed_headers(), SECRET, now=NOW - 299) == payload
    # a secret given without its whsec_ prefix
    assert verify_webhook(BODY, signed_headers(), SECRET[len("whsec_"):], now=NOW) == payload


def test_verify_webhook_known_vector():
    # computed independently: base64(HMAC-SHA256(key, "id.ts.body"))
    import hashlib
    import hmac as _hmac
    key = base64.b64decode(SECRET[6:])
    want = base64.b64encode(_hmac.new(key, b"msg_1.1760000000." + BODY, hashlib.sha256).digest()).decode()
    assert sign_webhook(BODY, "msg_1", NOW, SECRET) == "v1," + want


def test_verify_webhook_tampered_body():
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY.replace(b"completed", b"failed", 1), signed_headers(), SECRET, now=NOW)
    headers = signed_headers()
    headers["webhook-id"] = "msg_other"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY, headers, SECRET, now=NOW)


def test_verify_webhook_wrong_secret():
    other = "whsec_" + base64.b64encode(b"another secret of 32 bytes......").decode()
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY, signed_headers(), other, now=NOW)
    with pytest.raises(ValueError):
        verify_webhook(BODY, signed_headers(), "whsec_***not base64***", now=NOW)


def test_verify_webhook_timestamp_tolerance():
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_webhook(BODY, signed_headers(), SECRET, now=NOW + 301)
    with pytest.raises(WebhookVerificationError, match="future"):
        verify_webhook(BODY, signed_headers(), SECRET, now=NOW - 301)
    assert verify_webhook(BODY, signed_headers(), SECRET, tolerance=1000, now=NOW + 999)
    # the timestamp is signed: moving it breaks the signature
    headers = signed_headers()
    headers["webhook-timestamp"] = str(NOW + 10)
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify_webhook(BODY, headers, SECRET, now=NOW)
    # default now: the current time
    fresh = signed_headers(ts=int(time.time()))
    assert verify_webhook(BODY, fresh, SECRET)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY, signed_headers(ts=int(time.time()) - 3600), SECRET)


def test_verify_webhook_multiple_signatures():
    good = signed_headers()["webhook-signature"]
    old_secret = "whsec_" + base64.b64encode(b"the previous secret, rotated out").decode()
    stale = sign_webhook(BODY, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", NOW, old_secret)
    for sigs in (f"{stale} {good}", f"{good} {stale}", f"v2,{good[3:]} {good}", f"v1,garbage {good}"):
        headers = dict(signed_headers(), **{"webhook-signature": sigs})
        assert verify_webhook(BODY, headers, SECRET, now=NOW)["data"]["status"] == "completed"
    for sigs in (stale, f"{stale} v1,garbage", f"v2,{good[3:]}", good[3:], ""):
        headers = dict(signed_headers(), **{"webhook-signature": sigs})
        with pytest.raises(WebhookVerificationError):
            verify_webhook(BODY, headers, SECRET, now=NOW)


def test_verify_webhook_missing_or_bad_headers():
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        headers = signed_headers()
        del headers[name]
        with pytest.raises(WebhookVerificationError, match=name):
            verify_webhook(BODY, headers, SECRET, now=NOW)
    with pytest.raises(WebhookVerificationError, match="integer"):
        verify_webhook(BODY, dict(signed_headers(), **{"webhook-timestamp": "soon"}), SECRET, now=NOW)
    not_json = b"not json"
    with pytest.raises(WebhookVerificationError, match="JSON"):
        verify_webhook(not_json, signed_headers(body=not_json), SECRET, now=NOW)


# ---- client-side details ---------------------------------------------------------------------


def test_error_classes_and_mapping():
    for code, cls in sdk._ERRORS.items():
        err = sdk.error_from_response({"code": code, "message": "m", "data": {"field": "f", "error": "e"}})
        assert type(err) is cls and err.code == code and cls.code == code
        assert isinstance(err, AgentCoreError)
        assert str(err) == f"[{code}] m (f: e)"
    unknown = sdk.error_from_response({"code": -39999, "message": "new"})
    assert type(unknown) is AgentCoreError and unknown.code == -39999
    assert sdk.error_from_response({"code": -32029, "message": "slow down"}, retry_after=7).retry_after == 7
    assert sdk._parse_retry_after("3") == 3 and sdk._parse_retry_after(None) is None
    assert issubclass(HTTPError, AgentCoreError) and issubclass(TransportError, AgentCoreError)


def test_base_url_forms():
    a = TrainingClient("http://h:1", "t")
    b = TrainingClient("http://h:1/", "t")
    c = TrainingClient("http://h:1/api/v1/jsonrpc", "t")
    d = TrainingClient("https://h/prefix/", "t")
    assert a._path == b._path == c._path == "/api/v1/jsonrpc"
    assert (d._path, d._port) == ("/prefix/api/v1/jsonrpc", 443)
    with pytest.raises(ValueError):
        TrainingClient("h:1", "t")
