//! `ftl-compiler`: resolves and checks FTL programs, lowers them to the tensor graph IR,
//! differentiates and simplifies them, and runs them on the reference interpreter. The `ftc`
//! binary is its driver.
//!
//! Pipeline: [`resolve::load`] reads the root files and their imports, [`check::check`] checks
//! names, dtypes and named dims and builds the typed [`hir`], [`ir::lower`] builds one graph per
//! entry, [`ir::autodiff`] adds gradients, [`ir::simplify`] cleans up, [`interp`] evaluates, and
//! [`run`] ties them to `ftc run`, `ftc test` and `ftc gradcheck`.

pub mod builtins;
pub mod check;
pub mod codes;
pub mod diagnostic;
pub mod driver;
pub mod fuse;
pub mod hir;
pub mod interp;
pub mod ir;
pub mod mlir;
pub mod peft;
pub mod resolve;
pub mod run;
pub mod source;
pub mod testing;
pub mod types;
