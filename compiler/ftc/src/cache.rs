//! The on-disk compile cache of `ftc run`: compiled entries as `.ftlpack` artifacts (manifest +
//! shared object, the format `ftl-run` runs), so running an entry again skips LLVM.
//!
//! The key is the SHA-256 of everything the artifact is made from: the compiler's version, the
//! runtime's artifact format, the target CPU and its features, the runtime manifest and the
//! MLIR module of the fused plan. The graph behind them captures the file and its imports, the
//! entry, static options and input dtypes, so a change to any of those, or to the compiler's
//! lowering, fusion or code generation, is a new key; shapes are not part of it (dims are
//! symbolic). Entries are written through the runtime's atomic directory writer and loaded with
//! the artifact loader's checks (digests, CPU), so concurrent processes see a whole artifact or
//! none; a damaged entry is rebuilt. Only file names of the form `<64 hex digits>.ftlpack` are
//! read, written or removed.

use ftl_ir::pipeline::Failure;
use ftl_ir::Graph;
use ftl_plan::{fuse, manifest};
use ftl_runtime::artifact::{self, Artifact};
use ftl_runtime::target::Target;
use std::path::{Path, PathBuf};

/// The environment variable naming the cache directory (empty: no cache).
pub const CACHE_DIR_VAR: &str = "FTL_CACHE_DIR";

/// A cache directory.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

/// Whether a run found its kernels in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Loaded a cached artifact.
    Hit,
    /// Compiled, and stored the artifact for the next run.
    Stored,
}

impl Cache {
    /// The cache in `dir`.
    pub fn at(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    /// The cache the environment names: `$FTL_CACHE_DIR` (none when it is set but empty),
    /// else `$XDG_CACHE_HOME/ftl`, else `$HOME/.cache/ftl`.
    pub fn from_env() -> Option<Cache> {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        match std::env::var_os(CACHE_DIR_VAR) {
            Some(v) if v.is_empty() => None,
            Some(v) => Some(Cache::at(PathBuf::from(v))),
            None => var("XDG_CACHE_HOME")
                .map(|d| PathBuf::from(d).join("ftl"))
                .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache").join("ftl")))
                .map(Cache::at),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The compiled kernels of `g` for this machine: loaded from the cache, or compiled, stored
    /// and loaded.
    pub fn load_or_build(&self, g: &Graph) -> Result<(Artifact, Lookup), Failure> {
        let plan = fuse::fuse(g);
        let manifest = manifest::build(&plan).map_err(Failure::Internal)?;
        let target = Target::native();
        let module = crate::llvm::module_text(&plan)?;
        let manifest_json = serde_json::to_string(&manifest)
            .map_err(|e| Failure::Internal(format!("manifest: {e}")))?;
        let target_json = serde_json::to_string(&target)
            .map_err(|e| Failure::Internal(format!("target: {e}")))?;
        let key = artifact::sha256_hex(
            format!(
                "ftc {}\nformat {}\ntarget {target_json}\nmanifest {manifest_json}\n{module}",
                env!("CARGO_PKG_VERSION"),
                artifact::FORMAT,
            )
            .as_bytes(),
        );
        let path = self.dir.join(format!("{key}.ftlpack"));
        if path.is_dir() {
            if let Ok(a) = Artifact::load(&path) {
                return Ok((a, Lookup::Hit));
            }
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Failure::Internal(format!("cache {}: {e}", self.dir.display())))?;
        // Another process may store the same key meanwhile: its artifact is as good as ours.
        let written = crate::llvm::write_artifact(&plan, &path, &target);
        match Artifact::load(&path) {
            Ok(a) => Ok((a, Lookup::Stored)),
            Err(e) => Err(written.err().unwrap_or_else(|| Failure::from(e))),
        }
    }

    /// The cached artifacts: their paths, and the bytes of each.
    fn entries(&self) -> Vec<(PathBuf, u64)> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| is_entry_name(&e.file_name().to_string_lossy()))
            .map(|e| {
                let bytes = std::fs::read_dir(e.path())
                    .map(|files| {
                        files
                            .flatten()
                            .filter_map(|f| f.metadata().ok())
                            .map(|m| m.len())
                            .sum()
                    })
                    .unwrap_or(0);
                (e.path(), bytes)
            })
            .collect()
    }

    /// `ftc cache info`: where the cache is, how many entries and bytes it holds.
    pub fn info(&self) -> String {
        let entries = self.entries();
        let bytes: u64 = entries.iter().map(|(_, b)| b).sum();
        format!(
            "cache: {}\nentries: {}\nsize: {:.1} KiB\n",
            self.dir.display(),
            entries.len(),
            bytes as f64 / 1024.0
        )
    }

    /// `ftc cache clear`: removes every cached artifact; the number removed.
    pub fn clear(&self) -> Result<usize, String> {
        let entries = self.entries();
        for (path, _) in &entries {
            std::fs::remove_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(entries.len())
    }
}

/// `<64 lowercase hex digits>.ftlpack`: the only names the cache touches.
fn is_entry_name(name: &str) -> bool {
    name.strip_suffix(".ftlpack").is_some_and(|k| {
        k.len() == 64
            && k.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::is_entry_name;

    #[test]
    fn only_hex_keys_are_entries() {
        let key = "0123456789abcdef".repeat(4);
        assert!(is_entry_name(&format!("{key}.ftlpack")));
        assert!(!is_entry_name("..ftlpack"));
        assert!(!is_entry_name(&format!("{}.ftlpack", key.to_uppercase())));
        assert!(!is_entry_name(&format!("{key}.tmp")));
    }
}
