//! The one dim resolver: how each dim's size follows from the bound inputs, other dims and
//! scalars, with checked arithmetic. The graph interpreter, the executor and the random-input
//! generator all size dims through [`DimRule::size`], so a rule means the same everywhere and a
//! size that would wrap is an error instead of a small buffer.

use crate::bind::Binding;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest size a dim may have: kernels index with `i64`, and no real tensor comes close.
pub const MAX_DIM: u64 = 1 << 48;

/// How a dim's size is known. `D` names another dim, `S` a scalar value (a buffer in a
/// manifest, a node in the graph IR).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DimRule<D = u32, S = u32> {
    /// Bound by the binder under the dim's name.
    Arg,
    /// A pack bound by the binder: the product of its axes.
    Pack,
    /// A fixed size.
    Const(u64),
    /// The value of a scalar (`requires Tt == num_train_timesteps`).
    Scalar(S),
    /// The product of other dims (merges, renames `R'`).
    Product(Vec<D>),
    /// One dim divided by the product of others (the unknown part of a split).
    Quotient(D, Vec<D>),
    /// The smaller of two dims (the rank of a thin decomposition).
    Min(D, D),
}

/// A dim that cannot be sized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DimError {
    /// No given input has the dim.
    Unbound(String),
    /// A scalar gives a size that is negative, not an integer, or too large.
    BadScalar {
        /// The dim.
        dim: String,
        /// The scalar's value.
        value: String,
    },
    /// A split whose parts do not divide the whole.
    Indivisible {
        /// The unknown part.
        dim: String,
        /// The whole.
        whole: u64,
        /// The product of the known parts.
        parts: u64,
    },
    /// The size exceeds [`MAX_DIM`] (a product that would overflow).
    TooLarge(String),
}

impl fmt::Display for DimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimError::Unbound(d) => {
                write!(f, "dim {d} is not bound: no input that has it was given")
            }
            DimError::BadScalar { dim, value } => write!(f, "dim {dim} would have size {value}"),
            DimError::Indivisible { dim, whole, parts } => write!(
                f,
                "cannot split a dim of size {whole} into {dim} and parts of size {parts}"
            ),
            DimError::TooLarge(d) => write!(f, "dim {d} would have more than 2^48 elements"),
        }
    }
}

impl std::error::Error for DimError {}

/// The product of `sizes`, `None` when the product of its non-zero factors exceeds
/// [`MAX_DIM`] (whatever their order: loops over the non-zero dims would still run).
pub fn checked_product(sizes: impl IntoIterator<Item = u64>) -> Option<u64> {
    let mut zero = false;
    let mut p = 1u64;
    for s in sizes {
        zero |= s == 0;
        p = p.checked_mul(s.max(1)).filter(|p| *p <= MAX_DIM)?;
    }
    Some(if zero { 0 } else { p })
}

impl<D: Copy, S: Copy> DimRule<D, S> {
    /// The dims this rule reads.
    pub fn operand_dims(&self) -> Vec<D> {
        match self {
            DimRule::Arg | DimRule::Pack | DimRule::Const(_) | DimRule::Scalar(_) => Vec::new(),
            DimRule::Product(ds) => ds.clone(),
            DimRule::Quotient(a, ds) => std::iter::once(*a).chain(ds.iter().copied()).collect(),
            DimRule::Min(a, b) => vec![*a, *b],
        }
    }

