// HRA: Householder reflection adaptation (Yuan et al., 2024, arXiv 2405.17484), as PEFT 0.21's
// `HRALinear` (`peft/tuners/hra/layer.py`): the base weight times a chain of `r` Householder
// reflections `H = Π_i (I − 2 u_i u_iᵀ)` of the normalised columns of `hra_u`,
// `y = x (W H)ᵀ + b`. PEFT multiplies the reflections one by one into an I × I matrix; here the
// chain is its compact WY form `H = I − U T Uᵀ`, `T⁻¹ = ½ I + striu(UᵀU)` (the same matrix,
// exact), so the forward pass never builds it: `x Hᵀ = x − ((x U) Tᵀ) Uᵀ`, O(L·I·r). PEFT's
// `apply_GS` (Gram–Schmidt-orthogonalised reflections) is not supported. Test values: PEFT
// itself (f64).

/// HRA on `nn.Linear` (`weight: [O, I]`): `y = (x Hᵀ) Wᵀ + b`, `H` the product of the reflections
/// of `hra_u`'s normalised columns in order (PEFT's `get_delta_weight`); gradients for `x` and
/// `hra_u`.
adapter hra(
    x: f32[..L, I],
    weight: const f32[O, I],
    bias: const f32[O]?,
    hra_u: param f32[I, R],
) -> f32[..L, O] {
    let u = hra_u / sqrt(sum(hra_u * hra_u, I));
    // T⁻¹ = ½ I + the strictly upper triangle of UᵀU; T = its inverse, indexed [R', R].
    let gram = contract(u, u[R -> R'], I);
    let t = inv(where(iota(R) < iota(R'), gram, 0.0) + 0.5 * eye(R, R'), R, R');
    // H as an I × I' matrix, for merge and unmerge: I − U T Uᵀ.
    let h = eye(I, I') - contract(contract(u[R -> R'], t, R'), u[I -> I'], R);
    let xu = contract(x, u, I);
    let reflected = x - contract(contract(xu, t, R), u[R -> R'], R');
    reflected @ weight + (bias ?? 0.0)
}

/// PEFT's init (`reset_hra_parameters`): for an even `r`, kaiming-uniform (a = √5: uniform in
/// ±1/√fan_in, torch's fan_in of a [I, r/2] tensor being r/2) columns, each repeated twice
/// (`repeat_interleave(half, 2, dim=1)`: paired reflections cancel, so the layer starts as the
/// base layer); for an odd `r`, kaiming-uniform over all r columns (PEFT warns).
init hra(r: i32 = 8) requires R == r, R2 == max(floordiv(r, 2), 1) {
    let half = (2.0 * rand(I, R2) - 1.0) / sqrt(f32(size(R2)));
    let plain = (2.0 * rand(I, R) - 1.0) / sqrt(f32(size(R)));
    let paired = half[R2: min(floordiv(iota(R), 2), size(R2) - 1)];
    hra_u = where(r % 2 == 0, paired, plain);
}

/// PEFT's merge: `W ← W H`.
merge hra {
    weight = contract(weight, h, I)[I' -> I];
}

/// PEFT's unmerge: `W ← W Hᵀ` (the reflections in reverse order, `get_delta_weight(reverse=True)`).
unmerge hra {
    weight = contract(weight, h[I <-> I'], I)[I' -> I];
}

test "hra matches PEFT: forward and gradients" {
    // PEFT 0.21 (f64): HRAConfig(r=3, init_weights=False) on nn.Linear(5, 4), hra_u set to the
    // values below; gradients of y.sum(). (Its merged weight, [[0.0539…, −0.3318…, …]], is
    // checked through the merged forward in compiler/ftc/tests/core.rs.)
    let weight = [
        [-0.7, -0.5421686909928944, -0.4617018362648002, -0.4648353676150659, -0.48094340742552966],
        [
            -0.42747137483473485, -0.2858362866619979, -0.11851186644391058, -0.011590491127135519,
            0.0043697432610177375,
        ],
        [
            -0.01756000582577913, 0.010527295134403356, 0.1305532345157459, 0.2999114405247692,
            0.430639682937908,
        ],
        [
            0.47029194191044854, 0.450157036754546, 0.45649182975941255, 0.5512170647965164,
            0.7149877209662951,
        ],
    ];
    let hra_u = [
        [0.5, -0.2, 0.3],
        [0.1, 0.4, -0.6],
        [-0.3, 0.2, 0.5],
        [0.7, 0.1, 0.2],
        [0.2, -0.5, -0.1],
    ];
    let r = hra(
        x: [
            [
                -1.0, -0.8571428571428572, -0.7142857142857143, -0.5714285714285714,
                -0.4285714285714286,
            ],
            [-0.2857142857142858, -0.1428571428571429, 0.0, 0.1428571428571428, 0.2857142857142856],
            [0.4285714285714284, 0.5714285714285714, 0.7142857142857142, 0.857142857142857, 1.0],
        ],
        weight: weight,
        bias: [0.3, -0.2, 0.1, 0.05],
        hra_u: hra_u,
    );
    expect_close(
        r.y,
        [
            [0.719259308884855, 0.04639679154770987, 0.11168018726110784, -0.333493065410645],
            [0.26588228151351107, -0.10370088219596472, 0.235171987260345, 0.18785817570171803],
            [-0.18749474585783293, -0.25379855593963935, 0.35866378725958215, 0.709209416814081],
        ],
        1e-5,
    );
    expect_close(
        r.grad.x,
        [
            [
                -0.8343058191880219, -0.09806640521936977, 0.43413143717799635, 0.5325100340873677,
                0.02364642913724202,
            ],
            [
                -0.8343058191880219, -0.09806640521936977, 0.43413143717799635, 0.5325100340873677,
                0.02364642913724202,
            ],
            [
                -0.8343058191880219, -0.09806640521936977, 0.43413143717799635, 0.5325100340873677,
                0.02364642913724202,
            ],
        ],
        1e-5,
    );
    expect_close(
        r.grad.hra_u,
        [
            [-0.31396205487866624, -2.478915875772143, -0.2965741254124869],
            [-0.20413670473894444, -0.346777976115483, -0.14828706270624317],
            [-0.0032438307348098125, 0.402886075917671, 0.0],
            [0.15395984488052727, 1.230595802380241, 0.14828706270624334],
            [0.34324828638207755, 1.1214175602595877, 0.29657412541248634],
        ],
        rtol: 1e-5,
        atol: 1e-6,
    );
    gradcheck hra(L: 3, I: 5, O: 4, R: 3);
}
