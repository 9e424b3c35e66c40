//! The f32 transcendentals and Philox, written once for every backend. Each function is a
//! decomposition into the scalar instructions of [`ScalarOps`] (range reduction, minimax
//! polynomials, exponent bit manipulation, integer mixing), so a backend maps a dozen
//! instructions to its own and gets the same math, with no libm call to block vectorization
//! (research/compiler.md §9). The polynomials are Cephes' single precision ones (≤ 2 ulp on their
//! ranges); `erf` follows Cephes below 1 and Abramowitz–Stegun 7.1.26 above, as PyTorch's
//! vectorized CPU erf does. Backends compute f64 with their platform's libm instead.

/// An integer width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int {
    /// 32 bits.
    I32,
    /// 64 bits.
    I64,
}

/// A binary f32 operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatOp {
    /// a + b
    Add,
    /// a − b
    Sub,
    /// a · b
    Mul,
    /// a / b
    Div,
    /// The smaller, NaN if either is (IEEE 754-2019 `minimum`).
    Min,
    /// The larger, NaN if either is (IEEE 754-2019 `maximum`).
    Max,
    /// |a| with b's sign.
    CopySign,
}

/// A unary f32 operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatUnary {
    /// −a
    Neg,
    /// |a|
    Abs,
    /// Round toward −∞.
    Floor,
    /// Correctly rounded square root.
    Sqrt,
}

/// An f32 comparison (a bool result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Ordered a < b.
    Lt,
    /// Ordered a > b.
    Gt,
    /// Ordered a == b.
    Eq,
    /// Either is NaN.
    Unordered,
}

/// A binary integer operation (wrapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntOp {
    /// a + b
    Add,
    /// a − b
    Sub,
    /// a · b (the low bits)
    Mul,
    /// Bitwise and.
    And,
    /// Bitwise or.
    Or,
    /// Bitwise xor.
    Xor,
    /// a << b
    Shl,
    /// Logical a >> b.
    ShrU,
}

/// A conversion between the scalar types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convert {
    /// f32 → i32, rounding toward zero (the value is in range).
    F32ToI32,
    /// i32 → f32 (signed).
    I32ToF32,
    /// i32 → f32, the bits read as unsigned.
    U32ToF32,
    /// The bits of an f32 as an i32.
    F32Bits,
    /// An i32's bits as an f32.
    BitsF32,
    /// The low 32 bits of an i64.
    I64Low,
    /// An i32's bits zero-extended to i64.
    U32ToI64,
}

/// The scalar instructions the shared math is written in. A backend implements it on its own
/// values (MLIR SSA names, Cranelift values, …); `Val` is f32, i32, i64 or bool as each
/// method says.
pub trait ScalarOps {
    /// A value.
    type Val: Clone;

    /// An f32 constant (`v` rounded to f32).
    fn f32_const(&mut self, v: f64) -> Self::Val;
    /// An integer constant of width `ty` (`v` truncated to it).
    fn int_const(&mut self, ty: Int, v: i64) -> Self::Val;
    /// A binary f32 operation.
    fn float(&mut self, op: FloatOp, a: &Self::Val, b: &Self::Val) -> Self::Val;
    /// A unary f32 operation.
    fn float_unary(&mut self, op: FloatUnary, a: &Self::Val) -> Self::Val;
    /// a · b + c with one rounding.
    fn fma(&mut self, a: &Self::Val, b: &Self::Val, c: &Self::Val) -> Self::Val;
    /// An f32 comparison.
    fn compare(&mut self, pred: Compare, a: &Self::Val, b: &Self::Val) -> Self::Val;
    /// `c ? a : b` on f32 values.
    fn select(&mut self, c: &Self::Val, a: &Self::Val, b: &Self::Val) -> Self::Val;
    /// A binary integer operation of width `ty`.
    fn int(&mut self, op: IntOp, ty: Int, a: &Self::Val, b: &Self::Val) -> Self::Val;
    /// Whether two i32 values differ.
    fn int_ne(&mut self, a: &Self::Val, b: &Self::Val) -> Self::Val;
    /// A conversion.
    fn convert(&mut self, op: Convert, a: &Self::Val) -> Self::Val;
}

