#include "engine/context.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FNV_BASIS 14695981039346656037ULL
#define FNV_PRIME 1099511628211ULL

/* Each piece's share of the context: the query may take half, the observation and the
 * candidates a quarter each; one step's call and result at most 64 tokens. */
#define STEP_MAX_TOKENS 64
#define RESULT_MAX_DEPTH 4

static const char *const seg_label[AC_SEG_KINDS] = {":", "query:", "call:", "result:", "observe:", "candidates:"};

/* ---- tokenizer ------------------------------------------------------------------------------ */

static inline int is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; }
static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline int is_alnum(unsigned char c) { return is_alpha(c) || is_digit(c); }

/* The length of a number's exponent at s[i] ("e+19", "E-05": how %.15g prints large and small
 * values), or 0 when there is none or letters follow it ("1e5x" is an identifier). */
static size_t exponent_len(const char *s, size_t i, size_t len)
{
    if (i >= len || (s[i] != 'e' && s[i] != 'E'))
        return 0;
    size_t k = i + 1;
    if (k < len && (s[k] == '+' || s[k] == '-'))
        k++;
    if (k >= len || !is_digit((unsigned char)s[k]))
        return 0;
    while (k < len && is_digit((unsigned char)s[k]))
        k++;
    if (k < len && (is_alnum((unsigned char)s[k]) || s[k] == '_'))
        return 0;
    return k - i;
}

/* A number is -?digits(.digits)?(e[+-]?digits)?; a run of letters is a word; any other run of
 * letters, digits, '_', and '-' or '.' between two of them, is an identifier. */
static int classify(const char *s, size_t n)
{
    size_t i = s[0] == '-';
    size_t m = i;
    while (m < n && (is_digit((unsigned char)s[m]) || s[m] == '.'))
        m++;
    if (m < n && m > i && exponent_len(s, m, n) == n - m) {
        n = m; /* the mantissa decides below */
        if (s[n - 1] == '.')
            return AC_TOK_ID;
    }
    int digits = 0, letters = 0, other = 0, dots = 0;
    for (size_t k = i; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (is_digit(c))
            digits++;
        else if (is_alpha(c))
            letters++;
        else if (c == '.')
            dots++;
        else
            other++;
    }
    if (digits > 0 && letters == 0 && other == 0 && dots <= 1 && is_digit((unsigned char)s[i]) &&
        is_digit((unsigned char)s[n - 1]))
        return AC_TOK_NUMBER;
    if (letters > 0 && digits == 0 && other == 0 && dots == 0 && i == 0)
        return AC_TOK_WORD;
    return AC_TOK_ID;
}

int ac_context_tokenize(const char *text, size_t len, ac_token_fn fn, void *ud)
{
    int count = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            i++;
            continue;
        }
        size_t start = i;
        /* a minus sign belongs to a number that follows it, unless it joins two words */
        int sign = c == '-' && i + 1 < len && is_digit((unsigned char)text[i + 1]) &&
                   (i == 0 || !is_alnum((unsigned char)text[i - 1]));
        if (is_alnum(c) || c == '_' || sign) {
            i += (size_t)sign;
            int numeric = is_digit((unsigned char)text[i]); /* digits and dots so far */
            while (i < len) {
                unsigned char d = (unsigned char)text[i];
                size_t e = numeric ? exponent_len(text, i, len) : 0;
                if (e > 0) { /* "2.5e+19" is one number, not "2.5e", "+" and "19" */
                    i += e;
                    break;
                }
                numeric &= is_digit(d) || d == '.';
                if (is_alnum(d) || d == '_')
                    i++;
                else if ((d == '-' || d == '.') && i + 1 < len && is_alnum((unsigned char)text[i + 1]))
                    i++;
                else
                    break;
            }
            fn(ud, classify(text + start, i - start), text + start, i - start);
        } else {
            i++;
            fn(ud, AC_TOK_PUNCT, text + start, 1);
        }
        count++;
    }
    return count;
}

