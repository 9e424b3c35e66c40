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
/// with symbols unique to this entry and build, linked from the JIT's object code by the system
/// C compiler (`cc`, or `$CC`) without start files (the library has no initializers), then the
/// manifest with the library's digest. The directory is built beside `dir` and moved into place
/// whole (an existing artifact is replaced; any other existing path is refused).
pub fn write_artifact(plan: &Plan, dir: &Path, target: &Target) -> Result<(), Failure> {
    use ftl_runtime::artifact::{self, KERNELS};
    let plan = with_unique_symbols(plan)?;
    let manifest = ftl_plan::manifest::build(&plan).map_err(Failure::Internal)?;
    let cpu = target.is_level().then_some(target.cpu.as_str());
    let text = with_manifest_digest(&module_text(&plan)?, &artifact::manifest_digest(&manifest));
    let jit = jit::Jit::compile_with(&text, true, cpu).map_err(Failure::Internal)?;
    ftl_runtime::output::write_dir(dir, artifact::is_artifact, |tmp| {
        let object = tmp.join("kernels.o");
        jit.write_object(&object);
        if !object.exists() {
            return Err("internal error: LLVM wrote no object code".into());
        }
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
        let status = std::process::Command::new(&cc)
            .args(["-shared", "-nostartfiles", "-o"])
            .arg(tmp.join(KERNELS))
            .arg(&object)
            .arg("-lm")
            .status()
            .map_err(|e| format!("cannot run `{cc}` to link the kernels: {e}"))?;
        std::fs::remove_file(&object).map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!(
                "`{cc} -shared` failed to link the kernels ({status})"
            ));
        }
        artifact::seal(tmp, target, &manifest)
    })?;
    Ok(())
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

/// `plan` with every kernel named `ftl_<entry>_<digest>_<kernel>`, the digest of its module
/// text: a manifest can only find its own build's kernels in a library.
fn with_unique_symbols(plan: &Plan) -> Result<Plan, BackendError> {
    let digest = ftl_runtime::artifact::sha256_hex(module_text(plan)?.as_bytes());
    let entry: String = plan
        .graph
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let prefix = format!("ftl_{entry}_{}_", &digest[..12]);
    let mut plan = plan.clone();
    for k in plan.prelude.iter_mut().chain(plan.kernels.iter_mut()) {
        k.prefix_name(&prefix);
    }
    Ok(plan)
}
