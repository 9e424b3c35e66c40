//! The reference interpreter: evaluates a graph on host tensors with the oracle's numerics —
//! every elementwise result rounded to its node's dtype, reductions, scans and contractions
//! accumulated in f64, randomness from Philox-4x32-10 by (seed, offset, site, row-major index).
//! It is the oracle that compiled backends are tested against, never the fast path.
//!
//! Arguments are bound and checked ([`ftl_runtime::bind`]), dim sizes resolved and `requires`
//! checks evaluated before any other node runs.

use ftl_ir::scalar;
use ftl_ir::{DimId, DimSize, Dist, Graph, NodeId, Op, Reduction, ScanKind};
use ftl_runtime::bind::{self, Binding};
use ftl_runtime::budget::{self, Budget};
use ftl_runtime::dims::DimError;
use ftl_runtime::exec::{ExecError, ExecErrorKind};
use ftl_runtime::{host, DType, Tensor};
use std::collections::HashMap;

fn err<T>(m: impl Into<String>) -> Result<T, ExecError> {
    Err(ExecError {
        kind: ExecErrorKind::Run,
        messages: vec![m.into()],
    })
}

/// A value during evaluation: data over the node's dims, row-major.
struct Value {
    data: Vec<f64>,
}

/// One evaluation of a graph.
pub struct Interp<'g> {
    g: &'g Graph,
    binding: Binding,
    sizes: Vec<Option<usize>>,
    vals: Vec<Option<Value>>,
    inputs: Vec<Vec<f64>>,
    /// Values `detach` nodes are held at (finite differences of a detached computation).
    frozen: HashMap<NodeId, Vec<f64>>,
}

/// Strides of an operand laid out over `op_dims`, seen from an iteration over `space`
/// (0 where the operand lacks the dim).
fn strides(space: &[DimId], op_dims: &[DimId], sizes: &[usize]) -> Vec<usize> {
    let mut own = vec![0usize; op_dims.len()];
    let mut acc = 1;
    for k in (0..op_dims.len()).rev() {
        own[k] = acc;
        acc *= sizes[op_dims[k].0 as usize];
    }
    space
        .iter()
        .map(|d| op_dims.iter().position(|o| o == d).map_or(0, |k| own[k]))
        .collect()
}

/// `st` with the stride of `dim` (if `space` has it) set to 0.
fn zero_at(mut st: Vec<usize>, space: &[DimId], dim: DimId) -> Vec<usize> {
    if let Some(k) = space.iter().position(|d| *d == dim) {
        st[k] = 0;
    }
    st
}

/// Calls `f(offsets)` for every point of `shape` in row-major order, where `offsets[j]` is the
/// flat offset of operand j with stride vector `strides[j]`.
fn for_each(shape: &[usize], strides: &[Vec<usize>], mut f: impl FnMut(&[usize], &[usize])) {
    let total: usize = shape.iter().product();
    if total == 0 {
        return;
    }
    let mut idx = vec![0usize; shape.len()];
    let mut offs = vec![0usize; strides.len()];
    for _ in 0..total {
        f(&offs, &idx);
        for k in (0..shape.len()).rev() {
            idx[k] += 1;
            for (o, s) in offs.iter_mut().zip(strides) {
                *o += s[k];
            }
            if idx[k] < shape[k] {
                break;
            }
            for (o, s) in offs.iter_mut().zip(strides) {
                *o -= s[k] * shape[k];
            }
            idx[k] = 0;
        }
    }
}

