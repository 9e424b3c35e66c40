#!/usr/bin/env python3
"""Diffusers' schedulers and consistency losses transcribed in plain Python (stdlib only), with
float32 emulated where diffusers computes in float32 (torch tensors), for FTL's tests.

Sources (research/consistency.md): `scheduling_lcm.py` (`__init__`, `step`,
`get_scalings_for_boundary_condition_discrete`), `scheduling_tcd.py` (`step`: the f32
`floor((1 - eta) * prev_t)`), `scheduling_ddim.py` (`step`, `_get_variance`),
`scheduling_ddpm.py` (`add_noise`), `scheduling_euler_discrete.py` (`step`), PCM's
`pcm_fm_deterministic_scheduler.py` (`step`), `scheduling_consistency_models.py`
(`get_scalings_for_boundary_condition`), `examples/consistency_distillation/
train_lcm_distill_lora_sd_wds.py` (the LCD step and loss) and
`examples/research_projects/consistency_training/train_cm_ct_unconditional.py` (iCT loss).
torch ops are emulated element by element: every float32 result rounded (`f`), `linspace` as
torch's CPU kernel (scalar form), `cumprod` accumulated in double, as torch does on the CPU.

    python3 tests/reference/diffusers_schedulers.py vectors
        prints the expected values of the `test` blocks in stdlib/sampling and consistency.ftl
    python3 tests/reference/diffusers_schedulers.py check IN.safetensors OUT.safetensors ENTRY [k=v ...]
        recomputes ENTRY on IN (random inputs; scalars from k=v) and compares with ftc's OUT
"""
import math
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_plain import read_safetensors  # noqa: E402


def f(v):
    """Round to float32."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


def linspace_f32(start, end, n):
    """torch.linspace(start, end, n, dtype=float32) on the CPU (scalar kernel)."""
    start, end = f(start), f(end)
    step = f((end - start) / (n - 1))
    half = n // 2
    return [f(start + f(step * i)) if i < half else f(end - f(step * (n - i - 1))) for i in range(n)]


def alphas_cumprod(schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, T=1000):
    if schedule == "linear":
        betas = linspace_f32(beta_start, beta_end, T)
    elif schedule == "scaled_linear":
        betas = [f(b * b) for b in linspace_f32(beta_start ** 0.5, beta_end ** 0.5, T)]
    else:  # squaredcos_cap_v2: betas_for_alpha_bar(T, max_beta=0.999), in Python floats
        bar = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = [f(min(1 - bar((i + 1) / T) / bar(i / T), 0.999)) for i in range(T)]
    out, p = [], 1.0
    for b in betas:
        p *= f(1.0 - b)
        out.append(f(p))
    return out


def lcm_scalings(t, timestep_scaling=10.0, sigma_data=0.5):
    """get_scalings_for_boundary_condition_discrete on an int64 tensor timestep (f32 results)."""
    s = f(f(t) * f(timestep_scaling))
    sd2 = f(sigma_data * sigma_data)
    c_skip = f(sd2 / f(f(s * s) + sd2))
    c_out = f(s / f(math.sqrt(f(f(s * s) + sd2))))
    return c_skip, c_out


def cm_scalings(sigma, sigma_min=0.002, sigma_data=0.5):
    """CMStochasticIterativeScheduler.get_scalings_for_boundary_condition (+ c_in of
    scale_model_input), on float32 sigmas."""
    sd2 = f(sigma_data * sigma_data)
    d = f(sigma - f(sigma_min))
    c_skip = f(sd2 / f(f(d * d) + sd2))
    c_out = f(f(d * f(sigma_data)) / f(math.sqrt(f(f(sigma * sigma) + sd2))))
    c_in = f(1.0 / f(math.sqrt(f(f(sigma * sigma) + sd2))))
    return c_skip, c_out, c_in


def convert(pt, out, x, a):
    """(x0, eps) from a model output, diffusers' op order, f32 (a is alphas_cumprod[t])."""
    sa, sb = f(math.sqrt(a)), f(math.sqrt(f(1.0 - a)))
    if pt == "epsilon":
        x0 = [f(f(xi - f(sb * o)) / sa) for xi, o in zip(x, out)]
        eps = list(out)
    elif pt == "sample":
        x0 = list(out)
        eps = [f(f(xi - f(sa * o)) / sb) for xi, o in zip(x, out)]
    else:  # v_prediction
        x0 = [f(f(sa * xi) - f(sb * o)) for xi, o in zip(x, out)]
        eps = [f(f(sa * o) + f(sb * xi)) for xi, o in zip(x, out)]
    return x0, eps


