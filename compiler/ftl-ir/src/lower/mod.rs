//! Lowering a checked entry to a graph: parameters become inputs (hyperparameters run-time
//! scalars, static options and optional-input presence fixed by [`EntryOptions`]), every call of
//! a `fn` or another declaration is inlined with its dims renamed into the caller's, static `if`
//! and `match` keep only the taken arm, and composite builtins become primitives (`softmax` is
//! `exp(x − logsumexp x)`, `mean` a sum divided by a size, `drop` a select on a random mask).
//!
//! Every lowered value is conformed to the dims its HIR type names (transposed, broadcast or
//! relabelled), so a graph's dims always agree with what the checker proved.

mod builtin;
mod linalg;

pub use builtin::solve_node;

use crate::builder::Builder;
use crate::{BinOp, Check, DimId, DimSize, EntryKind, Graph, Input, Node, NodeId, Op, Role, UnOp};
use ftl_front::hir::{self, Decl, DeclId, DeclKind, ExprId, ExprKind, Hir, Stmt};
use ftl_front::types::{DimItem, Ty};
use ftl_runtime::{DType, Tensor};
use ftl_syntax::ast::{self, CmpOp, ParamKind};
use std::collections::{HashMap, HashSet};

/// The value of a static option.
#[derive(Clone, Debug, PartialEq)]
pub enum StaticValue {
    /// `static bool`
    Bool(bool),
    /// `static i32`
    Int(i64),
    /// An `enum` variant.
    Variant(String),
}

/// What picks the compiled variant of an entry.
#[derive(Clone, Debug, Default)]
pub struct EntryOptions {
    /// Static options given (others take their defaults).
    pub statics: HashMap<String, StaticValue>,
    /// Optional inputs that are present.
    pub present: HashSet<String>,
    /// Compute every float in f64 (gradient checks).
    pub promote_f64: bool,
    /// The dtypes of the inputs the caller gives, by name. An input whose dtype
    /// [`binds_as`] its parameter's is stored in the given dtype and converted where it is
    /// read (the binder's dtype rule, docs/language.md); others are left to the binder.
    pub input_dtypes: HashMap<String, DType>,
}

/// Whether an input of dtype `given` may be bound to a parameter declared `declared`: 16-bit
/// floats to f32 (read widened, computed in f32, their gradient rounded back), i64 to i32
/// (labels and indices: PyTorch's integer dtype; a value outside i32 saturates, so it fails a
/// gather's range check rather than wrapping onto a valid index).
pub fn binds_as(given: DType, declared: DType) -> bool {
    matches!(
        (given, declared),
        (DType::BF16 | DType::F16, DType::F32) | (DType::I64, DType::I32)
    )
}

/// Why an entry cannot be lowered.
#[derive(Clone, Debug, PartialEq)]
pub enum LowerError {
    /// A construct this compiler cannot lower yet (a user-facing limitation, E0095).
    Unsupported(String),
    /// A value the checker should have ruled out: a compiler bug.
    Internal(String),
    /// An entry called while lowering (a test block's call) failed to compile or run.
    CallFailed(String),
}

impl std::fmt::Display for LowerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LowerError::Unsupported(m) | LowerError::CallFailed(m) => f.write_str(m),
            LowerError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T, LowerError> {
    Err(LowerError::Unsupported(message.into()))
}

fn internal<T>(message: impl Into<String>) -> Result<T, LowerError> {
    Err(LowerError::Internal(message.into()))
}

/// A lowered value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Val {
    /// A tensor.
    Node(NodeId),
    /// A call's outputs or a record literal.
    Record(Vec<(String, Val)>),
    /// A multi-result builtin's results.
    Tuple(Vec<Val>),
    /// An enum variant.
    Variant(String),
    /// Dims passed to a builtin.
    Dims(Vec<DimId>),
    /// An absent optional input.
    Absent,
    /// No value (statements).
    Unit,
}

/// Runs entries called from `test` blocks: given the graph so far and the call's argument
/// values (per callee parameter), returns the callee's outputs by file name (`loss`,
/// `metric.<m>`, `grad.<x>`, `y`, …).
pub trait EntryCalls {
    /// Runs `decl` on the values of `args` (nodes of `graph`).
    fn call(
        &mut self,
        graph: &Graph,
        decl: DeclId,
        args: &[Option<Val>],
    ) -> Result<Vec<(String, Tensor)>, LowerError>;
}

/// One body being lowered: its parameters, locals, dims and collected outputs.
pub struct Frame<'h> {
    decl: &'h Decl,
    params: Vec<Val>,
    locals: Vec<Option<Val>>,
    dims: HashMap<String, Vec<DimId>>,
    outputs: Vec<(String, Val)>,
}

/// The lowering state for one graph.
pub struct Lowerer<'h, 'c> {
    hir: &'h Hir,
    /// The graph being built.
    pub b: Builder,
    opts: EntryOptions,
    anon: HashMap<(usize, u64), DimId>,
    next_site: u32,
    seed: Option<(NodeId, NodeId)>,
    calls: Option<&'c mut dyn EntryCalls>,
    /// Results of `fn` calls that draw no random numbers, by callee and arguments: a call
    /// repeated with the same arguments is lowered once, so a function that calls its
    /// predecessor twice does not double the graph at each level.
    memo: HashMap<(DeclId, Vec<Option<Val>>), Val>,
}

/// The most nodes inlining may produce; an entry that expands beyond it (a chain of
/// functions each calling the previous one twice on different values) is refused instead of
/// compiling for minutes.
pub const MAX_GRAPH_NODES: usize = 1 << 18;

/// The entry kind of a declaration kind.
pub fn entry_kind(k: DeclKind) -> EntryKind {
    match k {
        DeclKind::Objective => EntryKind::Objective,
        DeclKind::Adapter => EntryKind::Adapter,
        _ => EntryKind::Step,
    }
}

/// Whether a parameter is chosen at build time (static options and enums).
pub fn is_static(p: &hir::Param) -> bool {
    p.kind == ParamKind::Static || matches!(p.ty, Ty::Enum(_))
}

