#!/usr/bin/env python3
"""Losses from hidden states (issue 16): SFT and DPO (sigmoid) from the last hidden states and
the LM head, forward + gradients for `hidden` and `lm_head`, f32, CPU. FTL's
`sft_from_hidden` / `sigmoid_from_hidden` (the `ftl` package; the plan slices the logits over
the vocabulary) next to PyTorch eager (`hidden @ lm_head.T`, then TRL 1.16's
`selective_log_softmax` — gather minus row logsumexp — and `loss.backward()`) and
`torch.compile` of the same function. Each runs in its own process so that its memory is its
own. Memory is measured on one call: `peak` is the process's resident-set high-water mark
during the call minus its size just before (inputs, libraries and, for FTL, kernels loaded from
the compile cache, which an earlier process filled; for `torch.compile` the second call, after
compiling), so it holds the gradients and everything the call allocates; `beyond` is `peak`
minus the gradients' bytes. Times are medians over `--reps` calls after that. Not CI.

    bash scripts/python-env.sh --release && .venv/bin/python bench/from_hidden.py [--reps 3]
    .venv/bin/python bench/from_hidden.py --large --reps 1     # V=128256, H=2048, T=512
"""

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time

SMALL = dict(N=8, T=256, H=1024, V=32000)
LARGE = dict(N=8, T=512, H=2048, V=128256)
BETA = 0.1


def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak():
    # Linux: writing 5 resets VmHWM to the current RSS.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def inputs(shape):
    import torch

    g = torch.Generator().manual_seed(0)
    n, t, h, v = shape["N"], shape["T"], shape["H"], shape["V"]
    hidden = torch.randn(n, t, h, generator=g).requires_grad_()
    lm_head = (0.02 * torch.randn(v, h, generator=g)).requires_grad_()
    labels = torch.randint(0, v, (n, t), generator=g)
    labels[:, :16] = -100  # the prompt
    ref = -100.0 + torch.randn(n, generator=g)
    return hidden, lm_head, labels, ref


def eager_loss(loss, hidden, lm_head, labels, ref):
    import torch
    import torch.nn.functional as F
    from trl.trainer.utils import selective_log_softmax

    logits = hidden @ lm_head.T
    keep = labels != -100
    per_token = selective_log_softmax(logits, torch.where(keep, labels, 0))
    if loss == "sft":
        return -(per_token * keep).sum() / keep.sum()
    seq = (per_token * keep).sum(-1)
    b = seq.shape[0] // 2
    ratio = (seq[:b] - ref[:b]) - (seq[b:] - ref[b:])
    return -F.logsigmoid(BETA * ratio).mean()


def child(impl, loss, shape, reps):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    hidden, lm_head, labels, ref = inputs(shape)
    if impl == "ftl":
        import ftl

        if loss == "sft":
            obj = ftl.load("std.objectives.sft", "sft_from_hidden", log_metrics=False)

            def step():
                out, _ = obj(hidden=hidden, lm_head=lm_head, labels=labels)
                return out
        else:
            obj = ftl.load("std.objectives.dpo", "sigmoid_from_hidden", beta=BETA)
            b = shape["N"] // 2

            def step():
                out, _ = obj(
                    hidden=hidden, labels=labels, lm_head=lm_head,
                    ref_chosen_logps=ref[:b].contiguous(), ref_rejected_logps=ref[b:].contiguous(),
                )
                return out
    else:
        fn = lambda: eager_loss(loss, hidden, lm_head, labels, ref)  # noqa: E731
        step = torch.compile(fn) if impl == "compile" else fn

    def once():
        hidden.grad = None
        lm_head.grad = None
        value = step()
        value.backward()
        return value

    if impl == "compile":
        once()  # compiles
    hidden.grad = None
    lm_head.grad = None
    gc.collect()
    before_kb = status_kb("VmRSS")
    reset_peak()
    once()
    peak_kb = status_kb("VmHWM") - before_kb
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        value = once()
        times.append((time.perf_counter() - t0) * 1e3)
    grad_mb = (hidden.grad.numel() + lm_head.grad.numel()) * 4 / 2**20
    if not times:
        return dict(prewarmed=True)
    return dict(
        median_ms=statistics.median(times), min_ms=min(times), peak_mb=peak_kb / 1024,
        beyond_mb=peak_kb / 1024 - grad_mb, loss=float(value),
        grad_hidden=hidden.grad.double().norm().item(), grad_lm_head=lm_head.grad.double().norm().item(),
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--large", action="store_true")
    ap.add_argument("--child", nargs=3, metavar=("IMPL", "LOSS", "SIZE"))
    ap.add_argument("--skip", default="", help="comma-separated impls to skip (ftl, eager, compile)")
    args = ap.parse_args()
    if args.child:
        impl, loss, size = args.child
        print(json.dumps(child(impl, loss, LARGE if size == "large" else SMALL, args.reps)))
        return
    size = "large" if args.large else "small"
    shape = LARGE if args.large else SMALL
    logits_mb = shape["N"] * shape["T"] * shape["V"] * 4 / 2**20
    print(f"shape {shape}, f32; logits {logits_mb:.0f} MB; threads {os.cpu_count()}; reps {args.reps}")
    print("| loss | impl | median ms | min ms | peak MB | beyond inputs + gradients MB | loss | ‖grad hidden‖ | ‖grad lm_head‖ |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    # One compile cache for every process: FTL compiles in a first process, not the measured one.
    os.environ.setdefault("FTL_CACHE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "bench-cache"))
    for loss in ["sft", "dpo"]:
        if "ftl" not in args.skip.split(","):
            subprocess.run([sys.executable, __file__, "--child", "ftl", loss, "small", "--reps", "0"], capture_output=True)
        results = {}
        for impl in ["ftl", "eager", "compile"]:
            if impl in args.skip.split(","):
                continue
            cmd = [sys.executable, __file__, "--child", impl, loss, size, "--reps", str(args.reps)]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                print(f"| {loss} | {impl} | failed: {p.stderr.strip().splitlines()[-1:]} |")
                continue
            r = json.loads(p.stdout.strip().splitlines()[-1])
            results[impl] = r
            print(
                f"| {loss} | {impl} | {r['median_ms']:.0f} | {r['min_ms']:.0f} | {r['peak_mb']:.0f} | "
                f"{r['beyond_mb']:.0f} | {r['loss']:.6f} | {r['grad_hidden']:.6f} | {r['grad_lm_head']:.6f} |"
            )
        if "ftl" in results and "eager" in results:
            f, e = results["ftl"], results["eager"]
            rel = max(abs(f[k] - e[k]) / abs(e[k]) for k in ["loss", "grad_hidden", "grad_lm_head"])
            print(f"| {loss} | ftl / eager | {f['median_ms'] / e['median_ms']:.2f}× time | | "
                  f"{f['peak_mb'] / e['peak_mb']:.2f}× peak | | max rel. diff of loss and grad norms {rel:.1e} | | |")


if __name__ == "__main__":
    main()