def clamp(v, r):
    return [max(-r, min(r, u)) for u in v]


def lcm_step(out, x, z, t, prev_t, last, kw):
    ac = alphas_cumprod(kw.get("beta_schedule", "scaled_linear"), kw.get("beta_start", 0.00085),
                        kw.get("beta_end", 0.012), int(kw.get("num_train_timesteps", 1000)))
    final = 1.0 if kw.get("set_alpha_to_one", "true") == "true" else ac[0]
    a_t, a_p = ac[t], (ac[prev_t] if prev_t >= 0 else final)
    c_skip, c_out = lcm_scalings(t, kw.get("timestep_scaling", 10.0))
    x0, _ = convert(kw.get("prediction_type", "epsilon"), out, x, a_t)
    if kw.get("clip_sample", "false") == "true":
        x0 = clamp(x0, f(kw.get("clip_sample_range", 1.0)))
    den = [f(f(c_out * a) + f(c_skip * b)) for a, b in zip(x0, x)]
    if last:
        return {"prev_sample": den, "denoised": den}
    sp, sq = f(math.sqrt(a_p)), f(math.sqrt(f(1.0 - a_p)))
    return {"prev_sample": [f(f(sp * d) + f(sq * zi)) for d, zi in zip(den, z)], "denoised": den}


def tcd_step(out, x, z, t, prev_t, last, kw):
    ac = alphas_cumprod(kw.get("beta_schedule", "scaled_linear"), kw.get("beta_start", 0.00085),
                        kw.get("beta_end", 0.012), int(kw.get("num_train_timesteps", 1000)))
    eta = kw.get("eta", 0.3)
    prev_t = max(prev_t, 0)  # after the last step diffusers uses prev_t = 0
    # torch: (1 - eta) is a Python float, times an int64 tensor -> float32, floored.
    s = int(math.floor(f(f(1 - eta) * f(prev_t))))
    a_t, a_p, a_s = ac[t], ac[prev_t], ac[s]
    x0, eps = convert(kw.get("prediction_type", "epsilon"), out, x, a_t)
    ss, sb = f(math.sqrt(a_s)), f(math.sqrt(f(1.0 - a_s)))
    xs = [f(f(ss * a) + f(sb * e)) for a, e in zip(x0, eps)]
    if eta > 0 and not last:
        r = f(a_p / a_s)
        c1, c2 = f(math.sqrt(r)), f(math.sqrt(f(1.0 - r)))
        return {"prev_sample": [f(f(c1 * v) + f(c2 * zi)) for v, zi in zip(xs, z)], "pred_noised_sample": xs}
    return {"prev_sample": xs, "pred_noised_sample": xs}


