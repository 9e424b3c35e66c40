#!/usr/bin/env python3
"""Consistency-training objectives and PCM's scheduler, transcribed with torch (float32 as the
reference code computes), printing the expected values of the `test` blocks of
stdlib/objectives/consistency.ftl (`ect_schedule`, `ect_loss`, `pcm_distill`) and
stdlib/sampling/pcm.ftl.

Sources: locuslab/ect `training/loss.py` (`ECMLoss`: `t_to_r_sigmoid`/`t_to_r_const`,
`snrplusk_wt`, the loss; the first release's `1/(t - r)` weighting) and `ct_train.py` (defaults
q = 2, k = 8, b = 1); G-U-N/Phased-Consistency-Model `code/text_to_image_sd15/
train_pcm_lora_sd15.py` (`DDIMSolver`, `ddim_style_multiphase_pred`, the boundary scalings and
the loss) and `code/text_to_image_sd3/pcm_fm_deterministic_scheduler.py`.

    python3 tests/reference/consistency_training.py
"""
import numpy as np
import torch

torch.set_printoptions(precision=10)


def show(name, t):
    print(name, [float(v) for v in t.detach().flatten()])


def alphas_cumprod(T=1000, beta_start=0.00085, beta_end=0.012):
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


# --- ECT -------------------------------------------------------------------------------------
def ect_schedule(rnd_normal, stage, P_mean=-1.1, P_std=2.0, q=2.0, k=8.0, b=1.0, adj="sigmoid"):
    t = (rnd_normal * P_std + P_mean).exp()
    decay = 1 / q ** (stage + 1)
    if adj == "const":
        ratio = 1 - decay
    else:
        ratio = 1 - decay * (1 + k * torch.sigmoid(-b * t))
    return t, torch.clamp(t * ratio, min=0)


def ect_loss(D_yt, D_yr, y, t, r, c=0.0, sigma_data=0.5, wt="snrpk"):
    shape = (-1,) + (1,) * (D_yt.ndim - 1)
    if r.max() > 0:
        mask = (r > 0).reshape(shape)
        D_yr = torch.nan_to_num(D_yr)
        D_yr = mask * D_yr + (~mask) * y
    else:
        D_yr = y
    loss = (D_yt - D_yr) ** 2
    loss = torch.sum(loss.reshape(loss.shape[0], -1), dim=-1)
    loss = torch.sqrt(loss + c**2) - c if c > 0 else torch.sqrt(loss)
    if wt == "snrpk":
        w = (t**2 + sigma_data**2) / (t * sigma_data) ** 2
    else:
        w = 1 / (t - r)
    # the training loop: loss.sum() * loss_scaling / batch
    return (loss * w.flatten()).sum() / D_yt.shape[0]


def ect_vectors():
    n = torch.tensor([-1.5, 0.0, 0.8, 2.2])
    for stage, adj in [(0, "sigmoid"), (3, "sigmoid"), (1, "const")]:
        t, r = ect_schedule(n, stage, adj=adj)
        show(f"ect_schedule stage={stage} {adj} t", t)
        show(f"ect_schedule stage={stage} {adj} r", r)
    D_yt = torch.tensor([[0.3, -0.2, 0.5], [1.0, 0.4, -0.7], [0.05, 0.1, 0.2]], requires_grad=True)
    D_yr = torch.tensor([[0.25, -0.1, 0.45], [float("nan"), 0.2, -0.5], [0.0, 0.0, float("inf")]])
    y = torch.tensor([[0.2, -0.3, 0.6], [0.9, 0.5, -0.6], [0.1, 0.0, 0.3]])
    t = torch.tensor([0.5, 2.0, 0.05])
    r = torch.tensor([0.3, 1.5, 0.0])
    for kw in [dict(), dict(c=0.03), dict(wt="inverse_gap")]:
        D_yt.grad = None
        loss = ect_loss(D_yt, D_yr, y, t, r, **kw)
        loss.backward()
        print("ect_loss", kw, loss.item())
        show("  grad", D_yt.grad)


