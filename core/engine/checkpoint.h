/* Checkpoints: the policy (config + parameters), the Adam state, the RNG state, the iteration and
 * a small free-form metadata blob, in one versioned binary buffer.
 *
 * Layout (every integer little-endian, floats as their IEEE-754 bits, little-endian):
 *   "ACCKPT\r\n"          8  magic (the CR LF catches text-mode mangling)
 *   version               u32  AC_CHECKPOINT_VERSION
 *   flags                 u32  0 (reserved)
 *   body_len              u64  bytes between the header and the checksum
 *   body:
 *     policy config       ac_actor_config_write's record (version u32, seed u64, kind, tools,
 *                         sizes, arguments per tool: i32 each; engine/actor.c)
 *     n_params            u64, then n_params f32
 *     optim config        lr, beta1, beta2, eps, weight_decay: f32 each
 *     optim step          i64; n u64 (== n_params); m: n f32; v: n f32
 *     rng                 4 x u64
 *     iteration           u64
 *     meta_len            u32, then meta_len bytes
 *   crc32                 u32  CRC-32 (IEEE, reflected 0xEDB88320) of everything before it
 *
 * The reference policy is not stored: it is the initial policy, and ac_actor_create with the
 * stored config (same seed) rebuilds it bit for bit.
 *
 * Version 1 (the bag policy before argument slots: config n_buckets, d_emb, n_hidden, hidden[4],
 * activation, n_actions, max_features: i32 each, seed u64) still loads: its parameters are the
 * first ones of today's bag layout, the argument heads start from the seed. */
#ifndef AC_CHECKPOINT_H
#define AC_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "engine/optim.h"
#include "engine/actor.h"
#include "base/rng.h"

#define AC_CHECKPOINT_VERSION 2u
#define AC_CHECKPOINT_MAX_META (1u << 20) /* metadata is small by contract: 1 MiB at most */

typedef struct ac_checkpoint {
    ac_actor_t *policy;  /* save: borrowed; load: created, owned by the struct */
    ac_optim_t *optim;   /* same */
    ac_rng_t rng;
    uint64_t iteration;
    uint8_t *meta;       /* save: borrowed (may be NULL when meta_len is 0); load: owned */
    size_t meta_len;
} ac_checkpoint_t;

/* Serialises ck into *out (malloc'd, the caller frees it) of *out_len bytes.
 * -1 with AC_ERR_INVALID_PARAMS (missing policy/optim, sizes disagree, meta too large) or
 * AC_ERR_INTERNAL (memory). */
int ac_checkpoint_save(uint8_t **out, size_t *out_len, const ac_checkpoint_t *ck, ac_err_t *err);

/* Parses buf into ck (policy, optim and meta are created: free with ac_checkpoint_release).
 * Checks, in order: length, magic, version, declared length vs the buffer (truncation), CRC,
 * then every field while parsing. -1 with AC_ERR_INVALID_PARAMS and a message naming what is
 * wrong ("truncated", "bad magic", "version 2 not supported", "checksum mismatch", ...), or
 * AC_ERR_INTERNAL (memory). On error ck holds nothing to release. */
int ac_checkpoint_load(ac_checkpoint_t *ck, const uint8_t *buf, size_t len, ac_err_t *err);

/* Frees what ac_checkpoint_load created and zeroes ck. */
void ac_checkpoint_release(ac_checkpoint_t *ck);

/* CRC-32 (IEEE 802.3, as zlib's crc32) of n bytes. */
uint32_t ac_checkpoint_crc32(const void *data, size_t n);

#endif
