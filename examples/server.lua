-- agentcore server configuration: a Lua file that returns a table.
-- Start with:  agentcore serve --config examples/server.lua
-- Every key is optional; the values below are the built-in defaults unless noted.
-- Command-line flags (--listen, --data) override this file; AGENTCORE_JWT_SECRET overrides auth.
-- A mistake (unknown key, wrong type, value out of range) stops the server with file:line.
-- docs/configuration.md has every key with its type, default and range (agentcore config --reference).
return {
  -- Cleartext listeners: "HOST:PORT" or a list of them. Each serves HTTP/1.1 and HTTP/2 with
  -- prior knowledge (h2c). Port 0 picks a free port (printed at start).
  listen = "127.0.0.1:8001",

  -- Event-loop threads; 0 = one per core. Each has its own listener (SO_REUSEPORT).
  threads = 0,

  -- Threads that run long JSON-RPC calls (training.start_grpo, training.evaluate, ...) and
  -- parse large request bodies (limits.parse_on_loop_bytes), off the event loops.
  rpc_workers = 2,

  -- The LMDB environment lives here (created when missing). One server per directory: it is
  -- locked (agentcore.lock) while a server runs; 2 MiB are kept in agentcore.reserve so that a
  -- job's failure can still be recorded when the disk is full (docs/operations.md).
  data_dir = "./data",

  -- Where jobs, events, trajectories, checkpoints and webhooks live. "lmdb" (the default) keeps
  -- them in data_dir, for one process. "postgresql" keeps them in one PostgreSQL database that
  -- several agentcore nodes share: any node answers any call, a queued job is run by whichever
  -- node's worker claims it first, and a node that dies loses its jobs to another node once
  -- their leases run out (docs/operations.md, "Several nodes"). data_dir then holds only this
  -- node's name (agentcore.node) and crash log.
  store = {
    backend = "lmdb",
    -- libpq connection string or URI; AGENTCORE_STORE_DSN wins over it (and sets backend =
    -- "postgresql"). Keep the password in ~/.pgpass or PGPASSWORD rather than here.
    -- dsn = "postgresql://agentcore@db.internal:5432/agentcore",
    -- node = "node-a",   -- unique per node; default: <hostname>-<8 hex digits>, kept in data_dir
    pool_size = 0,        -- connections at most; 0: threads + rpc_workers + workers + 4
    lease_s = 30,         -- a running job's lease, renewed every third of it; a dead node's
                          -- jobs are resumed elsewhere after this long
    auto_migrate = true,  -- false: refuse to start on an older schema until `agentcore migrate`
  },

  -- TLS listener (HTTP/1.1 and HTTP/2 negotiated by ALPN). Off unless listen is set.
  -- tls = { listen = "127.0.0.1:8443", cert_file = "server.crt", key_file = "server.key" },

  auth = {
    -- "HS256" with a shared secret, or "RS256"/"ES256" verified with a public-key PEM file.
    -- The algorithm is pinned: tokens naming any other (including "none") are refused.
    alg = "HS256",
    -- HS256 secret, at least 16 bytes. Prefer the environment variable AGENTCORE_JWT_SECRET,
    -- which wins over this key. There is no default: serve refuses to start without one.
    -- secret = "change-me-to-32-random-bytes....",
    -- public_key_file = "jwt-public.pem",    -- RS256/ES256: verifies tokens
    -- private_key_file = "jwt-private.pem",  -- RS256/ES256: lets `agentcore token` sign
    -- issuer = "https://auth.example.com",   -- when set, tokens must carry this `iss`
    -- audience = "agentcore",                -- when set, `aud` must contain it
    leeway_s = 30,                            -- clock skew allowed on exp/nbf/iat
  },

  -- Requests per principal (JWT sub) and method class in a fixed window (docs/api.md, "Rate limits").
  -- A limit of 0 turns a class off. "other" covers methods not named here.
  rate_limits = {
    start_grpo          = { limit = 10,  window_s = 60 },
    get_status          = { limit = 100, window_s = 60 },
    cancel              = { limit = 20,  window_s = 60 },
    evaluate            = { limit = 5,   window_s = 60 },
    export_trajectories = { limit = 10,  window_s = 60 }, -- and training.export_checkpoint
    act                 = { limit = 1000, window_s = 60 }, -- agents.act: one forward pass each
    run                 = { limit = 30,  window_s = 60 }, -- agents.run: a whole episode each
    other               = { limit = 100, window_s = 60 },
    -- Not a method: requests whose body is over limits.parse_on_loop_bytes, counted from the
    -- headers before the body is parsed (HTTP 429, data.field "body").
    large_requests      = { limit = 30,  window_s = 60 },
  },

  -- What the server does before and while it parses a request (README, "Limits").
  limits = {
    max_body_bytes = 16 * 1024 * 1024, -- larger request bodies get HTTP 413
    max_json_depth = 64,               -- deeper nesting is refused (-32600) before parsing
    max_json_values = 1000000,         -- more values (member names included) are refused
                                       -- (-32600, data.field "body") before parsing
    max_batch = 100,                   -- calls in one JSON-RPC batch
    parse_on_loop_bytes = 64 * 1024,   -- larger bodies are parsed on an RPC worker, not on an
                                       -- event loop (jansson: ~1-3 ms for 64 KiB)
    max_parallel_parses = 1,           -- large bodies parsed (and their calls run) at once; keep
                                       -- it below rpc_workers so long calls always find a worker
    max_queued_parses = 4,             -- large bodies waiting for that; more get HTTP 503 with
                                       -- Retry-After (0: none wait)
    trim_after_bytes = 1024 * 1024,    -- after a body or response this large, free memory goes
                                       -- back to the kernel (malloc_trim); 0 turns that off
    recv_buffer_bytes = 256 * 1024,    -- each connection's socket receive buffer: bounds how
                                       -- much an event loop reads of one upload at a time; 0
                                       -- leaves it to the kernel (faster WAN uploads)
  },

  -- Your plugin directories (each holding agents/, rewards/, validators/, webhooks/), searched
  -- in order before the built-in plugins, which are always searched last (so the default
  -- validator and webhook policy stay available). A directory or a list of them.
  -- plugins_dir = { "/srv/agentcore/plugins" },
  -- The Lua runtime library (default: this checkout's lua/).
  -- lua_dir = "lua",
  -- The dashboard's files, served at GET /ui/ (default: this checkout's sdk/dashboard/). The
  -- chart library comes from Debian's libjs-chart.js (/usr/share/javascript/chart.js).
  -- dashboard_dir = "sdk/dashboard",

  -- Training workers: threads that take queued jobs in order and run them. Each job gets
  -- threads / workers compute threads (OpenBLAS, and the sequence policy's attention), so that
  -- all workers together fit the cores. 0: this node
  -- runs no job (with store.backend = "postgresql", an API-only node; other nodes run them).
  workers = 1,

  -- Each principal's (JWT sub) budget over its jobs: the max_budget_usd of its queued and
  -- running jobs plus the cost of its finished ones must stay under it (else -40001).
  budgets = {
    default_usd = 1000,
    -- principals = { alice = 50, ["team-research"] = 10000 },
  },

  -- agent_id -> plugins. An agent_id not listed here uses plugins/agents/<id>.lua, the reward of
  -- the same name and the default validator.
  agents = {
    -- ["calculator-v2"] = { agent = "calculator", reward = "calculator", validator = "default" },
  },

  training = {
    step_cost_usd = 0.00001,           -- price of one policy step, added to each tool's cost_usd
    keep_best_checkpoints = 3,         -- per job: these and the latest are kept
    max_trajectories_per_job = 100000, -- the oldest iterations' trajectories go first
    max_failure_rate = 0.5,            -- plugin failures per episode above which a job fails
  },

  -- Using trained policies (docs/api.md, "agents.act"): the checkpoints agents.act keeps loaded,
  -- least recently used first out. A call on a loaded one is a forward pass on the event loop;
  -- any other loads its checkpoint on an RPC worker first.
  inference = {
    cache_policies = 16, -- checkpoints kept loaded
    cache_mb = 512,      -- the most their parameters may take, in MiB
  },

  -- What every plugin call may use (docs/plugins.md, "Limits"). A call past max_wall_ms is
  -- stopped at its next instruction-hook check; one that does not come back to Lua at all (stuck
  -- inside a C function) is abandoned abandon_after_ms later: its job fails with that message,
  -- its Lua state is dropped and the worker thread is replaced. A plugin that hands back more
  -- than the byte limits below is a plugin failure of that episode.
  plugin_limits = {
    max_instructions = 50000000,       -- VM instructions per call
    max_wall_ms = 2000,
    max_call_mb = 128,                 -- memory a call may add to the state
    max_state_mb = 256,                -- memory the state may hold
    max_observation_bytes = 65536,     -- agent.observe's text
    max_result_bytes = 1048576,        -- one step's params or result, or a final answer, as JSON
    max_trajectory_bytes = 8388608,    -- one episode's observations, params and results
    abandon_after_ms = 2000,
  },

  webhooks = {
    -- Signs deliveries of the subscriptions below and of jobs' own webhooks (Standard
    -- Webhooks: whsec_ followed by base64). webhooks.subscribe makes one per subscription.
    -- secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    policy = "default",          -- plugins/webhooks/<name>.lua decides what each subscriber gets
    -- A policy that raises, returns garbage, sets a framing/hop-by-hop/signature header or routes
    -- to a refused URL: "drop" that delivery (fail closed), or "deliver" the event unchanged.
    -- Either way it is counted (agentcore_webhook_policy_errors_total), logged, and shown on the
    -- subscription (webhooks.list: policy_errors, last_policy_error).
    on_policy_error = "drop",
    allow_private = false,       -- deliver to loopback/private addresses (tests, local receivers)
    timeout_ms = 15000,
    -- delays before each attempt, in seconds (jittered by +-jitter): at once, 5 s, 5 min, ...
    retry_schedule_s = { 0, 5, 300, 1800, 7200, 18000, 36000, 36000 },
    jitter = 0.1,
    -- every job's events, for operators (events: a list of names, or "*" for all); checked at
    -- start: an http(s) URL without control characters or blanks, known event names:
    -- subscriptions = { { url = "https://ops.example.com/hooks", events = { "training.job.failed" } } },
  },

  errors = {
    -- -32603 answers: false gives clients "Internal error" with data {error, ref} (no file paths,
    -- no traceback; stderr has the whole message under the same ref); true answers with the
    -- whole message and data.traceback (development only).
    expose_internal = false,
  },
}
