/* Job workers, their watchdog and, with a shared store, their lease keeper. See workers.h.
 *
 * Each worker thread owns a slot: the job it runs, that job's run number, and the Lua watch its
 * plugin calls report their deadlines to. The watchdog thread looks at every slot a few times a
 * second; a plugin call that is still running abandon_after_ms past its wall-clock deadline has
 * not come back to Lua (the instruction hook would have ended it): the watchdog fails the job
 * (fenced by the run number, so the stuck thread can write nothing more), marks the slot
 * abandoned and starts a new worker in a new slot. The stuck thread, if it ever returns, sees
 * its slot abandoned, drops its job's state and exits. Slots are never freed while their thread
 * may still run.
 *
 * With several nodes over one database (ac_jobs_lease_ms > 0) a keeper thread renews the lease
 * of every job the slots run, every third of the lease, and listens for the other nodes' signals:
 * a job queued anywhere wakes an idle worker; a cancel asked on any node interrupts the slot that
 * runs the job, as a local cancel does; a lease found lost (another node took the job after this
 * one missed renewals) interrupts the slot, whose next write the run number refuses anyway. */
#include "service/workers.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/uuid.h"
#include "engine/blas.h"
#include "lua/lua_host.h"
#include "service/crashlog.h"
#include "service/runner.h"
#include "store/jobs.h"

/* An idle worker looks at the queue at least this often even without a notification (a job
 * whose runner failed on a store error is retried this way). */
#define IDLE_POLL_MS 500
/* How often the watchdog looks. */
#define WATCH_EVERY_MS 100
/* How long stop waits for a worker to reach a safe point before leaving it behind. */
#define STOP_GRACE_MS 10000
/* The crash handler's own stack (crashlog.h). */
#define ALT_STACK (64 * 1024)

typedef struct slot {
    ac_workers_t *w;
    pthread_t tid;
    ac_lua_watch_t watch;
    atomic_int abandoned;
    atomic_int finished;  /* the thread returned */
    /* under w->lock */
    char job_id[AC_UUID_LEN + 1]; /* "" when idle */
    int64_t run;
} slot_t;

