//! `ftl-compiler`: resolves and checks FTL programs and (in later stages) lowers them to the
//! tensor graph IR, differentiates, fuses and compiles them. The `ftc` binary is its driver.
//!
//! Pipeline so far: [`resolve::load`] reads the root files and their imports, [`check::check`]
//! checks names, dtypes and named dims and builds the typed [`hir`].

pub mod builtins;
pub mod check;
pub mod codes;
pub mod diagnostic;
pub mod driver;
pub mod hir;
pub mod resolve;
pub mod source;
pub mod types;
