#include "engine/experiment.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/file.h"
#include "base/stats.h"
#include "base/train_config.h"
#include "engine/blas.h"
#include "engine/dataset.h"
#include "engine/eval.h"
#include "engine/infer.h"
#include "engine/keyword.h"
#include "engine/report_html.h"
#include "engine/trainer.h"
#include "lua/lua_host.h"
#include "lua/plugin.h"

#define MAX_RUNS 64
#define MAX_SEEDS 64

typedef struct experiment {
    const ac_experiment_opts_t *opts;
    char dir[1024]; /* the experiment file's directory: relative paths start here */
    json_t *spec;   /* the file's table */
    const char *name, *agent, *reward, *validator;
    json_t *training;   /* as given (a run holds validation out of it when none is given) */
    json_t *validation; /* given by the data, or NULL */
    json_t *evaluation; /* reports only */
    json_t *tests;      /* more report-only sets, by name (the generator's `tests`), or NULL */
    int seeds;
    ac_lua_host_t *host;
    FILE *csv;
    char out_dir[2048]; /* runs/<name> or --out */
} experiment_t;

static int bad(ac_err_t *err, const experiment_t *x, const char *fmt, const char *a)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a);
    return ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s: %s", x->opts->path, msg);
}

static void resolve(char *out, size_t len, const experiment_t *x, const char *rel)
{
    if (rel[0] == '/')
        snprintf(out, len, "%s", rel);
    else
        snprintf(out, len, "%s/%s", x->dir, rel);
}

/* Runs a Lua file in the plugin sandbox and returns its result as JSON. `call`, when given,
 * is appended to the module's value ("(...).generate(1, 200, 50)"): the module is wrapped on its
 * first line, so error messages keep the file's own line numbers. */
static json_t *run_lua_file(experiment_t *x, const char *path, const char *call, ac_err_t *err)
{
    char *text = ac_file_read(path, NULL);
    if (text == NULL) {
        ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    size_t n = strlen(text) + (call ? strlen(call) : 0) + 64;
    char *code = malloc(n);
    char chunk[1100];
    snprintf(chunk, sizeof chunk, "@%s", path);
    if (call != NULL)
        snprintf(code, n, "return (function(...) %s\nend)()%s", text, call);
    else
        snprintf(code, n, "%s", text);
    free(text);
    json_t *result = NULL;
    int rc = ac_lua_host_run(x->host, code, chunk, &result, err);
    free(code);
    return rc == 0 ? result : NULL;
}

static const char *str_field(json_t *o, const char *k, const char *def)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : def;
}

/* ---- the keys of an experiment file ------------------------------------------------------------
 * Declared once: load_spec checks a file against them (unknown keys, types, ranges) and
 * ac_experiment_reference documents them (docs/configuration.md). */

typedef enum xkey_type { X_STRING, X_INT, X_TABLE } xkey_type_t;

typedef struct xkey {
    const char *section; /* "" or "data" */
    const char *key;
    xkey_type_t type;
    long long min, max;  /* X_INT */
    const char *def_doc; /* the default, as the reference words it */
    const char *expect;  /* X_TABLE: what the error says the value must be */
    const char *doc;
} xkey_t;

static const xkey_t xkeys[] = {
    {"", "name", X_STRING, 0, 0, "the agent's name", NULL,
     "names the experiment: the report's `experiment` and the output directory runs/<name>"},
    {"", "agent", X_STRING, 0, 0, "required", NULL, "the agent plugin: plugins/agents/<agent>.lua"},
    {"", "reward", X_STRING, 0, 0, "the agent's name", NULL, "the reward plugin: plugins/rewards/<reward>.lua"},
    {"", "validator", X_STRING, 0, 0, "`\"default\"`", NULL,
     "the data validator: plugins/validators/<validator>.lua checks the data as a job's would be"},
    {"", "seed", X_INT, 0, 2147483647, "`1`", NULL,
     "the first seed (`--seed` overrides it); seed k of a run is seed + k; also the generator's, unless "
     "`data.seed` is set"},
    {"", "seeds", X_INT, 1, MAX_SEEDS, "`1`", NULL,
     "seeds per run (`--seeds` overrides it): per-seed results, their mean and a 95 % interval"},
    {"", "data", X_TABLE, 0, 0, "required",
     "must be a table: {generator = FILE, ...} or {training = FILE, evaluation = FILE}",
     "where the queries come from: a generator, or JSON files (below)"},
    {"", "config", X_TABLE, 0, 0, "`{}`: the GRPO defaults", "must be a table of GRPO settings",
     "the GRPO config (above) of every run"},
    {"", "sweep", X_TABLE, 0, 0, "none", "must map config keys to lists of values",
     "config key -> list of values: one run per combination (at most 64), reported side by side; the best "
     "mean validation success is selected"},
    {"", "description", X_STRING, 0, 0, "none", NULL, "free text for people; not used"},
    {"data", "generator", X_STRING, 0, 0, "none", NULL,
     "a Lua file (relative to the experiment file, run in the plugin sandbox with 5e9 instructions and 120 s for "
     "its one call instead of the per-call plugin limits) whose module has "
     "generate(seed, n_train, n_eval) returning {training_data, evaluation_data[, validation_data][, tests]}: "
     "tests maps names to more query sets, each reported like the evaluation (never selecting)"},
    {"data", "seed", X_INT, 0, 2147483647, "the experiment's seed", NULL, "the generator's seed"},
    {"data", "n_train", X_INT, 1, 1000000, "`200`", NULL, "training queries the generator makes"},
    {"data", "n_eval", X_INT, 1, 1000000, "`50`", NULL, "evaluation queries the generator makes"},
    {"data", "training", X_STRING, 0, 0, "none", NULL, "without a generator: a JSON file of training queries"},
    {"data", "validation", X_STRING, 0, 0, "none", NULL,
     "a JSON file of validation queries; without it, `validation_fraction` of the training data is held out"},
    {"data", "evaluation", X_STRING, 0, 0, "none", NULL,
     "without a generator: a JSON file of evaluation queries (they only report, never select)"},
    {"data", "tests", X_TABLE, 0, 0, "none", "must map test names to JSON files",
     "without a generator: name -> a JSON file of more test queries, each reported like the evaluation"},
};
#define N_XKEYS (sizeof xkeys / sizeof xkeys[0])

