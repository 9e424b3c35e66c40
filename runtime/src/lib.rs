//! `ftl-runtime`: what runs compiled FTL. It knows nothing of the language and never depends on
//! the compiler: dtypes, host tensors, safetensors I/O, the argument binder, the counter-based
//! random generator shared by every backend, the executor, and the CUDA device it can run
//! kernels on.

pub mod artifact;
pub mod bind;
pub mod budget;
pub mod capi;
pub mod cuda;
pub mod device;
pub mod dims;
mod dtype;
pub mod exec;
pub mod host;
pub mod manifest;
pub mod output;
pub mod philox;
pub mod safetensors_io;
pub mod slices;
pub mod solve;
pub mod target;
mod tensor;
pub mod validate;

pub use dtype::DType;
pub use tensor::{type_text, Tensor, TensorRef};
