//! Checking one body: parameters, `requires`, statements and expressions, building its HIR.

use super::dims::{self, AlignError};
use super::tests::expect_close_stmt;
use super::{gradient_inputs, suggest, Checker, Signature};
use crate::builtins::BuiltinId;
use crate::codes::Code;
use crate::diagnostic::{Diagnostic, Location};
use crate::hir::{self, Body, DeclId, DeclKind, ExprId, ExprKind, LocalId, Stmt};
use crate::resolve::ModuleId;
use crate::types::{dtype_of, DimItem, TensorTy, Ty};
use ftl_runtime::DType;
use ftl_syntax::ast::{self, DimEntry, ParamKind, Span, StmtKind, TypeExpr};
use std::collections::{HashMap, HashSet};

/// What a name in a body refers to.
#[derive(Clone, Copy, Debug)]
pub(super) enum Binding {
    Param(u32),
    Local(LocalId, bool),
}

/// The state of one body being checked.
pub(super) struct Ctx<'c, 'p> {
    pub ck: &'c mut Checker<'p>,
    pub module: ModuleId,
    pub kind: DeclKind,
    pub body: Body,
    pub params: Vec<hir::Param>,
    pub names: HashMap<String, Binding>,
    /// Dims bound in this declaration, in order.
    pub dims: Vec<String>,
    /// Packs of this declaration.
    pub packs: Vec<String>,
    /// Optional parameters proven present by an enclosing `if present(x)`.
    pub narrowed: HashSet<String>,
    /// Counter for fresh dims created by calls.
    pub fresh: u32,
    /// Fresh dims of calls by what determines them (see `Ctx::call_key`), so equal calls
    /// give results with the same dims.
    pub call_dims: HashMap<String, DimItem>,
    /// Adapter `let`s that a merge/unmerge cannot see (they depend on data inputs).
    pub tainted_lets: HashSet<String>,
}

impl<'c, 'p> Ctx<'c, 'p> {
    pub(super) fn new(ck: &'c mut Checker<'p>, module: ModuleId, kind: DeclKind) -> Ctx<'c, 'p> {
        Ctx {
            ck,
            module,
            kind,
            body: Body::default(),
            params: Vec::new(),
            names: HashMap::new(),
            dims: Vec::new(),
            packs: Vec::new(),
            narrowed: HashSet::new(),
            fresh: 0,
            call_dims: HashMap::new(),
            tainted_lets: HashSet::new(),
        }
    }

    pub fn loc(&self, span: Span) -> Location {
        self.ck.loc(self.module, span)
    }

    pub fn error(&mut self, diag: Diagnostic) {
        self.ck.diags.push(diag);
    }

    pub fn err(&mut self, code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(code, self.loc(span), message)
    }

    /// Adds an expression to the arena.
    pub fn push(&mut self, kind: ExprKind, ty: Ty, is_static: bool, span: Span) -> ExprId {
        self.body.push(hir::Expr {
            kind,
            ty,
            is_static,
            span,
        })
    }

    pub fn error_expr(&mut self, span: Span) -> ExprId {
        self.push(ExprKind::Error, Ty::Error, true, span)
    }

    pub fn ty(&self, id: ExprId) -> &Ty {
        &self.body.expr(id).ty
    }

    pub fn is_static(&self, id: ExprId) -> bool {
        self.body.expr(id).is_static
    }

    pub fn span(&self, id: ExprId) -> Span {
        self.body.expr(id).span
    }

    /// Declares a dim of this declaration (idempotent).
    pub fn declare_dim(&mut self, name: &str) {
        if !self.dims.iter().any(|d| d == name) {
            self.dims.push(name.to_string());
        }
    }

    /// A fresh dim standing for a callee's dim that no argument bound.
    pub fn fresh_dim(&mut self, callee: &str, dim: &str) -> DimItem {
        self.fresh += 1;
        let name = format!("{callee}.{dim}#{}", self.fresh);
        self.declare_dim(&name);
        DimItem::Named(name)
    }

    /// The fresh dim `dim` of a call of `callee`: calls with the same `key` share it (their
    /// results combine), a call without one gets a new dim.
    pub fn call_dim(&mut self, key: Option<&str>, callee: &str, dim: &str) -> DimItem {
        let Some(key) = key else {
            return self.fresh_dim(callee, dim);
        };
        let full = format!("{key}/{dim}");
        if let Some(d) = self.call_dims.get(&full) {
            return d.clone();
        }
        let d = self.fresh_dim(callee, dim);
        self.call_dims.insert(full, d.clone());
        d
    }

    /// Binds a new local name; reports a duplicate.
    pub fn bind_local(&mut self, ident: &ast::Ident, ty: Ty, is_static: bool) -> LocalId {
        if self.names.contains_key(&ident.name) {
            let d = self
                .err(
                    Code::DuplicateBinding,
                    ident.span,
                    format!("`{}` is already bound", ident.name),
                )
                .with_label("bound again here")
                .with_help("FTL has no shadowing: give the new value its own name");
            self.error(d);
        }
        self.body.locals.push((ident.name.clone(), ty));
        let id = LocalId(self.body.locals.len() as u32 - 1);
        self.names
            .insert(ident.name.clone(), Binding::Local(id, is_static));
        id
    }

    // ------------------------------------------------------------ parameters and types