/* obj's keys against the table's for section: known, and of the right type and range. */
static int check_xkeys(const experiment_t *x, json_t *obj, const char *section, ac_err_t *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        const xkey_t *f = NULL;
        for (size_t i = 0; i < N_XKEYS && f == NULL; i++)
            if (strcmp(xkeys[i].section, section) == 0 && strcmp(xkeys[i].key, k) == 0)
                f = &xkeys[i];
        char path[128];
        snprintf(path, sizeof path, "%s%s%.60s", section, section[0] ? "." : "", k);
        if (f == NULL)
            return bad(err, x, "unknown key '%s'", path);
        if (f->type == X_STRING && !json_is_string(v))
            return ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s: '%s' must be a string", x->opts->path, path);
        if (f->type == X_INT &&
            (!json_is_integer(v) || json_integer_value(v) < f->min || json_integer_value(v) > f->max))
            return ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s: '%s' must be an integer from %lld to %lld",
                              x->opts->path, path, f->min, f->max);
        if (f->type == X_TABLE && !json_is_object(v))
            return ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s: '%s' %s", x->opts->path, path, f->expect);
    }
    return 0;
}

json_t *ac_experiment_reference(void)
{
    static const char *const type_names[] = {"string", "integer", "table"};
    json_t *out = json_array();
    const char *const secs[2][2] = {
        {"", "The experiment: its plugins, seeds, data, GRPO config and sweep."},
        {"data", "Either `generator` (with `seed`, `n_train`, `n_eval`) or the JSON files `training` and "
                 "`evaluation` (with `validation` optionally)."}};
    for (int s = 0; s < 2; s++) {
        json_t *rows = json_array();
        for (size_t i = 0; i < N_XKEYS; i++) {
            const xkey_t *f = &xkeys[i];
            if (strcmp(f->section, secs[s][0]) != 0)
                continue;
            char range[64] = "";
            if (f->type == X_INT)
                snprintf(range, sizeof range, "%lld to %lld", f->min, f->max);
            json_t *row = json_pack("{s:s, s:s, s:n, s:s, s:s, s:s}", "key", f->key, "type", type_names[f->type],
                                    "default", "default_doc", f->def_doc, "range", range, "doc", f->doc);
            if (f->type == X_INT) {
                json_object_set_new(row, "min", json_integer(f->min));
                json_object_set_new(row, "max", json_integer(f->max));
            }
            json_array_append_new(rows, row);
        }
        json_array_append_new(out,
                              json_pack("{s:s, s:s, s:o}", "section", secs[s][0], "doc", secs[s][1], "keys", rows));
    }
    return out;
}

static int load_spec(experiment_t *x, ac_err_t *err)
{
    if ((x->spec = run_lua_file(x, x->opts->path, NULL, err)) == NULL)
        return -1;
    if (!json_is_object(x->spec))
        return bad(err, x, "the experiment must return a table%s", "");
    if (check_xkeys(x, x->spec, "", err) != 0)
        return -1;
    x->agent = str_field(x->spec, "agent", NULL);
    x->reward = str_field(x->spec, "reward", x->agent);
    x->validator = str_field(x->spec, "validator", "default");
    x->name = str_field(x->spec, "name", x->agent);
    if (x->agent == NULL)
        return bad(err, x, "'agent' (a plugin name) is required%s", "");
    json_t *data = json_object_get(x->spec, "data");
    if (data == NULL)
        return bad(err, x, "'data' must be a table: {generator = FILE, ...} or {training = FILE, evaluation = FILE}%s",
                   "");
    if (check_xkeys(x, data, "data", err) != 0)
        return -1;
    json_t *seeds = json_object_get(x->spec, "seeds");
    x->seeds = x->opts->seeds > 0 ? x->opts->seeds : seeds ? (int)json_integer_value(seeds) : 1;
    return 0;
}

/* data.generator: the Lua file's generate(seed, n_train, n_eval) gives every split, with these
 * budgets instead of the plugin limits' per-call ones (the state's memory limits still apply). */
#define GENERATOR_INSTRUCTIONS 5000000000ull
#define GENERATOR_WALL_MS 120000u
static int load_generated(experiment_t *x, json_t *data, const char *gen, long long seed, ac_err_t *err)
{
    char path[2048];
    json_t *s = json_object_get(data, "seed");
    long long dseed = json_is_integer(s) ? json_integer_value(s) : seed;
    json_t *nt = json_object_get(data, "n_train"), *ne = json_object_get(data, "n_eval");
    char call[128];
    snprintf(call, sizeof call, ".generate(%lld, %lld, %lld)", dseed,
             json_is_integer(nt) ? json_integer_value(nt) : 200LL,
             json_is_integer(ne) ? json_integer_value(ne) : 50LL);
    resolve(path, sizeof path, x, gen);
    /* The generator builds every split in one call: what a plugin call may spend is too little
     * for thousands of queries on a busy machine. It is the experimenter's own code, run once. */
    const ac_lua_limits_t plugin = *ac_lua_host_limits(x->host);
    ac_lua_limits_t big = plugin;
    big.max_instructions = GENERATOR_INSTRUCTIONS;
    big.max_wall_ms = GENERATOR_WALL_MS;
    ac_lua_host_set_limits(x->host, &big);
    json_t *out = run_lua_file(x, path, call, err);
    ac_lua_host_set_limits(x->host, &plugin);
    if (out == NULL)
        return -1;
    x->training = json_incref(json_object_get(out, "training_data"));
    x->validation = json_incref(json_object_get(out, "validation_data"));
    x->evaluation = json_incref(json_object_get(out, "evaluation_data"));
    x->tests = json_incref(json_object_get(out, "tests"));
    json_decref(out);
    return 0;
}