/* ---- pieces: a segment or a step, rendered on its own before the context is assembled -------- */

typedef struct piece {
    ac_token_t *tok; /* (tok_cap): as many as the piece may hold, allocated on first use */
    int n, cap, tok_cap;
    char *text;
    size_t len, tcap;
    int oom;
    int valid;       /* a step's piece: rendered for the current episode (see begin_episode) */
    uint8_t seg;
    int *span_first, *span_len, *span_item; /* (tok_cap) the candidates piece only */
    int n_spans;
    int kind_count[AC_TOK_KINDS]; /* tokens of each kind so far in the current segment */
} piece_t;

/* Empties p for up to cap tokens (spans: with span arrays); oom set when they cannot be had. */
static void piece_reset(piece_t *p, int cap, int seg, int spans)
{
    cap = cap < AC_CONTEXT_MAX_TOKENS ? cap : AC_CONTEXT_MAX_TOKENS;
    p->n = 0;
    p->cap = cap;
    p->len = 0;
    p->oom = 0;
    p->seg = (uint8_t)seg;
    p->n_spans = 0;
    memset(p->kind_count, 0, sizeof p->kind_count);
    if (cap > p->tok_cap || (spans && p->span_first == NULL)) {
        int n = cap > p->tok_cap ? cap : p->tok_cap;
        ac_token_t *t = realloc(p->tok, sizeof *t * (size_t)n);
        if (t != NULL)
            p->tok = t;
        if (t != NULL && spans) {
            free(p->span_first);
            free(p->span_len);
            free(p->span_item);
            p->span_first = malloc(sizeof(int) * (size_t)n);
            p->span_len = malloc(sizeof(int) * (size_t)n);
            p->span_item = malloc(sizeof(int) * (size_t)n);
        }
        if (t == NULL || (spans && (!p->span_first || !p->span_len || !p->span_item))) {
            p->oom = 1;
            p->cap = 0;
            return;
        }
        p->tok_cap = n;
    }
}

static void piece_text(piece_t *p, const char *s, size_t n)
{
    if (p->len + n + 2 > p->tcap) {
        size_t cap = p->tcap ? p->tcap : 256;
        while (cap < p->len + n + 2)
            cap *= 2;
        char *t = realloc(p->text, cap);
        if (t == NULL) {
            p->oom = 1;
            return;
        }
        p->text = t;
        p->tcap = cap;
    }
    memcpy(p->text + p->len, s, n);
    p->len += n;
    p->text[p->len] = 0;
}

/* The decimal digits of v into buf (at least 21 bytes); returns their length. What "%lld"
 * prints, without printf's cost: rendering a step's numbers is on every step's path. */
static size_t fmt_int(char *buf, long long v)
{
    char tmp[24];
    size_t n = 0, k = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        tmp[n++] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        buf[k++] = '-';
    while (n > 0)
        buf[k++] = tmp[--n];
    buf[k] = 0;
    return k;
}

/* An integral value below 10^digits in magnitude (and not -0) prints as its integer under
 * "%.<digits>g": the fast path of the two formats below. */
static int plain_integer(double v, double limit) { return v == floor(v) && fabs(v) < limit && !(v == 0 && signbit(v)); }

/* A token of n characters that is only digits, after an optional '-', and at most 18 of them:
 * its magnitude into *u and its sign into *neg; 0 for any other text. strtof and strtod read
 * such a token as this exact integer, correctly rounded, as a conversion from it rounds: the
 * fast path of both, since a step's numbers are parsed on every step's path. */
static int small_integer(const char *s, size_t n, unsigned long long *u, int *neg)
{
    size_t i = s[0] == '-';
    if (n <= i || n - i > 18)
        return 0;
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *u = v;
    *neg = s[0] == '-';
    return 1;
}

