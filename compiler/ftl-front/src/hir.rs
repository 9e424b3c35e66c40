//! The typed HIR: each checked declaration with its names resolved (parameters, locals,
//! declarations, builtins), every expression typed, in an arena with typed handles. Lowering to
//! the tensor graph IR starts here. `ftc build FILE --emit hir` prints [`print_decl`].

use crate::builtins::BuiltinId;
use crate::resolve::ModuleId;
use crate::types::{DimItem, Ty};
use ftl_runtime::DType;
use ftl_syntax::ast::{BinOp, CmpOp, ParamKind, Span, UnOp};
use std::fmt::Write;

/// A handle to an expression of a [`Body`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExprId(pub u32);

/// A handle to a local (`let`) of a [`Body`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalId(pub u32);

/// A handle to a declaration of the [`Hir`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeclId(pub u32);

/// The checked program.
#[derive(Debug, Default)]
pub struct Hir {
    /// Declarations and attached blocks, by [`DeclId`] (None where checking failed early).
    pub decls: Vec<Option<Decl>>,
}

impl Hir {
    /// The declaration behind a handle, if it was checked.
    pub fn decl(&self, id: DeclId) -> Option<&Decl> {
        self.decls.get(id.0 as usize).and_then(Option::as_ref)
    }
}

/// What a declaration is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeclKind {
    /// `fn`
    Fn,
    /// `objective`
    Objective,
    /// `adapter`
    Adapter,
    /// `step`
    Step,
    /// `init` of an adapter
    Init,
    /// `merge` of an adapter
    Merge,
    /// `unmerge` of an adapter
    Unmerge,
    /// `test`
    Test,
}

impl DeclKind {
    /// The keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            DeclKind::Fn => "fn",
            DeclKind::Objective => "objective",
            DeclKind::Adapter => "adapter",
            DeclKind::Step => "step",
            DeclKind::Init => "init",
            DeclKind::Merge => "merge",
            DeclKind::Unmerge => "unmerge",
            DeclKind::Test => "test",
        }
    }

    /// Whether gradients flow through this kind of body.
    pub fn differentiable(self) -> bool {
        matches!(self, DeclKind::Objective | DeclKind::Adapter)
    }
}

/// A parameter with its checked type.
#[derive(Clone, Debug)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// Input, const, param or static.
    pub kind: ParamKind,
    /// Its type (enum options are `Ty::Enum`).
    pub ty: Ty,
    /// Declared `T?`.
    pub optional: bool,
    /// Its default, in the body's arena.
    pub default: Option<ExprId>,
}

/// One checked declaration.
#[derive(Clone, Debug)]
pub struct Decl {
    /// The module that declares it.
    pub module: ModuleId,
    /// `module::name` (attached blocks: `module::adapter.init`).
    pub name: String,
    /// What it is.
    pub kind: DeclKind,
    /// Its parameters (for attached blocks: the adapter's, then its own).
    pub params: Vec<Param>,
    /// Every dim of the declaration, in the order they were bound.
    pub dims: Vec<String>,
    /// Its outputs with their types (the record a call returns).
    pub outputs: Vec<(String, Ty)>,
    /// The body.
    pub body: Body,
}

impl Decl {
    /// The name without its module (`sigmoid`, `lora.merge`, `test "name"`): what `--entry`
    /// takes.
    pub fn short_name(&self) -> &str {
        self.name
            .split_once("::")
            .map_or(self.name.as_str(), |(_, n)| n)
    }
}

/// Statements and expressions of one body.
#[derive(Clone, Debug, Default)]
pub struct Body {
    /// Parameter names, by index (for printing `%name`).
    pub param_names: Vec<String>,
    /// The expression arena.
    pub exprs: Vec<Expr>,
    /// The locals, by [`LocalId`].
    pub locals: Vec<(String, Ty)>,
    /// `requires` conditions and dim equations.
    pub requires: Vec<ExprId>,
    /// Primed dims used without a rename introducing them (`iota(R')`), each with the dim it
    /// copies the size of (`R`).
    pub primes: Vec<(String, String)>,
    /// The statements in order.
    pub stmts: Vec<Stmt>,
    /// The body's value, if it has one.
    pub result: Option<ExprId>,
}

