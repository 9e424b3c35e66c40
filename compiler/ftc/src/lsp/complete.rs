//! Completion and signature help: builtins, declarations in scope, `import std.` modules, a
//! callee's parameters; the signature of the call around the cursor with its active parameter.

use super::analysis::{Doc, Workspace};
use super::navigate::{describe, expr_at, item_of, markup, params_and_body};
use super::text;
use ftl_front::builtins::{self, BUILTINS};
use ftl_front::hir;
use ftl_syntax::ast::Param;
use lsp_types::{
    CompletionItem, CompletionItemKind, Documentation, ParameterInformation, ParameterLabel,
    Position, SignatureHelp, SignatureInformation, Url,
};

/// What a call around the cursor calls: a builtin or a checked declaration.
enum Callee<'a> {
    Builtin(&'static builtins::Builtin),
    Decl(&'a hir::Decl),
}

/// The call whose parentheses hold byte `at`: its callee's name and the byte after its `(`.
fn call_around(text: &str, at: usize) -> Option<(String, usize)> {
    let mut depth = 0i32;
    let bytes = text.as_bytes();
    let mut i = at.min(text.len());
    while i > 0 {
        i -= 1;
        match bytes[i] {
            b')' | b']' | b'}' => depth += 1,
            b'[' | b'{' if depth == 0 => return None,
            b'(' | b'[' | b'{' => depth -= 1,
            b';' if depth == 0 => return None,
            _ => {}
        }
        if depth < 0 {
            let (start, end) = text::word_at(text, i.checked_sub(1)?, true)?;
            return (end == i).then(|| (text[start..end].to_string(), i + 1));
        }
    }
    None
}

/// The callee named `name` (`f`, `alias.f`) as the document's module sees it.
fn resolve<'a>(doc: &Doc<'a>, name: &str) -> Option<Callee<'a>> {
    if let Some(b) = builtins::lookup(name) {
        return Some(Callee::Builtin(b));
    }
    let analysis = doc.analysis;
    let here = doc.module;
    let (module, short) = match name.rsplit_once('.') {
        Some((alias, short)) => {
            let m = analysis
                .program
                .module(here)
                .imports
                .iter()
                .find(|i| i.alias == alias)?;
            (Some(m.module), short)
        }
        None => (None, name),
    };
    let decls = || analysis.hir.decls.iter().flatten();
    let found = match module {
        Some(m) => decls().find(|d| d.module == m && d.short_name() == short),
        None => decls()
            .find(|d| d.module == here && d.short_name() == short)
            .or_else(|| decls().find(|d| d.short_name() == short)),
    };
    found.map(Callee::Decl)
}

/// The parameters of a declaration's syntax tree (an attached block's own).
fn ast_params<'a>(doc: &Doc<'a>, decl: &hir::Decl) -> &'a [Param] {
    item_of(doc.analysis, decl)
        .and_then(params_and_body)
        .map_or(&[], |(params, _)| params)
}

fn markdown(value: String) -> Documentation {
    Documentation::MarkupContent(markup(value))
}

