// Gradients of the decompositions and the pseudo-inverse. Expected values: PyTorch 2.15 in
// f64 (torch.linalg.svd / qr / eigh / pinv and autograd) on the same matrices, with the same
// weights; each loss is invariant to the decompositions' sign choices (squares of U, Vh, Q, R),
// which differ between LAPACK and faer.

/// Σ (k+1)·s_k + Σ sin(i + 2k)·U[i, k]² + Σ cos(3k − j)·Vh[k, j]² of the thin SVD.
objective svd_loss(a: f64[S, R, C]) {
    let (u, s, vh) = svd(a, R, C -> K);
    let k = f64(iota(K));
    let wu = sin(f64(iota(R)) + 2.0 * k);
    let wv = cos(3.0 * k - f64(iota(C)));
    loss sum((k + 1.0) * s, S, K) + sum(wu * u * u, S, R, K) + sum(wv * vh * vh, S, K, C);
}

/// Σ sin(i + 2k)·Q[i, k]² + Σ cos(3k − j)·R[k, j]² of the reduced QR.
objective qr_loss(a: f64[S, R, C]) {
    let (q, r) = qr(a, R, C -> K);
    let k = f64(iota(K));
    let wq = sin(f64(iota(R)) + 2.0 * k);
    let wr = cos(3.0 * k - f64(iota(C)));
    loss sum(wq * q * q, S, R, K) + sum(wr * r * r, S, K, C);
}

/// Σ (k+1)·λ_k + Σ sin(i + 2k)·V[i, k]² of the eigendecomposition of A + Aᵀ.
objective eigh_loss(a: f64[S, R, C]) {
    let (w, v) = eigh(a + a[R <-> C], R, C -> K);
    let k = f64(iota(K));
    let wv = sin(f64(iota(R)) + 2.0 * k);
    loss sum((k + 1.0) * w, S, K) + sum(wv * v * v, S, R, K);
}

/// Σ sin(r + 2c)·P[c, r] + ½ Σ P² of P = pinv(A).
objective pinv_loss(a: f64[S, R, C]) {
    let p = pinv(a, R, C);
    let wp = sin(f64(iota(R)) + 2.0 * f64(iota(C)));
    loss sum(wp * p, S, R, C) + 0.5 * sum(p * p, S, R, C);
}

/// The pseudo-inverse itself.
step pseudo_inverse(a: f64[S, R, C]) -> (p: f64[S, C, R]) { (p: pinv(a, R, C)) }

test "svd's gradient is PyTorch's svd_backward, tall and wide" {
    let tall = f64([
        [[2.0, -1.0, 0.5], [1.0, 3.0, -2.0], [0.0, 1.5, 1.0], [0.5, 0.25, -1.0]],
        [[0.0, 2.0, 1.0], [1.0, 0.0, 3.0], [4.0, 1.0, 0.0], [-1.0, 0.5, 2.0]],
    ]);
    let r = svd_loss(a: tall);
    expect_close(r.loss, 32.76442025866792, rtol: 1e-10, atol: 1e-10);
    expect_close(
        r.grad.a,
        f64([
            [
                [2.1984292883144674, -0.20490013113755162, 0.393671342846075],
                [0.6093517369076804, 0.6847730723934635, -0.6110331360288542],
                [0.7433074938176161, 1.303150145143787, 2.0720975864103717],
                [-0.2366333426349524, -0.4807675654156936, -1.2102640653787786],
            ],
            [
                [-1.0689501486336672, 2.1461413864159007, -0.6260651414795626],
                [-0.5340321446939771, -1.8334698640126308, 0.7250614422476497],
                [2.3851362328142987, 0.3041887605790724, -1.9772910771801198],
                [-1.494390065192079, -0.07917295024700831, 0.5282368032071321],
            ],
        ]),
        rtol: 1e-10,
        atol: 1e-10,
    );
    let w = svd_loss(a: f64([[[2.0, -1.0, 0.5], [1.0, 3.0, -2.0]]]));
    expect_close(w.loss, 9.159342885268423, rtol: 1e-10, atol: 1e-10);
    expect_close(
        w.grad.a,
        f64([
            [
                [1.8829307978759566, -0.22068912502458113, -0.06282452568217045],
                [0.8691275635659892, 0.8803335281240079, -0.3612723184533249],
            ],
        ]),
        rtol: 1e-10,
        atol: 1e-10,
    );
    gradcheck svd_loss(S: 2, R: 4, C: 3);
    gradcheck svd_loss(S: 1, R: 2, C: 3);
}