static uint64_t token_hash(int kind, const char *s, size_t n, float value)
{
    uint64_t h = (FNV_BASIS ^ (uint64_t)kind) * FNV_PRIME;
    char num[32];
    if (kind == AC_TOK_NUMBER) { /* "5", "5.0" and "05" are one value: hashed as "%.9g" prints it */
        n = plain_integer(value, 1e9) ? fmt_int(num, (long long)value)
                                       : (size_t)snprintf(num, sizeof num, "%.9g", (double)value);
        s = num;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        h = (h ^ c) * FNV_PRIME;
    }
    return h;
}

typedef struct add_ctx {
    piece_t *p;
    int force_kind; /* >= 0: every token gets this kind (tool and argument names, keys) */
    const char *text; /* the text being tokenized ... */
    size_t base;      /* ... copied into the piece's text at this offset */
} add_ctx_t;

static void add_token(void *ud, int kind, const char *s, size_t n)
{
    add_ctx_t *a = ud;
    piece_t *p = a->p;
    if (p->n >= p->cap || p->oom)
        return;
    ac_token_t *t = &p->tok[p->n];
    memset(t, 0, sizeof *t);
    t->kind = (uint8_t)(a->force_kind >= 0 ? a->force_kind : kind);
    unsigned long long u;
    int neg;
    if (t->kind != AC_TOK_NUMBER)
        t->value = 0.0f;
    else if (small_integer(s, n, &u, &neg))
        t->value = neg ? -(float)u : (float)u; /* "-0" is -0.0f, as strtof reads it */
    else
        t->value = strtof(s, NULL);
    if (!isfinite(t->value)) /* beyond float (1e39 and up): the largest float, which keeps its sign */
        t->value = t->value != t->value ? 0.0f : copysignf(FLT_MAX, t->value);
    t->hash = token_hash(t->kind, s, n, t->value);
    if (t->kind == AC_TOK_WORD || t->kind == AC_TOK_ID) {
        size_t k = n < 3 ? n : 3;
        t->pre = (uint32_t)token_hash(AC_TOK_KINDS + 1, s, k, 0);
        t->suf = (uint32_t)token_hash(AC_TOK_KINDS + 2, s + n - k, k, 0);
    }
    t->start = (uint32_t)(a->base + (size_t)(s - a->text));
    t->len = (uint16_t)(n < 65535 ? n : 65535);
    t->seg = p->seg;
    t->age = 0; /* a step's tokens get theirs when the context is assembled */
    t->pos = (uint8_t)(p->n < 255 ? p->n : 255);
    int ord = p->kind_count[t->kind]++;
    t->ord = (uint8_t)(ord < 15 ? ord : 15);
    p->n++;
}

/* Appends text to the piece as it is (a space before it unless at a line's start) and its tokens. */
static void add_text(piece_t *p, const char *s, size_t n, int force_kind)
{
    if (p->len > 0 && p->text[p->len - 1] != '\n' && p->text[p->len - 1] != ' ')
        piece_text(p, " ", 1);
    add_ctx_t a = {p, force_kind, s, p->len};
    piece_text(p, s, n);
    if (!p->oom)
        ac_context_tokenize(s, n, add_token, &a);
}

/* A number as JSON would print it: the shortest of %.15g and %.17g that reads back exactly. */
static void fmt_real(char *buf, size_t len, double v)
{
    if (plain_integer(v, 1e15) && len >= 21) {
        fmt_int(buf, (long long)v);
        return;
    }
    snprintf(buf, len, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, len, "%.17g", v);
}

static void add_label(piece_t *p, int seg)
{
    const char *l = seg_label[seg];
    size_t n = strlen(l);
    if (p->len > 0 && p->text[p->len - 1] != '\n' && p->text[p->len - 1] != ' ')
        piece_text(p, " ", 1);
    add_ctx_t a = {p, AC_TOK_SPECIAL, l, p->len};
    piece_text(p, l, n);
    if (!p->oom)
        add_token(&a, AC_TOK_SPECIAL, l, n - 1); /* the label's word, without its colon */
}

typedef struct kv {
    const char *key;
    const json_t *value;
} kv_t;

