// `requires` dims bound from other `requires` dims (issue 13): resolved in dependency order,
// whatever the order of the clauses, identically on every backend.

import std.sampling.schedules

/// Splits x into R rows of K = I / R, with K2 = K + 1 read from K; the equations come
/// before the dims they read.
objective split_rows(x: f32[I], w: f32[R]) requires K2 == K + 1, I == R * K, K == floordiv(I, R),
    K >= 1, K2 > K {
    let y = x[I -> (R, K)];
    loss sum(y * w, R, K) * f32(K2);
}

test "a dim bound from another bound dim has its value" {
    let r = split_rows(x: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], w: [1.0, -1.0]);
    // K = 3, K2 = 4: ((1 + 2 + 3) - (4 + 5 + 6)) * 4
    expect_close(r.loss, -36.0, 0.0);
    expect_close(r.grad.w, [24.0, 60.0], 0.0);
    gradcheck split_rows(I: 6, R: 2);
}

/// A renamed copy of a bound dim (the form first reported: K' = 0 on the compiled path).
objective primed(x: f32[I], r: i32 = 2) requires R == r, K == floordiv(I, R), K' == K, I == R * K {
    let y = x[I -> (R, K)];
    loss sum(y, R, K) * f32(K');
}

test "a primed copy of a bound dim" {
    let r = primed(x: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    expect_close(r.loss, 63.0, 0.0);
    gradcheck primed(I: 6);
}

/// Two outputs of one call share the callee's dim K (issue 13: they got unrelated dims).
step two(w: f32[O, I], k: i32 = 2) -> (u: f32[O, K], v: f32[K, I]) requires K == k {
    (u: w[I: iota(K)], v: w[O: iota(K)])
}

objective use_two(w: f32[O, I]) {
    let z = two(w, 2);
    loss sum(z.u @ z.v, O, I);
}

test "outputs of one call share its dims" {
    let r = use_two(w: [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    // [[1, 2], [4, 5]] @ [[1, 2, 3], [4, 5, 6]] = [[9, 12, 15], [24, 33, 42]]
    expect_close(r.loss, 135.0, 0.0);
    gradcheck use_two(O: 3, I: 4);
}

test "a call's requires-bound dims meet literals" {
    let z = two(w: [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    expect_close(z.u, [[1.0, 2.0], [4.0, 5.0]], 0.0);
    expect_close(z.u + [[1.0, 1.0], [1.0, 1.0]], [[2.0, 3.0], [5.0, 6.0]], 0.0);
}

/// Two equal calls (same dim binding, same scalar arguments) give results with the same
/// dims, so they combine (issue 13, defect 7: each call got its own `two.K#n`, E0045).
objective two_calls(w: f32[O, I], k: i32 = 2) {
    let a = two(w, k);
    let b = two(w, k);
    let c = two(w, 2);
    loss sum(a.u @ b.v, O, I) + sum(c.u @ two(w, 2).v, O, I);
}

test "equal calls share their requires-bound dims" {
    let r = two_calls(w: [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    expect_close(r.loss, 270.0, 0.0);
    gradcheck two_calls(O: 3, I: 4);
    let a = two(w: [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], k: 2);
    let b = two(w: [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], k: 2);
    expect_close(a.v, b.v, 0.0);
}

/// A call in a static loop gets its dims anew each iteration: K is 1, 2, 3 in turn (before,
/// the second iteration relabelled its K onto the first one's and the run failed).
objective looped(w: f32[O, I]) {
    let t = for k in 1..4, acc = 0.0 {
        let z = two(w, k);
        acc + sum(z.u @ z.v, O, I)
    };
    loss t;
}

test "calls in a static loop bind their dims per iteration" {
    // Σ_k Σ (w[:, :k] @ w[:k, :]) for w = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]: term j of the
    // contraction sums to (column sum j) · (row sum j) = 12·6, 15·15, 18·24.
    let r = looped(w: [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]);
    expect_close(r.loss, 72.0 + (72.0 + 15.0 * 15.0) + (72.0 + 225.0 + 18.0 * 24.0), 0.0);
    gradcheck looped(O: 3, I: 4);
}

/// A primed dim needs no rename to exist: R' has R's size from its first use (issue 13).
objective diagonal(x: f32[R]) {
    let e = where(iota(R) == iota(R'), 1.0, 0.0);
    loss sum(e * x * x[R -> R'], R, R');
}

test "a primed dim used before any rename" {
    let r = diagonal(x: [1.0, 2.0, 3.0]);
    expect_close(r.loss, 14.0, 0.0);
    expect_close(r.grad.x, [2.0, 4.0, 6.0], 0.0);
    gradcheck diagonal(R: 4);
}

test "a call's result is indexed by the callee's dim names" {
    let z = two(w: [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    expect_close(z.u[K: 1], [2.0, 5.0], 0.0);
    expect_close(z.v[K: 0], [1.0, 2.0, 3.0], 0.0);
}

test "a call's result is reduced and renamed by the callee's dim names" {
    // diffusers' scaled_linear schedule for 10 steps in torch f32: Σ alphas_cumprod and [3].
    let r = schedules.schedule(num_train_timesteps: 10);
    expect_close(sum(r.alphas_cumprod, Tt), 9.80438232421875, 1e-6);
    expect_close(r.alphas_cumprod[Tt -> T2][T2: 3], 0.9923784732818604, 1e-7);
}

/// A constant output beside a `requires` over the same constant: the prelude computes both, and
/// once read the constant from its output buffer before storing it — with a reused buffer the
/// condition failed every second run (the core test runs it repeatedly, recycling outputs).
objective constant_metric(x: f32[B], floor: f32 = 0.0) requires 0.0 <= floor {
    loss sum(x, B) + floor;
    metric zero = 0.0;
}

test "a constant metric beside a requires over the same constant" {
    let r = constant_metric(x: [1.0, 2.0]);
    expect_close(r.loss, 3.0, 0.0);
    expect_close(r.metric.zero, 0.0, 0.0);
}

/// A parameter named like the random-stream `offset`: `--set offset=1` gives an i64, which the
/// binder converts to the declared i32 (it once bound it as an i64 input and the dim sized from
/// it came out 0 on the compiled path; the core test runs it through `ftc run --set`).
step offset_named(size: i32, offset: i32 = 0) -> (x: i32[N]) requires K == size,
    N == floordiv(max(size - offset, 0) * (max(size - offset, 0) + 1), 2) {
    let m = max(size - offset, 0);
    let r = iota(K);
    let start = r * m - floordiv(r * (r - 1), 2);
    (x: i32(sum(f32(r >= 1 && r < m && start <= iota(N)), K)))
}

test "a dim sized from a parameter named offset" {
    expect_close(offset_named(size: 4, offset: 1).x, [0, 0, 0, 1, 1, 2], 0.0);
}
