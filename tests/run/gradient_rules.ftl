// Rules on gradients (issue 13): a `step` that calls an objective or adapter reads the call's
// `grad` (its backward is built where it is read), then adjusts the gradients or updates the
// parameters: an optimizer step compiled as forward + backward + rule, in one entry.

import std.adapters.lora

/// torch.optim.AdamW's update of one parameter (`_single_tensor_adamw`): decoupled weight decay
/// `p·(1 − lr·wd)`, `m ← lerp(m, g, 1 − β1)`, `v ← β2·v + (1 − β2)·g²`, then
/// `p − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε)`; the bias corrections are Python floats (f64).
fn adamw(
    p: f32[..S],
    g: f32[..S],
    m: f32[..S],
    v: f32[..S],
    t: i32,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
) -> (p: f32[..S], m: f32[..S], v: f32[..S]) {
    let decayed = p * f32(1.0 - lr * weight_decay);
    let m2 = m + f32(1.0 - beta1) * (g - m);
    let v2 = v * f32(beta2) + f32(1.0 - beta2) * g * g;
    let step_size = f32(lr / (1.0 - pow(beta1, f64(t))));
    let denom = sqrt(v2) / f32(sqrt(1.0 - pow(beta2, f64(t)))) + f32(eps);
    (p: decayed - step_size * m2 / denom, m: m2, v: v2)
}

/// One AdamW step of a LoRA adapter on the loss Σ y (the adapter's backward with upstream 1):
/// the step calls `lora.lora`, reads `r.grad.lora_A` and `r.grad.lora_B`, and updates both.
step lora_adamw(
    x: f32[N, I],
    weight: f32[O, I],
    lora_A: f32[R, I],
    lora_B: f32[O, R],
    m_A: f32[R, I],
    v_A: f32[R, I],
    m_B: f32[O, R],
    v_B: f32[O, R],
    t: i32,
    lr: f64 = 0.001,
    beta1: f64 = 0.9,
    beta2: f64 = 0.999,
    eps: f64 = 1e-8,
    weight_decay: f64 = 0.01,
) -> (
    lora_A: f32[R, I],
    lora_B: f32[O, R],
    m_A: f32[R, I],
    v_A: f32[R, I],
    m_B: f32[O, R],
    v_B: f32[O, R],
) requires t >= 1 {
    let r = lora.lora(x: x, weight: weight, lora_A: lora_A, lora_B: lora_B);
    let a = adamw(lora_A, r.grad.lora_A, m_A, v_A, t, lr, beta1, beta2, eps, weight_decay);
    let b = adamw(lora_B, r.grad.lora_B, m_B, v_B, t, lr, beta1, beta2, eps, weight_decay);
    (lora_A: a.p, lora_B: b.p, m_A: a.m, v_A: a.v, m_B: b.m, v_B: b.v)
}

/// Least squares, for a step that takes its gradient.
objective squared_error(w: f32[I], x: const f32[N, I], y: const f32[N]) {
    let d = x @ w - y;
    loss mean(d * d, N);
}

/// One SGD step: the gradient of a call, used as a value.
step sgd(
    w: f32[I],
    x: f32[N, I],
    y: f32[N],
    lr: f32 = 0.1,
) -> (w: f32[I], value: f32) {
    let r = squared_error(w, x, y);
    (w: w - lr * r.grad.w, value: r.loss)
}

test "a step reads a call's gradient" {
    // x = [[1, 0], [0, 2]], y = [1, 2], w = 0: d = [-1, -2], loss = 2.5,
    // grad = 2/N · xᵀd = [-1, -4]; w ← [0.1, 0.4].
    let r = sgd(w: [0.0, 0.0], x: [[1.0, 0.0], [0.0, 2.0]], y: [1.0, 2.0]);
    expect_close(r.value, 2.5, 1e-6);
    expect_close(r.w, [0.1, 0.4], 1e-6);
}

test "two AdamW steps of LoRA match torch.optim.AdamW" {
    // torch.optim.AdamW([A, B], lr=0.01, weight_decay=0.01) on (x Wᵀ + 4 (x Aᵀ) Bᵀ).sum(),
    // two steps (torch 2.15, f64).
    let x = [[1.0, 2.0, -1.0], [0.5, -0.5, 2.0]];
    let w = [[1.0, 0.0, 0.5], [0.0, 1.0, -0.5]];
    let a0 = [[0.1, -0.2, 0.3], [0.0, 0.4, -0.1]];
    let b0 = [[0.2, -0.1], [0.05, 0.3]];
    let zero_a = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]];
    let zero_b = [[0.0, 0.0], [0.0, 0.0]];
    let s1 = lora_adamw(
        x: x,
        weight: w,
        lora_A: a0,
        lora_B: b0,
        m_A: zero_a,
        v_A: zero_a,
        m_B: zero_b,
        v_B: zero_b,
        t: 1,
        lr: 0.01,
    );
    let s2 = lora_adamw(
        x: x,
        weight: w,
        lora_A: s1.lora_A,
        lora_B: s1.lora_B,
        m_A: s1.m_A,
        v_A: s1.v_A,
        m_B: s1.m_B,
        v_B: s1.v_B,
        t: 2,
        lr: 0.01,
    );
    expect_close(
        s2.lora_A,
        [
            [0.08001142454692323, -0.2199285784530768, 0.2799714266148422],
            [-0.019957719240670305, 0.37996228475932975, -0.11993772015538628],
        ],
        1e-5,
    );
    expect_close(
        s2.lora_B,
        [[0.18015671076761033, -0.11994857748674001], [0.03018670926761032, 0.27997142651326]],
        1e-5,
    );
    expect_close(
        s2.m_A,
        [
            [0.27298500019999994, 0.27298500019999994, 0.1819900001333333],
            [0.21598800005999994, 0.21598800005999994, 0.14399200003999996],
        ],
        1e-5,
    );
    expect_close(
        s2.v_A,
        [
            [0.004151736028019403, 0.004151736028019403, 0.0018452160124530685],
            [0.002604700815695858, 0.002604700815695858, 0.0011576448069759368],
        ],
        1e-5,
    );
    expect_close(
        s2.m_B,
        [[0.09799400011999995, 0.3639800001499999], [0.09799400011999995, 0.3639800001499999]],
        1e-5,
    );
    expect_close(
        s2.v_B,
        [
            [5.531872046558562e-4, 0.007380864045519408],
            [5.531872046558562e-4, 0.007380864045519408],
        ],
        1e-5,
    );
}
