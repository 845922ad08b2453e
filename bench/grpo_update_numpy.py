#!/usr/bin/env python3
"""Peer of bench/grpo_update.c in NumPy (float32, hand-written backward): the same sizes and the
same update of the bag actor (reference forward, forward, GRPO loss with k3 KL, backward, clip,
Adam), its heads batched over all decisions as matrix products.

    python3 bench/grpo_update_numpy.py [--runs R]

The actor (core/engine/actor.h, bag reader): h = relu(mean(E[ids]) W0 + b0); the tool logits
h Wt + bt, masked; for argument slot k of tool a, q = h Wq + S[a, k] (+ psum U after the first
slot, psum the vectors of the earlier choices), r = Wk q, and candidate j's score c_j . r / sqrt(H)
with c_j = mean(Ec[its 8 ids]).

NumPy's matmul threads come from its BLAS (Debian: the libblas.so.3 alternative, OpenBLAS when
installed); set OPENBLAS_NUM_THREADS to choose them.
"""
import argparse
import statistics
import time

import numpy as np

Q, G, T = 16, 8, 20
N, NTOK, NC, CF, NB, D, H, NA, NARGS = Q * G * T, 24, 8, 8, 32768, 64, 256, 16, 2
F = 2 * NTOK - 1  # unigrams and bigrams of a state's tokens
f32 = np.float32
SQ = f32(1.0 / np.sqrt(H))


def init(rng):
    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(f32)
    return {"E": normal((NB, D), 1.0), "W0": normal((D, H), np.sqrt(2.0 / D)), "b0": np.zeros(H, f32),
            "Wt": normal((H, NA), 0.1 * np.sqrt(2.0 / (H + NA))), "bt": np.zeros(NA, f32),
            "Wq": normal((H, H), 0.1 / np.sqrt(H)), "S": normal((NA * NARGS, H), 0.1),
            "U": normal((H, H), 0.1 / np.sqrt(H)), "Wk": normal((H, H), 1.0 / np.sqrt(H)),
            "Ec": normal((NB, H), 1.0)}


def log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def forward(P, ids, mask, cids, tools, c0):
    """Log-probabilities of the three decisions of every state: tool (N, NA), slot 0 and slot 1
    (N, NC); and what backward needs."""
    rows = np.arange(N)
    x = P["E"][ids].mean(axis=1)                      # (N, D)
    a = x @ P["W0"] + P["b0"]
    h = np.maximum(a, 0)                              # (N, H)
    lt = log_softmax(np.where(mask, h @ P["Wt"] + P["bt"], -np.inf))
    C = P["Ec"][cids].mean(axis=2)                    # (N, NC, H)
    hq = h @ P["Wq"]
    q0 = hq + P["S"][tools * NARGS]
    r0 = q0 @ P["Wk"].T                               # r = Wk q
    l0 = log_softmax(np.einsum("njh,nh->nj", C, r0) * SQ)
    psum = C[rows, c0]                                # the first slot's choice
    q1 = hq + P["S"][tools * NARGS + 1] + psum @ P["U"]
    r1 = q1 @ P["Wk"].T
    l1 = log_softmax(np.einsum("njh,nh->nj", C, r1) * SQ)
    return (lt, l0, l1), (x, a, h, C, q0, r0, q1, r1, psum)


def scatter_rows(n_rows, width, idx, grad):
    """Sum of grad (..., width) into the rows idx (...) of an (n_rows, width) array."""
    flat = (idx[..., None] * width + np.arange(width)).ravel()
    return np.bincount(flat, weights=grad.ravel(), minlength=n_rows * width).astype(f32).reshape(n_rows, width)


def backward(P, ids, mask, cids, tools, c0, cache, dzt, dz0, dz1):
    x, a, h, C, q0, r0, q1, r1, psum = cache
    rows = np.arange(N)
    g = {}
    ds0, ds1 = dz0 * SQ, dz1 * SQ                     # through the 1 / sqrt(H)
    dC = ds0[:, :, None] * r0[:, None, :] + ds1[:, :, None] * r1[:, None, :]
    dr0 = np.einsum("nj,njh->nh", ds0, C)
    dr1 = np.einsum("nj,njh->nh", ds1, C)
    g["Wk"] = dr0.T @ q0 + dr1.T @ q1
    dq0, dq1 = dr0 @ P["Wk"], dr1 @ P["Wk"]
    g["U"] = psum.T @ dq1
    dC[rows, c0] += dq1 @ P["U"].T
    g["S"] = scatter_rows(NA * NARGS, H, np.stack([tools * NARGS, tools * NARGS + 1], 1), np.stack([dq0, dq1], 1))
    dhq = dq0 + dq1
    g["Wq"] = h.T @ dhq
    g["Ec"] = scatter_rows(NB, H, cids, np.broadcast_to(dC[:, :, None, :] / CF, (N, NC, CF, H)))
    g["Wt"], g["bt"] = h.T @ dzt, dzt.sum(0)
    dh = dhq @ P["Wq"].T + dzt @ P["Wt"].T
    da = dh * (a > 0)
    g["W0"], g["b0"] = x.T @ da, da.sum(0)
    dx = (da @ P["W0"].T) / F
    g["E"] = scatter_rows(NB, D, ids, np.broadcast_to(dx[:, None, :], (N, F, D)))
    return g


