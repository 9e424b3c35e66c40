import std.core.logps

// GRPO and the clipped policy losses that followed it, as TRL 1.16's
// `GRPOTrainer._compute_loss` computes them for one gradient-accumulation step on one process
// (`current_gradient_accumulation_steps = steps_per_generation = 1`), with TRL's names: the
// policy's `per_token_logps` (gradients for it), `old_per_token_logps` (absent: the policy's own,
// detached, as TRL when `num_iterations == 1`), `ref_per_token_logps` (for the k3 KL term),
// `advantages` per completion and the 0/1 `completion_mask`. One entry per TRL `loss_type`;
// they differ only in how the per-token loss is averaged; `grpo_from_logits` starts from logits. Test values: TRL 1.16's own
// `_compute_loss` run on these inputs (the trainer's state stubbed), f64, loss and gradient.

/// Σ x over the mask's tokens / their number (at least 1): TRL's `global_masked_mean`.
fn masked_mean(x: f32[B, T], mask: f32[B, T]) -> f32 {
    sum(x * mask, B, T) / max(sum(mask, B, T), 1.0)
}

/// TRL's `log_importance_weights` over [B, T]: the per-token log-ratio, or (GSPO's
/// `sequence` level) each completion's masked mean log-ratio, broadcast over its tokens.
fn log_weights(
    log_ratio: f32[B, T],
    mask: f32[B, T],
    level: enum { token, sequence } = token,
) -> f32[B, T] {
    match level {
        token => log_ratio,
        sequence => sum(log_ratio * mask, T) / max(sum(mask, T), 1.0) + zeros(B, T),
    }
}

/// The k3 KL estimator `e^{ref − lp} − (ref − lp) − 1`, times the importance ratio `coef` when
/// `bias_correction` (TRL's `use_bias_correction_kl`, default True).
fn k3_kl(
    per_token_logps: f32[B, T],
    ref_per_token_logps: f32[B, T],
    coef: f32[B, T],
    bias_correction: bool,
) -> f32[B, T] {
    let d = ref_per_token_logps - per_token_logps;
    (exp(d) - d - 1.0) * where(bias_correction, coef, 1.0)
}

/// A per-sequence metric TRL logs with `global_masked_mean`: over the mask's tokens, or, at the
/// sequence level, over the completions (one value each, constant over T here).
fn level_mean(x: f32[B, T], mask: f32[B, T], level: enum { token, sequence } = token) -> f32 {
    match level {
        token => masked_mean(x, mask),
        sequence => mean(max(x, T), B),
    }
}

/// TRL's `get_high_entropy_mask` for `top_entropy_quantile` < 1: the tokens (of the mask) whose
/// entropy is at least the `1 − top_entropy_quantile` quantile of the masked tokens' entropies
/// (`torch.quantile`: linear interpolation between the sorted values); all tokens when
/// `top_entropy_quantile` is 1, as TRL skips the mask.
fn high_entropy_mask(
    entropies: f32[B, T],
    mask: f32[B, T],
    top_entropy_quantile: f32,
) -> f32[B, T] {
    let valid = sum(mask, B, T);
    // The valid entropies sort first; padding goes last (entropies are never negative).
    let keyed = where(mask > 0.0, entropies, 3.4e38)[(B, T) -> BT];
    let sorted = sort(keyed, BT);
    let position = f64(1.0 - top_entropy_quantile) * f64(max(valid, 1.0) - 1.0);
    let low = i32(floor(position));
    let high = min(low + 1, i32(max(valid, 1.0)) - 1);
    let below = sorted[BT: low];
    let threshold = below + f32(position - f64(low)) * (sorted[BT: high] - below);
    let selected = f32(entropies * mask >= threshold) * mask;
    where(top_entropy_quantile < 1.0 && valid > 0.0, selected, where(valid > 0.0, mask, 0.0))
}

/// TRL's off-policy sequence mask (OPSM, DeepSeek-V3.2; `off_policy_mask_threshold`): a
/// completion is kept when its advantage is non-negative or its mean `sampling − policy`
/// log-prob gap (NaN counted 0) over its tokens is at most the threshold.
fn off_policy_mask(
    advantages: f32[B],
    per_token_logps: f32[B, T],
    sampling_per_token_logps: f32[B, T],
    mask: f32[B, T],
    threshold: f32,
) -> f32[B] {
    let gap = sampling_per_token_logps - detach(per_token_logps);
    let mean_gap = sum(where(gap == gap, gap, 0.0) * mask, T) / max(sum(mask, T), 1.0);
    f32(advantages >= 0.0 || mean_gap <= threshold)
}

/// The clipped surrogate `−min(r·A, clip(r, 1 − ε, 1 + ε_high)·A)` with `r` the importance
/// ratio (per token, or per sequence as GSPO's `importance_sampling_level = sequence`), plus
/// `β · k3-KL` to the reference (times `r` with `use_bias_correction_kl`, TRL's default), averaged
/// as `aggregation` says: `grpo` per sequence then over the batch, `bnpo` over all tokens,
/// `dr_grpo` over B · `max_completion_length`, `dapo` over `num_items_in_batch` (default: the
/// mask's tokens), `luspo` each completion's token sum averaged over the batch.
/// `top_entropy_quantile` < 1 keeps the policy term on the tokens whose entropy reaches the
/// `1 − top_entropy_quantile` quantile of the masked entropies (TRL's `get_high_entropy_mask`);
/// `off_policy_mask_threshold` drops the policy term of completions with a negative advantage
/// whose mean log-prob gap to `sampling_per_token_logps` (default: the old ones) exceeds it. `delta` (two-sided clipping) caps `r` before the min; TRL then computes its
/// clip metrics from the capped ratio, reproduced. Metrics as TRL logs them, with identifier
/// names (`clip_ratio/low_mean` → `clip_ratio_low_mean`); `kl` is 0 without a reference and
/// `entropy` 0 without `entropies` (TRL always has both; its `kl` only when β ≠ 0). The per-row
/// min/max clip metrics skip rows without tokens (TRL's nanmin/nanmax; all rows empty gives 1/0
/// here, NaN there).
objective clipped(
    per_token_logps: f32[B, T],
    advantages: const f32[B],
    completion_mask: const i32[B, T],
    old_per_token_logps: const f32[B, T]?,
    ref_per_token_logps: const f32[B, T]?,
    entropies: const f32[B, T]?,
    num_items_in_batch: f32?,
    epsilon_high: f32?,
    delta: f32?,
    beta: f32 = 0.0,
    epsilon: f32 = 0.2,
    max_completion_length: i32 = 256,
    importance_sampling_level: enum { token, sequence } = token,
    use_bias_correction_kl: static bool = true,
    aggregation: enum { grpo, bnpo, dr_grpo, dapo, luspo } = grpo,
    off_policy_mask_threshold: f32?,
    sampling_per_token_logps: const f32[B, T]?,
    importance_sampling_ratio: const f32[B, T]?,
    top_entropy_quantile: f32 = 1.0,
) requires epsilon >= 0.0, beta >= 0.0, max_completion_length > 0,
    0.0 <= top_entropy_quantile <= 1.0 {
    let mask = f32(completion_mask);
    let log_ratio = per_token_logps - (old_per_token_logps ?? detach(per_token_logps));
    let tokens = sum(mask, T);
    let weights = log_weights(log_ratio, mask, importance_sampling_level);
    let coef_1 = exp(weights);
    let high_eps = epsilon_high ?? epsilon;
    let coef_2 = clamp(coef_1, 1.0 - epsilon, 1.0 + high_eps);
    let capped = if present(delta) { clamp(coef_1, max: delta) } else { coef_1 };
    let kl = if present(ref_per_token_logps) {
        k3_kl(per_token_logps, ref_per_token_logps, coef_1, use_bias_correction_kl)
    } else {
        zeros(B, T)
    };
    // TRL masks the policy term (not the KL) to the high-entropy tokens.
    let entropy_mask = high_entropy_mask(entropies ?? zeros(B, T), mask, top_entropy_quantile);
    let policy = -min(capped * advantages, coef_2 * advantages);
    let kept = if present(off_policy_mask_threshold) {
        let old = old_per_token_logps ?? detach(per_token_logps);
        policy * off_policy_mask(
            advantages,
            per_token_logps,
            sampling_per_token_logps ?? old,
            mask,
            off_policy_mask_threshold,
        )
    } else {
        policy
    };
    let masked = where(top_entropy_quantile < 1.0, kept * entropy_mask, kept);
    // vLLM's importance-sampling correction (TRL multiplies the policy term by the given ratio).
    let per_token = masked * (importance_sampling_ratio ?? 1.0 + zeros(B, T))
        + where(beta != 0.0, beta * kl, 0.0);
    let total = sum(per_token * mask, B, T);
    loss match aggregation {
        grpo => mean(sum(per_token * mask, T) / max(tokens, 1.0), B),
        bnpo => total / max(sum(mask, B, T), 1.0),
        dr_grpo => total / (f32(B) * f32(max_completion_length)),
        dapo => total / max(num_items_in_batch ?? sum(mask, B, T), 1.0),
        luspo => mean(sum(per_token * mask, T), B),
    };
    let low = f32(capped < 1.0 - epsilon) * f32(advantages < 0.0);
    let high = f32(capped > 1.0 + high_eps) * f32(advantages > 0.0);
    let region = max(low, high);
    metric kl = masked_mean(kl, mask);
    metric entropy = masked_mean(entropies ?? zeros(B, T), mask);
    metric clip_ratio_low_mean = level_mean(low, mask, importance_sampling_level);
    metric clip_ratio_high_mean = level_mean(high, mask, importance_sampling_level);
    metric clip_ratio_region_mean = level_mean(region, mask, importance_sampling_level);
    metric clip_ratio_low_min = match importance_sampling_level {
        token => min(where(tokens > 0.0, sum(low * mask, T) / max(tokens, 1.0), 1.0), B),
        sequence => min(max(low, T), B),
    };
    metric clip_ratio_high_max = match importance_sampling_level {
        token => max(where(tokens > 0.0, sum(high * mask, T) / max(tokens, 1.0), 0.0), B),
        sequence => max(max(high, T), B),
    };
}

