import std.core.logps

import std.objectives.sft

import std.objectives.dpo

// CPO (Xu et al., 2024, arXiv 2401.08417) and SimPO (Meng et al., 2024, arXiv 2405.14734) as
// TRL's CPOTrainer computes them (`trl/experimental/cpo/cpo_trainer.py` `cpo_loss`;
// research/objectives.md §1.4, V2). Policy only, no reference model. TRL feeds summed log-probs
// to `cpo`/`cpo_hinge` and length-averaged ones to `cpo_ipo`/`simpo` (`average_log_prob`); the
// `*_from_logits` entries do the same and add `cpo_alpha` times the chosen NLL, as TRL's total.
// Expected values: tests/reference/trl_objectives.py.

/// CPO, TRL `loss_type="sigmoid"`: `−(1−ε)logσ(β(s_c − s_r)) − ε·logσ(−β(s_c − s_r))`.
objective cpo(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    beta: f32 = 0.1,
    label_smoothing: f32 = 0.0,
) requires beta > 0.0, 0.0 <= label_smoothing <= 1.0 {
    let z = beta * (chosen_logps - rejected_logps);
    loss mean(-(1.0 - label_smoothing) * log_sigmoid(z) - label_smoothing * log_sigmoid(-z), B);
    metric ..dpo.rewards(beta, chosen_logps, rejected_logps);
}

/// CPO with the hinge loss, TRL `loss_type="hinge"`: `relu(1 − β(s_c − s_r))`.
objective cpo_hinge(chosen_logps: f32[B], rejected_logps: f32[B], beta: f32 = 0.1) requires beta > 0.0 {
    loss mean(relu(1.0 - beta * (chosen_logps - rejected_logps)), B);
    metric ..dpo.rewards(beta, chosen_logps, rejected_logps);
}

/// CPO with the IPO loss, TRL `loss_type="ipo"` (averaged log-probs): `((ā_c − ā_r) − 1/(2β))²`.
objective cpo_ipo(chosen_logps: f32[B], rejected_logps: f32[B], beta: f32 = 0.1) requires beta > 0.0 {
    loss mean(pow(chosen_logps - rejected_logps - 1.0 / (2.0 * beta), 2.0), B);
    metric ..dpo.rewards(beta, chosen_logps, rejected_logps);
}

/// SimPO, TRL `loss_type="simpo"` (averaged log-probs): `z = β(ā_c − ā_r) − γ`, loss
/// `−(1−ε)logσ(z) − ε·logσ(−z)` with γ = `simpo_gamma`.
objective simpo(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    beta: f32 = 0.1,
    simpo_gamma: f32 = 0.5,
    label_smoothing: f32 = 0.0,
) requires beta > 0.0, 0.0 <= label_smoothing <= 1.0 {
    let z = beta * (chosen_logps - rejected_logps - simpo_gamma / beta);
    loss mean(-(1.0 - label_smoothing) * log_sigmoid(z) - label_smoothing * log_sigmoid(-z), B);
    metric ..dpo.rewards(beta, chosen_logps, rejected_logps);
}

/// CPO from logits, TRL's total: `cpo` on summed log-probs plus `cpo_alpha` times the chosen
/// completion's token-mean cross-entropy (`ignore_index` labels skipped, default −100).
objective cpo_from_logits(
    chosen_logits: f32[B, T, V],
    chosen_labels: i32[B, T],
    rejected_logits: f32[B, T, V],
    rejected_labels: i32[B, T],
    beta: f32 = 0.1,
    label_smoothing: f32 = 0.0,
    cpo_alpha: f32 = 1.0,
    ignore_index: i32 = -100,
) requires beta > 0.0 {
    let pref = cpo(
        chosen_logps: seq_logps(chosen_logits, chosen_labels, ignore_index),
        rejected_logps: seq_logps(rejected_logits, rejected_labels, ignore_index),
        beta: beta,
        label_smoothing: label_smoothing,
    );
    let nll = sft(logits: chosen_logits, labels: chosen_labels, ignore_index: ignore_index);
    loss pref.loss + cpo_alpha * nll.loss;
    metric nll_loss = nll.loss;
    metric ..pref.metric;
}

