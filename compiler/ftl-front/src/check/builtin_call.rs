//! Builtin calls: each row of the builtin table is checked by its dtype and named-dim rule.

use super::body::{with_article, Ctx};
use super::expr::callee_dim;
use crate::builtins::{Builtin, BuiltinId, Context, DTypeRule, DimRule};
use crate::codes::Code;
use crate::hir::{DeclKind, ExprId, ExprKind};
use crate::types::{DimItem, TensorTy, Ty};
use ftl_runtime::DType;
use ftl_syntax::ast::{self, Span};

/// A builtin's arguments, sorted by form.
#[derive(Default)]
struct Args {
    /// Value arguments (checked), in order.
    values: Vec<ExprId>,
    /// Dim arguments in order, with their spans.
    dims: Vec<(DimItem, Span)>,
    /// `name: value`.
    keywords: Vec<(String, ExprId, Span)>,
    /// `D: value` (scatter's target).
    dim_keywords: Vec<(String, ExprId, Span)>,
    /// `D -> K`.
    maps: Vec<(DimItem, DimItem, Span)>,
    /// Every argument's id in written order (values and dims), for the HIR.
    ordered: Vec<ExprId>,
}

impl Ctx<'_, '_> {
    fn sort_args(&mut self, b: &Builtin, args: &[ast::Arg]) -> Args {
        let mut out = Args::default();
        for a in args {
            match a {
                ast::Arg::Positional(e) => match &e.kind {
                    ast::ExprKind::Dim(d) if b.dims != DimRule::Map && b.dims != DimRule::Zip => {
                        let mut item = DimItem::Named(d.name.clone());
                        if !self.knows(&item) {
                            // The callee's dim name of a call result given before it
                            // (`sum(r.alphas_cumprod, Tt)`), else unknown.
                            let callee = out.values.iter().find_map(|v| match self.ty(*v) {
                                Ty::Tensor(t) => callee_dim(t, &d.name),
                                _ => None,
                            });
                            match callee {
                                Some(c) => item = c,
                                None => self.unknown_dim(&d.name, d.span),
                            }
                        }
                        let id =
                            self.push(ExprKind::DimArg(item.clone()), Ty::DimArg, true, d.span);
                        out.ordered.push(id);
                        out.dims.push((item, d.span));
                    }
                    ast::ExprKind::Pack(p) => {
                        let item = DimItem::Pack(p.name.clone());
                        if !self.knows(&item) {
                            self.unknown_dim(&p.name, p.span);
                        }
                        let id =
                            self.push(ExprKind::DimArg(item.clone()), Ty::DimArg, true, e.span);
                        out.ordered.push(id);
                        out.dims.push((item, e.span));
                    }
                    ast::ExprKind::Name(n) if b.dims == DimRule::Present => {
                        let id = self.name(n, true);
                        out.ordered.push(id);
                        out.values.push(id);
                    }
                    _ => {
                        let id = self.expr(e);
                        out.ordered.push(id);
                        out.values.push(id);
                    }
                },
                ast::Arg::Keyword(k, e) => {
                    let id = match (&e.kind, b.dims) {
                        (ast::ExprKind::Dim(d), DimRule::Kaiming) => {
                            let item = DimItem::Named(d.name.clone());
                            if !self.knows(&item) {
                                self.unknown_dim(&d.name, d.span);
                            }
                            self.push(ExprKind::DimArg(item), Ty::DimArg, true, d.span)
                        }
                        _ => self.expr(e),
                    };
                    out.keywords.push((k.name.clone(), id, k.span));
                }
                ast::Arg::DimKeyword(d, e) => {
                    let id = self.expr(e);
                    out.dim_keywords.push((d.name.clone(), id, d.span));
                }
                ast::Arg::DimMap(from, to) => {
                    out.maps.push((
                        DimItem::Named(from.name.clone()),
                        DimItem::Named(to.name.clone()),
                        from.span.to(to.span),
                    ));
                }
            }
        }
        out
    }

