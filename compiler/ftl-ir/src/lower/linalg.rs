//! Lowering of the linear-algebra builtins beyond `contract`: `eye`, `inv`, `pinv`, `det`/
//! `slogdet`, and the gradients of the decompositions `svd`, `qr` and `eigh`.
//!
//! The decompositions run as host routines with no VJP of their own ([`Op::Decompose`] stops
//! gradients). Each result instead carries its differential ([`Op::Differential`]): `t`, the
//! first-order change of the result, linear in A with the factors held constant. The value is
//! the decomposition's, and the gradient autodiff derives through `t` is the adjoint of that
//! differential — PyTorch's `svd_backward`, `linalg_qr_backward`, `linalg_eig_backward`
//! (hermitian) and `pinv_backward`. Once gradients are derived the simplifier replaces each
//! differential by its value ([`crate::simplify::simplify_after_gradients`]), so a
//! forward-only entry computes none of it, and finite differences see the decomposition itself.

use super::builtin::solve_node;
use super::Lowerer;
use crate::{BinOp, DimId, DimSize, Node, NodeId, Op, Reduction, UnOp};
use ftl_runtime::host::Decomposition;
use ftl_runtime::DType;

impl Lowerer<'_, '_> {
    /// `eye(r, c)`: 1 where the positions along r and c are equal, else 0 (dims [r, c]).
    pub(super) fn eye(&mut self, r: DimId, c: DimId, dtype: DType) -> NodeId {
        let (ir, ic) = (self.iota(r), self.iota(c));
        let on = self.b.binary(BinOp::Eq, ir, ic);
        let (one, zero) = (self.b.constant(1.0, dtype), self.b.constant(0.0, dtype));
        self.b.select(on, one, zero)
    }

    /// `inv(A, R, C)`: solve(A, I, C) with A laid out as [batch.., R, C] and I = eye(R, R₂)
    /// over the batch dims; the solution [batch.., C, R₂] is relabelled [batch.., C, R].
    pub(super) fn inverse(&mut self, a: NodeId, r: DimId, c: DimId, dtype: DType) -> NodeId {
        let batch = self.batch_dims(a, r, c);
        let with = |last: [DimId; 2]| -> Vec<DimId> { batch.iter().copied().chain(last).collect() };
        let a = self.b.conform(a, &with([r, c]));
        let r2 = self.primed(r);
        let eye = self.eye(r, r2, dtype);
        let eye = self.b.broadcast(eye, with([r, r2]));
        let x = self.solve(a, eye, c);
        let x = self.b.conform(x, &with([c, r2]));
        self.b.relabel(x, with([c, r]))
    }

