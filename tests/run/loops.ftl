// Static loops (issue 13): `for k in lo..hi, acc = init { body }` unrolls at lowering; the
// bounds are literals or static options, the body gives the next accumulator.

/// 1 + x + x² + … + x^(n−1), with n a static option.
objective geometric(x: f32[B], n: static i32 = 4) {
    let s = for k in 0..n, acc = zeros(B) { acc + pow(x, f32(k)) };
    loss sum(s, B);
}

test "a static loop sums a series and differentiates through it" {
    let r = geometric(x: [0.5, 2.0]);
    // (1 + 0.5 + 0.25 + 0.125) + (1 + 2 + 4 + 8)
    expect_close(r.loss, 16.875);
    // 1 + 2x + 3x²
    expect_close(r.grad.x, [2.75, 17.0]);
    let r2 = geometric(x: [0.5, 2.0], n: 2);
    expect_close(r2.loss, 4.5);
    gradcheck geometric(B: 3);
}

/// The Neumann series Σ_{k<n} S^k of (I − S)⁻¹ with a record accumulator (the power and the
/// sum), as OFT's Cayley–Neumann parametrization needs.
step neumann(s: f32[R, R'], n: static i32 = 30) -> (series: f32[R, R']) {
    let out = for k in 0..n, st = (p: eye(R, R'), sum: zeros(R, R')) {
        (p: contract(st.p[R' -> J], s[R -> J], J), sum: st.sum + st.p)
    };
    (series: out.sum)
}

test "a record accumulator: the Neumann series converges to the inverse" {
    let r = neumann(s: [[0.1, 0.2], [0.0, 0.3]]);
    // numpy.linalg.inv(I - S)
    expect_close(r.series, [[1.1111111111, 0.3174603175], [0.0, 1.4285714286]]);
}

/// The Neumann series against `inv`, read back as `[R, R']` by swapping the names.
step neumann_vs_inv(s: f32[R, R']) -> (series: f32[R, R'], exact: f32[R, R']) {
    (series: neumann(s, 30).series, exact: inv(eye(R, R') - s, R, R')[R <-> R'])
}

test "inv agrees with the converged Neumann series" {
    let r = neumann_vs_inv(s: [[0.1, 0.2], [0.0, 0.3]]);
    expect_close(r.exact, [[1.1111111111, 0.3174603175], [0.0, 1.4285714286]]);
    expect_close(r.series, r.exact, 1e-6);
}
