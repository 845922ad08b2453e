// The dashboard's only way to the server: JSON-RPC 2.0 calls to /api/v1/jsonrpc with the bearer
// token the user pasted (kept in sessionStorage: gone with the tab, never in a URL, no cookies).
// Tenancy and permissions therefore hold exactly as for any other client.
//
// Rate limits are respected, not hammered: a -32029 answer (or HTTP 429/503) pauses every call
// of the same rate-limit class until its Retry-After has passed, and a window the server says is
// used up (X-RateLimit-Remaining: 0) pauses that class until X-RateLimit-Reset. Calls wait out
// the pause and then go; the user sees a notice meanwhile.
"use strict";

(function () {
  const TOKEN_KEY = "agentcore.token";
  const ENDPOINT = "/api/v1/jsonrpc";

  class RpcError extends Error {
    constructor(code, message, data, status) {
      super(message);
      this.code = code;
      this.data = data || null;
      this.status = status || 0;
    }
    // "message: data.field data.error" as a line of text (data.problems are the caller's to list)
    describe() {
      const d = this.data || {};
      let s = this.message;
      if (d.field) s += ": " + d.field;
      if (d.error) s += (d.field ? " " : ": ") + d.error;
      if (d.required) s += " (needs " + d.required + ")";
      return s;
    }
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // method -> rate-limit class, from rpc.discover (x-rate-limit-class); until it is known each
  // method is its own class, which errs towards pausing less, never towards calling more than
  // the server allows (the server still answers -32029, and that pauses).
  const classOf = new Map();
  const pausedUntil = new Map(); // class -> epoch ms
  const listeners = { pause: [], unauthorized: [] };
  let nextId = 1;

  function rateClass(method) {
    return classOf.get(method) || method;
  }

  function pause(cls, untilMs, why) {
    if ((pausedUntil.get(cls) || 0) < untilMs) pausedUntil.set(cls, untilMs);
    listeners.pause.forEach((f) => f(cls, untilMs, why));
  }

  function learnClasses(doc) {
    for (const m of (doc && doc.methods) || []) if (m["x-rate-limit-class"]) classOf.set(m.name, m["x-rate-limit-class"]);
  }

  async function call(method, params, opts) {
    const o = opts || {};
    const token = AC.token();
    if (!token) throw new RpcError(-32002, "Unauthorized", { error: "not signed in" }, 401);
    let networkDelay = 1000;
    for (;;) {
      const cls = rateClass(method);
      const wait = (pausedUntil.get(cls) || 0) - Date.now();
      if (wait > 0) {
        if (o.noWait) throw new RpcError(-32029, "Rate limit exceeded", { retry_after_s: Math.ceil(wait / 1000) }, 429);
        await sleep(wait);
        continue;
      }
      let resp;
      try {
        resp = await fetch(ENDPOINT, {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
          body: JSON.stringify({ jsonrpc: "2.0", method: method, params: params || {}, id: nextId++ }),
          credentials: "omit",
          cache: "no-store",
        });
      } catch (e) {
        // the server is away: back off (1, 2, 4 ... 30 s) instead of retrying at once
        pause(cls, Date.now() + networkDelay, "the server does not answer");
        networkDelay = Math.min(networkDelay * 2, 30000);
        continue;
      }
      let body = null;
      try {
        body = await resp.json();
      } catch (e) {
        body = null;
      }
      const err = body && !Array.isArray(body) ? body.error : null;
      const remaining = resp.headers.get("X-RateLimit-Remaining");
      const reset = Number(resp.headers.get("X-RateLimit-Reset"));
      if (resp.status === 429 || resp.status === 503 || (err && err.code === -32029)) {
        const s = Number((err && err.data && err.data.retry_after_s) || resp.headers.get("Retry-After")) || 1;
        pause(cls, Date.now() + s * 1000, resp.status === 503 ? "the server is busy" : "rate limit reached");
        continue;
      }
      if (remaining === "0" && reset > 0) // the window is used up: the next call would be refused
        pause(cls, reset * 1000 + 250, "rate limit reached");
      if (resp.status === 401 || (err && err.code === -32002)) {
        listeners.unauthorized.forEach((f) => f(err));
        throw new RpcError(-32002, "Unauthorized", err && err.data, 401);
      }
      if (err) throw new RpcError(err.code, err.message, err.data, resp.status);
      if (!body || !("result" in body)) throw new RpcError(-32603, "Unexpected answer (HTTP " + resp.status + ")", null, resp.status);
      if (method === "rpc.discover") learnClasses(body.result);
      return body.result;
    }
  }

  // The claims of a JWT, for display only (the server is what checks the token).
  function claims(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const json = decodeURIComponent(Array.from(atob(part), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""));
      const c = JSON.parse(json);
      return c && typeof c === "object" ? c : {};
    } catch (e) {
      return {};
    }
  }

  window.AC = {
    RpcError: RpcError,
    call: call,
    claims: claims,
    sleep: sleep,
    token: () => sessionStorage.getItem(TOKEN_KEY),
    setToken: (t) => sessionStorage.setItem(TOKEN_KEY, t),
    clearToken: () => sessionStorage.removeItem(TOKEN_KEY),
    onPause: (f) => listeners.pause.push(f),
    onUnauthorized: (f) => listeners.unauthorized.push(f),
    pausedUntil: (method) => pausedUntil.get(rateClass(method)) || 0,
    pauses: () => Array.from(pausedUntil.entries()).filter(([, t]) => t > Date.now()),
  };
})();