def ddim_step(out, x, z, t, prev_t, kw):
    ac = alphas_cumprod(kw.get("beta_schedule", "linear"), kw.get("beta_start", 0.0001),
                        kw.get("beta_end", 0.02), int(kw.get("num_train_timesteps", 1000)))
    final = 1.0 if kw.get("set_alpha_to_one", "true") == "true" else ac[0]
    eta = kw.get("eta", 0.0)
    a_t, a_p = ac[t], (ac[prev_t] if prev_t >= 0 else final)
    b_t, b_p = f(1.0 - a_t), f(1.0 - a_p)
    x0, eps = convert(kw.get("prediction_type", "epsilon"), out, x, a_t)
    if kw.get("clip_sample", "true") == "true":
        x0 = clamp(x0, f(kw.get("clip_sample_range", 1.0)))
    variance = f(f(b_p / b_t) * f(1.0 - f(a_t / a_p)))
    std = f(f(eta) * f(math.sqrt(variance)))
    if kw.get("use_clipped_model_output", "false") == "true":
        sa, sb = f(math.sqrt(a_t)), f(math.sqrt(b_t))
        eps = [f(f(xi - f(sa * a)) / sb) for xi, a in zip(x, x0)]
    cd = f(math.sqrt(f(f(1.0 - a_p) - f(std * std))))
    sp = f(math.sqrt(a_p))
    prev = [f(f(sp * a) + f(cd * e)) for a, e in zip(x0, eps)]
    if eta > 0:
        prev = [f(p + f(std * zi)) for p, zi in zip(prev, z)]
    return {"prev_sample": prev, "pred_original_sample": x0}


def dpm_solver_step(out, x, prev_x0, kw):
    """DPMSolverMultistepScheduler (dpmsolver++, order 2) `step` from sigma to sigma_next, second
    order with the previous data prediction `prev_x0` at sigma_prev (f64; the entry computes in
    f32)."""
    def als(sigma):
        alpha = 1 / math.sqrt(sigma * sigma + 1)
        sigma_t = sigma * alpha
        lam = math.log(alpha) - (math.log(sigma_t) if sigma_t > 0 else -math.inf)
        return alpha, sigma_t, lam

    a_s, s_s, l_s = als(kw["sigma"])
    a_t, s_t, l_t = als(kw["sigma_next"])
    _, _, l_p = als(kw["sigma_prev"])
    pt = kw.get("prediction_type", "epsilon")
    x0 = [
        (xi - s_s * o) / a_s if pt == "epsilon" else (a_s * xi - s_s * o if pt == "v_prediction" else o)
        for o, xi in zip(out, x)
    ]
    h = l_t - l_s
    r = (l_s - l_p) / h
    decay = a_t * (math.exp(-h) - 1)
    prev = []
    for xi, d0, p0 in zip(x, x0, prev_x0):
        d1 = (d0 - p0) / r
        v = (s_t / s_s) * xi - decay * d0
        if kw.get("solver_type", "midpoint") == "midpoint":
            v -= 0.5 * decay * d1
        else:
            v += a_t * ((math.exp(-h) - 1) / h + 1) * d1
        prev.append(v)
    return {"prev_sample": prev, "x0": x0}


def euler_step(out, x, z, kw):
    """EulerDiscreteScheduler.step between consecutive sigmas (f32 tensors; gamma a Python float)."""
    sigma, nxt = f(kw["sigma"]), f(kw["sigma_next"])
    n = int(kw.get("num_inference_steps", 1))
    churn, tmin = kw.get("s_churn", 0.0), kw.get("s_tmin", 0.0)
    gamma = min(churn / n, 2**0.5 - 1) if tmin <= sigma else 0.0
    sh = f(sigma * f(gamma + 1))
    if gamma > 0:
        sq = f(math.sqrt(f(f(sh * sh) - f(sigma * sigma))))
        x = [f(xi + f(f(zi * f(kw.get("s_noise", 1.0))) * sq)) for xi, zi in zip(x, z)]
    pt = kw.get("prediction_type", "epsilon")
    if pt == "epsilon":
        x0 = [f(xi - f(sh * o)) for xi, o in zip(x, out)]
    elif pt == "v_prediction":
        s2 = f(f(sigma * sigma) + 1)
        c = f(-sigma / f(math.sqrt(s2)))
        x0 = [f(f(o * c) + f(xi / s2)) for xi, o in zip(x, out)]
    else:
        x0 = list(out)
    dt = f(nxt - sh)
    prev = [f(xi + f(f(f(xi - a) / sh) * dt)) for xi, a in zip(x, x0)]
    return {"prev_sample": prev, "pred_original_sample": x0}


