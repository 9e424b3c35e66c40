//! Library routines the executor runs itself rather than through generated code: stable
//! argsort, dense linear solves and Philox draws. The compiler's interpreter uses the same
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

/// Solves the augmented system `m` (n rows of n + 1 values) in place by Gaussian elimination
/// with partial pivoting; the solution ends in the last column. False when singular.
pub fn solve_augmented(m: &mut [Vec<f64>]) -> bool {
    let n = m.len();
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&p, &q| m[p][col].abs().total_cmp(&m[q][col].abs()))
            .unwrap_or(col);
        if m[piv][col] == 0.0 {
            return false;
        }
        m.swap(col, piv);
        let pivot_row = m[col].clone();
        for below in m.iter_mut().skip(col + 1) {
            let f = below[col] / pivot_row[col];
            for (x, p) in below.iter_mut().zip(&pivot_row).skip(col) {
                *x -= f * p;
            }
        }
    }
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|c| m[r][c] * m[c][n]).sum();
        m[r][n] = (m[r][n] - s) / m[r][r];
    }
    true
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
    fn argsort_is_stable_with_nan_largest() {
        assert_eq!(argsort(&[2.0, f64::NAN, 1.0, 2.0], false), vec![2, 0, 3, 1]);
        assert_eq!(argsort(&[2.0, f64::NAN, 1.0, 2.0], true), vec![1, 0, 3, 2]);
    }

    #[test]
    fn solves_with_pivoting() {
        let mut m = vec![vec![0.0, 1.0, 2.0], vec![2.0, 0.0, 4.0]];
        assert!(solve_augmented(&mut m));
        assert_eq!((m[0][2], m[1][2]), (2.0, 2.0));
        assert!(!solve_augmented(&mut [vec![0.0, 1.0]]));
    }
}
