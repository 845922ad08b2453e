/* Training jobs: their records, their state machine and the queue, kept in the store.
 *
 *   queued ──▶ running ──▶ completed | failed | cancelled
 *      └──────────────────────────────────────▶ cancelled
 *
 * A job record is a JSON object (AC_DB_JOBS); its training and evaluation data live apart
 * (AC_DB_JOB_DATA) so that status reads stay small. Every change is one durable transaction. */
#ifndef AC_JOBS_H
#define AC_JOBS_H

#include <stdint.h>

#include "err.h"
#include "store.h"
#include "train_config.h"

typedef struct ac_job_new {
    const char *owner;    /* the principal (JWT sub) that owns the job */
    const char *agent_id;
    const ac_train_config_t *config;
    json_t *training_data;   /* borrowed: array of TrainingQuery */
    json_t *evaluation_data; /* borrowed: array, may be empty */
    int64_t now_ms;
} ac_job_new_t;

/* Stores a new queued job. *job receives the stored record (new reference). */
int ac_jobs_create(ac_store_t *s, const ac_job_new_t *nj, json_t **job, ac_err_t *err);

/* Reads a job record. Returns 1 with *job set (new reference), 0 when there is no such job,
 * -1 on a store error. */
int ac_jobs_get(ac_store_t *s, const char *job_id, json_t **job, ac_err_t *err);

/* Cancels a queued job (it leaves the queue) or asks a running one to stop at its next safe
 * point. A job already completed, failed or cancelled is AC_ERR_CANNOT_CANCEL; an unknown one
 * AC_ERR_NOT_FOUND. *job receives the updated record. */
int ac_jobs_cancel(ac_store_t *s, const char *job_id, const char *reason, int64_t now_ms, json_t **job,
                   ac_err_t *err);

/* 1 when status is final (completed, failed, cancelled). */
int ac_job_status_final(const char *status);

/* Number of jobs waiting in the queue. */
size_t ac_jobs_queued(ac_store_t *s);

#endif