def pcm_fm_step(out, x, kw):
    """PCM's PCMFMDeterministicScheduler.step (G-U-N/Phased-Consistency-Model, SD3 code), f32."""
    sigma, nxt = f(kw["sigma"]), f(kw["sigma_next"])
    dt = f(nxt - sigma)
    prev = []
    for o, xi in zip(out, x):
        denoised = f(xi - f(o * sigma))
        prev.append(f(xi + f(f(f(xi - denoised) / sigma) * dt)))
    return {"prev_sample": prev}


def lcd_vectors():
    """research/consistency.md §9.6: one LCD step at index 37 (t 759 -> 739, w = 8), f32."""
    fm = lambda v: "[" + ", ".join("%.9g" % u for u in v) + "]"
    ac = alphas_cumprod()
    lat, noise = [0.5, -1.0, 0.25, 2.0], [1.0, -0.5, 0.0, 0.25]
    m = [f(v) for v in [0.1, -0.2, 0.3, -0.4]]
    ec, eu = [f(v) for v in [0.2, -0.1, 0.0, 0.1]], [f(v) for v in [0.0, 0.1, -0.1, 0.3]]
    tgt_eps = [f(v) for v in [0.05, -0.15, 0.25, -0.35]]
    t0, t1, w = 759, 739, 8.0
    sa, sb = f(math.sqrt(ac[t0])), f(math.sqrt(f(1.0 - ac[t0])))
    noisy = [f(f(sa * x) + f(sb * n)) for x, n in zip(lat, noise)]
    cs0, co0 = lcm_scalings(t0)
    cs1, co1 = lcm_scalings(t1)
    x0s, _ = convert("epsilon", m, noisy, ac[t0])
    model_pred = [f(f(cs0 * y) + f(co0 * a)) for y, a in zip(noisy, x0s)]
    x0c, epc = convert("epsilon", ec, noisy, ac[t0])
    x0u, epu = convert("epsilon", eu, noisy, ac[t0])
    x0 = [f(c + f(w * f(c - u))) for c, u in zip(x0c, x0u)]
    ep = [f(c + f(w * f(c - u))) for c, u in zip(epc, epu)]
    pa, pb = f(math.sqrt(ac[t1])), f(math.sqrt(f(1.0 - ac[t1])))
    x_prev = [f(f(pa * a) + f(pb * e)) for a, e in zip(x0, ep)]
    x0t, _ = convert("epsilon", tgt_eps, x_prev, ac[t1])
    target = [f(f(cs1 * y) + f(co1 * a)) for y, a in zip(x_prev, x0t)]
    d = [f(a - b) for a, b in zip(model_pred, target)]
    l2 = sum(f(v * v) for v in d) / 4
    c = f(0.001)
    huber = sum(f(f(math.sqrt(f(f(v * v) + f(c * c)))) - c) for v in d) / 4
    print("lcd noisy", fm(noisy), "x_prev", fm(x_prev), "l2 %.9g huber %.9g" % (l2, huber))
    # d l2 / d model_output = 2 d / n · c_out(t0) · d x0 / d out = 2 d / n · c_out · (−√(1−a)/√a)
    g = [2 * v / 4 * co0 * (-sb / sa) for v in d]
    print("lcd grad.model_output (l2)", fm(g))
    # iCT: student/teacher denoised = model_pred/target, sigmas 0.5 (teacher) and 0.75 (student).
    lam = 1 / (0.75 - 0.5)
    cd = 0.00054 * math.sqrt(4)
    ict = sum(lam * (math.sqrt(v * v + cd * cd) - cd) for v in d) / 4
    print("ict c=auto %.9g" % ict)


