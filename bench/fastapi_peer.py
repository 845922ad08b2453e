#!/usr/bin/python3
"""A FastAPI + uvicorn peer of agentcore's Training API, for bench/http_bench.sh.

It does per request what agentcore does for `training.get_status`, in idiomatic FastAPI:

  POST /api/v1/jsonrpc   JSON-RPC 2.0 (single calls and batches)
  GET  /healthz          {"status":"ok"}

  * Content-Type must be application/json (415 otherwise), POST only (405), other paths 404;
  * the body is parsed as JSON, then the bearer token is verified: HS256 JWT with the secret of
    AGENTCORE_JWT_SECRET, using only the standard library (hmac, hashlib, base64, json): the
    header's alg must be HS256, the signature must match (constant-time compare), exp is
    required and checked (30 s leeway, like agentcore), nbf/iat when present, sub must be a
    1-128 byte string and permissions an array of strings (or scope a string);
    every request does the full verification (agentcore caches verified tokens; HMAC-SHA256 on
    a 250-byte token costs a few microseconds in CPython, so this is not what limits the peer);
  * the method's permission is checked (training:view for get_status, training:start for
    start_grpo) and a fixed-window rate limit per principal and method class is taken; every
    authenticated response carries x-ratelimit-limit / -remaining / -reset;
  * params are checked (job_id must be a UUID; unknown names are refused);
  * the job is read from an sqlite file as JSON text and parsed (agentcore keeps the same JSON
    text in LMDB and parses it on every call); a job of another principal is "not found";
  * the result has the same members, in the same order, as agentcore's, in the same JSON-RPC
    envelope {"jsonrpc":"2.0","result":{...},"id":...}.

The benchmark serves agentcore's own job record: it reads it from agentcore's LMDB store
(`mdb_dump`, then `fastapi_peer.py --extract-seed DUMP JOB_ID OUT`) and starts the peer with
`--seed OUT`, so both servers compute the answer from the same stored JSON. The two answers
are equal as JSON values (jansson prints doubles with 17 significant digits, Python with the
fewest that round-trip, so the byte counts differ slightly).

`training.start_grpo` exists so that the peer also works alone: it checks agent_id and
training_data (>= 100 objects {query, expected_outcome}) and stores a job record shaped like
agentcore's; it does not train.

Run (what http_bench.sh does):
  AGENTCORE_JWT_SECRET=... /usr/bin/python3 bench/fastapi_peer.py --data DIR [--workers N] [--seed FILE]
It binds 127.0.0.1 on a free port itself (no race), prints
  fastapi_peer: listening on http://127.0.0.1:PORT port=PORT workers=N loop=... http=...
and serves until SIGTERM/SIGINT. uvicorn uses uvloop and httptools when they are installed
(python3-uvloop, python3-httptools: the fast configuration, `uvicorn[standard]`), else asyncio
and h11. With --workers > 1 each worker process has its own rate-limit counters (the job
store, the sqlite file, is shared). FASTAPI_PEER_STATUS_LIMIT / _WINDOW_S set the get_status
rate limit (default 100 per 60 s, like agentcore).
"""
import argparse
import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import platform
import re
import socket
import sqlite3
import sys
import threading
import time
import uuid

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from uvicorn.supervisors import Multiprocess

RPC_PATH = "/api/v1/jsonrpc"
LEEWAY_S = 30
MAX_BODY = 16 << 20

PERMS = {
    "training:start", "training:view", "training:cancel", "training:evaluate", "data:export",
    "training:admin", "webhooks:manage", "metrics:view",
}

# the same error codes as agentcore (core/base/err.h)
E_PARSE, E_INVALID_REQUEST, E_METHOD_NOT_FOUND, E_INVALID_PARAMS, E_INTERNAL = -32700, -32600, -32601, -32602, -32603
E_NOT_FOUND, E_UNAUTHORIZED, E_FORBIDDEN, E_RATE_LIMITED = -32001, -32002, -32003, -32029
E_VALIDATION_FAILED = -40002

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
AGENT_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def _env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