/* One JSON file named relative to the experiment file. */
static int load_json(experiment_t *x, const char *file, json_t **out, ac_err_t *err)
{
    char path[2048];
    json_error_t jerr;
    resolve(path, sizeof path, x, file);
    if ((*out = json_load_file(path, 0, &jerr)) == NULL)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s:%d: %s", path, jerr.line, jerr.text);
    return 0;
}

/* data.training, data.evaluation, data.validation and data.tests: JSON files. */
static int load_files(experiment_t *x, json_t *data, ac_err_t *err)
{
    const char *tr = str_field(data, "training", NULL), *ev = str_field(data, "evaluation", NULL);
    const char *va = str_field(data, "validation", NULL);
    if (tr == NULL || ev == NULL)
        return bad(err, x, "'data' needs a generator, or training and evaluation JSON files%s", "");
    if (load_json(x, tr, &x->training, err) != 0 || load_json(x, ev, &x->evaluation, err) != 0 ||
        (va != NULL && load_json(x, va, &x->validation, err) != 0))
        return -1;
    json_t *files = json_object_get(data, "tests");
    if (files != NULL && !json_is_object(files))
        return bad(err, x, "'data.tests' must map test names to JSON files%s", "");
    const char *name;
    json_t *file;
    json_object_foreach(files, name, file) {
        if (!json_is_string(file))
            return bad(err, x, "data.tests.%s must be a file name", name);
        json_t *set;
        if (load_json(x, json_string_value(file), &set, err) != 0)
            return -1;
        if (x->tests == NULL)
            x->tests = json_object();
        json_object_set_new(x->tests, name, set);
    }
    return 0;
}

/* The same checks a job's data gets, by the experiment's validator. */
static int validate_data(experiment_t *x, ac_err_t *err)
{
    ac_validator_t *v = ac_validator_open(x->host, x->validator, err);
    if (v == NULL)
        return -1;
    json_t *problems = NULL;
    int rc = ac_validator_run(v, x->training, x->evaluation, 100, &problems, err);
    ac_validator_close(v);
    if (rc != 0)
        return -1;
    if (json_array_size(problems) > 0) {
        json_t *p = json_array_get(problems, 0);
        ac_err_set(err, AC_ERR_VALIDATION_FAILED, "%s: the data fails validation (%zu problems), first: %s: %s",
                   x->opts->path, json_array_size(problems), str_field(p, "field", "?"), str_field(p, "error", "?"));
        json_decref(problems);
        return -1;
    }
    json_decref(problems);
    return 0;
}

static int load_data(experiment_t *x, long long seed, ac_err_t *err)
{
    json_t *data = json_object_get(x->spec, "data");
    const char *gen = str_field(data, "generator", NULL);
    if ((gen != NULL ? load_generated(x, data, gen, seed, err) : load_files(x, data, err)) != 0)
        return -1;
    if (x->tests != NULL && !json_is_object(x->tests))
        return bad(err, x, "the data's `tests` must map names to arrays of queries%s", "");
    const char *tname;
    json_t *tset;
    json_object_foreach(x->tests, tname, tset) {
        if (!json_is_array(tset) || json_array_size(tset) == 0)
            return bad(err, x, "tests.%s must be a non-empty array of {query, expected_outcome}", tname);
    }
    if (!json_is_array(x->training) || !json_is_array(x->evaluation) ||
        (x->validation != NULL && !json_is_array(x->validation)))
        return bad(err, x, "the data must provide training_data and evaluation_data arrays (and validation_data, "
                           "when given, an array)%s", "");
    return validate_data(x, err);
}

/* The sweep's runs: the cartesian product of its value lists over the base config. */
static int expand_runs(experiment_t *x, json_t **runs, char labels[][160], int *n_runs, ac_err_t *err)
{
    json_t *base = json_object_get(x->spec, "config");
    runs[0] = base ? json_deep_copy(base) : json_object();
    if (x->opts->overrides != NULL)
        json_object_update(runs[0], (json_t *)x->opts->overrides);
    labels[0][0] = '\0';
    *n_runs = 1;
    json_t *sweep = json_object_get(x->spec, "sweep");
    if (sweep == NULL)
        return 0; /* an object: load_spec checked it */
    const char *k;
    json_t *vals;
    json_object_foreach(sweep, k, vals) {
        if (!json_is_array(vals) || json_array_size(vals) == 0)
            return bad(err, x, "sweep.%s must be a non-empty list", k);
        int n = *n_runs, m = (int)json_array_size(vals);
        if (n * m > MAX_RUNS)
            return bad(err, x, "the sweep makes more than 64 runs%s", "");
        for (int r = n - 1; r >= 0; r--) {
            for (int j = m - 1; j >= 0; j--) {
                int slot = r * m + j;
                json_t *c = json_deep_copy(runs[r]);
                json_object_set(c, k, json_array_get(vals, (size_t)j));
                char *vs = json_dumps(json_array_get(vals, (size_t)j), JSON_ENCODE_ANY);
                char label[160];
                snprintf(label, sizeof label, "%s%s%s=%s", labels[r], labels[r][0] ? "," : "", k, vs ? vs : "?");
                free(vs);
                if (j == 0)
                    json_decref(runs[r]);
                runs[slot] = c;
                snprintf(labels[slot], 160, "%s", label);
            }
        }
        *n_runs = n * m;
    }
    return 0;
}

static void progress(const char *label, uint64_t it, int total, const ac_iter_metrics_t *m, double val,
                     double elapsed_ms)
{
    int width = 24, fill = (int)(width * (double)it / total);
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    double eta = it > 0 ? elapsed_ms / it * (total - (int)it) / 1000.0 : 0;
    fprintf(stderr, "\r%-18.18s [%s] %4llu/%d  reward %.3f  success %.2f  validation %.2f  ETA %3.0fs ",
            label[0] ? label : "train", bar, (unsigned long long)it, total, m->avg_reward, m->success_rate, val,
            eta);
    fflush(stderr);
}

