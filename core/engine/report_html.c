#include "engine/report_html.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"

/* ---- metrics.csv ----------------------------------------------------------------------------
 * The rows experiment.c writes: a header line, then one row per (run, seed, iteration); run is a
 * quoted label ("" without a sweep), empty cells are values an iteration does not have (iteration
 * 0 has only validation, validation only every eval_interval). */

enum { C_ITERATION, C_LOSS, C_REWARD, C_SUCCESS, C_KL, C_ENTROPY, C_CLIP, C_VAL_SUCCESS, C_VAL_REWARD, N_COLS };

static const char *const col_names[N_COLS] = {"iteration", "loss", "avg_reward", "success_rate", "kl",
                                              "entropy", "clip_fraction", "validation_success",
                                              "validation_reward"};

typedef struct series {
    char *run;
    long long seed;
    size_t n, cap;
    double *rows; /* (n, N_COLS); NAN where the cell was empty */
} series_t;

typedef struct curves {
    series_t *s;
    size_t n, cap;
} curves_t;

static void curves_free(curves_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->s[i].run);
        free(c->s[i].rows);
    }
    free(c->s);
    c->s = NULL;
    c->n = c->cap = 0;
}

#define MAX_FIELDS 64

/* Splits one CSV record starting at *p into fields (RFC 4180 quoting: "" inside quotes is one
 * quote), unescaping in place. Moves *p past the record's line end. Returns the field count. */
static int csv_record(char **p, char *fields[MAX_FIELDS])
{
    char *s = *p, *w = s;
    int n = 0;
    for (;;) {
        char *start = w;
        if (*s == '"') {
            s++;
            for (;;) {
                if (*s == '\0')
                    break;
                if (*s == '"') {
                    if (s[1] == '"') {
                        *w++ = '"';
                        s += 2;
                        continue;
                    }
                    s++;
                    break;
                }
                *w++ = *s++;
            }
        }
        while (*s != '\0' && *s != ',' && *s != '\n' && *s != '\r')
            *w++ = *s++;
        char end = *s;
        *w = '\0';
        if (n < MAX_FIELDS)
            fields[n++] = start;
        if (end == ',') {
            s++;
            w = s;
            /* fields are written left of where they were read: w never passes s */
            continue;
        }
        /* the line end may have been overwritten by the NUL: go by the saved character */
        if (end == '\r') {
            s++;
            if (*s == '\n')
                s++;
        } else if (end == '\n') {
            s++;
        }
        *p = s;
        return n;
    }
}

static series_t *series_for(curves_t *c, const char *run, long long seed, ac_err_t *err)
{
    if (c->n > 0 && c->s[c->n - 1].seed == seed && strcmp(c->s[c->n - 1].run, run) == 0)
        return &c->s[c->n - 1]; /* rows come grouped: the last series is the usual one */
    for (size_t i = 0; i < c->n; i++)
        if (c->s[i].seed == seed && strcmp(c->s[i].run, run) == 0)
            return &c->s[i];
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        series_t *s = realloc(c->s, cap * sizeof *s);
        if (s == NULL) {
            ac_err_set(err, AC_ERR_INTERNAL, "report.html: out of memory");
            return NULL;
        }
        c->s = s;
        c->cap = cap;
    }
    series_t *s = &c->s[c->n];
    *s = (series_t){strdup(run), seed, 0, 0, NULL};
    if (s->run == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "report.html: out of memory");
        return NULL;
    }
    c->n++;
    return s;
}

