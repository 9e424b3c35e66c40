//! Reverse-mode autodiff as a graph-to-graph pass. Objectives get `grad.<x>` = d loss / d x
//! for every non-`const` float input; adapters get the vector-Jacobian product of their outputs
//! from `grad.<output>` inputs (plus the auxiliary loss's gradient) for `x` and every `param`;
//! steps get nothing.
//!
//! Each primitive has its rule below. Kinks follow PyTorch: elementwise `max`/`min` split ties
//! in halves, reductions share the gradient evenly among the extrema, `relu'(0) = 0`, and
//! `clamp` passes nothing at a scalar bound and splits ties with a tensor bound (PyTorch 2.15). Gradients that came through a
//! `select` branch are *masked*: where they are zero, the rules below produce exact zeros even
//! when the local derivative is infinite or NaN, so an untaken branch (`where(x > 0, log(x),
//! 0)`) never leaks NaN.

use crate::builder::Builder;
use crate::{BinOp, EntryKind, Graph, Input, Node, NodeId, Op, Reduction, Role, ScanKind, UnOp};
use std::collections::HashMap;

/// Whether an input gets a gradient output.
pub fn differentiable_input(i: &Input) -> bool {
    matches!(i.role, Role::Input | Role::Param) && i.dtype.is_float() && i.default.is_none()
}

struct Adjoints {
    map: HashMap<NodeId, (NodeId, bool)>,
}

impl Adjoints {
    /// The gradient reaching `node`, with its dims and dtype (zeros when none reaches it).
    fn gradient(&self, b: &mut Builder, node: NodeId) -> NodeId {
        let (dims, dtype) = (b.dims(node), b.dtype(node));
        let grad = match self.map.get(&node) {
            Some(&(gid, _)) => gid,
            None => {
                let z = b.constant(0.0, dtype);
                b.broadcast(z, dims.clone())
            }
        };
        let grad = b.conform(grad, &dims);
        b.cast(grad, dtype)
    }
}

/// The forward graph plus gradient outputs (unchanged for steps).
pub fn differentiate(g: &Graph) -> Graph {
    if g.kind == EntryKind::Step {
        return g.clone();
    }
    // Rebuild the forward graph so new nodes can be appended with CSE against it.
    let mut b = Builder::shell_of(g);
    let mut map = Vec::with_capacity(g.nodes.len());
    for node in &g.nodes {
        let mut n = node.clone();
        n.op = node.op.map_operands(|o| map[o.0 as usize]);
        map.push(b.push(n));
    }
    let remap = |id: NodeId| map[id.0 as usize];
    let outputs: Vec<(String, NodeId)> = g
        .outputs
        .iter()
        .map(|(n, id)| (n.clone(), remap(*id)))
        .collect();
    let mut adj = Adjoints {
        map: HashMap::new(),
    };
    let mut seeds = Vec::new();
    match g.kind {
        EntryKind::Objective => {
            if let Some((_, loss)) = outputs.iter().find(|(n, _)| n == "loss") {
                seeds.push((*loss, None));
            }
        }
        EntryKind::Adapter => {
            for (name, id) in &outputs {
                if name == "aux_loss" {
                    seeds.push((*id, None));
                    continue;
                }
                let node = b.node(*id).clone();
                b.graph.inputs.push(Input {
                    name: format!("grad.{name}"),
                    role: Role::Upstream,
                    dtype: node.dtype,
                    dims: node.dims.clone(),
                    default: None,
                    required: true,
                });
                let k = b.graph.inputs.len() as u32 - 1;
                let up = b.push(Node {
                    op: Op::Input(k),
                    dtype: node.dtype,
                    dims: node.dims,
                });
                seeds.push((*id, Some(up)));
            }
        }
        EntryKind::Step => {}
    }
    // The adapter's upstream inputs were appended above; they take no gradient.
    let inputs = b.graph.inputs.clone();
    let needs = needs_gradient(&b.graph, |_, n| match n.op {
        Op::Input(k) => differentiable_input(&inputs[k as usize]),
        _ => false,
    });
    let seeds: Vec<(NodeId, NodeId)> = seeds
        .into_iter()
        .map(|(id, up)| (id, up.unwrap_or_else(|| b.constant(1.0, b.dtype(id)))))
        .collect();
    backprop(&mut b, &mut adj, &needs, &seeds);
    let mut out = outputs;
    for (k, input) in g.inputs.iter().enumerate() {
        if !differentiable_input(input) {
            continue;
        }
        let node = b.push(Node {
            op: Op::Input(k as u32),
            dtype: input.dtype,
            dims: input.dims.clone(),
        });
        // An input stored in a narrower dtype than it computes in gets its gradient in its
        // own dtype (PyTorch's rule: a gradient has its tensor's dtype).
        let grad = adj.gradient(&mut b, node);
        let grad = b.cast(grad, input.dtype);
        out.push((format!("grad.{}", input.name), grad));
    }
    let mut graph = b.finish();
    graph.outputs = out;
    graph.checks = g
        .checks
        .iter()
        .map(|c| crate::Check {
            cond: remap(c.cond),
            text: c.text.clone(),
        })
        .collect();
    for d in &mut graph.dims {
        if let crate::DimSize::Scalar(id) = &mut d.size {
            *id = remap(*id);
        }
    }
    graph
}