    /// Converts a written type; dims of `declare` types are bound in this declaration.
    pub fn lower_type(&mut self, ty: &TypeExpr, declare: bool) -> (Ty, bool) {
        match ty {
            TypeExpr::Enum { variants, .. } => {
                let mut seen = HashSet::new();
                for v in variants {
                    if !seen.insert(v.name.as_str()) {
                        let d = self
                            .err(
                                Code::DuplicateBinding,
                                v.span,
                                format!("variant `{}` is listed twice", v.name),
                            )
                            .with_label("listed again");
                        self.error(d);
                    }
                }
                (
                    Ty::Enum(variants.iter().map(|v| v.name.clone()).collect()),
                    false,
                )
            }
            TypeExpr::Tensor {
                dtype,
                dims,
                optional,
                ..
            } => {
                let mut items = Vec::new();
                let mut seen: HashSet<String> = HashSet::new();
                let mut pack_seen = false;
                for entry in dims.iter().flatten() {
                    let (item, span) = match entry {
                        DimEntry::Named(n) => (DimItem::Named(n.name.clone()), n.span),
                        DimEntry::Sized(n, _, _) => (DimItem::Named(n.name.clone()), n.span),
                        DimEntry::Fixed(v, s) => (DimItem::Anon(*v), *s),
                        DimEntry::Pack(n) => {
                            if pack_seen {
                                let d = self
                                    .err(Code::BadPack, n.span, "a type may contain only one pack")
                                    .with_label("second pack");
                                self.error(d);
                                continue;
                            }
                            pack_seen = true;
                            (DimItem::Pack(n.name.clone()), n.span)
                        }
                    };
                    if let DimItem::Named(n) | DimItem::Pack(n) = &item {
                        if !seen.insert(n.clone()) {
                            let d = self
                                .err(
                                    Code::DuplicateBinding,
                                    span,
                                    format!("dim `{n}` appears twice in one type"),
                                )
                                .with_label("repeated")
                                .with_help(format!(
                                    "a second dim of the same size is written with a prime: `{n}'`"
                                ));
                            self.error(d);
                            continue;
                        }
                        if declare {
                            match &item {
                                DimItem::Pack(p) if !self.packs.contains(p) => {
                                    self.packs.push(p.clone())
                                }
                                DimItem::Named(d) => self.declare_dim(d),
                                _ => {}
                            }
                        } else if !self.knows(&item) {
                            self.unknown_dim(n, span);
                        }
                    }
                    items.push(item);
                }
                (
                    Ty::Tensor(TensorTy::new(dtype_of(*dtype), items)),
                    *optional,
                )
            }
        }
    }

    /// Whether `item` is bound here. A primed dim (`R'`) whose unprimed dim is bound needs no
    /// rename to exist: it is declared on first use with that dim's size.
    pub fn knows(&mut self, item: &DimItem) -> bool {
        match item {
            DimItem::Named(n) if self.dims.contains(n) => true,
            DimItem::Named(n) => match n.strip_suffix('\'') {
                Some(base) if self.knows(&DimItem::Named(base.to_string())) => {
                    self.declare_dim(n);
                    self.body.primes.push((n.clone(), base.to_string()));
                    true
                }
                _ => false,
            },
            DimItem::Pack(p) => self.packs.contains(p),
            DimItem::Anon(_) => true,
        }
    }

    pub fn unknown_dim(&mut self, name: &str, span: Span) {
        let mut d = self
            .err(Code::UnknownDim, span, format!("unknown dim `{name}`"))
            .with_label("not bound in this declaration");
        let candidates: Vec<&str> = self
            .dims
            .iter()
            .chain(&self.packs)
            .map(String::as_str)
            .collect();
        if let Some(s) = suggest(name, candidates) {
            d = d.with_help(format!("did you mean `{s}`?"));
        } else {
            d = d.with_help("dims are bound by parameter types or by `requires D == expr`");
        }
        self.error(d);
    }

    /// Adds parameters; returns whether each had a default.
    fn add_params(&mut self, params: &[ast::Param]) -> Vec<bool> {
        let mut has_default = Vec::new();
        for p in params {
            let (ty, optional) = self.lower_type(&p.ty, true);
            if self.names.contains_key(&p.name.name) {
                let d = self
                    .err(
                        Code::DuplicateBinding,
                        p.name.span,
                        format!("parameter `{}` is declared twice", p.name.name),
                    )
                    .with_label("second parameter of this name");
                self.error(d);
            }
            let index = self.params.len() as u32;
            self.names
                .insert(p.name.name.clone(), Binding::Param(index));
            self.body.param_names.push(p.name.name.clone());
            self.params.push(hir::Param {
                name: p.name.name.clone(),
                kind: p.kind,
                ty: ty.clone(),
                optional,
                default: None,
            });
            if p.kind == ParamKind::Static {
                let ok = matches!(&ty, Ty::Tensor(t) if t.is_scalar() && matches!(t.dtype, DType::Bool | DType::I32 | DType::I64));
                if !ok {
                    let d = self
                        .err(
                            Code::BadStatic,
                            p.ty.span(),
                            format!("static option `{}` must be `bool` or `i32`", p.name.name),
                        )
                        .with_label(format!("found {ty}"))
                        .with_help(
                            "enum options are written without `static`: `x: enum { a, b } = a`",
                        );
                    self.error(d);
                }
            }
            has_default.push(p.default.is_some());
            if let Some(default) = &p.default {
                let id = self.check_default(p, &ty, default);
                self.params[index as usize].default = Some(id);
            } else if matches!(ty, Ty::Enum(_)) || p.kind == ParamKind::Static {
                let d = self
                    .err(
                        Code::BadStatic,
                        p.name.span,
                        format!("option `{}` needs a default", p.name.name),
                    )
                    .with_label("no default");
                self.error(d);
            }
        }
        has_default
    }

