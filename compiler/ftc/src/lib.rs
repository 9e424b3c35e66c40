//! `ftc`: the command line over the FTL crates. [`driver`] is one function per `ftc` command,
//! each going through [`ftl_ir::pipeline`]; [`run`] binds settings and inputs and runs an entry
//! on the interpreter ([`ftl_interp`]) or compiled by a [`ftl_plan::backend::Backend`] (the MLIR
//! CPU backend, or the LLVM-free Cranelift one, [`ftl_cranelift`]); [`llvm`] holds everything
//! that needs LLVM, behind the default `mlir` feature; [`testing`] runs test blocks; [`peft`]
//! reads and writes PEFT adapters (`ftc merge`, `ftc init`); [`cache`] keeps compiled entries on
//! disk for `ftc run`. `main.rs` is clap only.

pub mod cache;
pub mod driver;
pub mod fmt;
pub mod llvm;
pub mod lsp;
pub mod peft;
pub mod reference;
pub mod run;
pub mod testing;
