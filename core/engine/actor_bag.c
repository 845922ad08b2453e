/* The bag reader: a state is the mean embedding of its tokens' hashed unigrams and bigrams,
 * through one ReLU layer; a candidate is the mean embedding of hashed features of the token and
 * its neighbourhood (its text, two neighbours each side, its segment and age, its copy flags, and
 * its ordinal among the tokens of its kind in its segment). Word order beyond a pair is lost:
 * that is what the sequence reader is for.
 *
 * The one piece of order the bag keeps is the query's CURSOR (reader 1 on): the last query token
 * whose value an earlier call passed, else the query's start. A request worked through step by
 * step ("start with 7, add 5, then multiply by 3") has done what lies before the cursor; the
 * words just after it say what comes next, and their absence that nothing does. Without it a
 * mean of n-grams cannot tell the first operation of a query from the last (the calculator's
 * policy picked the wrong first tool in 19 of 64 validation queries).
 *
 * Reader 1 also gives a candidate its neighbours' copy flags: a value whose label occurs in the
 * query ("port: 8080" when the question asks for the port) is the one a question about it wants
 * (the files agent's policy read the right file and answered another line's value).
 *
 * Reader 2 averages the words ahead of the cursor on their own, added to the mean of the rest, so
 * that what comes next weighs the same in a long request as in a short one, and reads each of
 * them by its stem too (its first three letters), so that an inflection training never showed
 * ("adding") reads like the word it did ("add").
 *
 * Reader 3 moves the cursor over what a call dealt with without passing it: a request about "the
 * keyboard" is done by escalate(order_id = "ORD-1893"), the number a search showed in its row
 * "ORD-1893 keyboard, Elena Patel". The words beside a used identifier or number in a result, when
 * the query has them too, count as used (the support agent's cursor otherwise stayed on the
 * customer's name, and the words ahead named the first request to the end of the episode).
 *
 * Reader 4 counts a query's number as passed only when a call took it from that token.
 *
 * Reader 5 reads what the cursor cannot: the steps done, in a mean of their own (history_features:
 * a request whose doing passes none of its words reads the same before and after), and a
 * candidate's part of the request (request_part: which of the orders a search listed is the one
 * the next request is about).
 *
 * Reader 6 places a query token after the cursor by its clause, not by its distance in tokens
 * (from_cursor, request_part): the number of the next operation is the one of the next clause,
 * however that clause is phrased. */
#include "engine/actor_internal.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define BAG_EMB_INIT_STD 0.1 /* the embedding rows' initial scale (ac_actor_bag_init) */

static inline uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static inline int bucket(uint64_t h, int n) { return (int)(mix(h) % (uint64_t)n); }

/* Eight floats at a time, in registers (two SSE vectors, x86-64's baseline: no -march flag): the
 * sums below were a load, an add and a store per float, most of a rollout's reading time. */
