/* Deterministic PRNG: xoshiro256** seeded through splitmix64.
 *
 * The whole state is the plain struct below, so saving and restoring it (checkpoints) is a copy.
 * No hidden caches (normal() draws two uniforms every call) keep that true. Not thread-safe: one
 * ac_rng_t per thread or per job. */
#ifndef AC_RNG_H
#define AC_RNG_H

#include <stdint.h>

typedef struct ac_rng {
    uint64_t s[4]; /* xoshiro256** state; never all zero after ac_rng_seed */
} ac_rng_t;

/* Seeds from one 64-bit value (any value, 0 included). Equal seeds give equal streams. */
void ac_rng_seed(ac_rng_t *r, uint64_t seed);

/* Next 64 random bits. */
uint64_t ac_rng_u64(ac_rng_t *r);

/* Uniform in [0, 1) with 24 (float) or 53 (double) random bits. */
float ac_rng_uniform(ac_rng_t *r);
double ac_rng_uniform_double(ac_rng_t *r);

/* Standard normal (Box-Muller, one value per call, two uniforms consumed). */
double ac_rng_normal(ac_rng_t *r);

/* Index drawn with probability p[i] / sum(p). Entries <= 0 (or NaN) are never drawn.
 * Returns -1 when no entry is positive. Consumes one uniform. */
int ac_rng_categorical(ac_rng_t *r, const float *p, int n);

#endif
