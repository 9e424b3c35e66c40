import std.core.logps

/// Supervised fine-tuning: the mean token cross-entropy over non-ignored labels, as
/// `torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)`
/// (TRL's SFTTrainer loss; labels are already shifted); `ignore_index` is PyTorch's. Like
/// PyTorch, a batch whose labels are all ignored gives NaN (0 / 0). With
/// `label_smoothing_factor` ε > 0 (TRL's `SFTConfig` → transformers' `LabelSmoother`):
/// `(1 − ε)·nll + ε·Σ_tokens Σ_V −log p / (tokens · V)`. Metrics as SFTTrainer logs them:
/// `entropy` (mean next-token entropy over the kept tokens) and `mean_token_accuracy` (the
/// label is the argmax, the first one on ties as TRL's fused head), 0 without kept tokens; they
/// cost one more read of the logits, which `log_metrics: false` saves (both are then 0).
objective sft(
    logits: f32[B, T, V],
    labels: i32[B, T],
    ignore_index: i32 = -100,
    label_smoothing_factor: f32 = 0.0,
    log_metrics: static bool = true,
) requires 0.0 <= label_smoothing_factor < 1.0 {
    let keep = labels != ignore_index;
    let count = sum(f32(keep), B, T);
    let nll = -sum(token_logps(logits, labels, ignore_index), B, T) / count;
    // Every reduction below reads lse, so it runs in one pass after the logsumexp pass (which
    // stays a vectorized online logsumexp) and nothing [B, T, V] is stored.
    let lse = logsumexp(logits, V);
    let lsm = logits - lse;
    let smoothed = sum(where(keep, -sum(lsm, V), 0.0), B, T) / (count * f32(V));
    let eps = label_smoothing_factor;
    loss where(eps == 0.0, nll, (1.0 - eps) * nll + eps * smoothed);
    metric num_tokens = count;
    let entropy = detach(-sum(exp(lsm) * lsm, V));
    metric entropy = if log_metrics {
        where(count > 0.0, sum(where(keep, entropy, 0.0), B, T) / max(count, 1.0), 0.0)
    } else {
        0.0
    };
    // The label is the argmax, the first on ties, when no log-prob beats it and none before
    // it equals it (a sum in the same pass as the entropy's).
    let label_lp = logits[V: where(keep, labels, 0)] - lse;
    let beaten = sum(f32(lsm > label_lp) + f32(lsm == label_lp) * f32(iota(V) < labels), V);
    let top1 = f32(keep) * f32(beaten == 0.0);
    metric mean_token_accuracy = if log_metrics {
        where(count > 0.0, sum(top1, B, T) / max(count, 1.0), 0.0)
    } else {
        0.0
    };
}

/// `sft` from the last hidden states and the LM head (`nn.Linear(H, V)`: `lm_head` its weight,
/// `lm_head_bias` its bias): the loss and metrics of `sft` on `hidden @ lm_head`, with gradients
/// for `hidden`, `lm_head` and the bias, computed without the `[B, T, V]` logits or their
/// gradient ever existing whole (the plan slices them over V, as Liger-Kernel's and Cut
/// Cross-Entropy's fused linear cross-entropy do).
objective sft_from_hidden(
    hidden: f32[B, T, H],
    lm_head: f32[V, H],
    labels: i32[B, T],
    lm_head_bias: f32[V]?,
    ignore_index: i32 = -100,
    label_smoothing_factor: f32 = 0.0,
    log_metrics: static bool = true,
) {
    let r = sft(
        logits: head_logits(hidden, lm_head, lm_head_bias),
        labels: labels,
        ignore_index: ignore_index,
        label_smoothing_factor: label_smoothing_factor,
        log_metrics: log_metrics,
    );
    loss r.loss;
    metric ..r.metric;
}

test "sft_from_hidden with an identity head is sft on the hidden states" {
    // lm_head = I: the logits are the hidden states, so the values are sft's test's below.
    let r = sft_from_hidden(
        hidden: [[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [5.0, -5.0, 0.0]]],
        lm_head: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        labels: [[2, 0, -100]],
    );
    expect_close(r.loss, 0.7531091265, 1e-6);
    expect_close(
        r.grad.hidden,
        [
            [
                [0.0450152834, 0.1223642373, -0.1673795207],
                [-0.3333333333, 0.1666666667, 0.1666666667],
                [0.0, 0.0, 0.0],
            ],
        ],
        1e-6,
    );
    gradcheck sft_from_hidden(B: 2, T: 3, H: 4, V: 5);
    gradcheck sft_from_hidden(B: 2, T: 3, H: 4, V: 5, label_smoothing_factor: 0.1);
}