fn add<S: ScalarOps>(s: &mut S, a: &S::Val, b: &S::Val) -> S::Val {
    s.float(FloatOp::Add, a, b)
}

fn sub<S: ScalarOps>(s: &mut S, a: &S::Val, b: &S::Val) -> S::Val {
    s.float(FloatOp::Sub, a, b)
}

fn mul<S: ScalarOps>(s: &mut S, a: &S::Val, b: &S::Val) -> S::Val {
    s.float(FloatOp::Mul, a, b)
}

fn div<S: ScalarOps>(s: &mut S, a: &S::Val, b: &S::Val) -> S::Val {
    s.float(FloatOp::Div, a, b)
}

fn neg<S: ScalarOps>(s: &mut S, a: &S::Val) -> S::Val {
    s.float_unary(FloatUnary::Neg, a)
}

fn i32c<S: ScalarOps>(s: &mut S, v: i64) -> S::Val {
    s.int_const(Int::I32, v)
}

/// Horner evaluation of `coeffs` (highest degree first) at `x`.
fn poly<S: ScalarOps>(s: &mut S, x: &S::Val, coeffs: &[f64]) -> S::Val {
    let mut acc = s.f32_const(coeffs[0]);
    for c in &coeffs[1..] {
        let k = s.f32_const(*c);
        acc = s.fma(&acc, x, &k);
    }
    acc
}

/// 2^n for an integral f32 n in [-126, 127], built in the exponent bits: adding 1.5·2^23 + 127
/// puts n + 127 in the low mantissa bits exactly (|n| < 2^22), and shifting them into the
/// exponent field drops the rest (two instructions where a float-to-int conversion is many in
/// some instruction sets).
fn pow2<S: ScalarOps>(s: &mut S, n: &S::Val) -> S::Val {
    let shifter = s.f32_const(12_582_912.0 + 127.0);
    let biased = add(s, n, &shifter);
    let bits = s.convert(Convert::F32Bits, &biased);
    let sh = i32c(s, 23);
    let bits = s.int(IntOp::Shl, Int::I32, &bits, &sh);
    s.convert(Convert::BitsF32, &bits)
}

/// e^x (Cephes expf): |error| ≤ 1 ulp; exact 0 below −88.38, +inf above 88.38.
pub fn exp<S: ScalarOps>(s: &mut S, x: &S::Val) -> S::Val {
    let (hi, lo) = (
        s.f32_const(88.376_262_664_794_9),
        s.f32_const(-88.376_262_664_794_9),
    );
    // No clamp to [lo, hi]: outside it the result is selected below, and what the reduction
    // computes there instead is discarded (pow2 is bit arithmetic, defined for any input; a NaN
    // flows through to the result).
    let over = s.compare(Compare::Gt, x, &hi);
    let under = s.compare(Compare::Lt, x, &lo);
    let log2e = s.f32_const(std::f64::consts::LOG2_E);
    let half = s.f32_const(0.5);
    let fx = s.fma(x, &log2e, &half);
    let n = s.float_unary(FloatUnary::Floor, &fx);
    let (c1, c2) = (s.f32_const(-0.693_359_375), s.f32_const(2.121_944_4e-4));
    let r = s.fma(&n, &c1, x);
    let r = s.fma(&n, &c2, &r);
    let r2 = mul(s, &r, &r);
    let p = poly(
        s,
        &r,
        &[
            1.987_569_150_0e-4,
            1.398_199_950_7e-3,
            8.333_451_907_3e-3,
            4.166_579_589_4e-2,
            1.666_666_545_9e-1,
            5.000_000_120_1e-1,
        ],
    );
    let y = s.fma(&p, &r2, &r);
    let one = s.f32_const(1.0);
    let y = add(s, &y, &one);
    let p2 = pow2(s, &n);
    let y = mul(s, &y, &p2);
    let inf = s.f32_const(f64::INFINITY);
    let y = s.select(&over, &inf, &y);
    let zero = s.f32_const(0.0);
    s.select(&under, &zero, &y)
}

