/* Inside the actor (engine/actor.h): the struct, the parameter layout, and the two readers (bag,
 * sequence) that turn states into a state vector h and candidate vectors c for the shared heads.
 * Only actor*.c include this. */
#ifndef AC_ACTOR_INTERNAL_H
#define AC_ACTOR_INTERNAL_H

#include "engine/actor.h"

#define BAG_MAX_FEATURES 512 /* features of one state (reader 0 reads at most 256) */
#define BAG_CAND_FEATURES 11 /* hashed features of one candidate token (reader 0: 8, 1-4: 10) */
#define SEQ_NUM_FEATURES 6   /* a number token's value features */
#define SEQ_POS_SCALE 0.3f   /* the sinusoidal positions' weight beside learned embeddings */
#define SEQ_EMBED_STD 0.3    /* the structure embeddings' initial scale (words: 1) */
#define ACTOR_MAX_LR_GROUPS 8

struct ac_actor {
    ac_actor_config_t cfg;
    float temperature;
    int H; /* state and candidate vector width */
    int n_slots, slot_base[AC_AGENT_MAX_ACTIONS];
    size_t n_params;
    float *params, *grads;
    /* heads */
    size_t off_Wt, off_bt, off_Wq, off_S, off_U, off_Wk, off_end_heads;
    /* bag: E (n_buckets, d_emb), W0 (d_emb, H), b0 (H), Ec (n_buckets, H) */
    size_t off_E, off_W0, off_b0, off_Ec;
    /* sequence: Etok (n_buckets, D), Wnum (SEQ_NUM_FEATURES, D), Ekind (AC_TOK_KINDS, D),
     * Eseg (AC_SEG_KINDS, D), Eage (AC_CONTEXT_MAX_AGE + 1, D), Eflag (8, D), Eord (16, D),
     * encoder */
    size_t off_Etok, off_Wnum, off_Ekind, off_Eseg, off_Eage, off_Eflag, off_Eord, off_enc;
    ac_encoder_t *enc;
    const struct ac_keyword *keyword; /* AC_ACTOR_KEYWORD */
    float *pos; /* (256, D) SEQ_POS_SCALE x sinusoid of each position in a segment */

    /* ---- workspace: the states last read (ac_actor_read / ac_actor_forward) ---- */
    const ac_states_t *S;
    int first, n;
    float *h; /* (n, H) */
    int cap_states;
    int *seq_off;       /* (n + 1) token offsets of the n states (into C, X, Y: token rows) */
    /* bag */
    int *ids, *ids_off; /* CSR features of the n states */
    int *ids_ahead;     /* (n) reader 2: how many of a state's first ids are its own mean (the words ahead) */
    int *ids_hist;      /* (n) reader 5: how many ids after those are a mean of their own (the steps done) */
    int *cursor;        /* (n) each state's query cursor (engine/actor_bag.c), -1 without one */
    float *x, *a;       /* (n, d_emb) bag means; (n, H) pre-activations */
    int cap_ids;
    float *C, *dC;      /* (n_tok, H) the bag's candidate vectors, computed when first asked for,
                           and their gradients */
    uint8_t *c_have, *c_grad; /* (n_tok) which rows of C, dC hold something */
    size_t cap_C;
    /* sequence */
    float *X, *Y, *dY;  /* (n_tok, D) */
    size_t cap_tok;

    /* ---- the last training forward's decisions, for backward ---- */
    const ac_decision_t *d;
    int n_d;
    float *q, *r;       /* (n_d, H): per slot decision, its query and Wk q */
    int cap_d;
    float *dh;          /* (n, H) */
    float *scratch;     /* 4 H floats */
    int forward_ok;
};

/* Parameter layout of a kind, appended at *off (bag and sequence readers). */
void ac_actor_bag_layout(ac_actor_t *p, size_t *off);
void ac_actor_seq_layout(ac_actor_t *p, size_t *off);
void ac_actor_bag_init(ac_actor_t *p, ac_rng_t *rng);
void ac_actor_seq_init(ac_actor_t *p, ac_rng_t *rng);
/* The sequence reader's fixed tables (positions); -1 on memory. */
int ac_actor_seq_alloc(ac_actor_t *p);

/* Reads states first .. first + n - 1 of S into p->h (and what the candidates need): the bag
 * writes h, the sequence reader adds its own reading to it. */
int ac_actor_bag_read(ac_actor_t *p, ac_err_t *err);
int ac_actor_seq_read(ac_actor_t *p, ac_err_t *err);

/* The bag's vector of token `tok` of read state r (a row of p->C, computed on first use). */
const float *ac_actor_bag_cand(ac_actor_t *p, int r, int tok);
/* The sequence reader's vector of that token added to buf (H floats). */
void ac_actor_seq_cand(ac_actor_t *p, int r, int tok, float *buf);
/* Adds g (H) to the gradient of token `tok`'s vector of read state r. */
void ac_actor_bag_cand_grad(ac_actor_t *p, int r, int tok, const float *g);
void ac_actor_seq_cand_grad(ac_actor_t *p, int r, int tok, const float *g);
/* Before the decisions' backward: clear per-token gradients. After: the reader's own backward
 * from p->dh (and the token gradients). */
void ac_actor_bag_begin_backward(ac_actor_t *p);
void ac_actor_seq_begin_backward(ac_actor_t *p);
int ac_actor_bag_backward(ac_actor_t *p, ac_err_t *err);
int ac_actor_seq_backward(ac_actor_t *p, ac_err_t *err);

/* Workspace growth shared by the readers: n states, n_tok tokens. */
int ac_actor_reserve(ac_actor_t *p, int n, size_t n_tok, ac_err_t *err);

#endif
