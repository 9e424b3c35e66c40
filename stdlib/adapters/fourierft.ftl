// FourierFT (Gao et al., 2024, arXiv 2405.03003) as PEFT 0.21's `FourierFTLinear`
// (`peft/tuners/fourierft/layer.py`): n trainable spectral coefficients at fixed positions
// (u_k, v_k) of an O × I spectrum; the weight update is the real part of its 2-D inverse DFT,
// `ΔW = Re(ifft2(dense)) · scaling`. With n ≪ O·I the inverse DFT is computed as the sum it is,
// `ΔW[p, q] = scaling/(O·I) · Σ_k c_k cos(2π(u_k p/O + v_k q/I))`, split by cos(a + b) =
// cos a cos b − sin a sin b into two rank-n products: the forward pass never forms ΔW (cost
// n·(I + O) per row) and needs no FFT builtin. PEFT draws the positions with
// `torch.randperm(O·I, generator=manual_seed(random_loc_seed))[:n]` (`u = idx // I`,
// `v = idx % I`); the caller passes them (`layer.indices[adapter]`'s two rows). Test values:
// PEFT itself.

/// The cos and sin tables `cos(2π (f·p mod P)/P)` of frequencies f at positions p ∈ [0, P)
/// (the product reduced exactly in i64, the angle in f64, stored f32).
fn waves(frequency: i32[N], p: i32[P]) -> (cos: f32[N, P], sin: f32[N, P]) {
    let turns = i64(frequency) * i64(p) % i64(size(P));
    let angle = f64(turns) * (6.283185307179586 / f64(size(P)));
    (cos: f32(cos(angle)), sin: f32(sin(angle)))
}

/// FourierFT on `nn.Linear` (`weight: [O, I]`): `y = x Wᵀ + b + x ΔWᵀ`, where
/// `x ΔWᵀ = s/(O·I) · ((c ⊙ x·cos_vᵀ) cos_u − (c ⊙ x·sin_vᵀ) sin_u)` over the n frequencies.
adapter fourierft(
    x: f32[..L, I],
    weight: const f32[O, I],
    bias: const f32[O]?,
    fourierft_spectrum: param f32[N],
    fourierft_rows: const i32[N],
    fourierft_cols: const i32[N],
    scaling: f32 = 150.0,
) -> f32[..L, O] {
    let along_in = waves(fourierft_cols, iota(I));
    let along_out = waves(fourierft_rows, iota(O));
    let factor = scaling / (f32(size(O)) * f32(size(I)));
    let a = contract(x, along_in.cos, I) * fourierft_spectrum;
    let b = contract(x, along_in.sin, I) * fourierft_spectrum;
    let delta = contract(a, along_out.cos, N) - contract(b, along_out.sin, N);
    x @ weight + (bias ?? 0.0) + factor * delta
}

/// PEFT's init (`init_weights=True`): a zero spectrum of `n_frequency` coefficients, so the layer
/// starts as the base (`init_weights=False` draws them standard normal).
init fourierft(n_frequency: i32 = 1000) requires N == n_frequency {
    fourierft_spectrum = zeros();
}

/// PEFT's merge: `W ← W + ΔW`, ΔW formed densely as `s/(O·I) · (cos_uᵀ diag(c) cos_v −
/// sin_uᵀ diag(c) sin_v)`.
merge fourierft {
    weight = weight + delta_weight(
        fourierft_spectrum,
        fourierft_rows,
        fourierft_cols,
        iota(O),
        iota(I),
        scaling,
    );
}

/// PEFT's unmerge: `W ← W − ΔW`.
unmerge fourierft {
    weight = weight - delta_weight(
        fourierft_spectrum,
        fourierft_rows,
        fourierft_cols,
        iota(O),
        iota(I),
        scaling,
    );
}

/// ΔW = `Re(ifft2(dense)) · scaling` for the spectrum `c` at (rows, cols), dense `[O, I]`.
fn delta_weight(
    c: f32[N],
    rows: i32[N],
    cols: i32[N],
    o: i32[O],
    i: i32[I],
    scaling: f32,
) -> f32[O, I] {
    let u = waves(rows, o);
    let v = waves(cols, i);
    let factor = scaling / (f32(size(O)) * f32(size(I)));
    factor * (contract(u.cos * c, v.cos, N) - contract(u.sin * c, v.sin, N))
}

