/* report.html: the learning curves are SVG paths with one point per metrics.csv row that has the
 * value (validation only where it was measured), one path per run and seed; quoted run labels
 * are read as CSV quotes them; every string from the experiment is escaped; the tables carry the
 * intervals, p-values, seeds and sweep runs; a CSV without the key columns is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "engine/report_html.h"

#include "check.h"

#define XSS "<img src=x onerror=alert(1)>"

/* Occurrences of needle in hay. */
static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* The number of points of the path whose opening tag starts with `prefix`: one M and then one L
 * per further point. -1 when there is no such path. */
static int path_points(const char *page, const char *prefix)
{
    const char *p = strstr(page, prefix);
    if (p == NULL)
        return -1;
    const char *d = strstr(p, " d=\"M");
    const char *end = d ? strchr(d + 5, '"') : NULL;
    if (d == NULL || end == NULL)
        return -1;
    int n = 1;
    for (const char *q = d; q < end; q++)
        n += *q == 'L';
    return n;
}

/* metrics.csv as experiment.c writes it: two runs (one label with quotes and markup), two seeds
 * of the first; iteration 0 has only validation; validation every 2 iterations and at the end. */
static char *make_csv(int iters)
{
    size_t cap = 1 << 16, len = 0;
    char *s = malloc(cap);
    len += (size_t)snprintf(s + len, cap - len,
                            "run,seed,iteration,loss,avg_reward,reward_std,success_rate,kl,kl_exact,entropy,"
                            "clip_fraction,clip_low,clip_high,clip_region,zero_var_frac,grad_norm,decisions,"
                            "trajectories,steps,cost_usd,wall_ms,tool_failures,agent_failures,reward_failures,"
                            "validation_success,validation_reward\r\n");
    const char *runs[2] = {"\"lr=0.1\"", "\"loss_type=\"\"dapo\"\"<b>\""};
    int seeds[2] = {2, 1};
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < seeds[r]; k++) {
            len += (size_t)snprintf(s + len, cap - len, "%s,%d,0,,,,,,,,,,,,,,,,,,,,,,0.1,0.1\r\n", runs[r], k + 1);
            for (int i = 1; i <= iters; i++) {
                double v = (double)i / iters;
                len += (size_t)snprintf(s + len, cap - len,
                                        "%s,%d,%d,%g,%g,0.1,%g,0.01,0.01,1.5,0,0,0,0,0,0.2,10,8,20,0.001,5.0,0,0,0",
                                        runs[r], k + 1, i, 1 - v, v, v);
                if (i % 2 == 0 || i == iters)
                    len += (size_t)snprintf(s + len, cap - len, ",%g,%g\r\n", v, v);
                else
                    len += (size_t)snprintf(s + len, cap - len, ",,\r\n");
            }
        }
    return s;
}

static json_t *make_report(void)
{
    json_error_t e;
    json_t *r = json_loads(
        "{\"experiment\": \"exp " XSS " & 'q'\", \"agent\": \"calc\\\"<x>\", \"training_queries\": 200,"
        " \"evaluation_queries\": 50, \"validation\": \"held out\", \"iterations\": 7, \"trajectories\": 56,"
        " \"wall_ms\": 1234.5, \"blas_kernel\": \"Haswell\", \"p_value\": 0.00123, \"p_value_reward\": 0.5,"
        " \"only_baseline_solved\": 1, \"only_trained_solved\": 9, \"success_test\": \"exact McNemar\","
        " \"reward_test\": \"sign-flip\", \"interval_across_seeds\": \"Student t\","
        " \"random\": {\"success_rate\": 0.1, \"success_rate_ci95\": [0.05, 0.2], \"avg_reward\": 0.1},"
        " \"baseline\": {\"success_rate\": 0.2, \"success_rate_ci95\": [0.11, 0.31], \"avg_reward\": 0.2},"
        " \"trained\": {\"success_rate\": 0.9, \"success_rate_ci95\": [0.81, 0.95], \"avg_reward\": 0.9},"
        " \"selected\": {\"iteration\": 6, \"validation_success_rate\": 0.85, \"validation_queries\": 40},"
        " \"config\": {\"note\": \"" XSS "\", \"n_iterations\": 7},"
        " \"seeds\": [{\"seed\": 1, \"trained\": {\"success_rate\": 0.9}}, {\"seed\": 2, \"trained\":"
        " {\"success_rate\": 0.8}}],"
        " \"mean\": {\"trained_success_rate\": {\"mean\": 0.85, \"ci95\": [0.2, 1.5]}},"
        " \"sweep_selected_by\": \"mean validation success\","
        " \"runs\": [{\"run\": \"lr=0.1\", \"seeds\": [{\"seed\": 1, \"trained\": {\"success_rate\": 0.9}},"
        " {\"seed\": 2, \"trained\": {\"success_rate\": 0.8}}], \"mean\": {\"trained_success_rate\": {\"mean\":"
        " 0.85, \"ci95\": [0.2, 1.5]}}}, {\"run\": \"loss_type=\\\"dapo\\\"<b>\", \"seeds\": [],"
        " \"mean\": {\"trained_success_rate\": {\"mean\": 0.5, \"ci95\": [0.4, 0.6]}}}]}",
        0, &e);
    if (r == NULL)
        fprintf(stderr, "report JSON: %s at %d\n", e.text, e.position);
    return r;
}

