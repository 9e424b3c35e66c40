//! The artifact loader's checks and the executor on an arbitrary manifest and inputs: the
//! input is `manifest JSON` NUL `safetensors bytes`. A manifest that passes the verifier runs
//! with every kernel a no-op (kernels are native code the loader cannot check; everything else
//! it runs — binding, dims, the memory budget, allocation, GEMM, argsort, decompositions,
//! solve — must stay in bounds) under a 64 MiB limit.
#![no_main]
#![allow(unsafe_code)]

use ftl_runtime::exec::Executor;
use ftl_runtime::manifest::Manifest;
use ftl_runtime::safetensors_io;
use libfuzzer_sys::fuzz_target;
use std::ffi::c_void;

unsafe extern "C" fn no_op(_args: *mut *mut c_void) {}

fuzz_target!(|data: &[u8]| {
    let (json, tensors) = match data.iter().position(|b| *b == 0) {
        Some(k) => (&data[..k], &data[k + 1..]),
        None => (data, &[][..]),
    };
    let Ok(manifest) = serde_json::from_slice::<Manifest>(json) else {
        return;
    };
    // The executor runs the verifier first: an invalid manifest ends here.
    let Ok(exec) = Executor::new(manifest, |_| Some(no_op as ftl_runtime::exec::PackedFn)) else {
        return;
    };
    let exec = exec.with_threads(1).with_memory_limit(64 << 20);
    let inputs = safetensors_io::decode(tensors, |_| true).unwrap_or_default();
    let _ = exec.run(&inputs.into_iter().collect());
});
