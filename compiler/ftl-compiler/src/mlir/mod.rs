//! The MLIR CPU backend: a fused [`Plan`] becomes MLIR text (`emit`, with the vectorizable math
//! of `math`), lowered to LLVM and compiled by melior (`jit`). It implements [`Backend`]; the
//! manifest that runs its kernels comes from [`crate::manifest`].

pub mod emit;
pub mod jit;
mod math;

use crate::backend::{Backend, BackendError};
use crate::fuse::Plan;

/// The MLIR → LLVM CPU backend, JIT-compiled in process.
#[derive(Clone, Copy, Debug, Default)]
pub struct MlirCpu;

impl Backend for MlirCpu {
    type Kernels = jit::Jit;

    fn name(&self) -> &'static str {
        "mlir"
    }

    fn compile(&self, plan: &Plan) -> Result<jit::Jit, BackendError> {
        jit::Jit::compile(&module_text(plan)).map_err(BackendError)
    }
}

/// The MLIR module of `plan` (scf/arith/math/memref), one function per generated kernel.
pub fn module_text(plan: &Plan) -> String {
    emit::module_text(plan, plan.prelude.as_ref())
}

/// Writes the artifact `dir` (`NAME.ftlpack`): `manifest.json` and `kernels.so`, linked from
/// the JIT's object code with the system C compiler (`cc`, or `$CC`).
pub fn write_artifact(plan: &Plan, dir: &std::path::Path) -> Result<(), String> {
    use ftl_runtime::artifact::{write_manifest, KERNELS};
    let manifest = crate::manifest::build(plan)?;
    let jit = jit::Jit::compile_with(&module_text(plan), true)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let object = dir.join("kernels.o");
    jit.write_object(&object);
    if !object.exists() {
        return Err("internal error: LLVM wrote no object code".into());
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = std::process::Command::new(&cc)
        .arg("-shared")
        .arg("-o")
        .arg(dir.join(KERNELS))
        .arg(&object)
        .arg("-lm")
        .status()
        .map_err(|e| format!("cannot run `{cc}` to link the kernels: {e}"))?;
    let _ = std::fs::remove_file(&object);
    if !status.success() {
        return Err(format!(
            "`{cc} -shared` failed to link the kernels ({status})"
        ));
    }
    write_manifest(dir, &manifest).map_err(|e| format!("{}: {e}", dir.display()))
}