int main(void)
{
    const int iters = 7;
    char *csv = make_csv(iters);
    json_t *report = make_report();
    CHECK(report != NULL, "the test's report parses");
    char *page = NULL;
    size_t len = 0;
    ac_err_t err = AC_ERR_INIT;
    CHECK(ac_report_html_render(report, csv, &page, &len, &err) == 0, "renders");
    CHECK(page != NULL && strlen(page) == len, "the page is NUL-terminated text of len bytes");
    if (page == NULL)
        return check_done(__FILE__);

    /* curves: 7 charts, each with 3 paths (run 1 seeds 1 and 2, run 2 seed 1) */
    CHECK(count(page, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\"") == 7, "seven charts");
    CHECK(count(page, "<path class=\"series\"") == 7 * 3, "one path per run and seed in every chart");
    CHECK(path_points(page, "<path class=\"series\" data-metric=\"avg_reward\" data-run=\"lr=0.1\" data-seed=\"2\"") ==
              iters,
          "training reward: one point per iteration (iteration 0 has none)");
    CHECK(path_points(page, "<path class=\"series\" data-metric=\"validation_success\" data-run=\"lr=0.1\" "
                            "data-seed=\"1\"") == 1 + iters / 2 + (iters % 2),
          "validation: iteration 0, every 2nd and the last");
    CHECK(count(page, "<circle class=\"marker\"") == 3 * (1 + iters / 2 + (iters % 2)),
          "validation points are marked");
    CHECK(path_points(page, "<path class=\"series\" data-metric=\"loss\" data-run=\"loss_type=&quot;dapo&quot;&lt;b&gt;\" "
                            "data-seed=\"1\"") == iters,
          "a run label with CSV-doubled quotes is read whole, and escaped");
    CHECK(strstr(page, "lr=0.1 &middot; seed 2") != NULL, "the legend names run and seed");

    /* escaping: nothing from the experiment becomes markup */
    CHECK(strstr(page, XSS) == NULL && strstr(page, "<b>") == NULL && strstr(page, "<x>") == NULL,
          "no string from the experiment appears unescaped");
    CHECK(strstr(page, "exp &lt;img src=x onerror=alert(1)&gt; &amp; &#39;q&#39;") != NULL,
          "the experiment's name is escaped in the title and heading");
    CHECK(count(page, "&lt;img src=x onerror=alert(1)&gt;") >= 3, "the config value is escaped too");
    CHECK(strstr(page, "calc&quot;&lt;x&gt;") != NULL, "the agent's name is escaped");
    CHECK(strstr(page, "<script") == NULL, "the page has no script");
    CHECK(strstr(page, "Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"") != NULL,
          "the page forbids scripts itself");

    /* tables */
    CHECK(strstr(page, "0.900 <span class=\"ci\">[0.810, 0.950]</span>") != NULL, "trained success with its interval");
    CHECK(strstr(page, "0.200 <span class=\"ci\">[0.110, 0.310]</span>") != NULL, "baseline with its interval");
    CHECK(strstr(page, "p = 0.00123") != NULL, "the McNemar p-value");
    CHECK(strstr(page, "<h2>Seeds</h2>") != NULL && strstr(page, "0.850 <span class=\"ci\">[0.200, 1.500]</span>"),
          "the seeds table with the mean and its interval");
    CHECK(strstr(page, "<h2>Sweep</h2>") != NULL && count(page, "<tr class=\"selected\"><td>lr=0.1</td>") == 1,
          "the sweep's runs side by side, the selected one marked");
    CHECK(strstr(page, "<td>loss_type=&quot;dapo&quot;&lt;b&gt;</td>") != NULL, "the other run is listed, escaped");
    free(page);

    /* no rows, no curves; a CSV without the key columns is refused */
    CHECK(ac_report_html_render(report, "run,seed,iteration,loss\n", &page, &len, &err) == 0 &&
              strstr(page, "metrics.csv has no rows") != NULL && strstr(page, "<path") == NULL,
          "a header alone: the tables and no curves");
    free(page);
    page = NULL;
    CHECK(ac_report_html_render(report, "a,b,c\n1,2,3\n", &page, &len, &err) == -1 &&
              err.code == AC_ERR_INVALID_PARAMS && page == NULL,
          "a CSV without run, seed and iteration is refused");
    ac_err_clear(&err);

    /* written through a temporary file */
    char dir[] = "/tmp/ac-report-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "temp dir");
    char csv_path[128], html_path[128];
    snprintf(csv_path, sizeof csv_path, "%s/metrics.csv", dir);
    snprintf(html_path, sizeof html_path, "%s/report.html", dir);
    FILE *f = fopen(csv_path, "w");
    fputs(csv, f);
    fclose(f);
    CHECK(ac_report_html_write(html_path, report, csv_path, &err) == 0, "written");
    char *back = ac_file_read(html_path, NULL);
    CHECK(back != NULL && count(back, "<path class=\"series\"") == 21, "the file holds the page");
    free(back);
    unlink(html_path);
    unlink(csv_path);
    CHECK(ac_report_html_write(html_path, report, csv_path, &err) == -1 && strstr(err.message, "metrics.csv"),
          "a missing metrics.csv is an error naming it");
    ac_err_clear(&err);
    rmdir(dir);

    free(csv);
    json_decref(report);
    return check_done(__FILE__);
}