static int parse_csv(const char *text, curves_t *c, ac_err_t *err)
{
    char *copy = strdup(text), *p = copy;
    if (copy == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "report.html: out of memory");
    char *f[MAX_FIELDS];
    int idx[N_COLS], i_run = -1, i_seed = -1;
    int nf = *p ? csv_record(&p, f) : 0;
    for (int k = 0; k < N_COLS; k++)
        idx[k] = -1;
    for (int i = 0; i < nf; i++) {
        if (strcmp(f[i], "run") == 0)
            i_run = i;
        else if (strcmp(f[i], "seed") == 0)
            i_seed = i;
        for (int k = 0; k < N_COLS; k++)
            if (strcmp(f[i], col_names[k]) == 0)
                idx[k] = i;
    }
    if (i_run < 0 || i_seed < 0 || idx[C_ITERATION] < 0) {
        free(copy);
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "metrics.csv: the header lacks run, seed or iteration");
    }
    while (*p) {
        nf = csv_record(&p, f);
        if (nf <= i_run || nf <= i_seed || nf <= idx[C_ITERATION] || f[idx[C_ITERATION]][0] == '\0')
            continue; /* a blank or cut-short line (a run still writing) */
        series_t *s = series_for(c, f[i_run], strtoll(f[i_seed], NULL, 10), err);
        if (s == NULL) {
            free(copy);
            return -1;
        }
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 64;
            double *rows = realloc(s->rows, cap * N_COLS * sizeof *rows);
            if (rows == NULL) {
                free(copy);
                return ac_err_set(err, AC_ERR_INTERNAL, "report.html: out of memory");
            }
            s->rows = rows;
            s->cap = cap;
        }
        double *row = s->rows + s->n * N_COLS;
        for (int k = 0; k < N_COLS; k++) {
            char *end = NULL;
            const char *cell = idx[k] >= 0 && idx[k] < nf ? f[idx[k]] : "";
            double v = cell[0] ? strtod(cell, &end) : NAN;
            row[k] = end != NULL && *end == '\0' && isfinite(v) ? v : NAN;
        }
        s->n++;
    }
    free(copy);
    return 0;
}

/* ---- output helpers ------------------------------------------------------------------------- */

static void esc(FILE *o, const char *s)
{
    for (; s != NULL && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", o); break;
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '"': fputs("&quot;", o); break;
        case '\'': fputs("&#39;", o); break;
        default: fputc(*s, o);
        }
    }
}