/// ln x (Cephes logf): exponent/mantissa split, polynomial on [√½ − 1, √2 − 1]; denormals
/// scaled first; −inf at 0, NaN below 0, +inf at +inf.
pub fn log<S: ScalarOps>(s: &mut S, x: &S::Val) -> S::Val {
    // Scale denormals by 2^23 so the exponent field is meaningful.
    let tiny = s.f32_const(1.175_494_350_822_287_5e-38);
    let is_tiny = s.compare(Compare::Lt, x, &tiny);
    let scale = s.f32_const(8_388_608.0);
    let xs = mul(s, x, &scale);
    let xv = s.select(&is_tiny, &xs, x);
    let bits = s.convert(Convert::F32Bits, &xv);
    let sh = i32c(s, 23);
    let ex = s.int(IntOp::ShrU, Int::I32, &bits, &sh);
    let mask = i32c(s, 0xff);
    let ex = s.int(IntOp::And, Int::I32, &ex, &mask);
    let b126 = i32c(s, 126);
    let ex = s.int(IntOp::Sub, Int::I32, &ex, &b126);
    let e = s.convert(Convert::I32ToF32, &ex);
    let adj = s.f32_const(23.0);
    let e_adj = sub(s, &e, &adj);
    let e = s.select(&is_tiny, &e_adj, &e);
    let mm = i32c(s, 0x007f_ffff);
    let mb = s.int(IntOp::And, Int::I32, &bits, &mm);
    let half_bits = i32c(s, 0x3f00_0000);
    let mb = s.int(IntOp::Or, Int::I32, &mb, &half_bits);
    let m = s.convert(Convert::BitsF32, &mb);
    // m in [0.5, 1): below √½ use 2m − 1 and e − 1, else m − 1.
    let sqrth = s.f32_const(std::f64::consts::FRAC_1_SQRT_2);
    let small = s.compare(Compare::Lt, &m, &sqrth);
    let one = s.f32_const(1.0);
    let e1 = sub(s, &e, &one);
    let e = s.select(&small, &e1, &e);
    let m2 = add(s, &m, &m);
    let mv = s.select(&small, &m2, &m);
    let f = sub(s, &mv, &one);
    let z = mul(s, &f, &f);
    let p = poly(
        s,
        &f,
        &[
            7.037_683_629_2e-2,
            -1.151_461_031_0e-1,
            1.167_699_874_0e-1,
            -1.242_014_084_6e-1,
            1.424_932_278_7e-1,
            -1.666_805_766_5e-1,
            2.000_071_476_5e-1,
            -2.499_999_399_3e-1,
            3.333_333_117_4e-1,
        ],
    );
    let y = mul(s, &p, &f);
    let y = mul(s, &y, &z);
    let q1 = s.f32_const(-2.121_944_4e-4);
    let y = s.fma(&e, &q1, &y);
    let mh = s.f32_const(-0.5);
    let y = s.fma(&z, &mh, &y);
    let r = add(s, &f, &y);
    let q2 = s.f32_const(0.693_359_375);
    let r = s.fma(&e, &q2, &r);
    // Special values.
    let zero = s.f32_const(0.0);
    let is_zero = s.compare(Compare::Eq, x, &zero);
    let ninf = s.f32_const(f64::NEG_INFINITY);
    let r = s.select(&is_zero, &ninf, &r);
    let negative = s.compare(Compare::Lt, x, &zero);
    let nan = s.f32_const(f64::NAN);
    let r = s.select(&negative, &nan, &r);
    let inf = s.f32_const(f64::INFINITY);
    let is_inf = s.compare(Compare::Eq, x, &inf);
    let r = s.select(&is_inf, &inf, &r);
    let is_nan = s.compare(Compare::Unordered, x, x);
    s.select(&is_nan, x, &r)
}

