/* Which job's plugins were running when the process crashed.
 *
 * A worker thread names the job it runs; when the process dies of a fatal signal (SIGSEGV,
 * SIGBUS, SIGILL, SIGFPE, SIGABRT) on that thread, the handler appends the job id to a file in
 * the data directory with one write() (async-signal-safe), then hands the signal on to the
 * handler that was there before (the default, or a sanitizer's). The next start reads the file:
 * a job that crashes the server again and again is failed rather than resumed into the same
 * fault (ac_jobs_recover). A kill -9 runs no handler and blames no one. */
#ifndef AC_CRASHLOG_H
#define AC_CRASHLOG_H

#include <stddef.h>

#include "base/err.h"

/* Installs the handlers; the file is <data_dir>/crashed-jobs. Call once, before the workers. */
int ac_crashlog_install(const char *data_dir, ac_err_t *err);

/* The calling thread runs job_id from now on (NULL: none). */
void ac_crashlog_set_job(const char *job_id);

/* Reads the file: *ids (malloc'd array of malloc'd strings, NULL when none) and *n. Free with
 * ac_crashlog_free; remove the file with ac_crashlog_clear once what it says is recorded. */
int ac_crashlog_read(const char *data_dir, char ***ids, size_t *n, ac_err_t *err);
void ac_crashlog_free(char **ids, size_t n);
void ac_crashlog_clear(const char *data_dir);

#endif
