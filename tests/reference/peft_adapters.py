#!/usr/bin/env python3
"""PEFT's adapter layers transcribed in plain Python (stdlib only), for FTL's tests.

Forwards as PEFT computes them (research/adapters.md §1.2–1.5, §2): `lora/layer.py`
`Linear.forward` (rsLoRA scale), `lora/dora.py` `DoraLinearLayer.forward` (the weight norm
detached), `vera/layer.py`, `ia3/layer.py` (output or feed-forward input scaling),
`loha/layer.py`, `lokr/layer.py` (`torch.kron`), `adalora/layer.py` `SVDLinear.forward` and
`AdaLoraModel.forward`'s orthogonal regularisation for one layer. Gradients are the
vector-Jacobian products PyTorch's autograd returns for the upstream gradient `grad.y`,
computed here by central differences in f64 (so DoRA's norm is held fixed, as `detach` does).

    python3 tests/reference/peft_adapters.py check IN.safetensors OUT.safetensors ENTRY [k=v ...]
        recomputes ENTRY on IN (random inputs, with `grad.y`) and compares with ftc's OUT
"""
import math
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_plain import read_safetensors  # noqa: E402


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def matmul(a, b, n, k, m):
    """a [n, k] @ b [k, m], row-major flat lists."""
    return [sum(a[r * k + j] * b[j * m + c] for j in range(k)) for r in range(n) for c in range(m)]


def transpose(a, n, m):
    return [a[r * m + c] for c in range(m) for r in range(n)]


def linear(x, w, n, i, o):
    """x [n, i] times wᵀ for w [o, i] (nn.Linear without bias)."""
    return matmul(x, transpose(w, o, i), n, i, o)


def add_bias(y, b, n, o):
    return y if b is None else [y[r * o + c] + b[c] for r in range(n) for c in range(o)]