SECRET = os.environ.get("AGENTCORE_JWT_SECRET", "").encode()
DATA_DIR = os.environ.get("FASTAPI_PEER_DATA", ".")
# the verified-token and status caches that agentcore also has (--no-caches turns them off)
CACHES = os.environ.get("FASTAPI_PEER_CACHES", "1") != "0"
# rate limits per method class: limit per window_s (agentcore's defaults, docs/api.md); the
# benchmark raises get_status the same way it does for agentcore
RATE_RULES = {
    "start_grpo": (10, 60),
    "get_status": (_env_int("FASTAPI_PEER_STATUS_LIMIT", 100), _env_int("FASTAPI_PEER_STATUS_WINDOW_S", 60)),
    "cancel": (20, 60),
    "other": (100, 60),
}


class RpcError(Exception):
    def __init__(self, code, message, data=None, status=200):
        super().__init__(message)
        self.code, self.message, self.data, self.status = code, message, data, status


# ---- JWT HS256 ---------------------------------------------------------------------------------

def _b64url(s):
    s = s.encode("ascii") if isinstance(s, str) else s
    return base64.urlsafe_b64decode(s + b"=" * (-len(s) % 4))


def _deny(reason):
    return RpcError(E_UNAUTHORIZED, "Unauthorized", {"error": reason}, 401)


def _check_times(exp, nbf, iat, now):
    """The time rules, shared by the full path and the cache hit (as in core/net/auth.c), so a
    cached token expires exactly when an uncached one would."""
    if exp <= now - LEEWAY_S:
        raise _deny("token expired")
    if nbf is not None and nbf > now + LEEWAY_S:
        raise _deny("token not yet valid")
    if iat is not None and iat > now + LEEWAY_S:
        raise _deny("issued in the future")


# Verified tokens, as agentcore keeps them (core/net/auth.c): key the exact token text, value
# (sub, permissions, exp, nbf, iat); the time claims are checked again on every hit. Bounded:
# emptied when full (agentcore's slots overwrite each other instead; the benchmark uses one token).
TOKEN_CACHE_MAX = 4096
_token_cache = {}


def verify_bearer(header, now):
    """Returns (sub, set of permissions) or raises RpcError(401)."""
    if header is None:
        raise _deny("missing token")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise _deny("unsupported authorization scheme")
    token = token.strip()
    if not token:
        raise _deny("missing token")
    if len(token) > 8192:
        raise _deny("malformed token")
    hit = _token_cache.get(token) if CACHES else None
    if hit is not None:
        _check_times(hit[2], hit[3], hit[4], now)
        return hit[0], hit[1]
    entry = _verify_uncached(token)
    _check_times(entry[2], entry[3], entry[4], now)
    if CACHES:
        if len(_token_cache) >= TOKEN_CACHE_MAX:
            _token_cache.clear()
        _token_cache[token] = entry
    return entry[0], entry[1]