static void csv_row(experiment_t *x, const char *label, uint64_t seed, uint64_t it, const ac_iter_metrics_t *m,
                    const ac_eval_result_t *val)
{
    if (x->csv == NULL)
        return;
    /* the label is quoted as CSV quotes (a sweep over strings puts quotes in it: loss_type="dapo") */
    fputc('"', x->csv);
    for (const char *c = label; *c; c++) {
        if (*c == '"')
            fputc('"', x->csv);
        fputc(*c, x->csv);
    }
    fprintf(x->csv, "\",%llu,%llu", (unsigned long long)seed, (unsigned long long)it);
    if (m != NULL)
        fprintf(x->csv, ",%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%d,%d,%d,%.6f,%.3f,%d,%d,%d",
                m->loss, m->avg_reward, m->reward_std, m->success_rate, m->kl, m->kl_exact, m->entropy,
                m->clip_fraction, m->clip_low, m->clip_high, m->clip_region, m->zero_var_frac, m->grad_norm,
                m->decisions, m->trajectories, m->steps, (double)m->cost_micro / 1e6, m->wall_ms, m->tool_failures,
                m->agent_failures, m->reward_failures);
    else
        fprintf(x->csv, ",,,,,,,,,,,,,,,,,,,,,");
    if (val != NULL)
        fprintf(x->csv, ",%.6g,%.6g\n", val->success_rate, val->avg_reward);
    else
        fprintf(x->csv, ",,\n");
}

/* Every test set of the data: {name: {random, baseline, trained}}, each side as the evaluation's. */
static json_t *eval_tests(experiment_t *x, ac_agent_t *agent, ac_reward_t *reward, ac_actor_t *untrained,
                          ac_actor_t *trained, const ac_keyword_t *kw, int steps, uint64_t seed, ac_err_t *err)
{
    json_t *out = json_object();
    const char *name;
    json_t *set;
    json_object_foreach(x->tests, name, set) {
        ac_eval_result_t r[4] = {{0}};
        const ac_actor_config_t *pc = ac_actor_config(untrained);
        if (ac_eval_run_random(agent, reward, pc, set, steps, seed, &r[0], err) != 0 ||
            ac_eval_run(agent, reward, untrained, set, steps, &r[1], err) != 0 ||
            ac_eval_run_keyword(agent, reward, pc, kw, set, steps, &r[2], err) != 0 ||
            ac_eval_run(agent, reward, trained, set, steps, &r[3], err) != 0) {
            for (int i = 0; i < 4; i++)
                ac_eval_result_free(&r[i]);
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, name, json_pack("{s:o, s:o, s:o, s:o}", "random", ac_eval_side_json(&r[0]), "baseline",
                                                 ac_eval_side_json(&r[1]), "keyword", ac_eval_side_json(&r[2]),
                                                 "trained", ac_eval_side_json(&r[3])));
        for (int i = 0; i < 4; i++)
            ac_eval_result_free(&r[i]);
    }
    return out;
}

/* One seed of one run, while it trains. */
typedef struct seed_run {
    experiment_t *x;
    const ac_train_config_t *tc;
    const char *label;
    uint64_t seed;
    json_t *train, *val;          /* this seed's split */
    ac_agent_t *agent;
    ac_reward_t *reward;
    ac_trainer_t *tr;
    ac_actor_t *untrained, *best; /* the baseline, and the policy validation selects */
    double best_val, best_reward;
    uint64_t best_it;
    ac_iter_metrics_t m;           /* the last iteration's */
    long long trajectories;
    int64_t cost;
    char *meta;                    /* what the checkpoint says of itself (docs/checkpoints.md) */
    uint8_t *best_ckpt;            /* the selected policy's checkpoint, taken when it was selected */
    size_t best_len;
} seed_run_t;

/* The checkpoint's metadata, as the server writes it: the agent's declarations, its name as the
 * agent_id, and the run's GRPO config, so that `agentcore act`, `agentcore run` and
 * training.import_checkpoint can use the file alone. */
static char *checkpoint_meta(const seed_run_t *s, ac_err_t *err)
{
    ac_agent_decl_t d;
    if (ac_agent_decl_of(&d, s->agent, err) != 0)
        return NULL;
    json_t *m = json_pack("{s:o, s:s, s:o, s:I}", "agent", ac_agent_decl_json(&d), "agent_id", s->x->agent, "config",
                          ac_train_config_to_json(s->tc), "seed", (json_int_t)s->seed);
    ac_agent_decl_free(&d);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    if (text == NULL)
        ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
    return text;
}

/* Keeps the trainer's state now as the selected policy's checkpoint. */
static int keep_best(seed_run_t *s, ac_err_t *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (ac_trainer_save(s->tr, s->meta, strlen(s->meta), &buf, &len, err) != 0)
        return -1;
    free(s->best_ckpt);
    s->best_ckpt = buf;
    s->best_len = len;
    return 0;
}

static void seed_close(seed_run_t *s)
{
    free(s->meta);
    free(s->best_ckpt);
    ac_actor_destroy(s->best);
    ac_actor_destroy(s->untrained);
    ac_trainer_destroy(s->tr);
    ac_reward_close(s->reward);
    ac_agent_close(s->agent);
    json_decref(s->train);
    json_decref(s->val);
}

/* The split, the plugins, the trainer, and the untrained policy's validation (the curve's first
 * point, and the selection's starting point). */
static int seed_open(seed_run_t *s, ac_err_t *err)
{
    experiment_t *x = s->x;
    if (x->validation != NULL) {
        s->train = json_incref(x->training);
        s->val = json_incref(x->validation);
    } else if (ac_dataset_split(x->training, s->tc->validation_fraction, s->seed, &s->train, &s->val, err) != 0) {
        return -1;
    }
    ac_eval_result_t v = {0};
    if ((s->agent = ac_agent_open(x->host, x->agent, err)) == NULL ||
        (s->reward = ac_reward_open(x->host, x->reward, err)) == NULL ||
        (s->tr = ac_trainer_create(s->tc, s->agent, s->reward, s->seed, ac_usd_to_micro(x->opts->step_cost_usd),
                                   err)) == NULL ||
        (s->untrained = ac_actor_clone(s->tr->policy, err)) == NULL ||
        (s->best = ac_actor_clone(s->tr->policy, err)) == NULL ||
        ac_eval_run(s->agent, s->reward, s->tr->policy, s->val, s->tc->max_steps_per_trajectory, &v, err) != 0 ||
        (s->meta = checkpoint_meta(s, err)) == NULL || keep_best(s, err) != 0) {
        ac_eval_result_free(&v);
        return -1;
    }
    s->best_val = v.success_rate;
    s->best_reward = v.avg_reward;
    csv_row(x, s->label, s->seed, 0, NULL, &v);
    ac_eval_result_free(&v);
    return 0;
}

