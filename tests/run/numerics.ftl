// Numerics of the interpreter and the gradient rules; `ftc test tests/run` runs these.

/// TCD's `s = floor((1 - eta) * prev_t)`, computed in f32 as torch does (consistency.md §2.2).
step tcd_s(prev_t: i32, eta: f32 = 0.3) -> (s: i32) { (s: i32(floor((1.0 - eta) * f32(prev_t)))) }

test "f32 rounding gives 63 where f64 gives 62" {
    let r = tcd_s(prev_t: 90);
    expect_close(r.s, 63, 0.0);
}

/// A guarded log: the untaken branch must not leak NaN into the gradient.
objective guarded_log(x: f32[B]) {
    loss sum(where(x > 0.0, log(x), 0.0), B);
}

test "where's untaken branch leaks no NaN" {
    let r = guarded_log(x: [2.0, 0.0, -1.0]);
    expect_close(r.loss, 0.6931471805599453, 1e-6);
    expect_close(r.grad.x, [0.5, 0.0, 0.0], 0.0);
    gradcheck guarded_log(B: 6);
}

/// clamp's kinks as the installed PyTorch (2.15) computes them: with number bounds the
/// gradient passes only strictly inside (0 at the bounds); values from
/// `torch.clamp(x, -1., 1.).sum() + torch.clamp(x, min=0.).sum()` backward.
objective clamped(x: f32[B]) {
    loss sum(clamp(x, -1.0, 1.0), B) + sum(clamp(x, min: 0.0), B);
}

test "clamp kinks follow PyTorch: number bounds" {
    let r = clamped(x: [-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]);
    expect_close(r.loss, 5.0, 0.0);
    expect_close(r.grad.x, [0.0, 0.0, 1.0, 2.0, 1.0, 1.0], 0.0);
    gradcheck clamped(B: 6);
}

/// With tensor bounds PyTorch splits a tie in halves between x and the bound; values from
/// `torch.clamp(x, lo, hi)` with `lo = full(6, -1.)`, `hi = full(6, 1.)` (all requiring grad).
objective clamped_by(x: f32[B], lo: f32[B], hi: f32[B]) {
    loss sum(clamp(x, lo, hi), B);
}

