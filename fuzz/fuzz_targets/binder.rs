//! The safetensors decoder and the argument binder on arbitrary bytes: decoding, the unknown
//! input check, scalar coercion and dim binding against signatures with named dims, a pack, a
//! fixed size and scalars. Every outcome is a value or an error message.
#![no_main]

use ftl_runtime::bind::{self, ArgSpec, DimSpec};
use ftl_runtime::budget::Budget;
use ftl_runtime::{safetensors_io, DType};
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

fn arg(name: &str, dtype: DType, dims: &[DimSpec], required: bool) -> ArgSpec {
    ArgSpec {
        name: name.to_string(),
        dtype,
        dims: dims.to_vec(),
        required,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(tensors) = safetensors_io::decode(data, |_| true) else {
        return;
    };
    let mut inputs: HashMap<_, _> = tensors.into_iter().collect();
    let named = |n: &str| DimSpec::Named(n.to_string());
    let specs = [
        arg("chosen_logits", DType::F32, &[named("B"), named("T"), named("V")], true),
        arg("chosen_labels", DType::I32, &[named("B"), named("T")], true),
        arg("x", DType::F32, &[DimSpec::Pack("L".into()), named("I")], false),
        arg("rgb", DType::BF16, &[DimSpec::Fixed(3), named("I")], false),
        arg("beta", DType::F32, &[], false),
        arg("timestep", DType::I32, &[], false),
    ];
    let _ = bind::unknown_inputs(&specs, inputs.keys().map(String::as_str));
    let _ = bind::coerce_scalars(&specs, &mut inputs);
    if let Ok(binding) = bind::bind(&specs, |n| inputs.get(n)) {
        let mut budget = Budget::new(1 << 30);
        let shape: Vec<u64> = binding.dims.values().map(|s| *s as u64).collect();
        let _ = budget.charge("every bound dim", &shape, DType::F64);
    }
});