    /// `(sign, log|det A|)` of A's R × C matrices, batched over its other dims, as
    /// `torch.linalg.slogdet`. From the LU factorization `P A = L U` (faer, partial pivoting):
    /// `log|det| = Σ log|U_ii|`; the sign is `(−1)^(negative U_ii + inversions of P)`, 0 when some
    /// U_ii is 0. The factorization has no gradient, so log|det| carries one by construction:
    /// `log|det| + (x − detach(x))` with `x = Σ detach(A⁻ᵀ) ⊙ A`, exactly its value, whose
    /// gradient is A⁻ᵀ (`inv(A, R, C)` is indexed [C, R], so aligned by name it is A⁻ᵀ). For a
    /// singular A (a zero pivot) or a non-finite x the term is left out: log|det| is −inf and its
    /// gradient 0 there (PyTorch's is ±inf).
    pub(super) fn slogdet(
        &mut self,
        a: NodeId,
        r: DimId,
        c: DimId,
        dtype: DType,
    ) -> (NodeId, NodeId) {
        let batch = self.batch_dims(a, r, c);
        let with = |last: &[DimId]| -> Vec<DimId> { batch.iter().chain(last).copied().collect() };
        let lu = |lw: &mut Self, part: u8, dt: DType, dims: Vec<DimId>| {
            lw.decomposition_part(a, (Decomposition::Lu, part), (r, c), (dt, dims))
        };
        let perm = lu(self, 0, DType::I32, with(&[r]));
        let u = lu(self, 2, dtype, with(&[r, c]));
        let on_diagonal = self.iota(r);
        let diag = self.b.push(Node {
            op: Op::Gather {
                base: u,
                dim: c,
                index: on_diagonal,
                default: None,
            },
            dtype,
            dims: with(&[r]),
        });
        let magnitude = self.b.unary(UnOp::Abs, diag);
        let logs = self.b.unary(UnOp::Log, magnitude);
        let logabs = self.b.reduce(Reduction::Sum, logs, &[r]);
        // The sign: negative pivots plus the permutation's inversions, mod 2.
        let zero = self.b.constant(0.0, dtype);
        let negative = self.b.binary(BinOp::Lt, diag, zero);
        let negative = self.b.cast(negative, DType::I32);
        let negatives = self.b.reduce(Reduction::Sum, negative, &[r]);
        let r2 = self.primed(r);
        let perm2 = self.b.relabel(perm, with(&[r2]));
        let (i1, i2) = (self.iota(r), self.iota(r2));
        let before = self.b.binary(BinOp::Lt, i1, i2);
        let larger = self.b.binary(BinOp::Gt, perm, perm2);
        let inverted = self.b.binary(BinOp::And, before, larger);
        let inverted = self.b.cast(inverted, DType::I32);
        let inversions = self.b.reduce(Reduction::Sum, inverted, &[r, r2]);
        let flips = self.b.binary(BinOp::Add, negatives, inversions);
        let two = self.b.constant(2.0, DType::I32);
        let odd = self.b.binary(BinOp::Rem, flips, two);
        let odd = self.b.cast(odd, dtype);
        let one = self.b.constant(1.0, dtype);
        let two_f = self.b.constant(2.0, dtype);
        let twice = self.b.binary(BinOp::Mul, odd, two_f);
        let unit = self.b.binary(BinOp::Sub, one, twice);
        let singular_pivot = self.b.binary(BinOp::Eq, diag, zero);
        let singular = self.b.reduce(Reduction::Any, singular_pivot, &[r]);
        let sign = self.b.select(singular, zero, unit);
        // log|det| with A⁻ᵀ as its gradient; a singular matrix is inverted as the identity (its
        // term is dropped below), so the solve never meets it.
        let eye = self.eye(r, c, dtype);
        let safe = self.b.select(singular, eye, a);
        let safe = self.b.conform(safe, &self.b.dims(a));
        let inv = self.inverse(safe, r, c, dtype);
        let inv = self.detach(inv);
        let weighted = self.b.binary(BinOp::Mul, inv, a);
        let x = self.b.reduce(Reduction::Sum, weighted, &[r, c]);
        let frozen = self.detach(x);
        let term = self.b.binary(BinOp::Sub, x, frozen);
        let size = self.b.unary(UnOp::Abs, x);
        let inf = self.b.constant(f64::INFINITY, dtype);
        let finite = self.b.binary(BinOp::Lt, size, inf);
        let regular = self.b.unary(UnOp::Not, singular);
        let keep = self.b.binary(BinOp::And, finite, regular);
        let term = self.b.select(keep, term, zero);
        let logabs = self.detach(logabs);
        let logabs = self.b.binary(BinOp::Add, logabs, term);
        (self.b.conform(sign, &batch), self.b.conform(logabs, &batch))
    }

    pub(super) fn solve(&mut self, a: NodeId, b: NodeId, dim: DimId) -> NodeId {
        solve_node(&mut self.b, a, b, dim)
    }

    /// `contract(a, b, over)`: the sum of `a · b` over `over`; other shared dims are batch dims.
    pub(super) fn contract(&mut self, a: NodeId, b: NodeId, over: &[DimId]) -> NodeId {
        let keep = |lw: &Self, x: NodeId| -> Vec<DimId> {
            lw.b.dims(x)
                .into_iter()
                .filter(|d| !over.contains(d))
                .collect()
        };
        let dims = self.b.union(&keep(self, a), &keep(self, b));
        let dtype = self.b.dtype(a);
        self.b.push(Node {
            op: Op::Contract(a, b),
            dtype,
            dims,
        })
    }

    /// `x` with its dim `from` named `to` (the same data).
    fn rename(&mut self, x: NodeId, from: DimId, to: DimId) -> NodeId {
        let dims = self
            .b
            .dims(x)
            .into_iter()
            .map(|d| if d == from { to } else { d })
            .collect();
        self.b.relabel(x, dims)
    }

