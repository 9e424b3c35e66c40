//! The C ABI (`runtime/include/ftl.h`): load an `.ftlpack` artifact and run it on caller-owned
//! buffers. Every entry point checks its pointers, catches panics and reports errors through a
//! status and a message buffer, so no input from C can unwind across the boundary or abort.
#![allow(unsafe_code)]

use crate::artifact::Artifact;
use crate::exec::{ExecError, ExecErrorKind, Outputs};
use crate::{DType, TensorRef};
use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// `FTL_OK`.
const OK: i32 = 0;
/// `FTL_USER_ERROR`.
const USER_ERROR: i32 = 1;
/// `FTL_ARTIFACT_ERROR`.
const ARTIFACT_ERROR: i32 = 2;

/// `ftl_tensor`: a dense row-major tensor described by the caller.
#[repr(C)]
pub struct FtlTensor {
    /// The parameter (or output) name, NUL-terminated.
    pub name: *const c_char,
    /// The elements.
    pub data: *const c_void,
    /// An `ftl_dtype`.
    pub dtype: i32,
    /// The rank.
    pub ndim: i32,
    /// `ndim` sizes.
    pub shape: *const i64,
}

/// `ftl_artifact`: a loaded artifact.
pub struct FtlArtifact {
    artifact: Artifact,
}

/// `ftl_result`: the outputs of one run, with C strings and shapes for the descriptors.
pub struct FtlResult {
    outputs: Outputs,
    names: Vec<CString>,
    shapes: Vec<Vec<i64>>,
}

/// The C code of a dtype (`ftl_dtype`).
fn dtype_code(d: DType) -> i32 {
    match d {
        DType::F64 => 0,
        DType::F32 => 1,
        DType::BF16 => 2,
        DType::F16 => 3,
        DType::I64 => 4,
        DType::I32 => 5,
        DType::Bool => 6,
    }
}

fn dtype_of(code: i32) -> Option<DType> {
    DType::ALL.into_iter().find(|d| dtype_code(*d) == code)
}

/// Writes `message` into the caller's buffer, truncated and NUL-terminated.
///
/// # Safety
/// `err` is NULL or points to `err_len` writable bytes.
unsafe fn report(err: *mut c_char, err_len: usize, message: &str) {
    if err.is_null() || err_len == 0 {
        return;
    }
    let bytes = message.as_bytes();
    let n = bytes.len().min(err_len - 1);
    // SAFETY: the caller gave `err_len` writable bytes; n + 1 <= err_len.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), err as *mut u8, n);
        *err.add(n) = 0;
    }
}

/// The `error[E…]:` lines `ftl-run` prints for a failed run.
fn render(e: &ExecError) -> (i32, String) {
    let code = match e.kind {
        ExecErrorKind::Inputs => "E0091",
        ExecErrorKind::Requires => "E0093",
        ExecErrorKind::Run => "E0094",
        ExecErrorKind::TooLarge => "E0096",
        ExecErrorKind::Device => "E0098",
        ExecErrorKind::InvalidManifest => return (ARTIFACT_ERROR, e.to_string()),
    };
    let text = e
        .messages
        .iter()
        .map(|m| format!("error[{code}]: {m}"))
        .collect::<Vec<_>>()
        .join("\n");
    (USER_ERROR, text)
}

/// `ftl_load`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `err` NULL or `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn ftl_load(
    path: *const c_char,
    err: *mut c_char,
    err_len: usize,
) -> *mut FtlArtifact {
    let result = catch_unwind(|| {
        if path.is_null() {
            return Err("ftl_load: the path is NULL".to_string());
        }
        // SAFETY: non-NULL and NUL-terminated by the contract.
        let path = unsafe { CStr::from_ptr(path) }
            .to_str()
            .map_err(|_| "ftl_load: the path is not UTF-8".to_string())?;
        Artifact::load(Path::new(path))
            .map(|artifact| Box::into_raw(Box::new(FtlArtifact { artifact })))
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(Ok(p)) => p,
        Ok(Err(m)) => {
            // SAFETY: as the caller's contract.
            unsafe { report(err, err_len, &m) };
            std::ptr::null_mut()
        }
        Err(_) => {
            // SAFETY: as the caller's contract.
            unsafe { report(err, err_len, "ftl_load: internal error") };
            std::ptr::null_mut()
        }
    }
}

/// `ftl_free`.
///
/// # Safety
/// `artifact` is NULL or a pointer `ftl_load` returned, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ftl_free(artifact: *mut FtlArtifact) {
    if !artifact.is_null() {
        // SAFETY: made by Box::into_raw in ftl_load, freed once by the contract.
        drop(unsafe { Box::from_raw(artifact) });
    }
}