    fn wrong_args(&mut self, b: &Builtin, span: Span, what: &str) -> ExprId {
        let d = self
            .err(Code::WrongArity, span, format!("`{}` takes {what}", b.name))
            .with_label("wrong arguments")
            .with_help(format!("the forms are: {}", b.signature));
        self.error(d);
        self.error_expr(span)
    }

    /// The float dtype of a float-math result; integers promote to f32.
    fn float_dtype(&mut self, t: &TensorTy, b: &Builtin, span: Span) -> DType {
        match t.dtype {
            DType::Bool => {
                let d = self
                    .err(
                        Code::DTypeMismatch,
                        span,
                        format!("`{}` does not take bools", b.name),
                    )
                    .with_label(format!("found {t}"))
                    .with_help("cast with `f32(b)`");
                self.error(d);
                DType::F32
            }
            d if d.is_int() => DType::F32,
            d => d,
        }
    }

    fn numeric(&mut self, t: &TensorTy, b: &Builtin, span: Span) {
        if t.dtype == DType::Bool {
            let d = self
                .err(
                    Code::DTypeMismatch,
                    span,
                    format!("`{}` does not take bools", b.name),
                )
                .with_label(format!("found {t}"))
                .with_help("cast with `f32(b)` or `i32(b)`");
            self.error(d);
        }
    }

    fn result_dtype(&mut self, rule: DTypeRule, t: &TensorTy, b: &Builtin, span: Span) -> DType {
        match rule {
            DTypeRule::Float => self.float_dtype(t, b, span),
            DTypeRule::Same => {
                self.numeric(t, b, span);
                t.dtype
            }
            DTypeRule::Bool => {
                if t.dtype != DType::Bool {
                    let d = self
                        .err(
                            Code::ExpectedBool,
                            span,
                            format!("`{}` needs bools", b.name),
                        )
                        .with_label(format!("found {t}"));
                    self.error(d);
                }
                DType::Bool
            }
            DTypeRule::I32 => DType::I32,
            DTypeRule::Int => {
                if !t.dtype.is_int() {
                    let d = self
                        .err(
                            Code::ExpectedInteger,
                            span,
                            format!("`{}` needs integers", b.name),
                        )
                        .with_label(format!("found {t}"));
                    self.error(d);
                }
                t.dtype
            }
            DTypeRule::Special => t.dtype,
        }
    }

    fn dims_in(&mut self, t: &TensorTy, dims: &[(DimItem, Span)]) -> bool {
        let mut ok = true;
        for (d, sp) in dims {
            if !self.knows(d) {
                ok = false;
            } else if !t.has(d) {
                let diag = self
                    .err(
                        Code::DimNotInOperand,
                        *sp,
                        format!("`{d}` is not a dim of {t}"),
                    )
                    .with_label("not in the operand");
                self.error(diag);
                ok = false;
            }
        }
        ok
    }

    fn new_dim(&mut self, item: &DimItem) {
        if let DimItem::Named(n) = item {
            self.declare_dim(n);
        }
    }

