/* The pattern-cost guard.
 * Lua's matcher backtracks inside one C call, where the instruction hook never fires, so one call
 * can run for minutes. Before calling it we bound its work: each quantified single-character
 * class (x*, x+, x-) can take at most r+1 lengths, r being the longest run of subject bytes it
 * matches; %b and back-references can scan the whole subject (n); x? doubles; an unanchored search
 * restarts at each of the n+1 positions. A quantifier that ends the pattern (only ')' after it)
 * counts once: nothing after it can fail, so it never backtracks. The product is an upper bound
 * on the matcher's steps (about 2 ns each here); calls above limits.max_pattern_cost fail before
 * they start. */
#include "lua/host_internal.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

static const char *class_end(const char *p, const char *pe)
{
    if (*p == '%')
        return p + 2 <= pe ? p + 2 : pe;
    if (*p != '[')
        return p + 1;
    const char *q = p + 1;
    if (q < pe && *q == '^')
        q++;
    for (;;) { /* the first character of a set is literal, even ']' */
        if (q >= pe)
            return pe;
        if (*q++ == '%' && q < pe)
            q++;
        if (q >= pe)
            return pe;
        if (*q == ']')
            return q + 1;
    }
}

static int class_letter(unsigned char c, unsigned char cl)
{
    int r;
    switch (tolower(cl)) {
    case 'a': r = isalpha(c); break;
    case 'c': r = iscntrl(c); break;
    case 'd': r = isdigit(c); break;
    case 'g': r = isgraph(c); break;
    case 'l': r = islower(c); break;
    case 'p': r = ispunct(c); break;
    case 's': r = isspace(c); break;
    case 'u': r = isupper(c); break;
    case 'w': r = isalnum(c); break;
    case 'x': r = isxdigit(c); break;
    default: return cl == c;
    }
    return isupper(cl) ? !r : r != 0;
}

/* Whether byte c matches the class [p, ep). */
static int single_match(unsigned char c, const char *p, const char *ep)
{
    if (*p == '.')
        return 1;
    if (*p == '%')
        return p + 1 < ep && class_letter(c, (unsigned char)p[1]);
    if (*p != '[')
        return (unsigned char)*p == c;
    const char *q = p + 1, *end = ep - 1; /* end: the closing ']' */
    int neg = q < end && *q == '^';
    q += neg;
    for (; q < end; q++) {
        if (*q == '%' && q + 1 < end) {
            if (class_letter(c, (unsigned char)*++q))
                return !neg;
        } else if (q + 2 < end && q[1] == '-') {
            if ((unsigned char)q[0] <= c && c <= (unsigned char)q[2])
                return !neg;
            q += 2;
        } else if ((unsigned char)*q == c) {
            return !neg;
        }
    }
    return neg;
}

static size_t longest_run(const char *s, size_t n, const char *p, const char *ep)
{
    size_t best = 0, run = 0;
    for (size_t i = 0; i < n; i++) {
        run = single_match((unsigned char)s[i], p, ep) ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

#define MAX_QUANT 32

double ac_lua_pattern_cost(const char *s, size_t n, const char *p, size_t m, int anchors,
                           double limit)
{
    const char *pe = p + m;
    const char *qp[MAX_QUANT], *qe[MAX_QUANT];
    int nq = 0, nbig = 0, nopt = 0;
    const char *after_last_q = NULL; /* where the pattern goes on after its last quantifier */
    double starts = (double)n + 1;
    if (anchors && p < pe && *p == '^') {
        starts = 1;
        p++;
    }
    while (p < pe) {
        if (*p == '(' || *p == ')' || (*p == '$' && p + 1 == pe)) {
            p++;
            continue;
        }
        if (*p == '%' && p + 1 < pe) {
            if (p[1] == 'b') { /* %bxy scans to the balancing y */
                nbig++;
                p = p + 4 < pe ? p + 4 : pe;
                continue;
            }
            if (p[1] == 'f') { /* %f[set] looks at one position */
                p += 2;
                if (p < pe)
                    p = class_end(p, pe);
                continue;
            }
            if (isdigit((unsigned char)p[1])) { /* %1 compares a capture's length */
                nbig++;
                p += 2;
                continue;
            }
        }
        const char *ep = class_end(p, pe);
        if (ep < pe && (*ep == '*' || *ep == '+' || *ep == '-')) {
            if (nq < MAX_QUANT) {
                qp[nq] = p;
                qe[nq] = ep;
            } else {
                nbig++; /* too many to track: count it as a full scan */
            }
            nq++;
            p = after_last_q = ep + 1;
        } else if (ep < pe && *ep == '?') {
            nopt++;
            p = ep + 1;
        } else {
            p = ep;
        }
    }
    int tracked = nq < MAX_QUANT ? nq : MAX_QUANT;
    if (after_last_q && nq <= MAX_QUANT) {
        const char *q = after_last_q;
        while (q < pe && *q == ')')
            q++;
        if (q == pe)
            tracked--; /* the pattern ends with it */
    }
    double base = starts * pow((double)n + 1, nbig) * pow(2, nopt);
    double crude = base * pow((double)n + 1, tracked);
    if (crude <= limit)
        return crude;
    for (int i = 0; i < tracked && base <= limit; i++) /* the tight bound, only when needed */
        base *= (double)longest_run(s, n, qp[i], qe[i]) + 1;
    return base;
}