def _verify_uncached(token):
    """Shape, pinned algorithm, signature, claims (not the times): (sub, perms, exp, nbf, iat)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise _deny("malformed token")
    try:
        head = json.loads(_b64url(parts[0]))
        sig = _b64url(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _deny("malformed token")
    if not isinstance(head, dict):
        raise _deny("malformed token")
    if head.get("alg") != "HS256":  # pinned: none, RS256, ... are refused before any crypto
        raise _deny("algorithm not allowed")
    want = hmac.new(SECRET, (parts[0] + "." + parts[1]).encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(want, sig):
        raise _deny("bad signature")
    try:
        claims = json.loads(_b64url(parts[1]))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _deny("malformed token")
    if not isinstance(claims, dict):
        raise _deny("malformed token")
    exp = claims.get("exp")
    if exp is None:
        raise _deny("missing claim: exp")
    for name in ("exp", "nbf", "iat"):
        v = claims.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise _deny("invalid claim: " + name)
    sub = claims.get("sub")
    if sub is None:
        raise _deny("missing claim: sub")
    if not isinstance(sub, str) or not (1 <= len(sub.encode()) <= 128) or not sub.isprintable():
        raise _deny("invalid sub")
    perms = claims.get("permissions")
    if perms is not None:
        if not isinstance(perms, list) or not all(isinstance(p, str) for p in perms):
            raise _deny("invalid claim: permissions")
    else:
        scope = claims.get("scope")
        if not isinstance(scope, str):
            raise _deny("missing claim: permissions")
        perms = scope.split()
    return sub, frozenset(p for p in perms if p in PERMS), exp, claims.get("nbf"), claims.get("iat")


# ---- rate limits: a fixed window per (principal, class), started by its first call ------------

_rl_lock = threading.Lock()
_rl_windows = {}


def rate_take(sub, cls, now_ms):
    limit, window_s = RATE_RULES[cls]
    with _rl_lock:
        w = _rl_windows.get((sub, cls))
        if w is None or now_ms - w[0] >= window_s * 1000:
            w = _rl_windows[(sub, cls)] = [now_ms, 0]
        ok = w[1] < limit
        if ok:
            w[1] += 1
        end_ms = w[0] + window_s * 1000
        info = (limit, max(limit - w[1], 0), (end_ms + 999) // 1000, max((end_ms - now_ms + 999) // 1000, 0))
    return ok, info


# ---- the job store: JSON text in an sqlite file, with a revision per record -------------------

_db_local = threading.local()


def db():
    c = getattr(_db_local, "conn", None)
    if c is None:
        c = sqlite3.connect(os.path.join(DATA_DIR, "jobs.sqlite3"), isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, rev INTEGER NOT NULL, record TEXT NOT NULL)")
        _db_local.conn = c
    return c


def job_put(rec):
    """Writes a record; its revision goes up by one (what a cached answer is checked against)."""
    db().execute("INSERT OR REPLACE INTO jobs (job_id, rev, record) VALUES "
                 "(?, COALESCE((SELECT rev FROM jobs WHERE job_id = ?), 0) + 1, ?)",
                 (rec["job_id"], rec["job_id"], json.dumps(rec, separators=(",", ":"))))


def job_rev(job_id):
    row = db().execute("SELECT rev FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return row[0] if row is not None else None


def job_get(job_id):
    """(record, revision), or (None, None)."""
    row = db().execute("SELECT record, rev FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return (json.loads(row[0]), row[1]) if row is not None else (None, None)


def iso8601(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def usd_str(micro):
    cents = (micro + 5000) // 10000 if micro >= 0 else -((-micro + 5000) // 10000)  # half away from zero
    a = abs(cents)
    return "%s%d.%02d" % ("-" if cents < 0 else "", a // 100, a % 100)


# ---- methods -----------------------------------------------------------------------------------

def may_see(principal, owner):
    return owner == principal[0] or "training:admin" in principal[1]


def not_found(job_id):
    return RpcError(E_NOT_FOUND, "Not Found", {"field": "job_id", "error": "no job %s" % job_id})


class Raw:
    """A result already rendered as JSON text: spliced into the envelope as is (agentcore's
    ctx->raw_result)."""
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


def c_round(x):
    """C's round(): halves away from zero (Python's round() goes to even)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


# members agentcore adds when the record has them (and they are not null), as
# core/service/status.c does
STATUS_EXTRA = ("created_at", "finished_at", "cancelled_at", "cancel_reason", "error", "latest_checkpoint_id",
                "trajectories_stored", "oldest_iteration", "plugin_failures", "episodes")
RAN_ONLY = ("trajectories_stored", "plugin_failures", "episodes")


def render_status(job):
    """The answer from a job record alone, as core/service/status.c renders it."""
    cur, total = job.get("current_iteration") or 0, job.get("total_iterations") or 0
    cost, budget = job.get("cost_micro") or 0, job.get("budget_micro") or 0
    metrics = job.get("metrics") or {}
    remaining = 100.0 * (budget - cost) / budget if budget > 0 else 0.0
    # the four classic metrics first, then every other metric the engine reports
    m = {
        "train_loss": metrics.get("train_loss"),
        "validation_accuracy": metrics.get("validation_accuracy"),
        "avg_reward": metrics.get("avg_reward"),
        "trajectories_generated": job.get("trajectories_generated") or 0,
    }
    for k, v in metrics.items():
        m.setdefault(k, v)
    result = {
        "job_id": job["job_id"],
        "agent_id": job["agent_id"],
        "status": job["status"],
        "current_iteration": cur,
        "total_iterations": total,
        "progress_percent": c_round(1000.0 * cur / total) / 10.0 if total > 0 else 0.0,
        "metrics": m,
        "cost_usd": usd_str(cost),
        "budget_usd": usd_str(budget),
        "budget_remaining_percent": c_round(remaining * 10.0) / 10.0,
        "started_at": job.get("started_at"),
        "estimated_completion": job.get("estimated_completion"),
        "best_checkpoint_id": job.get("best_checkpoint_id"),
    }
    seed = (job.get("config") or {}).get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool) and seed > 0:  # what reruns the job exactly
        result["seed"] = seed
    ran = job.get("started_at") is not None  # a job's counters once it has run
    for k in STATUS_EXTRA:
        if job.get(k) is not None and (ran or k not in RAN_ONLY) and (k != "oldest_iteration" or job[k] > 0):
            result[k] = job[k]
    if (job.get("crashes") or 0) > 0:
        result["crashes"] = job["crashes"]
    return result