/// TRL `loss_type="grpo"`: each completion's token mean, averaged over the batch (the
/// original GRPO normalization, which favours short completions' tokens).
objective grpo(
    per_token_logps: f32[B, T],
    advantages: const f32[B],
    completion_mask: const i32[B, T],
    old_per_token_logps: const f32[B, T]?,
    ref_per_token_logps: const f32[B, T]?,
    entropies: const f32[B, T]?,
    epsilon_high: f32?,
    delta: f32?,
    beta: f32 = 0.0,
    epsilon: f32 = 0.2,
    importance_sampling_level: enum { token, sequence } = token,
    off_policy_mask_threshold: f32?,
    sampling_per_token_logps: const f32[B, T]?,
    importance_sampling_ratio: const f32[B, T]?,
    top_entropy_quantile: f32 = 1.0,
    use_bias_correction_kl: static bool = true,
) {
    let r = clipped(
        per_token_logps: per_token_logps,
        advantages: advantages,
        completion_mask: completion_mask,
        old_per_token_logps: old_per_token_logps,
        ref_per_token_logps: ref_per_token_logps,
        entropies: entropies,
        epsilon_high: epsilon_high,
        delta: delta,
        beta: beta,
        epsilon: epsilon,
        importance_sampling_level: importance_sampling_level,
        use_bias_correction_kl: use_bias_correction_kl,
        top_entropy_quantile: top_entropy_quantile,
        off_policy_mask_threshold: off_policy_mask_threshold,
        sampling_per_token_logps: sampling_per_token_logps,
        importance_sampling_ratio: importance_sampling_ratio,
        aggregation: grpo,
    );
    loss r.loss;
    metric ..r.metric;
}

/// TRL `loss_type="bnpo"`: the mean over every completion token of the batch.
objective bnpo(
    per_token_logps: f32[B, T],
    advantages: const f32[B],
    completion_mask: const i32[B, T],
    old_per_token_logps: const f32[B, T]?,
    ref_per_token_logps: const f32[B, T]?,
    entropies: const f32[B, T]?,
    epsilon_high: f32?,
    delta: f32?,
    beta: f32 = 0.0,
    epsilon: f32 = 0.2,
    importance_sampling_level: enum { token, sequence } = token,
    off_policy_mask_threshold: f32?,
    sampling_per_token_logps: const f32[B, T]?,
    importance_sampling_ratio: const f32[B, T]?,
    top_entropy_quantile: f32 = 1.0,
    use_bias_correction_kl: static bool = true,
) {
    let r = clipped(
        per_token_logps: per_token_logps,
        advantages: advantages,
        completion_mask: completion_mask,
        old_per_token_logps: old_per_token_logps,
        ref_per_token_logps: ref_per_token_logps,
        entropies: entropies,
        epsilon_high: epsilon_high,
        delta: delta,
        beta: beta,
        epsilon: epsilon,
        importance_sampling_level: importance_sampling_level,
        use_bias_correction_kl: use_bias_correction_kl,
        top_entropy_quantile: top_entropy_quantile,
        off_policy_mask_threshold: off_policy_mask_threshold,
        sampling_per_token_logps: sampling_per_token_logps,
        importance_sampling_ratio: importance_sampling_ratio,
        aggregation: bnpo,
    );
    loss r.loss;
    metric ..r.metric;
}

/// TRL `loss_type="dr_grpo"` (Dr. GRPO): the token sum over B · `max_completion_length`, a
/// constant, so no length bias.
objective dr_grpo(
    per_token_logps: f32[B, T],
    advantages: const f32[B],
    completion_mask: const i32[B, T],
    old_per_token_logps: const f32[B, T]?,
    ref_per_token_logps: const f32[B, T]?,
    entropies: const f32[B, T]?,
    max_completion_length: i32 = 256,
    epsilon_high: f32?,
    delta: f32?,
    beta: f32 = 0.0,
    epsilon: f32 = 0.2,
    importance_sampling_level: enum { token, sequence } = token,
    off_policy_mask_threshold: f32?,
    sampling_per_token_logps: const f32[B, T]?,
    importance_sampling_ratio: const f32[B, T]?,
    top_entropy_quantile: f32 = 1.0,
    use_bias_correction_kl: static bool = true,
) {
    let r = clipped(
        per_token_logps: per_token_logps,
        advantages: advantages,
        completion_mask: completion_mask,
        old_per_token_logps: old_per_token_logps,
        ref_per_token_logps: ref_per_token_logps,
        entropies: entropies,
        max_completion_length: max_completion_length,
        epsilon_high: epsilon_high,
        delta: delta,
        beta: beta,
        epsilon: epsilon,
        importance_sampling_level: importance_sampling_level,
        use_bias_correction_kl: use_bias_correction_kl,
        top_entropy_quantile: top_entropy_quantile,
        off_policy_mask_threshold: off_policy_mask_threshold,
        sampling_per_token_logps: sampling_per_token_logps,
        importance_sampling_ratio: importance_sampling_ratio,
        aggregation: dr_grpo,
    );
    loss r.loss;
    metric ..r.metric;
}

