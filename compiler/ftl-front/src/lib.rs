//! `ftl-front`: the FTL front end. It reads `.ftl` files and their imports ([`resolve`]), checks
//! names, dtypes and named dims against the builtin table ([`builtins`]) and builds the typed
//! [`hir`]; every user mistake is a [`diagnostic::Diagnostic`] with a [`codes::Code`].
//! [`analysis::analyze`] runs all of it. The crate links no LLVM: its tests build and run
//! without it.

pub mod analysis;
pub mod builtins;
pub mod check;
pub mod codes;
pub mod diagnostic;
pub mod doc;
pub mod hir;
pub mod resolve;
pub mod source;
pub mod stdlib;
pub mod types;

pub use analysis::{analyze, render_diagnostics, Analysis, MessageFormat};