static int cmp_key(const void *a, const void *b) { return strcmp(((const kv_t *)a)->key, ((const kv_t *)b)->key); }

static void add_json(piece_t *p, const json_t *v, int depth)
{
    char buf[40];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        /* keys in sorted order: a Lua table's own order depends on its state's hash seed, and
         * the same result must render the same in every run */
        size_t n, i = 0;
        kv_t kv[64]; /* the values with their keys: no lookup by key once sorted */
        const char *k;
        json_t *x;
        if (depth >= RESULT_MAX_DEPTH)
            break;
        json_object_foreach((json_t *)v, k, x)
        {
            if (i < 64)
                kv[i++] = (kv_t){k, x};
        }
        n = i;
        if (n > 1)
            qsort(kv, n, sizeof kv[0], cmp_key);
        for (i = 0; i < n; i++) {
            add_text(p, kv[i].key, strlen(kv[i].key), AC_TOK_SPECIAL);
            add_json(p, kv[i].value, depth + 1);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        if (depth >= RESULT_MAX_DEPTH)
            break;
        json_array_foreach((json_t *)v, i, x) add_json(p, x, depth + 1);
        break;
    }
    case JSON_STRING:
        add_text(p, json_string_value(v), json_string_length(v), -1);
        break;
    case JSON_INTEGER:
        add_text(p, buf, fmt_int(buf, (long long)json_integer_value(v)), -1);
        break;
    case JSON_REAL:
        fmt_real(buf, sizeof buf, json_real_value(v));
        add_text(p, buf, strlen(buf), -1);
        break;
    case JSON_TRUE:
        add_text(p, "true", 4, -1);
        break;
    case JSON_FALSE:
        add_text(p, "false", 5, -1);
        break;
    case JSON_NULL:
        add_text(p, "null", 4, -1);
        break;
    }
}

/* ---- the context ---------------------------------------------------------------------------- */

struct ac_context_scratch {
    piece_t query, observe, cands;
    const char *query_of; /* the query text the query piece renders (in an episode), or NULL */
    piece_t *steps;       /* step k's rendering at steps[k] */
    int n_steps_cap;
    int episode;          /* ac_context_begin_episode was called: renderings are kept */
};

int ac_context_init(ac_context_t *c, int max_tokens, ac_err_t *err)
{
    memset(c, 0, sizeof *c);
    if (max_tokens < 8 || max_tokens > AC_CONTEXT_MAX_TOKENS)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "max_tokens", "must be from 8 to %d",
                            AC_CONTEXT_MAX_TOKENS);
    c->max_tokens = max_tokens;
    c->tok = calloc((size_t)max_tokens, sizeof *c->tok);
    c->span_first = calloc((size_t)max_tokens, sizeof *c->span_first);
    c->span_len = calloc((size_t)max_tokens, sizeof *c->span_len);
    c->span_item = calloc((size_t)max_tokens, sizeof *c->span_item);
    c->_scratch = calloc(1, sizeof *c->_scratch);
    if (!c->tok || !c->span_first || !c->span_len || !c->span_item || !c->_scratch) {
        ac_context_free(c);
        return ac_err_set(err, AC_ERR_INTERNAL, "context: out of memory");
    }
    return 0;
}

static void piece_free(piece_t *p)
{
    free(p->text);
    free(p->tok);
    free(p->span_first);
    free(p->span_len);
    free(p->span_item);
}

void ac_context_begin_episode(ac_context_t *c)
{
    struct ac_context_scratch *s = c->_scratch;
    s->episode = 1;
    s->query_of = NULL;
    for (int k = 0; k < s->n_steps_cap; k++)
        s->steps[k].valid = 0;
}

void ac_context_free(ac_context_t *c)
{
    if (c->_scratch != NULL) {
        piece_free(&c->_scratch->query);
        piece_free(&c->_scratch->observe);
        piece_free(&c->_scratch->cands);
        for (int i = 0; i < c->_scratch->n_steps_cap; i++)
            piece_free(&c->_scratch->steps[i]);
        free(c->_scratch->steps);
        free(c->_scratch);
    }
    free(c->tok);
    free(c->text);
    free(c->span_first);
    free(c->span_len);
    free(c->span_item);
    memset(c, 0, sizeof *c);
}