/// Lowers entry `id` of `hir` to a forward graph.
pub fn lower_entry(hir: &Hir, id: DeclId, opts: &EntryOptions) -> Result<Graph, LowerError> {
    let Some(decl) = hir.decl(id) else {
        return internal("the entry was not checked");
    };
    let mut lw = Lowerer::new(hir, &decl.name, entry_kind(decl.kind), opts.clone(), None);
    let mut frame = lw.entry_frame(decl)?;
    lw.requires(&mut frame)?;
    lw.body(&mut frame)?;
    lw.entry_outputs(&mut frame)?;
    Ok(lw.b.finish())
}

impl<'h, 'c> Lowerer<'h, 'c> {
    /// A lowerer for a new graph.
    pub fn new(
        hir: &'h Hir,
        name: &str,
        kind: EntryKind,
        opts: EntryOptions,
        calls: Option<&'c mut dyn EntryCalls>,
    ) -> Self {
        Lowerer {
            hir,
            b: Builder::new(name, kind),
            opts,
            anon: HashMap::new(),
            next_site: 0,
            seed: None,
            calls,
            memo: HashMap::new(),
        }
    }

    fn float(&self, d: DType) -> DType {
        if self.opts.promote_f64 && d.is_float() {
            DType::F64
        } else {
            d
        }
    }

    /// The dims of a fixed-size literal dim at a position.
    fn anon_dim(&mut self, pos: usize, size: u64) -> DimId {
        if let Some(d) = self.anon.get(&(pos, size)) {
            return *d;
        }
        let d = self.b.add_dim(&format!("_{size}"), DimSize::Const(size));
        self.anon.insert((pos, size), d);
        d
    }

