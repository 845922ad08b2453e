#!/usr/bin/env python3
"""Peer of bench/actor_bench.c in PyTorch (CPU): the same sequence policy at the same sizes and
the same work, written as a PyTorch user would.

Model (core/engine/actor.h, kind "sequence"; docs/grpo.md): token inputs Etok[text] + (Etok[prefix]
+ Etok[suffix]) / 2 + phi(value) Wnum + Ekind + Eseg + Eage + Eflag + Eord + 0.3 sinusoid(position);
a pre-norm Transformer encoder (d_model 64, 4 heads, 2 layers, d_ff 128, GELU tanh, LayerNorm
eps 1e-5: nn.MultiheadAttention with a key padding mask, nn.LayerNorm, nn.Linear); h = relu(mean of
E[the state's hashed features] W0 + b0) + the mean of the outputs; candidate j = mean of Ec[its 8
hashed features] + output j; tool head h Wt + bt (masked); pointer heads q = h Wq + S[tool, slot]
(+ sum of the earlier choices' vectors U), score_j = c_j . (Wk q) / 8; all heads batched over the
decisions.

Work: the same 512 states (16 x 8 x 4, lengths 32..96 from the C benchmark's LCG, padded to the
longest), 1536 decisions; one update = reference forward + forward + GRPO loss (clipped ratio,
k3 KL 0.04, per-episode mean then over episodes) + backward (autograd) + global-norm clip +
Adam; one rollout forward = the first 128 states, tool and both arguments, without gradients.
Token ids are random (the C benchmark hashes random token hashes; hashing is the host's work and
is not timed here).

    /usr/bin/python3 bench/actor_torch.py [--threads N] [--runs R]

--threads sets torch.set_num_threads and (unless already set) OPENBLAS_NUM_THREADS and
OMP_NUM_THREADS: Debian's torch runs its matmuls on Debian's OpenBLAS, which takes its thread
count from the environment when it loads. The last line (RESULT ...) is for bench/actor_bench.sh.
"""
import argparse
import math
import os
import statistics
import time

if __name__ == "__main__":
    _ap = argparse.ArgumentParser()
    _ap.add_argument("--threads", type=int, default=1)
    _ap.add_argument("--runs", type=int, default=7)
    ARGS = _ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(ARGS.threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

Q, G, T = 16, 8, 4
N, ROLL = Q * G * T, Q * G
MIN_LEN, MAX_LEN = 32, 96
NA, NARGS, NC, CF = 8, 2, 8, 8
D, NH, L, FF, NB, DE = 64, 4, 2, 128, 4096, 64
KINDS, SEGS, AGES, FLAGS, ORDS, NUMF = 5, 6, 8, 8, 16, 6
M64 = (1 << 64) - 1
WARM = 3


def draw_lengths(n):
    """The C benchmark's LCG (Knuth's MMIX constants), seed 42."""
    s, out = 42, []
    for _ in range(n):
        s = (s * 6364136223846793005 + 1442695040888963407) & M64
        out.append(MIN_LEN + (s >> 33) % (MAX_LEN - MIN_LEN + 1))
    return out


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D, eps=1e-5), nn.LayerNorm(D, eps=1e-5)
        self.attn = nn.MultiheadAttention(D, NH, batch_first=True)
        self.fc1, self.fc2 = nn.Linear(D, FF), nn.Linear(FF, D)

    def forward(self, x, pad):
        a = self.ln1(x)
        x = x + self.attn(a, a, a, key_padding_mask=pad, need_weights=False)[0]
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


