//! `requires` clauses: conditions checked before a call runs, and dim equations (`K ==
//! floordiv(I, R)`) that bind dims, ordered by what each reads so clause order never matters.

use super::body::{input_dims, Ctx};
use crate::codes::Code;
use crate::hir::{ExprId, ExprKind};
use crate::types::{DimItem, TensorTy, Ty};
use ftl_runtime::DType;
use ftl_syntax::ast::{self, DimEntry, Span, TypeExpr};
use std::collections::HashSet;

impl Ctx<'_, '_> {
    /// Checks `requires` clauses: bool conditions on scalars, or dim equations `D == expr`.
    /// Clause order does not matter: every equation's dim is declared first, and the clauses
    /// that bind a dim (no input has it) are kept in dependency order ahead of the checks.
    pub(super) fn check_requires(&mut self, requires: &[ast::Expr]) {
        for (_, dim, _) in requires.iter().filter_map(dim_equation) {
            self.declare_dim(dim);
        }
        let start = self.body.requires.len();
        for r in requires {
            if let Some((first, dim, rhs)) = dim_equation(r) {
                let rhs_id = self.expr(rhs);
                let int = matches!(self.ty(rhs_id), Ty::Tensor(t) if t.is_scalar() && t.dtype.is_int())
                    || self.ty(rhs_id) == &Ty::Error;
                if !int {
                    let found = self.ty(rhs_id).clone();
                    let diag = self
                        .err(
                            Code::BadDimEquation,
                            rhs.span,
                            format!("the size of `{dim}` must be an integer"),
                        )
                        .with_label(format!("found {found}"));
                    self.error(diag);
                }
                self.declare_dim(dim);
                let lhs = self.push(
                    ExprKind::DimSize(vec![DimItem::Named(dim.to_string())]),
                    Ty::Tensor(TensorTy::scalar(DType::I32)),
                    false,
                    first.span,
                );
                let id = self.push(
                    ExprKind::Compare(lhs, vec![(ast::CmpOp::Eq, rhs_id)]),
                    Ty::Tensor(TensorTy::scalar(DType::Bool)),
                    false,
                    r.span,
                );
                self.body.requires.push(id);
                continue;
            }
            let id = self.expr(r);
            match self.ty(id) {
                Ty::Tensor(t) if t.is_scalar() && t.dtype == DType::Bool => {}
                Ty::Error => {}
                other => {
                    let other = other.clone();
                    let d = self
                        .err(
                            Code::BadRequires,
                            r.span,
                            "a `requires` clause must be a bool condition on scalars",
                        )
                        .with_label(format!("found {other}"));
                    self.error(d);
                }
            }
            self.body.requires.push(id);
        }
        let clauses: Vec<(ExprId, Span)> = self.body.requires[start..]
            .iter()
            .zip(requires)
            .map(|(id, r)| (*id, r.span))
            .collect();
        self.order_requires(start, &clauses);
    }

    /// A `merge`/`unmerge` block's share of its adapter's `requires`: the dim equations (`K ==
    /// floordiv(I, R)`) that read only what the block sees, so the adapter's weight-only lets
    /// the block reuses have their dims. An equation over the adapter's data inputs does not
    /// concern the block and is left out (the adapter's own check reported its errors).
    pub(super) fn adapter_dim_equations(&mut self, requires: &[ast::Expr]) {
        let equations: Vec<ast::Expr> = requires
            .iter()
            .filter(|r| dim_equation(r).is_some())
            .cloned()
            .collect();
        let errors_before = self.ck.diags.len();
        let start = self.body.requires.len();
        self.check_requires(&equations);
        self.ck.diags.truncate(errors_before);
        let mut kept = self.body.requires.split_off(start);
        kept.retain(|id| !self.has_error(*id));
        self.body.requires.extend(kept);
    }

    /// Whether an expression or any part of it failed to check.
    fn has_error(&self, e: ExprId) -> bool {
        self.ty(e) == &Ty::Error
            || self
                .body
                .expr(e)
                .kind
                .children()
                .into_iter()
                .any(|c| self.has_error(c))
    }

    /// The dim a clause `D == expr` binds: D, when no input has it and no earlier clause binds
    /// it (a later equation on D is a check).
    pub(super) fn bound_dim(&self, clause: ExprId, inputs: &HashSet<String>) -> Option<String> {
        let ExprKind::Compare(lhs, _) = &self.body.expr(clause).kind else {
            return None;
        };
        match &self.body.expr(*lhs).kind {
            ExprKind::DimSize(items) => match items.as_slice() {
                [DimItem::Named(n)] if !inputs.contains(n) => Some(n.clone()),
                _ => None,
            },
            _ => None,
        }
    }