    /// A frame for `decl` as the entry: its parameters become graph inputs.
    pub fn entry_frame(&mut self, decl: &'h Decl) -> Result<Frame<'h>, LowerError> {
        let mut frame = Frame {
            decl,
            params: Vec::new(),
            locals: vec![None; decl.body.locals.len()],
            dims: HashMap::new(),
            outputs: Vec::new(),
        };
        for p in &decl.params {
            let val = self.entry_param(&mut frame, p)?;
            frame.params.push(val);
        }
        Ok(frame)
    }

    fn entry_param(&mut self, frame: &mut Frame<'h>, p: &hir::Param) -> Result<Val, LowerError> {
        if is_static(p) {
            let given = self.opts.statics.get(&p.name).cloned();
            return match given {
                Some(StaticValue::Variant(v)) => Ok(Val::Variant(v)),
                Some(StaticValue::Bool(v)) => Ok(Val::Node(
                    self.b.constant(f64::from(u8::from(v)), DType::Bool),
                )),
                Some(StaticValue::Int(v)) => {
                    let dt = p.ty.tensor().map_or(DType::I32, |t| t.dtype);
                    Ok(Val::Node(self.b.constant(v as f64, dt)))
                }
                None => match p.default {
                    Some(d) => self.expr(frame, d),
                    None => fail(format!("static option `{}` needs a value", p.name)),
                },
            };
        }
        let Ty::Tensor(t) = &p.ty else {
            return internal(format!("parameter `{}` has type {}", p.name, p.ty));
        };
        let mut dims = Vec::new();
        for item in &t.dims {
            let ids = match item {
                DimItem::Named(n) => match frame.dims.get(n) {
                    Some(ids) => ids.clone(),
                    None => {
                        let id = self.b.add_dim(n, DimSize::Arg);
                        frame.dims.insert(n.clone(), vec![id]);
                        vec![id]
                    }
                },
                DimItem::Pack(n) => match frame.dims.get(&format!("..{n}")) {
                    Some(ids) => ids.clone(),
                    None => {
                        let id = self.b.add_dim(&format!("..{n}"), DimSize::Pack);
                        frame.dims.insert(format!("..{n}"), vec![id]);
                        vec![id]
                    }
                },
                DimItem::Anon(k) => {
                    let pos = dims.len();
                    vec![self.anon_dim(pos, *k)]
                }
            };
            dims.extend(ids);
        }
        if p.optional && !self.opts.present.contains(&p.name) {
            return Ok(Val::Absent);
        }
        let default = match p.default {
            Some(d) => {
                let v = self.expr(frame, d)?;
                match v {
                    Val::Node(id) => match self.b.node(id).op {
                        Op::Const(c) => Some(c),
                        _ => return fail(format!("the default of `{}` is not a constant", p.name)),
                    },
                    _ => return fail(format!("the default of `{}` is not a tensor", p.name)),
                }
            }
            None => None,
        };
        let role = match p.kind {
            ParamKind::Const => Role::Const,
            ParamKind::Param => Role::Param,
            _ if dims.is_empty() && (default.is_some() || !t.dtype.is_float()) => Role::Scalar,
            _ => Role::Input,
        };
        let declared = self.float(t.dtype);
        // Only tensors: a scalar given in another dtype is converted to its own by the binder
        // (a `--set offset=1` is an i64 like the random-stream offset).
        let dtype = match self.opts.input_dtypes.get(&p.name) {
            Some(&given) if !dims.is_empty() && binds_as(given, declared) => given,
            _ => declared,
        };
        let input = Input {
            name: p.name.clone(),
            role,
            dtype,
            dims: dims.clone(),
            default,
            required: default.is_none(),
        };
        self.b.graph.inputs.push(input);
        let n = self.b.graph.inputs.len() as u32 - 1;
        let stored = self.b.push(Node {
            op: Op::Input(n),
            dtype,
            dims,
        });
        let stored = if dtype == DType::I64 && declared == DType::I32 {
            // Saturate rather than wrap: an i64 outside i32 stays out of any index range (a
            // gather then fails with E0094) instead of wrapping onto a valid label.
            let lo = self.b.constant(f64::from(i32::MIN), DType::I64);
            let hi = self.b.constant(f64::from(i32::MAX), DType::I64);
            let above = self.b.binary(BinOp::Max, stored, lo);
            self.b.binary(BinOp::Min, above, hi)
        } else {
            stored
        };
        Ok(Val::Node(self.b.cast(stored, declared)))
    }

    /// Lowers `requires`: a dim equation binds an unbound dim or becomes a check; then the
    /// body's implicit primed dims.
    pub fn requires(&mut self, frame: &mut Frame<'h>) -> Result<(), LowerError> {
        let decl = frame.decl;
        for &r in &decl.body.requires {
            if let ExprKind::Compare(first, rest) = &decl.body.expr(r).kind {
                if let (ExprKind::DimSize(items), [(CmpOp::Eq, rhs)]) =
                    (&decl.body.expr(*first).kind, rest.as_slice())
                {
                    if let [DimItem::Named(n)] = items.as_slice() {
                        if !frame.dims.contains_key(n) {
                            let v = self.node(frame, *rhs)?;
                            let v = self.b.cast(v, DType::I64);
                            let id = self.b.add_dim(n, DimSize::Scalar(v));
                            frame.dims.insert(n.clone(), vec![id]);
                            continue;
                        }
                    }
                }
            }
            let cond = self.node(frame, r)?;
            let text = format!(
                "{} requires {}",
                decl.name,
                hir::expr_source_text(self.hir, &decl.body, r)
            );
            self.b.graph.checks.push(Check { cond, text });
        }
        // Primed dims used without a rename copy their unprimed dim's size.
        for (prime, base) in &decl.body.primes {
            if !frame.dims.contains_key(prime) {
                let base = self.one_dim(frame, base)?;
                let id = self.b.add_dim(prime, DimSize::Product(vec![base]));
                frame.dims.insert(prime.clone(), vec![id]);
            }
        }
        Ok(())
    }

    /// Lowers a body's statements and result into the frame's outputs.
    pub fn body(&mut self, frame: &mut Frame<'h>) -> Result<(), LowerError> {
        let decl = frame.decl;
        for s in &decl.body.stmts {
            self.stmt(frame, s)?;
        }
        if let Some(r) = decl.body.result {
            let v = self.expr(frame, r)?;
            // The value's outputs: all declared ones but an adapter's auxiliary loss.
            let outs: Vec<&String> = decl
                .outputs
                .iter()
                .map(|(n, _)| n)
                .filter(|n| !(decl.kind == DeclKind::Adapter && *n == "aux_loss"))
                .collect();
            match (&v, outs.as_slice()) {
                (Val::Record(fields), outs) if outs.len() > 1 || decl.kind == DeclKind::Step => {
                    frame.outputs.extend(fields.iter().cloned());
                }
                (_, [name]) => frame.outputs.push(((*name).clone(), v)),
                _ => frame.outputs.push((String::new(), v)),
            }
        }
        Ok(())
    }

    /// One statement of a body (tests handle `expect_close` and `gradcheck` themselves).
    pub fn stmt(&mut self, frame: &mut Frame<'h>, s: &Stmt) -> Result<(), LowerError> {
        match s {
            Stmt::Let(locals, value) => {
                let v = self.expr(frame, *value)?;
                if let [l] = locals.as_slice() {
                    frame.locals[l.0 as usize] = Some(v);
                } else {
                    let Val::Tuple(items) = v else {
                        return internal("destructuring a non-tuple");
                    };
                    for (l, item) in locals.iter().zip(items) {
                        frame.locals[l.0 as usize] = Some(item);
                    }
                }
            }
            Stmt::Loss(e) => {
                let v = self.expr(frame, *e)?;
                let name = if frame.decl.kind == DeclKind::Adapter {
                    "aux_loss"
                } else {
                    "loss"
                };
                frame.outputs.push((name.to_string(), v));
            }
            Stmt::Metric(n, e) => {
                let v = self.expr(frame, *e)?;
                frame.outputs.push((n.clone(), v));
            }
            Stmt::Metrics(e) => match self.expr(frame, *e)? {
                Val::Record(fields) => frame.outputs.extend(fields),
                _ => return internal("`metric ..` of a non-record"),
            },
            Stmt::Assign(n, e) => {
                let v = self.expr(frame, *e)?;
                frame.outputs.push((n.clone(), v));
            }
            Stmt::ExpectClose(..) | Stmt::Gradcheck(..) | Stmt::Print(_) => {}
        }
        Ok(())
    }

    /// The entry's outputs, named as files name them and laid out as declared.
    fn entry_outputs(&mut self, frame: &mut Frame<'h>) -> Result<(), LowerError> {
        let decl = frame.decl;
        for (name, v) in std::mem::take(&mut frame.outputs) {
            let Val::Node(id) = v else {
                return fail(format!("output `{name}` is not a tensor"));
            };
            let file_name = match (decl.kind, name.as_str()) {
                (DeclKind::Objective, "loss") => name.clone(),
                (DeclKind::Objective, _) => format!("metric.{name}"),
                _ => name.clone(),
            };
            let declared = decl
                .outputs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.clone());
            let id = match &declared {
                Some(ty) => self.conform(frame, id, ty)?,
                None => id,
            };
            let want = declared
                .as_ref()
                .and_then(|t| t.tensor().map(|t| self.float(t.dtype)))
                .unwrap_or(self.b.dtype(id));
            let id = self.b.cast(id, want);
            self.b.graph.outputs.push((file_name, id));
        }
        Ok(())
    }

    /// Lowers an expression that must be a tensor.
    pub fn node(&mut self, frame: &mut Frame<'h>, e: ExprId) -> Result<NodeId, LowerError> {
        match self.expr(frame, e)? {
            Val::Node(id) => Ok(id),
            other => internal(format!("expected a tensor, found {other:?}")),
        }
    }

    /// The graph dims of HIR dims in `frame` (packs expand; unknown names are left out).
    fn map_dims(&mut self, frame: &Frame<'h>, items: &[DimItem]) -> Option<Vec<DimId>> {
        let mut out = Vec::new();
        for (pos, item) in items.iter().enumerate() {
            match item {
                DimItem::Named(n) => out.extend(frame.dims.get(n)?.iter().copied()),
                DimItem::Pack(n) => out.extend(frame.dims.get(&format!("..{n}"))?.iter().copied()),
                DimItem::Anon(k) => out.push(self.anon_dim(pos, *k)),
            }
        }
        Some(out)
    }