def vectors():
    fm = lambda v: "[" + ", ".join("%.9g" % u for u in v) + "]"
    ac = alphas_cumprod()
    print("ac scaled_linear", fm([ac[t] for t in [0, 19, 259, 499, 531, 759, 999]]))
    ac = alphas_cumprod("linear", 0.0001, 0.02)
    print("ac linear(ddim)", fm([ac[t] for t in [0, 499, 999]]))
    ac = alphas_cumprod("squaredcos_cap_v2")
    print("ac squaredcos_cap_v2", fm([ac[t] for t in [0, 499, 999]]))
    # Float32 tensors, as the pipeline hands them to the scheduler.
    x, m, z = [0.5, -1.0, 0.25, 2.0], [f(v) for v in [0.1, -0.2, 0.3, -0.4]], [1.0, -0.5, 0.0, 0.25]
    for pt in ["epsilon", "v_prediction", "sample"]:
        r = lcm_step(m, x, z, 999, 759, False, {"prediction_type": pt})
        print("lcm", pt, fm(r["denoised"]), fm(r["prev_sample"]))
    print("lcm last", fm(lcm_step(m, x, z, 259, -1, True, {})["denoised"]))
    for t, p, last, eta, pt in [(999, 759, False, 0.0, "epsilon"), (999, 759, False, 0.3, "epsilon"),
                                (259, -1, True, 0.3, "epsilon"), (759, 499, False, 0.3, "v_prediction"),
                                (999, 90, False, 0.3, "epsilon")]:
        r = tcd_step(m, x, z, t, p, last, {"eta": eta, "prediction_type": pt})
        print("tcd", t, p, eta, pt, fm(r["pred_noised_sample"]), fm(r["prev_sample"]))
    lcm_sched = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "clip_sample": "false"}
    r = ddim_step(m, x, z, 750, 500, lcm_sched)
    print("ddim 750->500", fm(r["pred_original_sample"]), fm(r["prev_sample"]))
    r = ddim_step(m, x, z, 750, 500, dict(lcm_sched, eta=1.0))
    print("ddim eta 1", fm(r["prev_sample"]))
    r = ddim_step(m, x, z, 999, 759, {})
    print("ddim defaults (clipped)", fm(r["pred_original_sample"]), fm(r["prev_sample"]))
    for t in [0, 1, 19, 259, 999]:
        print("lcm_scalings", t, "%.10g %.10g" % lcm_scalings(t))
    for s in [80.0, 1.382367957, 0.002]:
        print("cm_scalings", s, "%.10g %.10g %.10g" % cm_scalings(f(s)))
    lcd_vectors()


def check(inp, outp, entry, sets):
    t = read_safetensors(inp)
    got = read_safetensors(outp)
    kw = {}
    for k, v in (s.split("=") for s in sets):
        try:
            kw[k] = float(v)
        except ValueError:
            kw[k] = v
    if entry == "dpm_solver_step":
        want = dpm_solver_step(t["model_output"], t["sample"], t["prev_x0"], kw)
        args = None
    elif entry == "euler_step":
        want = euler_step(t["model_output"], t["sample"], t["noise"], kw)
        args = None
    elif entry == "pcm_fm_step":
        want = pcm_fm_step(t["model_output"], t["sample"], kw)
        args = None
    else:
        args = (t["model_output"], t["sample"], t["noise"], int(kw["timestep"]), int(kw["prev_timestep"]))
    if args is None:
        pass
    elif entry == "lcm_step":
        want = lcm_step(*args, kw.get("last_step", "false") in ("true", 1.0), kw)
    elif entry == "tcd_step":
        want = tcd_step(*args, kw.get("last_step", "false") in ("true", 1.0), kw)
    else:
        want = ddim_step(*args, kw)
    worst, at = 0.0, ""
    for k, v in want.items():
        scale = max(max(abs(u) for u in v), 1e-6)
        e = max(abs(a - b) for a, b in zip(v, got[k])) / scale
        if e > worst:
            worst, at = e, k
    print('{"entry": "%s", "max_relative_error": %.3e, "at": "%s"}' % (entry, worst, at))
    return worst


if __name__ == "__main__":
    if sys.argv[1:2] == ["check"]:
        sys.exit(0 if check(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]) <= 2e-4 else 1)
    vectors()
