//! `test` blocks: `expect_close`, `print` and `gradcheck` statements.

use super::body::{arg_span, Ctx, StmtState};
use super::{suggest, Checker, Signature};
use crate::builtins::BuiltinId;
use crate::codes::Code;
use crate::hir::{self, DeclKind, ExprKind, Stmt};
use crate::resolve::ModuleId;
use crate::types::{DimItem, Ty};
use ftl_syntax::ast;

impl Ctx<'_, '_> {
    pub(super) fn gradcheck(&mut self, target: &ast::Expr, args: &[ast::Arg]) -> Option<Stmt> {
        let decl = self.resolve_callee(target)?;
        let sig = self.ck.signature(decl)?.clone();
        if !matches!(sig.kind, DeclKind::Objective | DeclKind::Adapter) {
            let d = self
                .err(
                    Code::BadGradcheck,
                    target.span,
                    format!(
                        "`gradcheck` needs an objective or adapter, not a {}",
                        sig.kind.keyword()
                    ),
                )
                .with_label("has no gradient");
            self.error(d);
            return None;
        }
        let callee_dims: Vec<String> = self.ck.hir[decl.0 as usize]
            .as_ref()
            .map(|d| d.dims.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        for a in args {
            match a {
                ast::Arg::DimKeyword(d, v) => {
                    let id = self.expr(v);
                    if !callee_dims.contains(&d.name) && !sig.params.iter().any(|p| matches!(&p.ty, Ty::Tensor(t) if t.dims.contains(&DimItem::Pack(d.name.clone())))) {
                        let diag = self
                            .err(Code::BadGradcheck, d.span, format!("`{}` is not a dim of the entry", d.name))
                            .with_label("unknown dim");
                        self.error(diag);
                    }
                    let positive = matches!(&self.body.expr(id).kind, ExprKind::Int(n) if *n > 0);
                    if !positive {
                        let diag = self
                            .err(
                                Code::BadGradcheck,
                                v.span,
                                "a dim size must be a positive integer literal",
                            )
                            .with_label("not a size");
                        self.error(diag);
                    }
                    out.push((d.name.clone(), id));
                }
                ast::Arg::Keyword(k, v) => {
                    let param = sig.params.iter().find(|p| p.name == k.name);
                    let id = match param {
                        Some(p) => {
                            let ty = p.ty.clone();
                            self.arg_value(&ty, v)
                        }
                        None => self.expr(v),
                    };
                    let is_hyper = sig
                        .params
                        .iter()
                        .zip(&sig.has_default)
                        .any(|(p, d)| p.name == k.name && *d);
                    if !is_hyper {
                        let names = sig
                            .params
                            .iter()
                            .zip(&sig.has_default)
                            .filter(|(_, d)| **d)
                            .map(|(p, _)| p.name.as_str());
                        let mut diag = self
                            .err(
                                Code::UnknownKeyword,
                                k.span,
                                format!("`{}` is not a hyperparameter of the entry", k.name),
                            )
                            .with_label("unknown");
                        if let Some(s) = suggest(&k.name, names) {
                            diag = diag.with_help(format!("did you mean `{s}`?"));
                        }
                        self.error(diag);
                    }
                    out.push((k.name.clone(), id));
                }
                other => {
                    let sp = arg_span(other);
                    let diag = self
                        .err(Code::BadGradcheck, sp, "gradcheck arguments are dim sizes `B: 3` or hyperparameters `beta: 0.5`")
                        .with_label("not allowed");
                    self.error(diag);
                }
            }
        }
        Some(Stmt::Gradcheck(decl, out))
    }
}

/// The statement of a checked `expect_close` or `print` call (None when its arguments were
/// wrong).
pub(super) fn expect_close_stmt(kind: &ExprKind) -> Option<Stmt> {
    if let ExprKind::Builtin {
        id: BuiltinId::Print,
        args,
        ..
    } = kind
    {
        return args.first().map(|x| Stmt::Print(*x));
    }
    let ExprKind::Builtin {
        id: BuiltinId::ExpectClose,
        args,
        kwargs,
        ..
    } = kind
    else {
        return None;
    };
    let kw = |k: &str| kwargs.iter().find(|(n, _)| n == k).map(|(_, e)| *e);
    match *args.as_slice() {
        [actual, expected, tol] if kwargs.is_empty() => Some(Stmt::ExpectClose(
            actual,
            expected,
            hir::Tolerance::Scaled(tol),
        )),
        [actual, expected] => Some(Stmt::ExpectClose(
            actual,
            expected,
            hir::Tolerance::Close {
                rtol: kw("rtol"),
                atol: kw("atol"),
            },
        )),
        _ => None,
    }
}

/// Checks a `test` block.
pub(super) fn check_test(
    ck: &mut Checker<'_>,
    m: ModuleId,
    t: &ast::Test,
) -> Option<(hir::Decl, Signature)> {
    let mut cx = Ctx::new(ck, m, DeclKind::Test);
    let mut state = StmtState::default();
    let mut stmts = Vec::new();
    cx.stmts(&t.body.stmts, &mut stmts, &mut state);
    if let Some(tail) = &t.body.tail {
        let id = cx.expr(tail);
        if !matches!(
            &cx.body.expr(id).kind,
            ExprKind::Builtin {
                id: BuiltinId::ExpectClose | BuiltinId::Print,
                ..
            }
        ) {
            let diag = cx
                .err(Code::MissingResult, tail.span, "a test has no final value")
                .with_label("unexpected value");
            cx.error(diag);
        } else if let Some(st) = expect_close_stmt(&cx.body.expr(id).kind) {
            stmts.push(st);
        }
    }
    cx.body.stmts = stmts;
    let sig = Signature {
        kind: DeclKind::Test,
        params: vec![],
        has_default: vec![],
        outputs: vec![],
    };
    let decl = hir::Decl {
        module: m,
        name: format!("{}::test {:?}", cx.ck.module_name(m), t.name),
        kind: DeclKind::Test,
        params: vec![],
        dims: cx.dims,
        outputs: vec![],
        body: cx.body,
    };
    Some((decl, sig))
}
