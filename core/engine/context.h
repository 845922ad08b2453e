/* What the policy sees at a step, rendered by the host from the episode itself: the query, each
 * earlier tool call with its arguments and a compact rendering of its result, the agent's
 * optional extra observation, and the candidates the agent offers for an argument. Agents need
 * not describe their state to the policy: this is the raw history a person would read.
 *
 * The context is a sequence of SEGMENTS, each a run of TOKENS:
 *
 *   [cls] query: <query text>
 *         call: <tool> <arg> <value> ...        one per earlier step, oldest first
 *         result: <key> <value> ...             its result, flattened (keys, strings, numbers)
 *         observe: <agent.observe's text>       when the agent has observe
 *         candidates: <value> | <value> ...     when the agent offers candidates for an argument
 *
 * Tokens are words (letters, lowercased for hashing), numbers ("-3.5": a value, with its own
 * kind), identifiers (letters and digits mixed, or joined by '-' / '_': "ORD-1042") and single
 * punctuation characters. Each token keeps its text (for the values of arguments), its kind,
 * its segment, how many steps ago its segment was written, its position in the segment, and
 * flags saying whether the same text occurs in the query, in an earlier call's arguments or in
 * an earlier result: the copy signals a pointer needs to tell used values from new ones.
 *
 * Candidates for an argument slot are tokens of the slot's kind (numbers, words, identifiers or
 * any of them) anywhere in the context, or the spans of the candidates segment (values from
 * agent.candidates). A candidate's value is its text (a number for number slots).
 *
 * The context is capped at max_tokens: the query, the observation and the candidates are kept
 * (each cut at its own share), and the oldest steps are dropped first. */
#ifndef AC_CONTEXT_H
#define AC_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/err.h"
#include "lua/plugin.h"

enum ac_tok_kind { AC_TOK_SPECIAL, AC_TOK_WORD, AC_TOK_NUMBER, AC_TOK_ID, AC_TOK_PUNCT, AC_TOK_KINDS };
enum ac_seg_kind { AC_SEG_CLS, AC_SEG_QUERY, AC_SEG_CALL, AC_SEG_RESULT, AC_SEG_OBSERVE, AC_SEG_CANDIDATES,
                   AC_SEG_KINDS };
/* token flags: the same (lowercased) text also occurs in ... */
enum { AC_TOKF_IN_QUERY = 1, AC_TOKF_IN_CALL = 2, AC_TOKF_IN_RESULT = 4,
       AC_TOKF_SPAN = 8,  /* the first token of a candidate (candidates segment) */
       AC_TOKF_TAKEN = 16 /* a query token an earlier call took as an argument (ac_context_build) */ };


#define AC_CONTEXT_MAX_TOKENS 256
#define AC_CONTEXT_MAX_AGE 7 /* steps ago, capped: older segments share the last value */

typedef struct ac_token {
    uint64_t hash;   /* FNV-1a of the lowercased text, mixed with the kind */
    uint32_t pre, suf; /* words, identifiers: hashes of the first and last three characters
                          (lowercased), how an unseen word resembles known ones; else 0 */
    uint32_t start;  /* its text: ctx->text[start .. start + len) (original case) */
    uint16_t len;
    uint8_t kind;    /* ac_tok_kind */
    uint8_t seg;     /* ac_seg_kind */
    uint8_t age;     /* 0 for the query, observation and candidates; steps ago (1..MAX_AGE) */
    uint8_t flags;   /* AC_TOKF_* */
    uint8_t pos;     /* position in its segment (capped at 255) */
    uint8_t ord;     /* ordinal among the tokens of its kind in its segment (capped at 15) */
    float value;     /* numbers: the value; else 0 */
} ac_token_t;

/* A context under construction and then read by the policies. Reuse one (clear) per step. */
typedef struct ac_context {
    int max_tokens;
    int n;             /* tokens */
    ac_token_t *tok;   /* (max_tokens) */
    char *text;        /* the rendering, segments on lines: what the export shows as state.context */
    size_t text_len, _text_cap;
    int n_spans;       /* candidate spans (agent candidates): their first tokens */
    int *span_first;   /* (max_tokens) token index of each span's first token */
    int *span_len;     /* (max_tokens) tokens in each span */
    int *span_item;    /* (max_tokens) each span's index in the candidate list it renders */
    struct ac_context_scratch *_scratch;
} ac_context_t;

int ac_context_init(ac_context_t *c, int max_tokens, ac_err_t *err);
void ac_context_free(ac_context_t *c);

/* Starts an episode on c: its later builds keep what they rendered of the query and of each step,
 * and render only what is new. The caller promises that, until the next begin_episode, every
 * build gets the same query string (the same pointer) and steps[k] unchanged for every k an
 * earlier build saw. Without it, every build renders everything. */
void ac_context_begin_episode(ac_context_t *c);

/* One step's history entry, as the rollout keeps it. */
typedef struct ac_context_step {
    const char *tool;
    const char *const *arg_names; /* (n_args) */
    const json_t *args;           /* object name -> value (borrowed), or NULL */
    int n_args;
    const json_t *result;         /* borrowed, or NULL */
    const int *from_query;        /* (n_args) each argument's origin: the query token it was taken
                                     from (ac_context_query_origin), -1 when taken elsewhere; NULL
                                     when not known (a history given from outside) */
} ac_context_step_t;

/* Renders the whole context. observe (may be NULL) is the agent's extra text; cands (may be
 * NULL) the agent's candidate values for the argument being decided (strings or numbers).
 *
 * AC_TOKF_TAKEN marks the query tokens earlier calls took as arguments: a word or identifier
 * whose text a call used (wherever the call took it), a number only when a call took it from
 * that very token (after divide(22, 11) answered 2, multiply(2, 5) took the result's 2, not the
 * query's "divide by 2"). Where the numbers came from, every step says (from_query); when one
 * does not, by their values: each call's number, oldest first, is matched with an equal number
 * an earlier result showed and no earlier call took, and only the unmatched ones come from the
 * query.
 * -1 with AC_ERR_INTERNAL on memory only. */
int ac_context_build(ac_context_t *c, const char *query, const ac_context_step_t *steps, int n_steps,
                     const char *observe, const json_t *cands, ac_err_t *err);

/* Where candidate token tok of the context comes from, as ac_context_step_t.from_query says it:
 * its place in the query (the label is 0), or -1 outside the query. */
int ac_context_query_origin(const ac_context_t *c, int tok);

/* The candidates of an argument kind: token indices written to out (at most cap), in context order.
 * AC_ARG_CANDIDATE: the first tokens of the candidate spans. Returns how many. */
int ac_context_candidates(const ac_context_t *c, int arg_kind, int *out, int cap);

/* The value of candidate token i for a slot of arg_kind: a JSON number for numbers in number
 * slots (integral values as integers), else the text of the token (for AGENT slots, of the whole
 * span: the candidate as the agent gave it, a number stays a number). New reference. */
json_t *ac_context_value(const ac_context_t *c, int arg_kind, int tok, const json_t *cands);

/* Tokenizes text into kind/offset triples (used by ac_context_build and by the bag policy's
 * featurizer for the same notion of a word). Calls fn for each token; returns the count. */
typedef void (*ac_token_fn)(void *ud, int kind, const char *text, size_t len);
int ac_context_tokenize(const char *text, size_t len, ac_token_fn fn, void *ud);

#endif
