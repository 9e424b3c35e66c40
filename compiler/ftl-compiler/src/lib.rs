//! `ftl-compiler`: everything after the front end ([`ftl_front`]). [`pipeline`] turns a checked
//! entry into a verified graph ([`ir`]: lowering, autodiff, simplifier); the graph runs on the
//! reference interpreter ([`interp`]) or is fused into a kernel plan ([`fuse`]); [`manifest`]
//! turns the plan into what the runtime's executor needs, and a [`backend::Backend`] (the MLIR
//! CPU backend, [`mlir`]) compiles its kernels. [`run`] binds settings and inputs,
//! [`testing`] runs test blocks, [`peft`] reads and writes PEFT adapters, and [`driver`] is one
//! function per `ftc` command.

pub mod backend;
pub mod driver;
pub mod fuse;
pub mod interp;
pub mod ir;
pub mod manifest;
pub mod mlir;
pub mod peft;
pub mod pipeline;
pub mod run;
pub mod testing;