class Actor(nn.Module):
    def __init__(self):
        super().__init__()
        self.Etok = nn.Embedding(NB, D)
        self.Wnum = nn.Linear(NUMF, D, bias=False)
        self.Ekind, self.Eseg, self.Eage = nn.Embedding(KINDS, D), nn.Embedding(SEGS, D), nn.Embedding(AGES, D)
        self.Eflag, self.Eord = nn.Embedding(FLAGS, D), nn.Embedding(ORDS, D)
        self.blocks = nn.ModuleList([Block() for _ in range(L)])
        self.lnf = nn.LayerNorm(D, eps=1e-5)
        self.E = nn.EmbeddingBag(NB, DE, mode="mean")
        self.l0 = nn.Linear(DE, D)
        self.Ec = nn.EmbeddingBag(NB, D, mode="mean")
        self.tool = nn.Linear(D, NA)
        self.Wq = nn.Parameter(torch.randn(D, D) * 0.1 / math.sqrt(D))
        self.S = nn.Parameter(torch.randn(NA * NARGS, D) * 0.1)
        self.U = nn.Parameter(torch.randn(D, D) * 0.1 / math.sqrt(D))
        self.Wk = nn.Parameter(torch.randn(D, D) / math.sqrt(D))
        pe = torch.zeros(256, D)
        pos = torch.arange(256, dtype=torch.float64)[:, None]
        freq = 10000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
        pe[:, 0::2] = (0.3 * torch.sin(pos * freq)).float()
        pe[:, 1::2] = (0.3 * torch.cos(pos * freq)).float()
        self.register_buffer("pe", pe)

    def forward(self, b, tools, c0, n):
        """Log-probabilities of the tool (n, NA) and both argument slots (n, NC) of states 0..n-1."""
        x = (self.Etok(b["tok"][:n]) + 0.5 * b["affix"][:n, :, None] * (self.Etok(b["pre"][:n]) + self.Etok(b["suf"][:n]))
             + self.Wnum(b["numf"][:n]) + self.Ekind(b["kind"][:n]) + self.Eseg(b["seg"][:n]) + self.Eage(b["age"][:n])
             + self.Eflag(b["flag"][:n]) + self.Eord(b["ord"][:n]) + self.pe[b["pos"][:n]])
        pad = b["pad"][:n]
        for blk in self.blocks:
            x = blk(x, pad)
        y = self.lnf(x)
        valid = (~pad).float()[:, :, None]
        hseq = (y * valid).sum(1) / valid.sum(1)
        nb = b["bag_off"][n] if n < len(b["bag_off"]) else len(b["bag_ids"])
        h = torch.relu(self.l0(self.E(b["bag_ids"][:nb], b["bag_off"][:n]))) + hseq
        lt = self.tool(h).masked_fill(~b["mask"][:n], float("-inf")).log_softmax(-1)
        C = self.Ec(b["cids"][:n].reshape(n * NC, CF)).reshape(n, NC, D) + y[:, b["cand"]]
        hq = h @ self.Wq
        r0 = (hq + self.S[tools * NARGS]) @ self.Wk.T
        l0 = (torch.bmm(C, r0[:, :, None])[:, :, 0] / math.sqrt(D)).log_softmax(-1)
        psum = C[torch.arange(n), c0]
        r1 = (hq + self.S[tools * NARGS + 1] + psum @ self.U) @ self.Wk.T
        l1 = (torch.bmm(C, r1[:, :, None])[:, :, 0] / math.sqrt(D)).log_softmax(-1)
        return lt, l0, l1


def make_batch():
    """The C benchmark's token layout on random ids: [cls], a query of ~40 %, calls and results
    of 4 tokens; every third token a number (the first 8 are the candidates), some punctuation."""
    lens = draw_lengths(N)
    tmax = max(lens)
    g = torch.Generator().manual_seed(3)
    ri = lambda hi, *shape: torch.randint(0, hi, shape, generator=g)  # noqa: E731
    b = {"tok": ri(NB, N, tmax), "pre": ri(NB, N, tmax), "suf": ri(NB, N, tmax), "flag": ri(FLAGS, N, tmax),
         "age": ri(AGES, N, tmax), "ord": ri(ORDS, N, tmax)}
    kind = torch.full((N, tmax), 1)
    k = torch.arange(tmax)
    kind[:, k % 3 == 1] = 2
    kind[:, (k % 12 == 0) & (k > 0)] = 4
    kind[:, 0] = 0
    b["kind"] = kind
    b["affix"] = (kind == 1).float()
    b["numf"] = torch.rand(N, tmax, NUMF, generator=g) * (kind == 2).float()[:, :, None]
    b["seg"] = ri(SEGS, N, tmax)
    b["pos"] = ri(64, N, tmax)
    b["pad"] = k[None, :] >= torch.tensor(lens)[:, None]
    ids, offs = [], []
    for i, n in enumerate(lens):  # unigrams, bigrams, numbers' magnitude, copy flags (~3.2 a token)
        offs.append(len(ids))
        cnt = min(256, int(3.2 * n))
        ids.extend(torch.randint(0, NB, (cnt,), generator=g).tolist())
    b["bag_ids"], b["bag_off"] = torch.tensor(ids), torch.tensor(offs)
    b["cids"] = ri(NB, N, NC, CF)
    b["cand"] = torch.arange(1, 3 * NC, 3)
    mask = torch.rand(N, NA, generator=g) < 0.75
    mask[:, 0] = True
    b["mask"] = mask
    return b, lens