impl Body {
    /// Adds an expression to the arena.
    pub fn push(&mut self, expr: Expr) -> ExprId {
        self.exprs.push(expr);
        ExprId(self.exprs.len() as u32 - 1)
    }

    /// The expression behind a handle.
    pub fn expr(&self, id: ExprId) -> &Expr {
        &self.exprs[id.0 as usize]
    }
}

/// A statement.
#[derive(Clone, Debug)]
pub enum Stmt {
    /// `let a = e` or `let (a, b) = e`.
    Let(Vec<LocalId>, ExprId),
    /// `loss e`
    Loss(ExprId),
    /// `metric name = e`
    Metric(String, ExprId),
    /// `metric ..e`: every field of the record e is a metric.
    Metrics(ExprId),
    /// `name = e` (an output)
    Assign(String, ExprId),
    /// `expect_close(actual, expected, tol)` or `expect_close(actual, expected, rtol: r, atol: a)`
    ExpectClose(ExprId, ExprId, Tolerance),
    /// `gradcheck f(D: n, k: v)`
    Gradcheck(DeclId, Vec<(String, ExprId)>),
    /// `print(x)` in a test.
    Print(ExprId),
}

/// How `expect_close` compares.
#[derive(Clone, Copy, Debug)]
pub enum Tolerance {
    /// `|actual − expected| ≤ tol·(1 + |expected|)`.
    Scaled(ExprId),
    /// PyTorch's `assert_close`: `|actual − expected| ≤ atol + rtol·|expected|`, each
    /// defaulting to PyTorch's value for the actual's dtype.
    Close {
        /// `rtol:`, if given.
        rtol: Option<ExprId>,
        /// `atol:`, if given.
        atol: Option<ExprId>,
    },
}

impl Tolerance {
    /// The expressions it reads.
    pub fn exprs(&self) -> Vec<ExprId> {
        match *self {
            Tolerance::Scaled(t) => vec![t],
            Tolerance::Close { rtol, atol } => rtol.into_iter().chain(atol).collect(),
        }
    }
}

/// A typed expression.
#[derive(Clone, Debug)]
pub struct Expr {
    /// What it computes.
    pub kind: ExprKind,
    /// Its type.
    pub ty: Ty,
    /// Known at build time (literals, static options, `present`).
    pub is_static: bool,
    /// Where it was written.
    pub span: Span,
}

/// The expression forms after name resolution.
#[derive(Clone, Debug)]
pub enum ExprKind {
    /// Integer literal.
    Int(i64),
    /// Float literal.
    Float(f64),
    /// Bool literal.
    Bool(bool),
    /// Tensor literal (row-major elements).
    Tensor(Vec<ExprId>),
    /// A parameter, by index.
    Param(u32),
    /// A local.
    Local(LocalId),
    /// The size of dims, as an i32 scalar.
    DimSize(Vec<DimItem>),
    /// A dim or pack passed to a builtin.
    DimArg(DimItem),
    /// An enum variant.
    Variant(String),
    /// `-x`, `!x`
    Unary(UnOp, ExprId),
    /// `a op b`
    Binary(BinOp, ExprId, ExprId),
    /// `a < b <= c`
    Compare(ExprId, Vec<(CmpOp, ExprId)>),
    /// `f32(x)`
    Cast(DType, ExprId),
    /// A builtin call: positional args, keyword args, and `D -> K` maps.
    Builtin {
        /// Which builtin.
        id: BuiltinId,
        /// Positional arguments (dims appear as `DimArg`).
        args: Vec<ExprId>,
        /// Keyword arguments.
        kwargs: Vec<(String, ExprId)>,
        /// `D -> K` arguments, and `scatter`'s target dim (`D -> D`).
        maps: Vec<(DimItem, DimItem)>,
    },
    /// A call of a declaration: one argument per callee parameter (None = default or absent).
    Call {
        /// The callee.
        decl: DeclId,
        /// Arguments by callee parameter.
        args: Vec<Option<ExprId>>,
    },
    /// `r.name`
    Field(ExprId, String),
    /// `x[D: i]` / `x[D: i else v]`
    Gather {
        /// The tensor read.
        base: ExprId,
        /// The dim indexed.
        dim: String,
        /// The index tensor.
        index: ExprId,
        /// The value read out of range.
        default: Option<ExprId>,
    },
    /// `x[R -> R']`, `x[N -> (S, B)]`, `x[(O1, O2) -> O]`, `x[..S -> D]`, `x[A <-> B]`
    Reshape {
        /// The tensor.
        base: ExprId,
        /// Dims taken.
        from: Vec<DimItem>,
        /// Dims produced.
        to: Vec<DimItem>,
    },
    /// `if c { a } else { b }` with a static condition.
    If(ExprId, ExprId, ExprId),
    /// `match e { v => x, … }`; `None` is the `_` arm.
    Match(ExprId, Vec<(Option<String>, ExprId)>),
    /// A block's `let`s followed by its value.
    Block(Vec<Stmt>, ExprId),
    /// `for var in lo..hi, acc = init { body }` (static bounds; unrolled when lowered).
    For {
        /// The iteration variable (a static `i32`).
        var: LocalId,
        /// Its first value (static).
        lo: ExprId,
        /// One past its last value (static).
        hi: ExprId,
        /// The accumulator.
        acc: LocalId,
        /// The accumulator's first value.
        init: ExprId,
        /// The next accumulator (a block).
        body: ExprId,
    },
    /// `(name: e, …)`
    Record(Vec<(String, ExprId)>),
    /// An error already reported.
    Error,
}

