//! Fusion: groups a graph's nodes into kernels. Every node is either *materialized* (stored in
//! a buffer by exactly one loop nest or host step) or *inlined* (recomputed wherever it is used,
//! evaluated at the loop's coordinates). The rules follow DESIGN.md and research/compiler.md §7:
//!
//! - inputs, reductions, scans, scatters, outputs and the operands of host steps (contractions,
//!   sorts, solves) are materialized; random draws are computed inline (Philox is a pure function
//!   of the element's index, so a dropout mask is regenerated wherever it is used); gathers, transposes, broadcasts and every
//!   elementwise op are inlined by default (a gather reads its base at the gathered position, so
//!   `log_softmax(x)[V: label]` never builds `x - lse`);
//! - an inlined value that is not cheap and is used inside a loop over more dims than it has
//!   (a small coefficient broadcast over a big pass) is materialized, so it is computed once;
//! - an inlined value with a transcendental used by two loop nests is materialized (never
//!   duplicate expensive producers), unless it is as large as each of those nests: then it is
//!   recomputed, so no pass-sized temporary exists (softmax over `[B, T, V]`);
//! - consecutive small nests (whose iteration space is a strict subset of another non-host
//!   nest's) run as one tail kernel.
//!
//! For DPO from logits this gives, per logits tensor, one read pass (row logsumexp), one tail,
//! and one pass that reads the logits and writes the gradient — with no rule specific to a loss.

use ftl_ir::{DimId, Graph, NodeId, Op, Reduction, UnOp};
use std::collections::BTreeSet;
use std::fmt::Write;

/// A handle to a buffer of a [`Plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufId(pub u32);

/// What a buffer holds.
#[derive(Clone, Debug, PartialEq)]
pub enum BufRole {
    /// Graph input number `k`.
    Input(u32),
    /// A constant tensor (a literal).
    Literal,
    /// An intermediate.
    Temp,
    /// A named output.
    Output(String),
    /// The same memory as another buffer under other dims (a relabel).
    View(BufId),
}

/// A materialized value.
#[derive(Clone, Debug, PartialEq)]
pub struct Buffer {
    /// The node whose value it holds.
    pub node: NodeId,
    /// What it is.
    pub role: BufRole,
}

/// How a loop nest computes its root.
#[derive(Clone, Debug, PartialEq)]
pub enum NestKind {
    /// Evaluates the root at every point of its dims.
    Map,
    /// Reduces the root's operand over `inner` (the operand's dims the root lacks).
    Reduce {
        /// The reduction.
        op: Reduction,
        /// The reduced dims, in the operand's order.
        inner: Vec<DimId>,
    },
    /// A running sum or product along one dim (sequential), parallel over the others.
    Scan,
    /// A scatter-add: zero the output, then accumulate over the value's iteration space.
    Scatter,
}

/// One loop nest: computes `root` into its buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Nest {
    /// The node computed.
    pub root: NodeId,
    /// Its buffer.
    pub out: BufId,
    /// How.
    pub kind: NestKind,
}

/// Work done by the runtime's library routines rather than generated code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// A contraction (packed GEMM).
    Contract,
    /// A stable argsort along a dim.
    ArgSort,
    /// A linear solve.
    Solve,
    /// A matrix decomposition (svd, qr, eigh, lu).
    Decompose,
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Kernel {
    /// Generated code: one or more loop nests (several for a tail kernel).
    Loops {
        /// `k<n>_<what>`.
        name: String,
        /// The nests, in order.
        nests: Vec<Nest>,
        /// A tail kernel (small tensors only; runs on one thread).
        tail: bool,
    },
    /// Kernels run once per slice of `dim` (see [`crate::slicing`]): a contraction's result over
    /// `dim` (the logits over the vocabulary) is computed a slice at a time into `local`
    /// buffers and consumed there; reductions over `dim` and contractions summing over it
    /// combine their slices into `accumulate` outputs, which start at the reduction's identity.
    Sliced {
        /// `<contraction>_slices<n>`.
        name: String,
        /// The sliced dim.
        dim: DimId,
        /// Buffers that hold one slice.
        local: Vec<BufId>,
        /// Buffers combined over the slices, and how.
        accumulate: Vec<(BufId, Reduction)>,
        /// The kernels run on each slice, in order (the contraction first).
        body: Vec<Kernel>,
    },
    /// A library routine on materialized operands.
    Host {
        /// `k<n>_<what>`.
        name: String,
        /// What it does.
        kind: HostKind,
        /// The node computed (its operands are buffers).
        root: NodeId,
        /// Its buffer.
        out: BufId,
    },
}

