#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_rpc into tests/fuzz/corpus/ (run it again after changing a seed).

A seed is one byte that picks the caller (see fuzz_rpc.c: '0' admin, '1' user, '2' nobody,
'3' no header, '4'/'5' raw / Bearer header of L bytes, '6' admin token with one byte replaced,
'7' admin token plus L bytes, '8'/'9' admin/user on the tight rate limiter, 'P'..'W' kinds
0..7 on the rpc object whose limits.max_json_values is FEW_VALUES (64)), then for kinds 4-7
their extra bytes, then the request body. Job ids 00000000-0000-4000-8000-00000000000{a,b,c}
name the harness's fixture jobs (owned by admin, user, and a third principal).

Files named regress-* are inputs that once found a bug: never delete them.
"""
import base64
import hashlib
import hmac
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
SECRET = b"fuzz-rpc-secret-0123456789abcdef"  # fuzz_rpc.c SECRET

JOB_A = "00000000-0000-4000-8000-00000000000a"  # admin's fixture job
JOB_B = "00000000-0000-4000-8000-00000000000b"  # user's fixture job
JOB_C = "00000000-0000-4000-8000-00000000000c"  # a third principal's job
JOB_NONE = "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab"

seeds = {}


def j(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def call(method, params=None, id=1, **extra):
    c = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        c["params"] = params
    if id is not None:
        c["id"] = id
    c.update(extra)
    return c


def seed(name, who, body, extra=b""):
    if isinstance(body, (dict, list)):
        body = j(body)
    elif isinstance(body, str):
        body = body.encode()
    seeds[name] = who.encode() + extra + body


def with_len(data):
    assert len(data) < 256
    return bytes([len(data)]) + data


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def jwt(header, claims, key=SECRET):
    signing = b64(j(header)) + b"." + b64(j(claims))
    sig = hmac.new(key, signing, hashlib.sha256).digest()
    return signing + b"." + b64(sig)


def queries(n, prefix="q"):
    return [{"query": f"{prefix}{i}", "expected_outcome": {"ok": True}} for i in range(n)]


START_OK = {"agent_id": "calculator", "config": {"n_iterations": 2, "batch_size": 4}, "training_data": queries(100)}

# ---- valid calls, one per method and caller
seed("start_grpo-valid-100", "0", call("training.start_grpo", START_OK, id="train-001"))
seed("start_grpo-valid-full", "0", call("training.start_grpo", {
    "agent_id": "codegen",
    "config": {"n_iterations": 500, "batch_size": 16, "n_trajectories_per_query": 8, "learning_rate": 0.0001,
               "max_budget_usd": 50.0, "checkpoint_interval": 10, "max_steps_per_trajectory": 20,
               "gamma": 0.99, "loss_type": "dapo", "epsilon": 0.2, "epsilon_high": 0.28, "beta": 0.0,
               "mu": 2, "entropy_coef": 0.01, "scale_rewards": False, "mask_truncated": True,
               "temperature": 0.7, "max_grad_norm": 1.0, "hidden_size": 32, "embed_dim": 16,
               "n_buckets": 1024, "seed": 7, "dapo_max_draws": 3},
    "training_data": queries(100), "evaluation_data": queries(3, "e")}, id=2))
seed("get_status-admin-own", "0", call("training.get_status", {"job_id": JOB_A}, id="status-001"))
seed("get_status-admin-batch", "0", [call("training.get_status", {"job_id": JOB_C}, id=6),
                                      call("training.get_status", {"job_id": JOB_NONE.upper()}, id=7)])
seed("get_status-user-own", "1", call("training.get_status", {"job_id": JOB_B}, id=4))
seed("get_status-user-other", "1", call("training.get_status", {"job_id": JOB_C}, id=5))
seed("cancel-admin-reason", "0", call("training.cancel", {"job_id": JOB_A, "reason": "Budget exceeded manually"},
                                      id="cancel-001"))
seed("cancel-user", "1", [call("training.cancel", {"job_id": JOB_B, "reason": None}, id=8),
                          call("training.cancel", {"job_id": JOB_C}, id=9)])
seed("discover-nobody", "2", [call("rpc.discover", id=1), call("rpc.discover", {}, id=None),
                              call("rpc.discover", {"x": 1}, id=2)])
seed("forbidden-nobody", "2", [call("training.get_status", {"job_id": JOB_A}, id=10),
                               call("training.start_grpo", START_OK, id=11), call("webhooks.list", id=12)])
seed("forbidden-user", "1", [call("training.evaluate", {"job_id": JOB_B}, id=1),
                             call("training.export_trajectories", {"job_id": JOB_B}, id=2),
                             call("webhooks.list", id=3), call("training.list_jobs", id=4)])

# ---- the methods beyond start_grpo, get_status and cancel
seed("evaluate", "0", [
    call("training.evaluate", {"job_id": JOB_A}, id=1),
    call("training.evaluate", {"job_id": JOB_A, "checkpoint_id": JOB_NONE,
                               "evaluation_queries": queries(2, "e")}, id=2),
    call("training.evaluate", {"job_id": JOB_C, "evaluation_queries": [{"query": ""}, 3]}, id=3),
])
seed("export_trajectories", "0", [
    call("training.export_trajectories", {"job_id": JOB_A}, id=1),
    call("training.export_trajectories", {"job_id": JOB_A, "success_only": True, "min_reward": 0.5,
                                          "limit": 100, "offset": 0}, id=2),
    call("training.export_trajectories", {"job_id": JOB_A, "limit": 20000}, id=3),
    call("training.export_trajectories", {"job_id": JOB_A, "limit": 0, "offset": 5.0}, id=4),
    call("training.export_trajectories", {"job_id": JOB_A, "offset": -1, "min_reward": "x"}, id=5),
])
seed("list-methods", "0", [
    call("training.list_jobs", {"status": "queued", "limit": 2, "offset": 1}, id=1),
    call("training.list_jobs", {"status": "paused"}, id=2),
    call("training.list_checkpoints", {"job_id": JOB_A}, id=3),
    call("training.list_events", {"job_id": JOB_A, "cursor": 1, "limit": 10}, id=4),
    call("training.list_events", {"job_id": JOB_C, "cursor": -1}, id=5),
])
seed("list-user", "1", [call("training.list_jobs", id=1), call("training.list_events", {"job_id": JOB_C}, id=2)])
seed("webhooks", "0", [
    call("webhooks.subscribe", {"url": "https://hooks.fuzz.example/agentcore?x=1",
                                "events": ["training.job.completed", "training.job.failed"]}, id=1),
    call("webhooks.subscribe", {"url": "http://127.0.0.1:8080/hook", "events": ["*"]}, id=2),
    call("webhooks.subscribe", {"url": "http://[::ffff:10.0.0.1]/x", "events": ["*"]}, id=3),
    call("webhooks.subscribe", {"url": "http://user@hooks.fuzz.example/", "events": ["*"]}, id=4),
    call("webhooks.subscribe", {"url": "ftp://hooks.fuzz.example/", "events": []}, id=5),
    call("webhooks.subscribe", {"url": "http://unknown.invalid/", "events": ["training.job.exploded"]}, id=6),
    call("webhooks.list", {}, id=7),
    call("webhooks.unsubscribe", {"subscription_id": JOB_NONE}, id=8),
])
seed("start_grpo-webhooks", "0", call("training.start_grpo", dict(START_OK, webhooks=[
    {"url": "https://hooks.fuzz.example/job", "events": ["training.job.completed"], "secret": "whsec_MTIzNDU2Nzg5"},
    {"url": "http://[fe80::1]/", "events": ["*"]}]), id=1))

# ---- batches and notifications
seed("batch-mixed", "0", [
    call("training.get_status", {"job_id": JOB_A}, id="1"),
    call("training.cancel", {"job_id": JOB_B}, id="2"),
    call("training.nope", {}, id=3),
    call("training.get_status", {"job_id": JOB_A}, id=None),
    1,
    {"jsonrpc": "2.0", "id": 4},
])
seed("batch-notifications-only", "0", [call("training.get_status", {"job_id": JOB_A}, id=None),
                                        call("training.cancel", {"job_id": JOB_NONE}, id=None),
                                        call("no.such.method", id=None)])
seed("batch-deferred-start", "0", [call("training.start_grpo", {"agent_id": "calculator", "config": {},
                                                                 "training_data": queries(2)}, id=1),
                                    call("training.get_status", {"job_id": JOB_A}, id=2)])
seed("batch-too-large", "0", [call("training.get_status", {"job_id": JOB_A}, id=i) for i in range(101)])
seed("batch-empty", "0", "[]")
seed("batch-nested-and-scalars", "0", "[[],[{}],1,\"x\",null,true]")
seed("notification", "0", call("training.get_status", {"job_id": JOB_A}, id=None))
seed("notification-bad-version", "0", {"jsonrpc": "1.0", "method": "training.get_status"})

# ---- malformed JSON
seed("json-truncated", "0", '{"jsonrpc":"2.0","method":"training.get_status",')
seed("json-trailing-garbage", "0", j(call("training.get_status", {"job_id": JOB_A})) + b" x")
seed("json-scalar", "0", " 42 ")
seed("json-empty", "0", "")
seed("json-bom", "0", b"\xef\xbb\xbf" + j(call("training.get_status", {"job_id": JOB_A})))
seed("json-invalid-utf8-value", "0", b'{"jsonrpc":"2.0","method":"training.\xff\xfe","id":1}')
seed("json-invalid-utf8-key", "0", b'{"jsonrpc":"2.0","method":"training.get_status","params":{"\xc3(":1},"id":1}')
seed("json-duplicate-keys", "0", '{"jsonrpc":"2.0","id":1,"method":"training.get_status","id":2}')
seed("json-nul-escape", "0", '{"jsonrpc":"2.0","method":"training.get_status\\u0000x","id":1}')
seed("json-lone-surrogate", "0", '{"jsonrpc":"2.0","method":"\\ud800","id":1}')
seed("json-deep-65", "0", "[" * 65 + "]" * 65)
seed("json-deep-64", "0", "[" * 63 + j(call("x")).decode() + "]" * 63)
seed("json-brackets-in-string", "0", j(call("training.get_status", {"job_id": "[" * 100 + "\\\"{" * 50}, id=1)))
seed("json-unbalanced-close", "0", "]" * 10 + "[" * 70)

# ---- wrong shapes of a call
seed("call-wrong-types", "0", [
    {"jsonrpc": 2.0, "method": "training.get_status", "id": 1},
    {"jsonrpc": "2.0", "method": 7, "id": 2},
    {"jsonrpc": "2.0", "method": "training.get_status", "params": "x", "id": 3},
    {"jsonrpc": "2.0", "method": "training.get_status", "id": {"a": 1}},
    {"jsonrpc": "2.0", "method": "training.get_status", "id": [1]},
    {"jsonrpc": "2.0", "method": "training.get_status", "id": True},
    {"jsonrpc": "2.0", "method": "training.get_status", "params": None, "id": 4},
])
seed("params-bad-values", "0", [
    call("training.get_status", [JOB_A], id=5),
    call("training.cancel", {"job_id": JOB_A, "reasn": "typo"}, id=6),
    call("training.get_status", {"job_id": "not-a-uuid"}, id=1),
    call("training.get_status", {"job_id": 12345}, id=2),
    call("training.cancel", {"job_id": JOB_A, "reason": 5}, id=3),
    call("training.get_status", {}, id=4),
])
seed("ids-odd", "0", [
    call("training.get_status", {"job_id": JOB_A}, id=9223372036854775807),
    call("training.get_status", {"job_id": JOB_A}, id=-9223372036854775808),
    call("training.get_status", {"job_id": JOB_A}, id=1e308),
    call("training.get_status", {"job_id": JOB_A}, id=-0.0),
    call("training.get_status", {"job_id": JOB_A}, id=1.5),
    call("training.get_status", {"job_id": JOB_A}, id="\u00e9\U0001f600" * 40),
    {"jsonrpc": "2.0", "method": "training.get_status", "params": {"job_id": JOB_A}, "id": None},  # explicit null
])
seed("id-too-big", "0", '{"jsonrpc":"2.0","method":"training.get_status","id":99999999999999999999}')
seed("unicode-escapes", "0", '[{"jsonrpc":"2.0","method":"training.get\\u005fstatus","params":{"job_id":"'
     + JOB_A + '"},"id":"\\ud83d\\ude00"},{"jsonrpc":"2.0","method":"a' + "\u00e9" * 40 + '","id":2}]')
# (the second method name is 81 bytes: rpc.c's "%.64s" cuts its 32nd character in half)

# ---- start_grpo validation
START_SMALL = dict(START_OK, training_data=queries(1))  # the config is checked before the data
seed("start_grpo-bad-config", "0", [
    call("training.start_grpo", dict(START_SMALL, config={"n_iterations": 0}), id=1),
    call("training.start_grpo", dict(START_SMALL, config={"learning_rate": "x"}), id=2),
    call("training.start_grpo", dict(START_SMALL, config={"loss_type": "ppo"}), id=3),
    call("training.start_grpo", dict(START_SMALL, config={"bogus": 1}), id=4),
    call("training.start_grpo", dict(START_SMALL, config={"batch_size": 1.5, "n_iterations": 1e300}), id=5),
])
seed("start_grpo-bad-agent", "0", call("training.start_grpo", dict(START_OK, agent_id="bad agent/../x"), id=1))
seed("start_grpo-missing-params", "0", call("training.start_grpo", {"agent_id": "a"}, id=1))
seed("start_grpo-bad-data", "0", call("training.start_grpo", {
    "agent_id": "calculator", "config": {},
    "training_data": [1, {"query": ""}, {"query": "x", "expected_outcome": []}, {"expected_outcome": {}}]
    + queries(2),
    "evaluation_data": [{"query": "q0", "expected_outcome": {}}, "e"]}, id=1))

# ---- authentication
NONE_TOKEN = b64(j({"alg": "none", "typ": "JWT"})) + b"." + b64(j({"sub": "x", "exp": 4102444800})) + b"."
seed("auth-missing-header", "3", call("training.get_status", {"job_id": JOB_A}, id="keep-me"))
seed("auth-basic-scheme", "4", call("training.get_status", {"job_id": JOB_A}, id=1),
     with_len(b"Basic YWxhZGRpbjpvcGVuc2VzYW1l"))
seed("auth-alg-none", "5", call("training.get_status", {"job_id": JOB_A}, id=1), with_len(NONE_TOKEN))
seed("auth-wrong-key", "5", call("training.get_status", {"job_id": JOB_A}, id=1),
     with_len(jwt({"alg": "HS256", "typ": "JWT"}, {"sub": "fuzz-admin", "exp": 4102444800,
                                                    "permissions": ["training:admin"]}, key=b"wrong")))
seed("auth-minted-scope", "5", call("training.get_status", {"job_id": JOB_C}, id=1),
     with_len(jwt({"alg": "HS256", "typ": "JWT"}, {"sub": "minted", "exp": 4102444800,
                                                    "scope": "training:view training:admin bogus"})))
seed("auth-minted-expired", "5", call("training.get_status", {"job_id": JOB_A}, id=1),
     with_len(jwt({"alg": "HS256"}, {"sub": "old", "exp": 1000000000, "permissions": []})))
seed("auth-minted-bad-claims", "5", [call("training.get_status", {"job_id": JOB_A}, id=1)],
     with_len(jwt({"alg": "HS256", "crit": ["b64"]}, {"sub": "", "exp": "soon", "nbf": 1e30,
                                                       "permissions": "training:view"})))
seed("auth-token-suffix", "7", call("training.get_status", {"job_id": JOB_A}, id=1), with_len(b" \t"))

# ---- rate limits (the tight limiter: one call per class per hour)
seed("ratelimit-single", "8", call("training.get_status", {"job_id": JOB_A}, id=1))
seed("ratelimit-batch", "8", [call("training.cancel", {"job_id": JOB_NONE}, id=i) for i in range(3)])
seed("ratelimit-start-user", "9", call("training.start_grpo", START_OK, id=1))


# ---- the value bound (the "few" rpc object: limits.max_json_values = 64, counted before parsing)
FEW_VALUES = 64  # fuzz_rpc.c FEW_VALUES


def values(v):
    """What rpc.c's scan counts: every value and every member name."""
    if isinstance(v, dict):
        return 1 + sum(1 + values(x) for x in v.values())
    if isinstance(v, list):
        return 1 + sum(values(x) for x in v)
    return 1