typedef float v4_t __attribute__((vector_size(16)));
static inline v4_t load4(const float *p)
{
    v4_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* out[d] = s1 * (sum over j < k1 of rows[ids[j]][d]) + s2 * (sum over k1 <= j < k2 of the same)
 * + s3 * (sum over k2 <= j < k), each sum in j order (with k1 = k2 = 0, the same floats as a
 * plain loop over one mean). rows has D floats per row. */
static void sum_rows(float *out, const float *rows, int D, const int *ids, int k1, float s1, int k2, float s2, int k,
                     float s3)
{
    int d = 0;
    for (; d + 8 <= D; d += 8) {
        v4_t a1 = {0}, b1 = {0}, a2 = {0}, b2 = {0}, a = {0}, b = {0};
        for (int j = 0; j < k1; j++) {
            const float *e = rows + (size_t)ids[j] * D + d;
            a1 += load4(e);
            b1 += load4(e + 4);
        }
        for (int j = k1; j < k2; j++) {
            const float *e = rows + (size_t)ids[j] * D + d;
            a2 += load4(e);
            b2 += load4(e + 4);
        }
        for (int j = k2; j < k; j++) {
            const float *e = rows + (size_t)ids[j] * D + d;
            a += load4(e);
            b += load4(e + 4);
        }
        a = a1 * s1 + a2 * s2 + a * s3;
        b = b1 * s1 + b2 * s2 + b * s3;
        memcpy(out + d, &a, sizeof a);
        memcpy(out + d + 4, &b, sizeof b);
    }
    for (; d < D; d++) {
        float acc1 = 0, acc2 = 0, acc = 0;
        for (int j = 0; j < k1; j++)
            acc1 += rows[(size_t)ids[j] * D + d];
        for (int j = k1; j < k2; j++)
            acc2 += rows[(size_t)ids[j] * D + d];
        for (int j = k2; j < k; j++)
            acc += rows[(size_t)ids[j] * D + d];
        out[d] = acc1 * s1 + acc2 * s2 + acc * s3;
    }
}

/* rows[ids[j]][d] += a * g[d] for each j (a row named twice gets both). */
static void scatter_rows(float *rows, int D, const int *ids, int k, const float *g, float a)
{
    for (int j = 0; j < k; j++) {
        float *e = rows + (size_t)ids[j] * D;
        int d = 0;
        for (; d + 4 <= D; d += 4) {
            v4_t v = load4(e + d) + load4(g + d) * a;
            memcpy(e + d, &v, sizeof v);
        }
        for (; d < D; d++)
            e[d] += g[d] * a;
    }
}

void ac_actor_bag_layout(ac_actor_t *p, size_t *off)
{
    const ac_actor_config_t *c = &p->cfg;
    p->off_E = *off;
    *off += (size_t)c->n_buckets * c->d_emb;
    p->off_W0 = *off;
    *off += (size_t)c->d_emb * p->H;
    p->off_b0 = *off;
    *off += (size_t)p->H;
}

void ac_actor_bag_init(ac_actor_t *p, ac_rng_t *rng)
{
    const ac_actor_config_t *c = &p->cfg;
    float *E = p->params + p->off_E, *W0 = p->params + p->off_W0;
    /* Small: a feature training never saw keeps its initial row, and rows of N(0, 1) made the
     * words of a new phrasing ("Let the number be 24") a loud random voice in the mean beside the
     * words training taught (the calculator's policy called subtract first, whatever the query
     * asked). With 0.1 they say little; the rows training moves are read through W0 as before. */
    for (size_t i = 0; i < (size_t)c->n_buckets * c->d_emb; i++)
        E[i] = (float)(BAG_EMB_INIT_STD * ac_rng_normal(rng));
    double std = sqrt(2.0 / c->d_emb); /* He: ReLU follows */
    for (size_t i = 0; i < (size_t)c->d_emb * p->H; i++)
        W0[i] = (float)(std * ac_rng_normal(rng));
}

static int skip(const ac_token_t *t) { return t->kind == AC_TOK_PUNCT; }

/* A number's order of magnitude and sign, as a small integer (0 for other tokens): "over 100"
 * is learnable from it, where the hashed value alone says nothing about size. */
static uint64_t magnitude(const ac_token_t *t)
{
    if (t->kind != AC_TOK_NUMBER)
        return 0;
    float a = fabsf(t->value);
    int m = a < 1.0f ? 0 : 1 + (int)log2f(a);
    return (uint64_t)(m > 40 ? 40 : m) << 1 | (t->value < 0);
}

#define AHEAD_TOKENS 8 /* words after the cursor that say what comes next */

#define ROW_WORDS 64 /* reader 3: words of result rows a call dealt with, at most */

/* Reader 3's words a call dealt with beyond its arguments: the words, also in the query, within
 * two tokens of an identifier or a number of a result that a call passed (the row it came from,
 * or the read that echoes it). Their hashes into out (at most ROW_WORDS); returns how many. */
static int row_words(const ac_token_t *t, int n, uint64_t *out)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (t[i].seg != AC_SEG_RESULT || !(t[i].flags & AC_TOKF_IN_CALL) ||
            (t[i].kind != AC_TOK_ID && t[i].kind != AC_TOK_NUMBER))
            continue;
        for (int j = i - 2; j <= i + 2 && k < ROW_WORDS; j++)
            if (j != i && j >= 0 && j < n && t[j].seg == t[i].seg && t[j].kind == AC_TOK_WORD &&
                (t[j].flags & AC_TOKF_IN_QUERY))
                out[k++] = t[j].hash;
    }
    return k;
}