impl Kernel {
    /// The kernel's name.
    pub fn name(&self) -> &str {
        match self {
            Kernel::Loops { name, .. }
            | Kernel::Host { name, .. }
            | Kernel::Sliced { name, .. } => name,
        }
    }
    /// Puts `prefix` before the kernel's name (and its body's).
    pub fn prefix_name(&mut self, prefix: &str) {
        match self {
            Kernel::Loops { name, .. } | Kernel::Host { name, .. } => name.insert_str(0, prefix),
            Kernel::Sliced { name, body, .. } => {
                name.insert_str(0, prefix);
                for k in body {
                    k.prefix_name(prefix);
                }
            }
        }
    }
}

/// A fused graph: buffers and kernels in execution order.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The graph the plan computes.
    pub graph: Graph,
    /// Buffers by [`BufId`].
    pub buffers: Vec<Buffer>,
    /// Per node: its buffer when materialized.
    pub storage: Vec<Option<BufId>>,
    /// Scalars needed before anything runs (sizes from `requires D == …`, conditions).
    pub prelude: Option<Kernel>,
    /// The kernels, in order.
    pub kernels: Vec<Kernel>,
}

impl Plan {
    /// The buffer of a node, if materialized.
    pub fn buffer_of(&self, id: NodeId) -> Option<BufId> {
        self.storage[id.0 as usize]
    }

    /// The buffer behind a handle.
    pub fn buffer(&self, id: BufId) -> &Buffer {
        &self.buffers[id.0 as usize]
    }

    /// The buffer whose memory `id` is: itself, or the buffer a view relabels.
    pub fn memory_of(&self, mut id: BufId) -> BufId {
        while let BufRole::View(v) = self.buffer(id).role {
            id = v;
        }
        id
    }
}

fn is_transcendental(op: &Op) -> bool {
    matches!(
        op,
        Op::Unary(
            UnOp::Exp
                | UnOp::Log
                | UnOp::Log1p
                | UnOp::Expm1
                | UnOp::Log1mexp
                | UnOp::Tanh
                | UnOp::Sigmoid
                | UnOp::LogSigmoid
                | UnOp::Softplus
                | UnOp::Erf
                | UnOp::Sin
                | UnOp::Cos,
            _
        ) | Op::Binary(ftl_ir::BinOp::Pow, _, _)
    )
}

/// What must be a buffer whatever its uses.
fn must_materialize(op: &Op) -> bool {
    matches!(
        op,
        Op::Input(_)
            | Op::Literal(_)
            | Op::Reduce(..)
            | Op::Scan { .. }
            | Op::ScatterAdd { .. }
            | Op::Contract(..)
            | Op::ArgSort { .. }
            | Op::Solve { .. }
            | Op::Decompose { .. }
            | Op::Relabel(_)
    )
}