/// The text form of one checked declaration; callees are named through `hir`.
pub fn print_decl(hir: &Hir, d: &Decl) -> String {
    let mut out = String::new();
    write_decl(&mut out, hir, d);
    out
}

fn write_decl(out: &mut String, hir: &Hir, d: &Decl) {
    let _ = writeln!(out, "{} {}", d.kind.keyword(), d.name);
    if !d.dims.is_empty() {
        let _ = writeln!(out, "  dims {}", d.dims.join(", "));
    }
    for p in &d.params {
        let kind = match p.kind {
            ParamKind::Input => "in",
            ParamKind::Const => "const",
            ParamKind::Param => "param",
            ParamKind::Static => "static",
        };
        let _ = write!(
            out,
            "  {kind} {}: {}{}",
            p.name,
            p.ty,
            if p.optional { "?" } else { "" }
        );
        if let Some(def) = p.default {
            let _ = write!(out, " = {}", expr_text(hir, &d.body, def));
        }
        out.push('\n');
    }
    for r in &d.body.requires {
        let _ = writeln!(out, "  requires {}", expr_text(hir, &d.body, *r));
    }
    for (name, ty) in &d.outputs {
        let _ = writeln!(out, "  out {name}: {ty}");
    }
    for s in &d.body.stmts {
        print_stmt(out, hir, &d.body, s, 1);
    }
    if let Some(r) = d.body.result {
        let _ = writeln!(
            out,
            "  result: {} = {}",
            d.body.expr(r).ty,
            expr_text(hir, &d.body, r)
        );
    }
}

fn print_stmt(out: &mut String, hir: &Hir, body: &Body, s: &Stmt, depth: usize) {
    let pad = "  ".repeat(depth);
    let e = |id: ExprId| expr_text(hir, body, id);
    match s {
        Stmt::Let(locals, value) => {
            let names: Vec<String> = locals
                .iter()
                .map(|l| {
                    format!(
                        "{}: {}",
                        body.locals[l.0 as usize].0, body.locals[l.0 as usize].1
                    )
                })
                .collect();
            let _ = writeln!(out, "{pad}let {} = {}", names.join(", "), e(*value));
        }
        Stmt::Loss(v) => {
            let _ = writeln!(out, "{pad}loss: {} = {}", body.expr(*v).ty, e(*v));
        }
        Stmt::Metric(n, v) => {
            let _ = writeln!(out, "{pad}metric {n}: {} = {}", body.expr(*v).ty, e(*v));
        }
        Stmt::Metrics(v) => {
            let _ = writeln!(out, "{pad}metric ..{}: {}", e(*v), body.expr(*v).ty);
        }
        Stmt::Assign(n, v) => {
            let _ = writeln!(out, "{pad}{n}: {} := {}", body.expr(*v).ty, e(*v));
        }
        Stmt::ExpectClose(a, b, Tolerance::Scaled(t)) => {
            let _ = writeln!(out, "{pad}expect_close({}, {}, {})", e(*a), e(*b), e(*t));
        }
        Stmt::ExpectClose(a, b, Tolerance::Close { rtol, atol }) => {
            let mut args = vec![e(*a), e(*b)];
            args.extend(rtol.map(|r| format!("rtol: {}", e(r))));
            args.extend(atol.map(|x| format!("atol: {}", e(x))));
            let _ = writeln!(out, "{pad}expect_close({})", args.join(", "));
        }
        Stmt::Print(x) => {
            let _ = writeln!(out, "{pad}print({})", e(*x));
        }
        Stmt::Gradcheck(decl, args) => {
            let name = hir.decl(*decl).map_or("?", |d| d.name.as_str());
            let args: Vec<String> = args
                .iter()
                .map(|(k, v)| format!("{k}: {}", e(*v)))
                .collect();
            let _ = writeln!(out, "{pad}gradcheck {name}({})", args.join(", "));
        }
    }
}

