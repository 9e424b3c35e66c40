//! Building graphs. Every node goes through [`Builder::push`], which folds constants, applies the
//! stability rewrites and hash-conses (CSE), so lowering, autodiff and [`crate::simplify`] all
//! produce simplified graphs:
//!
//! - `log(sigmoid x)` → `log_sigmoid x`
//! - `log(1 + exp x)`, `log1p(exp x)` → `softplus x`
//! - `log(exp x)` → `x` (so `log(softmax(x))`, lowered as `log(exp(x − lse))`, becomes the
//!   stable `x − lse`, i.e. `log_softmax`)
//! - `scatter_add` of one value per output row → a one-hot `select` (elementwise), and the sum
//!   over D of such a select → the value where the index is in range
//! - once gradients are derived ([`Builder::fold_differentials`]), `differential v, t` → `v`
//! - `-(-x)` → `x`; `x + 0`, `x − 0`, `x · 1`, `x / 1`, casts to the same dtype, broadcasts,
//!   transposes and relabels to the same dims → `x`; `select` on a constant condition → its arm.

use crate::scalar;
use crate::{BinOp, Dim, DimId, DimSize, EntryKind, Graph, Node, NodeId, Op, Reduction, UnOp};
use ftl_runtime::DType;
use std::collections::HashMap;

/// A graph under construction.
pub struct Builder {
    /// The graph so far.
    pub graph: Graph,
    cse: HashMap<CseKey, NodeId>,
    /// Replace each [`Op::Differential`] by its value: set once gradients are derived, when the
    /// tangent has done its work.
    pub fold_differentials: bool,
}

/// A node as the key of common-subexpression elimination: equal when op, dtype and dims are,
/// with constants compared by their bits (so `-0.0` and `0.0` stay distinct, and a NaN
/// constant equals itself).
#[derive(Debug)]
struct CseKey(Node);

impl PartialEq for CseKey {
    fn eq(&self, other: &CseKey) -> bool {
        let (a, b) = (&self.0, &other.0);
        let same_op = match (&a.op, &b.op) {
            (Op::Const(x), Op::Const(y)) => x.to_bits() == y.to_bits(),
            (Op::Literal(x), Op::Literal(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (x, y) => x == y,
        };
        same_op && a.dtype == b.dtype && a.dims == b.dims
    }
}

impl Eq for CseKey {}

impl std::hash::Hash for CseKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let n = &self.0;
        std::mem::discriminant(&n.op).hash(state);
        n.op.operands().hash(state);
        match &n.op {
            Op::Const(x) => x.to_bits().hash(state),
            Op::Literal(xs) => xs.iter().for_each(|x| x.to_bits().hash(state)),
            _ => {}
        }
        n.dtype.hash(state);
        n.dims.hash(state);
    }
}

impl Builder {
    /// An empty graph.
    pub fn new(name: &str, kind: EntryKind) -> Builder {
        Builder {
            graph: Graph::empty(name, kind),
            cse: HashMap::new(),
            fold_differentials: false,
        }
    }

    /// A graph with `g`'s name, kind, dims and inputs but no nodes (for rebuilding passes).
    pub fn shell_of(g: &Graph) -> Builder {
        let mut b = Builder::new(&g.name, g.kind);
        b.graph.dims = g.dims.clone();
        b.graph.inputs = g.inputs.clone();
        b
    }

    /// The finished graph.
    pub fn finish(self) -> Graph {
        self.graph
    }

    /// The node behind a handle.
    pub fn node(&self, id: NodeId) -> &Node {
        self.graph.node(id)
    }

    /// A node's dims.
    pub fn dims(&self, id: NodeId) -> Vec<DimId> {
        self.node(id).dims.clone()
    }

    /// A node's dtype.
    pub fn dtype(&self, id: NodeId) -> DType {
        self.node(id).dtype
    }