    fn check_default(&mut self, p: &ast::Param, ty: &Ty, default: &ast::Expr) -> ExprId {
        match ty {
            Ty::Enum(variants) => {
                if let ast::ExprKind::Name(n) = &default.kind {
                    if variants.contains(&n.name) {
                        return self.push(
                            ExprKind::Variant(n.name.clone()),
                            ty.clone(),
                            true,
                            default.span,
                        );
                    }
                }
                let d = self
                    .err(
                        Code::DefaultTypeMismatch,
                        default.span,
                        format!(
                            "the default of `{}` must be one of its variants",
                            p.name.name
                        ),
                    )
                    .with_label(format!("expected one of {}", variants.join(", ")));
                self.error(d);
                self.error_expr(default.span)
            }
            Ty::Tensor(t) => {
                if !t.is_scalar() {
                    let d = self
                        .err(Code::HyperparameterNotScalar, p.span, format!("`{}` has a default but is not a scalar", p.name.name))
                        .with_label(format!("type {t}"))
                        .with_help("only hyperparameters and options have defaults; make a tensor input optional with `?`");
                    self.error(d);
                    return self.error_expr(default.span);
                }
                if t.dtype.is_float() {
                    // A float literal default keeps its f64 value in the parameter's dtype
                    // (an f64 hyperparameter's default is not rounded through f32).
                    let value = match &default.kind {
                        ast::ExprKind::Float(v) => Some(*v),
                        ast::ExprKind::Unary(ast::UnOp::Neg, inner) => match inner.kind {
                            ast::ExprKind::Float(v) => Some(-v),
                            _ => None,
                        },
                        _ => None,
                    };
                    if let Some(v) = value {
                        return self.push(
                            ExprKind::Float(v),
                            Ty::Tensor(TensorTy::scalar(t.dtype)),
                            true,
                            default.span,
                        );
                    }
                }
                let id = self.expr(default);
                if let Ty::Tensor(v) = self.ty(id).clone() {
                    let fits = v.is_scalar() && self.is_static(id) && literal_fits(&v, t.dtype);
                    if !fits {
                        let d = self
                            .err(
                                Code::DefaultTypeMismatch,
                                default.span,
                                format!(
                                    "the default of `{}` must be a {} literal",
                                    p.name.name, t.dtype
                                ),
                            )
                            .with_label(format!("found {v}"));
                        self.error(d);
                    }
                }
                id
            }
            _ => self.error_expr(default.span),
        }
    }

    // ------------------------------------------------------------ statements

    /// Checks a block's statements (not its tail) into `out`.
    pub(super) fn stmts(
        &mut self,
        stmts: &[ast::Stmt],
        out: &mut Vec<Stmt>,
        state: &mut StmtState,
    ) {
        for s in stmts {
            if let Some(st) = self.stmt(s, state) {
                out.push(st);
            }
        }
    }

    fn misplaced(&mut self, span: Span, what: &str) {
        let d = self
            .err(
                Code::MisplacedLoss,
                span,
                format!("{what} is not allowed in {}", with_article(self.kind)),
            )
            .with_label("not allowed here");
        self.error(d);
    }

    fn stmt(&mut self, s: &ast::Stmt, state: &mut StmtState) -> Option<Stmt> {
        match &s.kind {
            StmtKind::Let { pat, ty, value } => {
                let id = self.expr(value);
                let vty = self.ty(id).clone();
                let stat = self.is_static(id);
                let locals = match pat {
                    ast::Pattern::Name(n) => {
                        if let Some(annot) = ty {
                            let (want, _) = self.lower_type(annot, false);
                            self.expect_same_type(&want, &vty, value.span, "the annotation");
                        }
                        if matches!(vty, Ty::Shapeless(_)) {
                            self.shapeless(value.span);
                        }
                        vec![self.bind_local(n, vty, stat)]
                    }
                    ast::Pattern::Tuple(names, span) => {
                        let items = match &vty {
                            Ty::Tuple(items) if items.len() == names.len() => items.clone(),
                            Ty::Error => vec![Ty::Error; names.len()],
                            other => {
                                let d = self
                                    .err(
                                        Code::DimMismatch,
                                        *span,
                                        format!(
                                            "cannot bind {} names to a value of type {other}",
                                            names.len()
                                        ),
                                    )
                                    .with_label("pattern");
                                self.error(d);
                                vec![Ty::Error; names.len()]
                            }
                        };
                        names
                            .iter()
                            .zip(items)
                            .map(|(n, t)| self.bind_local(n, t, stat))
                            .collect()
                    }
                };
                Some(Stmt::Let(locals, id))
            }
            StmtKind::Loss(e) => {
                let id = self.expr(e);
                match self.kind {
                    DeclKind::Objective | DeclKind::Adapter => {
                        if let Some(prev) = state.loss {
                            let d = self
                                .err(
                                    Code::LossCount,
                                    s.span,
                                    format!("{} has at most one `loss`", with_article(self.kind)),
                                )
                                .with_label("second loss")
                                .with_secondary(self.loc(prev), "first loss");
                            self.error(d);
                        }
                        state.loss = Some(s.span);
                        self.expect_float_scalar(id, "the loss");
                    }
                    _ => self.misplaced(s.span, "`loss`"),
                }
                Some(Stmt::Loss(id))
            }
            StmtKind::Metric(name, e) => {
                let id = self.expr(e);
                if self.kind != DeclKind::Objective {
                    self.misplaced(s.span, "`metric`");
                } else {
                    self.add_metric(&name.name, name.span, id, state);
                }
                Some(Stmt::Metric(name.name.clone(), id))
            }
            StmtKind::Metrics(e) => {
                let id = self.expr(e);
                if self.kind != DeclKind::Objective {
                    self.misplaced(s.span, "`metric`");
                    return None;
                }
                match self.ty(id).clone() {
                    Ty::Record(fields) => {
                        for (n, t) in fields {
                            let field = self.push(ExprKind::Field(id, n.clone()), t, false, e.span);
                            self.add_metric(&n, e.span, field, state);
                        }
                    }
                    Ty::Error => {}
                    other => {
                        let d = self
                            .err(
                                Code::LossNotScalar,
                                e.span,
                                "`metric ..` takes a record of float scalars",
                            )
                            .with_label(format!("found {other}"))
                            .with_help(
                                "spread a call's metrics, `metric ..r.metric;`, or a fn's record",
                            );
                        self.error(d);
                    }
                }
                Some(Stmt::Metrics(id))
            }
            StmtKind::Assign(name, e) => self.assign(name, e, state),
            StmtKind::Gradcheck { target, args } => {
                if self.kind != DeclKind::Test {
                    let d = self
                        .err(
                            Code::TestOnly,
                            s.span,
                            "`gradcheck` is only allowed in tests",
                        )
                        .with_label("outside a test");
                    self.error(d);
                    return None;
                }
                self.gradcheck(target, args)
            }
            StmtKind::Expr(e) => {
                if self.kind != DeclKind::Test {
                    let d = self
                        .err(
                            Code::MisplacedLoss,
                            s.span,
                            "an expression statement has no effect here",
                        )
                        .with_label("value is not used")
                        .with_help("bind it with `let`, or make it the body's final value");
                    self.error(d);
                }
                let id = self.expr(e);
                match expect_close_stmt(&self.body.expr(id).kind) {
                    Some(st) => Some(st),
                    // A wrong argument count was reported when the call was checked.
                    None if matches!(
                        self.body.expr(id).kind,
                        ExprKind::Builtin {
                            id: BuiltinId::ExpectClose | BuiltinId::Print,
                            ..
                        }
                    ) =>
                    {
                        None
                    }
                    _ => {
                        if self.kind == DeclKind::Test && self.ty(id) != &Ty::Error {
                            let d = self
                                .err(Code::MisplacedLoss, s.span, "a test statement must be `let`, `expect_close(...)`, `print(...)` or `gradcheck`")
                                .with_label("value is not used");
                            self.error(d);
                        }
                        None
                    }
                }
            }
            StmtKind::Error => None,
        }
    }

