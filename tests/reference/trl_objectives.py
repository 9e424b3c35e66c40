#!/usr/bin/env python3
"""TRL's preference losses transcribed in plain Python (stdlib `math` only), for FTL's tests.

Formulas: TRL HEAD (`dpo_trainer.py` `_compute_loss` loss catalog, `cpo_trainer.cpo_loss`,
`orpo_trainer.odds_ratio_loss`, `kto_trainer._compute_loss`) as transcribed in
research/objectives.md §1. Two uses:

    python3 tests/reference/trl_objectives.py vectors
        prints expected values for the `test` blocks of stdlib/objectives/*.ftl
    python3 tests/reference/trl_objectives.py check IN.safetensors OUT.safetensors ENTRY [k=v ...]
        recomputes ENTRY on IN (random inputs ftc drew) and compares with ftc's OUT
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_plain import read_safetensors  # noqa: E402


def logsigmoid(x):  # = -softplus(-x), stable
    return -(max(-x, 0.0) + math.log1p(math.exp(-abs(x))))


def sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def log1mexp(x):  # orpo_trainer.log1mexp
    return math.log1p(-math.exp(x)) if x < -0.6931471805599453 else math.log(-math.expm1(x))


def mean(v):
    return sum(v) / len(v)


def dpo(loss_type, pc, pr, rc, rr, nc=None, nr=None, beta=0.1, eps=0.0, tau=0.05, alpha=0.5):
    """Loss and metrics of TRL's DPO `loss_type` (f-divergence variants as sigmoid_*)."""
    b = beta
    rho_c = [x - y for x, y in zip(pc, rc)]
    rho_r = [x - y for x, y in zip(pr, rr)]
    if loss_type == "sigmoid_forward_kl":
        uc, ur = [-math.exp(-x) for x in rho_c], [-math.exp(-x) for x in rho_r]
    elif loss_type == "sigmoid_js":
        uc, ur = [logsigmoid(x) for x in rho_c], [logsigmoid(x) for x in rho_r]
    elif loss_type == "sigmoid_alpha":
        if abs(alpha - 1) < 1e-6:
            uc, ur = rho_c, rho_r
        else:
            f = lambda x: math.exp(min((alpha - 1) * x, 80.0)) / (alpha - 1)
            uc, ur = [f(x) for x in rho_c], [f(x) for x in rho_r]
    else:
        uc, ur = rho_c, rho_r
    D = [c - r for c, r in zip(uc, ur)]
    if loss_type in ("sigmoid", "sigmoid_forward_kl", "sigmoid_js", "sigmoid_alpha"):
        per = [-logsigmoid(b * x) for x in D]
    elif loss_type == "hinge":
        per = [max(0.0, 1 - b * x) for x in D]
    elif loss_type in ("ipo", "sigmoid_norm"):
        dn = [c / max(n, 1) - r / max(m, 1) for c, r, n, m in zip(uc, ur, nc, nr)]
        per = ([(x - 1 / (2 * b)) ** 2 for x in dn] if loss_type == "ipo"
               else [-logsigmoid(b * x) for x in dn])
    elif loss_type == "exo_pair":
        per = [sigmoid(b * x) * (logsigmoid(b * x) - math.log1p(-eps))
               + sigmoid(-b * x) * (logsigmoid(-b * x) - math.log(eps)) for x in D]
    elif loss_type == "nca_pair":
        per = [-logsigmoid(b * c) - 0.5 * logsigmoid(-b * c) - 0.5 * logsigmoid(-b * r)
               for c, r in zip(uc, ur)]
    elif loss_type == "robust":
        per = [(-(1 - eps) * logsigmoid(b * x) + eps * logsigmoid(-b * x)) / (1 - 2 * eps) for x in D]
    elif loss_type == "bco_pair":
        per = [-logsigmoid(b * c) - logsigmoid(-b * r) for c, r in zip(uc, ur)]
    elif loss_type == "sppo_hard":
        per = [(c - 0.5 / b) ** 2 + (r + 0.5 / b) ** 2 for c, r in zip(uc, ur)]
    elif loss_type in ("aot", "aot_unpaired"):
        if loss_type == "aot":
            d = [x - y for x, y in zip(sorted(a - c for a, c in zip(pc, pr)),
                                       sorted(a - c for a, c in zip(rc, rr)))]
        else:
            d = [x - y for x, y in zip(sorted(rho_c), sorted(rho_r))]
        per = [-(1 - eps) * logsigmoid(b * x) - eps * logsigmoid(-b * x) for x in d]
    elif loss_type == "apo_zero":
        per = [1 - sigmoid(b * c) + sigmoid(b * r) for c, r in zip(rho_c, rho_r)]
    elif loss_type == "apo_down":
        per = [sigmoid(b * c) + 1 - sigmoid(b * (c - r)) for c, r in zip(rho_c, rho_r)]
    elif loss_type == "discopop":
        # TRL: (1 - m)·(-logσ(z)) + m·exp(-z); m·exp(-z) = exp(logσ(z/τ) - z) (same value).
        per = [-logsigmoid(b * x) * (1 - sigmoid(b * x / tau)) + math.exp(logsigmoid(b * x / tau) - b * x)
               for x in D]
    else:
        raise SystemExit(f"unknown loss_type {loss_type}")
    return {
        "loss": mean(per),
        "metric.rewards_chosen": mean([b * x for x in rho_c]),
        "metric.rewards_rejected": mean([b * x for x in rho_r]),
        "metric.rewards_margins": mean([b * (c - r) for c, r in zip(rho_c, rho_r)]),
        "metric.rewards_accuracies": mean([1.0 if b * c > b * r else 0.0 for c, r in zip(rho_c, rho_r)]),
    }


