//! Hover and go to definition: what is at a position, from the checked HIR (expressions with
//! their types and spans) and the syntax trees (declarations, parameters, `let` bindings).

use super::analysis::{Doc, Workspace};
use super::text;
use ftl_front::hir::{self, ExprKind};
use ftl_front::resolve::ModuleId;
use ftl_front::Analysis;
use ftl_syntax::ast::{self, Block, ItemKind, Param, Pattern, Span, StmtKind};
use lsp_types::{Hover, HoverContents, Location, MarkupContent, MarkupKind, Position, Url};

/// The innermost checked expression of `doc` containing byte `at`, with its declaration.
pub fn expr_at<'a>(doc: &Doc<'a>, at: usize) -> Option<(&'a hir::Decl, &'a hir::Expr)> {
    let analysis = doc.analysis;
    analysis
        .hir
        .decls
        .iter()
        .flatten()
        .filter(|d| d.module == doc.module)
        .flat_map(|d| d.body.exprs.iter().map(move |e| (d, e)))
        .filter(|(_, e)| e.span.start <= at && at < e.span.end.max(e.span.start + 1))
        .min_by_key(|(_, e)| e.span.end - e.span.start)
}

/// The syntax-tree item of a checked declaration (an attached block for `adapter.init`).
pub fn item_of<'a>(analysis: &'a Analysis, decl: &hir::Decl) -> Option<&'a ast::Item> {
    let short = decl.short_name();
    analysis
        .program
        .module(decl.module)
        .ast
        .items
        .iter()
        .find(|item| match &item.kind {
            ItemKind::Decl(d) => d.name.name == short,
            ItemKind::Attached(a) => a.entry_name() == short,
            _ => false,
        })
}

/// An item's own parameters and body (a test has none of the first; an import, neither).
pub fn params_and_body(item: &ast::Item) -> Option<(&[Param], &Block)> {
    match &item.kind {
        ItemKind::Decl(d) => Some((&d.params, &d.body)),
        ItemKind::Attached(a) => Some((&a.params, &a.body)),
        ItemKind::Test(t) => Some((&[], &t.body)),
        ItemKind::Import(_) => None,
    }
}

/// Markdown for the client.
pub fn markup(value: String) -> MarkupContent {
    MarkupContent {
        kind: MarkupKind::Markdown,
        value,
    }
}

/// The span of an item's name.
fn name_span(item: &ast::Item) -> Span {
    match &item.kind {
        ItemKind::Decl(d) => d.name.span,
        ItemKind::Attached(a) => a.target.span,
        _ => item.span,
    }
}

/// A declaration's signature and doc comment, as Markdown.
pub fn describe(item: &ast::Item) -> String {
    let sig = ftl_syntax::pretty::print_signature(item).unwrap_or_default();
    match &item.doc {
        Some(doc) => format!("```ftl\n{sig}\n```\n\n{doc}"),
        None => format!("```ftl\n{sig}\n```"),
    }
}

/// The hover text at `pos`.
pub fn hover(ws: &Workspace, uri: &Url, pos: Position) -> Option<Hover> {
    let doc = ws.doc(uri)?;
    let at = text::offset(doc.text, pos);
    // A declaration's own name.
    let items = &doc.analysis.program.module(doc.module).ast.items;
    if let Some(item) = items.iter().find(|i| contains(name_span(i), at)) {
        return Some(markdown(describe(item), None));
    }
    if let Some(binding) = binding_at(&doc, at) {
        return Some(binding);
    }
    let (decl, e) = expr_at(&doc, at)?;
    let value = match &e.kind {
        ExprKind::Call { decl: callee, .. } => {
            let callee = doc.analysis.hir.decl(*callee)?;
            let item = item_of(doc.analysis, callee)?;
            format!("{}\n\n---\nresult: `{}`", describe(item), e.ty)
        }
        ExprKind::Builtin { id, .. } => {
            let row = id.row();
            format!(
                "```ftl\n{}\n```\n\n{}\n\n---\nresult: `{}`",
                row.signature, row.doc, e.ty
            )
        }
        ExprKind::Param(i) => {
            let name = decl.body.param_names.get(*i as usize)?;
            format!(
                "```ftl\n{name}: {}\n```\nparameter of `{}`",
                e.ty, decl.name
            )
        }
        ExprKind::Local(id) => {
            let (name, _) = decl.body.locals.get(id.0 as usize)?;
            format!("```ftl\n{name}: {}\n```", e.ty)
        }
        _ => format!("```ftl\n{}\n```", e.ty),
    };
    Some(markdown(
        value,
        Some(text::range(doc.text, e.span.start, e.span.end)),
    ))
}

/// Hover on a name where it is bound: a parameter in a header or a `let` pattern, with the type
/// the checker gave it.
fn binding_at(doc: &Doc<'_>, at: usize) -> Option<Hover> {
    let analysis = doc.analysis;
    let decl = analysis
        .hir
        .decls
        .iter()
        .flatten()
        .filter(|d| d.module == doc.module)
        .find(|d| item_of(analysis, d).is_some_and(|i| contains(i.span, at)))?;
    let (params, body) = params_and_body(item_of(analysis, decl)?)?;
    let (name, span, ty) = if let Some(p) = params.iter().find(|p| contains(p.name.span, at)) {
        let ty = decl
            .params
            .iter()
            .find(|q| q.name == p.name.name)?
            .ty
            .to_string();
        (p.name.name.clone(), p.name.span, ty)
    } else {
        let mut visible = Vec::new();
        visible_lets(body, at, &mut visible);
        let binding = visible.into_iter().find(|n| contains(n.span, at))?;
        let (name, span) = (binding.name.clone(), binding.span);
        let ty = decl
            .body
            .locals
            .iter()
            .rev()
            .find(|(n, _)| *n == name)?
            .1
            .to_string();
        (name, span, ty)
    };
    Some(markdown(
        format!("```ftl\n{name}: {ty}\n```"),
        Some(text::range(doc.text, span.start, span.end)),
    ))
}