static void render_step(piece_t *p, const ac_context_step_t *s)
{
    piece_reset(p, STEP_MAX_TOKENS, AC_SEG_CALL, 0);
    add_label(p, AC_SEG_CALL);
    add_text(p, s->tool, strlen(s->tool), AC_TOK_SPECIAL);
    for (int a = 0; a < s->n_args; a++) {
        const json_t *v = s->args ? json_object_get(s->args, s->arg_names[a]) : NULL;
        if (v == NULL)
            continue;
        add_text(p, s->arg_names[a], strlen(s->arg_names[a]), AC_TOK_SPECIAL);
        add_json(p, v, 1);
    }
    piece_text(p, "\n", 1);
    int first_result = p->n;
    p->seg = AC_SEG_RESULT;
    memset(p->kind_count, 0, sizeof p->kind_count);
    add_label(p, AC_SEG_RESULT);
    if (s->result != NULL)
        add_json(p, s->result, 0);
    for (int i = first_result; i < p->n; i++)
        p->tok[i].pos = (uint8_t)(i - first_result < 255 ? i - first_result : 255);
}

static void render_cands(piece_t *p, const json_t *cands, int cap)
{
    piece_reset(p, cap, AC_SEG_CANDIDATES, 1);
    add_label(p, AC_SEG_CANDIDATES);
    size_t i;
    json_t *v;
    json_array_foreach(cands, i, v)
    {
        int before = p->n;
        if (i > 0)
            add_text(p, "|", 1, AC_TOK_SPECIAL);
        int first = p->n;
        add_json(p, v, RESULT_MAX_DEPTH - 1);
        if (p->n == first) { /* no room, or a value without tokens: not a candidate */
            p->n = before;
            continue;
        }
        p->span_first[p->n_spans] = first;
        p->span_item[p->n_spans] = (int)i;
        p->span_len[p->n_spans++] = p->n - first;
    }
}

/* Appends piece p to the context (tokens, text, spans), keeping its token offsets right; its
 * tokens get the age (steps ago) given. */
static void append(ac_context_t *c, const piece_t *p, int age)
{
    size_t base = c->text_len + (c->text_len > 0);
    if (c->text_len > 0)
        c->text[c->text_len++] = '\n';
    memcpy(c->text + c->text_len, p->text ? p->text : "", p->len);
    c->text_len += p->len;
    c->text[c->text_len] = 0;
    int first = c->n;
    for (int i = 0; i < p->n && c->n < c->max_tokens; i++) {
        c->tok[c->n] = p->tok[i];
        c->tok[c->n].start += (uint32_t)base;
        c->tok[c->n].age = (uint8_t)age;
        c->n++;
    }
    for (int s = 0; s < p->n_spans; s++) {
        if (first + p->span_first[s] >= c->n)
            break;
        c->span_first[c->n_spans] = first + p->span_first[s];
        c->span_item[c->n_spans] = p->span_item[s];
        c->span_len[c->n_spans++] = p->span_len[s];
        c->tok[first + p->span_first[s]].flags |= AC_TOKF_SPAN;
    }
}

/* Copy flags: does a token's text occur in another segment of the query, call or result kind?
 * A small open-addressing table keyed by hash counts, per kind, the segments holding it. */
#define FLAG_SLOTS 1024
typedef struct flag_slot {
    uint64_t hash;
    uint32_t used;   /* the build that used it last: a slot of an earlier build is empty (no memset) */
    int last_seg[3]; /* the last segment (index) counted per kind, to count each segment once */
    int count[3];
} flag_slot_t;

static int kind_slot(int seg)
{
    return seg == AC_SEG_QUERY ? 0 : seg == AC_SEG_CALL ? 1 : seg == AC_SEG_RESULT ? 2 : -1;
}

