/* The policy that acts: given what it has seen (a context, engine/context.h), which tool to call
 * and, for each of the tool's arguments, which candidate to pass.
 *
 * A step is a sequence of DECISIONS: first the tool (a categorical over the agent's tools, masked
 * by agent.legal and by tools whose arguments have no candidate), then each argument slot of the
 * chosen tool in order, a pointer over the slot's candidate tokens. The action's log-probability
 * is the sum of its decisions'; GRPO treats each decision as a token (engine/grpo.h).
 *
 * Two kinds share the heads and differ in how they read the context:
 *
 *   bag       h = relu(W0 mean(E[hashed unigrams and bigrams of the tokens]) + b0)   (dim H)
 *             candidate j: mean(Ec[hashed features of token j and its neighbourhood])
 *             both also read the query from its CURSOR: the last query token whose value an
 *             earlier call of the episode passed (else the query's start); the words just after
 *             it are what a step-by-step request asks for next (engine/actor_bag.c)
 *   sequence  the bag's reading plus a Transformer's: token embeddings (hashed words and their
 *             first and last three letters, number value features, kind, segment, age, copy
 *             flags, ordinal, sinusoidal position) -> pre-norm Transformer (engine/encoder.h);
 *             h += the mean output, candidate j += token j's output
 *
 *   tool logits       z = Wt h + bt
 *   slot k of tool a  q = Wq h + S[slot(a, k)] + U (sum of the candidates chosen before it)
 *                     score_j = (Wk c_j) . q / sqrt(H)     over the slot's candidates c_j
 *
 * Logits are divided by the temperature before the softmax (the rollout samples and the trainer
 * trains at the same temperature: the ratio is 1 on-policy).
 *
 * All parameters live in ONE float array (params) and gradients in another of the same layout,
 * so Adam, clipping, the reference copy and checkpoints stay flat. An actor is used by one thread
 * at a time (its workspace holds the last forward for backward); clone it for another. */
#ifndef AC_ACTOR_H
#define AC_ACTOR_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/rng.h"
#include "engine/context.h"
#include "engine/encoder.h"

enum ac_actor_kind {
    AC_ACTOR_BAG = 0,
    AC_ACTOR_SEQUENCE = 1,
    AC_ACTOR_KEYWORD = 2, /* not trained: the keyword rule baseline (engine/keyword.h) acting */
};

#define AC_ACTOR_MAX_SLOTS 256 /* argument slots over all tools */
#define AC_ACTOR_MAX_CANDS 256 /* candidates of one decision */
#define AC_ACTOR_DEFAULT_MAX_TOKENS 128
/* The bag's feature sets. A checkpoint keeps its policy's, so that it reads as it was trained:
 * 0 (checkpoints before the cursor) has no cursor features and 256 features a state at most; 1
 * mixes the words ahead of the cursor into one mean with the rest; 2 (STEMS) gives them their own
 * mean and adds their stems; 3 (ROWS) moves the cursor over the words of a result row whose value
 * a call used; 4 (TAKEN) counts a query's number as passed only when a call took it from that
 * token, not an equal value from a result (AC_TOKF_TAKEN); 5 (HISTORY) adds a mean of its own over
 * what each earlier step did (its tool and the first key of its result; engine/actor_bag.c); 6
 * (CLAUSES) places a query token after the cursor by its clause, not by how many tokens it stands
 * from the cursor. */
enum {
    AC_ACTOR_READER_V0 = 0,
    AC_ACTOR_READER_CURSOR = 1,
    AC_ACTOR_READER_STEMS = 2,
    AC_ACTOR_READER_ROWS = 3,
    AC_ACTOR_READER_TAKEN = 4,
    AC_ACTOR_READER_HISTORY = 5,
    AC_ACTOR_READER_CLAUSES = 6,
    AC_ACTOR_READER_CURRENT = AC_ACTOR_READER_CLAUSES
};
/* learning-rate multipliers (ac_actor_lr_groups): the default learning_rate 1e-4 moves the bag
 * by 5e-3 an Adam step. x100, chosen when its state embeddings still started at N(0, 1), stalled
 * some of the support agent's runs (validation, seeds 1-4 at x25 / x50 / x100 / x200: 0.89 /
 * 0.97 / 0.85 / 0.68; calculator, inventory and files within 0.02 of each other at x50 and x100).
 * docs/grpo.md, "Learning rate". */