/// ln(1 + x), accurate near 0: log(u) · x / (u − 1) with u = 1 + x (Goldberg).
pub fn log1p<S: ScalarOps>(s: &mut S, x: &S::Val) -> S::Val {
    let one = s.f32_const(1.0);
    let u = add(s, &one, x);
    let d = sub(s, &u, &one);
    let l = log(s, &u);
    let lx = mul(s, &l, x);
    let q = div(s, &lx, &d);
    let zero = s.f32_const(0.0);
    let exact = s.compare(Compare::Eq, &d, &zero);
    let r = s.select(&exact, x, &q);
    let inf = s.f32_const(f64::INFINITY);
    let is_inf = s.compare(Compare::Eq, x, &inf);
    s.select(&is_inf, &inf, &r)
}

/// e^x − 1, accurate near 0: (u − 1) · x / log(u) with u = e^x (Kahan).
pub fn expm1<S: ScalarOps>(s: &mut S, x: &S::Val) -> S::Val {
    let u = exp(s, x);
    let one = s.f32_const(1.0);
    let um1 = sub(s, &u, &one);
    let l = log(s, &u);
    let p = mul(s, &um1, x);
    let q = div(s, &p, &l);
    let is_one = s.compare(Compare::Eq, &u, &one);
    let r = s.select(&is_one, x, &q);
    let mone = s.f32_const(-1.0);
    let is_m1 = s.compare(Compare::Eq, &um1, &mone);
    let r = s.select(&is_m1, &mone, &r);
    let big = s.f32_const(88.0);
    let over = s.compare(Compare::Gt, x, &big);
    s.select(&over, &u, &r)
}

/// tanh x = expm1(2x) / (expm1(2x) + 2), ±1 beyond |x| > 9.
pub fn tanh<S: ScalarOps>(s: &mut S, x: &S::Val) -> S::Val {
    let two = s.f32_const(2.0);
    let x2 = mul(s, x, &two);
    let e = expm1(s, &x2);
    let den = add(s, &e, &two);
    let r = div(s, &e, &den);
    let ax = s.float_unary(FloatUnary::Abs, x);
    let nine = s.f32_const(9.0);
    let sat = s.compare(Compare::Gt, &ax, &nine);
    let one = s.f32_const(1.0);
    let signed = s.float(FloatOp::CopySign, &one, x);
    s.select(&sat, &signed, &r)
}

/// 1 / (1 + e^−x).
pub fn sigmoid<S: ScalarOps>(s: &mut S, x: &S::Val) -> S::Val {
    let nx = neg(s, x);
    let e = exp(s, &nx);
    let one = s.f32_const(1.0);
    let d = add(s, &one, &e);
    div(s, &one, &d)
}

/// max(x, 0) + log1p(e^−|x|).
pub fn softplus<S: ScalarOps>(s: &mut S, x: &S::Val) -> S::Val {
    let ax = s.float_unary(FloatUnary::Abs, x);
    let nax = neg(s, &ax);
    let e = exp(s, &nax);
    let l = log1p(s, &e);
    let zero = s.f32_const(0.0);
    let m = s.float(FloatOp::Max, x, &zero);
    add(s, &m, &l)
}

/// log(1 − e^x), switching at −ln 2.
pub fn log1mexp<S: ScalarOps>(s: &mut S, x: &S::Val) -> S::Val {
    let em = expm1(s, x);
    let nem = neg(s, &em);
    let a = log(s, &nem);
    let e = exp(s, x);
    let ne = neg(s, &e);
    let b = log1p(s, &ne);
    let t = s.f32_const(-std::f64::consts::LN_2);
    let near = s.compare(Compare::Gt, x, &t);
    s.select(&near, &a, &b)
}

