// LoRA (Hu et al., 2021, arXiv 2106.09685) and rsLoRA (Kalajdzievski, 2023, arXiv 2312.03732)
// with PEFT's names and layout (`src/peft/tuners/lora/layer.py`; research/adapters.md §1.2–1.5):
// `weight` is the base layer's `[O, I]`, `lora_A` is `[R, I]`, `lora_B` is `[O, R]`; dropout
// applies only to the LoRA branch's input. Test vectors: research/adapters.md §6.
//
// Every adapter of the library follows PEFT's layouts (`weight: [O, I]`, `x: [..L, I]`,
// `y: [..L, O]`) and takes an optional `bias: const f32[O]?`; `ftc run` writes `y` and, given
// `grad.y`, `grad.x` and `grad.<param>`; `init`, `merge`, `unmerge` run as `--entry NAME.init`
// and so on. Besides PEFT's default init, this module has PEFT's other inits as steps
// (`gaussian_init`, `pissa_init`, `olora_init`) and the data-driven ones on the tensors PEFT's
// preprocessing collects (`lora_ga_init`, `corda_covariance` + `corda_init`, `eva_init`),
// checked against PEFT's own functions (`tests/reference/peft_inits.py`) with signs made
// canonical; PEFT's randomized `svd_lowrank` is replaced by the exact SVD it approximates, and
// LoRA-GA's `direction="random"`, EVA's rank redistribution across layers and its convergence
// loop are left to the caller. The adapters are also checked on random inputs against PEFT's
// layers (`compiler/python/tests/test_peft_layers.py`) or their plain-Python transcriptions
// (`tests/reference/peft_adapters.py`): `y`, gradients, merge → forward = forward and merge →
// unmerge = identity.

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
step gaussian_init(weight: f32[O, I], r: i32 = 8) -> (lora_A: f32[R, I], lora_B: f32[O, R]) requires R == r {
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

/// LoRA-GA (Wang et al., 2024, arXiv 2407.05000), PEFT `init_lora_weights="lora_ga"`
/// (`Linear.lora_ga_init`): from the thin SVD of the base weight's gradient `grad = U S Vh`
/// (PEFT's `preprocess_loraga` averages it over its calibration steps; pass that average),
/// `lora_A` takes r rows of Vh and `lora_B` r columns of U scaled by their singular values,
/// picked by `direction` (PEFT's `ArB2r` as `ar_b2r`: A from components [0, r), B from [r, 2r);
/// `A2rBr` as `a2r_br`, the reverse; `ArBr` as `ar_br`: A odd, B even), then scaled (`stable`: B·O^¼/√stable_gamma; `weight_svd`: B·σ₁(W)/S_B[0];
/// `gd_scale`: both ÷ s; `unit`: none), and the base becomes `W − s·B A`. PEFT runs the
/// randomized `torch.svd_lowrank` (q = 4r, 4 iterations): this is the exact SVD it approximates,
/// signs canonical (each U column's largest entry positive); `direction="random"` (a torch
/// `randperm`) is not supported.
step lora_ga_init(
    weight: f32[O, I],
    grad: f32[O, I],
    r: i32 = 8,
    lora_alpha: f32 = 8.0,
    use_rslora: static bool = false,
    direction: enum { ar_br, a2r_br, ar_b2r } = ar_b2r,
    scale: enum { stable, weight_svd, gd_scale, unit } = stable,
    stable_gamma: f32 = 16.0,
) -> (weight: f32[O, I], lora_A: f32[R, I], lora_B: f32[O, R]) requires R == r, 0 < r,
    2 * r <= size(O), 2 * r <= size(I), stable_gamma > 0.0 {
    let s = if use_rslora { lora_alpha / sqrt(R) } else { lora_alpha / R };
    let (u, sv, vh) = svd(grad, O, I -> K);
    let j = iota(R);
    let a_index = match direction {
        ar_br => 2 * j + 1,
        a2r_br => r + j,
        ar_b2r => j,
    };
    let b_index = match direction {
        ar_br => 2 * j,
        a2r_br => j,
        ar_b2r => r + j,
    };
    let s_b = sv[K: b_index];
    let a = vh[K: a_index];
    let b = u[K: b_index] * s_b;
    let scaled_a = match scale {
        stable => a,
        weight_svd => a,
        gd_scale => a / s,
        unit => a,
    };
    // σ₁(W) (only the `weight_svd` variant reads it; the others compile without this SVD).
    let (wu, ws, wvh) = svd(weight, O, I -> K2);
    let first = s_b[R: 0];
    let scaled_b = match scale {
        stable => b * (pow(f32(size(O)), 0.25) / sqrt(stable_gamma)),
        weight_svd => where(first > 0.0, b * (ws[K2: 0] / max(first, 1e-30)), b),
        gd_scale => b / s,
        unit => b,
    };
    (weight: weight - s * (scaled_b @ scaled_a), lora_A: scaled_a, lora_B: scaled_b)
}

/// CorDA (Yang et al., 2024, arXiv 2406.05223), PEFT `init_lora_weights="corda"`
/// (`collect_eigens_for_layer`, `crop_corda_eigens`, `Linear.corda_init`): with the layer
/// inputs' covariance C (`corda_covariance`), damped `C' = C + damp·mean(diag C)·I`, the thin SVD
/// `W C' = U S Vh` and `V = (Vh C'⁻¹)ᵀ`; `ipm` keeps the r largest components, `kpm` the r
/// smallest; `S ← S/s`, `lora_A = √S·Vᵀ`, `lora_B = U·√S`, base `W − s·B A`. PEFT doubles `damp`
/// (from 0.01) until `‖C' C'⁻¹ − I‖_F < 0.05`; `inverse_error` is that norm, so a caller reruns
/// with `2·damp` while it is not below 0.05.
step corda_init(
    weight: f32[O, I],
    covariance: f32[I, I'],
    r: i32 = 8,
    lora_alpha: f32 = 8.0,
    use_rslora: static bool = false,
    corda_method: enum { ipm, kpm } = ipm,
    damp: f32 = 0.01,
) -> (weight: f32[O, I], lora_A: f32[R, I], lora_B: f32[O, R], inverse_error: f32) requires R == r,
    0 < r, r <= size(O), r <= size(I), damp >= 0.0 {
    let s = if use_rslora { lora_alpha / sqrt(R) } else { lora_alpha / R };
    let diagonal = sum(where(iota(I) == iota(I'), covariance, 0.0), I, I');
    let fixed = covariance + eye(I, I') * (diagonal / f32(size(I)) * damp);
    let fixed_inv = inv(fixed, I, I');
    let product = contract(fixed, fixed_inv[I -> J][I' -> I'], I');
    let residual = product - eye(I, J);
    let (u, sv, vh) = svd(contract(weight, fixed[I -> I''][I' -> I], I)[I'' -> I], O, I -> K);
    let v = contract(vh[I -> I''], fixed_inv[I -> I''][I' -> I], I'');
    let k = match corda_method {
        ipm => iota(R),
        kpm => size(K) - r + iota(R),
    };
    let root = sqrt(sv[K: k] / s);
    let a = root * v[K: k];
    let b = u[K: k] * root;
    (
        weight: weight - s * (b @ a),
        lora_A: a,
        lora_B: b,
        inverse_error: sqrt(sum(residual * residual, I, J)),
    )
}

/// The layer-input covariance CorDA collects (`calib_cov_distribution`'s hook): each calibration
/// sample's inputs `x_n: [T, I]` divided by `|max(x_n)|` (PEFT's quirk: the signed maximum's
/// magnitude, not the largest magnitude), `C = mean_n x_nᵀ x_n`.
step corda_covariance(inputs: f32[N, T, I]) -> (covariance: f32[I, I']) {
    let scaled = inputs / abs(max(inputs, T, I));
    (covariance: contract(scaled, scaled[I -> I'], T, N) / f32(size(N)))
}

/// EVA (Paischer et al., 2024, arXiv 2410.07170), PEFT `init_lora_weights="eva"`
/// (`get_eva_state_dict`): `lora_A` is the top r principal components of the layer's inputs
/// `activations: [N, I]` (PCA of the centred rows, as PEFT's `IncrementalPCA` over all its
/// batches; signs as its `_svd_flip(u_based_decision=False)`: each component's largest entry
/// positive), divided by √(singular value) with `whiten`; `lora_B = 0`. PEFT's rank
/// redistribution across layers (`rho`) and its convergence test are the caller's loop; PEFT runs
/// the randomized `svd_lowrank` (q = 2r), this the exact SVD it approximates. `weight` gives the
/// layer's shape (B is `[O, r]`).
step eva_init(
    weight: f32[O, I],
    activations: f32[N, I],
    r: i32 = 8,
    whiten: static bool = false,
) -> (lora_A: f32[R, I], lora_B: f32[O, R]) requires R == r, 0 < r, r <= size(I), r <= size(N) {
    let centred = activations - mean(activations, N);
    let (u, sv, vh) = svd(centred, N, I -> K);
    let top = vh[K: iota(R)];
    let largest = top[I: argmax(abs(top), I)];
    let signed = top * sign(largest);
    let a = if whiten { signed / sqrt(sv[K: iota(R)]) } else { signed };
    (lora_A: a, lora_B: zeros(O, R))
}

test "pissa and olora move the top-r part into the adapter, keeping W_res + s·B A = W" {
    // Singular values 3 > 2 > 1: PiSSA scales S by 1/s, so s·B A is exactly the rank-2
    // principal part (the top-left block) and the residual keeps only the 1.
    let p = pissa_init(
        weight: [[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]],
        r: 2,
        lora_alpha: 4.0,
    );
    expect_close(
        p.weight,
        [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]],
        1e-6,
    );
    // OLoRA does not rescale: B A = Q_r R_r is the top block, and the base becomes W − s·B A
    // (with s = 2 the top block flips sign), so that W_res + s·B A = W still holds.
    let o = olora_init(
        weight: [[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]],
        r: 2,
        lora_alpha: 4.0,
    );
    expect_close(
        o.weight,
        [[-3.0, 0.0, 0.0], [0.0, -2.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]],
        1e-6,
    );
}

test "lora_ga_init is PEFT's lora_ga_init (every direction, every scale)" {
    // PEFT 0.21's `Linear.lora_ga_init` (r = 2, lora_alpha = 4) with `_peft_loraga_grad` = g;
    // its `svd_lowrank` is exact here (q = min(4r, 5) = 5 = the rank); signs made canonical
    // (each singular vector's U column with its largest entry positive) on PEFT's output, and
    // the residual W − s·B A recomputed from them. `weight_svd`: PEFT's formula with the exact
    // σ₁(W) (PEFT estimates it with a random `svd_lowrank(W, q=r)`). The values come from
    // tests/reference/peft_inits.py.
    let w = [
        [
            -1.1258398294448853, -1.152360200881958, -0.2505785822868347, -0.4338788092136383,
            0.8487103581428528,
        ],
        [
            0.6920091509819031, -0.31601276993751526, -2.1152193546295166, 0.32227492332458496,
            -1.2633347511291504,
        ],
        [
            0.34998318552970886, 0.30813392996788025, 0.11984150856733322, 1.237657904624939,
            -0.14347384870052338,
        ],
        [
            -0.1116093322634697, -0.6135830879211426, 0.03159274160861969, -0.4926769733428955,
            0.2484147548675537,
        ],
        [
            0.4396958351135254, 0.11241118609905243, -0.8410648107528687, -2.316041946411133,
            -0.10230965167284012,
        ],
        [
            0.7924439907073975, -0.28966769576072693, 0.05250748619437218, 0.5228604674339294,
            2.3022053241729736,
        ],
    ];
    let g = [
        [
            0.46913036704063416, 0.4277610778808594, -0.8413624167442322, 1.4183506965637207,
            2.110714912414551,
        ],
        [
            0.08892185986042023, -0.20154353976249695, -0.4896929860115051, -2.569115161895752,
            3.4132866859436035,
        ],
        [
            -0.22310858964920044, 0.6510181427001953, 1.9012243747711182, 5.542067050933838,
            -2.2512032985687256,
        ],
        [
            -0.15849904716014862, -0.9559097290039063, -0.10649286955595016, -0.15169088542461395,
            1.3741004467010498,
        ],
        [
            -0.4191576838493347, 7.803440093994141e-4, -0.9380335211753845, 0.301287978887558,
            1.242276668548584,
        ],
        [
            0.3190907835960388, -0.21525081992149353, 2.878145694732666, -3.0577449798583984,
            -0.09945404529571533,
        ],
    ];
    let ar_b2r_stable = lora_ga_init(
        weight: w,
        grad: g,
        r: 2,
        lora_alpha: 4.0,
        direction: ar_b2r,
        scale: stable,
    );
    expect_close(
        ar_b2r_stable.lora_A,
        [
            [
                -0.03448881581425667, 0.10407169908285141, 0.12683390080928802, 0.8614164590835571,
                -0.47943150997161865,
            ],
            [
                0.022845419123768806, -0.026982666924595833, 0.6475789546966553,
                -0.4377501904964447, -0.6227089166641235,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        ar_b2r_stable.lora_B,
        [
            [0.4112538993358612, -0.19243702292442322],
            [0.4450939893722534, -0.03299529477953911],
            [0.5177221298217773, 0.026463583111763],
            [0.2738521695137024, 0.35636699199676514],
            [0.03760351240634918, 0.07040640711784363],
            [0.5474963188171387, -0.03673745319247246],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        ar_b2r_stable.weight,
        [
            [
                -1.0886799097061157, -1.248344898223877, -0.10566411912441254, -1.3108792304992676,
                1.0033819675445557,
            ],
            [
                0.7242182493209839, -0.410436749458313, -2.1853911876678467, -0.47343504428863525,
                -0.8776435256004333,
            ],
            [
                0.38448530435562134, 0.201801598072052, -0.04576244205236435, 0.3688780665397644,
                0.38590896129608154,
            ],
            [
                -0.10900236666202545, -0.6513521671295166, -0.49942630529403687,
                -0.6524790525436401, 0.9548272490501404,
            ],
            [
                0.43907269835472107, 0.10838376730680466, -0.9417910575866699, -2.319185733795166,
                0.021432362496852875,
            ],
            [
                0.8318875432014465, -0.40560799837112427, -0.0387939028441906,
                -0.45254790782928467, 2.781425952911377,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    let ar_b2r_weight_svd = lora_ga_init(
        weight: w,
        grad: g,
        r: 2,
        lora_alpha: 4.0,
        direction: ar_b2r,
        scale: weight_svd,
    );
    expect_close(
        ar_b2r_weight_svd.lora_A,
        [
            [
                -0.03448878973722458, 0.10407177358865738, 0.1268337368965149, 0.8614163398742676,
                -0.47943124175071716,
            ],
            [
                0.022845376282930374, -0.026982607319951057, 0.6475786566734314,
                -0.4377499520778656, -0.6227090358734131,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        ar_b2r_weight_svd.lora_B,
        [
            [1.2986481189727783, -0.6076741218566895],
            [1.405508041381836, -0.10419165343046188],
            [1.6348521709442139, 0.08356623351573944],
            [0.864764392375946, 1.125327467918396],
            [0.11874338984489441, 0.22232861816883087],
            [1.7288727760314941, -0.11600891500711441],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        ar_b2r_weight_svd.weight,
        [
            [
                -1.0084971189498901, -1.455458641052246, 0.20703020691871643, -3.2032508850097656,
                1.3371269702911377,
            ],
            [
                0.7937182784080505, -0.6141829490661621, -2.336806535720825, -2.1903998851776123,
                -0.045408010482788086,
            ],
            [
                0.45893311500549316, -0.027640342712402344, -0.4030987024307251,
                -1.5057564973831177, 1.528199553489685,
            ],
            [
                -0.10337703675031662, -0.7328497171401978, -1.6452460289001465,
                -0.9972972273826599, 2.4791080951690674,
            ],
            [
                0.4377281069755554, 0.09969352930784225, -1.1591366529464722, -2.3259682655334473,
                0.288441002368927,
            ],
            [
                0.9169979691505432, -0.6557818651199341, -0.23580148816108704, -2.5572638511657715,
                3.815476894378662,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    let ar_b2r_gd_scale = lora_ga_init(
        weight: w,
        grad: g,
        r: 2,
        lora_alpha: 4.0,
        direction: ar_b2r,
        scale: gd_scale,
    );
    expect_close(
        ar_b2r_gd_scale.lora_A,
        [
            [
                -0.017244402319192886, 0.052035897970199585, 0.06341680884361267,
                0.43070822954177856, -0.2397155612707138,
            ],
            [
                0.01142268255352974, -0.013491304591298103, 0.32378950715065, -0.21887485682964325,
                -0.31135454773902893,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        ar_b2r_gd_scale.lora_B,
        [
            [0.5255358815193176, -0.24591273069381714],
            [0.5687798261642456, -0.042164139449596405],
            [0.6615905165672302, 0.033817488700151443],
            [0.3499521315097809, 0.4553961455821991],
            [0.04805339127779007, 0.08997158706188202],
            [0.6996381878852844, -0.04694636911153793],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        ar_b2r_gd_scale.weight,
        [
            [
                -1.1020967960357666, -1.2136890888214111, -0.15798626840114594,
                -0.9942322969436646, 0.9475365281105042,
            ],
            [
                0.7125889658927917, -0.3763444125652313, -2.160055160522461, -0.18613868951797485,
                -1.0169000625610352,
            ],
            [
                0.37202808260917664, 0.24019350111484528, 0.0140300914645195, 0.6825565099716187,
                0.1947716921567917,
            ],
            [
                -0.10994359105825424, -0.6377154588699341, -0.30769795179367065,
                -0.5947819352149963, 0.6997720003128052,
            ],
            [
                0.43929770588874817, 0.1098378524184227, -0.9054232835769653, -2.3180508613586426,
                -0.02324523776769638,
            ],
            [
                0.8176462054252625, -0.3637470304965973, -0.005828674882650375,
                -0.10037016868591309, 2.6083996295928955,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    let ar_b2r_unit = lora_ga_init(
        weight: w,
        grad: g,
        r: 2,
        lora_alpha: 4.0,
        direction: ar_b2r,
        scale: unit,
    );
    expect_close(
        ar_b2r_unit.lora_A,
        [
            [
                -0.03448881953954697, 0.10407187789678574, 0.1268337368965149, 0.8614166975021362,
                -0.4794311225414276,
            ],
            [
                0.022845391184091568, -0.026982668787240982, 0.6475788354873657,
                -0.4377499222755432, -0.622709333896637,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        ar_b2r_unit.lora_B,
        [
            [1.051071286201477, -0.49182558059692383],
            [1.1375596523284912, -0.08432818949222565],
            [1.3231807947158813, 0.06763502210378647],
            [0.6999037265777588, 0.9107926487922668],
            [0.09610644727945328, 0.17994309961795807],
            [1.3992764949798584, -0.09389245510101318],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        ar_b2r_unit.weight,
        [
            [
                -1.030867576599121, -1.397675633430481, 0.11979049444198608, -2.675292730331421,
                1.2440141439437866,
            ],
            [
                0.774328351020813, -0.5573394894599915, -2.294562816619873, -1.7113802433013916,
                -0.2775956988334656,
            ],
            [
                0.43816277384757996, 0.03637206554412842, -0.30340445041656494,
                -0.9827479124069214, 1.2095081806182861,
            ],
            [
                -0.10494645684957504, -0.710112452507019, -1.3255701065063477, -0.9010956287384033,
                2.0538442134857178,
            ],
            [
                0.4381032884120941, 0.10211791843175888, -1.0984985828399658, -2.3240771293640137,
                0.21394768357276917,
            ],
            [
                0.8932527899742126, -0.5859853029251099, -0.18083791434764862, -1.9700627326965332,
                3.5269832611083984,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    let a2r_br_stable = lora_ga_init(
        weight: w,
        grad: g,
        r: 2,
        lora_alpha: 4.0,
        direction: a2r_br,
        scale: stable,
    );
    expect_close(
        a2r_br_stable.lora_A,
        [
            [
                0.0899558812379837, 0.016890637576580048, 0.7472617626190186, 0.2339421510696411,
                0.6152182221412659,
            ],
            [
                -0.4474392831325531, -0.8891105055809021, 0.04239531606435776, 0.0863289013504982,
                0.005511939991265535,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        a2r_br_stable.lora_B,
        [
            [0.051441457122564316, -0.9707117080688477],
            [-1.539912223815918, -0.5127613544464111],
            [2.4141080379486084, 0.07212472707033157],
            [-0.3509620726108551, -0.3271235525608063],
            [-0.17235083878040314, -0.5957158803939819],
            [-0.8821870684623718, 1.282345175743103],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        a2r_br_stable.weight,
        [
            [
                -2.0037639141082764, -2.8802380561828613, -0.24515178799629211,
                -0.29034650325775146, 0.7961159348487854,
            ],
            [
                0.5101983547210693, -1.175795555114746, 0.22969293594360352, 1.1313079595565796,
                0.6370819807052612,
            ],
            [
                -0.019800394773483276, 0.35483598709106445, -3.4942150115966797,
                0.09568178653717041, -3.114675521850586,
            ],
            [
                -0.341202974319458, -1.1834251880645752, 0.5838508009910583, -0.2719869017601013,
                0.6838574409484863,
            ],
            [
                -0.06238961219787598, -0.9410811066627502, -0.5329712629318237,
                -2.1325466632843018, 0.11632420867681503,
            ],
            [
                2.098702907562256, 2.0204269886016846, 1.2622259855270386, 0.7142150402069092,
                3.3735439777374268,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    let ar_br_stable = lora_ga_init(
        weight: w,
        grad: g,
        r: 2,
        lora_alpha: 4.0,
        direction: ar_br,
        scale: stable,
    );
    expect_close(
        ar_br_stable.lora_A,
        [
            [
                0.02284538559615612, -0.026982629671692848, 0.6475789546966553,
                -0.4377501904964447, -0.6227092146873474,
            ],
            [
                -0.44743987917900085, -0.8891101479530334, 0.04239488020539284,
                0.08632874488830566, 0.005511750932782888,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        ar_br_stable.lora_B,
        [
            [0.05144106224179268, 0.4112537205219269],
            [-1.5399121046066284, 0.4450940787792206],
            [2.414107084274292, 0.5177223682403564],
            [-0.35096248984336853, 0.27385228872299194],
            [-0.17235064506530762, 0.03760378062725067],
            [-0.8821876645088196, 0.5474961996078491],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        ar_br_stable.weight,
        [
            [
                -0.7601675987243652, -0.41828447580337524, -0.35207298398017883,
                -0.45984816551208496, 0.9082425832748413,
            ],
            [
                1.1606745719909668, 0.39236077666282654, -0.1585294008255005, -1.1027675867080688,
                -3.1860761642456055,
            ],
            [
                0.7029800415039063, 1.3590363264083862, -3.050705909729004, 3.2618207931518555,
                2.8573925495147705,
            ],
            [
                0.14949128031730652, -0.14555317163467407, 0.4629247188568115, -0.8472273945808411,
                -0.19169920682907104,
            ],
            [
                0.4812215268611908, 0.1699780523777008, -0.6210319399833679, -2.4734275341033936,
                -0.3173728287220001,
            ],
            [
                1.322695016860962, 0.6362936496734619, 1.1486576795578003, -0.3440244793891907,
                1.1974772214889526,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
}

test "corda_covariance and corda_init are PEFT's (ipm and kpm)" {
    // PEFT 0.21: the covariance as `calib_cov_distribution`'s hook builds it from three samples,
    // then `collect_eigens_for_layer` (damp 0.01 passes its inverse check here),
    // `crop_corda_eigens` and `Linear.corda_init` (r = 2, lora_alpha = 4); signs made canonical
    // on PEFT's output (each B column's largest entry positive, A's row with it). Values:
    // tests/reference/peft_inits.py.
    let w = [
        [
            -1.1258398294448853, -1.152360200881958, -0.2505785822868347, -0.4338788092136383,
            0.8487103581428528,
        ],
        [
            0.6920091509819031, -0.31601276993751526, -2.1152193546295166, 0.32227492332458496,
            -1.2633347511291504,
        ],
        [
            0.34998318552970886, 0.30813392996788025, 0.11984150856733322, 1.237657904624939,
            -0.14347384870052338,
        ],
        [
            -0.1116093322634697, -0.6135830879211426, 0.03159274160861969, -0.4926769733428955,
            0.2484147548675537,
        ],
        [
            0.4396958351135254, 0.11241118609905243, -0.8410648107528687, -2.316041946411133,
            -0.10230965167284012,
        ],
        [
            0.7924439907073975, -0.28966769576072693, 0.05250748619437218, 0.5228604674339294,
            2.3022053241729736,
        ],
    ];
    let c = corda_covariance(
        inputs: [
            [
                [
                    2.3798534870147705, 0.3276667594909668, 0.13673627376556396,
                    0.4680117666721344, 1.0758755207061768,
                ],
                [
                    0.5974166393280029, 0.3685222268104553, 1.5768786668777466, 1.0352542400360107,
                    -1.3920443058013916,
                ],
                [
                    -0.46830227971076965, -0.8277407288551331, 2.2160134315490723,
                    0.09375060349702835, 0.9951973557472229,
                ],
                [
                    0.09230013191699982, 0.30113041400909424, -0.23038238286972046,
                    -1.4412569999694824, -1.1676979064941406,
                ],
                [
                    -0.5478094220161438, 0.8014375567436218, -0.4556061923503876,
                    -0.28169330954551697, 0.11636638641357422,
                ],
                [
                    0.0455758273601532, -0.8569087982177734, 0.10337171703577042,
                    -0.9418624639511108, -0.013693667948246002,
                ],
                [
                    -0.5140206813812256, 0.953007698059082, 0.5942522287368774,
                    -0.5301644802093506, 0.6482359766960144,
                ],
            ],
            [
                [
                    1.14274001121521, 0.353799968957901, -1.256833553314209, -0.6653950810432434,
                    -0.10902624577283859,
                ],
                [
                    0.7727830410003662, 0.09437304735183716, -0.08019156008958817,
                    0.0816047191619873, 1.09808349609375,
                ],
                [
                    -0.7499268651008606, -0.197831928730011, 2.22925066947937,
                    -0.029018990695476532, 1.5199246406555176,
                ],
                [
                    -0.2295762598514557, 0.27968505024909973, -0.8885537981987,
                    -0.6617099046707153, -1.8145387172698975,
                ],
                [
                    -1.0217593908309937, -0.7809793949127197, 0.05674562230706215,
                    0.5710387229919434, -1.209444284439087,
                ],
                [
                    1.3421260118484497, 0.4763469398021698, 1.2279659509658813,
                    0.12189653515815735, -0.15472063422203064,
                ],
                [
                    -1.1753318309783936, -0.27203574776649475, -0.7973770499229431,
                    -0.5870379209518433, -0.9654695987701416,
                ],
            ],
            [
                [
                    0.5025776028633118, -0.3052416741847992, -0.7249130606651306,
                    -0.44219866394996643, 1.250956654548645,
                ],
                [
                    1.709549903869629, -0.6386643648147583, 0.7800093293190002,
                    -0.6692208051681519, 0.027116402983665466,
                ],
                [
                    0.9682936668395996, -0.28497806191444397, 0.19637951254844666,
                    -0.2182278335094452, 1.9510624408721924,
                ],
                [
                    -1.1152215003967285, -0.06962762027978897, 0.6822805404663086,
                    -1.1574357748031616, 0.8882314562797546,
                ],
                [
                    1.464526891708374, 0.47365134954452515, -0.9004338979721069,
                    0.09612409770488739, 1.2844231128692627,
                ],
                [
                    0.8556854128837585, 1.3842718601226807, -0.6115956902503967,
                    -0.020299620926380157, 1.3383082151412964,
                ],
                [
                    0.2985231280326843, 0.1120152622461319, 0.39758968353271484,
                    0.9699715971946716, -0.15100976824760437,
                ],
            ],
        ],
    );
    expect_close(
        c.covariance,
        [
            [
                1.5822715759277344, 0.22282902896404266, -0.1361907422542572, 0.10817363858222961,
                0.5885489583015442,
            ],
            [
                0.22282902896404266, 0.5123556852340698, -0.23523342609405518,
                0.036025770008563995, 0.11505850404500961,
            ],
            [
                -0.1361907422542572, -0.23523342609405518, 1.3709211349487305, 0.18599431216716766,
                0.24841289222240448,
            ],
            [
                0.10817363858222961, 0.036025770008563995, 0.18599431216716766, 0.6387655735015869,
                -0.07488691806793213,
            ],
            [
                0.5885489583015442, 0.11505850404500961, 0.24841289222240448, -0.07488691806793213,
                1.8087817430496216,
            ],
        ],
        rtol: 1e-5,
        atol: 1e-6,
    );
    let ipm = corda_init(
        weight: w,
        covariance: c.covariance,
        r: 2,
        lora_alpha: 4.0,
        corda_method: ipm,
    );
    expect_close(
        ipm.lora_A,
        [
            [
                0.05832910165190697, -0.03959672152996063, 0.3684789538383484, 0.1473696529865265,
                0.7602953910827637,
            ],
            [
                0.5270050764083862, 0.04952073097229004, -0.6049253344535828, -0.14098912477493286,
                -0.0047763348557055,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        ipm.lora_B,
        [
            [0.06419985741376877, -0.43701741099357605],
            [-0.9478514790534973, 0.8797124028205872],
            [0.07915380597114563, 0.08076628297567368],
            [0.08469874411821365, -0.09486450999975204],
            [-0.17911455035209656, 0.647990345954895],
            [1.4401967525482178, 0.6801848411560059],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        ipm.weight,
        [
            [
                -0.6727085113525391, -1.1039931774139404, -0.8266170024871826, -0.576030433177948,
                0.7469139695167542,
            ],
            [
                -0.124642014503479, -0.4782043993473053, -0.35237205028533936, 0.8497037887573242,
                0.1863631010055542,
            ],
            [
                0.2556207776069641, 0.30640318989753723, 0.15922363102436066, 1.2371025085449219,
                -0.26306286454200745,
            ],
            [
                -0.02150198072195053, -0.5974799990653992, -0.14559856057167053,
                -0.5443907380104065, 0.11871640384197235,
            ],
            [
                -0.22239738702774048, 0.03404857963323593, 0.07490664720535278,
                -2.0805306434631348, 0.17624032497406006,
            ],
            [
                -0.09248852729797363, -0.24298006296157837, -0.18593484163284302,
                0.290175199508667, 0.11875295639038086,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    let kpm = corda_init(
        weight: w,
        covariance: c.covariance,
        r: 2,
        lora_alpha: 4.0,
        corda_method: kpm,
    );
    expect_close(
        kpm.lora_A,
        [
            [
                -0.2954573333263397, -0.7614315152168274, -0.5918619632720947, 0.9495607018470764,
                0.3768806755542755,
            ],
            [
                0.19026240706443787, -0.6426860094070435, -0.04826352745294571,
                -0.04679395630955696, -0.049133509397506714,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        kpm.lora_B,
        [
            [0.4418204128742218, -0.06573363393545151],
            [0.33474045991897583, 0.03682227060198784],
            [0.06964634358882904, -0.009279781021177769],
            [0.0017371420981362462, 0.31654050946235657],
            [-0.32847046852111816, -0.04982813820242882],
            [0.15582990646362305, 0.0028615097980946302],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(
        kpm.weight,
        [
            [
                -0.8397483825683594, -0.5640203952789307, 0.2660697102546692, -1.2791012525558472,
                0.5092237591743469,
            ],
            [
                0.8758004307746887, 0.24108144640922546, -1.7154247760772705, -0.309991717338562,
                -1.5120307207107544,
            ],
            [
                0.39466941356658936, 0.40226781368255615, 0.20138779282569885, 1.1045225858688354,
                -0.1968824714422226,
            ],
            [
                -0.23103433847427368, -0.20406535267829895, 0.06420376151800156,
                -0.4663516581058502, 0.27821084856987,
            ],
            [
                0.26455867290496826, -0.451852023601532, -1.234692931175232, -1.6968998908996582,
                0.14038223028182983,
            ],
            [
                0.8834372758865356, -0.048681989312171936, 0.23724327981472015, 0.2271883487701416,
                2.185028076171875,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(ipm.inverse_error, 0.0, 1e-4);
}

test "eva_init is PEFT's EVA components (plain and whitened)" {
    // PEFT 0.21's `IncrementalPCA(n_components=2, lowrank=True, lowrank_seed=42)` as its
    // `SVDHook` runs it, one `partial_fit` over the 12 × 5 activations (rank 3 after centring,
    // so `svd_lowrank` with q = 4 is exact), components (whitened: ÷ √singular value); lora_B = 0.
    // Values: tests/reference/peft_inits.py.
    let z = [
        [
            1.315016269683838, 1.2617990970611572, 1.8781962394714355, -0.5532059669494629,
            1.969325065612793,
        ],
        [
            4.362120628356934, -1.8953189849853516, -0.654564380645752, 2.427468776702881,
            -3.323245048522949,
        ],
        [
            5.742048263549805, -2.935153007507324, -0.895880937576294, 0.7840533256530762,
            1.5741698741912842,
        ],
        [
            -2.8141796588897705, -1.530369758605957, 3.5724997520446777, 0.0797828733921051,
            -1.7899582386016846,
        ],
        [
            -0.0293465256690979, -1.4260646104812622, 2.34663724899292, -0.36761972308158875,
            0.9205646514892578,
        ],
        [
            -0.6609610319137573, -1.9546291828155518, 2.3548710346221924, 0.5596407651901245,
            -1.6786189079284668,
        ],
        [
            1.5453013181686401, -0.007331907749176025, 1.7576565742492676, -0.7420103549957275,
            2.654602289199829,
        ],
        [
            -0.10784280300140381, 1.5309157371520996, 2.771109104156494, -1.1704652309417725,
            2.6307616233825684,
        ],
        [
            -1.2760465145111084, -1.5377781391143799, 2.3260912895202637, 1.7448278665542603,
            -4.965516090393066,
        ],
        [
            -0.40442973375320435, -1.238869547843933, 2.493232250213623, -0.21071451902389526,
            0.3049464225769043,
        ],
        [
            -0.03827166557312012, -0.8410118818283081, 2.0518300533294678, 0.7421414256095886,
            -1.8402838706970215,
        ],
        [
            -2.665025234222412, 0.5694669485092163, 4.401147842407227, -2.610144853591919,
            4.729084491729736,
        ],
    ];
    let zeros_w = [[0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]];
    let plain = eva_init(weight: zeros_w, activations: z, r: 2, whiten: false);
    expect_close(
        plain.lora_A,
        [
            [
                -0.4353874921798706, 0.3014480173587799, 0.3429531157016754, -0.38727572560310364,
                0.6722853183746338,
            ],
            [
                0.7311051487922668, 0.03872991353273392, -0.33604153990745544,
                -0.06751777231693268, 0.5886449813842773,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    let white = eva_init(weight: zeros_w, activations: z, r: 2, whiten: true);
    expect_close(
        white.lora_A,
        [
            [
                -0.1296350061893463, 0.08975502103567123, 0.10211300849914551,
                -0.11530990153551102, 0.20017044246196747,
            ],
            [
                0.23873473703861237, 0.01264684833586216, -0.10973084717988968,
                -0.022047221660614014, 0.19221585988998413,
            ],
        ],
        rtol: 1e-4,
        atol: 1e-5,
    );
    expect_close(plain.lora_B, [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], 0.0);
}