    fn assign(&mut self, name: &ast::Ident, e: &ast::Expr, state: &mut StmtState) -> Option<Stmt> {
        let Some(target_ty) = state.assignable.get(&name.name).cloned() else {
            let allowed: Vec<&str> = state.assignable.keys().map(String::as_str).collect();
            let mut d = self
                .err(
                    Code::BadAssignment,
                    name.span,
                    format!("cannot assign `{}` here", name.name),
                )
                .with_label("not an output of this block");
            d = match (self.kind, suggest(&name.name, allowed.iter().copied())) {
                (_, Some(s)) => d.with_help(format!("did you mean `{s}`?")),
                (DeclKind::Fn | DeclKind::Objective | DeclKind::Adapter | DeclKind::Test, _) => {
                    d.with_help("use `let` to name a value")
                }
                _ if allowed.is_empty() => d,
                _ => d.with_help(format!("the outputs are {}", sorted(allowed).join(", "))),
            };
            self.error(d);
            self.expr(e);
            return None;
        };
        if !state.outputs.insert(name.name.clone()) {
            let d = self
                .err(
                    Code::BadOutputs,
                    name.span,
                    format!("`{}` is assigned twice", name.name),
                )
                .with_label("second assignment");
            self.error(d);
        }
        let id = self.expr(e);
        let vty = self.ty(id).clone();
        match vty {
            Ty::Shapeless(dtype) => {
                if let Ty::Tensor(t) = &target_ty {
                    if t.dtype != dtype {
                        let d = self
                            .err(
                                Code::DTypeMismatch,
                                e.span,
                                format!(
                                    "`{}` is {}, this constructor makes {dtype}",
                                    name.name, t.dtype
                                ),
                            )
                            .with_label("wrong dtype");
                        self.error(d);
                    }
                }
                self.body.exprs[id.0 as usize].ty = target_ty;
            }
            _ => self.expect_same_type(&target_ty, &vty, e.span, &format!("`{}`", name.name)),
        }
        Some(Stmt::Assign(name.name.clone(), id))
    }

    // ------------------------------------------------------------ type expectations

    /// Registers metric `name` (the value `id`) of an objective; a repeated name is E0022.
    fn add_metric(&mut self, name: &str, span: Span, id: ExprId, state: &mut StmtState) {
        if !state.outputs.insert(name.to_string()) || name == "loss" {
            let d = self
                .err(
                    Code::DuplicateBinding,
                    span,
                    format!("metric `{name}` is given twice"),
                )
                .with_label("again");
            self.error(d);
        }
        self.expect_float_scalar(id, "a metric");
        state.metrics.push((name.to_string(), self.ty(id).clone()));
    }

    pub fn expect_float_scalar(&mut self, id: ExprId, what: &str) {
        match self.ty(id).clone() {
            Ty::Tensor(t) if t.is_scalar() && t.dtype.is_float() => {}
            Ty::Error => {}
            other => {
                let help = match &other {
                    Ty::Tensor(t) if !t.is_scalar() => {
                        format!("reduce over its dims: `mean(x, {})`", dims::list(&t.dims))
                    }
                    Ty::Tensor(_) => "cast it: `f32(x)`".to_string(),
                    _ => "take a field of the record: `r.loss`".to_string(),
                };
                let d = self
                    .err(
                        Code::LossNotScalar,
                        self.span(id),
                        format!("{what} must be a float scalar"),
                    )
                    .with_label(format!("found {other}"))
                    .with_help(help);
                self.error(d);
            }
        }
    }