    /// Adds a dim.
    pub fn add_dim(&mut self, name: &str, size: DimSize) -> DimId {
        // Names are unique in a graph (its text names dims): a second `R''` (a callee's primed
        // dim, inlined twice) becomes `R''#2`.
        let taken = |n: &str| self.graph.dims.iter().any(|d| d.name == n);
        let mut unique = name.to_string();
        let mut k = 1;
        while taken(&unique) {
            k += 1;
            unique = format!("{name}#{k}");
        }
        self.graph.dims.push(Dim { name: unique, size });
        DimId(self.graph.dims.len() as u32 - 1)
    }

    fn const_value(&self, id: NodeId) -> Option<f64> {
        match self.node(id).op {
            Op::Const(v) => Some(v),
            _ => None,
        }
    }

    /// Whether `id` is the constant `v`, possibly broadcast (for the identity rules).
    fn is_const(&self, id: NodeId, v: f64) -> bool {
        match self.node(id).op {
            Op::Const(c) => c == v,
            Op::Broadcast(a) => self.const_value(a) == Some(v),
            _ => false,
        }
    }

    /// Whether `id` can stand for a node of this dtype and these dims.
    fn fits(&self, id: NodeId, dtype: DType, dims: &[DimId]) -> bool {
        let n = self.node(id);
        n.dtype == dtype && n.dims == dims
    }

    /// A rewrite or fold of `node`, if one applies.
    fn rewrite(&mut self, node: &Node) -> Option<NodeId> {
        let (dtype, dims) = (node.dtype, node.dims.as_slice());
        match node.op {
            Op::Unary(op, a) => {
                if let Some(v) = self.const_value(a) {
                    if dims.is_empty() {
                        return Some(self.constant(dtype.round(scalar::unary(op, v)), dtype));
                    }
                }
                let inner = self.node(a).op.clone();
                let same = |b: &Builder, x: NodeId| b.fits(x, dtype, dims).then_some(x);
                match (op, inner) {
                    (UnOp::Log, Op::Unary(UnOp::Sigmoid, x)) if self.fits(a, dtype, dims) => {
                        Some(self.unary(UnOp::LogSigmoid, x))
                    }
                    (UnOp::Log, Op::Unary(UnOp::Exp, x)) => same(self, x),
                    (UnOp::Log1p, Op::Unary(UnOp::Exp, x)) if self.fits(x, dtype, dims) => {
                        Some(self.unary(UnOp::Softplus, x))
                    }
                    (UnOp::Log, Op::Binary(BinOp::Add, p, q)) => {
                        let exp_arg = |b: &Builder, e: NodeId| match b.node(e).op {
                            Op::Unary(UnOp::Exp, x) => Some(x),
                            _ => None,
                        };
                        let x = if self.is_const(p, 1.0) {
                            exp_arg(self, q)
                        } else if self.is_const(q, 1.0) {
                            exp_arg(self, p)
                        } else {
                            None
                        }?;
                        self.fits(x, dtype, dims)
                            .then(|| self.unary(UnOp::Softplus, x))
                    }
                    (UnOp::Neg, Op::Unary(UnOp::Neg, x)) => same(self, x),
                    _ => None,
                }
            }
            Op::Binary(op, a, b) => {
                if let (Some(x), Some(y)) = (self.const_value(a), self.const_value(b)) {
                    if dims.is_empty() {
                        return Some(self.constant(dtype.round(scalar::binary(op, x, y)), dtype));
                    }
                }
                let keep = |bld: &Builder, x: NodeId| bld.fits(x, dtype, dims).then_some(x);
                match op {
                    BinOp::Add if self.is_const(b, 0.0) => keep(self, a),
                    BinOp::Add if self.is_const(a, 0.0) => keep(self, b),
                    BinOp::Sub if self.is_const(b, 0.0) => keep(self, a),
                    BinOp::Mul if self.is_const(b, 1.0) => keep(self, a),
                    BinOp::Mul if self.is_const(a, 1.0) => keep(self, b),
                    BinOp::Div if self.is_const(b, 1.0) => keep(self, a),
                    _ => None,
                }
            }
            Op::Select(c, a, b) => match self.const_value(c) {
                Some(v) => {
                    let arm = if v != 0.0 { a } else { b };
                    if self.fits(arm, dtype, dims) {
                        Some(arm)
                    } else if self.node(arm).dtype == dtype {
                        Some(self.broadcast(arm, dims.to_vec()))
                    } else {
                        None
                    }
                }
                None => None,
            },
            Op::Cast(a) => {
                if let (Some(v), true) = (self.const_value(a), dims.is_empty()) {
                    return Some(self.constant(dtype.round(v), dtype));
                }
                self.fits(a, dtype, dims).then_some(a)
            }
            Op::Broadcast(a) | Op::Transpose(a) | Op::Relabel(a) => {
                self.fits(a, dtype, dims).then_some(a)
            }
            Op::Detach(a) if matches!(self.node(a).op, Op::Const(_) | Op::Literal(_)) => Some(a),
            Op::Differential { value, .. } if self.fold_differentials => Some(value),
            Op::ScatterAdd { value, dim, index } => self.one_hot(value, dim, index, dims),
            Op::Gather {
                base,
                dim,
                index,
                default: None,
            } if !self.dims(index).is_empty() && self.computed_by_contraction(base, dim, 4) => {
                let picked = self.pick_through(base, dim, index);
                Some(self.conform(picked, dims))
            }
            Op::Reduce(r, a) => self.reduce_rewrite(r, a, dims),
            _ => None,
        }
    }

