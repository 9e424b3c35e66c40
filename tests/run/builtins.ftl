// One test per group of builtins: values from each builtin's definition (Python's math module
// in f64; PyTorch conventions where they differ: round half to even, std with Bessel's
// correction, stable sorts, linspace endpoints). `ftc test tests/run` runs them.

step unary_math(
    x: f32[N],
    p: f32[N],
    n: f32[M],
) -> (
    e: f32[N],
    th: f32[N],
    sg: f32[N],
    sp: f32[N],
    ls: f32[N],
    er: f32[N],
    sn: f32[N],
    cs: f32[N],
    em: f32[N],
    lg: f32[N],
    l1: f32[N],
    sq: f32[N],
    rs: f32[N],
    lm: f32[M],
) {
    (
        e: exp(x),
        th: tanh(x),
        sg: sigmoid(x),
        sp: softplus(x),
        ls: log_sigmoid(x),
        er: erf(x),
        sn: sin(x),
        cs: cos(x),
        em: expm1(x),
        lg: log(p),
        l1: log1p(p),
        sq: sqrt(p),
        rs: rsqrt(p),
        lm: log1mexp(n),
    )
}

test "elementwise transcendentals" {
    let r = unary_math(x: [-1.5, -0.25, 0.5, 2.0], p: [0.5, 1.0, 4.0, 9.0], n: [-0.1, -1.0, -3.0]);
    expect_close(r.e, [0.22313016, 0.778800783, 1.648721271, 7.389056099], 1e-6);
    expect_close(r.th, [-0.905148254, -0.244918662, 0.462117157, 0.96402758], 1e-6);
    expect_close(r.sg, [0.182425524, 0.437823499, 0.622459331, 0.880797078], 1e-6);
    expect_close(r.sp, [0.201413278, 0.57593942, 0.974076984, 2.126928011], 1e-6);
    expect_close(r.ls, [-1.701413278, -0.82593942, -0.474076984, -0.126928011], 1e-6);
    expect_close(r.er, [-0.966105146, -0.27632639, 0.520499878, 0.995322265], 1e-6);
    expect_close(r.sn, [-0.997494987, -0.247403959, 0.479425539, 0.909297427], 1e-6);
    expect_close(r.cs, [0.070737202, 0.968912422, 0.877582562, -0.416146837], 1e-6);
    expect_close(r.em, [-0.77686984, -0.221199217, 0.648721271, 6.389056099], 1e-6);
    expect_close(r.lg, [-0.693147181, 0.0, 1.386294361, 2.197224577], 1e-6);
    expect_close(r.l1, [0.405465108, 0.693147181, 1.609437912, 2.302585093], 1e-6);
    expect_close(r.sq, [0.707106781, 1.0, 2.0, 3.0], 1e-6);
    expect_close(r.rs, [1.414213562, 1.0, 0.5, 0.333333333], 1e-6);
    expect_close(r.lm, [-2.352168461, -0.458675145, -0.051069181], 1e-6);
}

step rounding(
    x: f32[N],
    a: i32[N],
    b: i32[N],
) -> (
    ab: f32[N],
    sg: f32[N],
    fl: f32[N],
    ce: f32[N],
    ro: f32[N],
    re: f32[N],
    fd: i32[N],
    md: i32[N],
    pw: f32[N],
    mn: f32[N],
    mx: f32[N],
    cl: f32[N],
    wh: f32[N],
) {
    (
        ab: abs(x),
        sg: sign(x),
        fl: floor(x),
        ce: ceil(x),
        ro: round(x),
        re: relu(x),
        fd: floordiv(a, b),
        md: a % b,
        pw: pow(abs(x), 2.0),
        mn: min(x, 0.0),
        mx: max(x, 0.0),
        cl: clamp(x, min: -1.0),
        wh: where(x > 0.0, x, -x) + detach(x) * 0.0,
    )
}

test "rounding, integer division and selections" {
    let r = rounding(x: [-2.5, -0.5, 0.5, 1.5], a: [-7, 7, 6, 5], b: [2, -2, 3, 10]);
    expect_close(r.ab, [2.5, 0.5, 0.5, 1.5], 0.0);
    expect_close(r.sg, [-1.0, -1.0, 1.0, 1.0], 0.0);
    expect_close(r.fl, [-3.0, -1.0, 0.0, 1.0], 0.0);
    expect_close(r.ce, [-2.0, 0.0, 1.0, 2.0], 0.0);
    // half to even, as torch.round
    expect_close(r.ro, [-2.0, 0.0, 0.0, 2.0], 0.0);
    expect_close(r.re, [0.0, 0.0, 0.5, 1.5], 0.0);
    // Python's // and %: floor division, the remainder takes the divisor's sign
    expect_close(r.fd, [-4, -4, 2, 0], 0.0);
    expect_close(r.md, [1, -1, 0, 5], 0.0);
    expect_close(r.pw, [6.25, 0.25, 0.25, 2.25], 1e-7);
    expect_close(r.mn, [-2.5, -0.5, 0.0, 0.0], 0.0);
    expect_close(r.mx, [0.0, 0.0, 0.5, 1.5], 0.0);
    expect_close(r.cl, [-1.0, -0.5, 0.5, 1.5], 0.0);
    expect_close(r.wh, [2.5, 0.5, 0.5, 1.5], 0.0);
}

