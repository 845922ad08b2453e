/* report.html of an offline experiment (`agentcore train`): one self-contained page that a
 * browser opens from disk, next to report.json and metrics.csv.
 *
 * No JavaScript and nothing fetched: the learning curves are inline SVG drawn here from the
 * metrics.csv rows (training reward, success, loss, KL, entropy and clip fraction per iteration;
 * validation success every eval_interval), one path per run and seed, so a sweep's runs and the
 * seeds of each lie side by side on the same axes. Tables: the random, untrained (baseline) and
 * trained policies on the evaluation data with Wilson 95 % intervals and the p-values, the seeds
 * with their mean and Student-t interval, and the sweep's runs with the one validation selected.
 *
 * Every string that comes from the experiment (names, run labels, config values) is HTML-escaped,
 * and the page's own Content-Security-Policy forbids scripts. */
#ifndef AC_REPORT_HTML_H
#define AC_REPORT_HTML_H

#include <stddef.h>

#include "base/err.h"

/* Renders the page. report is the report.json object (borrowed); csv the text of metrics.csv
 * (borrowed, NUL-terminated; NULL or a text without rows: no curves). On success returns 0 and
 * *out is a malloc'd NUL-terminated page (*out_len bytes) the caller frees; on failure -1 with
 * err set (AC_ERR_INVALID_PARAMS: the CSV lacks a run, seed or iteration column). */
int ac_report_html_render(const json_t *report, const char *csv, char **out, size_t *out_len, ac_err_t *err);

/* Reads csv_path, renders and writes html_path (through a temporary file renamed over it, so a
 * reader never sees half a page). Returns 0, or -1 with err naming the path. */
int ac_report_html_write(const char *html_path, const json_t *report, const char *csv_path, ac_err_t *err);

#endif