    /// Checks that `found` fits `want` exactly (dims as sets, dtype equal up to weak literals).
    pub fn expect_same_type(&mut self, want: &Ty, found: &Ty, span: Span, what: &str) {
        match (want, found) {
            (_, Ty::Error) | (Ty::Error, _) => {}
            (Ty::Tensor(w), Ty::Tensor(f)) => {
                let dtype_ok = w.dtype == f.dtype || (f.weak && literal_fits(f, w.dtype));
                if !dtype_ok {
                    let d = self
                        .err(
                            Code::DTypeMismatch,
                            span,
                            format!("{what} is {}, found {}", w.dtype, f.dtype),
                        )
                        .with_label(format!("this is {f}"))
                        .with_help(format!("cast it: `{}(...)`", w.dtype));
                    self.error(d);
                    return;
                }
                let same = f.dims.len() == w.dims.len()
                    && (f.dims.iter().all(|d| w.dims.contains(d))
                        || (f.dims.iter().all(|d| matches!(d, DimItem::Anon(_)))))
                    || (f.is_scalar() && f.weak);
                if !same {
                    let d = self
                        .err(Code::ReturnTypeMismatch, span, format!("{what} has type {w}, but this value is {f}"))
                        .with_label(format!("dims [{}]", dims::list(&f.dims)))
                        .with_help("the dims must match exactly (in any order); reduce or broadcast explicitly");
                    self.error(d);
                }
            }
            (w, f) if w == f => {}
            (w, f) => {
                let d = self
                    .err(
                        Code::ReturnTypeMismatch,
                        span,
                        format!("{what} has type {w}, found {f}"),
                    )
                    .with_label("wrong type");
                self.error(d);
            }
        }
    }

    pub fn shapeless(&mut self, span: Span) {
        let d = self
            .err(
                Code::ShapeNotInferable,
                span,
                "cannot infer the shape of this constructor",
            )
            .with_label("no dims given")
            .with_help("name its dims, e.g. `zeros(B, T)`, or assign it directly to an output");
        self.error(d);
    }

    pub fn align(&mut self, a: &[DimItem], b: &[DimItem], span: Span) -> Vec<DimItem> {
        match dims::union(a, b) {
            Ok(d) => d,
            Err(AlignError::TwoPacks(x, y)) => {
                let d = self
                    .err(
                        Code::BadPack,
                        span,
                        format!("values with packs `..{x}` and `..{y}` cannot be combined"),
                    )
                    .with_label("two different packs");
                self.error(d);
                a.to_vec()
            }
            Err(AlignError::Anonymous(x, y)) => {
                let d = self
                    .err(
                        Code::AnonymousDimMismatch,
                        span,
                        format!(
                            "shapes [{}] and [{}] do not fit",
                            dims::list(&x),
                            dims::list(&y)
                        ),
                    )
                    .with_label("literal dims align by position");
                let d = if x.len() == y.len() {
                    d.with_help("the ranks agree but sizes differ at a position where both are literal sizes")
                } else {
                    d.with_help("a literal adopts the other operand's dims when the ranks agree")
                };
                self.error(d);
                a.to_vec()
            }
        }
    }

    /// Resolves a callee expression (`f` or `module.f`) to a declaration.
    pub fn resolve_callee(&mut self, callee: &ast::Expr) -> Option<DeclId> {
        match &callee.kind {
            ast::ExprKind::Name(n) => match self.ck.lookup_decl(self.module, &n.name) {
                Ok(Some(id)) => Some(id),
                Ok(None) => {
                    let mut d = self
                        .err(
                            Code::UnknownName,
                            n.span,
                            format!("unknown declaration `{}`", n.name),
                        )
                        .with_label("not found");
                    let names = self.ck.visible_decl_names(self.module);
                    if let Some(s) = suggest(&n.name, names.iter().map(String::as_str)) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    self.error(d);
                    None
                }
                Err(modules) => {
                    let d = self
                        .err(
                            Code::AmbiguousName,
                            n.span,
                            format!("`{}` is declared in several imported modules", n.name),
                        )
                        .with_label("ambiguous")
                        .with_help(format!(
                            "qualify it: {}",
                            modules
                                .iter()
                                .map(|m| format!("`{m}.{}`", n.name))
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ));
                    self.error(d);
                    None
                }
            },
            ast::ExprKind::Field(base, name) => {
                if let ast::ExprKind::Name(m) = &base.kind {
                    match self.ck.lookup_qualified(self.module, &m.name, &name.name) {
                        Some(Some(id)) => return Some(id),
                        Some(None) => {
                            let d = self
                                .err(
                                    Code::UnknownName,
                                    name.span,
                                    format!(
                                        "module `{}` has no declaration `{}`",
                                        m.name, name.name
                                    ),
                                )
                                .with_label("not found");
                            self.error(d);
                            return None;
                        }
                        None => {}
                    }
                }
                let d = self
                    .err(Code::NotCallable, callee.span, "this is not a declaration")
                    .with_label("cannot be called");
                self.error(d);
                None
            }
            _ => {
                let d = self
                    .err(Code::NotCallable, callee.span, "this is not a declaration")
                    .with_label("cannot be called");
                self.error(d);
                None
            }
        }
    }

    /// Ensures the callee is checked; reports recursion at `span`.
    pub fn callee_signature(&mut self, decl: DeclId, span: Span, name: &str) -> Option<Signature> {
        if self.ck.ensure_checked(decl).is_err() {
            let d = self
                .err(
                    Code::Recursion,
                    span,
                    format!("`{name}` calls itself (directly or through other declarations)"),
                )
                .with_label("recursive call")
                .with_help("declarations are inlined, so they cannot recurse");
            self.error(d);
            return None;
        }
        self.ck.signature(decl).cloned()
    }
}