    /// `x` transposed over its dims `p` and `q` (`x[p, q]` becomes `xᵀ[p, q] = x[q, p]`).
    fn swap(&mut self, x: NodeId, p: DimId, q: DimId) -> NodeId {
        let dims = swapped(&self.b.dims(x), p, q);
        self.b.relabel(x, dims)
    }

    /// A's dims other than its matrix dims `r` and `c`: the batch dims.
    pub(super) fn batch_dims(&self, a: NodeId, r: DimId, c: DimId) -> Vec<DimId> {
        self.b
            .dims(a)
            .into_iter()
            .filter(|d| *d != r && *d != c)
            .collect()
    }

    /// `detach(x)`.
    pub(super) fn detach(&mut self, x: NodeId) -> NodeId {
        let (dtype, dims) = (self.b.dtype(x), self.b.dims(x));
        self.b.push(Node {
            op: Op::Detach(x),
            dtype,
            dims,
        })
    }

    /// `iota(d)`.
    pub(super) fn iota(&mut self, d: DimId) -> NodeId {
        self.b.push(Node {
            op: Op::Iota(d),
            dtype: DType::I32,
            dims: vec![d],
        })
    }

    /// A new dim of `d`'s size, named `d'` (or the next free name).
    fn primed(&mut self, d: DimId) -> DimId {
        let name = format!("{}'", self.b.graph.dim(d).name);
        self.b.add_dim(&name, DimSize::Product(vec![d]))
    }

    /// `value`, carrying the gradient of `tangent` (its differential, linear in the input).
    fn with_differential(&mut self, value: NodeId, tangent: NodeId) -> NodeId {
        let (dtype, dims) = (self.b.dtype(value), self.b.dims(value));
        let tangent = self.b.conform(tangent, &dims);
        let tangent = self.b.cast(tangent, dtype);
        self.b.push(Node {
            op: Op::Differential { value, tangent },
            dtype,
            dims,
        })
    }

    /// The diagonal `m[i, i]` of `m[.., k, k2]`, over k.
    fn diagonal(&mut self, m: NodeId, k: DimId, k2: DimId) -> NodeId {
        let at = self.iota(k);
        self.gather(m, k2, at)
    }

    /// `F[i, j] = 1 / (x_j − x_i)` over `[k, k2]` for `x[.., k]`, 0 on the diagonal: the
    /// spectral gap matrix of the SVD and eigh differentials (infinite for repeated values, as
    /// PyTorch's).
    fn gap_inverse(&mut self, x: NodeId, k: DimId, k2: DimId) -> NodeId {
        let dtype = self.b.dtype(x);
        let xj = self.rename(x, k, k2);
        let gap = self.b.binary(BinOp::Sub, xj, x);
        let one = self.b.constant(1.0, dtype);
        let inverse = self.b.binary(BinOp::Div, one, gap);
        let (i, j) = (self.iota(k), self.iota(k2));
        let on = self.b.binary(BinOp::Eq, i, j);
        let zero = self.b.constant(0.0, dtype);
        self.b.select(on, zero, inverse)
    }

    /// One part of A's decomposition (`kind`, rows `row`, columns `col`).
    pub(super) fn decomposition_part(
        &mut self,
        a: NodeId,
        (kind, part): (Decomposition, u8),
        (row, col): (DimId, DimId),
        (dtype, dims): (DType, Vec<DimId>),
    ) -> NodeId {
        self.b.push(Node {
            op: Op::Decompose {
                kind,
                part,
                a,
                row,
                col,
            },
            dtype,
            dims,
        })
    }