/// erf: Cephes' odd polynomial below |x| = 1, Abramowitz–Stegun 7.1.26 above.
pub fn erf<S: ScalarOps>(s: &mut S, x: &S::Val) -> S::Val {
    let z = mul(s, x, x);
    let p = poly(
        s,
        &z,
        &[
            7.853_861_353_153_693e-5,
            -8.010_193_625_184_903e-4,
            5.188_327_685_732_524e-3,
            -2.685_381_193_529_856e-2,
            1.128_358_514_861_418e-1,
            -3.761_262_582_423_3e-1,
            1.128_379_165_726_71,
        ],
    );
    let small = mul(s, x, &p);
    let ax = s.float_unary(FloatUnary::Abs, x);
    let pc = s.f32_const(0.327_591_1);
    let one = s.f32_const(1.0);
    let den = s.fma(&pc, &ax, &one);
    let t = div(s, &one, &den);
    let q = poly(
        s,
        &t,
        &[
            1.061_405_429,
            -1.453_152_027,
            1.421_413_741,
            -0.284_496_736,
            0.254_829_592,
        ],
    );
    let q = mul(s, &q, &t);
    let nz = neg(s, &z);
    let e = exp(s, &nz);
    let qe = mul(s, &q, &e);
    let big = sub(s, &one, &qe);
    let big = s.float(FloatOp::CopySign, &big, x);
    let lt1 = s.compare(Compare::Lt, &ax, &one);
    s.select(&lt1, &small, &big)
}

/// sin (`cos` false) or cos (Cephes sinf/cosf): reduction by π/4 in three parts, octant
/// selection.
pub fn sin_cos<S: ScalarOps>(s: &mut S, x: &S::Val, cos: bool) -> S::Val {
    let ax = s.float_unary(FloatUnary::Abs, x);
    let fopi = s.f32_const(4.0 / std::f64::consts::PI);
    let y = mul(s, &ax, &fopi);
    let y = s.float_unary(FloatUnary::Floor, &y);
    let j = s.convert(Convert::F32ToI32, &y);
    // j odd → j + 1 (and y with it)
    let one_i = i32c(s, 1);
    let odd = s.int(IntOp::And, Int::I32, &j, &one_i);
    let j = s.int(IntOp::Add, Int::I32, &j, &odd);
    let y = s.convert(Convert::I32ToF32, &j);
    let seven = i32c(s, 7);
    let j = s.int(IntOp::And, Int::I32, &j, &seven);
    let (d1, d2, d3) = (
        s.f32_const(-0.785_156_25),
        s.f32_const(-2.418_756_484_985_351_6e-4),
        s.f32_const(-3.774_894_977_445_941e-8),
    );
    let z = s.fma(&y, &d1, &ax);
    let z = s.fma(&y, &d2, &z);
    let z = s.fma(&y, &d3, &z);
    let zz = mul(s, &z, &z);
    // sin polynomial on the reduced argument
    let ps = poly(
        s,
        &zz,
        &[-1.951_529_589_1e-4, 8.332_160_873_6e-3, -1.666_665_461_1e-1],
    );
    let ps = mul(s, &ps, &zz);
    let sin = s.fma(&ps, &z, &z);
    // cos polynomial
    let pc = poly(
        s,
        &zz,
        &[
            2.443_315_711_809_948e-5,
            -1.388_731_625_493_765e-3,
            4.166_664_568_298_827e-2,
        ],
    );
    let zz2 = mul(s, &zz, &zz);
    let pc = mul(s, &pc, &zz2);
    let mh = s.f32_const(-0.5);
    let one = s.f32_const(1.0);
    let cpart = s.fma(&zz, &mh, &one);
    let c = add(s, &cpart, &pc);
    // Octant: for sin, use the cos polynomial when j ∈ {2, 6}; the sign flips for j ≥ 4 (and
    // with the input's sign). For cos: shift the octant by 2.
    let two_i = i32c(s, 2);
    let j = if cos {
        s.int(IntOp::Add, Int::I32, &j, &two_i)
    } else {
        j
    };
    let j = s.int(IntOp::And, Int::I32, &j, &seven);
    let bit1 = s.int(IntOp::And, Int::I32, &j, &two_i);
    let zero_i = i32c(s, 0);
    let use_cos = s.int_ne(&bit1, &zero_i);
    let r = s.select(&use_cos, &c, &sin);
    let four = i32c(s, 4);
    let bit2 = s.int(IntOp::And, Int::I32, &j, &four);
    let flip = s.int_ne(&bit2, &zero_i);
    let nr = neg(s, &r);
    let r = s.select(&flip, &nr, &r);
    if cos {
        r
    } else {
        let zero = s.f32_const(0.0);
        let negative = s.compare(Compare::Lt, x, &zero);
        let nr = neg(s, &r);
        s.select(&negative, &nr, &r)
    }
}

