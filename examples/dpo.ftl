import std.core.logps

/// Direct Preference Optimization (Rafailov et al., 2023); TRL `loss_type="sigmoid"` at HEAD
/// (no label smoothing: TRL dropped cDPO from `sigmoid` in v0.29).
objective sigmoid(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
) requires beta > 0.0 {
    let chosen = beta * (chosen_logps - ref_chosen_logps);
    let rejected = beta * (rejected_logps - ref_rejected_logps);
    loss mean(-log_sigmoid(chosen - rejected), B);
    metric rewards_chosen = mean(chosen, B);
    metric rewards_rejected = mean(rejected, B);
    metric rewards_accuracies = mean(f32(chosen > rejected), B);
    metric rewards_margins = mean(chosen - rejected, B);
}

/// DPO from logits: sequence log-probabilities summed over completion tokens, then `sigmoid`.
objective sigmoid_from_logits(
    chosen_logits: f32[B, T, V],
    chosen_labels: i32[B, T],
    rejected_logits: f32[B, T, V],
    rejected_labels: i32[B, T],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
) requires beta > 0.0 {
    let r = sigmoid(
        chosen_logps: seq_logps(chosen_logits, chosen_labels),
        rejected_logps: seq_logps(rejected_logits, rejected_labels),
        ref_chosen_logps: ref_chosen_logps,
        ref_rejected_logps: ref_rejected_logps,
        beta: beta,
    );
    loss r.loss;
    metric rewards_accuracies = r.metric.rewards_accuracies;
    metric rewards_margins = r.metric.rewards_margins;
}

test "dpo at zero margin is log 2" {
    let r = sigmoid(
        chosen_logps: [-1.0],
        rejected_logps: [-1.0],
        ref_chosen_logps: [-1.0],
        ref_rejected_logps: [-1.0],
    );
    expect_close(r.loss, 0.6931471805599453, 1e-6);
}

test "dpo matches TRL on two pairs" {
    // research/objectives.md V1: rho_c = [1, -1], rho_r = [-0.5, 2], beta = 0.1.
    let r = sigmoid(
        chosen_logps: [-10.0, -25.0],
        rejected_logps: [-12.0, -24.0],
        ref_chosen_logps: [-11.0, -24.0],
        ref_rejected_logps: [-11.5, -26.0],
    );
    expect_close(r.loss, 0.7376561461290296, 1e-6);
    expect_close(r.metric.rewards_rejected, 0.075, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 1e-6);
    expect_close(r.grad.chosen_logps, [-0.023128507732812525, -0.02872212584058295], 1e-6);
    gradcheck sigmoid;
    gradcheck sigmoid_from_logits(B: 2, T: 3, V: 5);
}
