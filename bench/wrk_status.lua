-- wrk script for bench/training_bench.sh: training.get_status of one job on every keep-alive
-- connection, and one machine-readable result line when the run ends.
--
-- Environment (read by every wrk thread):
--   AC_TOKEN   a JWT with training:view
--   AC_JOB_ID  the job to ask about
--
--   AC_TOKEN=$TOKEN AC_JOB_ID=$JOB wrk -t1 -c16 -d10s -s bench/wrk_status.lua \
--     http://127.0.0.1:PORT/api/v1/jsonrpc
--
-- No response() callback: it would make wrk parse every body in Lua (measuring wrk, not the
-- server). Non-2xx answers (401, 429) show up as err_status; training_bench.sh checks one
-- answer with curl before the load and compares the bytes per response of the run with it.

local token = assert(os.getenv("AC_TOKEN"), "AC_TOKEN is not set")
local job = assert(os.getenv("AC_JOB_ID"), "AC_JOB_ID is not set")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.body = '{"jsonrpc":"2.0","method":"training.get_status","params":{"job_id":"' .. job .. '"},"id":1}'

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "WRK_RESULT requests=%d duration_s=%.3f rps=%.1f p50_us=%d p99_us=%d mean_us=%.1f max_us=%d " ..
    "bytes=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, secs, summary.requests / secs, latency:percentile(50), latency:percentile(99),
    latency.mean, latency.max, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
end