/// Philox-4x32-10 of counter (idx, site, offset) under key `seed` (`idx`, `seed` and `offset`
/// are i64 values), as the runtime's `philox::draw`; returns the four words (i32).
pub fn philox<S: ScalarOps>(
    s: &mut S,
    idx: &S::Val,
    site: u32,
    seed: &S::Val,
    offset: &S::Val,
) -> [S::Val; 4] {
    let c32 = s.int_const(Int::I64, 32);
    let lo = |s: &mut S, v: &S::Val| s.convert(Convert::I64Low, v);
    let hi = |s: &mut S, v: &S::Val| {
        let h = s.int(IntOp::ShrU, Int::I64, v, &c32);
        s.convert(Convert::I64Low, &h)
    };
    let mut c = [
        lo(s, idx),
        hi(s, idx),
        s.int_const(Int::I32, i64::from(site as i32)),
        lo(s, offset),
    ];
    let mut k = [lo(s, seed), hi(s, seed)];
    let m0 = s.int_const(Int::I64, 0xD251_1F53);
    let m1 = s.int_const(Int::I64, 0xCD9E_8D57);
    let w0 = s.int_const(Int::I32, 0x9E37_79B9_u32 as i32 as i64);
    let w1 = s.int_const(Int::I32, 0xBB67_AE85_u32 as i32 as i64);
    let mulhilo = |s: &mut S, m: &S::Val, x: &S::Val| {
        let wide = s.convert(Convert::U32ToI64, x);
        let p = s.int(IntOp::Mul, Int::I64, &wide, m);
        (hi(s, &p), lo(s, &p))
    };
    for round in 0..10 {
        if round > 0 {
            k = [
                s.int(IntOp::Add, Int::I32, &k[0], &w0),
                s.int(IntOp::Add, Int::I32, &k[1], &w1),
            ];
        }
        let (hi0, lo0) = mulhilo(s, &m0, &c[0]);
        let (hi1, lo1) = mulhilo(s, &m1, &c[2]);
        let x0 = s.int(IntOp::Xor, Int::I32, &hi1, &c[1]);
        let x0 = s.int(IntOp::Xor, Int::I32, &x0, &k[0]);
        let x2 = s.int(IntOp::Xor, Int::I32, &hi0, &c[3]);
        let x2 = s.int(IntOp::Xor, Int::I32, &x2, &k[1]);
        c = [x0, lo1, x2, lo0];
    }
    c
}

/// The top 24 bits of a word as an f32 in [0, 1) (`philox::uniform`), plus `add` units.
fn word_unit<S: ScalarOps>(s: &mut S, w: &S::Val, add_units: f64) -> S::Val {
    let eight = i32c(s, 8);
    let top = s.int(IntOp::ShrU, Int::I32, w, &eight);
    let f = s.convert(Convert::U32ToF32, &top);
    let f = if add_units != 0.0 {
        let a = s.f32_const(add_units);
        add(s, &f, &a)
    } else {
        f
    };
    let scale = s.f32_const(1.0 / 16_777_216.0);
    mul(s, &f, &scale)
}

/// A uniform in [0, 1) or a standard normal (Box–Muller, cosine branch) from a Philox draw.
pub fn random<S: ScalarOps>(s: &mut S, w: &[S::Val; 4], normal: bool) -> S::Val {
    if !normal {
        return word_unit(s, &w[0], 0.0);
    }
    let u1 = word_unit(s, &w[0], 1.0);
    let u2 = word_unit(s, &w[1], 0.0);
    let l = log(s, &u1);
    let m2 = s.f32_const(-2.0);
    let r = mul(s, &l, &m2);
    let r = s.float_unary(FloatUnary::Sqrt, &r);
    let tau = s.f32_const(std::f64::consts::TAU);
    let a = mul(s, &u2, &tau);
    let c = sin_cos(s, &a, true);
    mul(s, &r, &c)
}

#[cfg(test)]
mod tests {
    //! The shared math evaluated in plain Rust (one f32 operation per instruction, as a backend
    //! executes it): its accuracy and its Philox are checked here with no backend at all.
    use super::*;