# --- PCM -------------------------------------------------------------------------------------
def pcm_distill(out, noisy, target_out, x_prev, index, multiphase=8, ddim=50, loss_type="l2",
                huber_c=0.001, prediction_type="epsilon"):
    ac = alphas_cumprod()
    alpha_schedule, sigma_schedule = torch.sqrt(ac), torch.sqrt(1 - ac)
    topk = 1000 // ddim
    ddim_timesteps = (np.arange(1, ddim + 1) * topk).round().astype(np.int64) - 1
    ac_np = ac.numpy()
    prev = torch.from_numpy(np.asarray([ac_np[0]] + ac_np[ddim_timesteps[:-1]].tolist()))
    ddim_timesteps = torch.from_numpy(ddim_timesteps).long()
    start = ddim_timesteps[index]
    end = torch.where(start - topk < 0, torch.zeros_like(start), start - topk)
    edges = torch.from_numpy(np.floor(np.linspace(0, ddim, num=multiphase, endpoint=False)).astype(np.int64))

    def origin(o, t, x):
        a = alpha_schedule[t].reshape(-1, 1)
        s = sigma_schedule[t].reshape(-1, 1)
        return (x - s * o) / a if prediction_type == "epsilon" else a * x - s * o

    def jump(x0, eps):
        valid = index.unsqueeze(1).expand(-1, edges.size(0)) >= edges
        last = edges.size(0) - 1 - valid.flip(dims=[1]).long().argmax(dim=1)
        a = prev[edges[last]].reshape(-1, 1)
        return a.sqrt() * x0 + (1.0 - a).sqrt() * eps

    c_skip = torch.isin(index, edges).float().reshape(-1, 1)
    # `ddim_alpha_cumprods_prev` is float64 (built from `.tolist()`), so the jumps are computed in
    # float64 and cast back by the loss's `.float()`.
    model_pred = 0 * noisy + 1 * jump(origin(out, start, noisy), out)
    target = c_skip * x_prev + (1.0 - c_skip) * jump(origin(target_out, end, x_prev), target_out)
    model_pred, target = model_pred.float(), target.float()
    if loss_type == "l2":
        return torch.nn.functional.mse_loss(model_pred, target, reduction="mean")
    return torch.mean(torch.sqrt((model_pred - target) ** 2 + huber_c**2) - huber_c)


def pcm_vectors():
    out = torch.tensor([[0.1, -0.3, 0.2], [0.5, 0.0, -0.4], [-0.2, 0.7, 0.3]], requires_grad=True)
    noisy = torch.tensor([[0.9, -0.5, 0.1], [0.3, 1.2, -0.8], [-1.0, 0.4, 0.6]])
    target_out = torch.tensor([[0.05, -0.2, 0.25], [0.4, 0.1, -0.3], [-0.1, 0.6, 0.2]])
    x_prev = torch.tensor([[0.8, -0.45, 0.15], [0.35, 1.1, -0.7], [-0.9, 0.35, 0.55]])
    index = torch.tensor([13, 6, 0])
    for kw in [dict(), dict(loss_type="huber", multiphase=4), dict(prediction_type="v_prediction", multiphase=1)]:
        out.grad = None
        loss = pcm_distill(out, noisy, target_out, x_prev, index, **kw)
        loss.backward()
        print("pcm_distill", kw, loss.item())
        show("  grad", out.grad)


def pcm_fm_sigmas(n, shift=1.0, pcm_timesteps=50, T=1000):
    timesteps = torch.from_numpy(np.linspace(1, T, T, dtype=np.float32)[::-1].copy())
    sigmas = timesteps / T
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    euler = (np.arange(1, pcm_timesteps + 1) * (T // pcm_timesteps)).round().astype(np.int64) - 1
    sigmas = torch.from_numpy(sigmas.numpy()[::-1][euler][::-1].copy())
    idx = torch.from_numpy(np.floor(np.linspace(0, pcm_timesteps, num=n, endpoint=False)).astype(np.int64))
    s = sigmas[idx]
    return torch.cat([s, torch.zeros(1)]), s * T


def pcm_fm_step(out, x, sigma, sigma_next):
    denoised = x - out * sigma
    return x + (x - denoised) / sigma * (sigma_next - sigma)


def pcm_fm_vectors():
    for n, shift in [(4, 3.0), (2, 1.0), (7, 3.0)]:
        s, t = pcm_fm_sigmas(n, shift)
        show(f"pcm_fm_sigmas n={n} shift={shift} sigmas", s)
        show("  timesteps", t)
    s, _ = pcm_fm_sigmas(4, 3.0)
    out = torch.tensor([0.3, -1.2, 0.7, 0.05])
    x = torch.tensor([1.1, -0.4, 0.25, -2.0])
    show("pcm_fm_step 0->1", pcm_fm_step(out, x, s[0], s[1]))
    show("pcm_fm_step 3->4", pcm_fm_step(out, x, s[3], s[4]))


if __name__ == "__main__":
    ect_vectors()
    pcm_vectors()
    pcm_fm_vectors()
