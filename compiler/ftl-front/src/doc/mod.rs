//! The standard-library reference (`ftc doc`): each module's leading comment, and each
//! declaration's doc comment and signature (parameters with dtypes, dims and defaults,
//! `requires` conditions, outputs, metrics), read from the sources' syntax trees; rendered as
//! Markdown (`docs/stdlib.md`) and as one static HTML page with search.

mod html;
mod markdown;

pub use html::render_html;
pub use markdown::render_markdown;

use ftl_syntax::ast::{
    DeclKind, ExprKind, File, Item, ItemKind, ParamKind, RetType, StmtKind, TypeExpr,
};
use ftl_syntax::pretty::{print_expr, print_signature, print_type};
use std::collections::HashMap;

/// The reference of a library.
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    /// Modules by import path.
    pub modules: Vec<ModuleDoc>,
}

/// One `.ftl` file of the library.
#[derive(Clone, Debug, PartialEq)]
pub struct ModuleDoc {
    /// Its import path (`std.objectives.dpo`).
    pub path: String,
    /// Its leading comment block (Markdown).
    pub doc: String,
    /// Its declarations in source order.
    pub entries: Vec<EntryDoc>,
}

/// One declaration or attached block.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryDoc {
    /// `objective`, `adapter`, `step`, `fn`, `init`, `merge` or `unmerge`.
    pub kind: &'static str,
    /// Its name (`sigmoid`; `lora.init` for an attached block).
    pub name: String,
    /// Its doc comment (Markdown).
    pub doc: String,
    /// Its canonical header (`ftl_syntax::pretty::print_signature`).
    pub signature: String,
    /// Its parameters.
    pub params: Vec<ParamDoc>,
    /// Its `requires` conditions.
    pub requires: Vec<String>,
    /// What it gives back (`loss: f32`, `grad.x`, a step's named outputs…).
    pub outputs: Vec<String>,
    /// The metrics it logs.
    pub metrics: Vec<String>,
}

/// One parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDoc {
    /// Its name.
    pub name: String,
    /// `input`, `hyperparameter` (an input with a default), `const`, `param` or `static`.
    pub role: &'static str,
    /// Its type (`f32[B, T, V]`, `enum { a, b }`, a trailing `?` when optional).
    pub ty: String,
    /// Its default value.
    pub default: Option<String>,
}

/// The reference of `files`: (path under the library root, source text), each parsed; a file
/// that does not parse is documented from what parsed.
pub fn reference(files: &[(String, String)]) -> Reference {
    let mut modules: Vec<ModuleDoc> = files
        .iter()
        .map(|(path, text)| {
            let (file, _) = ftl_syntax::parse_file(text);
            module(path, text, &file)
        })
        .collect();
    modules.sort_by(|a, b| a.path.cmp(&b.path));
    Reference { modules }
}

fn module(path: &str, text: &str, file: &File) -> ModuleDoc {
    // Named results of the module's fns, for `metric ..f(…)`.
    let records: HashMap<&str, Vec<String>> = file
        .items
        .iter()
        .filter_map(|item| match &item.kind {
            ItemKind::Decl(d) => match &d.ret {
                Some(RetType::Named(fields)) => Some((
                    d.name.name.as_str(),
                    fields.iter().map(|(n, _)| n.name.clone()).collect(),
                )),
                _ => None,
            },
            _ => None,
        })
        .collect();
    ModuleDoc {
        path: crate::stdlib::import_path(path),
        doc: leading_comment(text, file),
        entries: file
            .items
            .iter()
            .filter_map(|item| entry(item, &records))
            .collect(),
    }
}

/// The module's doc: the first block of `//` lines before its first declaration.
fn leading_comment(text: &str, file: &File) -> String {
    let first_decl = file
        .items
        .iter()
        .find(|i| !matches!(i.kind, ItemKind::Import(_)))
        .map_or(text.len(), |i| i.span.start);
    let mut lines: Vec<String> = Vec::new();
    let mut last_end = None;
    for c in ftl_syntax::lexer::comments(text) {
        if c.span.start >= first_decl || c.text.starts_with("///") {
            break;
        }
        // The block ends at the first comment not on the line after the previous one.
        if last_end.is_some_and(|end| text[end..c.span.start].matches('\n').count() != 1) {
            break;
        }
        last_end = Some(c.span.end);
        let line = c.text.strip_prefix("//").unwrap_or(&c.text);
        lines.push(line.strip_prefix(' ').unwrap_or(line).to_string());
    }
    lines.join("\n")
}