    /// `scatter_add(v into D at i)` where every output position receives at most one value
    /// (neither v nor i has D, and both are indexed by the output's other dims) is the one-hot
    /// select `where(iota(D) == i, v, 0)`: elementwise, so it fuses into the pass over D.
    fn one_hot(
        &mut self,
        value: NodeId,
        dim: DimId,
        index: NodeId,
        dims: &[DimId],
    ) -> Option<NodeId> {
        let (vd, id) = (self.dims(value), self.dims(index));
        let covered = |ds: &[DimId]| !ds.contains(&dim) && ds.iter().all(|d| dims.contains(d));
        if !covered(&vd) || !covered(&id) {
            return None;
        }
        let idt = self.dtype(index);
        let iota = self.push(Node {
            op: Op::Iota(dim),
            dtype: DType::I32,
            dims: vec![dim],
        });
        let iota = self.cast(iota, idt);
        let hit = self.binary(BinOp::Eq, index, iota);
        let zero = self.constant(0.0, self.dtype(value));
        let sel = self.select(hit, value, zero);
        Some(self.conform(sel, dims))
    }

    /// Whether `dim` of `id` comes from a contraction's free dim (`hidden @ lm_head` over the
    /// vocabulary), possibly through elementwise ops (a bias, a temperature), looking `depth`
    /// levels down.
    fn computed_by_contraction(&self, id: NodeId, dim: DimId, depth: u32) -> bool {
        let n = self.node(id);
        if depth == 0 || !n.dims.contains(&dim) {
            return false;
        }
        match n.op {
            Op::Contract(a, b) => self.dims(a).contains(&dim) != self.dims(b).contains(&dim),
            Op::Unary(_, a) | Op::Cast(a) => self.computed_by_contraction(a, dim, depth - 1),
            Op::Binary(_, a, b) | Op::Select(_, a, b) => [a, b]
                .iter()
                .any(|x| self.computed_by_contraction(*x, dim, depth - 1)),
            _ => false,
        }
    }

