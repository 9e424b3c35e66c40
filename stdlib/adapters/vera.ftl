// VeRA (Kopiczko et al., 2023, arXiv 2310.11454) as PEFT computes it (`src/peft/tuners/vera`;
// research/adapters.md §2): frozen random projections shared across layers, two trainable
// scaling vectors per layer. Test vectors: research/adapters.md §6.

/// VeRA: `y = x Wᵀ + b + λ_b ⊙ (B_v (λ_d ⊙ (A_v · dropout(x))))`. `vera_A` (`[R, I]`) and
/// `vera_B` (`[O, R]`) are PEFT's shared frozen projections (generated from
/// `projection_prng_key` and sliced to the layer; pass them in).
adapter vera(
    x: f32[..L, I],
    weight: const f32[O, I],
    bias: const f32[O]?,
    vera_A: const f32[R, I],
    vera_B: const f32[O, R],
    vera_lambda_d: param f32[R],
    vera_lambda_b: param f32[O],
    vera_dropout: f32 = 0.0,
) -> f32[..L, O] requires 0.0 <= vera_dropout < 1.0 {
    x @ weight + (bias ?? 0.0)
        + vera_lambda_b * (vera_lambda_d * (drop(x, vera_dropout) @ vera_A) @ vera_B)
}

/// PEFT's init: `λ_d = d_initial` (0.1), `λ_b = 0` — the adapter starts as the base layer.
init vera(d_initial: f32 = 0.1) {
    vera_lambda_d = full(d_initial);
    vera_lambda_b = zeros();
}

/// `merge`: `W ← W + (λ_b ⊙ B_v)(λ_d ⊙ A_v)`.
merge vera {
    weight = weight + vera_lambda_b * vera_B @ (vera_lambda_d * vera_A);
}

/// `unmerge`: `W ← W − (λ_b ⊙ B_v)(λ_d ⊙ A_v)`.
unmerge vera {
    weight = weight - vera_lambda_b * vera_B @ (vera_lambda_d * vera_A);
}

test "vera matches PEFT on research vector 6" {
    let r = vera(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [[1.0, 0.0, -1.0, 2.0], [0.5, 1.0, 0.0, -1.0], [2.0, -1.0, 1.0, 0.0]],
        vera_A: [[0.1, 0.2, -0.1, 0.0], [0.0, -0.3, 0.2, 0.1]],
        vera_B: [[1.0, 0.5], [-0.5, 1.0], [0.2, -0.2]],
        vera_lambda_d: [0.5, -1.0],
        vera_lambda_b: [1.0, 2.0, -1.0],
    );
    expect_close(r.y, [[5.9, -2.4, 2.9]], 1e-6);
    // λ_b = 0 is the base layer.
    let z = vera(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [[1.0, 0.0, -1.0, 2.0], [0.5, 1.0, 0.0, -1.0], [2.0, -1.0, 1.0, 0.0]],
        vera_A: [[0.1, 0.2, -0.1, 0.0], [0.0, -0.3, 0.2, 0.1]],
        vera_B: [[1.0, 0.5], [-0.5, 1.0], [0.2, -0.2]],
        vera_lambda_d: [0.5, -1.0],
        vera_lambda_b: [0.0, 0.0, 0.0],
    );
    expect_close(z.y, [[6.0, -1.5, 3.0]], 1e-6);
    gradcheck vera(L: 3, I: 4, O: 3, R: 2);
    gradcheck vera(L: 3, I: 4, O: 3, R: 2, vera_dropout: 0.3);
}
