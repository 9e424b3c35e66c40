//! The one builtin table: every builtin's name, signature, dtype rule, named-dim rule, VJP rule
//! and doc line. The checker dispatches on [`DimRule`]; autodiff reads [`Builtin::vjp`]; the
//! builtin table of `docs/language.md` lists the same rows (a test keeps them in step).

/// How the result's dtype follows from the arguments'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DTypeRule {
    /// Float operands keep their dtype; integers promote to f32; bool is an error.
    Float,
    /// Numeric operands keep their (joined) dtype; bool is an error.
    Same,
    /// The result is bool.
    Bool,
    /// The result is i32.
    I32,
    /// Integer operands only; the result keeps their dtype.
    Int,
    /// The rule is specific to the builtin (see its doc line).
    Special,
}

/// How the result's named dims follow from the arguments'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DimRule {
    /// `f(x)`: the dims of x.
    Map,
    /// `f(a, b)`: the union of the operands' dims, aligned by name.
    Zip,
    /// `max(a, b)` elementwise, or `max(x, D…)` as a reduction when dims follow.
    MinMax,
    /// `clamp(x, lo, hi)` or `clamp(x, min: lo, max: hi)`: the dims of x (bounds broadcast).
    Clamp,
    /// `where(c, a, b)`: the union of all three.
    Where,
    /// `f(x, D…)`: x's dims without the named ones (at least one).
    Reduce,
    /// `f(x, D)`: x's dims (normalises or scans along D).
    AlongDim,
    /// `iota(D)`: `i32[D]`.
    Iota,
    /// `eye(R, C)`: `f32[R, C]`.
    Eye,
    /// `scatter(v, D: i)`: v's dims without i's dims, plus D.
    Scatter,
    /// `topk(x, D -> K)`: `(values[.., K], indices: i32[.., K])`.
    TopK,
    /// `svd(W, O, I -> K)`, `qr(A, M, N -> K)`, `eigh(M, R, R' -> K)`, `lu(A, R, R')`.
    Decomposition,
    /// `solve(A, b, C)`: x with `contract(A, x, C) == b`.
    Solve,
    /// `inv(A, R, C)`: A's dims with R and C swapped in place (the inverse's rows are C).
    Inverse,
    /// `det(A, R, C)`, `slogdet(A, R, C)`: A's dims without R and C (a tuple for slogdet).
    Determinant,
    /// `contract(a, b, K…)`: sums the listed shared dims; other shared dims are batch.
    Contract,
    /// `f(D…)` or `f()`: a fresh tensor over the named dims, or shaped by its assignment.
    Construct,
    /// `full(value, D…)`: like `Construct`, filled with a scalar.
    Full,
    /// `linspace(start, end, D)`: `f32[D]`.
    Linspace,
    /// `kaiming_uniform(fan_in: D…, a: f32)`: shaped by its assignment.
    Kaiming,
    /// `bernoulli(p)`: the dims of p.
    Bernoulli,
    /// `drop(x, p)`: the dims of x.
    Drop,
    /// `present(x)`: a static bool for an optional input.
    Present,
    /// `size(D…)` / `size(..S)`: the number of elements, an i32 scalar.
    Size,
    /// `expect_close(actual, expected, tol)` or with `rtol:`/`atol:`: a test assertion.
    ExpectClose,
    /// `print(x)`: a test statement showing a value.
    Print,
}

/// What the gradient of a builtin is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vjp {
    /// A VJP rule, written as a formula of the upstream gradient `g`, inputs and result `y`.
    Rule(&'static str),
    /// No gradient flows through (integer/bool results, constructors, randomness).
    Zero,
    /// No VJP exists: a compile error if a gradient reaches it (decompositions).
    Forbidden,
}

/// Where a builtin may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// Anywhere.
    Any,
    /// Only where no gradient flows: steps, init/merge/unmerge, tests.
    NoGradient,
    /// Only in `test` blocks.
    Test,
}