def cpo(loss_type, pc, pr, beta=0.1, eps=0.0, gamma=0.5):
    logits = [c - r for c, r in zip(pc, pr)]
    if loss_type == "simpo":
        logits = [x - gamma / beta for x in logits]
    if loss_type in ("cpo", "simpo"):
        per = [-(1 - eps) * logsigmoid(beta * x) - eps * logsigmoid(-beta * x) for x in logits]
    elif loss_type == "cpo_hinge":
        per = [max(0.0, 1 - beta * x) for x in logits]
    elif loss_type == "cpo_ipo":
        per = [(x - 1 / (2 * beta)) ** 2 for x in logits]
    return {
        "loss": mean(per),
        "metric.rewards_chosen": mean([beta * x for x in pc]),
        "metric.rewards_rejected": mean([beta * x for x in pr]),
        "metric.rewards_margins": mean([beta * (c - r) for c, r in zip(pc, pr)]),
        "metric.rewards_accuracies": mean([1.0 if c > r else 0.0 for c, r in zip(pc, pr)]),
    }


def odds_ratio(ac, ar, beta=0.1):
    lo = [(c - r) - (log1mexp(c) - log1mexp(r)) for c, r in zip(ac, ar)]
    ratio = [logsigmoid(x) for x in lo]
    return {
        "loss": -beta * mean(ratio),
        "metric.rewards_chosen": mean([beta * x for x in ac]),
        "metric.rewards_rejected": mean([beta * x for x in ar]),
        "metric.rewards_margins": mean([beta * (c - r) for c, r in zip(ac, ar)]),
        "metric.rewards_accuracies": mean([1.0 if c > r else 0.0 for c, r in zip(ac, ar)]),
        "metric.log_odds_ratio": mean(ratio),
        "metric.log_odds_chosen": mean(lo),
    }


def kto(lc, lr, lk, rc, rr, rk, beta=0.1, wd=1.0, wu=1.0):
    kl = max(mean([x - y for x, y in zip(lk, rk)]), 0.0)
    rho_c = [x - y for x, y in zip(lc, rc)]
    rho_r = [x - y for x, y in zip(lr, rr)]
    des = [wd * (1 - sigmoid(beta * (x - kl))) for x in rho_c]
    und = [wu * (1 - sigmoid(beta * (kl - x))) for x in rho_r]
    return {
        "loss": mean(des + und),
        "metric.kl": kl,
        "metric.rewards_chosen": mean([beta * x for x in rho_c]),
        "metric.rewards_rejected": mean([beta * x for x in rho_r]),
        "metric.rewards_margins": mean([beta * x for x in rho_c]) - mean([beta * x for x in rho_r]),
    }


def evaluate(entry, x, kw):
    """Loss and metrics of `entry` on inputs `x` (a dict of lists/scalars)."""
    beta = kw.get("beta", 0.1)
    if entry == "odds_ratio":
        return odds_ratio(x["chosen_logps"], x["rejected_logps"], beta)
    if entry in ("cpo", "cpo_hinge", "cpo_ipo", "simpo"):
        return cpo(entry, x["chosen_logps"], x["rejected_logps"], beta,
                   kw.get("label_smoothing", 0.0), kw.get("simpo_gamma", 0.5))
    if entry == "kto":
        return kto(x["chosen_logps"], x["rejected_logps"], x["kl_logps"], x["ref_chosen_logps"],
                   x["ref_rejected_logps"], x["ref_kl_logps"], beta,
                   kw.get("desirable_weight", 1.0), kw.get("undesirable_weight", 1.0))
    return dpo(entry, x["chosen_logps"], x["rejected_logps"], x["ref_chosen_logps"],
               x["ref_rejected_logps"], x.get("chosen_lengths"), x.get("rejected_lengths"), beta,
               kw.get("label_smoothing", 0.0), kw.get("discopop_tau", 0.05),
               kw.get("f_alpha_divergence_coef", 0.5))


