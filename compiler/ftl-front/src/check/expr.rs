//! Expressions: literals, names, operators, indexing and the dimension algebra, `if`/`match`,
//! and calls of declarations (argument binding with dim renaming).

use super::body::{arg_span, literal_fits, record_of, Binding, Ctx};
use super::dims::{self, DimBinding};
use super::suggest;
use crate::builtins;
use crate::codes::Code;
use crate::hir::{DeclId, DeclKind, ExprId, ExprKind, Stmt};
use crate::types::{DimItem, TensorTy, Ty};
use ftl_runtime::DType;
use ftl_syntax::ast::{
    self, BinOp, CmpOp, DimPattern, IndexEntry, MatchPattern, ParamKind, Span, UnOp,
};
use std::collections::{HashMap, HashSet};

fn scalar(dtype: DType) -> Ty {
    Ty::Tensor(TensorTy::scalar(dtype))
}

fn weak(dtype: DType) -> Ty {
    Ty::Tensor(TensorTy {
        dtype,
        dims: vec![],
        weak: true,
    })
}

impl Ctx<'_, '_> {
    /// Checks an expression and returns its HIR handle.
    pub fn expr(&mut self, e: &ast::Expr) -> ExprId {
        let span = e.span;
        match &e.kind {
            // An integer literal adapts to the integer or float type it meets, unless it does
            // not fit an i32: then it is an i64, so using it as an i32 is a type error instead
            // of a silent wrap (a loop bound of 3000000000 was an empty loop).
            ast::ExprKind::Int(v) => {
                let ty = if i32::try_from(*v).is_ok() {
                    weak(DType::I32)
                } else {
                    scalar(DType::I64)
                };
                self.push(ExprKind::Int(*v), ty, true, span)
            }
            ast::ExprKind::Float(v) => self.push(ExprKind::Float(*v), weak(DType::F32), true, span),
            ast::ExprKind::Bool(v) => {
                self.push(ExprKind::Bool(*v), scalar(DType::Bool), true, span)
            }
            ast::ExprKind::Name(n) => self.name(n, false),
            ast::ExprKind::Dim(d) => {
                let item = DimItem::Named(d.name.clone());
                if !self.knows(&item) {
                    self.unknown_dim(&d.name, d.span);
                    return self.error_expr(span);
                }
                self.push(
                    ExprKind::DimSize(vec![item]),
                    scalar(DType::I32),
                    false,
                    span,
                )
            }
            ast::ExprKind::Pack(p) => {
                let d = self
                    .err(
                        Code::BadPack,
                        span,
                        format!("the pack `..{}` is not a value", p.name),
                    )
                    .with_label("pack used as a value")
                    .with_help(format!("its element count is `size(..{})`", p.name));
                self.error(d);
                self.error_expr(span)
            }
            ast::ExprKind::Tensor(elems) => self.tensor_literal(elems, span),
            ast::ExprKind::Record(fields) => {
                let mut seen = HashSet::new();
                let mut out = Vec::new();
                let mut tys = Vec::new();
                for (name, value) in fields {
                    if !seen.insert(name.name.clone()) {
                        let d = self
                            .err(
                                Code::DuplicateBinding,
                                name.span,
                                format!("field `{}` is given twice", name.name),
                            )
                            .with_label("again");
                        self.error(d);
                    }
                    let id = self.expr(value);
                    tys.push((name.name.clone(), self.ty(id).clone()));
                    out.push((name.name.clone(), id));
                }
                self.push(ExprKind::Record(out), Ty::Record(tys), false, span)
            }
            ast::ExprKind::Unary(op, inner) => {
                let a = self.expr(inner);
                let Some(t) = self.tensor_of(a) else {
                    return self.error_expr(span);
                };
                let ok = match op {
                    UnOp::Neg => t.dtype != DType::Bool,
                    UnOp::Not => t.dtype == DType::Bool,
                };
                if !ok {
                    let (code, want) = match op {
                        UnOp::Neg => (Code::DTypeMismatch, "a number"),
                        UnOp::Not => (Code::ExpectedBool, "a bool"),
                    };
                    let d = self
                        .err(
                            code,
                            inner.span,
                            format!(
                                "`{}` needs {want}",
                                if *op == UnOp::Neg { "-" } else { "!" }
                            ),
                        )
                        .with_label(format!("found {t}"));
                    self.error(d);
                }
                let stat = self.is_static(a);
                self.push(ExprKind::Unary(*op, a), Ty::Tensor(t), stat, span)
            }
            ast::ExprKind::Binary(BinOp::Coalesce, left, right) => self.coalesce(left, right, span),
            ast::ExprKind::Binary(op, left, right) => {
                let a = self.expr(left);
                let b = self.expr(right);
                self.binary(*op, a, b, span)
            }
            ast::ExprKind::Compare(first, rest) => {
                let mut prev = self.expr(first);
                let first_id = prev;
                let mut ops = Vec::new();
                let mut dims_acc: Vec<DimItem> = Vec::new();
                let mut stat = self.is_static(prev);
                for (op, operand) in rest {
                    let b = self.expr(operand);
                    stat &= self.is_static(b);
                    if let (Some(x), Some(y)) = (self.tensor_of(prev), self.tensor_of(b)) {
                        let bools = x.dtype == DType::Bool && y.dtype == DType::Bool;
                        if bools && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                            let d = self
                                .err(
                                    Code::DTypeMismatch,
                                    span,
                                    "bools can only be compared with `==` and `!=`",
                                )
                                .with_label("ordering of bools");
                            self.error(d);
                        } else if !bools {
                            self.join_dtype(&x, &y, span, op.symbol());
                        }
                        let joined = self.align(&x.dims, &y.dims, span);
                        dims_acc = self.align(&dims_acc.clone(), &joined, span);
                    }
                    ops.push((*op, b));
                    prev = b;
                }
                self.push(
                    ExprKind::Compare(first_id, ops),
                    Ty::Tensor(TensorTy::new(DType::Bool, dims_acc)),
                    stat,
                    span,
                )
            }
            ast::ExprKind::Call(callee, args) => self.call(callee, args, span),
            ast::ExprKind::Cast(dt, inner) => {
                let a = self.expr(inner);
                let Some(t) = self.tensor_of(a) else {
                    return self.error_expr(span);
                };
                let dtype = crate::types::dtype_of(*dt);
                let stat = self.is_static(a);
                self.push(
                    ExprKind::Cast(dtype, a),
                    Ty::Tensor(t.with_dtype(dtype)),
                    stat,
                    span,
                )
            }
            ast::ExprKind::Field(base, name) => self.field(base, name, span),
            ast::ExprKind::Index(base, entries) => {
                let mut cur = self.expr(base);
                for entry in entries {
                    cur = self.index_entry(cur, entry, span);
                }
                cur
            }
            ast::ExprKind::If(cond, then, otherwise) => self.if_expr(cond, then, otherwise, span),
            ast::ExprKind::For(f) => self.for_expr(f, span),
            ast::ExprKind::Match(scrutinee, arms) => self.match_expr(scrutinee, arms, span),
            ast::ExprKind::Error => self.error_expr(span),
        }
    }

    /// The tensor type of a checked expression, reporting records and options used as values.
    pub fn tensor_of(&mut self, id: ExprId) -> Option<TensorTy> {
        match self.ty(id).clone() {
            Ty::Tensor(t) => Some(t),
            Ty::Error => None,
            Ty::Shapeless(_) => {
                let span = self.span(id);
                self.shapeless(span);
                None
            }
            other => {
                let span = self.span(id);
                let help = match other {
                    Ty::Record(_) => "take one of its fields, e.g. `r.loss`",
                    Ty::Enum(_) => "options are compared with `match`",
                    _ => "use a tensor or scalar here",
                };
                let d = self
                    .err(
                        Code::NotATensor,
                        span,
                        format!("expected a tensor, found {other}"),
                    )
                    .with_label("not a tensor")
                    .with_help(help);
                self.error(d);
                None
            }
        }
    }

    /// A name used as a value. `bare_optional` allows an optional input (for `??`, `present`).
    pub fn name(&mut self, n: &ast::Ident, bare_optional: bool) -> ExprId {
        match self.names.get(&n.name).copied() {
            Some(Binding::Param(i)) => {
                let p = self.params[i as usize].clone();
                if p.optional && !bare_optional && !self.narrowed.contains(&p.name) {
                    let d = self
                        .err(
                            Code::OptionalNotChecked,
                            n.span,
                            format!("`{}` is optional and may be absent", n.name),
                        )
                        .with_label("used without a default")
                        .with_help(format!(
                            "write `{} ?? <default>` or use it inside `if present({}) {{ ... }}`",
                            n.name, n.name
                        ));
                    self.error(d);
                }
                let stat = p.kind == ParamKind::Static || matches!(p.ty, Ty::Enum(_));
                self.push(ExprKind::Param(i), p.ty, stat, n.span)
            }
            Some(Binding::Local(l, stat)) => {
                let ty = self.body.locals[l.0 as usize].1.clone();
                self.push(ExprKind::Local(l), ty, stat, n.span)
            }
            None => {
                if self.tainted_lets.contains(&n.name) {
                    let d = self
                        .err(
                            Code::DataDependentLet,
                            n.span,
                            format!(
                                "`{}` depends on the adapter's data input or on random draws",
                                n.name
                            ),
                        )
                        .with_label(format!("not available in `{}`", self.kind.keyword()))
                        .with_help(
                            "merge blocks see only lets computed from weights and hyperparameters",
                        );
                    self.error(d);
                    return self.error_expr(n.span);
                }
                let is_decl = matches!(
                    self.ck.lookup_decl(self.module, &n.name),
                    Ok(Some(_)) | Err(_)
                );
                if is_decl || builtins::lookup(&n.name).is_some() {
                    let d = self
                        .err(
                            Code::NotATensor,
                            n.span,
                            format!("`{}` is a declaration, not a value", n.name),
                        )
                        .with_label("not called")
                        .with_help(format!("call it: `{}(...)`", n.name));
                    self.error(d);
                    return self.error_expr(n.span);
                }
                let mut d = self
                    .err(
                        Code::UnknownName,
                        n.span,
                        format!("unknown name `{}`", n.name),
                    )
                    .with_label("not found in this scope");
                let mut candidates: Vec<String> = self.names.keys().cloned().collect();
                candidates.extend(self.ck.visible_decl_names(self.module));
                if let Some(s) = suggest(&n.name, candidates.iter().map(String::as_str)) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.error(d);
                self.error_expr(n.span)
            }
        }
    }

    fn tensor_literal(&mut self, elems: &[ast::Expr], span: Span) -> ExprId {
        let ids: Vec<ExprId> = elems.iter().map(|e| self.expr(e)).collect();
        let mut inner: Option<Vec<DimItem>> = None;
        let mut dtype: Option<DType> = None;
        let mut stat = true;
        for (id, e) in ids.iter().zip(elems) {
            stat &= self.is_static(*id);
            let Some(t) = self.tensor_of(*id) else {
                continue;
            };
            let anon_only = t.dims.iter().all(|d| matches!(d, DimItem::Anon(_)));
            let ragged = !anon_only || inner.as_ref().is_some_and(|prev| prev != &t.dims);
            if ragged {
                let d = self
                    .err(
                        Code::RaggedLiteral,
                        e.span,
                        "the rows of a tensor literal must all have the same shape",
                    )
                    .with_label(format!("this row is {t}"));
                self.error(d);
                return self.error_expr(span);
            }
            inner = Some(t.dims.clone());
            dtype = Some(match dtype {
                None => t.dtype,
                Some(prev) if prev == t.dtype => prev,
                Some(prev) if prev.is_float() && t.dtype.is_int() => prev,
                Some(prev) if prev.is_int() && t.dtype.is_float() => t.dtype,
                Some(_) => {
                    let d = self
                        .err(
                            Code::RaggedLiteral,
                            e.span,
                            "a tensor literal mixes bools and numbers",
                        )
                        .with_label("different kind");
                    self.error(d);
                    return self.error_expr(span);
                }
            });
        }
        let mut dims = vec![DimItem::Anon(ids.len() as u64)];
        dims.extend(inner.unwrap_or_default());
        let ty = TensorTy {
            dtype: dtype.unwrap_or(DType::F32),
            dims,
            weak: true,
        };
        self.push(ExprKind::Tensor(ids), Ty::Tensor(ty), stat, span)
    }

    /// The dtype of `a op b`, or an error.
    pub fn join_dtype(&mut self, a: &TensorTy, b: &TensorTy, span: Span, op: &str) -> DType {
        if a.dtype == DType::Bool || b.dtype == DType::Bool {
            let d = self
                .err(
                    Code::DTypeMismatch,
                    span,
                    format!("`{op}` does not take bools"),
                )
                .with_label(format!("operands are {} and {}", a.dtype, b.dtype))
                .with_help("cast with `f32(b)`");
            self.error(d);
            return a.dtype;
        }
        match (a.dtype, b.dtype) {
            (x, y) if x == y => x,
            _ if a.weak && literal_fits(a, b.dtype) => b.dtype,
            _ if b.weak && literal_fits(b, a.dtype) => a.dtype,
            (x, y) if x.is_int() && y.is_float() => y,
            (x, y) if x.is_float() && y.is_int() => x,
            (x, y) => {
                let d = self
                    .err(Code::DTypeMismatch, span, format!("`{op}` of {x} and {y}"))
                    .with_label("different dtypes")
                    .with_help(format!("cast one side explicitly, e.g. `{x}(...)`"));
                self.error(d);
                x
            }
        }
    }

    pub fn binary(&mut self, op: BinOp, a: ExprId, b: ExprId, span: Span) -> ExprId {
        let (Some(x), Some(y)) = (self.tensor_of(a), self.tensor_of(b)) else {
            return self.error_expr(span);
        };
        let stat = self.is_static(a) && self.is_static(b);
        let ty = match op {
            BinOp::And | BinOp::Or => {
                if x.dtype != DType::Bool || y.dtype != DType::Bool {
                    let d = self
                        .err(
                            Code::ExpectedBool,
                            span,
                            format!("`{}` needs bool operands", op.symbol()),
                        )
                        .with_label(format!("operands are {} and {}", x.dtype, y.dtype));
                    self.error(d);
                }
                TensorTy::new(DType::Bool, self.align(&x.dims, &y.dims, span))
            }
            BinOp::MatMul => return self.matmul(a, b, &x, &y, span),
            _ => {
                let mut dtype = self.join_dtype(&x, &y, span, op.symbol());
                if op == BinOp::Div && dtype.is_int() {
                    dtype = DType::F32;
                }
                let dims = self.align(&x.dims, &y.dims, span);
                TensorTy {
                    dtype,
                    dims,
                    weak: x.weak && y.weak,
                }
            }
        };
        self.push(ExprKind::Binary(op, a, b), Ty::Tensor(ty), stat, span)
    }

    fn matmul(&mut self, a: ExprId, b: ExprId, x: &TensorTy, y: &TensorTy, span: Span) -> ExprId {
        let shared: Vec<DimItem> = x
            .dims
            .iter()
            .filter(|d| matches!(d, DimItem::Named(_)) && y.dims.contains(d))
            .cloned()
            .collect();
        if shared.len() != 1 {
            let msg = if shared.is_empty() {
                format!("`@` needs a shared dim, but {x} and {y} share none")
            } else {
                format!(
                    "`@` is ambiguous: {x} and {y} share {}",
                    dims::list(&shared)
                )
            };
            let mut d = self
                .err(Code::BadContraction, span, msg)
                .with_label("cannot contract");
            if !shared.is_empty() {
                d = d.with_help(format!(
                    "name the contracted dim: `contract(a, b, {})`",
                    shared[0]
                ));
            }
            self.error(d);
            return self.error_expr(span);
        }
        let dtype = self.join_dtype(x, y, span, "@");
        let mut dims: Vec<DimItem> = x
            .dims
            .iter()
            .filter(|d| **d != shared[0])
            .cloned()
            .collect();
        let extra: Vec<DimItem> = y
            .dims
            .iter()
            .filter(|d| **d != shared[0] && !dims.contains(d))
            .cloned()
            .collect();
        dims.extend(extra);
        let ty = Ty::Tensor(TensorTy::new(dtype, dims));
        let k = self.push(ExprKind::DimArg(shared[0].clone()), Ty::DimArg, true, span);
        let kind = ExprKind::Builtin {
            id: builtins::BuiltinId::Contract,
            args: vec![a, b, k],
            kwargs: vec![],
            maps: vec![],
        };
        self.push(kind, ty, false, span)
    }

    fn coalesce(&mut self, left: &ast::Expr, right: &ast::Expr, span: Span) -> ExprId {
        let optional = match &left.kind {
            ast::ExprKind::Name(n) => {
                matches!(self.names.get(&n.name), Some(Binding::Param(i)) if self.params[*i as usize].optional)
            }
            _ => false,
        };
        let a = match (&left.kind, optional) {
            (ast::ExprKind::Name(n), true) => self.name(n, true),
            _ => {
                let a = self.expr(left);
                if self.ty(a) != &Ty::Error {
                    let d = self
                        .err(
                            Code::CoalesceNotOptional,
                            left.span,
                            "the left side of `??` is always present",
                        )
                        .with_label("not an optional input")
                        .with_help("`??` gives a default for an optional input (`T?`)");
                    self.error(d);
                }
                a
            }
        };
        let b = self.expr(right);
        let (Some(x), Some(y)) = (self.tensor_of(a), self.tensor_of(b)) else {
            return self.error_expr(span);
        };
        let dtype = self.join_dtype(&x, &y, span, "??");
        let dims = self.align(&x.dims, &y.dims, span);
        self.push(
            ExprKind::Binary(BinOp::Coalesce, a, b),
            Ty::Tensor(TensorTy::new(dtype, dims)),
            false,
            span,
        )
    }

    fn field(&mut self, base: &ast::Expr, name: &ast::Ident, span: Span) -> ExprId {
        if let ast::ExprKind::Name(m) = &base.kind {
            if !self.names.contains_key(&m.name)
                && self
                    .ck
                    .lookup_qualified(self.module, &m.name, &name.name)
                    .is_some()
            {
                let d = self
                    .err(
                        Code::NotATensor,
                        span,
                        format!("`{}.{}` is a declaration, not a value", m.name, name.name),
                    )
                    .with_label("not called");
                self.error(d);
                return self.error_expr(span);
            }
        }
        let b = self.expr(base);
        match self.ty(b).clone() {
            Ty::Error => self.error_expr(span),
            Ty::Record(fields) => match fields.iter().find(|(n, _)| *n == name.name) {
                Some((_, t)) => {
                    let t = t.clone();
                    self.push(ExprKind::Field(b, name.name.clone()), t, false, span)
                }
                None if name.name == "grad"
                    && !matches!(self.kind, DeclKind::Test | DeclKind::Step) =>
                {
                    let d = self
                        .err(
                            Code::TestOnly,
                            name.span,
                            "gradients of a call are only available in tests and steps",
                        )
                        .with_label("`grad` outside a test or step");
                    self.error(d);
                    self.error_expr(span)
                }
                None => {
                    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
                    let mut d = self
                        .err(
                            Code::UnknownField,
                            name.span,
                            format!("no field `{}`", name.name),
                        )
                        .with_label(format!("the record has {}", names.join(", ")));
                    let is_metric = fields.iter().any(|(n, t)| {
                        n == "metric"
                            && matches!(t, Ty::Record(ms) if ms.iter().any(|(m, _)| *m == name.name))
                    });
                    if is_metric {
                        d = d.with_help(format!(
                            "`{0}` is a metric: read it as `.metric.{0}`, the name `ftc run` writes",
                            name.name
                        ));
                    } else if let Some(s) = suggest(&name.name, names.iter().copied()) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    self.error(d);
                    self.error_expr(span)
                }
            },
            other => {
                let d = self
                    .err(
                        Code::NotARecord,
                        base.span,
                        format!("{other} has no fields"),
                    )
                    .with_label("not a record");
                self.error(d);
                self.error_expr(span)
            }
        }
    }

    fn index_entry(&mut self, base: ExprId, entry: &IndexEntry, span: Span) -> ExprId {
        let Some(t) = self.tensor_of(base) else {
            return self.error_expr(span);
        };
        let missing = |cx: &mut Self, d: &ast::DimName, t: &TensorTy| {
            let diag = cx
                .err(
                    Code::DimNotInOperand,
                    d.span,
                    format!("`{}` is not a dim of {t}", d.name),
                )
                .with_label("not in the operand");
            cx.error(diag);
        };
        match entry {
            IndexEntry::Gather {
                dim,
                index,
                default,
            } => {
                let Some(item) = callee_dim(&t, &dim.name) else {
                    missing(self, dim, &t);
                    return self.error_expr(span);
                };
                let i = self.expr(index);
                let Some(it) = self.tensor_of(i) else {
                    return self.error_expr(span);
                };
                if !it.dtype.is_int() {
                    let d = self
                        .err(
                            Code::ExpectedInteger,
                            index.span,
                            "a gather index must be an integer",
                        )
                        .with_label(format!("found {it}"))
                        .with_help("cast it with `i32(x)`");
                    self.error(d);
                }
                let rest: Vec<DimItem> = t.dims.iter().filter(|d| **d != item).cloned().collect();
                let dims = self.align(&rest, &it.dims, span);
                let default = default.as_ref().map(|v| {
                    let id = self.expr(v);
                    if let Some(vt) = self.tensor_of(id) {
                        if !vt.is_scalar() {
                            let d = self
                                .err(
                                    Code::ExpectedScalar,
                                    v.span,
                                    "the `else` value of a gather must be a scalar",
                                )
                                .with_label(format!("found {vt}"));
                            self.error(d);
                        }
                        self.join_dtype(&t, &vt, v.span, "else");
                    }
                    id
                });
                let ty = Ty::Tensor(TensorTy::new(t.dtype, dims));
                self.push(
                    ExprKind::Gather {
                        base,
                        dim: item.to_string(),
                        index: i,
                        default,
                    },
                    ty,
                    false,
                    span,
                )
            }
            IndexEntry::Swap(a, b) => {
                for d in [a, b] {
                    if !t.has(&DimItem::Named(d.name.clone())) {
                        missing(self, d, &t);
                        return self.error_expr(span);
                    }
                }
                let (ia, ib) = (
                    DimItem::Named(a.name.clone()),
                    DimItem::Named(b.name.clone()),
                );
                let dims = t
                    .dims
                    .iter()
                    .map(|d| {
                        if *d == ia {
                            ib.clone()
                        } else if *d == ib {
                            ia.clone()
                        } else {
                            d.clone()
                        }
                    })
                    .collect();
                let ty = Ty::Tensor(TensorTy::new(t.dtype, dims));
                self.push(
                    ExprKind::Reshape {
                        base,
                        from: vec![ia.clone(), ib.clone()],
                        to: vec![ib, ia],
                    },
                    ty,
                    false,
                    span,
                )
            }
            IndexEntry::Reshape { from, to } => {
                let to_items = |p: &DimPattern| -> Vec<(DimItem, Span)> {
                    match p {
                        DimPattern::One(d) => vec![(DimItem::Named(d.name.clone()), d.span)],
                        DimPattern::Group(ds, _) => ds
                            .iter()
                            .map(|d| (DimItem::Named(d.name.clone()), d.span))
                            .collect(),
                        DimPattern::Pack(d) => vec![(DimItem::Pack(d.name.clone()), d.span)],
                    }
                };
                let (src, dst) = (to_items(from), to_items(to));
                // A call's result may be reshaped by the callee's dim names (`r.x[Tt -> T2]`).
                let src: Vec<(DimItem, Span)> = src
                    .into_iter()
                    .map(|(item, sp)| match &item {
                        DimItem::Named(n) if !t.has(&item) => {
                            (callee_dim(&t, n).unwrap_or(item), sp)
                        }
                        _ => (item, sp),
                    })
                    .collect();
                let bad = |cx: &mut Self, sp: Span, msg: String| {
                    let diag = cx.err(Code::BadReshape, sp, msg).with_label("here");
                    cx.error(diag);
                };
                if src.len() > 1 && dst.len() > 1 {
                    bad(
                        self,
                        span,
                        "a reshape splits one dim or merges several into one, not both".into(),
                    );
                    return self.error_expr(span);
                }
                for (item, sp) in &src {
                    if !t.has(item) {
                        bad(self, *sp, format!("`{item}` is not a dim of {t}"));
                        return self.error_expr(span);
                    }
                }
                for (item, sp) in &dst {
                    if matches!(item, DimItem::Pack(_)) {
                        bad(self, *sp, "a reshape cannot produce a pack".into());
                        return self.error_expr(span);
                    }
                    if t.has(item) && !src.iter().any(|(s, _)| s == item) {
                        bad(self, *sp, format!("`{item}` is already a dim of {t}"));
                        return self.error_expr(span);
                    }
                    if let DimItem::Named(n) = item {
                        self.declare_dim(n);
                    }
                }
                let first = t
                    .dims
                    .iter()
                    .position(|d| src.iter().any(|(s, _)| s == d))
                    .unwrap_or(0);
                let mut dims: Vec<DimItem> = t
                    .dims
                    .iter()
                    .filter(|d| !src.iter().any(|(s, _)| s == *d))
                    .cloned()
                    .collect();
                let at = first.min(dims.len());
                for (k, (item, _)) in dst.iter().enumerate() {
                    dims.insert(at + k, item.clone());
                }
                let ty = Ty::Tensor(TensorTy::new(t.dtype, dims));
                let kind = ExprKind::Reshape {
                    base,
                    from: src.into_iter().map(|x| x.0).collect(),
                    to: dst.into_iter().map(|x| x.0).collect(),
                };
                self.push(kind, ty, false, span)
            }
        }
    }

    /// Names of optional params a condition proves present (`present(a) && present(b)`).
    fn proven_present(cond: &ast::Expr) -> Vec<String> {
        match &cond.kind {
            ast::ExprKind::Call(f, args) => match (&f.kind, args.as_slice()) {
                (ast::ExprKind::Name(n), [ast::Arg::Positional(a)]) if n.name == "present" => {
                    match &a.kind {
                        ast::ExprKind::Name(x) => vec![x.name.clone()],
                        _ => vec![],
                    }
                }
                _ => vec![],
            },
            ast::ExprKind::Binary(BinOp::And, a, b) => {
                let mut v = Self::proven_present(a);
                v.extend(Self::proven_present(b));
                v
            }
            _ => vec![],
        }
    }

    fn static_condition(&mut self, id: ExprId, span: Span, what: &str) {
        if self.ty(id) == &Ty::Error {
            return;
        }
        match self.ty(id).clone() {
            Ty::Tensor(t) if t.is_scalar() && t.dtype == DType::Bool => {}
            other => {
                let d = self
                    .err(
                        Code::ExpectedBool,
                        span,
                        format!("the condition of `{what}` must be a bool scalar"),
                    )
                    .with_label(format!("found {other}"));
                self.error(d);
                return;
            }
        }
        if !self.is_static(id) {
            let d = self
                .err(
                    Code::NonStaticCondition,
                    span,
                    format!("the condition of `{what}` is not known at build time"),
                )
                .with_label("depends on run-time values")
                .with_help("branch per element with `where(c, a, b)`, or make the option `static`");
            self.error(d);
        }
    }

    /// A block inside an expression: its `let`s are local to it.
    fn inner_block(&mut self, block: &ast::Block) -> ExprId {
        let saved = self.names.clone();
        let mut stmts = Vec::new();
        for s in &block.stmts {
            match &s.kind {
                ast::StmtKind::Let { .. } => {
                    if let Some(st) = self.stmt_in_block(s) {
                        stmts.push(st);
                    }
                }
                _ => {
                    let d = self
                        .err(
                            Code::MisplacedLoss,
                            s.span,
                            "only `let` statements may appear inside an `if`, `match` or `for` block",
                        )
                        .with_label("not allowed here");
                    self.error(d);
                }
            }
        }
        let value = match &block.tail {
            Some(t) => self.expr(t),
            None => {
                let d = self
                    .err(Code::MissingResult, block.span, "this block has no value")
                    .with_label("ends without a value");
                self.error(d);
                self.error_expr(block.span)
            }
        };
        self.names = saved;
        if stmts.is_empty() {
            return value;
        }
        let ty = self.ty(value).clone();
        let stat = self.is_static(value);
        self.push(ExprKind::Block(stmts, value), ty, stat, block.span)
    }

    fn join_arms(&mut self, a: ExprId, b: ExprId, span: Span) -> Ty {
        match (self.ty(a).clone(), self.ty(b).clone()) {
            (Ty::Error, t) | (t, Ty::Error) => t,
            (Ty::Tensor(x), Ty::Tensor(y)) => {
                let dtype = self.join_dtype(&x, &y, span, "if/match");
                let dims = self.align(&x.dims, &y.dims, span);
                Ty::Tensor(TensorTy {
                    dtype,
                    dims,
                    weak: x.weak && y.weak,
                })
            }
            (x, y) if x == y => x,
            (x, y) => {
                let d = self
                    .err(
                        Code::DTypeMismatch,
                        span,
                        format!("the branches have different types: {x} and {y}"),
                    )
                    .with_label("branches differ");
                self.error(d);
                Ty::Error
            }
        }
    }

    fn if_expr(
        &mut self,
        cond: &ast::Expr,
        then: &ast::Block,
        otherwise: &ast::Block,
        span: Span,
    ) -> ExprId {
        let c = self.expr(cond);
        self.static_condition(c, cond.span, "if");
        let proven = Self::proven_present(cond);
        let before = self.narrowed.clone();
        self.narrowed.extend(proven);
        let t = self.inner_block(then);
        self.narrowed = before;
        let e = self.inner_block(otherwise);
        let ty = self.join_arms(t, e, span);
        let stat = self.is_static(t) && self.is_static(e);
        self.push(ExprKind::If(c, t, e), ty, stat, span)
    }

    /// `for var in lo..hi, acc = init { body }`: static integer bounds, and a body of the
    /// accumulator's type.
    fn for_expr(&mut self, f: &ast::ForLoop, span: Span) -> ExprId {
        let (lo, hi) = (self.expr(&f.lo), self.expr(&f.hi));
        for (id, e) in [(lo, &f.lo), (hi, &f.hi)] {
            let int = matches!(self.ty(id), Ty::Tensor(t) if t.is_scalar() && t.dtype.is_int());
            if self.ty(id) != &Ty::Error && (!int || !self.is_static(id)) {
                let found = self.ty(id).clone();
                let d = self
                    .err(
                        Code::NonStaticCondition,
                        e.span,
                        "the bounds of `for` must be integers known at build time",
                    )
                    .with_label(format!("found {found}"))
                    .with_help(
                        "use literals or static options; the loop is unrolled when compiled",
                    );
                self.error(d);
            }
        }
        let init = self.expr(&f.init);
        let init_ty = self.ty(init).clone();
        let saved = self.names.clone();
        let var = self.bind_local(&f.var, Ty::Tensor(TensorTy::scalar(DType::I32)), true);
        let acc = self.bind_local(&f.acc, init_ty.clone(), false);
        let body = self.inner_block(&f.body);
        self.names = saved;
        let body_ty = self.ty(body).clone();
        let same = match (&init_ty, &body_ty) {
            (Ty::Tensor(a), Ty::Tensor(b)) => a.dtype == b.dtype && a.dims == b.dims,
            (Ty::Error, _) | (_, Ty::Error) => true,
            (a, b) => a == b,
        };
        if !same {
            let d = self
                .err(
                    Code::DimMismatch,
                    f.body.span,
                    format!("the body of `for` gives {body_ty} where the accumulator `{}` is {init_ty}", f.acc.name),
                )
                .with_label("each iteration's value becomes the accumulator")
                .with_help("give the initial value the body's dims and dtype (e.g. `zeros(B)`), in the same order");
            self.error(d);
        }
        let kind = ExprKind::For {
            var,
            lo,
            hi,
            acc,
            init,
            body,
        };
        self.push(kind, init_ty, false, span)
    }

    fn match_expr(&mut self, scrutinee: &ast::Expr, arms: &[ast::MatchArm], span: Span) -> ExprId {
        let s = self.expr(scrutinee);
        let sty = self.ty(s).clone();
        let variants: Option<Vec<String>> = match &sty {
            Ty::Enum(v) => Some(v.clone()),
            Ty::Tensor(t) if t.is_scalar() && (t.dtype.is_int() || t.dtype == DType::Bool) => None,
            Ty::Error => None,
            other => {
                let d = self
                    .err(
                        Code::BadMatch,
                        scrutinee.span,
                        format!("cannot match on {other}"),
                    )
                    .with_label("not an option")
                    .with_help("`match` takes an enum or static option");
                self.error(d);
                None
            }
        };
        if sty != Ty::Error && !self.is_static(s) {
            let d = self
                .err(
                    Code::NonStaticCondition,
                    scrutinee.span,
                    "the value of `match` is not known at build time",
                )
                .with_label("depends on run-time values")
                .with_help("`match` chooses a compiled variant: use an enum or static option");
            self.error(d);
        }
        let mut seen: HashSet<String> = HashSet::new();
        let mut out = Vec::new();
        let mut ty: Option<(ExprId, Ty)> = None;
        let mut wildcard = false;
        for arm in arms {
            let key = match &arm.pattern {
                MatchPattern::Variant(v) => {
                    if let Some(vs) = &variants {
                        if !vs.contains(&v.name) {
                            let mut d = self
                                .err(
                                    Code::UnknownVariant,
                                    v.span,
                                    format!("`{}` is not a variant of {sty}", v.name),
                                )
                                .with_label("unknown variant");
                            if let Some(s) = suggest(&v.name, vs.iter().map(String::as_str)) {
                                d = d.with_help(format!("did you mean `{s}`?"));
                            }
                            self.error(d);
                        }
                    } else if sty != Ty::Error {
                        let d = self
                            .err(
                                Code::BadMatch,
                                v.span,
                                "a variant pattern needs an enum value",
                            )
                            .with_label("not an enum");
                        self.error(d);
                    }
                    Some((v.name.clone(), v.span))
                }
                MatchPattern::Int(v, sp) => Some((v.to_string(), *sp)),
                MatchPattern::Bool(v, sp) => Some((v.to_string(), *sp)),
                MatchPattern::Wildcard(_) => {
                    wildcard = true;
                    None
                }
            };
            if let Some((k, sp)) = &key {
                if !seen.insert(k.clone()) {
                    let d = self
                        .err(Code::BadMatch, *sp, format!("`{k}` is matched twice"))
                        .with_label("duplicate arm");
                    self.error(d);
                }
            }
            let v = self.expr(&arm.value);
            let joined = match &ty {
                None => self.ty(v).clone(),
                Some((prev, _)) => self.join_arms(*prev, v, arm.span),
            };
            let rep = self.push(ExprKind::Error, joined.clone(), true, arm.span);
            ty = Some((rep, joined));
            out.push((key.map(|k| k.0), v));
        }
        if let Some(vs) = &variants {
            let missing: Vec<&String> = vs.iter().filter(|v| !seen.contains(*v)).collect();
            if !missing.is_empty() && !wildcard {
                let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                let d = self
                    .err(
                        Code::BadMatch,
                        span,
                        format!("`match` does not cover {}", names.join(", ")),
                    )
                    .with_label("not exhaustive")
                    .with_help("add the missing arms or a `_ =>` arm");
                self.error(d);
            }
        }
        let ty = ty.map_or(Ty::Error, |t| t.1);
        self.push(ExprKind::Match(s, out), ty, false, span)
    }

    // ------------------------------------------------------------ calls

    fn call(&mut self, callee: &ast::Expr, args: &[ast::Arg], span: Span) -> ExprId {
        if let ast::ExprKind::Name(n) = &callee.kind {
            // A declaration of this file shadows a builtin; an imported one does not (it is
            // called qualified, `dpo.sigmoid(…)`), so an import never changes what a builtin's
            // name means.
            if !self.ck.declares(self.module, &n.name) {
                if let Some(b) = builtins::lookup(&n.name) {
                    return self.builtin(b, args, span);
                }
            }
            let is_decl = !matches!(self.ck.lookup_decl(self.module, &n.name), Ok(None));
            if !is_decl {
                if self.names.contains_key(&n.name) {
                    let d = self
                        .err(
                            Code::NotCallable,
                            n.span,
                            format!("`{}` is a value, not a declaration", n.name),
                        )
                        .with_label("cannot be called");
                    self.error(d);
                    for a in args {
                        self.arg_expr(a);
                    }
                    return self.error_expr(span);
                }
                let builtin_names = builtins::BUILTINS.iter().map(|b| b.name);
                let decl_names = self.ck.visible_decl_names(self.module);
                if suggest(&n.name, decl_names.iter().map(String::as_str)).is_none() {
                    if let Some(s) = suggest(&n.name, builtin_names) {
                        let d = self
                            .err(
                                Code::UnknownName,
                                n.span,
                                format!("unknown function `{}`", n.name),
                            )
                            .with_label("not a declaration or builtin")
                            .with_help(format!("did you mean `{s}`?"));
                        self.error(d);
                        for a in args {
                            self.arg_expr(a);
                        }
                        return self.error_expr(span);
                    }
                }
            }
        }
        let Some(decl) = self.resolve_callee(callee) else {
            for a in args {
                self.arg_expr(a);
            }
            return self.error_expr(span);
        };
        let name = ftl_syntax::pretty::print_expr(callee);
        let Some(sig) = self.callee_signature(decl, callee.span, &name) else {
            for a in args {
                self.arg_expr(a);
            }
            return self.error_expr(span);
        };
        self.call_decl(decl, &sig, &name, args, span)
    }

    /// Checks an argument expression on its own (for error recovery).
    pub fn arg_expr(&mut self, a: &ast::Arg) {
        match a {
            ast::Arg::Positional(e) | ast::Arg::Keyword(_, e) | ast::Arg::DimKeyword(_, e) => {
                self.expr(e);
            }
            ast::Arg::DimMap(..) => {}
        }
    }

    fn call_decl(
        &mut self,
        decl: DeclId,
        sig: &super::Signature,
        name: &str,
        args: &[ast::Arg],
        span: Span,
    ) -> ExprId {
        let n = sig.params.len();
        let mut slots: Vec<Option<(ExprId, Span)>> = vec![None; n];
        let mut positional = 0usize;
        for a in args {
            let (index, e, sp) = match a {
                ast::Arg::Positional(e) => {
                    let i = positional;
                    positional += 1;
                    if i >= n {
                        let d = self
                            .err(
                                Code::WrongArity,
                                e.span,
                                format!(
                                    "`{name}` takes {n} argument{}, but more were given",
                                    if n == 1 { "" } else { "s" }
                                ),
                            )
                            .with_label("extra argument");
                        self.error(d);
                        self.expr(e);
                        continue;
                    }
                    (i, e, e.span)
                }
                ast::Arg::Keyword(k, e) => match sig.params.iter().position(|p| p.name == k.name) {
                    Some(i) => (i, e, k.span),
                    None => {
                        let mut d = self
                            .err(
                                Code::UnknownKeyword,
                                k.span,
                                format!("`{name}` has no parameter `{}`", k.name),
                            )
                            .with_label("unknown parameter");
                        if let Some(s) =
                            suggest(&k.name, sig.params.iter().map(|p| p.name.as_str()))
                        {
                            d = d.with_help(format!("did you mean `{s}`?"));
                        }
                        self.error(d);
                        self.expr(e);
                        continue;
                    }
                },
                other => {
                    let d = self
                        .err(
                            Code::UnknownKeyword,
                            arg_span(other),
                            "declarations take values or `name: value` arguments",
                        )
                        .with_label("not a parameter");
                    self.error(d);
                    continue;
                }
            };
            if slots[index].is_some() {
                let d = self
                    .err(
                        Code::DuplicateArgument,
                        sp,
                        format!("`{}` is given twice", sig.params[index].name),
                    )
                    .with_label("second value");
                self.error(d);
                self.expr(e);
                continue;
            }
            let id = self.arg_value(&sig.params[index].ty, e);
            slots[index] = Some((id, sp));
        }
        let mut binding = DimBinding::default();
        let mut ok = true;
        for (i, p) in sig.params.iter().enumerate() {
            let Some((id, _)) = slots[i] else {
                if !p.optional && !sig.has_default[i] {
                    let d = self
                        .err(
                            Code::MissingArgument,
                            span,
                            format!("`{name}` needs `{}`", p.name),
                        )
                        .with_label(format!("missing `{}: {}`", p.name, p.ty));
                    self.error(d);
                    ok = false;
                }
                continue;
            };
            ok &= self.bind_arg(p, id, &mut binding, name);
        }
        // Tests and steps read a call's `grad` (a step computes it: forward, then backward).
        let in_test = matches!(self.kind, DeclKind::Test | DeclKind::Step);
        let callee_name = name.rsplit('.').next().unwrap_or(name).to_string();
        // One fresh dim per callee dim for the whole call: `z.u: [O, K]` and `z.v: [K, I]` of
        // one call share their K; so do equal calls (`two(w, 2).u @ two(w, 2).v`).
        let key = if ok {
            self.call_key(decl, &sig.params, &slots, &binding)
        } else {
            None
        };
        let mut made: HashMap<String, DimItem> = HashMap::new();
        let mut fresh = |cx: &mut Self, dim: &str| {
            made.entry(dim.to_string())
                .or_insert_with(|| cx.call_dim(key.as_deref(), &callee_name, dim))
                .clone()
        };
        let result_ty = if !ok {
            Ty::Error
        } else {
            let record = if sig.kind == DeclKind::Fn
                && sig.outputs.len() == 1
                && sig.outputs[0].0.is_empty()
            {
                sig.outputs[0].1.clone()
            } else {
                record_of(sig, in_test)
            };
            self.map_type(&record, &binding, &mut fresh)
        };
        let kind = ExprKind::Call {
            decl,
            args: slots.iter().map(|s| s.map(|(id, _)| id)).collect(),
        };
        self.push(kind, result_ty, false, span)
    }

    /// What determines the dims a call of `decl` creates: how the callee's dims bind to the
    /// caller's and the values of its scalar arguments, when each is a literal, a parameter or
    /// a local (values that cannot change within a body; a static loop's variable is one value
    /// per unrolled iteration, and lowering forgets call dims between iterations). `None`, so
    /// no sharing, when a scalar argument is anything else.
    fn call_key(
        &self,
        decl: DeclId,
        params: &[crate::hir::Param],
        slots: &[Option<(ExprId, Span)>],
        binding: &DimBinding,
    ) -> Option<String> {
        let mut key = format!("{}", decl.0);
        for (p, slot) in params.iter().zip(slots) {
            if matches!(&p.ty, Ty::Tensor(t) if !t.dims.is_empty()) {
                continue;
            }
            key.push(';');
            match slot {
                None => key.push('-'),
                Some((id, _)) => key.push_str(&self.value_key(*id)?),
            }
        }
        let mut dims: Vec<String> = binding
            .dims
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .chain(binding.packs.iter().map(|(k, v)| format!("..{k}={v:?}")))
            .collect();
        dims.sort();
        key.push('|');
        key.push_str(&dims.join(","));
        Some(key)
    }

    /// A text that is equal for two scalar expressions only when their values are.
    fn value_key(&self, id: ExprId) -> Option<String> {
        match &self.body.expr(id).kind {
            ExprKind::Int(v) => Some(format!("i{v}")),
            ExprKind::Float(v) => Some(format!("f{:x}", v.to_bits())),
            ExprKind::Bool(b) => Some(format!("b{b}")),
            ExprKind::Variant(v) => Some(format!("v{v}")),
            ExprKind::Param(p) => Some(format!("p{p}")),
            ExprKind::Local(l) => Some(format!("l{}", l.0)),
            ExprKind::Unary(op, a) => Some(format!("({op:?} {})", self.value_key(*a)?)),
            ExprKind::Cast(d, a) => Some(format!("({d} {})", self.value_key(*a)?)),
            _ => None,
        }
    }

    /// An argument value; an enum parameter accepts a bare variant name.
    pub(super) fn arg_value(&mut self, param_ty: &Ty, e: &ast::Expr) -> ExprId {
        if let (Ty::Enum(vs), ast::ExprKind::Name(n)) = (param_ty, &e.kind) {
            if vs.contains(&n.name) && !self.names.contains_key(&n.name) {
                return self.push(
                    ExprKind::Variant(n.name.clone()),
                    param_ty.clone(),
                    true,
                    e.span,
                );
            }
        }
        if let ast::ExprKind::Name(n) = &e.kind {
            // Passing an optional input on to an optional parameter keeps it optional.
            if let Some(Binding::Param(i)) = self.names.get(&n.name) {
                if self.params[*i as usize].optional {
                    return self.name(n, true);
                }
            }
        }
        self.expr(e)
    }

    fn bind_arg(
        &mut self,
        p: &crate::hir::Param,
        id: ExprId,
        binding: &mut DimBinding,
        name: &str,
    ) -> bool {
        let span = self.span(id);
        let aty = self.ty(id).clone();
        match (&p.ty, &aty) {
            (_, Ty::Error) => false,
            (Ty::Enum(want), Ty::Enum(have)) if want == have => true,
            (Ty::Enum(want), _) => {
                let d = self
                    .err(
                        Code::UnknownVariant,
                        span,
                        format!("`{}` of `{name}` is one of {}", p.name, want.join(", ")),
                    )
                    .with_label(format!("found {aty}"));
                self.error(d);
                false
            }
            (Ty::Tensor(want), Ty::Tensor(have)) => {
                if p.kind == ParamKind::Static && !self.is_static(id) {
                    let d = self
                        .err(
                            Code::NonStaticCondition,
                            span,
                            format!("`{}` of `{name}` is a static option", p.name),
                        )
                        .with_label("not known at build time")
                        .with_help("pass a literal or a static option");
                    self.error(d);
                }
                let dtype_ok =
                    want.dtype == have.dtype || (have.weak && literal_fits(have, want.dtype));
                if !dtype_ok {
                    let d = self
                        .err(
                            Code::DTypeMismatch,
                            span,
                            format!(
                                "`{}` of `{name}` is {}, found {}",
                                p.name, want.dtype, have.dtype
                            ),
                        )
                        .with_label(format!("this is {have}"))
                        .with_help(format!("cast it: `{}(...)`", want.dtype));
                    self.error(d);
                    return false;
                }
                if let Err(msg) = binding.bind(&want.dims, &have.dims) {
                    let d = self
                        .err(
                            Code::DimMismatch,
                            span,
                            format!("`{}` of `{name}` has type {want}: {msg}", p.name),
                        )
                        .with_label(format!("this is {have}"));
                    self.error(d);
                    return false;
                }
                true
            }
            (want, have) => {
                let d = self
                    .err(
                        Code::NotATensor,
                        span,
                        format!("`{}` of `{name}` is {want}, found {have}", p.name),
                    )
                    .with_label("wrong kind of value");
                self.error(d);
                false
            }
        }
    }

    fn map_type(
        &mut self,
        ty: &Ty,
        binding: &DimBinding,
        fresh: &mut dyn FnMut(&mut Self, &str) -> DimItem,
    ) -> Ty {
        match ty {
            Ty::Tensor(t) => {
                let mut made: Vec<(String, DimItem)> = Vec::new();
                let mut pending: Vec<String> = Vec::new();
                let mapped = binding.map(&t.dims, &mut |n| {
                    pending.push(n.to_string());
                    DimItem::Named(format!("\u{0}{n}"))
                });
                for n in pending {
                    if !made.iter().any(|(m, _)| *m == n) {
                        let f = fresh(self, &n);
                        made.push((n, f));
                    }
                }
                let dims = mapped
                    .into_iter()
                    .map(|d| match &d {
                        DimItem::Named(x) if x.starts_with('\u{0}') => made
                            .iter()
                            .find(|(m, _)| *m == x[1..])
                            .map(|(_, f)| f.clone())
                            .unwrap_or(d),
                        _ => d,
                    })
                    .collect();
                Ty::Tensor(TensorTy {
                    dtype: t.dtype,
                    dims,
                    weak: false,
                })
            }
            Ty::Record(fields) => Ty::Record(
                fields
                    .iter()
                    .map(|(n, t)| (n.clone(), self.map_type(t, binding, fresh)))
                    .collect(),
            ),
            Ty::Tuple(items) => Ty::Tuple(
                items
                    .iter()
                    .map(|t| self.map_type(t, binding, fresh))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// A `let` inside an `if`/`match` arm.
    fn stmt_in_block(&mut self, s: &ast::Stmt) -> Option<Stmt> {
        let ast::StmtKind::Let {
            pat: ast::Pattern::Name(n),
            ty,
            value,
        } = &s.kind
        else {
            let d = self
                .err(
                    Code::MisplacedLoss,
                    s.span,
                    "only `let name = value;` may appear inside an arm",
                )
                .with_label("not allowed here");
            self.error(d);
            return None;
        };
        let id = self.expr(value);
        if let Some(annot) = ty {
            let (want, _) = self.lower_type(annot, false);
            let found = self.ty(id).clone();
            self.expect_same_type(&want, &found, value.span, "the annotation");
        }
        let vty = self.ty(id).clone();
        let stat = self.is_static(id);
        let local = self.bind_local(n, vty, stat);
        Some(Stmt::Let(vec![local], id))
    }
}

/// The dim of `t` that `name` refers to: `name` itself, or the one dim a call result got for
/// the callee's dim `name` (`lcm.Tt#1` for `Tt`), so a test can index a call's result by the
/// callee's dim names (`r.alphas_cumprod[Tt: 999]`).
pub(super) fn callee_dim(t: &TensorTy, name: &str) -> Option<DimItem> {
    let own = DimItem::Named(name.to_string());
    if t.has(&own) {
        return Some(own);
    }
    let mut found = t.dims.iter().filter(|d| match d {
        DimItem::Named(n) => n
            .rsplit_once('#')
            .and_then(|(head, _)| head.rsplit_once('.'))
            .is_some_and(|(_, dim)| dim == name),
        _ => false,
    });
    match (found.next(), found.next()) {
        (Some(d), None) => Some(d.clone()),
        _ => None,
    }
}
