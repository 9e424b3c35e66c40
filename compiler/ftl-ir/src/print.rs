//! The text form of a graph (`ftc build --emit ir` / `--emit grad`): dims with their size
//! sources, inputs, checks, one line per node with its type, then the outputs.

use crate::{DimId, DimSize, Graph, Node, NodeId, Op, Role};
use ftl_runtime::DType;
use std::fmt::Write;

fn dims_text(g: &Graph, dims: &[DimId]) -> String {
    dims.iter()
        .map(|d| g.dim(*d).name.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `f32[B, T]`, or `f32` for a scalar.
pub fn type_text(g: &Graph, n: &Node) -> String {
    if n.dims.is_empty() {
        n.dtype.to_string()
    } else {
        format!("{}[{}]", n.dtype, dims_text(g, &n.dims))
    }
}

fn op_text(g: &Graph, op: &Op, dtype: DType) -> String {
    let list = |ids: &[NodeId]| {
        ids.iter()
            .map(|i| format!("%{}", i.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let dim = |d: &DimId| g.dim(*d).name.clone();
    match op {
        Op::Input(i) => format!("input {}", g.inputs[*i as usize].name),
        Op::Const(v) => format!("const {}", number(*v, dtype)),
        Op::Literal(vs) => format!("literal {vs:?}"),
        Op::Size(dims) => format!("size({})", dims_text(g, dims)),
        Op::Iota(d) => format!("iota {}", dim(d)),
        Op::Unary(u, a) => format!("{} %{}", format!("{u:?}").to_lowercase(), a.0),
        Op::Binary(b, x, y) => format!("{} %{}, %{}", format!("{b:?}").to_lowercase(), x.0, y.0),
        Op::Select(c, a, b) => format!("select {}", list(&[*c, *a, *b])),
        Op::Cast(a) => format!("cast %{}", a.0),
        Op::Broadcast(a) => format!("broadcast %{}", a.0),
        Op::Transpose(a) => format!("transpose %{}", a.0),
        Op::Relabel(a) => format!("relabel %{}", a.0),
        Op::Reduce(r, a) => format!("reduce.{} %{}", format!("{r:?}").to_lowercase(), a.0),
        Op::Gather {
            base,
            dim: d,
            index,
            default,
        } => match default {
            Some(v) => format!("gather %{}[{}: %{} else %{}]", base.0, dim(d), index.0, v.0),
            None => format!("gather %{}[{}: %{}]", base.0, dim(d), index.0),
        },
        Op::ScatterAdd {
            value,
            dim: d,
            index,
        } => format!("scatter_add %{} into {} at %{}", value.0, dim(d), index.0),
        Op::Contract(a, b) => format!("contract %{}, %{}", a.0, b.0),
        Op::Solve { a, b, dim: d } => format!("solve %{}, %{} over {}", a.0, b.0, dim(d)),
        Op::Decompose {
            kind,
            part,
            a,
            row,
            col,
        } => format!(
            "{}.{part} %{} as [{}, {}]",
            format!("{kind:?}").to_lowercase(),
            a.0,
            dim(row),
            dim(col)
        ),
        Op::Scan {
            kind,
            x,
            dim: d,
            reverse,
        } => format!(
            "scan.{}{} %{} along {}",
            format!("{kind:?}").to_lowercase(),
            if *reverse { ".reverse" } else { "" },
            x.0,
            dim(d)
        ),
        Op::ArgSort {
            x,
            dim: d,
            descending,
        } => format!(
            "argsort{} %{} along {}",
            if *descending { ".descending" } else { "" },
            x.0,
            dim(d)
        ),
        Op::Random {
            dist,
            site,
            seed,
            offset,
        } => format!(
            "random.{} site {site} seed %{} offset %{}",
            format!("{dist:?}").to_lowercase(),
            seed.0,
            offset.0
        ),
        Op::Detach(a) => format!("detach %{}", a.0),
        Op::Differential { value, tangent } => {
            format!("differential %{}, %{}", value.0, tangent.0)
        }
    }
}

/// The whole graph as text.
pub fn print_graph(g: &Graph) -> String {
    let mut out = String::new();
    let kind = format!("{:?}", g.kind).to_lowercase();
    let _ = writeln!(out, "graph {} ({kind})", g.name);
    for d in &g.dims {
        let size = match &d.size {
            DimSize::Arg => "from inputs".to_string(),
            DimSize::Pack => "pack from inputs".to_string(),
            DimSize::Const(n) => n.to_string(),
            DimSize::Scalar(id) => format!("%{}", id.0),
            DimSize::Product(ds) => format!("product({})", dims_text(g, ds)),
            DimSize::Quotient(a, ds) => {
                format!("{} / product({})", dim_name(g, *a), dims_text(g, ds))
            }
            DimSize::Min(a, b) => format!("min({}, {})", dim_name(g, *a), dim_name(g, *b)),
        };
        let _ = writeln!(out, "  dim {} = {size}", d.name);
    }
    for inp in &g.inputs {
        let role = match inp.role {
            Role::Input => "in",
            Role::Const => "const",
            Role::Param => "param",
            Role::Scalar => "scalar",
            Role::Seed => "seed",
            Role::Upstream => "upstream",
        };
        let ty = if inp.dims.is_empty() {
            inp.dtype.to_string()
        } else {
            format!("{}[{}]", inp.dtype, dims_text(g, &inp.dims))
        };
        let _ = write!(out, "  {role} {}: {ty}", inp.name);
        if let Some(v) = inp.default {
            let _ = write!(out, " = {}", number(v, inp.dtype));
        }
        if !inp.required {
            out.push_str(" (optional)");
        }
        out.push('\n');
    }
    for c in &g.checks {
        let _ = writeln!(out, "  check %{} \"{}\"", c.cond.0, c.text);
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let _ = writeln!(
            out,
            "  %{i}: {} = {}",
            type_text(g, n),
            op_text(g, &n.op, n.dtype)
        );
    }
    for (name, id) in &g.outputs {
        let _ = writeln!(out, "  out {name} = %{}", id.0);
    }
    out
}

/// The shortest text that reads back as the value at `dtype` (`parse` rounds to the dtype, so
/// a value of a narrower float type prints as the shortest f32 text).
fn number(v: f64, dtype: DType) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 && !(v == 0.0 && v.is_sign_negative()) {
        format!("{}", v as i64)
    } else if dtype != DType::F64 && f64::from(v as f32) == v {
        format!("{:?}", v as f32)
    } else {
        format!("{v:?}")
    }
}

fn dim_name(g: &Graph, d: DimId) -> String {
    g.dim(d).name.clone()
}
