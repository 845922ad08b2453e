/* The training configuration (docs/api.md "GRPOConfig" plus the engine's options), declared once as
 * a table of fields: the JSON-RPC layer and the offline experiment loader both validate and fill
 * it from here, and the table is what discovery documents. */
#ifndef AC_TRAIN_CONFIG_H
#define AC_TRAIN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef enum ac_loss_type { AC_LOSS_GRPO, AC_LOSS_DR_GRPO, AC_LOSS_DAPO } ac_loss_type_t;
typedef enum ac_advantage { AC_ADV_GROUP, AC_ADV_RLOO, AC_ADV_BATCH } ac_advantage_t;
typedef enum ac_policy_kind { AC_POLICY_KIND_BAG, AC_POLICY_KIND_SEQUENCE } ac_policy_kind_t; /* = AC_ACTOR_* */

typedef struct ac_train_config {
    /* GRPOConfig of docs/api.md */
    int n_iterations;
    int batch_size;
    int n_trajectories_per_query;
    double learning_rate;
    double max_budget_usd;
    int checkpoint_interval;
    int max_steps_per_trajectory;
    double gamma;
    /* engine options (docs/grpo.md) */
    int loss_type;       /* ac_loss_type_t */
    double epsilon;      /* clip range below 1 (and above, unless epsilon_high is set) */
    double epsilon_high; /* clip range above 1; <0 means: equal to epsilon */
    double beta;         /* KL penalty weight (k3 estimator) */
    int mu;              /* optimisation epochs over the same rollouts */
    double entropy_coef;
    int scale_rewards;   /* divide advantages by the group std (0: Dr. GRPO) */
    int mask_truncated;  /* episodes cut at max_steps carry no gradient */
    double temperature;  /* sampling temperature for rollouts */
    double max_grad_norm;
    int hidden_size;
    int embed_dim;
    int n_buckets;
    int seed;            /* 0: derived from the job id */
    int dapo_max_draws;  /* DAPO dynamic sampling: rollouts per iteration at most, in batches */
    int advantage;       /* ac_advantage_t */
    double validation_fraction; /* held out of training_data for validation when none is given */
    int eval_interval;   /* iterations between validation evaluations (learning curve) */
    /* the policy (JSON: a nested object "policy": {kind, max_tokens, d_model, ...}) */
    int policy_kind;     /* ac_policy_kind_t */
    int max_tokens;
    int d_model, n_heads, n_layers, d_ff;
    uint64_t given;      /* bit i: field i of ac_train_config_fields was set explicitly */
} ac_train_config_t;

typedef enum ac_field_type { AC_F_INT, AC_F_NUMBER, AC_F_BOOL, AC_F_ENUM } ac_field_type_t;

typedef struct ac_config_field {
    const char *name;
    ac_field_type_t type;
    double min, max, def;
    const char *const *choices; /* AC_F_ENUM: NULL-terminated names; the value is the index */
    size_t offset;
    const char *doc;
} ac_config_field_t;

/* The fields, terminated by {NULL}. The keys of the nested "policy" object are named
 * "policy.<key>" (in errors' data.field too). */
extern const ac_config_field_t ac_train_config_fields[];

void ac_train_config_defaults(ac_train_config_t *c);

/* Reads a JSON object over c (absent keys keep their values; the keys read are marked in
 * c->given). A wrong type, a value out of range or an unknown key fails with `code` and data
 * {field, error} as docs/api.md shows ("Must be between 1 and 10000"). */
int ac_train_config_from_json(ac_train_config_t *c, const json_t *obj, int code, ac_err_t *err);

/* Settings that follow from others unless given: loss_type "dapo" means epsilon_high 0.28 and
 * beta 0 (DAPO's published recipe). Call once, after reading what the user sent. */
void ac_train_config_resolve(ac_train_config_t *c);

/* The whole config as a JSON object (every field, enums by name). New reference. */
json_t *ac_train_config_to_json(const ac_train_config_t *c);

/* The fields as a JSON Schema object (type, minimum, maximum, default, description, enum), as
 * rpc.discover publishes it (components.schemas.GRPOConfig): what a client needs to build a form.
 * New reference. */
json_t *ac_train_config_schema(void);

/* USD as integer micro-dollars, so that budgets add up exactly. */
int64_t ac_usd_to_micro(double usd);
/* "12.50": two decimals, as docs/api.md shows cost_usd and budget_usd. buf: at least 32 bytes. */
char *ac_micro_to_usd_str(char *buf, size_t len, int64_t micro);

#endif
