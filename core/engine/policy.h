/* The neural policy: hashed word n-gram features -> embedding bag -> dense layers -> masked
 * softmax over the agent's actions.
 *
 *   text --featurize--> ids (sparse, per state)           ac_policy_featurize / ac_policy_batch_add
 *   x   = mean_{id in state} E[id]        x: (N, d_emb)    embedding bag
 *   h_l = act(h_{l-1} W_l + b_l)          h_l: (N, hidden[l])   cblas_sgemm over the whole batch
 *   z   = h_L W_out + b_out               z: (N, n_actions) logits
 *   logp = log_softmax(z) over legal actions; illegal entries are -INFINITY (probability 0)
 *
 * All parameters live in ONE contiguous float array (params), gradients in a second one of the
 * same layout (grads), so Adam, clipping, copying the reference policy and checkpointing are flat
 * loops or memcpy. Layout: E (n_buckets, d_emb), then per dense layer l = 0..n_hidden:
 * W_l (in_l, out_l) row-major and b_l (out_l). The last dense layer is the output layer.
 *
 * Thread safety: a policy is used by one thread at a time (its workspace is shared by forward and
 * backward). Clone it for another thread. */
#ifndef AC_POLICY_H
#define AC_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/rng.h"

#define AC_POLICY_MAX_HIDDEN 4

enum { AC_POLICY_TANH = 0, AC_POLICY_RELU = 1 };

typedef struct ac_policy_config {
    int n_buckets;                    /* feature ids are hashed into [0, n_buckets) */
    int d_emb;                        /* embedding width */
    int n_hidden;                     /* hidden layers, 0..AC_POLICY_MAX_HIDDEN */
    int hidden[AC_POLICY_MAX_HIDDEN]; /* their widths */
    int activation;                   /* AC_POLICY_TANH or AC_POLICY_RELU, every hidden layer */
    int n_actions;                    /* the agent's max action count: output width */
    int max_features;                 /* per-state cap on feature ids (unigrams + bigrams) */
    uint64_t seed;                    /* initialisation; equal configs give equal parameters */
} ac_policy_config_t;

/* ---- featurizer ------------------------------------------------------------------------- */

/* Words are maximal runs of ASCII letters/digits (lowercased) and bytes >= 0x80 (UTF-8 kept as
 * is); everything else separates. Emits, in text order, unigram(w1), unigram(w2), bigram(w1 w2),
 * unigram(w3), bigram(w2 w3), ... as FNV-1a-64 hashes (unigrams and bigrams tagged differently so
 * they do not collide by construction), mixed and reduced mod n_buckets. Stops after `cap` ids
 * (the per-state cap). Duplicates are kept: the bag mean then weighs a repeated word more.
 * Returns the number of ids written (0 for text without words). */
int ac_policy_featurize(int *ids, int cap, const char *text, size_t len, int n_buckets);

/* A batch of featurized states in CSR form. Grows on demand; reuse it (clear) across steps so
 * the hot path does not allocate. */
typedef struct ac_policy_batch {
    int n;            /* states in the batch */
    int n_buckets;    /* from the config it was made for: forward checks that it matches */
    int max_features; /* per-state cap */
    int _cap;         /* states the arrays hold */
    int *offsets;     /* (_cap + 1): ids of state i are ids[offsets[i] .. offsets[i + 1]) */
    int *ids;         /* (_cap * max_features): feature ids in [0, n_buckets) */
} ac_policy_batch_t;

/* Prepares an empty batch for cfg with room for `cap` states (it grows past that).
 * -1 with AC_ERR_INTERNAL on allocation failure, AC_ERR_INVALID_PARAMS on a bad config. */
int ac_policy_batch_init(ac_policy_batch_t *b, const ac_policy_config_t *cfg, int cap, ac_err_t *err);
/* Frees the arrays; the struct may be init'ed again. NULL or zeroed struct: no-op. */
void ac_policy_batch_free(ac_policy_batch_t *b);
/* Empties the batch, keeping its memory. */
void ac_policy_batch_clear(ac_policy_batch_t *b);
/* Featurizes `text` as the next state. Returns its index in the batch, or -1 (allocation). */
int ac_policy_batch_add(ac_policy_batch_t *b, const char *text, size_t len, ac_err_t *err);

/* ---- the network ------------------------------------------------------------------------ */

typedef struct ac_policy {
    ac_policy_config_t cfg;
    float temperature; /* the logits are divided by it before the softmax (1 when created): a
                          policy that samples and trains at the same temperature has ratio 1
                          on-policy. Not part of the weights (checkpoints leave it out). */
    size_t n_params;
    float *params; /* (n_params) every weight, layout above; owned */
    float *grads;  /* (n_params) gradient accumulated by backward, same layout; owned */
    int n_layers;  /* dense layers: n_hidden + 1 */
    int dim[AC_POLICY_MAX_HIDDEN + 2];      /* dim[0] = d_emb; dim[l + 1] = out width of layer l */
    size_t off_w[AC_POLICY_MAX_HIDDEN + 1]; /* offset of W_l (dim[l], dim[l + 1]) in params */
    size_t off_b[AC_POLICY_MAX_HIDDEN + 1]; /* offset of b_l (dim[l + 1]) in params */
    /* workspace, grown by ac_policy_reserve, reused across calls */
    int _cap;                                 /* states the workspace holds */
    int _n_fwd;                               /* states in the last forward (for backward) */
    float *_act[AC_POLICY_MAX_HIDDEN + 2];    /* _act[l] (_cap, dim[l]): input of dense layer l
                                                 (_act[0] = bag means, then post-activation
                                                 outputs); _act[n_layers] = logits (_cap, n_actions) */
    float *_dbuf[2];                          /* (_cap, max dim) backward ping-pong */
} ac_policy_t;

