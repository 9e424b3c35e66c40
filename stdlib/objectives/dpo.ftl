import std.core.logps

// The DPO family of TRL's DPOTrainer (HEAD), one objective per `loss_type`, on per-sequence
// log-probabilities. Formulas and test vectors: research/objectives.md §1.2 and §5 (V1); the
// expected values come from tests/reference/trl_objectives.py, a plain-Python transcription of
// TRL's code. Metrics are TRL's `rewards/*`, always from the log-ratios ρ = s − s_ref. Inside
// this module `sigmoid` names the DPO objective, so σ(x) is written `exp(log_sigmoid(x))` (stable
// for any x, with the same value and gradient).

/// TRL's `rewards/*` metrics from the log-ratios `chosen` = s_c − s_ref,c and `rejected`
/// (every objective of this module spreads them with `metric ..rewards(…)`).
fn rewards(
    beta: f32,
    chosen: f32[B],
    rejected: f32[B],
) -> (rewards_chosen: f32, rewards_rejected: f32, rewards_accuracies: f32, rewards_margins: f32) {
    (
        rewards_chosen: mean(beta * chosen, B),
        rewards_rejected: mean(beta * rejected, B),
        rewards_accuracies: mean(f32(beta * chosen > beta * rejected), B),
        rewards_margins: mean(beta * (chosen - rejected), B),
    )
}

/// TRL's f-divergence score of a log-ratio (`DPOConfig.f_divergence_type`, the `f'(t)` of
/// Wang et al. 2023): `reverse_kl` the log-ratio itself (standard DPO), `forward_kl`
/// `1 − e^{−ρ}`, `js_divergence` `log 2 + log σ(ρ)`, `alpha_divergence`
/// `(e^{min((α−1)ρ, 80)} − 1)/(α − 1)` (ρ within 1e-6 of α = 1), as TRL 1.16's `_compute_loss`.
fn f_score(
    logratio: f32[B],
    f_divergence_type: enum { reverse_kl, forward_kl, js_divergence, alpha_divergence } = reverse_kl,
    coef: f32 = 0.5,
) -> f32[B] {
    match f_divergence_type {
        reverse_kl => logratio,
        forward_kl => 1.0 - exp(-logratio),
        js_divergence => log(2.0) + log_sigmoid(logratio),
        alpha_divergence => where(
            abs(coef - 1.0) < 1e-6,
            logratio,
            (exp(min((coef - 1.0) * logratio, 80.0)) - 1.0) / (coef - 1.0),
        ),
    }
}

/// Direct Preference Optimization (Rafailov et al., 2023, arXiv 2305.18290); TRL
/// `loss_type="sigmoid"` at HEAD: `−logσ(βΔ)`, no label smoothing (TRL dropped cDPO from `sigmoid`
/// in v0.29; `robust` keeps the smoothed form).
objective sigmoid(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
    f_divergence_type: enum { reverse_kl, forward_kl, js_divergence, alpha_divergence } = reverse_kl,
    f_alpha_divergence_coef: f32 = 0.5,
) requires beta > 0.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    let cs = f_score(chosen, f_divergence_type, f_alpha_divergence_coef);
    let rs = f_score(rejected, f_divergence_type, f_alpha_divergence_coef);
    loss mean(-log_sigmoid(beta * (cs - rs)), B);
    metric ..rewards(beta, chosen, rejected);
}

test "every DPO loss takes TRL's f_divergence_type (TRL 1.16 _compute_loss lines, V1)" {
    // TRL's f-divergence scores and each loss type's formula transcribed in torch (f64; the
    // alpha divergence's exponent in f32, as TRL computes it), on research vector V1.
    let sigmoid_js_divergence = sigmoid(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
        f_divergence_type: js_divergence,
    );
    expect_close(sigmoid_js_divergence.loss, 0.7074371153576822, rtol: 1e-6, atol: 1e-7);
    expect_close(
        sigmoid_js_divergence.grad.chosen_logps,
        [-0.006501465582608662, -0.019359294060224668],
        rtol: 1e-5,
        atol: 1e-8,
    );
    let sigmoid_alpha_divergence = sigmoid(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
        f_divergence_type: alpha_divergence,
    );
    expect_close(sigmoid_alpha_divergence.loss, 0.7285513755018087, rtol: 1e-6, atol: 1e-7);
    expect_close(
        sigmoid_alpha_divergence.grad.chosen_logps,
        [-0.014137531630694866, -0.04646872729063034],
        rtol: 1e-5,
        atol: 1e-8,
    );
    let hinge_forward_kl = hinge(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
        f_divergence_type: forward_kl,
    );
    expect_close(hinge_forward_kl.loss, 1.0651052357846873, rtol: 1e-6, atol: 1e-7);
    expect_close(
        hinge_forward_kl.grad.chosen_logps,
        [-0.018393972058572117, -0.13591409142295227],
        rtol: 1e-5,
        atol: 1e-8,
    );
    let ipo_js_divergence = ipo(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
        chosen_lengths: [5.0, 8.0],
        rejected_lengths: [4.0, 9.0],
        f_divergence_type: js_divergence,
    );
    expect_close(ipo_js_divergence.loss, 24.991638589774865, rtol: 1e-6, atol: 1e-7);
    expect_close(
        ipo_js_divergence.grad.chosen_logps,
        [-0.2610770605571958, -0.46974420768625996],
        rtol: 1e-5,
        atol: 1e-8,
    );
    let exo_pair_forward_kl = exo_pair(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
        label_smoothing: 0.1,
        f_divergence_type: forward_kl,
    );
    expect_close(exo_pair_forward_kl.loss, 0.5514030359677728, rtol: 1e-6, atol: 1e-7);
    expect_close(
        exo_pair_forward_kl.grad.chosen_logps,
        [-0.009476009681161855, -0.0820586315472997],
        rtol: 1e-5,
        atol: 1e-8,
    );
    let robust_js_divergence = robust(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
        label_smoothing: 0.1,
        f_divergence_type: js_divergence,
    );
    expect_close(robust_js_divergence.loss, 0.7107216052315156, rtol: 1e-6, atol: 1e-7);
    expect_close(
        robust_js_divergence.grad.chosen_logps,
        [-0.008182349466171131, -0.0239284101766622],
        rtol: 1e-5,
        atol: 1e-8,
    );
    let discopop_alpha_divergence = discopop(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
        f_divergence_type: alpha_divergence,
    );
    expect_close(discopop_alpha_divergence.loss, 0.8450544753535878, rtol: 1e-6, atol: 1e-7);
    expect_close(
        discopop_alpha_divergence.grad.chosen_logps,
        [-0.017000075429677963, -0.0423356331884861],
        rtol: 1e-5,
        atol: 1e-8,
    );
    let sigmoid_norm_forward_kl = sigmoid_norm(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
        chosen_lengths: [5.0, 8.0],
        rejected_lengths: [4.0, 9.0],
        f_divergence_type: forward_kl,
    );
    expect_close(sigmoid_norm_forward_kl.loss, 0.6938159964151376, rtol: 1e-6, atol: 1e-7);
    expect_close(
        sigmoid_norm_forward_kl.grad.chosen_logps,
        [-0.001812856139002951, -0.008626651739713399],
        rtol: 1e-5,
        atol: 1e-8,
    );
}