/* Whether a query token counts as passed by a call: its text a call used (reader 4:
 * AC_TOKF_TAKEN, where a number must have been taken from this very token: the 2 of "then divide
 * by 2" is not passed by multiply(2, 5) when that 2 came from divide(22, 11)'s result). */
static int passed(const ac_token_t *t, int reader)
{
    if (reader >= AC_ACTOR_READER_TAKEN)
        return (t->flags & AC_TOKF_TAKEN) != 0;
    return t->kind != AC_TOK_SPECIAL && (t->flags & AC_TOKF_IN_CALL);
}

/* The cursor of a state (tokens t[0..n)): the index of the last query token an earlier call
 * passed as an argument (reader 3: or dealt with, row_words; reader 4: a number only when taken
 * from that token), else of the query's first token; -1 without a query. */
static int cursor(const ac_token_t *t, int n, int reader)
{
    uint64_t rows[ROW_WORDS];
    const int n_rows = reader >= AC_ACTOR_READER_ROWS ? row_words(t, n, rows) : 0;
    int first = -1, last_used = -1;
    for (int i = 0; i < n; i++) {
        if (t[i].seg != AC_SEG_QUERY) {
            if (first >= 0)
                break; /* the query is one segment */
            continue;
        }
        if (first < 0)
            first = i;
        if (passed(&t[i], reader))
            last_used = i;
        for (int k = 0; k < n_rows && last_used != i; k++)
            if (rows[k] == t[i].hash)
                last_used = i;
    }
    return last_used >= 0 ? last_used : first;
}

/* The state features ahead of the cursor: each of the next AHEAD_TOKENS non-punctuation query
 * tokens, alone and with its place (the first operation word after the cursor is the next one,
 * not the one after it), and how many there are (0 says the request is done). Reader 1's place
 * is the token's among them. Reader 2's is its clause (the punctuation passed since the cursor:
 * the rest of the clause just done is 0, the next one 1) and its place in that clause: "then plus
 * 24" after "split it into 2 equal parts." reads as it does after any other operation, where
 * counting from the cursor put "plus" where training never saw it. Reader 2 also adds each word's
 * stem (its first three letters, alone and with its place): "adding" and "added" then read like
 * the "add" training taught. */
static int ahead_features(const ac_token_t *t, int n, int cur, int *ids, int n_buckets, int reader)
{
    int m = 0, k = 0, clause = 0, in_clause = 0;
    const int stems = reader >= AC_ACTOR_READER_STEMS; /* and clauses */
    for (int i = cur + 1; i < n && t[i].seg == AC_SEG_QUERY && m < AHEAD_TOKENS; i++) {
        if (skip(&t[i])) {
            if (stems && clause < 3)
                clause++;
            in_clause = 0;
            continue;
        }
        uint64_t place = stems ? (uint64_t)(clause << 4 | (in_clause < 15 ? in_clause : 15)) : (uint64_t)m;
        ids[k++] = bucket(t[i].hash ^ 0x1d1d1d1d1d1d1d1dULL, n_buckets);
        ids[k++] = bucket(t[i].hash * 0x100000001b3ULL ^ place ^ 0x4f4f4f4f4f4f4f4fULL, n_buckets);
        if (stems && t[i].pre) {
            ids[k++] = bucket((uint64_t)t[i].pre ^ 0x5d5d5d5d5d5d5d5dULL, n_buckets);
            ids[k++] = bucket((uint64_t)t[i].pre * 0x100000001b3ULL ^ place ^ 0x6e6e6e6e6e6e6e6eULL, n_buckets);
        }
        m++;
        in_clause++;
    }
    ids[k] = bucket((uint64_t)m ^ 0x2e2e2e2e2e2e2e2eULL, n_buckets);
    return k + 1;
}

#define HISTORY_FEATURES 64 /* reader 5: features of the steps done, at most */