    #[derive(Clone, Copy, Debug)]
    enum V {
        F(f32),
        I32(i32),
        I64(i64),
        B(bool),
    }

    struct Eval;

    fn f(v: &V) -> f32 {
        match v {
            V::F(x) => *x,
            other => panic!("f32 expected, got {other:?}"),
        }
    }

    fn i32v(v: &V) -> i32 {
        match v {
            V::I32(x) => *x,
            other => panic!("i32 expected, got {other:?}"),
        }
    }

    impl ScalarOps for Eval {
        type Val = V;
        fn f32_const(&mut self, v: f64) -> V {
            V::F(v as f32)
        }
        fn int_const(&mut self, ty: Int, v: i64) -> V {
            match ty {
                Int::I32 => V::I32(v as i32),
                Int::I64 => V::I64(v),
            }
        }
        fn float(&mut self, op: FloatOp, a: &V, b: &V) -> V {
            let (a, b) = (f(a), f(b));
            V::F(match op {
                FloatOp::Add => a + b,
                FloatOp::Sub => a - b,
                FloatOp::Mul => a * b,
                FloatOp::Div => a / b,
                FloatOp::Min if a.is_nan() || b.is_nan() => f32::NAN,
                FloatOp::Max if a.is_nan() || b.is_nan() => f32::NAN,
                FloatOp::Min => a.min(b),
                FloatOp::Max => a.max(b),
                FloatOp::CopySign => a.copysign(b),
            })
        }
        fn float_unary(&mut self, op: FloatUnary, a: &V) -> V {
            let a = f(a);
            V::F(match op {
                FloatUnary::Neg => -a,
                FloatUnary::Abs => a.abs(),
                FloatUnary::Floor => a.floor(),
                FloatUnary::Sqrt => a.sqrt(),
            })
        }
        fn fma(&mut self, a: &V, b: &V, c: &V) -> V {
            V::F(f(a).mul_add(f(b), f(c)))
        }
        fn compare(&mut self, pred: Compare, a: &V, b: &V) -> V {
            let (a, b) = (f(a), f(b));
            V::B(match pred {
                Compare::Lt => a < b,
                Compare::Gt => a > b,
                Compare::Eq => a == b,
                Compare::Unordered => a.is_nan() || b.is_nan(),
            })
        }
        fn select(&mut self, c: &V, a: &V, b: &V) -> V {
            match c {
                V::B(true) => *a,
                V::B(false) => *b,
                other => panic!("bool expected, got {other:?}"),
            }
        }
        fn int(&mut self, op: IntOp, _ty: Int, a: &V, b: &V) -> V {
            macro_rules! apply {
                ($a:expr, $b:expr, $unsigned:ty) => {
                    match op {
                        IntOp::Add => $a.wrapping_add($b),
                        IntOp::Sub => $a.wrapping_sub($b),
                        IntOp::Mul => $a.wrapping_mul($b),
                        IntOp::And => $a & $b,
                        IntOp::Or => $a | $b,
                        IntOp::Xor => $a ^ $b,
                        IntOp::Shl => $a.wrapping_shl($b as u32),
                        IntOp::ShrU => (($a as $unsigned) >> ($b as u32)) as _,
                    }
                };
            }
            match (a, b) {
                (V::I32(a), V::I32(b)) => V::I32(apply!(*a, *b, u32)),
                (V::I64(a), V::I64(b)) => V::I64(apply!(*a, *b, u64)),
                other => panic!("matching integers expected, got {other:?}"),
            }
        }
        fn int_ne(&mut self, a: &V, b: &V) -> V {
            V::B(i32v(a) != i32v(b))
        }
        fn convert(&mut self, op: Convert, a: &V) -> V {
            match (op, a) {
                (Convert::F32ToI32, V::F(x)) => V::I32(*x as i32),
                (Convert::I32ToF32, V::I32(x)) => V::F(*x as f32),
                (Convert::U32ToF32, V::I32(x)) => V::F(*x as u32 as f32),
                (Convert::F32Bits, V::F(x)) => V::I32(x.to_bits() as i32),
                (Convert::BitsF32, V::I32(x)) => V::F(f32::from_bits(*x as u32)),
                (Convert::I64Low, V::I64(x)) => V::I32(*x as i32),
                (Convert::U32ToI64, V::I32(x)) => V::I64(i64::from(*x as u32)),
                other => panic!("bad conversion {other:?}"),
            }
        }
    }