/// Every builtin, one variant per row of [`BUILTINS`] (in the table's order). The checker,
/// the HIR and lowering match on it exhaustively, so a new builtin does not compile until each
/// of them handles it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BuiltinId {
    /// `exp`
    Exp,
    /// `log`
    Log,
    /// `log1p`
    Log1p,
    /// `expm1`
    Expm1,
    /// `log1mexp`
    Log1mexp,
    /// `sqrt`
    Sqrt,
    /// `rsqrt`
    Rsqrt,
    /// `abs`
    Abs,
    /// `sign`
    Sign,
    /// `floor`
    Floor,
    /// `ceil`
    Ceil,
    /// `round`
    Round,
    /// `tanh`
    Tanh,
    /// `sigmoid`
    Sigmoid,
    /// `log_sigmoid`
    LogSigmoid,
    /// `softplus`
    Softplus,
    /// `relu`
    Relu,
    /// `erf`
    Erf,
    /// `sin`
    Sin,
    /// `cos`
    Cos,
    /// `pow`
    Pow,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `clamp`
    Clamp,
    /// `floordiv`
    Floordiv,
    /// `where`
    Where,
    /// `detach`
    Detach,
    /// `sum`
    Sum,
    /// `mean`
    Mean,
    /// `logsumexp`
    Logsumexp,
    /// `std`
    Std,
    /// `argmax`
    Argmax,
    /// `any`
    Any,
    /// `all`
    All,
    /// `softmax`
    Softmax,
    /// `log_softmax`
    LogSoftmax,
    /// `cumsum`
    Cumsum,
    /// `cumprod`
    Cumprod,
    /// `sort`
    Sort,
    /// `argsort`
    Argsort,
    /// `topk`
    Topk,
    /// `iota`
    Iota,
    /// `eye`
    Eye,
    /// `scatter`
    Scatter,
    /// `size`
    Size,
    /// `contract`
    Contract,
    /// `solve`
    Solve,
    /// `inv`
    Inv,
    /// `pinv`
    Pinv,
    /// `det`
    Det,
    /// `slogdet`
    Slogdet,
    /// `svd`
    Svd,
    /// `qr`
    Qr,
    /// `eigh`
    Eigh,
    /// `lu`
    Lu,
    /// `rand`
    Rand,
    /// `randn`
    Randn,
    /// `bernoulli`
    Bernoulli,
    /// `drop`
    Drop,
    /// `zeros`
    Zeros,
    /// `ones`
    Ones,
    /// `full`
    Full,
    /// `linspace`
    Linspace,
    /// `kaiming_uniform`
    KaimingUniform,
    /// `present`
    Present,
    /// `print`
    Print,
    /// `expect_close`
    ExpectClose,
}

impl BuiltinId {
    /// Its row of the table.
    pub fn row(self) -> &'static Builtin {
        &BUILTINS[self as usize]
    }

    /// Its name in FTL source.
    pub fn name(self) -> &'static str {
        self.row().name
    }
}

/// One row of the builtin table.
#[derive(Clone, Copy, Debug)]
pub struct Builtin {
    /// Which builtin (what the checker, lowering and the HIR match on).
    pub id: BuiltinId,
    /// The name.
    pub name: &'static str,
    /// The call forms, as documented.
    pub signature: &'static str,
    /// Least and most positional arguments (dims included).
    pub arity: (usize, usize),
    /// Result dtype.
    pub dtype: DTypeRule,
    /// Result dims.
    pub dims: DimRule,
    /// Gradient.
    pub vjp: Vjp,
    /// Where it may appear.
    pub context: Context,
    /// Whether it draws random numbers (so a `merge` may not use a value computed with it).
    pub random: bool,
    /// One line for the reference.
    pub doc: &'static str,
}

const MANY: usize = usize::MAX;

macro_rules! builtin {
    (random $id:ident, $name:literal, $sig:literal, ($lo:expr, $hi:expr), $dtype:ident, $dims:ident, $vjp:expr, $ctx:ident, $doc:literal) => {
        Builtin {
            random: true,
            ..builtin!(
                $id,
                $name,
                $sig,
                ($lo, $hi),
                $dtype,
                $dims,
                $vjp,
                $ctx,
                $doc
            )
        }
    };
    ($id:ident, $name:literal, $sig:literal, ($lo:expr, $hi:expr), $dtype:ident, $dims:ident, $vjp:expr, $ctx:ident, $doc:literal) => {
        Builtin {
            id: BuiltinId::$id,
            name: $name,
            signature: $sig,
            arity: ($lo, $hi),
            dtype: DTypeRule::$dtype,
            dims: DimRule::$dims,
            vjp: $vjp,
            context: Context::$ctx,
            random: false,
            doc: $doc,
        }
    };
}