    /// `base[dim: index]` of a value computed by a contraction, at an index per row (labels; a
    /// single position stays a gather): a gather distributes over
    /// elementwise ops (`(x - lse)[V: i]` is `x[V: i] - lse`), so the pick reaches the
    /// contraction itself, which [`Builder::masked_pick`] reads.
    fn pick_through(&mut self, base: NodeId, dim: DimId, index: NodeId) -> NodeId {
        let node = self.node(base).clone();
        let pick = |b: &mut Builder, x: NodeId| -> NodeId {
            if !b.dims(x).contains(&dim) {
                return x;
            }
            let dims = b.union(&b.dims(index), &b.dims(x));
            let dims: Vec<DimId> = dims.into_iter().filter(|d| *d != dim).collect();
            b.push(Node {
                op: Op::Gather {
                    base: x,
                    dim,
                    index,
                    default: None,
                },
                dtype: b.dtype(x),
                dims,
            })
        };
        match node.op {
            Op::Contract(..) => self.masked_pick(base, dim, index),
            Op::Unary(op, a) => {
                let a = pick(self, a);
                let dims = self.dims(a);
                self.push(Node {
                    op: Op::Unary(op, a),
                    dtype: node.dtype,
                    dims,
                })
            }
            Op::Cast(a) => {
                let a = pick(self, a);
                self.cast(a, node.dtype)
            }
            Op::Binary(op, a, b) => {
                let (a, b) = (pick(self, a), pick(self, b));
                self.binary(op, a, b)
            }
            Op::Select(c, a, b) => {
                let (c, a, b) = (pick(self, c), pick(self, a), pick(self, b));
                self.select(c, a, b)
            }
            _ => pick(self, base),
        }
    }

    /// `base[dim: index]` as `sum over dim of where(iota(dim) == index, base, 0)` when `base`
    /// is computed by a contraction over `dim`: the pick is then a reduction over `dim` like the
    /// logsumexp beside it, so the contraction's `[rows, dim]` result need never exist whole
    /// (the plan computes it in slices, see `ftl_plan::slicing`). It costs one compare per element
    /// of a pass the contraction already makes `contraction depth` times more expensive. The
    /// index is still checked: it is compared through `iota(dim)[dim: index]`, a gather that
    /// reports an index out of range as any gather does.
    fn masked_pick(&mut self, base: NodeId, dim: DimId, index: NodeId) -> NodeId {
        let iota = self.push(Node {
            op: Op::Iota(dim),
            dtype: DType::I32,
            dims: vec![dim],
        });
        let index_dims = self.dims(index);
        let checked = self.push(Node {
            op: Op::Gather {
                base: iota,
                dim,
                index,
                default: None,
            },
            dtype: DType::I32,
            dims: index_dims,
        });
        let hit = self.binary(BinOp::Eq, checked, iota);
        let zero = self.constant(0.0, self.dtype(base));
        let picked = self.select(hit, base, zero);
        self.reduce(Reduction::Sum, picked, &[dim])
    }

    /// Reductions see through transposes (order does not matter to them), sums through
    /// negation, and sums of one-hot selects fold (see [`Builder::sum_of_one_hot`]).
    fn reduce_rewrite(&mut self, r: Reduction, a: NodeId, dims: &[DimId]) -> Option<NodeId> {
        let over: Vec<DimId> = self
            .dims(a)
            .into_iter()
            .filter(|x| !dims.contains(x))
            .collect();
        match self.node(a).op {
            Op::Transpose(x) => {
                let red = self.reduce(r, x, &over);
                Some(self.conform(red, dims))
            }
            Op::Unary(UnOp::Neg, x) if r == Reduction::Sum => {
                let red = self.reduce(r, x, &over);
                let neg = self.unary(UnOp::Neg, red);
                Some(self.conform(neg, dims))
            }
            Op::Binary(op @ (BinOp::Add | BinOp::Sub), x, y)
                if r == Reduction::Sum && self.dtype(a).is_float() =>
            {
                self.sum_of_shifted(op, x, y, &over, dims)
                    .or_else(|| self.sum_of_one_hot(a, dims))
            }
            _ if r == Reduction::Sum => self.sum_of_one_hot(a, dims),
            _ => None,
        }
    }