test "qr's gradient is PyTorch's linalg_qr_backward, tall and wide" {
    let tall = f64([
        [[2.0, -1.0, 0.5], [1.0, 3.0, -2.0], [0.0, 1.5, 1.0], [0.5, 0.25, -1.0]],
        [[0.0, 2.0, 1.0], [1.0, 0.0, 3.0], [4.0, 1.0, 0.0], [-1.0, 0.5, 2.0]],
    ]);
    let r = qr_loss(a: tall);
    expect_close(r.loss, 9.168382948320659, rtol: 1e-10, atol: 1e-10);
    expect_close(
        r.grad.a,
        f64([
            [
                [3.583595597962265, 1.1135401281426733, 0.4995333878808692],
                [2.9047108845508403, -1.356037225183212, -0.1256207431350508],
                [0.6151836796873533, -3.1847583350638153, -2.9129437799037063],
                [0.8561958390492673, 0.6892743142023608, 0.7499889540294787],
            ],
            [
                [0.6188741007085057, -1.7207841133711204, 1.5103432126996792],
                [1.2637515634401275, 4.809881766911469, -4.316004970922043],
                [8.19879392328005, -0.04667427165528957, 0.5303435381502499],
                [-1.941072743439677, 0.8410685392133342, -1.3623371452267599],
            ],
        ]),
        rtol: 1e-10,
        atol: 1e-10,
    );
    let w = qr_loss(a: f64([[[2.0, -1.0, 0.5], [1.0, 3.0, -2.0]]]));
    expect_close(w.loss, 3.59786612324278, rtol: 1e-10, atol: 1e-10);
    expect_close(
        w.grad.a,
        f64([
            [
                [3.5511664269451493, 1.5974529870265106, 1.3054616198003652],
                [2.8976671461097006, -2.1143013623167417, -1.778629566506446],
            ],
        ]),
        rtol: 1e-10,
        atol: 1e-10,
    );
    gradcheck qr_loss(S: 2, R: 4, C: 3);
    gradcheck qr_loss(S: 1, R: 2, C: 3);
}

test "eigh's gradient is PyTorch's (symmetric) eigh backward" {
    let r = eigh_loss(
        a: f64([
            [[2.0, -1.0, 0.5], [1.0, 3.0, -2.0], [0.0, 1.5, 1.0]],
            [[0.0, 2.0, 1.0], [1.0, 0.0, 3.0], [4.0, 1.0, 0.0]],
        ]),
    );
    expect_close(r.loss, 42.52281524019092, rtol: 1e-10, atol: 1e-10);
    expect_close(
        r.grad.a,
        f64([
            [
                [4.113431653952985, -0.07604442897402458, 0.009836796798515025],
                [-0.07604442897402458, 5.922810774690501, -0.5485555471481743],
                [0.009836796798515025, -0.5485555471481743, 1.9637575713565092],
            ],
            [
                [4.3477139104472915, 0.12404886863073883, 1.4483446426236437],
                [0.12404886863073883, 4.208311185390904, 1.4055520829597388],
                [1.4483446426236437, 1.4055520829597388, 3.4439749041618057],
            ],
        ]),
        rtol: 1e-10,
        atol: 1e-10,
    );
    gradcheck eigh_loss(S: 2, R: 3, C: 3);
}

