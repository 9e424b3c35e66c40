//! Slicing: a contraction whose result is consumed only by reductions over one of its free dims,
//! maps over it and further contractions never exists whole. `sft(hidden @ lm_head, labels)`
//! makes `[B, T, V]` logits that the plan reads in a logsumexp pass, a gradient map and two
//! GEMMs; sliced over `V`, each pass runs on `[B, T, Vc]` slices recomputed from `hidden` and
//! a slice of `lm_head` (one GEMM per pass), so the memory beyond inputs and gradients is a
//! few slices whatever the vocabulary. No rule names a loss: any plan of this shape is sliced.
//!
//! The rewrite turns the kernels that read the contraction's buffer (and what they derive from
//! it over the dim) into *phases*, [`Kernel::Sliced`] runs of kernels the executor repeats per
//! slice, each starting with the contraction. A kernel joins a phase when
//! - it is a non-tail loop kernel whose nests are maps over the dim (their buffers become
//!   slice-sized, `local`) or reductions over it by an associative op (their outputs
//!   `accumulate`: they start at the op's identity and each slice combines into them), reading
//!   other buffers that have the dim only with the dim outermost (a bias over `V`: the slice is
//!   a row range), with no random draws and no data-dependent gather along the dim other than
//!   of pure index arithmetic (the masked pick of the IR builder, `ftl_ir::builder`);
//! - or it is a GEMM reading a slice, whose output either has the dim as one GEMM group (a
//!   slice of it is written: `grad lm_head`) or sums over it (`grad hidden`, accumulated).
//!
//! A kernel that reads an accumulated output of the open phase needs all its slices, so it
//! starts a new phase (which computes the contraction again: the backward pass recomputes the
//! logits, as Liger-Kernel and Cut Cross-Entropy do); a kernel that reads no slice closes the
//! phase and runs once. When any kernel reading a slice cannot join, the plan is left as it was.
//! Slices are at least one reduction wide: a contraction consumed only by contractions (LoRA's
//! `x @ A @ B`) stays whole.

use crate::fuse::{gemm_groups, nest_reads, BufId, BufRole, HostKind, Kernel, NestKind, Plan};
use ftl_ir::{DimId, NodeId, Op, Reduction};
use ftl_runtime::manifest::Identity;
use std::collections::BTreeSet;

/// Slices every contraction of `plan` that can be sliced (see the module doc).
pub fn slice_contractions(plan: &mut Plan) {
    let mut p = 0;
    while p < plan.kernels.len() {
        if let Kernel::Host {
            kind: HostKind::Contract,
            root,
            ..
        } = &plan.kernels[p]
        {
            let dims = single_dim_groups(plan, *root);
            if let Some(kernels) = dims.into_iter().find_map(|d| sliced(plan, p, d)) {
                plan.kernels = kernels;
            }
        }
        p += 1;
    }
}

/// The free dims of contraction `root` that form a GEMM group alone (rows or columns).
fn single_dim_groups(plan: &Plan, root: NodeId) -> Vec<DimId> {
    let Some([_, m, n, _]) = gemm_groups(&plan.graph, root) else {
        return Vec::new();
    };
    [n, m]
        .into_iter()
        .filter(|g| g.len() == 1)
        .map(|g| g[0])
        .collect()
}

/// The buffers a kernel reads (a view is read as its base).
fn reads(plan: &Plan, k: &Kernel) -> BTreeSet<BufId> {
    let base = |mut b: BufId| {
        while let BufRole::View(of) = plan.buffer(b).role {
            b = of;
        }
        b
    };
    match k {
        Kernel::Loops { nests, .. } => nests
            .iter()
            .flat_map(|n| nest_reads(plan, n))
            .map(base)
            .collect(),
        Kernel::Host { root, .. } => plan
            .graph
            .node(*root)
            .op
            .operands()
            .into_iter()
            .filter_map(|o| plan.buffer_of(o))
            .map(base)
            .collect(),
        Kernel::Sliced { body, .. } => body.iter().flat_map(|k| reads(plan, k)).collect(),
    }
}

/// The buffers a kernel writes.
fn writes(k: &Kernel) -> BTreeSet<BufId> {
    match k {
        Kernel::Loops { nests, .. } => nests.iter().map(|n| n.out).collect(),
        Kernel::Host { out, .. } => BTreeSet::from([*out]),
        Kernel::Sliced { body, .. } => body.iter().flat_map(writes).collect(),
    }
}

/// A phase being built.
struct Phase {
    body: Vec<Kernel>,
    local: BTreeSet<BufId>,
    accumulate: Vec<(BufId, Reduction)>,
    reduces: bool,
}