/// TRL `loss_type="dapo"` (DAPO, TRL's default since 0.2x): the token sum over
/// `num_items_in_batch` (the generation batch's completion tokens; default: this batch's), usually
/// with a larger `epsilon_high` (clip-higher).
objective dapo(
    per_token_logps: f32[B, T],
    advantages: const f32[B],
    completion_mask: const i32[B, T],
    old_per_token_logps: const f32[B, T]?,
    ref_per_token_logps: const f32[B, T]?,
    entropies: const f32[B, T]?,
    num_items_in_batch: f32?,
    epsilon_high: f32?,
    delta: f32?,
    beta: f32 = 0.0,
    epsilon: f32 = 0.2,
    importance_sampling_level: enum { token, sequence } = token,
    off_policy_mask_threshold: f32?,
    sampling_per_token_logps: const f32[B, T]?,
    importance_sampling_ratio: const f32[B, T]?,
    top_entropy_quantile: f32 = 1.0,
    use_bias_correction_kl: static bool = true,
) {
    let r = clipped(
        per_token_logps: per_token_logps,
        advantages: advantages,
        completion_mask: completion_mask,
        old_per_token_logps: old_per_token_logps,
        ref_per_token_logps: ref_per_token_logps,
        entropies: entropies,
        num_items_in_batch: num_items_in_batch,
        epsilon_high: epsilon_high,
        delta: delta,
        beta: beta,
        epsilon: epsilon,
        importance_sampling_level: importance_sampling_level,
        use_bias_correction_kl: use_bias_correction_kl,
        top_entropy_quantile: top_entropy_quantile,
        off_policy_mask_threshold: off_policy_mask_threshold,
        sampling_per_token_logps: sampling_per_token_logps,
        importance_sampling_ratio: importance_sampling_ratio,
        aggregation: dapo,
    );
    loss r.loss;
    metric ..r.metric;
}

/// TRL `loss_type="luspo"`: the clipped surrogate, each completion's token sum averaged over the
/// batch (meant for the `sequence` level, where the sum is length · the sequence's loss).
objective luspo(
    per_token_logps: f32[B, T],
    advantages: const f32[B],
    completion_mask: const i32[B, T],
    old_per_token_logps: const f32[B, T]?,
    ref_per_token_logps: const f32[B, T]?,
    entropies: const f32[B, T]?,
    epsilon_high: f32?,
    delta: f32?,
    beta: f32 = 0.0,
    epsilon: f32 = 0.2,
    importance_sampling_level: enum { token, sequence } = token,
    off_policy_mask_threshold: f32?,
    sampling_per_token_logps: const f32[B, T]?,
    importance_sampling_ratio: const f32[B, T]?,
    top_entropy_quantile: f32 = 1.0,
    use_bias_correction_kl: static bool = true,
) {
    let r = clipped(
        per_token_logps: per_token_logps,
        advantages: advantages,
        completion_mask: completion_mask,
        old_per_token_logps: old_per_token_logps,
        ref_per_token_logps: ref_per_token_logps,
        entropies: entropies,
        epsilon_high: epsilon_high,
        delta: delta,
        beta: beta,
        epsilon: epsilon,
        importance_sampling_level: importance_sampling_level,
        use_bias_correction_kl: use_bias_correction_kl,
        top_entropy_quantile: top_entropy_quantile,
        off_policy_mask_threshold: off_policy_mask_threshold,
        sampling_per_token_logps: sampling_per_token_logps,
        importance_sampling_ratio: importance_sampling_ratio,
        aggregation: luspo,
    );
    loss r.loss;
    metric ..r.metric;
}

/// TRL `loss_type="cispo"` (MiniMax-M1's CISPO): `−sg(min(r, ε_high))·A·log π` per token (the
/// clipped ratio is a detached weight, so every token keeps a gradient), plus β·KL, summed over
/// `num_items_in_batch` (default: the mask's tokens). `epsilon_high` defaults to `epsilon`, as in
/// TRL. Metric `cispo_clip_ratio`: tokens with `r > ε_high` and a positive advantage.
objective cispo(
    per_token_logps: f32[B, T],
    advantages: const f32[B],
    completion_mask: const i32[B, T],
    old_per_token_logps: const f32[B, T]?,
    ref_per_token_logps: const f32[B, T]?,
    entropies: const f32[B, T]?,
    importance_sampling_ratio: const f32[B, T]?,
    num_items_in_batch: f32?,
    epsilon_high: f32?,
    beta: f32 = 0.0,
    epsilon: f32 = 0.2,
    importance_sampling_level: enum { token, sequence } = token,
    use_bias_correction_kl: static bool = true,
) requires beta >= 0.0 {
    let mask = f32(completion_mask);
    let log_ratio = per_token_logps - (old_per_token_logps ?? detach(per_token_logps));
    let coef_1 = exp(log_weights(log_ratio, mask, importance_sampling_level));
    let high_eps = epsilon_high ?? epsilon;
    let kl = if present(ref_per_token_logps) {
        k3_kl(per_token_logps, ref_per_token_logps, coef_1, use_bias_correction_kl)
    } else {
        zeros(B, T)
    };
    let per_token = -detach(clamp(coef_1, max: high_eps)) * advantages * per_token_logps
        * (importance_sampling_ratio ?? 1.0 + zeros(B, T))
        + where(beta != 0.0, beta * kl, 0.0);
    loss sum(per_token * mask, B, T) / max(num_items_in_batch ?? sum(mask, B, T), 1.0);
    metric kl = masked_mean(kl, mask);
    metric entropy = masked_mean(entropies ?? zeros(B, T), mask);
    let clipped_up = f32(coef_1 > high_eps) * f32(advantages > 0.0);
    metric cispo_clip_ratio = level_mean(clipped_up, mask, importance_sampling_level);
}

/// TRL `loss_type="sapo"` (soft adaptive policy optimization): the hard clip replaced by a soft
/// gate `σ(τ(r − 1))·4/τ`, τ = `sapo_temperature_pos` for positive advantages, else
/// `sapo_temperature_neg`; per-sequence token means averaged over the batch, as `grpo`.
objective sapo(
    per_token_logps: f32[B, T],
    advantages: const f32[B],
    completion_mask: const i32[B, T],
    old_per_token_logps: const f32[B, T]?,
    ref_per_token_logps: const f32[B, T]?,
    entropies: const f32[B, T]?,
    importance_sampling_ratio: const f32[B, T]?,
    beta: f32 = 0.0,
    sapo_temperature_pos: f32 = 1.0,
    sapo_temperature_neg: f32 = 1.05,
    importance_sampling_level: enum { token, sequence } = token,
    use_bias_correction_kl: static bool = true,
) requires beta >= 0.0, sapo_temperature_pos > 0.0, sapo_temperature_neg > 0.0 {
    let mask = f32(completion_mask);
    let log_ratio = per_token_logps - (old_per_token_logps ?? detach(per_token_logps));
    let coef_1 = exp(log_weights(log_ratio, mask, importance_sampling_level));
    let kl = if present(ref_per_token_logps) {
        k3_kl(per_token_logps, ref_per_token_logps, coef_1, use_bias_correction_kl)
    } else {
        zeros(B, T)
    };
    let tau = where(advantages > 0.0, sapo_temperature_pos, sapo_temperature_neg);
    let per_token = -(sigmoid(tau * (coef_1 - 1.0)) * 4.0 / tau) * advantages
        * (importance_sampling_ratio ?? 1.0 + zeros(B, T))
        + where(beta != 0.0, beta * kl, 0.0);
    loss mean(sum(per_token * mask, T) / max(sum(mask, T), 1.0), B);
    metric kl = masked_mean(kl, mask);
    metric entropy = masked_mean(entropies ?? zeros(B, T), mask);
}

