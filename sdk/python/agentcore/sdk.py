"""Python client for the agentcore Training API (JSON-RPC 2.0 over HTTP, JWT bearer auth).

Standard library only. One HTTP connection per call, so a client may be shared between threads.

    from agentcore.sdk import TrainingClient

    client = TrainingClient("http://127.0.0.1:8001", api_key=token)
    job = client.start_training("calculator", {"n_iterations": 50}, training_data)
    final = client.wait_for_completion(job["job_id"], poll_interval=5)

Errors are raised as typed exceptions, one per JSON-RPC error code (see ``AgentCoreError``);
webhook deliveries are checked with ``verify_webhook``.
"""
from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import http.client
import itertools
import json
import logging
import ssl
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = [
    "TrainingClient",
    "read_checkpoint",
    "AgentCoreError",
    "ParseError",
    "InvalidRequest",
    "MethodNotFound",
    "InvalidParams",
    "InternalError",
    "NotFound",
    "Unauthorized",
    "Forbidden",
    "RateLimited",
    "BudgetExceeded",
    "ValidationFailed",
    "CannotCancel",
    "EvaluationFailed",
    "ExportLimitExceeded",
    "HTTPError",
    "TransportError",
    "ProtocolError",
    "JobWaitTimeout",
    "WebhookVerificationError",
    "verify_webhook",
    "sign_webhook",
    "FINAL_STATUSES",
    "__version__",
]

__version__ = "0.1.0"

log = logging.getLogger("agentcore.sdk")

JSONRPC_PATH = "/api/v1/jsonrpc"
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


# ---- errors ---------------------------------------------------------------------------------------


class AgentCoreError(Exception):
    """An error answered by the server (or, for the subclasses without a JSON-RPC code, met on
    the way to it).

    Attributes: ``code`` (the JSON-RPC error code, or None), ``message``, ``data`` (the error's
    ``data`` object, or None; the server names the offending ``field`` and the ``error`` there).
    """

    code: Optional[int] = None

    def __init__(self, code: Optional[int], message: str, data: Any = None):
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    @property
    def field(self) -> Optional[str]:
        """The parameter the server blamed (``data.field``), if any."""
        return self.data.get("field") if isinstance(self.data, dict) else None

    def __str__(self) -> str:
        text = self.message if self.code is None else f"[{self.code}] {self.message}"
        if isinstance(self.data, dict) and ("field" in self.data or "error" in self.data):
            detail = ": ".join(str(self.data[k]) for k in ("field", "error") if self.data.get(k) is not None)
            if detail:
                text += f" ({detail})"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, data={self.data!r})"


class ParseError(AgentCoreError):
    """-32700: the server could not parse the request as JSON."""


class InvalidRequest(AgentCoreError):
    """-32600: not a valid request; also start_training's invalid parameters or config."""


class MethodNotFound(AgentCoreError):
    """-32601: the server has no such method."""


class InvalidParams(AgentCoreError):
    """-32602: a parameter of the wrong type or shape (a job_id that is not a UUID, ...)."""


class InternalError(AgentCoreError):
    """-32603: a store, system or plugin failure on the server."""


class NotFound(AgentCoreError):
    """-32001: unknown job or checkpoint (or another principal's job)."""


class Unauthorized(AgentCoreError):
    """-32002: missing, malformed, expired or wrongly signed token (HTTP 401)."""


class Forbidden(AgentCoreError):
    """-32003: the token lacks the method's permission (``required``)."""

    @property
    def required(self) -> Optional[str]:
        return self.data.get("required") if isinstance(self.data, dict) else None


class RateLimited(AgentCoreError):
    """-32029: over the method's rate limit. ``retry_after``: seconds to wait (from
    ``data.retry_after_s`` or the ``Retry-After`` header), or None when the server gave none."""

    def __init__(self, code: Optional[int], message: str, data: Any = None, retry_after: Optional[float] = None):
        super().__init__(code, message, data)
        if retry_after is None and isinstance(data, dict):
            retry_after = _number_or_none(data.get("retry_after_s"))
        self.retry_after = retry_after


