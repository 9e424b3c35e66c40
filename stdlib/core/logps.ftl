// Log-probabilities of labels under logits, as TRL computes them, and the LM head that makes
// logits from hidden states. Losses from hidden states (`*_from_hidden`: `sft`, `dpo`, `orpo`,
// `cpo`, `simpo`, `kto`, `grpo`) take the last hidden states `hidden: f32[.., T, H]`, the head
// `lm_head: f32[V, H]` (`nn.Linear(H, V).weight`) and an optional `lm_head_bias: f32[V]`,
// compute their from-logits counterpart on `head_logits(...)` and return gradients for
// `hidden`, `lm_head` and the bias. The `[.., T, V]` logits and their gradient are never stored
// whole: the plan computes them a slice of the vocabulary at a time (language reference,
// "Losses from hidden states"). Preference losses take one concatenated batch as TRL's
// `concatenated_forward` builds it: the B chosen rows first, then the B rejected rows
// (`N = 2B`, checked). Each equals its counterpart on `hidden @ lm_headᵀ (+ bias)`
// (compiler/ftc/tests/core/from_hidden.rs).

/// Per-token log-probabilities of `labels` under `logits`. Positions whose label equals
/// `ignore` (PyTorch's ignore index, -100) read label 0 and count 0, as TRL's
/// `get_batch_logps` does. Labels are already aligned with the logits (the caller shifts).
fn token_logps(logits: f32[B, T, V], labels: i32[B, T], ignore: i32 = -100) -> f32[B, T] {
    let keep = labels != ignore;
    let lp = log_softmax(logits, V)[V: where(keep, labels, 0)];
    where(keep, lp, 0.0)
}

/// Sum of the per-token log-probabilities over non-ignored positions (TRL's DPO convention).
fn seq_logps(logits: f32[B, T, V], labels: i32[B, T], ignore: i32 = -100) -> f32[B] {
    sum(token_logps(logits, labels, ignore), T)
}

/// Length-averaged log-probabilities (TRL's `average_log_prob=True`, used by ORPO and SimPO).
/// The token count is clamped at 1 so that an all-ignored row gives 0, not NaN.
fn mean_logps(logits: f32[B, T, V], labels: i32[B, T], ignore: i32 = -100) -> f32[B] {
    let count = sum(f32(labels != ignore), T);
    seq_logps(logits, labels, ignore) / max(count, 1.0)
}

/// The logits of an LM head: `hidden @ lm_head` (+ `bias`), `lm_head` laid out as
/// `nn.Linear(H, V).weight`. An objective on these logits never holds them whole: the plan
/// computes them a slice of the vocabulary at a time wherever only reductions over V, the label
/// pick and the gradient read them (docs/language.md, "Losses from hidden states").
fn head_logits(hidden: f32[..S, H], lm_head: f32[V, H], bias: f32[V]?) -> f32[..S, V] {
    if present(bias) { hidden @ lm_head + bias } else { hidden @ lm_head }
}

/// PyTorch's mean cross-entropy (`ignore` skipped, NaN when nothing is kept) over the first half
/// of the rows: the chosen completions of a batch concatenated as TRL's `concatenated_forward`
/// builds it (chosen rows, then rejected rows).
fn chosen_nll(logits: f32[N, T, V], labels: i32[N, T], ignore: i32 = -100) -> f32 {
    let keep = f32(labels != ignore) * f32(2 * iota(N) < size(N));
    -sum(keep * token_logps(logits, labels, ignore), N, T) / sum(keep, N, T)
}

test "token, sequence and mean log-probabilities skip ignored labels" {
    // log_softmax by hand (f64); label −100 contributes 0 and is not counted by mean_logps.
    let logits = [[[1.0, 2.0, 3.0], [0.5, -0.5, 0.0]], [[2.0, 2.0, 2.0], [-1.0, 0.0, 4.0]]];
    let labels = [[2, -100], [0, 1]];
    expect_close(
        token_logps(logits, labels),
        [[-0.4076059644443806, 0.0], [-1.09861228866811, -4.024744890138822]],
        1e-6,
    );
    expect_close(seq_logps(logits, labels), [-0.4076059644443806, -5.123357178806932], 1e-6);
    expect_close(mean_logps(logits, labels), [-0.4076059644443806, -2.561678589403466], 1e-6);
}