    /// Checks a builtin call.
    pub fn builtin(&mut self, b: &'static Builtin, args: &[ast::Arg], span: Span) -> ExprId {
        match b.context {
            Context::Test if self.kind != DeclKind::Test => {
                let d = self
                    .err(
                        Code::TestOnly,
                        span,
                        format!("`{}` is only available in tests", b.name),
                    )
                    .with_label("outside a test");
                self.error(d);
            }
            Context::NoGradient if matches!(self.kind, DeclKind::Objective | DeclKind::Adapter) => {
                let d = self
                    .err(Code::NotDifferentiable, span, format!("`{}` has no gradient, so it cannot be used in {}", b.name, with_article(self.kind)))
                    .with_label("no vector-Jacobian product")
                    .with_help("compute it in a `step` or an `init` block, and pass the result in as a `const` input");
                self.error(d);
            }
            _ => {}
        }
        let a = self.sort_args(b, args);
        let positional = a.values.len() + a.dims.len() + a.maps.len();
        let keyword_ok = match b.dims {
            DimRule::Clamp => a.keywords.iter().all(|(k, ..)| k == "min" || k == "max"),
            DimRule::Kaiming => a.keywords.iter().all(|(k, ..)| k == "fan_in" || k == "a"),
            DimRule::ExpectClose => a.keywords.iter().all(|(k, ..)| k == "rtol" || k == "atol"),
            _ => a.keywords.is_empty(),
        };
        if !keyword_ok {
            let (k, _, sp) = a
                .keywords
                .iter()
                .find(|(k, ..)| {
                    !matches!(k.as_str(), "min" | "max" | "fan_in" | "a" | "rtol" | "atol")
                })
                .or(a.keywords.first())
                .cloned()
                .unwrap();
            let d = self
                .err(
                    Code::UnknownKeyword,
                    sp,
                    format!("`{}` has no parameter `{k}`", b.name),
                )
                .with_label("unknown parameter")
                .with_help(format!("the forms are: {}", b.signature));
            self.error(d);
            return self.error_expr(span);
        }
        let reduce_without_dims = b.dims == DimRule::Reduce && a.dims.is_empty();
        if !reduce_without_dims
            && b.dims != DimRule::Kaiming
            && (positional < b.arity.0 || positional > b.arity.1)
            && b.dims != DimRule::Scatter
        {
            let count = if b.arity.0 == b.arity.1 {
                format!(
                    "{} argument{}",
                    b.arity.0,
                    if b.arity.0 == 1 { "" } else { "s" }
                )
            } else {
                format!("{} or more arguments", b.arity.0)
            };
            return self.wrong_args(b, span, &count);
        }
        let stat_all = a.values.iter().all(|v| self.is_static(*v));
        let mk = |cx: &mut Self, ty: Ty, maps: Vec<(DimItem, DimItem)>, stat: bool| {
            let kwargs = a
                .keywords
                .iter()
                .map(|(k, id, _)| (k.clone(), *id))
                .collect();
            let kind = ExprKind::Builtin {
                id: b.id,
                args: a.ordered.clone(),
                kwargs,
                maps,
            };
            cx.push(kind, ty, stat, span)
        };
        let value = |cx: &mut Self, i: usize| -> Option<TensorTy> {
            a.values.get(i).and_then(|id| cx.tensor_of(*id))
        };
        match b.dims {
            DimRule::Map => {
                let Some(t) = value(self, 0) else {
                    return self.error_expr(span);
                };
                let dtype = self.result_dtype(b.dtype, &t, b, span);
                mk(
                    self,
                    Ty::Tensor(TensorTy {
                        dtype,
                        dims: t.dims,
                        weak: t.weak,
                    }),
                    vec![],
                    stat_all,
                )
            }
            DimRule::Zip | DimRule::MinMax | DimRule::Where | DimRule::Clamp
                if b.dims != DimRule::MinMax || a.dims.is_empty() =>
            {
                if a.values.len() != positional {
                    return self.wrong_args(b, span, "values, not dims");
                }
                let mut tys = Vec::new();
                for i in 0..a.values.len() {
                    match value(self, i) {
                        Some(t) => tys.push(t),
                        None => return self.error_expr(span),
                    }
                }
                for (_, id, _) in &a.keywords {
                    match self.tensor_of(*id) {
                        Some(t) => tys.push(t),
                        None => return self.error_expr(span),
                    }
                }
                let (cond, operands) = if b.dims == DimRule::Where {
                    (Some(tys[0].clone()), &tys[1..])
                } else {
                    (None, &tys[..])
                };
                if let Some(c) = &cond {
                    if c.dtype != DType::Bool {
                        let d = self
                            .err(
                                Code::ExpectedBool,
                                self.span(a.values[0]),
                                "the condition of `where` must be bool",
                            )
                            .with_label(format!("found {c}"));
                        self.error(d);
                    }
                }
                let mut joined = operands[0].clone();
                for t in &operands[1..] {
                    let dtype = self.join_dtype(&joined, t, span, b.name);
                    let dims = self.align(&joined.dims, &t.dims, span);
                    joined = TensorTy {
                        dtype,
                        dims,
                        weak: joined.weak && t.weak,
                    };
                }
                if let Some(c) = cond {
                    joined.dims = self.align(&c.dims, &joined.dims, span);
                }
                let dtype = match b.dtype {
                    DTypeRule::Special => joined.dtype,
                    rule => self.result_dtype(rule, &joined, b, span),
                };
                mk(
                    self,
                    Ty::Tensor(TensorTy {
                        dtype,
                        dims: joined.dims,
                        weak: joined.weak,
                    }),
                    vec![],
                    stat_all,
                )
            }
            DimRule::Reduce | DimRule::MinMax | DimRule::Zip | DimRule::Where | DimRule::Clamp => {
                if b.dims != DimRule::Reduce && b.dims != DimRule::MinMax {
                    return self.wrong_args(b, span, "values, not dims");
                }
                if a.values.len() != 1 || a.dims.is_empty() {
                    let d = self
                        .err(
                            Code::DimNotInOperand,
                            span,
                            format!("`{}` reduces over named dims: `{}`", b.name, b.signature),
                        )
                        .with_label("name the dims to reduce")
                        .with_help("FTL never reduces over all dims implicitly");
                    self.error(d);
                    return self.error_expr(span);
                }
                if b.id == BuiltinId::Argmax && a.dims.len() != 1 {
                    return self.wrong_args(b, span, "exactly one dim");
                }
                let Some(t) = value(self, 0) else {
                    return self.error_expr(span);
                };
                if !self.dims_in(&t, &a.dims) {
                    return self.error_expr(span);
                }
                let dtype = self.result_dtype(b.dtype, &t, b, span);
                let dims = t
                    .dims
                    .iter()
                    .filter(|d| !a.dims.iter().any(|(r, _)| r == *d))
                    .cloned()
                    .collect();
                mk(self, Ty::Tensor(TensorTy::new(dtype, dims)), vec![], false)
            }
            DimRule::AlongDim => {
                let Some(t) = value(self, 0) else {
                    return self.error_expr(span);
                };
                if a.dims.len() != 1 {
                    return self.wrong_args(b, span, "a tensor and one dim");
                }
                if !self.dims_in(&t, &a.dims) {
                    return self.error_expr(span);
                }
                let dtype = self.result_dtype(b.dtype, &t, b, span);
                mk(
                    self,
                    Ty::Tensor(TensorTy::new(dtype, t.dims)),
                    vec![],
                    false,
                )
            }
            DimRule::Iota => {
                if a.dims.len() != 1 || !a.values.is_empty() {
                    return self.wrong_args(b, span, "one dim");
                }
                mk(
                    self,
                    Ty::Tensor(TensorTy::new(DType::I32, vec![a.dims[0].0.clone()])),
                    vec![],
                    false,
                )
            }
            DimRule::Eye => {
                let [(r, _), (c, csp)] = a.dims.as_slice() else {
                    return self.wrong_args(b, span, "two dims");
                };
                if !a.values.is_empty() {
                    return self.wrong_args(b, span, "two dims");
                }
                if r == c {
                    let d = self
                        .err(Code::DimMismatch, *csp, format!("`eye` needs two different dims, got `{r}` twice"))
                        .with_label("the same dim")
                        .with_help(format!("a second dim of the same size is written with a prime: `eye({r}, {r}')`"));
                    self.error(d);
                    return self.error_expr(span);
                }
                mk(
                    self,
                    Ty::Tensor(TensorTy::new(DType::F32, vec![r.clone(), c.clone()])),
                    vec![],
                    false,
                )
            }
            DimRule::Size => {
                if !a.values.is_empty() || a.dims.is_empty() {
                    return self.wrong_args(b, span, "dims or a pack");
                }
                let dims: Vec<DimItem> = a.dims.iter().map(|d| d.0.clone()).collect();
                self.push(
                    ExprKind::DimSize(dims),
                    Ty::Tensor(TensorTy::scalar(DType::I32)),
                    false,
                    span,
                )
            }
            DimRule::Scatter => {
                let (Some(t), [(target, i, dsp)]) = (value(self, 0), a.dim_keywords.as_slice())
                else {
                    return self.wrong_args(b, span, "a value and a target `D: index`");
                };
                let target_item = DimItem::Named(target.clone());
                if !self.knows(&target_item) {
                    self.unknown_dim(target, *dsp);
                    return self.error_expr(span);
                }
                let Some(it) = self.tensor_of(*i) else {
                    return self.error_expr(span);
                };
                if !it.dtype.is_int() {
                    let d = self
                        .err(
                            Code::ExpectedInteger,
                            self.span(*i),
                            "scatter positions must be integers",
                        )
                        .with_label(format!("found {it}"));
                    self.error(d);
                }
                let mut dims: Vec<DimItem> = t
                    .dims
                    .iter()
                    .filter(|d| !it.dims.contains(d))
                    .cloned()
                    .collect();
                dims.push(target_item.clone());
                let mut ordered = a.ordered.clone();
                ordered.push(*i);
                let kind = ExprKind::Builtin {
                    id: b.id,
                    args: ordered,
                    kwargs: vec![],
                    maps: vec![(target_item.clone(), target_item)],
                };
                self.push(kind, Ty::Tensor(TensorTy::new(t.dtype, dims)), false, span)
            }
            DimRule::TopK => {
                let (Some(t), [(from, to, _)]) = (value(self, 0), a.maps.as_slice()) else {
                    return self.wrong_args(b, span, "a tensor and `D -> K`");
                };
                let (from, to) = (from.clone(), to.clone());
                if !self.dims_in(&t, &[(from.clone(), span)]) {
                    return self.error_expr(span);
                }
                self.new_dim(&to);
                let dims: Vec<DimItem> = t
                    .dims
                    .iter()
                    .map(|d| if *d == from { to.clone() } else { d.clone() })
                    .collect();
                let ty = Ty::Tuple(vec![
                    Ty::Tensor(TensorTy::new(t.dtype, dims.clone())),
                    Ty::Tensor(TensorTy::new(DType::I32, dims)),
                ]);
                mk(self, ty, vec![(from, to)], false)
            }
            DimRule::Decomposition => self.decomposition(b, &a, span),
            DimRule::Solve => {
                let (Some(m), Some(rhs), [(c, csp)]) =
                    (value(self, 0), value(self, 1), a.dims.as_slice())
                else {
                    return self.wrong_args(
                        b,
                        span,
                        "a matrix, a right-hand side and the matrix's column dim",
                    );
                };
                // A's last two dims are the matrix (as torch.linalg.solve), one of them `c`;
                // its leading dims are batch dims, which b must have too.
                let k = m.dims.len();
                let fits = k >= 2
                    && m.dims[k - 2..].contains(c)
                    && m.dims[k - 2] != m.dims[k - 1]
                    && m.dims.iter().all(|d| matches!(d, DimItem::Named(_)))
                    && m.dims.iter().filter(|d| *d != c).all(|d| rhs.has(d))
                    && !rhs.has(c);
                if !fits {
                    let d = self
                        .err(Code::DimMismatch, *csp, format!("`solve` needs A's last two dims to be the matrix (one of them `{c}`), and b to have A's other dims but not `{c}`"))
                        .with_label(format!("A is {m}, b is {rhs}"));
                    self.error(d);
                    return self.error_expr(span);
                }
                let row = ftl_runtime::solve::solve_row(&m.dims, c);
                let dims = rhs
                    .dims
                    .iter()
                    .map(|d| if *d == row { c.clone() } else { d.clone() })
                    .collect();
                let dtype = self.float_dtype(&m, b, span);
                mk(self, Ty::Tensor(TensorTy::new(dtype, dims)), vec![], false)
            }
            DimRule::Inverse => {
                let (Some(m), [(r, rsp), (c, _)]) = (value(self, 0), a.dims.as_slice()) else {
                    return self.wrong_args(b, span, "a matrix and its row and column dims");
                };
                if r == c || !m.has(r) || !m.has(c) || matches!(r, DimItem::Pack(_)) {
                    let d = self
                        .err(
                            Code::DimMismatch,
                            *rsp,
                            format!("`{}` needs two different dims of A, its rows `{r}` and columns `{c}`", b.name),
                        )
                        .with_label(format!("A is {m}"));
                    self.error(d);
                    return self.error_expr(span);
                }
                let dims = m
                    .dims
                    .iter()
                    .map(|d| match d {
                        d if d == r => c.clone(),
                        d if d == c => r.clone(),
                        d => d.clone(),
                    })
                    .collect();
                let dtype = self.float_dtype(&m, b, span);
                mk(self, Ty::Tensor(TensorTy::new(dtype, dims)), vec![], false)
            }
            DimRule::Determinant => {
                let (Some(m), [(r, rsp), (c, _)]) = (value(self, 0), a.dims.as_slice()) else {
                    return self.wrong_args(b, span, "a matrix and its row and column dims");
                };
                if r == c
                    || !m.has(r)
                    || !m.has(c)
                    || m.dims.iter().any(|d| matches!(d, DimItem::Pack(_)))
                {
                    let d = self
                        .err(
                            Code::DimMismatch,
                            *rsp,
                            format!("`{}` needs two different dims of A, its rows `{r}` and columns `{c}` (batch dims named, no pack)", b.name),
                        )
                        .with_label(format!("A is {m}"));
                    self.error(d);
                    return self.error_expr(span);
                }
                let dims: Vec<DimItem> = m
                    .dims
                    .iter()
                    .filter(|d| *d != r && *d != c)
                    .cloned()
                    .collect();
                let dtype = self.float_dtype(&m, b, span);
                let t = Ty::Tensor(TensorTy::new(dtype, dims));
                let ty = if b.id == BuiltinId::Slogdet {
                    Ty::Tuple(vec![t.clone(), t])
                } else {
                    t
                };
                mk(self, ty, vec![], false)
            }
            DimRule::Contract => {
                let (Some(x), Some(y)) = (value(self, 0), value(self, 1)) else {
                    return self.error_expr(span);
                };
                let mut ok = true;
                for (d, sp) in &a.dims {
                    if !x.has(d) || !y.has(d) {
                        let diag = self
                            .err(
                                Code::DimNotInOperand,
                                *sp,
                                format!("`{d}` must be a dim of both operands"),
                            )
                            .with_label("not shared");
                        self.error(diag);
                        ok = false;
                    }
                }
                if !ok {
                    return self.error_expr(span);
                }
                let dtype = self.join_dtype(&x, &y, span, "contract");
                let keep = |d: &DimItem| !a.dims.iter().any(|(k, _)| k == d);
                let mut dims: Vec<DimItem> = x.dims.iter().filter(|d| keep(d)).cloned().collect();
                dims.extend(
                    y.dims
                        .iter()
                        .filter(|d| keep(d) && !dims.contains(d))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
                mk(self, Ty::Tensor(TensorTy::new(dtype, dims)), vec![], false)
            }
            DimRule::Construct | DimRule::Full => {
                let fill = if b.dims == DimRule::Full {
                    match value(self, 0) {
                        Some(t) if t.is_scalar() => Some(t),
                        Some(t) => {
                            let d = self
                                .err(
                                    Code::ExpectedScalar,
                                    self.span(a.values[0]),
                                    "the fill value must be a scalar",
                                )
                                .with_label(format!("found {t}"));
                            self.error(d);
                            return self.error_expr(span);
                        }
                        None => return self.error_expr(span),
                    }
                } else {
                    if !a.values.is_empty() {
                        return self.wrong_args(b, span, "dims only");
                    }
                    None
                };
                let dtype = fill.map_or(DType::F32, |t| t.dtype);
                if a.dims.is_empty() {
                    return mk(self, Ty::Shapeless(dtype), vec![], false);
                }
                let dims = a.dims.iter().map(|d| d.0.clone()).collect();
                mk(self, Ty::Tensor(TensorTy::new(dtype, dims)), vec![], false)
            }
            DimRule::Linspace => {
                if a.values.len() != 2 || a.dims.len() != 1 {
                    return self.wrong_args(b, span, "a start, an end and a dim");
                }
                for i in 0..2 {
                    if let Some(t) = value(self, i) {
                        if !t.is_scalar() {
                            let d = self
                                .err(
                                    Code::ExpectedScalar,
                                    self.span(a.values[i]),
                                    "`linspace` bounds must be scalars",
                                )
                                .with_label(format!("found {t}"));
                            self.error(d);
                        }
                    }
                }
                mk(
                    self,
                    Ty::Tensor(TensorTy::new(DType::F32, vec![a.dims[0].0.clone()])),
                    vec![],
                    false,
                )
            }
            DimRule::Kaiming => {
                if positional != 0 || !a.keywords.iter().any(|(k, ..)| k == "fan_in") {
                    return self.wrong_args(
                        b,
                        span,
                        "`fan_in: D` and optionally `a: <gain slope>`",
                    );
                }
                mk(self, Ty::Shapeless(DType::F32), vec![], false)
            }
            DimRule::Bernoulli => {
                let Some(t) = value(self, 0) else {
                    return self.error_expr(span);
                };
                let _ = self.float_dtype(&t, b, span);
                mk(
                    self,
                    Ty::Tensor(TensorTy::new(DType::F32, t.dims)),
                    vec![],
                    false,
                )
            }
            DimRule::Drop => {
                let (Some(x), Some(p)) = (value(self, 0), value(self, 1)) else {
                    return self.error_expr(span);
                };
                if !p.is_scalar() {
                    let d = self
                        .err(
                            Code::ExpectedScalar,
                            self.span(a.values[1]),
                            "the dropout probability must be a scalar",
                        )
                        .with_label(format!("found {p}"));
                    self.error(d);
                }
                let dtype = self.float_dtype(&x, b, span);
                mk(
                    self,
                    Ty::Tensor(TensorTy::new(dtype, x.dims)),
                    vec![],
                    false,
                )
            }
            DimRule::Present => {
                let id = a.values.first().copied();
                let is_optional_param = id.is_some_and(|id| match &self.body.expr(id).kind {
                    ExprKind::Param(i) => self.params[*i as usize].optional,
                    _ => false,
                });
                if !is_optional_param {
                    let sp = id.map_or(span, |id| self.span(id));
                    let d = self
                        .err(
                            Code::CoalesceNotOptional,
                            sp,
                            "`present` takes an optional input",
                        )
                        .with_label("not an optional input");
                    self.error(d);
                }
                mk(
                    self,
                    Ty::Tensor(TensorTy::scalar(DType::Bool)),
                    vec![],
                    true,
                )
            }
            DimRule::Print => {
                if value(self, 0).is_none() {
                    return self.error_expr(span);
                }
                mk(self, Ty::Unit, vec![], false)
            }
            DimRule::ExpectClose => {
                let (Some(x), Some(y)) = (value(self, 0), value(self, 1)) else {
                    return mk(self, Ty::Unit, vec![], false);
                };
                self.join_dtype(&x, &y, span, "expect_close");
                self.align(&x.dims, &y.dims, span);
                if a.values.len() == 3 && !a.keywords.is_empty() {
                    let d = self
                        .err(
                            Code::WrongArity,
                            span,
                            "`expect_close` takes a tolerance or `rtol:`/`atol:`, not both",
                        )
                        .with_label("both given")
                        .with_help(format!("the forms are: {}", b.signature));
                    self.error(d);
                }
                let tolerances = a
                    .values
                    .get(2)
                    .copied()
                    .into_iter()
                    .chain(a.keywords.iter().map(|(_, id, _)| *id));
                for id in tolerances.collect::<Vec<_>>() {
                    let tol = self.tensor_of(id);
                    if !tol
                        .as_ref()
                        .is_some_and(|t| t.is_scalar() && t.dtype.is_float())
                    {
                        let found = self.ty(id).clone();
                        let d = self
                            .err(
                                Code::ExpectedScalar,
                                self.span(id),
                                "a tolerance must be a float scalar",
                            )
                            .with_label(format!("found {found}"));
                        self.error(d);
                    }
                }
                mk(self, Ty::Unit, vec![], false)
            }
        }
    }

    fn decomposition(&mut self, b: &'static Builtin, a: &Args, span: Span) -> ExprId {
        let Some(m) = a.values.first().and_then(|id| self.tensor_of(*id)) else {
            return self.error_expr(span);
        };
        let dtype = self.float_dtype(&m, b, span);
        // The matrix's other dims are batch dims: one decomposition per matrix, the batch dims
        // leading in every result.
        let named: Vec<&DimItem> = a
            .dims
            .iter()
            .map(|(d, _)| d)
            .chain(a.maps.iter().map(|(c, _, _)| c))
            .collect();
        let batch: Vec<DimItem> = m
            .dims
            .iter()
            .filter(|d| !named.contains(d))
            .cloned()
            .collect();
        if batch.iter().any(|d| matches!(d, DimItem::Pack(_))) {
            return self.wrong_args(b, span, "a matrix whose batch dims are named (no pack)");
        }
        let t = |dims: Vec<DimItem>| {
            Ty::Tensor(TensorTy::new(
                dtype,
                batch.iter().cloned().chain(dims).collect(),
            ))
        };
        let (ty, maps) = match (b.id, a.dims.as_slice(), a.maps.as_slice()) {
            (BuiltinId::Svd | BuiltinId::Qr | BuiltinId::Eigh, [(row, _)], [(col, new, _)]) => {
                if !self.dims_in(&m, &[(row.clone(), span), (col.clone(), span)]) {
                    return self.error_expr(span);
                }
                self.new_dim(new);
                let ty = match b.id {
                    BuiltinId::Svd => Ty::Tuple(vec![
                        t(vec![row.clone(), new.clone()]),
                        t(vec![new.clone()]),
                        t(vec![new.clone(), col.clone()]),
                    ]),
                    BuiltinId::Qr => Ty::Tuple(vec![
                        t(vec![row.clone(), new.clone()]),
                        t(vec![new.clone(), col.clone()]),
                    ]),
                    _ => Ty::Tuple(vec![
                        t(vec![new.clone()]),
                        t(vec![row.clone(), new.clone()]),
                    ]),
                };
                (ty, vec![(col.clone(), new.clone())])
            }
            (BuiltinId::Lu, [(row, _), (col, _)], []) => {
                if !self.dims_in(&m, &a.dims) {
                    return self.error_expr(span);
                }
                let perm = Ty::Tensor(TensorTy::new(
                    DType::I32,
                    batch.iter().cloned().chain([row.clone()]).collect(),
                ));
                (
                    Ty::Tuple(vec![
                        perm,
                        t(vec![row.clone(), col.clone()]),
                        t(vec![row.clone(), col.clone()]),
                    ]),
                    vec![],
                )
            }
            _ => return self.wrong_args(b, span, &format!("the form `{}`", b.signature)),
        };
        let kind = ExprKind::Builtin {
            id: b.id,
            args: a.ordered.clone(),
            kwargs: vec![],
            maps,
        };
        self.push(kind, ty, false, span)
    }
}
