//! Batched dense linear solves for `solve(A, b, dim)`: one LU factorization (faer, partial
//! pivoting) per matrix of A, in the solve's precision, kept by the caller so that a later
//! solve against the same A — the backward pass's transposed solve — reuses it instead of
//! factoring again. The executor and the interpreter both call this.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::lu::partial_pivoting::{factor, solve};
use faer::perm::PermRef;
use faer::{Mat, MatMut, Par};

/// The arithmetic a solve runs in: f32 for f32/bf16/f16 results (as `torch.linalg.solve` on
/// f32 tensors, LAPACK's `sgesv`), f64 for f64 results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// f32 factors and solves.
    Single,
    /// f64 factors and solves.
    Double,
}

impl Precision {
    /// The precision of a solve whose result is stored as `dtype`.
    pub fn of_result(dtype: crate::DType) -> Precision {
        match dtype {
            crate::DType::F64 => Precision::Double,
            _ => Precision::Single,
        }
    }
}

/// The row dim of `solve(A, b, dim)`: A's matrix dims are its last two (as in
/// `torch.linalg.solve`), `dim` one of them and the row the other; A's leading dims are batch
/// dims. `dim` itself when A has fewer than two dims (which the checker and the verifier refuse).
pub fn solve_row<D: Clone + PartialEq>(a_dims: &[D], dim: &D) -> D {
    match a_dims {
        [.., r, c] if c == dim => r.clone(),
        [.., _, c] => c.clone(),
        _ => dim.clone(),
    }
}

/// The LU factors of every matrix of one operand A (its last two dims in layout order, one
/// factorization per position of its leading dims).
pub struct Factors(Stored);

enum Stored {
    Single(Vec<Lu<f32>>),
    Double(Vec<Lu<f64>>),
}

impl Factors {
    /// The number of matrices factored.
    fn len(&self) -> usize {
        match &self.0 {
            Stored::Single(l) => l.len(),
            Stored::Double(l) => l.len(),
        }
    }

    /// The arithmetic the factors were computed in.
    pub fn precision(&self) -> Precision {
        match self.0 {
            Stored::Single(_) => Precision::Single,
            Stored::Double(_) => Precision::Double,
        }
    }
}

/// The packed LU factors (L unit lower, U upper, in one matrix) and row permutation of one
/// matrix's transpose Mᵀ: Mᵀ column-major is M row-major, so the operand is copied in order, and
/// M x = b is the transposed solve against these factors.
struct Lu<T> {
    packed: Mat<T>,
    forward: Vec<usize>,
    inverse: Vec<usize>,
}

/// The two float types a solve runs in.
trait Real: faer::traits::RealField + Copy {
    fn of(v: f64) -> Self;
    fn value(self) -> f64;
}

impl Real for f32 {
    fn of(v: f64) -> f32 {
        v as f32
    }
    fn value(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    fn of(v: f64) -> f64 {
        v
    }
    fn value(self) -> f64 {
        self
    }
}

impl<T: Real> Lu<T> {
    /// Factors the `n × n` matrix whose entry (i, j) is `entry(i, j)`; `None` when singular (a
    /// zero pivot).
    fn factor(n: usize, entry: impl Fn(usize, usize) -> f64, par: Par) -> Option<Lu<T>> {
        let mut packed = Mat::<T>::from_fn(n, n, |j, i| T::of(entry(i, j)));
        let (mut forward, mut inverse) = (vec![0usize; n], vec![0usize; n]);
        let mut scratch = MemBuffer::new(factor::lu_in_place_scratch::<usize, T>(
            n,
            n,
            par,
            Default::default(),
        ));
        factor::lu_in_place(
            packed.as_mut(),
            &mut forward,
            &mut inverse,
            par,
            MemStack::new(&mut scratch),
            Default::default(),
        );
        let zero = T::of(0.0);
        (0..n).all(|i| packed[(i, i)] != zero).then_some(Lu {
            packed,
            forward,
            inverse,
        })
    }

    /// Overwrites `rhs` with `M⁻¹ rhs`, or `M⁻ᵀ rhs` when `transpose`. The triangular solves read
    /// only their own triangle of the packed factors (L's unit diagonal is implied).
    fn solve(&self, rhs: MatMut<'_, T>, transpose: bool, par: Par) {
        let n = self.packed.nrows();
        let perm = PermRef::new_checked(&self.forward, &self.inverse, n);
        let (lu, k) = (self.packed.as_ref(), rhs.ncols());
        let mut scratch = MemBuffer::new(solve::solve_in_place_scratch::<usize, T>(n, k, par));
        let stack = MemStack::new(&mut scratch);
        if transpose {
            solve::solve_in_place(lu, lu, perm, rhs, par, stack);
        } else {
            solve::solve_transpose_in_place(lu, lu, perm, rhs, par, stack);
        }
    }
}

/// How `solve(A, b, dim)` walks its buffers: `size` gives each dim's size.
pub struct Layout<'a, D> {
    /// A's dims in layout order.
    pub a: &'a [D],
    /// b's dims in layout order.
    pub b: &'a [D],
    /// The result's dims (b's with the row dim replaced by `dim`).
    pub x: &'a [D],
    /// The dim the solve contracts (one of A's last two).
    pub dim: D,
}