class BudgetExceeded(AgentCoreError):
    """-40001: the job's budget is more than what is left of the principal's budget."""


class ValidationFailed(AgentCoreError):
    """-40002: the training data failed validation; ``problems`` lists every problem
    (each a dict with ``field``, ``error`` and, where it applies, ``index``)."""

    @property
    def problems(self) -> List[Dict[str, Any]]:
        if isinstance(self.data, dict) and isinstance(self.data.get("problems"), list):
            return self.data["problems"]
        return []


class CannotCancel(AgentCoreError):
    """-40003: the job is already completed, failed or cancelled."""


class EvaluationFailed(AgentCoreError):
    """-40004: the evaluation could not run (no evaluation queries, broken checkpoint, ...)."""


class ExportLimitExceeded(AgentCoreError):
    """-40005: more trajectories requested than one export may return (10000)."""


class HTTPError(AgentCoreError):
    """An HTTP-level refusal (404 wrong path, 405, 413 body too large, 415, a proxy's 5xx ...).

    ``status`` is the HTTP status, ``body`` the raw response body, ``headers`` the response
    headers (lower-case names). When the body carries a JSON-RPC error, ``code``, ``message``
    and ``data`` are taken from it; otherwise ``code`` is None."""

    def __init__(self, status: int, message: str, code: Optional[int] = None, data: Any = None,
                 body: bytes = b"", headers: Optional[Dict[str, str]] = None):
        super().__init__(code, message, data)
        self.status = status
        self.body = body
        self.headers = headers or {}

    def __str__(self) -> str:
        return f"HTTP {self.status}: {super().__str__()}"


class TransportError(AgentCoreError):
    """The server could not be reached or did not answer in time, after every retry. The last
    underlying exception is ``__cause__``; ``attempts`` says how many tries were made."""

    def __init__(self, message: str, attempts: int = 1):
        super().__init__(None, message, None)
        self.attempts = attempts


class ProtocolError(AgentCoreError):
    """The server's answer is not a JSON-RPC 2.0 response to what was sent."""

    def __init__(self, message: str, data: Any = None):
        super().__init__(None, message, data)


class JobWaitTimeout(TimeoutError):
    """wait_for_completion gave up before the job reached a final status; ``status`` is the
    last status seen."""

    def __init__(self, message: str, status: Optional[Dict[str, Any]] = None):
        super().__init__(message)
        self.status = status


_ERRORS: Dict[int, type] = {
    -32700: ParseError,
    -32600: InvalidRequest,
    -32601: MethodNotFound,
    -32602: InvalidParams,
    -32603: InternalError,
    -32001: NotFound,
    -32002: Unauthorized,
    -32003: Forbidden,
    -32029: RateLimited,
    -40001: BudgetExceeded,
    -40002: ValidationFailed,
    -40003: CannotCancel,
    -40004: EvaluationFailed,
    -40005: ExportLimitExceeded,
}
for _code, _cls in _ERRORS.items():
    _cls.code = _code


def error_from_response(error: Any, retry_after: Optional[float] = None) -> AgentCoreError:
    """The typed exception for a JSON-RPC error object (unknown codes give AgentCoreError)."""
    if not isinstance(error, dict):
        return ProtocolError(f"malformed error object: {error!r}", error)
    code = error.get("code")
    message = error.get("message")
    message = message if isinstance(message, str) else "(no message)"
    data = error.get("data")
    cls = _ERRORS.get(code, AgentCoreError) if isinstance(code, int) and not isinstance(code, bool) else AgentCoreError
    if cls is RateLimited:
        return RateLimited(code, message, data, retry_after=_number_or_none(
            data.get("retry_after_s") if isinstance(data, dict) else None) or retry_after)
    return cls(code, message, data)


def _number_or_none(v: Any) -> Optional[float]:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0:
        return float(v)
    return None


def _parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Retry-After is either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