#define AC_ACTOR_BAG_LR_SCALE 50.0f
#define AC_ACTOR_SEQ_LR_SCALE 100.0f

typedef struct ac_actor_config {
    int kind;                                   /* ac_actor_kind */
    int reader;                                 /* the bag's feature set: AC_ACTOR_READER_* */
    int n_tools;                                /* 1..AC_AGENT_MAX_ACTIONS */
    int n_args[AC_AGENT_MAX_ACTIONS];           /* per tool */
    int max_tokens;                             /* context cap (sequence: the encoder's max_len) */
    uint64_t seed;                              /* initialisation */
    /* bag */
    int n_buckets;                              /* hashed features */
    int d_emb;
    int hidden;                                 /* H for the bag */
    /* sequence */
    ac_encoder_config_t enc;                    /* d_model is H; max_len = max_tokens */
} ac_actor_config_t;

/* Every state the rollout saw, packed: tokens of state i are tok[off[i] .. off[i + 1]). */
typedef struct ac_states {
    int n, _cap;
    int *off;        /* (_cap + 1) */
    ac_token_t *tok;
    size_t n_tok, _cap_tok;
} ac_states_t;

void ac_states_clear(ac_states_t *s);
void ac_states_free(ac_states_t *s);
/* Appends ctx's tokens as a new state; returns its index or -1 (memory). */
int ac_states_add(ac_states_t *s, const ac_context_t *ctx, ac_err_t *err);
/* Appends a copy of state i of from; returns its index or -1 (memory). */
int ac_states_copy(ac_states_t *s, const ac_states_t *from, int i, ac_err_t *err);

/* One decision of a step, for the trainer's forward: which state, which tool's slot (-1: the
 * tool decision itself), its options (tool: n_tools entries, masked by mask; slot: the tokens in
 * cand[0..n)), the option taken and, for slots, the tokens chosen by the earlier slots of the same
 * step (prev[0..n_prev)). off: where its n entries start in the flat logp arrays. */
typedef struct ac_decision {
    int state;
    int tool;          /* the tool of the step (the chosen one) */
    int slot;          /* -1: the tool decision; else the argument index 0.. */
    size_t off;
    int n;
    const uint8_t *mask; /* tool decision: (n_tools) 1 = legal; NULL = all */
    const int *cand;     /* slot decision: (n) token indices within the state */
    const int *prev;     /* slot decision: (n_prev) tokens chosen by slots 0..slot-1 */
    int n_prev;
    int chosen;
} ac_decision_t;

typedef struct ac_actor ac_actor_t;

/* Validates cfg and creates an actor with parameters initialised from cfg.seed. NULL with
 * AC_ERR_INVALID_PARAMS (data.field names the setting) or AC_ERR_INTERNAL. */
ac_actor_t *ac_actor_create(const ac_actor_config_t *cfg, ac_err_t *err);
/* An actor that acts by the keyword rule k (borrowed; it must outlive the actor): greedy
 * rollouts run it like a policy; it has no parameters and cannot be trained. cfg gives the tools
 * and max_tokens (its kind is ignored). */
struct ac_keyword;
ac_actor_t *ac_actor_keyword(const ac_actor_config_t *cfg, const struct ac_keyword *k, ac_err_t *err);
void ac_actor_destroy(ac_actor_t *p);
/* Same config and parameters, own workspace and zero grads. */
ac_actor_t *ac_actor_clone(const ac_actor_t *p, ac_err_t *err);
const ac_actor_config_t *ac_actor_config(const ac_actor_t *p);

size_t ac_actor_n_params(const ac_actor_t *p);
float *ac_actor_params(ac_actor_t *p);
float *ac_actor_grads(ac_actor_t *p);
void ac_actor_zero_grad(ac_actor_t *p);
void ac_actor_set_temperature(ac_actor_t *p, float t);
/* Reads with feature set `reader` (AC_ACTOR_READER_*) from now on: weights taken from a
 * checkpoint are read as they were trained. -1 (nothing changed) for an unknown set. */