/// The stride of each dim of `space` in a buffer laid out as `dims` (0 when absent).
fn strides<D: Copy + PartialEq>(space: &[D], dims: &[D], size: &impl Fn(D) -> usize) -> Vec<usize> {
    space
        .iter()
        .map(|d| match dims.iter().position(|x| x == d) {
            Some(k) => dims[k + 1..].iter().map(|x| size(*x)).product(),
            None => 0,
        })
        .collect()
}

/// Every multi-index of `space`, as the offsets it gives in each of `layouts`.
fn positions<D: Copy + PartialEq>(
    space: &[D],
    layouts: &[&[D]],
    size: &impl Fn(D) -> usize,
) -> Vec<Vec<usize>> {
    let shape: Vec<usize> = space.iter().map(|d| size(*d)).collect();
    let st: Vec<Vec<usize>> = layouts.iter().map(|l| strides(space, l, size)).collect();
    let total: usize = shape.iter().product();
    let mut out = Vec::with_capacity(total);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..total {
        out.push(
            st.iter()
                .map(|s| idx.iter().zip(s).map(|(i, x)| i * x).sum())
                .collect(),
        );
        for k in (0..shape.len()).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

/// A's matrix dims (row, column) in layout order and its batch dims; an error unless square.
fn matrix_dims<D: Copy + PartialEq>(
    ad: &[D],
    size: &impl Fn(D) -> usize,
) -> Result<(D, D, Vec<D>), String> {
    let [.., r, c] = ad else {
        return Err("solve needs a matrix with two dims".into());
    };
    if size(*r) != size(*c) {
        return Err(format!(
            "solve needs a square matrix, found {} × {}",
            size(*r),
            size(*c)
        ));
    }
    Ok((*r, *c, ad[..ad.len() - 2].to_vec()))
}

/// faer's parallelism for `n × n` systems on up to `threads` threads (small ones stay on the
/// calling thread).
fn parallelism(threads: usize, n: usize) -> Par {
    if threads > 1 && n >= 128 {
        Par::rayon(threads)
    } else {
        Par::Seq
    }
}

/// Factors every matrix of `a` (laid out as `ad`) in `precision`, on up to `threads` threads.
pub fn factor_strided<D: Copy + PartialEq>(
    a: impl Fn(usize) -> f64,
    ad: &[D],
    precision: Precision,
    threads: usize,
    size: impl Fn(D) -> usize,
) -> Result<Factors, String> {
    let (r, c, batch) = matrix_dims(ad, &size)?;
    let n = size(c);
    let par = parallelism(threads, n);
    let st = strides(&[r, c], ad, &size);
    fn each<T: Real>(
        bases: &[Vec<usize>],
        n: usize,
        a: &impl Fn(usize) -> f64,
        st: &[usize],
        par: Par,
    ) -> Result<Vec<Lu<T>>, String> {
        bases
            .iter()
            .map(|base| {
                Lu::factor(n, |i, j| a(base[0] + i * st[0] + j * st[1]), par)
                    .ok_or_else(|| "solve: the matrix is singular".to_string())
            })
            .collect()
    }
    let bases = positions(&batch, &[ad], &size);
    Ok(match precision {
        Precision::Single => Factors(Stored::Single(each(&bases, n, &a, &st, par)?)),
        Precision::Double => Factors(Stored::Double(each(&bases, n, &a, &st, par)?)),
    })
}

/// Where one solve's right-hand sides and results lie: per batch position the offsets in b and
/// x; b with its row stride and each right-hand side's offset; x's stride of the solved dim and
/// each result column's offset.
struct Walk<'a, B> {
    bases: &'a [Vec<usize>],
    b: (B, usize, &'a [usize]),
    x: (usize, &'a [usize]),
    transpose: bool,
    threads: usize,
}

impl<B: Fn(usize) -> f64 + Sync> Walk<'_, B> {
    /// Solves every batch position: several positions spread over the threads (each solving
    /// on one), a single one solved with faer's own parallelism.
    fn each<T: Real>(&self, lus: &[Lu<T>], x: &mut [f64]) -> Result<(), String> {
        let ((b, b_row, b_cols), (x_col, x_cols)) = (&self.b, self.x);
        let (n, k) = (lus.first().map_or(0, |l| l.packed.nrows()), b_cols.len());
        let one = |lu: &Lu<T>, base: &[usize], par: Par| -> Mat<T> {
            let mut rhs = Mat::<T>::from_fn(n, k, |i, j| T::of(b(base[0] + i * b_row + b_cols[j])));
            lu.solve(rhs.as_mut(), self.transpose, par);
            rhs
        };
        let jobs: Vec<(&Lu<T>, &Vec<usize>)> = lus.iter().zip(self.bases).collect();
        let results: Vec<Mat<T>> = if jobs.len() >= 2 && self.threads > 1 {
            let chunk = jobs.len().div_ceil(self.threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = jobs
                    .chunks(chunk)
                    .map(|part| {
                        scope.spawn(move || {
                            part.iter()
                                .map(|(lu, base)| one(lu, base, Par::Seq))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                let mut all = Vec::with_capacity(jobs.len());
                for h in handles {
                    all.extend(h.join().map_err(|_| "solve: a solving thread failed")?);
                }
                Ok::<_, String>(all)
            })?
        } else {
            jobs.iter()
                .map(|(lu, base)| one(lu, base, parallelism(self.threads, n)))
                .collect()
        };
        for (rhs, base) in results.iter().zip(self.bases) {
            for (j, x_at) in x_cols.iter().enumerate() {
                let (col, to) = (rhs.col(j), base[1] + x_at);
                for i in 0..n {
                    x[to + i * x_col] = col[i].value();
                }
            }
        }
        Ok(())
    }
}

/// `solve(A, b, dim)` over row-major buffers, with A already factored by [`factor_strided`]:
/// every position of b's dims other than the row dim and A's batch dims is a right-hand side.
/// When `dim` is A's row dim the system is Aᵀ x = b (the same factors, transposed). Runs on up
/// to `threads` threads.
pub fn solve_strided<D: Copy + PartialEq>(
    factors: &Factors,
    b: impl Fn(usize) -> f64 + Sync,
    layout: &Layout<'_, D>,
    threads: usize,
    size: impl Fn(D) -> usize,
) -> Result<Vec<f64>, String> {
    let (r, _, batch) = matrix_dims(layout.a, &size)?;
    let transpose = layout.dim == r;
    let row = solve_row(layout.a, &layout.dim);
    let n = size(layout.dim);
    let rest: Vec<D> = layout
        .b
        .iter()
        .copied()
        .filter(|d| *d != row && !batch.contains(d))
        .collect();
    let (b_row, x_col) = (
        strides(&[row], layout.b, &size)[0],
        strides(&[layout.dim], layout.x, &size)[0],
    );
    // Each right-hand side's offset in b and in x.
    let (b_cols, x_cols): (Vec<usize>, Vec<usize>) = positions(&rest, &[layout.b, layout.x], &size)
        .into_iter()
        .map(|p| (p[0], p[1]))
        .unzip();
    let mut x = vec![0.0; layout.x.iter().map(|d| size(*d)).product()];
    let bases = positions(&batch, &[layout.b, layout.x], &size);
    if factors.len() != bases.len() || size(row) != n {
        return Err("solve: the factors do not fit the operands".into());
    }
    let walk = Walk {
        bases: &bases,
        b: (b, b_row, &b_cols),
        x: (x_col, &x_cols),
        transpose,
        threads,
    };
    match &factors.0 {
        Stored::Single(lus) => walk.each(lus, &mut x)?,
        Stored::Double(lus) => walk.each(lus, &mut x)?,
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solve_dense(
        a: &[f64],
        at: bool,
        b: &[f64],
        precision: Precision,
    ) -> Result<Vec<f64>, String> {
        // Dims: 0 = row, 1 = col of A; 2 = b's column. A laid out [0, 1]; b [row, 2].
        let n = (a.len() as f64).sqrt() as usize;
        let size = |d: usize| if d == 2 { b.len() / n } else { n };
        let f = factor_strided(|i| a[i], &[0, 1], precision, 1, size)?;
        let (bd, xd, dim) = if at {
            ([1, 2], [0, 2], 0)
        } else {
            ([0, 2], [1, 2], 1)
        };
        let layout = Layout {
            a: &[0, 1],
            b: &bd,
            x: &xd,
            dim,
        };
        solve_strided(&f, |i| b[i], &layout, 1, size)
    }

    #[test]
    fn solves_with_pivoting_transposes_and_several_right_hand_sides() {
        // [[0, 1], [2, 0]] X = [[2, 1], [4, 6]]: X = [[2, 3], [2, 1]].
        let a = [0.0, 1.0, 2.0, 0.0];
        for p in [Precision::Single, Precision::Double] {
            assert_eq!(
                solve_dense(&a, false, &[2.0, 1.0, 4.0, 6.0], p),
                Ok(vec![2.0, 3.0, 2.0, 1.0])
            );
            // Aᵀ X = [[4, 6], [2, 1]]: X = [[2, 1], [2, 3]].
            assert_eq!(
                solve_dense(&a, true, &[4.0, 6.0, 2.0, 1.0], p),
                Ok(vec![2.0, 1.0, 2.0, 3.0])
            );
        }
        assert!(solve_dense(&[1.0, 2.0, 2.0, 4.0], false, &[1.0, 1.0], Precision::Double).is_err());
    }
}
