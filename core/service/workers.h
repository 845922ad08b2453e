/* The job workers: threads that take queued jobs in order and run them (runner.h), and a
 * watchdog that replaces a worker whose plugin call never comes back. At start, jobs a crash left
 * running are queued again first (those that crashed twice from the same checkpoint fail). */
#ifndef AC_WORKERS_H
#define AC_WORKERS_H

#include "base/err.h"
#include "lua/config.h"
#include "store/jobs.h"

typedef struct ac_workers ac_workers_t;

/* Re-queues interrupted jobs and starts cfg->workers threads and the watchdog. */
ac_workers_t *ac_workers_start(const ac_config_t *cfg, ac_jobs_t *jobs, ac_err_t *err);

/* Wakes an idle worker: a job was queued. Thread-safe; NULL is a no-op. */
void ac_workers_notify(ac_workers_t *w);

/* Ends the current iteration of the worker running job_id at its next step (its plugin calls
 * fail at once from now on), so that a cancel takes effect without waiting for the iteration.
 * Returns 1 when a worker runs the job, else 0. Thread-safe. */
int ac_workers_interrupt(ac_workers_t *w, const char *job_id);

/* Plugin calls abandoned since start (each failed its job and replaced its worker). */
unsigned long ac_workers_abandoned(const ac_workers_t *w);

/* Interrupts every running job (they stay running and resume at the next start), waits up to
 * 10 s for the workers to stop and frees what it can. Returns how many threads were left
 * behind (abandoned, or stuck in a plugin call): when not 0, the store may still be touched by
 * them and must not be closed; the process should just exit. NULL is a no-op (0). */
int ac_workers_stop(ac_workers_t *w);

#endif
