//! Lowering of builtin calls: each builtin of the table (by [`BuiltinId`], matched
//! exhaustively) becomes primitive graph nodes.

use super::{internal, Frame, LowerError, Lowerer, Val};
use crate::builder::Builder;
use crate::{
    BinOp, DimId, DimSize, Dist, Input, Node, NodeId, Op, Reduction, Role, ScanKind, UnOp,
};
use ftl_front::builtins::BuiltinId;
use ftl_front::hir::{ExprId, ExprKind};
use ftl_front::types::{DimItem, Ty};
use ftl_runtime::DType;

impl<'h> Lowerer<'h, '_> {
    fn dims_args(
        &mut self,
        frame: &mut Frame<'h>,
        args: &[ExprId],
    ) -> Result<Vec<DimId>, LowerError> {
        let mut out = Vec::new();
        for a in args {
            match self.expr(frame, *a)? {
                Val::Dims(d) => out.extend(d),
                _ => return internal("expected dims"),
            }
        }
        Ok(out)
    }

    fn random(&mut self, dist: Dist, dims: Vec<DimId>) -> NodeId {
        if self.seed.is_none() {
            let mut ids = Vec::new();
            for name in ["seed", "offset"] {
                self.b.graph.inputs.push(Input {
                    name: name.to_string(),
                    role: Role::Seed,
                    dtype: DType::I64,
                    dims: vec![],
                    default: Some(0.0),
                    required: false,
                });
                let n = self.b.graph.inputs.len() as u32 - 1;
                ids.push(self.b.push(Node {
                    op: Op::Input(n),
                    dtype: DType::I64,
                    dims: vec![],
                }));
            }
            self.seed = Some((ids[0], ids[1]));
        }
        let site = self.next_site;
        self.next_site += 1;
        self.b.push(Node {
            op: Op::Random {
                dist,
                site,
                seed: self.seed.map_or(NodeId(0), |s| s.0),
                offset: self.seed.map_or(NodeId(0), |s| s.1),
            },
            dtype: DType::F32,
            dims,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn builtin(
        &mut self,
        frame: &mut Frame<'h>,
        e: ExprId,
        id: BuiltinId,
        args: &[ExprId],
        kwargs: &[(String, ExprId)],
        maps: &[(DimItem, DimItem)],
    ) -> Result<Val, LowerError> {
        let dtype = self.result_dtype(frame, e);
        let out_dims = match Self::ty(frame, e) {
            Ty::Tensor(t) => self.map_dims(frame, &t.dims),
            _ => None,
        };
        let kw = |k: &str| kwargs.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        let is_dims = |frame: &Frame<'h>, i: usize| {
            args.get(i)
                .is_some_and(|a| matches!(frame.decl.body.expr(*a).kind, ExprKind::DimArg(_)))
        };
        let node = match id {
            BuiltinId::Exp => self.unary_builtin(frame, args[0], dtype, UnOp::Exp)?,
            BuiltinId::Log => self.unary_builtin(frame, args[0], dtype, UnOp::Log)?,
            BuiltinId::Log1p => self.unary_builtin(frame, args[0], dtype, UnOp::Log1p)?,
            BuiltinId::Expm1 => self.unary_builtin(frame, args[0], dtype, UnOp::Expm1)?,
            BuiltinId::Log1mexp => self.unary_builtin(frame, args[0], dtype, UnOp::Log1mexp)?,
            BuiltinId::Sqrt => self.unary_builtin(frame, args[0], dtype, UnOp::Sqrt)?,
            BuiltinId::Rsqrt => self.unary_builtin(frame, args[0], dtype, UnOp::Rsqrt)?,
            BuiltinId::Abs => self.unary_builtin(frame, args[0], dtype, UnOp::Abs)?,
            BuiltinId::Sign => self.unary_builtin(frame, args[0], dtype, UnOp::Sign)?,
            BuiltinId::Floor => self.unary_builtin(frame, args[0], dtype, UnOp::Floor)?,
            BuiltinId::Ceil => self.unary_builtin(frame, args[0], dtype, UnOp::Ceil)?,
            BuiltinId::Round => self.unary_builtin(frame, args[0], dtype, UnOp::Round)?,
            BuiltinId::Tanh => self.unary_builtin(frame, args[0], dtype, UnOp::Tanh)?,
            BuiltinId::Sigmoid => self.unary_builtin(frame, args[0], dtype, UnOp::Sigmoid)?,
            BuiltinId::LogSigmoid => self.unary_builtin(frame, args[0], dtype, UnOp::LogSigmoid)?,
            BuiltinId::Softplus => self.unary_builtin(frame, args[0], dtype, UnOp::Softplus)?,
            BuiltinId::Relu => self.unary_builtin(frame, args[0], dtype, UnOp::Relu)?,
            BuiltinId::Erf => self.unary_builtin(frame, args[0], dtype, UnOp::Erf)?,
            BuiltinId::Sin => self.unary_builtin(frame, args[0], dtype, UnOp::Sin)?,
            BuiltinId::Cos => self.unary_builtin(frame, args[0], dtype, UnOp::Cos)?,
            BuiltinId::Pow | BuiltinId::Floordiv => {
                let a = self.node(frame, args[0])?;
                let b = self.node(frame, args[1])?;
                let (a, b) = (self.b.cast(a, dtype), self.b.cast(b, dtype));
                let op = if id == BuiltinId::Pow {
                    BinOp::Pow
                } else {
                    BinOp::FloorDiv
                };
                self.b.binary(op, a, b)
            }
            BuiltinId::Min | BuiltinId::Max if is_dims(frame, 1) => {
                let x = self.node(frame, args[0])?;
                let over = self.dims_args(frame, &args[1..])?;
                let r = if id == BuiltinId::Min {
                    Reduction::Min
                } else {
                    Reduction::Max
                };
                self.b.reduce(r, x, &over)
            }
            BuiltinId::Min | BuiltinId::Max => {
                let a = self.node(frame, args[0])?;
                let b = self.node(frame, args[1])?;
                let (a, b) = (self.b.cast(a, dtype), self.b.cast(b, dtype));
                let op = if id == BuiltinId::Min {
                    BinOp::Min
                } else {
                    BinOp::Max
                };
                self.b.binary(op, a, b)
            }
            BuiltinId::Clamp => {
                // The kinks of the installed PyTorch (2.15, tests/run/numerics.ftl): a scalar
                // bound (a Python number there: a literal or hyperparameter here) passes the
                // gradient only strictly inside, 0 at the bound; a bound with dims (a tensor
                // there) splits a tie in halves with x, as elementwise max/min do.
                let x = self.node(frame, args[0])?;
                let mut y = self.b.cast(x, dtype);
                let lo = args.get(1).copied().or_else(|| kw("min"));
                let hi = args.get(2).copied().or_else(|| kw("max"));
                for (bound, is_lo) in [(lo, true), (hi, false)] {
                    let Some(bound) = bound else { continue };
                    let v = self.node(frame, bound)?;
                    let v = self.b.cast(v, dtype);
                    y = if self.b.dims(v).is_empty() {
                        let cmp = if is_lo { BinOp::Le } else { BinOp::Ge };
                        let outside = self.b.binary(cmp, y, v);
                        self.b.select(outside, v, y)
                    } else {
                        let op = if is_lo { BinOp::Max } else { BinOp::Min };
                        self.b.binary(op, y, v)
                    };
                }
                y
            }
            BuiltinId::Where => {
                let c = self.node(frame, args[0])?;
                let a = self.node(frame, args[1])?;
                let b = self.node(frame, args[2])?;
                let (a, b) = (self.b.cast(a, dtype), self.b.cast(b, dtype));
                self.b.select(c, a, b)
            }
            BuiltinId::Detach => {
                let x = self.node(frame, args[0])?;
                self.detach(x)
            }
            BuiltinId::Sum
            | BuiltinId::Logsumexp
            | BuiltinId::Any
            | BuiltinId::All
            | BuiltinId::Argmax => {
                let x = self.node(frame, args[0])?;
                let over = self.dims_args(frame, &args[1..])?;
                let r = match id {
                    BuiltinId::Sum => Reduction::Sum,
                    BuiltinId::Logsumexp => Reduction::LogSumExp,
                    BuiltinId::Any => Reduction::Any,
                    BuiltinId::All => Reduction::All,
                    _ => Reduction::ArgMax,
                };
                let x = if r == Reduction::LogSumExp {
                    self.b.cast(x, dtype)
                } else {
                    x
                };
                self.b.reduce(r, x, &over)
            }
            BuiltinId::Mean => {
                let x = self.node(frame, args[0])?;
                let over = self.dims_args(frame, &args[1..])?;
                let x = self.b.cast(x, dtype);
                let s = self.b.reduce(Reduction::Sum, x, &over);
                let n = self.b.size(over, dtype);
                self.b.binary(BinOp::Div, s, n)
            }
            BuiltinId::Std => {
                let x = self.node(frame, args[0])?;
                let over = self.dims_args(frame, &args[1..])?;
                let x = self.b.cast(x, dtype);
                let n = self.b.size(over.clone(), dtype);
                let s = self.b.reduce(Reduction::Sum, x, &over);
                let m = self.b.binary(BinOp::Div, s, n);
                let d = self.b.binary(BinOp::Sub, x, m);
                let sq = self.b.binary(BinOp::Mul, d, d);
                let ss = self.b.reduce(Reduction::Sum, sq, &over);
                let one = self.b.constant(1.0, dtype);
                let n1 = self.b.binary(BinOp::Sub, n, one);
                let var = self.b.binary(BinOp::Div, ss, n1);
                self.b.unary(UnOp::Sqrt, var)
            }
            BuiltinId::Softmax | BuiltinId::LogSoftmax => {
                let x = self.node(frame, args[0])?;
                let over = self.dims_args(frame, &args[1..])?;
                let x = self.b.cast(x, dtype);
                let lse = self.b.reduce(Reduction::LogSumExp, x, &over);
                let shifted = self.b.binary(BinOp::Sub, x, lse);
                let shifted = self.b.transpose(shifted, self.b.dims(x));
                if id == BuiltinId::Softmax {
                    self.b.unary(UnOp::Exp, shifted)
                } else {
                    shifted
                }
            }
            BuiltinId::Cumsum | BuiltinId::Cumprod => {
                let x = self.node(frame, args[0])?;
                let dim = self.dims_args(frame, &args[1..])?[0];
                let x = self.b.cast(x, dtype);
                let kind = if id == BuiltinId::Cumsum {
                    ScanKind::Sum
                } else {
                    ScanKind::Prod
                };
                let dims = self.b.dims(x);
                self.b.push(Node {
                    op: Op::Scan {
                        kind,
                        x,
                        dim,
                        reverse: false,
                    },
                    dtype,
                    dims,
                })
            }
            BuiltinId::Sort | BuiltinId::Argsort => {
                let x = self.node(frame, args[0])?;
                let dim = self.dims_args(frame, &args[1..])?[0];
                let perm = self.argsort(x, dim, false);
                if id == BuiltinId::Argsort {
                    perm
                } else {
                    self.gather(x, dim, perm)
                }
            }
            BuiltinId::Topk => {
                let x = self.node(frame, args[0])?;
                let Some((DimItem::Named(from), DimItem::Named(to))) = maps.first() else {
                    return internal("topk without `D -> K`");
                };
                let d = self.one_dim(frame, from)?;
                let k = self.one_dim(frame, to).map_err(|_| {
                    LowerError::Unsupported(format!(
                        "dim `{to}` of topk is not bound: add `requires {to} == k`"
                    ))
                })?;
                let perm = self.argsort(x, d, true);
                let iota = self.iota(k);
                let idx = self.gather(perm, d, iota);
                let vals = self.gather(x, d, idx);
                return Ok(Val::Tuple(vec![Val::Node(vals), Val::Node(idx)]));
            }
            BuiltinId::Eye => {
                let dims = self.dims_args(frame, args)?;
                let e = self.eye(dims[0], dims[1], dtype);
                self.b.conform(e, &dims)
            }
            BuiltinId::Iota => {
                let d = self.dims_args(frame, args)?[0];
                self.b.push(Node {
                    op: Op::Iota(d),
                    dtype: DType::I32,
                    dims: vec![d],
                })
            }
            BuiltinId::Scatter => {
                let v = self.node(frame, args[0])?;
                let i = self.node(frame, args[1])?;
                let Some((DimItem::Named(target), _)) = maps.first() else {
                    return internal("scatter without a target dim");
                };
                let d = self.one_dim(frame, target)?;
                let dims = out_dims.clone().unwrap_or_default();
                self.b.push(Node {
                    op: Op::ScatterAdd {
                        value: v,
                        dim: d,
                        index: i,
                    },
                    dtype: self.b.dtype(v),
                    dims,
                })
            }
            BuiltinId::Size => {
                let dims = self.dims_args(frame, args)?;
                self.b.size(dims, dtype)
            }
            BuiltinId::Contract => {
                let a = self.node(frame, args[0])?;
                let b = self.node(frame, args[1])?;
                let over = self.dims_args(frame, &args[2..])?;
                let (a, b) = (self.b.cast(a, dtype), self.b.cast(b, dtype));
                self.contract(a, b, &over)
            }
            BuiltinId::Rand
            | BuiltinId::Randn
            | BuiltinId::Zeros
            | BuiltinId::Ones
            | BuiltinId::Full
            | BuiltinId::KaimingUniform
            | BuiltinId::Bernoulli => {
                let dims = out_dims.clone().ok_or_else(|| {
                    LowerError::Unsupported(format!("`{}` has no shape here", id.name()))
                })?;
                match id {
                    BuiltinId::Rand => self.random(Dist::Uniform, dims),
                    BuiltinId::Randn => self.random(Dist::Normal, dims),
                    BuiltinId::Bernoulli => {
                        let p = self.node(frame, args[0])?;
                        let u = self.random(Dist::Uniform, dims);
                        let u = self.b.cast(u, dtype);
                        let p = self.b.cast(p, dtype);
                        let hit = self.b.binary(BinOp::Lt, u, p);
                        self.b.cast(hit, dtype)
                    }
                    BuiltinId::KaimingUniform => {
                        // torch.nn.init.kaiming_uniform_ (leaky_relu): bound =
                        // sqrt(6 / ((1 + a²) fan_in)), drawn as -bound + 2·bound·u.
                        let fan_dims = match kw("fan_in") {
                            Some(f) => self.dims_args(frame, &[f])?,
                            None => vec![],
                        };
                        let fan = self.b.size(fan_dims, dtype);
                        let a = match kw("a") {
                            Some(a) => {
                                let a = self.node(frame, a)?;
                                self.b.cast(a, dtype)
                            }
                            None => self.b.constant(0.0, dtype),
                        };
                        let one = self.b.constant(1.0, dtype);
                        let six = self.b.constant(6.0, dtype);
                        let two = self.b.constant(2.0, dtype);
                        let a2 = self.b.binary(BinOp::Mul, a, a);
                        let g = self.b.binary(BinOp::Add, one, a2);
                        let den = self.b.binary(BinOp::Mul, g, fan);
                        let r = self.b.binary(BinOp::Div, six, den);
                        let bound = self.b.unary(UnOp::Sqrt, r);
                        let u = self.random(Dist::Uniform, dims);
                        let u = self.b.cast(u, dtype);
                        let width = self.b.binary(BinOp::Mul, two, bound);
                        let scaled = self.b.binary(BinOp::Mul, width, u);
                        let lo = self.b.unary(UnOp::Neg, bound);
                        self.b.binary(BinOp::Add, lo, scaled)
                    }
                    _ => {
                        let v = match id {
                            BuiltinId::Zeros => self.b.constant(0.0, dtype),
                            BuiltinId::Ones => self.b.constant(1.0, dtype),
                            _ => {
                                let v = self.node(frame, args[0])?;
                                self.b.cast(v, dtype)
                            }
                        };
                        self.b.broadcast(v, dims)
                    }
                }
            }
            BuiltinId::Linspace => {
                // torch.linspace's CPU kernel: step = (end - start) / (n - 1); the first half
                // counts up from start, the second half down from end, in the output dtype.
                let start = self.node(frame, args[0])?;
                let end = self.node(frame, args[1])?;
                let d = self.dims_args(frame, &args[2..])?[0];
                let (start, end) = (self.b.cast(start, dtype), self.b.cast(end, dtype));
                let n = self.b.size(vec![d], DType::I64);
                let iota = self.iota(d);
                let i = self.b.cast(iota, DType::I64);
                let one = self.b.constant(1.0, DType::I64);
                let two = self.b.constant(2.0, DType::I64);
                let n1 = self.b.binary(BinOp::Sub, n, one);
                let half = self.b.binary(BinOp::FloorDiv, n, two);
                let span = self.b.binary(BinOp::Sub, end, start);
                let n1f = self.b.cast(n1, dtype);
                let step = self.b.binary(BinOp::Div, span, n1f);
                let i_f = self.b.cast(i, dtype);
                let up = self.b.binary(BinOp::Mul, step, i_f);
                let up = self.b.binary(BinOp::Add, start, up);
                let back = self.b.binary(BinOp::Sub, n1, i);
                let back = self.b.cast(back, dtype);
                let down = self.b.binary(BinOp::Mul, step, back);
                let down = self.b.binary(BinOp::Sub, end, down);
                let first = self.b.binary(BinOp::Lt, i, half);
                self.b.select(first, up, down)
            }
            BuiltinId::Drop => {
                // Inverted dropout: keep where u >= p, scaled by 1 / (1 - p).
                let x = self.node(frame, args[0])?;
                let p = self.node(frame, args[1])?;
                let x = self.b.cast(x, dtype);
                let p = self.b.cast(p, dtype);
                let u = self.random(Dist::Uniform, self.b.dims(x));
                let u = self.b.cast(u, dtype);
                let keep = self.b.binary(BinOp::Ge, u, p);
                let one = self.b.constant(1.0, dtype);
                let q = self.b.binary(BinOp::Sub, one, p);
                let scaled = self.b.binary(BinOp::Div, x, q);
                let zero = self.b.constant(0.0, dtype);
                self.b.select(keep, scaled, zero)
            }
            BuiltinId::Present => {
                let v = self.expr(frame, args[0])?;
                self.b
                    .constant(f64::from(u8::from(!matches!(v, Val::Absent))), DType::Bool)
            }
            BuiltinId::Solve => {
                let a = self.node(frame, args[0])?;
                let b = self.node(frame, args[1])?;
                let dim = self.dims_args(frame, &args[2..])?[0];
                let (a, b) = (self.b.cast(a, dtype), self.b.cast(b, dtype));
                self.solve(a, b, dim)
            }
            BuiltinId::Inv => {
                let a = self.node(frame, args[0])?;
                let a = self.b.cast(a, dtype);
                let rc = self.dims_args(frame, &args[1..])?;
                self.inverse(a, rc[0], rc[1], dtype)
            }
            BuiltinId::Pinv => {
                let a = self.node(frame, args[0])?;
                let a = self.b.cast(a, dtype);
                let rc = self.dims_args(frame, &args[1..])?;
                self.pinv(a, rc[0], rc[1], dtype)
            }
            BuiltinId::Det | BuiltinId::Slogdet => {
                let a = self.node(frame, args[0])?;
                let ft = self.float(dtype_of_tuple(Self::ty(frame, e), dtype));
                let a = self.b.cast(a, ft);
                let rc = self.dims_args(frame, &args[1..])?;
                let (sign, logabs) = self.slogdet(a, rc[0], rc[1], ft);
                if id == BuiltinId::Slogdet {
                    return Ok(Val::Tuple(vec![Val::Node(sign), Val::Node(logabs)]));
                }
                // det = sign · exp(log|det|): its gradient, through log|det|'s, is
                // g · det · A⁻ᵀ; a singular matrix gives 0 (sign 0).
                let magnitude = self.b.unary(UnOp::Exp, logabs);
                self.b.binary(BinOp::Mul, sign, magnitude)
            }
            BuiltinId::Svd | BuiltinId::Qr | BuiltinId::Eigh | BuiltinId::Lu => {
                use ftl_runtime::host::Decomposition as D;
                let a = self.node(frame, args[0])?;
                let a = self
                    .b
                    .cast(a, self.float(dtype_of_tuple(Self::ty(frame, e), dtype)));
                let named = self.dims_args(frame, &args[1..])?;
                let row = named[0];
                let (col, k) = match maps.first() {
                    Some((DimItem::Named(c), DimItem::Named(k))) => {
                        let col = self.one_dim(frame, c)?;
                        let k = match frame.dims.get(k).map(Vec::as_slice) {
                            Some([d]) => *d,
                            _ => {
                                let size = if id == BuiltinId::Eigh {
                                    DimSize::Product(vec![row])
                                } else {
                                    DimSize::Min(row, col)
                                };
                                let d = self.b.add_dim(k, size);
                                frame.dims.insert(k.clone(), vec![d]);
                                d
                            }
                        };
                        (col, k)
                    }
                    _ => {
                        let col = named.get(1).copied().unwrap_or(row);
                        (col, col)
                    }
                };
                let ft = self.b.dtype(a);
                // A's other dims are batch dims, leading in every part.
                let batch = self.batch_dims(a, row, col);
                let (kind, parts): (D, Vec<(DType, Vec<DimId>)>) = match id {
                    BuiltinId::Svd => (
                        D::Svd,
                        vec![(ft, vec![row, k]), (ft, vec![k]), (ft, vec![k, col])],
                    ),
                    BuiltinId::Qr => (D::Qr, vec![(ft, vec![row, k]), (ft, vec![k, col])]),
                    BuiltinId::Eigh => (D::Eigh, vec![(ft, vec![k]), (ft, vec![row, k])]),
                    _ => (
                        D::Lu,
                        vec![
                            (DType::I32, vec![row]),
                            (ft, vec![row, col]),
                            (ft, vec![row, col]),
                        ],
                    ),
                };
                let nodes: Vec<NodeId> = parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, (dt, dims))| {
                        let dims = batch.iter().copied().chain(dims).collect();
                        self.decomposition_part(a, (kind, i as u8), (row, col), (dt, dims))
                    })
                    .collect();
                // Each result carries its differential (lower/linalg.rs); LU has none.
                let nodes = match (id, nodes.as_slice()) {
                    (BuiltinId::Svd, &[u, s, vh]) => self
                        .svd_differentials(a, (row, col, k), [u, s, vh])
                        .to_vec(),
                    (BuiltinId::Qr, &[q, r]) => {
                        self.qr_differentials(a, (row, col, k), [q, r]).to_vec()
                    }
                    (BuiltinId::Eigh, &[values, vectors]) => self
                        .eigh_differentials(a, (row, col, k), [values, vectors])
                        .to_vec(),
                    _ => nodes,
                };
                let vals = nodes.into_iter().map(Val::Node).collect();
                return Ok(Val::Tuple(vals));
            }
            BuiltinId::Print | BuiltinId::ExpectClose => {
                return internal("a test statement reached lowering as a value".to_string())
            }
        };
        Ok(Val::Node(node))
    }

    /// A unary builtin: its operand converted to the result's dtype, then `op`.
    fn unary_builtin(
        &mut self,
        frame: &mut Frame<'h>,
        x: ExprId,
        dtype: DType,
        op: UnOp,
    ) -> Result<NodeId, LowerError> {
        let x = self.node(frame, x)?;
        let x = self.b.cast(x, dtype);
        Ok(self.b.unary(op, x))
    }

    fn argsort(&mut self, x: NodeId, dim: DimId, descending: bool) -> NodeId {
        let dims = self.b.dims(x);
        self.b.push(Node {
            op: Op::ArgSort { x, dim, descending },
            dtype: DType::I32,
            dims,
        })
    }

    pub(super) fn gather(&mut self, x: NodeId, dim: DimId, index: NodeId) -> NodeId {
        let rest: Vec<DimId> = self.b.dims(x).into_iter().filter(|k| *k != dim).collect();
        let dims = self.b.union(&rest, &self.b.dims(index));
        let dtype = self.b.dtype(x);
        self.b.push(Node {
            op: Op::Gather {
                base: x,
                dim,
                index,
                default: None,
            },
            dtype,
            dims,
        })
    }
}

/// `x` with `contract(a, x, dim) == b` (see [`Op::Solve`]).
pub fn solve_node(b: &mut Builder, a: NodeId, rhs: NodeId, dim: DimId) -> NodeId {
    let row = crate::solve_row(&b.dims(a), &dim);
    let dims = b
        .dims(rhs)
        .into_iter()
        .map(|d| if d == row { dim } else { d })
        .collect();
    let dtype = b.dtype(rhs);
    b.push(Node {
        op: Op::Solve { a, b: rhs, dim },
        dtype,
        dims,
    })
}

/// The float dtype of a decomposition's results (its tuple's first float part).
fn dtype_of_tuple(ty: &Ty, fallback: DType) -> DType {
    match ty {
        Ty::Tuple(items) => items
            .iter()
            .filter_map(|t| t.tensor().map(|t| t.dtype))
            .find(|d| d.is_float())
            .unwrap_or(fallback),
        _ => fallback,
    }
}