/* Reader 5's features of what the episode has done: each earlier step's tool with the first key
 * of its result and how many values that result showed (0, 1, 2, 3 or more), alone and with how
 * long ago (1, 2, 3 or more steps), and the number of steps. The words ahead of the cursor say
 * what the request asks; these say which of it is done: "please refund the kettle" reads the same
 * before the refund and after it (a refund passes no word of the request), and the support
 * agent's policy refunded again where it should have closed the ticket. */
static int history_features(const ac_token_t *t, int n, int *ids, int n_buckets)
{
    int k = 0, steps = 0;
    for (int i = 0; i + 1 < n && k + 2 < HISTORY_FEATURES; i++) {
        if (t[i].seg != AC_SEG_CALL || (i > 0 && t[i - 1].seg == AC_SEG_CALL && t[i - 1].age == t[i].age))
            continue; /* not a call's label */
        uint64_t tool = t[i + 1].hash, key = 0;
        int values = 0, j = i + 1;
        while (j < n && t[j].seg == AC_SEG_CALL && t[j].age == t[i].age)
            j++;
        for (int first = j; j < n && t[j].seg == AC_SEG_RESULT && t[j].age == t[i].age; j++) {
            if (t[j].kind == AC_TOK_SPECIAL) {
                if (j > first && key == 0)
                    key = t[j].hash; /* the result's label is its first token */
            } else if (t[j].kind != AC_TOK_PUNCT && values < 3)
                values++;
        }
        const uint64_t sig = (tool * 0x100000001b3ULL ^ key) * 0x100000001b3ULL ^ (uint64_t)values;
        const uint64_t ago = t[i].age < 3 ? t[i].age : 3;
        ids[k++] = bucket(sig ^ 0x7a7a7a7a7a7a7a7aULL, n_buckets);
        ids[k++] = bucket(sig * 0x9e3779b97f4a7c15ULL ^ ago ^ 0x3b3b3b3b3b3b3b3bULL, n_buckets);
        steps++;
    }
    ids[k++] = bucket((uint64_t)(steps < 15 ? steps : 15) ^ 0x6c6c6c6c6c6c6c6cULL, n_buckets);
    return k;
}

/* Feature ids of one state (tokens t[0..n)): unigrams, bigrams of neighbouring tokens, a
 * number's magnitude, a token with its copy flags (a value the episode already used), and from
 * reader 1 on, first, the tokens ahead of the cursor. *n_ahead is how many of the ids are those
 * (reader 2 averages them on their own: the longer the query, the smaller their share of one mean
 * would be, and a request of five operations would read its next one fainter than training's of
 * two); 0 for one mean of all. *n_hist is how many ids after those are the steps done (reader 5:
 * a mean of their own, so that a long history weighs as much as a short one). */
static int features(const ac_token_t *t, int n, int cur, int *ids, int n_buckets, int reader, int *n_ahead,
                    int *n_hist)
{
    int k = 0, cap = BAG_MAX_FEATURES / 2;
    if (reader >= AC_ACTOR_READER_CURSOR) {
        cap = BAG_MAX_FEATURES;
        if (cur >= 0)
            k = ahead_features(t, n, cur, ids, n_buckets, reader);
    }
    *n_ahead = reader >= AC_ACTOR_READER_STEMS ? k : 0;
    *n_hist = 0;
    if (reader >= AC_ACTOR_READER_HISTORY) {
        *n_hist = history_features(t, n, ids + k, n_buckets);
        k += *n_hist;
    }
    uint64_t prev = 0;
    int have_prev = 0;
    for (int i = 0; i < n && k < cap; i++) {
        if (skip(&t[i]))
            continue;
        ids[k++] = bucket(t[i].hash ^ 0x5555555555555555ULL, n_buckets);
        if (have_prev && k < cap)
            ids[k++] = bucket(prev * 0x100000001b3ULL ^ t[i].hash ^ 0xaaaaaaaaaaaaaaaaULL, n_buckets);
        if (t[i].kind == AC_TOK_NUMBER && k < cap)
            ids[k++] = bucket((magnitude(&t[i]) << 8 | t[i].seg) ^ 0xcccccccccccccccdULL, n_buckets);
        if ((t[i].flags & 7) && k < cap)
            ids[k++] = bucket(t[i].hash * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(t[i].flags & 7) ^ 0x3c3c3c3c3c3c3c3cULL,
                              n_buckets);
        prev = t[i].hash;
        have_prev = 1;
    }
    return k;
}

