//! The front end as one call: load, parse and check files into an [`Analysis`], and the text
//! forms of its stages (`ftc build --emit ast|hir`).

use crate::diagnostic::{self, Diagnostic};
use crate::hir::{self, Decl};
use crate::resolve::{self, LoadOptions, Program};
use crate::source::SourceMap;
use crate::{check, codes};
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

/// How many diagnostics are printed for people; the rest are counted.
pub const MAX_SHOWN: usize = 100;

impl Analysis {
    /// Renders the diagnostics in `format`: every one for tools (JSON), the first
    /// [`MAX_SHOWN`] for people, then how many more there are.
    pub fn render(&self, format: MessageFormat) -> String {
        render_diagnostics(&self.diagnostics, &self.program.sources, format)
    }

    /// The diagnostics in `format`, then (for people, not for machines) the
    /// `error: N errors found` summary line.
    pub fn render_with_summary(&self, format: MessageFormat) -> String {
        let mut text = self.render(format);
        if format == MessageFormat::Human {
            let n = self.diagnostics.len();
            text.push_str(&format!(
                "error: {n} error{} found\n",
                if n == 1 { "" } else { "s" }
            ));
        }
        text
    }

    /// Whether a declaration belongs to one of the root files (not to an import).
    pub fn in_roots(&self, decl: &Decl) -> bool {
        self.program.roots.contains(&decl.module)
    }

    /// The declarations of the root files, in declaration order, with their ids.
    pub fn root_decls(&self) -> impl Iterator<Item = (hir::DeclId, &Decl)> {
        self.hir
            .decls
            .iter()
            .enumerate()
            .filter_map(|(i, d)| Some((hir::DeclId(i as u32), d.as_ref()?)))
            .filter(|(_, d)| self.in_roots(d))
    }
}

/// Renders `diagnostics` in `format`: every one for tools (JSON), the first [`MAX_SHOWN`] for
/// people, then how many more there are.
pub fn render_diagnostics(
    diagnostics: &[Diagnostic],
    sources: &SourceMap,
    format: MessageFormat,
) -> String {
    let shown = &diagnostics[..diagnostics.len().min(MAX_SHOWN)];
    let hidden = diagnostics.len() - shown.len();
    let more = if hidden > 0 {
        format!("error: … and {hidden} more errors (the first {MAX_SHOWN} are shown)\n")
    } else {
        String::new()
    };
    match format {
        MessageFormat::Human => diagnostic::render_text(shown, sources) + &more,
        MessageFormat::Short => diagnostic::render_short(shown, sources) + &more,
        MessageFormat::Json => diagnostic::render_json(diagnostics, sources),
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
    let mut out = String::new();
    for (_, decl) in analysis.root_decls() {
        out.push_str(&hir::print_decl(&analysis.hir, decl));
        out.push('\n');
    }
    out
}

/// `ftc explain CODE`: the long explanation.
pub fn explain(code: &str) -> Option<String> {
    let c = codes::Code::from_id(code)?;
    Some(format!(
        "{}: {}\n\n{}\n",
        c.id(),
        c.title(),
        c.explanation()
    ))
}