# get_status answers cached per job revision, as agentcore caches them (status.c): an
# unchanged job costs a revision lookup (here an sqlite SELECT of one integer, there an LMDB read
# transaction) and the owner check. job_id -> (rev, owner, rendered text).
_status_cache = {}


def get_status(principal, params, now_ms):
    job_id = params["job_id"]
    if CACHES:
        c = _status_cache.get(job_id)
        if c is not None and c[0] == job_rev(job_id):
            if not may_see(principal, c[1]):
                raise not_found(job_id)
            return Raw(c[2])
    job, rev = job_get(job_id)
    if job is None or not may_see(principal, job.get("owner")):
        raise not_found(job_id)
    text = json.dumps(render_status(job), separators=(",", ":"))
    if CACHES:
        _status_cache[job_id] = (rev, job.get("owner"), text)
    return Raw(text)


def start_grpo(principal, params, now_ms):
    agent = params["agent_id"]
    if not AGENT_RE.match(agent):
        raise RpcError(E_INVALID_REQUEST, "Invalid Request",
                       {"field": "agent_id", "error": "must be 1-128 characters of letters, digits, '-', '_', '.', ':'"})
    config, data = params["config"], params["training_data"]
    problems = []
    if len(data) < 100:
        problems.append({"index": -1, "field": "training_data",
                         "error": "must hold at least 100 queries, got %d" % len(data)})
    for i, q in enumerate(data):
        if not isinstance(q, dict) or not isinstance(q.get("query"), str) or not q["query"] \
                or not isinstance(q.get("expected_outcome"), dict):
            problems.append({"index": i, "field": "training_data[%d]" % i, "error": "must be {query, expected_outcome}"})
    if problems:
        raise RpcError(E_VALIDATION_FAILED, "Training data validation failed: %d problem(s)" % len(problems),
                       {"field": problems[0]["field"], "error": problems[0]["error"], "problems": problems[:50]})
    n_iter = config.get("n_iterations", 1000)
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or not 1 <= n_iter <= 10000:
        raise RpcError(E_INVALID_REQUEST, "Invalid training configuration",
                       {"field": "config.n_iterations", "error": "must be an integer in [1, 10000]"})
    job_id = str(uuid.uuid4())
    budget = int(round(float(config.get("max_budget_usd", 100.0)) * 1e6))
    rec = {
        "job_id": job_id, "owner": principal[0], "agent_id": agent, "status": "queued", "config": config,
        "created_at": iso8601(now_ms), "created_at_ms": now_ms, "current_iteration": 0,
        "total_iterations": n_iter, "cost_micro": 0, "budget_micro": budget, "metrics": {},
        "n_training": len(data), "n_evaluation": len(params.get("evaluation_data") or []),
        "started_at": None, "finished_at": None, "best_checkpoint_id": None, "error": None,
    }
    job_put(rec)
    return {"job_id": job_id, "status": "queued", "agent_id": agent, "total_iterations": n_iter,
            "created_at": rec["created_at"]}


# name -> (handler, permission, rate class, params {name: (type, required)}, code for bad params)
METHODS = {
    "training.get_status": (get_status, "training:view", "get_status", {"job_id": ("uuid", True)}, E_INVALID_PARAMS),
    "training.start_grpo": (start_grpo, "training:start", "start_grpo",
                            {"agent_id": ("string", True), "config": ("object", True),
                             "training_data": ("array", True), "evaluation_data": ("array", False)},
                            E_INVALID_REQUEST),
}
_TYPES = {"string": str, "object": dict, "array": list}