int ac_actor_bag_read(ac_actor_t *p, ac_err_t *err)
{
    (void)err;
    const ac_actor_config_t *c = &p->cfg;
    const int n = p->n, D = c->d_emb, H = p->H;
    const float *E = p->params + p->off_E;
    p->ids_off[0] = 0;
    for (int r = 0; r < n; r++) {
        int s = p->first + r;
        const ac_token_t *t = p->S->tok + p->S->off[s];
        int *ids = p->ids + (size_t)r * BAG_MAX_FEATURES;
        const int len = p->S->off[s + 1] - p->S->off[s];
        p->cursor[r] = c->reader >= AC_ACTOR_READER_CURSOR ? cursor(t, len, c->reader) : -1;
        int k1, kh, k = features(t, len, p->cursor[r], ids, c->n_buckets, c->reader, &k1, &kh);
        const int k2 = k1 + kh;
        p->ids_off[r + 1] = k; /* count; ids of state r start at r * BAG_MAX_FEATURES */
        p->ids_ahead[r] = k1;
        p->ids_hist[r] = kh;
        sum_rows(p->x + (size_t)r * D, E, D, ids, k1, k1 > 0 ? 1.0f / (float)k1 : 0.0f, k2,
                 kh > 0 ? 1.0f / (float)kh : 0.0f, k, k > k2 ? 1.0f / (float)(k - k2) : 0.0f);
    }
    for (int r = 0; r < n; r++)
        memcpy(p->a + (size_t)r * H, p->params + p->off_b0, sizeof(float) * (size_t)H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, H, D, 1.0f, p->x, D, p->params + p->off_W0, H, 1.0f,
                p->a, H);
    for (size_t i = 0; i < (size_t)n * H; i++)
        p->h[i] = p->a[i] > 0.0f ? p->a[i] : 0.0f;
    return 0;
}

/* Reader 1's feature of where a candidate stands from the cursor: after it (by 1 to 24 tokens),
 * at or before it (done with), or outside the query. Reader 6 says only "after it" (61), its
 * clause being request_part's: a distance in tokens is the phrasing's. After "Let the number be
 * 24, next 7 gets added" the operand stands where training's "Start with 24, add 7" put the
 * start, and the policy passed 24 twice. */
static uint64_t from_cursor(const ac_token_t *t, int cur, int j, int reader)
{
    if (t[j].seg != AC_SEG_QUERY || cur < 0)
        return 63;
    if (j <= cur)
        return 62;
    if (reader >= AC_ACTOR_READER_CLAUSES)
        return 61;
    return (uint64_t)(j - cur < 24 ? j - cur : 24);
}

/* Reader 1's feature of what a candidate's neighbours are: the copy flags of the two tokens on
 * each side within its segment (8 where there is none), four bits each. "host: web-4.internal"
 * in a result, when the question says "host": the value whose label the query names. */
static uint64_t neighbour_flags(const ac_token_t *t, int n, int j)
{
    uint64_t f = 0;
    for (int d = -2; d <= 2; d++)
        if (d != 0)
            f = f << 4 | (j + d >= 0 && j + d < n && t[j + d].seg == t[j].seg ? (t[j + d].flags & 7u) : 8u);
    return f;
}

/* Reader 5's feature of which part of the request a token outside the query stands for: the
 * first occurrence after the cursor of its text or of a word within two tokens of it (its result
 * row), by clause (1-4: the clause ahead of the cursor, as ahead_features counts them), 5 when
 * they occur only at or before the cursor (dealt with), 6 when nowhere; 7 for a query token (it
 * has from_cursor). A search answers "ORD-6134 headset, Aisha Ivanov" and "ORD-4405 blender,
 * Aisha Ivanov"; the request asks to escalate the headset, then to exchange the blender: the
 * order number to escalate is the one whose row names what comes next. Numbers are left out:
 * equal numbers need not be the same quantity. Reader 6 gives a query token its clause instead of
 * 7: 9-12 (the clause after the cursor it is in, as ahead_features counts them), 13 at or before
 * the cursor. */
