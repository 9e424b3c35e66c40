//! The argument binder: checks inputs against an entry's signature before any computation and
//! binds every named dim (and pack) to one size. Each failure names the input, the expected type
//! and what was found.

use crate::tensor::type_text;
use crate::{DType, Tensor, TensorRef};
use std::collections::BTreeMap;
use std::fmt;

/// One entry of an argument's declared dims.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DimSpec {
    /// A named dim (`B`).
    Named(String),
    /// A fixed size (`f32[3]`).
    Fixed(usize),
    /// A pack of leading/trailing dims (`..S`), any number of axes.
    Pack(String),
}

impl fmt::Display for DimSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimSpec::Named(n) => f.write_str(n),
            DimSpec::Fixed(n) => write!(f, "{n}"),
            DimSpec::Pack(n) => write!(f, "..{n}"),
        }
    }
}

/// One argument of an entry, as the binder checks it.
#[derive(Clone, Debug)]
pub struct ArgSpec {
    /// Its name (the safetensors key).
    pub name: String,
    /// Its element type.
    pub dtype: DType,
    /// Its dims in layout order (at most one pack).
    pub dims: Vec<DimSpec>,
    /// Whether it must be given (false: optional, defaulted, or only binds dims).
    pub required: bool,
}

impl ArgSpec {
    /// The declared type as FTL writes it.
    pub fn type_text(&self) -> String {
        if self.dims.is_empty() {
            return self.dtype.to_string();
        }
        let dims: Vec<String> = self.dims.iter().map(ToString::to_string).collect();
        format!("{}[{}]", self.dtype, dims.join(", "))
    }
}

/// Sizes bound from the inputs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    /// Named dim → size.
    pub dims: BTreeMap<String, usize>,
    /// Pack → its axes' sizes.
    pub packs: BTreeMap<String, Vec<usize>>,
}

/// An input that does not fit the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindError {
    /// The input's name.
    pub input: String,
    /// What is wrong, in one sentence.
    pub message: String,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where a size was first bound, for messages.
struct Origin {
    input: String,
    axis: usize,
}

/// Checks `inputs` (looked up by name) against `args` and binds dims. All errors are returned,
/// one per offending input, in signature order.
pub fn bind<'t>(
    args: &[ArgSpec],
    lookup: impl Fn(&str) -> Option<TensorRef<'t>>,
) -> Result<Binding, Vec<BindError>> {
    let mut binding = Binding::default();
    let mut origins: BTreeMap<String, Origin> = BTreeMap::new();
    let mut errors = Vec::new();
    for arg in args {
        let Some(t) = lookup(&arg.name) else {
            if arg.required {
                errors.push(BindError {
                    input: arg.name.clone(),
                    message: format!("missing input `{}`: expected {}", arg.name, arg.type_text()),
                });
            }
            continue;
        };
        if let Err(message) = bind_one(arg, t, &mut binding, &mut origins) {
            errors.push(BindError {
                input: arg.name.clone(),
                message,
            });
        }
    }
    if errors.is_empty() {
        Ok(binding)
    } else {
        Err(errors)
    }
}

/// One error per input in `names` that no argument in `args` declares (a misspelled name, or
/// an optional input of a variant that was not compiled), so it is not silently ignored.
pub fn unknown_inputs<'n>(
    args: &[ArgSpec],
    names: impl IntoIterator<Item = &'n str>,
) -> Vec<BindError> {
    let mut unknown: Vec<&str> = names
        .into_iter()
        .filter(|n| !args.iter().any(|a| a.name == *n))
        .collect();
    unknown.sort_unstable();
    let declared: Vec<&str> = args.iter().map(|a| a.name.as_str()).collect();
    unknown
        .into_iter()
        .map(|n| BindError {
            input: n.to_string(),
            message: format!(
                "input `{n}` is not read by this entry (it reads: {}); remove it, or pass --allow-extra-inputs",
                declared.join(", ")
            ),
        })
        .collect()
}

/// Converts each 0-d numeric input given for a scalar argument of another numeric dtype (a
/// file may hold `beta` as f64 for an f32 hyperparameter) when its value is one of the
/// argument's dtype; a value that is not (a wrapped integer, NaN for an integer, 1e39 for f32)
/// is an error. Everything else is left for [`bind`] to check exactly.
pub fn coerce_scalars(
    args: &[ArgSpec],
    inputs: &mut std::collections::HashMap<String, Tensor>,
) -> Vec<BindError> {
    let mut errors = Vec::new();
    let numeric = |d: DType| d != DType::Bool;
    for arg in args.iter().filter(|a| a.dims.is_empty()) {
        let Some(t) = inputs.get_mut(&arg.name) else {
            continue;
        };
        if !t.shape().is_empty()
            || t.dtype() == arg.dtype
            || !numeric(t.dtype())
            || !numeric(arg.dtype)
        {
            continue;
        }
        let v = t.to_f64()[0];
        if arg.dtype.holds(v) {
            *t = t.cast(arg.dtype);
        } else {
            errors.push(BindError {
                input: arg.name.clone(),
                message: format!(
                    "input `{}` is {v}, which is not a value of its dtype {}",
                    arg.name, arg.dtype
                ),
            });
        }
    }
    errors
}

