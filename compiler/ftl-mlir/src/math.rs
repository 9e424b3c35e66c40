//! Transcendental functions of f32 decomposed into `arith` and `math` operations that
//! vectorize (range reduction, minimax polynomials, exponent bit manipulation), so no libm call
//! blocks LLVM's loop vectorizer (research/compiler.md §9). The polynomials are Cephes' single
//! precision ones (≤ 2 ulp on their ranges); `erf` follows Cephes below 1 and Abramowitz–Stegun
//! 7.1.26 above, as PyTorch's vectorized CPU erf does. f64 uses `math` ops (libm) instead.

use crate::emit::Func;

/// Emits f32 math on SSA values of a [`Func`].
impl Func<'_> {
    fn c(&mut self, v: f64) -> String {
        self.const_f("f32", v)
    }

    fn op2(&mut self, op: &str, a: &str, b: &str) -> String {
        self.emit_val(&format!("arith.{op} {a}, {b} : f32"))
    }

    fn fma(&mut self, a: &str, b: &str, c: &str) -> String {
        self.emit_val(&format!("math.fma {a}, {b}, {c} : f32"))
    }

    fn sel(&mut self, c: &str, a: &str, b: &str) -> String {
        self.emit_val(&format!("arith.select {c}, {a}, {b} : f32"))
    }

    fn cmp(&mut self, pred: &str, a: &str, b: &str) -> String {
        self.emit_val(&format!("arith.cmpf {pred}, {a}, {b} : f32"))
    }

    /// Horner evaluation of `coeffs` (highest degree first) at `x`.
    fn poly(&mut self, x: &str, coeffs: &[f64]) -> String {
        let mut acc = self.c(coeffs[0]);
        for c in &coeffs[1..] {
            let k = self.c(*c);
            acc = self.fma(&acc, x, &k);
        }
        acc
    }

    /// 2^n for an integral f32 n in [-126, 127], built in the exponent bits.
    fn pow2(&mut self, n: &str) -> String {
        let ni = self.emit_val(&format!("arith.fptosi {n} : f32 to i32"));
        let bias = self.const_i("i32", 127);
        let e = self.emit_val(&format!("arith.addi {ni}, {bias} : i32"));
        let sh = self.const_i("i32", 23);
        let bits = self.emit_val(&format!("arith.shli {e}, {sh} : i32"));
        self.emit_val(&format!("arith.bitcast {bits} : i32 to f32"))
    }

    /// e^x (Cephes expf): |error| ≤ 1 ulp; exact 0 below −88.38, +inf above 88.38.
    pub fn exp_f32(&mut self, x: &str) -> String {
        let (hi, lo) = (self.c(88.376_262_664_794_9), self.c(-88.376_262_664_794_9));
        let xc = self.emit_val(&format!("arith.minimumf {x}, {hi} : f32"));
        let xc = self.emit_val(&format!("arith.maximumf {xc}, {lo} : f32"));
        let log2e = self.c(std::f64::consts::LOG2_E);
        let half = self.c(0.5);
        let fx = self.fma(&xc, &log2e, &half);
        let n = self.emit_val(&format!("math.floor {fx} : f32"));
        let (c1, c2) = (self.c(-0.693_359_375), self.c(2.121_944_4e-4));
        let r = self.fma(&n, &c1, &xc);
        let r = self.fma(&n, &c2, &r);
        let r2 = self.op2("mulf", &r, &r);
        let p = self.poly(
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
        let y = self.fma(&p, &r2, &r);
        let one = self.c(1.0);
        let y = self.op2("addf", &y, &one);
        let s = self.pow2(&n);
        let y = self.op2("mulf", &y, &s);
        let over = self.cmp("ogt", x, &hi);
        let inf = self.c(f64::INFINITY);
        let y = self.sel(&over, &inf, &y);
        let under = self.cmp("olt", x, &lo);
        let zero = self.c(0.0);
        self.sel(&under, &zero, &y)
    }

    /// ln x (Cephes logf): exponent/mantissa split, polynomial on [√½ − 1, √2 − 1];
    /// denormals scaled first; −inf at 0, NaN below 0, +inf at +inf.
    pub fn log_f32(&mut self, x: &str) -> String {
        // Scale denormals by 2^23 so the exponent field is meaningful.
        let tiny = self.c(1.175_494_350_822_287_5e-38);
        let is_tiny = self.cmp("olt", x, &tiny);
        let scale = self.c(8_388_608.0);
        let xs = self.op2("mulf", x, &scale);
        let xv = self.sel(&is_tiny, &xs, x);
        let bits = self.emit_val(&format!("arith.bitcast {xv} : f32 to i32"));
        let sh = self.const_i("i32", 23);
        let ex = self.emit_val(&format!("arith.shrui {bits}, {sh} : i32"));
        let mask = self.const_i("i32", 0xff);
        let ex = self.emit_val(&format!("arith.andi {ex}, {mask} : i32"));
        let b126 = self.const_i("i32", 126);
        let ex = self.emit_val(&format!("arith.subi {ex}, {b126} : i32"));
        let e = self.emit_val(&format!("arith.sitofp {ex} : i32 to f32"));
        let adj = self.c(23.0);
        let e_adj = self.op2("subf", &e, &adj);
        let e = self.sel(&is_tiny, &e_adj, &e);
        let mm = self.const_i("i32", 0x007f_ffff);
        let mb = self.emit_val(&format!("arith.andi {bits}, {mm} : i32"));
        let half_bits = self.const_i("i32", 0x3f00_0000);
        let mb = self.emit_val(&format!("arith.ori {mb}, {half_bits} : i32"));
        let m = self.emit_val(&format!("arith.bitcast {mb} : i32 to f32"));
        // m in [0.5, 1): below √½ use 2m − 1 and e − 1, else m − 1.
        let sqrth = self.c(std::f64::consts::FRAC_1_SQRT_2);
        let small = self.cmp("olt", &m, &sqrth);
        let one = self.c(1.0);
        let e1 = self.op2("subf", &e, &one);
        let e = self.sel(&small, &e1, &e);
        let m2 = self.op2("addf", &m, &m);
        let mv = self.sel(&small, &m2, &m);
        let f = self.op2("subf", &mv, &one);
        let z = self.op2("mulf", &f, &f);
        let p = self.poly(
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
        let y = self.op2("mulf", &p, &f);
        let y = self.op2("mulf", &y, &z);
        let q1 = self.c(-2.121_944_4e-4);
        let y = self.fma(&e, &q1, &y);
        let mh = self.c(-0.5);
        let y = self.fma(&z, &mh, &y);
        let r = self.op2("addf", &f, &y);
        let q2 = self.c(0.693_359_375);
        let r = self.fma(&e, &q2, &r);
        // Special values.
        let zero = self.c(0.0);
        let is_zero = self.cmp("oeq", x, &zero);
        let ninf = self.c(f64::NEG_INFINITY);
        let r = self.sel(&is_zero, &ninf, &r);
        let neg = self.cmp("olt", x, &zero);
        let nan = self.c(f64::NAN);
        let r = self.sel(&neg, &nan, &r);
        let inf = self.c(f64::INFINITY);
        let is_inf = self.cmp("oeq", x, &inf);
        let r = self.sel(&is_inf, &inf, &r);
        let is_nan = self.cmp("uno", x, x);
        self.sel(&is_nan, x, &r)
    }

    /// ln(1 + x), accurate near 0: log(u) · x / (u − 1) with u = 1 + x (Goldberg).
    pub fn log1p_f32(&mut self, x: &str) -> String {
        let one = self.c(1.0);
        let u = self.op2("addf", &one, x);
        let d = self.op2("subf", &u, &one);
        let l = self.log_f32(&u);
        let lx = self.op2("mulf", &l, x);
        let q = self.op2("divf", &lx, &d);
        let zero = self.c(0.0);
        let exact = self.cmp("oeq", &d, &zero);
        let r = self.sel(&exact, x, &q);
        let inf = self.c(f64::INFINITY);
        let is_inf = self.cmp("oeq", x, &inf);
        self.sel(&is_inf, &inf, &r)
    }

    /// e^x − 1, accurate near 0: (u − 1) · x / log(u) with u = e^x (Kahan).
    pub fn expm1_f32(&mut self, x: &str) -> String {
        let u = self.exp_f32(x);
        let one = self.c(1.0);
        let um1 = self.op2("subf", &u, &one);
        let l = self.log_f32(&u);
        let p = self.op2("mulf", &um1, x);
        let q = self.op2("divf", &p, &l);
        let is_one = self.cmp("oeq", &u, &one);
        let r = self.sel(&is_one, x, &q);
        let mone = self.c(-1.0);
        let is_m1 = self.cmp("oeq", &um1, &mone);
        let r = self.sel(&is_m1, &mone, &r);
        let big = self.c(88.0);
        let over = self.cmp("ogt", x, &big);
        self.sel(&over, &u, &r)
    }

    /// tanh x = expm1(2x) / (expm1(2x) + 2), ±1 beyond |x| > 9.
    pub fn tanh_f32(&mut self, x: &str) -> String {
        let two = self.c(2.0);
        let x2 = self.op2("mulf", x, &two);
        let e = self.expm1_f32(&x2);
        let den = self.op2("addf", &e, &two);
        let r = self.op2("divf", &e, &den);
        let ax = self.emit_val(&format!("math.absf {x} : f32"));
        let nine = self.c(9.0);
        let sat = self.cmp("ogt", &ax, &nine);
        let one = self.c(1.0);
        let s = self.emit_val(&format!("math.copysign {one}, {x} : f32"));
        self.sel(&sat, &s, &r)
    }

    /// 1 / (1 + e^−x).
    pub fn sigmoid_f32(&mut self, x: &str) -> String {
        let nx = self.emit_val(&format!("arith.negf {x} : f32"));
        let e = self.exp_f32(&nx);
        let one = self.c(1.0);
        let d = self.op2("addf", &one, &e);
        self.op2("divf", &one, &d)
    }

    /// max(x, 0) + log1p(e^−|x|).
    pub fn softplus_f32(&mut self, x: &str) -> String {
        let ax = self.emit_val(&format!("math.absf {x} : f32"));
        let nax = self.emit_val(&format!("arith.negf {ax} : f32"));
        let e = self.exp_f32(&nax);
        let l = self.log1p_f32(&e);
        let zero = self.c(0.0);
        let m = self.emit_val(&format!("arith.maximumf {x}, {zero} : f32"));
        self.op2("addf", &m, &l)
    }

    /// log(1 − e^x), switching at −ln 2.
    pub fn log1mexp_f32(&mut self, x: &str) -> String {
        let em = self.expm1_f32(x);
        let nem = self.emit_val(&format!("arith.negf {em} : f32"));
        let a = self.log_f32(&nem);
        let e = self.exp_f32(x);
        let ne = self.emit_val(&format!("arith.negf {e} : f32"));
        let b = self.log1p_f32(&ne);
        let t = self.c(-std::f64::consts::LN_2);
        let near = self.cmp("ogt", x, &t);
        self.sel(&near, &a, &b)
    }

    /// erf: Cephes' odd polynomial below |x| = 1, Abramowitz–Stegun 7.1.26 above.
    pub fn erf_f32(&mut self, x: &str) -> String {
        let z = self.op2("mulf", x, x);
        let p = self.poly(
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
        let small = self.op2("mulf", x, &p);
        let ax = self.emit_val(&format!("math.absf {x} : f32"));
        let pc = self.c(0.327_591_1);
        let one = self.c(1.0);
        let den = self.fma(&pc, &ax, &one);
        let t = self.op2("divf", &one, &den);
        let q = self.poly(
            &t,
            &[
                1.061_405_429,
                -1.453_152_027,
                1.421_413_741,
                -0.284_496_736,
                0.254_829_592,
            ],
        );
        let q = self.op2("mulf", &q, &t);
        let nz = self.emit_val(&format!("arith.negf {z} : f32"));
        let e = self.exp_f32(&nz);
        let qe = self.op2("mulf", &q, &e);
        let big = self.op2("subf", &one, &qe);
        let big = self.emit_val(&format!("math.copysign {big}, {x} : f32"));
        let lt1 = self.cmp("olt", &ax, &one);
        self.sel(&lt1, &small, &big)
    }

    /// sin or cos (Cephes sinf/cosf): reduction by π/4 in three parts, octant selection.
    pub fn sincos_f32(&mut self, x: &str, cos: bool) -> String {
        let ax = self.emit_val(&format!("math.absf {x} : f32"));
        let fopi = self.c(4.0 / std::f64::consts::PI);
        let y = self.op2("mulf", &ax, &fopi);
        let y = self.emit_val(&format!("math.floor {y} : f32"));
        let j = self.emit_val(&format!("arith.fptosi {y} : f32 to i32"));
        // j odd → j + 1 (and y with it)
        let one_i = self.const_i("i32", 1);
        let odd = self.emit_val(&format!("arith.andi {j}, {one_i} : i32"));
        let j = self.emit_val(&format!("arith.addi {j}, {odd} : i32"));
        let y = self.emit_val(&format!("arith.sitofp {j} : i32 to f32"));
        let seven = self.const_i("i32", 7);
        let j = self.emit_val(&format!("arith.andi {j}, {seven} : i32"));
        let (d1, d2, d3) = (
            self.c(-0.785_156_25),
            self.c(-2.418_756_484_985_351_6e-4),
            self.c(-3.774_894_977_445_941e-8),
        );
        let z = self.fma(&y, &d1, &ax);
        let z = self.fma(&y, &d2, &z);
        let z = self.fma(&y, &d3, &z);
        let zz = self.op2("mulf", &z, &z);
        // sin polynomial on the reduced argument
        let ps = self.poly(
            &zz,
            &[-1.951_529_589_1e-4, 8.332_160_873_6e-3, -1.666_665_461_1e-1],
        );
        let ps = self.op2("mulf", &ps, &zz);
        let s = self.fma(&ps, &z, &z);
        // cos polynomial
        let pc = self.poly(
            &zz,
            &[
                2.443_315_711_809_948e-5,
                -1.388_731_625_493_765e-3,
                4.166_664_568_298_827e-2,
            ],
        );
        let zz2 = self.op2("mulf", &zz, &zz);
        let pc = self.op2("mulf", &pc, &zz2);
        let mh = self.c(-0.5);
        let one = self.c(1.0);
        let cpart = self.fma(&zz, &mh, &one);
        let c = self.op2("addf", &cpart, &pc);
        // Octant: for sin, use cos poly when j ∈ {2, 6}; sign flips for j ≥ 4 (and the input's
        // sign). For cos: shift the octant by 2.
        let two_i = self.const_i("i32", 2);
        let j = if cos {
            self.emit_val(&format!("arith.addi {j}, {two_i} : i32"))
        } else {
            j
        };
        let j = self.emit_val(&format!("arith.andi {j}, {seven} : i32"));
        let bit1 = self.emit_val(&format!("arith.andi {j}, {two_i} : i32"));
        let zero_i = self.const_i("i32", 0);
        let use_cos = self.emit_val(&format!("arith.cmpi ne, {bit1}, {zero_i} : i32"));
        let r = self.sel(&use_cos, &c, &s);
        let four = self.const_i("i32", 4);
        let bit2 = self.emit_val(&format!("arith.andi {j}, {four} : i32"));
        let flip = self.emit_val(&format!("arith.cmpi ne, {bit2}, {zero_i} : i32"));
        let nr = self.emit_val(&format!("arith.negf {r} : f32"));
        let r = self.sel(&flip, &nr, &r);
        if cos {
            r
        } else {
            let zero = self.c(0.0);
            let neg = self.cmp("olt", x, &zero);
            let nr = self.emit_val(&format!("arith.negf {r} : f32"));
            self.sel(&neg, &nr, &r)
        }
    }

    /// Philox-4x32-10 of counter (idx, site, offset) under key `seed` (all i64 SSA values but
    /// `site`), as the runtime's `philox::draw`; returns the four words (i32).
    pub fn philox(&mut self, idx: &str, site: u32, seed: &str, offset: &str) -> [String; 4] {
        let c32 = self.const_i("i64", 32);
        let lo = |s: &mut Self, v: &str| s.emit_val(&format!("arith.trunci {v} : i64 to i32"));
        let hi = |s: &mut Self, v: &str| {
            let h = s.emit_val(&format!("arith.shrui {v}, {c32} : i64"));
            s.emit_val(&format!("arith.trunci {h} : i64 to i32"))
        };
        let mut c = [
            lo(self, idx),
            hi(self, idx),
            self.const_i("i32", i64::from(site as i32)),
            lo(self, offset),
        ];
        let mut k = [lo(self, seed), hi(self, seed)];
        let m0 = self.const_i("i64", 0xD251_1F53);
        let m1 = self.const_i("i64", 0xCD9E_8D57);
        let w0 = self.const_i("i32", 0x9E37_79B9_u32 as i32 as i64);
        let w1 = self.const_i("i32", 0xBB67_AE85_u32 as i32 as i64);
        let mulhilo = |s: &mut Self, m: &str, x: &str| {
            let wide = s.emit_val(&format!("arith.extui {x} : i32 to i64"));
            let p = s.emit_val(&format!("arith.muli {wide}, {m} : i64"));
            (hi(s, &p), lo(s, &p))
        };
        for round in 0..10 {
            if round > 0 {
                k = [
                    self.emit_val(&format!("arith.addi {}, {w0} : i32", k[0])),
                    self.emit_val(&format!("arith.addi {}, {w1} : i32", k[1])),
                ];
            }
            let (hi0, lo0) = mulhilo(self, &m0, &c[0]);
            let (hi1, lo1) = mulhilo(self, &m1, &c[2]);
            let x0 = self.emit_val(&format!("arith.xori {hi1}, {} : i32", c[1]));
            let x0 = self.emit_val(&format!("arith.xori {x0}, {} : i32", k[0]));
            let x2 = self.emit_val(&format!("arith.xori {hi0}, {} : i32", c[3]));
            let x2 = self.emit_val(&format!("arith.xori {x2}, {} : i32", k[1]));
            c = [x0, lo1, x2, lo0];
        }
        c
    }

    /// The top 24 bits of a word as an f32 in [0, 1) (`philox::uniform`), plus `add` units.
    fn word_unit(&mut self, w: &str, add: f64) -> String {
        let eight = self.const_i("i32", 8);
        let top = self.emit_val(&format!("arith.shrui {w}, {eight} : i32"));
        let f = self.emit_val(&format!("arith.uitofp {top} : i32 to f32"));
        let f = if add != 0.0 {
            let a = self.c(add);
            self.op2("addf", &f, &a)
        } else {
            f
        };
        let scale = self.c(1.0 / 16_777_216.0);
        self.op2("mulf", &f, &scale)
    }

    /// A uniform in [0, 1) or a standard normal (Box–Muller, cosine branch) from a draw.
    pub fn random_f32(&mut self, w: &[String; 4], normal: bool) -> String {
        if !normal {
            return self.word_unit(&w[0], 0.0);
        }
        let u1 = self.word_unit(&w[0], 1.0);
        let u2 = self.word_unit(&w[1], 0.0);
        let l = self.log_f32(&u1);
        let m2 = self.c(-2.0);
        let r = self.op2("mulf", &l, &m2);
        let r = self.emit_val(&format!("math.sqrt {r} : f32"));
        let tau = self.c(std::f64::consts::TAU);
        let a = self.op2("mulf", &u2, &tau);
        let c = self.sincos_f32(&a, true);
        self.op2("mulf", &r, &c)
    }
}
