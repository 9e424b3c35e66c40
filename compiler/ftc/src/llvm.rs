//! Everything `ftc` does through LLVM — the MLIR CPU backend's JIT and `.ftlpack` artifacts (and
//! so the compile cache), `--emit mlir|llvm`, and the CUDA path's code generation — behind the
//! default `mlir` feature. Built without it (`--no-default-features`), `ftc` links no LLVM: the
//! Cranelift backend and the interpreter run entries, and each function here is a user-facing
//! E0095 naming the feature.

use ftl_ir::pipeline::Failure;
use ftl_plan::fuse::Plan;
use ftl_runtime::target::Target;
use std::path::Path;

#[cfg(feature = "mlir")]
mod imp {
    use super::*;
    use ftl_front::codes::Code;
    use ftl_mlir::cuda::CudaError;

    /// The MLIR CPU backend.
    pub type Backend = ftl_mlir::MlirCpu;

    /// The MLIR CPU backend, as `ftc run` uses it.
    pub fn backend() -> Result<Backend, Failure> {
        Ok(ftl_mlir::MlirCpu)
    }

    /// The MLIR module of `plan`.
    pub fn module_text(plan: &Plan) -> Result<String, Failure> {
        Ok(ftl_mlir::module_text(plan)?)
    }

    /// The module of `plan` lowered to the LLVM dialect.
    pub fn llvm_text(plan: &Plan) -> Result<String, Failure> {
        ftl_mlir::jit::lower_to_llvm_text(&ftl_mlir::module_text(plan)?).map_err(Failure::Internal)
    }

    /// Writes `plan`'s artifact for `target`.
    pub fn write_artifact(plan: &Plan, dir: &Path, target: &Target) -> Result<(), Failure> {
        ftl_mlir::write_artifact(plan, dir, target)
    }

    fn cuda_failure(e: CudaError) -> Failure {
        match e {
            CudaError::UnknownChip(c) => {
                Failure::new(Code::BadSetting, format!("unknown GPU `{c}`"))
            }
            CudaError::NoLibdevice(m) => Failure::new(Code::Unsupported, m),
            CudaError::Internal(m) => Failure::Internal(m),
        }
    }

    /// The kernels as a `gpu.module`.
    pub fn gpu_text(plan: &Plan) -> Result<String, Failure> {
        ftl_mlir::cuda::gpu_text(plan).map_err(cuda_failure)
    }

    /// The kernels as PTX for `chip`.
    pub fn ptx(plan: &Plan, chip: &str) -> Result<String, Failure> {
        let libdevice = ftl_mlir::cuda::libdevice().map_err(cuda_failure)?;
        ftl_mlir::cuda::ptx(plan, chip, &libdevice).map_err(cuda_failure)
    }

    /// Writes `plan`'s CUDA artifact for `chip`.
    pub fn write_cuda_artifact(plan: &Plan, dir: &Path, chip: &str) -> Result<(), Failure> {
        let libdevice = ftl_mlir::cuda::libdevice().map_err(cuda_failure)?;
        ftl_mlir::cuda::write_artifact(plan, dir, chip, &libdevice)
    }
}

#[cfg(not(feature = "mlir"))]
mod imp {
    use super::*;
    use ftl_front::codes::Code;

    fn without(what: &str) -> Failure {
        Failure::new(
            Code::Unsupported,
            format!(
                "{what} needs LLVM, and this ftc was built without it (the `mlir` feature); \
                 `--backend cranelift` runs entries without LLVM"
            ),
        )
    }

    /// No MLIR backend in this build.
    pub type Backend = ftl_cranelift::Cranelift;

    /// Refused: the MLIR backend is not built.
    pub fn backend() -> Result<Backend, Failure> {
        Err(without("`--backend mlir`"))
    }

    /// Refused: the MLIR backend is not built.
    pub fn module_text(_: &Plan) -> Result<String, Failure> {
        Err(without("`--emit mlir`"))
    }

    /// Refused: the MLIR backend is not built.
    pub fn llvm_text(_: &Plan) -> Result<String, Failure> {
        Err(without("`--emit llvm`"))
    }

    /// Refused: artifacts hold LLVM-compiled kernels.
    pub fn write_artifact(_: &Plan, _: &Path, _: &Target) -> Result<(), Failure> {
        Err(without("an `.ftlpack` artifact"))
    }

    /// Refused: the CUDA path is MLIR's.
    pub fn gpu_text(_: &Plan) -> Result<String, Failure> {
        Err(without("`--emit gpu`"))
    }

    /// Refused: the CUDA path is MLIR's.
    pub fn ptx(_: &Plan, _: &str) -> Result<String, Failure> {
        Err(without("CUDA code"))
    }

    /// Refused: the CUDA path is MLIR's.
    pub fn write_cuda_artifact(_: &Plan, _: &Path, _: &str) -> Result<(), Failure> {
        Err(without("a CUDA artifact"))
    }
}

pub use imp::*;
