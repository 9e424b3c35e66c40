#!/usr/bin/env python3
"""FTL called from a PyTorch training loop, next to PyTorch eager in the same run (not CI):

- DPO from logits, B=4 pairs, T=256, V=32000, loss + backward: the `ftl` package
  (`sigmoid_from_logits`) vs TRL's own log-prob code (`selective_log_softmax`, when TRL is
  installed; the same math otherwise) and `-logsigmoid` in eager PyTorch, f32 and bf16 logits;
- the bridge's overhead: a call's wall time minus the time its kernels ran, at that size and at
  a tiny one;
- cold (compile, link, store) and warm (compile cache) `ftl.load` of every stdlib objective.

    bash scripts/python-env.sh --release && .venv/bin/python bench/python_bridge.py [--reps 10]
"""

import argparse
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import ftl
from eager_reference import timed

try:
    from trl.trainer.utils import selective_log_softmax
except ImportError:  # the same computation as TRL 1.16's

    def selective_log_softmax(logits, index):
        if logits.dtype in (torch.float32, torch.float64):
            selected = torch.gather(logits, -1, index.unsqueeze(-1)).squeeze(-1)
            lse = torch.stack([torch.logsumexp(row, dim=-1) for row in logits])
            return selected - lse
        out = []
        for row_logits, row_labels in zip(logits, index):
            lp = F.log_softmax(row_logits, dim=-1)
            out.append(lp.gather(dim=-1, index=row_labels.unsqueeze(-1)).squeeze(-1))
        return torch.stack(out)


def eager_dpo(cl, rl, clab, rlab, rc, rr, beta=0.1):
    """TRL's DPO sigmoid loss from logits: masked per-token log-probs summed per sequence."""

    def seq_logps(logits, labels):
        mask = labels != -100
        safe = labels.masked_fill(~mask, 0)
        return (selective_log_softmax(logits, safe) * mask).sum(-1)

    chosen = beta * (seq_logps(cl, clab) - rc)
    rejected = beta * (seq_logps(rl, rlab) - rr)
    return -F.logsigmoid(chosen - rejected).mean()


def inputs(B, T, V, dtype):
    g = torch.Generator().manual_seed(0)
    return dict(
        chosen_logits=torch.randn(B, T, V, generator=g).to(dtype).requires_grad_(),
        rejected_logits=torch.randn(B, T, V, generator=g).to(dtype).requires_grad_(),
        chosen_labels=torch.randint(0, V, (B, T), generator=g),
        rejected_labels=torch.randint(0, V, (B, T), generator=g),
        ref_chosen_logps=torch.full((B,), -50.0),
        ref_rejected_logps=torch.full((B,), -50.0),
    )


def dpo_rows(reps):
    dpo = ftl.load("std.objectives.dpo", "sigmoid_from_logits", beta=0.1)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        x = inputs(4, 256, 32000, dtype)
        kernel_ms = []

        def ftl_step():
            for v in (x["chosen_logits"], x["rejected_logits"]):
                v.grad = None
            loss, _ = dpo(**x)
            kernel_ms.append(dpo.last_kernel_ms)
            loss.backward()

        def eager_step():
            for v in (x["chosen_logits"], x["rejected_logits"]):
                v.grad = None
            eager_dpo(*x.values()).backward()

        f_med, f_min = timed(ftl_step, reps)
        e_med, e_min = timed(eager_step, reps)
        k = statistics.median(kernel_ms[1:])
        rows.append((str(dtype).split(".")[1], f_med, f_min, k, e_med, e_min))
    return rows


def tiny_overhead(reps):
    """Median µs of a tiny call: with autograd (call + backward), and under no_grad (the
    bridge alone: argument checks, binding, handing outputs over); and its kernels' µs."""
    dpo = ftl.load("std.objectives.dpo", "sigmoid_from_logits", beta=0.1)
    x = inputs(1, 2, 8, torch.float32)
    wall, kern, bare = [], [], []
    for _ in range(reps * 100):
        t = time.perf_counter()
        loss, _ = dpo(**x)
        loss.backward()
        wall.append((time.perf_counter() - t) * 1e6)
        kern.append(dpo.last_kernel_ms * 1e3)
    with torch.no_grad():
        for _ in range(reps * 100):
            t = time.perf_counter()
            dpo(**x)
            bare.append((time.perf_counter() - t) * 1e6)
    eager = []
    for _ in range(reps * 100):
        t = time.perf_counter()
        eager_dpo(*x.values()).backward()
        eager.append((time.perf_counter() - t) * 1e6)
    med = statistics.median
    return med(wall), med(kern), med(bare), med(eager)


def load_times():
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        os.environ["FTL_CACHE_DIR"] = cache
        stdlib = Path(__file__).resolve().parent.parent / "stdlib"
        for path in sorted(stdlib.glob("objectives/*.ftl")):
            for entry in re.findall(r"^objective (\w+)", path.read_text(), re.M):
                module = f"std.objectives.{path.stem}"
                t = time.perf_counter()
                ftl.load(module, entry)
                cold = (time.perf_counter() - t) * 1e3
                t = time.perf_counter()
                ftl.load(module, entry)
                warm = (time.perf_counter() - t) * 1e3
                rows.append((f"{path.stem}.{entry}", cold, warm))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, ftl {ftl.__version__}")
    print("\nDPO from logits B=4 pairs, T=256, V=32000, loss + backward (ms, median / min)")
    print(f"{'logits':<9} {'ftl':>16} {'ftl kernels':>12} {'bridge':>8} {'eager':>16} {'speed-up':>9}")
    for dtype, f_med, f_min, k, e_med, e_min in dpo_rows(args.reps):
        bridge = f_med - k
        print(
            f"{dtype:<9} {f_med:7.1f} / {f_min:6.1f} {k:12.1f} {bridge / k * 100:7.1f}% "
            f"{e_med:7.1f} / {e_min:6.1f} {e_med / f_med:8.1f}x"
        )
    wall, kern, bare, eager = tiny_overhead(args.reps)
    print(
        f"\ntiny DPO (B=1, T=2, V=8), µs: call + backward {wall:.1f} (PyTorch eager {eager:.1f}), "
        f"kernels {kern:.1f}; under no_grad {bare:.1f}, so the bridge is {bare - kern:.1f}"
    )
    print("\nftl.load of each stdlib objective (ms): cold (compile + cache) / warm (cache hit)")
    for name, cold, warm in load_times():
        print(f"  {name:<32} {cold:8.1f} {warm:8.1f}")


if __name__ == "__main__":
    main()