at_limit = [call("rpc.discover", id=i) for i in range(9)]
assert values(at_limit) == FEW_VALUES
seed("values-at-limit", "P", at_limit)
seed("values-over-limit", "P", at_limit + [call("rpc.discover", id=9)])
seed("values-over-limit-no-header", "S", at_limit + [call("rpc.discover", id=9)])
tricky = call("training.list_jobs", {"status": "a,[{\"b\":[1,2]}]: \\\" ,0"}, id="[0,0]")
seed("values-strings-count-once", "P", [tricky] * 5)  # 5 x 11 + 1 = 56: within the bound
assert values([tricky] * 5) <= FEW_VALUES
seed("values-over-limit-not-json", "P", b"[" + b"0," * 80)
seed("values-deep-and-many", "P", b"[" * 70 + b"0," * 80 + b"0" + b"]" * 70)


def main():
    os.makedirs(OUT, exist_ok=True)
    keep = {f for f in os.listdir(OUT) if f.startswith("regress-")}
    for f in os.listdir(OUT):
        if f not in keep:
            os.unlink(os.path.join(OUT, f))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(OUT, name), "wb") as fh:
            fh.write(data)
    print(f"{len(seeds)} seeds written to {OUT} ({len(keep)} regression seeds kept)", file=sys.stderr)


if __name__ == "__main__":
    main()
