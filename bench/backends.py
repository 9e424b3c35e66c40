#!/usr/bin/env python3
"""Compile time of every stdlib objective on the MLIR and Cranelift backends (`ftc bench`'s
`compile_ms`: lowering, autodiff, fusion and code generation; the release build), and the kernel
time of the issue's workloads on both, in the same run. Dims the entry needs are given size 4
(found from `ftc bench`'s E0092 messages). With torch installed (run it with the project venv's
python), PyTorch eager's DPO from logits is timed in the same run (bench/eager_reference.py).
Not part of CI.

    python3 bench/backends.py [path/to/ftc] [--reps N]
"""
import pathlib
import re
import statistics
import subprocess
import sys

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
FTC = ARGS[0] if ARGS else "target/release/ftc"
REPS = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 10
ROOT = pathlib.Path(__file__).resolve().parent.parent


def bench(file, entry, dims, backend, reps=1, sets=()):
    """`ftc bench` output as a dict (compile_ms, median_ms, …), or the error text."""
    dims = dict(dims) or {"B": 4}
    for _ in range(12):
        args = [FTC, "bench", str(file), "--entry", entry, "--reps", str(reps), "--backend", backend,
                "--dims", ",".join(f"{k}={v}" for k, v in dims.items())]
        for s in sets:
            args += ["--set", s]
        out = subprocess.run(args, capture_output=True, text=True, timeout=600)
        text = out.stdout + out.stderr
        missing = re.search(r"give the size of (\S+) with", text)
        if missing:
            dims[missing.group(1)] = 4
            continue
        extra = re.search(r"the entry has no dim (\S+)", text)
        if extra:
            dims.pop(extra.group(1).strip("`"), None)
            continue
        if out.returncode != 0:
            return text.strip().splitlines()[-1]
        return {k: float(v) for k, v in re.findall(r"(\w+_ms)=([0-9.]+)", text)}
    return "dims not found"


def main():
    rows = []
    for f in sorted((ROOT / "stdlib" / "objectives").glob("*.ftl")):
        for entry in re.findall(r"^objective (\w+)", f.read_text(), re.M):
            m = bench(f, entry, {}, "mlir")
            c = bench(f, entry, {}, "cranelift")
            rows.append((f"{f.stem}.{entry}", m, c))
    ok = [(n, m["compile_ms"], c["compile_ms"]) for n, m, c in rows if isinstance(m, dict) and isinstance(c, dict)]
    print("| objective | MLIR compile ms | Cranelift compile ms |\n| --- | --- | --- |")
    for n, m, c in ok:
        print(f"| `{n}` | {m:.1f} | {c:.1f} |")
    for n, m, c in rows:
        if not (isinstance(m, dict) and isinstance(c, dict)):
            print(f"| `{n}` | {m} | {c} |")
    print(f"\n{len(ok)} objectives: MLIR median {statistics.median(x[1] for x in ok):.1f} ms "
          f"(max {max(x[1] for x in ok):.1f}), Cranelift median {statistics.median(x[2] for x in ok):.1f} ms "
          f"(max {max(x[2] for x in ok):.1f})\n")
    workloads = [
        ("examples/dpo.ftl", "sigmoid_from_logits", {"B": 4, "T": 256, "V": 32000}, ()),
        ("stdlib/sampling/lcm.ftl", "lcm_step", {"S": "16x4x128x128"}, ("timestep=999", "prev_timestep=759", "last_step=false")),
    ]
    print("| workload | MLIR median / min ms | Cranelift median / min ms | ratio |\n| --- | --- | --- | --- |")
    for file, entry, dims, sets in workloads:
        m = bench(ROOT / file, entry, dims, "mlir", REPS, sets)
        c = bench(ROOT / file, entry, dims, "cranelift", REPS, sets)
        if isinstance(m, dict) and isinstance(c, dict):
            print(f"| `{entry}` {dims} | {m['median_ms']:.2f} / {m['min_ms']:.2f} | "
                  f"{c['median_ms']:.2f} / {c['min_ms']:.2f} | {c['median_ms'] / m['median_ms']:.1f}× |")
        else:
            print(f"| `{entry}` | {m} | {c} | |")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("\ntorch not installed: no PyTorch eager row")
        return
    sys.path.insert(0, str(ROOT / "bench"))
    from eager_reference import timed, torch_workloads

    med, mn = timed(torch_workloads(False)["dpo_from_logits B=4,T=256,V=32000"], min(REPS, 5))
    print(f"\nPyTorch {torch.__version__} eager, DPO from logits (same workload): "
          f"median {med:.1f} ms, min {mn:.1f} ms")


if __name__ == "__main__":
    main()
