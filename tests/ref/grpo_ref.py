#!/usr/bin/env python3
"""NumPy reference for the GRPO engine (core/engine/policy.c, core/engine/grpo.c, core/engine/optim.c).

Re-implements, in float64 and without autograd, what one GRPO update does: featurize the texts,
forward the policy and its reference, group-normalised advantages, the loss of each loss type,
its gradient by hand-written backprop, global-norm clipping and one AdamW step. Then compares
with the C results that `test_grpo --dump FILE` wrote.

    grpo_ref.py --bin build/test_grpo    # runs the dump into a temp file, then compares
    grpo_ref.py FILE                     # compares an existing dump

Exit status 0 when every quantity matches within tolerance, 1 otherwise.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

MASK64 = (1 << 64) - 1
FNV_BASIS = 14695981039346656037
FNV_PRIME = 1099511628211


def fnv(h, data):
    for c in data:
        h = ((h ^ c) * FNV_PRIME) & MASK64
    return h


def bucket(h, n):
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK64
    h ^= h >> 33
    return h % n


def words(text):
    """Maximal runs of ASCII letters/digits (lowercased) and bytes >= 0x80."""
    out, cur = [], bytearray()
    for c in text.encode("utf-8"):
        if (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or c >= 0x80:
            cur.append(c + 32 if 65 <= c <= 90 else c)
        elif cur:
            out.append(bytes(cur))
            cur = bytearray()
    if cur:
        out.append(bytes(cur))
    return out


def featurize(text, n_buckets, cap):
    ids, prev = [], None
    for w in words(text):
        if len(ids) >= cap:
            break
        ids.append(bucket(fnv(FNV_BASIS, b"U" + w), n_buckets))
        if prev is not None and len(ids) < cap:
            ids.append(bucket(fnv(FNV_BASIS, b"B" + prev + b" " + w), n_buckets))
        prev = w
    return ids


class Policy:
    """Views into the flat parameter vector, in the C layout."""

    def __init__(self, cfg, flat):
        self.cfg = cfg
        self.dims = [cfg["d_emb"]] + list(cfg["hidden"]) + [cfg["n_actions"]]
        self.flat = np.asarray(flat, dtype=np.float64)
        off = cfg["n_buckets"] * cfg["d_emb"]
        self.E = (0, off)
        self.W, self.b = [], []
        for i, o in zip(self.dims[:-1], self.dims[1:]):
            self.W.append((off, off + i * o, (i, o)))
            off += i * o
            self.b.append((off, off + o))
            off += o
        assert off == self.flat.size, (off, self.flat.size)

    def get(self, flat):
        E = flat[self.E[0]:self.E[1]].reshape(self.cfg["n_buckets"], self.cfg["d_emb"])
        Ws = [flat[a:b].reshape(s) for a, b, s in self.W]
        bs = [flat[a:b] for a, b in self.b]
        return E, Ws, bs


def act(x, kind):
    return np.tanh(x) if kind == "tanh" else np.maximum(x, 0.0)


def forward(pol, flat, ids, mask):
    """Returns logp (N, A) with -inf at illegal actions, and the cache for backward."""
    E, Ws, bs = pol.get(flat)
    x = np.stack([E[i].mean(axis=0) if len(i) else np.zeros(E.shape[1]) for i in ids])
    hs = [x]
    for l, (W, b) in enumerate(zip(Ws, bs)):
        z = hs[-1] @ W + b
        hs.append(act(z, pol.cfg["activation"]) if l < len(Ws) - 1 else z)
    z = np.where(mask, hs[-1], -np.inf)
    m = z.max(axis=1, keepdims=True)
    logp = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    return logp, hs


def backward(pol, flat, ids, hs, dlogits):
    E, Ws, bs = pol.get(flat)
    grad = np.zeros_like(flat)
    gE, gWs, gbs = pol.get(grad)  # views: writing them fills grad
    dy = dlogits
    for l in range(len(Ws) - 1, -1, -1):
        gWs[l] += hs[l].T @ dy
        gbs[l] += dy.sum(axis=0)
        dx = dy @ Ws[l].T
        if l > 0:
            h = hs[l]
            dx = dx * (1 - h * h) if pol.cfg["activation"] == "tanh" else dx * (h > 0)
        dy = dx
    for i, row in enumerate(ids):
        for k in row:
            gE[k] += dy[i] / len(row)
    return grad


def advantages(steps, episodes, g):
    """group: (x - group mean) / (group std + eps); rloo: R - mean of the group's others (outcome
    rewards only); batch: against the whole batch. A group of one episode uses the batch."""
    ep_group = np.array([e[0] for e in episodes])
    rewards = np.array([e[1] for e in episodes], dtype=np.float64)
    ep_of = np.array([s[2] for s in steps])
    if g["per_step"]:
        x = np.zeros(len(steps))
        running = {}
        for t in range(len(steps) - 1, -1, -1):
            e = steps[t][2]
            running[e] = steps[t][4] + g["gamma"] * running.get(e, 0.0)
            x[t] = running[e]
        pool_of = lambda sel_steps, sel_eps: x[sel_steps]  # statistics over step returns
    else:
        x = rewards[ep_of]
        pool_of = lambda sel_steps, sel_eps: rewards[sel_eps]  # statistics over episodes
    groups = ep_group[ep_of]
    adv = np.zeros(len(steps))
    for t in range(len(steps)):
        grp = groups[t]
        batch = g["advantage"] == 2 or (ep_group == grp).sum() < 2
        if not batch and g["advantage"] == 1 and not g["per_step"]:
            others = [rewards[e] for e in range(len(episodes)) if ep_group[e] == grp and e != ep_of[t]]
            adv[t] = x[t] - np.mean(others)
            continue
        if batch:
            pool = pool_of(np.ones(len(steps), dtype=bool), np.ones(len(episodes), dtype=bool))
        else:
            pool = pool_of(groups == grp, ep_group == grp)
        mu, sd = pool.mean(), pool.std()  # population std, as in C
        adv[t] = (x[t] - mu) / (sd + g["std_eps"]) if g["scale_std"] else x[t] - mu
    stds = [rewards[ep_group == grp].std() for grp in set(ep_group.tolist())]
    return adv, rewards.mean(), float(np.mean(stds))


def grpo_loss(logp, ref_logp, steps, episodes, adv, g):
    N, A = logp.shape
    legal = np.isfinite(logp)
    p = np.where(legal, np.exp(np.where(legal, logp, 0)), 0.0)
    lp0 = np.where(legal, logp, 0.0)
    ref0 = np.where(legal, ref_logp, 0.0)
    H_state = -(p * lp0).sum(axis=1)
    KL_state = (p * (lp0 - ref0)).sum(axis=1)
    trunc = np.array([e[2] for e in episodes], dtype=bool)
    # a decision: not masked, and more than one legal option
    use = [t for t, s in enumerate(steps) if not (g["mask_truncated"] and trunc[s[2]]) and legal[s[0]].sum() > 1]
    n_ep = len(episodes)
    counts = {}
    for t in use:
        counts[steps[t][2]] = counts.get(steps[t][2], 0) + 1
    lo, hi = 1 - g["eps_low"], 1 + g["eps_high"]
    dlogits = np.zeros((N, A))
    loss = 0.0
    k3s, kls, Hs, low, high, region = [], [], [], 0, 0, 0
    for t in use:
        s, a, e, old = steps[t][0], steps[t][1], steps[t][2], steps[t][3]
        if g["loss_type"] == 0:
            w = 1.0 / (len(counts) * counts[e])
        elif g["loss_type"] == 1:
            w = 1.0 / (n_ep * g["max_tokens"])
        else:
            w = 1.0 / len(use)
        r = np.exp(logp[s, a] - old)
        A_t = adv[t]
        unclipped, clip_r = r * A_t, min(max(r, lo), hi) * A_t
        surr = -min(unclipped, clip_r)
        # the gradient flows through r only when the unclipped term is the minimum
        grad_lp = -r * A_t if unclipped <= clip_r else 0.0
        low += int(unclipped > clip_r and A_t < 0)
        high += int(unclipped > clip_r and A_t > 0)
        region += int(r < lo or r > hi)
        d = ref_logp[s, a] - logp[s, a]
        k3 = np.exp(d) - d - 1
        grad_lp += g["beta"] * (1 - np.exp(d))
        H = H_state[s]
        loss += w * (surr + g["beta"] * k3 - g["entropy_coef"] * H)
        onehot = np.zeros(A)
        onehot[a] = 1
        dlogp_dz = np.where(legal[s], onehot - p[s], 0.0)
        dH_dz = np.where(legal[s], -p[s] * (lp0[s] + H), 0.0)
        dlogits[s] += w * (grad_lp * dlogp_dz - g["entropy_coef"] * dH_dz)
        k3s.append(k3)
        kls.append(KL_state[s])
        Hs.append(H)
    metrics = dict(loss=loss, kl_k3=np.mean(k3s), kl_exact=np.mean(kls), entropy=np.mean(Hs),
                   clip_low=low / len(use), clip_high=high / len(use), clip_region=region / len(use))
    return dlogits, metrics


def adam_first_step(params, grads, a):
    m = (1 - a["beta1"]) * grads
    v = (1 - a["beta2"]) * grads * grads
    mhat = m / (1 - a["beta1"])
    vhat = v / (1 - a["beta2"])
    return params - a["lr"] * mhat / (np.sqrt(vhat) + a["eps"]) - a["lr"] * a["weight_decay"] * params


failures = 0


def close(name, got, want, rtol, atol):
    global failures
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    diff = np.abs(got - want)
    bad = ~(diff <= atol + rtol * np.abs(want))
    worst = float(diff.max()) if diff.size else 0.0
    if bad.any():
        i = int(np.argmax(np.where(bad, diff, -1)))
        print(f"FAIL {name:28s} {int(bad.sum())}/{diff.size} out (rtol {rtol} atol {atol}); "
              f"[{i}] C {got.flat[i]!r} vs numpy {want.flat[i]!r}")
        failures += 1
    else:
        print(f"ok   {name:28s} n={diff.size:<5d} max|diff| {worst:.3g}")


def check_case(k, case):
    cfg = case["policy"]
    g, a, c = case["grpo"], case["adam"], case["c"]
    tag = f"case{k}/{['grpo', 'dr_grpo', 'dapo'][g['loss_type']]}/{['group', 'rloo', 'batch'][g['advantage']]}"
    ids = [featurize(t, cfg["n_buckets"], cfg["max_features"]) for t in case["texts"]]
    global failures
    if ids != case["ids"]:
        print(f"FAIL {tag}/featurize: C ids {case['ids']} vs python {ids}")
        failures += 1
    else:
        print(f"ok   {tag}/featurize ({sum(map(len, ids))} ids)")
    A = cfg["n_actions"]
    mask = np.array(case["mask"], dtype=bool).reshape(-1, A)
    pol = Policy(cfg, case["params"])
    ref = Policy(cfg, case["ref_params"])
    logp, hs = forward(pol, pol.flat, ids, mask)
    ref_logp, _ = forward(ref, ref.flat, ids, mask)
    close(f"{tag}/logp", np.array(c["logp"])[mask.ravel()], logp[mask], 1e-5, 1e-6)
    steps, episodes = case["steps"], case["episodes"]
    adv, avg_r, r_std = advantages(steps, episodes, g)
    close(f"{tag}/advantages", c["advantages"], adv, 1e-5, 1e-6)
    close(f"{tag}/avg_reward", c["avg_reward"], avg_r, 1e-9, 1e-9)
    close(f"{tag}/reward_std", c["reward_std"], r_std, 1e-6, 1e-9)
    # Use the C advantages downstream (float-rounded), so the loss check isolates the loss.
    dlogits, m = grpo_loss(logp, ref_logp, steps, episodes, np.array(c["advantages"]), g)
    for key in ("loss", "kl_k3", "kl_exact", "entropy", "clip_low", "clip_high", "clip_region"):
        close(f"{tag}/{key}", c[key], m[key], 1e-4, 1e-6)
    grads = backward(pol, pol.flat, ids, hs, dlogits)
    scale = max(np.abs(grads).max(), 1e-12)
    close(f"{tag}/grads", c["grads"], grads, 1e-3, 1e-5 * scale)
    norm = np.sqrt((grads ** 2).sum())
    close(f"{tag}/grad_norm", c["grad_norm"], norm, 1e-4, 0)
    clipped = grads * (a["max_norm"] / norm) if norm > a["max_norm"] > 0 else grads
    after = adam_first_step(pol.flat, clipped, a)
    # Adam's first step moves each weight by ~lr * sign(g): a tiny gradient whose float rounding
    # differs could move by a fraction of lr, so the tolerance is a small share of lr.
    close(f"{tag}/params_after", c["params_after"], after, 1e-5, 1e-3 * a["lr"])


def main(argv):
    if len(argv) == 3 and argv[1] == "--bin":
        fd, path = tempfile.mkstemp(suffix=".json", prefix="grpo_ref_")
        os.close(fd)
        try:
            subprocess.run([argv[2], "--dump", path], check=True)
            with open(path) as f:
                cases = json.load(f)
        finally:
            os.unlink(path)
    elif len(argv) == 2:
        with open(argv[1]) as f:
            cases = json.load(f)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for k, case in enumerate(cases):
        check_case(k, case)
    print(f"grpo_ref: {len(cases)} cases, {failures} failure(s)")
    return 1 if failures or not cases else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
