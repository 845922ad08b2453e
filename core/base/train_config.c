#include "base/train_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const loss_names[] = {"grpo", "dr_grpo", "dapo", NULL};
static const char *const advantage_names[] = {"group", "rloo", "batch", NULL};
static const char *const policy_names[] = {"bag", "sequence", NULL};

#define F(name, type, min, max, def, choices, doc)                                                                 \
    {#name, type, min, max, def, choices, offsetof(ac_train_config_t, name), doc}
/* a key of the nested `policy` object */
#define P(key, member, type, min, max, def, choices, doc)                                                         \
    {"policy." key, type, min, max, def, choices, offsetof(ac_train_config_t, member), doc}

const ac_config_field_t ac_train_config_fields[] = {
    F(n_iterations, AC_F_INT, 1, 10000, 1000, NULL, "training iterations"),
    F(batch_size, AC_F_INT, 1, 128, 16, NULL, "queries per iteration"),
    F(n_trajectories_per_query, AC_F_INT, 1, 16, 8, NULL, "rollouts per query (the group)"),
    F(learning_rate, AC_F_NUMBER, 0.0, 1.0, 0.0001, NULL, "Adam step size"),
    F(max_budget_usd, AC_F_NUMBER, 0.0, 1e9, 100.0, NULL, "the job stops before its cost would pass this"),
    F(checkpoint_interval, AC_F_INT, 1, 10000, 10, NULL, "iterations between checkpoints"),
    F(max_steps_per_trajectory, AC_F_INT, 1, 100, 20, NULL, "steps before an episode is cut off"),
    F(gamma, AC_F_NUMBER, 0.0, 1.0, 0.99, NULL, "discount of per-step rewards"),
    F(loss_type, AC_F_ENUM, 0, 2, AC_LOSS_GRPO, loss_names,
      "how per-decision losses are averaged (docs/grpo.md, \"Loss\"); \"dapo\" also resamples groups without signal"),
    F(epsilon, AC_F_NUMBER, 0.0, 1.0, 0.2, NULL, "clip range of the probability ratio"),
    F(epsilon_high, AC_F_NUMBER, -1.0, 10.0, -1.0, NULL,
      "upper clip range (DAPO clip-higher); -1: epsilon, or 0.28 with loss_type \"dapo\""),
    F(beta, AC_F_NUMBER, 0.0, 10.0, 0.04, NULL,
      "KL penalty weight to the reference policy; 0 with loss_type \"dapo\" unless given"),
    F(mu, AC_F_INT, 1, 16, 1, NULL, "optimisation epochs over the same rollouts"),
    F(entropy_coef, AC_F_NUMBER, 0.0, 1.0, 0.0, NULL, "entropy bonus weight"),
    F(scale_rewards, AC_F_BOOL, 0, 1, 1, NULL, "divide advantages by the group's reward std"),
    F(mask_truncated, AC_F_BOOL, 0, 1, 0, NULL, "episodes cut off at max steps carry no gradient"),
    F(temperature, AC_F_NUMBER, 0.05, 10.0, 1.0, NULL, "sampling temperature of rollouts"),
    F(max_grad_norm, AC_F_NUMBER, 0.0, 1e6, 1.0, NULL, "global gradient-norm clip; 0: off"),
    F(hidden_size, AC_F_INT, 4, 1024, 64, NULL, "bag policy: hidden layer width"),
    F(embed_dim, AC_F_INT, 4, 512, 64, NULL, "bag policy: embedding width"),
    F(n_buckets, AC_F_INT, 64, 1 << 20, 4096, NULL, "hashed feature buckets: the words and n-grams the policy tells apart"),
    F(seed, AC_F_INT, 0, 2147483647, 0, NULL, "random seed; 0: derived from the job id"),
    F(dapo_max_draws, AC_F_INT, 1, 16, 4, NULL,
      "DAPO dynamic sampling: rollouts per iteration at most, in batches (batch_size x group)"),
    F(advantage, AC_F_ENUM, 0, 2, AC_ADV_GROUP, advantage_names,
      "each rollout's baseline: its group's mean, the rest of its group (RLOO) or the batch's mean; a group of "
      "one always uses the batch's"),
    F(validation_fraction, AC_F_NUMBER, 0.05, 0.5, 0.2, NULL,
      "without validation_data: this share of training_data (at least 20 queries) is held out to select checkpoints"),
    F(eval_interval, AC_F_INT, 1, 10000, 10, NULL,
      "iterations between greedy evaluations on the validation set (the learning curve)"),
    P("kind", policy_kind, AC_F_ENUM, 0, 1, 0, policy_names,
      "bag | sequence: how the policy reads what it sees (docs/grpo.md, \"The policy\")"),
    P("max_tokens", max_tokens, AC_F_INT, 16, 256, 256, NULL,
      "tokens of context the policy sees at most (the oldest steps are dropped first)"),
    P("d_model", d_model, AC_F_INT, 8, 256, 64, NULL, "sequence: Transformer width"),
    P("n_heads", n_heads, AC_F_INT, 1, 8, 4, NULL, "sequence: attention heads (d_model must be a multiple)"),
    P("n_layers", n_layers, AC_F_INT, 1, 4, 2, NULL, "sequence: Transformer layers"),
    P("d_ff", d_ff, AC_F_INT, 8, 1024, 128, NULL, "sequence: hidden width of each layer's MLP"),
    {NULL, 0, 0, 0, 0, NULL, 0, NULL},
};

void ac_train_config_defaults(ac_train_config_t *c)
{
    memset(c, 0, sizeof *c);
    for (const ac_config_field_t *f = ac_train_config_fields; f->name; f++) {
        char *p = (char *)c + f->offset;
        if (f->type == AC_F_NUMBER)
            *(double *)p = f->def;
        else
            *(int *)p = (int)f->def;
    }
}

static void fmt_num(char *buf, size_t len, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, len, "%.0f", v);
    else
        snprintf(buf, len, "%g", v);
}