/// GRPO from the policy's logits (`f32[B, T, V]` at the completion positions, `completion_ids`
/// aligned with them), as TRL's trainer gets its inputs: per-token log-probs and entropies of
/// `logits / temperature` (TRL's `selective_log_softmax` and `entropy_from_logits`; the entropies
/// feed the metric and, with `entropy_coef`, TRL's entropy bonus), then the `loss_type`'s loss
/// (TRL's default `dapo`). Fused: the log-prob
/// and entropy reductions over V are row passes, so no `[B, T, V]` temporary is made besides the
/// logits' gradient.
objective grpo_from_logits(
    logits: f32[B, T, V],
    completion_ids: const i32[B, T],
    advantages: const f32[B],
    completion_mask: const i32[B, T],
    old_per_token_logps: const f32[B, T]?,
    ref_per_token_logps: const f32[B, T]?,
    num_items_in_batch: f32?,
    epsilon_high: f32?,
    delta: f32?,
    beta: f32 = 0.0,
    epsilon: f32 = 0.2,
    temperature: f32 = 1.0,
    entropy_coef: f32 = 0.0,
    use_entropy_bonus: static bool = false,
    max_completion_length: i32 = 256,
    importance_sampling_level: enum { token, sequence } = token,
    off_policy_mask_threshold: f32?,
    sampling_per_token_logps: const f32[B, T]?,
    importance_sampling_ratio: const f32[B, T]?,
    top_entropy_quantile: f32 = 1.0,
    use_bias_correction_kl: static bool = true,
    loss_type: enum { grpo, bnpo, dr_grpo, dapo, luspo } = dapo,
) requires temperature > 0.0 {
    let scaled = logits / temperature;
    // log p = z[id] − lse(z) and H = lse(z) − Σ softmax(z)·z: two row reductions over V, so
    // neither log_softmax nor softmax is materialized.
    let lse = logsumexp(scaled, V);
    let entropy = lse - sum(exp(scaled - lse) * scaled, V);
    let r = clipped(
        per_token_logps: scaled[V: completion_ids] - lse,
        advantages: advantages,
        completion_mask: completion_mask,
        old_per_token_logps: old_per_token_logps,
        ref_per_token_logps: ref_per_token_logps,
        entropies: detach(entropy),
        num_items_in_batch: num_items_in_batch,
        epsilon_high: epsilon_high,
        delta: delta,
        beta: beta,
        epsilon: epsilon,
        max_completion_length: max_completion_length,
        importance_sampling_level: importance_sampling_level,
        use_bias_correction_kl: use_bias_correction_kl,
        top_entropy_quantile: top_entropy_quantile,
        off_policy_mask_threshold: off_policy_mask_threshold,
        sampling_per_token_logps: sampling_per_token_logps,
        importance_sampling_ratio: importance_sampling_ratio,
        aggregation: loss_type,
    );
    // TRL's entropy bonus (a fixed `entropy_coef`; `use_entropy_bonus` compiles it in, since its
    // gradient costs one more pass over the logits): minus the coefficient times the mean
    // entropy over the tokens the policy term uses, differentiated.
    let mask = f32(completion_mask);
    let used = where(
        top_entropy_quantile < 1.0,
        mask * high_entropy_mask(detach(entropy), mask, top_entropy_quantile),
        mask,
    );
    let bonus = sum(entropy * used, B, T) / max(sum(used, B, T), 1.0);
    loss if use_entropy_bonus { r.loss - entropy_coef * bonus } else { r.loss };
    metric ..r.metric;
}

/// `grpo_from_logits` from the last hidden states of the completions and the LM head (`lm_head`
/// is `nn.Linear(H, V).weight`, `lm_head_bias` its bias): the same loss, options and metrics on
/// `hidden @ lm_head`, with gradients for `hidden`, `lm_head` and the bias; the `[B, T, V]`
/// logits and their gradient never exist whole (the plan slices them over V).
objective grpo_from_hidden(
    hidden: f32[B, T, H],
    lm_head: f32[V, H],
    completion_ids: const i32[B, T],
    advantages: const f32[B],
    completion_mask: const i32[B, T],
    lm_head_bias: f32[V]?,
    old_per_token_logps: const f32[B, T]?,
    ref_per_token_logps: const f32[B, T]?,
    num_items_in_batch: f32?,
    epsilon_high: f32?,
    delta: f32?,
    beta: f32 = 0.0,
    epsilon: f32 = 0.2,
    temperature: f32 = 1.0,
    entropy_coef: f32 = 0.0,
    use_entropy_bonus: static bool = false,
    max_completion_length: i32 = 256,
    importance_sampling_level: enum { token, sequence } = token,
    off_policy_mask_threshold: f32?,
    sampling_per_token_logps: const f32[B, T]?,
    importance_sampling_ratio: const f32[B, T]?,
    top_entropy_quantile: f32 = 1.0,
    use_bias_correction_kl: static bool = true,
    loss_type: enum { grpo, bnpo, dr_grpo, dapo, luspo } = dapo,
) requires temperature > 0.0 {
    let r = grpo_from_logits(
        logits: head_logits(hidden, lm_head, lm_head_bias),
        completion_ids: completion_ids,
        advantages: advantages,
        completion_mask: completion_mask,
        old_per_token_logps: old_per_token_logps,
        ref_per_token_logps: ref_per_token_logps,
        num_items_in_batch: num_items_in_batch,
        epsilon_high: epsilon_high,
        delta: delta,
        beta: beta,
        epsilon: epsilon,
        temperature: temperature,
        entropy_coef: entropy_coef,
        use_entropy_bonus: use_entropy_bonus,
        max_completion_length: max_completion_length,
        importance_sampling_level: importance_sampling_level,
        off_policy_mask_threshold: off_policy_mask_threshold,
        sampling_per_token_logps: sampling_per_token_logps,
        importance_sampling_ratio: importance_sampling_ratio,
        top_entropy_quantile: top_entropy_quantile,
        use_bias_correction_kl: use_bias_correction_kl,
        loss_type: loss_type,
    );
    loss r.loss;
    metric ..r.metric;
}

/// TRL `loss_type="vespo"` (VESPO): `−φ(w)·A·log π` per token, with `w` the sequence's
/// importance ratio `exp(clamp(Σ_t clamp(lr, ±20)·mask, log 1e-8, 20))` (times the optional
/// vLLM `importance_sampling_ratio`, as TRL) and the detached Gamma weight
/// `φ(w) = exp(λ + k·log w − λ·w)` (`k`, `λ` by the advantage's sign; `λ ≥ 1e-4`; non-finite → 0),
/// plus β·KL, summed over `num_items_in_batch` (default: the mask's tokens). Metric
/// `vespo_phi_seq_mean` (TRL's `vespo/phi_seq_mean`, over completions).
objective vespo(
    per_token_logps: f32[B, T],
    advantages: const f32[B],
    completion_mask: const i32[B, T],
    old_per_token_logps: const f32[B, T]?,
    ref_per_token_logps: const f32[B, T]?,
    entropies: const f32[B, T]?,
    importance_sampling_ratio: const f32[B, T]?,
    num_items_in_batch: f32?,
    beta: f32 = 0.0,
    vespo_k_pos: f32 = 2.0,
    vespo_lambda_pos: f32 = 3.0,
    vespo_k_neg: f32 = 3.0,
    vespo_lambda_neg: f32 = 2.0,
    use_bias_correction_kl: static bool = true,
) requires beta >= 0.0 {
    let mask = f32(completion_mask);
    let log_ratio = per_token_logps - (old_per_token_logps ?? detach(per_token_logps));
    let floor_log = -18.420680743952367;
    let is_log = if present(importance_sampling_ratio) {
        sum(clamp(log(importance_sampling_ratio), floor_log, 20.0), T)
    } else {
        zeros(B)
    };
    let log_w = detach(
        clamp(sum(clamp(log_ratio, -20.0, 20.0) * mask, T) + is_log, floor_log, 20.0),
    );
    let nonneg = advantages >= 0.0;
    let k = where(nonneg, vespo_k_pos, vespo_k_neg);
    let lambda = max(where(nonneg, vespo_lambda_pos, vespo_lambda_neg), 1e-4);
    let log_phi = lambda + k * log_w - lambda * exp(log_w);
    let phi = exp(log_phi);
    let phi_seq = detach(where(phi == phi && abs(phi) < 3.4e38, phi, 0.0));
    // The KL's ratio is the per-token one (TRL's coef_1 at the default token level).
    let kl = if present(ref_per_token_logps) {
        k3_kl(per_token_logps, ref_per_token_logps, exp(log_ratio), use_bias_correction_kl)
    } else {
        zeros(B, T)
    };
    let per_token = -phi_seq * advantages * per_token_logps + where(beta != 0.0, beta * kl, 0.0);
    loss sum(per_token * mask, B, T) / max(num_items_in_batch ?? sum(mask, B, T), 1.0);
    metric kl = masked_mean(kl, mask);
    metric entropy = masked_mean(entropies ?? zeros(B, T), mask);
    metric vespo_phi_seq_mean = mean(phi_seq, B);
}

