//! `.ftlpack` artifacts: a directory holding `kernels.so` (the compiled kernels, with MLIR's
//! packed entry points `_mlir_<symbol>`) — or, for a CUDA target, `kernels.ptx` (one PTX
//! module, loaded on CUDA device 0) — and `manifest.json`: the format version, the [`Target`]
//! the code was compiled for, the SHA-256 of the kernels file and the [`Manifest`]. Loading
//! needs neither LLVM nor MLIR.
//!
//! An artifact is native code: load only artifacts you trust. What the loader does guarantee
//! is that nothing reaches native code unless the artifact is whole and consistent: both files
//! are regular files of bounded size, the format and target match this machine, the manifest
//! passes [`crate::validate`], the shared object's bytes hash to the recorded digest, and the
//! shared object embeds the digest of this very manifest (so neither file can be changed or
//! swapped for another build's without the other). The
//! bytes that were hashed are the bytes loaded (copied into a sealed in-memory file first), so
//! the file cannot change between the check and the load.

#![allow(unsafe_code)]

use crate::exec::{ExecError, ExecErrorKind, Executor, PackedFn};
use crate::manifest::Manifest;
use crate::target::Target;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// The manifest's file name inside an artifact.
pub const MANIFEST: &str = "manifest.json";
/// The shared object's file name inside an artifact.
pub const KERNELS: &str = "kernels.so";
/// The PTX module's file name inside a CUDA artifact.
pub const KERNELS_PTX: &str = "kernels.ptx";
/// The artifact format this runtime reads and writes.
pub const FORMAT: u32 = 1;

/// What precedes the manifest's digest inside `kernels.so` (a constant the compiler emits
/// into the library; a comment in `kernels.ptx`), tying the code to the one manifest it was
/// built for.
pub const DIGEST_MARK: &str = "ftl-manifest-sha256=";

/// The largest `manifest.json` the loader reads.
const MAX_MANIFEST_BYTES: u64 = 256 << 20;
/// The largest `kernels.so` the loader reads.
const MAX_KERNELS_BYTES: u64 = 1 << 30;

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactHeader {
    /// [`FORMAT`].
    pub format: u32,
    /// The CPU the kernels were compiled for.
    pub target: Target,
    /// SHA-256 of `kernels.so`, lowercase hex.
    pub kernels_sha256: String,
    /// The entry.
    pub manifest: Manifest,
}

/// A loaded artifact: its executor and the library that holds its code.
pub struct Artifact {
    executor: Executor,
    target: Target,
    // Declared after the executor so the code outlives every use of its entry points.
    _code: Code,
}

/// Where a loaded artifact's code lives.
enum Code {
    /// A shared object.
    Native {
        _lib: libloading::Library,
        /// The sealed copy the library was loaded from (Linux), open while the library is
        /// loaded: the loader knows a library by its path `/proc/self/fd/N`, so a second
        /// artifact loaded through a reused descriptor number would be taken for the first one.
        #[cfg(target_os = "linux")]
        _copy: std::fs::File,
    },
    /// A PTX module on the CUDA device the executor holds.
    Device,
}

/// The kernels file of an artifact for `target`.
pub fn kernels_file(target: &Target) -> &'static str {
    if target.is_cuda() {
        KERNELS_PTX
    } else {
        KERNELS
    }
}

fn err(message: String) -> ExecError {
    ExecError {
        messages: vec![message],
        kind: ExecErrorKind::InvalidManifest,
    }
}