/// Statement-level bookkeeping for one body.
#[derive(Default)]
pub(super) struct StmtState {
    loss: Option<Span>,
    metrics: Vec<(String, Ty)>,
    outputs: HashSet<String>,
    /// Names that may be assigned, with their types.
    assignable: HashMap<String, Ty>,
}

/// "an `objective`", "a `step`": a declaration kind with its article.
pub(super) fn with_article(kind: DeclKind) -> String {
    let word = kind.keyword();
    let article = if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} `{word}`")
}

fn sorted(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v
}

pub(super) fn arg_span(a: &ast::Arg) -> Span {
    match a {
        ast::Arg::Positional(e) => e.span,
        ast::Arg::Keyword(k, e) => k.span.to(e.span),
        ast::Arg::DimKeyword(d, e) => d.span.to(e.span),
        ast::Arg::DimMap(a, b) => a.span.to(b.span),
    }
}

/// Whether a literal-typed value can take `dtype`.
pub(super) fn literal_fits(v: &TensorTy, dtype: DType) -> bool {
    match (v.dtype, dtype) {
        (a, b) if a == b => true,
        (DType::F64 | DType::F32, d) => v.weak && d.is_float(),
        (DType::I64, d) => v.weak && (d.is_int() || d.is_float()),
        _ => false,
    }
}

// ---------------------------------------------------------------- declarations

fn decl_kind(k: ast::DeclKind) -> DeclKind {
    match k {
        ast::DeclKind::Fn => DeclKind::Fn,
        ast::DeclKind::Objective => DeclKind::Objective,
        ast::DeclKind::Adapter => DeclKind::Adapter,
        ast::DeclKind::Step => DeclKind::Step,
    }
}

pub(super) fn input_dims(params: &[hir::Param]) -> HashSet<String> {
    params
        .iter()
        .filter_map(|p| p.ty.tensor())
        .flat_map(|t| t.dims.iter())
        .filter_map(|d| {
            if let DimItem::Named(n) = d {
                Some(n.clone())
            } else {
                None
            }
        })
        .collect()
}

/// Checks a `fn`, `objective`, `adapter` or `step`.
pub(super) fn check_decl(
    ck: &mut Checker<'_>,
    m: ModuleId,
    d: &ast::Decl,
) -> Option<(hir::Decl, Signature)> {
    let kind = decl_kind(d.kind);
    let mut cx = Ctx::new(ck, m, kind);
    let has_default = cx.add_params(&d.params);
    cx.check_requires(&d.requires);
    let bound = input_dims(&cx.params);
    cx.check_dims_bound(&bound, &d.params, "input");
    let mut state = StmtState::default();
    let declared: Option<Vec<(String, Ty)>> = d.ret.as_ref().map(|r| match r {
        ast::RetType::Single(t) => vec![(
            if kind == DeclKind::Adapter { "y" } else { "" }.to_string(),
            cx.lower_type(t, false).0,
        )],
        ast::RetType::Named(fields) => {
            let mut seen = HashSet::new();
            fields
                .iter()
                .map(|(n, t)| {
                    if !seen.insert(n.name.clone()) {
                        let diag = cx
                            .err(
                                Code::DuplicateBinding,
                                n.span,
                                format!("output `{}` is declared twice", n.name),
                            )
                            .with_label("again");
                        cx.error(diag);
                    }
                    (n.name.clone(), cx.lower_type(t, false).0)
                })
                .collect()
        }
    });
    if kind == DeclKind::Step {
        match &declared {
            Some(outs)
                if d.ret
                    .as_ref()
                    .is_some_and(|r| matches!(r, ast::RetType::Named(_))) =>
            {
                for (name, ty) in outs {
                    if let Some(p) = cx.params.iter().find(|p| &p.name == name) {
                        if &p.ty != ty {
                            let pty = p.ty.clone();
                            let diag = cx
                                .err(Code::StepOutputType, d.name.span, format!("output `{name}` updates the input `{name}`, so it must have its type"))
                                .with_label(format!("input is {pty}, output is {ty}"));
                            cx.error(diag);
                        }
                    }
                    state.assignable.insert(name.clone(), ty.clone());
                }
            }
            _ => {
                let diag = cx
                    .err(
                        Code::BadOutputs,
                        d.name.span,
                        format!("step `{}` must name its outputs", d.name.name),
                    )
                    .with_label("no named outputs")
                    .with_help("write `-> (name: type, ...)`");
                cx.error(diag);
            }
        }
    }
    let mut stmts = Vec::new();
    cx.stmts(&d.body.stmts, &mut stmts, &mut state);
    let result = d.body.tail.as_ref().map(|t| cx.expr(t));
    cx.body.stmts = stmts;
    cx.body.result = result;
    let outputs = finish_outputs(&mut cx, d, declared, &state, result);
    let sig = Signature {
        kind,
        params: cx.params.clone(),
        has_default,
        outputs: outputs.clone(),
    };
    let decl = hir::Decl {
        module: m,
        name: format!("{}::{}", cx.ck.module_name(m), d.name.name),
        kind,
        params: cx.params,
        dims: cx.dims,
        outputs,
        body: cx.body,
    };
    Some((decl, sig))
}

