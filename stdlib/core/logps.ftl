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