    /// `sum over D of (x ± y)` with one side constant over D (`sum(logits - lse, V)`) is the
    /// other side's sum ± that side times |D|: the sum no longer waits for `y` (a logsumexp over
    /// the same D), so it joins the pass that computes it.
    fn sum_of_shifted(
        &mut self,
        op: BinOp,
        x: NodeId,
        y: NodeId,
        over: &[DimId],
        dims: &[DimId],
    ) -> Option<NodeId> {
        let covers = |b: &Builder, n: NodeId| over.iter().all(|d| b.dims(n).contains(d));
        let misses = |b: &Builder, n: NodeId| over.iter().all(|d| !b.dims(n).contains(d));
        let dtype = self.dtype(x);
        let out = if covers(self, x) && misses(self, y) {
            let n = self.size(over.to_vec(), dtype);
            let sx = self.reduce(Reduction::Sum, x, over);
            let ny = self.binary(BinOp::Mul, y, n);
            self.binary(op, sx, ny)
        } else if covers(self, y) && misses(self, x) {
            let n = self.size(over.to_vec(), dtype);
            let sy = self.reduce(Reduction::Sum, y, over);
            let nx = self.binary(BinOp::Mul, x, n);
            self.binary(op, nx, sy)
        } else {
            return None;
        };
        Some(self.conform(out, dims))
    }

    /// `sum over D of where(iota(D) == i, v, 0)` (v and i without D) is `v` where i is in range:
    /// the reduction of a one-hot select needs no pass over D.
    fn sum_of_one_hot(&mut self, a: NodeId, dims: &[DimId]) -> Option<NodeId> {
        let Op::Select(c, v, z) = self.node(a).op else {
            return None;
        };
        if !self.is_const(z, 0.0) {
            return None;
        }
        let Op::Binary(BinOp::Eq, p, q) = self.node(c).op else {
            return None;
        };
        let iota_dim = |b: &Builder, x: NodeId| match b.node(x).op {
            Op::Iota(d) => Some(d),
            Op::Cast(y) => match b.node(y).op {
                Op::Iota(d) => Some(d),
                _ => None,
            },
            _ => None,
        };
        let (d, idx) = match (iota_dim(self, p), iota_dim(self, q)) {
            (Some(d), None) => (d, q),
            (None, Some(d)) => (d, p),
            _ => return None,
        };
        let reduced: Vec<DimId> = self
            .dims(a)
            .into_iter()
            .filter(|x| !dims.contains(x))
            .collect();
        // A value broadcast over D is the same value at every position of D.
        let v = match self.node(v).op {
            Op::Broadcast(w) if !self.dims(w).contains(&d) => w,
            _ => v,
        };
        if reduced != [d] || self.dims(v).contains(&d) || self.dims(idx).contains(&d) {
            return None;
        }
        let it = self.dtype(idx);
        let zero_i = self.constant(0.0, it);
        let n = self.size(vec![d], it);
        let ge = self.binary(BinOp::Ge, idx, zero_i);
        let lt = self.binary(BinOp::Lt, idx, n);
        let inside = self.binary(BinOp::And, ge, lt);
        let zero = self.constant(0.0, self.dtype(v));
        let sel = self.select(inside, v, zero);
        Some(self.conform(sel, dims))
    }

    /// Adds a node, unless a fold, rewrite or an identical earlier node stands for it.
    pub fn push(&mut self, node: Node) -> NodeId {
        if let Some(id) = self.rewrite(&node) {
            return id;
        }
        let key = CseKey(node);
        if let Some(id) = self.cse.get(&key) {
            return *id;
        }
        self.graph.nodes.push(key.0.clone());
        let id = NodeId(self.graph.nodes.len() as u32 - 1);
        self.cse.insert(key, id);
        id
    }

    /// A scalar constant.
    pub fn constant(&mut self, v: f64, dtype: DType) -> NodeId {
        self.push(Node {
            op: Op::Const(dtype.round(v)),
            dtype,
            dims: vec![],
        })
    }

    /// The dims of an elementwise result: `a`'s, then `b`'s that `a` lacks.
    pub fn union(&self, a: &[DimId], b: &[DimId]) -> Vec<DimId> {
        let mut out = a.to_vec();
        out.extend(b.iter().filter(|d| !a.contains(d)));
        out
    }