/// Checks the body's result against the declaration kind and returns the outputs.
fn finish_outputs(
    cx: &mut Ctx<'_, '_>,
    d: &ast::Decl,
    declared: Option<Vec<(String, Ty)>>,
    state: &StmtState,
    result: Option<ExprId>,
) -> Vec<(String, Ty)> {
    let name_span = d.name.span;
    match cx.kind {
        DeclKind::Objective => {
            if let Some(r) = result {
                let diag = cx
                    .err(
                        Code::MissingResult,
                        cx.span(r),
                        "an objective has no final value: its result is its `loss`",
                    )
                    .with_label("unexpected value")
                    .with_help("write `loss <expr>;`");
                cx.error(diag);
            }
            if state.loss.is_none() {
                let diag = cx
                    .err(
                        Code::LossCount,
                        name_span,
                        format!("objective `{}` has no `loss`", d.name.name),
                    )
                    .with_label("no loss statement")
                    .with_help("add `loss <scalar expr>;`");
                cx.error(diag);
            }
            let mut outs = vec![("loss".to_string(), Ty::Tensor(TensorTy::scalar(DType::F32)))];
            if let Some(Stmt::Loss(id)) = cx.body.stmts.iter().find(|s| matches!(s, Stmt::Loss(_)))
            {
                if let Ty::Tensor(t) = cx.ty(*id) {
                    outs[0].1 = Ty::Tensor(TensorTy::scalar(t.dtype));
                }
            }
            outs.extend(state.metrics.iter().cloned());
            outs
        }
        DeclKind::Fn | DeclKind::Adapter => {
            let Some(r) = result else {
                let diag = cx
                    .err(
                        Code::MissingResult,
                        d.body.span,
                        format!("`{}` has no final value", d.name.name),
                    )
                    .with_label("the block ends without a value")
                    .with_help("end the body with the value it returns (no `;`)");
                cx.error(diag);
                return declared.unwrap_or_default();
            };
            let rty = cx.ty(r).clone();
            let span = cx.span(r);
            let mut outs = match declared {
                Some(outs) if outs.len() == 1 && !matches!(d.ret, Some(ast::RetType::Named(_))) => {
                    cx.expect_same_type(&outs[0].1, &rty, span, "the declared result");
                    outs
                }
                Some(outs) => {
                    check_record_result(cx, &outs, &rty, span);
                    outs
                }
                None if cx.kind == DeclKind::Adapter => {
                    let diag = cx
                        .err(
                            Code::MissingResult,
                            name_span,
                            format!("adapter `{}` must declare its output type", d.name.name),
                        )
                        .with_label("no `-> type`")
                        .with_help("write e.g. `-> f32[..L, O]` after the parameters");
                    cx.error(diag);
                    vec![("y".to_string(), rty)]
                }
                None => vec![(String::new(), rty)],
            };
            if cx.kind == DeclKind::Adapter && state.loss.is_some() {
                outs.push((
                    "aux_loss".to_string(),
                    Ty::Tensor(TensorTy::scalar(DType::F32)),
                ));
            }
            outs
        }
        DeclKind::Step => {
            let outs = declared.unwrap_or_default();
            match result {
                Some(r) => {
                    let rty = cx.ty(r).clone();
                    let span = cx.span(r);
                    check_record_result(cx, &outs, &rty, span);
                    if let Ty::Record(fields) = &rty {
                        if let Some((n, _)) = fields.iter().find(|(n, _)| state.outputs.contains(n))
                        {
                            let diag = cx
                                .err(
                                    Code::BadOutputs,
                                    span,
                                    format!("output `{n}` is given twice"),
                                )
                                .with_label("also assigned above");
                            cx.error(diag);
                        }
                    }
                }
                None => {
                    for (n, _) in &outs {
                        if !state.outputs.contains(n) {
                            let diag = cx
                                .err(
                                    Code::BadOutputs,
                                    name_span,
                                    format!("step `{}` never gives output `{n}`", d.name.name),
                                )
                                .with_label("missing output");
                            cx.error(diag);
                        }
                    }
                }
            }
            outs
        }
        _ => unreachable!("attached blocks and tests are checked elsewhere"),
    }
}

fn check_record_result(cx: &mut Ctx<'_, '_>, outs: &[(String, Ty)], rty: &Ty, span: Span) {
    match rty {
        Ty::Record(fields) => {
            for (n, t) in outs {
                match fields.iter().find(|(f, _)| f == n) {
                    Some((_, ft)) => cx.expect_same_type(t, ft, span, &format!("output `{n}`")),
                    None => {
                        let diag = cx
                            .err(
                                Code::BadOutputs,
                                span,
                                format!("the result does not give output `{n}`"),
                            )
                            .with_label("missing field");
                        cx.error(diag);
                    }
                }
            }
            for (f, _) in fields {
                if !outs.iter().any(|(n, _)| n == f) {
                    let diag = cx
                        .err(
                            Code::BadOutputs,
                            span,
                            format!("`{f}` is not a declared output"),
                        )
                        .with_label("unexpected field");
                    cx.error(diag);
                }
            }
        }
        Ty::Error => {}
        other => {
            let diag = cx
                .err(
                    Code::BadOutputs,
                    span,
                    format!("expected a record of the declared outputs, found {other}"),
                )
                .with_label("not a record")
                .with_help("end the body with `(name: value, ...)`");
            cx.error(diag);
        }
    }
}

