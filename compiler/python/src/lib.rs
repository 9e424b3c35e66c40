//! `ftl._native`: the FTL compiler and runtime inside a Python process. The Python package
//! (`compiler/python/python/ftl/`) holds the user-facing API — autograd functions, modules,
//! argument checks — and calls three things here: `entry::compile` (analysis, the one
//! pipeline, the compile cache) returning an `entry::Entry`, `Entry.run` on
//! caller-owned memory with the GIL released, and `buffer::Buffer`, an output whose memory
//! NumPy and PyTorch adopt without a copy.

mod buffer;
mod entry;

use pyo3::prelude::*;

pyo3::create_exception!(
    _native,
    NativeError,
    pyo3::exceptions::PyException,
    "A user error from the compiler or the runtime: args are (code, rendered diagnostics); \
     `ftl.FtlError` is raised in its place."
);

/// The module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("NativeError", m.py().get_type::<NativeError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(entry::compile, m)?)?;
    m.add_function(wrap_pyfunction!(entry::library_dir, m)?)?;
    m.add_class::<entry::Entry>()?;
    m.add_class::<buffer::Buffer>()?;
    Ok(())
}