/// The dim groups of a contraction for a GEMM call: (batch, m, n, k), each contiguous in the
/// operands' layouts in one order; `None` when the layouts do not allow it.
pub fn gemm_groups(g: &Graph, id: NodeId) -> Option<[Vec<DimId>; 4]> {
    let n = g.node(id);
    let Op::Contract(a, b) = n.op else {
        return None;
    };
    let (ad, bd, od) = (&g.node(a).dims, &g.node(b).dims, &n.dims);
    let batch: Vec<DimId> = od
        .iter()
        .copied()
        .filter(|d| ad.contains(d) && bd.contains(d))
        .collect();
    let m: Vec<DimId> = od
        .iter()
        .copied()
        .filter(|d| ad.contains(d) && !bd.contains(d))
        .collect();
    let nn: Vec<DimId> = od
        .iter()
        .copied()
        .filter(|d| bd.contains(d) && !ad.contains(d))
        .collect();
    let k: Vec<DimId> = ad
        .iter()
        .copied()
        .filter(|d| bd.contains(d) && !od.contains(d))
        .collect();
    // Every operand dim must be in a group (no dim summed from one side only).
    if ad
        .iter()
        .any(|d| !batch.contains(d) && !m.contains(d) && !k.contains(d))
        || bd
            .iter()
            .any(|d| !batch.contains(d) && !nn.contains(d) && !k.contains(d))
    {
        return None;
    }
    let contiguous = |layout: &[DimId], group: &[DimId]| {
        if group.is_empty() {
            return true;
        }
        let Some(start) = layout.iter().position(|d| *d == group[0]) else {
            return false;
        };
        layout.len() >= start + group.len() && layout[start..start + group.len()] == *group
    };
    let ok = contiguous(ad, &m)
        && contiguous(ad, &k)
        && contiguous(bd, &nn)
        && contiguous(bd, &k)
        && contiguous(od, &m)
        && contiguous(od, &nn)
        && [ad, bd, od].iter().all(|l| {
            let pos: Vec<usize> = batch
                .iter()
                .filter_map(|d| l.iter().position(|x| x == d))
                .collect();
            pos.windows(2).all(|w| w[0] < w[1])
        });
    ok.then_some([batch, m, nn, k])
}

fn host_kind(g: &Graph, id: NodeId) -> Option<HostKind> {
    match &g.node(id).op {
        Op::Contract(..) => gemm_groups(g, id).map(|_| HostKind::Contract),
        Op::ArgSort { .. } => Some(HostKind::ArgSort),
        Op::Solve { .. } => Some(HostKind::Solve),
        Op::Decompose { .. } => Some(HostKind::Decompose),
        _ => None,
    }
}

struct Fuser<'g> {
    g: &'g Graph,
    live: Vec<bool>,
    mat: Vec<bool>,
}

