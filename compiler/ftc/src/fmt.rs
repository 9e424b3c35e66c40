//! `ftc fmt`: `.ftl` files rewritten in the canonical layout
//! ([`ftl_syntax::pretty::format_source`]: the pretty printer's layout with the source's comments
//! and blank lines), or, with `--check`, a list of the files that are not.

use crate::driver::{Outcome, Status};
use ftl_front::resolve::{read_one, syntax_diagnostic};
use ftl_front::{render_diagnostics, MessageFormat};
use std::path::PathBuf;

/// Formats each of `files` in place (through the runtime's atomic output writer), or with
/// `check` only reports the ones whose text is not canonical. A file that cannot be read or
/// does not parse is reported with its diagnostics and left as it is. Exit status 1 when any
/// file failed or, with `check`, is not formatted.
pub fn format_files(files: &[PathBuf], check: bool, format: MessageFormat) -> Outcome {
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let mut failed = false;
    for path in files {
        let (sources, read, mut diags) = read_one(path);
        let Some((file, text)) = read else {
            stderr.push_str(&render_diagnostics(&diags, &sources, format));
            failed = true;
            continue;
        };
        let formatted = match ftl_syntax::pretty::format_source(&text) {
            Ok(f) => f,
            Err(errors) => {
                diags.extend(errors.iter().map(|e| syntax_diagnostic(file, e)));
                stderr.push_str(&render_diagnostics(&diags, &sources, format));
                failed = true;
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        if check {
            stdout.push_str(&format!("{} is not formatted\n", path.display()));
            failed = true;
        } else if let Err(e) = ftl_runtime::output::write_bytes(path, formatted.as_bytes()) {
            let failure = ftl_ir::pipeline::Failure::from(e);
            stderr.push_str(&failure.render());
            failed = true;
        } else {
            stdout.push_str(&format!("formatted {}\n", path.display()));
        }
    }
    Outcome {
        stdout,
        stderr,
        status: if failed {
            Status::Failure
        } else {
            Status::Success
        },
    }
}