/// One expression as text: parameters as `%name`, calls by qualified name, fully parenthesized.
pub fn expr_text(hir: &Hir, body: &Body, id: ExprId) -> String {
    expr_text_with(hir, body, id, "%")
}

/// One expression as a user reads it in a diagnostic: as [`expr_text`], parameters by their
/// bare names.
pub fn expr_source_text(hir: &Hir, body: &Body, id: ExprId) -> String {
    expr_text_with(hir, body, id, "")
}

fn expr_text_with(hir: &Hir, body: &Body, id: ExprId, param_prefix: &str) -> String {
    let e = body.expr(id);
    let t = |id: ExprId| expr_text_with(hir, body, id, param_prefix);
    let list = |ids: &[ExprId]| ids.iter().map(|i| t(*i)).collect::<Vec<_>>().join(", ");
    match &e.kind {
        ExprKind::Int(v) => v.to_string(),
        ExprKind::Float(v) => format!("{v:?}"),
        ExprKind::Bool(v) => v.to_string(),
        ExprKind::Tensor(elems) => format!("[{}]", list(elems)),
        ExprKind::Param(i) => format!("{param_prefix}{}", body.param_names[*i as usize]),
        ExprKind::Local(l) => body.locals[l.0 as usize].0.clone(),
        ExprKind::DimSize(dims) => {
            format!(
                "size({})",
                dims.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        ExprKind::DimArg(d) => d.to_string(),
        ExprKind::Variant(v) => format!("#{v}"),
        ExprKind::Unary(op, a) => format!("{}{}", if *op == UnOp::Neg { "-" } else { "!" }, t(*a)),
        ExprKind::Binary(op, a, b) => format!("({} {} {})", t(*a), op.symbol(), t(*b)),
        ExprKind::Compare(first, rest) => {
            let mut s = format!("({}", t(*first));
            for (op, x) in rest {
                let _ = write!(s, " {} {}", op.symbol(), t(*x));
            }
            s.push(')');
            s
        }
        ExprKind::Cast(d, a) => format!("{d}({})", t(*a)),
        ExprKind::Builtin {
            id,
            args,
            kwargs,
            maps,
        } => {
            let name = id.name();
            let mut parts: Vec<String> = args.iter().map(|a| t(*a)).collect();
            parts.extend(kwargs.iter().map(|(k, v)| format!("{k}: {}", t(*v))));
            parts.extend(maps.iter().map(|(a, b)| format!("{a} -> {b}")));
            format!("{name}({}) : {}", parts.join(", "), e.ty)
        }
        ExprKind::Call { decl, args } => {
            let callee = hir.decl(*decl);
            let name = callee.map_or("?", |d| d.name.as_str());
            let parts: Vec<String> = args
                .iter()
                .enumerate()
                .filter_map(|(i, a)| {
                    let pname = callee
                        .and_then(|d| d.params.get(i))
                        .map_or("?", |p| p.name.as_str());
                    a.map(|a| format!("{pname}: {}", t(a)))
                })
                .collect();
            format!("call {name}({})", parts.join(", "))
        }
        ExprKind::Field(r, f) => format!("{}.{f}", t(*r)),
        ExprKind::Gather {
            base,
            dim,
            index,
            default,
        } => match default {
            Some(d) => format!("{}[{dim}: {} else {}]", t(*base), t(*index), t(*d)),
            None => format!("{}[{dim}: {}]", t(*base), t(*index)),
        },
        ExprKind::Reshape { base, from, to } => {
            let j = |v: &[DimItem]| {
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!("{}[({}) -> ({})]", t(*base), j(from), j(to))
        }
        ExprKind::If(c, a, b) => format!("if {} then {} else {}", t(*c), t(*a), t(*b)),
        ExprKind::For {
            var,
            lo,
            hi,
            acc,
            init,
            body: b,
        } => format!(
            "for %{} in {}..{}, %{} = {} {}",
            body.locals[var.0 as usize].0,
            t(*lo),
            t(*hi),
            body.locals[acc.0 as usize].0,
            t(*init),
            t(*b)
        ),
        ExprKind::Match(s, arms) => {
            let arms: Vec<String> = arms
                .iter()
                .map(|(p, v)| format!("{} => {}", p.as_deref().unwrap_or("_"), t(*v)))
                .collect();
            format!("match {} {{ {} }}", t(*s), arms.join(", "))
        }
        ExprKind::Block(stmts, value) => {
            let mut s = String::from("{ ");
            for st in stmts {
                let mut line = String::new();
                print_stmt(&mut line, hir, body, st, 0);
                s.push_str(line.trim_end());
                s.push_str("; ");
            }
            s.push_str(&t(*value));
            s.push_str(" }");
            s
        }
        ExprKind::Record(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|(n, v)| format!("{n}: {}", t(*v)))
                .collect();
            format!("({})", parts.join(", "))
        }
        ExprKind::Error => "{error}".to_string(),
    }
}

impl ExprKind {
    /// The sub-expressions an expression reads.
    pub fn children(&self) -> Vec<ExprId> {
        match self {
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Bool(_)
            | ExprKind::Param(_)
            | ExprKind::Local(_)
            | ExprKind::DimSize(_)
            | ExprKind::DimArg(_)
            | ExprKind::Variant(_)
            | ExprKind::Error => Vec::new(),
            ExprKind::Tensor(xs) => xs.clone(),
            ExprKind::Unary(_, a) | ExprKind::Cast(_, a) | ExprKind::Field(a, _) => vec![*a],
            ExprKind::Binary(_, a, b) => vec![*a, *b],
            ExprKind::Compare(a, rest) => std::iter::once(*a)
                .chain(rest.iter().map(|(_, e)| *e))
                .collect(),
            ExprKind::Builtin { args, kwargs, .. } => args
                .iter()
                .copied()
                .chain(kwargs.iter().map(|(_, e)| *e))
                .collect(),
            ExprKind::Call { args, .. } => args.iter().flatten().copied().collect(),
            ExprKind::Gather {
                base,
                index,
                default,
                ..
            } => [*base, *index].into_iter().chain(*default).collect(),
            ExprKind::Reshape { base, .. } => vec![*base],
            ExprKind::If(c, a, b) => vec![*c, *a, *b],
            ExprKind::For {
                lo, hi, init, body, ..
            } => vec![*lo, *hi, *init, *body],
            ExprKind::Match(e, arms) => std::iter::once(*e)
                .chain(arms.iter().map(|(_, x)| *x))
                .collect(),
            ExprKind::Block(stmts, value) => stmts
                .iter()
                .flat_map(Stmt::exprs)
                .chain(std::iter::once(*value))
                .collect(),
            ExprKind::Record(fields) => fields.iter().map(|(_, e)| *e).collect(),
        }
    }
}

impl Stmt {
    /// The expressions a statement reads.
    pub fn exprs(&self) -> Vec<ExprId> {
        match self {
            Stmt::Let(_, e)
            | Stmt::Loss(e)
            | Stmt::Metric(_, e)
            | Stmt::Metrics(e)
            | Stmt::Assign(_, e)
            | Stmt::Print(e) => vec![*e],
            Stmt::ExpectClose(a, b, t) => [*a, *b].into_iter().chain(t.exprs()).collect(),
            Stmt::Gradcheck(_, args) => args.iter().map(|(_, e)| *e).collect(),
        }
    }
}