impl Fuser<'_> {
    /// The iteration space of the nest that computes materialized node `id`.
    fn space(&self, id: NodeId) -> Vec<DimId> {
        let n = self.g.node(id);
        match &n.op {
            Op::Reduce(_, a) | Op::ScatterAdd { value: a, .. } => {
                let mut s = n.dims.clone();
                for d in &self.g.node(*a).dims {
                    if !s.contains(d) {
                        s.push(*d);
                    }
                }
                s
            }
            Op::Contract(a, b) => {
                let mut s = n.dims.clone();
                for d in self.g.node(*a).dims.iter().chain(&self.g.node(*b).dims) {
                    if !s.contains(d) {
                        s.push(*d);
                    }
                }
                s
            }
            _ => n.dims.clone(),
        }
    }

    /// Whether `id`'s inline tree is cheap to recompute: at most two arithmetic ops and no
    /// transcendental. The walk stops as soon as the answer is no (and after a few dozen
    /// nodes), so asking costs O(1) however large the tree: fusion stays linear in the graph.
    fn is_cheap(&self, id: NodeId) -> bool {
        let mut ops = 0;
        let mut stack = vec![id];
        let mut seen = BTreeSet::new();
        while let Some(x) = stack.pop() {
            if !seen.insert(x) || (x != id && self.mat[x.0 as usize]) {
                continue;
            }
            let op = &self.g.node(x).op;
            if matches!(
                op,
                Op::Unary(..) | Op::Binary(..) | Op::Select(..) | Op::Gather { .. }
            ) {
                ops += 1;
            }
            if ops > 2 || is_transcendental(op) || seen.len() > 32 {
                return false;
            }
            stack.extend(op.operands());
        }
        true
    }

    /// Materializes every node used by two or more roots whose inline tree (down to
    /// materialized nodes) holds a transcendental, so it is computed once. One pass in arena
    /// order (operands first): a node's tree sees the decisions already made for its operands.
    fn materialize_shared_transcendentals(&mut self, users: &[BTreeSet<NodeId>]) -> bool {
        let mut trans = vec![false; self.g.nodes.len()];
        let mut changed = false;
        for (i, n) in self.g.nodes.iter().enumerate() {
            trans[i] = is_transcendental(&n.op)
                || n.op
                    .operands()
                    .iter()
                    .any(|o| !self.mat[o.0 as usize] && trans[o.0 as usize]);
            // A value as large as every nest that uses it is recomputed instead: storing it
            // would make a temporary of the pass's full size (softmax over [B, T, V] read by
            // an entropy sum and by the gradient pass), and reading it back costs about as
            // much as recomputing it.
            let full_size_everywhere = users[i]
                .iter()
                .all(|r| self.space(*r).len() <= n.dims.len());
            if !self.mat[i] && users[i].len() >= 2 && trans[i] && !full_size_everywhere {
                self.mat[i] = true;
                changed = true;
            }
        }
        changed
    }

    /// One round of the materialization rules; whether anything changed.
    fn round(&mut self) -> bool {
        let roots: Vec<NodeId> = (0..self.g.nodes.len())
            .filter(|&i| self.live[i] && self.mat[i])
            .map(|i| NodeId(i as u32))
            .collect();
        let mut users: Vec<BTreeSet<NodeId>> = vec![BTreeSet::new(); self.g.nodes.len()];
        let mut changed = false;
        for &r in &roots {
            if host_kind(self.g, r).is_some() || self.g.node(r).op.operands().is_empty() {
                continue;
            }
            // Walk the inline tree; a non-cheap child consumed by a node with more dims is
            // broadcast there, so it gets its own (smaller) nest instead of being recomputed.
            let space = self.space(r);
            let mut stack: Vec<(NodeId, usize)> = self
                .g
                .node(r)
                .op
                .operands()
                .into_iter()
                .map(|o| (o, space.len()))
                .collect();
            let mut seen = BTreeSet::new();
            while let Some((id, parent_rank)) = stack.pop() {
                if self.mat[id.0 as usize] {
                    continue;
                }
                users[id.0 as usize].insert(r);
                if !seen.insert(id) {
                    continue;
                }
                let n = self.g.node(id);
                if n.dims.len() < parent_rank && !self.is_cheap(id) {
                    self.mat[id.0 as usize] = true;
                    changed = true;
                    continue;
                }
                let rank = match &n.op {
                    Op::Gather { .. } => n.dims.len() + 1,
                    _ => n.dims.len(),
                };
                for o in n.op.operands() {
                    stack.push((o, rank));
                }
            }
        }
        self.materialize_shared_transcendentals(&users) || changed
    }
}

