//! The verifier, run after every pass: operands precede their users, dims exist and are not
//! repeated, and each op's dims and dtypes fit its rule. A failure is a compiler bug, reported
//! as an internal error naming the node.

use crate::{DimSize, Graph, Node, NodeId, Op};
use ftl_runtime::DType;

fn subset(a: &[crate::DimId], b: &[crate::DimId]) -> bool {
    a.iter().all(|d| b.contains(d))
}

fn check_node(g: &Graph, i: usize, n: &Node) -> Result<(), String> {
    for o in n.op.operands() {
        if o.0 as usize >= i {
            return Err(format!("operand %{} does not precede its user", o.0));
        }
    }
    for (k, d) in n.dims.iter().enumerate() {
        if d.0 as usize >= g.dims.len() {
            return Err(format!("unknown dim #{}", d.0));
        }
        if n.dims[..k].contains(d) {
            return Err(format!("dim {} appears twice", g.dim(*d).name));
        }
    }
    let op_node = |id: NodeId| g.node(id);
    match &n.op {
        Op::Input(k) => {
            let inp = g
                .inputs
                .get(*k as usize)
                .ok_or_else(|| format!("unknown input {k}"))?;
            if inp.dims != n.dims || inp.dtype != n.dtype {
                return Err(format!("input {} has the wrong type", inp.name));
            }
        }
        Op::Const(_) | Op::Size(_) if !n.dims.is_empty() => {
            return Err("a constant or size must be a scalar".into())
        }
        Op::Iota(d) if n.dims != [*d] => return Err("iota must range over its dim".into()),
        Op::Unary(_, a) | Op::Cast(a) | Op::Broadcast(a) | Op::Detach(a)
            if !subset(&op_node(*a).dims, &n.dims) =>
        {
            return Err("result lacks an operand dim".into());
        }
        Op::Differential { value, tangent } => {
            let (v, t) = (op_node(*value), op_node(*tangent));
            if (v.dtype, &v.dims) != (n.dtype, &n.dims) || (t.dtype, &t.dims) != (n.dtype, &n.dims)
            {
                return Err(
                    "a differential's value and tangent must have its dtype and dims".into(),
                );
            }
        }
        Op::Binary(op, a, b) => {
            let (x, y) = (op_node(*a), op_node(*b));
            if x.dtype != y.dtype {
                return Err(format!("operands are {} and {}", x.dtype, y.dtype));
            }
            if op.is_comparison() && n.dtype != DType::Bool {
                return Err("a comparison must give bool".into());
            }
            if !subset(&x.dims, &n.dims) || !subset(&y.dims, &n.dims) {
                return Err("result lacks an operand dim".into());
            }
        }
        Op::Select(c, a, b) => {
            if op_node(*c).dtype != DType::Bool {
                return Err("select needs a bool condition".into());
            }
            for o in [c, a, b] {
                if !subset(&op_node(*o).dims, &n.dims) {
                    return Err("result lacks an operand dim".into());
                }
            }
        }
        Op::Transpose(a) => {
            let x = &op_node(*a).dims;
            if x.len() != n.dims.len() || !subset(x, &n.dims) {
                return Err("a transpose must permute its operand's dims".into());
            }
        }
        Op::Reduce(_, a) if !subset(&n.dims, &op_node(*a).dims) => {
            return Err("a reduction cannot add dims".into());
        }
        Op::Gather {
            base, dim, index, ..
        } => {
            let b = op_node(*base);
            let idx_has = op_node(*index).dims.contains(dim);
            if !b.dims.contains(dim) || (n.dims.contains(dim) && !idx_has) {
                return Err("gather must index a dim of its base and drop it".into());
            }
            if !op_node(*index).dtype.is_int() {
                return Err("gather positions must be integers".into());
            }
            let rest: Vec<_> = b.dims.iter().copied().filter(|d| d != dim).collect();
            if !subset(&rest, &n.dims) || !subset(&op_node(*index).dims, &n.dims) {
                return Err("gather result lacks a dim".into());
            }
        }
        Op::ScatterAdd { dim, index, .. }
            if !n.dims.contains(dim) || !op_node(*index).dtype.is_int() =>
        {
            return Err("scatter_add must write its dim at integer positions".into());
        }
        Op::Contract(a, b) => {
            let (x, y) = (&op_node(*a).dims, &op_node(*b).dims);
            if n.dims.iter().any(|d| !x.contains(d) && !y.contains(d)) {
                return Err("contract result has a dim of neither operand".into());
            }
        }
        Op::Solve { a, b, dim } => {
            let ad = &op_node(*a).dims;
            let k = ad.len();
            let row = crate::solve_row(ad, dim);
            let bd = &op_node(*b).dims;
            let ok = k >= 2
                && ad[k - 2..].contains(dim)
                && row != *dim
                && bd.contains(&row)
                && !n.dims.contains(&row)
                && ad.iter().filter(|d| *d != dim).all(|d| bd.contains(d))
                && n.dims.contains(dim)
                && n.dims.len() == op_node(*b).dims.len();
            if !ok {
                return Err(
                    "solve needs a square matrix over its dim and a right-hand side".into(),
                );
            }
        }
        Op::Scan { x, dim, .. } | Op::ArgSort { x, dim, .. }
            if op_node(*x).dims != n.dims || !n.dims.contains(dim) =>
        {
            return Err("a scan or sort keeps its operand's dims".into());
        }
        _ => {}
    }
    Ok(())
}

/// A graph that breaks an IR invariant after a pass: a compiler bug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError {
    /// The pass after which the graph was checked.
    pub pass: &'static str,
    /// The offending node, when one is to blame.
    pub node: Option<NodeId>,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IR verifier after {}: ", self.pass)?;
        if let Some(n) = self.node {
            write!(f, "%{}: ", n.0)?;
        }
        f.write_str(&self.what)
    }
}

/// Checks `g`; the error names the offending node and pass.
pub fn verify(g: &Graph, pass: &'static str) -> Result<(), VerifyError> {
    let fail = |node: Option<NodeId>, what: String| VerifyError { pass, node, what };
    for (i, n) in g.nodes.iter().enumerate() {
        check_node(g, i, n).map_err(|e| fail(Some(NodeId(i as u32)), e))?;
    }
    let n = g.nodes.len() as u32;
    let bad = |id: NodeId| id.0 >= n;
    if g.outputs.iter().any(|(_, id)| bad(*id)) || g.checks.iter().any(|c| bad(c.cond)) {
        return Err(fail(None, "an output or check refers to no node".into()));
    }
    for d in &g.dims {
        if let DimSize::Scalar(id) = d.size {
            if bad(id) || !g.node(id).dims.is_empty() {
                return Err(fail(None, format!("dim {} has no scalar size", d.name)));
            }
        }
    }
    Ok(())
}
