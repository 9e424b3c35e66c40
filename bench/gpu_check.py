#!/usr/bin/env python3
"""The CUDA path's checks on a machine with a GPU, PyTorch and Python but no Rust or LLVM (the
device machines), over the bundle `bash scripts/gpu-check.sh` builds here (`target/gpu-bundle`:
ftl-run, a CUDA artifact per entry with inputs and the interpreter's outputs, the benchmark
artifacts). Not part of CI.

    python3 bench/gpu_check.py target/gpu-bundle [--reps N] [--no-bench]

1. Every entry's artifact runs under `ftl-run` on the GPU; its outputs must agree with the
   interpreter's to a relative error of 1e-5 (the core tests' measure, `rel_err`).
2. The issue's workloads — DPO and SFT from logits (B=8, T=1024, V=128256, f32) and an LCM step
   (16×4×128×128) — timed by `ftl-run --reps` (`steps_median_ms`: the kernels and host routines,
   without the host↔device copies of `ftl-run`'s host inputs), next to PyTorch eager and
   torch.compile on the same GPU in the same run, with the bandwidth the plan's passes reach.
"""
import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile


def rel_err(got, want):
    """compiler/ftc/tests/core.rs's `rel_err`: |x − y| (less 1e-8) over max(|y|, 0.1·max|y|,
    1e-6), NaN equal to NaN."""
    import torch

    got, want = got.double().flatten(), want.double().flatten()
    if got.numel() != want.numel():
        return float("inf")
    if want.numel() == 0:
        return 0.0
    scale = want.abs().max()
    same = (got == want) | (got.isnan() & want.isnan())
    denom = torch.maximum(torch.maximum(want.abs(), 0.1 * scale), torch.tensor(1e-6, dtype=torch.float64))
    err = ((got - want).abs() - 1e-8).clamp(min=0) / denom
    err = torch.where(same, torch.zeros_like(err), err)
    return float(err.max()) if not err.isnan().any() else float("nan")


def check_entries(bundle, ftl_run, log):
    from safetensors.torch import load_file

    entries = sorted((bundle / "entries").glob("*.ftlpack"))
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for pack in entries:
            name = pack.name[: -len(".ftlpack")]
            out = pathlib.Path(tmp) / f"{name}.got.safetensors"
            run = subprocess.run([ftl_run, str(pack), "--inputs", str(bundle / "entries" / f"{name}.in.safetensors"),
                                  "--out", str(out)], capture_output=True, text=True, timeout=300)
            if run.returncode != 0:
                failures.append(f"{name}: ftl-run failed: {run.stderr.strip()[-400:]}")
                continue
            got = load_file(str(out))
            want = load_file(str(bundle / "entries" / f"{name}.want.safetensors"))
            for k, w in want.items():
                e = rel_err(got[k], w) if k in got else float("inf")
                if not e <= 1e-5:
                    failures.append(f"{name}: {k}: relative error {e:.2e}")
    log(f"entries: {len(entries)} run on the GPU, {len(failures)} failures")
    for f in failures:
        log("  " + f)
    return not failures


def ftl_time(ftl_run, pack, inputs, reps, sets=()):
    args = [ftl_run, str(pack), "--inputs", str(inputs), "--reps", str(reps)]
    for s in sets:
        args += ["--set", s]
    run = subprocess.run(args, capture_output=True, text=True, timeout=1200)
    if run.returncode != 0:
        return None, run.stderr.strip()
    fields = dict(re.findall(r"(\w+)=([0-9.]+)", run.stdout))
    return {k: float(v) for k, v in fields.items()}, run.stdout


def torch_time(fn, reps):
    import torch

    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        ts.append(start.elapsed_time(end))
    return statistics.median(ts)