/// Reads the regular file `path` (a symbolic link, FIFO, device or directory is refused before
/// it is read), at most `max` bytes.
fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, ExecError> {
    let at = |m: String| err(format!("{}: {m}", path.display()));
    let meta = std::fs::symlink_metadata(path).map_err(|e| at(e.to_string()))?;
    if !meta.is_file() {
        return Err(at("not a regular file".into()));
    }
    if meta.len() > max {
        return Err(at(format!(
            "{} bytes, more than the {max} an artifact may hold",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
        .map_err(|e| at(e.to_string()))?;
    if bytes.len() as u64 > max {
        return Err(at("grew while it was read".into()));
    }
    Ok(bytes)
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The digest of `manifest` that its library embeds after [`DIGEST_MARK`]: SHA-256 of its
/// JSON (which reads back to the same manifest: floats round-trip exactly).
pub fn manifest_digest(manifest: &Manifest) -> String {
    sha256_hex(&serde_json::to_vec(manifest).unwrap_or_default())
}

/// The manifest digest a library embeds, when it embeds exactly one.
fn embedded_digest(so: &[u8]) -> Option<&[u8]> {
    let mark = DIGEST_MARK.as_bytes();
    let mut found = so
        .windows(mark.len())
        .enumerate()
        .filter(|(_, w)| *w == mark)
        .map(|(k, _)| so.get(k + mark.len()..k + mark.len() + 64));
    match (found.next(), found.next()) {
        (Some(Some(digest)), None) => Some(digest),
        _ => None,
    }
}

/// Whether `dir` holds an artifact's manifest (what `ftc build -o` may replace).
pub fn is_artifact(dir: &Path) -> bool {
    read_regular(&dir.join(MANIFEST), MAX_MANIFEST_BYTES)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get("format").is_some() && v.get("manifest").is_some())
}

/// Finishes the artifact being built in `dir`, which already holds its kernels file
/// ([`kernels_file`]): writes `manifest.json` with the file's digest. Written last, so a
/// directory with a manifest is complete.
pub fn seal(dir: &Path, target: &Target, manifest: &Manifest) -> Result<(), String> {
    let so = read_regular(&dir.join(kernels_file(target)), MAX_KERNELS_BYTES)
        .map_err(|e| e.to_string())?;
    let header = ArtifactHeader {
        format: FORMAT,
        target: target.clone(),
        kernels_sha256: sha256_hex(&so),
        manifest: manifest.clone(),
    };
    let text = serde_json::to_string_pretty(&header).map_err(|e| e.to_string())?;
    std::fs::write(dir.join(MANIFEST), text).map_err(|e| format!("{}: {e}", dir.display()))
}

/// An anonymous, sealed in-memory file holding `bytes`, opened by the loader through
/// `/proc/self/fd`.
#[cfg(target_os = "linux")]
fn sealed_copy(bytes: &[u8]) -> std::io::Result<std::fs::File> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create takes a NUL-terminated name and flags; a non-negative result is a
    // new file descriptor that we own.
    let fd = unsafe {
        libc::memfd_create(
            c"ftl-kernels".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nothing else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(bytes)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

impl Artifact {
    /// Loads `dir` (`NAME.ftlpack`) after checking it (see the module comment).
    pub fn load(dir: &Path) -> Result<Artifact, ExecError> {
        let manifest_path = dir.join(MANIFEST);
        let text = read_regular(&manifest_path, MAX_MANIFEST_BYTES)?;
        // Parsed once: the format is read first, so an artifact of another format gets the
        // rebuild hint rather than a field error.
        let value = serde_json::from_slice::<serde_json::Value>(&text).ok();
        let format = value
            .as_ref()
            .and_then(|v| v.get("format").and_then(|f| f.as_u64()));
        let value = match value {
            Some(v) if format == Some(u64::from(FORMAT)) => v,
            _ => {
                return Err(err(format!(
                    "{}: not an FTL artifact of format {FORMAT} (rebuild it with this version's `ftc build -o`)",
                    manifest_path.display()
                )))
            }
        };
        let header: ArtifactHeader = serde_json::from_value(value).map_err(|e| {
            err(format!(
                "{}: not an FTL manifest: {e}",
                manifest_path.display()
            ))
        })?;
        if let Some(why) = header.target.unsupported_here() {
            return Err(err(format!(
                "{} cannot run on this machine: {why}",
                dir.display()
            )));
        }
        crate::validate::validate(&header.manifest)
            .map_err(|e| err(format!("{}: {e}", manifest_path.display())))?;
        let so_path = dir.join(kernels_file(&header.target));
        let so = read_regular(&so_path, MAX_KERNELS_BYTES)?;
        if sha256_hex(&so) != header.kernels_sha256 {
            return Err(err(format!(
                "{}: its digest is not the one {} records (the files come from different builds, or were changed)",
                so_path.display(),
                MANIFEST
            )));
        }
        if embedded_digest(&so) != Some(manifest_digest(&header.manifest).as_bytes()) {
            return Err(err(format!(
                "{}: the library was not built for this manifest (the manifest was changed, \
                 or comes from another build)",
                so_path.display()
            )));
        }
        if header.target.is_cuda() {
            return Artifact::on_cuda(header, &so, &so_path);
        }
        #[cfg(target_os = "linux")]
        let (_copy, path) = {
            use std::os::fd::AsRawFd;
            let copy = sealed_copy(&so).map_err(|e| err(format!("{}: {e}", so_path.display())))?;
            let path = std::path::PathBuf::from(format!("/proc/self/fd/{}", copy.as_raw_fd()));
            (copy, path)
        };
        #[cfg(not(target_os = "linux"))]
        let path = so_path.clone();
        // SAFETY: loading runs the library's initializers; the bytes are the ones whose digest
        // the manifest records, and `ftc` links kernels without start files (no initializers).
        let lib = unsafe { libloading::Library::new(&path) }
            .map_err(|e| err(format!("{}: {e}", so_path.display())))?;
        let executor = Executor::new(header.manifest, |symbol| {
            let name = format!("_mlir_{symbol}");
            // SAFETY: `_mlir_<symbol>` is the packed wrapper with signature `void(void **)`;
            // the library stays loaded as long as the returned Artifact (which owns it).
            unsafe { lib.get::<PackedFn>(name.as_bytes()).ok().map(|f| *f) }
        })?;
        Ok(Artifact {
            executor,
            target: header.target,
            _code: Code::Native {
                _lib: lib,
                #[cfg(target_os = "linux")]
                _copy,
            },
        })
    }

    /// A checked CUDA artifact's PTX loaded on device 0, which must run PTX for its chip.
    fn on_cuda(header: ArtifactHeader, ptx: &[u8], path: &Path) -> Result<Artifact, ExecError> {
        let ptx = std::str::from_utf8(ptx)
            .ok()
            .filter(|t| !t.contains('\0'))
            .ok_or_else(|| err(format!("{}: not PTX text", path.display())))?;
        let (ctx, chip) = crate::cuda::open(0)?;
        if !crate::cuda::runs(chip, &header.target.cpu) {
            return Err(ExecError {
                messages: vec![format!(
                    "{}: made for {}, which this device ({chip} code) cannot run; rebuild it \
                     with `ftc build --target cuda:{chip}`",
                    path.display(),
                    header.target.cpu
                )],
                kind: ExecErrorKind::Device,
            });
        }
        let device = crate::cuda::CudaDevice::load(ctx, ptx, &header.manifest)?;
        let executor = Executor::on_device(header.manifest, std::sync::Arc::new(device))?;
        Ok(Artifact {
            executor,
            target: header.target,
            _code: Code::Device,
        })
    }

    /// The executor (run it on inputs).
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// The CPU (or the GPU chip) the kernels were compiled for.
    pub fn target(&self) -> &Target {
        &self.target
    }
}
