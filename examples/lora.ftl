/// LoRA (Hu et al., 2021) with PEFT's names: y = x Wᵀ + b + s · (drop(x) Aᵀ) Bᵀ, where
/// s = lora_alpha / r, or lora_alpha / √r with `use_rslora`. R is bound by lora_A's shape.
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

/// PEFT's default init: A ~ kaiming_uniform(a = √5) over its fan-in I, B = 0.
init lora(r: i32 = 8) requires R == r {
    lora_A = kaiming_uniform(fan_in: I, a: sqrt(5.0));
    lora_B = zeros();
}

merge lora {
    weight = weight + s * (lora_B @ lora_A);
}

unmerge lora {
    weight = weight - s * (lora_B @ lora_A);
}

test "lora with zero B is the base layer" {
    let r = lora(
        x: [[1.0, 2.0]],
        weight: [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
        lora_A: [[0.5, -0.5]],
        lora_B: [[0.0], [0.0], [0.0]],
    );
    expect_close(r.y, [[1.0, 2.0, 3.0]], 1e-6);
    gradcheck lora(L: 2, I: 3, O: 4, R: 2);
}