    /// An elementwise unary op (same dtype and dims as the operand, bool for `Not`).
    pub fn unary(&mut self, op: UnOp, a: NodeId) -> NodeId {
        let n = self.node(a);
        let dtype = if op == UnOp::Not {
            DType::Bool
        } else {
            n.dtype
        };
        let dims = n.dims.clone();
        self.push(Node {
            op: Op::Unary(op, a),
            dtype,
            dims,
        })
    }

    /// An elementwise binary op; operands of different dtypes are joined first (see [`join`]).
    pub fn binary(&mut self, op: BinOp, a: NodeId, b: NodeId) -> NodeId {
        let dt = join(self.dtype(a), self.dtype(b));
        let (a, b) = (self.cast(a, dt), self.cast(b, dt));
        let dims = self.union(&self.dims(a), &self.dims(b));
        let dtype = if op.is_comparison() { DType::Bool } else { dt };
        self.push(Node {
            op: Op::Binary(op, a, b),
            dtype,
            dims,
        })
    }

    /// `c ? a : b`.
    pub fn select(&mut self, c: NodeId, a: NodeId, b: NodeId) -> NodeId {
        let dt = join(self.dtype(a), self.dtype(b));
        let (a, b) = (self.cast(a, dt), self.cast(b, dt));
        let dims = self.union(&self.dims(c), &self.dims(a));
        let dims = self.union(&dims, &self.dims(b));
        self.push(Node {
            op: Op::Select(c, a, b),
            dtype: dt,
            dims,
        })
    }

    /// A conversion (nothing when the dtype already matches).
    pub fn cast(&mut self, a: NodeId, dtype: DType) -> NodeId {
        if self.dtype(a) == dtype {
            return a;
        }
        let dims = self.dims(a);
        self.push(Node {
            op: Op::Cast(a),
            dtype,
            dims,
        })
    }

    /// Repeats `a` over `dims` (a superset of its dims, in any order).
    pub fn broadcast(&mut self, a: NodeId, dims: Vec<DimId>) -> NodeId {
        let dtype = self.dtype(a);
        self.push(Node {
            op: Op::Broadcast(a),
            dtype,
            dims,
        })
    }

    /// `a` reordered to `dims` (a permutation of its dims).
    pub fn transpose(&mut self, a: NodeId, dims: Vec<DimId>) -> NodeId {
        let dtype = self.dtype(a);
        self.push(Node {
            op: Op::Transpose(a),
            dtype,
            dims,
        })
    }

    /// `a`'s data under new dims.
    pub fn relabel(&mut self, a: NodeId, dims: Vec<DimId>) -> NodeId {
        let dtype = self.dtype(a);
        self.push(Node {
            op: Op::Relabel(a),
            dtype,
            dims,
        })
    }

    /// Reduces `a` over `over` (dims it has); the result keeps its other dims in order.
    pub fn reduce(&mut self, r: Reduction, a: NodeId, over: &[DimId]) -> NodeId {
        let dims: Vec<DimId> = self
            .dims(a)
            .into_iter()
            .filter(|d| !over.contains(d))
            .collect();
        let dtype = match r {
            Reduction::Any | Reduction::All => DType::Bool,
            Reduction::ArgMax => DType::I32,
            _ => self.dtype(a),
        };
        self.push(Node {
            op: Op::Reduce(r, a),
            dtype,
            dims,
        })
    }