    /// `svd`'s results `(U[.., m, k], S[.., k], Vh[.., k, n])` of `a[.., m, n]` with their
    /// differentials. With `P = Uᵀ dA V` and `F[i, j] = 1/(s_j² − s_i²)`: `dS = diag P`,
    /// `dU = U (F ∘ (P S + S Pᵀ)) + (I − UUᵀ) dA V S⁻¹`, `dV = V (F ∘ (S P + Pᵀ S)) + (I −
    /// VVᵀ) dAᵀ U S⁻¹` — whose adjoint is PyTorch's `svd_backward` for real inputs.
    pub(super) fn svd_differentials(
        &mut self,
        a: NodeId,
        (m, n, k): (DimId, DimId, DimId),
        [u, s, vh]: [NodeId; 3],
    ) -> [NodeId; 3] {
        let k2 = self.primed(k);
        let ua = self.contract(u, a, &[m]); // [.., k, n]: Uᵀ A
        let av = self.contract(a, vh, &[n]); // [.., m, k]: A V
        let vh2 = self.rename(vh, k, k2);
        let p = self.contract(ua, vh2, &[n]); // [.., k, k2]: Uᵀ A V
        let ds = self.diagonal(p, k, k2);
        let s2 = self.b.binary(BinOp::Mul, s, s);
        let f = self.gap_inverse(s2, k, k2);
        let sj = self.rename(s, k, k2);
        let pt = self.swap(p, k, k2);
        // dU[.., m, j] = Σ_i U[m, i] (Ω_U − P / s_j)[i, j] + (A V)[m, j] / s_j;
        // dVh[.., j, n] = Σ_i Vh[i, n] (Ω_V − Pᵀ / s_j)[i, j] + (Uᵀ A)[j, n] / s_j.
        let du = self.singular_vectors_change(u, [p, pt], av, [s, sj, f], (k, k2));
        let dvh = self.singular_vectors_change(vh, [pt, p], ua, [s, sj, f], (k, k2));
        [
            self.with_differential(u, du),
            self.with_differential(s, ds),
            self.with_differential(vh, dvh),
        ]
    }

    /// One factor's change in the SVD differential: with `[x, y]` = `[P, Pᵀ]` for U (`[Pᵀ, P]`
    /// for Vh) and `projected` = A V (Uᵀ A), `Σ_i factor[.., i] (F ∘ (x s_j + s y) − x / s_j)[i, j]
    /// + projected[.., j] / s_j`, relabelled back to k.
    fn singular_vectors_change(
        &mut self,
        factor: NodeId,
        [x, y]: [NodeId; 2],
        projected: NodeId,
        [s, sj, f]: [NodeId; 3],
        (k, k2): (DimId, DimId),
    ) -> NodeId {
        let xs = self.b.binary(BinOp::Mul, x, sj);
        let sy = self.b.binary(BinOp::Mul, s, y);
        let sum = self.b.binary(BinOp::Add, xs, sy);
        let omega = self.b.binary(BinOp::Mul, f, sum);
        let x_s = self.b.binary(BinOp::Div, x, sj);
        let c = self.b.binary(BinOp::Sub, omega, x_s);
        let rotated = self.contract(factor, c, &[k]);
        let projected = self.rename(projected, k, k2);
        let scaled = self.b.binary(BinOp::Div, projected, sj);
        let change = self.b.binary(BinOp::Add, rotated, scaled);
        self.rename(change, k2, k)
    }

    /// `qr`'s results `(Q[.., m, k], R[.., k, n])` of `a[.., m, n]` with their differentials.
    /// With `R_K` the first K columns of R and `T = dA_K R_K⁻¹` (dA's first K columns), `C =
    /// Qᵀ T` and `Ω = tril(C, −1) − tril(C, −1)ᵀ`: `dR = Qᵀ dA − Ω R`, `dQ = T − Q (C − Ω)`. For
    /// m ≥ n this is the classic `dQ = Q Ω + (I − QQᵀ) dA R⁻¹`; for m < n (Q square) `dQ = QΩ`
    /// with the trailing columns of R following — PyTorch's `linalg_qr_backward`, both cases.
    pub(super) fn qr_differentials(
        &mut self,
        a: NodeId,
        (m, n, k): (DimId, DimId, DimId),
        [q, r]: [NodeId; 2],
    ) -> [NodeId; 2] {
        let dtype = self.b.dtype(a);
        let k2 = self.primed(k);
        let first = self.iota(k2);
        let r_k = self.gather(r, n, first); // [.., k, k2]
        let a_k = self.gather(a, n, first); // [.., m, k2]
        let r_inv = self.inverse(r_k, k, k2, dtype); // rows k2, columns k
        let t = self.contract(a_k, r_inv, &[k2]); // [.., m, k]
        let t2 = self.rename(t, k, k2);
        let c = self.contract(q, t2, &[m]); // [.., k, k2]
        let (i, j) = (self.iota(k), self.iota(k2));
        let below = self.b.binary(BinOp::Gt, i, j);
        let zero = self.b.constant(0.0, dtype);
        let lower = self.b.select(below, c, zero);
        let upper = self.swap(lower, k, k2);
        let omega = self.b.binary(BinOp::Sub, lower, upper);
        let qta = self.contract(q, a, &[m]); // [.., k, n]
        let r2 = self.rename(r, k, k2);
        let omega_r = self.contract(omega, r2, &[k2]);
        let dr = self.b.binary(BinOp::Sub, qta, omega_r);
        let c_omega = self.b.binary(BinOp::Sub, c, omega);
        let q_c = self.contract(q, c_omega, &[k]); // [.., m, k2]
        let dq = self.b.binary(BinOp::Sub, t2, q_c);
        let dq = self.rename(dq, k2, k);
        [self.with_differential(q, dq), self.with_differential(r, dr)]
    }