test "grpo: the clipped surrogate, per-sequence means (TRL 1.16 _compute_loss)" {
    let r = grpo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
    );
    expect_close(r.loss, -0.20433376383712518, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.12279676867507196, -0.08231313563130198, -0.1111111111111111, 0.0],
            [0.041666666666666664, 0.062159362401719605, 0.0, 0.041666666666666664],
            [-0.025272110821359724, -0.041666666666666664, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_region_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_min, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_max, 0.0, rtol: 1e-6, atol: 1e-7);
}

test "grpo with beta: k3 KL times the ratio (use_bias_correction_kl) (TRL 1.16 _compute_loss)" {
    let r = grpo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
        ref_per_token_logps: [
            [-0.9, -0.6, -1.8, -0.2],
            [-0.4, -1.0, -0.8, -0.1],
            [-2.2, -0.9, -0.3, -1.0],
        ],
        beta: 0.04,
    );
    expect_close(r.loss, -0.2037441832550284, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.12328795574977225, -0.08198388308877677, -0.11199999999999999, 0.0],
            [0.041999999999999996, 0.06116481260329208, 0.0, 0.041833333333333333],
            [-0.02648517214078499, -0.040333333333333325, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.kl, 0.013074312016268809, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_region_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_min, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_max, 0.0, rtol: 1e-6, atol: 1e-7);
}

test "grpo with beta, without the ratio on the KL (TRL 1.16 _compute_loss)" {
    let r = grpo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
        ref_per_token_logps: [
            [-0.9, -0.6, -1.8, -0.2],
            [-0.4, -1.0, -0.8, -0.1],
            [-2.2, -0.9, -0.3, -1.0],
        ],
        beta: 0.04,
        use_bias_correction_kl: false,
    );
    expect_close(r.loss, -0.2036453299003457, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.12326419497763039, -0.08189019082257291, -0.11209512336960074, 0.0],
            [0.04198387527321347, 0.06142135320785237, 0.0, 0.041829235251664286],
            [-0.02760450287186641, -0.040458205020519875, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.kl, 0.01416336173584508, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_region_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_min, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_max, 0.0, rtol: 1e-6, atol: 1e-7);
}

test "grpo with GSPO's sequence-level ratio (TRL 1.16 _compute_loss)" {
    let r = grpo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
        importance_sampling_level: sequence,
    );
    expect_close(r.loss, -0.21006906026648967, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.10394522055906863, -0.10394522055906863, -0.10394522055906863, 0.0],
            [
                0.041666666666666664, 0.041666666666666664, 0.041666666666666664,
                0.041666666666666664,
            ],
            [-0.0324500326279752, -0.0324500326279752, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_region_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_min, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_max, 0.0, rtol: 1e-6, atol: 1e-7);
}

test "grpo with epsilon_high and two-sided clipping (delta) (TRL 1.16 _compute_loss)" {
    let r = grpo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
        epsilon_high: 0.28,
        delta: 1.2,
    );
    expect_close(r.loss, -0.21315979290551143, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.12279676867507196, -0.08231313563130198, -0.1111111111111111, 0.0],
            [0.041666666666666664, 0.0, 0.0, 0.041666666666666664],
            [-0.025272110821359724, -0.041666666666666664, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_region_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_min, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_max, 0.0, rtol: 1e-6, atol: 1e-7);
}

test "bnpo: the mean over all tokens, with the KL term (TRL 1.16 _compute_loss)" {
    let r = bnpo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
        ref_per_token_logps: [
            [-0.9, -0.6, -1.8, -0.2],
            [-0.4, -1.0, -0.8, -0.1],
            [-2.2, -0.9, -0.3, -1.0],
        ],
        beta: 0.04,
    );
    expect_close(r.loss, -0.12188918917100354, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.12328795574977225, -0.08198388308877677, -0.11199999999999999, 0.0],
            [0.056, 0.08155308347105611, 0.0, 0.05577777777777778],
            [-0.017656781427189995, -0.02688888888888889, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.kl, 0.013074312016268809, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_region_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_min, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_max, 0.0, rtol: 1e-6, atol: 1e-7);
}

test "dr_grpo: over B times max_completion_length (TRL 1.16 _compute_loss)" {
    let r = dr_grpo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
        max_completion_length: 8,
    );
    expect_close(r.loss, -0.04590456061937035, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.046048788253151986, -0.030867425861738244, -0.041666666666666664, 0.0],
            [0.020833333333333332, 0.031079681200859802, 0.0, 0.020833333333333332],
            [-0.006318027705339931, -0.010416666666666666, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_region_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_min, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_max, 0.0, rtol: 1e-6, atol: 1e-7);
}

test "dapo: over the mask's tokens (num_items_in_batch by default) (TRL 1.16 _compute_loss)" {
    let r = dapo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
        epsilon_high: 0.28,
    );
    expect_close(r.loss, -0.12241216165165428, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.12279676867507196, -0.08231313563130198, -0.1111111111111111, 0.0],
            [0.05555555555555555, 0.08287914986895947, 0.0, 0.05555555555555555],
            [-0.016848073880906485, -0.027777777777777776, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_region_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_min, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_max, 0.0, rtol: 1e-6, atol: 1e-7);
}

test "dapo over a given num_items_in_batch (TRL 1.16 _compute_loss)" {
    let r = dapo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
        num_items_in_batch: 20.0,
    );
    expect_close(r.loss, -0.05508547274324442, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.05525854590378239, -0.0370409110340859, -0.05, 0.0],
            [0.025, 0.03729561744103176, 0.0, 0.025],
            [-0.007581633246407918, -0.0125, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_region_mean, 0.1111111119389534, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_min, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_max, 0.0, rtol: 1e-6, atol: 1e-7);
}

test "cispo: the detached clipped ratio weighting log-probs, with the KL term (TRL 1.16 _compute_loss)" {
    let r = cispo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
        ref_per_token_logps: [
            [-0.9, -0.6, -1.8, -0.2],
            [-0.4, -1.0, -0.8, -0.1],
            [-2.2, -0.9, -0.3, -1.0],
        ],
        beta: 0.04,
        epsilon_high: 1.2,
    );
    expect_close(r.loss, 0.3190267138498337, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.12328795574977225, -0.08198388308877677, -0.11199999999999999, 0.0],
            [0.056, 0.06534060026876333, 0.03724000255753552, 0.05577777777777778],
            [-0.017656781427189995, -0.02688888888888889, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.kl, 0.013074312016268809, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.cispo_clip_ratio, 0.0, rtol: 1e-6, atol: 1e-7);
}

test "cispo at the sequence level (TRL 1.16 _compute_loss)" {
    let r = cispo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
        epsilon_high: 1.1,
        importance_sampling_level: sequence,
    );
    expect_close(r.loss, 0.30247945267419846, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.10394522055906863, -0.10394522055906863, -0.10394522055906863, 0.0],
            [0.05555555555555555, 0.05555555555555555, 0.05555555555555555, 0.05555555555555555],
            [-0.021633355085316802, -0.021633355085316802, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.cispo_clip_ratio, 0.0, rtol: 1e-6, atol: 1e-7);
}