test "sft is PyTorch's cross-entropy with ignore_index=-100" {
    // Token 1: -log_softmax([1, 2, 3])[2] = 0.4076059644; token 2: log 3 = 1.0986122887;
    // token 3 is ignored. Mean over two tokens.
    let r = sft(
        logits: [[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [5.0, -5.0, 0.0]]],
        labels: [[2, 0, -100]],
    );
    expect_close(r.loss, 0.7531091265, 1e-6);
    expect_close(r.metric.num_tokens, 2.0, 0.0);
    // d loss / d logits = (softmax - onehot) / 2 on kept tokens, 0 on the ignored one.
    expect_close(
        r.grad.logits,
        [
            [
                [0.0450152834, 0.1223642373, -0.1673795207],
                [-0.3333333333, 0.1666666667, 0.1666666667],
                [0.0, 0.0, 0.0],
            ],
        ],
        1e-6,
    );
    gradcheck sft(B: 2, T: 3, V: 5);
}

test "sft's label smoothing and metrics are TRL 1.16's (LabelSmoother, entropy, accuracy)" {
    // transformers' LabelSmoother(epsilon=0.1) on aligned labels, TRL's entropy_from_logits and
    // argmax accuracy (the tie in row 2, token 1 picks index 0, not the label 1), f64.
    let r = sft(
        logits: [
            [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [5.0, -5.0, 0.0]],
            [[0.5, 0.5, -1.0], [2.0, 1.0, 0.0], [-1.0, 3.0, 1.0]],
        ],
        labels: [[2, 0, -100], [1, 0, 2]],
        label_smoothing_factor: 0.1,
    );
    expect_close(r.loss, 1.021134407982689, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.logits,
        [
            [
                [0.011339447849580877, 0.04227902750138261, -0.053618475350963514],
                [-0.12, 0.05999999999999999, 0.05999999999999999],
                [0.0, 0.0, 0.0],
            ],
            [
                [0.0832965769213994, -0.0967034230786006, 0.013406846157201203],
                [-0.053618475350963514, 0.04227902750138261, 0.011339447849580877],
                [-0.003491418825113893, 0.1666960000311581, -0.16320458120604422],
            ],
        ],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.entropy, 0.8307856856546108, rtol: 1e-6, atol: 1e-7);
    expect_close(r.metric.mean_token_accuracy, 0.6, rtol: 1e-6, atol: 1e-7);
    gradcheck sft(B: 2, T: 3, V: 4, label_smoothing_factor: 0.2);
}

test "sft's ignore_index is PyTorch's" {
    // torch.nn.functional.cross_entropy(logits, [2, 0, 1], ignore_index=0) in f64 (PyTorch 2.15):
    // the middle token is ignored, label 1 of the last one is kept.
    let r = sft(
        logits: [[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [5.0, -5.0, 0.0]]],
        labels: [[2, 0, 1]],
        ignore_index: 0,
    );
    expect_close(r.loss, 5.207183203995751, 1e-6);
    expect_close(r.metric.num_tokens, 2.0, 0.0);
    expect_close(
        r.grad.logits,
        [
            [
                [0.04501528658519022, 0.12236423552739882, -0.1673795221125891],
                [0.0, 0.0, 0.0],
                [0.4966311784210872, -0.49997745297938184, 0.0033462745582946425],
            ],
        ],
        1e-6,
    );
}

/// Dynamic Fine-Tuning (DFT, arXiv 2508.05629), TRL's `SFTConfig(loss_type="dft")`: each
/// token's negative log-probability scaled by its probability with no gradient through the
/// scale, `-(lp · exp(lp).detach())`, summed over non-ignored labels and divided by their
/// count clamped at 1 (TRL 1.16's `SFTTrainer.compute_loss`: a batch with no trainable token
/// gives 0, not NaN).
objective dft(logits: f32[B, T, V], labels: i32[B, T], ignore_index: i32 = -100) {
    let count = sum(f32(labels != ignore_index), B, T);
    let lp = token_logps(logits, labels, ignore_index);
    loss -sum(lp * detach(exp(lp)), B, T) / max(count, 1.0);
    metric num_tokens = count;
}

test "dft matches TRL's SFTTrainer with loss_type=dft" {
    // From TRL 1.16's formula in torch (f64): per_token = -lp * exp(lp).detach(),
    // sum / mask.sum().clamp(min=1), backward.
    let r = dft(
        logits: [[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [5.0, -5.0, 0.0]]],
        labels: [[2, 0, -100]],
    );
    expect_close(r.loss, 0.31868013879460044, 1e-6);
    expect_close(r.metric.num_tokens, 2.0, 0.0);
    expect_close(
        r.grad.logits,
        [
            [
                [0.029946012272409454, 0.0814017009949022, -0.1113477132673117],
                [-0.1111111111111111, 0.05555555555555555, 0.05555555555555555],
                [0.0, 0.0, 0.0],
            ],
        ],
        1e-6,
    );
    gradcheck dft(B: 2, T: 3, V: 5);
}

test "dft of a batch with every label ignored is 0" {
    let r = dft(logits: [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], labels: [[-100, -100]]);
    expect_close(r.loss, 0.0, 0.0);
    expect_close(r.grad.logits, [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], 0.0);
}