fn markdown(value: String, range: Option<lsp_types::Range>) -> Hover {
    Hover {
        contents: HoverContents::Markup(markup(value)),
        range,
    }
}

fn contains(span: Span, at: usize) -> bool {
    span.start <= at && at < span.end
}

/// Where the thing at `pos` is defined.
pub fn definition(ws: &Workspace, uri: &Url, pos: Position) -> Option<Location> {
    let doc = ws.doc(uri)?;
    let analysis = doc.analysis;
    let at = text::offset(doc.text, pos);
    // An import's module.
    if let Some(target) = import_at(analysis, doc.module, at) {
        let file = analysis.program.module(target).file;
        return Some(Location::new(
            ws.uri_of(analysis, file)?,
            Default::default(),
        ));
    }
    let (decl, e) = expr_at(&doc, at)?;
    match &e.kind {
        ExprKind::Call { decl: callee, .. } => {
            let callee = analysis.hir.decl(*callee)?;
            let item = item_of(analysis, callee)?;
            let file = analysis.program.module(callee.module).file;
            let span = name_span(item);
            let source = &analysis.program.sources.get(file).text;
            Some(Location::new(
                ws.uri_of(analysis, file)?,
                text::range(source, span.start, span.end),
            ))
        }
        ExprKind::Param(i) => {
            let name = decl.body.param_names.get(*i as usize)?;
            let span = param_span(analysis, decl, name)?;
            Some(Location::new(
                uri.clone(),
                text::range(doc.text, span.start, span.end),
            ))
        }
        ExprKind::Local(id) => {
            let (name, _) = decl.body.locals.get(id.0 as usize)?;
            let (_, body) = params_and_body(item_of(analysis, decl)?)?;
            let mut visible = Vec::new();
            visible_lets(body, at, &mut visible);
            let span = visible.into_iter().rev().find(|n| n.name == *name)?.span;
            Some(Location::new(
                uri.clone(),
                text::range(doc.text, span.start, span.end),
            ))
        }
        _ => None,
    }
}

/// The module an import of module `here` names, when byte `at` is on its path.
fn import_at(analysis: &Analysis, here: ModuleId, at: usize) -> Option<ModuleId> {
    let module = analysis.program.module(here);
    let item = module
        .ast
        .items
        .iter()
        .find(|i| matches!(i.kind, ItemKind::Import(_)) && contains(i.span, at))?;
    let name = match &item.kind {
        ItemKind::Import(ast::Import::Module(path)) => path.last()?.name.clone(),
        ItemKind::Import(ast::Import::File { path, .. }) => std::path::Path::new(path)
            .file_stem()?
            .to_string_lossy()
            .into_owned(),
        _ => return None,
    };
    module
        .imports
        .iter()
        .find(|i| i.alias == name)
        .map(|i| i.module)
}

/// The span of parameter `name` of a declaration (an attached block's own, else its
/// adapter's).
fn param_span(analysis: &Analysis, decl: &hir::Decl, name: &str) -> Option<Span> {
    let module = &analysis.program.module(decl.module).ast;
    let item = item_of(analysis, decl)?;
    let (own, _) = params_and_body(item)?;
    if let Some(p) = own.iter().find(|p| p.name.name == name) {
        return Some(p.name.span);
    }
    let ItemKind::Attached(a) = &item.kind else {
        return None;
    };
    module.items.iter().find_map(|i| match &i.kind {
        ItemKind::Decl(d) if d.name.name == a.target.name => d
            .params
            .iter()
            .find(|p| p.name.name == name)
            .map(|p| p.name.span),
        _ => None,
    })
}

/// The names `let`s bind in `block` and in the blocks inside it that hold byte `at`, in
/// source order, from statements that start before `at`: those a use at `at` may refer to
/// (the last of a name is its definition) and the one written at `at`.
fn visible_lets<'a>(block: &'a Block, at: usize, out: &mut Vec<&'a ast::Ident>) {
    for s in &block.stmts {
        if s.span.start > at {
            break;
        }
        if let StmtKind::Let { pat, value, .. } = &s.kind {
            match pat {
                Pattern::Name(n) => out.push(n),
                Pattern::Tuple(ns, _) => out.extend(ns),
            }
            lets_inside(value, at, out);
        }
    }
    if let Some(tail) = &block.tail {
        lets_inside(tail, at, out);
    }
}

/// `visible_lets` in the blocks of an expression that holds byte `at`.
fn lets_inside<'a>(e: &'a ast::Expr, at: usize, out: &mut Vec<&'a ast::Ident>) {
    if !contains(e.span, at) {
        return;
    }
    match &e.kind {
        ast::ExprKind::If(_, a, b) => {
            visible_lets(a, at, out);
            visible_lets(b, at, out);
        }
        ast::ExprKind::For(f) => visible_lets(&f.body, at, out),
        ast::ExprKind::Match(_, arms) => {
            for arm in arms {
                lets_inside(&arm.value, at, out);
            }
        }
        _ => {}
    }
}