/// SimPO from logits, TRL's total: `simpo` on length-averaged log-probs (`mean_logps`) plus
/// `cpo_alpha` times the chosen NLL (TRL's CPOConfig default 1.0 gives CPO-SimPO; pure SimPO and
/// AlphaPO set it to 0).
objective simpo_from_logits(
    chosen_logits: f32[B, T, V],
    chosen_labels: i32[B, T],
    rejected_logits: f32[B, T, V],
    rejected_labels: i32[B, T],
    beta: f32 = 0.1,
    simpo_gamma: f32 = 0.5,
    label_smoothing: f32 = 0.0,
    cpo_alpha: f32 = 1.0,
    ignore_index: i32 = -100,
) requires beta > 0.0 {
    let pref = simpo(
        chosen_logps: mean_logps(chosen_logits, chosen_labels, ignore_index),
        rejected_logps: mean_logps(rejected_logits, rejected_labels, ignore_index),
        beta: beta,
        simpo_gamma: simpo_gamma,
        label_smoothing: label_smoothing,
    );
    let nll = sft(logits: chosen_logits, labels: chosen_labels, ignore_index: ignore_index);
    loss pref.loss + cpo_alpha * nll.loss;
    metric nll_loss = nll.loss;
    metric ..pref.metric;
}

/// CPO from the last hidden states of a concatenated batch (chosen rows, then rejected rows,
/// N = 2B) and the LM head: `cpo_from_logits` on `hidden @ lm_head` (+ `lm_head_bias`), with
/// gradients for `hidden`, `lm_head` and the bias; the logits never exist whole.
objective cpo_from_hidden(
    hidden: f32[N, T, H],
    labels: i32[N, T],
    lm_head: f32[V, H],
    lm_head_bias: f32[V]?,
    beta: f32 = 0.1,
    label_smoothing: f32 = 0.0,
    cpo_alpha: f32 = 1.0,
    ignore_index: i32 = -100,
) requires beta > 0.0, S == 2 {
    let logits = head_logits(hidden, lm_head, lm_head_bias);
    let pairs = seq_logps(logits, labels, ignore_index)[N -> (S, B)];
    let pref = cpo(
        chosen_logps: pairs[S: 0],
        rejected_logps: pairs[S: 1],
        beta: beta,
        label_smoothing: label_smoothing,
    );
    let nll = chosen_nll(logits, labels, ignore_index);
    loss pref.loss + cpo_alpha * nll;
    metric nll_loss = nll;
    metric ..pref.metric;
}

/// SimPO from the last hidden states of a concatenated batch (chosen rows, then rejected rows,
/// N = 2B) and the LM head: `simpo_from_logits` on `hidden @ lm_head` (+ `lm_head_bias`), with
/// gradients for `hidden`, `lm_head` and the bias; the logits never exist whole.
objective simpo_from_hidden(
    hidden: f32[N, T, H],
    labels: i32[N, T],
    lm_head: f32[V, H],
    lm_head_bias: f32[V]?,
    beta: f32 = 0.1,
    simpo_gamma: f32 = 0.5,
    label_smoothing: f32 = 0.0,
    cpo_alpha: f32 = 1.0,
    ignore_index: i32 = -100,
) requires beta > 0.0, S == 2 {
    let logits = head_logits(hidden, lm_head, lm_head_bias);
    let pairs = mean_logps(logits, labels, ignore_index)[N -> (S, B)];
    let pref = simpo(
        chosen_logps: pairs[S: 0],
        rejected_logps: pairs[S: 1],
        beta: beta,
        simpo_gamma: simpo_gamma,
        label_smoothing: label_smoothing,
    );
    let nll = chosen_nll(logits, labels, ignore_index);
    loss pref.loss + cpo_alpha * nll;
    metric nll_loss = nll;
    metric ..pref.metric;
}