/// `ftl_set_threads`.
///
/// # Safety
/// `artifact` is NULL or a live pointer from `ftl_load`.
#[no_mangle]
pub unsafe extern "C" fn ftl_set_threads(artifact: *mut FtlArtifact, threads: usize) {
    // SAFETY: NULL or live by the contract.
    if let Some(a) = unsafe { artifact.as_ref() } {
        a.artifact.executor().set_threads(threads);
    }
}

/// Reads the caller's descriptors into views; the message names the bad one.
///
/// # Safety
/// `inputs` points to `n` descriptors whose pointers follow `ftl.h`'s contract.
unsafe fn views(
    inputs: *const FtlTensor,
    n: usize,
    shapes: &mut Vec<Vec<usize>>,
) -> Result<Vec<(String, DType, *const c_void)>, String> {
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        // SAFETY: k < n descriptors by the contract.
        let t = unsafe { &*inputs.add(k) };
        if t.name.is_null() {
            return Err(format!("error[E0091]: input {k} has no name"));
        }
        // SAFETY: non-NULL, NUL-terminated by the contract.
        let name = unsafe { CStr::from_ptr(t.name) }
            .to_str()
            .map_err(|_| format!("error[E0091]: the name of input {k} is not UTF-8"))?
            .to_string();
        let dtype = dtype_of(t.dtype).ok_or_else(|| {
            format!(
                "error[E0091]: input `{name}` has dtype code {}, which is not an ftl_dtype",
                t.dtype
            )
        })?;
        if t.ndim < 0 || (t.ndim > 0 && t.shape.is_null()) || t.ndim > 64 {
            return Err(format!(
                "error[E0091]: input `{name}` has rank {} without a valid shape",
                t.ndim
            ));
        }
        let mut shape = Vec::with_capacity(t.ndim as usize);
        for axis in 0..t.ndim as usize {
            // SAFETY: ndim sizes by the contract.
            let s = unsafe { *t.shape.add(axis) };
            shape.push(usize::try_from(s).map_err(|_| {
                format!("error[E0091]: input `{name}` has size {s} on axis {axis}")
            })?);
        }
        shapes.push(shape);
        out.push((name, dtype, t.data));
    }
    Ok(out)
}