/// What a kernel adds to a phase.
struct Admitted {
    local: Vec<BufId>,
    accumulate: Vec<(BufId, Reduction)>,
    reduces: bool,
}

/// `plan`'s kernels with the contraction at `p` sliced over `dim`, or `None` when some reader
/// of a slice cannot run on slices (or nothing reduces over `dim`).
fn sliced(plan: &Plan, p: usize, dim: DimId) -> Option<Vec<Kernel>> {
    let source = plan.kernels[p].clone();
    let Kernel::Host { out: x, name, .. } = &source else {
        return None;
    };
    let x = *x;
    let Kernel::Host { root, .. } = &source else {
        return None;
    };
    let g = &plan.graph;
    // The operand that has the dim is read a slice of rows at a time.
    let rows_outermost = g.node(*root).op.operands().into_iter().all(|o| {
        let dims = &g.node(o).dims;
        !dims.contains(&dim) || dims.first() == Some(&dim)
    });
    if !rows_outermost || matches!(g.dim(dim).size, ftl_ir::DimSize::Pack) {
        return None;
    }
    if plan.buffer(x).role != BufRole::Temp
        || plan.buffers.iter().any(|b| b.role == BufRole::View(x))
    {
        return None;
    }
    // Kernels after the contraction that need nothing computed from it on run before it (the
    // tail that checks the labels), so that what reads them can share the first phase.
    let mut out: Vec<Kernel> = plan.kernels[..p].to_vec();
    let mut after: Vec<&Kernel> = Vec::new();
    let mut pending: BTreeSet<BufId> = writes(&source);
    for k in &plan.kernels[p + 1..] {
        if reads(plan, k).is_disjoint(&pending) {
            out.push(k.clone());
        } else {
            pending.extend(writes(k));
            after.push(k);
        }
    }
    let mut phase: Option<Phase> = None;
    let mut closed_local: BTreeSet<BufId> = BTreeSet::new();
    let mut phases = 0usize;
    let mut reduces = false;
    let mut close = |phase: Option<Phase>, out: &mut Vec<Kernel>, closed: &mut BTreeSet<BufId>| {
        if let Some(ph) = phase {
            reduces |= ph.reduces;
            closed.extend(ph.local.iter().copied().filter(|b| *b != x));
            out.push(Kernel::Sliced {
                name: format!("{name}_slices{phases}"),
                dim,
                local: ph.local.into_iter().collect(),
                accumulate: ph.accumulate,
                body: ph.body,
            });
            phases += 1;
        }
    };
    for k in after {
        let r = reads(plan, k);
        if !r.is_disjoint(&closed_local) {
            return None;
        }
        let open_local = phase
            .as_ref()
            .map_or_else(|| BTreeSet::from([x]), |ph| ph.local.clone());
        if r.is_disjoint(&open_local) && !r.contains(&x) {
            close(phase.take(), &mut out, &mut closed_local);
            out.push(k.clone());
            continue;
        }
        let needs_all_slices = phase
            .as_ref()
            .is_some_and(|ph| ph.accumulate.iter().any(|(b, _)| r.contains(b)));
        if needs_all_slices {
            close(phase.take(), &mut out, &mut closed_local);
            if !r.is_disjoint(&closed_local) {
                return None;
            }
        }
        let ph = phase.get_or_insert_with(|| Phase {
            body: vec![source.clone()],
            local: BTreeSet::from([x]),
            accumulate: Vec::new(),
            reduces: false,
        });
        let admitted = admit(plan, k, dim, &ph.local)?;
        ph.local.extend(admitted.local);
        ph.accumulate.extend(admitted.accumulate);
        ph.reduces |= admitted.reduces;
        ph.body.push(k.clone());
    }
    close(phase.take(), &mut out, &mut closed_local);
    (reduces && phases > 0).then_some(out)
}

