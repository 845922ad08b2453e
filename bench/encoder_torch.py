#!/usr/bin/env python3
"""Peer of bench/encoder_bench.c in PyTorch (CPU): the same model (pre-norm encoder, D 64,
4 heads, 2 layers, MLP 256, GELU tanh, LayerNorm eps 1e-5), the same 768 sequences of 16..64
tokens (same LCG), forward + backward of the same loss sum(Y * R) by autograd, 21 repetitions
after 3 warm-up, medians.

torch has no packed variable-length layout, so the batch is padded to the longest sequence with
a key padding mask, which is what a PyTorch user writes: nn.MultiheadAttention with
key_padding_mask (batch_first), nn.LayerNorm, nn.Linear, F.gelu(approximate="tanh"). Padded
rows are computed and then masked out of the loss.

    /usr/bin/python3 bench/encoder_torch.py [--threads N] [--runs R]

--threads sets torch.set_num_threads and (unless already set) OPENBLAS_NUM_THREADS and
OMP_NUM_THREADS; OpenBLAS picks its kernel itself unless OPENBLAS_CORETYPE is set.
"""
import argparse
import ctypes
import os
import statistics
import time

# torch's matmuls go to Debian's OpenBLAS (pthread build), which takes its thread count from the
# environment when it loads, not from torch.set_num_threads: set it before importing torch, so
# that "--threads 1" is one thread for the matmuls too.
if __name__ == "__main__":
    _ap = argparse.ArgumentParser()
    _ap.add_argument("--threads", type=int, default=1)
    _ap.add_argument("--runs", type=int, default=21)
    ARGS = _ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(ARGS.threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

B, D, H, L, FF, MIN_LEN, MAX_LEN = 768, 64, 4, 2, 256, 16, 64
MASK64 = (1 << 64) - 1


def draw_lengths(n):
    """The C benchmark's LCG (Knuth's MMIX constants), seed 42."""
    s, out = 42, []
    for _ in range(n):
        s = (s * 6364136223846793005 + 1442695040888963407) & MASK64
        out.append(MIN_LEN + (s >> 33) % (MAX_LEN - MIN_LEN + 1))
    return out


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D, eps=1e-5), nn.LayerNorm(D, eps=1e-5)
        self.attn = nn.MultiheadAttention(D, H, batch_first=True)
        self.fc1, self.fc2 = nn.Linear(D, FF), nn.Linear(FF, D)

    def forward(self, x, pad):
        a = self.ln1(x)
        x = x + self.attn(a, a, a, key_padding_mask=pad, need_weights=False)[0]
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.lnf = nn.LayerNorm(D, eps=1e-5)

    def forward(self, x, pad):
        for blk in self.blocks:
            x = blk(x, pad)
        return self.lnf(x)


def openblas_core():
    """The OpenBLAS kernel torch's matmuls run on (the library found in this process's maps)."""
    try:
        with open(f"/proc/{os.getpid()}/maps") as f:
            libs = {l.split()[-1] for l in f if "libopenblas" in l}
        for lib in libs:
            fn = ctypes.CDLL(lib).openblas_get_corename
            fn.restype = ctypes.c_char_p
            return fn().decode()
    except (OSError, AttributeError):
        pass
    return "unknown"


def main():
    args = ARGS
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    lens = draw_lengths(B)
    T = max(lens)
    n_tok = sum(lens)
    model = Encoder()
    for name, p in model.named_parameters():  # the C init: N(0, 0.02), residual projections scaled
        if p.dim() == 2:
            std = 0.02 / (2 * L) ** 0.5 if ("out_proj" in name or "fc2" in name) else 0.02
            nn.init.normal_(p, 0.0, std)
        elif "ln" not in name:
            nn.init.zeros_(p)
    pad = torch.arange(T)[None, :] >= torch.tensor(lens)[:, None]  # (B, T): True = padding
    keep = (~pad).unsqueeze(-1).float()  # (B, T, 1)
    X = torch.randn(B, T, D) * keep
    R = torch.randn(B, T, D) * keep  # the loss sum(Y * R) ignores padded rows
    times, fwd_times = [], []
    for r in range(args.runs + 3):
        model.zero_grad(set_to_none=False)
        t0 = time.perf_counter()
        Y = model(X, pad)
        loss = (Y * R).sum()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if r >= 3:
            times.append(t2 - t0)
            fwd_times.append(t1 - t0)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"PyTorch {torch.__version__}  {args.threads} thread(s) (OPENBLAS_NUM_THREADS {os.environ['OPENBLAS_NUM_THREADS']}, "
          f"OpenBLAS kernel {openblas_core()}), {args.runs} runs (after 3 warm-up), {n_params} parameters")
    print(f"batch: {B} sequences of {MIN_LEN}..{MAX_LEN} tokens, {n_tok} tokens, padded to {B} x {T} = {B * T}")
    print(f"  forward + backward  median {1e3 * statistics.median(times):8.2f} ms   "
          f"min {1e3 * min(times):.2f}  max {1e3 * max(times):.2f}")
    print(f"  forward             median {1e3 * statistics.median(fwd_times):8.2f} ms")
    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t0)
    print(f"  matmul peak (2048^3, same run): {2 * 2048 ** 3 / statistics.median(ts) / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
