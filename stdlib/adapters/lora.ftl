// LoRA (Hu et al., 2021, arXiv 2106.09685) and rsLoRA (Kalajdzievski, 2023, arXiv 2312.03732)
// with PEFT's names and layout (`src/peft/tuners/lora/layer.py`; research/adapters.md §1.2–1.5):
// `weight` is the base layer's `[O, I]`, `lora_A` is `[R, I]`, `lora_B` is `[O, R]`; dropout
// applies only to the LoRA branch's input. Test vectors: research/adapters.md §6.

/// LoRA: `y = x Wᵀ + b + s · (dropout(x) Aᵀ) Bᵀ`, `s = lora_alpha / r`, or `lora_alpha / √r` with
/// `use_rslora` (PEFT `LoraConfig`, `Linear.forward`). R is bound by `lora_A`'s shape.
adapter lora(
    x: f32[..L, I],
    weight: const f32[O, I],
    bias: const f32[O]?,
    lora_A: param f32[R, I],
    lora_B: param f32[O, R],
    lora_alpha: f32 = 8.0,
    lora_dropout: f32 = 0.0,
    use_rslora: static bool = false,
) -> f32[..L, O] requires 0.0 <= lora_dropout < 1.0 {
    let s = if use_rslora { lora_alpha / sqrt(R) } else { lora_alpha / R };
    x @ weight + (bias ?? 0.0) + s * (drop(x, lora_dropout) @ lora_A @ lora_B)
}

/// PEFT's default init (`init_lora_weights=True`): `lora_A ~ kaiming_uniform(a = √5)` over its
/// fan-in I (bound 1/√I), `lora_B = 0`, so the adapter starts as the base layer.
init lora(r: i32 = 8) requires R == r {
    lora_A = kaiming_uniform(fan_in: I, a: sqrt(5.0));
    lora_B = zeros();
}

/// `merge_and_unload`: `W ← W + s·B A`.
merge lora {
    weight = weight + s * (lora_B @ lora_A);
}

/// `unmerge`: `W ← W − s·B A`.
unmerge lora {
    weight = weight - s * (lora_B @ lora_A);
}

test "lora matches PEFT on research vector 6 (forward, bias, rsLoRA, gradients)" {
    // W 3x4, A 2x4, B 3x2, x = [1, 2, 3, 4], alpha = 4, r = 2: s = 2.
    let r = lora(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [[1.0, 0.0, -1.0, 2.0], [0.5, 1.0, 0.0, -1.0], [2.0, -1.0, 1.0, 0.0]],
        lora_A: [[0.1, 0.2, -0.1, 0.0], [0.0, -0.3, 0.2, 0.1]],
        lora_B: [[1.0, 0.5], [-0.5, 1.0], [0.2, -0.2]],
        lora_alpha: 4.0,
    );
    expect_close(r.y, [[6.8, -0.9, 2.92]], 1e-6);
    // Tests feed grad.y = ones: dA = s (Bᵀ 1) xᵀ.
    expect_close(r.grad.lora_A, [[1.4, 2.8, 4.2, 5.6], [2.6, 5.2, 7.8, 10.4]], 1e-6);
    let b = lora(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [[1.0, 0.0, -1.0, 2.0], [0.5, 1.0, 0.0, -1.0], [2.0, -1.0, 1.0, 0.0]],
        bias: [0.1, -0.2, 0.3],
        lora_A: [[0.1, 0.2, -0.1, 0.0], [0.0, -0.3, 0.2, 0.1]],
        lora_B: [[1.0, 0.5], [-0.5, 1.0], [0.2, -0.2]],
        lora_alpha: 4.0,
    );
    expect_close(b.y, [[6.9, -1.1, 3.22]], 1e-6);
    let rs = lora(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [[1.0, 0.0, -1.0, 2.0], [0.5, 1.0, 0.0, -1.0], [2.0, -1.0, 1.0, 0.0]],
        lora_A: [[0.1, 0.2, -0.1, 0.0], [0.0, -0.3, 0.2, 0.1]],
        lora_B: [[1.0, 0.5], [-0.5, 1.0], [0.2, -0.2]],
        lora_alpha: 4.0,
        use_rslora: true,
    );
    expect_close(rs.y, [[7.131370849898476, -0.6514718625761426, 2.8868629150101524]], 1e-6);
    gradcheck lora(L: 3, I: 4, O: 3, R: 2);
    gradcheck lora(L: 3, I: 4, O: 3, R: 2, use_rslora: true, lora_dropout: 0.25);
}
