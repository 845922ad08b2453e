#include "base/rng.h"

#include <math.h>

/* splitmix64 spreads a small or zero seed over all 256 state bits (xoshiro must not start at 0). */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void ac_rng_seed(ac_rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ac_rng_u64(ac_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

float ac_rng_uniform(ac_rng_t *r) { return (float)(ac_rng_u64(r) >> 40) * 0x1.0p-24f; }

double ac_rng_uniform_double(ac_rng_t *r) { return (double)(ac_rng_u64(r) >> 11) * 0x1.0p-53; }

double ac_rng_normal(ac_rng_t *r)
{
    /* 1 - u lies in (0, 1], so the log is finite. */
    double u1 = 1.0 - ac_rng_uniform_double(r);
    double u2 = ac_rng_uniform_double(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int ac_rng_categorical(ac_rng_t *r, const float *p, int n)
{
    double total = 0.0;
    int last = -1;
    for (int i = 0; i < n; i++)
        if (p[i] > 0.0f) {
            total += p[i];
            last = i;
        }
    if (last < 0)
        return -1;
    double u = ac_rng_uniform_double(r) * total, acc = 0.0;
    for (int i = 0; i < last; i++)
        if (p[i] > 0.0f) {
            acc += p[i];
            if (u < acc)
                return i;
        }
    /* Rounding can leave u just above the running sum: the last positive entry takes it, so a
     * zero-probability (illegal) entry is never returned. */
    return last;
}