test "pinv and its gradient are torch.linalg.pinv's, tall, wide and rank-deficient" {
    let tall = f64([
        [[2.0, -1.0, 0.5], [1.0, 3.0, -2.0], [0.0, 1.5, 1.0], [0.5, 0.25, -1.0]],
        [[0.0, 2.0, 1.0], [1.0, 0.0, 3.0], [4.0, 1.0, 0.0], [-1.0, 0.5, 2.0]],
    ]);
    expect_close(
        pseudo_inverse(a: tall).p,
        f64([
            [
                [
                    0.43171521035598726, 0.11100323624595478, 0.0572815533980581,
                    0.051132686084142495,
                ],
                [
                    -0.06601941747572819, 0.16893203883495136, 0.2970873786407766,
                    -0.0737864077669903,
                ],
                [
                    0.12815533980582505, -0.1514563106796116, 0.42330097087378626,
                    -0.20970873786407765,
                ],
            ],
            [
                [
                    -0.08629694105943803, 0.07983088783884615, 0.21089281273315105,
                    -0.0765978612285501,
                ],
                [
                    0.4491420044764985, -0.19646854016413828, 0.06665008704302426,
                    0.07013180800795807,
                ],
                [
                    -0.018652076597861236, 0.2506839094752549, -0.02934593384730164,
                    0.13330017408604827,
                ],
            ],
        ]),
        rtol: 1e-10,
        atol: 1e-10,
    );
    // Rank 1: the second singular value is below eps · max(m, n) · s_max and is dropped.
    expect_close(
        pseudo_inverse(a: f64([[[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]])).p,
        f64([
            [
                [0.014285714285714275, 0.028571428571428567, 0.04285714285714285],
                [0.02857142857142855, 0.057142857142857134, 0.0857142857142857],
            ],
        ]),
        rtol: 1e-10,
        atol: 1e-12,
    );
    let r = pinv_loss(a: tall);
    expect_close(r.loss, 0.6299480467849216, rtol: 1e-10, atol: 1e-10);
    expect_close(
        r.grad.a,
        f64([
            [
                [-0.0932041626063377, -0.15620997806284623, -0.12975398533749638],
                [-0.1718475967916993, -0.035541701102282, -0.06267343898251658],
                [0.06835203538950457, 0.028528096774634942, -0.030635765378237596],
                [0.0019052720924289113, -0.11482589593760907, 0.08455256159650629],
            ],
            [
                [0.08986356905770004, -0.10854848698300767, 0.024144417865526478],
                [-0.06395277985745479, 0.3176657058517969, -0.09601556246632598],
                [-0.03492704595100547, -0.12804023368250123, 0.011002731095429284],
                [0.10863235680335204, -0.33507581215004933, 0.15628831905068555],
            ],
        ]),
        rtol: 1e-10,
        atol: 1e-10,
    );
    let w = pinv_loss(a: f64([[[2.0, -1.0, 0.5], [1.0, 3.0, -2.0]]]));
    expect_close(w.loss, 0.2721438910657093, rtol: 1e-10, atol: 1e-10);
    expect_close(
        w.grad.a,
        f64([
            [
                [-0.07509108426458874, -0.0850391964582547, 0.002078372934054218],
                [-0.18417339358371196, -0.06254413035830163, -0.012638235281854676],
            ],
        ]),
        rtol: 1e-10,
        atol: 1e-10,
    );
    gradcheck pinv_loss(S: 2, R: 4, C: 3);
    gradcheck pinv_loss(S: 1, R: 2, C: 3);
}

/// Σ w·(m + mᵀ)·m with m = A + Aᵀ: its gradient transposes a value the same pass computes.
objective transposed_twice(a: f64[S, R, C]) {
    let m = a + a[R <-> C];
    let w = sin(f64(iota(R)) + 2.0 * f64(iota(C)));
    loss sum(w * (m + m[R <-> C]) * m, S, R, C);
}

test "a transposed read of a value the same loop computes waits for it" {
    // The gradient adds g and gᵀ; the compiled path once fused that into the loop writing g,
    // reading gᵀ's elements before they were written (the upper triangle came out wrong).
    let r = transposed_twice(a: f64([[[0.0, 2.0, 1.0], [1.0, 0.0, 3.0], [4.0, 1.0, 0.0]]]));
    expect_close(r.loss, -15.76467865378205, rtol: 1e-12, atol: 1e-12);
    expect_close(
        r.grad.a,
        f64([
            [
                [0.0, 21.009220939602937, 3.04989863035507],
                [21.009220939602937, 0.0, -27.451628319537065],
                [3.04989863035507, -27.451628319537065, 0.0],
            ],
        ]),
        rtol: 1e-12,
        atol: 1e-12,
    );
    gradcheck transposed_twice(S: 1, R: 3, C: 3);
}