# ---- the client -----------------------------------------------------------------------------------

Call = Union[Tuple[str, Optional[Dict[str, Any]]], Mapping[str, Any]]


class TrainingClient:
    """A client of one agentcore server.

    base_url: ``http(s)://host:port`` (optionally with a path prefix; ``/api/v1/jsonrpc`` is
        appended unless the URL already ends with it).
    api_key: the JWT bearer token.
    timeout: seconds for connecting and for each read.
    max_retries: retries after the first try, on HTTP 429 and on connection errors and timeouts
        (0: never retry). Other errors are never retried.
    backoff: the first retry waits this many seconds, each further one twice as long (capped at
        ``max_retry_wait``); a 429 waits what the server's ``retry_after`` says instead.
    max_retry_wait: the longest single wait between tries, in seconds.
    ssl_context: for https URLs (default: ``ssl.create_default_context()``).

    Note that a timed-out call is retried like a refused connection: a ``start_training`` whose
    answer was lost may then have created a job twice (``list_jobs`` shows them).
    """

    def __init__(self, base_url: str, api_key: str, timeout: float = 30, max_retries: int = 3,
                 backoff: float = 0.5, *, max_retry_wait: float = 60.0,
                 ssl_context: Optional[ssl.SSLContext] = None, user_agent: Optional[str] = None):
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base_url must be an http:// or https:// URL, got {base_url!r}")
        if max_retries < 0:
            raise ValueError("max_retries must be at least 0")
        self.base_url = base_url
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_retry_wait = float(max_retry_wait)
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port or (443 if self._https else 80)
        path = url.path.rstrip("/")
        self._path = path if path.endswith(JSONRPC_PATH) else path + JSONRPC_PATH
        self._ssl_context = ssl_context
        self._user_agent = user_agent or f"agentcore-python/{__version__}"
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()
        self._sleep: Callable[[float], None] = time.sleep
        #: X-RateLimit-Limit/Remaining/Reset of the last response that carried them (ints).
        self.last_rate_limit: Optional[Dict[str, int]] = None

    def __repr__(self) -> str:
        return f"TrainingClient({self.base_url!r})"

    # ---- the Training API ------------------------------------------------------------------------

    def start_training(self, agent_id: str, config: Dict[str, Any], training_data: Sequence[Dict[str, Any]],
                       evaluation_data: Optional[Sequence[Dict[str, Any]]] = None,
                       webhooks: Optional[Any] = None) -> Dict[str, Any]:
        """training.start_grpo: validates and queues a job; returns job_id, status "queued",
        agent_id, total_iterations, created_at."""
        params: Dict[str, Any] = {"agent_id": agent_id, "config": config, "training_data": list(training_data)}
        if evaluation_data is not None:
            params["evaluation_data"] = list(evaluation_data)
        if webhooks is not None:
            params["webhooks"] = webhooks
        return self.call("training.start_grpo", params)

    def get_status(self, job_id: str) -> Dict[str, Any]:
        """training.get_status: the job's status, progress, metrics and cost."""
        return self.call("training.get_status", {"job_id": job_id})

    def cancel(self, job_id: str, reason: Optional[str] = None) -> Dict[str, Any]:
        """training.cancel: a queued or running job stops (at its next safe point, with a
        checkpoint). Raises CannotCancel for a job that already finished."""
        return self.call("training.cancel", _params(job_id=job_id, reason=reason))

    def evaluate(self, job_id: str, checkpoint_id: Optional[str] = None,
                 evaluation_queries: Optional[Sequence[Dict[str, Any]]] = None) -> Dict[str, Any]:
        """training.evaluate: a checkpoint (default: the best) against the untrained baseline,
        on the given queries (default: the job's evaluation data)."""
        return self.call("training.evaluate", _params(
            job_id=job_id, checkpoint_id=checkpoint_id,
            evaluation_queries=list(evaluation_queries) if evaluation_queries is not None else None))

    def export_trajectories(self, job_id: str, success_only: Optional[bool] = None, min_reward: Optional[float] = None,
                            limit: Optional[int] = None, offset: Optional[int] = None) -> Dict[str, Any]:
        """training.export_trajectories: one page (trajectories, total_count, returned_count,
        has_more). limit: at most 10000 (more raises ExportLimitExceeded)."""
        return self.call("training.export_trajectories", _params(
            job_id=job_id, success_only=success_only, min_reward=min_reward, limit=limit, offset=offset))

    def iter_trajectories(self, job_id: str, page_size: int = 1000, **filters: Any) -> Iterator[Dict[str, Any]]:
        """Every trajectory of the job that matches ``filters`` (success_only, min_reward, and
        offset to start from), page after page of ``page_size``."""
        unknown = set(filters) - {"success_only", "min_reward", "offset"}
        if unknown:
            raise TypeError(f"iter_trajectories: unknown filter(s) {sorted(unknown)}")
        offset = int(filters.pop("offset", None) or 0)
        while True:
            page = self.export_trajectories(job_id, limit=page_size, offset=offset, **filters)
            trajectories = page.get("trajectories") or []
            yield from trajectories
            offset += len(trajectories)
            if not page.get("has_more") or not trajectories:
                return

    # ---- using what was trained ---------------------------------------------------------------

    def act(self, query: str, job_id: Optional[str] = None, checkpoint_id: Optional[str] = None,
            history: Optional[Sequence[Dict[str, Any]]] = None, greedy: Optional[bool] = None,
            temperature: Optional[float] = None, seed: Optional[int] = None, top_k: Optional[int] = None,
            observation: Optional[str] = None, candidates: Optional[Sequence[Any]] = None,
            legal: Optional[Sequence[str]] = None, explain: Optional[bool] = None) -> Dict[str, Any]:
        """agents.act: the next call of a job's trained policy (its best checkpoint, or
        checkpoint_id) for the query and the episode so far (history: [{tool, params, result}]),
        without running it: {tool, params, log_prob, alternatives, ...}."""
        return self.call("agents.act", _params(
            job_id=job_id, checkpoint_id=checkpoint_id, query=query,
            history=list(history) if history is not None else None, greedy=greedy, temperature=temperature,
            seed=seed, top_k=top_k, observation=observation,
            candidates=list(candidates) if candidates is not None else None,
            legal=list(legal) if legal is not None else None, explain=explain))

    def run(self, query: str, job_id: Optional[str] = None, checkpoint_id: Optional[str] = None,
            expected_outcome: Optional[Dict[str, Any]] = None, greedy: Optional[bool] = None,
            temperature: Optional[float] = None, seed: Optional[int] = None,
            max_steps: Optional[int] = None) -> Dict[str, Any]:
        """agents.run: one episode of the job's agent with its trained policy on the query:
        {trajectory, reward, success, cost_usd, ...} (reward and success scored only with
        expected_outcome). The episode's cost is charged to the job."""
        return self.call("agents.run", _params(
            job_id=job_id, checkpoint_id=checkpoint_id, query=query, expected_outcome=expected_outcome,
            greedy=greedy, temperature=temperature, seed=seed, max_steps=max_steps))

    def export_checkpoint(self, job_id: Optional[str] = None, checkpoint_id: Optional[str] = None,
                          path: Optional[str] = None) -> Dict[str, Any]:
        """training.export_checkpoint: the checkpoint file (docs/checkpoints.md). The answer, with
        ``data`` (base64) decoded into ``bytes``; written to ``path`` when given."""
        r = self.call("training.export_checkpoint", _params(job_id=job_id, checkpoint_id=checkpoint_id))
        r["bytes_data"] = base64.b64decode(r["data"])
        if path is not None:
            with open(path, "wb") as f:
                f.write(r["bytes_data"])
        return r

    def import_checkpoint(self, checkpoint: Union[str, bytes], agent_id: Optional[str] = None,
                          config: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """training.import_checkpoint: a checkpoint file (a path, or its bytes) becomes a job of
        yours holding it: {job_id, checkpoint_id, status, ...}."""
        if isinstance(checkpoint, str):
            with open(checkpoint, "rb") as f:
                checkpoint = f.read()
        return self.call("training.import_checkpoint", _params(
            checkpoint=base64.b64encode(checkpoint).decode("ascii"), agent_id=agent_id, config=config))

    def export_jsonl(self, job_id: str, path: str, format: str = "jsonl", page_size: int = 1000,
                     success_only: Optional[bool] = None, min_reward: Optional[float] = None) -> int:
        """Writes every trajectory of the job that matches the filters to ``path`` as JSON Lines
        in ``format`` ("jsonl": as stored; "openai_chat": chat transcripts with tool calls),
        page after page. Returns how many lines it wrote."""
        if format not in ("jsonl", "openai_chat"):
            raise ValueError("format must be 'jsonl' or 'openai_chat'")
        written, offset = 0, 0
        with open(path, "w", encoding="utf-8") as f:
            while True:
                page = self.call("training.export_trajectories", _params(
                    job_id=job_id, format=format, limit=page_size, offset=offset, success_only=success_only,
                    min_reward=min_reward))
                f.write(page["jsonl"])
                written += page["returned_count"]
                offset += page["returned_count"]
                if not page.get("has_more") or not page["returned_count"]:
                    return written

    def export_chat_jsonl(self, job_id: str, path: str, success_only: Optional[bool] = None,
                          min_reward: Optional[float] = None, page_size: int = 1000) -> int:
        """The job's trajectories as a fine-tuning dataset for chat models with tool calls (OpenAI
        fine-tuning, TRL's SFTTrainer): one {messages, tools} object per line in ``path``
        (docs/api.md, "Fine-tuning datasets"). Returns the number of lines."""
        return self.export_jsonl(job_id, path, format="openai_chat", page_size=page_size,
                                 success_only=success_only, min_reward=min_reward)

    def list_jobs(self, status: Optional[str] = None, limit: Optional[int] = None,
                  offset: Optional[int] = None) -> Dict[str, Any]:
        """training.list_jobs: the caller's jobs, newest first (jobs, total_count, has_more)."""
        return self.call("training.list_jobs", _params(status=status, limit=limit, offset=offset))

    def iter_jobs(self, status: Optional[str] = None, page_size: int = 100) -> Iterator[Dict[str, Any]]:
        """Every job of the caller (newest first), page after page."""
        offset = 0
        while True:
            page = self.list_jobs(status=status, limit=page_size, offset=offset)
            jobs = page.get("jobs") or []
            yield from jobs
            offset += len(jobs)
            if not page.get("has_more") or not jobs:
                return

    def list_checkpoints(self, job_id: str) -> Dict[str, Any]:
        """training.list_checkpoints: the job's kept checkpoints and its best_checkpoint_id."""
        return self.call("training.list_checkpoints", {"job_id": job_id})

    def list_events(self, job_id: str, cursor: Optional[int] = None, limit: Optional[int] = None) -> Dict[str, Any]:
        """training.list_events: the job's events after ``cursor`` (events, next_cursor, has_more)."""
        return self.call("training.list_events", _params(job_id=job_id, cursor=cursor, limit=limit))

    def iter_events(self, job_id: str, cursor: int = 0, page_size: int = 100) -> Iterator[Dict[str, Any]]:
        """Every event of the job after ``cursor``, page after page."""
        while True:
            page = self.list_events(job_id, cursor=cursor, limit=page_size)
            events = page.get("events") or []
            yield from events
            cursor = page.get("next_cursor", cursor)
            if not page.get("has_more") or not events:
                return

    def wait_for_completion(self, job_id: str, poll_interval: float = 30,
                            on_progress: Optional[Callable[[Dict[str, Any]], None]] = None,
                            timeout: Optional[float] = None) -> Dict[str, Any]:
        """Polls get_status every ``poll_interval`` seconds until the job is completed, failed
        or cancelled, and returns that final status. ``on_progress(status)`` is called with
        every status polled (the final one included). A poll that is still rate limited once
        the call's own retries are spent waits what the server asks (``retry_after``) and polls
        again: being rate limited does not end the wait, the deadline does. Raises
        JobWaitTimeout after ``timeout`` seconds (None: wait for ever); any other error of
        get_status is raised as it is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        status: Optional[Dict[str, Any]] = None
        while True:
            try:
                status = self.get_status(job_id)
            except RateLimited as e:
                delay = e.retry_after if e.retry_after is not None else poll_interval
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise JobWaitTimeout(f"job {job_id}: get_status still rate limited after {timeout} s",
                                             status) from e
                    delay = min(delay, left)
                log.debug("wait_for_completion rate limited; polling again in %.3f s", delay)
                self._sleep(max(delay, 0.0))
                continue
            if on_progress is not None:
                on_progress(status)
            if status.get("status") in FINAL_STATUSES:
                return status
            delay = poll_interval
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise JobWaitTimeout(f"job {job_id} is still {status.get('status')} after {timeout} s", status)
                delay = min(delay, left)
            self._sleep(delay)

    # ---- webhook subscriptions --------------------------------------------------------------------

    def subscribe_webhook(self, events: Union[str, Sequence[str]], url: str) -> Dict[str, Any]:
        """webhooks.subscribe: deliveries of ``events`` (names, or "*") of the caller's jobs to
        ``url``. The answer carries the subscription's signing secret (whsec_...), shown once."""
        return self.call("webhooks.subscribe", {"events": events if isinstance(events, str) else list(events),
                                                "url": url})

    def list_webhooks(self) -> Dict[str, Any]:
        """webhooks.list: the caller's subscriptions."""
        return self.call("webhooks.list", {})

    def unsubscribe_webhook(self, subscription_id: str) -> Dict[str, Any]:
        """webhooks.unsubscribe."""
        return self.call("webhooks.unsubscribe", {"subscription_id": subscription_id})

    # ---- JSON-RPC -----------------------------------------------------------------------------

    def call(self, method: str, params: Optional[Dict[str, Any]] = None) -> Any:
        """One JSON-RPC call; returns its result or raises the typed error."""
        request_id = self._next_id()
        request: Dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            request["params"] = params
        response = self._exchange(_encode(request))
        if not isinstance(response, dict):
            raise ProtocolError(f"{method}: expected one response object, got {type(response).__name__}", response)
        return self._unwrap(response, request_id, method)

    def batch(self, calls: Sequence[Call]) -> List[Any]:
        """Several calls in one HTTP request (a JSON-RPC batch).

        calls: ``(method, params)`` pairs or ``{"method": ..., "params": ...}`` dicts.
        Returns a list in the order of ``calls``: each call's result, or the AgentCoreError
        instance (NotFound, RateLimited, ...) it failed with; these are returned, not raised.
        An error about the whole batch (bad token, empty batch, ...) is raised. A batch is
        retried only when the whole of it is refused with HTTP 429 or cannot be sent."""
        requests = []
        for c in calls:
            if isinstance(c, Mapping):
                method, params = c["method"], c.get("params")
            else:
                method, params = c
            req: Dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": self._next_id()}
            if params is not None:
                req["params"] = params
            requests.append(req)
        response = self._exchange(_encode(requests))
        if isinstance(response, dict):
            # one error about the whole batch (id null)
            if "error" in response:
                raise error_from_response(response["error"])
            raise ProtocolError("batch: expected an array of responses", response)
        if not isinstance(response, list):
            raise ProtocolError("batch: expected an array of responses", response)
        by_id: Dict[Any, Dict[str, Any]] = {}
        for r in response:
            if isinstance(r, dict) and "id" in r:
                by_id[r["id"]] = r
        out: List[Any] = []
        for req in requests:
            r = by_id.get(req["id"])
            if r is None:
                out.append(ProtocolError(f"{req['method']}: no response in the batch"))
                continue
            try:
                out.append(self._unwrap(r, req["id"], req["method"]))
            except AgentCoreError as e:
                out.append(e)
        return out

    # ---- internals ------------------------------------------------------------------------------

    def _next_id(self) -> int:
        with self._ids_lock:
            return next(self._ids)

    @staticmethod
    def _unwrap(response: Dict[str, Any], request_id: Any, method: str) -> Any:
        if response.get("jsonrpc") != "2.0":
            raise ProtocolError(f"{method}: not a JSON-RPC 2.0 response", response)
        if "error" in response:
            raise error_from_response(response["error"])
        if response.get("id") != request_id:
            raise ProtocolError(f"{method}: response id {response.get('id')!r} is not {request_id!r}", response)
        if "result" not in response:
            raise ProtocolError(f"{method}: response has neither result nor error", response)
        return response["result"]

    def _send_raw(self, body: bytes) -> Any:
        """Posts pre-encoded bytes and returns the decoded answer (with the same retries and
        error mapping as every call); a lone JSON-RPC error object is raised. For debugging."""
        response = self._exchange(body)
        if isinstance(response, dict) and "error" in response:
            raise error_from_response(response["error"])
        return response

    def _exchange(self, body: bytes) -> Any:
        """POSTs body; retries 429s and transport failures; returns the decoded JSON answer
        (None for an empty 204); raises HTTPError, Unauthorized, RateLimited, TransportError."""
        attempt = 0
        while True:
            try:
                status, headers, data = self._post(body)
            except (OSError, http.client.HTTPException) as e:
                if isinstance(e, ssl.SSLCertVerificationError) or attempt >= self.max_retries:
                    raise TransportError(f"cannot reach {self._host}:{self._port} after {attempt + 1} "
                                         f"attempt(s): {e!r}", attempts=attempt + 1) from e
                delay = self._backoff(attempt)
                log.debug("attempt %d failed (%r); retrying in %.3f s", attempt + 1, e, delay)
                self._sleep(delay)
                attempt += 1
                continue
            self._note_rate_limit(headers)
            if status == 204 and not data:
                return None
            parsed = _decode(data)
            if status == 429:
                error = parsed.get("error") if isinstance(parsed, dict) else None
                err = error_from_response(error, _parse_retry_after(headers.get("retry-after"))) \
                    if error is not None else RateLimited(-32029, "Too Many Requests", None,
                                                          _parse_retry_after(headers.get("retry-after")))
                if not isinstance(err, RateLimited):
                    err = RateLimited(-32029, err.message, err.data, _parse_retry_after(headers.get("retry-after")))
                if attempt >= self.max_retries:
                    raise err
                delay = err.retry_after if err.retry_after is not None else self._backoff(attempt)
                delay = min(max(delay, 0.0), self.max_retry_wait)
                log.debug("rate limited; retrying in %.3f s", delay)
                self._sleep(delay)
                attempt += 1
                continue
            if status == 401 and isinstance(parsed, dict) and "error" in parsed:
                raise error_from_response(parsed["error"])
            if not 200 <= status < 300:
                error = parsed.get("error") if isinstance(parsed, dict) else None
                if isinstance(error, dict):
                    raise HTTPError(status, str(error.get("message", "")), error.get("code"), error.get("data"),
                                    data, headers)
                raise HTTPError(status, http.client.responses.get(status, "HTTP error"), None, None, data, headers)
            if parsed is _NOT_JSON:
                raise ProtocolError(f"HTTP {status} answer is not JSON: {data[:200]!r}")
            return parsed

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff * (2 ** attempt), self.max_retry_wait)

    def _post(self, body: bytes) -> Tuple[int, Dict[str, str], bytes]:
        if self._https:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout,
                context=self._ssl_context or ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            conn.request("POST", self._path, body=body, headers={
                "Authorization": f"Bearer {self.api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": self._user_agent,
            })
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def _note_rate_limit(self, headers: Dict[str, str]) -> None:
        try:
            if "x-ratelimit-limit" in headers:
                self.last_rate_limit = {
                    "limit": int(headers["x-ratelimit-limit"]),
                    "remaining": int(headers.get("x-ratelimit-remaining", "0")),
                    "reset": int(headers.get("x-ratelimit-reset", "0")),
                }
        except ValueError:
            pass


