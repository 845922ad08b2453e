/* The job workers: threads that take queued jobs in order and run them (runner.h). Each has
 * its own Lua host. At start, jobs a crash left running are queued again first. */
#ifndef AC_WORKERS_H
#define AC_WORKERS_H

#include "lua/config.h"
#include "base/err.h"
#include "store/store.h"

typedef struct ac_workers ac_workers_t;

/* Re-queues interrupted jobs and starts cfg->workers threads. */
ac_workers_t *ac_workers_start(const ac_config_t *cfg, ac_store_t *store, ac_err_t *err);

/* Wakes an idle worker: a job was queued. Thread-safe; NULL is a no-op. */
void ac_workers_notify(ac_workers_t *w);

/* Stops at the next safe point (between iterations; running jobs stay running and resume at
 * the next start), joins the threads and frees. NULL is a no-op. */
void ac_workers_stop(ac_workers_t *w);

#endif