/// Per node: whether a differentiable input reaches it through differentiable ops.
/// Reverse mode over the nodes built so far: each seed `(output, upstream gradient)` is
/// accumulated, then every node with an adjoint passes its vector-Jacobian products to the
/// operands that need one, last node first.
fn backprop(b: &mut Builder, adj: &mut Adjoints, needs: &[bool], seeds: &[(NodeId, NodeId)]) {
    for &(id, up) in seeds {
        accumulate(b, adj, id, up, false);
    }
    let last = needs.len();
    for i in (0..last).rev() {
        let id = NodeId(i as u32);
        let Some(&(gid, masked)) = adj.map.get(&id) else {
            continue;
        };
        let node = b.node(id).clone();
        for (operand, contrib, m) in vjp(b, id, &node, gid, masked) {
            if needs[operand.0 as usize] {
                accumulate(b, adj, operand, contrib, m);
            }
        }
    }
}

/// The gradients of the seeds `(output, upstream gradient)` with respect to the nodes `wrt`,
/// appended to the graph being built (a step that reads a call's `grad`: the call's forward is
/// already there, its backward is added at the call). Each gradient has its node's dims and
/// dtype; a node the seeds do not depend on gets zeros.
pub fn gradients_at(b: &mut Builder, seeds: &[(NodeId, NodeId)], wrt: &[NodeId]) -> Vec<NodeId> {
    let needs = needs_gradient(&b.graph, |i, _| wrt.iter().any(|w| w.0 as usize == i));
    let mut adj = Adjoints {
        map: HashMap::new(),
    };
    backprop(b, &mut adj, &needs, seeds);
    wrt.iter().map(|&w| adj.gradient(b, w)).collect()
}

/// Per node: whether a gradient flows to it from a leaf (`is_leaf` by index), i.e. whether it
/// is a float value computed from one through differentiable ops.
fn needs_gradient(g: &Graph, is_leaf: impl Fn(usize, &Node) -> bool) -> Vec<bool> {
    let mut needs = vec![false; g.nodes.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        if is_leaf(i, n) {
            needs[i] = n.dtype.is_float();
            continue;
        }
        needs[i] = match &n.op {
            Op::Input(_) => false,
            Op::Detach(_)
            | Op::ArgSort { .. }
            | Op::Size(_)
            | Op::Iota(_)
            | Op::Decompose { .. } => false,
            Op::Differential { tangent, .. } => needs[tangent.0 as usize],
            op => n.dtype.is_float() && op.operands().iter().any(|o| needs[o.0 as usize]),
        };
    }
    needs
}

fn accumulate(b: &mut Builder, adj: &mut Adjoints, id: NodeId, g: NodeId, masked: bool) {
    let dims = b.dims(id);
    let dtype = b.dtype(id);
    if !dtype.is_float() {
        return;
    }
    let g = b.conform(g, &dims);
    let g = b.cast(g, dtype);
    let entry = match adj.map.get(&id) {
        Some(&(prev, m)) => (b.binary(BinOp::Add, prev, g), m || masked),
        None => (g, masked),
    };
    adj.map.insert(id, entry);
}

/// `g * d`, with exact zeros where a masked `g` is zero.
fn gmul(b: &mut Builder, g: NodeId, d: NodeId, masked: bool) -> NodeId {
    let d = b.cast(d, b.dtype(g));
    let p = b.binary(BinOp::Mul, g, d);
    guard(b, g, p, masked)
}

/// `g / d`, with exact zeros where a masked `g` is zero.
fn gdiv(b: &mut Builder, g: NodeId, d: NodeId, masked: bool) -> NodeId {
    let d = b.cast(d, b.dtype(g));
    let q = b.binary(BinOp::Div, g, d);
    guard(b, g, q, masked)
}