/* Training with a greedy validation pass every eval_interval iterations (the learning curve);
 * the best validation success selects the policy (the later one on a tie). */
static int seed_train(seed_run_t *s, ac_err_t *err)
{
    const ac_train_config_t *tc = s->tc;
    ac_trainer_t *tr = s->tr;
    long long episodes = 0, failures = 0;
    int64_t train0 = ac_clock_mono_ns();
    for (int i = 0; i < tc->n_iterations; i++) {
        ac_iter_metrics_t *m = &s->m;
        if (ac_trainer_iterate(tr, s->train, -1, m, err) != 0)
            return -1;
        s->trajectories += m->trajectories;
        s->cost += m->cost_micro;
        episodes += m->trajectories;
        failures += m->failed_episodes;
        char msg[200];
        if (ac_trainer_failures_exceed(failures, episodes, s->x->opts->max_failure_rate, msg, sizeof msg))
            return ac_err_set(err, AC_ERR_INTERNAL, "%s (iteration %llu; training.max_failure_rate)%s%s", msg,
                              (unsigned long long)m->iteration, tr->ro.n_errors ? "; e.g. " : "",
                              tr->ro.n_errors ? tr->ro.first_errors[0] : "");
        int eval_now = m->iteration % (uint64_t)tc->eval_interval == 0 || i == tc->n_iterations - 1;
        ac_eval_result_t v = {0};
        if (eval_now) {
            if (ac_eval_run(s->agent, s->reward, tr->policy, s->val, tc->max_steps_per_trajectory, &v, err) != 0)
                return -1;
            if (v.success_rate >= s->best_val) { /* ties go to the later, longer-trained policy */
                s->best_val = v.success_rate;
                s->best_reward = v.avg_reward;
                s->best_it = m->iteration;
                memcpy(ac_actor_params(s->best), ac_actor_params(tr->policy), sizeof(float) * ac_actor_n_params(s->best));
                if (keep_best(s, err) != 0) {
                    ac_eval_result_free(&v);
                    return -1;
                }
            }
        }
        csv_row(s->x, s->label, s->seed, m->iteration, m, eval_now ? &v : NULL);
        if (s->x->opts->progress)
            progress(s->label, m->iteration, tc->n_iterations, m, s->best_val,
                     (double)(ac_clock_mono_ns() - train0) / 1e6);
        ac_eval_result_free(&v);
    }
    if (s->x->opts->progress)
        fputc('\n', stderr);
    return 0;
}

/* The seed's report: the random baseline and ac_eval_compare (untrained vs selected) on the
 * evaluation data, what validation selected, and the training's totals. */
static json_t *seed_report(seed_run_t *s, int64_t t0, ac_err_t *err)
{
    const int steps = s->tc->max_steps_per_trajectory;
    ac_eval_result_t rnd = {0};
    ac_eval_comparison_t cmp;
    ac_eval_result_t kwr = {0};
    ac_keyword_t *kw = NULL;
    json_t *tests = NULL;
    if (ac_eval_run_random(s->agent, s->reward, ac_actor_config(s->untrained), s->x->evaluation, steps, s->seed, &rnd,
                           err) != 0)
        return NULL;
    /* the keyword rule, fitted on the selected policy's successes on the training split */
    if (ac_eval_compare(s->agent, s->reward, s->untrained, s->best, s->x->evaluation, steps, &cmp, err) != 0) {
        ac_eval_result_free(&rnd);
        return NULL;
    }
    if (ac_eval_fit_keyword(s->agent, s->reward, s->best, s->train, steps, &kw, err) != 0 ||
        ac_eval_run_keyword(s->agent, s->reward, ac_actor_config(s->best), kw, s->x->evaluation, steps, &kwr, err) != 0 ||
        (tests = eval_tests(s->x, s->agent, s->reward, s->untrained, s->best, kw, steps, s->seed, err)) == NULL) {
        ac_keyword_free(kw);
        ac_eval_result_free(&kwr);
        ac_eval_comparison_free(&cmp);
        ac_eval_result_free(&rnd);
        return NULL;
    }
    ac_keyword_free(kw);
    const ac_iter_metrics_t *m = &s->m;
    json_t *report = json_pack("{s:s, s:I, s:o, s:{s:s, s:I, s:f, s:f, s:I}, s:I, s:I, s:f, s:f, "
                               "s:{s:f, s:f, s:f, s:f, s:f, s:f, s:f}}",
                               "run", s->label, "seed", (json_int_t)s->seed, "random", ac_eval_side_json(&rnd),
                               "selected", "by", "validation", "iteration", (json_int_t)s->best_it,
                               "validation_success_rate", s->best_val, "validation_avg_reward", s->best_reward,
                               "validation_queries", (json_int_t)json_array_size(s->val), "iterations",
                               (json_int_t)s->tc->n_iterations, "trajectories", (json_int_t)s->trajectories,
                               "cost_usd", (double)s->cost / 1e6, "wall_ms", (double)(ac_clock_mono_ns() - t0) / 1e6,
                               "final_iteration", "loss", m->loss, "avg_reward", m->avg_reward, "success_rate",
                               m->success_rate, "kl", m->kl, "kl_exact", m->kl_exact, "entropy", m->entropy,
                               "clip_fraction", m->clip_fraction);
    json_t *compared = ac_eval_comparison_json(&cmp);
    if (report != NULL && compared != NULL)
        json_object_update(report, compared); /* baseline, trained, improvements, tests */
    json_decref(compared);
    if (report != NULL) {
        json_object_set_new(report, "keyword", ac_eval_side_json(&kwr));
        json_object_set_new(report, "tests", tests);
    } else {
        json_decref(tests);
    }
    ac_eval_result_free(&kwr);
    ac_eval_comparison_free(&cmp);
    ac_eval_result_free(&rnd);
    if (report == NULL)
        ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
    return report;
}

