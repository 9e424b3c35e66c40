//! `ftl-runtime`: what runs compiled FTL. It knows nothing of the language and never depends on
//! the compiler. For now it holds the element types that both sides agree on.

mod dtype;

pub use dtype::DType;
