// KTO (Ethayarajh et al., 2024, arXiv 2402.01306) as TRL's KTOTrainer computes it
// (`trl/trainer/kto_trainer.py` `_compute_loss`; research/objectives.md §1.6, V4). Expected
// values: tests/reference/trl_objectives.py.

/// KTO, TRL `loss_type="kto"`, on unpaired batches of different sizes: desirable examples
/// (`chosen_*`, C of them), undesirable ones (`rejected_*`, R) and the mismatched KL pairs (K).
/// `kl = max(mean(kl_logps − ref_kl_logps), 0)`, detached; desirable loss `1 − σ(β(ρ − kl))`,
/// undesirable `1 − σ(β(kl − ρ))`, weighted, then averaged over all C + R examples (TRL's
/// `nanmean(cat(...))`). The KL log-probs are `const`: TRL detaches the KL term, so they would
/// get no gradient.
objective kto(
    chosen_logps: f32[C],
    rejected_logps: f32[R],
    kl_logps: const f32[K],
    ref_chosen_logps: const f32[C],
    ref_rejected_logps: const f32[R],
    ref_kl_logps: const f32[K],
    beta: f32 = 0.1,
    desirable_weight: f32 = 1.0,
    undesirable_weight: f32 = 1.0,
) requires beta > 0.0, desirable_weight >= 0.0, undesirable_weight >= 0.0 {
    let kl = detach(max(mean(kl_logps - ref_kl_logps, K), 0.0));
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    let desirable = desirable_weight * (1.0 - sigmoid(beta * (chosen - kl)));
    let undesirable = undesirable_weight * (1.0 - sigmoid(beta * (kl - rejected)));
    loss (sum(desirable, C) + sum(undesirable, R)) / f32(size(C) + size(R));
    metric kl = kl;
    metric rewards_chosen = mean(beta * chosen, C);
    metric rewards_rejected = mean(beta * rejected, R);
    metric rewards_margins = mean(beta * chosen, C) - mean(beta * rejected, R);
}

test "kto matches TRL on V4" {
    // Examples 1 and 3 of V4 are desirable, 2 and 4 undesirable; kl = 0.3.
    let r = kto(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-24.0, -12.0],
        kl_logps: [-30.0, -28.0, -31.0, -29.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-26.0, -11.5],
        ref_kl_logps: [-30.5, -28.2, -30.9, -29.6],
    );
    expect_close(r.loss, 0.5093425123349246, 1e-6);
    expect_close(r.metric.kl, 0.3, 1e-6);
    expect_close(r.metric.rewards_chosen, 0.0, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.075, 1e-6);
    let w = kto(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-24.0, -12.0],
        kl_logps: [-30.0, -28.0, -31.0, -29.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-26.0, -11.5],
        ref_kl_logps: [-30.5, -28.2, -30.9, -29.6],
        undesirable_weight: 1.33,
    );
    expect_close(w.loss, 0.593691221885973, 1e-6);
    gradcheck kto(C: 3, R: 2, K: 4);
}

test "kto stays finite at margins of ±1000 and clamps a negative KL at 0" {
    let s = kto(
        chosen_logps: [1000.0, -1000.0],
        rejected_logps: [1000.0],
        kl_logps: [-5.0],
        ref_chosen_logps: [0.0, 0.0],
        ref_rejected_logps: [0.0],
        ref_kl_logps: [0.0],
    );
    expect_close(s.metric.kl, 0.0, 0.0);
    expect_close(s.loss, 0.6666666666666666, 1e-6);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
}
