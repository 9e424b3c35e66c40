// LoKr (Yeh et al., 2023, arXiv 2309.14859; LyCORIS) as PEFT computes it
// (`src/peft/tuners/lokr`; research/adapters.md §2): `ΔW = kron(W1, W2) · alpha / r`, with a
// full `W2` (`lokr`) or, as PEFT creates it when `r < max(out_k, in_n) / 2`, a low-rank
// `W2 = lokr_w2_a lokr_w2_b` (`lokr_decomposed`). `W1` is always full here (PEFT decomposes it
// only with `decompose_both`).

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

/// `init` (PEFT `LoKrLayer.reset_adapter_parameters`): `lokr_w1 = 0`, `lokr_w2` kaiming-uniform
/// (a = √5). `(out_l, out_k)` and `(in_m, in_n)` are PEFT's `factorization(O)` and
/// `factorization(I)`: `lokr_w1` is `[out_l, in_m]`, `lokr_w2` is `[out_k, in_n]`.
init lokr(
    out_l: i32,
    out_k: i32,
    in_m: i32,
    in_n: i32,
) requires O1 == out_l, O2 == out_k, I1 == in_m, I2 == in_n, O == out_l * out_k, I == in_m * in_n {
    lokr_w1 = zeros();
    lokr_w2 = kaiming_uniform(fan_in: I2, a: sqrt(5.0));
}

/// `merge`: `W ← W + ΔW`.
merge lokr {
    weight = weight + kron * (alpha / r);
}

/// `unmerge`: `W ← W − ΔW`.
unmerge lokr {
    weight = weight - kron * (alpha / r);
}

/// LoKr with PEFT's decomposed second factor: `W2 = lokr_w2_a lokr_w2_b` (`[O2, R]`, `[R, I2]`),
/// `ΔW = kron(lokr_w1, W2) · alpha / r`, where R is PEFT's rank `r`.
adapter lokr_decomposed(
    x: f32[..L, I],
    weight: const f32[O, I],
    bias: const f32[O]?,
    lokr_w1: param f32[O1, I1],
    lokr_w2_a: param f32[O2, R],
    lokr_w2_b: param f32[R, I2],
    alpha: f32 = 8.0,
) -> f32[..L, O] {
    let kron = (lokr_w1 * (lokr_w2_a @ lokr_w2_b))[(O1, O2) -> O][(I1, I2) -> I];
    x @ weight + (bias ?? 0.0) + x @ (kron * (alpha / R))
}

/// `init`: `lokr_w1 = 0`, `lokr_w2_a` and `lokr_w2_b` kaiming-uniform (a = √5), at rank `r`.
init lokr_decomposed(
    r: i32 = 8,
    out_l: i32,
    out_k: i32,
    in_m: i32,
    in_n: i32,
) requires R == r, O1 == out_l, O2 == out_k, I1 == in_m, I2 == in_n, O == out_l * out_k,
    I == in_m * in_n {
    lokr_w1 = zeros();
    lokr_w2_a = kaiming_uniform(fan_in: R, a: sqrt(5.0));
    lokr_w2_b = kaiming_uniform(fan_in: I2, a: sqrt(5.0));
}

/// `merge`: `W ← W + ΔW`.
merge lokr_decomposed {
    weight = weight + kron * (alpha / R);
}

/// `unmerge`: `W ← W − ΔW`.
unmerge lokr_decomposed {
    weight = weight - kron * (alpha / R);
}

test "lokr's delta is torch.kron of its factors" {
    let k = lokr(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ],
        lokr_w1: [[1.0, 2.0], [0.5, -1.0]],
        lokr_w2: [[0.1, 0.0], [0.2, 0.3]],
        alpha: 8.0,
        r: 4.0,
    );
    expect_close(k.y, [[2.4, 10.8, 2.5, 1.2]], 1e-6);
    gradcheck lokr(L: 3, I: 4, O: 4, O1: 2, I1: 2, O2: 2, I2: 2);
    let d = lokr_decomposed(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ],
        lokr_w1: [[1.0, 2.0], [0.5, -1.0]],
        lokr_w2_a: [[0.5, -1.0], [0.2, 0.4]],
        lokr_w2_b: [[0.1, 0.0], [0.2, 0.3]],
    );
    // W2 = [[-0.15, -0.3], [0.1, 0.12]], scale 8 / 2.
    expect_close(d.y, [[-15.2, 9.6, 8.1, 1.56]], 1e-6);
    gradcheck lokr_decomposed(L: 3, I: 6, O: 4, O1: 2, I1: 2, O2: 2, I2: 3, R: 2);
}