/// Fuses `g` (a simplified, verified graph) into a plan.
pub fn fuse(g: &Graph) -> Plan {
    let live = g.live();
    let mut mat: Vec<bool> = g
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| live[i] && must_materialize(&n.op))
        .collect();
    for (_, id) in &g.outputs {
        mat[id.0 as usize] = true;
    }
    // Host steps read buffers.
    for (i, n) in g.nodes.iter().enumerate() {
        if live[i] && (host_kind(g, NodeId(i as u32)).is_some() || matches!(n.op, Op::Relabel(_))) {
            for o in n.op.operands() {
                mat[o.0 as usize] = true;
            }
        }
    }
    // Conditions and scalar dim sizes are computed first, in the prelude.
    let mut prelude_roots: Vec<NodeId> = g.checks.iter().map(|c| c.cond).collect();
    for d in &g.dims {
        if let ftl_ir::DimSize::Scalar(id) = d.size {
            prelude_roots.push(id);
        }
    }
    // In arena order, which is dependency order: a condition or a dim reading another
    // `requires` dim's scalar comes after the nest that writes it.
    prelude_roots.sort_unstable();
    prelude_roots.dedup();
    for r in &prelude_roots {
        mat[r.0 as usize] = true;
    }
    let mut f = Fuser { g, live, mat };
    for _ in 0..16 {
        if !f.round() {
            break;
        }
    }
    // Constants and sizes never need buffers unless they are outputs.
    let outputs: BTreeSet<NodeId> = g.outputs.iter().map(|(_, id)| *id).collect();
    let mut buffers = Vec::new();
    let mut storage = vec![None; g.nodes.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        if !f.mat[i] {
            continue;
        }
        let id = NodeId(i as u32);
        let role = match &n.op {
            Op::Input(k) => BufRole::Input(*k),
            Op::Literal(_) => BufRole::Literal,
            Op::Relabel(a) => match storage[a.0 as usize] {
                Some(b) if !outputs.contains(&id) => BufRole::View(b),
                _ => BufRole::Temp,
            },
            _ => BufRole::Temp,
        };
        buffers.push(Buffer { node: id, role });
        storage[i] = Some(BufId(buffers.len() as u32 - 1));
    }
    // Outputs get their own buffers (an output may be an input or another output's value).
    let mut out_bufs = Vec::new();
    for (name, id) in &g.outputs {
        let b = storage[id.0 as usize].expect("outputs are materialized");
        let buf = &mut buffers[b.0 as usize];
        if buf.role == BufRole::Temp {
            buf.role = BufRole::Output(name.clone());
            out_bufs.push((b, *id));
        } else {
            buffers.push(Buffer {
                node: *id,
                role: BufRole::Output(name.clone()),
            });
            out_bufs.push((BufId(buffers.len() as u32 - 1), *id));
        }
    }
    let mut prelude_nests: Vec<Nest> = Vec::new();
    for r in &prelude_roots {
        if let Some(b) = storage[r.0 as usize] {
            let nest = Nest {
                root: *r,
                out: b,
                kind: NestKind::Map,
            };
            if buffers[b.0 as usize].role == BufRole::Temp && !prelude_nests.contains(&nest) {
                prelude_nests.push(nest);
            }
        }
    }
    // One nest or host step per computed buffer.
    let steps: Vec<(NodeId, BufId)> = buffers
        .iter()
        .enumerate()
        .filter(|(_, b)| matches!(b.role, BufRole::Temp | BufRole::Output(_)))
        .map(|(k, b)| (b.node, BufId(k as u32)))
        .filter(|(n, _)| !prelude_nests.iter().any(|p| p.root == *n))
        .collect();
    let kernels = schedule(&f, &buffers, &storage, &steps, &prelude_nests);
    let prelude = (!prelude_nests.is_empty()).then(|| Kernel::Loops {
        name: "prelude".to_string(),
        nests: prelude_nests,
        tail: true,
    });
    let mut plan = Plan {
        graph: g.clone(),
        buffers,
        storage,
        prelude,
        kernels,
    };
    crate::slicing::slice_contractions(&mut plan);
    plan
}

/// The nest computing `root` into `out`.
fn nest_of(g: &Graph, root: NodeId, out: BufId) -> Nest {
    let n = g.node(root);
    let kind = match &n.op {
        Op::Reduce(r, a) => NestKind::Reduce {
            op: *r,
            inner: g
                .node(*a)
                .dims
                .iter()
                .copied()
                .filter(|d| !n.dims.contains(d))
                .collect(),
        },
        Op::Contract(a, b) => {
            // A contraction the GEMM cannot take: loops summing the product over its K dims.
            let mut inner: Vec<DimId> = Vec::new();
            for d in g.node(*a).dims.iter().chain(&g.node(*b).dims) {
                if !n.dims.contains(d) && !inner.contains(d) {
                    inner.push(*d);
                }
            }
            NestKind::Reduce {
                op: Reduction::Sum,
                inner,
            }
        }
        Op::Scan { .. } => NestKind::Scan,
        Op::ScatterAdd { .. } => NestKind::Scatter,
        _ => NestKind::Map,
    };
    Nest { root, out, kind }
}

/// The `k<n>_<what>` host step computing `root` (a node [`host_kind`] recognises).
fn host_kernel(g: &Graph, n: usize, root: NodeId, out: BufId) -> Kernel {
    let kind = host_kind(g, root).expect("a host step");
    Kernel::Host {
        name: format!("k{n}_{}", format!("{kind:?}").to_lowercase()),
        kind,
        root,
        out,
    }
}

