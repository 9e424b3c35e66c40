#!/usr/bin/env python3
"""Eager reference timings for the workloads of `ftc bench` (forward + gradient, f32).

Uses PyTorch when it is installed (eager, and torch.compile with --compile); otherwise NumPy,
whose BLAS and elementwise loops stand in for PyTorch eager on CPU. Never run in CI.

    python3 bench/eager_reference.py [--compile] [--reps 5]
"""
import argparse
import statistics
import time


def timed(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts), min(ts)


def numpy_workloads():
    import numpy as np

    rng = np.random.default_rng(1)
    B, T, V = 4, 256, 32000

    def log_softmax(x):
        m = x.max(-1, keepdims=True)
        return x - (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))

    def seq_logps_and_grad(logits, labels):
        keep = labels != -100
        safe = np.where(keep, labels, 0)
        lp = log_softmax(logits)
        tok = np.take_along_axis(lp, safe[..., None], -1)[..., 0]
        seq = np.where(keep, tok, 0).sum(-1)
        return seq, lp, safe, keep

    chosen = rng.standard_normal((B, T, V), dtype=np.float32)
    rejected = rng.standard_normal((B, T, V), dtype=np.float32)
    lab_c = rng.integers(0, V, (B, T)).astype(np.int32)
    lab_r = rng.integers(0, V, (B, T)).astype(np.int32)
    ref = np.full(B, -50.0, np.float32)

    def dpo():
        beta = 0.1
        sc, lpc, sfc, kc = seq_logps_and_grad(chosen, lab_c)
        sr, lpr, sfr, kr = seq_logps_and_grad(rejected, lab_r)
        z = beta * ((sc - ref) - (sr - ref))
        loss = np.logaddexp(0, -z).mean()
        coef = -beta / B / (1 + np.exp(z))
        grads = []
        for lp, safe, keep, sign in ((lpc, sfc, kc, 1), (lpr, sfr, kr, -1)):
            c = np.where(keep, sign * coef[:, None], 0)[..., None]
            g = -c * np.exp(lp)
            np.put_along_axis(g, safe[..., None], np.take_along_axis(g, safe[..., None], -1) + c, -1)
            grads.append(g)
        return loss, grads

    def sft():
        logits = np.concatenate([chosen, rejected])
        labels = np.concatenate([lab_c, lab_r])
        lp = log_softmax(logits)
        tok = np.take_along_axis(lp, labels[..., None], -1)
        n = labels.size
        g = np.exp(lp) / n
        np.put_along_axis(g, labels[..., None], np.take_along_axis(g, labels[..., None], -1) - 1 / n, -1)
        return -tok.mean(), g

    N = I = O = 2048
    R, s = 16, 0.5
    x = rng.standard_normal((N, I), dtype=np.float32)
    W = rng.standard_normal((O, I), dtype=np.float32)
    A = rng.standard_normal((R, I), dtype=np.float32)
    Bm = rng.standard_normal((O, R), dtype=np.float32)
    gy = rng.standard_normal((N, O), dtype=np.float32)

    def lora():
        xa = x @ A.T
        y = x @ W.T + s * (xa @ Bm.T)
        gb = s * (gy.T @ xa)
        gyb = s * (gy @ Bm)
        ga = gyb.T @ x
        gx = gy @ W + gyb @ A
        return y, ga, gb, gx

    return {"dpo_from_logits B=4,T=256,V=32000": dpo, "sft B=8,T=256,V=32000": sft,
            "lora N=I=O=2048,r=16": lora}