fn guard(b: &mut Builder, g: NodeId, v: NodeId, masked: bool) -> NodeId {
    if !masked {
        return v;
    }
    let zero = b.constant(0.0, b.dtype(g));
    let is_zero = b.binary(BinOp::Eq, g, zero);
    b.select(is_zero, zero, v)
}

fn c(b: &mut Builder, v: f64, like: NodeId) -> NodeId {
    let dt = b.dtype(like);
    b.constant(v, dt)
}

/// The contributions of node `id`'s adjoint `g` to its operands.
fn vjp(
    b: &mut Builder,
    id: NodeId,
    node: &Node,
    g: NodeId,
    m: bool,
) -> Vec<(NodeId, NodeId, bool)> {
    let y = id;
    match node.op.clone() {
        Op::Unary(op, x) => {
            let d = match op {
                UnOp::Neg => {
                    let n = b.unary(UnOp::Neg, g);
                    return vec![(x, n, m)];
                }
                UnOp::Exp => y,
                UnOp::Log => return vec![(x, gdiv(b, g, x, m), m)],
                UnOp::Log1p => {
                    let one = c(b, 1.0, x);
                    let den = b.binary(BinOp::Add, one, x);
                    return vec![(x, gdiv(b, g, den, m), m)];
                }
                UnOp::Expm1 => {
                    let one = c(b, 1.0, y);
                    b.binary(BinOp::Add, y, one)
                }
                UnOp::Log1mexp => {
                    // d/dx log(1 - e^x) = -1 / expm1(-x)
                    let nx = b.unary(UnOp::Neg, x);
                    let em = b.unary(UnOp::Expm1, nx);
                    let den = b.unary(UnOp::Neg, em);
                    return vec![(x, gdiv(b, g, den, m), m)];
                }
                UnOp::Sqrt => {
                    let two = c(b, 2.0, y);
                    let den = b.binary(BinOp::Mul, two, y);
                    return vec![(x, gdiv(b, g, den, m), m)];
                }
                UnOp::Rsqrt => {
                    let y2 = b.binary(BinOp::Mul, y, y);
                    let y3 = b.binary(BinOp::Mul, y2, y);
                    let h = c(b, -0.5, y);
                    b.binary(BinOp::Mul, h, y3)
                }
                UnOp::Abs => b.unary(UnOp::Sign, x),
                UnOp::Tanh => {
                    let one = c(b, 1.0, y);
                    let y2 = b.binary(BinOp::Mul, y, y);
                    b.binary(BinOp::Sub, one, y2)
                }
                UnOp::Sigmoid => {
                    let one = c(b, 1.0, y);
                    let q = b.binary(BinOp::Sub, one, y);
                    b.binary(BinOp::Mul, y, q)
                }
                UnOp::LogSigmoid => {
                    let nx = b.unary(UnOp::Neg, x);
                    b.unary(UnOp::Sigmoid, nx)
                }
                UnOp::Softplus => b.unary(UnOp::Sigmoid, x),
                UnOp::Relu => {
                    let zero = c(b, 0.0, x);
                    let pos = b.binary(BinOp::Gt, x, zero);
                    let z = c(b, 0.0, g);
                    let s = b.select(pos, g, z);
                    return vec![(x, s, m)];
                }
                UnOp::Erf => {
                    let x2 = b.binary(BinOp::Mul, x, x);
                    let nx2 = b.unary(UnOp::Neg, x2);
                    let e = b.unary(UnOp::Exp, nx2);
                    let k = c(b, std::f64::consts::FRAC_2_SQRT_PI, x);
                    b.binary(BinOp::Mul, k, e)
                }
                UnOp::Sin => b.unary(UnOp::Cos, x),
                UnOp::Cos => {
                    let s = b.unary(UnOp::Sin, x);
                    b.unary(UnOp::Neg, s)
                }
                UnOp::Not | UnOp::Sign | UnOp::Floor | UnOp::Ceil | UnOp::Round => return vec![],
            };
            vec![(x, gmul(b, g, d, m), m)]
        }
        Op::Binary(op, x, z) => match op {
            BinOp::Add => vec![(x, g, m), (z, g, m)],
            BinOp::Sub => {
                let n = b.unary(UnOp::Neg, g);
                vec![(x, g, m), (z, n, m)]
            }
            BinOp::Mul => vec![(x, gmul(b, g, z, m), m), (z, gmul(b, g, x, m), m)],
            BinOp::Div => {
                let ga = gdiv(b, g, z, m);
                let q = b.binary(BinOp::Div, y, z);
                let nq = b.unary(UnOp::Neg, q);
                vec![(x, ga, m), (z, gmul(b, g, nq, m), m)]
            }
            BinOp::Pow => {
                let one = c(b, 1.0, z);
                let e = b.binary(BinOp::Sub, z, one);
                let p = b.binary(BinOp::Pow, x, e);
                let da = b.binary(BinOp::Mul, z, p);
                let ga = gmul(b, g, da, m);
                // 0 where the exponent is 0 (PyTorch's pow_backward: x^0 is constant, so
                // pow(0, 0) has gradient 0, not 0 · 0^-1 = NaN).
                let e0 = c(b, 0.0, z);
                let exp0 = b.binary(BinOp::Eq, z, e0);
                let za = c(b, 0.0, ga);
                let ga = b.select(exp0, za, ga);
                // d/db a^b = log(a)·y, taken as 0 where a == 0 (PyTorch's pow_backward_exponent).
                let l = b.unary(UnOp::Log, x);
                let db = b.binary(BinOp::Mul, l, y);
                let gb = gmul(b, g, db, m);
                let zero = c(b, 0.0, x);
                let at0 = b.binary(BinOp::Eq, x, zero);
                let z0 = c(b, 0.0, gb);
                let gb = b.select(at0, z0, gb);
                vec![(x, ga, m), (z, gb, m)]
            }
            BinOp::Max | BinOp::Min => {
                let cmp = if op == BinOp::Max {
                    BinOp::Gt
                } else {
                    BinOp::Lt
                };
                let wins = b.binary(cmp, x, z);
                let tie = b.binary(BinOp::Eq, x, z);
                let (one, half, zero) = (c(b, 1.0, g), c(b, 0.5, g), c(b, 0.0, g));
                let w_tie = b.select(tie, half, zero);
                let wa = b.select(wins, one, w_tie);
                let wb = b.binary(BinOp::Sub, one, wa);
                vec![(x, gmul(b, g, wa, m), m), (z, gmul(b, g, wb, m), m)]
            }
            BinOp::Rem => {
                let q = b.binary(BinOp::Div, x, z);
                let f = b.unary(UnOp::Floor, q);
                let nf = b.unary(UnOp::Neg, f);
                vec![(x, g, m), (z, gmul(b, g, nf, m), m)]
            }
            _ => vec![],
        },
        Op::Select(cond, a, e) => {
            let zero = c(b, 0.0, g);
            let ga = b.select(cond, g, zero);
            let ge = b.select(cond, zero, g);
            vec![(a, ga, true), (e, ge, true)]
        }
        Op::Cast(x) => vec![(x, g, m)],
        Op::Broadcast(x) | Op::Transpose(x) => vec![(x, g, m)],
        Op::Relabel(x) => {
            let dims = b.dims(x);
            let r = b.relabel(g, dims);
            vec![(x, r, m)]
        }
        Op::Differential { tangent, .. } => vec![(tangent, g, m)],
        Op::Reduce(r, x) => {
            let xd = b.dims(x);
            let gb = b.broadcast(g, xd.clone());
            match r {
                Reduction::Sum => vec![(x, gb, m)],
                Reduction::LogSumExp => {
                    let d = b.binary(BinOp::Sub, x, y);
                    let p = b.unary(UnOp::Exp, d);
                    vec![(x, gmul(b, gb, p, m), m)]
                }
                Reduction::Max | Reduction::Min => {
                    let hit = b.binary(BinOp::Eq, x, y);
                    let hit = b.transpose(hit, xd.clone());
                    let w = b.cast(hit, b.dtype(x));
                    let over: Vec<_> = xd
                        .iter()
                        .copied()
                        .filter(|d| !node.dims.contains(d))
                        .collect();
                    let cnt = b.reduce(Reduction::Sum, w, &over);
                    let share = b.binary(BinOp::Div, w, cnt);
                    vec![(x, gmul(b, gb, share, m), m)]
                }
                Reduction::Any | Reduction::All | Reduction::ArgMax => vec![],
            }
        }
        Op::Gather {
            base,
            dim,
            index,
            default,
        } => {
            let bd = b.dims(base);
            let dt = b.dtype(base);
            let scattered = b.push(Node {
                op: Op::ScatterAdd {
                    value: g,
                    dim,
                    index,
                },
                dtype: dt,
                dims: bd,
            });
            let mut out = vec![(base, scattered, m)];
            if let Some(v) = default {
                let zero_i = b.constant(0.0, b.dtype(index));
                let n = b.size(vec![dim], b.dtype(index));
                let ge0 = b.binary(BinOp::Ge, index, zero_i);
                let lt = b.binary(BinOp::Lt, index, n);
                let inside = b.binary(BinOp::And, ge0, lt);
                let zero = c(b, 0.0, g);
                let gv = b.select(inside, zero, g);
                out.push((v, gv, true));
            }
            out
        }
        Op::ScatterAdd { value, dim, index } => {
            let gd: Vec<_> = b.dims(g).into_iter().filter(|d| *d != dim).collect();
            let dims = b.union(&gd, &b.dims(index));
            let zero = c(b, 0.0, g);
            let dt = b.dtype(g);
            let gathered = b.push(Node {
                op: Op::Gather {
                    base: g,
                    dim,
                    index,
                    default: Some(zero),
                },
                dtype: dt,
                dims,
            });
            vec![(value, gathered, m)]
        }
        Op::Contract(x, z) => {
            let (xd, zd) = (b.dims(x), b.dims(z));
            let dt = b.dtype(g);
            let gx = b.push(Node {
                op: Op::Contract(g, z),
                dtype: dt,
                dims: xd,
            });
            let gz = b.push(Node {
                op: Op::Contract(x, g),
                dtype: dt,
                dims: zd,
            });
            vec![(x, gx, m), (z, gz, m)]
        }
        Op::Solve { a, b: rhs, dim } => {
            // x = A⁻¹b: gb = A⁻ᵀg, which with named dims is a solve contracting A's other dim;
            // gA = −gb ⊗ x summed over b's right-hand-side dims (A's batch dims stay).
            let row = crate::solve_row(&b.dims(a), &dim);
            let gb = crate::lower::solve_node(b, a, g, row);
            let neg = b.unary(UnOp::Neg, gb);
            let (ad, dt) = (b.dims(a), b.dtype(a));
            let ga = b.push(Node {
                op: Op::Contract(neg, y),
                dtype: dt,
                dims: ad,
            });
            vec![(rhs, gb, m), (a, ga, m)]
        }
        Op::Scan {
            kind,
            x,
            dim,
            reverse,
        } => {
            let dims = b.dims(x);
            let dt = b.dtype(g);
            let scan = |b: &mut Builder, v: NodeId| {
                b.push(Node {
                    op: Op::Scan {
                        kind: ScanKind::Sum,
                        x: v,
                        dim,
                        reverse: !reverse,
                    },
                    dtype: dt,
                    dims: dims.clone(),
                })
            };
            match kind {
                ScanKind::Sum => vec![(x, scan(b, g), m)],
                ScanKind::Prod => {
                    // PyTorch's zero-safe rule (`cumprod_backward`): away from zeros,
                    // Σ_{j≥i} g_j y_j / x_i; at a row's first zero k, Σ_{j≥k} g_j Π_{m≤j, m≠k} x_m
                    // = the reverse cumsum of g · cumprod(x with x_k = 1); after it 0, since every
                    // product there holds x_k (the usual quotient gives 0 / 1 there).
                    let xt = b.cast(x, dt);
                    let zero = b.constant(0.0, dt);
                    let one = b.constant(1.0, dt);
                    let is_zero = b.binary(BinOp::Eq, xt, zero);
                    let zero_count = b.select(is_zero, one, zero);
                    let forward_scan = |b: &mut Builder, kind: ScanKind, v: NodeId| {
                        b.push(Node {
                            op: Op::Scan {
                                kind,
                                x: v,
                                dim,
                                reverse,
                            },
                            dtype: dt,
                            dims: dims.clone(),
                        })
                    };
                    let zeros_so_far = forward_scan(b, ScanKind::Sum, zero_count);
                    let first_so_far = b.binary(BinOp::Eq, zeros_so_far, one);
                    let first = b.binary(BinOp::And, is_zero, first_so_far);
                    let x_skip = b.select(first, one, xt);
                    let y_skip = forward_scan(b, ScanKind::Prod, x_skip);
                    let at_zero = gmul(b, g, y_skip, m);
                    let at_zero = scan(b, at_zero);
                    let gy = gmul(b, g, y, m);
                    let usual = scan(b, gy);
                    let safe_x = b.select(is_zero, one, xt);
                    let usual = gdiv(b, usual, safe_x, m);
                    vec![(x, b.select(first, at_zero, usual), m)]
                }
            }
        }
        _ => vec![],
    }
}
