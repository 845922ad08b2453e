#include "service/server.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "net/http.h"
#include "net/rpc.h"
#include "service/app.h"
#include "service/handlers.h"
#include "service/methods.h"
#include "service/status.h"
#include "store/hooks.h"
#include "store/jobs.h"
#include "store/pg.h"

#define GRACE_MS 10000
/* How often a degraded store is probed (ac_jobs_probe): how soon the server is ok again after
 * space (or the database) comes back. A failed probe costs a failed fallocate, or a connection
 * attempt. */
#define HEALTH_PROBE_MS 1000

/* ---- store health --------------------------------------------------------------------------------
 * A thread that probes a degraded store until it can write again, then writes the job failures
 * that could not be written meanwhile. It logs each change of state once. */

typedef struct health {
    ac_jobs_t *jobs;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop;
    int running;
} health_t;

static void *health_main(void *arg)
{
    health_t *h = arg;
    int was_degraded = 0;
    char cause[256];
    pthread_mutex_lock(&h->lock);
    while (!h->stop) {
        pthread_mutex_unlock(&h->lock);
        ac_err_t err = AC_ERR_INIT;
        if (ac_jobs_degraded(h->jobs, cause, sizeof cause)) {
            if (!was_degraded)
                fprintf(stderr, "agentcore: store degraded: %s; new jobs are refused until it can write\n", cause);
            was_degraded = 1;
            if (ac_jobs_probe(h->jobs, &err) == 0) {
                fprintf(stderr, "agentcore: store writable again\n");
                was_degraded = 0;
                if (ac_jobs_write_failures(h->jobs, ac_clock_now_ms(), &err) != 0)
                    fprintf(stderr, "agentcore: job failures not written yet: %s\n", err.message);
            }
            ac_err_clear(&err);
        } else {
            was_degraded = 0;
        }
        pthread_mutex_lock(&h->lock);
        if (!h->stop) {
            struct timespec ts = ac_clock_deadline(HEALTH_PROBE_MS);
            pthread_cond_timedwait(&h->cond, &h->lock, &ts);
        }
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

static void health_stop(health_t *h)
{
    if (!h->running)
        return;
    pthread_mutex_lock(&h->lock);
    h->stop = 1;
    pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL);
    h->running = 0;
}

static int healthz(void *ud, char *cause, size_t n)
{
    return ac_jobs_degraded(ud, cause, n);
}

/* ---- GET /metrics ----------------------------------------------------------------------------- */

typedef struct metrics_ctx {
    ac_app_t *app;
    ac_rpc_t *rpc;
} metrics_ctx_t;

static void serve_metrics(void *ud, const char *auth, size_t auth_len, int *status, char **body, size_t *len,
                          const char **ctype)
{
    metrics_ctx_t *m = ud;
    ac_principal_t p;
    ac_err_t err = AC_ERR_INIT;
    if (ac_auth_bearer(m->app->auth, auth, auth_len, ac_clock_now_ms() / 1000, &p, &err) != 0 ||
        !ac_principal_has(&p, AC_PERM_METRICS_VIEW)) {
        *status = err.code ? 401 : 403;
        *body = strdup(err.code ? "unauthorized: a bearer token is required\n"
                                : "forbidden: the token lacks metrics:view\n");
        *len = strlen(*body);
        ac_err_clear(&err);
        return;
    }
    size_t cap = 0;
    *len = 0;
    *body = NULL;
    ac_jobs_totals_t t = {{0}, 0, 0}; /* kept by the store as jobs change: no scan of the jobs */
    ac_jobs_totals(m->app->jobs, &t, &err);
    ac_err_clear(&err);
    uint64_t delivered, failed, dropped, policy_errors;
    ac_webhooks_counters(m->app->webhooks, &delivered, &failed, &dropped, &policy_errors);
    int rc = ac_rpc_metrics_text(m->rpc, body, len, &cap);
    ac_policies_stats_t ps;
    ac_policies_stats(m->app->policies, &ps);
    char tail[6144];
    int n = snprintf(tail, sizeof tail,
                     "# HELP agentcore_jobs Jobs by status.\n# TYPE agentcore_jobs gauge\n"
                     "agentcore_jobs{status=\"queued\"} %lld\nagentcore_jobs{status=\"running\"} %lld\n"
                     "agentcore_jobs{status=\"completed\"} %lld\nagentcore_jobs{status=\"failed\"} %lld\n"
                     "agentcore_jobs{status=\"cancelled\"} %lld\n"
                     "# HELP agentcore_iterations_total GRPO iterations done, all jobs.\n"
                     "# TYPE agentcore_iterations_total counter\nagentcore_iterations_total %lld\n"
                     "# HELP agentcore_trajectories_total Trajectories generated, all jobs.\n"
                     "# TYPE agentcore_trajectories_total counter\nagentcore_trajectories_total %lld\n"
                     "# HELP agentcore_webhook_deliveries_total Webhook deliveries answered 2xx.\n"
                     "# TYPE agentcore_webhook_deliveries_total counter\nagentcore_webhook_deliveries_total %llu\n"
                     "# HELP agentcore_webhook_failures_total Webhook attempts that failed.\n"
                     "# TYPE agentcore_webhook_failures_total counter\nagentcore_webhook_failures_total %llu\n"
                     "# HELP agentcore_webhook_dropped_total Webhook deliveries given up (retries spent or 410).\n"
                     "# TYPE agentcore_webhook_dropped_total counter\nagentcore_webhook_dropped_total %llu\n"
                     "# HELP agentcore_webhook_policy_errors_total Webhook policy calls that failed (the "
                     "delivery was dropped unless webhooks.on_policy_error = \"deliver\").\n"
                     "# TYPE agentcore_webhook_policy_errors_total counter\n"
                     "agentcore_webhook_policy_errors_total %llu\n"
                     "# HELP agentcore_store_degraded 1 while the store cannot write (GET /healthz says why).\n"
                     "# TYPE agentcore_store_degraded gauge\nagentcore_store_degraded %d\n"
                     "# HELP agentcore_plugin_calls_abandoned_total Plugin calls the watchdog gave up on (each "
                     "failed its job and replaced its worker).\n"
                     "# TYPE agentcore_plugin_calls_abandoned_total counter\nagentcore_plugin_calls_abandoned_total %lu\n"
                     "# HELP agentcore_policies_loaded Checkpoints agents.act keeps loaded.\n"
                     "# TYPE agentcore_policies_loaded gauge\nagentcore_policies_loaded %d\n"
                     "# HELP agentcore_policy_cache_total agents.act and agents.run lookups of a loaded policy.\n"
                     "# TYPE agentcore_policy_cache_total counter\n"
                     "agentcore_policy_cache_total{result=\"hit\"} %llu\nagentcore_policy_cache_total{result=\"miss\"} %llu\n"
                     "agentcore_policy_cache_total{result=\"evicted\"} %llu\n"
                     "agentcore_policy_cache_total{result=\"invalidated\"} %llu\n",
                     (long long)t.by_status[AC_JOB_QUEUED], (long long)t.by_status[AC_JOB_RUNNING],
                     (long long)t.by_status[AC_JOB_COMPLETED], (long long)t.by_status[AC_JOB_FAILED],
                     (long long)t.by_status[AC_JOB_CANCELLED], (long long)t.iterations, (long long)t.trajectories,
                     (unsigned long long)delivered, (unsigned long long)failed,
                     (unsigned long long)dropped, (unsigned long long)policy_errors,
                     ac_jobs_degraded(m->app->jobs, NULL, 0), ac_workers_abandoned(m->app->workers), ps.entries,
                     (unsigned long long)ps.hits, (unsigned long long)ps.misses, (unsigned long long)ps.evictions,
                     (unsigned long long)ps.invalidations);
    char *nb = rc == 0 ? realloc(*body, *len + (size_t)n + 1) : NULL;
    if (nb == NULL) {
        free(*body);
        *body = NULL;
        *status = 500;
        return;
    }
    memcpy(nb + *len, tail, (size_t)n + 1);
    *body = nb;
    *len += (size_t)n;
    *status = 200;
    *ctype = "text/plain; version=0.0.4";
}

static ac_auth_t *create_auth(const ac_config_t *cfg, ac_err_t *err)
{
    int hs = strcmp(cfg->auth_alg, "HS256") == 0;
    ac_auth_config_t ac = {
        .alg = cfg->auth_alg,
        .secret = hs ? cfg->auth_secret : NULL,
        .public_key_file = hs ? NULL : cfg->auth_public_key_file,
        .private_key_file = hs ? NULL : cfg->auth_private_key_file,
        .issuer = cfg->auth_issuer,
        .audience = cfg->auth_audience,
        .leeway_s = cfg->auth_leeway_s,
    };
    return ac_auth_create(&ac, err);
}

ac_auth_t *ac_server_auth(const ac_config_t *cfg, ac_err_t *err)
{
    return create_auth(cfg, err);
}

/* The store the config names: LMDB in data_dir, or the PostgreSQL pool (this node's name and
 * crash log stay in data_dir, which is locked as LMDB's is). *lock_fd: the PostgreSQL case's lock. */
static int open_store(const ac_config_t *cfg, ac_app_t *app, int *lock_fd, ac_err_t *err)
{
    if (cfg->store_backend == AC_STORE_LMDB)
        return (app->store = ac_store_open(cfg->data_dir, err)) == NULL ||
                       (app->jobs = ac_jobs_open_lmdb(app->store, err)) == NULL ||
                       (app->hooks = ac_hooks_open_lmdb(app->store, err)) == NULL
                   ? -1
                   : 0;
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST)
        return ac_err_set(err, AC_ERR_INTERNAL, "cannot create %s: %s", cfg->data_dir, strerror(errno));
    char node[AC_PG_NODE_MAX];
    if ((*lock_fd = ac_store_lock_dir(cfg->data_dir, err)) < 0 ||
        ac_pg_node_name(cfg->data_dir, cfg->store_node, node, err) != 0)
        return -1;
    /* a connection for every thread that may hold one at once: event loops, RPC workers, job
     * workers, and the webhook, health, watchdog and lease threads */
    int pool = cfg->store_pool_size > 0 ? cfg->store_pool_size : cfg->threads + cfg->rpc_workers + cfg->workers + 4;
    ac_pg_config_t pc = {cfg->store_dsn, node, pool, cfg->store_lease_s * 1000, cfg->store_auto_migrate};
    return (app->pg = ac_pg_open(&pc, err)) == NULL || (app->jobs = ac_jobs_open_pg(app->pg, err)) == NULL ||
                   (app->hooks = ac_hooks_open_pg(app->pg, err)) == NULL
               ? -1
               : 0;
}