/// Whether the inline tree of `root` reads the buffers `of` only through elementwise ops at
/// `root`'s own dims (so, in a shared loop, at the coordinates being computed). A view
/// (a relabel) of one of them reads it at other coordinates (`m[R <-> C]` reads the
/// transposed element), so it does not count: the buffer must be complete first.
fn reads_at_own_coordinates(
    g: &Graph,
    buffers: &[Buffer],
    storage: &[Option<BufId>],
    root: NodeId,
    of: &BTreeSet<BufId>,
) -> bool {
    let dims = &g.node(root).dims;
    // (node, whether every node above it is elementwise at `dims`)
    let mut stack: Vec<(NodeId, bool)> = vec![(root, true)];
    // A node shared within the tree is visited once per `direct` value, not once per path.
    let mut seen: BTreeSet<(NodeId, bool)> = BTreeSet::new();
    while let Some((id, direct)) = stack.pop() {
        if !seen.insert((id, direct)) {
            continue;
        }
        let n = g.node(id);
        if let (Some(b), false) = (storage[id.0 as usize], id == root) {
            // A buffer: read at the loop's coordinates only if every op above is elementwise.
            if of.contains(&b) && !(direct && n.dims == *dims) {
                return false;
            }
            let mut base = b;
            while let BufRole::View(v) = buffers[base.0 as usize].role {
                base = v;
                if of.contains(&base) {
                    return false;
                }
            }
            continue;
        }
        let elementwise = matches!(
            n.op,
            Op::Unary(..) | Op::Binary(..) | Op::Select(..) | Op::Cast(..)
        );
        let direct = direct && elementwise && n.dims == *dims;
        stack.extend(n.op.operands().into_iter().map(|o| (o, direct)));
    }
    true
}