static uint64_t request_part(const ac_token_t *t, int n, int cur, int j, int reader)
{
    if (t[j].seg == AC_SEG_QUERY) {
        if (reader < AC_ACTOR_READER_CLAUSES || cur < 0)
            return 7;
        if (j <= cur)
            return 13;
        int clause = 0;
        for (int i = cur + 1; i < j; i++)
            if (skip(&t[i]) && clause < 3)
                clause++;
        return (uint64_t)(9 + clause);
    }
    if (cur < 0)
        return 6;
    uint64_t near[5];
    int m = 0;
    for (int d = -2; d <= 2; d++) {
        const int i = j + d;
        if (i >= 0 && i < n && t[i].seg == t[j].seg && (t[i].flags & AC_TOKF_IN_QUERY) &&
            (t[i].kind == AC_TOK_WORD || t[i].kind == AC_TOK_ID))
            near[m++] = t[i].hash;
    }
    if (m == 0)
        return 6;
    int clause = 0, before = 0;
    for (int i = cur + 1; i < n && t[i].seg == AC_SEG_QUERY; i++) {
        if (skip(&t[i])) {
            if (clause < 3)
                clause++;
            continue;
        }
        for (int k = 0; k < m; k++)
            if (t[i].hash == near[k])
                return (uint64_t)(1 + clause);
    }
    for (int i = cur; i >= 0 && t[i].seg == AC_SEG_QUERY && !before; i--)
        for (int k = 0; k < m; k++)
            before |= t[i].hash == near[k];
    return before ? 5 : 6;
}

/* The number of hashed features of a candidate token. */
static int cand_count(const ac_actor_t *p)
{
    return p->cfg.reader >= AC_ACTOR_READER_HISTORY ? 11 : p->cfg.reader >= AC_ACTOR_READER_CURSOR ? 10 : 8;
}

/* The hashed features of token j of state r (cand_count ids). */
static void cand_features(const ac_actor_t *p, int r, int j, int *ids)
{
    const int s = p->first + r, n_buckets = p->cfg.n_buckets;
    const ac_token_t *t = p->S->tok + p->S->off[s];
    const int n = p->S->off[s + 1] - p->S->off[s];
    const ac_token_t *x = &t[j];
    uint64_t nb[4] = {1, 2, 3, 4}; /* prev2, prev, next, next2 within the segment; tags when absent */
    if (j - 1 >= 0 && t[j - 1].seg == x->seg)
        nb[1] = t[j - 1].hash;
    if (j - 2 >= 0 && t[j - 2].seg == x->seg)
        nb[0] = t[j - 2].hash;
    if (j + 1 < n && t[j + 1].seg == x->seg)
        nb[2] = t[j + 1].hash;
    if (j + 2 < n && t[j + 2].seg == x->seg)
        nb[3] = t[j + 2].hash;
    ids[0] = bucket(x->hash ^ 0x1111111111111111ULL, n_buckets);
    ids[1] = bucket(nb[0] ^ 0x2222222222222222ULL, n_buckets);
    ids[2] = bucket(nb[1] ^ 0x3333333333333333ULL, n_buckets);
    ids[3] = bucket(nb[2] ^ 0x4444444444444444ULL, n_buckets);
    ids[4] = bucket(nb[3] ^ 0x6666666666666666ULL, n_buckets);
    ids[5] = bucket(((uint64_t)x->seg << 8 | x->age) ^ 0x7777777777777777ULL, n_buckets);
    ids[6] = bucket((magnitude(x) << 16 | (uint64_t)x->kind << 8 | (x->flags & 7)) ^ 0x8888888888888888ULL, n_buckets);
    ids[7] = bucket(((uint64_t)x->seg << 8 | (uint64_t)x->ord) ^ 0x9999999999999999ULL, n_buckets);
    if (p->cfg.reader >= AC_ACTOR_READER_CURSOR) {
        ids[8] = bucket(((uint64_t)x->seg << 8 | from_cursor(t, p->cursor[r], j, p->cfg.reader)) ^ 0xababababababababULL,
                        n_buckets);
        ids[9] = bucket(((uint64_t)x->seg << 24 | neighbour_flags(t, n, j)) ^ 0xcdcdcdcdcdcdcdcdULL, n_buckets);
    }
    if (p->cfg.reader >= AC_ACTOR_READER_HISTORY)
        ids[10] = bucket(((uint64_t)x->seg << 8 | request_part(t, n, p->cursor[r], j, p->cfg.reader)) ^
                             0xefefefefefefefefULL,
                         n_buckets);
}

