// LoHa (Hyeon-Woo et al., 2021, FedPara, arXiv 2108.06098; LyCORIS) as PEFT computes it
// (`src/peft/tuners/loha`; research/adapters.md §2): a Hadamard product of two low-rank
// products. PEFT's `rank_dropout` and `module_dropout` (training-time regularizers) are not
// modelled here.

/// LoHa: `ΔW = ((W1a W1b) ⊙ (W2a W2b)) · alpha / r`, `y = x Wᵀ + b + x ΔWᵀ`, with PEFT's names
/// (`hada_w1_a: [O, R]`, `hada_w1_b: [R, I]`, same for `w2`).
adapter loha(
    x: f32[..L, I],
    weight: const f32[O, I],
    bias: const f32[O]?,
    hada_w1_a: param f32[O, R],
    hada_w1_b: param f32[R, I],
    hada_w2_a: param f32[O, R],
    hada_w2_b: param f32[R, I],
    alpha: f32 = 8.0,
) -> f32[..L, O] {
    let delta = hada_w1_a @ hada_w1_b * (hada_w2_a @ hada_w2_b) * (alpha / R);
    x @ weight + (bias ?? 0.0) + x @ delta
}

/// PEFT's init: `w1_a`, `w1_b`, `w2_a` kaiming-uniform (a = √5), `w2_b = 0` (a no-op adapter).
init loha(r: i32 = 8) requires R == r {
    hada_w1_a = kaiming_uniform(fan_in: R, a: sqrt(5.0));
    hada_w1_b = kaiming_uniform(fan_in: I, a: sqrt(5.0));
    hada_w2_a = kaiming_uniform(fan_in: R, a: sqrt(5.0));
    hada_w2_b = zeros();
}

/// `merge`: `W ← W + ΔW`.
merge loha {
    weight = weight + delta;
}

/// `unmerge`: `W ← W − ΔW`.
unmerge loha {
    weight = weight - delta;
}

test "loha is the Hadamard product of two low-rank deltas" {
    let r = loha(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [[1.0, 0.0, -1.0, 2.0], [0.5, 1.0, 0.0, -1.0], [2.0, -1.0, 1.0, 0.0]],
        hada_w1_a: [[1.0, 0.5], [-0.5, 1.0], [0.2, -0.2]],
        hada_w1_b: [[0.1, 0.2, -0.1, 0.0], [0.0, -0.3, 0.2, 0.1]],
        hada_w2_a: [[0.3, -0.1], [0.2, 0.4], [-0.5, 0.1]],
        hada_w2_b: [[1.0, 0.0, 0.5, -0.5], [0.2, 0.1, 0.0, 0.3]],
        alpha: 4.0,
    );
    expect_close(r.y, [[5.982, -1.426, 3.03]], 1e-6);
    gradcheck loha(L: 3, I: 4, O: 3, R: 2);
}