    /// The size of the dim `name` under this rule, `Ok(None)` while an operand is not known yet.
    /// `dim` gives another dim's size and `scalar` a scalar's value (either `None` when unknown).
    pub fn size(
        &self,
        name: &str,
        binding: &Binding,
        mut dim: impl FnMut(D) -> Result<Option<u64>, DimError>,
        scalar: impl FnOnce(S) -> Result<Option<f64>, DimError>,
    ) -> Result<Option<u64>, DimError> {
        let too_large = || DimError::TooLarge(name.to_string());
        let product = |dim: &mut dyn FnMut(D) -> Result<Option<u64>, DimError>,
                       ds: &[D]|
         -> Result<Option<u64>, DimError> {
            let mut p = 1u64;
            for d in ds {
                match dim(*d)? {
                    Some(s) => p = checked_product([p, s]).ok_or_else(too_large)?,
                    None => return Ok(None),
                }
            }
            Ok(Some(p))
        };
        let size = match self {
            DimRule::Arg => Some(
                *binding
                    .dims
                    .get(name)
                    .ok_or_else(|| DimError::Unbound(name.to_string()))? as u64,
            ),
            DimRule::Pack => {
                let axes = binding
                    .packs
                    .get(name.trim_start_matches(".."))
                    .ok_or_else(|| DimError::Unbound(name.to_string()))?;
                Some(checked_product(axes.iter().map(|a| *a as u64)).ok_or_else(too_large)?)
            }
            DimRule::Const(n) => Some(*n),
            DimRule::Scalar(s) => match scalar(*s)? {
                Some(v) if v >= 0.0 && v.fract() == 0.0 && v <= MAX_DIM as f64 => Some(v as u64),
                Some(v) => {
                    return Err(DimError::BadScalar {
                        dim: name.to_string(),
                        value: v.to_string(),
                    })
                }
                None => None,
            },
            DimRule::Product(ds) => product(&mut dim, ds)?,
            DimRule::Quotient(whole, ds) => {
                let whole = dim(*whole)?;
                match (whole, product(&mut dim, ds)?) {
                    (Some(n), Some(p)) if p > 0 && n % p == 0 => Some(n / p),
                    (Some(whole), Some(parts)) => {
                        return Err(DimError::Indivisible {
                            dim: name.to_string(),
                            whole,
                            parts,
                        })
                    }
                    _ => None,
                }
            }
            DimRule::Min(a, b) => match (dim(*a)?, dim(*b)?) {
                (Some(x), Some(y)) => Some(x.min(y)),
                _ => None,
            },
        };
        match size {
            Some(s) if s > MAX_DIM => Err(too_large()),
            s => Ok(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(dims: &[(&str, usize)]) -> Binding {
        Binding {
            dims: dims.iter().map(|(n, s)| (n.to_string(), *s)).collect(),
            packs: Default::default(),
        }
    }

    #[test]
    fn products_that_would_wrap_are_errors() {
        let b = binding(&[("L", 1 << 32), ("O", 1 << 32)]);
        let sizes = [1u64 << 32, 1 << 32];
        let rule: DimRule = DimRule::Product(vec![0, 1]);
        let err = rule.size("LO", &b, |d| Ok(Some(sizes[d as usize])), |_| Ok(None));
        assert_eq!(err, Err(DimError::TooLarge("LO".into())));
        assert_eq!(checked_product([1 << 24, 1 << 24]), Some(1 << 48));
        assert_eq!(checked_product([1 << 24, (1 << 24) + 1]), None);
        assert_eq!(checked_product([u64::MAX, 0]), None);
        assert_eq!(checked_product([0, 1 << 20]), Some(0));
    }

    #[test]
    fn scalars_and_splits_are_checked() {
        let b = binding(&[]);
        let rule: DimRule = DimRule::Scalar(0);
        let bad = rule.size("T", &b, |_| Ok(None), |_| Ok(Some(2.5)));
        assert!(matches!(bad, Err(DimError::BadScalar { .. })));
        assert_eq!(
            rule.size("T", &b, |_| Ok(None), |_| Ok(Some(7.0))),
            Ok(Some(7))
        );
        let split: DimRule = DimRule::Quotient(0, vec![1]);
        let sizes = [12u64, 5];
        let err = split.size("K", &b, |d| Ok(Some(sizes[d as usize])), |_| Ok(None));
        assert!(matches!(
            err,
            Err(DimError::Indivisible {
                whole: 12,
                parts: 5,
                ..
            })
        ));
        let unknown = split.size("K", &b, |_| Ok(None), |_| Ok(None));
        assert_eq!(unknown, Ok(None));
    }
}
