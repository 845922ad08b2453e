/* agentcore: the command line. `serve` runs the Training API, `token` signs a JWT for it,
 * `train` runs an offline experiment, `config --reference` prints every configuration key,
 * `migrate` brings a PostgreSQL store's schema up to date. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include "base/file.h"
#include "base/train_config.h"
#include "engine/blas.h"
#include "engine/checkpoint.h"
#include "engine/infer.h"
#include "lua/config.h"
#include "lua/plugin.h"
#include "engine/experiment.h"
#include "engine/reference.h"
#include "service/server.h"
#include "store/pg.h"

static const char usage_main[] =
    "usage: agentcore <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve   run the Training API (JSON-RPC 2.0 over HTTP/1.1, h2c and TLS h2)\n"
    "  token   print a signed JWT for the API\n"
    "  train   run an offline GRPO experiment (EXPERIMENT.lua)\n"
    "  act     the next tool call of a trained policy (a checkpoint file) for a query\n"
    "  run     one episode of an experiment's agent with a trained policy on a query\n"
    "  config  print the configuration reference: every key of the GRPO config, the server\n"
    "          config and the experiment file (docs/configuration.md)\n"
    "  migrate show or apply the PostgreSQL store's schema migrations (store.backend =\n"
    "          \"postgresql\"; docs/operations.md)\n"
    "\n"
    "  agentcore <command> --help   options of a command\n"
    "  agentcore --version          version and build information\n";

static const char usage_serve[] =
    "usage: agentcore serve [--config FILE] [--listen HOST:PORT] [--data DIR]\n"
    "\n"
    "  --config FILE       server config (a Lua file; see examples/server.lua)\n"
    "  --listen HOST:PORT  listen address (default 127.0.0.1:8001); overrides the config\n"
    "  --data DIR          data directory, created when missing (default ./data)\n"
    "\n"
    "environment: AGENTCORE_JWT_SECRET sets the HS256 secret (over the config).\n"
    "SIGTERM or SIGINT stops accepting, finishes in-flight requests and closes the store.\n";

static const char usage_token[] =
    "usage: agentcore token --sub NAME --perms p1,p2,... [--ttl SECONDS] [--config FILE]\n"
    "\n"
    "  --sub NAME       the principal (tenant) the token names\n"
    "  --perms LIST     comma-separated permissions: training:start, training:view,\n"
    "                   training:cancel, training:evaluate, data:export, training:admin,\n"
    "                   webhooks:manage, metrics:view\n"
    "  --ttl SECONDS    lifetime (default 3600)\n"
    "  --config FILE    server config naming the algorithm and keys\n"
    "\n"
    "environment: AGENTCORE_JWT_SECRET sets the HS256 secret (over the config).\n";

static const char usage_train[] =
    "usage: agentcore train EXPERIMENT.lua [--seed N] [--seeds N] [--set KEY=VALUE]... [--out DIR] [--json]\n"
    "                       [--config FILE]\n"
    "\n"
    "  --seed N       seed of the run (default: the experiment's, else 1)\n"
    "  --seeds N      run N seeds (seed, seed + 1, ...): per-seed results, mean and 95 % interval\n"
    "  --set K=V      override a GRPO config key of the file (JSON value, else a string):\n"
    "                 --set policy.kind=sequence --set n_iterations=300\n"
    "  --out DIR      where metrics.csv, report.json, report.html and the checkpoints go (default\n"
    "                 runs/<name>): best.ckpt is the selected policy (agentcore act, agentcore run,\n"
    "                 training.import_checkpoint), checkpoints/<run>-seed<N>.ckpt each run's\n"
    "  --json         print the report as the last line of stdout\n"
    "  --config FILE  server config: plugins_dir, lua_dir, plugin_limits and the training settings\n"
    "\n"
    "Trains in-process on the training data, follows a validation set (given, or held out of the\n"
    "training data) every eval_interval iterations and keeps the policy it scores best, then reports\n"
    "on the evaluation data: the random, untrained and trained policies side by side (exact McNemar\n"
    "on success, Wilson 95 % intervals, a paired sign-flip test on rewards; across seeds the mean and\n"
    "a Student-t 95 % interval). See examples/calculator/experiment.lua.\n";

static const char usage_act[] =
    "usage: agentcore act CHECKPOINT_FILE --query TEXT [--history JSON] [--observation TEXT]\n"
    "                     [--candidates JSON] [--legal JSON] [--top-k N] [--sample] [--temperature T]\n"
    "                     [--seed N] [--explain]\n"
    "\n"
    "  --query TEXT      the task (required)\n"
    "  --history JSON    the episode so far: [{\"tool\", \"params\", \"result\"}], oldest first\n"
    "  --observation, --candidates, --legal   what agent.observe, agent.candidates and agent.legal\n"
    "                    say now (agents that have them)\n"
    "  --top-k N         alternatives to list (0 to 20, default 3)\n"
    "  --sample          sample each decision (default: greedy) at --temperature (1), seeded by --seed (0)\n"
    "  --explain         add the context's tokens and every decision's log-probabilities\n"
    "\n"
    "Prints agents.act's answer (docs/api.md) as JSON: {tool, params, log_prob, alternatives}. Runs no\n"
    "plugin: the checkpoint's metadata holds the agent's declarations (files of agentcore train --out\n"
    "and training.export_checkpoint do).\n";

static const char usage_run[] =
    "usage: agentcore run EXPERIMENT.lua --checkpoint FILE --query TEXT [--expected JSON]\n"
    "                     [--max-steps N] [--sample] [--temperature T] [--seed N] [--config FILE]\n"
    "\n"
    "  --checkpoint FILE  the policy (agentcore train --out's best.ckpt, training.export_checkpoint)\n"
    "  --query TEXT       the task (required)\n"
    "  --expected JSON    expected_outcome: the experiment's reward plugin scores the episode\n"
    "  --max-steps N      steps at most (default: the checkpoint's max_steps_per_trajectory)\n"
    "  --sample           sample each decision (default: greedy) at --temperature, seeded by --seed\n"
    "  --config FILE      server config: plugins_dir, lua_dir, plugin_limits, training.step_cost_usd\n"
    "\n"
    "Runs one episode of the experiment's agent plugin with the policy and prints the trajectory as\n"
    "agents.run returns it (docs/api.md), with reward and success when --expected is given.\n";

static const char usage_config[] =
    "usage: agentcore config --reference [--json]\n"
    "\n"
    "  --reference  print every key of the GRPO config, the server config and the experiment file\n"
    "               with its type, default, range and meaning, as markdown (docs/configuration.md\n"
    "               holds this output between its \"generated\" markers)\n"
    "  --json       the same as one JSON document\n";

static const char usage_migrate[] =
    "usage: agentcore migrate [--config FILE] [--dsn DSN] [--check]\n"
    "\n"
    "  --config FILE  the server config whose store.dsn names the database\n"
    "  --dsn DSN      the database (libpq connection string or URI); AGENTCORE_STORE_DSN and\n"
    "                 store.dsn are used when it is not given\n"
    "  --check        apply nothing: exit 0 when the schema is this agentcore's, 1 when migrations\n"
    "                 are missing\n"
    "\n"
    "Applies the missing migrations, each in its own transaction, under an advisory lock (nodes\n"
    "starting meanwhile wait for it). Refuses a schema newer than this binary.\n";

static int load_config(ac_config_t *cfg, const char *path)
{
    ac_err_t err = AC_ERR_INIT;
    if (path != NULL && ac_config_load(cfg, path, &err) != 0) {
        fprintf(stderr, "agentcore: %s\n", err.message);
        ac_err_clear(&err);
        return -1;
    }
    return 0;
}

static int finish_config(ac_config_t *cfg)
{
    ac_err_t err = AC_ERR_INIT;
    if (ac_config_finish(cfg, &err) != 0) {
        fprintf(stderr, "agentcore: %s\n", err.message);
        ac_err_clear(&err);
        return -1;
    }
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"data", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *listen = NULL, *data = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:l:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'l': listen = optarg; break;
        case 'd': data = optarg; break;
        case 'h': fputs(usage_serve, stdout); return 0;
        default: fputs(usage_serve, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "agentcore serve: unexpected argument '%s'\n%s", argv[optind], usage_serve);
        return 2;
    }
    ac_config_t cfg;
    ac_config_defaults(&cfg);
    int rc = 1;
    if (load_config(&cfg, config) != 0)
        goto out;
    /* flags override the file */
    if (listen != NULL) {
        for (int i = 0; i < cfg.n_listen; i++)
            free(cfg.listen[i]);
        cfg.listen[0] = strdup(listen);
        cfg.n_listen = 1;
    }
    if (data != NULL)
        ac_config_set_str(&cfg.data_dir, data);
    if (finish_config(&cfg) != 0)
        goto out;
    ac_err_t err = AC_ERR_INIT;
    if (ac_server_run(&cfg, &err) != 0) {
        fprintf(stderr, "agentcore: %s\n", err.message);
        ac_err_clear(&err);
        goto out;
    }
    rc = 0;