/// Checks an `init`, `merge` or `unmerge` block of an adapter.
pub(super) fn check_attached(
    ck: &mut Checker<'_>,
    m: ModuleId,
    a: &ast::Attached,
    adapter: DeclId,
) -> Option<(hir::Decl, Signature)> {
    let adapter_ast = ck.decl_ast(adapter)?;
    ck.signature(adapter)?;
    let kind = match a.kind {
        ast::AttachedKind::Init => DeclKind::Init,
        ast::AttachedKind::Merge => DeclKind::Merge,
        ast::AttachedKind::Unmerge => DeclKind::Unmerge,
    };
    let mut cx = Ctx::new(ck, m, kind);
    // The block sees every parameter of the adapter except its data inputs; init does not see
    // the params it creates.
    let visible: Vec<&ast::Param> = adapter_ast
        .params
        .iter()
        .filter(|p| match p.kind {
            ParamKind::Input => p.default.is_some(),
            ParamKind::Param => kind != DeclKind::Init,
            ParamKind::Const | ParamKind::Static => true,
        })
        .collect();
    let visible_owned: Vec<ast::Param> = visible.iter().map(|p| (*p).clone()).collect();
    let mut has_default = cx.add_params(&visible_owned);
    has_default.extend(cx.add_params(&a.params));
    if kind != DeclKind::Init {
        cx.adapter_dim_equations(&adapter_ast.requires);
    }
    cx.check_requires(&a.requires);
    let bound = input_dims(&cx.params);
    let mut state = StmtState::default();
    for p in &adapter_ast.params {
        let target = matches!(
            (kind, p.kind),
            (DeclKind::Init, ParamKind::Param | ParamKind::Const)
                | (
                    DeclKind::Merge | DeclKind::Unmerge,
                    ParamKind::Const | ParamKind::Param
                )
        );
        if target {
            let (ty, _) = cx.lower_type(&p.ty, true);
            state.assignable.insert(p.name.name.clone(), ty);
        }
    }
    if kind == DeclKind::Init {
        let params: Vec<ast::Param> = adapter_ast
            .params
            .iter()
            .filter(|p| p.kind == ParamKind::Param)
            .cloned()
            .collect();
        cx.check_dims_bound(&bound, &params, "const input");
    } else {
        bind_weight_lets(&mut cx, adapter, adapter_ast);
    }
    // The adapter's weight-only lets (bound above) come first.
    let mut stmts = std::mem::take(&mut cx.body.stmts);
    cx.stmts(&a.body.stmts, &mut stmts, &mut state);
    if let Some(tail) = &a.body.tail {
        let id = cx.expr(tail);
        let diag = cx
            .err(
                Code::MissingResult,
                cx.span(id),
                format!(
                    "`{}` assigns its outputs; it has no final value",
                    a.kind.keyword()
                ),
            )
            .with_label("unexpected value")
            .with_help("write `name = value;`");
        cx.error(diag);
    }
    if kind == DeclKind::Init {
        for p in adapter_ast
            .params
            .iter()
            .filter(|p| p.kind == ParamKind::Param)
        {
            if !state.outputs.contains(&p.name.name) {
                let diag = cx
                    .err(
                        Code::BadOutputs,
                        a.target.span,
                        format!("`init {}` does not assign `{}`", a.target.name, p.name.name),
                    )
                    .with_label("missing assignment")
                    .with_help(format!("add `{} = ...;`", p.name.name));
                cx.error(diag);
            }
        }
    }
    cx.body.stmts = stmts;
    let outputs: Vec<(String, Ty)> = state
        .outputs
        .iter()
        .filter_map(|n| state.assignable.get(n).map(|t| (n.clone(), t.clone())))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let sig = Signature {
        kind,
        params: cx.params.clone(),
        has_default,
        outputs: outputs.clone(),
    };
    let decl = hir::Decl {
        module: m,
        name: format!("{}::{}", cx.ck.module_name(m), a.entry_name()),
        kind,
        params: cx.params,
        dims: cx.dims,
        outputs,
        body: cx.body,
    };
    Some((decl, sig))
}

/// Brings the adapter body's `let`s that depend only on weights and hyperparameters into a
/// merge/unmerge scope; the others (found on the adapter's HIR: they read a data input, such a
/// `let`, or randomness, callees included) are recorded so that a use is a located error.
fn bind_weight_lets(cx: &mut Ctx<'_, '_>, adapter_id: DeclId, adapter: &ast::Decl) {
    let dependent = match cx.ck.checked_decl(adapter_id) {
        Some(decl) => super::random::data_dependent_lets(decl, &|d| cx.ck.draws_random(d)),
        None => return,
    };
    let mut tainted = HashSet::new();
    for s in &adapter.body.stmts {
        let StmtKind::Let {
            pat: ast::Pattern::Name(n),
            value,
            ..
        } = &s.kind
        else {
            continue;
        };
        if dependent.contains(&value.span) {
            tainted.insert(n.name.clone());
            continue;
        }
        tainted.remove(&n.name);
        // The adapter's own check reported any error in this `let` already.
        let errors_before = cx.ck.diags.len();
        let id = cx.expr(value);
        cx.ck.diags.truncate(errors_before);
        let ty = cx.ty(id).clone();
        let stat = cx.is_static(id);
        let local = cx.bind_local(n, ty, stat);
        cx.body.stmts.push(Stmt::Let(vec![local], id));
    }
    cx.tainted_lets = tainted;
}

/// The record a call gives: an objective's `loss` and, nested as `metric`, its metrics (the
/// names `ftc run` writes, `metric.<name>`); in tests, `grad` with the gradients.
pub(super) fn record_of(sig: &Signature, in_test: bool) -> Ty {
    let mut fields = sig.outputs.clone();
    if sig.kind == DeclKind::Objective && fields.len() > 1 {
        let metrics = fields.split_off(1);
        fields.push(("metric".to_string(), Ty::Record(metrics)));
    }
    if in_test && matches!(sig.kind, DeclKind::Objective | DeclKind::Adapter) {
        fields.push(("grad".to_string(), Ty::Record(gradient_inputs(&sig.params))));
    }
    Ty::Record(fields)
}