/* Validates cfg and allocates a policy with parameters initialised from cfg.seed: E ~ N(0, 1);
 * hidden W Xavier-normal (tanh, std sqrt(2/(in+out))) or He-normal (relu, std sqrt(2/in));
 * output W Xavier-normal scaled by 0.1 so the initial policy is close to uniform over the legal
 * actions (early rollouts explore); biases 0. Returns NULL with AC_ERR_INVALID_PARAMS (field
 * named in data) or AC_ERR_INTERNAL (memory). Free with ac_policy_destroy. */
ac_policy_t *ac_policy_create(const ac_policy_config_t *cfg, ac_err_t *err);
/* NULL: no-op. */
void ac_policy_destroy(ac_policy_t *p);
/* A new policy with src's config and parameters (grads zeroed, own workspace): the frozen
 * reference policy. NULL with AC_ERR_INTERNAL on allocation failure. */
ac_policy_t *ac_policy_clone(const ac_policy_t *src, ac_err_t *err);
/* This policy's layers learn at learning_rate x this: Adam moves every weight by about the
 * learning rate per step, and these weights (embeddings N(0, 1), dense layers of width 64) only
 * change the policy at a useful pace with steps of about 1e-2, while the usual learning rate of
 * GRPO configs (and the API's default) is 1e-4. Jobs train the actor (actor.h), whose bag learns
 * at AC_ACTOR_BAG_LR_SCALE. docs/grpo.md, "Learning rate". */
#define AC_POLICY_LR_SCALE 100.0f

/* The policy's parameter groups for the optimiser (ac_optim_set_lr_scale): ends (n) and scale
 * (n) out, n <= AC_POLICY_MAX_HIDDEN + 2. Returns n. */
int ac_policy_lr_groups(const ac_policy_t *p, size_t *ends, float *scale);

/* Ensures the workspace holds n states, so that later forwards of <= n states never allocate. */
int ac_policy_reserve(ac_policy_t *p, int n, ac_err_t *err);
/* grads = 0. */
void ac_policy_zero_grad(ac_policy_t *p);

/* Fast forward (cblas_sgemm over all states at once).
 *   logp (b->n, n_actions) out: log-probabilities, -INFINITY where mask is 0
 *   mask (b->n, n_actions): 1 = legal action; NULL = all legal
 * Keeps the activations for ac_policy_backward. -1 with AC_ERR_INVALID_PARAMS when a state has no
 * legal action or the batch was made for another n_buckets; AC_ERR_INTERNAL on memory. */
int ac_policy_forward(ac_policy_t *p, float *logp, const ac_policy_batch_t *b, const uint8_t *mask,
                      ac_err_t *err);

/* Naive reference forward: plain loops, double precision throughout, its own scratch (allocates;
 * tests and checks only). Same contract as ac_policy_forward; does not touch the workspace. */
int ac_policy_forward_ref(const ac_policy_t *p, double *logp, const ac_policy_batch_t *b,
                          const uint8_t *mask, ac_err_t *err);

/* Backward of the last ac_policy_forward (same batch, no other forward in between):
 *   dlogits (n, n_actions): dL/dlogits, 0 at illegal actions (ac_grpo_loss and
 *   ac_policy_log_softmax_backward produce that)
 * ACCUMULATES into p->grads (+=): call ac_policy_zero_grad first for a fresh gradient. */
int ac_policy_backward(ac_policy_t *p, const float *dlogits, const ac_policy_batch_t *b, ac_err_t *err);

/* Masked log-softmax kernels (used by forward; public for GRPO and tests).
 * forward: logp (N, A) out, logits (N, A), mask (N, A) or NULL. Returns -1 - i when state i has
 * no legal action, else 0.
 * backward: dlogits (N, A) out (overwritten) = dL/dz from dlogp = dL/dlogp (N, A) and the forward's
 * logp: dz_b = dlogp_b - p_b * sum_a dlogp_a over legal a, b; 0 at illegal b. */
int ac_policy_log_softmax_forward(float *logp, const float *logits, const uint8_t *mask, int N, int A);
void ac_policy_log_softmax_backward(float *dlogits, const float *dlogp, const float *logp, int N, int A);

/* ---- acting ----------------------------------------------------------------------------- */

/* Samples an action from one row of forward's logp (A entries, -INFINITY = illegal) at
 * `temperature` (<= 0 means greedy). *logp_taken (may be NULL) receives the log-probability under
 * the distribution actually sampled from (tempered when temperature != 1): store it as the
 * behaviour log-prob. Returns -1 when the row has no legal action. */
int ac_policy_sample(const float *logp, int A, float temperature, ac_rng_t *rng, float *logp_taken);

/* argmax of a logp row over legal actions (lowest index on ties); -1 when none is legal. */
int ac_policy_greedy(const float *logp, int A);

#endif