def torch_workloads(compile_them):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(1)
    B, T, V = 4, 256, 32000

    def seq_logps(logits, labels):
        keep = labels != -100
        lp = torch.log_softmax(logits, -1)
        tok = torch.gather(lp, -1, torch.where(keep, labels, 0).unsqueeze(-1)).squeeze(-1)
        return torch.where(keep, tok, 0).sum(-1)

    chosen = torch.randn(B, T, V, requires_grad=True)
    rejected = torch.randn(B, T, V, requires_grad=True)
    lab_c = torch.randint(0, V, (B, T))
    lab_r = torch.randint(0, V, (B, T))
    ref = torch.full((B,), -50.0)

    def dpo_loss(c, r):
        z = 0.1 * ((seq_logps(c, lab_c) - ref) - (seq_logps(r, lab_r) - ref))
        return -F.logsigmoid(z).mean()

    logits = torch.randn(2 * B, T, V, requires_grad=True)
    labels = torch.randint(0, V, (2 * B, T))

    def sft_loss(x):
        return F.cross_entropy(x.flatten(0, 1), labels.flatten(), ignore_index=-100)

    N = I = O = 2048
    R, s = 16, 0.5
    x = torch.randn(N, I, requires_grad=True)
    W = torch.randn(O, I)
    A = torch.randn(R, I, requires_grad=True)
    Bm = torch.randn(O, R, requires_grad=True)
    gy = torch.randn(N, O)

    def lora_out(x, A, Bm):
        return x @ W.T + s * ((x @ A.T) @ Bm.T)

    # PEFT's OFT Linear (peft/tuners/oft/layer.py), exact Cayley: R = solve(I + Q, I − Q,
    # left=False) per block, x rotated block-wise, then the frozen layer.
    def oft_out(x, vec, W, blocks, k):
        rows, cols = torch.triu_indices(k, k, 1)
        q = torch.zeros(blocks, k, k)
        q[:, rows, cols] = vec
        q = q - q.transpose(-2, -1)
        eye = torch.eye(k).expand(blocks, k, k)
        rot = torch.linalg.solve(eye + q, eye - q, left=False)
        xr = torch.einsum("...rk,rkc->...rc", x.reshape(*x.shape[:-1], blocks, k), rot)
        return xr.reshape(x.shape) @ W.T

    oft_cases = {}
    for n, i, blocks in ((512, 1024, 32), (2048, 1024, 32), (512, 1024, 1)):
        k = i // blocks
        ox = torch.randn(n, i, requires_grad=True)
        ow = torch.randn(i, i)
        ov = (0.01 * torch.randn(blocks, k * (k - 1) // 2)).requires_grad_(True)
        ogy = torch.randn(n, i)
        oft_cases[f"oft exact L={n},I=O={i},blocks={blocks}"] = (ox, ov, ow, blocks, k, ogy)

    if compile_them:
        dpo_loss = torch.compile(dpo_loss)
        sft_loss = torch.compile(sft_loss)
        lora_out = torch.compile(lora_out)

    def dpo():
        chosen.grad = rejected.grad = None
        dpo_loss(chosen, rejected).backward()

    def sft():
        logits.grad = None
        sft_loss(logits).backward()

    def lora():
        x.grad = A.grad = Bm.grad = None
        lora_out(x, A, Bm).backward(gy)

    def oft_run(case):
        ox, ov, ow, blocks, k, ogy = case

        def run():
            ox.grad = ov.grad = None
            oft_out(ox, ov, ow, blocks, k).backward(ogy)

        return run

    runs = {"dpo_from_logits B=4,T=256,V=32000": dpo, "sft B=8,T=256,V=32000": sft,
            "lora N=I=O=2048,r=16": lora}
    runs.update({name: oft_run(case) for name, case in oft_cases.items()})
    return runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (needs torch)")
    ap.add_argument("--only", default="", help="run only the workloads whose name contains this")
    args = ap.parse_args()
    try:
        import torch  # noqa: F401

        runs = [("torch eager", torch_workloads(False))]
        if args.compile:
            runs.append(("torch.compile", torch_workloads(True)))
    except ImportError:
        print("torch not installed: NumPy eager stands in for PyTorch eager")
        runs = []
    try:
        runs.append(("numpy eager", numpy_workloads()))
    except ImportError:
        print("numpy not installed either: nothing to compare with")
    for label, workloads in runs:
        for name, fn in workloads.items():
            if args.only not in name:
                continue
            med, mn = timed(fn, args.reps)
            print(f"{label:13s} {name:36s} median_ms={med:.1f} min_ms={mn:.1f}")


if __name__ == "__main__":
    main()