    /// Named dims an expression reads.
    pub(super) fn dims_read(&self, e: ExprId, out: &mut HashSet<String>) {
        let kind = &self.body.expr(e).kind;
        if let ExprKind::DimSize(items) = kind {
            out.extend(items.iter().filter_map(|i| match i {
                DimItem::Named(n) => Some(n.clone()),
                _ => None,
            }));
        }
        for c in kind.children() {
            self.dims_read(c, out);
        }
    }

    /// Puts the binding clauses of `self.body.requires[start..]` in dependency order (then the
    /// checks, in their order); a dim defined through itself is E0057.
    pub(super) fn order_requires(&mut self, start: usize, clauses: &[(ExprId, Span)]) {
        let inputs = input_dims(&self.params);
        // (clause, the dim it binds, the requires-bound dims it reads)
        let mut binding: Vec<(ExprId, Span, String, HashSet<String>)> = Vec::new();
        let mut checks = Vec::new();
        for &(id, span) in clauses {
            match self.bound_dim(id, &inputs) {
                Some(d) if !binding.iter().any(|b| b.2 == d) => {
                    let ExprKind::Compare(_, rest) = &self.body.expr(id).kind else {
                        continue;
                    };
                    let mut reads = HashSet::new();
                    self.dims_read(rest[0].1, &mut reads);
                    binding.push((id, span, d, reads));
                }
                _ => checks.push(id),
            }
        }
        let bound: HashSet<String> = binding.iter().map(|b| b.2.clone()).collect();
        let mut ordered = Vec::new();
        let mut done: HashSet<String> = HashSet::new();
        while !binding.is_empty() {
            let ready = binding.iter().position(|(_, _, _, reads)| {
                reads.iter().all(|r| !bound.contains(r) || done.contains(r))
            });
            let Some(k) = ready else {
                let (_, span, _, _) = &binding[0];
                let names: Vec<String> = binding.iter().map(|b| format!("`{}`", b.2)).collect();
                let d = self
                    .err(
                        Code::BadDimEquation,
                        *span,
                        format!("the dims {} are defined through each other", names.join(", ")),
                    )
                    .with_label("this size depends on itself")
                    .with_help("each dim bound by `requires` must be computable from inputs, hyperparameters and dims bound before it");
                self.error(d);
                return;
            };
            let (id, _, d, _) = binding.remove(k);
            done.insert(d);
            ordered.push(id);
        }
        ordered.extend(checks);
        self.body.requires.truncate(start);
        self.body.requires.extend(ordered);
    }

    /// Reports dims that no input shape and no `requires` bound.
    pub(super) fn check_dims_bound(
        &mut self,
        bound_by_inputs: &HashSet<String>,
        params: &[ast::Param],
        what: &str,
    ) {
        for p in params {
            if let TypeExpr::Tensor {
                dims: Some(entries),
                ..
            } = &p.ty
            {
                for e in entries {
                    if let DimEntry::Named(n) = e {
                        if !bound_by_inputs.contains(&n.name) && !self.requires_binds(&n.name) {
                            let d = self
                                .err(
                                    Code::DimNotBound,
                                    n.span,
                                    format!("dim `{}` is never bound", n.name),
                                )
                                .with_label(format!("no {what} gives it a size"))
                                .with_help(format!("add `requires {} == <size>`", n.name));
                            self.error(d);
                        }
                    }
                }
            }
        }
    }

    pub(super) fn requires_binds(&self, dim: &str) -> bool {
        self.body.requires.iter().any(|r| match &self.body.expr(*r).kind {
            ExprKind::Compare(lhs, _) => matches!(&self.body.expr(*lhs).kind, ExprKind::DimSize(d) if d == &[DimItem::Named(dim.to_string())]),
            _ => false,
        })
    }
}

/// A clause `D == expr`: its left side, the dim's name and `expr`.
fn dim_equation(r: &ast::Expr) -> Option<(&ast::Expr, &str, &ast::Expr)> {
    let ast::ExprKind::Compare(first, rest) = &r.kind else {
        return None;
    };
    match (&first.kind, rest.as_slice()) {
        (ast::ExprKind::Dim(d), [(ast::CmpOp::Eq, rhs)]) => Some((first, d.name.as_str(), rhs)),
        _ => None,
    }
}
