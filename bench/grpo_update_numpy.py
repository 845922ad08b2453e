#!/usr/bin/env python3
"""Peer of bench/grpo_update.c in NumPy (float32, hand-written backward): the same sizes and the
same update (reference forward, forward, GRPO loss with k3 KL, backward, clip, Adam).

    python3 bench/grpo_update_numpy.py [--runs R]

NumPy's matmul threads come from its BLAS (Debian: the libblas.so.3 alternative, OpenBLAS when
installed); set OPENBLAS_NUM_THREADS to choose them.
"""
import argparse
import statistics
import time

import numpy as np

Q, G, T = 16, 8, 20
N, F, NB, D, H1, H2, NA = Q * G * T, 48, 32768, 64, 256, 256, 16
f32 = np.float32


def init(rng):
    def w(i, o, scale=1.0):
        return (rng.standard_normal((i, o)) * np.sqrt(2.0 / (i + o)) * scale).astype(f32)
    return [rng.standard_normal((NB, D)).astype(f32), w(D, H1), np.zeros(H1, f32), w(H1, H2),
            np.zeros(H2, f32), w(H2, NA, 0.1), np.zeros(NA, f32)]


def forward(P, ids, mask):
    E, W1, b1, W2, b2, W3, b3 = P
    x = E[ids].mean(axis=1)                      # (N, D) embedding bag
    h1 = np.tanh(x @ W1 + b1)
    h2 = np.tanh(h1 @ W2 + b2)
    z = np.where(mask, h2 @ W3 + b3, -np.inf)
    m = z.max(axis=1, keepdims=True)
    logp = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    return logp, (x, h1, h2)


def backward(P, ids, cache, dz):
    E, W1, b1, W2, b2, W3, b3 = P
    x, h1, h2 = cache
    g = [None] * 7
    g[5], g[6] = h2.T @ dz, dz.sum(0)
    dh2 = (dz @ W3.T) * (1 - h2 * h2)
    g[3], g[4] = h1.T @ dh2, dh2.sum(0)
    dh1 = (dh2 @ W2.T) * (1 - h1 * h1)
    g[1], g[2] = x.T @ dh1, dh1.sum(0)
    dx = (dh1 @ W1.T) / F
    # scatter-add of dx into the rows of E: one bincount over (id, column) pairs
    flat = (ids[:, :, None] * D + np.arange(D)).ravel()
    g[0] = np.bincount(flat, weights=np.broadcast_to(dx[:, None, :], (N, F, D)).ravel(),
                       minlength=NB * D).astype(f32).reshape(NB, D)
    return g


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    P = init(rng)
    R = [p.copy() for p in P]
    m = [np.zeros_like(p) for p in P]
    v = [np.zeros_like(p) for p in P]
    ids = rng.integers(0, NB, (N, F))
    mask = rng.random((N, NA)) < 0.75
    mask[:, 0] = True
    logp, _ = forward(P, ids, mask)
    p = np.exp(logp)
    actions = np.array([rng.choice(NA, p=row / row.sum()) for row in p])
    logp_old = logp[np.arange(N), actions].astype(f32)
    rewards = rng.integers(0, 2, (Q, G)).astype(f32)
    adv = np.repeat(((rewards - rewards.mean(1, keepdims=True)) /
                     (rewards.std(1, keepdims=True) + 1e-4)).ravel(), T).astype(f32)
    beta, lo, hi, lr, b1, b2, eps = 0.04, 0.8, 1.2, 1e-3, 0.9, 0.999, 1e-8
    rows = np.arange(N)

    phases = ["ref forward", "forward", "loss", "backward", "clip+adam", "total"]
    times = {k: [] for k in phases}
    for step in range(1, args.runs + 4):
        t0 = time.perf_counter()
        ref_logp, _ = forward(R, ids, mask)
        t1 = time.perf_counter()
        logp, cache = forward(P, ids, mask)
        t2 = time.perf_counter()
        lp = logp[rows, actions]
        ratio = np.exp(lp - logp_old)
        clipped = ((ratio > hi) & (adv > 0)) | ((ratio < lo) & (adv < 0))
        surr = -np.minimum(ratio * adv, np.clip(ratio, lo, hi) * adv)
        d = ref_logp[rows, actions] - lp
        w = 1.0 / N  # grpo with equal-length episodes: per-episode mean then mean = mean
        loss = w * (surr + beta * (np.exp(d) - d - 1)).sum()
        g_lp = w * (np.where(clipped, 0.0, -ratio * adv) + beta * (1 - np.exp(d)))
        pr = np.exp(logp)
        dz = -pr * g_lp[:, None]
        dz[rows, actions] += g_lp
        dz = dz.astype(f32)
        legal = np.where(mask, logp, 0.0)
        entropy = -(pr * legal).sum(1).mean()
        kl = (pr * (legal - np.where(mask, ref_logp, 0.0))).sum(1).mean()
        t3 = time.perf_counter()
        g = backward(P, ids, cache, dz)
        t4 = time.perf_counter()
        norm = np.sqrt(sum(float((x.astype(np.float64) ** 2).sum()) for x in g))
        if norm > 1.0:
            for x in g:
                x *= f32(1.0 / norm)
        c1, c2 = 1 - b1 ** step, 1 - b2 ** step
        for k in range(7):
            m[k] *= b1
            m[k] += (1 - b1) * g[k]
            v[k] *= b2
            v[k] += (1 - b2) * g[k] * g[k]
            P[k] -= (lr / c1) * m[k] / (np.sqrt(v[k] / c2) + eps)
        t5 = time.perf_counter()
        if step > 3:
            for k, val in zip(phases, [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0]):
                times[k].append(val)

    fwd = 2.0 * N * (D * H1 + H1 * H2 + H2 * NA)
    med = {k: statistics.median(x) for k, x in times.items()}
    print(f"NumPy {np.__version__}  {args.runs} runs (median), {sum(x.size for x in P)} parameters")
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
    print(f"  (loss {loss:.4f}, kl {kl:.2e}, entropy {entropy:.3f}, clip {clipped.mean():.2f}: sanity)")


if __name__ == "__main__":
    main()
