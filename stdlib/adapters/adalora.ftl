// AdaLoRA (Zhang et al., 2023, arXiv 2303.10512) as PEFT computes it (`src/peft/tuners/adalora`:
// `SVDLinear.forward`, `get_delta_weight`, `AdaLoraModel.forward`; research/adapters.md §2):
// an SVD-shaped update `P Λ Q` with `lora_A` = Q `[R, I]`, `lora_E` = Λ, `lora_B` = P `[O, R]`.
// PEFT stores `lora_E` as `[r, 1]`; here it is `[R]` (reshape when loading PEFT files).
// The rank budget (importance scores, cubic schedule, masking `lora_E`) is an optimizer-level
// rule that runs between steps (`RankAllocator`); it is not part of the forward and not here.

/// AdaLoRA: `y = x Wᵀ + b + (dropout(x) (A ⊙ E)ᵀ) Bᵀ · s / (ranknum + 1e-5)` with
/// `s = lora_alpha` if `lora_alpha > 0` else `r`, and `ranknum = r` (PEFT's quirk: the scale is
/// divided by the rank plus 1e-5, in f32). The auxiliary loss is PEFT's orthogonal
/// regularisation for one layer: `orth_reg_weight · (‖A Aᵀ − I‖_F + ‖Bᵀ B − I‖_F) / 2`.
/// PEFT averages the norms over every adapted matrix of the model, so a model with `n` adapted
/// layers sums these auxiliary losses and divides by `n`.
adapter adalora(
    x: f32[..L, I],
    weight: const f32[O, I],
    bias: const f32[O]?,
    lora_A: param f32[R, I],
    lora_E: param f32[R],
    lora_B: param f32[O, R],
    lora_alpha: f32 = 8.0,
    lora_dropout: f32 = 0.0,
    orth_reg_weight: f32 = 0.5,
) -> f32[..L, O] requires 0.0 <= lora_dropout < 1.0, orth_reg_weight > 0.0 {
    let s = where(lora_alpha > 0.0, lora_alpha, f32(R)) / (f32(R) + 1e-5);
    let aat = lora_A @ lora_A[R -> R'];
    let eye = where(iota(R) == iota(R'), 1.0, 0.0);
    let qq = aat - eye;
    let pp = lora_B @ lora_B[R -> R'] - eye;
    loss orth_reg_weight * (sqrt(sum(qq * qq, R, R')) + sqrt(sum(pp * pp, R, R'))) / 2.0;
    x @ weight + (bias ?? 0.0) + s * (drop(x, lora_dropout) @ (lora_A * lora_E) @ lora_B)
}

/// `init` (PEFT `AdaLoraLayer.reset_lora_parameters`): `E = 0`, `A, B ~ N(0, 0.02²)`, at
/// AdaLoRA's initial rank `init_r` (12 in `AdaLoraConfig`).
init adalora(init_r: i32 = 12) requires R == init_r {
    lora_E = zeros();
    lora_A = randn(R, I) * 0.02;
    lora_B = randn(O, R) * 0.02;
}

/// `merge`: `W ← W + B (A ⊙ E) · s / (ranknum + 1e-5)`.
merge adalora {
    weight = weight + s * (lora_B @ (lora_A * lora_E));
}

/// `unmerge`: `W ← W − B (A ⊙ E) · s / (ranknum + 1e-5)`.
unmerge adalora {
    weight = weight - s * (lora_B @ (lora_A * lora_E));
}

test "adalora matches PEFT's SVDLinear forward and orthogonal regularisation" {
    // Values from PEFT's formulas in f64 with ranknum + 1e-5 rounded to f32 (2.00001).
    let r = adalora(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [[1.0, 0.0, -1.0, 2.0], [0.5, 1.0, 0.0, -1.0], [2.0, -1.0, 1.0, 0.0]],
        bias: [0.1, -0.2, 0.3],
        lora_A: [[0.1, 0.2, -0.1, 0.0], [0.0, -0.3, 0.2, 0.1]],
        lora_E: [0.5, -2.0],
        lora_B: [[1.0, 0.5], [-0.5, 1.0], [0.2, -0.2]],
        lora_alpha: 4.0,
    );
    expect_close(r.y, [[5.500003004059055, -3.3999914884993423, 3.6599981975645663]], 1e-6);
    expect_close(r.aux_loss, 0.4232667468288119, 1e-6);
    // lora_alpha = 0 falls back to s = r.
    let z = adalora(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [[1.0, 0.0, -1.0, 2.0], [0.5, 1.0, 0.0, -1.0], [2.0, -1.0, 1.0, 0.0]],
        lora_A: [[0.1, 0.2, -0.1, 0.0], [0.0, -0.3, 0.2, 0.1]],
        lora_E: [0.5, -2.0],
        lora_B: [[1.0, 0.5], [-0.5, 1.0], [0.2, -0.2]],
        lora_alpha: 0.0,
    );
    expect_close(z.y, [[5.700001502029528, -2.349995744249671, 3.1799990987822833]], 1e-6);
    gradcheck adalora(L: 3, I: 4, O: 3, R: 2);
    gradcheck adalora(L: 3, I: 4, O: 3, R: 2, lora_dropout: 0.25);
}
