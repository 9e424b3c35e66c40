//! The contract between the compiler and its code generators: a backend translates a fused,
//! verified [`Plan`] into kernels the runtime's executor calls by symbol. Everything a backend
//! needs to know that is not kernel code (buffers, dims, host steps) is in the plan and in the
//! [`crate::manifest`] built from it, so a new backend is one implementation of [`Backend`].

use crate::fuse::Plan;
use ftl_ir::pipeline::Failure;
use ftl_runtime::exec::PackedFn;

/// A backend failed on a plan the verifier accepted: a compiler bug, never a user error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendError(pub String);

impl From<BackendError> for Failure {
    fn from(e: BackendError) -> Failure {
        Failure::Internal(e.0)
    }
}

/// Compiled kernels, kept alive while an executor calls them.
pub trait Kernels {
    /// The packed entry point of the kernel named `symbol` (the plan's kernel names).
    fn entry(&self, symbol: &str) -> Option<PackedFn>;
}

/// A code generator for kernel plans.
pub trait Backend {
    /// What it produces.
    type Kernels: Kernels;

    /// Its name in `ftc` output (`mlir`).
    fn name(&self) -> &'static str;

    /// Compiles every kernel of `plan`, the prelude included.
    fn compile(&self, plan: &Plan) -> Result<Self::Kernels, BackendError>;
}

/// The GPU architectures the CUDA path makes PTX for (ftl-mlir's `cuda` module). Named here,
/// with no LLVM, so that a build without the MLIR backend validates `--target cuda:sm_XX`
/// against the same list.
pub const CUDA_CHIPS: [&str; 2] = ["sm_80", "sm_90"];