test "cpo, cpo_hinge and cpo_ipo match TRL on V2" {
    // Summed log-probs s_c = [-10, -25], s_r = [-12, -24]; averaged ā_c = [-2.5, -2.5], ā_r = [-2.4, -3].
    let c = cpo(chosen_logps: [-10.0, -25.0], rejected_logps: [-12.0, -24.0]);
    expect_close(c.loss, 0.6712677647275813, 1e-6);
    expect_close(c.metric.rewards_margins, 0.05, 1e-6);
    expect_close(c.metric.rewards_accuracies, 0.5, 0.0);
    let h = cpo_hinge(chosen_logps: [-10.0, -25.0], rejected_logps: [-12.0, -24.0]);
    expect_close(h.loss, 0.9500000000000001, 1e-6);
    let i = cpo_ipo(chosen_logps: [-2.5, -2.5], rejected_logps: [-2.4, -3.0]);
    expect_close(i.loss, 23.13, 1e-6);
    let s = cpo(chosen_logps: [0.0, 0.0], rejected_logps: [-1000.0, 1000.0]);
    expect_close(s.loss, 50.0, 1e-5);
    expect_close(s.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck cpo(B: 4, label_smoothing: 0.1);
    gradcheck cpo_hinge(B: 4);
    gradcheck cpo_ipo(B: 4);
}

test "simpo matches TRL on V2" {
    let r = simpo(chosen_logps: [-2.5, -2.5], rejected_logps: [-2.4, -3.0]);
    expect_close(r.loss, 0.9617811320211649, 1e-6);
    expect_close(r.metric.rewards_chosen, -0.25, 1e-6);
    expect_close(r.metric.rewards_rejected, -0.27, 1e-6);
    let b2 = simpo(chosen_logps: [-2.5, -2.5], rejected_logps: [-2.4, -3.0], beta: 2.0);
    expect_close(b2.loss, 0.7886315165327823, 1e-6);
    // research V2: dL/dā_c at β = 2.
    expect_close(b2.grad.chosen_logps, [-0.6681877721681662, -0.37754066879814546], 1e-5);
    let s = simpo(chosen_logps: [-0.5, -0.5], rejected_logps: [-1000.0, -0.001]);
    expect_close(s.loss, 0.5027145345321425, 1e-5);
    expect_close(s.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
    gradcheck simpo(B: 4, beta: 2.0);
}

test "from logits: summed for cpo, averaged for simpo, plus the chosen NLL" {
    // Chosen: one token, -log_softmax([1, 2, 3])[2] = 0.4076059644 (NLL), s_c = ā_c = -0.4076059644.
    // Rejected: two tokens of log_softmax([0, 0, 0]): s_r = -2 log 3, ā_r = -log 3.
    let c = cpo_from_logits(
        chosen_logits: [[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]],
        chosen_labels: [[2, -100]],
        rejected_logits: [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]],
        rejected_labels: [[0, 1]],
    );
    // -logσ(0.1 (s_c - s_r)) + 1.0 · 0.4076059644
    expect_close(c.loss, 0.607664337316023 + 0.4076059644443804, 1e-6);
    let s = simpo_from_logits(
        chosen_logits: [[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]],
        chosen_labels: [[2, -100]],
        rejected_logits: [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]],
        rejected_labels: [[0, 1]],
        cpo_alpha: 0.0,
    );
    // -logσ(0.1 (ā_c - ā_r) - 0.5)
    expect_close(s.loss, 0.9316287822814566, 1e-6);
    gradcheck cpo_from_logits(B: 2, T: 3, V: 5);
    gradcheck simpo_from_logits(B: 2, T: 3, V: 5);
}

test "cpo_ and simpo_from_hidden with an identity head are the from-logits values" {
    // The case above, chosen and rejected rows concatenated, lm_head = I.
    let hidden = [[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]];
    let eye3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let c = cpo_from_hidden(hidden: hidden, labels: [[2, -100], [0, 1]], lm_head: eye3);
    expect_close(c.loss, 0.607664337316023 + 0.4076059644443804, 1e-6);
    let s = simpo_from_hidden(
        hidden: hidden,
        labels: [[2, -100], [0, 1]],
        lm_head: eye3,
        cpo_alpha: 0.0,
    );
    expect_close(s.loss, 0.9316287822814566, 1e-6);
    gradcheck cpo_from_hidden(N: 4, T: 3, H: 4, V: 5);
    gradcheck simpo_from_hidden(N: 4, T: 3, H: 4, V: 5);
}
