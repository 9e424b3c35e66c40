import std.core.logps

/// Supervised fine-tuning: the mean token cross-entropy over non-ignored labels, as
/// `torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)`
/// (TRL's SFTTrainer loss; labels are already shifted); `ignore_index` is PyTorch's. Like
/// PyTorch, a batch whose labels are all ignored gives NaN (0 / 0).
objective sft(logits: f32[B, T, V], labels: i32[B, T], ignore_index: i32 = -100) {
    let count = sum(f32(labels != ignore_index), B, T);
    loss -sum(token_logps(logits, labels, ignore_index), B, T) / count;
    metric num_tokens = count;
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
    expect_close(r.grad.logits, [[[0.0450152834, 0.1223642373, -0.1673795207],
                                  [-0.3333333333, 0.1666666667, 0.1666666667],
                                  [0.0, 0.0, 0.0]]], 1e-6);
    gradcheck sft(B: 2, T: 3, V: 5);
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
    expect_close(r.grad.logits, [[[0.04501528658519022, 0.12236423552739882, -0.1673795221125891],
                                  [0.0, 0.0, 0.0],
                                  [0.4966311784210872, -0.49997745297938184, 0.0033462745582946425]]], 1e-6);
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
    expect_close(r.grad.logits, [[[0.029946012272409454, 0.0814017009949022, -0.1113477132673117],
                                  [-0.1111111111111111, 0.05555555555555555, 0.05555555555555555],
                                  [0.0, 0.0, 0.0]]], 1e-6);
    gradcheck dft(B: 2, T: 3, V: 5);
}

test "dft of a batch with every label ignored is 0" {
    let r = dft(logits: [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], labels: [[-100, -100]]);
    expect_close(r.loss, 0.0, 0.0);
    expect_close(r.grad.logits, [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], 0.0);
}