static void set_flags(ac_context_t *c)
{
    static _Thread_local flag_slot_t table[FLAG_SLOTS];
    static _Thread_local uint32_t build;
    if (++build == 0) { /* wrapped: the stamps of 2^32 builds ago would look current */
        memset(table, 0, sizeof table);
        build = 1;
    }
    int seg_index = 0;
    int seg_id[AC_CONTEXT_MAX_TOKENS];
    for (int i = 0; i < c->n; i++) {
        if (i > 0 && c->tok[i].seg != c->tok[i - 1].seg)
            seg_index++;
        seg_id[i] = seg_index;
    }
    int slot[AC_CONTEXT_MAX_TOKENS];
    for (int i = 0; i < c->n; i++) {
        slot[i] = -1;
        const ac_token_t *t = &c->tok[i];
        if (t->kind == AC_TOK_SPECIAL || t->kind == AC_TOK_PUNCT)
            continue;
        unsigned h = (unsigned)(t->hash ^ (t->hash >> 29)) & (FLAG_SLOTS - 1);
        while (table[h].used == build && table[h].hash != t->hash)
            h = (h + 1) & (FLAG_SLOTS - 1);
        if (table[h].used != build) {
            table[h].used = build;
            table[h].hash = t->hash;
            for (int k = 0; k < 3; k++) {
                table[h].last_seg[k] = -1;
                table[h].count[k] = 0;
            }
        }
        slot[i] = (int)h;
        int k = kind_slot(t->seg);
        if (k >= 0 && table[h].last_seg[k] != seg_id[i]) {
            table[h].last_seg[k] = seg_id[i];
            table[h].count[k]++;
        }
    }
    for (int i = 0; i < c->n; i++) {
        if (slot[i] < 0)
            continue;
        const flag_slot_t *f = &table[slot[i]];
        int own = kind_slot(c->tok[i].seg);
        uint8_t flags = 0;
        for (int k = 0; k < 3; k++) {
            /* the token's own segment does not count: "occurs elsewhere" */
            int others = f->count[k] - (k == own);
            if (others > 0)
                flags |= (uint8_t)(1 << k);
        }
        c->tok[i].flags = (uint8_t)((c->tok[i].flags & AC_TOKF_SPAN) | flags);
    }
}

/* The query starts after the [cls] token, and keeps its place and length from one step to the
 * next (its share of max_tokens is fixed): a token's place in it names the same token at every
 * step of the episode. */
#define QUERY_FIRST 1

int ac_context_query_origin(const ac_context_t *c, int tok)
{
    if (tok < QUERY_FIRST || tok >= c->n || c->tok[tok].seg != AC_SEG_QUERY)
        return -1;
    return tok - QUERY_FIRST;
}

/* AC_TOKF_TAKEN by the numbers' values, for a history without origins (ac_context_build): the
 * calls' numbers that no earlier result showed (and no earlier call took from there). Their
 * hashes into out (at most AC_CONTEXT_MAX_TOKENS: a context has no more tokens); how many. */
static int numbers_from_query(const ac_context_t *c, uint64_t *out)
{
    uint64_t shown[AC_CONTEXT_MAX_TOKENS]; /* results' numbers no call took yet */
    int n_shown = 0, k = 0;
    for (int i = 0; i < c->n; i++) {
        const ac_token_t *t = &c->tok[i];
        if (t->kind != AC_TOK_NUMBER)
            continue;
        if (t->seg == AC_SEG_RESULT) {
            shown[n_shown++] = t->hash;
        } else if (t->seg == AC_SEG_CALL) {
            int j = 0;
            while (j < n_shown && shown[j] != t->hash)
                j++;
            if (j < n_shown)
                shown[j] = shown[--n_shown];
            else
                out[k++] = t->hash;
        }
    }
    return k;
}

/* Words and identifiers equal in text name the same thing, wherever a call took them (a search
 * by the item a result row showed deals with the item the request names); numbers equal in value
 * need not be the same quantity (an intermediate result and a later operand). So a query word is
 * taken when a call used its text, a number only when a call took it from that token. */
