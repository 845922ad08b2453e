#!/usr/bin/env python3
"""PyTorch reference for the encoder (core/encoder.c).

Rebuilds the same pre-norm Transformer encoder in torch (float64) from the flat parameter array
that `test_encoder --dump FILE` wrote, runs it on the same packed sequences (each sequence alone:
attention never crosses sequences), and compares with the C results: the output Y, and the
gradients of L = sum(Y * R) with respect to every parameter tensor and to X, from autograd.
torch's own layer_norm, softmax and gelu(approximate="tanh") are used, not a transcription of
the C code.

    encoder_ref.py --bin build/test_encoder    # runs the dump into a temp file, then compares
    encoder_ref.py FILE                        # compares an existing dump

Exit status 0 when everything matches within tolerance, 1 otherwise (also when torch is missing:
this check must not pass by being skipped).
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print(f"FAIL: cannot import torch with {sys.executable} ({e}); install Debian's python3-torch "
          "(tests/setup.sh does) and re-run cmake so that ref_encoder finds it")
    sys.exit(1)

RTOL, ATOL = 1e-4, 1e-5
LAYER_TENSORS = ["ln1_g", "ln1_b", "Wqkv", "bqkv", "Wo", "bo", "ln2_g", "ln2_b", "W1", "b1", "W2", "b2"]
failures = 0


def layout(cfg):
    """[(layer, name, offset, shape)] in the C layout (matrices (in, out) row-major)."""
    D, Fh, L = cfg["d_model"], cfg["d_ff"], cfg["n_layers"]
    shapes = {"ln1_g": (D,), "ln1_b": (D,), "Wqkv": (D, 3 * D), "bqkv": (3 * D,), "Wo": (D, D),
              "bo": (D,), "ln2_g": (D,), "ln2_b": (D,), "W1": (D, Fh), "b1": (Fh,), "W2": (Fh, D),
              "b2": (D,)}
    out, off = [], 0
    for l in range(L):
        for name in LAYER_TENSORS:
            n = 1
            for s in shapes[name]:
                n *= s
            out.append((f"L{l}", name, off, shapes[name]))
            off += n
    for name in ("lnf_g", "lnf_b"):
        out.append(("final", name, off, (D,)))
        off += D
    return out, off


def encode(cfg, P, x):
    """One sequence x (T, D) through the encoder; P maps (layer, name) -> tensor."""
    D, H = cfg["d_model"], cfg["n_heads"]
    dh = D // H
    T = x.shape[0]
    for l in range(cfg["n_layers"]):
        p = lambda n: P[(f"L{l}", n)]
        a = F.layer_norm(x, (D,), p("ln1_g"), p("ln1_b"), eps=1e-5)
        qkv = a @ p("Wqkv") + p("bqkv")
        q, k, v = qkv.split(D, dim=1)
        q = q.reshape(T, H, dh).transpose(0, 1)  # (H, T, dh)
        k = k.reshape(T, H, dh).transpose(0, 1)
        v = v.reshape(T, H, dh).transpose(0, 1)
        att = torch.softmax(q @ k.transpose(1, 2) / dh ** 0.5, dim=-1)  # (H, T, T)
        o = (att @ v).transpose(0, 1).reshape(T, D)
        x = x + o @ p("Wo") + p("bo")
        m = F.layer_norm(x, (D,), p("ln2_g"), p("ln2_b"), eps=1e-5)
        u = F.gelu(m @ p("W1") + p("b1"), approximate="tanh")
        x = x + u @ p("W2") + p("b2")
    return F.layer_norm(x, (D,), P[("final", "lnf_g")], P[("final", "lnf_b")], eps=1e-5)


def close(name, c, ref):
    """c: the C values (float32 rounded), ref: torch float64. |c - ref| <= atol + RTOL |ref| with
    atol = ATOL * max(1, max|ref|): float32 rounding errors scale with the tensor's magnitude
    (gradients here reach 10-30), and entries that are 0 in exact arithmetic (the key bias's
    gradient) carry that rounding noise."""
    global failures
    c = torch.as_tensor(c, dtype=torch.float64).reshape(ref.shape)
    diff = (c - ref).abs()
    lim = ATOL * max(1.0, ref.abs().max().item()) + RTOL * ref.abs()
    bad = int((diff > lim).sum()) + int(torch.isnan(c).sum())
    i = int(torch.argmax(diff - lim))
    if bad:
        failures += 1
        print(f"FAIL {name:24s} {bad}/{ref.numel()} out of tolerance (rtol {RTOL} atol {ATOL}); "
              f"worst [{i}]: C {c.flatten()[i].item():.9g} vs torch {ref.flatten()[i].item():.9g}")
    else:
        print(f"ok   {name:24s} n={ref.numel():<6d} max|diff| {diff.max().item():.3g} "
              f"(max|ref| {ref.abs().max().item():.3g})")


def check_case(k, case):
    cfg = case["config"]
    tag = f"case{k}/D{cfg['d_model']}H{cfg['n_heads']}L{cfg['n_layers']}F{cfg['d_ff']}"
    D = cfg["d_model"]
    lay, n_params = layout(cfg)
    flat = case["params"]
    if len(flat) != n_params:
        global failures
        failures += 1
        print(f"FAIL {tag}: {len(flat)} parameters in the dump, the layout says {n_params}")
        return
    P = {}
    for layer, name, off, shape in lay:
        n = 1
        for s in shape:
            n *= s
        P[(layer, name)] = torch.tensor(flat[off:off + n], dtype=torch.float64).reshape(shape).requires_grad_(True)
    offsets = case["offsets"]
    X = torch.tensor(case["X"], dtype=torch.float64).reshape(-1, D).requires_grad_(True)
    R = torch.tensor(case["R"], dtype=torch.float64).reshape(-1, D)
    if X.shape[0] != offsets[-1]:
        failures += 1
        print(f"FAIL {tag}: X has {X.shape[0]} rows, offsets end at {offsets[-1]}")
        return
    Y = torch.cat([encode(cfg, P, X[offsets[b]:offsets[b + 1]]) for b in range(len(offsets) - 1)])
    close(f"{tag}/Y", case["Y"], Y.detach())
    (Y * R).sum().backward()
    for layer, name, off, shape in lay:
        n = 1
        for s in shape:
            n *= s
        close(f"{tag}/{layer}/d{name}", case["dparams"][off:off + n], P[(layer, name)].grad)
    close(f"{tag}/dX", case["dX"], X.grad)


def main(argv):
    if len(argv) == 3 and argv[1] == "--bin":
        fd, path = tempfile.mkstemp(suffix=".json", prefix="encoder_ref_")
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
    torch.set_num_threads(1)
    for k, case in enumerate(cases):
        check_case(k, case)
    print(f"encoder_ref: torch {torch.__version__}, {len(cases)} cases, {failures} failure(s)")
    return 1 if failures or not cases else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