int ac_actor_set_reader(ac_actor_t *p, int reader);
/* The sequence reader's encoder (owned by the actor; NULL for other kinds), for
 * ac_encoder_set_threads and ac_encoder_set_timing. */
ac_encoder_t *ac_actor_encoder(ac_actor_t *p);
float ac_actor_temperature(const ac_actor_t *p);

/* The optimiser's parameter groups: ends (n) and learning-rate multipliers (n), n <= 8. The bag's
 * layers learn at learning_rate x 100 (docs/grpo.md, "Learning rate"), the sequence reader's too:
 * with the API's default 1e-4 both train at their usual pace. Returns n. */
int ac_actor_lr_groups(const ac_actor_t *p, size_t *ends, float *scale);

/* ---- acting ----------------------------------------------------------------------------------- */

/* Reads states first .. first + n - 1 of S (one forward; the workspace keeps them until the next
 * call) so that the decisions below can be scored. */
int ac_actor_read(ac_actor_t *p, const ac_states_t *S, int first, int n, ac_err_t *err);
/* Log-probabilities of the tool decision of read state r (0..n-1): logp (n_tools) out, -INFINITY
 * where mask is 0 (mask NULL: all legal). -1 when no tool is legal. */
int ac_actor_tool_logp(ac_actor_t *p, int r, const uint8_t *mask, float *logp);
/* Log-probabilities of slot `slot` of `tool` over cand[0..n) (token indices of read state r),
 * given the tokens prev[0..n_prev) chosen by the earlier slots. logp (n) out. */
int ac_actor_slot_logp(ac_actor_t *p, int r, int tool, int slot, const int *cand, int n, const int *prev,
                       int n_prev, float *logp);

/* ---- training --------------------------------------------------------------------------------- */

/* Forward over decisions d[0..n_d) of the states of S they name (all states first..first+n-1 of
 * S, which must cover them): logp (flat, entries d[i].off .. + d[i].n) out, tempered and masked.
 * Keeps what ac_actor_backward needs. */
int ac_actor_forward(ac_actor_t *p, const ac_states_t *S, int first, int n, const ac_decision_t *d, int n_d,
                     float *logp, ac_err_t *err);
/* Backward of the last ac_actor_forward: dlogits (flat, same layout) is dL/d(logits / T) as
 * ac_grpo_loss gives it. ACCUMULATES into the gradient. */
int ac_actor_backward(ac_actor_t *p, const float *dlogits, ac_err_t *err);

/* ---- the parameter layout, by name ------------------------------------------------------------- */

/* One tensor of params: a row-major block of rows x cols floats at offset (a vector has rows 1;
 * ndim says which it is). docs/checkpoints.md lists them with their meaning. */
typedef struct ac_actor_tensor {
    char name[24];  /* "E", "Wt", ..., "enc.0.Wqkv", "enc.lnf_g" */
    size_t offset;  /* floats from the start of params */
    int ndim;       /* 1 or 2 */
    int rows, cols;
} ac_actor_tensor_t;

/* The most tensors an actor has: 10 shared, 7 of the sequence reader's, 12 per encoder layer and
 * the final LayerNorm's 2. */
#define AC_ACTOR_MAX_TENSORS (10 + 7 + 12 * AC_ENCODER_MAX_LAYERS + 2)

/* The actor's tensors in layout order: they tile params exactly, from offset 0 to n_params.
 * Writes at most cap of them to out and returns how many there are (0 for the keyword rule,
 * which has no parameters). */
int ac_actor_tensors(const ac_actor_t *p, ac_actor_tensor_t *out, int cap);

/* ---- serialisation ---------------------------------------------------------------------------- */

/* The config as bytes (little-endian, versioned) for checkpoints, and back. */
size_t ac_actor_config_size(void);
void ac_actor_config_write(const ac_actor_config_t *cfg, uint8_t *out);
int ac_actor_config_read(ac_actor_config_t *cfg, const uint8_t *in, size_t len, ac_err_t *err);

#endif