static void set_taken(ac_context_t *c, const ac_context_step_t *steps, int n_steps)
{
    int known = 1;
    for (int s = 0; s < n_steps; s++)
        if (steps[s].n_args > 0 && steps[s].from_query == NULL)
            known = 0;
    uint64_t numbers[AC_CONTEXT_MAX_TOKENS];
    const int n_numbers = known ? 0 : numbers_from_query(c, numbers);
    for (int i = QUERY_FIRST; i < c->n && c->tok[i].seg == AC_SEG_QUERY; i++) {
        ac_token_t *t = &c->tok[i];
        int taken = t->kind != AC_TOK_SPECIAL && (t->flags & AC_TOKF_IN_CALL);
        if (taken && t->kind == AC_TOK_NUMBER) {
            taken = 0;
            for (int k = 0; k < n_numbers && !taken; k++)
                taken = numbers[k] == t->hash;
        }
        if (taken)
            t->flags |= AC_TOKF_TAKEN;
    }
    for (int s = 0; known && s < n_steps; s++)
        for (int k = 0; k < steps[s].n_args; k++) {
            int i = QUERY_FIRST + steps[s].from_query[k];
            if (steps[s].from_query[k] >= 0 && i < c->n && c->tok[i].seg == AC_SEG_QUERY &&
                c->tok[i].kind == AC_TOK_NUMBER)
                c->tok[i].flags |= AC_TOKF_TAKEN;
        }
}

/* The rendering of step k: kept from an earlier build of the episode, else made now. NULL on
 * memory. */
static piece_t *step_piece(struct ac_context_scratch *s, const ac_context_step_t *steps, int k)
{
    if (k >= s->n_steps_cap) {
        int cap = s->n_steps_cap ? s->n_steps_cap * 2 : 8;
        while (cap <= k)
            cap *= 2;
        piece_t *np = realloc(s->steps, sizeof *np * (size_t)cap);
        if (np == NULL)
            return NULL;
        memset(np + s->n_steps_cap, 0, sizeof *np * (size_t)(cap - s->n_steps_cap));
        s->steps = np;
        s->n_steps_cap = cap;
    }
    piece_t *p = &s->steps[k];
    if (!s->episode || !p->valid) {
        render_step(p, &steps[k]);
        p->valid = 1;
    }
    return p->oom ? NULL : p;
}

int ac_context_build(ac_context_t *c, const char *query, const ac_context_step_t *steps, int n_steps,
                     const char *observe, const json_t *cands, ac_err_t *err)
{
    struct ac_context_scratch *s = c->_scratch;
    const int max = c->max_tokens;
    if (!s->episode || query == NULL || s->query_of != query) {
        piece_reset(&s->query, max / 2, AC_SEG_QUERY, 0);
        add_label(&s->query, AC_SEG_QUERY);
        if (query != NULL)
            add_text(&s->query, query, strlen(query), -1);
        s->query_of = s->episode ? query : NULL;
    }
    piece_reset(&s->observe, max / 4, AC_SEG_OBSERVE, 0);
    if (observe != NULL && observe[0]) {
        add_label(&s->observe, AC_SEG_OBSERVE);
        add_text(&s->observe, observe, strlen(observe), -1);
    }
    s->cands.n = 0;
    s->cands.len = 0;
    s->cands.oom = 0;
    if (json_array_size(cands) > 0)
        render_cands(&s->cands, cands, max / 4);
    if (s->query.oom || s->observe.oom || s->cands.oom)
        return ac_err_set(err, AC_ERR_INTERNAL, "context: out of memory");
    /* the newest steps that fit: steps[first..n_steps) */
    int budget = max - 1 - s->query.n - s->observe.n - s->cands.n, first = n_steps;
    size_t need = 16 + s->query.len + s->observe.len + s->cands.len + 8;
    for (int k = n_steps - 1; k >= 0 && budget > 0; k--) {
        const piece_t *p = step_piece(s, steps, k);
        if (p == NULL)
            return ac_err_set(err, AC_ERR_INTERNAL, "context: out of memory");
        if (p->n > budget)
            break;
        budget -= p->n;
        need += p->len + 1;
        first = k;
    }
    if (need > c->_text_cap) {
        char *t = realloc(c->text, need);
        if (t == NULL)
            return ac_err_set(err, AC_ERR_INTERNAL, "context: out of memory");
        c->text = t;
        c->_text_cap = need;
    }
    c->n = 0;
    c->n_spans = 0;
    c->text_len = 0;
    c->text[0] = 0;
    ac_token_t *cls = &c->tok[c->n++];
    memset(cls, 0, sizeof *cls);
    cls->kind = AC_TOK_SPECIAL;
    cls->seg = AC_SEG_CLS;
    cls->hash = token_hash(AC_TOK_SPECIAL, "[cls]", 5, 0);
    append(c, &s->query, 0);
    for (int k = first; k < n_steps; k++) /* oldest first */
        append(c, &s->steps[k], n_steps - k < AC_CONTEXT_MAX_AGE ? n_steps - k : AC_CONTEXT_MAX_AGE);
    if (s->observe.n > 0)
        append(c, &s->observe, 0);
    if (s->cands.n > 0)
        append(c, &s->cands, 0);
    set_flags(c);
    set_taken(c, steps, n_steps);
    return 0;
}