test "sigmoid matches TRL on V1 and stays finite at margins of ±1000" {
    let r = sigmoid(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
    );
    expect_close(r.loss, 0.7376561461290296, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = sigmoid(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
    );
    expect_close(s.loss, 50.0, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck sigmoid(B: 4);
}

/// SLiC / RSO hinge loss (Zhao et al., 2023; Liu et al., 2023); TRL `loss_type="hinge"`:
/// `relu(1 − βΔ)`.
objective hinge(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
    f_divergence_type: enum { reverse_kl, forward_kl, js_divergence, alpha_divergence } = reverse_kl,
    f_alpha_divergence_coef: f32 = 0.5,
) requires beta > 0.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    let cs = f_score(chosen, f_divergence_type, f_alpha_divergence_coef);
    let rs = f_score(rejected, f_divergence_type, f_alpha_divergence_coef);
    loss mean(relu(1.0 - beta * (cs - rs)), B);
    metric ..rewards(beta, chosen, rejected);
}

test "hinge matches TRL on V1 and stays finite at margins of ±1000" {
    let r = hinge(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
    );
    expect_close(r.loss, 1.075, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = hinge(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
    );
    expect_close(s.loss, 50.5, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck hinge(B: 4);
}

/// Identity Preference Optimization (Azar et al., 2023, arXiv 2310.12036); TRL `loss_type="ipo"`:
/// log-ratios divided by completion lengths (clamped at 1, as TRL's
/// `completion_mask.sum(1).clamp(min=1)`), then `(Δ/n − 1/(2β))²`.
objective ipo(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    chosen_lengths: const f32[B],
    rejected_lengths: const f32[B],
    beta: f32 = 0.1,
    f_divergence_type: enum { reverse_kl, forward_kl, js_divergence, alpha_divergence } = reverse_kl,
    f_alpha_divergence_coef: f32 = 0.5,
) requires beta > 0.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    let cs = f_score(chosen, f_divergence_type, f_alpha_divergence_coef);
    let rs = f_score(rejected, f_divergence_type, f_alpha_divergence_coef);
    let delta = cs / max(chosen_lengths, 1.0) - rs / max(rejected_lengths, 1.0);
    loss mean(pow(delta - 1.0 / (2.0 * beta), 2.0), B);
    metric ..rewards(beta, chosen, rejected);
}

test "ipo matches TRL on V1 and stays finite at margins of ±1000" {
    let r = ipo(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
        chosen_lengths: [4.0, 10.0],
        rejected_lengths: [5.0, 8.0],
    );
    expect_close(r.loss, 25.1225, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = ipo(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
        chosen_lengths: [1.0, 1.0],
        rejected_lengths: [1.0, 1.0],
    );
    expect_close(s.loss, 1000025.0, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck ipo(B: 4);
}

/// EXO, pairwise (Ji et al., 2024, arXiv 2402.00856); TRL `loss_type="exo_pair"`:
/// `σ(βΔ)(logσ(βΔ) − log(1−ε)) + σ(−βΔ)(logσ(−βΔ) − log ε)`. TRL raises for ε = 0 (the paper
/// uses 1e-3), hence the `requires`.
objective exo_pair(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
    label_smoothing: f32 = 0.0,
    f_divergence_type: enum { reverse_kl, forward_kl, js_divergence, alpha_divergence } = reverse_kl,
    f_alpha_divergence_coef: f32 = 0.5,
) requires beta > 0.0, 0.0 < label_smoothing < 1.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    let cs = f_score(chosen, f_divergence_type, f_alpha_divergence_coef);
    let rs = f_score(rejected, f_divergence_type, f_alpha_divergence_coef);
    let z = beta * (cs - rs);
    let pos = exp(log_sigmoid(z)) * (log_sigmoid(z) - log1p(-label_smoothing));
    let neg = exp(log_sigmoid(-z)) * (log_sigmoid(-z) - log(label_smoothing));
    loss mean(pos + neg, B);
    metric ..rewards(beta, chosen, rejected);
}

test "exo_pair matches TRL on V1 and stays finite at margins of ±1000" {
    let r = exo_pair(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
        label_smoothing: 0.001,
    );
    expect_close(r.loss, 2.896014082217127, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = exo_pair(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
        label_smoothing: 0.001,
    );
    expect_close(s.loss, 3.4543778896578603, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck exo_pair(B: 4, label_smoothing: 0.001);
}

/// NCA, pairwise (Chen et al., 2024, arXiv 2402.05369); TRL `loss_type="nca_pair"`:
/// `−logσ(βρ_c) − ½logσ(−βρ_c) − ½logσ(−βρ_r)`.
objective nca_pair(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
) requires beta > 0.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    let c = beta * chosen;
    loss mean(-log_sigmoid(c) - 0.5 * log_sigmoid(-c) - 0.5 * log_sigmoid(-beta * rejected), B);
    metric ..rewards(beta, chosen, rejected);
}

test "nca_pair matches TRL on V1 and stays finite at margins of ±1000" {
    let r = nca_pair(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
    );
    expect_close(r.loss, 1.4082446194590759, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = nca_pair(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
    );
    expect_close(s.loss, 26.03972077083992, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck nca_pair(B: 4);
}

/// Robust DPO (Chowdhury et al., 2024, arXiv 2403.00409); TRL `loss_type="robust"`:
/// `(−(1−ε)logσ(βΔ) + ε·logσ(−βΔ)) / (1 − 2ε)`, valid for 0 ≤ ε < 0.5.
objective robust(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
    label_smoothing: f32 = 0.0,
    f_divergence_type: enum { reverse_kl, forward_kl, js_divergence, alpha_divergence } = reverse_kl,
    f_alpha_divergence_coef: f32 = 0.5,
) requires beta > 0.0, 0.0 <= label_smoothing < 0.5 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    let cs = f_score(chosen, f_divergence_type, f_alpha_divergence_coef);
    let rs = f_score(rejected, f_divergence_type, f_alpha_divergence_coef);
    let z = beta * (cs - rs);
    let per_pair = -(1.0 - label_smoothing) * log_sigmoid(z) + label_smoothing * log_sigmoid(-z);
    loss mean(per_pair / (1.0 - 2.0 * label_smoothing), B);
    metric ..rewards(beta, chosen, rejected);
}

test "robust matches TRL on V1 and stays finite at margins of ±1000" {
    let r = robust(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
        label_smoothing: 0.1,
    );
    expect_close(r.loss, 0.7470311461290295, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = robust(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
        label_smoothing: 0.1,
    );
    expect_close(s.loss, 50.0, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck robust(B: 4, label_smoothing: 0.1);
}

/// BCO, pairwise (Jung et al., 2024, arXiv 2404.04656); TRL `loss_type="bco_pair"` at HEAD:
/// `−logσ(βρ_c) − logσ(−βρ_r)` (the running-mean shift δ of TRL ≤ 0.28 is gone).
objective bco_pair(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
) requires beta > 0.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    loss mean(-log_sigmoid(beta * chosen) - log_sigmoid(-beta * rejected), B);
    metric ..rewards(beta, chosen, rejected);
}

test "bco_pair matches TRL on V1 and stays finite at margins of ±1000" {
    let r = bco_pair(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
    );
    expect_close(r.loss, 1.4276959187710099, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = bco_pair(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
    );
    expect_close(s.loss, 50.69314718055995, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck bco_pair(B: 4);
}

/// SPPO with hard labels (Wu et al., 2024, arXiv 2405.00675); TRL `loss_type="sppo_hard"`:
/// `(ρ_c − 1/(2β))² + (ρ_r + 1/(2β))²`.
objective sppo_hard(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
) requires beta > 0.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    let h = 1.0 / (2.0 * beta);
    loss mean(pow(chosen - h, 2.0) + pow(rejected + h, 2.0), B);
    metric ..rewards(beta, chosen, rejected);
}

test "sppo_hard matches TRL on V1 and stays finite at margins of ±1000" {
    let r = sppo_hard(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
    );
    expect_close(r.loss, 60.625, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = sppo_hard(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
    );
    expect_close(s.loss, 1000050.0, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck sppo_hard(B: 4);
}

/// Alignment via Optimal Transport, paired (Melnyk et al., 2024, arXiv 2406.05882); TRL
/// `loss_type="aot"`: `d = sort(s_c − s_r) − sort(s_c^ref − s_r^ref)` over the batch, then the
/// smoothed sigmoid `−(1−ε)logσ(βd) − ε·logσ(−βd)`.
objective aot(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
    label_smoothing: f32 = 0.0,
) requires beta > 0.0, 0.0 <= label_smoothing <= 1.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    let d = sort(chosen_logps - rejected_logps, B) - sort(ref_chosen_logps - ref_rejected_logps, B);
    let smooth = -(1.0 - label_smoothing) * log_sigmoid(beta * d)
        - label_smoothing * log_sigmoid(-beta * d);
    loss mean(smooth, B);
    metric ..rewards(beta, chosen, rejected);
}

test "aot matches TRL on V1 and stays finite at margins of ±1000" {
    let r = aot(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
        label_smoothing: 0.1,
    );
    expect_close(r.loss, 0.7245521141747386, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = aot(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
        label_smoothing: 0.1,
    );
    expect_close(s.loss, 50.0, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck aot(B: 4, label_smoothing: 0.1);
}

/// Alignment via Optimal Transport, unpaired; TRL `loss_type="aot_unpaired"`:
/// `d = sort(ρ_c) − sort(ρ_r)` over the batch, then the smoothed sigmoid.
objective aot_unpaired(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
    label_smoothing: f32 = 0.0,
) requires beta > 0.0, 0.0 <= label_smoothing <= 1.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    let d = sort(chosen, B) - sort(rejected, B);
    let smooth = -(1.0 - label_smoothing) * log_sigmoid(beta * d)
        - label_smoothing * log_sigmoid(-beta * d);
    loss mean(smooth, B);
    metric ..rewards(beta, chosen, rejected);
}

test "aot_unpaired matches TRL on V1 and stays finite at margins of ±1000" {
    let r = aot_unpaired(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
        label_smoothing: 0.0,
    );
    expect_close(r.loss, 0.7314281540434286, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = aot_unpaired(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
        label_smoothing: 0.0,
    );
    expect_close(s.loss, 50.0, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck aot_unpaired(B: 4, label_smoothing: 0.0);
}

/// Anchored Preference Optimization, zero (D'Oosterlinck et al., 2024, arXiv 2408.06266);
/// TRL `loss_type="apo_zero"`: `(1 − σ(βρ_c)) + σ(βρ_r)`.
objective apo_zero(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
) requires beta > 0.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    loss mean(1.0 - exp(log_sigmoid(beta * chosen)) + exp(log_sigmoid(beta * rejected)), B);
    metric ..rewards(beta, chosen, rejected);
}

test "apo_zero matches TRL on V1 and stays finite at margins of ±1000" {
    let r = apo_zero(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
    );
    expect_close(r.loss, 1.018668300414134, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = apo_zero(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
    );
    expect_close(s.loss, 1.0, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck apo_zero(B: 4);
}

/// Anchored Preference Optimization, down; TRL `loss_type="apo_down"`:
/// `σ(βρ_c) + (1 − σ(βΔ))`.
objective apo_down(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
) requires beta > 0.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    loss mean(
        exp(log_sigmoid(beta * chosen)) + 1.0 - exp(log_sigmoid(beta * (chosen - rejected))),
        B,
    );
    metric ..rewards(beta, chosen, rejected);
}

test "apo_down matches TRL on V1 and stays finite at margins of ±1000" {
    let r = apo_down(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
    );
    expect_close(r.loss, 1.0185063357339548, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = apo_down(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
    );
    expect_close(s.loss, 1.0, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck apo_down(B: 4);
}

/// DiscoPOP (Chris Lu et al., 2024, arXiv 2406.08414); TRL `loss_type="discopop"`:
/// `z = βΔ, m = σ(z/τ)`, `(1 − m)(−logσ(z)) + m·e^{−z}`. `m·e^{−z}` is computed as
/// `exp(logσ(z/τ) − z)`: the same value, finite where TRL's product overflows (|z| ≳ 88).
objective discopop(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
    discopop_tau: f32 = 0.05,
    f_divergence_type: enum { reverse_kl, forward_kl, js_divergence, alpha_divergence } = reverse_kl,
    f_alpha_divergence_coef: f32 = 0.5,
) requires beta > 0.0, discopop_tau > 0.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    let cs = f_score(chosen, f_divergence_type, f_alpha_divergence_coef);
    let rs = f_score(rejected, f_divergence_type, f_alpha_divergence_coef);
    let z = beta * (cs - rs);
    let m = exp(log_sigmoid(z / discopop_tau));
    loss mean((1.0 - m) * -log_sigmoid(z) + exp(log_sigmoid(z / discopop_tau) - z), B);
    metric ..rewards(beta, chosen, rejected);
}

test "discopop matches TRL on V1 and stays finite at margins of ±1000" {
    let r = discopop(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
    );
    expect_close(r.loss, 0.8524590086711236, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = discopop(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
    );
    expect_close(s.loss, 50.0, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck discopop(B: 4);
}

/// Length-normalized DPO; TRL `loss_type="sigmoid_norm"` (#5406):
/// `−logσ(β(ρ_c/n_c − ρ_r/n_r))`, lengths clamped at 1.
objective sigmoid_norm(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    chosen_lengths: const f32[B],
    rejected_lengths: const f32[B],
    beta: f32 = 0.1,
    f_divergence_type: enum { reverse_kl, forward_kl, js_divergence, alpha_divergence } = reverse_kl,
    f_alpha_divergence_coef: f32 = 0.5,
) requires beta > 0.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    let cs = f_score(chosen, f_divergence_type, f_alpha_divergence_coef);
    let rs = f_score(rejected, f_divergence_type, f_alpha_divergence_coef);
    let delta = cs / max(chosen_lengths, 1.0) - rs / max(rejected_lengths, 1.0);
    loss mean(-log_sigmoid(beta * delta), B);
    metric ..rewards(beta, chosen, rejected);
}

test "sigmoid_norm matches TRL on V1 and stays finite at margins of ±1000" {
    let r = sigmoid_norm(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
        chosen_lengths: [4.0, 10.0],
        rejected_lengths: [5.0, 8.0],
    );
    expect_close(r.loss, 0.6933002977448284, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = sigmoid_norm(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
        chosen_lengths: [1.0, 1.0],
        rejected_lengths: [1.0, 1.0],
    );
    expect_close(s.loss, 50.0, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck sigmoid_norm(B: 4);
}

/// f-DPO with the forward KL (Wang et al., 2023, arXiv 2309.16240); TRL `loss_type="sigmoid"`
/// with `f_divergence_type="forward_kl"`: scores `u = −e^{−ρ}`, then `−logσ(β(u_c − u_r))`
/// (e^{−ρ} overflows f32 below ρ ≈ −88, in TRL as here). Rewards stay on ρ.
objective sigmoid_forward_kl(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
) requires beta > 0.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    loss mean(-log_sigmoid(beta * (-exp(-chosen) + exp(-rejected))), B);
    metric ..rewards(beta, chosen, rejected);
}

test "sigmoid_forward_kl matches TRL on V1 and stays finite at margins of ±50" {
    let r = sigmoid_forward_kl(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
    );
    expect_close(r.loss, 0.7308826637718232, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = sigmoid_forward_kl(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-50.0, 50.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
    );
    expect_close(s.loss, 0.37219833003678543, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck sigmoid_forward_kl(B: 4);
}

/// f-DPO with the Jensen–Shannon divergence; TRL `f_divergence_type="js_divergence"`: scores
/// `u = logσ(ρ)`, then `−logσ(β(u_c − u_r))`.
objective sigmoid_js(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
) requires beta > 0.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    loss mean(-log_sigmoid(beta * (log_sigmoid(chosen) - log_sigmoid(rejected))), B);
    metric ..rewards(beta, chosen, rejected);
}

test "sigmoid_js matches TRL on V1 and stays finite at margins of ±1000" {
    let r = sigmoid_js(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
    );
    expect_close(r.loss, 0.7074371153576822, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = sigmoid_js(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
    );
    expect_close(s.loss, 0.3642024928336106, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck sigmoid_js(B: 4);
}

/// f-DPO with the α-divergence; TRL `f_divergence_type="alpha_divergence"`: scores
/// `u = e^{t}/(α − 1)`, `t = min((α − 1)ρ, 80)` (TRL's cap for f32), `u = ρ` when |α − 1| < 1e-6.
/// `f_alpha_divergence_coef` defaults to 0.5 as in TRL HEAD's DPOConfig (TRL ≤ 0.28 used 1.0).
objective sigmoid_alpha(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
    f_alpha_divergence_coef: f32 = 0.5,
) requires beta > 0.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    let a = f_alpha_divergence_coef - 1.0;
    let near_kl = abs(a) < 1e-6;
    let uc = where(near_kl, chosen, exp(min(a * chosen, 80.0)) / a);
    let ur = where(near_kl, rejected, exp(min(a * rejected, 80.0)) / a);
    loss mean(-log_sigmoid(beta * (uc - ur)), B);
    metric ..rewards(beta, chosen, rejected);
}

test "sigmoid_alpha matches TRL on V1 and stays finite at margins of ±1000" {
    let r = sigmoid_alpha(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
    );
    expect_close(r.loss, 0.7285513793248739, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_margins, -0.07500000000000001, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    let s = sigmoid_alpha(
        chosen_logps: [0.0, 0.0],
        rejected_logps: [-1000.0, 1000.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0, 0.0],
    );
    expect_close(s.loss, 0.3990694346907959, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck sigmoid_alpha(B: 4);
}

/// WPO's sequence weight (Zhou et al., 2024, arXiv 2406.11827, Eq. 2), as TRL 1.16's
/// DPOTrainer computes it with `use_weighting=True`: the exponential of the length-mean over
/// non-ignored tokens of `lp − log Σ_v p_v²` (TRL's `log_sum_sq_probs`, `LSE(2z) − 2·LSE(z)` in
/// its chunked kernel), the length clamped at 1, with no gradient (TRL computes it under
/// `torch.no_grad()`).
fn wpo_weight(logits: f32[B, T, V], labels: i32[B, T], ignore_index: i32) -> f32[B] {
    let keep = labels != ignore_index;
    let log_sum_sq_probs = logsumexp(2.0 * logits, V) - 2.0 * logsumexp(logits, V);
    let aligned = where(keep, token_logps(logits, labels, ignore_index) - log_sum_sq_probs, 0.0);
    detach(exp(sum(aligned, T) / max(sum(f32(keep), T), 1.0)))
}

/// LD-DPO's sequence log-probability of one side of each pair (TRL 1.16's `ld_alpha` lines):
/// the token log-probs of the first `min(own, other)` completion tokens count fully, the rest
/// `ld_alpha` times; `other_labels` are the pair's other completion's.
fn ld_logps(
    logits: f32[B, T, V],
    labels: i32[B, T],
    other_labels: i32[B, T],
    ignore_index: i32,
    ld_alpha: f32,
) -> f32[B] {
    let keep = f32(labels != ignore_index);
    let shared = min(sum(keep, T), sum(f32(other_labels != ignore_index), T));
    let position = cumsum(keep, T);
    sum(token_logps(logits, labels, ignore_index) * where(position > shared, ld_alpha, 1.0), T)
}

/// DPO from logits: sequence log-probabilities summed over non-ignored tokens (TRL's DPO
/// convention; labels already shifted, `ignore_index` ignored: TRL's `label_pad_token_id`,
/// default −100), then `sigmoid`. `use_weighting` is TRL's
/// WPO option: each pair's loss is multiplied by the chosen and rejected `wpo_weight`s before the
/// batch mean (TRL 1.16 `dpo_trainer.py`, `if self.use_weighting`). `ld_alpha` is TRL's LD-DPO
/// option (length desensitization, arXiv 2409.06411): each pair's completion tokens beyond the
/// shorter completion's length count `ld_alpha` times in both log-probabilities (TRL's
/// `shared_logps + ld_alpha · tail_logps`); give the reference log-probs computed the same way.
objective sigmoid_from_logits(
    chosen_logits: f32[B, T, V],
    chosen_labels: i32[B, T],
    rejected_logits: f32[B, T, V],
    rejected_labels: i32[B, T],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    ld_alpha: f32?,
    beta: f32 = 0.1,
    use_weighting: static bool = false,
    ignore_index: i32 = -100,
) requires beta > 0.0 {
    let chosen_logps = if present(ld_alpha) {
        ld_logps(chosen_logits, chosen_labels, rejected_labels, ignore_index, ld_alpha)
    } else {
        seq_logps(chosen_logits, chosen_labels, ignore_index)
    };
    let rejected_logps = if present(ld_alpha) {
        ld_logps(rejected_logits, rejected_labels, chosen_labels, ignore_index, ld_alpha)
    } else {
        seq_logps(rejected_logits, rejected_labels, ignore_index)
    };
    let r = sigmoid(
        chosen_logps: chosen_logps,
        rejected_logps: rejected_logps,
        ref_chosen_logps: ref_chosen_logps,
        ref_rejected_logps: ref_rejected_logps,
        beta: beta,
    );
    loss if use_weighting {
        let delta = chosen_logps - ref_chosen_logps - (rejected_logps - ref_rejected_logps);
        let weights = wpo_weight(chosen_logits, chosen_labels, ignore_index)
            * wpo_weight(rejected_logits, rejected_labels, ignore_index);
        mean(-log_sigmoid(beta * delta) * weights, B)
    } else {
        r.loss
    };
    metric ..r.metric;
}

/// TRL 1.16's several DPO `loss_type`s at once with `loss_weights`, from logits: the weighted sum
/// of the `sigmoid` loss, the `bco_pair` loss and the `sft` loss (the mean negative log-prob of
/// the chosen completions' tokens, over all of them), each averaged over the batch. MPO (Mixed
/// Preference Optimization) is `sigmoid_weight = 0.8, bco_pair_weight = 0.2, sft_weight = 1.0`;
/// the defaults are plain DPO. Metrics are `sigmoid`'s.
objective weighted_from_logits(
    chosen_logits: f32[B, T, V],
    chosen_labels: i32[B, T],
    rejected_logits: f32[B, T, V],
    rejected_labels: i32[B, T],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
    sigmoid_weight: f32 = 1.0,
    bco_pair_weight: f32 = 0.0,
    sft_weight: f32 = 0.0,
    ignore_index: i32 = -100,
) requires beta > 0.0 {
    let chosen_logps = seq_logps(chosen_logits, chosen_labels, ignore_index);
    let rejected_logps = seq_logps(rejected_logits, rejected_labels, ignore_index);
    let r = sigmoid(
        chosen_logps: chosen_logps,
        rejected_logps: rejected_logps,
        ref_chosen_logps: ref_chosen_logps,
        ref_rejected_logps: ref_rejected_logps,
        beta: beta,
    );
    let b = bco_pair(
        chosen_logps: chosen_logps,
        rejected_logps: rejected_logps,
        ref_chosen_logps: ref_chosen_logps,
        ref_rejected_logps: ref_rejected_logps,
        beta: beta,
    );
    let tokens = sum(f32(chosen_labels != ignore_index), B, T);
    let nll = -sum(chosen_logps, B) / tokens;
    loss sigmoid_weight * r.loss + bco_pair_weight * b.loss + sft_weight * nll;
    metric ..r.metric;
}

/// DPO (`sigmoid`) from the last hidden states of a concatenated batch (TRL's
/// `concatenated_forward`: the B chosen sequences, then the B rejected ones, N = 2B) and the LM
/// head (`lm_head` is `nn.Linear(H, V).weight`, `lm_head_bias` its bias): `sigmoid` on the halves
/// of `seq_logps(hidden @ lm_head, labels)`, with gradients for `hidden`, `lm_head` and the bias.
/// The `[N, T, V]` logits and their gradient never exist whole (the plan slices them over V).
/// Any loss of this module on per-sequence log-probabilities is written the same way.
objective sigmoid_from_hidden(
    hidden: f32[N, T, H],
    labels: i32[N, T],
    lm_head: f32[V, H],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    lm_head_bias: f32[V]?,
    beta: f32 = 0.1,
    ignore_index: i32 = -100,
) requires beta > 0.0, S == 2 {
    let logits = head_logits(hidden, lm_head, lm_head_bias);
    let pairs = seq_logps(logits, labels, ignore_index)[N -> (S, B)];
    let r = sigmoid(
        chosen_logps: pairs[S: 0],
        rejected_logps: pairs[S: 1],
        ref_chosen_logps: ref_chosen_logps,
        ref_rejected_logps: ref_rejected_logps,
        beta: beta,
    );
    loss r.loss;
    metric ..r.metric;
}

test "sigmoid_from_hidden with an identity head is sigmoid_from_logits on the hidden states" {
    // The V0 case below, chosen and rejected rows concatenated, lm_head = I: loss log 2.
    let r = sigmoid_from_hidden(
        hidden: [
            [[0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 0.5, -1.0], [0.2, 0.2, 0.2, 1.0]],
            [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
        ],
        labels: [[-100, 1, 3], [-100, -100, -100]],
        lm_head: [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ],
        ref_chosen_logps: [-1.3487402175623866],
        ref_rejected_logps: [0.0],
    );
    expect_close(r.loss, 0.6931471805599453, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    gradcheck sigmoid_from_hidden(N: 4, B: 2, T: 3, H: 4, V: 5);
}

test "sigmoid_from_logits sums research V0's token log-probs" {
    // V0: shifted targets [2, 1, 3], the first position masked: s = -1.3487402176. With the
    // reference equal to s and an empty rejected completion, both log-ratios are 0: loss log 2.
    let r = sigmoid_from_logits(
        chosen_logits: [[[0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 0.5, -1.0], [0.2, 0.2, 0.2, 1.0]]],
        chosen_labels: [[-100, 1, 3]],
        rejected_logits: [[[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]],
        rejected_labels: [[-100, -100, -100]],
        ref_chosen_logps: [-1.3487402175623866],
        ref_rejected_logps: [0.0],
    );
    expect_close(r.loss, 0.6931471805599453, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    gradcheck sigmoid_from_logits(B: 2, T: 3, V: 5);
}

test "weighted_from_logits with MPO's weights is TRL 1.16's sigmoid + bco_pair + sft" {
    // TRL 1.16's loss loop for loss_type=["sigmoid", "bco_pair", "sft"], loss_weights=[0.8,
    // 0.2, 1.0], transcribed in torch (f64) on the WPO test's pairs.
    let r = weighted_from_logits(
        chosen_logits: [
            [[0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 0.5, -1.0], [0.2, 0.2, 0.2, 1.0]],
            [[0.5, -0.5, 1.5, 0.0], [2.0, 0.0, -1.0, 0.3], [0.1, 0.9, -0.4, 0.6]],
        ],
        chosen_labels: [[-100, 1, 3], [0, 2, -100]],
        rejected_logits: [
            [[1.0, 0.0, -1.0, 0.5], [0.3, 0.3, 1.2, -0.2], [0.0, 2.0, 1.0, 0.0]],
            [[-0.5, 0.5, 0.0, 1.0], [1.0, 1.0, 0.0, -2.0], [0.4, -0.3, 0.8, 0.1]],
        ],
        rejected_labels: [[2, 0, 1], [-100, 3, 0]],
        ref_chosen_logps: [-3.0, -2.5],
        ref_rejected_logps: [-4.0, -3.5],
        sigmoid_weight: 0.8,
        bco_pair_weight: 0.2,
        sft_weight: 1.0,
    );
    expect_close(r.loss, 2.3422733599489955, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.chosen_logits,
        [
            [
                [0.0, 0.0, 0.0, 0.0],
                [
                    0.061004047126369705, -0.10626087207149422, 0.0370008249486976,
                    0.008255999996426913,
                ],
                [
                    0.05206868888041787, 0.05206868888041787, 0.05206868888041787,
                    -0.1562060666412536,
                ],
            ],
            [
                [
                    -0.21737955110444948, 0.02165614389517441, 0.16001846212795826,
                    0.03570494508131678,
                ],
                [
                    0.2019636400497721, 0.027332806429633205, -0.26619187597421573,
                    0.03689542949481038,
                ],
                [0.0, 0.0, 0.0, 0.0],
            ],
        ],
        rtol: 1e-5,
        atol: 1e-8,
    );
    expect_close(
        r.grad.rejected_logits,
        [
            [
                [
                    -0.0105620986526037, -0.0038855789499174934, 0.02085391426623483,
                    -0.006406236663713639,
                ],
                [
                    0.017884848849522166, -0.004398490029435829, -0.010818539760793187,
                    -0.002667819059293154,
                ],
                [
                    -0.0018404821119717611, 0.00868391330452029, -0.005002949080576764,
                    -0.0018404821119717611,
                ],
            ],
            [
                [0.0, 0.0, 0.0, 0.0],
                [
                    -0.010438262737804849, -0.010438262737804849, -0.003840022262784337,
                    0.024716547738394035,
                ],
                [
                    0.018469090524775918, -0.003360466103450861, -0.010095398092610735,
                    -0.005013226328714318,
                ],
            ],
        ],
        rtol: 1e-5,
        atol: 1e-8,
    );
    gradcheck weighted_from_logits(B: 2, T: 3, V: 4, bco_pair_weight: 0.5, sft_weight: 0.5);
}

test "sigmoid_from_logits with ld_alpha is TRL's LD-DPO" {
    // TRL 1.16's ld_alpha lines transcribed in torch (f64) on the WPO test's pairs: completions
    // of lengths 2/3 and 2/2, ld_alpha = 0.5.
    let r = sigmoid_from_logits(
        chosen_logits: [
            [[0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 0.5, -1.0], [0.2, 0.2, 0.2, 1.0]],
            [[0.5, -0.5, 1.5, 0.0], [2.0, 0.0, -1.0, 0.3], [0.1, 0.9, -0.4, 0.6]],
        ],
        chosen_labels: [[-100, 1, 3], [0, 2, -100]],
        rejected_logits: [
            [[1.0, 0.0, -1.0, 0.5], [0.3, 0.3, 1.2, -0.2], [0.0, 2.0, 1.0, 0.0]],
            [[-0.5, 0.5, 0.0, 1.0], [1.0, 1.0, 0.0, -2.0], [0.4, -0.3, 0.8, 0.1]],
        ],
        rejected_labels: [[2, 0, 1], [-100, 3, 0]],
        ref_chosen_logps: [-3.0, -2.5],
        ref_rejected_logps: [-4.0, -3.5],
        ld_alpha: 0.5,
    );
    expect_close(r.loss, 0.6564481153374302, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.chosen_logits,
        [
            [
                [0.0, 0.0, 0.0, 0.0],
                [
                    0.004972467657278242, -0.008661372064629592, 0.003015954088568705,
                    6.729503187826468e-4,
                ],
                [
                    0.004244142538255372, 0.004244142538255372, 0.004244142538255372,
                    -0.012732427614766118,
                ],
            ],
            [
                [
                    -0.020321733067089152, 0.002024525183092066, 0.014959330151565123,
                    0.003337877732431961,
                ],
                [
                    0.01888057621563989, 0.0025552081298140777, -0.024884954544673307,
                    0.003449170199219339,
                ],
                [0.0, 0.0, 0.0, 0.0],
            ],
        ],
        rtol: 1e-5,
        atol: 1e-8,
    );
    expect_close(
        r.grad.rejected_logits,
        [
            [
                [
                    -0.01051214080473166, -0.0038672004847601993, 0.020755276986777843,
                    -0.006375935697285987,
                ],
                [
                    0.017800255002463315, -0.004377685537546041, -0.010767368967815024,
                    -0.0026552004971022542,
                ],
                [
                    -9.158883923540924e-4, 0.004321419558540884, -0.0024896427738326974,
                    -9.158883923540924e-4,
                ],
            ],
            [
                [0.0, 0.0, 0.0, 0.0],
                [
                    -0.01068177227158888, -0.01068177227158888, -0.003929604413992725,
                    0.02529314895717049,
                ],
                [
                    0.018899947625815806, -0.0034388609048371746, -0.010330909091389527,
                    -0.005130177629589102,
                ],
            ],
        ],
        rtol: 1e-5,
        atol: 1e-8,
    );
}

test "sigmoid_from_logits with use_weighting is TRL's WPO" {
    // TRL 1.16's use_weighting lines transcribed in torch (f64), on two pairs with ignored
    // tokens in both completions; weights 1.4214·0.5405 and 0.1846·0.2285.
    let r = sigmoid_from_logits(
        chosen_logits: [
            [[0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 0.5, -1.0], [0.2, 0.2, 0.2, 1.0]],
            [[0.5, -0.5, 1.5, 0.0], [2.0, 0.0, -1.0, 0.3], [0.1, 0.9, -0.4, 0.6]],
        ],
        chosen_labels: [[-100, 1, 3], [0, 2, -100]],
        rejected_logits: [
            [[1.0, 0.0, -1.0, 0.5], [0.3, 0.3, 1.2, -0.2], [0.0, 2.0, 1.0, 0.0]],
            [[-0.5, 0.5, 0.0, 1.0], [1.0, 1.0, 0.0, -2.0], [0.4, -0.3, 0.8, 0.1]],
        ],
        rejected_labels: [[2, 0, 1], [-100, 3, 0]],
        ref_chosen_logps: [-3.0, -2.5],
        ref_rejected_logps: [-4.0, -3.5],
        use_weighting: true,
    );
    expect_close(r.loss, 0.2363273315890505, 1e-6);
    expect_close(
        r.grad.chosen_logits,
        [
            [
                [0.0, 0.0, 0.0, 0.0],
                [
                    0.003767738651516204, -0.0065628956390095935, 0.002285249009928911,
                    5.099079775644786e-4,
                ],
                [
                    0.003215872075210577, 0.003215872075210577, 0.003215872075210577,
                    -0.009647616225631732,
                ],
            ],
            [
                [
                    -8.574282171818038e-4, 8.542012694722104e-5, 6.311741099907941e-4,
                    1.4083398024378852e-4,
                ],
                [
                    7.966219588898538e-4, 1.078110584388636e-4, -0.0010499627241165087,
                    1.4552970678779117e-4,
                ],
                [0.0, 0.0, 0.0, 0.0],
            ],
        ],
        1e-6,
    );
    expect_close(
        r.grad.rejected_logits,
        [
            [
                [
                    -0.007965260299319401, -0.0029302555076986966, 0.01572669039114714,
                    -0.004831174584129044,
                ],
                [
                    0.01348761086086897, -0.003317060288939907, -0.008158651806571765,
                    -0.0020118987653573004,
                ],
                [
                    -0.00138797407411853, 0.006548852852285731, -0.003772904704048668,
                    -0.00138797407411853,
                ],
            ],
            [
                [0.0, 0.0, 0.0, 0.0],
                [
                    -4.50692513524014e-4, -4.50692513524014e-4, -1.6580051001536698e-4,
                    0.001067185537063395,
                ],
                [
                    7.974392904450218e-4, -1.450947301116721e-4, -4.3588865845516273e-4,
                    -2.164559018781869e-4,
                ],
            ],
        ],
        1e-6,
    );
    gradcheck sigmoid_from_logits(B: 2, T: 3, V: 5, use_weighting: true);
}