def check_params(spec, params, code, name):
    if not isinstance(params, dict):
        raise RpcError(code, "Invalid params", {"field": "params", "error": "must be an object of named parameters"})
    for p, (t, required) in spec.items():
        v = params.get(p)
        if v is None:
            if required:
                raise RpcError(code, "Invalid params", {"field": p, "error": "is required"})
            continue
        if t == "uuid":
            if not isinstance(v, str) or not UUID_RE.match(v):
                raise RpcError(code, "Invalid params", {"field": p, "error": "must be a UUID"})
        elif not isinstance(v, _TYPES[t]):
            raise RpcError(code, "Invalid params", {"field": p, "error": "must be a " + t})
    for k in params:
        if k not in spec:
            raise RpcError(code, "Invalid params", {"field": k, "error": "is not a parameter of " + name})


def error_obj(e, id_):
    err = {"code": e.code, "message": e.message}
    if e.data is not None:
        err["data"] = e.data
    return {"jsonrpc": "2.0", "error": err, "id": id_}


def call_one(principal, req, now_ms, state):
    if not isinstance(req, dict):
        return error_obj(RpcError(E_INVALID_REQUEST, "Invalid Request: a call must be an object"), None)
    id_ = req.get("id")
    if id_ is not None and (isinstance(id_, (dict, list, bool))):
        return error_obj(RpcError(E_INVALID_REQUEST, "Invalid Request",
                                  {"field": "id", "error": "must be a string, a number or null"}), None)
    try:
        if req.get("jsonrpc") != "2.0":
            raise RpcError(E_INVALID_REQUEST, "Invalid Request", {"field": "jsonrpc", "error": 'must be "2.0"'})
        name = req.get("method")
        if not isinstance(name, str):
            raise RpcError(E_INVALID_REQUEST, "Invalid Request", {"field": "method", "error": "must be a string"})
        m = METHODS.get(name)
        if m is None:
            raise RpcError(E_METHOD_NOT_FOUND, "Method not found",
                           {"field": "method", "error": "no method named '%.64s'" % name})
        handler, perm, cls, spec, code = m
        if perm not in principal[1]:
            raise RpcError(E_FORBIDDEN, "Forbidden: %s needs the %s permission" % (name, perm),
                           {"error": "missing permission", "required": perm})
        ok, info = rate_take(principal[0], cls, now_ms)
        if state.get("rate") is None or info[1] < state["rate"][1]:
            state["rate"] = info
        if not ok:
            state["retry_after"] = info[3] or 1
            raise RpcError(E_RATE_LIMITED, "Rate limit exceeded: %d calls of %s per %s window" % (info[0], name, cls),
                           {"retry_after_s": info[3], "limit": info[0]})
        params = req.get("params", {})
        check_params(spec, params, code, name)
        result = handler(principal, params, now_ms)
    except RpcError as e:
        return None if "id" not in req else error_obj(e, id_)
    if "id" not in req:
        return None
    return {"jsonrpc": "2.0", "result": result, "id": id_}


# ---- HTTP --------------------------------------------------------------------------------------

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


def _encode_one(r):
    res = r.get("result") if isinstance(r, dict) else None
    if isinstance(res, Raw):
        return '{"jsonrpc":"2.0","result":%s,"id":%s}' % (res.text, json.dumps(r["id"]))
    return json.dumps(r, separators=(",", ":"))


def json_response(status, doc, headers=None):
    text = "[" + ",".join(_encode_one(r) for r in doc) + "]" if isinstance(doc, list) else _encode_one(doc)
    return Response(content=text, status_code=status, media_type="application/json", headers=headers)


def runtime_of(receive=None):
    """What this process really runs on: the event loop's class and, from the ASGI receive
    callable of the request being served (a bound method of the HTTP protocol's request cycle),
    the HTTP implementation's module."""
    lp = type(asyncio.get_running_loop())
    info = {"pid": os.getpid(), "loop": "%s.%s" % (lp.__module__, lp.__qualname__)}
    owner = getattr(receive, "__self__", None)
    if owner is not None:
        info["http"] = type(owner).__module__
    return info


