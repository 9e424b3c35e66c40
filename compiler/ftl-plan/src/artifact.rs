//! An `.ftlpack` from a backend's object code, the same for every CPU backend: the kernels are
//! renamed so a manifest can only find its own build's kernels, the object file is linked into
//! `kernels.so` by the system C compiler, and `manifest.json` seals the directory
//! (runtime/src/artifact.rs checks both when it loads them).

use crate::fuse::Plan;
use ftl_ir::pipeline::Failure;
use ftl_runtime::artifact::{self, KERNELS};
use ftl_runtime::manifest::Manifest;
use ftl_runtime::target::Target;
use std::path::Path;

/// `plan` with every kernel named `ftl_<entry>_<digest>_<kernel>` (`digest`'s first 12 hex
/// digits: a digest of what the backend compiles).
pub fn with_unique_symbols(plan: &Plan, digest: &str) -> Plan {
    let entry: String = plan
        .graph
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let prefix = format!("ftl_{entry}_{}_", &digest[..digest.len().min(12)]);
    let mut plan = plan.clone();
    for k in plan.prelude.iter_mut().chain(plan.kernels.iter_mut()) {
        k.prefix_name(&prefix);
    }
    plan
}

/// Builds the artifact `dir`: `write_object(path)` writes the kernels' object file (defining
/// the packed entry `_mlir_<symbol>` of every kernel, and embedding the manifest's digest after
/// the runtime's mark), which the system C compiler (`cc`, or `$CC`) links without start files
/// (the library has no initializers); then the manifest. The directory is built beside `dir`
/// and moved into place whole (an existing artifact is replaced; any other path is refused).
pub fn link(
    dir: &Path,
    target: &Target,
    manifest: &Manifest,
    write_object: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), Failure> {
    ftl_runtime::output::write_dir(dir, artifact::is_artifact, |tmp| {
        let object = tmp.join("kernels.o");
        write_object(&object)?;
        if !object.exists() {
            return Err("internal error: the backend wrote no object code".into());
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
        artifact::seal(tmp, target, manifest)
    })?;
    Ok(())
}