fn entry(item: &Item, records: &HashMap<&str, Vec<String>>) -> Option<EntryDoc> {
    let signature = print_signature(item)?;
    let doc = item.doc.clone().unwrap_or_default();
    match &item.kind {
        ItemKind::Decl(d) => {
            let params: Vec<ParamDoc> = d.params.iter().map(param).collect();
            let mut outputs = Vec::new();
            let mut metrics = Vec::new();
            match d.kind {
                DeclKind::Objective => {
                    outputs.push("loss: f32".to_string());
                    outputs.extend(
                        d.params
                            .iter()
                            .filter(|p| differentiable(p))
                            .map(|p| format!("grad.{}", p.name.name)),
                    );
                    metrics = metric_names(&d.body.stmts, records);
                }
                DeclKind::Adapter => {
                    if let Some(ret) = &d.ret {
                        outputs.push(format!("y: {}", ret_text(ret)));
                    }
                    outputs.extend(
                        d.params
                            .iter()
                            .filter(|p| p.kind == ParamKind::Param || differentiable(p))
                            .map(|p| format!("grad.{} (given grad.y)", p.name.name)),
                    );
                }
                DeclKind::Step | DeclKind::Fn => {
                    if let Some(ret) = &d.ret {
                        outputs.extend(ret_outputs(ret));
                    }
                }
            }
            Some(EntryDoc {
                kind: d.kind.keyword(),
                name: d.name.name.clone(),
                doc,
                signature,
                params,
                requires: d.requires.iter().map(print_expr).collect(),
                outputs,
                metrics,
            })
        }
        ItemKind::Attached(a) => Some(EntryDoc {
            kind: a.kind.keyword(),
            name: a.entry_name(),
            doc,
            signature,
            params: a.params.iter().map(param).collect(),
            requires: a.requires.iter().map(print_expr).collect(),
            outputs: Vec::new(),
            metrics: Vec::new(),
        }),
        ItemKind::Import(_) | ItemKind::Test(_) => None,
    }
}

fn param(p: &ftl_syntax::ast::Param) -> ParamDoc {
    let role = match (p.kind, p.default.is_some()) {
        (ParamKind::Input, false) => "input",
        (ParamKind::Input, true) => "hyperparameter",
        (ParamKind::Const, _) => "const",
        (ParamKind::Param, _) => "param",
        (ParamKind::Static, _) => "static",
    };
    ParamDoc {
        name: p.name.name.clone(),
        role,
        ty: print_type(&p.ty),
        default: p.default.as_ref().map(print_expr),
    }
}

/// Whether an objective returns a gradient for the parameter: a plain float input without a
/// default (hyperparameters are not differentiated).
fn differentiable(p: &ftl_syntax::ast::Param) -> bool {
    let float = matches!(
        &p.ty,
        TypeExpr::Tensor { dtype, .. } if matches!(dtype.keyword(), "f32" | "f64" | "bf16" | "f16")
    );
    p.kind == ParamKind::Input && float && p.default.is_none()
}

fn ret_text(ret: &RetType) -> String {
    match ret {
        RetType::Single(t) => print_type(t),
        RetType::Named(_) => format!("({})", ret_outputs(ret).join(", ")),
    }
}

fn ret_outputs(ret: &RetType) -> Vec<String> {
    match ret {
        RetType::Single(t) => vec![print_type(t)],
        RetType::Named(fields) => fields
            .iter()
            .map(|(n, t)| format!("{}: {}", n.name, print_type(t)))
            .collect(),
    }
}

/// The names an objective's body logs: `metric m = …` and the fields of `metric ..f(…)` when
/// `f` is a fn of the module with named results.
fn metric_names(
    stmts: &[ftl_syntax::ast::Stmt],
    records: &HashMap<&str, Vec<String>>,
) -> Vec<String> {
    let mut names = Vec::new();
    for s in stmts {
        match &s.kind {
            StmtKind::Metric(name, _) => names.push(name.name.clone()),
            StmtKind::Metrics(e) => {
                let fields = match &e.kind {
                    ExprKind::Call(f, _) => match &f.kind {
                        ExprKind::Name(n) => records.get(n.name.as_str()),
                        _ => None,
                    },
                    _ => None,
                };
                match fields {
                    Some(fields) => names.extend(fields.iter().cloned()),
                    None => names.push(format!("..{}", print_expr(e))),
                }
            }
            _ => {}
        }
    }
    names
}
