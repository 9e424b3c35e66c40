//! `ftl-ir`: the tensor graph IR and the one pipeline to it. A graph is one entry point (an
//! objective, adapter, step or attached block) with every `fn` inlined, as an arena of nodes with
//! typed handles. Every node carries its dtype and its named dims ([`DimId`]s, in layout order);
//! sizes are symbolic and bound from the inputs at call time, so one graph serves every shape.
//! Nodes only refer to earlier nodes, so arena order is a topological order.
//!
//! [`pipeline`] is the sequence every command runs (entries, settings, lowering, simplify →
//! autodiff → simplify, verified after each pass) with its typed `Failure`; [`settings`] applies
//! `--set` values.
//!
//! Passes: [`lower`] (HIR → graph), [`autodiff`] (graph → forward + gradient graph),
//! [`simplify`] (CSE, DCE, constant folding, stability rewrites, applied by [`builder`] as nodes
//! are built), [`verify`] after each. [`mod@print`] is the text form of `--emit ir` / `--emit grad`,
//! which [`parse`] reads back.

pub mod autodiff;
pub mod builder;
pub mod lower;
pub mod parse;
pub mod pipeline;
pub mod print;
pub mod scalar;
pub mod settings;
pub mod simplify;
pub mod verify;

use ftl_runtime::DType;

/// A handle to a dim of a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DimId(pub u32);

/// A handle to a node of a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// How a dim's size is known: the runtime's rules over dims and scalar nodes, so the
/// interpreter, the executor and `--random` size dims by the same code
/// (`ftl_runtime::dims`).
pub type DimSize = ftl_runtime::dims::DimRule<DimId, NodeId>;

pub use ftl_runtime::solve::solve_row;

/// A dim: its name in the entry's namespace and how its size is known.
#[derive(Clone, Debug, PartialEq)]
pub struct Dim {
    /// The name (`B`, `..S`, `_3` for literals, `seq_logps.K` for a callee's fresh dim).
    pub name: String,
    /// Its size.
    pub size: DimSize,
}

/// What an input is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A tensor input that gets a gradient (objectives) or is the adapter's `x`.
    Input,
    /// A `const` input: no gradient.
    Const,
    /// An adapter `param`: gets a gradient.
    Param,
    /// A run-time scalar (hyperparameter or integer/bool scalar input).
    Scalar,
    /// The implicit `seed` / `offset` of randomness.
    Seed,
    /// The upstream gradient of an adapter's output (`grad.y`).
    Upstream,
}

/// An input of the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    /// The name (the safetensors key).
    pub name: String,
    /// What it is for.
    pub role: Role,
    /// Element type.
    pub dtype: DType,
    /// Dims in layout order.
    pub dims: Vec<DimId>,
    /// The value used when it is not given (scalars with defaults).
    pub default: Option<f64>,
    /// Whether the caller must give it.
    pub required: bool,
}

/// Elementwise unary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum UnOp {
    Neg,
    Not,
    Exp,
    Log,
    Log1p,
    Expm1,
    Log1mexp,
    Sqrt,
    Rsqrt,
    Abs,
    Sign,
    Floor,
    Ceil,
    Round,
    Tanh,
    Sigmoid,
    LogSigmoid,
    Softplus,
    Relu,
    Erf,
    Sin,
    Cos,
}

/// Elementwise binary operations (operands broadcast by dim name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Min,
    Max,
    /// Floor division (Python `//`).
    FloorDiv,
    /// Floor modulo (Python `%`).
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    /// Whether the result is bool.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        )
    }
}

/// Reductions over the operand's dims that the result lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Reduction {
    Sum,
    Max,
    Min,
    /// log Σ exp, computed stably (max-shifted).
    LogSumExp,
    Any,
    All,
    /// Index of the first maximum (one reduced dim).
    ArgMax,
}

/// Scans along one dim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum ScanKind {
    Sum,
    Prod,
}

/// Random distributions (Philox-4x32-10, one stream per site).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Dist {
    Uniform,
    Normal,
}

