//! The standard library built into the compiler: every `.ftl` file of the repository's
//! `stdlib/`, embedded at build time (`build.rs`), so an installed `ftc` needs no source tree.
//! Paths under [`ROOT`] name these files; they are never read from disk.

use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/stdlib_files.rs"));

/// The virtual directory of the embedded library (`<stdlib>/core/logps.ftl`).
pub const ROOT: &str = "<stdlib>";

/// Whether `path` names a file of the embedded library.
pub fn is_embedded(path: &Path) -> bool {
    path.starts_with(ROOT)
}

/// The text of an embedded file, `None` when there is no such file.
pub fn source(path: &Path) -> Option<&'static str> {
    let rel = path.strip_prefix(ROOT).ok()?.to_str()?;
    FILES.iter().find(|(p, _)| *p == rel).map(|(_, text)| *text)
}

/// The import path of a library file named by its path under the library's root
/// (`core/logps.ftl` → `std.core.logps`).
pub fn import_path(rel: &str) -> String {
    let stem = rel.strip_suffix(".ftl").unwrap_or(rel);
    format!("std.{}", stem.replace(['/', '\\'], "."))
}
