//! `ftc doc`: the standard-library reference ([`ftl_front::doc`]) written as `stdlib.md` and
//! `stdlib.html` into the directory given.

use crate::driver::{Outcome, Status};
use std::path::{Path, PathBuf};

/// The library's `.ftl` files as (path under its root, text): those under `lib` when given
/// (read as the loader reads sources; symbolic links are not followed), else the library built
/// into `ftc`. `Err`: the error lines to print.
pub fn library_files(lib: Option<&Path>) -> Result<Vec<(String, String)>, String> {
    let Some(lib) = lib else {
        return Ok(ftl_front::stdlib::FILES
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect());
    };
    let mut files = Vec::new();
    let mut dirs = vec![lib.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let cannot_read = |what: &Path, e: std::io::Error| {
            let code = ftl_front::codes::Code::CannotRead.id();
            format!("error[{code}]: cannot read `{}`: {e}\n", what.display())
        };
        let entries = std::fs::read_dir(&dir).map_err(|e| cannot_read(&dir, e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| cannot_read(&path, e))?;
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "ftl") {
                // Read as the loader reads sources (size limit, UTF-8).
                let (sources, read, diags) = ftl_front::resolve::read_one(&path);
                let Some((_, text)) = read else {
                    return Err(ftl_front::render_diagnostics(
                        &diags,
                        &sources,
                        ftl_front::MessageFormat::Short,
                    ));
                };
                let rel = path.strip_prefix(lib).unwrap_or(&path);
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                files.push((rel.join("/"), text));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The reference's two renderings, by file name.
pub fn render(files: &[(String, String)]) -> [(&'static str, String); 2] {
    let r = ftl_front::doc::reference(files);
    [
        ("stdlib.md", ftl_front::doc::render_markdown(&r)),
        ("stdlib.html", ftl_front::doc::render_html(&r)),
    ]
}

/// Writes `stdlib.md` and `stdlib.html` for the library (`lib`, else the built-in one) into
/// `out`, an existing directory, through the runtime's atomic output writer.
pub fn write_reference(lib: Option<&Path>, out: &Path) -> Outcome {
    let fail = |code: ftl_front::codes::Code, message: String| Outcome {
        stdout: String::new(),
        stderr: format!("error[{}]: {message}\n", code.id()),
        status: Status::Failure,
    };
    let files = match library_files(lib) {
        Ok(f) => f,
        Err(stderr) => {
            return Outcome {
                stdout: String::new(),
                stderr,
                status: Status::Failure,
            }
        }
    };
    if !out.is_dir() {
        return fail(
            ftl_front::codes::Code::BadOutput,
            format!("`{}` is not a directory", out.display()),
        );
    }
    let mut stdout = String::new();
    for (name, text) in render(&files) {
        let path: PathBuf = out.join(name);
        if let Err(e) = ftl_runtime::output::write_bytes(&path, text.as_bytes()) {
            return Outcome {
                stdout,
                stderr: ftl_ir::pipeline::Failure::from(e).render(),
                status: Status::Failure,
            };
        }
        stdout.push_str(&format!("wrote {}\n", path.display()));
    }
    Outcome {
        stdout,
        stderr: String::new(),
        status: Status::Success,
    }
}