/// Orders the steps into kernels. Ready passes over big spaces run first, those with the same
/// loop (space and kind) sharing one kernel; when none is ready, every small step that can run
/// joins one tail kernel.
fn schedule(
    f: &Fuser<'_>,
    buffers: &[Buffer],
    storage: &[Option<BufId>],
    steps: &[(NodeId, BufId)],
    prelude: &[Nest],
) -> Vec<Kernel> {
    let g = f.g;
    let spaces: Vec<Vec<DimId>> = steps.iter().map(|(n, _)| f.space(*n)).collect();
    let host: Vec<bool> = steps
        .iter()
        .map(|(n, _)| host_kind(g, *n).is_some())
        .collect();
    let small: Vec<bool> = spaces
        .iter()
        .map(|s| {
            spaces
                .iter()
                .zip(&host)
                .any(|(b, h)| !h && s.len() < b.len() && s.iter().all(|d| b.contains(d)))
        })
        .collect();
    // Dependencies: the computed buffers each step reads.
    let computed: BTreeSet<BufId> = steps.iter().map(|(_, b)| *b).collect();
    let deps: Vec<BTreeSet<BufId>> = steps
        .iter()
        .map(|(root, out)| {
            let mut d = BTreeSet::new();
            let mut seen = BTreeSet::new();
            let mut stack = g.node(*root).op.operands();
            while let Some(id) = stack.pop() {
                if !seen.insert(id) {
                    continue;
                }
                match storage[id.0 as usize] {
                    Some(b) if b != *out => {
                        // A view reads the buffer it aliases.
                        let mut base = b;
                        while let BufRole::View(v) = buffers[base.0 as usize].role {
                            base = v;
                        }
                        if computed.contains(&base) {
                            d.insert(base);
                        }
                    }
                    _ => stack.extend(g.node(id).op.operands()),
                }
            }
            d
        })
        .collect();
    let mut done: BTreeSet<BufId> = prelude.iter().map(|n| n.out).collect();
    let mut scheduled = vec![false; steps.len()];
    let mut kernels: Vec<Kernel> = Vec::new();
    let ready = |i: usize, done: &BTreeSet<BufId>, scheduled: &[bool]| {
        !scheduled[i] && deps[i].iter().all(|b| done.contains(b))
    };
    let label = |nest: &Nest| match &nest.kind {
        NestKind::Reduce { op, .. } => format!("{op:?}").to_lowercase(),
        NestKind::Map => "map".to_string(),
        NestKind::Scan => "scan".to_string(),
        NestKind::Scatter => "scatter".to_string(),
    };
    while scheduled.iter().any(|s| !s) {
        let big: Vec<usize> = (0..steps.len())
            .filter(|&i| !small[i] && ready(i, &done, &scheduled))
            .collect();
        if let Some(&first) = big.first() {
            let (root, out) = steps[first];
            scheduled[first] = true;
            if host[first] {
                kernels.push(host_kernel(g, kernels.len(), root, out));
                done.insert(out);
                continue;
            }
            let nest = nest_of(g, root, out);
            let mut nests = vec![nest.clone()];
            // Horizontal fusion: other ready nests with the same loop share the kernel.
            for &j in &big[1..] {
                let other = nest_of(g, steps[j].0, steps[j].1);
                let same_loop = !host[j]
                    && spaces[j] == spaces[first]
                    && std::mem::discriminant(&other.kind) == std::mem::discriminant(&nest.kind)
                    && matches!(nest.kind, NestKind::Map | NestKind::Reduce { .. })
                    && match (&other.kind, &nest.kind) {
                        (NestKind::Reduce { inner: a, .. }, NestKind::Reduce { inner: b, .. }) => {
                            a == b
                        }
                        _ => g.node(steps[j].0).dims == g.node(root).dims,
                    };
                if same_loop {
                    scheduled[j] = true;
                    nests.push(other);
                }
            }
            // Vertical fusion: a map over the same loop that reads this kernel's outputs only
            // at the loop's own coordinates runs in the same loop body, after them (LCM's
            // `prev_sample` from `denoised`), instead of re-reading them in a second pass.
            if matches!(nest.kind, NestKind::Map) {
                loop {
                    let kernel_outs: BTreeSet<BufId> = nests.iter().map(|n| n.out).collect();
                    let next = (0..steps.len()).find(|&j| {
                        !scheduled[j]
                            && !host[j]
                            && !small[j]
                            && deps[j]
                                .iter()
                                .all(|b| done.contains(b) || kernel_outs.contains(b))
                            && spaces[j] == spaces[first]
                            && g.node(steps[j].0).dims == g.node(root).dims
                            && matches!(nest_of(g, steps[j].0, steps[j].1).kind, NestKind::Map)
                            && reads_at_own_coordinates(
                                g,
                                buffers,
                                storage,
                                steps[j].0,
                                &kernel_outs,
                            )
                    });
                    let Some(j) = next else { break };
                    scheduled[j] = true;
                    nests.push(nest_of(g, steps[j].0, steps[j].1));
                }
            }
            for n in &nests {
                done.insert(n.out);
            }
            kernels.push(Kernel::Loops {
                name: format!("k{}_{}", kernels.len(), label(&nests[0])),
                nests,
                tail: false,
            });
            continue;
        }
        // No pass over a big space can run: the small steps that can, transitively, form a tail.
        let mut nests = Vec::new();
        loop {
            let next: Vec<usize> = (0..steps.len())
                .filter(|&i| small[i] && !host[i] && ready(i, &done, &scheduled))
                .collect();
            if next.is_empty() {
                break;
            }
            for i in next {
                scheduled[i] = true;
                nests.push(nest_of(g, steps[i].0, steps[i].1));
                done.insert(steps[i].1);
            }
        }
        if nests.is_empty() {
            // Only small host steps can run.
            let Some(i) = (0..steps.len()).find(|&i| ready(i, &done, &scheduled)) else {
                break;
            };
            let (root, out) = steps[i];
            scheduled[i] = true;
            kernels.push(host_kernel(g, kernels.len(), root, out));
            done.insert(out);
            continue;
        }
        nests.sort_by_key(|n| n.root);
        kernels.push(Kernel::Loops {
            name: format!("k{}_tail", kernels.len()),
            nests,
            tail: true,
        });
    }
    kernels
}

fn buf_name(plan: &Plan, b: BufId) -> String {
    let buf = plan.buffer(b);
    match &buf.role {
        BufRole::Input(k) => plan.graph.inputs[*k as usize].name.clone(),
        BufRole::Output(n) => n.clone(),
        _ => format!("%{}", buf.node.0),
    }
}

