/* The HTTP front: h2o event loops (one per thread, each with its own SO_REUSEPORT listener)
 * serving HTTP/1.1, cleartext HTTP/2 (prior knowledge) and, when configured, TLS with ALPN h2.
 *
 *   POST /api/v1/jsonrpc   JSON-RPC 2.0 (rpc.h)
 *   GET  /healthz          200 {"status":"ok"}, or 503 {"status":"degraded","store":"<cause>"}
 *   GET  /metrics          Prometheus text (a bearer token with metrics:view)
 *   GET  /ui/...           the dashboard's static files (cfg->dashboard_dir) and the chart
 *                          library from Debian's libjs-chart.js; /ui redirects to /ui/
 *
 * A request that calls a long method (AC_METHOD_DEFER) is handed to an RPC worker thread; the
 * worker posts the response back to the request's event loop, which sends it if the client is
 * still there. Event loops never run long work.
 *
 * Before a JSON-RPC body is looked at, the loop checks what the headers and the body's length
 * say: size (413), Content-Type (415), the bearer token (401), and for a body above
 * limits.parse_on_loop_bytes the principal's rate_limits.large_requests window (429) and room
 * among the large bodies in progress (max_parallel_parses running + max_queued_parses waiting;
 * else 503). Such a large body is then copied to an RPC worker, which scans, parses and
 * handles it; smaller ones are parsed on the loop. After a body or response above
 * limits.trim_after_bytes, the thread that freed it calls malloc_trim. (README, "Limits".) */
#ifndef AC_HTTP_H
#define AC_HTTP_H

#include "lua/config.h"
#include "base/err.h"
#include "net/rpc.h"

typedef struct ac_http ac_http_t;

/* GET /metrics: the server fills status, a malloc'd body and its content type (static). auth is
 * the Authorization header (NULL when absent). Runs on an event loop: keep it short. */
typedef void (*ac_http_metrics_fn)(void *ud, const char *auth, size_t auth_len, int *status, char **body,
                                   size_t *len, const char **ctype);

/* Serves GET /metrics with fn (set before ac_http_start). */
void ac_http_set_metrics(ac_http_t *h, ac_http_metrics_fn fn, void *ud);

/* GET /healthz: returns 0 when healthy, or 1 with the store's cause copied into cause (n bytes)
 * when degraded. Runs on an event loop for every health check: it must not block. */
typedef int (*ac_http_health_fn)(void *ud, char *cause, size_t n);

/* Answers GET /healthz with fn (set before ac_http_start); without one it is always ok. */
void ac_http_set_health(ac_http_t *h, ac_http_health_fn fn, void *ud);

/* Binds every listener now (so that a busy port fails here, not later) but serves nothing
 * until ac_http_start. rpc is borrowed and must outlive the server. Fails when
 * cfg->dashboard_dir is not a directory. */
ac_http_t *ac_http_create(const ac_config_t *cfg, ac_rpc_t *rpc, ac_err_t *err);

/* Starts the event-loop and worker threads. */
int ac_http_start(ac_http_t *h, ac_err_t *err);

/* Graceful stop: closes the listeners, lets in-flight requests (deferred ones included)
 * finish for up to grace_ms, then stops the threads and joins them. */
void ac_http_stop(ac_http_t *h, int grace_ms);

/* Frees everything; the server must be stopped (or never started). NULL is a no-op. */
void ac_http_destroy(ac_http_t *h);

/* The port listener i is bound to (useful with port 0), TLS listener last. */
int ac_http_port(const ac_http_t *h, int i);
int ac_http_tls_port(const ac_http_t *h); /* 0 without TLS */

#endif
