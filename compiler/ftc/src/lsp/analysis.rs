//! The server's state: the open documents and, per document, the front end's analysis of it
//! with its imports (open documents stand in for their files on disk).

use super::text;
use ftl_front::diagnostic::Diagnostic;
use ftl_front::resolve::{LoadOptions, ModuleId};
use ftl_front::source::FileId;
use ftl_front::Analysis;
use lsp_types::{DiagnosticRelatedInformation, Location, NumberOrString, Url};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The open documents and their analyses.
pub struct Workspace {
    lib: Option<PathBuf>,
    /// Open documents by canonical path: their URI and text.
    docs: HashMap<PathBuf, (Url, String)>,
    /// The last analysis of each open document.
    analyses: HashMap<PathBuf, Analysis>,
}

/// A document's analysis and its module in it.
pub struct Doc<'w> {
    /// The analysis (the document and everything it imports).
    pub analysis: &'w Analysis,
    /// The document's module in it.
    pub module: ModuleId,
    /// The document's text.
    pub text: &'w str,
}

impl Workspace {
    /// No document open yet.
    pub fn new(lib: Option<PathBuf>) -> Workspace {
        Workspace {
            lib,
            docs: HashMap::new(),
            analyses: HashMap::new(),
        }
    }

    /// Opens or replaces a document and analyzes it and every other open document (one may
    /// import it): the diagnostics to publish, the changed document's first.
    pub fn open(&mut self, uri: Url, text: String) -> Vec<(Url, Vec<lsp_types::Diagnostic>)> {
        let Some(path) = canonical(&uri) else {
            return Vec::new();
        };
        self.docs.insert(path.clone(), (uri, text));
        let mut order: Vec<PathBuf> = self.docs.keys().filter(|p| **p != path).cloned().collect();
        order.sort();
        order.insert(0, path);
        let opts = LoadOptions {
            lib_dir: self.lib.clone(),
            root: None,
            overlay: self
                .docs
                .iter()
                .map(|(p, (_, t))| (p.clone(), t.clone()))
                .collect(),
        };
        order
            .into_iter()
            .filter_map(|p| self.analyze(p, &opts))
            .collect()
    }

    /// Analyzes the open document at `path` with `opts` (open documents overlaying their
    /// files): its URI and diagnostics.
    fn analyze(
        &mut self,
        path: PathBuf,
        opts: &LoadOptions,
    ) -> Option<(Url, Vec<lsp_types::Diagnostic>)> {
        let uri = self.docs.get(&path)?.0.clone();
        let analysis = ftl_front::analyze(std::slice::from_ref(&path), opts);
        let diagnostics = self.lsp_diagnostics(&analysis, &path);
        self.analyses.insert(path, analysis);
        Some((uri, diagnostics))
    }

    /// Forgets a closed document.
    pub fn close(&mut self, uri: &Url) {
        if let Some(path) = canonical(uri) {
            self.docs.remove(&path);
            self.analyses.remove(&path);
        }
    }

    /// The analysis of the open document `uri`.
    pub fn doc(&self, uri: &Url) -> Option<Doc<'_>> {
        let path = canonical(uri)?;
        let analysis = self.analyses.get(&path)?;
        let (_, text) = self.docs.get(&path)?;
        let file = analysis
            .program
            .sources
            .files()
            .find(|(_, f)| f.path == path)
            .map(|(id, _)| id)?;
        let module = analysis
            .program
            .modules
            .iter()
            .position(|m| m.file == file)?;
        Some(Doc {
            analysis,
            module: ModuleId(module as u32),
            text,
        })
    }

    /// The URI of a file of an analysis: its path, or for a file of the embedded library a
    /// copy of it under the temporary directory (written once, read-only for the editor).
    pub fn uri_of(&self, analysis: &Analysis, file: FileId) -> Option<Url> {
        let source = analysis.program.sources.get(file);
        if ftl_front::stdlib::is_embedded(&source.path) {
            let rel = source.path.strip_prefix(ftl_front::stdlib::ROOT).ok()?;
            let copy = std::env::temp_dir()
                .join(format!("ftl-stdlib-{}", env!("CARGO_PKG_VERSION")))
                .join(rel);
            let current = std::fs::read_to_string(&copy).ok();
            if current.as_deref() != Some(source.text.as_str()) {
                std::fs::create_dir_all(copy.parent()?).ok()?;
                ftl_runtime::output::write_bytes(&copy, source.text.as_bytes()).ok()?;
            }
            return Url::from_file_path(copy).ok();
        }
        Url::from_file_path(&source.path).ok()
    }

    /// The analysis' diagnostics as LSP diagnostics of the document at `path`: its own at their
    /// ranges, those of imported files at the file's start naming the file.
    fn lsp_diagnostics(&self, analysis: &Analysis, path: &Path) -> Vec<lsp_types::Diagnostic> {
        let sources = &analysis.program.sources;
        let doc_text = self.docs.get(path).map_or("", |(_, t)| t.as_str());
        analysis
            .diagnostics
            .iter()
            .map(|d| {
                let primary = d.primary();
                let here = primary.filter(|l| sources.get(l.file).path == path);
                let range = match here {
                    Some(l) => text::range(doc_text, l.span.start, l.span.end),
                    None => lsp_types::Range::default(),
                };
                let mut message = d.message.clone();
                if let (Some(l), None) = (primary, here) {
                    message = format!(
                        "in {}: {message}",
                        ftl_front::source::display_path(&sources.get(l.file).path)
                    );
                }
                if let Some(help) = &d.help {
                    message.push_str(&format!("\nhelp: {help}"));
                }
                lsp_types::Diagnostic {
                    range,
                    severity: Some(lsp_types::DiagnosticSeverity::ERROR),
                    code: Some(NumberOrString::String(d.code.id().to_string())),
                    source: Some("ftc".into()),
                    message,
                    related_information: self.related(analysis, d),
                    ..lsp_types::Diagnostic::default()
                }
            })
            .collect()
    }

    /// A diagnostic's labels as related locations (the primary one included when it says
    /// something).
    fn related(
        &self,
        analysis: &Analysis,
        d: &Diagnostic,
    ) -> Option<Vec<DiagnosticRelatedInformation>> {
        let sources = &analysis.program.sources;
        let related: Vec<DiagnosticRelatedInformation> = d
            .labels
            .iter()
            .filter(|l| !l.message.is_empty())
            .filter_map(|l| {
                let file = sources.get(l.at.file);
                Some(DiagnosticRelatedInformation {
                    location: Location {
                        uri: self.uri_of(analysis, l.at.file)?,
                        range: text::range(&file.text, l.at.span.start, l.at.span.end),
                    },
                    message: l.message.clone(),
                })
            })
            .collect();
        (!related.is_empty()).then_some(related)
    }
}

/// The canonical path of a `file:` URI.
fn canonical(uri: &Url) -> Option<PathBuf> {
    let path = uri.to_file_path().ok()?;
    Some(std::fs::canonicalize(&path).unwrap_or(path))
}
