// Composition (issue 13): an objective extends another by calling it, adding to its loss and
// spreading its metrics with `metric ..r.metric;` (gradients flow through the call).
import std.objectives.dpo

/// DPO's sigmoid loss plus an NLL term on the chosen log-probs, keeping DPO's four metrics.
objective dpo_plus_nll(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
    alpha: f32 = 0.5,
) {
    let r = dpo.sigmoid(
        chosen_logps: chosen_logps,
        rejected_logps: rejected_logps,
        ref_chosen_logps: ref_chosen_logps,
        ref_rejected_logps: ref_rejected_logps,
        beta: beta,
    );
    loss r.loss - alpha * mean(chosen_logps, B);
    metric ..r.metric;
    metric nll = -mean(chosen_logps, B);
}

test "an objective extends another and keeps its metrics" {
    let r = dpo_plus_nll(
        chosen_logps: [-1.0, -3.0],
        rejected_logps: [-1.0, -3.0],
        ref_chosen_logps: [-1.0, -3.0],
        ref_rejected_logps: [-1.0, -3.0],
    );
    // log 2 at zero margin, plus 0.5 · 2
    expect_close(r.loss, 1.6931471805599454);
    expect_close(r.metric.rewards_margins, 0.0);
    expect_close(r.metric.nll, 2.0);
    // d/d chosen: −β·σ(0)/B − α/B = −0.025 − 0.25
    expect_close(r.grad.chosen_logps, [-0.275, -0.275]);
    gradcheck dpo_plus_nll(B: 3);
}