static const char *str_of(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

static double num_of(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void num(FILE *o, double v, const char *fmt)
{
    if (isnan(v))
        fputs("&ndash;", o);
    else
        fprintf(o, fmt, v);
}

/* "0.98 [0.91, 1.00]": a value and its 95 % interval ([lo, hi] array; absent: the value alone) */
static void with_ci(FILE *o, double v, const json_t *ci)
{
    num(o, v, "%.3f");
    if (json_array_size(ci) == 2)
        fprintf(o, " <span class=\"ci\">[%.3f, %.3f]</span>", json_number_value(json_array_get(ci, 0)),
                json_number_value(json_array_get(ci, 1)));
}

static void mean_ci(FILE *o, const json_t *mean, const char *key)
{
    json_t *m = json_object_get(mean, key);
    with_ci(o, num_of(m, "mean"), json_object_get(m, "ci95"));
}

/* ---- charts ----------------------------------------------------------------------------------- */

#define W 520
#define H 240
#define ML 56 /* margins: left (tick labels), right, top, bottom */
#define MR 12
#define MT 12
#define MB 36

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
#define N_PALETTE (sizeof palette / sizeof palette[0])

/* A tick step of 1, 2 or 5 times a power of ten giving about n ticks over range. */
static double nice_step(double range, int n)
{
    double raw = range / n, p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

typedef struct chart {
    const char *title;
    int col;
    int unit_range; /* y from 0 to 1 (rates) */
    int markers;    /* sparse series (validation): draw each point */
} chart_t;

/* A chart's scales: data x in [0, xmax] and y in [ymin, ymax] onto the plot area. */
typedef struct frame {
    double xmax, ymin, ymax, xstep, ystep, pw, ph;
} frame_t;

static double fx(const frame_t *f, double v) { return ML + v / f->xmax * f->pw; }
static double fy(const frame_t *f, double v) { return MT + (1.0 - (v - f->ymin) / (f->ymax - f->ymin)) * f->ph; }

/* The scales that show every point of the chart's column, on round ticks; 0 when no point. */
static size_t chart_frame(const curves_t *c, const chart_t *ch, frame_t *f)
{
    double xmax = 1, ymin = INFINITY, ymax = -INFINITY;
    size_t points = 0;
    for (size_t i = 0; i < c->n; i++)
        for (size_t r = 0; r < c->s[i].n; r++) {
            const double *row = c->s[i].rows + r * N_COLS;
            if (isnan(row[ch->col]) || isnan(row[C_ITERATION]))
                continue;
            points++;
            xmax = fmax(xmax, row[C_ITERATION]);
            ymin = fmin(ymin, row[ch->col]);
            ymax = fmax(ymax, row[ch->col]);
        }
    if (points == 0)
        return 0;
    double data_min = ymin;
    if (ch->unit_range) {
        ymin = fmin(0, ymin);
        ymax = fmax(1, ymax);
    } else if (ymax - ymin < 1e-12) {
        double pad = fabs(ymax) > 1e-12 ? fabs(ymax) * 0.1 : 0.5;
        ymin -= pad;
        ymax += pad;
    }
    if (data_min >= 0 && ymin < 0) /* losses and fractions: no axis below zero that no value needs */
        ymin = 0;
    f->ystep = nice_step(ymax - ymin, 4), f->xstep = nice_step(xmax, 5);
    f->ymin = floor(ymin / f->ystep) * f->ystep;
    f->ymax = ceil(ymax / f->ystep) * f->ystep;
    f->xmax = xmax;
    f->pw = W - ML - MR, f->ph = H - MT - MB;
    return points;
}

static void chart_axes(FILE *o, const frame_t *f)
{
    fprintf(o, "<rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\"/>\n", ML, MT, f->pw, f->ph);
    for (double t = f->ymin; t <= f->ymax + f->ystep * 1e-6; t += f->ystep) {
        double y = fy(f, t);
        fprintf(o, "<line class=\"grid\" x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
                   "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n",
                ML, ML + f->pw, y, y, ML - 6, y + 4, fabs(t) < f->ystep * 1e-6 ? 0.0 : t);
    }
    for (double t = 0; t <= f->xmax + f->xstep * 1e-6; t += f->xstep) {
        double x = fx(f, t);
        fprintf(o, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.1f\"/>"
                   "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.6g</text>\n",
                x, x, MT, MT + f->ph, x, MT + f->ph + 16, t);
    }
    fprintf(o, "<text class=\"axis\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">iteration</text>\n",
            ML + f->pw / 2, H - 4);
}

/* One run's line (and its points, for sparse series) in the run's colour. */
static void chart_series(FILE *o, const series_t *s, const chart_t *ch, const frame_t *f, const char *color,
                         const char *fallback_label)
{
    size_t k = 0;
    for (size_t r = 0; r < s->n; r++) {
        const double *row = s->rows + r * N_COLS;
        if (isnan(row[ch->col]) || isnan(row[C_ITERATION]))
            continue;
        if (k == 0) {
            fprintf(o, "<path class=\"series\" data-metric=\"%s\" data-run=\"", col_names[ch->col]);
            esc(o, s->run[0] ? s->run : fallback_label);
            fprintf(o, "\" data-seed=\"%lld\" stroke=\"%s\" d=\"M", s->seed, color);
        }
        fprintf(o, "%s%.1f,%.1f", k == 0 ? "" : " L", fx(f, row[C_ITERATION]), fy(f, row[ch->col]));
        k++;
    }
    if (k == 0)
        return;
    fprintf(o, "\"/>\n");
    for (size_t r = 0; ch->markers && r < s->n; r++) {
        const double *row = s->rows + r * N_COLS;
        if (!isnan(row[ch->col]) && !isnan(row[C_ITERATION]))
            fprintf(o, "<circle class=\"marker\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>",
                    fx(f, row[C_ITERATION]), fy(f, row[ch->col]), color);
    }
    if (ch->markers)
        fputc('\n', o);
}

static void chart(FILE *o, const curves_t *c, const chart_t *ch, const char *fallback_label)
{
    frame_t f;
    fprintf(o, "<figure class=\"chart\"><figcaption>");
    esc(o, ch->title);
    fprintf(o, "</figcaption>\n");
    if (chart_frame(c, ch, &f) == 0) {
        fprintf(o, "<p class=\"none\">no data</p></figure>\n");
        return;
    }
    fprintf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" data-metric=\"%s\" viewBox=\"0 0 %d %d\" "
               "width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"",
            col_names[ch->col], W, H, W, H);
    esc(o, ch->title);
    fprintf(o, "\">\n");
    chart_axes(o, &f);
    for (size_t i = 0; i < c->n; i++)
        chart_series(o, &c->s[i], ch, &f, palette[i % N_PALETTE], fallback_label);
    fprintf(o, "</svg></figure>\n");
}

static void legend(FILE *o, const curves_t *c, const char *fallback_label)
{
    fprintf(o, "<ul class=\"legend\">\n");
    for (size_t i = 0; i < c->n; i++) {
        fprintf(o, "<li><svg width=\"18\" height=\"10\"><rect width=\"18\" height=\"10\" fill=\"%s\"/></svg> ",
                palette[i % N_PALETTE]);
        esc(o, c->s[i].run[0] ? c->s[i].run : fallback_label);
        fprintf(o, " &middot; seed %lld</li>\n", c->s[i].seed);
    }
    fprintf(o, "</ul>\n");
}

/* ---- tables ----------------------------------------------------------------------------------- */

static void side_row(FILE *o, const char *name, const json_t *side)
{
    fprintf(o, "<tr><th>%s</th><td>", name);
    with_ci(o, num_of(side, "success_rate"), json_object_get(side, "success_rate_ci95"));
    fprintf(o, "</td><td>");
    num(o, num_of(side, "avg_reward"), "%.3f");
    fprintf(o, "</td><td>");
    num(o, num_of(side, "avg_steps"), "%.2f");
    fprintf(o, "</td><td>");
    num(o, num_of(side, "tool_accuracy"), "%.3f");
    fprintf(o, "</td><td>");
    num(o, num_of(side, "queries"), "%.0f");
    fprintf(o, "</td></tr>\n");
}

static void evaluation_table(FILE *o, const json_t *r)
{
    fprintf(o, "<h2>Held-out evaluation</h2>\n<table class=\"eval\">\n<thead><tr><th>policy</th><th>success "
               "[95 %% Wilson]</th><th>avg reward</th><th>avg steps</th><th>tool accuracy</th><th>queries</th>"
               "</tr></thead>\n<tbody>\n");
    side_row(o, "random", json_object_get(r, "random"));
    side_row(o, "baseline (untrained)", json_object_get(r, "baseline"));
    side_row(o, "trained", json_object_get(r, "trained"));
    fprintf(o, "</tbody></table>\n<p class=\"tests\">");
    esc(o, str_of(r, "success_test"));
    fprintf(o, ": p = ");
    num(o, num_of(r, "p_value"), "%.3g");
    fprintf(o, " (solved only by the baseline: ");
    num(o, num_of(r, "only_baseline_solved"), "%.0f");
    fprintf(o, ", only by the trained policy: ");
    num(o, num_of(r, "only_trained_solved"), "%.0f");
    fprintf(o, "). Rewards, ");
    esc(o, str_of(r, "reward_test"));
    fprintf(o, ": p = ");
    num(o, num_of(r, "p_value_reward"), "%.3g");
    json_t *sel = json_object_get(r, "selected");
    fprintf(o, ".<br>The trained policy is the one the validation set selected: iteration ");
    num(o, num_of(sel, "iteration"), "%.0f");
    fprintf(o, " (validation success ");
    num(o, num_of(sel, "validation_success_rate"), "%.3f");
    fprintf(o, " on ");
    num(o, num_of(sel, "validation_queries"), "%.0f");
    fprintf(o, " queries).</p>\n");
}

static void seeds_table(FILE *o, const json_t *r)
{
    json_t *seeds = json_object_get(r, "seeds");
    if (json_array_size(seeds) < 2)
        return;
    fprintf(o, "<h2>Seeds</h2>\n<table class=\"seeds\">\n<thead><tr><th>seed</th><th>random</th><th>baseline</th>"
               "<th>trained [95 %%]</th><th>validation (iteration)</th><th>p</th></tr></thead>\n<tbody>\n");
    size_t i;
    json_t *s;
    json_array_foreach(seeds, i, s)
    {
        json_t *sel = json_object_get(s, "selected");
        fprintf(o, "<tr><td>");
        num(o, num_of(s, "seed"), "%.0f");
        fprintf(o, "</td><td>");
        num(o, num_of(json_object_get(s, "random"), "success_rate"), "%.3f");
        fprintf(o, "</td><td>");
        num(o, num_of(json_object_get(s, "baseline"), "success_rate"), "%.3f");
        fprintf(o, "</td><td>");
        with_ci(o, num_of(json_object_get(s, "trained"), "success_rate"),
                json_object_get(json_object_get(s, "trained"), "success_rate_ci95"));
        fprintf(o, "</td><td>");
        num(o, num_of(sel, "validation_success_rate"), "%.3f");
        fprintf(o, " (");
        num(o, num_of(sel, "iteration"), "%.0f");
        fprintf(o, ")</td><td>");
        num(o, num_of(s, "p_value"), "%.3g");
        fprintf(o, "</td></tr>\n");
    }
    json_t *mean = json_object_get(r, "mean");
    fprintf(o, "<tr class=\"mean\"><th>mean [95 %%]</th><td>");
    mean_ci(o, mean, "random_success_rate");
    fprintf(o, "</td><td>");
    mean_ci(o, mean, "baseline_success_rate");
    fprintf(o, "</td><td>");
    mean_ci(o, mean, "trained_success_rate");
    fprintf(o, "</td><td>");
    mean_ci(o, mean, "validation_success_rate");
    fprintf(o, "</td><td></td></tr>\n</tbody></table>\n<p class=\"tests\">");
    esc(o, str_of(r, "interval_across_seeds"));
    fprintf(o, "</p>\n");
}

static void runs_table(FILE *o, const json_t *r)
{
    json_t *runs = json_object_get(r, "runs");
    if (json_array_size(runs) < 2)
        return;
    fprintf(o, "<h2>Sweep</h2>\n<table class=\"runs\">\n<thead><tr><th>run</th><th>trained success [95 %%]</th>"
               "<th>baseline</th><th>random</th><th>validation success</th><th></th></tr></thead>\n<tbody>\n");
    /* the winner is the run whose seeds the top level reports */
    json_t *winner_seeds = json_object_get(r, "seeds");
    size_t i;
    json_t *run;
    json_array_foreach(runs, i, run)
    {
        json_t *mean = json_object_get(run, "mean");
        int selected = json_equal(json_object_get(run, "seeds"), winner_seeds);
        fprintf(o, "<tr%s><td>", selected ? " class=\"selected\"" : "");
        esc(o, str_of(run, "run"));
        fprintf(o, "</td><td>");
        mean_ci(o, mean, "trained_success_rate");
        fprintf(o, "</td><td>");
        mean_ci(o, mean, "baseline_success_rate");
        fprintf(o, "</td><td>");
        mean_ci(o, mean, "random_success_rate");
        fprintf(o, "</td><td>");
        mean_ci(o, mean, "validation_success_rate");
        fprintf(o, "</td><td>%s</td></tr>\n", selected ? "selected on validation" : "");
    }
    fprintf(o, "</tbody></table>\n<p class=\"tests\">The runs are chosen between by ");
    esc(o, str_of(r, "sweep_selected_by"));
    fprintf(o, "; the evaluation data chooses nothing.</p>\n");
}

static void config_table(FILE *o, const json_t *r)
{
    json_t *cfg = json_object_get(r, "config");
    if (!json_is_object(cfg))
        return;
    fprintf(o, "<details><summary>Configuration of the selected run</summary>\n<table class=\"config\"><tbody>\n");
    const char *k;
    json_t *v;
    json_object_foreach(cfg, k, v)
    {
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
        fprintf(o, "<tr><th>");
        esc(o, k);
        fprintf(o, "</th><td>");
        esc(o, text != NULL ? text : "?");
        fprintf(o, "</td></tr>\n");
        free(text);
    }
    fprintf(o, "</tbody></table></details>\n");
}

static const char style[] =
    "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}"
    "h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em}"
    ".meta{color:#555}table{border-collapse:collapse;margin:.5em 0}th,td{padding:.3em .7em;border-bottom:1px "
    "solid #ddd;text-align:left}td{font-variant-numeric:tabular-nums}.ci{color:#666}.tests{color:#444;"
    "max-width:60em}tr.selected{background:#eef6ff}tr.mean{background:#f6f6f6}"
    ".charts{display:flex;flex-wrap:wrap;gap:1em}figure.chart{margin:0}figcaption{font-weight:600}"
    ".plot .frame{fill:none;stroke:#999}.plot .grid{stroke:#eee}.plot .tick,.plot .axis{font-size:11px;"
    "fill:#555}.plot path.series{fill:none;stroke-width:1.5}.legend{list-style:none;padding:0;display:flex;"
    "flex-wrap:wrap;gap:.4em 1.4em}.none{color:#888}";

int ac_report_html_render(const json_t *report, const char *csv, char **out, size_t *out_len, ac_err_t *err)
{
    curves_t c = {0};
    if (csv != NULL && csv[0] != '\0' && parse_csv(csv, &c, err) != 0) {
        curves_free(&c);
        return -1;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    if (o == NULL) {
        curves_free(&c);
        return ac_err_set(err, AC_ERR_INTERNAL, "report.html: out of memory");
    }
    const char *name = str_of(report, "experiment");
    /* no script may run, whatever a string held: the page's own policy says so */
    fprintf(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
               "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
               "'unsafe-inline'\">\n<title>");
    esc(o, name);
    fprintf(o, " &ndash; agentcore report</title>\n<style>%s</style>\n</head><body>\n<h1>", style);
    esc(o, name);
    fprintf(o, "</h1>\n<p class=\"meta\">agent <strong>");
    esc(o, str_of(report, "agent"));
    fprintf(o, "</strong> &middot; ");
    num(o, num_of(report, "training_queries"), "%.0f");
    fprintf(o, " training and ");
    num(o, num_of(report, "evaluation_queries"), "%.0f");
    fprintf(o, " evaluation queries &middot; validation ");
    esc(o, str_of(report, "validation"));
    fprintf(o, " &middot; ");
    num(o, num_of(report, "iterations"), "%.0f");
    fprintf(o, " iterations, ");
    num(o, num_of(report, "trajectories"), "%.0f");
    fprintf(o, " trajectories, ");
    num(o, num_of(report, "wall_ms") / 1000.0, "%.1f");
    fprintf(o, " s (first seed of the selected run) &middot; OpenBLAS kernel ");
    esc(o, str_of(report, "blas_kernel"));
    fprintf(o, "</p>\n");

    evaluation_table(o, report);
    seeds_table(o, report);
    runs_table(o, report);

    static const chart_t charts[] = {
        {"Training reward (mean per iteration)", C_REWARD, 0, 0},
        {"Training success rate", C_SUCCESS, 1, 0},
        {"Validation success rate (greedy, every eval_interval)", C_VAL_SUCCESS, 1, 1},
        {"Loss", C_LOSS, 0, 0},
        {"KL to the reference policy", C_KL, 0, 0},
        {"Entropy", C_ENTROPY, 0, 0},
        {"Clip fraction", C_CLIP, 0, 0},
    };
    fprintf(o, "<h2>Learning curves</h2>\n");
    if (c.n == 0) {
        fprintf(o, "<p class=\"none\">metrics.csv has no rows.</p>\n");
    } else {
        legend(o, &c, name);
        fprintf(o, "<div class=\"charts\">\n");
        for (size_t i = 0; i < sizeof charts / sizeof charts[0]; i++)
            chart(o, &c, &charts[i], name);
        fprintf(o, "</div>\n");
    }
    config_table(o, report);
    fprintf(o, "<p class=\"meta\">Written by agentcore train next to report.json and metrics.csv.</p>\n"
               "</body></html>\n");
    int bad = ferror(o);
    fclose(o);
    curves_free(&c);
    if (bad || buf == NULL) {
        free(buf);
        return ac_err_set(err, AC_ERR_INTERNAL, "report.html: out of memory");
    }
    *out = buf;
    *out_len = len;
    return 0;
}

int ac_report_html_write(const char *html_path, const json_t *report, const char *csv_path, ac_err_t *err)
{
    char *csv = ac_file_read(csv_path, NULL);
    if (csv == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "cannot read %s: %s", csv_path, strerror(errno));
    char *page = NULL;
    size_t len = 0;
    int rc = ac_report_html_render(report, csv, &page, &len, err);
    free(csv);
    if (rc != 0)
        return -1;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", html_path) >= (int)sizeof tmp) {
        free(page);
        return ac_err_set(err, AC_ERR_INTERNAL, "%s: path too long", html_path);
    }
    FILE *f = fopen(tmp, "w");
    int ok = f != NULL && fwrite(page, 1, len, f) == len;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    free(page);
    if (!ok || rename(tmp, html_path) != 0) {
        int e = errno;
        unlink(tmp);
        return ac_err_set(err, AC_ERR_INTERNAL, "cannot write %s: %s", html_path, strerror(e));
    }
    return 0;
}