/// Whether kernel `k` can run on slices of `dim` given the phase's `local` buffers, and what it
/// adds to the phase.
fn admit(plan: &Plan, k: &Kernel, dim: DimId, local: &BTreeSet<BufId>) -> Option<Admitted> {
    let g = &plan.graph;
    let has_dim = |b: BufId| g.node(plan.buffer(b).node).dims.contains(&dim);
    let outermost = |b: BufId| g.node(plan.buffer(b).node).dims.first() == Some(&dim);
    let mut admitted = Admitted {
        local: Vec::new(),
        accumulate: Vec::new(),
        reduces: false,
    };
    match k {
        Kernel::Loops {
            nests, tail: false, ..
        } => {
            for n in nests {
                let role = &plan.buffer(n.out).role;
                match &n.kind {
                    _ if has_dim(n.out) && !reduces_over(&n.kind, dim) => {
                        if matches!(n.kind, NestKind::Scan | NestKind::Scatter) {
                            return None;
                        }
                        match role {
                            // Over the dim and outermost (a bias gradient): written a slice of
                            // rows at a time, whole for what runs after the region.
                            BufRole::Temp | BufRole::Output(_) if outermost(n.out) => {}
                            BufRole::Temp => admitted.local.push(n.out),
                            _ => return None,
                        }
                    }
                    NestKind::Reduce { op, inner } if inner.contains(&dim) => {
                        let associative = matches!(
                            op,
                            Reduction::Sum
                                | Reduction::Max
                                | Reduction::Min
                                | Reduction::LogSumExp
                                | Reduction::Any
                                | Reduction::All
                        );
                        if !associative || matches!(role, BufRole::View(_)) {
                            return None;
                        }
                        admitted.accumulate.push((n.out, *op));
                        admitted.reduces = true;
                    }
                    _ => return None,
                }
                // What the nest reads: slices, buffers without the dim, or buffers whose rows
                // are the dim (read at the slice's row range).
                for b in nest_reads(plan, n) {
                    if !local.contains(&b) && has_dim(b) && !outermost(b) {
                        return None;
                    }
                }
                if !slice_safe_tree(plan, n.root, dim) {
                    return None;
                }
            }
            Some(admitted)
        }
        Kernel::Host {
            kind: HostKind::Contract,
            root,
            out,
            ..
        } => {
            let [batch, m, n, kk] = gemm_groups(g, *root)?;
            let alone = |grp: &[DimId]| grp == [dim];
            if batch.contains(&dim)
                || [&m, &n, &kk]
                    .iter()
                    .any(|grp| grp.contains(&dim) && !alone(grp))
            {
                return None;
            }
            if matches!(plan.buffer(*out).role, BufRole::View(_)) || local.contains(out) {
                return None;
            }
            // Operands and output that are not slices are read or written at the slice's rows.
            let node = g.node(*root);
            let operands = node.op.operands();
            let bufs = operands.iter().filter_map(|o| plan.buffer_of(*o));
            if bufs
                .chain([*out])
                .any(|b| !local.contains(&b) && has_dim(b) && !outermost(b))
            {
                return None;
            }
            if !has_dim(*out) {
                if !alone(&kk) {
                    return None;
                }
                admitted.accumulate.push((*out, Reduction::Sum));
            }
            Some(admitted)
        }
        _ => None,
    }
}

/// Whether a nest reduces over `dim`.
fn reduces_over(kind: &NestKind, dim: DimId) -> bool {
    matches!(kind, NestKind::Reduce { inner, .. } if inner.contains(&dim))
}

/// Whether the inline tree under `root` computes the same on a slice as on the whole: no random
/// draw (its stream is indexed by whole-tensor positions) and no gather along `dim` except of
/// pure index arithmetic (whose value at any position is known without a slice).
fn slice_safe_tree(plan: &Plan, root: NodeId, dim: DimId) -> bool {
    let g = &plan.graph;
    let mut stack = g.node(root).op.operands();
    let mut seen = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) || plan.buffer_of(id).is_some() {
            continue;
        }
        match &g.node(id).op {
            Op::Random { .. } => return false,
            Op::Gather {
                base,
                dim: d,
                index,
                default,
            } if *d == dim => {
                if !reads_no_buffer(plan, *base) {
                    return false;
                }
                stack.push(*index);
                stack.extend(default.iter().copied());
            }
            op => stack.extend(op.operands()),
        }
    }
    true
}

/// Whether `id`'s inline tree reads no buffer (index arithmetic on iotas and constants).
fn reads_no_buffer(plan: &Plan, id: NodeId) -> bool {
    let g = &plan.graph;
    let mut stack = vec![id];
    let mut seen = BTreeSet::new();
    while let Some(x) = stack.pop() {
        if !seen.insert(x) {
            continue;
        }
        if plan.buffer_of(x).is_some() || matches!(g.node(x).op, Op::Random { .. }) {
            return false;
        }
        stack.extend(g.node(x).op.operands());
    }
    true
}

/// The identity of an accumulating reduction: what an output starts at before the first slice.
pub fn identity(op: Reduction) -> Identity {
    match op {
        Reduction::Max | Reduction::LogSumExp | Reduction::ArgMax => Identity::NegInfinity,
        Reduction::Min => Identity::Infinity,
        Reduction::All => Identity::One,
        Reduction::Sum | Reduction::Any => Identity::Zero,
    }
}
