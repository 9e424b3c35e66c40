//! The MLIR CPU backend: a fused [`Plan`] becomes MLIR text (`emit`, with the vectorizable math
//! of `math`), lowered to LLVM and compiled by melior (`jit`). It implements [`Backend`]; the
//! manifest that runs its kernels comes from [`ftl_plan::manifest`].

pub mod cuda;
pub mod emit;
pub mod jit;
mod math;

use ftl_ir::pipeline::Failure;
use ftl_plan::backend::{Backend, BackendError};
use ftl_plan::fuse::Plan;
use ftl_runtime::target::Target;
use std::path::Path;

/// The MLIR → LLVM CPU backend, JIT-compiled in process.
#[derive(Clone, Copy, Debug, Default)]
pub struct MlirCpu;

impl Backend for MlirCpu {
    type Kernels = jit::Jit;

    fn name(&self) -> &'static str {
        "mlir"
    }

    fn compile(&self, plan: &Plan) -> Result<jit::Jit, BackendError> {
        jit::Jit::compile(&module_text(plan)?).map_err(BackendError)
    }
}

/// The MLIR module of `plan` (scf/arith/math/memref), one function per generated kernel.
pub fn module_text(plan: &Plan) -> Result<String, BackendError> {
    emit::module_text(plan, plan.prelude.as_ref())
}

/// Writes the artifact `dir` (`NAME.ftlpack`) for `target`: kernels compiled for that CPU,
/// with symbols unique to this entry and build, linked by [`ftl_plan::artifact::link`].
pub fn write_artifact(plan: &Plan, dir: &Path, target: &Target) -> Result<(), Failure> {
    let digest = ftl_runtime::artifact::sha256_hex(module_text(plan)?.as_bytes());
    let plan = ftl_plan::artifact::with_unique_symbols(plan, &digest);
    let manifest = ftl_plan::manifest::build(&plan).map_err(Failure::Internal)?;
    let cpu = target.is_level().then_some(target.cpu.as_str());
    let digest = ftl_runtime::artifact::manifest_digest(&manifest);
    let text = with_manifest_digest(&module_text(&plan)?, &digest);
    let jit = jit::Jit::compile_with(&text, true, cpu).map_err(Failure::Internal)?;
    ftl_plan::artifact::link(dir, target, &manifest, |object| {
        jit.write_object(object);
        Ok(())
    })
}

/// `text` (a module) with a constant holding the manifest's digest after the runtime's mark,
/// which the loader finds in the library's bytes.
fn with_manifest_digest(text: &str, digest: &str) -> String {
    let value = format!("{}{digest}", ftl_runtime::artifact::DIGEST_MARK);
    let global = format!(
        "  llvm.mlir.global external constant @ftl_manifest_digest(\"{value}\") {{addr_space = 0 : i32}} : !llvm.array<{} x i8>\n",
        value.len()
    );
    let body = text.strip_suffix("}\n").unwrap_or(text);
    format!("{body}{global}}}\n")
}
