//! Library routines the executor runs itself rather than through generated code: stable
//! argsort, matrix decompositions and Philox draws (solves live in [`crate::solve`]). The compiler's interpreter uses the same
//! routines, so both paths agree exactly.

use crate::philox;

/// The stable permutation sorting `values` (NaN counts as the largest value, as in PyTorch).
pub fn argsort(values: &[f64], descending: bool) -> Vec<usize> {
    let key = |v: f64| if v.is_nan() { f64::INFINITY } else { v };
    let mut perm: Vec<usize> = (0..values.len()).collect();
    perm.sort_by(|&p, &q| {
        let ord = key(values[p])
            .partial_cmp(&key(values[q]))
            .unwrap_or(std::cmp::Ordering::Equal);
        if descending {
            ord.reverse()
        } else {
            ord
        }
    });
    perm
}

/// Flips each singular pair `(u_k, vh_k)` so that the entry of `u_k` largest in magnitude is
/// positive (scikit-learn's `svd_flip` with `u_based_decision`; the first such entry on ties):
/// singular vectors are then determined by the matrix, not by the solver's arithmetic, so two
/// backends or libraries can be compared. `u` is row-major `m × k`, `vh` `k × n`.
fn sign_canonical(u: &mut [f64], vh: &mut [f64], m: usize, n: usize, k: usize) {
    for c in 0..k {
        let mut best = 0;
        for r in 1..m {
            if u[r * k + c].abs() > u[best * k + c].abs() {
                best = r;
            }
        }
        if u[best * k + c] < 0.0 {
            (0..m).for_each(|r| u[r * k + c] = -u[r * k + c]);
            (0..n).for_each(|j| vh[c * n + j] = -vh[c * n + j]);
        }
    }
}

