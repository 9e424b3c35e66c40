//! Outputs handed to Python without a copy: a [`Buffer`] owns the runtime's tensor and
//! describes it with NumPy's array interface, so `numpy.asarray(buffer)` views its memory
//! (keeping the buffer alive) and `torch.from_numpy` views that in turn. When Python lets go
//! of it (a training loop sets `.grad = None`), its memory goes back to the entry's executor,
//! so the next call writes warm pages instead of faulting in fresh ones.

use crate::entry::Entry;
use ftl_runtime::{DType, Tensor};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// One output tensor of a run.
#[pyclass(frozen, module = "ftl._native")]
pub struct Buffer {
    /// Always `Some` until dropped.
    tensor: Option<Tensor>,
    /// The element memory's address, taken from a mutable borrow when the buffer was made:
    /// Python writes through it (PyTorch accumulates gradients in place) and Rust never reads
    /// the elements again, only recycles or drops them.
    address: usize,
    dtype: DType,
    shape: Vec<usize>,
    /// The entry whose executor gets the memory back.
    owner: Py<Entry>,
}

impl Buffer {
    /// Wraps an output of `owner`'s executor.
    pub fn new(mut tensor: Tensor, owner: Py<Entry>) -> Buffer {
        let address = tensor.bytes_mut().as_mut_ptr() as usize;
        Buffer {
            address,
            dtype: tensor.dtype(),
            shape: tensor.shape().to_vec(),
            tensor: Some(tensor),
            owner,
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Some(t) = self.tensor.take() {
            self.owner.get().recycle(t);
        }
    }
}

/// NumPy's type string for a dtype. bf16 has none: it travels as `<u2` and the Python side
/// reinterprets it as `torch.bfloat16`.
fn typestr(dtype: DType) -> &'static str {
    match dtype {
        DType::F64 => "<f8",
        DType::F32 => "<f4",
        DType::F16 => "<f2",
        DType::BF16 => "<u2",
        DType::I64 => "<i8",
        DType::I32 => "<i4",
        DType::Bool => "|b1",
    }
}

#[pymethods]
impl Buffer {
    /// The FTL dtype's name (`f32`, `bf16`, …).
    #[getter]
    fn dtype(&self) -> &'static str {
        self.dtype.name()
    }

    /// The shape.
    #[getter]
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    /// NumPy's array interface (version 3) over the buffer's memory, writable.
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("version", 3)?;
        d.set_item("shape", pyo3::types::PyTuple::new(py, &self.shape)?)?;
        d.set_item("typestr", typestr(self.dtype))?;
        d.set_item("data", (self.address, false))?;
        Ok(d)
    }
}