    /// The dims made since dim `first` whose size depends on a scalar computed there (a
    /// static loop's iteration): sized by a scalar, or from such a dim.
    fn varying_dims(&self, first: usize) -> HashSet<DimId> {
        let dims = &self.b.graph.dims;
        let mut varying: HashSet<DimId> = HashSet::new();
        for (k, dim) in dims.iter().enumerate().skip(first) {
            let from = |d: &DimId| varying.contains(d);
            let depends = match &dim.size {
                DimSize::Scalar(_) => true,
                DimSize::Product(ds) => ds.iter().any(from),
                DimSize::Quotient(a, ds) => from(a) || ds.iter().any(from),
                DimSize::Min(a, b) => from(a) || from(b),
                DimSize::Arg | DimSize::Pack | DimSize::Const(_) => false,
            };
            if depends {
                varying.insert(DimId(k as u32));
            }
        }
        varying
    }

    /// Gives node `id` the dims of HIR type `ty`, binding names the frame does not know yet
    /// (a callee's fresh dims) to the node's dims by position.
    fn conform(
        &mut self,
        frame: &mut Frame<'h>,
        id: NodeId,
        ty: &Ty,
    ) -> Result<NodeId, LowerError> {
        let Ty::Tensor(t) = ty else {
            return Ok(id);
        };
        let have = self.b.dims(id);
        let expected = match self.map_dims(frame, &t.dims) {
            Some(d) => d,
            None => {
                if have.len() != t.dims.len() {
                    return internal(format!(
                        "cannot place dims of {t} on a value of rank {}",
                        have.len()
                    ));
                }
                for (item, d) in t.dims.iter().zip(&have) {
                    if let DimItem::Named(n) = item {
                        frame.dims.entry(n.clone()).or_insert_with(|| vec![*d]);
                    }
                }
                self.map_dims(frame, &t.dims).unwrap_or_default()
            }
        };
        if have == expected {
            return Ok(id);
        }
        let same_set = have.len() == expected.len() && have.iter().all(|d| expected.contains(d));
        if same_set {
            return Ok(self.b.transpose(id, expected));
        }
        if have.iter().all(|d| expected.contains(d)) {
            return Ok(self.b.broadcast(id, expected));
        }
        if have.len() == expected.len() {
            return Ok(self.b.relabel(id, expected));
        }
        internal(format!(
            "value with {} dims where {t} was expected",
            have.len()
        ))
    }

