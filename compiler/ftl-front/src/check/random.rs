//! Data dependence on the HIR: which declarations draw random numbers (a random builtin of the
//! table, or a call of a declaration that draws), and which of an adapter's `let`s depend on a
//! data input or on randomness, so that `merge`/`unmerge` may not use them (E0081).

use crate::hir::{Body, Decl, DeclId, ExprId, ExprKind, LocalId, Stmt};
use ftl_syntax::ast::{ParamKind, Span};
use std::collections::HashSet;

/// Whether an expression draws random numbers itself (not through its operands).
fn draws_here(kind: &ExprKind, callee_draws: &dyn Fn(DeclId) -> bool) -> bool {
    match kind {
        ExprKind::Builtin { id, .. } => id.row().random,
        ExprKind::Call { decl, .. } => callee_draws(*decl),
        _ => false,
    }
}

/// Whether a checked body draws random numbers anywhere; callees are checked first, so their
/// answer is known (`callee_draws`).
pub(super) fn body_draws_random(body: &Body, callee_draws: &dyn Fn(DeclId) -> bool) -> bool {
    body.exprs.iter().any(|e| draws_here(&e.kind, callee_draws))
}

/// The spans of an adapter's top-level `let` values that depend on a data input (an input
/// without a default), on an earlier such `let`, or on randomness.
pub(super) fn data_dependent_lets(
    adapter: &Decl,
    callee_draws: &dyn Fn(DeclId) -> bool,
) -> HashSet<Span> {
    let body = &adapter.body;
    let data_params: HashSet<u32> = adapter
        .params
        .iter()
        .enumerate()
        .filter(|(_, p)| p.kind == ParamKind::Input && p.default.is_none())
        .map(|(i, _)| i as u32)
        .collect();
    let mut tainted_locals = HashSet::new();
    let mut out = HashSet::new();
    for s in &body.stmts {
        let Stmt::Let(locals, value) = s else {
            continue;
        };
        if depends(body, *value, &data_params, &tainted_locals, callee_draws) {
            tainted_locals.extend(locals.iter().copied());
            out.insert(body.expr(*value).span);
        }
    }
    out
}

/// Whether `root` reads a data input, a tainted local or randomness. A `let` reads only earlier
/// locals, whose taint is already decided; a block's inner `let`s are read through its
/// statements, so they need no entry of their own.
fn depends(
    body: &Body,
    root: ExprId,
    data_params: &HashSet<u32>,
    tainted_locals: &HashSet<LocalId>,
    callee_draws: &dyn Fn(DeclId) -> bool,
) -> bool {
    let kind = &body.expr(root).kind;
    let here = match kind {
        ExprKind::Param(i) => data_params.contains(i),
        ExprKind::Local(l) => tainted_locals.contains(l),
        other => draws_here(other, callee_draws),
    };
    here || kind
        .children()
        .into_iter()
        .any(|c| depends(body, c, data_params, tainted_locals, callee_draws))
}
