//! The simplifier: rebuilds the live part of a graph (DCE) through [`Builder::push`], which
//! folds constants, applies the stability rewrites and merges identical nodes (CSE).

use crate::builder::Builder;
use crate::{Check, DimSize, Graph, NodeId};

/// The simplified graph: same inputs, dims, outputs and checks; dead nodes dropped. A rewrite
/// can leave the nodes it replaced dead (`sigmoid x` once `log(sigmoid x)` became
/// `log_sigmoid x`), so rebuilding repeats until every node is live (a rebuild only removes
/// nodes, so this ends; the bound is a guard).
pub fn simplify(g: &Graph) -> Graph {
    simplify_with(g, false)
}

/// [`simplify`] after autodiff: also replaces each [`crate::Op::Differential`] by its value, so
/// a differential (lower/linalg.rs) costs nothing in the forward pass once its gradient is
/// derived.
pub fn simplify_after_gradients(g: &Graph) -> Graph {
    simplify_with(g, true)
}

fn simplify_with(g: &Graph, fold_differentials: bool) -> Graph {
    let mut out = rebuild(g, fold_differentials);
    for _ in 0..8 {
        if out.live().iter().all(|l| *l) {
            break;
        }
        out = rebuild(&out, fold_differentials);
    }
    out
}

/// One rebuild of the live nodes through the builder.
fn rebuild(g: &Graph, fold_differentials: bool) -> Graph {
    let live = g.live();
    let mut b = Builder::shell_of(g);
    b.fold_differentials = fold_differentials;
    let mut map: Vec<Option<NodeId>> = vec![None; g.nodes.len()];
    for (i, node) in g.nodes.iter().enumerate() {
        if !live[i] {
            continue;
        }
        let op = node
            .op
            .map_operands(|o| map[o.0 as usize].expect("operands precede users"));
        let mut n = node.clone();
        n.op = op;
        map[i] = Some(b.push(n));
    }
    let get = |id: NodeId| map[id.0 as usize].expect("outputs are live");
    let mut out = b.finish();
    out.outputs = g
        .outputs
        .iter()
        .map(|(n, id)| (n.clone(), get(*id)))
        .collect();
    // A callee's `requires` that folds to the caller's own condition is checked once.
    for c in &g.checks {
        let cond = get(c.cond);
        if !out.checks.iter().any(|k| k.cond == cond) {
            out.checks.push(Check {
                cond,
                text: c.text.clone(),
            });
        }
    }
    for d in &mut out.dims {
        if let DimSize::Scalar(id) = &mut d.size {
            *id = get(*id);
        }
    }
    out
}