    /// The element count of `dims`, as a scalar of `dtype`. A dim sized by a `requires`
    /// scalar (or derived from one) reads that scalar's node rather than the dim's size: the
    /// prelude computes such scalars before the dim has a size, so `requires K == floordiv(I,
    /// R), K2 == K + 1` and conditions over K see K's value on every backend.
    pub fn size(&mut self, dims: Vec<DimId>, dtype: DType) -> NodeId {
        let (derived, plain): (Vec<DimId>, Vec<DimId>) =
            dims.into_iter().partition(|d| self.reads_scalar(*d));
        let mut derived = derived.into_iter();
        let mut n = match derived.next() {
            Some(d) if plain.is_empty() => self.dim_value(d),
            first => {
                let n = self.push(Node {
                    op: Op::Size(plain),
                    dtype: DType::I64,
                    dims: vec![],
                });
                match first {
                    Some(d) => {
                        let v = self.dim_value(d);
                        self.binary(BinOp::Mul, n, v)
                    }
                    None => n,
                }
            }
        };
        for d in derived {
            let v = self.dim_value(d);
            n = self.binary(BinOp::Mul, n, v);
        }
        self.cast(n, dtype)
    }

    /// Whether dim `d`'s size is a `requires` scalar or derived from one.
    fn reads_scalar(&self, d: DimId) -> bool {
        match &self.graph.dim(d).size {
            DimSize::Scalar(_) => true,
            DimSize::Product(ds) => ds.iter().any(|x| self.reads_scalar(*x)),
            DimSize::Quotient(a, ds) => {
                self.reads_scalar(*a) || ds.iter().any(|x| self.reads_scalar(*x))
            }
            DimSize::Min(a, b) => self.reads_scalar(*a) || self.reads_scalar(*b),
            DimSize::Arg | DimSize::Pack | DimSize::Const(_) => false,
        }
    }

    /// The size of dim `d` as an i64 node, following the rule that sizes it.
    fn dim_value(&mut self, d: DimId) -> NodeId {
        if !self.reads_scalar(d) {
            return self.size(vec![d], DType::I64);
        }
        match self.graph.dim(d).size.clone() {
            DimSize::Scalar(v) => self.cast(v, DType::I64),
            DimSize::Product(ds) => self.size(ds, DType::I64),
            DimSize::Quotient(a, ds) => {
                let (a, by) = (self.dim_value(a), self.size(ds, DType::I64));
                self.binary(BinOp::FloorDiv, a, by)
            }
            DimSize::Min(a, b) => {
                let (a, b) = (self.dim_value(a), self.dim_value(b));
                self.binary(BinOp::Min, a, b)
            }
            DimSize::Arg | DimSize::Pack | DimSize::Const(_) => self.size(vec![d], DType::I64),
        }
    }

    /// Gives `a` exactly `target` dims: sums dims it has beyond them, broadcasts missing ones
    /// and reorders. Gradients pass through this to land in their input's layout.
    pub fn conform(&mut self, a: NodeId, target: &[DimId]) -> NodeId {
        let extra: Vec<DimId> = self
            .dims(a)
            .into_iter()
            .filter(|d| !target.contains(d))
            .collect();
        let a = if extra.is_empty() {
            a
        } else {
            self.reduce(Reduction::Sum, a, &extra)
        };
        let dims = self.dims(a);
        if dims.len() < target.len() {
            self.broadcast(a, target.to_vec())
        } else if dims != target {
            self.transpose(a, target.to_vec())
        } else {
            a
        }
    }
}

/// The dtype two operands compute in: float beats integer beats bool; the wider of two floats
/// or two integers (the checker has already rejected mixes that need a cast).
pub fn join(a: DType, b: DType) -> DType {
    let rank = |d: DType| match d {
        DType::F64 => 6,
        DType::F32 => 5,
        DType::BF16 => 4,
        DType::F16 => 3,
        DType::I64 => 2,
        DType::I32 => 1,
        DType::Bool => 0,
    };
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cse_merges_equal_nodes_and_keeps_signed_zeros_apart() {
        let mut b = Builder::new("t", EntryKind::Step);
        let node = |v: f64| Node {
            op: Op::Literal(vec![v, 1.0]),
            dtype: DType::F64,
            dims: vec![],
        };
        let zero = b.push(node(0.0));
        assert_eq!(b.push(node(0.0)), zero);
        assert_ne!(b.push(node(-0.0)), zero);
        let nan = b.push(node(f64::NAN));
        assert_eq!(b.push(node(f64::NAN)), nan);
    }
}