/* Writes len bytes to path (its directory made first). */
static int write_file(const char *path, const uint8_t *buf, size_t len, ac_err_t *err)
{
    char dir[2400];
    ac_file_dirname(dir, sizeof dir, path);
    FILE *f = ac_file_mkdirs(dir) == 0 ? fopen(path, "wb") : NULL;
    int ok = f != NULL && fwrite(buf, 1, len, f) == len;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    return ok ? 0 : ac_err_set(err, AC_ERR_INTERNAL, "cannot write %s: %s", path, strerror(errno));
}

/* One seed of one run: the validation set (given, or held out of the training data with this
 * seed), training with its learning curve, and the evaluation of the policy the validation
 * selected against the random and untrained baselines. The evaluation data never influences
 * anything. */
static json_t *train_seed(experiment_t *x, const ac_train_config_t *tc, const char *label, uint64_t seed,
                          ac_err_t *err)
{
    int64_t t0 = ac_clock_mono_ns();
    seed_run_t s = {.x = x, .tc = tc, .label = label, .seed = seed};
    json_t *report = NULL;
    if (seed_open(&s, err) == 0 && seed_train(&s, err) == 0)
        report = seed_report(&s, t0, err);
    /* the selected policy's checkpoint: checkpoints/<run>-seed<N>.ckpt under the output directory */
    char name[256], path[2400];
    snprintf(name, sizeof name, "checkpoints/%.160s-seed%llu.ckpt", label[0] ? label : x->name, (unsigned long long)seed);
    for (char *c = name + strlen("checkpoints/"); *c; c++)
        if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') && !(*c >= '0' && *c <= '9') && *c != '.' &&
            *c != '-' && *c != '_' && *c != '=')
            *c = '_';
    snprintf(path, sizeof path, "%s/%s", x->out_dir, name);
    if (report != NULL && write_file(path, s.best_ckpt, s.best_len, err) != 0) {
        json_decref(report);
        report = NULL;
    }
    if (report != NULL)
        json_object_set_new(report, "checkpoint", json_string(name));
    seed_close(&s);
    return report;
}

/* {mean, ci95: [lo, hi]} of a number each seed's report has at `side`.`key`. */
static json_t *across(json_t *seeds, const char *side, const char *key)
{
    double v[MAX_SEEDS], mean, lo, hi;
    size_t i, n = 0;
    json_t *s;
    json_array_foreach(seeds, i, s)
    {
        v[n++] = json_number_value(json_object_get(json_object_get(s, side), key));
    }
    ac_stats_mean_ci95(v, (int)n, &mean, &lo, &hi);
    return json_pack("{s:f, s:[f, f]}", "mean", mean, "ci95", lo, hi);
}

/* A run of the sweep over every seed: {run, config, seeds: [...], mean: {...}}. */
static json_t *run_seeds(experiment_t *x, json_t *config, const char *label, uint64_t seed0, ac_err_t *err)
{
    ac_train_config_t tc;
    ac_train_config_defaults(&tc);
    if (ac_train_config_from_json(&tc, config, AC_ERR_INVALID_PARAMS, err) != 0) {
        /* copy out of err->data: setting the new message frees it */
        json_t *f = err->data ? json_object_get(err->data, "field") : NULL;
        json_t *e = err->data ? json_object_get(err->data, "error") : NULL;
        char field[96], problem[160];
        snprintf(field, sizeof field, "%s", json_is_string(f) ? json_string_value(f) : "?");
        snprintf(problem, sizeof problem, "%s", json_is_string(e) ? json_string_value(e) : "?");
        ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s: config.%s: %s", x->opts->path, field, problem);
        return NULL;
    }
    ac_train_config_resolve(&tc);
    json_t *seeds = json_array();
    for (int k = 0; k < x->seeds; k++) {
        json_t *r = train_seed(x, &tc, label, seed0 + (uint64_t)k, err);
        if (r == NULL) {
            json_decref(seeds);
            return NULL;
        }
        json_array_append_new(seeds, r);
        if (x->csv != NULL)
            fflush(x->csv);
    }
    json_t *mean = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "trained_success_rate",
                             across(seeds, "trained", "success_rate"), "baseline_success_rate",
                             across(seeds, "baseline", "success_rate"), "random_success_rate",
                             across(seeds, "random", "success_rate"), "trained_avg_reward",
                             across(seeds, "trained", "avg_reward"), "validation_success_rate",
                             across(seeds, "selected", "validation_success_rate"), "validation_avg_reward",
                             across(seeds, "selected", "validation_avg_reward"));
    json_t *tmeans = json_object();
    const char *name;
    json_t *set;
    json_object_foreach(x->tests, name, set) {
        json_t *per_seed = json_array();
        size_t i;
        json_t *s;
        json_array_foreach(seeds, i, s) json_array_append(per_seed, json_object_get(json_object_get(s, "tests"), name));
        json_object_set_new(tmeans, name, json_pack("{s:o, s:o, s:o, s:o}", "trained_success_rate",
                                                    across(per_seed, "trained", "success_rate"), "baseline_success_rate",
                                                    across(per_seed, "baseline", "success_rate"), "random_success_rate",
                                                    across(per_seed, "random", "success_rate"), "keyword_success_rate",
                                                    across(per_seed, "keyword", "success_rate")));
        json_decref(per_seed);
    }
    json_object_set_new(mean, "tests", tmeans);
    json_object_set_new(mean, "keyword_success_rate", across(seeds, "keyword", "success_rate"));
    return json_pack("{s:s, s:o, s:o, s:o}", "run", label, "config", ac_train_config_to_json(&tc), "seeds", seeds,
                     "mean", mean);
}

