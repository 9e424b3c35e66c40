//! `ftl-plan`: the kernel plan, backend neutral. [`fuse`] groups a verified graph's nodes into
//! kernels and host steps (a [`fuse::Plan`], with its text form for `--emit kernels`),
//! [`slicing`] slices a contraction whose result only reductions and maps consume (the logits of
//! a loss from hidden states) so it never exists whole,
//! [`manifest`] turns a plan into the runtime's manifest, [`artifact`] links a backend's object
//! code into an `.ftlpack`, and [`backend::Backend`] is the
//! contract a code generator implements: `compile(&Plan)` to kernels the executor calls.
//! [`scalar_math`] is the f32 math and Philox every backend shares, as scalar instructions;
//! [`deps`] the loop dims a value depends on and the reductions' identities, which every
//! emitter asks.

pub mod artifact;
pub mod backend;
pub mod deps;
pub mod fuse;
pub mod manifest;
pub mod scalar_math;
pub mod slicing;