    fn ulps(a: f32, b: f32) -> u32 {
        if a == b || (a.is_nan() && b.is_nan()) {
            return 0;
        }
        let key = |x: f32| {
            let i = x.to_bits() as i32;
            if i < 0 {
                i32::MIN.wrapping_sub(i)
            } else {
                i
            }
        };
        key(a).abs_diff(key(b))
    }

    type Decomposition = fn(&mut Eval, &V) -> V;

    /// A function checked: name, decomposition, f64 reference, range and ulp bound.
    type Case = (&'static str, Decomposition, fn(f64) -> f64, f64, f64, u32);

    #[test]
    fn the_shared_f32_math_is_within_a_few_ulp() {
        let sigmoid_ref = |x: f64| 1.0 / (1.0 + (-x).exp());
        let softplus_ref = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
        let cases: [Case; 9] = [
            ("exp", exp, f64::exp, -87.0, 87.0, 2),
            ("log", log, f64::ln, 1e-30, 1e6, 2),
            ("log1p", log1p, f64::ln_1p, -0.9, 1e6, 3),
            ("expm1", expm1, f64::exp_m1, -10.0, 10.0, 3),
            ("tanh", tanh, f64::tanh, -10.0, 10.0, 4),
            ("sigmoid", sigmoid, sigmoid_ref, -87.0, 87.0, 3),
            ("softplus", softplus, softplus_ref, -87.0, 87.0, 3),
            ("sin", |s, x| sin_cos(s, x, false), f64::sin, -10.0, 10.0, 3),
            ("cos", |s, x| sin_cos(s, x, true), f64::cos, -10.0, 10.0, 3),
        ];
        for (name, decomposition, reference, lo, hi, bound) in cases {
            let worst = (0..20001)
                .map(|i| {
                    let x = (lo + (hi - lo) * f64::from(i) / 20000.0) as f32;
                    let got = f(&decomposition(&mut Eval, &V::F(x)));
                    ulps(got, reference(f64::from(x)) as f32)
                })
                .max()
                .unwrap_or(0);
            assert!(worst <= bound, "{name}: {worst} ulp > {bound}");
        }
    }

    #[test]
    fn exp_saturates_and_keeps_nan_without_a_clamp() {
        let e = |x: f32| f(&exp(&mut Eval, &V::F(x)));
        for x in [88.5, 100.0, 1e30, f32::MAX, f32::INFINITY] {
            assert_eq!(e(x), f32::INFINITY, "e^{x}");
        }
        for x in [-88.5, -100.0, -1e30, f32::MIN, f32::NEG_INFINITY] {
            assert_eq!(e(x), 0.0, "e^{x}");
        }
        assert!(e(f32::NAN).is_nan());
        // The ends of the computed range stay finite and accurate.
        for x in [88.0_f32, -87.3] {
            assert!(ulps(e(x), f64::from(x).exp() as f32) <= 2, "e^{x}");
        }
    }

    #[test]
    fn the_shared_philox_is_the_runtimes() {
        for (seed, offset, site, index) in [
            (0u64, 0u64, 0u32, 0u64),
            (42, 7, 3, 123_456_789_012),
            (u64::MAX, 1 << 31, u32::MAX, u64::MAX),
        ] {
            let words = philox(
                &mut Eval,
                &V::I64(index as i64),
                site,
                &V::I64(seed as i64),
                &V::I64(offset as i64),
            );
            let got: Vec<u32> = words.iter().map(|w| i32v(w) as u32).collect();
            let want = ftl_runtime::philox::draw(seed, offset, site, index);
            assert_eq!(got, want.to_vec());
            let u = f(&random(&mut Eval, &words, false));
            assert_eq!(u, ftl_runtime::philox::uniform(want[0]));
        }
    }
}
