/* Data splits: training trains, validation selects (the best checkpoint, a sweep's winner),
 * evaluation only reports. Without a validation set of its own, a job or an experiment holds one
 * out of its training data, the same way in both. */
#ifndef AC_DATASET_H
#define AC_DATASET_H

#include <stdint.h>

#include "base/err.h"

/* The fewest validation queries a split holds out (unless training has fewer than twice that). */
#define AC_DATASET_MIN_VALIDATION 20

/* Splits training (an array of queries) into *train and *val: round(fraction * n) queries, at
 * least AC_DATASET_MIN_VALIDATION, drawn with a generator seeded by seed; both keep the original
 * order. New references. With fewer than 2 * AC_DATASET_MIN_VALIDATION queries nothing is held
 * out (*val is empty). -1 with AC_ERR_INTERNAL only on memory. */
int ac_dataset_split(const json_t *training, double fraction, uint64_t seed, json_t **train, json_t **val,
                     ac_err_t *err);

#endif