step reductions(
    m: f32[R, C],
    flags: bool[R, C],
) -> (
    s: f32[R],
    me: f32[C],
    mx: f32[R],
    mn: f32,
    lse: f32[R],
    sd: f32[R],
    am: i32[R],
    an: bool[R],
    al: bool[R],
    sm: f32[R, C],
    lsm: f32[R, C],
) {
    (
        s: sum(m, C),
        me: mean(m, R),
        mx: max(m, C),
        mn: min(m, R, C),
        lse: logsumexp(m, C),
        sd: std(m, C),
        am: argmax(m, C),
        an: any(flags, C),
        al: all(flags, C),
        sm: softmax(m, C),
        lsm: log_softmax(m, C),
    )
}

test "reductions and normalisations" {
    let r = reductions(
        m: [[1.0, 3.0, 2.0], [4.0, -1.0, 0.5]],
        flags: [[true, false, false], [true, true, true]],
    );
    expect_close(r.s, [6.0, 3.5], 1e-6);
    expect_close(r.me, [2.5, 1.0, 1.25], 1e-6);
    expect_close(r.mx, [3.0, 4.0], 0.0);
    expect_close(r.mn, -1.0, 0.0);
    expect_close(r.lse, [3.407605964, 4.036269565], 1e-6);
    expect_close(r.sd, [1.0, 2.56580072], 1e-6);
    expect_close(r.am, [1, 0], 0.0);
    expect_close(i32(r.an), [1, 1], 0.0);
    expect_close(i32(r.al), [0, 1], 0.0);
    expect_close(r.sm, [[0.090030573, 0.665240956, 0.244728471], [0.9663, 0.0065, 0.0291]], 0.01);
    expect_close(
        r.lsm,
        [[-2.407605964, -0.407605964, -1.407605964], [-0.036269565, -5.036269565, -3.536269565]],
        1e-6,
    );
}

step along(
    x: f32[N],
    k: i32 = 2,
) -> (cs: f32[N], cp: f32[N], so: f32[N], ars: i32[N], tv: f32[K], ti: i32[K], io: i32[N]) requires K == k {
    let (v, i) = topk(x, N -> K);
    (
        cs: cumsum(x, N),
        cp: cumprod(x, N),
        so: sort(x, N),
        ars: argsort(x, N),
        tv: v,
        ti: i,
        io: iota(N),
    )
}

test "scans, sorts, top-k and positions" {
    let r = along(x: [3.0, -1.0, 2.0, 2.0]);
    expect_close(r.cs, [3.0, 2.0, 4.0, 6.0], 0.0);
    expect_close(r.cp, [3.0, -3.0, -6.0, -12.0], 0.0);
    expect_close(r.so, [-1.0, 2.0, 2.0, 3.0], 0.0);
    // stable: the equal 2.0s keep their order
    expect_close(r.ars, [1, 2, 3, 0], 0.0);
    expect_close(r.tv, [3.0, 2.0], 0.0);
    expect_close(r.ti, [0, 2], 0.0);
    expect_close(r.io, [0, 1, 2, 3], 0.0);
}

step indexing(x: f32[N], i: i32[M], w: f32[M]) -> (g: f32[M], ge: f32[M], sc: f32[N], sz: i32) {
    (g: x[N: i % 4], ge: x[N: i else -1.0], sc: scatter(w, N: i % 4), sz: size(N))
}

test "gather, gather with a default, scatter, size" {
    let r = indexing(x: [10.0, 20.0, 30.0, 40.0], i: [2, 7, 2, -1], w: [1.0, 2.0, 3.0, 4.0]);
    expect_close(r.g, [30.0, 40.0, 30.0, 40.0], 0.0);
    expect_close(r.ge, [30.0, -1.0, 30.0, -1.0], 0.0);
    expect_close(r.sc, [0.0, 0.0, 4.0, 6.0], 0.0);
    expect_close(r.sz, 4, 0.0);
}

