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

/// PEFT `init_lora_weights="gaussian"`: `lora_A ~ N(0, (1/r)²)`, `lora_B = 0`.
step gaussian_init(weight: f32[O, I], r: i32 = 8) -> (lora_A: f32[R, I], lora_B: f32[O, R])
requires R == r {
    (lora_A: randn(R, I) / f32(r), lora_B: zeros(O, R))
}

/// PiSSA (Meng et al., 2024, arXiv 2404.02948), PEFT `init_lora_weights="pissa"`: with the thin
/// SVD `W = V diag(S) Uh` (PEFT's names), `S_r ← S_r / s`, `lora_A = diag(√S_r) Uh_r`,
/// `lora_B = V_r diag(√S_r)`, and the base becomes the residual `W − s·B A` (the model's output
/// is unchanged). Singular vectors' signs are the decomposition's choice; `B A` and the residual
/// do not depend on them.
step pissa_init(
    weight: f32[O, I],
    r: i32 = 8,
    lora_alpha: f32 = 8.0,
    use_rslora: static bool = false,
) -> (weight: f32[O, I], lora_A: f32[R, I], lora_B: f32[O, R]) requires R == r {
    let s = if use_rslora { lora_alpha / sqrt(R) } else { lora_alpha / R };
    let (v, sv, uh) = svd(weight, O, I -> K);
    let top = iota(R);
    let root = sqrt(sv[K: top] / s);
    let a = root * uh[K: top];
    let b = v[K: top] * root;
    (weight: weight - s * (b @ a), lora_A: a, lora_B: b)
}

/// OLoRA (Büyükakyüz, 2024, arXiv 2406.01775), PEFT `init_lora_weights="olora"`: with the reduced
/// QR `W = Q R`, `lora_B = Q[:, :r]`, `lora_A = R[:r]`, base `W − s·B A`.
step olora_init(
    weight: f32[O, I],
    r: i32 = 8,
    lora_alpha: f32 = 8.0,
    use_rslora: static bool = false,
) -> (weight: f32[O, I], lora_A: f32[R, I], lora_B: f32[O, R]) requires R == r {
    let s = if use_rslora { lora_alpha / sqrt(R) } else { lora_alpha / R };
    let (q, tri) = qr(weight, O, I -> K);
    let top = iota(R);
    let a = tri[K: top];
    let b = q[K: top];
    (weight: weight - s * (b @ a), lora_A: a, lora_B: b)
}

test "pissa and olora move the top-r part into the adapter, keeping W_res + s·B A = W" {
    // Singular values 3 > 2 > 1: PiSSA scales S by 1/s, so s·B A is exactly the rank-2
    // principal part (the top-left block) and the residual keeps only the 1.
    let p = pissa_init(weight: [[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], r: 2, lora_alpha: 4.0);
    expect_close(p.weight, [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], 1e-6);
    // OLoRA does not rescale: B A = Q_r R_r is the top block, and the base becomes W − s·B A
    // (with s = 2 the top block flips sign), so that W_res + s·B A = W still holds.
    let o = olora_init(weight: [[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], r: 2, lora_alpha: 4.0);
    expect_close(o.weight, [[-3.0, 0.0, 0.0], [0.0, -2.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], 1e-6);
}