def main():
    torch.set_num_threads(ARGS.threads)
    torch.manual_seed(7)
    b, lens = make_batch()
    pol, ref = Actor(), Actor()
    ref.load_state_dict(pol.state_dict())
    for p in ref.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(pol.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    rows = torch.arange(N)
    with torch.no_grad():  # acting: the tool, then slot 0, then slot 1 given slot 0's choice
        zero = torch.zeros(N, dtype=torch.long)
        tools = torch.distributions.Categorical(logits=pol(b, zero, zero, N)[0]).sample()
        c0 = torch.distributions.Categorical(logits=pol(b, tools, zero, N)[1]).sample()
        lt, l0, l1 = pol(b, tools, c0, N)
        c1 = torch.distributions.Categorical(logits=l1).sample()
        chosen = [tools, c0, c1]
        old = [lg[rows, c] for lg, c in zip((lt, l0, l1), chosen)]
    rewards = torch.randint(0, 2, (Q, G)).float()
    adv_ep = (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, unbiased=False, keepdim=True) + 1e-4)
    adv = adv_ep.reshape(-1).repeat_interleave(T)
    beta, lo, hi = 0.04, 0.8, 1.2

    phases = ["ref forward", "forward", "loss", "backward", "clip+adam", "total"]
    times = {k: [] for k in phases}
    cpu = []
    for r in range(ARGS.runs + WARM):
        c_start = time.process_time()
        t0 = time.perf_counter()
        with torch.no_grad():
            refl = ref(b, tools, c0, N)
        t1 = time.perf_counter()
        cur = pol(b, tools, c0, N)
        t2 = time.perf_counter()
        per_step = 0
        for lg, rl, c, lo_ in zip(cur, refl, chosen, old):
            lp = lg[rows, c]
            ratio = torch.exp(lp - lo_)
            surr = -torch.min(ratio * adv, ratio.clamp(lo, hi) * adv)
            d = rl[rows, c] - lp
            per_step = per_step + surr + beta * (torch.exp(d) - d - 1)
        loss = (per_step / 3).reshape(Q * G, T).mean(1).mean()  # grpo: per episode, then over episodes
        t3 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        t4 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(pol.parameters(), 1.0)
        opt.step()
        t5 = time.perf_counter()
        if r >= WARM:
            for k, v in zip(phases, [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0]):
                times[k].append(v)
            cpu.append(time.process_time() - c_start)

    roll = []
    zero = torch.zeros(ROLL, dtype=torch.long)
    for r in range(ARGS.runs + WARM):
        t0 = time.perf_counter()
        with torch.no_grad():
            out = pol(b, tools[:ROLL], zero, ROLL)
        if r >= WARM:
            roll.append(time.perf_counter() - t0)

    med = {k: statistics.median(v) for k, v in times.items()}
    n_params = sum(p.numel() for p in pol.parameters())
    n_tok = sum(lens)
    print(f"PyTorch {torch.__version__}  sequence actor, {ARGS.threads} thread(s) (OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS')}), {ARGS.runs} runs (after {WARM} warm-up), {n_params} parameters")
    print(f"update batch: {N} states, {n_tok} tokens padded to {N} x {max(lens)} = {N * max(lens)} rows, "
          f"{3 * N} decisions")
    for k in phases:
        print(f"  {k:12s} {1e3 * med[k]:8.2f} ms  (min {1e3 * min(times[k]):.2f}, max {1e3 * max(times[k]):.2f})")
    print(f"  process CPU time per update: median {1e3 * statistics.median(cpu):.2f} ms")
    print(f"rollout forward: {ROLL} states, tool + 2 arguments each: {1e3 * statistics.median(roll):.2f} ms "
          f"(min {1e3 * min(roll):.2f}, max {1e3 * max(roll):.2f})")
    a, bb = torch.rand(2048, 2048), torch.rand(2048, 2048)
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        a @ bb
        ts.append(time.perf_counter() - t0)
    peak = 2 * 2048 ** 3 / statistics.median(ts) / 1e9
    print(f"  matmul peak (2048^3, same run): {peak:.1f} GFLOP/s")
    print(f"  (loss {loss.item():.4f}, {out[0].shape[0]} rollout states: sanity)")
    tot = times["total"]
    print(f"RESULT impl=torch threads={ARGS.threads} update_ms={1e3 * med['total']:.2f} "
          f"update_min={1e3 * min(tot):.2f} update_max={1e3 * max(tot):.2f} "
          f"update_cpu_ms={1e3 * statistics.median(cpu):.2f} "
          f"rollout_ms={1e3 * statistics.median(roll):.2f} proj_gflops=nan peak_gflops={peak:.1f}")


if __name__ == "__main__":
    main()
