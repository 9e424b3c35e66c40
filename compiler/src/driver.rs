//! The driver: one entry per `ftc` command, returning text and diagnostics instead of printing,
//! so that tests call exactly what the CLI calls.

use crate::diagnostic::{self, Diagnostic};
use crate::resolve::{self, LoadOptions, Program};
use crate::{check, hir};
use std::path::PathBuf;

/// How diagnostics are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MessageFormat {
    /// ariadne reports with source excerpts.
    #[default]
    Human,
    /// `file:line:col: error[E…]: message`, one per line.
    Short,
    /// One JSON object per line.
    Json,
}

/// The outcome of front-end work on some files.
pub struct Analysis {
    /// Every file read.
    pub program: Program,
    /// The typed HIR (complete only when there are no diagnostics).
    pub hir: hir::Hir,
    /// Errors, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Analysis {
    /// Renders the diagnostics in `format`.
    pub fn render(&self, format: MessageFormat) -> String {
        match format {
            MessageFormat::Human => {
                diagnostic::render_text(&self.diagnostics, &self.program.sources)
            }
            MessageFormat::Short => {
                diagnostic::render_short(&self.diagnostics, &self.program.sources)
            }
            MessageFormat::Json => {
                diagnostic::render_json(&self.diagnostics, &self.program.sources)
            }
        }
    }
}

/// Loads, parses and checks `paths` with everything they import.
pub fn analyze(paths: &[PathBuf], opts: &LoadOptions) -> Analysis {
    let (program, mut diagnostics) = resolve::load(paths, opts);
    let checked = check::check(&program);
    diagnostics.extend(checked.diagnostics);
    diagnostics.sort_by_key(|d| d.primary().map(|l| (l.file, l.span.start, l.span.end)));
    diagnostics.dedup();
    Analysis {
        program,
        hir: checked.hir,
        diagnostics,
    }
}

/// `ftc build --emit ast`: the canonical source of each root file.
pub fn emit_ast(analysis: &Analysis) -> String {
    let roots = &analysis.program.roots;
    roots
        .iter()
        .map(|id| ftl_syntax::pretty::print_file(&analysis.program.module(*id).ast))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `ftc build --emit hir`: the typed HIR of the root files' declarations.
pub fn emit_hir(analysis: &Analysis) -> String {
    let roots: Vec<&str> = analysis
        .program
        .roots
        .iter()
        .map(|id| analysis.program.module(*id).name.as_str())
        .collect();
    let mut out = String::new();
    for decl in analysis.hir.decls.iter().flatten() {
        let module = decl.name.split("::").next().unwrap_or("");
        if roots.contains(&module) {
            out.push_str(&hir::print_decl(&analysis.hir, decl));
            out.push('\n');
        }
    }
    out
}

/// `ftc explain CODE`: the long explanation.
pub fn explain(code: &str) -> Option<String> {
    let c = crate::codes::Code::from_id(code)?;
    Some(format!(
        "{}: {}\n\n{}\n",
        c.id(),
        c.title(),
        c.explanation()
    ))
}
