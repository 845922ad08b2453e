/* The keyword rule: the baseline a learned policy has to beat to be more than a lookup table.
 *
 * Fitted on the successful episodes of the training split: for every step, each distinct word
 * of what the policy saw votes for the tool that was called. To act, the rule finds the word of
 * the current context whose votes are the most one-sided (at least MIN_SUPPORT of them; ties go
 * to the word seen more often) and calls that word's tool. Arguments follow a fixed heuristic:
 * the newest result first, then the other candidates in context order, skipping those an earlier
 * call already used and those this call already took ("the next unused number").
 *
 * It acts through the actor interface (engine/actor.h, kind AC_ACTOR_KEYWORD): log-probabilities
 * are 0 for its choice and -INFINITY elsewhere, so a greedy rollout runs it unchanged. */
#ifndef AC_KEYWORD_H
#define AC_KEYWORD_H

#include "engine/rollout.h"

typedef struct ac_keyword ac_keyword_t;

/* Fits the rule on ro's successful episodes (a greedy or sampled rollout over the training
 * split). NULL with AC_ERR_INTERNAL on memory; a rule fitted on no success calls tool 0. */
ac_keyword_t *ac_keyword_fit(const ac_rollout_t *ro, int n_tools, ac_err_t *err);
void ac_keyword_free(ac_keyword_t *k);

/* The rule's tool for a context (tok[0..n)), given the legal mask (NULL: all). */
int ac_keyword_tool(const ac_keyword_t *k, const ac_token_t *tok, int n, const uint8_t *mask);
/* Its candidate (an index into cand[0..n_cand)) given the tokens already chosen for this call. */
int ac_keyword_arg(const ac_token_t *tok, const int *cand, int n_cand, const int *prev, int n_prev);

#endif
