import std.core.logps

import std.objectives.sft

import std.objectives.dpo

// ORPO (Hong et al., 2024, arXiv 2403.07691) as TRL's ORPOTrainer computes it
// (`trl/experimental/orpo/orpo_trainer.py` `odds_ratio_loss`; research/objectives.md §1.5, V3).
// Expected values: tests/reference/trl_objectives.py.

/// ORPO's odds-ratio term on length-averaged log-probabilities (TRL `odds_ratio_loss`):
/// `log_odds = (ā_c − ā_r) − (log1mexp(ā_c) − log1mexp(ā_r))`, loss `−β·mean(logσ(log_odds))`
/// (β is the paper's λ). `log1mexp` branches at −ln 2 as TRL does (#4763), so ā near 0 stays
/// finite. Inputs are averaged log-probabilities, hence negative.
objective odds_ratio(chosen_logps: f32[B], rejected_logps: f32[B], beta: f32 = 0.1) requires beta > 0.0 {
    let log_odds = chosen_logps - rejected_logps
        - (log1mexp(chosen_logps) - log1mexp(rejected_logps));
    let ratio = log_sigmoid(log_odds);
    loss -beta * mean(ratio, B);
    metric ..dpo.rewards(beta, chosen_logps, rejected_logps);
    metric log_odds_ratio = mean(ratio, B);
    metric log_odds_chosen = mean(log_odds, B);
}

/// ORPO from logits, as TRL's ORPOTrainer: the chosen sequence's token-mean cross-entropy
/// (`nn.CrossEntropyLoss()`, `ignore_index` skipped, default −100) plus `odds_ratio` on length-averaged log-probs
/// (`mean_logps`). TRL computes the NLL over prompt and response; give those labels as
/// `chosen_nll_labels` (default: `chosen_labels`, the completion).
objective orpo(
    chosen_logits: f32[B, T, V],
    chosen_labels: i32[B, T],
    rejected_logits: f32[B, T, V],
    rejected_labels: i32[B, T],
    chosen_nll_labels: i32[B, T]?,
    beta: f32 = 0.1,
    ignore_index: i32 = -100,
) requires beta > 0.0 {
    let nll = sft(
        logits: chosen_logits,
        labels: chosen_nll_labels ?? chosen_labels,
        ignore_index: ignore_index,
    );
    let or = odds_ratio(
        chosen_logps: mean_logps(chosen_logits, chosen_labels, ignore_index),
        rejected_logps: mean_logps(rejected_logits, rejected_labels, ignore_index),
        beta: beta,
    );
    loss nll.loss + or.loss;
    metric nll_loss = nll.loss;
    metric ..or.metric;
}

/// ORPO from the last hidden states of a concatenated batch (chosen rows, then rejected rows,
/// N = 2B, as TRL's `concatenated_forward`) and the LM head: `orpo`'s loss and metrics on
/// `hidden @ lm_head` (+ `lm_head_bias`), the NLL over the chosen rows' `nll_labels` (default
/// `labels`), with gradients for `hidden`, `lm_head` and the bias; the logits never exist whole.
objective orpo_from_hidden(
    hidden: f32[N, T, H],
    labels: i32[N, T],
    lm_head: f32[V, H],
    nll_labels: i32[N, T]?,
    lm_head_bias: f32[V]?,
    beta: f32 = 0.1,
    ignore_index: i32 = -100,
) requires beta > 0.0, S == 2 {
    let logits = head_logits(hidden, lm_head, lm_head_bias);
    let mean = mean_logps(logits, labels, ignore_index)[N -> (S, B)];
    let nll = chosen_nll(logits, nll_labels ?? labels, ignore_index);
    let or = odds_ratio(chosen_logps: mean[S: 0], rejected_logps: mean[S: 1], beta: beta);
    loss nll + or.loss;
    metric nll_loss = nll;
    metric ..or.metric;
}

test "odds_ratio matches TRL on V3" {
    // ā_c = [-2.5, -2.5], ā_r = [-2.4, -3.0] (research V2/V3), β = 0.1.
    let r = odds_ratio(chosen_logps: [-2.5, -2.5], rejected_logps: [-2.4, -3.0]);
    expect_close(r.loss, 0.060526490774534474, 1e-6);
    expect_close(r.metric.log_odds_ratio, -0.6052649077453447, 1e-6);
    expect_close(r.metric.log_odds_chosen, 0.21256591800948596, 1e-6);
    expect_close(r.metric.rewards_chosen, -0.25, 1e-6);
    expect_close(r.metric.rewards_rejected, -0.27, 1e-6);
    expect_close(r.metric.rewards_accuracies, 0.5, 0.0);
    // Analytic gradients (research V3): dOR/dā = ∓(β/N)σ(−log_odds)/(1 − e^ā).
    expect_close(r.grad.chosen_logps, [-0.02872461413528402, -0.02012435828322596], 1e-5);
    expect_close(r.grad.rejected_logps, [0.02899733291655916, 0.019440327263817857], 1e-5);
}

test "odds_ratio stays finite near 0 and at -50" {
    let r = odds_ratio(chosen_logps: [-1e-4, -50.0], rejected_logps: [-50.0, -1e-4]);
    expect_close(r.loss, 2.9605145185779755, 1e-5);
    expect_close(r.grad.chosen_logps * 0.0, [0.0, 0.0], 0.0);
    expect_close(r.grad.rejected_logps * 0.0, [0.0, 0.0], 0.0);
}

test "orpo_from_hidden with an identity head is orpo on the hidden states" {
    // The case below, chosen and rejected rows concatenated, lm_head = I.
    let r = orpo_from_hidden(
        hidden: [[[1.0, 2.0, 3.0]], [[0.0, 0.0, 0.0]]],
        labels: [[2], [0]],
        lm_head: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    );
    expect_close(r.metric.nll_loss, 0.4076059644443804, 1e-6);
    expect_close(r.metric.log_odds_chosen, 1.379885493041723, 1e-6);
    expect_close(r.loss, 0.4300488259473056, 1e-6);
    gradcheck orpo_from_hidden(N: 4, T: 3, H: 4, V: 5);
}

test "orpo is the chosen NLL plus the odds-ratio term" {
    // One token each. Chosen: -log_softmax([1, 2, 3])[2] = 0.4076059644 is the NLL and ā_c =
    // -0.4076059644; rejected: ā_r = log_softmax([0, 0, 0])[0] = -log 3.
    let r = orpo(
        chosen_logits: [[[1.0, 2.0, 3.0]]],
        chosen_labels: [[2]],
        rejected_logits: [[[0.0, 0.0, 0.0]]],
        rejected_labels: [[0]],
    );
    // log_odds = (ā_c - ā_r) - (log(1 - e^ā_c) - log(1 - e^ā_r)) = 1.379885493041723;
    // OR = -0.1 · logσ(log_odds) = 0.022442861502925217.
    expect_close(r.metric.nll_loss, 0.4076059644443804, 1e-6);
    expect_close(r.metric.log_odds_chosen, 1.379885493041723, 1e-6);
    expect_close(r.loss, 0.4300488259473056, 1e-6);
    gradcheck orpo(B: 2, T: 3, V: 5);
}