    /// `eigh`'s results `(values[.., k], vectors[.., r, k])` of a symmetric `a[.., r, c]` with
    /// their differentials, taken along the symmetric part of dA: with `P = Vᵀ sym(dA) V` and
    /// `F[i, j] = 1/(λ_j − λ_i)`, `dλ = diag P` and `dV = V (F ∘ P)`. Its adjoint is PyTorch's
    /// hermitian `linalg_eig_backward`, `V (diag(gλ) + F ∘ ½(VᵀgV − (VᵀgV)ᵀ)) Vᵀ` (symmetric).
    pub(super) fn eigh_differentials(
        &mut self,
        a: NodeId,
        (r, c, k): (DimId, DimId, DimId),
        [values, vectors]: [NodeId; 2],
    ) -> [NodeId; 2] {
        let dtype = self.b.dtype(a);
        let k2 = self.primed(k);
        let at = self.swap(a, r, c);
        let both = self.b.binary(BinOp::Add, a, at);
        let half = self.b.constant(0.5, dtype);
        let sym = self.b.binary(BinOp::Mul, both, half);
        let w = self.contract(vectors, sym, &[r]); // [.., k, c]
        let v2 = self.rename(vectors, r, c);
        let v2 = self.rename(v2, k, k2);
        let p = self.contract(w, v2, &[c]); // [.., k, k2]
        let dl = self.diagonal(p, k, k2);
        let f = self.gap_inverse(values, k, k2);
        let fp = self.b.binary(BinOp::Mul, f, p);
        let dv = self.contract(vectors, fp, &[k]); // [.., r, k2]
        let dv = self.rename(dv, k2, k);
        [
            self.with_differential(values, dl),
            self.with_differential(vectors, dv),
        ]
    }

    /// `pinv(A, R, C)` as `torch.linalg.pinv` (no tolerances given): from the thin SVD, `V
    /// diag(s⁺) Uᵀ` with `s⁺ = 1/s` where `s > eps · max(m, n) · s_max`, else 0; the result has
    /// A's dims with R and C swapped (rows C). Its differential (Golub and Pereyra, constant
    /// rank) `dP = −P dA P + P Pᵀ dAᵀ (I − A P) + (I − P A) dAᵀ Pᵀ P` has PyTorch's
    /// `pinv_backward` as its adjoint.
    pub(super) fn pinv(&mut self, a: NodeId, r: DimId, c: DimId, dtype: DType) -> NodeId {
        let batch = self.batch_dims(a, r, c);
        let with = |last: &[DimId]| -> Vec<DimId> { batch.iter().chain(last).copied().collect() };
        let name = format!("{}∧{}", self.b.graph.dim(r).name, self.b.graph.dim(c).name);
        let k = self.b.add_dim(&name, DimSize::Min(r, c));
        let svd = |lw: &mut Self, part: u8, dims: Vec<DimId>| {
            lw.decomposition_part(a, (Decomposition::Svd, part), (r, c), (dtype, dims))
        };
        let u = svd(self, 0, with(&[r, k]));
        let s = svd(self, 1, with(&[k]));
        let vh = svd(self, 2, with(&[k, c]));
        // torch: rtol = eps · max(m, n), tol = rtol · s_max, kept where s > tol.
        let s_max = self.b.reduce(Reduction::Max, s, &[k]);
        let (rows, cols) = (self.b.size(vec![r], dtype), self.b.size(vec![c], dtype));
        let larger = self.b.binary(BinOp::Max, rows, cols);
        let eps = match dtype {
            DType::F64 => f64::EPSILON,
            _ => f64::from(f32::EPSILON),
        };
        let eps = self.b.constant(eps, dtype);
        let rtol = self.b.binary(BinOp::Mul, eps, larger);
        let tol = self.b.binary(BinOp::Mul, rtol, s_max);
        let kept = self.b.binary(BinOp::Gt, s, tol);
        let one = self.b.constant(1.0, dtype);
        let reciprocal = self.b.binary(BinOp::Div, one, s);
        let zero = self.b.constant(0.0, dtype);
        let s_plus = self.b.select(kept, reciprocal, zero);
        let scaled = self.b.binary(BinOp::Mul, vh, s_plus); // [.., k, c]
        let p = self.contract(scaled, u, &[k]); // P[c, r]
        let p = self.b.conform(p, &swapped(&self.b.dims(a), r, c));
        let tangent = self.pinv_differential(a, p, r, c, dtype);
        self.with_differential(p, tangent)
    }