static double mean_of(json_t *run, const char *key)
{
    return json_number_value(json_object_get(json_object_get(json_object_get(run, "mean"), key), "mean"));
}

/* What people read: one line per run and seed, then the means. */
static void print_summary(const experiment_t *x, json_t *runs, FILE *out)
{
    size_t i, k;
    json_t *run, *s;
    json_array_foreach(runs, i, run)
    {
        const char *label = json_string_value(json_object_get(run, "run"));
        json_array_foreach(json_object_get(run, "seeds"), k, s)
        {
            json_t *b = json_object_get(s, "baseline"), *t = json_object_get(s, "trained");
            fprintf(out, "%-24s seed %-4lld random %.2f  baseline %.2f  keyword %.2f -> trained %.2f (validation %.2f "
                         "at it %lld)  p=%.3g  (%.1f s)\n",
                    label[0] ? label : x->name, (long long)json_integer_value(json_object_get(s, "seed")),
                    json_number_value(json_object_get(json_object_get(s, "random"), "success_rate")),
                    json_number_value(json_object_get(b, "success_rate")),
                    json_number_value(json_object_get(json_object_get(s, "keyword"), "success_rate")),
                    json_number_value(json_object_get(t, "success_rate")),
                    json_number_value(json_object_get(json_object_get(s, "selected"), "validation_success_rate")),
                    (long long)json_integer_value(json_object_get(json_object_get(s, "selected"), "iteration")),
                    json_number_value(json_object_get(s, "p_value")),
                    json_number_value(json_object_get(s, "wall_ms")) / 1000.0);
        }
        const char *tname;
        json_t *tm;
        json_object_foreach(json_object_get(json_object_get(run, "mean"), "tests"), tname, tm) {
            json_t *t = json_object_get(tm, "trained_success_rate"), *ci = json_object_get(t, "ci95");
            fprintf(out, "%-24s test %-14s random %.2f  baseline %.2f  keyword %.2f -> trained %.3f [%.3f, %.3f]\n",
                    label[0] ? label : x->name, tname,
                    json_number_value(json_object_get(json_object_get(tm, "random_success_rate"), "mean")),
                    json_number_value(json_object_get(json_object_get(tm, "baseline_success_rate"), "mean")),
                    json_number_value(json_object_get(json_object_get(tm, "keyword_success_rate"), "mean")),
                    json_number_value(json_object_get(t, "mean")), json_number_value(json_array_get(ci, 0)),
                    json_number_value(json_array_get(ci, 1)));
        }
        if (json_array_size(json_object_get(run, "seeds")) > 1) {
            json_t *m = json_object_get(json_object_get(run, "mean"), "trained_success_rate");
            json_t *ci = json_object_get(m, "ci95");
            fprintf(out, "%-24s %zu seeds: trained success %.3f, 95 %% interval [%.3f, %.3f]\n",
                    label[0] ? label : x->name, json_array_size(json_object_get(run, "seeds")),
                    json_number_value(json_object_get(m, "mean")), json_number_value(json_array_get(ci, 0)),
                    json_number_value(json_array_get(ci, 1)));
        }
    }
}

/* runs/<name> (or --out), and metrics.csv in it with its header. */
static int open_outputs(experiment_t *x, char *out_dir, size_t len, ac_err_t *err)
{
    char path[2200];
    if (x->opts->out_dir != NULL)
        snprintf(x->out_dir, sizeof x->out_dir, "%s", x->opts->out_dir);
    else
        snprintf(x->out_dir, sizeof x->out_dir, "runs/%s", x->name);
    if (x->opts->out_dir != NULL)
        snprintf(out_dir, len, "%s", x->opts->out_dir);
    else
        snprintf(out_dir, len, "runs/%s", x->name);
    if (ac_file_mkdirs(out_dir) != 0)
        return ac_err_set(err, AC_ERR_INTERNAL, "cannot create %s: %s", out_dir, strerror(errno));
    snprintf(path, sizeof path, "%s/metrics.csv", out_dir);
    if ((x->csv = fopen(path, "w")) == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "cannot write %s: %s", path, strerror(errno));
    fprintf(x->csv, "run,seed,iteration,loss,avg_reward,reward_std,success_rate,kl,kl_exact,entropy,clip_fraction,"
                    "clip_low,clip_high,clip_region,zero_var_frac,grad_norm,decisions,trajectories,steps,cost_usd,"
                    "wall_ms,tool_failures,agent_failures,reward_failures,validation_success,validation_reward\n");
    return 0;
}

/* best.ckpt: the checkpoint of the winning run's seed with the highest validation success (the
 * first on a tie), named in the report as best_checkpoint. */
static int copy_best(const char *out_dir, json_t *run, json_t *report, ac_err_t *err)
{
    json_t *seeds = json_object_get(run, "seeds"), *pick = NULL, *s;
    size_t i;
    double best = -1;
    json_array_foreach(seeds, i, s)
    {
        double v = json_number_value(json_object_get(json_object_get(s, "selected"), "validation_success_rate"));
        if (pick == NULL || v > best) {
            pick = s;
            best = v;
        }
    }
    const char *name = json_string_value(json_object_get(pick, "checkpoint"));
    if (name == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "no checkpoint to select");
    char from[2400], to[2400];
    snprintf(from, sizeof from, "%s/%s", out_dir, name);
    snprintf(to, sizeof to, "%s/best.ckpt", out_dir);
    size_t len = 0;
    char *buf = ac_file_read(from, &len);
    if (buf == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "cannot read %s: %s", from, strerror(errno));
    int rc = write_file(to, (const uint8_t *)buf, len, err);
    free(buf);
    if (rc == 0)
        json_object_set_new(report, "best_checkpoint", json_string("best.ckpt"));
    return rc;
}

/* 1 when run beats best: a higher mean validation success, then a higher validation reward. */
static int better_run(json_t *run, json_t *best)
{
    double v = mean_of(run, "validation_success_rate"), bv = mean_of(best, "validation_success_rate");
    return v > bv || (v == bv && mean_of(run, "validation_avg_reward") > mean_of(best, "validation_avg_reward"));
}

