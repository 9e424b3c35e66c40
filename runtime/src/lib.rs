//! `ftl-runtime`: what runs compiled FTL. It knows nothing of the language and never depends on
//! the compiler: dtypes, host tensors, safetensors I/O, the argument binder and the counter-based
//! random generator shared by every backend.

pub mod artifact;
pub mod bind;
mod dtype;
pub mod exec;
pub mod host;
pub mod manifest;
pub mod philox;
pub mod safetensors_io;
mod tensor;

pub use dtype::DType;
pub use tensor::{type_text, Tensor};