test "clamp kinks follow PyTorch: tensor bounds" {
    let r = clamped_by(
        x: [-2.0, -1.0, 0.0, 0.5, 1.0, 3.0],
        lo: [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0],
        hi: [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    );
    expect_close(r.loss, 0.5, 0.0);
    expect_close(r.grad.x, [0.0, 0.5, 1.0, 1.0, 0.5, 0.0], 0.0);
    expect_close(r.grad.lo, [1.0, 0.5, 0.0, 0.0, 0.0, 0.0], 0.0);
    expect_close(r.grad.hi, [0.0, 0.0, 0.0, 0.0, 0.5, 1.0], 0.0);
}

/// Elementwise max splits ties; the max reduction shares the gradient among the maxima.
objective maxes(a: f32[B], b: f32[B]) {
    loss sum(max(a, b), B) + max(a, B);
}

test "max ties split the gradient" {
    let r = maxes(a: [1.0, 2.0, 2.0], b: [1.0, 0.0, 3.0]);
    expect_close(r.loss, 8.0, 1e-6);
    expect_close(r.grad.a, [0.5, 1.5, 0.5], 1e-6);
    expect_close(r.grad.b, [0.5, 0.0, 1.0], 1e-6);
    gradcheck maxes(B: 6);
}

/// Stable forms: logsumexp and log_softmax at large logits.
objective large_logits(x: f32[B, V]) {
    loss -sum(log(softmax(x, V))[V: 0], B) + sum(logsumexp(x, V), B);
}

test "large logits stay finite" {
    let r = large_logits(x: [[1000.0, 1000.0], [-1000.0, 0.0]]);
    expect_close(r.loss, 1000.0 + 0.6931471805599453 + 1000.0 + 0.6931471805599453, 1e-6);
    gradcheck large_logits(B: 2, V: 4);
}

/// Dropout: the mask of the backward pass is the forward pass's (gradcheck sees one function).
objective dropped(x: f32[B], w: f32[B], p: f32 = 0.5) {
    loss sum(drop(x, p) * w, B);
}

test "dropout mask is shared by forward and backward" {
    gradcheck dropped(B: 16);
}

/// Scans, sorts and scatters have gradients.
objective positional(x: f32[B], idx: const i32[B]) {
    loss sum(cumsum(x, B) * sort(x, B), B) + sum(scatter(x * x, B: idx), B);
}

test "scan, sort and scatter gradients" {
    let r = positional(x: [3.0, 1.0, 2.0], idx: [0, 0, 2]);
    // cumsum = [3, 4, 6], sort = [1, 2, 3] -> 3 + 8 + 18 = 29; scatter sums squares = 14.
    expect_close(r.loss, 43.0, 1e-6);
    gradcheck positional(B: 5);
}

/// cumprod's gradient is zero-safe, as PyTorch's: Σ_{j≥i} w_j Π_{m≤j, m≠i} x_m.
objective products(x: f32[B], w: const f32[B]) {
    loss sum(cumprod(x, B) * w, B);
}

test "cumprod gradients through zeros" {
    // x = [2, 0, 3, 0.5]: the first zero gets 2 + 2·3 + 2·3·0.5 = 11, later entries 0.
    let a = products(x: [2.0, 0.0, 3.0, 0.5], w: [1.0, 1.0, 1.0, 1.0]);
    expect_close(a.grad.x, [1.0, 11.0, 0.0, 0.0], 1e-6);
    // Two zeros: the first gets 2 + 2·3 = 8 (the product up to the second zero), the second 0.
    let b = products(x: [2.0, 0.0, 3.0, 0.0], w: [1.0, 1.0, 1.0, 1.0]);
    expect_close(b.grad.x, [1.0, 8.0, 0.0, 0.0], 1e-6);
    // No zero: the usual Σ_{j≥i} w_j y_j / x_i.
    let c = products(x: [2.0, 4.0, 0.5], w: [1.0, -1.0, 2.0]);
    expect_close(c.grad.x, [1.0, 0.0, 16.0], 1e-6);
    gradcheck products(B: 6);
}

/// A linear solve and its gradient (gb = A⁻ᵀ g, gA = −gb xᵀ).
objective solved(a: f32[R, R'], b: f32[R, N]) {
    let x = solve(a, b, R');
    loss sum(x * x, R', N);
}

test "solve and its gradient" {
    let r = solved(a: [[2.0, 0.0], [1.0, 4.0]], b: [[2.0], [5.0]]);
    // x = [1, 1] -> loss 2; grad b = A^-T (2x) = [0.75, 0.5].
    expect_close(r.loss, 2.0, 1e-6);
    expect_close(r.grad.b, [[0.75], [0.5]], 1e-6);
    gradcheck solved(R: 3, N: 2);
}

/// An adapter with an auxiliary loss: its gradient adds to the params'.
adapter scaled(x: f32[N, I], w: param f32[I]) -> f32[N, I] {
    loss 0.5 * sum(w * w, I);
    x * w
}

test "an adapter's auxiliary loss adds to its gradients" {
    let r = scaled(x: [[1.0, 2.0], [3.0, 4.0]], w: [0.5, -1.0]);
    expect_close(r.y, [[0.5, -2.0], [1.5, -4.0]], 1e-6);
    // grad.y = ones: grad.w = sum over N of x, plus w from the auxiliary loss.
    expect_close(r.grad.w, [4.5, 5.0], 1e-6);
    expect_close(r.grad.x, [[0.5, -1.0], [0.5, -1.0]], 1e-6);
    gradcheck scaled(N: 3, I: 4);
}

/// A step whose output updates an input (an EMA target).
step ema(target: f32[D], online: f32[D], decay: f32 = 0.9) -> (target: f32[D]) {
    (target: decay * target + (1.0 - decay) * online)
}

test "a step output named like an input is its next value" {
    let r = ema(target: [1.0, 2.0], online: [3.0, 4.0]);
    expect_close(r.target, [1.2, 2.2], 1e-6);
}

/// A tensor literal adopts the other operand's dims by position (here N, checked to be 3 when
/// the entry runs); lowering once lost the adoption and failed with an internal error.
objective weighted(x: f32[N]) {
    loss sum(x * [1.0, 2.0, 3.0], N);
}

test "a literal adopts a named dim" {
    let r = weighted(x: [1.0, 1.0, 2.0]);
    expect_close(r.loss, 9.0, 1e-6);
    expect_close(r.grad.x, [1.0, 2.0, 3.0], 0.0);
    gradcheck weighted(N: 3);
}

/// A function that calls its predecessor twice: repeated calls with the same arguments are
/// lowered once (the graph grows linearly with the depth, not exponentially).
fn twice0(x: f32[N]) -> f32[N] { sin(x) }

fn twice1(x: f32[N]) -> f32[N] { twice0(x) + twice0(x * 0.5) }

fn twice2(x: f32[N]) -> f32[N] { twice1(x) + twice1(x * 0.5) }

fn twice3(x: f32[N]) -> f32[N] { twice2(x) + twice2(x) }

objective nested_calls(x: f32[N]) {
    loss sum(twice3(x), N);
}

test "nested calls give the sum over their binomial tree" {
    // 2 · (sin(1) + 2·sin(0.5) + sin(0.25)), and its derivative.
    let r = nested_calls(x: [1.0]);
    expect_close(r.loss, 4.095452042645, 1e-6);
    expect_close(
        r.grad.x,
        [2.0 * (0.5403023058681398 + 0.8775825618903728 + 0.25 * 0.9689124217106447)],
        1e-6,
    );
    gradcheck nested_calls(N: 3);
}

/// An f64 identity, to check that f64 literals keep their written digits (issue 13).
step f64_ident(x: f64[B]) -> (y: f64[B]) { (y: x * 1.0) }

test "f64 literals are not rounded through f32" {
    let r = f64_ident(x: [0.1, 0.2]);
    expect_close(r.y, [0.1, 0.2], 0.0);
    expect_close(r.y, f64([0.1, 0.2]), 0.0);
    expect_close(f64(0.1), 0.1, 0.0);
    expect_close(f64([0.1, 0.2]) * 3.0, [0.30000000000000004, 0.6000000000000001], 0.0);
    let s = f64_ident(x: f64([-0.1, 0.2]));
    expect_close(s.y, [-0.1, 0.2], 0.0);
}

/// Kinks and singular points as the installed PyTorch (2.15) differentiates them; values from
/// `.backward()` on the same expressions (abs'(0) = relu'(0) = sign' = floor' = round' = 0;
/// d/dx x^0 = 0 even at 0; d/de b^e = 0 at b = 0; sqrt behind a clamp at its bound is 0).
objective kinks(x: f32[B]) {
    loss sum(abs(x) + relu(x) + sign(x) + floor(x) + round(x), B);
}

objective pow_zero(x: f32[B]) {
    loss sum(pow(x, 0.0), B);
}

objective pow_both(b: f32[B], e: f32[B]) {
    loss sum(pow(b, e), B);
}

objective sqrt_clamped(x: f32[B]) {
    loss sum(sqrt(clamp(x, min: 0.0)), B);
}

test "kinks and singular points follow PyTorch" {
    let r = kinks(x: [-1.0, 0.0, 2.0]);
    expect_close(r.grad.x, [-1.0, 0.0, 2.0], 0.0);
    let z = pow_zero(x: [0.0, 0.0, 2.0]);
    expect_close(z.grad.x, [0.0, 0.0, 0.0], 0.0);
    let p = pow_both(b: [0.0, 2.0, 3.0], e: [2.0, 0.0, 1.0]);
    expect_close(p.grad.b, [0.0, 0.0, 1.0], 0.0);
    expect_close(p.grad.e, [0.0, 0.6931471824645996, 3.295836925506592], 1e-7);
    let s = sqrt_clamped(x: [-1.0, 0.0, 2.0]);
    expect_close(s.grad.x, [0.0, 0.0, 0.3535533845424652], 1e-7);
}

/// `expect_close` without a tolerance is PyTorch's `assert_close` (per-dtype rtol/atol).
step scaled2(x: f32[B, C]) -> (y: f32[B, C]) { (y: x * 1.0) }

test "expect_close with rtol/atol follows assert_close" {
    let r = scaled2(x: [[1.0, 2.0], [3.0, 4.0]]);
    print(r.y);
    expect_close(r.y, [[1.0, 2.0], [3.0, 4.00001]]);
    expect_close(r.y, [[1.0, 2.0], [3.0, 4.1]], rtol: 0.03);
    expect_close(r.y, [[1.1, 2.0], [3.0, 4.1]], atol: 0.2);
    expect_close(r.y, [[1.0, 2.0], [3.0, 4.1]], rtol: 0.0, atol: 0.11);
}

/// The smooth maps and `std` no other gradcheck reaches; values from PyTorch 2.15 in f64:
/// `(expm1(x) + rsqrt(x*x + 1) + tanh(x) + softplus(x) + erf(x)).sum() + x.std()` backward.
objective smooth_maps(x: f64[B]) {
    loss sum(expm1(x) + rsqrt(x * x + 1.0) + tanh(x) + softplus(x) + erf(x), B) + std(x, B);
}

test "expm1, rsqrt, tanh, softplus, erf and std gradients" {
    let r = smooth_maps(x: f64([-1.5, -0.25, 0.5, 2.0]));
    expect_close(r.loss, 14.797105405121378, 1e-12);
    expect_close(
        r.grad.x,
        [0.5767471413103966, 3.345247023864751, 3.6498365088797855, 8.595225083478908],
        1e-12,
    );
    gradcheck smooth_maps(B: 6);
}

/// topk's gradient reaches only the selected positions (`torch.topk(x, 2)`, `(v * v).sum()`).
objective top_two(x: f32[N]) requires K == 2 {
    let (v, i) = topk(x, N -> K);
    loss sum(v * v, K);
}

test "topk gradient" {
    let r = top_two(x: [3.0, -1.0, 2.5, 0.5]);
    expect_close(r.loss, 15.25, 1e-6);
    expect_close(r.grad.x, [6.0, 0.0, 5.0, 0.0], 1e-6);
    gradcheck top_two(N: 5);
}

/// `inv`, batched, and its gradient (torch.linalg.inv in f64): the inverse's rows are indexed
/// by A's column dim, so `inv(a, R, C)` is `[N, C, R]` and `w` pairs with it as `[C, R]`.
objective inverted(a: f64[N, R, C], w: const f64[C, R]) {
    loss sum(inv(a, R, C) * w, N, C, R);
}

test "inv and its gradient" {
    let a = f64([[[2.0, 1.0], [1.0, 3.0]], [[4.0, -1.0], [2.0, 1.0]]]);
    let r = inverted(a: a, w: f64([[1.0, 2.0], [-1.0, 0.5]]));
    expect_close(r.loss, 1.7666666666666666, 1e-12);
    expect_close(
        r.grad.a,
        f64([
            [[-0.26, -0.28], [0.32, -0.04]],
            [
                [-0.11111111111111113, 0.055555555555555525],
                [-0.027777777777777762, -0.611111111111111],
            ],
        ]),
        1e-12,
    );
    gradcheck inverted(N: 2, R: 3, C: 3);
}

objective bf16_square(x: bf16[N]) {
    loss sum(f32(x) * f32(x), N);
}

test "bf16 results round to nearest, ties to even, as PyTorch 2.15 (portable: no __truncsfbf2)" {
    // torch.tensor([...], dtype=float32).bfloat16(): ties at 1.00390625 and 1.01171875 go to
    // the even neighbour; large and subnormal values keep bf16's range.
    expect_close(
        f32(bf16(f32([1.00390625, 1.01171875, 3e38, -1e-40, 3.3895314e38]))),
        f32([1.0, 1.015625, 3.00405527047391e38, -9.183549615799121e-41, 3.3895313892515355e38]),
        0.0,
    );
    // A bf16 gradient is stored through the same rounding.
    let r = bf16_square(x: bf16([1.0, 3.0, -0.5]));
    expect_close(f32(r.grad.x), [2.0, 6.0, -1.0], 0.0);
}

test "f16 results round to nearest, ties to even, with overflow to inf and subnormals (numpy's astype)" {
    // numpy: np.array(x, np.float32).astype(np.float16): 65519.99 stays finite, 2^-25 ties
    // down to 0, 3·2^-26 up to the smallest subnormal, 1 + 2^-11 ties down; 65520 (a tie) and
    // 70000 overflow to inf.
    let x = [
        65519.99, 2.9802322387695313e-8, 4.470348358154297e-8, 1.00048828125, 1.00146484375, 1e-8,
        6.1e-5, -2.5e-6,
    ];
    expect_close(
        f32(f16(x)),
        [
            65504.0, 0.0, 5.960464477539063e-8, 1.0, 1.001953125, 0.0, 6.097555160522461e-5,
            -2.5033950805664063e-6,
        ],
        0.0,
    );
    expect_close(f32(f32(f16([65520.0, 70000.0])) > 65504.0), [1.0, 1.0], 0.0);
}