@app.get("/healthz")
async def healthz(request: Request):
    return json_response(200, dict({"status": "ok"}, **runtime_of(request.receive)))


@app.post(RPC_PATH)
async def jsonrpc(request: Request):
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/json", "application/json-rpc"):
        return json_response(415, {"jsonrpc": "2.0", "error": {
            "code": E_INVALID_REQUEST, "message": "Unsupported Media Type",
            "data": {"field": "Content-Type", "error": "must be application/json"}}, "id": None})
    body = await request.body()
    if len(body) > MAX_BODY:
        return json_response(413, {"jsonrpc": "2.0", "error": {"code": E_INVALID_REQUEST,
                                                               "message": "Request body too large"}, "id": None})
    now_ms = int(time.time() * 1000)
    try:
        doc, parse_error = json.loads(body), None
    except (ValueError, UnicodeDecodeError) as e:
        doc, parse_error = None, str(e)
    try:
        principal = verify_bearer(request.headers.get("authorization"), now_ms // 1000)
    except RpcError as e:
        id_ = doc.get("id") if isinstance(doc, dict) else None
        return json_response(401, error_obj(e, id_), {"www-authenticate": 'Bearer error="invalid_token"'})
    state = {}
    status = 200
    if parse_error is not None:
        out = error_obj(RpcError(E_PARSE, "Parse error", {"error": parse_error}), None)
    elif isinstance(doc, list):
        if not doc or len(doc) > 100:
            out = error_obj(RpcError(E_INVALID_REQUEST, "Invalid Request: batch size",
                                     {"field": "batch", "error": "must hold 1 to 100 calls"}), None)
        else:
            out = [r for r in (call_one(principal, c, now_ms, state) for c in doc) if r is not None] or None
    else:
        out = call_one(principal, doc, now_ms, state)
        if out is not None and state.get("retry_after"):
            status = 429
    headers = {}
    rate = state.get("rate")
    if rate is None:  # every authenticated response says where the caller stands
        limit, window_s = RATE_RULES["other"]
        rate = (limit, limit, (now_ms + window_s * 1000 + 999) // 1000, 0)
    headers["x-ratelimit-limit"] = str(rate[0])
    headers["x-ratelimit-remaining"] = str(rate[1])
    headers["x-ratelimit-reset"] = str(rate[2])
    if status == 429:
        headers["retry-after"] = str(state["retry_after"])
    if out is None:
        return Response(status_code=204, headers=headers)
    return json_response(status, out, headers)


class PeerServer(uvicorn.Server):
    """uvicorn's server, which checks once it runs (in every worker process, inside its event
    loop) that the loop and the HTTP protocol are the ones asked for, prints them, and exits with
    status 3 when they are not."""
    expect = ("uvloop", "httptools")

    async def startup(self, sockets=None):
        await super().startup(sockets=sockets)
        lp = type(asyncio.get_running_loop())
        proto = self.config.http_protocol_class
        loop_name = "%s.%s" % (lp.__module__, lp.__qualname__)
        http_name = "%s.%s" % (proto.__module__, proto.__qualname__)
        versions = ["%s %s" % (m, getattr(sys.modules[m], "__version__", "?"))
                    for m in ("uvloop", "httptools") if m in sys.modules]
        ok = loop_name.startswith(self.expect[0] + ".") and \
            http_name.startswith("uvicorn.protocols.http.%s_impl." % self.expect[1])
        print("fastapi_peer: worker pid=%d runs loop=%s http=%s (%s)%s"
              % (os.getpid(), loop_name, http_name, ", ".join(versions) or "neither uvloop nor httptools",
                 "" if ok else ": NOT loop=%s http=%s as asked" % self.expect), flush=True)
        if not ok:
            os._exit(3)


# ---- launcher ----------------------------------------------------------------------------------

def extract_seed(dump_path, job_id, out_path):
    """Finds job_id's record in `mdb_dump -p -s jobs` output and writes it as JSON. In that
    format, after HEADER=END, keys and values alternate on lines that start with a space;
    a backslash is written "\\\\" and a non-printable byte "\\xx" (hex)."""
    with open(dump_path, encoding="latin-1") as f:
        lines = f.read().split("\n")
    body = lines[lines.index("HEADER=END") + 1:]

    def dec(t):
        t = re.sub(r"\\(\\|[0-9a-fA-F]{2})", lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(1), 16)), t[1:])
        return t.encode("latin-1").decode("utf-8")

    for k, v in zip(body[0::2], body[1::2]):
        if k.startswith(" ") and v.startswith(" ") and dec(k) == job_id:
            rec = json.loads(dec(v))
            if rec.get("job_id") != job_id or not isinstance(rec.get("owner"), str):
                return 1
            with open(out_path, "w") as f:
                json.dump(rec, f)
            return 0
    return 1


