-- wrk script for bench/http_bench.sh: sends the same request on every keep-alive connection
-- and prints one machine-readable result line when the run ends.
--
-- Environment (read by every wrk thread):
--   WRK_BODY_FILE  file whose bytes are the request body (POST); unset: no body
--   WRK_AUTH       value of the Authorization header (e.g. "Bearer eyJ..."); unset: none
--   WRK_METHOD     POST (default) or GET (the h2o static-file ceiling: same headers, no body)
--
--   WRK_BODY_FILE=body.json WRK_AUTH="Bearer $TOKEN" \
--     wrk -t1 -c32 -d10s -s bench/wrk_post.lua http://127.0.0.1:PORT/api/v1/jsonrpc
--
-- No response() callback on purpose: defining one makes wrk parse every body in Lua, which
-- would measure wrk rather than the server. http_bench.sh checks a response before the load
-- and compares the bytes per response of the run with it instead.

local method = os.getenv("WRK_METHOD") or "POST"
local body_file = os.getenv("WRK_BODY_FILE")
local auth = os.getenv("WRK_AUTH")

wrk.method = method
wrk.headers["Content-Type"] = "application/json"
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
if method ~= "GET" and body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "WRK_RESULT requests=%d duration_s=%.3f rps=%.1f p50_us=%d p99_us=%d mean_us=%.1f max_us=%d " ..
    "bytes=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, secs, summary.requests / secs, latency:percentile(50), latency:percentile(99),
    latency.mean, latency.max, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
end
