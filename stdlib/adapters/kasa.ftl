// KaSA (Wang et al., 2024, arXiv 2412.06071) as PEFT 0.21's LoRA variant
// (`LoraConfig(kasa_config=KasaConfig(...))`, `KasaLinearVariant` in
// `peft/tuners/lora/variants.py`). Layout as `lora.ftl`: `weight` `[O, I]`, `lora_A` `[R, I]`,
// `lora_B` `[O, R]`, plus the learnable singular values `lora_diag` `[R]`.

/// KaSA: `y = x Wᵀ + b + s · ((dropout(x) Aᵀ) ⊙ ΔΣ) Bᵀ`, `s = lora_alpha / r` (or `/ √r` with
/// `use_rslora`), where `W` is the base weight after `init`'s SVD truncation. The auxiliary loss
/// is PEFT's `LoraModel._get_kasa_loss` for this layer, `β·Σ ΔΣ² + γ·(‖BᵀB − I‖_F + ‖AAᵀ − I‖_F)`
/// (paper Eq. 9–11). PEFT applies it only when the training loop adds `_get_kasa_loss` (its
/// `KasaConfig` defaults are β = 1e-4, γ = 1e-3), so here both default to 0.
adapter kasa(
    x: f32[..L, I],
    weight: const f32[O, I],
    bias: const f32[O]?,
    lora_A: param f32[R, I],
    lora_B: param f32[O, R],
    lora_diag: param f32[R],
    lora_alpha: f32 = 8.0,
    lora_dropout: f32 = 0.0,
    use_rslora: static bool = false,
    kasa_beta: f32 = 0.0,
    kasa_gamma: f32 = 0.0,
) -> f32[..L, O] requires 0.0 <= lora_dropout < 1.0 {
    let s = if use_rslora { lora_alpha / sqrt(R) } else { lora_alpha / R };
    let gram_b = contract(lora_B, lora_B[R -> R'], O) - eye(R, R');
    let gram_a = contract(lora_A, lora_A[R -> R'], I) - eye(R, R');
    loss kasa_beta * sum(lora_diag * lora_diag, R)
        + kasa_gamma * (sqrt(sum(gram_b * gram_b, R, R')) + sqrt(sum(gram_a * gram_a, R, R')));
    x @ weight + (bias ?? 0.0) + s * (drop(x, lora_dropout) @ lora_A * lora_diag @ lora_B)
}

/// PEFT's init: the base weight loses its `r` smallest singular components (`W = U S Vh`,
/// keeping the first `k − r` of `k = min(O, I)`; PEFT's `_truncate_base_weight`, destructive),
/// `lora_A` is kaiming-uniform (a = √5), `lora_B` zero and `lora_diag` standard normal.
init kasa(r: i32 = 8) requires R == r {
    let (u, sv, vh) = svd(weight, O, I -> K);
    weight = contract(u * where(iota(K) < size(K) - R, sv, 0.0), vh, K);
    lora_A = kaiming_uniform(fan_in: I, a: sqrt(5.0));
    lora_B = zeros();
    lora_diag = randn(R);
}

/// PEFT's merge: `W ← W + s · (B ⊙ ΔΣ) A` (onto the truncated weight).
merge kasa {
    weight = weight + s * contract(lora_B * lora_diag, lora_A, R);
}

/// PEFT's unmerge: `W ← W − s · (B ⊙ ΔΣ) A` (back to the truncated weight, not the original).
unmerge kasa {
    weight = weight - s * contract(lora_B * lora_diag, lora_A, R);
}

test "kasa matches PEFT: forward, gradients with the auxiliary loss, merge" {
    // PEFT 0.21 itself (f64): LoraConfig(r=2, lora_alpha=8, kasa_config=KasaConfig(beta=0.01,
    // gamma=0.02)) on nn.Linear(5, 4); `weight` is PEFT's truncated base weight; gradients of
    // y.sum() + model._get_kasa_loss().
    let r = kasa(
        x: [
            [
                -1.0, -0.8571428571428572, -0.7142857142857143, -0.5714285714285714,
                -0.4285714285714286,
            ],
            [
                -0.28571428571428575, -0.1428571428571429, 5.551115123125783e-17,
                0.1428571428571429, 0.28571428571428575,
            ],
            [0.4285714285714286, 0.5714285714285714, 0.7142857142857143, 0.8571428571428572, 1.0],
        ],
        weight: [
            [
                0.4147798418998718, 0.1918780654668808, -0.05969361960887909, 0.36729395389556885,
                0.15042363107204437,
            ],
            [
                0.1330995112657547, -0.28806576132774353, -0.19510690867900848, 0.144497811794281,
                -0.03734796121716499,
            ],
            [
                0.02361968345940113, -0.2743065357208252, -0.14693990349769592,
                0.04264524579048157, -0.06128065288066864,
            ],
            [
                0.10930122435092926, -0.10815120488405228, -0.09560154378414154,
                0.10887909680604935, 7.738769054412842e-4,
            ],
        ],
        bias: [
            -0.25905610025815295, 0.15808027546219416, -0.3490633949321343, 0.021244487771611753,
        ],
        lora_A: [
            [
                -0.5, -0.3888888888888889, -0.2777777777777778, -0.16666666666666669,
                -0.05555555555555558,
            ],
            [0.05555555555555558, 0.16666666666666669, 0.2777777777777778, 0.3888888888888889, 0.5],
        ],
        lora_B: [
            [0.3, 0.2],
            [0.1, 1.3877787807814457e-17],
            [-0.10000000000000005, -0.20000000000000004],
            [-0.30000000000000004, -0.4],
        ],
        lora_diag: [0.7, -1.2],
        kasa_beta: 0.01,
        kasa_gamma: 0.02,
    );
    expect_close(
        r.y,
        [
            [0.6966525811435997, 0.6669146646809296, -1.1529339138575423, -2.5562838417767706],
            [-0.32857465262391017, 0.21562023821466508, -0.22010530001974526, 0.19266957445720118],
            [-1.3538018863914199, -0.23567418825159947, 0.7127233138180515, 2.941622990691173],
        ],
        1e-5,
    );
    expect_close(r.aux_loss, 0.057821616530418396, 1e-5);
    expect_close(
        r.grad.x,
        [
            [
                0.7874669276426237, -0.15864543646574014, 0.03599135776360829, 1.4099827749530474,
                1.012568893879652,
            ],
            [
                0.7874669276426237, -0.15864543646574014, 0.03599135776360829, 1.4099827749530474,
                1.012568893879652,
            ],
            [
                0.7874669276426237, -0.15864543646574014, 0.03599135776360829, 1.4099827749530474,
                1.012568893879652,
            ],
        ],
        1e-5,
    );
    expect_close(
        r.grad.lora_A,
        [
            [
                0.011731019243598118, 0.00747787160798914, 0.0032247223425656557,
                -0.0010284258751199315, -0.005281574092805519,
            ],
            [
                -1.64043271162148, -0.8218287168656079, -0.0032247225753963323, 0.8153792717148154,
                1.6339832664706877,
            ],
        ],
        1e-5,
    );
    expect_close(
        r.grad.lora_B,
        [
            [1.326310383466383, -2.28894484232712],
            [1.3305241533865533, -2.285011990669383],
            [1.3347379231903083, -2.2810791388952305],
            [1.338951693226894, -2.2771462875285318],
        ],
        1e-5,
    );
    expect_close(r.grad.lora_diag, [0.013999999500810994, -0.7859047621133783], 1e-5);
    gradcheck kasa(L: 2, I: 5, O: 4, R: 2, kasa_beta: 0.01, kasa_gamma: 0.02);
}
