import std.core.logps

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

/// KTO from the last hidden states of a batch of completions and the LM head, as TRL's
/// KTOTrainer batches it: `label` marks the desirable completions (the rest are undesirable),
/// `ref_logps` are the reference model's, and the KL term's log-probs (of the mismatched pairs,
/// which TRL computes without gradient) are given. `kto`'s loss and metrics on
/// `seq_logps(hidden @ lm_head (+ lm_head_bias), labels)` split by `label`, with gradients for
/// `hidden`, `lm_head` and the bias; the logits never exist whole. With no desirable (or no
/// undesirable) completion the matching reward metric is NaN, as TRL's mean of an empty tensor.
objective kto_from_hidden(
    hidden: f32[N, T, H],
    labels: i32[N, T],
    lm_head: f32[V, H],
    label: const bool[N],
    ref_logps: const f32[N],
    kl_logps: const f32[K],
    ref_kl_logps: const f32[K],
    lm_head_bias: f32[V]?,
    beta: f32 = 0.1,
    desirable_weight: f32 = 1.0,
    undesirable_weight: f32 = 1.0,
    ignore_index: i32 = -100,
) requires beta > 0.0, desirable_weight >= 0.0, undesirable_weight >= 0.0 {
    let logits = head_logits(hidden, lm_head, lm_head_bias);
    let rho = seq_logps(logits, labels, ignore_index) - ref_logps;
    let kl = detach(max(mean(kl_logps - ref_kl_logps, K), 0.0));
    let losses = where(
        label,
        desirable_weight * (1.0 - sigmoid(beta * (rho - kl))),
        undesirable_weight * (1.0 - sigmoid(beta * (kl - rho))),
    );
    loss mean(losses, N);
    let chosen = f32(label);
    let rewards_chosen = sum(chosen * beta * rho, N) / sum(chosen, N);
    let rewards_rejected = sum((1.0 - chosen) * beta * rho, N) / sum(1.0 - chosen, N);
    metric kl = kl;
    metric rewards_chosen = rewards_chosen;
    metric rewards_rejected = rewards_rejected;
    metric rewards_margins = rewards_chosen - rewards_rejected;
}

test "kto_from_hidden is kto on the log-probs of its desirable and undesirable rows" {
    // Rows 0 and 2 desirable, 1 and 3 undesirable; lm_head = I, so the logits are the hidden
    // states and the log-probs are seq_logps of them.
    let lm_head = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let r = kto_from_hidden(
        hidden: [
            [[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]],
            [[0.0, 0.0, 4.0], [2.0, 2.0, 2.0]],
            [[-1.0, 0.5, 0.25], [3.0, 0.0, -3.0]],
            [[0.1, 0.2, 0.3], [1.0, -2.0, 1.0]],
        ],
        labels: [[2, 0], [1, -100], [0, 2], [1, 1]],
        lm_head: lm_head,
        label: [true, false, true, false],
        ref_logps: [-3.0, -4.5, -5.0, -3.5],
        kl_logps: [-30.0, -28.0, -31.0, -29.0],
        ref_kl_logps: [-30.5, -28.2, -30.9, -29.6],
        beta: 0.5,
    );
    let k = kto(
        chosen_logps: seq_logps(
            [[[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]], [[-1.0, 0.5, 0.25], [3.0, 0.0, -3.0]]],
            [[2, 0], [0, 2]],
        ),
        rejected_logps: seq_logps(
            [[[0.0, 0.0, 4.0], [2.0, 2.0, 2.0]], [[0.1, 0.2, 0.3], [1.0, -2.0, 1.0]]],
            [[1, -100], [1, 1]],
        ),
        kl_logps: [-30.0, -28.0, -31.0, -29.0],
        ref_chosen_logps: [-3.0, -5.0],
        ref_rejected_logps: [-4.5, -3.5],
        ref_kl_logps: [-30.5, -28.2, -30.9, -29.6],
        beta: 0.5,
    );
    expect_close(r.loss, k.loss, 1e-6);
    expect_close(r.metric.kl, k.metric.kl, 1e-6);
    expect_close(r.metric.rewards_chosen, k.metric.rewards_chosen, 1e-6);
    expect_close(r.metric.rewards_rejected, k.metric.rewards_rejected, 1e-6);
    expect_close(r.metric.rewards_margins, k.metric.rewards_margins, 1e-6);
    gradcheck kto_from_hidden(N: 4, T: 3, H: 4, V: 5, K: 3);
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
