#include "service/workers.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engine/blas.h"
#include "base/clock.h"
#include "store/jobs.h"
#include "lua/lua_host.h"
#include "service/runner.h"

/* An idle worker looks at the queue at least this often even without a notification (a job
 * whose runner failed on a store error is retried this way). */
#define IDLE_POLL_MS 500

struct ac_workers {
    const ac_config_t *cfg;
    ac_store_t *store;
    atomic_int stopping;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int pending; /* notifications not yet consumed */
    int n;
    pthread_t *threads;
};

static void wait_for_work(ac_workers_t *w)
{
    pthread_mutex_lock(&w->lock);
    if (w->pending == 0 && !atomic_load(&w->stopping)) {
        struct timespec ts = ac_clock_deadline(IDLE_POLL_MS);
        pthread_cond_timedwait(&w->cond, &w->lock, &ts);
    }
    if (w->pending > 0)
        w->pending--;
    pthread_mutex_unlock(&w->lock);
}

static void *worker_main(void *arg)
{
    ac_workers_t *w = arg;
    ac_err_t err = AC_ERR_INIT;
    ac_lua_limits_t limits = AC_LUA_DEFAULT_LIMITS;
    ac_lua_host_t *host = ac_lua_host_create(w->cfg->lua_dir, w->cfg->plugins_dir, &limits, &err);
    if (host == NULL) {
        fprintf(stderr, "agentcore: worker: %s\n", err.message);
        ac_err_clear(&err);
        return NULL;
    }
    ac_runner_env_t env = {w->store, w->cfg, host, &w->stopping};
    while (!atomic_load(&w->stopping)) {
        char id[37];
        int got = ac_jobs_claim(w->store, ac_clock_now_ms(), id, &err);
        if (got < 0) {
            fprintf(stderr, "agentcore: worker: %s\n", err.message);
            ac_err_clear(&err);
        }
        if (got != 1) {
            wait_for_work(w);
            continue;
        }
        if (ac_runner_run(&env, id, &err) != 0) {
            fprintf(stderr, "agentcore: job %s: %s\n", id, err.message);
            /* The store could not commit the job's work: the job fails with that cause
             * (docs/operations.md). Other errors leave it running; it resumes at the next start. */
            if (ac_store_is_write_fault(&err) && ac_jobs_fail(w->store, id, err.message, ac_clock_now_ms(), &err) != 0)
                fprintf(stderr, "agentcore: job %s: its failure is not written yet: %s\n", id, err.message);
            ac_err_clear(&err);
        }
        /* a job's rollouts, batches and JSON are freed now: give the memory back to the system
         * rather than keep it in the allocator's free lists while the worker idles */
        malloc_trim(0);
    }
    ac_lua_host_destroy(host);
    return NULL;
}

ac_workers_t *ac_workers_start(const ac_config_t *cfg, ac_store_t *store, ac_err_t *err)
{
    int recovered = ac_jobs_recover(store, err);
    if (recovered < 0)
        return NULL;
    if (recovered > 0)
        fprintf(stderr, "agentcore: resuming %d interrupted job(s)\n", recovered);
    ac_workers_t *w = calloc(1, sizeof *w);
    if (w == NULL || (w->threads = calloc((size_t)cfg->workers, sizeof *w->threads)) == NULL) {
        free(w);
        ac_err_set(err, AC_ERR_INTERNAL, "workers: out of memory");
        return NULL;
    }
    w->cfg = cfg;
    w->store = store;
    w->n = cfg->workers;
    w->pending = recovered;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    /* BLAS threads per worker so that all workers together fit the cores */
    int per = cfg->threads > 0 ? cfg->threads / w->n : 1;
    ac_blas_set_threads(per > 0 ? per : 1);
    for (int i = 0; i < w->n; i++)
        pthread_create(&w->threads[i], NULL, worker_main, w);
    return w;
}

void ac_workers_notify(ac_workers_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->pending++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void ac_workers_stop(ac_workers_t *w)
{
    if (w == NULL)
        return;
    atomic_store(&w->stopping, 1);
    pthread_mutex_lock(&w->lock);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < w->n; i++)
        pthread_join(w->threads[i], NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w->threads);
    free(w);
}