test "sapo: the soft gate with TRL's default temperatures (TRL 1.16 _compute_loss)" {
    let r = sapo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
    );
    expect_close(r.loss, -0.47627582721744893, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.12245783230225803, -0.08094611600533558, -0.1111111111111111, 0.0],
            [0.041666666666666664, 0.05819259012225159, 0.027109723605275655, 0.041666666666666664],
            [-0.02431866213321388, -0.041666666666666664, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
}

test "sapo at the sequence level with the KL term (TRL 1.16 _compute_loss)" {
    let r = sapo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
        ref_per_token_logps: [
            [-0.9, -0.6, -1.8, -0.2],
            [-0.4, -1.0, -0.8, -0.1],
            [-2.2, -0.9, -0.3, -1.0],
        ],
        beta: 0.04,
        importance_sampling_level: sequence,
    );
    expect_close(r.loss, -0.47544603470159413, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.10423095612721861, -0.10339800773333879, -0.1047142258973615, 0.0],
            [0.0420067666071275, 0.04095154880671347, 0.041689558000580704, 0.041852126585578325],
            [-0.03369471970559195, -0.030937100073896946, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.kl, 0.012252500260380543, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
}

test "luspo: sequence sums averaged over the batch (TRL 1.16 _compute_loss)" {
    let r = luspo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
        importance_sampling_level: sequence,
    );
    expect_close(r.loss, -0.39864044887685196, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.31183566167720594, -0.31183566167720594, -0.31183566167720594, 0.0],
            [0.16666666666666666, 0.16666666666666666, 0.16666666666666666, 0.16666666666666666],
            [-0.0649000652559504, -0.0649000652559504, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_region_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_min, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_max, 0.0, rtol: 1e-6, atol: 1e-7);
}

test "grpo_from_hidden with an identity head is grpo_from_logits on the hidden states" {
    // The TRL case below with lm_head = I: the logits are the hidden states.
    let r = grpo_from_hidden(
        lm_head: [
            [1.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0],
        ],
        hidden: [
            [
                [1.65, -1.48, -1.19, -0.8, 0.5],
                [0.77, 2.02, -1.52, -2.35, 0.45],
                [1.47, 1.55, -1.49, 3.83, 1.69],
                [2.81, 1.11, 0.02, 1.53, 1.63],
            ],
            [
                [-2.81, 1.41, 0.1, 1.67, -1.5],
                [1.93, 3.0, 1.73, -0.8, -1.44],
                [-0.54, -0.79, -1.1, -2.17, -0.02],
                [0.17, -1.85, -3.04, 1.61, 2.48],
            ],
            [
                [-1.19, -0.19, -5.22, -0.64, 1.28],
                [-3.46, -0.23, -0.54, -1.38, -1.62],
                [-1.12, 2.7, -0.49, -0.01, -3.86],
                [0.44, 0.01, 4.28, 1.79, 1.72],
            ],
        ],
        completion_ids: [[3, 4, 4, 4], [3, 0, 0, 1], [1, 1, 2, 3]],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        ref_per_token_logps: [
            [-0.9, -0.6, -1.8, -0.2],
            [-0.4, -1.0, -0.8, -0.1],
            [-2.2, -0.9, -0.3, -1.0],
        ],
        beta: 0.04,
        epsilon_high: 0.28,
        temperature: 0.7,
    );
    expect_close(r.loss, 0.08969210287559688, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.hidden,
        [
            [
                [
                    0.01021867264680474, 1.1680938356292248e-4, 1.7676640588326712e-4,
                    -0.012488811589845277, 0.001976563153594347,
                ],
                [
                    0.002258053842642855, 0.013466668015201763, 8.569804543438933e-5,
                    2.618314105749575e-5, -0.015836603044336504,
                ],
                [
                    0.0015915580454102872, 0.0017842517746717158, 2.3194085008271498e-5,
                    0.04634632545422405, -0.04974532935931432,
                ],
                [0.0, 0.0, 0.0, 0.0, 0.0],
            ],
            [
                [
                    8.379244503187199e-7, 3.4784051735096147e-4, 5.353392257707348e-5,
                    -4.076568388399488e-4, 5.444474461595058e-6,
                ],
                [
                    -0.003548485025758726, 0.0030352204639751, 4.946021129363823e-4,
                    1.3322680888992575e-5, 5.3397679582526845e-6,
                ],
                [
                    -0.0011234750516789943, 2.347604715939925e-4, 1.5076292677247577e-4,
                    3.269222078421202e-5, 7.052594325283141e-4,
                ],
                [
                    1.8306985377207833e-6, -6.580705877242862e-5, 1.866665173000127e-8,
                    1.4322625157177825e-5, 4.963506842580001e-5,
                ],
            ],
            [
                [
                    7.232168838158192e-4, -0.02695601995903801, 2.2854576703201233e-6,
                    0.0015867186815412486, 0.024643798936010614,
                ],
                [
                    1.9446613565021262e-4, -0.019287485484279273, 0.012602955255940556,
                    0.003795937176077762, 0.0026941269166107502,
                ],
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0, 0.0],
            ],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    gradcheck grpo_from_hidden(B: 2, T: 3, H: 4, V: 5);
}

test "grpo_from_logits (dapo, temperature 0.7, KL) matches TRL's log-probs, entropies and loss" {
    let r = grpo_from_logits(
        logits: [
            [
                [1.65, -1.48, -1.19, -0.8, 0.5],
                [0.77, 2.02, -1.52, -2.35, 0.45],
                [1.47, 1.55, -1.49, 3.83, 1.69],
                [2.81, 1.11, 0.02, 1.53, 1.63],
            ],
            [
                [-2.81, 1.41, 0.1, 1.67, -1.5],
                [1.93, 3.0, 1.73, -0.8, -1.44],
                [-0.54, -0.79, -1.1, -2.17, -0.02],
                [0.17, -1.85, -3.04, 1.61, 2.48],
            ],
            [
                [-1.19, -0.19, -5.22, -0.64, 1.28],
                [-3.46, -0.23, -0.54, -1.38, -1.62],
                [-1.12, 2.7, -0.49, -0.01, -3.86],
                [0.44, 0.01, 4.28, 1.79, 1.72],
            ],
        ],
        completion_ids: [[3, 4, 4, 4], [3, 0, 0, 1], [1, 1, 2, 3]],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        ref_per_token_logps: [
            [-0.9, -0.6, -1.8, -0.2],
            [-0.4, -1.0, -0.8, -0.1],
            [-2.2, -0.9, -0.3, -1.0],
        ],
        beta: 0.04,
        epsilon_high: 0.28,
        temperature: 0.7,
    );
    expect_close(r.loss, 0.08969210287559688, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.logits,
        [
            [
                [
                    0.01021867264680474, 1.1680938356292248e-4, 1.7676640588326712e-4,
                    -0.012488811589845277, 0.001976563153594347,
                ],
                [
                    0.002258053842642855, 0.013466668015201763, 8.569804543438933e-5,
                    2.618314105749575e-5, -0.015836603044336504,
                ],
                [
                    0.0015915580454102872, 0.0017842517746717158, 2.3194085008271498e-5,
                    0.04634632545422405, -0.04974532935931432,
                ],
                [0.0, 0.0, 0.0, 0.0, 0.0],
            ],
            [
                [
                    8.379244503187199e-7, 3.4784051735096147e-4, 5.353392257707348e-5,
                    -4.076568388399488e-4, 5.444474461595058e-6,
                ],
                [
                    -0.003548485025758726, 0.0030352204639751, 4.946021129363823e-4,
                    1.3322680888992575e-5, 5.3397679582526845e-6,
                ],
                [
                    -0.0011234750516789943, 2.347604715939925e-4, 1.5076292677247577e-4,
                    3.269222078421202e-5, 7.052594325283141e-4,
                ],
                [
                    1.8306985377207833e-6, -6.580705877242862e-5, 1.866665173000127e-8,
                    1.4322625157177825e-5, 4.963506842580001e-5,
                ],
            ],
            [
                [
                    7.232168838158192e-4, -0.02695601995903801, 2.2854576703201233e-6,
                    0.0015867186815412486, 0.024643798936010614,
                ],
                [
                    1.9446613565021262e-4, -0.019287485484279273, 0.012602955255940556,
                    0.003795937176077762, 0.0026941269166107502,
                ],
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0, 0.0],
            ],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.kl, 0.3633286108803296, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.entropy, 0.8081040486716748, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_mean, 0.4444444477558136, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_region_mean, 0.4444444477558136, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_min, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_max, 0.0, rtol: 1e-6, atol: 1e-7);
}

test "grpo_from_logits with loss_type grpo matches TRL" {
    let r = grpo_from_logits(
        logits: [
            [
                [1.65, -1.48, -1.19, -0.8, 0.5],
                [0.77, 2.02, -1.52, -2.35, 0.45],
                [1.47, 1.55, -1.49, 3.83, 1.69],
                [2.81, 1.11, 0.02, 1.53, 1.63],
            ],
            [
                [-2.81, 1.41, 0.1, 1.67, -1.5],
                [1.93, 3.0, 1.73, -0.8, -1.44],
                [-0.54, -0.79, -1.1, -2.17, -0.02],
                [0.17, -1.85, -3.04, 1.61, 2.48],
            ],
            [
                [-1.19, -0.19, -5.22, -0.64, 1.28],
                [-3.46, -0.23, -0.54, -1.38, -1.62],
                [-1.12, 2.7, -0.49, -0.01, -3.86],
                [0.44, 0.01, 4.28, 1.79, 1.72],
            ],
        ],
        completion_ids: [[3, 4, 4, 4], [3, 0, 0, 1], [1, 1, 2, 3]],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        loss_type: grpo,
    );
    expect_close(r.loss, -0.05231763663963681, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.logits,
        [
            [
                [
                    0.012715819003466113, 5.559075970962091e-4, 7.429301935615629e-4,
                    -0.018040952643390173, 0.004026295849266282,
                ],
                [
                    0.0034276952405833372, 0.011963831943295524, 3.4711056932727025e-4,
                    1.5135731602981814e-4, -0.015889995069235944,
                ],
                [
                    0.00524041578045429, 0.0056768746442059075, 2.7155267127800626e-4,
                    0.05550098912135928, -0.06668983221729748,
                ],
                [0.0, 0.0, 0.0, 0.0, 0.0],
            ],
            [
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [
                    0.033862373444786834, -0.02575088699109737, -0.007231663355941657,
                    -5.76067217971742e-4, -3.0375587977605513e-4,
                ],
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0, 0.0],
            ],
            [
                [
                    0.0027989426843495796, -0.04079031899615666, 4.97493307930107e-5,
                    0.004851275854486776, 0.0330903511265273,
                ],
                [
                    6.068321042687809e-4, -0.020536590866683527, 0.011251448485050549,
                    0.004857368714816499, 0.0038209415625476955,
                ],
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0, 0.0],
            ],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.entropy, 1.049477754819826, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_mean, 0.3333333432674408, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_mean, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_region_mean, 0.3333333432674408, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_low_min, 0.0, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.clip_ratio_high_max, 0.0, rtol: 1e-6, atol: 1e-7);
}

