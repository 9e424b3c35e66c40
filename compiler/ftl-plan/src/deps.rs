//! What every code generator asks of a plan while it evaluates values inside loop nests: the
//! loop dims a node's value depends on (to cache a value per coordinates and hoist or splat
//! it), and the identities reductions start from.

use crate::fuse::Plan;
use ftl_ir::{DimId, NodeId, Op};
use ftl_runtime::DType;
use std::collections::HashMap;

/// The loop dims each node's value depends on, computed once per node: a buffer's dims, or
/// its operands' (a gather's indexed dim comes from its index instead; a draw depends on its
/// element's position; an iota on its dim).
pub struct LoopDeps<'p> {
    plan: &'p Plan,
    memo: HashMap<NodeId, Vec<DimId>>,
}

impl<'p> LoopDeps<'p> {
    /// No node computed yet.
    pub fn new(plan: &'p Plan) -> Self {
        LoopDeps {
            plan,
            memo: HashMap::new(),
        }
    }

    /// The loop dims `id`'s value depends on, in first-use order.
    pub fn of(&mut self, id: NodeId) -> Vec<DimId> {
        if let Some(d) = self.memo.get(&id) {
            return d.clone();
        }
        let n = self.plan.graph.node(id);
        let mut out: Vec<DimId> = Vec::new();
        let add = |out: &mut Vec<DimId>, ds: Vec<DimId>| {
            for d in ds {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        };
        if self.plan.buffer_of(id).is_some() {
            add(&mut out, n.dims.clone());
        } else {
            match &n.op {
                Op::Iota(d) => add(&mut out, vec![*d]),
                Op::Random { .. } => add(&mut out, n.dims.clone()),
                Op::Gather {
                    base,
                    dim,
                    index,
                    default,
                } => {
                    let (base, dim, index, default) = (*base, *dim, *index, *default);
                    let b: Vec<DimId> = self.of(base).into_iter().filter(|d| *d != dim).collect();
                    add(&mut out, b);
                    let i = self.of(index);
                    add(&mut out, i);
                    if let Some(dv) = default {
                        let d = self.of(dv);
                        add(&mut out, d);
                    }
                }
                op => {
                    for o in op.operands() {
                        let d = self.of(o);
                        add(&mut out, d);
                    }
                }
            }
        }
        self.memo.insert(id, out.clone());
        out
    }
}

/// The identity of a maximum over `d`: −∞ for floats, the type's least value for integers
/// (`i32::MIN` for i32: an i64 bound does not fit an i32 constant), false for bool.
pub fn lowest(d: DType) -> f64 {
    match d {
        DType::F64 | DType::F32 | DType::BF16 | DType::F16 => f64::NEG_INFINITY,
        DType::I64 => i64::MIN as f64,
        DType::I32 => f64::from(i32::MIN),
        DType::Bool => 0.0,
    }
}

/// The identity of a minimum over `d`: +∞ for floats, the type's greatest value for integers,
/// true for bool.
pub fn highest(d: DType) -> f64 {
    match d {
        DType::F64 | DType::F32 | DType::BF16 | DType::F16 => f64::INFINITY,
        DType::I64 => i64::MAX as f64,
        DType::I32 => f64::from(i32::MAX),
        DType::Bool => 1.0,
    }
}