/// Element `index` of draw site `site`: a uniform in [0, 1) or a standard normal.
pub fn random_value(seed: u64, offset: u64, site: u32, index: u64, normal: bool) -> f64 {
    let w = philox::draw(seed, offset, site, index);
    if normal {
        philox::normal(w[0], w[1])
    } else {
        f64::from(philox::uniform(w[0]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svd_vectors_are_sign_canonical() {
        // diag(-2, 1) with the rows swapped: whatever signs the solver picks, each U column's
        // largest entry comes out positive and U S Vh is still the matrix.
        let a = [0.0, 1.0, -2.0, 0.0];
        let p = decompose(Decomposition::Svd, &a, 2, 2).unwrap();
        let (u, s, vh) = (&p[0], &p[1], &p[2]);
        for c in 0..2 {
            let col = [u[c], u[2 + c]];
            let big = if col[0].abs() >= col[1].abs() {
                col[0]
            } else {
                col[1]
            };
            assert!(big > 0.0, "{u:?}");
        }
        for i in 0..2 {
            for j in 0..2 {
                let back: f64 = (0..2).map(|c| u[i * 2 + c] * s[c] * vh[c * 2 + j]).sum();
                assert!((back - a[i * 2 + j]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn argsort_is_stable_with_nan_largest() {
        assert_eq!(argsort(&[2.0, f64::NAN, 1.0, 2.0], false), vec![2, 0, 3, 1]);
        assert_eq!(argsort(&[2.0, f64::NAN, 1.0, 2.0], true), vec![1, 0, 3, 2]);
    }
}

/// A matrix decomposition of the language's builtins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Decomposition {
    /// Thin SVD `A = U diag(S) Vh`, singular values descending.
    Svd,
    /// Reduced QR `A = Q R`.
    Qr,
    /// Symmetric eigendecomposition `A = V diag(w) Vᵀ`, eigenvalues ascending.
    Eigh,
    /// LU with partial pivoting: `A[perm[i], :] = (L U)[i, :]`.
    Lu,
}

/// Decomposes the row-major `m × n` matrix `a` (with faer, in f64). Parts, row-major: SVD
/// `[U (m×k), S (k), Vh (k×n)]`, QR `[Q (m×k), R (k×n)]`, eigh `[values (n), vectors (n×n)]`,
/// LU `[perm (n), L (n×n), U (n×n)]`, with `k = min(m, n)`.
pub fn decompose(
    kind: Decomposition,
    a: &[f64],
    m: usize,
    n: usize,
) -> Result<Vec<Vec<f64>>, String> {
    let mat = faer::Mat::<f64>::from_fn(m, n, |i, j| a[i * n + j]);
    let rows = |x: faer::MatRef<'_, f64>| -> Vec<f64> {
        let mut v = Vec::with_capacity(x.nrows() * x.ncols());
        for i in 0..x.nrows() {
            for j in 0..x.ncols() {
                v.push(x[(i, j)]);
            }
        }
        v
    };
    let k = m.min(n);
    Ok(match kind {
        Decomposition::Svd => {
            let svd = mat
                .thin_svd()
                .map_err(|e| format!("svd did not converge: {e:?}"))?;
            let s = svd.S().column_vector();
            let (mut u, mut vh) = (rows(svd.U()), rows(svd.V().transpose()));
            sign_canonical(&mut u, &mut vh, m, n, k);
            vec![u, (0..k).map(|i| s[i]).collect(), vh]
        }
        Decomposition::Qr => {
            let qr = mat.qr();
            let q = qr.compute_thin_Q();
            let r = qr.thin_R();
            vec![rows(q.as_ref()), rows(r)]
        }
        Decomposition::Eigh => {
            if m != n {
                return Err(format!("eigh needs a square matrix, found {m} × {n}"));
            }
            let e = mat
                .self_adjoint_eigen(faer::Side::Lower)
                .map_err(|e| format!("eigh did not converge: {e:?}"))?;
            let w = e.S().column_vector();
            vec![(0..n).map(|i| w[i]).collect(), rows(e.U())]
        }
        Decomposition::Lu => {
            if m != n {
                return Err(format!("lu needs a square matrix, found {m} × {n}"));
            }
            let lu = mat.partial_piv_lu();
            let (fwd, _) = lu.P().arrays();
            let l = lu.L();
            let u = lu.U();
            vec![
                fwd.iter().map(|p| *p as f64).collect(),
                rows(l),
                (0..n)
                    .flat_map(|i| (0..n).map(move |j| (i, j)))
                    .map(|(i, j)| if j >= i { u[(i, j)] } else { 0.0 })
                    .collect(),
            ]
        }
    })
}

#[cfg(test)]
mod decomposition_tests {
    use super::*;

    fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        (0..m * n)
            .map(|x| (0..k).map(|p| a[(x / n) * k + p] * b[p * n + x % n]).sum())
            .collect()
    }

    #[test]
    fn decompositions_reconstruct_their_matrix() {
        let a = [4.0, 1.0, 2.0, 1.0, 3.0, 0.5, 2.0, 0.5, 5.0, 1.0, -1.0, 2.0];
        // SVD of a 4×3: U diag(S) Vh = A, S descending.
        let p = decompose(Decomposition::Svd, &a, 4, 3).unwrap();
        let us: Vec<f64> = (0..12).map(|x| p[0][x] * p[1][x % 3]).collect();
        let back = matmul(&us, &p[2], 4, 3, 3);
        assert!(back.iter().zip(&a).all(|(x, y)| (x - y).abs() < 1e-12));
        assert!(p[1][0] >= p[1][1] && p[1][1] >= p[1][2]);
        let q = decompose(Decomposition::Qr, &a, 4, 3).unwrap();
        let back = matmul(&q[0], &q[1], 4, 3, 3);
        assert!(back.iter().zip(&a).all(|(x, y)| (x - y).abs() < 1e-12));
        let s = [4.0, 1.0, 2.0, 1.0, 3.0, 0.5, 2.0, 0.5, 5.0];
        let e = decompose(Decomposition::Eigh, &s, 3, 3).unwrap();
        assert!(e[0][0] <= e[0][1] && e[0][1] <= e[0][2]);
        let lu = decompose(Decomposition::Lu, &s, 3, 3).unwrap();
        let back = matmul(&lu[1], &lu[2], 3, 3, 3);
        for i in 0..3 {
            let r = lu[0][i] as usize;
            for j in 0..3 {
                assert!((back[i * 3 + j] - s[r * 3 + j]).abs() < 1e-12, "lu row {i}");
            }
        }
    }
}