test "grpo with top_entropy_quantile trains on the high-entropy tokens only (TRL 1.16)" {
    let r = grpo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
        ref_per_token_logps: [
            [-0.9, -0.6, -1.8, -0.2],
            [-0.4, -1.0, -0.8, -0.1],
            [-2.2, -0.9, -0.3, -1.0],
        ],
        beta: 0.04,
        top_entropy_quantile: 0.5,
    );
    expect_close(r.loss, -0.14645910121230357, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.12328795574977225, -0.08198388308877677, -8.888888888888889e-4, 0.0],
            [0.041999999999999996, -9.945497984275133e-4, 0.0, 0.041833333333333333],
            [-0.02648517214078499, 0.001333333333333334, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
}

test "dapo with top_entropy_quantile trains on the high-entropy tokens only (TRL 1.16)" {
    let r = dapo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
        top_entropy_quantile: 0.3,
    );
    expect_close(r.loss, -0.04360565395665292, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [0.0, -0.08231313563130198, 0.0, 0.0],
            [0.05555555555555555, 0.0, 0.0, 0.0],
            [-0.016848073880906485, 0.0, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
}

test "vespo: the Gamma-weighted log-prob loss with TRL's defaults (TRL 1.16 _compute_loss)" {
    let r = vespo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
    );
    expect_close(r.loss, 0.42494245405899894, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.12829578808154324, -0.12829578808154324, -0.12829578808154324, 0.0],
            [0.05555555555555558, 0.05555555555555558, 0.05555555555555558, 0.05555555555555558],
            [-0.03326960979036038, -0.03326960979036038, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.vespo_phi_seq_mean, 1.1174560150622879, rtol: 1e-6, atol: 1e-7);
}

test "vespo with the KL term and other Gamma parameters (TRL 1.16 _compute_loss)" {
    let r = vespo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        entropies: [[0.5, 0.7, 0.2, 0.9], [1.0, 0.3, 0.4, 0.6], [0.8, 0.1, 0.5, 0.5]],
        ref_per_token_logps: [
            [-0.9, -0.6, -1.8, -0.2],
            [-0.4, -1.0, -0.8, -0.1],
            [-2.2, -0.9, -0.3, -1.0],
        ],
        beta: 0.04,
        vespo_k_pos: 1.5,
        vespo_lambda_pos: 2.0,
        vespo_k_neg: 2.5,
        vespo_lambda_neg: 1.0,
    );
    expect_close(r.loss, 0.37618714362568073, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.11877290220694692, -0.11795246258972142, -0.11917060402113551, 0.0],
            [0.056000000000000015, 0.05422948915765221, 0.055555555555555566, 0.055777777777777794],
            [-0.029631746214321738, -0.027934149779149337, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.kl, 0.013074312016268809, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.entropy, 0.5111111111111111, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.vespo_phi_seq_mean, 1.034054942746532, rtol: 1e-6, atol: 1e-7);
}

test "grpo with off_policy_mask_threshold drops off-policy negative completions (TRL 1.16)" {
    let r = grpo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        off_policy_mask_threshold: 0.05,
        sampling_per_token_logps: [
            [-1.0, -0.4, -2.4, -0.2],
            [-0.1, -1.0, -0.9, 0.0],
            [-2.9, -0.9, -0.2, -1.0],
        ],
    );
    expect_close(r.loss, -0.38315979290551144, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.12279676867507196, -0.08231313563130198, -0.1111111111111111, 0.0],
            [0.0, 0.0, 0.0, 0.0],
            [-0.025272110821359724, -0.041666666666666664, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
}

test "dapo with off_policy_mask_threshold drops off-policy negative completions (TRL 1.16)" {
    let r = dapo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        off_policy_mask_threshold: -0.1,
    );
    expect_close(r.loss, -0.3608468670761693, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.12279676867507196, -0.08231313563130198, -0.1111111111111111, 0.0],
            [0.0, 0.0, 0.0, 0.0],
            [-0.016848073880906485, -0.027777777777777776, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
}

