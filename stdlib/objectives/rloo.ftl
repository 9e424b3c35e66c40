// RLOO's policy loss, as TRL 1.16's `RLOOTrainer._compute_loss` computes it: the clipped
// surrogate on whole-sequence log-probabilities (the REINFORCE leave-one-out advantages come
// from the caller, as TRL computes them from rewards before the loss). Test values: TRL's own
// `_compute_loss` on these inputs (the trainer's state stubbed), f64.

/// `−min(r·A, clip(r, 1 − ε, 1 + ε_high)·A)` averaged over the completions, with
/// `r = exp(Σ_t lp·mask − old_logps)` per completion. Metrics as TRL logs them: `entropy` (masked
/// token mean, 0 without `entropies`), `clip_ratio_low_mean`, `clip_ratio_low_min`,
/// `clip_ratio_high_mean`, `clip_ratio_high_max`, `clip_ratio_region_mean` over completions.
objective rloo(
    per_token_logps: f32[B, T],
    old_logps: const f32[B],
    advantages: const f32[B],
    completion_mask: const i32[B, T],
    entropies: const f32[B, T]?,
    epsilon_high: f32?,
    epsilon: f32 = 0.2,
) requires epsilon >= 0.0 {
    let mask = f32(completion_mask);
    let coef_1 = exp(sum(per_token_logps * mask, T) - old_logps);
    let high_eps = epsilon_high ?? epsilon;
    let coef_2 = clamp(coef_1, 1.0 - epsilon, 1.0 + high_eps);
    loss mean(-min(coef_1 * advantages, coef_2 * advantages), B);
    let low = f32(coef_1 < 1.0 - epsilon) * f32(advantages < 0.0);
    let high = f32(coef_1 > 1.0 + high_eps) * f32(advantages > 0.0);
    metric entropy = sum((entropies ?? zeros(B, T)) * mask, B, T) / max(sum(mask, B, T), 1.0);
    metric clip_ratio_low_mean = mean(low, B);
    metric clip_ratio_low_min = min(low, B);
    metric clip_ratio_high_mean = mean(high, B);
    metric clip_ratio_high_max = max(high, B);
    metric clip_ratio_region_mean = mean(max(low, high), B);
}

test "rloo matches TRL 1.16's RLOOTrainer._compute_loss (clipped both ways)" {
    let r = rloo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_logps: [-3.3, -2.0, -3.6],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
    );
    expect_close(r.loss, -0.23957691769266054, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.27291025102599387, -0.27291025102599387, -0.27291025102599387, 0.0],
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_mean, 0.3333333432674408, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_min, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_mean, 0.3333333432674408, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_max, 1.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_region_mean, 0.6666666865348816, rtol: 1e-6, atol: 1e-7);
    let h = rloo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_logps: [-3.3, -2.0, -3.6],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        epsilon_high: 0.28,
    );
    expect_close(h.loss, -0.24624358435932722, rtol: 1e-6, atol: 1e-7);
}

test "rloo without clipping passes every completion's gradient (TRL 1.16)" {
    let r = rloo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_logps: [-3.3, -2.0, -3.6],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        epsilon: 0.5,
    );
    expect_close(r.loss, -0.27978096087631416, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.27291025102599387, -0.27291025102599387, -0.27291025102599387, 0.0],
            [0.11744801495311893, 0.11744801495311893, 0.11744801495311893, 0.11744801495311893],
            [-0.12431872480343917, -0.12431872480343917, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.clip_ratio_region_mean, 0.0);
    gradcheck rloo(B: 3, T: 4);
}