out:
    ac_config_free(&cfg);
    return rc;
}

static int cmd_token(int argc, char **argv)
{
    static const struct option opts[] = {{"sub", required_argument, NULL, 's'},
                                         {"perms", required_argument, NULL, 'p'},
                                         {"ttl", required_argument, NULL, 't'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *sub = NULL, *perms = NULL, *config = NULL;
    long long ttl = 3600;
    int c;
    while ((c = getopt_long(argc, argv, "s:p:t:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 's': sub = optarg; break;
        case 'p': perms = optarg; break;
        case 't': {
            char *end;
            ttl = strtoll(optarg, &end, 10);
            if (*end != '\0' || ttl <= 0) {
                fprintf(stderr, "agentcore token: --ttl must be a positive number of seconds\n");
                return 2;
            }
            break;
        }
        case 'c': config = optarg; break;
        case 'h': fputs(usage_token, stdout); return 0;
        default: fputs(usage_token, stderr); return 2;
        }
    }
    if (sub == NULL || perms == NULL) {
        fprintf(stderr, "agentcore token: --sub and --perms are required\n%s", usage_token);
        return 2;
    }
    ac_config_t cfg;
    ac_config_defaults(&cfg);
    int rc = 1;
    ac_auth_t *auth = NULL;
    ac_err_t err = AC_ERR_INIT;
    if (load_config(&cfg, config) != 0 || finish_config(&cfg) != 0)
        goto out;
    if ((auth = ac_server_auth(&cfg, &err)) == NULL)
        goto fail;
    char *token = ac_auth_issue(auth, sub, perms, ttl, (int64_t)time(NULL), &err);
    if (token == NULL)
        goto fail;
    printf("%s\n", token);
    free(token);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "agentcore token: %s", err.message);
    json_t *detail = err.data != NULL ? json_object_get(err.data, "error") : NULL;
    if (json_is_string(detail))
        fprintf(stderr, ": %s", json_string_value(detail));
    fputc('\n', stderr);
    ac_err_clear(&err);
out:
    ac_auth_destroy(auth);
    ac_config_free(&cfg);
    return rc;
}

static int parse_long(const char *cmd, const char *name, const char *text, long long min, long long max,
                      long long *out);

/* --set KEY=VALUE: VALUE as JSON when it parses, else as a string. 0, or -1 with a message. */
static int set_override(json_t *overrides, char *arg)
{
    char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg) {
        fprintf(stderr, "agentcore train: --set needs KEY=VALUE, not '%s'\n", arg);
        return -1;
    }
    json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
    *eq = '\0';
    json_object_set_new(overrides, arg, v ? v : json_string(eq + 1));
    return 0;
}

static int cmd_train(int argc, char **argv)
{
    static const struct option opts[] = {{"seed", required_argument, NULL, 's'},
                                         {"seeds", required_argument, NULL, 'n'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"set", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    ac_experiment_opts_t xo = {.seed = -1, .progress = isatty(STDERR_FILENO)};
    json_t *overrides = json_object();
    const char *config = NULL;
    int c, rc = -1;
    long long n;
    while (rc < 0 && (c = getopt_long(argc, argv, "s:n:o:jc:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            rc = parse_long("train", "seeds", optarg, 1, 64, &n) != 0 ? 2 : -1;
            xo.seeds = (int)n;
            break;
        case 's':
            rc = parse_long("train", "seed", optarg, 0, LLONG_MAX, &n) != 0 ? 2 : -1;
            xo.seed = n;
            break;
        case 'S': rc = set_override(overrides, optarg) != 0 ? 2 : -1; break;
        case 'o': xo.out_dir = optarg; break;
        case 'j': xo.json = 1; break;
        case 'c': config = optarg; break;
        case 'h': fputs(usage_train, stdout); rc = 0; break;
        default: fputs(usage_train, stderr); rc = 2; break;
        }
    }
    if (rc < 0 && optind != argc - 1) {
        fprintf(stderr, "agentcore train: one experiment file is required\n%s", usage_train);
        rc = 2;
    }
    if (rc >= 0) {
        json_decref(overrides);
        return rc;
    }
    xo.path = argv[optind];
    xo.overrides = overrides;
    ac_config_t cfg;
    ac_config_defaults(&cfg);
    rc = 1;
    if (load_config(&cfg, config) != 0)
        goto out;
    xo.lua_dir = cfg.lua_dir;
    xo.plugins_dir = cfg.plugins_dir;
    xo.limits = &cfg.plugin_limits;
    xo.max_failure_rate = cfg.max_failure_rate;
    xo.step_cost_usd = cfg.step_cost_usd;
    /* small matrices: threads cost more than they give */
    ac_blas_set_threads(1);
    ac_err_t err = AC_ERR_INIT;
    if (ac_experiment_run(&xo, &err) != 0) {
        fprintf(stderr, "agentcore train: %s\n", err.message);
        json_t *detail = err.data != NULL ? json_object_get(err.data, "traceback") : NULL;
        if (json_is_string(detail))
            fprintf(stderr, "%s\n", json_string_value(detail));
        ac_err_clear(&err);
        goto out;
    }
    rc = 0;
out:
    json_decref(overrides);
    ac_config_free(&cfg);
    return rc;
}

static int cmd_config(int argc, char **argv)
{
    static const struct option opts[] = {{"reference", no_argument, NULL, 'r'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int reference = 0, json = 0, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r': reference = 1; break;
        case 'j': json = 1; break;
        case 'h': fputs(usage_config, stdout); return 0;
        default: fputs(usage_config, stderr); return 2;
        }
    }
    if (!reference || optind < argc) {
        fputs(usage_config, stderr);
        return 2;
    }
    char *text = NULL;
    if (json) {
        json_t *ref = ac_reference_json();
        text = json_dumps(ref, JSON_INDENT(2));
        json_decref(ref);
    } else {
        text = ac_reference_markdown();
    }
    if (text == NULL) {
        fprintf(stderr, "agentcore config: out of memory\n");
        return 1;
    }
    fputs(text, stdout);
    if (json)
        fputc('\n', stdout);
    free(text);
    return 0;
}

/* A checkpoint file, loaded, with the agent declarations its metadata holds. */
static int load_checkpoint_file(const char *cmd, const char *path, ac_checkpoint_t *ck, ac_agent_decl_t *d)
{
    size_t len = 0;
    char *buf = ac_file_read(path, &len);
    ac_err_t err = AC_ERR_INIT;
    if (buf == NULL) {
        fprintf(stderr, "agentcore %s: cannot read %s\n", cmd, path);
        return -1;
    }
    int rc = ac_checkpoint_load(ck, (const uint8_t *)buf, len, &err);
    free(buf);
    if (rc != 0) {
        fprintf(stderr, "agentcore %s: %s: %s\n", cmd, path, err.message);
        ac_err_clear(&err);
        return -1;
    }
    rc = ac_agent_decl_from_meta(d, ck->meta, ck->meta_len, &err);
    if (rc == 1 && ac_agent_decl_check(d, ac_actor_config(ck->policy), &err) != 0) {
        ac_agent_decl_free(d);
        rc = -1;
    }
    if (rc != 1) {
        fprintf(stderr, "agentcore %s: %s: %s\n", cmd, path,
                rc == 0 ? "the checkpoint carries no agent declarations (use a file of agentcore train --out or "
                          "training.export_checkpoint)"
                        : err.message);
        ac_err_clear(&err);
        ac_checkpoint_release(ck);
        return -1;
    }
    return 0;
}

/* A JSON option's value, or NULL with a message. */
static json_t *json_option(const char *cmd, const char *name, const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (v == NULL)
        fprintf(stderr, "agentcore %s: --%s is not JSON: %s\n", cmd, name, e.text);
    return v;
}

static int parse_long(const char *cmd, const char *name, const char *text, long long min, long long max,
                      long long *out)
{
    char *end;
    long long v = strtoll(text, &end, 10);
    if (*end != '\0' || end == text || v < min || v > max) {
        fprintf(stderr, "agentcore %s: --%s must be an integer from %lld to %lld\n", cmd, name, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_temperature(const char *cmd, const char *text, float *out)
{
    char *end;
    double t = strtod(text, &end);
    if (*end != '\0' || end == text || !(t >= 0.01 && t <= 100)) {
        fprintf(stderr, "agentcore %s: --temperature must be a number from 0.01 to 100\n", cmd);
        return -1;
    }
    *out = (float)t;
    return 0;
}

static void print_json(const json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    if (text != NULL)
        printf("%s\n", text);
    free(text);
}

/* agentcore act's answer: the policy's next call for params (as agents.act takes them), printed
 * as JSON; the error, naming its field, on stderr. 0, or 1. */
static int act_print(const ac_checkpoint_t *ck, const ac_agent_decl_t *d, const json_t *params, ac_infer_opts_t *o,
                     uint64_t seed)
{
    ac_err_t err = AC_ERR_INIT;
    ac_infer_call_t call;
    ac_infer_scratch_t scratch;
    ac_rng_t rng;
    ac_rng_seed(&rng, seed);
    o->rng = &rng;
    json_t *result = NULL;
    int rc = 1;
    if (ac_infer_call_parse(&call, d, params, AC_ERR_INVALID_PARAMS, &err) == 0) {
        if (ac_infer_scratch_init(&scratch, ac_actor_config(ck->policy)->max_tokens, &err) == 0) {
            if (ac_infer_act(ck->policy, d, &call, o, &scratch, &result, &err) == 0) {
                json_object_set_new(result, "checkpoint_iteration", json_integer((json_int_t)ck->iteration));
                print_json(result);
                rc = 0;
            }
            ac_infer_scratch_free(&scratch);
        }
        ac_infer_call_free(&call);
    }
    if (rc != 0) {
        json_t *field = err.data ? json_object_get(err.data, "field") : NULL;
        json_t *what = err.data ? json_object_get(err.data, "error") : NULL;
        fprintf(stderr, "agentcore act: %s%s%s\n", json_is_string(field) ? json_string_value(field) : "",
                json_is_string(field) ? ": " : "", json_is_string(what) ? json_string_value(what) : err.message);
    }
    ac_err_clear(&err);
    json_decref(result);
    return rc;
}

static int cmd_act(int argc, char **argv)
{
    static const struct option opts[] = {
        {"query", required_argument, NULL, 'q'},      {"history", required_argument, NULL, 'H'},
        {"observation", required_argument, NULL, 'o'}, {"candidates", required_argument, NULL, 'C'},
        {"legal", required_argument, NULL, 'l'},      {"top-k", required_argument, NULL, 'k'},
        {"sample", no_argument, NULL, 'S'},           {"temperature", required_argument, NULL, 't'},
        {"seed", required_argument, NULL, 's'},       {"explain", no_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0}};
    json_t *params = json_object();
    long long top_k = 3, seed = 0;
    float temperature = 1.0f;
    int greedy = 1, explain = 0, c, rc = 1;
    while ((c = getopt_long(argc, argv, "q:H:o:C:l:k:St:s:eh", opts, NULL)) != -1) {
        json_t *v = NULL;
        switch (c) {
        case 'q': json_object_set_new(params, "query", json_string(optarg)); break;
        case 'o': json_object_set_new(params, "observation", json_string(optarg)); break;
        case 'H':
        case 'C':
        case 'l': {
            const char *name = c == 'H' ? "history" : c == 'C' ? "candidates" : "legal";
            if ((v = json_option("act", name, optarg)) == NULL)
                goto out;
            json_object_set_new(params, name, v);
            break;
        }
        case 'k':
            if (parse_long("act", "top-k", optarg, 0, AC_INFER_MAX_TOP_K, &top_k) != 0)
                goto out;
            break;
        case 's':
            if (parse_long("act", "seed", optarg, 0, 9007199254740991LL, &seed) != 0)
                goto out;
            break;
        case 't':
            if (parse_temperature("act", optarg, &temperature) != 0)
                goto out;
            break;
        case 'S': greedy = 0; break;
        case 'e': explain = 1; break;
        case 'h': fputs(usage_act, stdout); rc = 0; goto out;
        default: fputs(usage_act, stderr); rc = 2; goto out;
        }
    }
    if (optind != argc - 1 || json_object_get(params, "query") == NULL) {
        fprintf(stderr, "agentcore act: one checkpoint file and --query are required\n%s", usage_act);
        rc = 2;
        goto out;
    }
    ac_checkpoint_t ck;
    ac_agent_decl_t d;
    if (load_checkpoint_file("act", argv[optind], &ck, &d) != 0)
        goto out;
    ac_infer_opts_t o = {greedy, temperature, NULL, (int)top_k, explain};
    rc = act_print(&ck, &d, params, &o, (uint64_t)seed);
    ac_agent_decl_free(&d);
    ac_checkpoint_release(&ck);
out:
    json_decref(params);
    return rc;
}

/* The job's max_steps_per_trajectory, as the checkpoint's metadata has it (else the default). */
static int checkpoint_max_steps(const ac_checkpoint_t *ck)
{
    ac_train_config_t tc;
    ac_train_config_defaults(&tc);
    json_t *meta = ck->meta_len ? json_loadb((const char *)ck->meta, ck->meta_len, 0, NULL) : NULL;
    ac_err_t ignored = AC_ERR_INIT;
    if (json_is_object(json_object_get(meta, "config")))
        ac_train_config_from_json(&tc, json_object_get(meta, "config"), AC_ERR_INVALID_PARAMS, &ignored);
    ac_err_clear(&ignored);
    json_decref(meta);
    return tc.max_steps_per_trajectory;
}

/* agentcore run's answer: one episode of the experiment's agent and reward with the checkpoint's
 * policy, printed as JSON; the error on stderr. 0, or 1. */
static int run_print(const char *experiment, const ac_config_t *cfg, const ac_checkpoint_t *ck,
                     const ac_infer_run_opts_t *o)
{
    ac_err_t err = AC_ERR_INIT;
    char agent_name[128], reward_name[128];
    ac_experiment_opts_t xo = {.path = experiment, .lua_dir = cfg->lua_dir, .plugins_dir = cfg->plugins_dir,
                               .limits = &cfg->plugin_limits};
    ac_lua_host_t *host = NULL;
    ac_agent_t *agent = NULL;
    ac_reward_t *reward = NULL;
    ac_agent_decl_t now = {0};
    json_t *traj = NULL;
    int rc = 1;
    if (ac_experiment_plugins(&xo, agent_name, reward_name, sizeof agent_name, &err) == 0 &&
        (host = ac_lua_host_create(cfg->lua_dir, cfg->plugins_dir, &cfg->plugin_limits, &err)) != NULL &&
        (agent = ac_agent_open(host, agent_name, &err)) != NULL &&
        (reward = ac_reward_open(host, reward_name, &err)) != NULL && ac_agent_decl_of(&now, agent, &err) == 0 &&
        ac_agent_decl_check(&now, ac_actor_config(ck->policy), &err) == 0) {
        int64_t cost = 0;
        if (ac_infer_run(agent, reward, ck->policy, o, &traj, &cost, &err) == 0) {
            json_object_set_new(traj, "checkpoint_iteration", json_integer((json_int_t)ck->iteration));
            print_json(traj);
            rc = 0;
        }
    }
    if (rc != 0) {
        fprintf(stderr, "agentcore run: %s\n", err.message);
        json_t *detail = err.data != NULL ? json_object_get(err.data, "traceback") : NULL;
        if (json_is_string(detail))
            fprintf(stderr, "%s\n", json_string_value(detail));
    }
    ac_err_clear(&err);
    json_decref(traj);
    ac_agent_decl_free(&now);
    ac_reward_close(reward);
    ac_agent_close(agent);
    ac_lua_host_destroy(host);
    return rc;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"checkpoint", required_argument, NULL, 'k'}, {"query", required_argument, NULL, 'q'},
        {"expected", required_argument, NULL, 'x'},   {"max-steps", required_argument, NULL, 'm'},
        {"sample", no_argument, NULL, 'S'},           {"temperature", required_argument, NULL, 't'},
        {"seed", required_argument, NULL, 's'},       {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0}};
    const char *ckpt = NULL, *query = NULL, *config = NULL;
    json_t *expected = NULL;
    long long max_steps = 0, seed = 0;
    float temperature = 1.0f;
    int greedy = 1, c, rc = 1;
    ac_config_t cfg;
    ac_config_defaults(&cfg);
    while ((c = getopt_long(argc, argv, "k:q:x:m:St:s:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': ckpt = optarg; break;
        case 'q': query = optarg; break;
        case 'c': config = optarg; break;
        case 'x':
            json_decref(expected);
            if ((expected = json_option("run", "expected", optarg)) == NULL)
                goto out;
            break;
        case 'm':
            if (parse_long("run", "max-steps", optarg, 1, 1000, &max_steps) != 0)
                goto out;
            break;
        case 's':
            if (parse_long("run", "seed", optarg, 0, 9007199254740991LL, &seed) != 0)
                goto out;
            break;
        case 't':
            if (parse_temperature("run", optarg, &temperature) != 0)
                goto out;
            break;
        case 'S': greedy = 0; break;
        case 'h': fputs(usage_run, stdout); rc = 0; goto out;
        default: fputs(usage_run, stderr); rc = 2; goto out;
        }
    }
    if (optind != argc - 1 || ckpt == NULL || query == NULL || query[0] == '\0') {
        fprintf(stderr, "agentcore run: one experiment file, --checkpoint and --query are required\n%s", usage_run);
        rc = 2;
        goto out;
    }
    if (load_config(&cfg, config) != 0)
        goto out;
    ac_checkpoint_t ck;
    ac_agent_decl_t d;
    if (load_checkpoint_file("run", ckpt, &ck, &d) != 0)
        goto out;
    if (max_steps == 0)
        max_steps = checkpoint_max_steps(&ck);
    ac_infer_run_opts_t o = {query,      expected,        (int)max_steps,
                             greedy,     temperature,     (uint64_t)seed,
                             ac_usd_to_micro(cfg.step_cost_usd), -1};
    rc = run_print(argv[optind], &cfg, &ck, &o);
    ac_agent_decl_free(&d);
    ac_checkpoint_release(&ck);
out:
    json_decref(expected);
    ac_config_free(&cfg);
    return rc;
}

static int cmd_migrate(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"dsn", required_argument, NULL, 'd'},
                                         {"check", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *dsn = NULL;
    int check = 0, c;
    while ((c = getopt_long(argc, argv, "c:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'd': dsn = optarg; break;
        case 'k': check = 1; break;
        case 'h': fputs(usage_migrate, stdout); return 0;
        default: fputs(usage_migrate, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "agentcore migrate: unexpected argument '%s'\n%s", argv[optind], usage_migrate);
        return 2;
    }
    ac_config_t cfg;
    ac_config_defaults(&cfg);
    int rc = 1;
    if (load_config(&cfg, config) != 0)
        goto out;
    /* not ac_config_finish: migrating needs no JWT secret */
    const char *env = getenv("AGENTCORE_STORE_DSN");
    if (dsn == NULL)
        dsn = env != NULL && env[0] != '\0' ? env : cfg.store_dsn;
    if (dsn == NULL || dsn[0] == '\0') {
        fprintf(stderr, "agentcore migrate: no database: give --dsn, AGENTCORE_STORE_DSN or store.dsn\n");
        rc = 2;
        goto out;
    }
    ac_err_t err = AC_ERR_INIT;
    int from = 0, to = 0;
    if (ac_pg_migrate(dsn, !check, &from, &to, &err) != 0) {
        fprintf(stderr, "agentcore migrate: %s\n", err.message);
        ac_err_clear(&err);
        goto out;
    }
    printf("schema version %d -> %d (this agentcore: %d)\n", from, to, ac_pg_schema_version());
    rc = to == ac_pg_schema_version() ? 0 : 1;
out:
    ac_config_free(&cfg);
    return rc;
}

static void print_version(void)
{
    printf("agentcore %s\n", AC_VERSION);
    printf("blas: OpenBLAS kernel %s (CPU suggests %s)\n", ac_blas_kernel(),
           ac_blas_cpu_coretype() ? ac_blas_cpu_coretype() : "the library default");
}

/* Picks the fastest correct OpenBLAS kernel (core/engine/blas.h): re-executes once with
 * OPENBLAS_CORETYPE set from CPUID, then checks sgemm against a double reference and falls
 * back to the library's default kernel when the chosen one computes wrong results. */
static int blas_setup(int argc, char **argv)
{
    ac_blas_maybe_reexec(argc, argv);
    ac_err_t err = AC_ERR_INIT;
    if (ac_blas_selfcheck(&err) != 0) {
        ac_blas_fallback_reexec(argv, &err);
        fprintf(stderr, "agentcore: %s\n", err.message);
        ac_err_clear(&err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    int needs_blas = strcmp(cmd, "serve") == 0 || strcmp(cmd, "train") == 0 || strcmp(cmd, "act") == 0 ||
                     strcmp(cmd, "run") == 0 || strcmp(cmd, "--version") == 0 ||
                     strcmp(cmd, "version") == 0;
    if (needs_blas && blas_setup(argc, argv) != 0)
        return 1;
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        print_version();
        return 0;
    }
    /* each command parses its own options from its name on */
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "token") == 0)
        return cmd_token(argc - 1, argv + 1);
    if (strcmp(cmd, "train") == 0)
        return cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "config") == 0)
        return cmd_config(argc - 1, argv + 1);
    if (strcmp(cmd, "act") == 0)
        return cmd_act(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "migrate") == 0)
        return cmd_migrate(argc - 1, argv + 1);
    fprintf(stderr, "agentcore: unknown command '%s'\n%s", cmd, usage_main);
    return 2;
}