use Vjp::{Forbidden, Rule, Zero};

/// Every builtin, grouped as in the language reference.
pub const BUILTINS: &[Builtin] = &[
    // Elementwise math.
    builtin!(Exp, "exp", "exp(x)", (1, 1), Float, Map, Rule("g * y"), Any, "e^x"),
    builtin!(Log, "log", "log(x)", (1, 1), Float, Map, Rule("g / x"), Any, "natural logarithm"),
    builtin!(Log1p, "log1p", "log1p(x)", (1, 1), Float, Map, Rule("g / (1 + x)"), Any, "log(1 + x), accurate near 0"),
    builtin!(Expm1, "expm1", "expm1(x)", (1, 1), Float, Map, Rule("g * (y + 1)"), Any, "e^x - 1, accurate near 0"),
    builtin!(Log1mexp, "log1mexp", "log1mexp(x)", (1, 1), Float, Map, Rule("-g / expm1(-x)"), Any,
        "log(1 - e^x) for x < 0, branching at -ln 2 as TRL's ORPO does"),
    builtin!(Sqrt, "sqrt", "sqrt(x)", (1, 1), Float, Map, Rule("g / (2 * y)"), Any, "square root"),
    builtin!(Rsqrt, "rsqrt", "rsqrt(x)", (1, 1), Float, Map, Rule("-g * y^3 / 2"), Any, "1 / sqrt(x)"),
    builtin!(Abs, "abs", "abs(x)", (1, 1), Same, Map, Rule("g * sign(x)"), Any, "absolute value"),
    builtin!(Sign, "sign", "sign(x)", (1, 1), Same, Map, Zero, Any, "-1, 0 or 1"),
    builtin!(Floor, "floor", "floor(x)", (1, 1), Same, Map, Zero, Any, "round down"),
    builtin!(Ceil, "ceil", "ceil(x)", (1, 1), Same, Map, Zero, Any, "round up"),
    builtin!(Round, "round", "round(x)", (1, 1), Same, Map, Zero, Any, "round half to even, as numpy and torch"),
    builtin!(Tanh, "tanh", "tanh(x)", (1, 1), Float, Map, Rule("g * (1 - y^2)"), Any, "hyperbolic tangent"),
    builtin!(Sigmoid, "sigmoid", "sigmoid(x)", (1, 1), Float, Map, Rule("g * y * (1 - y)"), Any, "1 / (1 + e^-x)"),
    builtin!(LogSigmoid, "log_sigmoid", "log_sigmoid(x)", (1, 1), Float, Map, Rule("g * sigmoid(-x)"), Any,
        "log(sigmoid(x)) = -softplus(-x), stable"),
    builtin!(Softplus, "softplus", "softplus(x)", (1, 1), Float, Map, Rule("g * sigmoid(x)"), Any, "log(1 + e^x), stable"),
    builtin!(Relu, "relu", "relu(x)", (1, 1), Same, Map, Rule("g * (x > 0)  (relu'(0) = 0, as PyTorch)"), Any, "max(x, 0)"),
    builtin!(Erf, "erf", "erf(x)", (1, 1), Float, Map, Rule("g * 2/sqrt(pi) * exp(-x^2)"), Any, "error function"),
    builtin!(Sin, "sin", "sin(x)", (1, 1), Float, Map, Rule("g * cos(x)"), Any, "sine"),
    builtin!(Cos, "cos", "cos(x)", (1, 1), Float, Map, Rule("-g * sin(x)"), Any, "cosine"),
    builtin!(Pow, "pow", "pow(a, b)", (2, 2), Float, Zip, Rule("g * b * a^(b-1); g * log(a) * y"), Any, "a to the power b"),
    builtin!(Min, "min", "min(a, b) | min(x, D...)", (2, MANY), Same, MinMax,
        Rule("elementwise: ties split g in halves (PyTorch minimum); reduction: g shared evenly by the minima"), Any,
        "elementwise minimum, or the minimum over named dims"),
    builtin!(Max, "max", "max(a, b) | max(x, D...)", (2, MANY), Same, MinMax,
        Rule("elementwise: ties split g in halves (PyTorch maximum); reduction: g shared evenly by the maxima"), Any,
        "elementwise maximum, or the maximum over named dims"),
    builtin!(Clamp, "clamp", "clamp(x, lo, hi) | clamp(x, min: lo, max: hi)", (1, 3), Same, Clamp,
        Rule("g strictly inside scalar bounds; ties with a bound that has dims split g in halves (PyTorch 2.15)"), Any, "limit x to [lo, hi]; either bound may be left out"),
    builtin!(Floordiv, "floordiv", "floordiv(a, b)", (2, 2), Int, Zip, Zero, Any,
        "integer division rounding down, as Python's // (FTL's // starts a comment)"),
    builtin!(Where, "where", "where(c, a, b)", (3, 3), Special, Where,
        Rule("where(c, g, 0); where(c, 0, g); the untaken branch's inputs are guarded so no NaN leaks"), Any,
        "a where c holds, else b (c is bool; a and b join their dtypes)"),
    builtin!(Detach, "detach", "detach(x)", (1, 1), Same, Map, Zero, Any, "x, with no gradient flowing back (PyTorch .detach())"),
    // Reductions over named dims.
    builtin!(Sum, "sum", "sum(x, D...)", (2, MANY), Same, Reduce, Rule("broadcast g over the reduced dims"), Any, "sum over the named dims"),
    builtin!(Mean, "mean", "mean(x, D...)", (2, MANY), Float, Reduce, Rule("broadcast g / n"), Any, "mean over the named dims"),
    builtin!(Logsumexp, "logsumexp", "logsumexp(x, D...)", (2, MANY), Float, Reduce, Rule("g * softmax(x, D...)"), Any,
        "log of the sum of exponentials, stable"),
    builtin!(Std, "std", "std(x, D...)", (2, MANY), Float, Reduce, Rule("g * (x - mean) / ((n - 1) * y)"), Any,
        "standard deviation with Bessel's correction (torch.std)"),
    builtin!(Argmax, "argmax", "argmax(x, D)", (2, 2), I32, Reduce, Zero, Any, "index of the largest value along D (first on ties)"),
    builtin!(Any, "any", "any(x, D...)", (2, MANY), Bool, Reduce, Zero, Any, "whether any element is true"),
    builtin!(All, "all", "all(x, D...)", (2, MANY), Bool, Reduce, Zero, Any, "whether every element is true"),
    // Along one dim.
    builtin!(Softmax, "softmax", "softmax(x, D)", (2, 2), Float, AlongDim, Rule("y * (g - sum(g * y, D))"), Any, "normalised exponentials along D"),
    builtin!(LogSoftmax, "log_softmax", "log_softmax(x, D)", (2, 2), Float, AlongDim, Rule("g - softmax(x, D) * sum(g, D)"), Any,
        "x - logsumexp(x, D)"),
    builtin!(Cumsum, "cumsum", "cumsum(x, D)", (2, 2), Same, AlongDim, Rule("reverse cumulative sum of g along D"), Any,
        "running sum along D (a sequential left fold)"),
    builtin!(Cumprod, "cumprod", "cumprod(x, D)", (2, 2), Same, AlongDim, Rule("reverse cumsum of g * y, divided by x; at a row's first zero, the reverse cumsum of g * cumprod(x with that zero as 1) (zero-safe, as PyTorch)"), Any,
        "running product along D (a sequential left fold, as torch.cumprod)"),
    builtin!(Sort, "sort", "sort(x, D)", (2, 2), Same, AlongDim, Rule("g scattered back through the sorting permutation"), Any,
        "ascending, stable sort along D"),
    builtin!(Argsort, "argsort", "argsort(x, D)", (2, 2), I32, AlongDim, Zero, Any, "the permutation that sorts x along D (stable)"),
    builtin!(Topk, "topk", "topk(x, D -> K)", (2, 2), Special, TopK, Rule("g scattered into the selected positions"), Any,
        "(values, indices) of the K largest along D; K is bound by `requires K == k`"),
    // Positions.
    builtin!(Iota, "iota", "iota(D)", (1, 1), I32, Iota, Zero, Any, "0, 1, …, size(D) - 1 along D"),
    builtin!(Eye, "eye", "eye(R, C)", (2, 2), Float, Eye, Zero, Any,
        "1.0 where the positions along R and C are equal, else 0.0 (torch.eye; R and C may differ in size)"),
    builtin!(Scatter, "scatter", "scatter(v, D: i)", (1, 1), Same, Scatter, Rule("gather g along D at i"), Any,
        "sum v into a new dim D at integer positions i (the inverse of gather)"),
    builtin!(Size, "size", "size(D...) | size(..S)", (1, MANY), I32, Size, Zero, Any, "number of elements of the named dims"),
    // Linear algebra.
    builtin!(Contract, "contract", "contract(a, b, K...)", (3, MANY), Same, Contract, Rule("g @ b for a; a @ g for b"), Any,
        "sum of a * b over the listed shared dims; other shared dims are batch dims"),
    builtin!(Solve, "solve", "solve(A, b, C)", (3, 3), Float, Solve, Rule("gb = solve(Aᵀ, g); gA = -gb xᵀ"), Any,
        "x with contract(A, x, C) == b: A's last two dims are the (square) matrix, its leading dims batch dims that b shares"),
    builtin!(Inv, "inv", "inv(A, R, C)", (3, 3), Float, Inverse, Rule("-A⁻ᵀ g A⁻ᵀ, through solve's rule"), Any,
        "the inverse of the R × C matrices of A (batched over A's other dims): contract(A, inv(A, R, C)[R -> R'], C) == eye(R, R'); the result has A's dims, R and C swapped"),
    builtin!(Pinv, "pinv", "pinv(A, R, C)", (3, 3), Float, Inverse, Rule("PyTorch's pinv_backward: through the differential −P dA P + P Pᵀ dAᵀ (I − A P) + (I − P A) dAᵀ Pᵀ P"), Any,
        "the Moore–Penrose pseudo-inverse of the R × C matrices of A (batched over A's other dims) as torch.linalg.pinv: from the SVD, singular values at most eps · max(R, C) · the largest treated as 0; the result has A's dims, R and C swapped"),
    builtin!(Det, "det", "det(A, R, C)", (3, 3), Float, Determinant, Rule("g · det(A) · A⁻ᵀ"), Any,
        "the determinant of the square R × C matrices of A (batched over A's other dims), as torch.linalg.det; from an LU factorization"),
    builtin!(Slogdet, "slogdet", "slogdet(A, R, C)", (3, 3), Float, Determinant, Rule("logabsdet: g · A⁻ᵀ; sign: none"), Any,
        "(sign, logabsdet) of the square R × C matrices of A (batched over A's other dims), as torch.linalg.slogdet: det = sign · exp(logabsdet), sign 0 and logabsdet -inf for a singular matrix"),
    builtin!(Svd, "svd", "svd(W, O, I -> K)", (3, 3), Float, Decomposition, Rule("PyTorch's svd_backward (distinct singular values; through the differential of U, S and Vh)"), Any,
        "(U[O, K], S[K], Vh[K, I]), singular values descending, K = min(O, I); each U column's largest-magnitude entry positive; W's other dims are batch dims, leading in each result"),
    builtin!(Qr, "qr", "qr(A, M, N -> K)", (3, 3), Float, Decomposition, Rule("PyTorch's linalg_qr_backward (R's leading K × K block invertible)"), Any,
        "(Q[M, K], R[K, N]), reduced QR, K = min(M, N); batched over A's other dims (leading)"),
    builtin!(Eigh, "eigh", "eigh(M, R, R' -> K)", (3, 3), Float, Decomposition, Rule("PyTorch's linalg_eigh backward: V (diag(g_values) + F ∘ ½(Vᵀg_V − (Vᵀg_V)ᵀ)) Vᵀ, F = 1/(λ_j − λ_i) (distinct eigenvalues)"), Any,
        "(values[K], vectors[R, K]) of a symmetric matrix, ascending; batched over M's other dims (leading)"),
    builtin!(Lu, "lu", "lu(A, R, R')", (3, 3), Float, Decomposition, Forbidden, NoGradient,
        "(perm: i32[R], L[R, R'], U[R, R']) with partial pivoting; batched over A's other dims (leading)"),
    // Randomness (seeded by the implicit `seed` input; counter-based Philox-4x32-10).
    builtin!(random Rand, "rand", "rand(D...) | rand()", (0, MANY), Special, Construct, Zero, Any, "uniform in [0, 1), f32"),
    builtin!(random Randn, "randn", "randn(D...) | randn()", (0, MANY), Special, Construct, Zero, Any, "standard normal, f32"),
    builtin!(random Bernoulli, "bernoulli", "bernoulli(p)", (1, 1), Float, Bernoulli, Zero, Any, "1.0 with probability p, else 0.0"),
    builtin!(random Drop, "drop", "drop(x, p)", (2, 2), Float, Drop, Rule("g * mask / (1 - p), the forward pass's mask regenerated"), Any,
        "dropout: zero each element with probability p and scale the rest by 1 / (1 - p)"),
    // Constructors.
    builtin!(Zeros, "zeros", "zeros(D...) | zeros()", (0, MANY), Special, Construct, Zero, Any, "0.0 over the named dims (or the assigned output's)"),
    builtin!(Ones, "ones", "ones(D...) | ones()", (0, MANY), Special, Construct, Zero, Any, "1.0 over the named dims (or the assigned output's)"),
    builtin!(Full, "full", "full(value, D...)", (1, MANY), Special, Full, Zero, Any, "value over the named dims (or the assigned output's)"),
    builtin!(Linspace, "linspace", "linspace(start, end, D)", (3, 3), Float, Linspace, Zero, Any,
        "size(D) evenly spaced values from start to end inclusive (torch.linspace)"),
    builtin!(random KaimingUniform, "kaiming_uniform", "kaiming_uniform(fan_in: D..., a: f32)", (0, 0), Special, Kaiming, Zero, Any,
        "uniform in ±sqrt(6 / ((1 + a²) · fan_in)), as torch.nn.init.kaiming_uniform_ (leaky_relu gain)"),
    // Options and tests.
    builtin!(Present, "present", "present(x)", (1, 1), Bool, Present, Zero, Any, "whether an optional input was given (static)"),
    builtin!(Print, "print", "print(x)", (1, 1), Special, Print, Zero, Test,
        "shows x (dtype, shape, values) under the test's line in `ftc test`'s output"),
    builtin!(ExpectClose, "expect_close", "expect_close(actual, expected, tol) | expect_close(actual, expected, rtol: r, atol: a)", (2, 3), Special, ExpectClose, Zero, Test,
        "passes when |actual - expected| <= tol * (1 + |expected|) everywhere; without tol, PyTorch's assert_close: |actual - expected| <= atol + rtol * |expected| with its per-dtype defaults"),
];

/// The builtin of this name.
pub fn lookup(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_documented() {
        let mut names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate builtin name");
        for (i, b) in BUILTINS.iter().enumerate() {
            assert_eq!(b.id as usize, i, "`{}` is out of the enum's order", b.name);
        }
        for b in BUILTINS {
            assert!(
                !b.doc.is_empty() && b.signature.starts_with(b.name),
                "{}",
                b.name
            );
            assert!(b.arity.0 <= b.arity.1, "{}", b.name);
        }
    }

    #[test]
    fn only_lu_lacks_a_vjp_and_needs_a_gradient_free_context() {
        for b in BUILTINS.iter().filter(|b| b.dims == DimRule::Decomposition) {
            let lu = b.id == BuiltinId::Lu;
            assert_eq!(b.vjp == Vjp::Forbidden, lu, "{}", b.name);
            assert_eq!(b.context == Context::NoGradient, lu, "{}", b.name);
        }
    }
}