/* The line scripts and tests wait for: the real ports (port 0 in the config picks one). */
static void print_listening(const ac_config_t *cfg, const ac_app_t *app, ac_http_t *http)
{
    const char *colon = strrchr(cfg->listen[0], ':');
    printf("agentcore: listening on http://%.*s:%d port=%d", (int)(colon - cfg->listen[0]), cfg->listen[0],
           ac_http_port(http, 0), ac_http_port(http, 0));
    if (cfg->tls_listen != NULL)
        printf(" tls_port=%d", ac_http_tls_port(http));
    printf(" threads=%d data=%s store=%s", cfg->threads, cfg->data_dir, ac_jobs_backend(app->jobs));
    if (app->pg != NULL)
        printf(" node=%s", ac_pg_node(app->pg));
    printf("\n");
    fflush(stdout);
}

/* Closes the store unless `left` worker threads stuck in plugin calls may still touch it (every
 * commit is durable anyway). */
static void close_store(ac_app_t *app, int lock_fd, int left)
{
    if (left != 0) {
        fprintf(stderr, "agentcore: %d worker thread(s) stuck in plugin calls left behind\n", left);
        return;
    }
    ac_jobs_close(app->jobs);
    ac_store_close(app->store); /* LMDB closed cleanly: nothing to recover at the next start */
    ac_pg_close(app->pg);
    if (lock_fd >= 0)
        close(lock_fd);
}