def sample(rng, logp):
    p = np.exp(logp.astype(np.float64))
    u = rng.random((logp.shape[0], 1))
    return np.minimum((np.cumsum(p, axis=1) / p.sum(1, keepdims=True) < u).sum(1), logp.shape[1] - 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    P = init(rng)
    R = {k: v.copy() for k, v in P.items()}
    m = {k: np.zeros_like(v) for k, v in P.items()}
    v = {k: np.zeros_like(x) for k, x in P.items()}
    ids = rng.integers(0, NB, (N, F))
    cids = rng.integers(0, NB, (N, NC, CF))
    mask = rng.random((N, NA)) < 0.75
    mask[:, 0] = True
    rows = np.arange(N)
    # acting, as the rollout does: the tool, then slot 0, then slot 1 given slot 0's choice
    tools = np.zeros(N, np.int64)
    c0 = np.zeros(N, np.int64)
    (lt, _, _), _ = forward(P, ids, mask, cids, tools, c0)
    tools = sample(rng, lt)
    (_, l0, _), _ = forward(P, ids, mask, cids, tools, c0)
    c0 = sample(rng, l0)
    (lt, l0, l1), _ = forward(P, ids, mask, cids, tools, c0)
    c1 = sample(rng, l1)
    chosen = [tools, c0, c1]
    old = [l[rows, c].astype(f32) for l, c in zip((lt, l0, l1), chosen)]
    rewards = rng.integers(0, 2, (Q, G)).astype(f32)
    adv = np.repeat(((rewards - rewards.mean(1, keepdims=True)) /
                     (rewards.std(1, keepdims=True) + 1e-4)).ravel(), T).astype(f32)
    beta, lo, hi, lr, b1, b2, eps = 0.04, 0.8, 1.2, 1e-3, 0.9, 0.999, 1e-8
    w = 1.0 / (3 * N)  # grpo with equal-length episodes: per-episode mean then mean = mean over decisions

    phases = ["ref forward", "forward", "loss", "backward", "clip+adam", "total"]
    times = {k: [] for k in phases}
    for step in range(1, args.runs + 4):
        t0 = time.perf_counter()
        ref, _ = forward(R, ids, mask, cids, tools, c0)
        t1 = time.perf_counter()
        cur, cache = forward(P, ids, mask, cids, tools, c0)
        t2 = time.perf_counter()
        loss, dz, ent, kl, clip = 0.0, [], 0.0, 0.0, 0.0
        for l, rl, c, lo_ in zip(cur, ref, chosen, old):
            lp = l[rows, c]
            ratio = np.exp(lp - lo_)
            clipped = ((ratio > hi) & (adv > 0)) | ((ratio < lo) & (adv < 0))
            surr = -np.minimum(ratio * adv, np.clip(ratio, lo, hi) * adv)
            d = rl[rows, c] - lp
            loss += w * (surr + beta * (np.exp(d) - d - 1)).sum()
            g_lp = w * (np.where(clipped, 0.0, -ratio * adv) + beta * (1 - np.exp(d)))
            pr = np.exp(l)
            z = -pr * g_lp[:, None]
            z[rows, c] += g_lp
            dz.append(z.astype(f32))
            legal = np.isfinite(l)
            lm, rm = np.where(legal, l, 0.0), np.where(legal, rl, 0.0)
            ent += -(pr * lm).sum(1).mean() / 3
            kl += (pr * (lm - rm)).sum(1).mean() / 3
            clip += clipped.mean() / 3
        t3 = time.perf_counter()
        g = backward(P, ids, mask, cids, tools, c0, cache, *dz)
        t4 = time.perf_counter()
        norm = np.sqrt(sum(float((x.astype(np.float64) ** 2).sum()) for x in g.values()))
        if norm > 1.0:
            for x in g.values():
                x *= f32(1.0 / norm)
        c1_, c2_ = 1 - b1 ** step, 1 - b2 ** step
        for k in P:
            m[k] *= b1
            m[k] += (1 - b1) * g[k]
            v[k] *= b2
            v[k] += (1 - b2) * g[k] * g[k]
            P[k] -= (lr / c1_) * m[k] / (np.sqrt(v[k] / c2_) + eps)
        t5 = time.perf_counter()
        if step > 3:
            for k, val in zip(phases, [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0]):
                times[k].append(val)

    fwd = 2.0 * N * (D * H + H * NA + 5 * H * H + 2 * NC * H)
    med = {k: statistics.median(x) for k, x in times.items()}
    print(f"NumPy {np.__version__}  bag actor, {args.runs} runs (median), {sum(x.size for x in P.values())} parameters")
    for k in phases:
        print(f"  {k:12s} {1e3 * med[k]:8.2f} ms")
    dense = med["ref forward"] + med["forward"] + med["backward"]
    print(f"  dense FLOPs per update {4 * fwd / 1e9:.2f} GFLOP; fwd+ref+bwd phases {4 * fwd / dense / 1e9:.1f} GFLOP/s")
    a = rng.random((2048, 2048), dtype=f32)
    b = rng.random((2048, 2048), dtype=f32)
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t0)
    print(f"  matmul peak (2048^3, same run): {2 * 2048 ** 3 / statistics.median(ts) / 1e9:.1f} GFLOP/s")
    print(f"  (loss {loss:.4f}, kl {kl:.2e}, entropy {ent:.3f}, clip {clip:.2f}: sanity)")


if __name__ == "__main__":
    main()