test "grpo_from_logits with TRL's entropy bonus (entropy_coef: 0.1)" {
    // TRL 1.16's _compute_loss with _entropy_bonus_enabled (static coefficient), loss_type
    // grpo, entropies from entropy_from_logits with their gradient (f64).
    let r = grpo_from_logits(
        logits: [
            [
                [1.65, -1.48, -1.19, -0.8, 0.5],
                [0.77, 2.02, -1.52, -2.35, 0.45],
                [1.47, 1.55, -1.49, 3.83, 1.69],
                [2.81, 1.11, 0.02, 1.53, 1.63],
            ],
            [
                [-2.81, 1.41, 0.1, 1.67, -1.5],
                [1.93, 3.0, 1.73, -0.8, -1.44],
                [-0.54, -0.79, -1.1, -2.17, -0.02],
                [0.17, -1.85, -3.04, 1.61, 2.48],
            ],
            [
                [-1.19, -0.19, -5.22, -0.64, 1.28],
                [-3.46, -0.23, -0.54, -1.38, -1.62],
                [-1.12, 2.7, -0.49, -0.01, -3.86],
                [0.44, 0.01, 4.28, 1.79, 1.72],
            ],
        ],
        completion_ids: [[3, 4, 4, 4], [3, 0, 0, 1], [1, 1, 2, 3]],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        loss_type: grpo,
        use_entropy_bonus: true,
        entropy_coef: 0.1,
    );
    expect_close(r.loss, -0.1572654121216194, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.logits,
        [
            [
                [
                    0.017023993248398834, -2.6593673175056057e-4, -2.3032127424110164e-4,
                    -0.01922997418668357, 0.002702238944276389,
                ],
                [
                    0.0019742180475674502, 0.01593168059424272, -2.806279810653029e-4,
                    -1.9831571516314283e-4, -0.01742695494558172,
                ],
                [
                    0.003806023104112855, 0.004191932913385937, 7.52478834815425e-5,
                    0.06018598878334538, -0.0682591926843257,
                ],
                [0.0, 0.0, 0.0, 0.0, 0.0],
            ],
            [
                [
                    -2.558989701869112e-4, 3.787049235355815e-4, -0.001387762158191617,
                    0.0019125476664730461, -6.475914616300995e-4,
                ],
                [
                    0.03259657404084564, -0.022270581687516992, -0.00864441013964764,
                    -0.0010678963496146233, -6.136858640663799e-4,
                ],
                [
                    -2.5305543807926945e-5, -5.313807203642651e-4, -8.550927437362646e-4,
                    -8.442508963443857e-4, 0.002256029904252843,
                ],
                [
                    -0.0013445083483080164, -3.7084103904975134e-4, -1.4731472580340222e-4,
                    -0.001308937489026308, 0.003171601602187478,
                ],
            ],
            [
                [
                    0.0015800331829405147, -0.04235698045230738, -1.794339347081741e-5,
                    0.003351149400489397, 0.03744374126234829,
                ],
                [
                    8.542131384115794e-5, -0.01837212787702934, 0.011758752012312829,
                    0.003812745213069732, 0.0027152093378056174,
                ],
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0, 0.0],
            ],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
}

test "grpo_from_logits with TRL's entropy bonus (entropy_coef: 0.05, top_entropy_quantile: 0.5)" {
    // TRL 1.16's _compute_loss with _entropy_bonus_enabled (static coefficient), loss_type
    // grpo, entropies from entropy_from_logits with their gradient (f64).
    let r = grpo_from_logits(
        logits: [
            [
                [1.65, -1.48, -1.19, -0.8, 0.5],
                [0.77, 2.02, -1.52, -2.35, 0.45],
                [1.47, 1.55, -1.49, 3.83, 1.69],
                [2.81, 1.11, 0.02, 1.53, 1.63],
            ],
            [
                [-2.81, 1.41, 0.1, 1.67, -1.5],
                [1.93, 3.0, 1.73, -0.8, -1.44],
                [-0.54, -0.79, -1.1, -2.17, -0.02],
                [0.17, -1.85, -3.04, 1.61, 2.48],
            ],
            [
                [-1.19, -0.19, -5.22, -0.64, 1.28],
                [-3.46, -0.23, -0.54, -1.38, -1.62],
                [-1.12, 2.7, -0.49, -0.01, -3.86],
                [0.44, 0.01, 4.28, 1.79, 1.72],
            ],
        ],
        completion_ids: [[3, 4, 4, 4], [3, 0, 0, 1], [1, 1, 2, 3]],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        loss_type: grpo,
        use_entropy_bonus: true,
        entropy_coef: 0.05,
        top_entropy_quantile: 0.5,
    );
    expect_close(r.loss, -0.0037907097370138074, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.logits,
        [
            [
                [
                    0.016593175823905564, -1.8375229886588356e-4, -1.329961274608351e-4,
                    -0.019111072032354227, 0.0028346446347753784,
                ],
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0, 0.0],
            ],
            [
                [
                    -2.3030907316821996e-4, 3.408344311820236e-4, -0.0012489859423724554,
                    0.0017212928998257414, -5.828323154670896e-4,
                ],
                [
                    0.03272315398123976, -0.02261861221787503, -0.008503135461277041,
                    -0.0010187134364503354, -5.826928656373474e-4,
                ],
                [
                    -2.2774989427134207e-5, -4.7824264832783833e-4, -7.695834693626384e-4,
                    -7.598258067099469e-4, 0.0020304269138275584,
                ],
                [0.0, 0.0, 0.0, 0.0, 0.0],
            ],
            [
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [
                    1.375623928839202e-4, -0.018588574175994757, 0.011708021659586601,
                    0.003917207563244408, 0.002825782560279825,
                ],
                [0.0, 0.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0, 0.0],
            ],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
}

test "grpo with vLLM's importance_sampling_ratio (TRL 1.16)" {
    let r = grpo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        ref_per_token_logps: [
            [-0.9, -0.6, -1.8, -0.2],
            [-0.4, -1.0, -0.8, -0.1],
            [-2.2, -0.9, -0.3, -1.0],
        ],
        beta: 0.04,
        importance_sampling_ratio: [
            [0.9, 1.1, 1.0, 1.0],
            [1.2, 0.8, 1.0, 0.7],
            [1.0, 1.3, 1.0, 1.0],
        ],
    );
    expect_close(r.loss, -0.22879435909766202, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.11100827888226505, -0.09021519665190698, -0.11199999999999999, 0.0],
            [0.05033333333333333, 0.04873294012294817, 0.0, 0.02933333333333333],
            [-0.02648517214078499, -0.05283333333333333, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
}

test "sapo with vLLM's importance_sampling_ratio (TRL 1.16)" {
    let r = sapo(
        per_token_logps: [
            [-1.0, -0.5, -2.0, -0.1],
            [-0.3, -1.2, -0.8, -0.05],
            [-2.5, -0.7, -0.2, -1.1],
        ],
        old_per_token_logps: [
            [-1.1, -0.2, -2.0, -0.6],
            [-0.3, -1.6, -0.4, -0.05],
            [-2.0, -0.7, -0.9, -1.0],
        ],
        advantages: [1.0, -0.5, 0.25],
        completion_mask: [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
        importance_sampling_ratio: [
            [0.9, 1.1, 1.0, 1.0],
            [1.2, 0.8, 1.0, 0.7],
            [1.0, 1.3, 1.0, 1.0],
        ],
    );
    expect_close(r.loss, -0.5250638963762223, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.per_token_logps,
        [
            [-0.11021204907203222, -0.08904072760586913, -0.1111111111111111, 0.0],
            [0.05, 0.04655407209780127, 0.027109723605275655, 0.029166666666666664],
            [-0.02431866213321388, -0.05416666666666667, 0.0, 0.0],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
}

test "gradients of every GRPO loss type by finite differences" {
    gradcheck grpo(B: 3, T: 5);
    gradcheck bnpo(B: 3, T: 5);
    gradcheck dr_grpo(B: 3, T: 5);
    gradcheck dapo(B: 3, T: 5);
    gradcheck luspo(B: 3, T: 5);
    gradcheck cispo(B: 3, T: 5);
    gradcheck sapo(B: 3, T: 5);
    gradcheck vespo(B: 3, T: 5);
    gradcheck grpo_from_logits(B: 2, T: 3, V: 5);
}