def bench(bundle, ftl_run, reps, log):
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file

    B, T, V = 8, 1024, 128256
    torch.manual_seed(1)
    work = pathlib.Path(tempfile.mkdtemp(prefix="ftl-gpu-"))

    def seq_logps(logits, labels):
        keep = labels != -100
        lp = torch.log_softmax(logits, -1)
        tok = torch.gather(lp, -1, torch.where(keep, labels, 0).unsqueeze(-1)).squeeze(-1)
        return torch.where(keep, tok, 0).sum(-1)

    rows = []
    # DPO from logits: the plan makes 3 passes, reading both logits twice and writing both
    # gradients once (6 tensors of B·T·V f32).
    chosen = torch.randn(B, T, V)
    rejected = torch.randn(B, T, V)
    lab_c = torch.randint(0, V, (B, T), dtype=torch.int32)
    lab_r = torch.randint(0, V, (B, T), dtype=torch.int32)
    ref_c, ref_r = torch.full((B,), -50.0), torch.full((B,), -50.0)
    save_file({"chosen_logits": chosen, "rejected_logits": rejected, "chosen_labels": lab_c,
               "rejected_labels": lab_r, "ref_chosen_logps": ref_c, "ref_rejected_logps": ref_r},
              str(work / "dpo.safetensors"))
    dpo_bytes = 6 * B * T * V * 4
    c, r = chosen.cuda().requires_grad_(True), rejected.cuda().requires_grad_(True)
    lc, lr, rc, rr = lab_c.long().cuda(), lab_r.long().cuda(), ref_c.cuda(), ref_r.cuda()
    del chosen, rejected

    def dpo_loss(c, r):
        z = 0.1 * ((seq_logps(c, lc) - rc) - (seq_logps(r, lr) - rr))
        return -F.logsigmoid(z).mean()

    def dpo_step(loss):
        def run():
            c.grad = r.grad = None
            loss(c, r).backward()
        return run

    rows.append(("DPO from logits B=8,T=1024,V=128256 f32", bench_row(
        ftl_run, bundle / "bench" / "sigmoid_from_logits.ftlpack", work / "dpo.safetensors", (),
        dpo_bytes, dpo_step(dpo_loss), dpo_step(torch.compile(dpo_loss)), reps)))
    del c, r
    torch.cuda.empty_cache()
    # SFT cross-entropy: the plan reads the logits in four passes and writes the gradient.
    logits = torch.randn(B, T, V)
    labels = torch.randint(0, V, (B, T), dtype=torch.int32)
    save_file({"logits": logits, "labels": labels}, str(work / "sft.safetensors"))
    x, lab = logits.cuda().requires_grad_(True), labels.long().cuda()
    del logits

    def sft_loss(x):
        return F.cross_entropy(x.flatten(0, 1), lab.flatten(), ignore_index=-100)

    def sft_step(loss):
        def run():
            x.grad = None
            loss(x).backward()
        return run

    rows.append(("SFT from logits B=8,T=1024,V=128256 f32", bench_row(
        ftl_run, bundle / "bench" / "sft.ftlpack", work / "sft.safetensors", (), 5 * B * T * V * 4,
        sft_step(sft_loss), sft_step(torch.compile(sft_loss)), reps)))
    del x
    torch.cuda.empty_cache()
    # LCM step: one pass reading three latents and writing two.
    shape = (16, 4, 128, 128)
    mo, sa, no = torch.randn(shape), torch.randn(shape), torch.randn(shape)
    save_file({"model_output": mo, "sample": sa, "noise": no}, str(work / "lcm.safetensors"))
    mo, sa, no = mo.cuda(), sa.cuda(), no.cuda()
    # diffusers' LCMScheduler.step at t=999 → 759 with its default scaled_linear betas.
    betas = torch.linspace(8.5e-4 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float32) ** 2
    ac = torch.cumprod(1.0 - betas, 0)
    a_t, a_p = ac[999].item(), ac[759].item()
    t = 999 * 10.0
    c_skip = 0.5 ** 2 / (t ** 2 + 0.5 ** 2)
    c_out = t / (t ** 2 + 0.5 ** 2) ** 0.5

    def lcm(mo, sa, no):
        x0 = (sa - (1 - a_t) ** 0.5 * mo) / a_t ** 0.5
        den = c_out * x0 + c_skip * sa
        return a_p ** 0.5 * den + (1 - a_p) ** 0.5 * no, den

    rows.append(("LCM step 16x4x128x128 f32", bench_row(
        ftl_run, bundle / "bench" / "lcm_step.ftlpack", work / "lcm.safetensors",
        ("timestep=999", "prev_timestep=759", "last_step=false"), 5 * mo.numel() * 4,
        lambda: lcm(mo, sa, no), lambda f=torch.compile(lcm): f(mo, sa, no), reps)))
    log(f"\n{torch.cuda.get_device_name()}, PyTorch {torch.__version__}, {reps} reps (median ms)")
    log("| workload | ftl steps | ftl wall (with copies) | plan passes GB/s (% of peak) | torch eager | torch.compile |")
    log("| --- | --- | --- | --- | --- | --- |")
    for name, row in rows:
        log(f"| {name} | {row}")


def bench_row(ftl_run, pack, inputs, sets, plan_bytes, eager, compiled, reps):
    import torch

    fields, text = ftl_time(ftl_run, pack, inputs, reps, sets)
    te = torch_time(eager, reps)
    tc = torch_time(compiled, reps)
    torch.cuda.synchronize()
    if fields is None:
        return f"ftl-run failed: {text[-300:]} | | | {te:.2f} | {tc:.2f} |"
    steps = fields["steps_median_ms"]
    gb_s = plan_bytes / (steps * 1e-3) / 1e9
    peak = fields.get("peak_gb_s")
    pct = f" ({100 * gb_s / peak:.0f}%)" if peak else ""
    return f"{steps:.2f} | {fields['median_ms']:.2f} | {gb_s:.0f}{pct} | {te:.2f} | {tc:.2f} |"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=pathlib.Path)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--no-bench", action="store_true")
    args = ap.parse_args()
    out = pathlib.Path(os.environ.get("OUT", ".")) / "gpu_check.log"
    lines = []

    def log(line):
        print(line, flush=True)
        lines.append(line)
        out.write_text("\n".join(lines) + "\n")

    ftl_run = str(args.bundle / "ftl-run")
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True)
        log(f"GPU: {smi.stdout.strip()}")
    except FileNotFoundError:
        log("no nvidia-smi here")
    ok = check_entries(args.bundle, ftl_run, log)
    if not args.no_bench:
        bench(args.bundle, ftl_run, args.reps, log)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
