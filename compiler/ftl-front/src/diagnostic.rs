//! Diagnostics are values: a code, a message, labelled spans and help. The driver renders them
//! with ariadne (or as JSON); nothing below the driver prints.

use crate::codes::Code;
use crate::source::{FileId, SourceMap};
use ftl_syntax::ast::Span;

/// A place in a source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// Which file.
    pub file: FileId,
    /// Which bytes.
    pub span: Span,
}

/// A labelled span of a diagnostic.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    /// Where.
    pub at: Location,
    /// What this place has to do with the error (may be empty).
    pub message: String,
}

/// One error found in the user's input.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// The error code (`ftc explain` describes it).
    pub code: Code,
    /// One line saying what is wrong.
    pub message: String,
    /// The primary location first, then secondary ones.
    pub labels: Vec<Label>,
    /// How to fix it, when there is something to say.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at `at` whose primary label repeats nothing.
    pub fn new(code: Code, at: Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            message: message.into(),
            labels: vec![Label {
                at,
                message: String::new(),
            }],
            help: None,
        }
    }

    /// A diagnostic with no location (a file that cannot be read has none).
    pub fn unlocated(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            message: message.into(),
            labels: vec![],
            help: None,
        }
    }

    /// Sets the primary label's text.
    pub fn with_label(mut self, message: impl Into<String>) -> Diagnostic {
        if let Some(first) = self.labels.first_mut() {
            first.message = message.into();
        }
        self
    }

    /// Adds a secondary label.
    pub fn with_secondary(mut self, at: Location, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            at,
            message: message.into(),
        });
        self
    }

    /// Adds help text.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// The primary location, if any.
    pub fn primary(&self) -> Option<Location> {
        self.labels.first().map(|l| l.at)
    }
}

/// Renders diagnostics as ariadne reports (plain text, no colour).
pub fn render_text(diags: &[Diagnostic], sources: &SourceMap) -> String {
    use ariadne::{Config, IndexType, Label as ALabel, Report, ReportKind};
    let mut out = Vec::new();
    let name = |file: FileId| sources.display_name(file);
    // One cache for every report: ariadne indexes each file's lines once.
    let mut cache = ariadne::sources(
        sources
            .files()
            .map(|(id, f)| (name(id), f.text.clone()))
            .collect::<Vec<_>>(),
    );
    for d in diags {
        let Some(primary) = d.primary() else {
            out.extend_from_slice(format!("error[{}]: {}\n", d.code.id(), d.message).as_bytes());
            if let Some(help) = &d.help {
                out.extend_from_slice(format!("  = help: {help}\n").as_bytes());
            }
            continue;
        };
        let range = |span: Span| span.start..span.end;
        let mut report =
            Report::build(ReportKind::Error, (name(primary.file), range(primary.span)))
                .with_config(
                    // Spans are byte offsets; ariadne counts chars unless told.
                    Config::default()
                        .with_color(false)
                        .with_index_type(IndexType::Byte),
                )
                .with_code(d.code.id())
                .with_message(&d.message);
        for label in &d.labels {
            let mut l = ALabel::new((name(label.at.file), range(label.at.span)));
            if !label.message.is_empty() {
                l = l.with_message(&label.message);
            }
            report = report.with_label(l);
        }
        if let Some(help) = &d.help {
            report = report.with_help(help);
        }
        report
            .finish()
            .write(&mut cache, &mut out)
            .expect("writing to a Vec cannot fail");
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Renders diagnostics as one JSON object per line, for tools.
pub fn render_json(diags: &[Diagnostic], sources: &SourceMap) -> String {
    let mut out = String::new();
    for d in diags {
        let labels: Vec<serde_json::Value> = d
            .labels
            .iter()
            .map(|l| {
                let (line, col) = sources.line_col(l.at.file, l.at.span.start);
                serde_json::json!({
                    "file": sources.display_name(l.at.file),
                    "start": l.at.span.start,
                    "end": l.at.span.end,
                    "line": line,
                    "column": col,
                    "message": l.message,
                })
            })
            .collect();
        let value = serde_json::json!({
            "code": d.code.id(),
            "message": d.message,
            "labels": labels,
            "help": d.help,
        });
        out.push_str(&value.to_string());
        out.push('\n');
    }
    out
}

/// The one-line `file:line:col: error[E…]: message` form, as compilers print for editors.
pub fn render_short(diags: &[Diagnostic], sources: &SourceMap) -> String {
    let mut out = String::new();
    for d in diags {
        match d.primary() {
            Some(at) => {
                let (line, col) = sources.line_col(at.file, at.span.start);
                out.push_str(&format!(
                    "{}:{line}:{col}: error[{}]: {}\n",
                    sources.display_name(at.file),
                    d.code.id(),
                    d.message
                ));
            }
            None => out.push_str(&format!("error[{}]: {}\n", d.code.id(), d.message)),
        }
    }
    out
}