def check(inp, outp, entry, sets):
    """Largest relative error of ftc's loss, metrics and gradients against this reference
    (gradients by central differences in f64)."""
    x = read_safetensors(inp)
    got = read_safetensors(outp)
    kw = {k: float(v) for k, v in (s.split("=") for s in sets)}
    want = evaluate(entry, x, kw)
    worst, at = 0.0, ""
    for k, v in want.items():
        e = abs(got[k] - v) / max(abs(v), 1e-6)
        if e > worst:
            worst, at = e, k
    # Gradients: the largest difference relative to the gradient's largest entry (an f32
    # gradient entry that is a difference of close terms has no meaningful relative error).
    for name in ("chosen_logps", "rejected_logps"):
        g = got.get("grad." + name)
        if g is None:
            continue
        fds = []
        for i in range(len(g)):
            h = 1e-6 * max(1.0, abs(x[name][i]))
            up, down = dict(x), dict(x)
            up[name] = list(x[name])
            down[name] = list(x[name])
            up[name][i] += h
            down[name][i] -= h
            fds.append((evaluate(entry, up, kw)["loss"] - evaluate(entry, down, kw)["loss"]) / (2 * h))
        scale = max(max(abs(v) for v in fds), 1e-6)
        e = max(abs(a - b) for a, b in zip(g, fds)) / scale
        if e > worst:
            worst, at = e, "grad." + name
    print(json.dumps({"entry": entry, "max_relative_error": worst, "at": at}))
    return worst


if __name__ == "__main__":
    if sys.argv[1:2] == ["check"]:
        sys.exit(0 if check(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]) <= 1e-4 else 1)
    # vectors: research/objectives.md V1 inputs and the ±100 stability inputs
    pc, pr, rc, rr, nc, nr = [-10.0, -25.0], [-12.0, -24.0], [-11.0, -24.0], [-11.5, -26.0], [4.0, 10.0], [5.0, 8.0]
    for lt in ["sigmoid", "hinge", "ipo", "nca_pair", "bco_pair", "sppo_hard", "aot", "aot_unpaired",
               "apo_zero", "apo_down", "discopop", "sigmoid_norm", "sigmoid_forward_kl", "sigmoid_js",
               "sigmoid_alpha"]:
        print("V1", lt, dpo(lt, pc, pr, rc, rr, nc, nr)["loss"])
    print("V1 exo_pair eps=1e-3", dpo("exo_pair", pc, pr, rc, rr, eps=1e-3)["loss"])
    print("V1 robust eps=0.1", dpo("robust", pc, pr, rc, rr, eps=0.1)["loss"])
    print("V1 aot eps=0.1", dpo("aot", pc, pr, rc, rr, eps=0.1)["loss"])
    # stability: margins of ±1000 (β·Δ = ±100; forward_kl uses ±50, since e^{-ρ} overflows f32 below ρ ≈ −88)
    sc, sr, z = [0.0, 0.0], [-1000.0, 1000.0], [0.0, 0.0]
    for lt in ["sigmoid", "hinge", "nca_pair", "bco_pair", "apo_zero", "apo_down", "discopop",
               "sigmoid_js", "aot", "aot_unpaired"]:
        print("S", lt, dpo(lt, sc, sr, z, z)["loss"])
    print("S robust eps=0.1", dpo("robust", sc, sr, z, z, eps=0.1)["loss"])
    print("S exo_pair eps=1e-3", dpo("exo_pair", sc, sr, z, z, eps=1e-3)["loss"])
    print("S sigmoid_norm", dpo("sigmoid_norm", sc, sr, z, z, [1.0, 1.0], [1.0, 1.0])["loss"])
    ac, ar = [x / n for x, n in zip(pc, nc)], [x / n for x, n in zip(pr, nr)]
    print("V2 simpo b=0.1", cpo("simpo", ac, ar)["loss"], "b=2", cpo("simpo", ac, ar, beta=2.0)["loss"])
    print("V2 cpo", cpo("cpo", pc, pr)["loss"], "hinge", cpo("cpo_hinge", pc, pr)["loss"],
          "ipo", cpo("cpo_ipo", ac, ar)["loss"])
    print("V3", odds_ratio(ac, ar))
    print("S cpo", cpo("cpo", sc, sr, beta=0.1)["loss"], "simpo", cpo("simpo", [-0.5, -0.5], [-1000.0, -0.001], beta=0.1)["loss"])
    print("S orpo", odds_ratio([-1e-4, -50.0], [-50.0, -1e-4]))
    lp, ref = [-10.0, -24.0, -25.0, -12.0], [-11.0, -26.0, -24.0, -11.5]
    print("V4", kto([lp[0], lp[2]], [lp[1], lp[3]], [-30.0, -28.0, -31.0, -29.0], [ref[0], ref[2]],
                    [ref[1], ref[3]], [-30.5, -28.2, -30.9, -29.6]))
    print("V4 uw=1.33", kto([lp[0], lp[2]], [lp[1], lp[3]], [-30.0, -28.0, -31.0, -29.0], [ref[0], ref[2]],
                            [ref[1], ref[3]], [-30.5, -28.2, -30.9, -29.6], wu=1.33)["loss"])
    print("S kto", kto([1000.0, -1000.0], [1000.0], [0.0], [0.0, 0.0], [0.0], [0.0])["loss"])