/// A primitive operation. The node's own dims say where broadcasts go and what reductions
/// keep.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Input number `n` of [`Graph::inputs`].
    Input(u32),
    /// A scalar constant.
    Const(f64),
    /// A constant tensor (row-major over the node's dims).
    Literal(Vec<f64>),
    /// The number of elements of these dims (an integer scalar).
    Size(Vec<DimId>),
    /// 0, 1, … along one dim.
    Iota(DimId),
    /// Elementwise unary.
    Unary(UnOp, NodeId),
    /// Elementwise binary.
    Binary(BinOp, NodeId, NodeId),
    /// `c ? a : b`, elementwise.
    Select(NodeId, NodeId, NodeId),
    /// Conversion to the node's dtype.
    Cast(NodeId),
    /// Repeats the operand over the node's extra dims.
    Broadcast(NodeId),
    /// The operand with its dims reordered to the node's order.
    Transpose(NodeId),
    /// The same row-major data under new dims (renames, splits, merges, swaps of names).
    Relabel(NodeId),
    /// Reduces the operand over its dims the node lacks.
    Reduce(Reduction, NodeId),
    /// `base[dim: index]`; out-of-range positions read `default` (an error without one).
    Gather {
        /// The tensor read.
        base: NodeId,
        /// The dim indexed.
        dim: DimId,
        /// Integer positions.
        index: NodeId,
        /// The value out of range.
        default: Option<NodeId>,
    },
    /// Sums `value` into the node's dims at `dim = index` (out-of-range positions are dropped);
    /// dims of value/index that the node lacks are summed.
    ScatterAdd {
        /// The values added.
        value: NodeId,
        /// The dim written.
        dim: DimId,
        /// Integer positions.
        index: NodeId,
    },
    /// Σ a·b over the shared dims the node lacks; other shared dims are batch dims.
    Contract(NodeId, NodeId),
    /// `x` with `contract(a, x, dim) == b`: `a` is square over `dim` and its other dim R, `b`
    /// has R; the result is `b` with R replaced by `dim` (batched over b's other dims).
    Solve {
        /// The matrix.
        a: NodeId,
        /// The right-hand sides.
        b: NodeId,
        /// The dim of `a` contracted with the solution.
        dim: DimId,
    },
    /// Part `part` of a matrix decomposition of `a` seen as a `row × col` matrix (host-side
    /// linear algebra; no gradient).
    Decompose {
        /// Which decomposition.
        kind: ftl_runtime::host::Decomposition,
        /// Which of its results.
        part: u8,
        /// The matrix.
        a: NodeId,
        /// The matrix's row dim.
        row: DimId,
        /// The matrix's column dim.
        col: DimId,
    },
    /// Running sum or product along a dim (reverse: from the end).
    Scan {
        /// Sum or product.
        kind: ScanKind,
        /// The operand.
        x: NodeId,
        /// The dim scanned.
        dim: DimId,
        /// Scan from the last position backwards.
        reverse: bool,
    },
    /// The stable sorting permutation along a dim.
    ArgSort {
        /// The operand.
        x: NodeId,
        /// The dim sorted.
        dim: DimId,
        /// Largest first.
        descending: bool,
    },
    /// Random numbers over the node's dims: element i (row-major in the node's dims) is
    /// Philox-4x32-10 of counter (i, site, offset) under key `seed`.
    Random {
        /// Uniform [0, 1) or standard normal.
        dist: Dist,
        /// The draw site (its own stream).
        site: u32,
        /// The `seed` input (i64 scalar).
        seed: NodeId,
        /// The `offset` input (i64 scalar).
        offset: NodeId,
    },
    /// The operand, with no gradient flowing back.
    Detach(NodeId),
    /// `value`, whose gradient flows into `tangent` instead: its first-order change, linear in
    /// the inputs (the differential of a host routine with no VJP, lower/linalg.rs). Removed
    /// (replaced by `value`) once gradients are derived, so backends never see it.
    Differential {
        /// The value.
        value: NodeId,
        /// Its differential, with the value's dims and dtype.
        tangent: NodeId,
    },
}

impl Op {
    /// The operands, in order.
    pub fn operands(&self) -> Vec<NodeId> {
        match self {
            Op::Input(_) | Op::Const(_) | Op::Literal(_) | Op::Size(_) | Op::Iota(_) => vec![],
            Op::Random { seed, offset, .. } => vec![*seed, *offset],
            Op::Unary(_, a)
            | Op::Cast(a)
            | Op::Broadcast(a)
            | Op::Transpose(a)
            | Op::Relabel(a)
            | Op::Reduce(_, a)
            | Op::Detach(a)
            | Op::Scan { x: a, .. }
            | Op::Decompose { a, .. }
            | Op::ArgSort { x: a, .. } => vec![*a],
            Op::Binary(_, a, b) | Op::Contract(a, b) | Op::Solve { a, b, .. } => vec![*a, *b],
            Op::Differential { value, tangent } => vec![*value, *tangent],
            Op::Select(c, a, b) => vec![*c, *a, *b],
            Op::Gather {
                base,
                index,
                default,
                ..
            } => {
                let mut v = vec![*base, *index];
                v.extend(default);
                v
            }
            Op::ScatterAdd { value, index, .. } => vec![*value, *index],
        }
    }

