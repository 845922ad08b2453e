#!/usr/bin/env python3
"""Peer of bench/grpo_update.c in PyTorch (CPU): the same sizes and the same update of the bag
actor (reference forward, forward, GRPO loss with k3 KL, backward by autograd, clip, Adam), its
heads batched over all decisions. The model: bench/grpo_update_numpy.py's docstring.

    python3 bench/grpo_update_torch.py [--threads N] [--runs R]
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn as nn

Q, G, T = 16, 8, 20
N, NTOK, NC, CF, NB, D, H, NA, NARGS = Q * G * T, 24, 8, 8, 32768, 64, 256, 16, 2
F = 2 * NTOK - 1


class Actor(nn.Module):
    def __init__(self):
        super().__init__()
        self.E = nn.EmbeddingBag(NB, D, mode="mean")
        self.l0 = nn.Linear(D, H)
        self.tool = nn.Linear(H, NA)
        self.Wq = nn.Parameter(torch.randn(H, H) * 0.1 / math.sqrt(H))
        self.S = nn.Parameter(torch.randn(NA * NARGS, H) * 0.1)
        self.U = nn.Parameter(torch.randn(H, H) * 0.1 / math.sqrt(H))
        self.Wk = nn.Parameter(torch.randn(H, H) / math.sqrt(H))
        self.Ec = nn.EmbeddingBag(NB, H, mode="mean")

    def forward(self, ids, mask, cids, tools, c0):
        """Log-probabilities of the tool (N, NA) and of both argument slots (N, NC) each."""
        h = torch.relu(self.l0(self.E(ids)))
        lt = self.tool(h).masked_fill(~mask, float("-inf")).log_softmax(-1)
        C = self.Ec(cids.reshape(N * NC, CF)).reshape(N, NC, H)
        hq = h @ self.Wq
        r0 = (hq + self.S[tools * NARGS]) @ self.Wk.T
        l0 = (torch.bmm(C, r0[:, :, None])[:, :, 0] / math.sqrt(H)).log_softmax(-1)
        psum = C[torch.arange(N), c0]
        r1 = (hq + self.S[tools * NARGS + 1] + psum @ self.U) @ self.Wk.T
        l1 = (torch.bmm(C, r1[:, :, None])[:, :, 0] / math.sqrt(H)).log_softmax(-1)
        return lt, l0, l1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(7)
    pol = Actor()
    ref = Actor()
    ref.load_state_dict(pol.state_dict())
    for p in ref.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(pol.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)

    ids = torch.randint(0, NB, (N, F))
    cids = torch.randint(0, NB, (N, NC, CF))
    mask = torch.rand(N, NA) < 0.75
    mask[:, 0] = True
    rows = torch.arange(N)
    with torch.no_grad():  # acting: the tool, then slot 0, then slot 1 given slot 0's choice
        zero = torch.zeros(N, dtype=torch.long)
        tools = torch.distributions.Categorical(logits=pol(ids, mask, cids, zero, zero)[0]).sample()
        c0 = torch.distributions.Categorical(logits=pol(ids, mask, cids, tools, zero)[1]).sample()
        lt, l0, l1 = pol(ids, mask, cids, tools, c0)
        c1 = torch.distributions.Categorical(logits=l1).sample()
        chosen = [tools, c0, c1]
        old = [l[rows, c] for l, c in zip((lt, l0, l1), chosen)]
    rewards = torch.randint(0, 2, (Q, G)).float()
    adv_ep = (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, unbiased=False, keepdim=True) + 1e-4)
    adv = adv_ep.reshape(-1).repeat_interleave(T)  # (N,): every decision of a step gets its episode's advantage
    beta, lo, hi = 0.04, 0.8, 1.2

    phases = ["ref forward", "forward", "loss", "backward", "clip+adam", "total"]
    times = {k: [] for k in phases}
    for r in range(args.runs + 3):
        t0 = time.perf_counter()
        with torch.no_grad():
            refl = ref(ids, mask, cids, tools, c0)
        t1 = time.perf_counter()
        cur = pol(ids, mask, cids, tools, c0)
        t2 = time.perf_counter()
        per_step = 0
        ent = kl = clip = 0.0
        for l, rl, c, lo_ in zip(cur, refl, chosen, old):
            lp = l[rows, c]
            ratio = torch.exp(lp - lo_)
            surr = -torch.min(ratio * adv, ratio.clamp(lo, hi) * adv)
            d = rl[rows, c] - lp
            per_step = per_step + surr + beta * (torch.exp(d) - d - 1)
            with torch.no_grad():  # the metrics the C loss also computes
                p = l.exp()
                lm, rm = l.masked_fill(~torch.isfinite(l), 0.0), rl.masked_fill(~torch.isfinite(rl), 0.0)
                ent += -(p * lm).sum(1).mean().item() / 3
                kl += (p * (lm - rm)).sum(1).mean().item() / 3
                clip += (((ratio > hi) & (adv > 0)) | ((ratio < lo) & (adv < 0))).float().mean().item() / 3
        loss = (per_step / 3).reshape(Q * G, T).mean(1).mean()  # grpo: per episode, then over episodes
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

    fwd = 2.0 * N * (D * H + H * NA + 5 * H * H + 2 * NC * H)
    med = {k: statistics.median(v) for k, v in times.items()}
    n_params = sum(p.numel() for p in pol.parameters())
    print(f"PyTorch {torch.__version__}  bag actor, {args.threads} thread(s), {args.runs} runs (median), "
          f"{n_params} parameters")
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
    print(f"  (loss {loss.item():.4f}, kl {kl:.2e}, entropy {ent:.3f}, clip {clip:.2f}: sanity)")


if __name__ == "__main__":
    main()
