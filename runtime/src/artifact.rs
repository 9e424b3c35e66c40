//! `.ftlpack` artifacts: a directory holding `manifest.json` (the [`Manifest`]) and
//! `kernels.so` (the compiled kernels, with MLIR's packed entry points `_mlir_<symbol>`).
//! Loading needs neither LLVM nor MLIR: the shared object is opened with the system loader.

#![allow(unsafe_code)]

use crate::exec::{ExecError, ExecErrorKind, Executor, PackedFn};
use crate::manifest::Manifest;
use std::path::Path;

/// The manifest's file name inside an artifact.
pub const MANIFEST: &str = "manifest.json";
/// The shared object's file name inside an artifact.
pub const KERNELS: &str = "kernels.so";

/// A loaded artifact: its executor and the library that holds its code.
pub struct Artifact {
    executor: Executor,
    // Declared after the executor so the code outlives every use of its entry points.
    _lib: libloading::Library,
}

fn err(message: String) -> ExecError {
    ExecError {
        messages: vec![message],
        kind: ExecErrorKind::Run,
    }
}

impl Artifact {
    /// Loads `dir` (`NAME.ftlpack`).
    pub fn load(dir: &Path) -> Result<Artifact, ExecError> {
        let text = std::fs::read_to_string(dir.join(MANIFEST))
            .map_err(|e| err(format!("{}: {e}", dir.join(MANIFEST).display())))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            err(format!(
                "{}: not an FTL manifest: {e}",
                dir.join(MANIFEST).display()
            ))
        })?;
        let so = dir.join(KERNELS);
        // SAFETY: loading runs the library's initializers; an artifact's shared object is
        // compiled kernels with no initializers of their own.
        let lib = unsafe { libloading::Library::new(&so) }
            .map_err(|e| err(format!("{}: {e}", so.display())))?;
        let executor = Executor::new(manifest, |symbol| {
            let name = format!("_mlir_{symbol}");
            // SAFETY: `_mlir_<symbol>` is the packed wrapper with signature `void(void **)`;
            // the library stays loaded as long as the returned Artifact (which owns it).
            unsafe { lib.get::<PackedFn>(name.as_bytes()).ok().map(|f| *f) }
        })?;
        Ok(Artifact {
            executor,
            _lib: lib,
        })
    }

    /// The executor (run it on inputs).
    pub fn executor(&self) -> &Executor {
        &self.executor
    }
}

/// Writes `manifest` into the artifact directory `dir` (created if missing).
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let text = serde_json::to_string_pretty(manifest).map_err(std::io::Error::other)?;
    std::fs::write(dir.join(MANIFEST), text)
}