step linear(
    a: f32[I, K],
    b: f32[K, J],
    m: f32[I, I'],
    y: f32[I],
) -> (mm: f32[I, J], ct: f32[J], sv: f32[I']) {
    (mm: a @ b, ct: contract(a, b, K)[I: 0], sv: solve(m, y, I'))
}

test "contractions and solve" {
    let r = linear(
        a: [[1.0, 2.0], [3.0, 4.0]],
        b: [[5.0, 6.0], [7.0, 8.0]],
        m: [[4.0, 1.0], [2.0, 3.0]],
        y: [6.0, 8.0],
    );
    expect_close(r.mm, [[19.0, 22.0], [43.0, 50.0]], 0.0);
    expect_close(r.ct, [19.0, 22.0], 0.0);
    expect_close(r.sv, [1.0, 2.0], 1e-6);
}

step shapes(
    x: f32[N],
    m: f32[R, C],
    t: f32[..S],
) -> (sp: f32[A], mg: f32, rn: f32[C, R], sw: f32[R, C], fl: f32) requires A == 2 {
    let s = x[N -> (A, B)];
    (
        sp: sum(s * f32(iota(B)), B),
        mg: m[(R, C) -> Q][Q: 4],
        rn: m[R <-> C][R <-> C][R <-> C],
        sw: m[R <-> C],
        fl: t[..S -> D][D: 3],
    )
}

test "splits, merges, renames, swaps and flattening keep row-major data" {
    let r = shapes(
        x: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        m: [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]],
        t: [[1.0, 2.0], [3.0, 4.0]],
    );
    // split [1..6] into A = 2 rows of B = 3: row sums weighted by 0, 1, 2
    expect_close(r.sp, [8.0, 17.0], 0.0);
    expect_close(r.mg, 5.0, 0.0);
    expect_close(r.fl, 4.0, 0.0);
}

step constructors(
    n: i32 = 5,
) -> (z: f32[N], o: f32[N], f: f32[N], ls: f32[N], ur: f32, nr: f32, br: f32) requires N == n,
    K == 20000 {
    let u = rand(K);
    let g = randn(K);
    let b = bernoulli(full(0.25, K));
    (
        z: zeros(N),
        o: ones(N),
        f: full(2.5, N),
        ls: linspace(0.0, 1.0, N),
        ur: mean(u, K),
        nr: std(g, K),
        br: mean(b, K),
    )
}

test "constructors and random draws" {
    let r = constructors();
    expect_close(r.z, [0.0, 0.0, 0.0, 0.0, 0.0], 0.0);
    expect_close(r.o, [1.0, 1.0, 1.0, 1.0, 1.0], 0.0);
    expect_close(r.f, [2.5, 2.5, 2.5, 2.5, 2.5], 0.0);
    expect_close(r.ls, [0.0, 0.25, 0.5, 0.75, 1.0], 0.0);
    expect_close(r.ur, 0.5, 0.01);
    expect_close(r.nr, 1.0, 0.01);
    expect_close(r.br, 0.25, 0.01);
}

step kaiming(n: i32 = 5) -> (w: f32[K, N]) requires N == n, K == 400 {
    w = kaiming_uniform(fan_in: N, a: sqrt(5.0));
}

test "kaiming_uniform stays within its bound" {
    // a = sqrt 5 over fan_in 5: |w| <= sqrt(6 / (6 * 5)) = 0.4472
    let r = kaiming(n: 5);
    expect_close(r.w, 0.0, 0.4473);
}

/// solve with a batch dim on A: its last two dims are the matrix, as in torch.linalg.solve.
/// Values from `torch.linalg.solve(m, y)` in float64 and `(x * x).sum().backward()`.
objective batched_solve(m: f32[G, I, I'], y: f32[G, I, J]) {
    let x = solve(m, y, I');
    loss sum(x * x, G, I', J);
}

test "batched solve and its gradients match torch.linalg.solve" {
    let r = batched_solve(
        m: [[[4.0, 1.0], [2.0, 3.0]], [[2.0, 0.0], [1.0, 1.0]]],
        y: [[[6.0, 1.0], [8.0, 0.0]], [[2.0, 4.0], [3.0, 1.0]]],
    );
    expect_close(r.loss, 15.13);
    expect_close(r.grad.m, [[[0.122, 0.452], [-1.334, -2.844]], [[-5.0, 5.0], [0.0, -10.0]]]);
    expect_close(r.grad.y, [[[-0.2, 0.26], [1.4, -0.22]], [[-1.0, 3.0], [4.0, -2.0]]]);
}

/// `eye` (torch.eye) and the inverse written as a solve against it.
step inverse(m: f32[I, I']) -> (e: f32[I, J], inv: f32[I', I'']) requires J == 3 {
    (e: eye(I, J), inv: solve(m, eye(I, I''), I'))
}

test "eye, rectangular too, and the inverse through solve" {
    let r = inverse(m: [[4.0, 1.0], [2.0, 3.0]]);
    expect_close(r.e, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], 0.0);
    expect_close(r.inv, [[0.3, -0.1], [-0.2, 0.4]]);
}