const float *ac_actor_bag_cand(ac_actor_t *p, int r, int tok)
{
    const int H = p->H;
    const size_t row = (size_t)(p->seq_off[r] + tok);
    float *c = p->C + row * H;
    if (p->c_have[row])
        return c;
    int ids[BAG_CAND_FEATURES];
    cand_features(p, r, tok, ids);
    const int k = cand_count(p);
    sum_rows(c, p->params + p->off_Ec, H, ids, 0, 0.0f, 0, 0.0f, k, 1.0f / (float)k);
    p->c_have[row] = 1;
    return c;
}

void ac_actor_bag_begin_backward(ac_actor_t *p)
{
    memset(p->c_grad, 0, (size_t)p->seq_off[p->n]);
}

void ac_actor_bag_cand_grad(ac_actor_t *p, int r, int tok, const float *g)
{
    const int H = p->H;
    const size_t row = (size_t)(p->seq_off[r] + tok);
    float *dc = p->dC + row * H;
    if (!p->c_grad[row]) {
        memset(dc, 0, sizeof(float) * (size_t)H);
        p->c_grad[row] = 1;
    }
    for (int d = 0; d < H; d++)
        dc[d] += g[d];
}

/* Each candidate's gradient into its features' rows of Ec, once per token. */
static void cands_backward(ac_actor_t *p)
{
    const int H = p->H, k = cand_count(p);
    float *dEc = p->grads + p->off_Ec;
    for (int r = 0; r < p->n; r++)
        for (int row = p->seq_off[r]; row < p->seq_off[r + 1]; row++) {
            if (!p->c_grad[row])
                continue;
            int ids[BAG_CAND_FEATURES];
            cand_features(p, r, row - p->seq_off[r], ids);
            scatter_rows(dEc, H, ids, k, p->dC + (size_t)row * H, 1.0f / (float)k);
        }
}

int ac_actor_bag_backward(ac_actor_t *p, ac_err_t *err)
{
    (void)err;
    const int n = p->n, D = p->cfg.d_emb, H = p->H;
    cands_backward(p);
    float *da = p->dh; /* in place: through the ReLU */
    for (size_t i = 0; i < (size_t)n * H; i++)
        if (p->a[i] <= 0.0f)
            da[i] = 0.0f;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, H, n, 1.0f, p->x, D, da, H, 1.0f, p->grads + p->off_W0,
                H);
    float *db = p->grads + p->off_b0;
    for (int r = 0; r < n; r++)
        for (int k = 0; k < H; k++)
            db[k] += da[(size_t)r * H + k];
    /* dx = da W0^T into x's buffer: backward runs once per forward, x is not needed after it */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, D, H, 1.0f, da, H, p->params + p->off_W0, H, 0.0f, p->x,
                D);
    float *dE = p->grads + p->off_E;
    for (int r = 0; r < n; r++) {
        const int k = p->ids_off[r + 1], k1 = p->ids_ahead[r], kh = p->ids_hist[r], k2 = k1 + kh;
        const int *ids = p->ids + (size_t)r * BAG_MAX_FEATURES;
        if (k1 > 0)
            scatter_rows(dE, D, ids, k1, p->x + (size_t)r * D, 1.0f / (float)k1);
        if (kh > 0)
            scatter_rows(dE, D, ids + k1, kh, p->x + (size_t)r * D, 1.0f / (float)kh);
        if (k > k2)
            scatter_rows(dE, D, ids + k2, k - k2, p->x + (size_t)r * D, 1.0f / (float)(k - k2));
    }
    return 0;
}