fn bind_one(
    arg: &ArgSpec,
    t: TensorRef<'_>,
    binding: &mut Binding,
    origins: &mut BTreeMap<String, Origin>,
) -> Result<(), String> {
    let found = type_text(t.dtype(), t.shape());
    let expected = arg.type_text();
    if t.dtype() != arg.dtype {
        return Err(format!(
            "input `{}` is {found}, expected {expected} (dtype {} instead of {})",
            arg.name,
            t.dtype(),
            arg.dtype
        ));
    }
    let shape = t.shape();
    let pack_at = arg.dims.iter().position(|d| matches!(d, DimSpec::Pack(_)));
    let fixed_rank = arg.dims.len() - usize::from(pack_at.is_some());
    let rank_ok = match pack_at {
        Some(_) => shape.len() >= fixed_rank,
        None => shape.len() == fixed_rank,
    };
    if !rank_ok {
        return Err(format!(
            "input `{}` is {found}, expected {expected} (rank {} instead of {}{})",
            arg.name,
            shape.len(),
            if pack_at.is_some() { "at least " } else { "" },
            fixed_rank
        ));
    }
    let pack_len = shape.len() - fixed_rank;
    let mut axis = 0;
    for spec in &arg.dims {
        match spec {
            DimSpec::Pack(name) => {
                let sizes = shape[axis..axis + pack_len].to_vec();
                if let Some(prev) = binding.packs.get(name) {
                    if *prev != sizes {
                        let o = &origins[&format!("..{name}")];
                        return Err(format!(
                            "input `{}` is {found}, expected {expected}: ..{name} = {:?} here, but `{}` bound ..{name} = {:?}",
                            arg.name, sizes, o.input, prev
                        ));
                    }
                } else {
                    origins.insert(
                        format!("..{name}"),
                        Origin {
                            input: arg.name.clone(),
                            axis,
                        },
                    );
                    binding.packs.insert(name.clone(), sizes);
                }
                axis += pack_len;
            }
            DimSpec::Fixed(n) => {
                if shape[axis] != *n {
                    return Err(format!(
                        "input `{}` is {found}, expected {expected} (axis {axis} must be {n})",
                        arg.name
                    ));
                }
                axis += 1;
            }
            DimSpec::Named(name) => {
                let size = shape[axis];
                match binding.dims.get(name) {
                    Some(&prev) if prev != size => {
                        let o = &origins[name];
                        return Err(format!(
                            "input `{}` is {found}, expected {expected}: {name} = {size} here (axis {axis}), but `{}` bound {name} = {prev} (axis {})",
                            arg.name, o.input, o.axis
                        ));
                    }
                    Some(_) => {}
                    None => {
                        binding.dims.insert(name.clone(), size);
                        origins.insert(
                            name.clone(),
                            Origin {
                                input: arg.name.clone(),
                                axis,
                            },
                        );
                    }
                }
                axis += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn spec(name: &str, dtype: DType, dims: &[&str]) -> ArgSpec {
        ArgSpec {
            name: name.to_string(),
            dtype,
            dims: dims
                .iter()
                .map(|d| match d.strip_prefix("..") {
                    Some(p) => DimSpec::Pack(p.to_string()),
                    None => DimSpec::Named(d.to_string()),
                })
                .collect(),
            required: true,
        }
    }

    #[test]
    fn binds_dims_and_packs_and_reports_each_bad_input() {
        let args = [
            spec("x", DType::F32, &["..L", "I"]),
            spec("w", DType::F32, &["O", "I"]),
            spec("labels", DType::I32, &["..L"]),
        ];
        let mut inputs = HashMap::new();
        inputs.insert("x", Tensor::zeros(DType::F32, &[2, 3, 4]));
        inputs.insert("w", Tensor::zeros(DType::F32, &[5, 4]));
        inputs.insert("labels", Tensor::zeros(DType::I32, &[2, 3]));
        let b = bind(&args, |n| inputs.get(n).map(Tensor::as_ref)).unwrap();
        assert_eq!(b.dims["I"], 4);
        assert_eq!(b.packs["L"], vec![2, 3]);

        inputs.insert("w", Tensor::zeros(DType::F32, &[5, 6]));
        inputs.insert("labels", Tensor::zeros(DType::F32, &[2, 3]));
        let errs = bind(&args, |n| inputs.get(n).map(Tensor::as_ref)).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(errs[0]
            .message
            .contains("I = 6 here (axis 1), but `x` bound I = 4"));
        assert!(errs[1].message.contains("dtype f32 instead of i32"));

        inputs.remove("x");
        let errs = bind(&args, |n| inputs.get(n).map(Tensor::as_ref)).unwrap_err();
        assert_eq!(errs[0].message, "missing input `x`: expected f32[..L, I]");
    }
}
