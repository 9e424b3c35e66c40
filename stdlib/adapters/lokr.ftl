// LoKr (Yeh et al., 2023, arXiv 2309.14859; LyCORIS) as PEFT computes it
// (`src/peft/tuners/lokr`; research/adapters.md §2), with full (not decomposed) Kronecker
// factors: `ΔW = kron(W1, W2) · alpha / r`.

/// LoKr: `ΔW = kron(lokr_w1, lokr_w2) · alpha / r` with `lokr_w1: [O1, I1]`, `lokr_w2: [O2, I2]`
/// and `O = O1·O2`, `I = I1·I2` (row-major, as `torch.kron`); `y = x Wᵀ + b + x ΔWᵀ`. `r` is
/// PEFT's configured rank, which sets the scale even when the factors are not decomposed.
adapter lokr(
    x: f32[..L, I],
    weight: const f32[O, I],
    bias: const f32[O]?,
    lokr_w1: param f32[O1, I1],
    lokr_w2: param f32[O2, I2],
    alpha: f32 = 8.0,
    r: f32 = 8.0,
) -> f32[..L, O] requires r > 0.0 {
    let kron = (lokr_w1 * lokr_w2)[(O1, O2) -> O][(I1, I2) -> I];
    x @ weight + (bias ?? 0.0) + x @ (kron * (alpha / r))
}

/// `merge`: `W ← W + ΔW`.
merge lokr {
    weight = weight + kron * (alpha / r);
}

/// `unmerge`: `W ← W − ΔW`.
unmerge lokr {
    weight = weight - kron * (alpha / r);
}

test "lokr's delta is torch.kron of its factors" {
    let k = lokr(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]],
        lokr_w1: [[1.0, 2.0], [0.5, -1.0]],
        lokr_w2: [[0.1, 0.0], [0.2, 0.3]],
        alpha: 8.0,
        r: 4.0,
    );
    expect_close(k.y, [[2.4, 10.8, 2.5, 1.2]], 1e-6);
    gradcheck lokr(L: 3, I: 4, O: 4, O1: 2, I1: 2, O2: 2, I2: 2);
}