/// Buffers a nest reads (through its inline trees).
pub fn nest_reads(plan: &Plan, nest: &Nest) -> Vec<BufId> {
    let g = &plan.graph;
    let mut reads = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<NodeId> = g.node(nest.root).op.operands();
    if let Some(b) = plan.buffer_of(nest.root) {
        if b != nest.out {
            reads.insert(b);
        }
    }
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(b) = plan.buffer_of(id) {
            reads.insert(b);
            continue;
        }
        stack.extend(g.node(id).op.operands());
    }
    reads.into_iter().collect()
}

/// `ftc build --emit kernels`: one line per kernel; a sliced region's kernels indented under
/// its line.
pub fn print_plan(plan: &Plan) -> String {
    let mut out = String::new();
    for k in &plan.kernels {
        print_kernel(plan, k, "", &mut out);
    }
    if plan
        .kernels
        .iter()
        .any(|k| matches!(k, Kernel::Sliced { .. }))
    {
        let _ = writeln!(out, "# {}", ftl_runtime::slices::RULE);
    }
    out
}

fn print_kernel(plan: &Plan, k: &Kernel, indent: &str, out: &mut String) {
    let g = &plan.graph;
    // `()` stands for no dims (a scalar), so a space is never blank.
    let dims = |ds: &[DimId]| {
        if ds.is_empty() {
            return "()".to_string();
        }
        ds.iter()
            .map(|d| g.dim(*d).name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match k {
        Kernel::Sliced {
            name,
            dim,
            local,
            accumulate,
            body,
        } => {
            let names = |bs: &mut dyn Iterator<Item = String>| bs.collect::<Vec<_>>().join(", ");
            let _ =
                writeln!(
                    out,
                    "{indent}slices {name} over {} local({}) accumulate({})",
                    g.dim(*dim).name,
                    names(&mut local.iter().map(|b| buf_name(plan, *b))),
                    names(&mut accumulate.iter().map(|(b, op)| {
                        format!("{}: {op:?}", buf_name(plan, *b)).to_lowercase()
                    })),
                );
            let inner = format!("{indent}  ");
            for k in body {
                print_kernel(plan, k, &inner, out);
            }
        }
        Kernel::Loops { name, nests, .. } => {
            let mut reads = BTreeSet::new();
            let mut writes = Vec::new();
            for n in nests {
                let node = g.node(n.root);
                let space = match &n.kind {
                    NestKind::Reduce { inner, .. } => {
                        format!("{} | {}", dims(&node.dims), dims(inner))
                    }
                    _ => dims(&node.dims),
                };
                reads.extend(nest_reads(plan, n));
                writes.push((n.out, space));
            }
            let written: BTreeSet<BufId> = writes.iter().map(|(b, _)| *b).collect();
            let reads: Vec<String> = reads
                .into_iter()
                .filter(|b| !written.contains(b))
                .map(|b| buf_name(plan, b))
                .collect();
            // One loop space for the kernel when its nests share it (a fused pass), else
            // the space of each written buffer (a tail kernel of small, unrelated nests).
            let shared = writes.iter().all(|(_, s)| *s == writes[0].1);
            let (space, writes): (String, Vec<String>) = if shared {
                (
                    format!(" [{}]", writes.first().map_or("()", |(_, s)| s.as_str())),
                    writes.iter().map(|(b, _)| buf_name(plan, *b)).collect(),
                )
            } else {
                (
                    String::new(),
                    writes
                        .iter()
                        .map(|(b, s)| format!("{}[{s}]", buf_name(plan, *b)))
                        .collect(),
                )
            };
            let _ = writeln!(
                out,
                "{indent}kernel {name}{space} reads({}) writes({})",
                reads.join(", "),
                writes.join(", ")
            );
        }
        Kernel::Host {
            name, root, out: b, ..
        } => {
            let node = g.node(*root);
            let reads: Vec<String> = node
                .op
                .operands()
                .into_iter()
                .filter_map(|o| plan.buffer_of(o))
                .map(|x| buf_name(plan, x))
                .collect();
            let _ = writeln!(
                out,
                "{indent}kernel {name} [{}] reads({}) writes({})",
                dims(&node.dims),
                reads.join(", "),
                buf_name(plan, *b)
            );
        }
    }
}
