//! Outputs handed to Python without a copy: a [`Buffer`] owns the runtime's tensor and
//! describes it with NumPy's array interface, so `numpy.asarray(buffer)` views its memory
//! (keeping the buffer alive) and `torch.from_numpy` views that in turn.

use ftl_runtime::{DType, Tensor};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// One output tensor of a run.
#[pyclass(frozen, module = "ftl._native")]
pub struct Buffer {
    tensor: Tensor,
    /// The element memory's address, taken from a mutable borrow when the buffer was made:
    /// Python writes through it (PyTorch accumulates gradients in place) and Rust never reads
    /// the elements again, only drops them.
    address: usize,
}

impl Buffer {
    /// Wraps an output.
    pub fn new(mut tensor: Tensor) -> Buffer {
        let address = tensor.bytes_mut().as_mut_ptr() as usize;
        Buffer { tensor, address }
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
        self.tensor.dtype().name()
    }

    /// The shape.
    #[getter]
    fn shape(&self) -> Vec<usize> {
        self.tensor.shape().to_vec()
    }

    /// NumPy's array interface (version 3) over the buffer's memory, writable.
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("version", 3)?;
        d.set_item("shape", pyo3::types::PyTuple::new(py, self.tensor.shape())?)?;
        d.set_item("typestr", typestr(self.tensor.dtype()))?;
        d.set_item("data", (self.address, false))?;
        Ok(d)
    }
}