/// `ftl_run`.
///
/// # Safety
/// Pointers follow `ftl.h`'s contract: `artifact` from `ftl_load`, `inputs` to `n_inputs`
/// descriptors of live buffers, `result` writable, `err` NULL or `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn ftl_run(
    artifact: *mut FtlArtifact,
    inputs: *const FtlTensor,
    n_inputs: usize,
    result: *mut *mut FtlResult,
    err: *mut c_char,
    err_len: usize,
) -> i32 {
    let outcome = catch_unwind(AssertUnwindSafe(
        || -> Result<*mut FtlResult, (i32, String)> {
            // SAFETY: NULL or live by the contract.
            let Some(a) = (unsafe { artifact.as_ref() }) else {
                return Err((ARTIFACT_ERROR, "ftl_run: the artifact is NULL".into()));
            };
            if result.is_null() || (inputs.is_null() && n_inputs > 0) {
                return Err((ARTIFACT_ERROR, "ftl_run: a NULL pointer argument".into()));
            }
            let mut shapes = Vec::new();
            // SAFETY: n_inputs descriptors by the contract.
            let described =
                unsafe { views(inputs, n_inputs, &mut shapes) }.map_err(|m| (USER_ERROR, m))?;
            let mut map: HashMap<String, TensorRef<'_>> = HashMap::new();
            for ((name, dtype, data), shape) in described.into_iter().zip(&shapes) {
                let bytes_len = shape
                    .iter()
                    .try_fold(dtype.size_bytes(), |acc, s| acc.checked_mul(*s))
                    .ok_or_else(|| {
                        (
                            USER_ERROR,
                            format!("error[E0091]: input `{name}` is too large"),
                        )
                    })?;
                let bytes: &[u8] = if bytes_len == 0 {
                    &[]
                } else if data.is_null() {
                    return Err((
                        USER_ERROR,
                        format!("error[E0091]: input `{name}` has no data"),
                    ));
                } else {
                    // SAFETY: the caller's buffer holds prod(shape) elements and outlives the call.
                    unsafe { std::slice::from_raw_parts(data as *const u8, bytes_len) }
                };
                let view = TensorRef::new(dtype, shape, bytes).ok_or_else(|| {
                    (
                        USER_ERROR,
                        format!("error[E0091]: input `{name}` is not aligned to its element size"),
                    )
                })?;
                if map.insert(name.clone(), view).is_some() {
                    return Err((
                        USER_ERROR,
                        format!("error[E0091]: input `{name}` is given twice"),
                    ));
                }
            }
            let (outputs, _) = a
                .artifact
                .executor()
                .run_views_timed(&map)
                .map_err(|e| render(&e))?;
            let names = outputs
                .iter()
                .map(|(n, _)| CString::new(n.as_str()).unwrap_or_default())
                .collect();
            let shapes = outputs
                .iter()
                .map(|(_, t)| t.shape().iter().map(|s| *s as i64).collect())
                .collect();
            Ok(Box::into_raw(Box::new(FtlResult {
                outputs,
                names,
                shapes,
            })))
        },
    ));
    let (status, message) = match outcome {
        Ok(Ok(r)) => {
            // SAFETY: checked non-NULL above.
            unsafe { *result = r };
            return OK;
        }
        Ok(Err(e)) => e,
        Err(_) => (ARTIFACT_ERROR, "ftl_run: internal error".to_string()),
    };
    // SAFETY: as the caller's contract.
    unsafe { report(err, err_len, &message) };
    status
}

/// `ftl_result_count`.
///
/// # Safety
/// `result` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ftl_result_count(result: *const FtlResult) -> usize {
    // SAFETY: NULL or live by the contract.
    unsafe { result.as_ref() }.map_or(0, |r| r.outputs.len())
}

/// `ftl_result_name`.
///
/// # Safety
/// `result` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ftl_result_name(result: *const FtlResult, i: usize) -> *const c_char {
    // SAFETY: NULL or live by the contract.
    unsafe { result.as_ref() }
        .and_then(|r| r.names.get(i))
        .map_or(std::ptr::null(), |n| n.as_ptr())
}

/// `ftl_result_get`.
///
/// # Safety
/// `result` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ftl_result_get(
    result: *const FtlResult,
    i: usize,
    out: *mut FtlTensor,
) -> i32 {
    // SAFETY: NULL or live by the contract.
    let Some(r) = (unsafe { result.as_ref() }) else {
        return 0;
    };
    let (Some((_, t)), Some(name), Some(shape)) =
        (r.outputs.get(i), r.names.get(i), r.shapes.get(i))
    else {
        return 0;
    };
    if out.is_null() {
        return 0;
    }
    // SAFETY: writable by the contract.
    unsafe {
        *out = FtlTensor {
            name: name.as_ptr(),
            data: t.bytes().as_ptr() as *const c_void,
            dtype: dtype_code(t.dtype()),
            ndim: shape.len() as i32,
            shape: shape.as_ptr(),
        };
    }
    1
}

/// `ftl_result_free`.
///
/// # Safety
/// `result` is NULL or a pointer `ftl_run` returned, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn ftl_result_free(result: *mut FtlResult) {
    if !result.is_null() {
        // SAFETY: made by Box::into_raw in ftl_run, freed once by the contract.
        drop(unsafe { Box::from_raw(result) });
    }
}