/// Completion items at `pos`.
pub fn completion(ws: &Workspace, uri: &Url, pos: Position) -> Option<Vec<CompletionItem>> {
    let doc = ws.doc(uri)?;
    let at = text::offset(doc.text, pos);
    let line_start = doc.text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = doc.text[line_start..at].trim_start();
    if let Some(rest) = line.strip_prefix("import ") {
        if rest.starts_with("std") || rest.is_empty() {
            return Some(
                ftl_front::stdlib::FILES
                    .iter()
                    .map(|(path, _)| CompletionItem {
                        label: ftl_front::stdlib::import_path(path),
                        kind: Some(CompletionItemKind::MODULE),
                        ..CompletionItem::default()
                    })
                    .collect(),
            );
        }
    }
    let mut items = Vec::new();
    if let Some(Callee::Decl(callee)) =
        call_around(doc.text, at).and_then(|(n, _)| resolve(&doc, &n))
    {
        for p in ast_params(&doc, callee) {
            items.push(CompletionItem {
                label: format!("{}:", p.name.name),
                kind: Some(CompletionItemKind::FIELD),
                detail: Some(ftl_syntax::pretty::print_type(&p.ty)),
                insert_text: Some(format!("{}: ", p.name.name)),
                sort_text: Some(format!("0{}", p.name.name)),
                ..CompletionItem::default()
            });
        }
    }
    // The enclosing declaration's parameters and locals.
    if let Some((decl, _)) = expr_at(&doc, at) {
        let locals = decl
            .body
            .locals
            .iter()
            .map(|(n, t)| (n.clone(), t.to_string()));
        let params = decl
            .body
            .param_names
            .iter()
            .zip(&decl.params)
            .map(|(n, p)| (n.clone(), p.ty.to_string()));
        for (name, ty) in params.chain(locals) {
            items.push(CompletionItem {
                label: name,
                kind: Some(CompletionItemKind::VARIABLE),
                detail: Some(ty),
                ..CompletionItem::default()
            });
        }
    }
    for b in BUILTINS {
        items.push(CompletionItem {
            label: b.name.to_string(),
            kind: Some(CompletionItemKind::FUNCTION),
            detail: Some(b.signature.to_string()),
            documentation: Some(markdown(b.doc.to_string())),
            ..CompletionItem::default()
        });
    }
    let analysis = doc.analysis;
    let module = analysis.program.module(doc.module);
    for d in analysis.hir.decls.iter().flatten() {
        let prefix = if d.module == doc.module {
            String::new()
        } else if let Some(i) = module.imports.iter().find(|i| i.module == d.module) {
            format!("{}.", i.alias)
        } else {
            continue;
        };
        if d.kind == hir::DeclKind::Test {
            continue;
        }
        items.push(CompletionItem {
            label: format!("{prefix}{}", d.short_name()),
            kind: Some(CompletionItemKind::FUNCTION),
            detail: Some(d.kind.keyword().to_string()),
            documentation: item_of(analysis, d).map(|i| markdown(describe(i))),
            ..CompletionItem::default()
        });
    }
    items.extend(ftl_syntax::lexer::KEYWORDS.iter().map(|k| CompletionItem {
        label: k.to_string(),
        kind: Some(CompletionItemKind::KEYWORD),
        ..CompletionItem::default()
    }));
    Some(items)
}

/// The signature of the call around `pos`, its active parameter counted from the commas (or
/// named by a keyword argument being written).
pub fn signature_help(ws: &Workspace, uri: &Url, pos: Position) -> Option<SignatureHelp> {
    let doc = ws.doc(uri)?;
    let at = text::offset(doc.text, pos);
    let (name, open) = call_around(doc.text, at)?;
    let callee = resolve(&doc, &name)?;
    let args = &doc.text[open..at];
    let mut depth = 0;
    let mut commas = 0;
    let mut current_start = 0;
    for (i, c) in args.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                commas += 1;
                current_start = i + 1;
            }
            _ => {}
        }
    }
    let current = args[current_start..].trim_start();
    let keyword = current.split_once(':').map(|(k, _)| k.trim());
    let (label, names, documentation) = match callee {
        Callee::Builtin(b) => {
            let inner = b
                .signature
                .split_once('(')
                .and_then(|(_, r)| r.rsplit_once(')'))
                .map_or("", |(p, _)| p);
            let names: Vec<String> = inner.split(", ").map(str::to_string).collect();
            (b.signature.to_string(), names, b.doc.to_string())
        }
        Callee::Decl(d) => {
            let shown: Vec<String> = ast_params(&doc, d)
                .iter()
                .map(ftl_syntax::pretty::print_param)
                .collect();
            let doc_text = item_of(doc.analysis, d)
                .and_then(|i| i.doc.clone())
                .unwrap_or_default();
            (
                format!(
                    "{} {}({})",
                    d.kind.keyword(),
                    d.short_name(),
                    shown.join(", ")
                ),
                shown,
                doc_text,
            )
        }
    };
    // Parameter labels as offsets into the label.
    let mut parameters = Vec::new();
    let mut from = label.find('(').map_or(0, |i| i + 1);
    for n in &names {
        let Some(i) = label[from..].find(n.as_str()) else {
            break;
        };
        let start = from + i;
        let utf16 = |s: &str| s.encode_utf16().count() as u32;
        parameters.push(ParameterInformation {
            label: ParameterLabel::LabelOffsets([
                utf16(&label[..start]),
                utf16(&label[..start + n.len()]),
            ]),
            documentation: None,
        });
        from = start + n.len();
    }
    let active = keyword
        .and_then(|k| names.iter().position(|n| n.split(':').next() == Some(k)))
        .unwrap_or(commas) as u32;
    Some(SignatureHelp {
        signatures: vec![SignatureInformation {
            label,
            documentation: Some(markdown(documentation)),
            parameters: Some(parameters),
            active_parameter: Some(active),
        }],
        active_signature: Some(0),
        active_parameter: Some(active),
    })
}