def main():
    global DATA_DIR, CACHES
    if len(sys.argv) == 5 and sys.argv[1] == "--extract-seed":  # used by http_bench.sh
        sys.exit(extract_seed(*sys.argv[2:5]))
    ap = argparse.ArgumentParser(description="FastAPI peer of agentcore's Training API (benchmark)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 (default): a free port, printed on stdout")
    ap.add_argument("--data", default=".", help="directory for the sqlite job store")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                    help="event loop (default uvloop; asyncio only to measure the slow path)")
    ap.add_argument("--http", choices=("httptools", "h11"), default="httptools",
                    help="HTTP/1.1 parser (default httptools; h11 only to measure the slow path)")
    ap.add_argument("--no-caches", action="store_true",
                    help="verify the token and render the status on every call (agentcore caches both)")
    ap.add_argument("--seed", metavar="FILE",
                    help="a JSON job record (agentcore's, from its store) to serve as is; it needs job_id and owner")
    args = ap.parse_args()
    if len(SECRET) < 16:
        sys.exit("fastapi_peer: AGENTCORE_JWT_SECRET must be set (>= 16 bytes)")
    DATA_DIR = os.environ["FASTAPI_PEER_DATA"] = os.path.abspath(args.data)
    if args.no_caches:  # through the environment, so that spawned workers see it too
        os.environ["FASTAPI_PEER_CACHES"] = "0"
        CACHES = False
    db()  # create the table before any worker starts
    if args.seed:
        with open(args.seed) as f:
            rec = json.load(f)
        if not isinstance(rec, dict) or not isinstance(rec.get("job_id"), str) or not isinstance(rec.get("owner"), str):
            sys.exit("fastapi_peer: --seed: not a job record with job_id and owner")
        job_put(rec)

    # The fast configuration is required, not hoped for: no silent fallback to asyncio + h11.
    for module, package in ((args.loop, "python3-uvloop"), (args.http, "python3-httptools")):
        if module in ("uvloop", "httptools"):
            try:
                __import__(module)
            except ImportError as e:
                sys.exit("fastapi_peer: --%s %s: cannot import %s (%s): install the Debian package %s"
                         % ("loop" if module == "uvloop" else "http", module, module, e, package))
    # IPPROTO_TCP named: asyncio's transports set TCP_NODELAY only on sockets whose proto says TCP
    # (proto 0, the default, leaves Nagle on: each kept-alive response of the asyncio path then
    # stalls ~40 ms on the client's delayed ACK); uvloop sets it either way
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(1024)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    # workers > 1 need the app as an import string (they are spawned processes)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    target = "fastapi_peer:app" if args.workers > 1 else app
    config = uvicorn.Config(target, loop=args.loop, http=args.http,
                            lifespan="off", access_log=False, log_level="warning", workers=args.workers,
                            server_header=True, date_header=True)
    server = PeerServer(config)
    server.expect = (args.loop, args.http)
    print("fastapi_peer: listening on http://%s:%d port=%d workers=%d loop=%s http=%s caches=%s "
          "(uvicorn %s, python %s)" % (args.host, port, port, args.workers, args.loop, args.http,
                                       "on" if CACHES else "off", uvicorn.__version__, platform.python_version()),
          flush=True)
    if args.workers > 1:
        Multiprocess(config, target=server.run, sockets=[sock]).run()
    else:
        server.run(sockets=[sock])


if __name__ == "__main__":
    main()