def kron(a, b, p, q, r, s):
    """torch.kron of a [p, q] and b [r, s] -> [p·r, q·s]."""
    return [a[(u // r) * q + v // s] * b[(u % r) * s + v % s] for u in range(p * r) for v in range(q * s)]


def frobenius_minus_eye(m, k):
    return math.sqrt(sum((m[p * k + q] - (1.0 if p == q else 0.0)) ** 2 for p in range(k) for q in range(k)))


def forward(entry, t, dims, kw, frozen):
    """(y, aux_loss) of `entry` on tensors `t`; `frozen` holds detached values."""
    n, i, o = dims["N"], dims["I"], dims["O"]
    x, w, b = t["x"], t["weight"], t.get("bias")
    base = add_bias(linear(x, w, n, i, o), b, n, o)
    if entry in ("lora", "dora"):
        r = dims["R"]
        alpha = kw.get("lora_alpha", 8.0)
        s = alpha / math.sqrt(r) if kw.get("use_rslora") == "true" else alpha / r
        a, bb = t["lora_A"], t["lora_B"]
        lora = linear(linear(x, a, n, i, r), bb, n, r, o)
        if entry == "lora":
            return [u + s * v for u, v in zip(base, lora)], None
        c = [mv / nv for mv, nv in zip(t["lora_magnitude_vector"], frozen["norm"])]
        xw = linear(x, w, n, i, o)
        return [base[k] + (c[k % o] - 1) * xw[k] + c[k % o] * s * lora[k] for k in range(n * o)], None
    if entry == "vera":
        r = dims["R"]
        h = linear(x, t["vera_A"], n, i, r)
        h = [h[k] * t["vera_lambda_d"][k % r] for k in range(n * r)]
        d = linear(h, t["vera_B"], n, r, o)
        return [base[k] + t["vera_lambda_b"][k % o] * d[k] for k in range(n * o)], None
    if entry == "ia3":
        return [base[k] * t["ia3_l"][k % o] for k in range(n * o)], None
    if entry == "ia3_feedforward":
        xs = [x[k] * t["ia3_l"][k % i] for k in range(n * i)]
        return add_bias(linear(xs, w, n, i, o), b, n, o), None
    if entry == "adalora":
        r = dims["R"]
        alpha = kw.get("lora_alpha", 8.0)
        # scaling = lora_alpha if > 0 else r; divided by ranknum + 1e-5 (a float32 parameter).
        s = (alpha if alpha > 0 else float(r)) / f32(r + 1e-5)
        ae = [t["lora_A"][k] * t["lora_E"][k // i] for k in range(r * i)]
        lora = linear(linear(x, ae, n, i, r), t["lora_B"], n, r, o)
        y = [u + s * v for u, v in zip(base, lora)]
        qq = matmul(t["lora_A"], transpose(t["lora_A"], r, i), r, i, r)
        pp = matmul(transpose(t["lora_B"], o, r), t["lora_B"], r, o, r)
        aux = kw.get("orth_reg_weight", 0.5) * (frobenius_minus_eye(qq, r) + frobenius_minus_eye(pp, r)) / 2
        return y, aux
    # Weight-delta adapters: y = base + x ΔWᵀ.
    if entry == "loha":
        r = dims["R"]
        d1 = matmul(t["hada_w1_a"], t["hada_w1_b"], o, r, i)
        d2 = matmul(t["hada_w2_a"], t["hada_w2_b"], o, r, i)
        delta = [u * v * kw.get("alpha", 8.0) / r for u, v in zip(d1, d2)]
    else:  # lokr, lokr_decomposed
        o1, i1, o2, i2 = dims["O1"], dims["I1"], dims["O2"], dims["I2"]
        if entry == "lokr":
            w2, scale = t["lokr_w2"], kw.get("alpha", 8.0) / kw.get("r", 8.0)
        else:
            w2 = matmul(t["lokr_w2_a"], t["lokr_w2_b"], o2, dims["R"], i2)
            scale = kw.get("alpha", 8.0) / dims["R"]
        delta = [v * scale for v in kron(t["lokr_w1"], w2, o1, i1, o2, i2)]
    dx = linear(x, delta, n, i, o)
    return [u + v for u, v in zip(base, dx)], None


def objective(entry, t, dims, kw, frozen, gy):
    """Σ y · grad.y (+ aux_loss): the scalar whose gradient is the VJP."""
    y, aux = forward(entry, t, dims, kw, frozen)
    return sum(u * v for u, v in zip(y, gy)) + (aux or 0.0)


def check(inp, outp, entry, sets):
    shapes = {}
    t = read_safetensors(inp, shapes)
    got = read_safetensors(outp)
    kw = {}
    for k, v in (s.split("=") for s in sets):
        kw[k] = v if v in ("true", "false") else float(v)
    gy = t.pop("grad.y")
    xs = shapes["x"]
    dims = {"N": math.prod(xs[:-1]), "I": xs[-1], "O": shapes["weight"][0]}
    for name, d in (("lora_A", "R"), ("vera_A", "R"), ("hada_w1_b", "R"), ("lokr_w2_b", "R")):
        if name in shapes:
            dims[d] = shapes[name][0]
    if "lokr_w1" in shapes:
        dims["O1"], dims["I1"] = shapes["lokr_w1"]
        dims["O2"], dims["I2"] = dims["O"] // dims["O1"], dims["I"] // dims["I1"]
    frozen = {}
    if entry == "dora":
        # PEFT's weight_norm: ‖W + s·B A‖ per output row, detached.
        r, i, o = dims["R"], dims["I"], dims["O"]
        alpha = kw.get("lora_alpha", 8.0)
        s = alpha / math.sqrt(r) if kw.get("use_rslora") == "true" else alpha / r
        ba = matmul(t["lora_B"], t["lora_A"], o, r, i)
        wd = [u + s * v for u, v in zip(t["weight"], ba)]
        frozen["norm"] = [math.sqrt(sum(wd[row * i + c] ** 2 for c in range(i))) for row in range(o)]
    y, aux = forward(entry, t, dims, kw, frozen)
    worst, at = 0.0, ""

    def compare(name, want, have):
        nonlocal worst, at
        scale = max(max(abs(v) for v in want), 1e-6)
        e = max(abs(a - b) for a, b in zip(want, have)) / scale
        if e > worst:
            worst, at = e, name

    compare("y", y, got["y"])
    if aux is not None:
        compare("aux_loss", [aux], [got["aux_loss"]])
    for name, v in t.items():
        g = got.get("grad." + name)
        if g is None:
            continue
        fds = []
        for k in range(len(v)):
            h = 1e-6 * max(1.0, abs(v[k]))
            up, down = dict(t), dict(t)
            up[name], down[name] = list(v), list(v)
            up[name][k] += h
            down[name][k] -= h
            fds.append((objective(entry, up, dims, kw, frozen, gy) - objective(entry, down, dims, kw, frozen, gy)) / (2 * h))
        compare("grad." + name, fds, g)
    print('{"entry": "%s", "max_relative_error": %.3e, "at": "%s"}' % (entry, worst, at))
    return worst


if __name__ == "__main__":
    if sys.argv[1:2] != ["check"]:
        sys.exit(__doc__)
    sys.exit(0 if check(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]) <= 5e-4 else 1)