_NOT_JSON = object()


def _decode(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _NOT_JSON


def _encode(obj: Any) -> bytes:
    # allow_nan=False: NaN and Infinity are not JSON; refuse them here rather than send them
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _params(**kw: Any) -> Dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


# ---- webhooks (Standard Webhooks signatures) ----------------------------------------------------


class WebhookVerificationError(Exception):
    """A webhook delivery whose signature or timestamp does not check out."""


def _secret_key(secret: str) -> bytes:
    if not isinstance(secret, str):
        raise TypeError("secret must be a str (whsec_<base64>)")
    raw = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (ValueError, TypeError) as e:
        raise ValueError("secret must be whsec_<base64>") from e


def sign_webhook(payload: Union[bytes, str], msg_id: str, timestamp: int, secret: str) -> str:
    """The ``webhook-signature`` value the server sends for a message: ``v1,<base64>`` of the
    HMAC-SHA256, keyed with the secret's bytes, of ``"{msg_id}.{timestamp}.{payload}"``."""
    body = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    signed = f"{msg_id}.{int(timestamp)}.".encode("utf-8") + body
    digest = hmac.new(_secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify_webhook(payload: Union[bytes, str], headers: Mapping[str, str], secret: str, tolerance: float = 300,
                   now: Optional[float] = None) -> Any:
    """Checks a webhook delivery as Standard Webhooks does and returns its parsed JSON payload.

    payload: the raw request body, exactly as received (do not re-serialize parsed JSON).
    headers: the request headers (any mapping; names are matched case-insensitively):
        webhook-id, webhook-timestamp (Unix seconds), webhook-signature (one or more
        space-separated ``v1,<base64>`` signatures; one match is enough, other versions are
        ignored).
    secret: the subscription's ``whsec_<base64>`` secret.
    tolerance: seconds the timestamp may be off from ``now`` (default: the current time), either
        way: older deliveries are replays, newer ones forgeries.
    Raises WebhookVerificationError; ValueError for a secret that is not whsec_<base64>.
    """
    key = _secret_key(secret)
    h = {str(k).lower(): v for k, v in headers.items()}
    msg_id, ts, sigs = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not msg_id or not ts or not sigs:
        missing = [n for n, v in (("webhook-id", msg_id), ("webhook-timestamp", ts), ("webhook-signature", sigs))
                   if not v]
        raise WebhookVerificationError(f"missing header(s): {', '.join(missing)}")
    try:
        timestamp = int(str(ts).strip())
    except ValueError:
        raise WebhookVerificationError(f"webhook-timestamp is not an integer: {ts!r}") from None
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookVerificationError("webhook-timestamp is too old")
    if timestamp > current + tolerance:
        raise WebhookVerificationError("webhook-timestamp is too far in the future")
    body = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    signed = f"{msg_id}.{timestamp}.".encode("utf-8") + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    matched = False
    for candidate in str(sigs).split():
        version, _, sig = candidate.partition(",")
        if version != "v1" or not sig:
            continue
        # compare every candidate (no early exit), in constant time
        matched |= hmac.compare_digest(sig.encode("ascii", "replace"), expected)
    if not matched:
        raise WebhookVerificationError("no matching signature")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WebhookVerificationError("the payload is not JSON") from None


def read_checkpoint(source: Union[str, bytes]) -> Any:
    """A checkpoint file (a path, or its bytes) parsed into NumPy arrays: see
    agentcore.checkpoint (NumPy is imported only here)."""
    from .checkpoint import read_checkpoint as _read

    return _read(source)