static int range_error(const ac_config_field_t *f, int code, ac_err_t *err)
{
    char lo[32], hi[32];
    fmt_num(lo, sizeof lo, f->min);
    fmt_num(hi, sizeof hi, f->max);
    if (f->max >= 1e9)
        return ac_err_field(err, code, f->name, "Must be at least %s", lo);
    return ac_err_field(err, code, f->name, "Must be between %s and %s", lo, hi);
}

/* Reads one value into field f. */
static int read_field(ac_train_config_t *c, const ac_config_field_t *f, const json_t *v, int code, ac_err_t *err)
{
    c->given |= (uint64_t)1 << (f - ac_train_config_fields);
    char *p = (char *)c + f->offset;
    switch (f->type) {
    case AC_F_INT: {
        double d = json_is_integer(v) ? (double)json_integer_value(v) : json_is_real(v) ? json_real_value(v) : NAN;
        if (isnan(d) || d != floor(d))
            return ac_err_field(err, code, f->name, "Must be an integer");
        if (d < f->min || d > f->max)
            return range_error(f, code, err);
        *(int *)p = (int)d;
        return 0;
    }
    case AC_F_NUMBER: {
        if (!json_is_number(v))
            return ac_err_field(err, code, f->name, "Must be a number");
        double d = json_number_value(v);
        if (!(d >= f->min && d <= f->max))
            return range_error(f, code, err);
        *(double *)p = d;
        return 0;
    }
    case AC_F_BOOL:
        if (!json_is_boolean(v))
            return ac_err_field(err, code, f->name, "Must be a boolean");
        *(int *)p = json_is_true(v);
        return 0;
    default: {
        int idx = -1;
        for (int i = 0; json_is_string(v) && f->choices[i]; i++)
            if (strcmp(f->choices[i], json_string_value(v)) == 0)
                idx = i;
        if (idx < 0) {
            char list[128] = "";
            for (int i = 0; f->choices[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", f->choices[i]);
            return ac_err_field(err, code, f->name, "Must be one of: %s", list);
        }
        *(int *)p = idx;
        return 0;
    }
    }
}

/* The keys of obj, each named prefix + key in the field table. */
static int read_object(ac_train_config_t *c, const json_t *obj, const char *prefix, int code, ac_err_t *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        char name[96];
        snprintf(name, sizeof name, "%s%s", prefix, key);
        if (prefix[0] == '\0' && strcmp(key, "policy") == 0) {
            if (!json_is_object(v))
                return ac_err_field(err, code, "policy", "Must be an object {kind, ...}");
            if (read_object(c, v, "policy.", code, err) != 0)
                return -1;
            continue;
        }
        const ac_config_field_t *f = ac_train_config_fields;
        while (f->name && strcmp(f->name, name) != 0)
            f++;
        if (f->name == NULL)
            return ac_err_field(err, code, name, "Unknown configuration field");
        if (read_field(c, f, v, code, err) != 0)
            return -1;
    }
    return 0;
}

int ac_train_config_from_json(ac_train_config_t *c, const json_t *obj, int code, ac_err_t *err)
{
    if (read_object(c, obj, "", code, err) != 0)
        return -1;
    if (c->policy_kind == AC_POLICY_KIND_SEQUENCE && c->d_model % c->n_heads != 0)
        return ac_err_field(err, code, "policy.n_heads", "Must divide policy.d_model (%d)", c->d_model);
    return 0;
}

json_t *ac_train_config_to_json(const ac_train_config_t *c)
{
    json_t *o = json_object(), *policy = json_object();
    for (const ac_config_field_t *f = ac_train_config_fields; f->name; f++) {
        const char *p = (const char *)c + f->offset;
        json_t *v = NULL;
        switch (f->type) {
        case AC_F_INT: v = json_integer(*(const int *)p); break;
        case AC_F_NUMBER: v = json_real(*(const double *)p); break;
        case AC_F_BOOL: v = json_boolean(*(const int *)p); break;
        case AC_F_ENUM: v = json_string(f->choices[*(const int *)p]); break;
        }
        if (strncmp(f->name, "policy.", 7) == 0)
            json_object_set_new(policy, f->name + 7, v);
        else
            json_object_set_new(o, f->name, v);
    }
    json_object_set_new(o, "policy", policy);
    return o;
}

json_t *ac_train_config_schema(void)
{
    json_t *props = json_object();
    for (const ac_config_field_t *f = ac_train_config_fields; f->name; f++) {
        json_t *p = json_pack("{s:s}", "description", f->doc);
        switch (f->type) {
        case AC_F_INT:
            json_object_set_new(p, "type", json_string("integer"));
            json_object_set_new(p, "minimum", json_integer((json_int_t)f->min));
            json_object_set_new(p, "maximum", json_integer((json_int_t)f->max));
            json_object_set_new(p, "default", json_integer((json_int_t)f->def));
            break;
        case AC_F_NUMBER:
            json_object_set_new(p, "type", json_string("number"));
            json_object_set_new(p, "minimum", json_real(f->min));
            json_object_set_new(p, "maximum", json_real(f->max));
            json_object_set_new(p, "default", json_real(f->def));
            break;
        case AC_F_BOOL:
            json_object_set_new(p, "type", json_string("boolean"));
            json_object_set_new(p, "default", json_boolean(f->def != 0));
            break;
        case AC_F_ENUM: {
            json_t *choices = json_array();
            for (int i = 0; f->choices[i]; i++)
                json_array_append_new(choices, json_string(f->choices[i]));
            json_object_set_new(p, "type", json_string("string"));
            json_object_set_new(p, "enum", choices);
            json_object_set_new(p, "default", json_string(f->choices[(int)f->def]));
            break;
        }
        }
        json_object_set_new(props, f->name, p);
    }
    return json_pack("{s:s, s:s, s:o, s:b}", "title", "GRPOConfig", "type", "object", "properties", props,
                     "additionalProperties", 0);
}

int64_t ac_usd_to_micro(double usd)
{
    return (int64_t)llround(usd * 1e6);
}

char *ac_micro_to_usd_str(char *buf, size_t len, int64_t micro)
{
    /* round half away from zero to cents, in integers */
    int64_t cents = (micro >= 0 ? micro + 5000 : micro - 5000) / 10000;
    int64_t a = cents < 0 ? -cents : cents;
    snprintf(buf, len, "%s%lld.%02lld", cents < 0 ? "-" : "", (long long)(a / 100), (long long)(a % 100));
    return buf;
}

static int given(const ac_train_config_t *c, const char *name)
{
    for (const ac_config_field_t *f = ac_train_config_fields; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return (c->given >> (f - ac_train_config_fields)) & 1;
    return 0;
}

void ac_train_config_resolve(ac_train_config_t *c)
{
    if (c->loss_type == AC_LOSS_DAPO) {
        if (!given(c, "epsilon_high"))
            c->epsilon_high = 0.28;
        if (!given(c, "beta"))
            c->beta = 0.0;
    }
}
