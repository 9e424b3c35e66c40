import std.core.logps

/// Supervised fine-tuning: the mean token cross-entropy over non-ignored labels, as
/// `torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)`
/// (TRL's SFTTrainer loss; labels are already shifted). Like PyTorch, a batch whose labels are
/// all ignored gives NaN (0 / 0).
objective sft(logits: f32[B, T, V], labels: i32[B, T]) {
    let count = sum(f32(labels != -100), B, T);
    loss -sum(token_logps(logits, labels), B, T) / count;
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