    /// `−P A P + P Pᵀ Aᵀ (I − A₀ P) + (I − P A₀) Aᵀ Pᵀ P` for `P = pinv(A₀)` indexed [c, r],
    /// `A₀ = detach(A)`: linear in A, the differential of `pinv` at A₀.
    fn pinv_differential(
        &mut self,
        a: NodeId,
        p: NodeId,
        r: DimId,
        c: DimId,
        dtype: DType,
    ) -> NodeId {
        let (r2, c2) = (self.primed(r), self.primed(c));
        let a0 = self.detach(a);
        // −P A P: Σ P[c, r'] A[r', c'] P[c', r].
        let p_r2 = self.rename(p, r, r2);
        let a_r2 = self.rename(a, r, r2);
        let a_r2c2 = self.rename(a_r2, c, c2);
        let pa = self.contract(p_r2, a_r2c2, &[r2]); // [c, c']
        let p_c2 = self.rename(p, c, c2);
        let pap = self.contract(pa, p_c2, &[c2]); // [c, r]
                                                  // P Pᵀ Aᵀ (I − A₀ P): X[r, r'] = I − Σ_c A₀[r, c] P[c, r'].
        let a0p = self.contract(a0, p_r2, &[c]); // [r, r']
        let eye_r = self.eye(r, r2, dtype);
        let x = self.b.binary(BinOp::Sub, eye_r, a0p);
        let at_x = self.contract(a, x, &[r]); // [c, r']
        let ppt = self.contract(p, p_c2, &[r]); // [c, c']
        let at_x2 = self.rename(at_x, c, c2);
        let second = self.contract(ppt, at_x2, &[c2]); // [c, r']
        let second = self.rename(second, r2, r);
        // (I − P A₀) Aᵀ Pᵀ P: Y[c, c'] = I − Σ_r P[c, r] A₀[r, c'].
        let a0_c2 = self.rename(a0, c, c2);
        let pa0 = self.contract(p, a0_c2, &[r]); // [c, c']
        let eye_c = self.eye(c, c2, dtype);
        let y = self.b.binary(BinOp::Sub, eye_c, pa0);
        let ptp = self.contract(p, p_r2, &[c]); // [r, r']
        let z = self.contract(a, ptp, &[r]); // [c, r']
        let z2 = self.rename(z, c, c2);
        let third = self.contract(y, z2, &[c2]); // [c, r']
        let third = self.rename(third, r2, r);
        let sum = self.b.binary(BinOp::Add, second, third);
        self.b.binary(BinOp::Sub, sum, pap)
    }
}

/// `dims` with `p` and `q` exchanged in place.
fn swapped(dims: &[DimId], p: DimId, q: DimId) -> Vec<DimId> {
    dims.iter()
        .map(|&d| match d {
            d if d == p => q,
            d if d == q => p,
            d => d,
        })
        .collect()
}