    fn ty(frame: &Frame<'h>, e: ExprId) -> &'h Ty {
        &frame.decl.body.expr(e).ty
    }

    fn result_dtype(&self, frame: &Frame<'h>, e: ExprId) -> DType {
        let d = Self::ty(frame, e).tensor().map_or(DType::F32, |t| t.dtype);
        self.float(d)
    }

    /// Lowers an expression to a value conformed to its HIR type.
    pub fn expr(&mut self, frame: &mut Frame<'h>, e: ExprId) -> Result<Val, LowerError> {
        let v = self.expr_raw(frame, e)?;
        match v {
            Val::Node(id) => {
                let ty = Self::ty(frame, e);
                Ok(Val::Node(self.conform(frame, id, ty)?))
            }
            other => Ok(other),
        }
    }

    fn expr_raw(&mut self, frame: &mut Frame<'h>, e: ExprId) -> Result<Val, LowerError> {
        let body = &frame.decl.body;
        let ex = body.expr(e);
        let dtype = self.result_dtype(frame, e);
        Ok(match &ex.kind {
            ExprKind::Int(v) => Val::Node(self.b.constant(*v as f64, dtype)),
            ExprKind::Float(v) => Val::Node(self.b.constant(*v, dtype)),
            ExprKind::Bool(v) => Val::Node(self.b.constant(f64::from(u8::from(*v)), DType::Bool)),
            ExprKind::Tensor(_) => {
                let mut values = Vec::new();
                self.literal_values(frame, e, &mut values)?;
                let dims = match &ex.ty {
                    Ty::Tensor(t) => self.map_dims(frame, &t.dims).unwrap_or_default(),
                    _ => vec![],
                };
                let values = values.into_iter().map(|v| dtype.round(v)).collect();
                Val::Node(self.b.push(Node {
                    op: Op::Literal(values),
                    dtype,
                    dims,
                }))
            }
            ExprKind::Param(i) => frame.params[*i as usize].clone(),
            ExprKind::Local(l) => frame.locals[l.0 as usize]
                .clone()
                .ok_or_else(|| LowerError::Internal("a local read before its let".into()))?,
            ExprKind::DimSize(items) => {
                let dims = self
                    .map_dims(frame, items)
                    .ok_or_else(|| LowerError::Internal("size of an unbound dim".into()))?;
                Val::Node(self.b.size(dims, dtype))
            }
            ExprKind::DimArg(item) => {
                let dims = self
                    .map_dims(frame, std::slice::from_ref(item))
                    .ok_or_else(|| LowerError::Unsupported(format!("dim `{item}` is not bound")))?;
                Val::Dims(dims)
            }
            ExprKind::Variant(v) => Val::Variant(v.clone()),
            ExprKind::Unary(op, a) => {
                let x = self.node(frame, *a)?;
                match op {
                    ast::UnOp::Neg => {
                        let x = self.b.cast(x, dtype);
                        Val::Node(self.b.unary(UnOp::Neg, x))
                    }
                    ast::UnOp::Not => Val::Node(self.b.unary(UnOp::Not, x)),
                }
            }
            ExprKind::Binary(op, a, b) => self.binary(frame, e, *op, *a, *b)?,
            ExprKind::Compare(first, rest) => {
                let mut left = self.node(frame, *first)?;
                let mut acc: Option<NodeId> = None;
                for (op, r) in rest {
                    let right = self.node(frame, *r)?;
                    let (l, rr) = self.join_weak(frame, *first, left, *r, right);
                    let (l, rr) = self.adopt_anonymous_dims(frame, l, rr);
                    let bop = match op {
                        CmpOp::Eq => BinOp::Eq,
                        CmpOp::Ne => BinOp::Ne,
                        CmpOp::Lt => BinOp::Lt,
                        CmpOp::Le => BinOp::Le,
                        CmpOp::Gt => BinOp::Gt,
                        CmpOp::Ge => BinOp::Ge,
                    };
                    let c = self.b.binary(bop, l, rr);
                    acc = Some(match acc {
                        Some(p) => self.b.binary(BinOp::And, p, c),
                        None => c,
                    });
                    left = right;
                }
                Val::Node(acc.ok_or_else(|| LowerError::Internal("empty comparison".into()))?)
            }
            ExprKind::Cast(d, a) => {
                // `f64(literal)` takes the literal's written value, not its f32 rounding.
                if self.float(*d) == DType::F64 {
                    if let Some(n) = self.exact_literal_node(frame, *a, DType::F64) {
                        return Ok(Val::Node(n));
                    }
                }
                let x = self.node(frame, *a)?;
                Val::Node(self.b.cast(x, self.float(*d)))
            }
            ExprKind::Builtin {
                id,
                args,
                kwargs,
                maps,
            } => self.builtin(frame, e, *id, args, kwargs, maps)?,
            ExprKind::Call { decl, args } => self.call(frame, *decl, args)?,
            ExprKind::Field(r, name) => {
                let v = self.expr(frame, *r)?;
                match v {
                    Val::Record(fields) => fields
                        .into_iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v)
                        .ok_or_else(|| {
                            LowerError::Unsupported(format!("the record has no field `{name}`"))
                        })?,
                    _ => return internal(format!("field `{name}` of a non-record")),
                }
            }
            ExprKind::Gather {
                base,
                dim,
                index,
                default,
            } => {
                let x = self.node(frame, *base)?;
                let i = self.node(frame, *index)?;
                let d = self.one_dim(frame, dim)?;
                let default = match default {
                    Some(v) => {
                        let v = self.node(frame, *v)?;
                        Some(self.b.cast(v, self.b.dtype(x)))
                    }
                    None => None,
                };
                let rest: Vec<DimId> = self.b.dims(x).into_iter().filter(|k| *k != d).collect();
                let dims = self.b.union(&rest, &self.b.dims(i));
                let dtype = self.b.dtype(x);
                Val::Node(self.b.push(Node {
                    op: Op::Gather {
                        base: x,
                        dim: d,
                        index: i,
                        default,
                    },
                    dtype,
                    dims,
                }))
            }
            ExprKind::Reshape { base, from, to } => self.reshape(frame, *base, from, to)?,
            ExprKind::If(c, a, b) => {
                let c = self.node(frame, *c)?;
                match self.b.node(c).op {
                    Op::Const(v) => self.expr(frame, if v != 0.0 { *a } else { *b })?,
                    _ => return internal("`if` on a non-static condition"),
                }
            }
            ExprKind::Match(s, arms) => {
                let Val::Variant(v) = self.expr(frame, *s)? else {
                    return internal("`match` on a non-variant");
                };
                let arm = arms
                    .iter()
                    .find(|(p, _)| p.as_deref() == Some(v.as_str()))
                    .or_else(|| arms.iter().find(|(p, _)| p.is_none()))
                    .ok_or_else(|| LowerError::Unsupported(format!("no arm for `{v}`")))?;
                self.expr(frame, arm.1)?
            }
            ExprKind::Block(stmts, value) => {
                for s in stmts {
                    self.stmt(frame, s)?;
                }
                self.expr(frame, *value)?
            }
            ExprKind::For {
                var,
                lo,
                hi,
                acc,
                init,
                body,
            } => {
                // Unrolled: the body is lowered once per iteration with `var` a constant.
                let bound = |lw: &mut Self, frame: &mut Frame<'h>, e: ExprId| {
                    let n = lw.node(frame, e)?;
                    match lw.b.node(n).op {
                        Op::Const(v) => Ok(v as i64),
                        _ => internal("`for` with a non-static bound"),
                    }
                };
                let (lo, hi) = (bound(self, frame, *lo)?, bound(self, frame, *hi)?);
                // Each iteration adds at least one operation: refuse at once what the cap
                // would refuse after unrolling.
                let count = hi.saturating_sub(lo);
                if count > MAX_GRAPH_NODES as i64 {
                    return Err(LowerError::Unsupported(format!(
                        "`{}`'s `for` loop has {count} iterations, more than the \
                         {MAX_GRAPH_NODES} operations an entry may expand to",
                        frame.decl.name
                    )));
                }
                let mut v = self.expr(frame, *init)?;
                // A dim the body sizes from a scalar belongs to one iteration: `two(w, k)`
                // gives a `K` of size k each time round, so its name (and any dim sized from
                // it) is forgotten before the next; a rename of an outer dim keeps its dim,
                // so loop-invariant work stays shared. (The accumulator's type has none.)
                let outer_dims: HashSet<String> = frame.dims.keys().cloned().collect();
                let first_new = self.b.graph.dims.len();
                for k in lo..hi {
                    let varying = self.varying_dims(first_new);
                    frame.dims.retain(|name, ids| {
                        outer_dims.contains(name) || !ids.iter().any(|d| varying.contains(d))
                    });
                    frame.locals[var.0 as usize] =
                        Some(Val::Node(self.b.constant(k as f64, DType::I32)));
                    frame.locals[acc.0 as usize] = Some(v);
                    v = self.expr(frame, *body)?;
                    if self.b.graph.nodes.len() > MAX_GRAPH_NODES {
                        return Err(LowerError::Unsupported(format!(
                            "`{}` expands to more than {MAX_GRAPH_NODES} operations when its \
                             `for` loop is unrolled ({count} iterations)",
                            frame.decl.name
                        )));
                    }
                }
                v
            }
            ExprKind::Record(fields) => {
                let mut out = Vec::new();
                for (n, v) in fields {
                    out.push((n.clone(), self.expr(frame, *v)?));
                }
                Val::Record(out)
            }
            ExprKind::Error => return internal("lowering a program with errors"),
        })
    }

    fn literal_values(
        &mut self,
        frame: &mut Frame<'h>,
        e: ExprId,
        out: &mut Vec<f64>,
    ) -> Result<(), LowerError> {
        if let ExprKind::Tensor(elems) = &frame.decl.body.expr(e).kind {
            for el in elems.clone() {
                self.literal_values(frame, el, out)?;
            }
            return Ok(());
        }
        let id = self.node(frame, e)?;
        match self.b.node(id).op {
            Op::Const(v) => {
                out.push(v);
                Ok(())
            }
            _ => fail("tensor literal elements must be constants"),
        }
    }

    fn one_dim(&mut self, frame: &Frame<'h>, name: &str) -> Result<DimId, LowerError> {
        match frame.dims.get(name).map(Vec::as_slice) {
            Some([d]) => Ok(*d),
            _ => fail(format!("dim `{name}` is not bound")),
        }
    }

    /// Casts a weak (literal) operand to the other operand's dtype, as the checker typed it.
    fn join_weak(
        &mut self,
        frame: &Frame<'h>,
        ea: ExprId,
        a: NodeId,
        eb: ExprId,
        b: NodeId,
    ) -> (NodeId, NodeId) {
        let weak = |e: ExprId| Self::ty(frame, e).tensor().is_some_and(|t| t.weak);
        let (da, db) = (self.b.dtype(a), self.b.dtype(b));
        if weak(ea) && !weak(eb) && (db.is_float() || !da.is_float()) {
            (self.cast_operand(frame, ea, a, db), b)
        } else if weak(eb) && !weak(ea) && (da.is_float() || !db.is_float()) {
            (a, self.cast_operand(frame, eb, b, da))
        } else {
            (a, b)
        }
    }

    /// Node `n` (the value of `e`) in dtype `to`. A float literal takes `to` from its exact
    /// value (`0.008` in f64 arithmetic is not first rounded to f32).
    fn cast_operand(&mut self, frame: &Frame<'h>, e: ExprId, n: NodeId, to: DType) -> NodeId {
        match literal_float(frame.decl, e) {
            Some(v) if to.is_float() => self.b.constant(v, to),
            _ => self.b.cast(n, to),
        }
    }

    fn binary(
        &mut self,
        frame: &mut Frame<'h>,
        e: ExprId,
        op: ast::BinOp,
        a: ExprId,
        b: ExprId,
    ) -> Result<Val, LowerError> {
        let dtype = self.result_dtype(frame, e);
        if op == ast::BinOp::Coalesce {
            return match self.expr(frame, a)? {
                Val::Absent => {
                    let v = self.node(frame, b)?;
                    Ok(Val::Node(self.b.cast(v, dtype)))
                }
                other => Ok(other),
            };
        }
        let x = self.node(frame, a)?;
        let y = self.node(frame, b)?;
        let bop = match op {
            ast::BinOp::Add => BinOp::Add,
            ast::BinOp::Sub => BinOp::Sub,
            ast::BinOp::Mul => BinOp::Mul,
            ast::BinOp::Div => BinOp::Div,
            ast::BinOp::Rem => BinOp::Rem,
            ast::BinOp::And => BinOp::And,
            ast::BinOp::Or => BinOp::Or,
            ast::BinOp::MatMul | ast::BinOp::Coalesce => {
                return internal("`@` reaches lowering as contract")
            }
        };
        let (x, y) = self.adopt_anonymous_dims(frame, x, y);
        let (x, y) = if matches!(bop, BinOp::And | BinOp::Or) {
            (x, y)
        } else {
            (
                self.cast_operand(frame, a, x, dtype),
                self.cast_operand(frame, b, y, dtype),
            )
        };
        Ok(Val::Node(self.b.binary(bop, x, y)))
    }

    /// The checker's rule for tensor literals and fixed-size dims (`check/dims.rs`, `union`): an
    /// operand whose dims are all anonymous adopts the other operand's dims by position when the
    /// ranks agree and the other's are all named. The values keep their layout; each adopted
    /// dim gets a run-time check that its size is the literal's.
    fn adopt_anonymous_dims(
        &mut self,
        frame: &Frame<'h>,
        x: NodeId,
        y: NodeId,
    ) -> (NodeId, NodeId) {
        let anonymous: HashSet<DimId> = self.anon.values().copied().collect();
        let (dx, dy) = (self.b.dims(x), self.b.dims(y));
        let all = |d: &[DimId]| !d.is_empty() && d.iter().all(|k| anonymous.contains(k));
        let none = |d: &[DimId]| d.iter().all(|k| !anonymous.contains(k));
        if dx.len() != dy.len() || dx == dy {
            return (x, y);
        }
        if all(&dx) && none(&dy) {
            (self.adopt(frame, x, &dx, &dy), y)
        } else if all(&dy) && none(&dx) {
            (x, self.adopt(frame, y, &dy, &dx))
        } else {
            (x, y)
        }
    }

    fn adopt(&mut self, frame: &Frame<'h>, v: NodeId, have: &[DimId], want: &[DimId]) -> NodeId {
        for (a, w) in have.iter().zip(want) {
            let DimSize::Const(n) = self.b.graph.dim(*a).size else {
                continue;
            };
            let name = self.b.graph.dim(*w).name.clone();
            let size = self.b.size(vec![*w], DType::I64);
            let fixed = self.b.constant(n as f64, DType::I64);
            let cond = self.b.binary(BinOp::Eq, size, fixed);
            let text = format!(
                "{}: {name} == {n} (a value of fixed size {n} is combined with one over {name})",
                frame.decl.name
            );
            self.b.graph.checks.push(Check { cond, text });
        }
        self.b.relabel(v, want.to_vec())
    }

    fn reshape(
        &mut self,
        frame: &mut Frame<'h>,
        base: ExprId,
        from: &[DimItem],
        to: &[DimItem],
    ) -> Result<Val, LowerError> {
        let x = self.node(frame, base)?;
        let src = self
            .map_dims(frame, from)
            .ok_or_else(|| LowerError::Internal("reshape of unbound dims".into()))?;
        let have = self.b.dims(x);
        let is_swap = from.len() == 2 && to.len() == 2 && from[0] == to[1] && from[1] == to[0];
        if is_swap {
            // Names trade places; the data stays.
            let dims: Vec<DimId> = have
                .iter()
                .map(|d| {
                    if *d == src[0] {
                        src[1]
                    } else if *d == src[1] {
                        src[0]
                    } else {
                        *d
                    }
                })
                .collect();
            return Ok(Val::Node(self.b.relabel(x, dims)));
        }
        // Make the source dims adjacent, in the written order.
        let first = have.iter().position(|d| src.contains(d)).unwrap_or(0);
        let mut order: Vec<DimId> = have.iter().copied().filter(|d| !src.contains(d)).collect();
        for (k, d) in src.iter().enumerate() {
            order.insert(first.min(order.len()) + k, *d);
        }
        let x = if order != have {
            self.b.transpose(x, order.clone())
        } else {
            x
        };
        // Target dims: known ones map; one unknown takes the remaining size.
        let mut dst = Vec::new();
        let mut unknown = Vec::new();
        for item in to {
            match item {
                DimItem::Named(n) if frame.dims.contains_key(n) => dst.push(frame.dims[n][0]),
                DimItem::Named(n) => {
                    unknown.push(n.clone());
                    dst.push(DimId(u32::MAX));
                }
                _ => return internal("reshape to a pack"),
            }
        }
        let known: Vec<DimId> = dst.iter().copied().filter(|d| d.0 != u32::MAX).collect();
        for n in unknown {
            let size = if known.is_empty() && src.len() == 1 {
                DimSize::Product(src.clone())
            } else if src.len() == 1 {
                DimSize::Quotient(src[0], known.clone())
            } else {
                DimSize::Product(src.clone())
            };
            let id = self.b.add_dim(&n, size);
            frame.dims.insert(n.clone(), vec![id]);
            if let Some(slot) = dst.iter_mut().find(|d| d.0 == u32::MAX) {
                *slot = id;
            }
        }
        let mut dims: Vec<DimId> = order.iter().copied().filter(|d| !src.contains(d)).collect();
        for (k, d) in dst.iter().enumerate() {
            dims.insert(first.min(dims.len()) + k, *d);
        }
        Ok(Val::Node(self.b.relabel(x, dims)))
    }

    /// A numeric literal `e` as a node of `dtype`, rounded once from its written value.
    fn exact_literal_node(&mut self, frame: &Frame<'h>, e: ExprId, dtype: DType) -> Option<NodeId> {
        let values = exact_literal(frame.decl, e)?;
        let dims = match &frame.decl.body.expr(e).ty {
            Ty::Tensor(t) => self.map_dims(frame, &t.dims).unwrap_or_default(),
            _ => vec![],
        };
        Some(if dims.is_empty() && values.len() == 1 {
            self.b.constant(values[0], dtype)
        } else {
            let values = values.into_iter().map(|v| dtype.round(v)).collect();
            self.b.push(Node {
                op: Op::Literal(values),
                dtype,
                dims,
            })
        })
    }

    /// Inlines a call (or, in a test, runs an entry through [`EntryCalls`]).
    fn call(
        &mut self,
        frame: &mut Frame<'h>,
        id: DeclId,
        args: &[Option<ExprId>],
    ) -> Result<Val, LowerError> {
        let Some(callee) = self.hir.decl(id) else {
            return internal("call of an unchecked declaration");
        };
        let mut vals = Vec::with_capacity(args.len());
        for (k, a) in args.iter().enumerate() {
            let param = callee.params.get(k).map(|p| &p.ty);
            vals.push(match a {
                // A literal passed to a float parameter takes the parameter's dtype directly,
                // so an f64 hyperparameter or tensor is not rounded through f32.
                Some(e) => Some(match param {
                    Some(Ty::Tensor(t)) if t.dtype.is_float() => {
                        match self.exact_literal_node(frame, *e, t.dtype) {
                            Some(n) => Val::Node(n),
                            None => self.expr(frame, *e)?,
                        }
                    }
                    _ => self.expr(frame, *e)?,
                }),
                None => None,
            });
        }
        if callee.kind != DeclKind::Fn {
            if let Some(calls) = self.calls.as_mut() {
                let outs = calls.call(&self.b.graph, id, &vals)?;
                return Ok(self.record_of_tensors(outs));
            }
        }
        let key = (id, vals.clone());
        if let Some(v) = self.memo.get(&key) {
            return Ok(v.clone());
        }
        let sites = self.next_site;
        let with_grads = frame.decl.kind == DeclKind::Step
            && matches!(callee.kind, DeclKind::Objective | DeclKind::Adapter);
        let v = self.inline(callee, vals.clone())?;
        let v = if with_grads {
            self.with_call_gradients(callee, &vals, v)?
        } else {
            v
        };
        if self.b.graph.nodes.len() > MAX_GRAPH_NODES {
            return Err(LowerError::Unsupported(format!(
                "`{}` expands to more than {MAX_GRAPH_NODES} operations when its function calls \
                 are inlined (a function calling another several times on different values, \
                 nested deeply); restructure it so that calls share their arguments",
                frame.decl.name
            )));
        }
        // A callee that drew random numbers gives fresh draws at each call: not memoized.
        if callee.kind == DeclKind::Fn && self.next_site == sites {
            self.memo.insert(key, v.clone());
        }
        Ok(v)
    }

    /// A step's call of an objective or adapter: its record gets `grad`, the gradients of the
    /// loss (an objective) or of Σ y plus the auxiliary loss (an adapter, upstream gradient 1 as
    /// in tests) with respect to the arguments of its non-`const` float inputs and `param`s,
    /// built here as the backward of the forward just inlined.
    fn with_call_gradients(
        &mut self,
        callee: &'h Decl,
        vals: &[Option<Val>],
        record: Val,
    ) -> Result<Val, LowerError> {
        let Val::Record(mut fields) = record else {
            return internal("an objective or adapter call gave no record");
        };
        let mut seeds = Vec::new();
        for (name, v) in &fields {
            let (Val::Node(n), true) = (v, matches!(name.as_str(), "loss" | "y" | "aux_loss"))
            else {
                continue;
            };
            let one = self.b.constant(1.0, self.b.dtype(*n));
            seeds.push((*n, self.b.broadcast(one, self.b.dims(*n))));
        }
        let mut names = Vec::new();
        let mut wrt = Vec::new();
        for (p, v) in callee.params.iter().zip(vals) {
            let differentiable = matches!(p.kind, ParamKind::Input | ParamKind::Param)
                && p.default.is_none()
                && matches!(&p.ty, Ty::Tensor(t) if t.dtype.is_float());
            if !differentiable {
                continue;
            }
            match v {
                Some(Val::Node(n)) => {
                    names.push(p.name.clone());
                    wrt.push(*n);
                }
                _ => {
                    return fail(format!(
                        "`{}.grad.{}` needs `{}` to be given",
                        callee.name, p.name, p.name
                    ))
                }
            }
        }
        let grads = crate::autodiff::gradients_at(&mut self.b, &seeds, &wrt);
        let grads = names
            .into_iter()
            .zip(grads)
            .map(|(n, g)| (n, Val::Node(g)))
            .collect();
        fields.push(("grad".to_string(), Val::Record(grads)));
        Ok(Val::Record(fields))
    }

    /// The callee's body inlined on `vals`.
    fn inline(&mut self, callee: &'h Decl, vals: Vec<Option<Val>>) -> Result<Val, LowerError> {
        let mut inner = Frame {
            decl: callee,
            params: Vec::new(),
            locals: vec![None; callee.body.locals.len()],
            dims: HashMap::new(),
            outputs: Vec::new(),
        };
        for (p, v) in callee.params.iter().zip(vals) {
            let v = match v {
                Some(v) => v,
                None if p.optional && p.default.is_none() => Val::Absent,
                None => match p.default {
                    Some(d) => self.expr(&mut inner, d)?,
                    None => return fail(format!("missing argument `{}`", p.name)),
                },
            };
            if let (Val::Node(n), Ty::Tensor(t)) = (&v, &p.ty) {
                let have = self.b.dims(*n);
                bind_positional(&mut inner.dims, &t.dims, &have);
            }
            inner.params.push(v);
        }
        self.requires(&mut inner)?;
        self.body(&mut inner)?;
        let mut outs = std::mem::take(&mut inner.outputs);
        // Conform outputs to declared types in the callee's namespace.
        for (name, v) in &mut outs {
            if let (Val::Node(n), Some((_, ty))) =
                (&*v, callee.outputs.iter().find(|(o, _)| o == name))
            {
                *v = Val::Node(self.conform(&mut inner, *n, ty)?);
            }
        }
        if callee.kind == DeclKind::Fn && outs.len() == 1 && outs[0].0.is_empty() {
            return Ok(outs.remove(0).1);
        }
        if callee.kind == DeclKind::Fn && callee.outputs.len() == 1 && outs.len() == 1 {
            return Ok(outs.remove(0).1);
        }
        // An objective's record: `loss`, then its metrics nested as `metric` (as the checker
        // types it and as `ftc run` names them).
        if callee.kind == DeclKind::Objective {
            let (loss, metrics): (Vec<_>, Vec<_>) =
                outs.into_iter().partition(|(n, _)| n == "loss");
            outs = loss;
            if !metrics.is_empty() {
                outs.push(("metric".to_string(), Val::Record(metrics)));
            }
        }
        Ok(Val::Record(outs))
    }

    /// A record of constant tensors (an entry's outputs inside a test), `grad.*` and `metric.*`
    /// nested.
    fn record_of_tensors(&mut self, outs: Vec<(String, Tensor)>) -> Val {
        let mut fields = Vec::new();
        let mut grads = Vec::new();
        let mut metrics = Vec::new();
        for (name, t) in outs {
            let dims: Vec<DimId> = t
                .shape()
                .iter()
                .enumerate()
                .map(|(pos, &n)| self.anon_dim(pos, n as u64))
                .collect();
            let id = self.b.push(Node {
                op: Op::Literal(t.to_f64()),
                dtype: self.float(t.dtype()),
                dims,
            });
            if let Some(g) = name.strip_prefix("grad.") {
                grads.push((g.to_string(), Val::Node(id)));
            } else if let Some(m) = name.strip_prefix("metric.") {
                metrics.push((m.to_string(), Val::Node(id)));
            } else {
                fields.push((name, Val::Node(id)));
            }
        }
        if !metrics.is_empty() {
            fields.push(("metric".to_string(), Val::Record(metrics)));
        }
        if !grads.is_empty() {
            fields.push(("grad".to_string(), Val::Record(grads)));
        }
        Val::Record(fields)
    }
}

