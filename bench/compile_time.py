#!/usr/bin/env python3
"""Compile time of `ftc` on generated programs of growing size (the shapes that were once
exponential or quadratic): a chain of lets that each read the previous one twice, a function
that calls its predecessor twice (on different values: refused once it expands past
2^18 operations; on the same value: lowered once), many independent lets, and a file of many syntax errors.
Prints one line per program: shape, size, seconds for `ftc check` and `ftc build --emit kernels`
(and `--emit mlir` for the chains). Not part of CI.

    python3 bench/compile_time.py [path/to/ftc]
"""
import os
import subprocess
import sys
import tempfile
import time

FTC = sys.argv[1] if len(sys.argv) > 1 else "target/release/ftc"


def chain(n):
    lines = ["objective chain(x: f32[N]) {", "    let a0 = x;"]
    lines += [f"    let a{i} = sin(a{i-1}) + a{i-1} * x;" for i in range(1, n + 1)]
    lines += [f"    loss sum(a{n}, N);", "}"]
    return "\n".join(lines) + "\n", "chain"


def calls(n):
    lines = ["fn g0(x: f32[N]) -> f32[N] { sin(x) }"]
    lines += [f"fn g{i}(x: f32[N]) -> f32[N] {{ g{i-1}(sin(x)) + g{i-1}(cos(x)) }}" for i in range(1, n + 1)]
    lines += [f"objective calls(x: f32[N]) {{ loss sum(g{n}(x), N); }}"]
    return "\n".join(lines) + "\n", "calls"


def shared(n):
    lines = ["fn h0(x: f32[N]) -> f32[N] { sin(x) }"]
    lines += [f"fn h{i}(x: f32[N]) -> f32[N] {{ h{i-1}(x) + h{i-1}(x) }}" for i in range(1, n + 1)]
    lines += [f"objective shared(x: f32[N]) {{ loss sum(h{n}(x), N); }}"]
    return "\n".join(lines) + "\n", "shared"


def flat(n):
    lines = ["objective flat(x: f32[N]) {"]
    lines += [f"    let a{i} = x * {i}.0 + 1.0;" for i in range(n)]
    lines += ["    loss sum(" + " + ".join(f"a{i}" for i in range(0, n, max(1, n // 50))) + ", N);", "}"]
    return "\n".join(lines) + "\n", "flat"


def errors(n):
    return "objective e(x: f32[N]) { loss x +; }\n" * n, None


def timed(args):
    start = time.perf_counter()
    out = subprocess.run(args, capture_output=True, timeout=600)
    return time.perf_counter() - start, len(out.stdout) + len(out.stderr)


def main():
    shapes = [
        (chain, [8, 16, 26, 64, 256]),
        (calls, [8, 12, 24]),
        (shared, [8, 24, 200]),
        (flat, [100, 1000, 5000]),
        (errors, [1000, 50000]),
    ]
    with tempfile.TemporaryDirectory() as d:
        for make, sizes in shapes:
            for n in sizes:
                text, entry = make(n)
                path = os.path.join(d, f"{make.__name__}{n}.ftl")
                with open(path, "w") as f:
                    f.write(text)
                row = [f"{make.__name__:<7}", f"n={n:<6}"]
                t, size = timed([FTC, "check", path])
                row.append(f"check {t:7.3f}s ({size} bytes out)")
                if entry:
                    for stage in ["kernels", "mlir"]:
                        t, _ = timed([FTC, "build", path, "--emit", stage, "--entry", entry])
                        row.append(f"--emit {stage} {t:7.3f}s")
                print("  ".join(row), flush=True)


if __name__ == "__main__":
    main()