int ac_server_run(const ac_config_t *cfg, ac_err_t *err)
{
    /* Signals go to this thread only (sigwait below); every thread created later inherits the
     * mask. A client that vanishes must not kill the process with SIGPIPE. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int ret = -1;
    ac_app_t app = {.cfg = cfg};
    ac_rpc_t *rpc = NULL;
    ac_http_t *http = NULL;
    health_t health = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    int lock_fd = -1;
    if (open_store(cfg, &app, &lock_fd, err) != 0)
        goto out;
    /* a full disk at start is reported at once (healthz, start_grpo), not at the first job */
    ac_err_t perr = AC_ERR_INIT;
    ac_jobs_probe(app.jobs, &perr);
    ac_err_clear(&perr);
    health.jobs = app.jobs;
    health.running = pthread_create(&health.thread, NULL, health_main, &health) == 0;
    if ((app.auth = create_auth(cfg, err)) == NULL)
        goto out;
    if ((app.rl = ac_ratelimit_create(cfg->rate)) == NULL || (app.status = ac_status_cache_create()) == NULL ||
        (app.policies = ac_policies_create(cfg->inference_cache_policies, cfg->inference_cache_bytes)) == NULL ||
        (rpc = ac_rpc_create(ac_service_methods, &app, app.auth, app.rl, cfg)) == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    ac_rpc_set_defer_check(rpc, ac_service_defer_check); /* agents.act on a loaded policy: on the loop */
    if ((http = ac_http_create(cfg, rpc, err)) == NULL)
        goto out;
    metrics_ctx_t mctx = {&app, rpc};
    ac_http_set_metrics(http, serve_metrics, &mctx);
    ac_http_set_health(http, healthz, app.jobs);
    if ((app.webhooks = ac_webhooks_start(cfg, app.hooks, err)) == NULL ||
        (app.workers = ac_workers_start(cfg, app.jobs, err)) == NULL || ac_http_start(http, err) != 0)
        goto out;

    print_listening(cfg, &app, http);

    int sig = 0;
    sigwait(&stop_set, &sig);
    fprintf(stderr, "agentcore: %s received, finishing in-flight requests\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    ac_http_stop(http, GRACE_MS);
    ret = 0;
out:;
    /* running jobs stop at their next step and resume at restart */
    int left = ac_workers_stop(app.workers);
    health_stop(&health);
    ac_webhooks_stop(app.webhooks); /* undelivered events stay in the outbox */
    ac_http_destroy(http);
    ac_rpc_destroy(rpc);
    ac_ratelimit_destroy(app.rl);
    ac_auth_destroy(app.auth);
    ac_status_cache_destroy(app.status);
    ac_policies_destroy(app.policies);
    /* the webhook thread has stopped and workers never use this handle (their events' outbox
     * entries go through the jobs backend's transaction): closed whatever is left behind */
    ac_hooks_close(app.hooks);
    close_store(&app, lock_fd, left);
    if (ret == 0)
        fprintf(stderr, "agentcore: stopped\n");
    return ret;
}