impl<'g> Interp<'g> {
    /// Binds `inputs` to `g`, resolves every dim and evaluates the `requires` checks.
    pub fn new(g: &'g Graph, inputs: &HashMap<String, Tensor>) -> Result<Interp<'g>, ExecError> {
        let specs = ftl_ir::arg_specs(g);
        let binding =
            bind::bind(&specs, |n| inputs.get(n).map(Tensor::as_ref)).map_err(|errs| {
                ExecError {
                    kind: ExecErrorKind::Inputs,
                    messages: errs.into_iter().map(|e| e.message).collect(),
                }
            })?;
        let mut it = Interp {
            g,
            binding,
            sizes: vec![None; g.dims.len()],
            vals: (0..g.nodes.len()).map(|_| None).collect(),
            inputs: Vec::new(),
            frozen: HashMap::new(),
        };
        for inp in &g.inputs {
            let data = match inputs.get(&inp.name) {
                Some(t) => t.to_f64(),
                None => match inp.default {
                    Some(v) => vec![v],
                    None => vec![],
                },
            };
            it.inputs.push(data);
        }
        for k in 0..g.dims.len() {
            it.size(DimId(k as u32))?;
        }
        it.check_memory()?;
        for c in &g.checks {
            let v = it.eval(c.cond)?;
            if v.first().copied() != Some(1.0) {
                return Err(ExecError {
                    kind: ExecErrorKind::Requires,
                    messages: vec![format!(
                        "`{}` does not hold{}",
                        c.text,
                        it.scalar_inputs_of(c.cond)
                    )],
                });
            }
        }
        Ok(it)
    }

    /// Refuses sizes under which one node's values (f64 each) would not fit in the memory
    /// limit, before anything is allocated.
    fn check_memory(&self) -> Result<(), ExecError> {
        let too_large = |m: String| ExecError {
            kind: ExecErrorKind::TooLarge,
            messages: vec![m],
        };
        let limit = budget::limit_from_env().map_err(too_large)?;
        for n in &self.g.nodes {
            let shape: Vec<u64> = self.shape_of(&n.dims).iter().map(|s| *s as u64).collect();
            let dims: Vec<String> = n
                .dims
                .iter()
                .zip(&shape)
                .map(|(d, s)| format!("{}={s}", self.g.dim(*d).name))
                .collect();
            Budget::new(limit)
                .charge(
                    &format!("a value [{}]", dims.join(", ")),
                    &shape,
                    DType::F64,
                )
                .map_err(|e| too_large(e.to_string()))?;
        }
        Ok(())
    }

    /// ` (beta = -1, …)`: the scalar inputs a node depends on, for messages.
    fn scalar_inputs_of(&self, id: NodeId) -> String {
        let mut seen = vec![false; id.0 as usize + 1];
        seen[id.0 as usize] = true;
        let mut parts = Vec::new();
        for i in (0..=id.0 as usize).rev() {
            if !seen[i] {
                continue;
            }
            let n = &self.g.nodes[i];
            if let Op::Input(k) = n.op {
                if let (true, Some(v)) = (n.dims.is_empty(), self.inputs[k as usize].first()) {
                    parts.push(format!("{} = {v}", self.g.inputs[k as usize].name));
                }
            }
            for o in n.op.operands() {
                seen[o.0 as usize] = true;
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            parts.reverse();
            format!(" ({})", parts.join(", "))
        }
    }

    /// The size of a dim, by the runtime's shared rules (`ftl_runtime::dims`).
    pub fn size(&mut self, d: DimId) -> Result<usize, ExecError> {
        if let Some(s) = self.sizes[d.0 as usize] {
            return Ok(s);
        }
        let dim = self.g.dim(d).clone();
        let mut known = HashMap::new();
        for x in dim.size.operand_dims() {
            known.insert(x, self.size(x)? as u64);
        }
        let scalar = match dim.size {
            DimSize::Scalar(id) => self.eval(id)?.first().copied(),
            _ => None,
        };
        let s = dim
            .size
            .size(
                &dim.name,
                &self.binding,
                |x| Ok(known.get(&x).copied()),
                |_| Ok(scalar),
            )
            .map_err(|e| ExecError {
                kind: match e {
                    DimError::TooLarge(_) => ExecErrorKind::TooLarge,
                    _ => ExecErrorKind::Run,
                },
                messages: vec![e.to_string()],
            })?
            .ok_or_else(|| ExecError {
                kind: ExecErrorKind::Run,
                messages: vec![format!("dim {} has no size", dim.name)],
            })?;
        let s = s as usize;
        self.sizes[d.0 as usize] = Some(s);
        Ok(s)
    }

    fn all_sizes(&self) -> Vec<usize> {
        self.sizes.iter().map(|s| s.unwrap_or(0)).collect()
    }

    /// The shape of a node as written to a file (packs expanded to their axes).
    pub fn file_shape(&self, id: NodeId) -> Vec<usize> {
        let mut shape = Vec::new();
        for d in &self.g.node(id).dims {
            let dim = self.g.dim(*d);
            match dim.size {
                DimSize::Pack => {
                    let name = dim.name.trim_start_matches("..");
                    shape.extend(self.binding.packs.get(name).cloned().unwrap_or_default());
                }
                _ => shape.push(self.sizes[d.0 as usize].unwrap_or(0)),
            }
        }
        shape
    }

    /// Evaluates a node (and what it needs) and returns its data.
    pub fn eval(&mut self, id: NodeId) -> Result<Vec<f64>, ExecError> {
        // Evaluate the needed nodes in index (topological) order, without recursion.
        let mut need = vec![false; id.0 as usize + 1];
        need[id.0 as usize] = true;
        for i in (0..=id.0 as usize).rev() {
            if need[i] && self.vals[i].is_none() {
                for o in self.g.nodes[i].op.operands() {
                    need[o.0 as usize] = true;
                }
            }
        }
        for (i, needed) in need.iter().enumerate() {
            if *needed && self.vals[i].is_none() {
                let v = self.compute(NodeId(i as u32))?;
                self.vals[i] = Some(v);
            }
        }
        Ok(self.vals[id.0 as usize]
            .as_ref()
            .map(|v| v.data.clone())
            .unwrap_or_default())
    }

    /// Evaluates several nodes in one sweep, freeing every intermediate value after its last
    /// use (the interpreter's peak memory is the live set, not the whole graph).
    pub fn tensors(&mut self, ids: &[NodeId]) -> Result<Vec<Tensor>, ExecError> {
        let Some(top) = ids.iter().map(|i| i.0 as usize).max() else {
            return Ok(Vec::new());
        };
        let mut need = vec![false; top + 1];
        for id in ids {
            need[id.0 as usize] = true;
        }
        let mut last_use = vec![0usize; top + 1];
        for i in (0..=top).rev() {
            if need[i] && self.vals[i].is_none() {
                for o in self.g.nodes[i].op.operands() {
                    need[o.0 as usize] = true;
                    last_use[o.0 as usize] = last_use[o.0 as usize].max(i);
                }
            }
        }
        let keep: Vec<bool> = (0..=top)
            .map(|i| ids.iter().any(|x| x.0 as usize == i))
            .collect();
        for (i, needed) in need.iter().enumerate() {
            if !needed || self.vals[i].is_some() {
                continue;
            }
            let v = self.compute(NodeId(i as u32))?;
            self.vals[i] = Some(v);
            for o in self.g.nodes[i].op.operands() {
                let o = o.0 as usize;
                if last_use[o] == i && !keep[o] && !self.pinned(o) {
                    self.vals[o] = None;
                }
            }
        }
        ids.iter().map(|id| self.tensor(*id)).collect()
    }

    /// Values kept for the whole run: scalars (cheap, and shared by checks and dim sizes).
    fn pinned(&self, i: usize) -> bool {
        self.g.nodes[i].dims.is_empty()
    }

    /// A node's output as a tensor in its dtype and file shape.
    pub fn tensor(&mut self, id: NodeId) -> Result<Tensor, ExecError> {
        let data = self.eval(id)?;
        Ok(Tensor::from_f64(
            self.g.node(id).dtype,
            &self.file_shape(id),
            &data,
        ))
    }

    fn val(&self, id: NodeId) -> &[f64] {
        self.vals[id.0 as usize]
            .as_ref()
            .map_or(&[][..], |v| v.data.as_slice())
    }

    fn shape_of(&self, dims: &[DimId]) -> Vec<usize> {
        dims.iter()
            .map(|d| self.sizes[d.0 as usize].unwrap_or(0))
            .collect()
    }

    fn compute(&mut self, id: NodeId) -> Result<Value, ExecError> {
        let g = self.g;
        let node = g.node(id);
        let sizes = self.all_sizes();
        let shape = self.shape_of(&node.dims);
        let total: usize = shape.iter().product();
        let dt = node.dtype;
        let elementwise = |this: &Self, operands: &[NodeId], f: &dyn Fn(&[f64]) -> f64| {
            let st: Vec<Vec<usize>> = operands
                .iter()
                .map(|o| strides(&node.dims, &g.node(*o).dims, &sizes))
                .collect();
            let data: Vec<&[f64]> = operands.iter().map(|o| this.val(*o)).collect();
            let mut out = Vec::with_capacity(total);
            let mut args = vec![0.0; operands.len()];
            for_each(&shape, &st, |offs, _| {
                for (k, o) in offs.iter().enumerate() {
                    args[k] = data[k][*o];
                }
                out.push(dt.round(f(&args)));
            });
            out
        };
        let data = match &node.op {
            Op::Input(k) => {
                let inp = &g.inputs[*k as usize];
                let v = self.inputs[*k as usize].clone();
                if v.len() != total {
                    return err(format!("input `{}` has no value", inp.name));
                }
                v
            }
            Op::Const(v) => vec![*v],
            Op::Literal(vs) => {
                if vs.len() != total {
                    return err("internal error: literal does not fill its dims");
                }
                vs.clone()
            }
            Op::Size(ds) => vec![ds.iter().map(|d| sizes[d.0 as usize]).product::<usize>() as f64],
            Op::Iota(_) => (0..total).map(|i| i as f64).collect(),
            Op::Unary(op, a) => elementwise(self, &[*a], &|x| scalar::unary(*op, x[0])),
            Op::Binary(op, a, b) => {
                elementwise(self, &[*a, *b], &|x| scalar::binary(*op, x[0], x[1]))
            }
            Op::Select(c, a, b) => elementwise(self, &[*c, *a, *b], &|x| {
                if x[0] != 0.0 {
                    x[1]
                } else {
                    x[2]
                }
            }),
            Op::Detach(_) if self.frozen.contains_key(&id) => self.frozen[&id].clone(),
            Op::Cast(a)
            | Op::Broadcast(a)
            | Op::Transpose(a)
            | Op::Detach(a)
            | Op::Differential { value: a, .. } => elementwise(self, &[*a], &|x| x[0]),
            Op::Relabel(a) => {
                let v = self.val(*a).to_vec();
                if v.len() != total {
                    return err(format!("cannot relabel {} elements as {}", v.len(), total));
                }
                v
            }
            Op::Reduce(r, a) => self.reduce(*r, *a, &node.dims, &sizes),
            Op::Gather {
                base,
                dim,
                index,
                default,
            } => {
                let bdims = &g.node(*base).dims;
                // The base is addressed along `dim` by the index only (the result may carry a
                // dim of the same name from the index, as in `sort`).
                let st = vec![
                    zero_at(strides(&node.dims, bdims, &sizes), &node.dims, *dim),
                    strides(&node.dims, &g.node(*index).dims, &sizes),
                ];
                let dstride = strides(&[*dim], bdims, &sizes)[0];
                let n = sizes[dim.0 as usize];
                let (bv, iv) = (self.val(*base), self.val(*index));
                let dv = default.map(|d| self.val(d).first().copied().unwrap_or(0.0));
                let mut out = Vec::with_capacity(total);
                let mut bad = None;
                for_each(&shape, &st, |offs, _| {
                    let i = iv[offs[1]];
                    if i >= 0.0 && (i as usize) < n {
                        out.push(bv[offs[0] + i as usize * dstride]);
                    } else {
                        match dv {
                            Some(v) => out.push(dt.round(v)),
                            None => {
                                bad.get_or_insert(i);
                                out.push(f64::NAN);
                            }
                        }
                    }
                });
                if let Some(i) = bad {
                    return err(format!(
                        "gather index {i} is out of range for dim {} of size {n} (write `else v` to allow it)",
                        g.dim(*dim).name
                    ));
                }
                out
            }
            Op::ScatterAdd { value, dim, index } => {
                let vd = &g.node(*value).dims;
                let idd = &g.node(*index).dims;
                let rest: Vec<DimId> = node.dims.iter().copied().filter(|d| d != dim).collect();
                let mut space = rest.clone();
                let from_value: Vec<DimId> =
                    vd.iter().copied().filter(|d| !space.contains(d)).collect();
                space.extend(from_value);
                let extra: Vec<DimId> =
                    idd.iter().copied().filter(|d| !space.contains(d)).collect();
                space.extend(extra);
                let sshape = self.shape_of(&space);
                let st = vec![
                    zero_at(strides(&space, &node.dims, &sizes), &space, *dim),
                    strides(&space, vd, &sizes),
                    strides(&space, idd, &sizes),
                ];
                let dstride = strides(&[*dim], &node.dims, &sizes)[0];
                let n = sizes[dim.0 as usize];
                let (vv, iv) = (self.val(*value), self.val(*index));
                let mut acc = vec![0.0; total];
                for_each(&sshape, &st, |offs, _| {
                    let i = iv[offs[2]];
                    if i >= 0.0 && (i as usize) < n {
                        acc[offs[0] + i as usize * dstride] += vv[offs[1]];
                    }
                });
                acc.into_iter().map(|v| dt.round(v)).collect()
            }
            Op::Contract(a, b) => {
                let (ad, bd) = (&g.node(*a).dims, &g.node(*b).dims);
                let mut space = node.dims.clone();
                for d in ad.iter().chain(bd) {
                    if !space.contains(d) {
                        space.push(*d);
                    }
                }
                let sshape = self.shape_of(&space);
                let st = vec![
                    strides(&space, &node.dims, &sizes),
                    strides(&space, ad, &sizes),
                    strides(&space, bd, &sizes),
                ];
                let (av, bv) = (self.val(*a), self.val(*b));
                let mut acc = vec![0.0; total];
                for_each(&sshape, &st, |offs, _| {
                    acc[offs[0]] += av[offs[1]] * bv[offs[2]];
                });
                acc.into_iter().map(|v| dt.round(v)).collect()
            }
            Op::Solve { a, b, dim } => self.solve(*a, *b, *dim, &node.dims, &sizes)?,
            Op::Decompose {
                kind,
                part,
                a,
                row,
                col,
            } => {
                // Each matrix of the operand (its dims other than row and col are batch dims,
                // leading in the result) as a row-major `row × col` matrix, whatever its layout.
                let ad = &g.node(*a).dims;
                let batch: Vec<DimId> = ad
                    .iter()
                    .copied()
                    .filter(|d| d != row && d != col)
                    .collect();
                let (m, n) = (sizes[row.0 as usize], sizes[col.0 as usize]);
                let st = strides(&[*row, *col], ad, &sizes);
                let bst = strides(&batch, ad, &sizes);
                let av = self.val(*a);
                let mut out = Vec::with_capacity(total);
                for bi in 0..batch.iter().map(|d| sizes[d.0 as usize]).product::<usize>() {
                    let (mut rest, mut base) = (bi, 0);
                    for (d, s) in batch.iter().zip(&bst).rev() {
                        let size = sizes[d.0 as usize];
                        base += (rest % size) * s;
                        rest /= size;
                    }
                    let mat: Vec<f64> = (0..m * n)
                        .map(|x| av[base + (x / n) * st[0] + (x % n) * st[1]])
                        .collect();
                    let parts = host::decompose(*kind, &mat, m, n).map_err(|e| ExecError {
                        kind: ExecErrorKind::Run,
                        messages: vec![e],
                    })?;
                    out.extend(parts[*part as usize].iter().map(|v| dt.round(*v)));
                }
                out
            }
            Op::Scan {
                kind,
                x,
                dim,
                reverse,
            } => {
                let xv = self.val(*x).to_vec();
                let (outer, n, inner) = self.split_at_dim(&node.dims, *dim);
                let mut out = vec![0.0; total];
                for o in 0..outer {
                    for i in 0..inner {
                        let mut acc = if *kind == ScanKind::Sum { 0.0 } else { 1.0 };
                        for step in 0..n {
                            let k = if *reverse { n - 1 - step } else { step };
                            let off = (o * n + k) * inner + i;
                            acc = match kind {
                                ScanKind::Sum => acc + xv[off],
                                ScanKind::Prod => acc * xv[off],
                            };
                            out[off] = dt.round(acc);
                        }
                    }
                }
                out
            }
            Op::ArgSort { x, dim, descending } => {
                let xv = self.val(*x).to_vec();
                let (outer, n, inner) = self.split_at_dim(&node.dims, *dim);
                let mut out = vec![0.0; total];
                for o in 0..outer {
                    for i in 0..inner {
                        let at = |k: usize| (o * n + k) * inner + i;
                        let row: Vec<f64> = (0..n).map(|k| xv[at(k)]).collect();
                        for (k, p) in host::argsort(&row, *descending).into_iter().enumerate() {
                            out[at(k)] = p as f64;
                        }
                    }
                }
                out
            }
            Op::Random {
                dist,
                site,
                seed,
                offset,
            } => {
                let seed = self.val(*seed).first().copied().unwrap_or(0.0) as i64 as u64;
                let offset = self.val(*offset).first().copied().unwrap_or(0.0) as i64 as u64;
                (0..total as u64)
                    .map(|i| {
                        dt.round(host::random_value(
                            seed,
                            offset,
                            *site,
                            i,
                            *dist == Dist::Normal,
                        ))
                    })
                    .collect()
            }
        };
        Ok(Value { data })
    }

    /// `solve(A, b, dim)` through [`ftl_runtime::solve`] in the precision the compiled path
    /// uses (f32 unless the result is f64), rounded to the node's dtype.
    fn solve(
        &self,
        a: NodeId,
        b: NodeId,
        dim: DimId,
        out_dims: &[DimId],
        sizes: &[usize],
    ) -> Result<Vec<f64>, ExecError> {
        use ftl_runtime::solve::{factor_strided, solve_strided, Layout, Precision};
        let g = self.g;
        let size = |d: DimId| sizes[d.0 as usize];
        let precision = Precision::of_result(g.node(b).dtype);
        let layout = Layout {
            a: &g.node(a).dims,
            b: &g.node(b).dims,
            x: out_dims,
            dim,
        };
        let (av, bv) = (self.val(a), self.val(b));
        let x = factor_strided(|i| av[i], layout.a, precision, 1, size)
            .and_then(|f| solve_strided(&f, |i| bv[i], &layout, 1, size));
        match x {
            Ok(x) => Ok(x.into_iter().map(|v| g.node(b).dtype.round(v)).collect()),
            Err(e) => err(e),
        }
    }

    /// (product of dims before `dim`, size of `dim`, product after) in `dims`' layout.
    fn split_at_dim(&self, dims: &[DimId], dim: DimId) -> (usize, usize, usize) {
        let k = dims.iter().position(|d| *d == dim).unwrap_or(0);
        let s = self.shape_of(dims);
        (s[..k].iter().product(), s[k], s[k + 1..].iter().product())
    }

    fn reduce(&self, r: Reduction, a: NodeId, out_dims: &[DimId], sizes: &[usize]) -> Vec<f64> {
        let g = self.g;
        let ad = &g.node(a).dims;
        let ashape = self.shape_of(ad);
        let total: usize = self.shape_of(out_dims).iter().product();
        let st = vec![strides(ad, out_dims, sizes), strides(ad, ad, sizes)];
        let av = self.val(a);
        let reduced: Vec<usize> = ad
            .iter()
            .enumerate()
            .filter(|(_, d)| !out_dims.contains(d))
            .map(|(k, _)| k)
            .collect();
        let out_dtype = match r {
            Reduction::Any | Reduction::All => DType::Bool,
            Reduction::ArgMax => DType::I32,
            _ => g.node(a).dtype,
        };
        let init = match r {
            Reduction::Sum | Reduction::Any => 0.0,
            Reduction::All => 1.0,
            Reduction::Max | Reduction::LogSumExp | Reduction::ArgMax => f64::NEG_INFINITY,
            Reduction::Min => f64::INFINITY,
        };
        let mut acc = vec![init; total];
        let mut arg = vec![0.0; total];
        for_each(&ashape, &st, |offs, idx| {
            let (o, x) = (offs[0], av[offs[1]]);
            match r {
                Reduction::Sum => acc[o] += x,
                Reduction::Any => acc[o] = f64::from(u8::from(acc[o] != 0.0 || x != 0.0)),
                Reduction::All => acc[o] = f64::from(u8::from(acc[o] != 0.0 && x != 0.0)),
                Reduction::Max | Reduction::LogSumExp => {
                    if x > acc[o] || x.is_nan() {
                        acc[o] = x;
                    }
                }
                Reduction::Min => {
                    if x < acc[o] || x.is_nan() {
                        acc[o] = x;
                    }
                }
                Reduction::ArgMax => {
                    if x > acc[o] || (x.is_nan() && !acc[o].is_nan()) {
                        acc[o] = x;
                        arg[o] = reduced.first().map_or(0, |k| idx[*k]) as f64;
                    }
                }
            }
        });
        if r == Reduction::LogSumExp {
            let max = acc.clone();
            let mut sum = vec![0.0; total];
            for_each(&ashape, &st, |offs, _| {
                let m = max[offs[0]];
                if m.is_finite() {
                    sum[offs[0]] += (av[offs[1]] - m).exp();
                }
            });
            acc = max
                .iter()
                .zip(&sum)
                .map(|(m, s)| if m.is_finite() { m + s.ln() } else { *m })
                .collect();
        }
        if r == Reduction::ArgMax {
            acc = arg;
        }
        acc.into_iter().map(|v| out_dtype.round(v)).collect()
    }
}

/// The values of every `detach` node of `g` on `inputs` (to hold them fixed in [`run_frozen`]).
pub fn detached_values(
    g: &Graph,
    inputs: &HashMap<String, Tensor>,
) -> Result<HashMap<NodeId, Vec<f64>>, ExecError> {
    let mut it = Interp::new(g, inputs)?;
    let mut out = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if matches!(n.op, Op::Detach(_)) {
            let id = NodeId(i as u32);
            out.insert(id, it.eval(id)?);
        }
    }
    Ok(out)
}

/// Runs `g` on `inputs` and returns the named outputs (all of them, or those in `only`).
pub fn run(
    g: &Graph,
    inputs: &HashMap<String, Tensor>,
    only: Option<&[String]>,
) -> Result<Vec<(String, Tensor)>, ExecError> {
    run_frozen(g, inputs, only, HashMap::new())
}

/// [`run`] with `detach` nodes held at the given values: finite differences through it see a
/// detached value as the constant autodiff treats it as.
pub fn run_frozen(
    g: &Graph,
    inputs: &HashMap<String, Tensor>,
    only: Option<&[String]>,
    frozen: HashMap<NodeId, Vec<f64>>,
) -> Result<Vec<(String, Tensor)>, ExecError> {
    let mut it = Interp::new(g, inputs)?;
    it.frozen = frozen;
    let chosen: Vec<&(String, NodeId)> = g
        .outputs
        .iter()
        .filter(|(name, _)| only.is_none_or(|o| o.contains(name)))
        .collect();
    let ids: Vec<NodeId> = chosen.iter().map(|(_, id)| *id).collect();
    let tensors = it.tensors(&ids)?;
    Ok(chosen
        .into_iter()
        .zip(tensors)
        .map(|((name, _), t)| (name.clone(), t))
        .collect())
}