/* The report: the selected run's first seed at the top level (the fields a single run always
 * had), its seeds and means, and every run side by side. New reference. */
static json_t *build_report(const experiment_t *x, json_t *runs, int best)
{
    json_t *winner = json_array_get(runs, (size_t)best);
    json_t *seeds = json_object_get(winner, "seeds");
    json_t *report = json_deep_copy(json_array_get(seeds, 0));
    json_object_set(report, "config", json_object_get(winner, "config"));
    json_object_set(report, "seeds", seeds);
    json_object_set(report, "mean", json_object_get(winner, "mean"));
    json_object_set_new(report, "experiment", json_string(x->name));
    json_object_set_new(report, "agent", json_string(x->agent));
    json_object_set_new(report, "training_queries", json_integer((json_int_t)json_array_size(x->training)));
    json_object_set_new(report, "evaluation_queries", json_integer((json_int_t)json_array_size(x->evaluation)));
    json_object_set_new(report, "validation", json_string(x->validation ? "given" : "held out of the training data"));
    json_object_set_new(report, "success_test", json_string("exact McNemar on paired success"));
    json_object_set_new(report, "reward_test",
                        json_string("paired sign-flip permutation test on per-query rewards (exact up to 20 "
                                    "queries, else 9999 random sign patterns)"));
    json_object_set_new(report, "interval_across_seeds", json_string("mean +- Student t (n - 1) x sd / sqrt(n)"));
    json_object_set_new(report, "blas_kernel", json_string(ac_blas_kernel()));
    if (json_array_size(runs) > 1) {
        json_object_set(report, "runs", runs);
        json_object_set_new(report, "sweep_selected_by", json_string("mean validation success"));
    }
    return report;
}

int ac_experiment_run(const ac_experiment_opts_t *opts, ac_err_t *err)
{
    experiment_t x = {.opts = opts};
    ac_file_dirname(x.dir, sizeof x.dir, opts->path);
    json_t *configs[MAX_RUNS] = {0};
    static char labels[MAX_RUNS][160];
    json_t *runs = json_array(), *report = NULL;
    int n_runs = 0, ret = -1;
    char out_dir[2048], path[2200];
    if ((x.host = ac_lua_host_create(opts->lua_dir, opts->plugins_dir, opts->limits, err)) == NULL)
        goto out;
    if (load_spec(&x, err) != 0)
        goto out;
    json_t *js = json_object_get(x.spec, "seed");
    uint64_t seed0 = opts->seed >= 0 ? (uint64_t)opts->seed : json_is_integer(js) ? (uint64_t)json_integer_value(js) : 1;
    if (load_data(&x, (long long)seed0, err) != 0 || expand_runs(&x, configs, labels, &n_runs, err) != 0 ||
        open_outputs(&x, out_dir, sizeof out_dir, err) != 0)
        goto out;
    /* the sweep's winner: the best mean validation success (then validation reward); the
     * evaluation data, which every run reports on, chooses nothing */
    int best = -1;
    for (int r = 0; r < n_runs; r++) {
        json_t *run = run_seeds(&x, configs[r], labels[r], seed0, err);
        if (run == NULL)
            goto out;
        json_array_append_new(runs, run);
        if (best < 0 || better_run(run, json_array_get(runs, (size_t)best)))
            best = r;
    }
    report = build_report(&x, runs, best);
    if (copy_best(out_dir, json_array_get(runs, (size_t)best), report, err) != 0)
        goto out;
    snprintf(path, sizeof path, "%s/report.json", out_dir);
    if (json_dump_file(report, path, JSON_INDENT(2)) != 0) {
        ac_err_set(err, AC_ERR_INTERNAL, "cannot write %s", path);
        goto out;
    }
    /* the page people open: curves from metrics.csv, the tables from the report */
    fclose(x.csv);
    x.csv = NULL;
    char csv_path[2200];
    snprintf(csv_path, sizeof csv_path, "%s/metrics.csv", out_dir);
    snprintf(path, sizeof path, "%s/report.html", out_dir);
    if (ac_report_html_write(path, report, csv_path, err) != 0)
        goto out;
    /* people first, then (with --json) the machine line last */
    print_summary(&x, runs, opts->json ? stderr : stdout);
    if (n_runs > 1)
        fprintf(opts->json ? stderr : stdout, "selected on validation: %s\n", labels[best]);
    fprintf(opts->json ? stderr : stdout,
            "wrote %s/metrics.csv, %s/report.json, %s/report.html and %s/best.ckpt (the selected policy: "
            "agentcore act, agentcore run, training.import_checkpoint)\n",
            out_dir, out_dir, out_dir, out_dir);
    if (opts->json) {
        char *line = json_dumps(report, JSON_COMPACT);
        printf("%s\n", line);
        free(line);
    }
    ret = 0;
out:
    if (x.csv != NULL)
        fclose(x.csv);
    for (int r = 0; r < n_runs; r++)
        json_decref(configs[r]);
    json_decref(runs);
    json_decref(report);
    json_decref(x.training);
    json_decref(x.validation);
    json_decref(x.evaluation);
    json_decref(x.tests);
    json_decref(x.spec);
    ac_lua_host_destroy(x.host);
    return ret;
}

int ac_experiment_plugins(const ac_experiment_opts_t *opts, char *agent, char *reward, size_t len, ac_err_t *err)
{
    experiment_t x = {.opts = opts};
    ac_file_dirname(x.dir, sizeof x.dir, opts->path);
    int rc = (x.host = ac_lua_host_create(opts->lua_dir, opts->plugins_dir, opts->limits, err)) != NULL &&
                     load_spec(&x, err) == 0
                 ? 0
                 : -1;
    if (rc == 0) {
        snprintf(agent, len, "%s", x.agent);
        snprintf(reward, len, "%s", x.reward);
    }
    json_decref(x.spec);
    ac_lua_host_destroy(x.host);
    return rc;
}
