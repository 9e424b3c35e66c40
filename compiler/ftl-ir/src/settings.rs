//! An entry's settings from the command line and its inputs: `--set name=value` (static options
//! and scalar inputs), which optional inputs are present, and whether an adapter's upstream
//! gradients are given. The pipeline reads these before lowering.

use crate::lower::{is_static, EntryOptions, StaticValue};
use crate::pipeline::Failure;
use ftl_front::codes::Code;
use ftl_front::hir::{DeclId, Hir};
use ftl_front::types::Ty;
use ftl_runtime::{DType, Tensor};
use std::collections::HashMap;

/// Parses `--set name=value` pairs against an entry's parameters: static options go to
/// `opts`, scalar values become 0-d tensors in `inputs` (overriding the file's).
pub fn apply_sets(
    hir: &Hir,
    id: DeclId,
    sets: &[String],
    opts: &mut EntryOptions,
    inputs: &mut HashMap<String, Tensor>,
) -> Result<(), Failure> {
    let Some(decl) = hir.decl(id) else {
        return Err(Failure::new(
            Code::UnknownEntry,
            "the entry was not checked",
        ));
    };
    let bad = |m: String| Failure::new(Code::BadSetting, m);
    let mut seen = Vec::new();
    for s in sets {
        let Some((name, value)) = s.split_once('=') else {
            return Err(bad(format!("`--set {s}` must be `name=value`")));
        };
        let (name, value) = (name.trim(), value.trim());
        if seen.contains(&name) {
            return Err(bad(format!("`--set {name}=…` is given twice")));
        }
        seen.push(name);
        if name == "seed" || name == "offset" {
            let v = DType::I64
                .parse_value(value)
                .ok_or_else(|| bad(format!("`--set {s}`: {name} must be an i64 integer")))?;
            inputs.insert(name.to_string(), Tensor::scalar(DType::I64, v));
            continue;
        }
        let Some(p) = decl.params.iter().find(|p| p.name == name) else {
            let names: Vec<&str> = decl
                .params
                .iter()
                .filter(|p| is_static(p) || p.ty.tensor().is_some_and(|t| t.dims.is_empty()))
                .map(|p| p.name.as_str())
                .collect();
            return Err(bad(format!(
                "`--set {s}`: `{}` has no scalar parameter `{name}` (it has: {})",
                decl.name,
                names.join(", ")
            )));
        };
        match &p.ty {
            Ty::Enum(variants) => {
                if !variants.iter().any(|v| v == value) {
                    return Err(bad(format!(
                        "`--set {s}`: `{name}` is one of {}",
                        variants.join(", ")
                    )));
                }
                opts.statics
                    .insert(name.into(), StaticValue::Variant(value.to_string()));
            }
            Ty::Tensor(t) if t.dims.is_empty() => {
                let v = t.dtype.parse_value(value).ok_or_else(|| {
                    bad(format!(
                        "`--set {s}`: `{name}` is {}, not `{value}`",
                        t.dtype
                    ))
                })?;
                if is_static(p) {
                    let sv = if t.dtype == DType::Bool {
                        StaticValue::Bool(v != 0.0)
                    } else {
                        StaticValue::Int(v as i64)
                    };
                    opts.statics.insert(name.into(), sv);
                } else {
                    inputs.insert(name.to_string(), Tensor::scalar(t.dtype, v));
                }
            }
            other => {
                return Err(bad(format!(
                    "`--set {s}`: `{name}` is {other}, not a scalar; put it in the inputs file"
                )))
            }
        }
    }
    Ok(())
}

/// Fills the statics left at their defaults and the presence of optional inputs (`is_given`).
pub fn options_for(
    hir: &Hir,
    id: DeclId,
    is_given: impl Fn(&str) -> bool,
    opts: &mut EntryOptions,
) {
    if let Some(decl) = hir.decl(id) {
        for p in &decl.params {
            if p.optional && is_given(&p.name) {
                opts.present.insert(p.name.clone());
            }
        }
    }
}

/// Whether an adapter's inputs hold the upstream gradient of every output (then its
/// gradients are computed).
pub fn has_upstream(hir: &Hir, id: DeclId, inputs: &HashMap<String, Tensor>) -> bool {
    hir.decl(id).is_some_and(|d| {
        d.outputs
            .iter()
            .filter(|(n, _)| n != "aux_loss")
            .all(|(n, _)| inputs.contains_key(&format!("grad.{n}")))
    })
}
