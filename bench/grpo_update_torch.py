#!/usr/bin/env python3
"""Peer of bench/grpo_update.c in PyTorch (CPU): the same sizes and the same update
(reference forward, forward, GRPO loss with k3 KL, backward by autograd, clip, Adam).

    python3 bench/grpo_update_torch.py [--threads N] [--runs R]
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn

Q, G, T = 16, 8, 20
N, F, NB, D, H1, H2, NA = Q * G * T, 48, 32768, 64, 256, 256, 16


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.EmbeddingBag(NB, D, mode="mean")
        self.l1, self.l2, self.out = nn.Linear(D, H1), nn.Linear(H1, H2), nn.Linear(H2, NA)

    def forward(self, ids, mask):
        h = torch.tanh(self.l1(self.emb(ids)))
        h = torch.tanh(self.l2(h))
        return self.out(h).masked_fill(~mask, float("-inf")).log_softmax(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(7)
    pol = Policy()
    ref = Policy()
    ref.load_state_dict(pol.state_dict())
    for p in ref.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(pol.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)

    ids = torch.randint(0, NB, (N, F))
    mask = torch.rand(N, NA) < 0.75
    mask[:, 0] = True
    with torch.no_grad():
        logp = pol(ids, mask)
        actions = torch.distributions.Categorical(logits=logp).sample()
        logp_old = logp.gather(1, actions[:, None])[:, 0]
    rewards = torch.randint(0, 2, (Q, G)).float()
    adv_ep = (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, unbiased=False, keepdim=True) + 1e-4)
    adv = adv_ep.reshape(-1).repeat_interleave(T)  # (N,): every step gets its episode's advantage
    beta, lo, hi = 0.04, 0.8, 1.2

    phases = ["ref forward", "forward", "loss", "backward", "clip+adam", "total"]
    times = {k: [] for k in phases}
    for r in range(args.runs + 3):
        t0 = time.perf_counter()
        with torch.no_grad():
            ref_logp = ref(ids, mask)
        t1 = time.perf_counter()
        logp = pol(ids, mask)
        t2 = time.perf_counter()
        lp = logp.gather(1, actions[:, None])[:, 0]
        ratio = torch.exp(lp - logp_old)
        surr = -torch.min(ratio * adv, ratio.clamp(lo, hi) * adv)
        d = ref_logp.gather(1, actions[:, None])[:, 0] - lp
        k3 = torch.exp(d) - d - 1
        loss = (surr + beta * k3).reshape(Q * G, T).mean(1).mean()  # grpo: per episode, then over episodes
        with torch.no_grad():  # the metrics the C loss also computes
            p = logp.exp()
            legal_lp = logp.masked_fill(~mask, 0.0)
            entropy = -(p * legal_lp).sum(1).mean()
            kl = (p * (legal_lp - ref_logp.masked_fill(~mask, 0.0))).sum(1).mean()
            clip_frac = (((ratio > hi) & (adv > 0)) | ((ratio < lo) & (adv < 0))).float().mean()
        t3 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        t4 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(pol.parameters(), 1.0)
        opt.step()
        t5 = time.perf_counter()
        if r >= 3:
            for k, v in zip(phases, [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0]):
                times[k].append(v)

    fwd = 2.0 * N * (D * H1 + H1 * H2 + H2 * NA)
    med = {k: statistics.median(v) for k, v in times.items()}
    n_params = sum(p.numel() for p in pol.parameters())
    print(f"PyTorch {torch.__version__}  {args.threads} thread(s), {args.runs} runs (median), {n_params} parameters")
    for k in phases:
        print(f"  {k:12s} {1e3 * med[k]:8.2f} ms")
    dense = med["ref forward"] + med["forward"] + med["backward"]
    print(f"  dense FLOPs per update {4 * fwd / 1e9:.2f} GFLOP; fwd+ref+bwd phases {4 * fwd / dense / 1e9:.1f} GFLOP/s")
    a = torch.rand(2048, 2048)
    b = torch.rand(2048, 2048)
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t0)
    print(f"  matmul peak (2048^3, same run): {2 * 2048 ** 3 / statistics.median(ts) / 1e9:.1f} GFLOP/s")
    print(f"  (loss {loss.item():.4f}, kl {kl.item():.2e}, entropy {entropy.item():.3f}, clip {clip_frac.item():.2f}: sanity)")


if __name__ == "__main__":
    main()
