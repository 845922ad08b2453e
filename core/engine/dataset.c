#include "engine/dataset.h"

#include <math.h>
#include <stdlib.h>

#include "base/rng.h"

int ac_dataset_split(const json_t *training, double fraction, uint64_t seed, json_t **train, json_t **val,
                     ac_err_t *err)
{
    size_t n = json_array_size(training);
    size_t k = (size_t)llround(fraction * (double)n);
    if (k < AC_DATASET_MIN_VALIDATION)
        k = AC_DATASET_MIN_VALIDATION;
    if (n < 2 * AC_DATASET_MIN_VALIDATION)
        k = 0;
    uint8_t *held = calloc(n + 1, 1);
    size_t *idx = malloc(sizeof *idx * (n + 1));
    *train = json_array();
    *val = json_array();
    if (held == NULL || idx == NULL || *train == NULL || *val == NULL) {
        free(held), free(idx);
        json_decref(*train), json_decref(*val);
        *train = *val = NULL;
        return ac_err_set(err, AC_ERR_INTERNAL, "dataset: out of memory");
    }
    ac_rng_t rng;
    ac_rng_seed(&rng, seed ^ 0x7a11da7aULL);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    for (size_t i = 0; i < k; i++) { /* the first k of a partial Fisher-Yates shuffle */
        size_t j = i + (size_t)(ac_rng_u64(&rng) % (n - i));
        size_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        held[idx[i]] = 1;
    }
    for (size_t i = 0; i < n; i++)
        json_array_append(held[i] ? *val : *train, json_array_get(training, i));
    free(held);
    free(idx);
    return 0;
}