    /// The same op with operands renamed through `f`.
    pub fn map_operands(&self, mut f: impl FnMut(NodeId) -> NodeId) -> Op {
        match self.clone() {
            op @ (Op::Input(_) | Op::Const(_) | Op::Literal(_) | Op::Size(_) | Op::Iota(_)) => op,
            Op::Random {
                dist,
                site,
                seed,
                offset,
            } => {
                let seed = f(seed);
                Op::Random {
                    dist,
                    site,
                    seed,
                    offset: f(offset),
                }
            }
            Op::Unary(u, a) => Op::Unary(u, f(a)),
            Op::Cast(a) => Op::Cast(f(a)),
            Op::Broadcast(a) => Op::Broadcast(f(a)),
            Op::Transpose(a) => Op::Transpose(f(a)),
            Op::Relabel(a) => Op::Relabel(f(a)),
            Op::Reduce(r, a) => Op::Reduce(r, f(a)),
            Op::Detach(a) => Op::Detach(f(a)),
            Op::Differential { value, tangent } => {
                let value = f(value);
                Op::Differential {
                    value,
                    tangent: f(tangent),
                }
            }
            Op::Scan {
                kind,
                x,
                dim,
                reverse,
            } => Op::Scan {
                kind,
                x: f(x),
                dim,
                reverse,
            },
            Op::ArgSort { x, dim, descending } => Op::ArgSort {
                x: f(x),
                dim,
                descending,
            },
            Op::Binary(o, a, b) => {
                let a = f(a);
                Op::Binary(o, a, f(b))
            }
            Op::Contract(a, b) => {
                let a = f(a);
                Op::Contract(a, f(b))
            }
            Op::Solve { a, b, dim } => {
                let a = f(a);
                Op::Solve { a, b: f(b), dim }
            }
            Op::Decompose {
                kind,
                part,
                a,
                row,
                col,
            } => Op::Decompose {
                kind,
                part,
                a: f(a),
                row,
                col,
            },
            Op::Select(c, a, b) => {
                let c = f(c);
                let a = f(a);
                Op::Select(c, a, f(b))
            }
            Op::Gather {
                base,
                dim,
                index,
                default,
            } => {
                let base = f(base);
                let index = f(index);
                Op::Gather {
                    base,
                    dim,
                    index,
                    default: default.map(f),
                }
            }
            Op::ScatterAdd { value, dim, index } => {
                let value = f(value);
                Op::ScatterAdd {
                    value,
                    dim,
                    index: f(index),
                }
            }
        }
    }
}

/// A node: an op, its element type and its dims in layout order.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What it computes.
    pub op: Op,
    /// Element type of the result.
    pub dtype: DType,
    /// Dims of the result, in layout order.
    pub dims: Vec<DimId>,
}

/// What kind of entry a graph was lowered from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// `objective`: loss, metrics, gradients of non-const float inputs.
    Objective,
    /// `adapter`: output, vector-Jacobian products from `grad.<output>`.
    Adapter,
    /// `step`, `init`, `merge`, `unmerge`: outputs only.
    Step,
}

/// A `requires` condition checked when arguments are bound, before any computation.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// A bool scalar node.
    pub cond: NodeId,
    /// The condition as written, for the error.
    pub text: String,
}

/// One entry point as a graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    /// The entry's qualified name.
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
    /// Dims, by [`DimId`].
    pub dims: Vec<Dim>,
    /// Inputs, by number.
    pub inputs: Vec<Input>,
    /// Nodes in topological order.
    pub nodes: Vec<Node>,
    /// Named outputs (`loss`, `metric.<name>`, `grad.<input>`, `y`, step outputs).
    pub outputs: Vec<(String, NodeId)>,
    /// Conditions on scalars checked before running.
    pub checks: Vec<Check>,
}

impl Graph {
    /// A graph with no dims, inputs, nodes, outputs or checks.
    pub fn empty(name: &str, kind: EntryKind) -> Graph {
        Graph {
            name: name.to_string(),
            kind,
            dims: Vec::new(),
            inputs: Vec::new(),
            nodes: Vec::new(),
            outputs: Vec::new(),
            checks: Vec::new(),
        }
    }

    /// The node behind a handle.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    /// The dim behind a handle.
    pub fn dim(&self, id: DimId) -> &Dim {
        &self.dims[id.0 as usize]
    }

    /// The output of this name.
    pub fn output(&self, name: &str) -> Option<NodeId> {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    }

    /// Nodes reachable from the outputs, checks and dim sizes (the live set).
    pub fn live(&self) -> Vec<bool> {
        let mut live = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeId> = self.outputs.iter().map(|(_, id)| *id).collect();
        stack.extend(self.checks.iter().map(|c| c.cond));
        for d in &self.dims {
            if let DimSize::Scalar(id) = d.size {
                stack.push(id);
            }
        }
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut live[id.0 as usize], true) {
                continue;
            }
            stack.extend(self.node(id).op.operands());
        }
        live
    }
}

/// The binder's view of a graph's inputs.
pub fn arg_specs(g: &Graph) -> Vec<ftl_runtime::bind::ArgSpec> {
    g.inputs
        .iter()
        .map(|i| ftl_runtime::bind::ArgSpec {
            name: i.name.clone(),
            dtype: i.dtype,
            dims: i
                .dims
                .iter()
                .map(|d| {
                    let dim = g.dim(*d);
                    match dim.size {
                        DimSize::Pack => ftl_runtime::bind::DimSpec::Pack(
                            dim.name.trim_start_matches("..").to_string(),
                        ),
                        DimSize::Const(n) => ftl_runtime::bind::DimSpec::Fixed(n as usize),
                        _ => ftl_runtime::bind::DimSpec::Named(dim.name.clone()),
                    }
                })
                .collect(),
            required: i.required,
        })
        .collect()
}