/// Binds a callee parameter's dims to an argument's graph dims by position; a pack takes the
/// middle.
fn bind_positional(map: &mut HashMap<String, Vec<DimId>>, items: &[DimItem], have: &[DimId]) {
    let fixed = items
        .iter()
        .filter(|d| !matches!(d, DimItem::Pack(_)))
        .count();
    let pack_len = have.len().saturating_sub(fixed);
    let mut pos = 0;
    for item in items {
        match item {
            DimItem::Pack(p) => {
                let end = (pos + pack_len).min(have.len());
                map.entry(format!("..{p}"))
                    .or_insert_with(|| have[pos..end].to_vec());
                pos = end;
            }
            DimItem::Named(n) => {
                if let Some(d) = have.get(pos) {
                    map.entry(n.clone()).or_insert_with(|| vec![*d]);
                }
                pos += 1;
            }
            DimItem::Anon(_) => pos += 1,
        }
    }
}

/// The exact values of a numeric literal (`0.1`, `-2`, `[[0.1, -0.2]]`, row-major), if `e`
/// is one: a literal read at f64 (`f64([0.1])`, or compared with an f64 value in a test)
/// keeps its written digits instead of going through f32.
pub fn exact_literal(decl: &hir::Decl, e: ExprId) -> Option<Vec<f64>> {
    match &decl.body.expr(e).kind {
        ExprKind::Float(v) => Some(vec![*v]),
        ExprKind::Int(v) => Some(vec![*v as f64]),
        ExprKind::Unary(ast::UnOp::Neg, inner) => {
            exact_literal(decl, *inner).map(|v| v.into_iter().map(|x| -x).collect())
        }
        ExprKind::Tensor(elems) => {
            let mut out = Vec::new();
            for el in elems {
                out.extend(exact_literal(decl, *el)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// The value of a float literal argument (`0.5`, `-0.5`), if `e` is one.
fn literal_float(decl: &hir::Decl, e: ExprId) -> Option<f64> {
    match &decl.body.expr(e).kind {
        ExprKind::Float(v) => Some(*v),
        ExprKind::Unary(ast::UnOp::Neg, inner) => match decl.body.expr(*inner).kind {
            ExprKind::Float(v) => Some(-v),
            _ => None,
        },
        _ => None,
    }
}