struct ac_workers {
    const ac_config_t *cfg;
    ac_jobs_t *jobs;
    atomic_int stopping;
    pthread_mutex_t lock;
    pthread_cond_t cond;       /* work arrived, or stop */
    pthread_cond_t watch_cond; /* the watchdog's sleep */
    int pending;               /* notifications not yet consumed */
    slot_t **slots;            /* every slot ever made; the live ones are not abandoned */
    int n_slots, cap_slots;
    pthread_t watchdog;
    pthread_t keeper; /* leases and signals; started only with a shared store and workers */
    int has_keeper;
    atomic_ulong abandoned_total;
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

static void slot_set_job(slot_t *s, const char *job_id, int64_t run)
{
    pthread_mutex_lock(&s->w->lock);
    snprintf(s->job_id, sizeof s->job_id, "%s", job_id ? job_id : "");
    s->run = run;
    if (job_id == NULL) /* an interrupt meant for the job that just ended must not hit the next */
        atomic_store(&s->watch.interrupt, atomic_load(&s->w->stopping));
    pthread_mutex_unlock(&s->w->lock);
}

static void *worker_main(void *arg)
{
    slot_t *s = arg;
    ac_workers_t *w = s->w;
    /* the crash handler must run even when this thread's stack is what overflowed */
    stack_t alt = {.ss_sp = malloc(ALT_STACK), .ss_size = ALT_STACK, .ss_flags = 0};
    if (alt.ss_sp != NULL)
        sigaltstack(&alt, NULL);
    ac_err_t err = AC_ERR_INIT;
    ac_runner_env_t env = {w->jobs, w->cfg, &s->watch, &w->stopping};
    while (!atomic_load(&w->stopping) && !atomic_load(&s->abandoned)) {
        char id[AC_UUID_LEN + 1];
        int64_t run = 0;
        int got = ac_jobs_claim(w->jobs, ac_clock_now_ms(), id, &run, &err);
        if (got < 0) {
            fprintf(stderr, "agentcore: worker: %s\n", err.message);
            ac_err_clear(&err);
        }
        if (got != 1) {
            wait_for_work(w);
            continue;
        }
        slot_set_job(s, id, run);
        ac_crashlog_set_job(id);
        if (run > 1) /* a restart's recovery, or a takeover of a job whose node stopped renewing */
            fprintf(stderr, "agentcore: job %s: resuming (run %lld)\n", id, (long long)run);
        if (ac_runner_run(&env, id, run, &err) != 0 && !atomic_load(&s->abandoned)) {
            fprintf(stderr, "agentcore: job %s: %s\n", id, err.message);
            /* The store could not commit the job's work: the job fails with that cause
             * (docs/operations.md). Other errors leave it running; it resumes at the next start. */
            if (ac_store_is_write_fault(&err) && ac_jobs_fail(w->jobs, id, err.message, ac_clock_now_ms(), &err) != 0)
                fprintf(stderr, "agentcore: job %s: its failure is not written yet: %s\n", id, err.message);
        }
        ac_err_clear(&err);
        /* stopping: the job stays running; with leases another node may resume it at once */
        if (atomic_load(&w->stopping) && !atomic_load(&s->abandoned) && ac_jobs_release(w->jobs, id, run, &err) != 0)
            fprintf(stderr, "agentcore: job %s: cannot give its lease up: %s\n", id, err.message);
        ac_crashlog_set_job(NULL);
        ac_err_clear(&err);
        slot_set_job(s, NULL, 0);
        /* a job's rollouts, batches, JSON and Lua state are freed now: give the memory back to
         * the system rather than keep it in the allocator's free lists while the worker idles */
        malloc_trim(0);
    }
    if (alt.ss_sp != NULL) {
        stack_t off = {.ss_flags = SS_DISABLE};
        sigaltstack(&off, NULL);
        free(alt.ss_sp);
    }
    atomic_store(&s->finished, 1);
    return NULL;
}

/* Starts a worker in a new slot. Call with w->lock held. */
static int start_slot(ac_workers_t *w)
{
    if (w->n_slots == w->cap_slots) {
        int cap = w->cap_slots ? w->cap_slots * 2 : 4;
        slot_t **ns = realloc(w->slots, sizeof *ns * (size_t)cap);
        if (ns == NULL)
            return -1;
        w->slots = ns;
        w->cap_slots = cap;
    }
    slot_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -1;
    s->w = w;
    if (pthread_create(&s->tid, NULL, worker_main, s) != 0) {
        free(s);
        return -1;
    }
    w->slots[w->n_slots++] = s;
    return 0;
}

/* A plugin call of the slot's job has not come back: give up on it. */
static void abandon(ac_workers_t *w, slot_t *s, const char *job_id, int64_t run)
{
    char msg[300];
    snprintf(msg, sizeof msg, "a plugin call did not return %d ms after its wall-clock limit (%u ms, "
             "plugin_limits.max_wall_ms): it was abandoned with the job's Lua state",
             w->cfg->abandon_after_ms, (unsigned)w->cfg->plugin_limits.max_wall_ms);
    atomic_store(&s->abandoned, 1);
    atomic_store(&s->watch.interrupt, 1);
    atomic_fetch_add(&w->abandoned_total, 1);
    ac_err_t err = AC_ERR_INIT;
    if (ac_jobs_abandon(w->jobs, job_id, run, msg, ac_clock_now_ms(), &err) != 0) {
        fprintf(stderr, "agentcore: job %s: cannot record its abandonment: %s\n", job_id, err.message);
        ac_err_clear(&err);
    }
    fprintf(stderr, "agentcore: job %s: %s; worker replaced\n", job_id, msg);
    pthread_mutex_lock(&w->lock);
    if (!atomic_load(&w->stopping) && start_slot(w) != 0)
        fprintf(stderr, "agentcore: cannot start a replacement worker\n");
    pthread_mutex_unlock(&w->lock);
}

static void *watchdog_main(void *arg)
{
    ac_workers_t *w = arg;
    const uint64_t margin = (uint64_t)w->cfg->abandon_after_ms * 1000000u;
    pthread_mutex_lock(&w->lock);
    while (!atomic_load(&w->stopping)) {
        struct timespec ts = ac_clock_deadline(WATCH_EVERY_MS);
        pthread_cond_timedwait(&w->watch_cond, &w->lock, &ts);
        uint64_t now = (uint64_t)ac_clock_mono_ns();
        for (int i = 0; i < w->n_slots; i++) {
            slot_t *s = w->slots[i];
            uint64_t d = atomic_load(&s->watch.deadline_ns);
            if (atomic_load(&s->abandoned) || d == 0 || now <= d + margin || s->job_id[0] == 0)
                continue;
            char id[AC_UUID_LEN + 1];
            memcpy(id, s->job_id, sizeof id);
            int64_t run = s->run;
            pthread_mutex_unlock(&w->lock); /* abandon writes the store and takes the lock */
            abandon(w, s, id, run);
            pthread_mutex_lock(&w->lock);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* ---- the lease keeper --------------------------------------------------------------------------- */

/* Interrupts the slot that runs this run of the job (a lost lease names a run: a later claim of
 * the same job by this node is not touched). */
static void interrupt_run(ac_workers_t *w, const char *job_id, int64_t run)
{
    pthread_mutex_lock(&w->lock);
    for (int i = 0; i < w->n_slots; i++) {
        slot_t *s = w->slots[i];
        if (!atomic_load(&s->abandoned) && s->run == run && strcmp(s->job_id, job_id) == 0)
            atomic_store(&s->watch.interrupt, 1);
    }
    pthread_mutex_unlock(&w->lock);
}

static void on_signal(ac_jobs_signal_t what, const char *job_id, void *ud)
{
    ac_workers_t *w = ud;
    if (what == AC_JOBS_SIGNAL_QUEUED)
        ac_workers_notify(w);
    else
        ac_workers_interrupt(w, job_id); /* not ours: nothing happens */
}

/* Renews the lease of every job the slots run. */
static void renew_all(ac_workers_t *w)
{
    pthread_mutex_lock(&w->lock);
    int n = 0;
    struct {
        char id[AC_UUID_LEN + 1];
        int64_t run;
    } held[64];
    for (int i = 0; i < w->n_slots && n < 64; i++) {
        slot_t *s = w->slots[i];
        if (!atomic_load(&s->abandoned) && s->job_id[0] != '\0') {
            memcpy(held[n].id, s->job_id, sizeof held[n].id);
            held[n++].run = s->run;
        }
    }
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < n; i++) {
        ac_err_t err = AC_ERR_INIT;
        int cancel = 0, rc = ac_jobs_renew(w->jobs, held[i].id, held[i].run, &cancel, &err);
        if (rc < 0) /* the database is away: the fenced writes decide; keep running meanwhile */
            fprintf(stderr, "agentcore: job %s: cannot renew its lease: %s\n", held[i].id, err.message);
        else if (rc == 0 && !atomic_load(&w->stopping))
            fprintf(stderr, "agentcore: job %s: lease lost (run %lld): another node runs it now\n", held[i].id,
                    (long long)held[i].run);
        if (rc == 0 || cancel)
            interrupt_run(w, held[i].id, held[i].run);
        ac_err_clear(&err);
    }
}

static void *keeper_main(void *arg)
{
    ac_workers_t *w = arg;
    const int64_t every_ms = ac_jobs_lease_ms(w->jobs) / 3;
    int64_t next = ac_clock_mono_ns() / 1000000 + every_ms;
    int failing = 0;
    while (!atomic_load(&w->stopping)) {
        int64_t now = ac_clock_mono_ns() / 1000000, wait = next - now;
        ac_err_t err = AC_ERR_INIT;
        /* short waits: a stop is seen within half a second */
        if (ac_jobs_wait_signal(w->jobs, (int)(wait < 0 ? 0 : wait > 500 ? 500 : wait), on_signal, w, &err) != 0) {
            if (!failing) /* once per outage */
                fprintf(stderr, "agentcore: signals from other nodes: %s\n", err.message);
            failing = 1;
        } else {
            failing = 0;
        }
        ac_err_clear(&err);
        if (ac_clock_mono_ns() / 1000000 >= next) {
            renew_all(w);
            next = ac_clock_mono_ns() / 1000000 + every_ms;
        }
    }
    return NULL;
}

ac_workers_t *ac_workers_start(const ac_config_t *cfg, ac_jobs_t *jobs, ac_err_t *err)
{
    char **crashed = NULL;
    size_t n_crashed = 0;
    if (ac_crashlog_read(cfg->data_dir, &crashed, &n_crashed, err) != 0)
        return NULL;
    int recovered = ac_jobs_recover(jobs, (const char *const *)crashed, n_crashed, err);
    ac_crashlog_free(crashed, n_crashed);
    if (recovered < 0 || ac_crashlog_install(cfg->data_dir, err) != 0)
        return NULL;
    ac_crashlog_clear(cfg->data_dir); /* recorded in the jobs now */
    if (n_crashed > 0)
        fprintf(stderr, "agentcore: the last run crashed in %zu job's plugins (see their 'crashes')\n", n_crashed);
    if (recovered > 0)
        fprintf(stderr, "agentcore: resuming %d interrupted job(s)\n", recovered);
    ac_workers_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "workers: out of memory");
        return NULL;
    }
    w->cfg = cfg;
    w->jobs = jobs;
    w->pending = recovered;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    pthread_cond_init(&w->watch_cond, NULL);
    ac_blas_set_threads(ac_runner_threads(cfg)); /* each job's runner gives its policy as many */
    pthread_mutex_lock(&w->lock);
    int ok = 1;
    for (int i = 0; ok && i < cfg->workers; i++)
        ok = start_slot(w) == 0;
    pthread_mutex_unlock(&w->lock);
    if (ok && cfg->workers > 0 && ac_jobs_lease_ms(jobs) > 0)
        ok = (w->has_keeper = pthread_create(&w->keeper, NULL, keeper_main, w) == 0);
    if (!ok || pthread_create(&w->watchdog, NULL, watchdog_main, w) != 0) {
        ac_workers_stop(w);
        ac_err_set(err, AC_ERR_INTERNAL, "workers: cannot start threads");
        return NULL;
    }
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

int ac_workers_interrupt(ac_workers_t *w, const char *job_id)
{
    int hit = 0;
    if (w == NULL)
        return 0;
    pthread_mutex_lock(&w->lock);
    for (int i = 0; i < w->n_slots; i++) {
        slot_t *s = w->slots[i];
        if (!atomic_load(&s->abandoned) && strcmp(s->job_id, job_id) == 0) {
            atomic_store(&s->watch.interrupt, 1);
            hit = 1;
        }
    }
    pthread_mutex_unlock(&w->lock);
    return hit;
}

unsigned long ac_workers_abandoned(const ac_workers_t *w)
{
    return w ? atomic_load(&((ac_workers_t *)w)->abandoned_total) : 0;
}

int ac_workers_stop(ac_workers_t *w)
{
    if (w == NULL)
        return 0;
    atomic_store(&w->stopping, 1);
    pthread_mutex_lock(&w->lock);
    for (int i = 0; i < w->n_slots; i++)
        atomic_store(&w->slots[i]->watch.interrupt, 1); /* the running iterations end at once */
    pthread_cond_broadcast(&w->cond);
    pthread_cond_broadcast(&w->watch_cond);
    pthread_mutex_unlock(&w->lock);
    if (w->watchdog)
        pthread_join(w->watchdog, NULL);
    if (w->has_keeper)
        pthread_join(w->keeper, NULL);
    /* From here the slot list no longer changes. A worker ends at its next step; one stuck in a
     * plugin call that does not return (past its deadline and the abandon margin) is left
     * behind: the process is about to exit. */
    const uint64_t margin = (uint64_t)w->cfg->abandon_after_ms * 1000000u;
    const int64_t give_up = ac_clock_mono_ns() + (int64_t)STOP_GRACE_MS * 1000000;
    int left = 0;
    for (int i = 0; i < w->n_slots; i++) {
        slot_t *s = w->slots[i];
        while (!atomic_load(&s->finished) && !atomic_load(&s->abandoned) && ac_clock_mono_ns() < give_up) {
            uint64_t d = atomic_load(&s->watch.deadline_ns);
            if (d != 0 && (uint64_t)ac_clock_mono_ns() > d + margin)
                break;
            struct timespec pause = {0, 10 * 1000000L};
            nanosleep(&pause, NULL);
        }
        if (atomic_load(&s->finished)) {
            pthread_join(s->tid, NULL);
            free(s);
            w->slots[i] = NULL;
        } else {
            left++;
        }
    }
    if (left == 0) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        pthread_cond_destroy(&w->watch_cond);
        free(w->slots);
        free(w);
    }
    return left;
}