static int fits(int arg_kind, const ac_token_t *t)
{
    if (t->seg == AC_SEG_CLS || t->kind == AC_TOK_SPECIAL || t->kind == AC_TOK_PUNCT)
        return 0;
    switch (arg_kind) {
    case AC_ARG_NUMBER:
        return t->kind == AC_TOK_NUMBER;
    case AC_ARG_WORD:
        return t->kind == AC_TOK_WORD;
    case AC_ARG_ID: /* an identifier, or a whole number (1042), never 129.99 */
        return t->kind == AC_TOK_ID || (t->kind == AC_TOK_NUMBER && t->value == floorf(t->value));
    case AC_ARG_ANY:
        return 1;
    default:
        return 0;
    }
}

int ac_context_candidates(const ac_context_t *c, int arg_kind, int *out, int cap)
{
    int n = 0;
    if (arg_kind == AC_ARG_CANDIDATE) {
        for (int s = 0; s < c->n_spans && n < cap; s++)
            out[n++] = c->span_first[s];
        return n;
    }
    /* a call's arguments are copies of values shown elsewhere (the query, a result): not
     * candidates again */
    for (int i = 0; i < c->n && n < cap; i++)
        if (c->tok[i].seg != AC_SEG_CANDIDATES && c->tok[i].seg != AC_SEG_CALL && fits(arg_kind, &c->tok[i]))
            out[n++] = i;
    return n;
}

json_t *ac_context_value(const ac_context_t *c, int arg_kind, int tok, const json_t *cands)
{
    if (tok < 0 || tok >= c->n)
        return NULL;
    const ac_token_t *t = &c->tok[tok];
    if (arg_kind == AC_ARG_CANDIDATE) {
        for (int s = 0; s < c->n_spans; s++)
            if (c->span_first[s] == tok) {
                json_t *v = json_array_get(cands, (size_t)c->span_item[s]);
                return v ? json_incref(v) : NULL;
            }
        return NULL;
    }
    if (t->kind == AC_TOK_NUMBER && (arg_kind == AC_ARG_NUMBER)) {
        unsigned long long u;
        int neg;
        if (small_integer(c->text + t->start, t->len, &u, &neg) && u < 9000000000000000ULL)
            return json_integer(neg ? -(json_int_t)u : (json_int_t)u);
        double v = strtod(c->text + t->start, NULL);
        if (v == floor(v) && fabs(v) < 9e15)
            return json_integer((json_int_t)v);
        return json_real(v);
    }
    return json_stringn(c->text + t->start, t->len);
}
