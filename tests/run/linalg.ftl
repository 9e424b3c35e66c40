// Determinants and batched decompositions. Expected values: PyTorch 2.15 in f64
// (torch.linalg.slogdet / det / svd / qr / eigvalsh and autograd) on the same matrices.

/// Σ log|det A| over a batch of matrices: its gradient is A⁻ᵀ. (In f64: a sum of logs of
/// pivots near 1 cancels, and the backends' f32 logs differ in the last ulp.)
objective logdet(a: f64[S, R, C]) {
    let (sign, logabsdet) = slogdet(a, R, C);
    loss sum(logabsdet, S);
    metric sign = sum(sign, S);
}

/// Σ w · det A: its gradient is w · det A · A⁻ᵀ.
objective weighted_det(a: f64[S, R, C], w: const f64[S]) {
    loss sum(w * det(a, R, C), S);
}

/// The decompositions of a batch of matrices, one per matrix.
step decompositions(
    a: f64[S, R, C],
) -> (singular: f64[S, R], r_diagonal: f64[S, R], eigenvalues: f64[S, R], lu_det: f64[S]) {
    let (u, sv, vh) = svd(a, R, C -> K);
    let (q, r) = qr(a, R, C -> K2);
    let (w, v) = eigh(a + a[R <-> C], R, C -> K3);
    let (perm, l, up) = lu(a, R, C);
    (
        singular: sv[K -> R],
        r_diagonal: r[K2 -> R][C: iota(R)],
        eigenvalues: w[K3 -> R],
        lu_det: abs(exp(sum(log(abs(up[C: iota(R)])), R))),
    )
}

test "slogdet and det of a batch match torch.linalg, gradients included" {
    // The second matrix needs row swaps (a zero first pivot): its sign comes from the
    // permutation's parity.
    let a = [
        [[2.0, -1.0, 0.5], [1.0, 3.0, -2.0], [0.0, 1.5, 1.0]],
        [[0.0, 2.0, 1.0], [1.0, 0.0, 3.0], [4.0, 1.0, 0.0]],
    ];
    let r = logdet(a: f64(a));
    expect_close(r.loss, 5.839914648980781, rtol: 1e-12, atol: 1e-12);
    expect_close(r.metric.sign, 2.0, 0.0);
    expect_close(
        r.grad.a,
        f64([
            [
                [0.4363636363636364, -0.07272727272727271, 0.10909090909090909],
                [0.12727272727272726, 0.14545454545454542, -0.21818181818181817],
                [0.03636363636363637, 0.32727272727272727, 0.509090909090909],
            ],
            [[-0.12, 0.48, 0.04], [0.04, -0.16, 0.32], [0.24, 0.04, -0.08]],
        ]),
        rtol: 1e-12,
        atol: 1e-12,
    );
    let d = weighted_det(a: f64(a), w: f64([1.0, -2.0]));
    expect_close(d.loss, 13.75 - 50.0, rtol: 1e-12, atol: 1e-12);
    expect_close(
        d.grad.a,
        f64([
            [[6.0, -1.0, 1.5], [1.75, 2.0, -3.0], [0.5, 4.5, 7.0]],
            [[6.0, -24.0, -2.0], [-2.0, 8.0, -16.0], [-12.0, -2.0, 4.0]],
        ]),
        rtol: 1e-12,
        atol: 1e-12,
    );
    gradcheck logdet(S: 2, R: 3, C: 3);
    gradcheck weighted_det(S: 2, R: 3, C: 3);
}

test "a singular matrix has sign 0 and log|det| -inf, as torch.linalg.slogdet" {
    let r = logdet(a: f64([[[1.0, 2.0], [2.0, 4.0]]]));
    expect_close(r.metric.sign, 0.0, 0.0);
    expect_close(f32(r.loss < -1e30), 1.0, 0.0);
}

test "decompositions run once per matrix of a batch" {
    let r = decompositions(
        a: f64([
            [[2.0, -1.0, 0.5], [1.0, 3.0, -2.0], [0.0, 1.5, 1.0]],
            [[0.0, 2.0, 1.0], [1.0, 0.0, 3.0], [4.0, 1.0, 0.0]],
        ]),
    );
    expect_close(
        r.singular,
        f64([
            [3.8774777246267664, 2.2130472462453077, 1.6023696143241415],
            [4.413270182325494, 2.9882069744066255, 1.8956965410909796],
        ]),
        rtol: 1e-12,
        atol: 1e-12,
    );
    // |R_ii| (QR's signs are LAPACK's choice in PyTorch and faer's here).
    expect_close(
        abs(r.r_diagonal),
        f64([
            [2.23606797749979, 3.471310991541956, 1.7714307226022847],
            [4.123105625617661, 2.0146522105345537, 3.00964632714423],
        ]),
        rtol: 1e-12,
        atol: 1e-12,
    );
    expect_close(
        r.eigenvalues,
        f64([
            [1.8251660726077927, 4.111418479477076, 6.063415447915132],
            [-5.180267791324231, -2.8755425682009426, 8.055810359525175],
        ]),
        rtol: 1e-12,
        atol: 1e-12,
    );
    expect_close(r.lu_det, f64([13.75, 25.0]), rtol: 1e-12, atol: 1e-12);
}