test "fourierft matches PEFT: forward, gradients and the merged weight" {
    // PEFT 0.21 (f32: its ifft2 path is f32-only): FourierFTConfig(n_frequency=5, scaling=150, random_loc_seed=777) on
    // nn.Linear(6, 4) (positions: the layer's `indices`), spectrum set to the values below;
    // y and the gradients of y.sum(). ΔW (`get_delta_weight`) is checked through the merged
    // forward: x (W + ΔW)ᵀ + b = y.
    let r = fourierft(
        x: [
            [
                -1.0, -0.8181818127632141, -0.6363636255264282, -0.45454543828964233,
                -0.27272725105285645, -0.09090906381607056,
            ],
            [
                0.09090906381607056, 0.27272725105285645, 0.45454543828964233, 0.6363636255264282,
                0.8181818127632141, 1.0,
            ],
        ],
        weight: [
            [
                -0.6442176699638367, -0.5964977145195007, -0.5465683937072754, -0.4946146011352539,
                -0.44082874059677124, -0.3854100704193115,
            ],
            [
                -0.3285638391971588, -0.27050068974494934, -0.21143555641174316,
                -0.15158729255199432, -0.0911775454878807, -0.03043009340763092,
            ],
            [
                0.03043009340763092, 0.0911775454878807, 0.15158729255199432, 0.21143555641174316,
                0.27050068974494934, 0.3285638391971588,
            ],
            [
                0.3854100704193115, 0.44082874059677124, 0.4946146011352539, 0.5465683937072754,
                0.5964977145195007, 0.6442176699638367,
            ],
        ],
        bias: [0.3, -0.2, 0.1, 0.05],
        fourierft_spectrum: [0.02, -0.05, 0.03, 0.01, -0.04],
        fourierft_rows: [3, 0, 3, 2, 0],
        fourierft_cols: [5, 2, 1, 5, 1],
    );
    expect_close(
        r.y,
        [
            [2.2624382972717285, 0.8628307580947876, 0.14193788170814514, -1.0805730819702148],
            [-1.1282565593719482, -0.3193820118904114, 1.324150562286377, 2.310121774673462],
        ],
        1e-5,
    );
    expect_close(
        r.grad.x,
        [
            [
                -2.806941509246826, -0.2099921703338623, 1.013197898864746, -0.13819795846939087,
                1.4599921703338623, 0.6819413900375366,
            ],
            [
                -2.806941509246826, -0.2099921703338623, 1.013197898864746, -0.13819795846939087,
                1.4599921703338623, 0.6819413900375366,
            ],
        ],
        1e-5,
    );
    expect_close(
        r.grad.fourierft_spectrum,
        [0.0, -27.27273178100586, 0.0, 0.0, -27.27273178100586],
        1e-5,
    );
    let merged = fourierft(
        x: [
            [
                -1.0, -0.8181818127632141, -0.6363636255264282, -0.45454543828964233,
                -0.27272725105285645, -0.09090906381607056,
            ],
            [
                0.09090906381607056, 0.27272725105285645, 0.45454543828964233, 0.6363636255264282,
                0.8181818127632141, 1.0,
            ],
        ],
        weight: [
            [
                -0.8317177295684814, -0.37774771451950073, -0.452818363904953, -0.9321146011352539,
                -0.34707871079444885, -0.16666007041931152,
            ],
            [
                -0.953563928604126, -0.21637409925460815, 0.1551910638809204, -0.15158730745315552,
                0.1671958565711975, -0.0845566838979721,
            ],
            [
                -0.7820699214935303, -0.0025724470615386963, 0.5578373074531555,
                0.39893555641174316, 0.676750659942627, 0.2348138391971588,
            ],
            [
                -0.23958998918533325, 0.38670215010643005, 0.7529879808425903, 0.5465683937072754,
                0.9631243348121643, 0.6983442902565002,
            ],
        ],
        bias: [0.3, -0.2, 0.1, 0.05],
        fourierft_spectrum: [0.0, 0.0, 0.0, 0.0, 0.0],
        fourierft_rows: [3, 0, 3, 2, 0],
        fourierft_cols: [5, 2, 1, 5, 1],
    );
    expect_close(
        merged.y,
        [
            [2.2624382972717285, 0.8628307580947876, 0.14193788170814514, -1.0805730819702148],
            [-1.1282565593719482, -0.3193820118904114, 1.324150562286377, 2.310121774673462],
        ],
        1e-5,
    );
    gradcheck fourierft(L: 2, I: 6, O: 4, N: 5, scaling: 3.0);
}
