//! The graph text of [`crate::print`] read back into a [`Graph`], so passes can be tested on
//! hand-written graphs (`tests/filetests/*.ftlir`). Names come from the printer's own
//! spelling of each op (its `Debug` name, lowercased), so the two cannot drift apart; the
//! parsed graph is verified before it is returned.

use crate::{
    BinOp, Check, Dim, DimId, DimSize, Dist, EntryKind, Graph, Input, Node, NodeId, Op, Reduction,
    Role, ScanKind, UnOp,
};
use ftl_runtime::host::Decomposition;
use ftl_runtime::DType;
use std::collections::HashMap;

/// Why a graph text does not parse: the 1-based line and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The line (1-based; 0 for the text as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

const UNARY: [UnOp; 22] = [
    UnOp::Neg,
    UnOp::Not,
    UnOp::Exp,
    UnOp::Log,
    UnOp::Log1p,
    UnOp::Expm1,
    UnOp::Log1mexp,
    UnOp::Sqrt,
    UnOp::Rsqrt,
    UnOp::Abs,
    UnOp::Sign,
    UnOp::Floor,
    UnOp::Ceil,
    UnOp::Round,
    UnOp::Tanh,
    UnOp::Sigmoid,
    UnOp::LogSigmoid,
    UnOp::Softplus,
    UnOp::Relu,
    UnOp::Erf,
    UnOp::Sin,
    UnOp::Cos,
];

const BINARY: [BinOp; 17] = [
    BinOp::Add,
    BinOp::Sub,
    BinOp::Mul,
    BinOp::Div,
    BinOp::Pow,
    BinOp::Min,
    BinOp::Max,
    BinOp::FloorDiv,
    BinOp::Rem,
    BinOp::Eq,
    BinOp::Ne,
    BinOp::Lt,
    BinOp::Le,
    BinOp::Gt,
    BinOp::Ge,
    BinOp::And,
    BinOp::Or,
];

const REDUCTIONS: [Reduction; 7] = [
    Reduction::Sum,
    Reduction::Max,
    Reduction::Min,
    Reduction::LogSumExp,
    Reduction::Any,
    Reduction::All,
    Reduction::ArgMax,
];

const DECOMPOSITIONS: [Decomposition; 4] = [
    Decomposition::Svd,
    Decomposition::Qr,
    Decomposition::Eigh,
    Decomposition::Lu,
];

/// The variant of `all` the printer spells `name`.
fn by_name<T: Copy + std::fmt::Debug>(all: &[T], name: &str) -> Option<T> {
    all.iter()
        .copied()
        .find(|v| format!("{v:?}").to_lowercase() == name)
}

/// Reads one graph; the result has passed [`crate::verify::verify`].
pub fn parse_graph(text: &str) -> Result<Graph, ParseError> {
    let mut p = Parser::default();
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with(';'))
        .collect();
    let Some(((_, header), body)) = lines.split_first() else {
        return Err(ParseError {
            line: 0,
            message: "no `graph NAME (KIND)` line".into(),
        });
    };
    p.line = lines[0].0;
    let (name, kind) = p.header(header)?;
    // Dims first, so types and sizes may name any of them.
    for (line, l) in body {
        if let Some(rest) = l.strip_prefix("dim ") {
            p.line = *line;
            let (name, _) = p.split_once(rest, " = ")?;
            if p.dims
                .insert(name.to_string(), DimId(p.dim_names.len() as u32))
                .is_some()
            {
                return p.fail(format!("dim `{name}` is declared twice"));
            }
            p.dim_names.push(name.to_string());
        }
    }
    let mut g = Graph::empty(&name, kind);
    for (line, l) in body {
        p.line = *line;
        if let Some(rest) = l.strip_prefix("dim ") {
            let (name, size) = p.split_once(rest, " = ")?;
            let size = p.dim_size(size)?;
            g.dims.push(Dim {
                name: name.to_string(),
                size,
            });
        } else if let Some(rest) = l.strip_prefix("check ") {
            let (cond, text) = p.split_once(rest, " ")?;
            let text = text
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .ok_or_else(|| p.error("a check's text is quoted"))?;
            g.checks.push(Check {
                cond: p.node_ref(cond)?,
                text: text.to_string(),
            });
        } else if let Some(rest) = l.strip_prefix("out ") {
            let (name, id) = p.split_once(rest, " = ")?;
            g.outputs.push((name.to_string(), p.node_ref(id)?));
        } else if l.starts_with('%') {
            let node = p.node(l, &g)?;
            g.nodes.push(node);
        } else {
            let input = p.input(l)?;
            g.inputs.push(input);
        }
    }
    crate::verify::verify(&g, "parse").map_err(|e| ParseError {
        line: 0,
        message: e.to_string(),
    })?;
    Ok(g)
}

#[derive(Default)]
struct Parser {
    line: usize,
    dims: HashMap<String, DimId>,
    dim_names: Vec<String>,
}

impl Parser {
    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            message: message.into(),
        }
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(self.error(message))
    }

    fn split_once<'t>(&self, text: &'t str, sep: &str) -> Result<(&'t str, &'t str), ParseError> {
        text.split_once(sep)
            .ok_or_else(|| self.error(format!("expected `{sep}` in `{text}`")))
    }

    fn header(&self, l: &str) -> Result<(String, EntryKind), ParseError> {
        let rest = l
            .strip_prefix("graph ")
            .ok_or_else(|| self.error("the first line is `graph NAME (KIND)`"))?;
        let (name, kind) = self.split_once(rest, " (")?;
        let kind = match kind.strip_suffix(')') {
            Some("objective") => EntryKind::Objective,
            Some("adapter") => EntryKind::Adapter,
            Some("step") => EntryKind::Step,
            _ => return self.fail(format!("unknown entry kind in `{l}`")),
        };
        Ok((name.to_string(), kind))
    }

    fn dim(&self, name: &str) -> Result<DimId, ParseError> {
        self.dims
            .get(name.trim())
            .copied()
            .ok_or_else(|| self.error(format!("unknown dim `{}`", name.trim())))
    }

    /// `A, B` (possibly empty).
    fn dim_list(&self, text: &str) -> Result<Vec<DimId>, ParseError> {
        if text.trim().is_empty() {
            return Ok(vec![]);
        }
        text.split(", ").map(|d| self.dim(d)).collect()
    }

    fn number(&self, text: &str) -> Result<f64, ParseError> {
        text.trim()
            .parse::<f64>()
            .map_err(|_| self.error(format!("`{text}` is not a number")))
    }

    fn integer<T: std::str::FromStr>(&self, text: &str) -> Result<T, ParseError> {
        text.trim()
            .parse::<T>()
            .map_err(|_| self.error(format!("`{text}` is not an integer")))
    }

    fn node_ref(&self, text: &str) -> Result<NodeId, ParseError> {
        let id = text
            .trim()
            .strip_prefix('%')
            .ok_or_else(|| self.error(format!("expected a node `%N`, found `{text}`")))?;
        Ok(NodeId(self.integer(id)?))
    }

    /// `%a, %b, …`
    fn node_refs<const N: usize>(&self, text: &str) -> Result<[NodeId; N], ParseError> {
        let ids: Vec<NodeId> = text
            .split(", ")
            .map(|t| self.node_ref(t))
            .collect::<Result<_, _>>()?;
        ids.try_into()
            .map_err(|_| self.error(format!("expected {N} operands in `{text}`")))
    }

    fn dim_size(&self, text: &str) -> Result<DimSize, ParseError> {
        let inner = |t: &str, prefix: &str| {
            t.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(')'))
                .map(str::to_string)
        };
        Ok(match text {
            "from inputs" => DimSize::Arg,
            "pack from inputs" => DimSize::Pack,
            t if t.starts_with('%') => DimSize::Scalar(self.node_ref(t)?),
            t if t.starts_with("product(") => {
                DimSize::Product(self.dim_list(&inner(t, "product(").unwrap_or_default())?)
            }
            t if t.starts_with("min(") => {
                let args = inner(t, "min(").unwrap_or_default();
                let (a, b) = self.split_once(&args, ", ")?;
                DimSize::Min(self.dim(a)?, self.dim(b)?)
            }
            t if t.contains(" / product(") => {
                let (a, rest) = self.split_once(t, " / ")?;
                let list = inner(rest, "product(").unwrap_or_default();
                DimSize::Quotient(self.dim(a)?, self.dim_list(&list)?)
            }
            t => DimSize::Const(self.integer(t)?),
        })
    }

    /// `f32` or `f32[B, T]`.
    fn ty(&self, text: &str) -> Result<(DType, Vec<DimId>), ParseError> {
        let (name, dims) = match text.split_once('[') {
            Some((name, rest)) => {
                let list = rest
                    .strip_suffix(']')
                    .ok_or_else(|| self.error(format!("unclosed `[` in `{text}`")))?;
                (name, self.dim_list(list)?)
            }
            None => (text, vec![]),
        };
        let dtype = DType::ALL
            .iter()
            .copied()
            .find(|d| d.name() == name.trim())
            .ok_or_else(|| self.error(format!("unknown dtype `{name}`")))?;
        Ok((dtype, dims))
    }

    /// `ROLE NAME: TYPE [= DEFAULT] [(optional)]`
    fn input(&self, l: &str) -> Result<Input, ParseError> {
        let (role, rest) = self.split_once(l, " ")?;
        let role = match role {
            "in" => Role::Input,
            "const" => Role::Const,
            "param" => Role::Param,
            "scalar" => Role::Scalar,
            "seed" => Role::Seed,
            "upstream" => Role::Upstream,
            _ => return self.fail(format!("unknown line `{l}`")),
        };
        let (name, rest) = self.split_once(rest, ": ")?;
        let (rest, required) = match rest.strip_suffix(" (optional)") {
            Some(r) => (r, false),
            None => (rest, true),
        };
        let (ty, default) = match rest.split_once(" = ") {
            Some((ty, v)) => (ty, Some(self.number(v)?)),
            None => (rest, None),
        };
        let (dtype, dims) = self.ty(ty)?;
        Ok(Input {
            name: name.to_string(),
            role,
            dtype,
            dims,
            default: default.map(|v| dtype.round(v)),
            required,
        })
    }

    /// `%I: TYPE = OP`
    fn node(&self, l: &str, g: &Graph) -> Result<Node, ParseError> {
        let (id, rest) = self.split_once(l, ": ")?;
        if self.node_ref(id)? != NodeId(g.nodes.len() as u32) {
            return self.fail(format!("expected node %{} next", g.nodes.len()));
        }
        let (ty, op) = self.split_once(rest, " = ")?;
        let (dtype, dims) = self.ty(ty)?;
        let op = self.op(op, dtype, g)?;
        Ok(Node { op, dtype, dims })
    }

    fn op(&self, text: &str, dtype: DType, g: &Graph) -> Result<Op, ParseError> {
        let (head, args) = text.split_once(' ').unwrap_or((text, ""));
        let one = |args: &str| self.node_ref(args);
        let along = |args: &str| -> Result<(NodeId, DimId), ParseError> {
            let (x, d) = self.split_once(args, " along ")?;
            Ok((self.node_ref(x)?, self.dim(d)?))
        };
        if let Some(u) = by_name(&UNARY, head) {
            return Ok(Op::Unary(u, one(args)?));
        }
        if let Some(b) = by_name(&BINARY, head) {
            let [x, y] = self.node_refs(args)?;
            return Ok(Op::Binary(b, x, y));
        }
        if let Some(list) = text.strip_prefix("size(").and_then(|r| r.strip_suffix(')')) {
            return Ok(Op::Size(self.dim_list(list)?));
        }
        let parts: Vec<&str> = head.split('.').collect();
        Ok(match parts.as_slice() {
            ["input"] => {
                let n = g
                    .inputs
                    .iter()
                    .position(|i| i.name == args)
                    .ok_or_else(|| self.error(format!("unknown input `{args}`")))?;
                Op::Input(n as u32)
            }
            ["const"] => Op::Const(dtype.round(self.number(args)?)),
            ["literal"] => {
                let list = args
                    .strip_prefix('[')
                    .and_then(|r| r.strip_suffix(']'))
                    .ok_or_else(|| self.error("a literal is `[v, …]`"))?;
                let values = if list.trim().is_empty() {
                    vec![]
                } else {
                    list.split(", ")
                        .map(|v| self.number(v))
                        .collect::<Result<_, _>>()?
                };
                Op::Literal(values)
            }
            ["iota"] => Op::Iota(self.dim(args)?),
            ["select"] => {
                let [c, a, b] = self.node_refs(args)?;
                Op::Select(c, a, b)
            }
            ["cast"] => Op::Cast(one(args)?),
            ["broadcast"] => Op::Broadcast(one(args)?),
            ["transpose"] => Op::Transpose(one(args)?),
            ["relabel"] => Op::Relabel(one(args)?),
            ["detach"] => Op::Detach(one(args)?),
            ["differential"] => {
                let [value, tangent] = self.node_refs(args)?;
                Op::Differential { value, tangent }
            }
            ["reduce", r] => Op::Reduce(
                by_name(&REDUCTIONS, r)
                    .ok_or_else(|| self.error(format!("unknown reduction `{r}`")))?,
                one(args)?,
            ),
            ["gather"] => {
                let (base, rest) = self.split_once(args, "[")?;
                let rest = rest
                    .strip_suffix(']')
                    .ok_or_else(|| self.error("a gather is `%b[D: %i]`"))?;
                let (dim, rest) = self.split_once(rest, ": ")?;
                let (index, default) = match rest.split_once(" else ") {
                    Some((i, v)) => (i, Some(self.node_ref(v)?)),
                    None => (rest, None),
                };
                Op::Gather {
                    base: self.node_ref(base)?,
                    dim: self.dim(dim)?,
                    index: self.node_ref(index)?,
                    default,
                }
            }
            ["scatter_add"] => {
                let (value, rest) = self.split_once(args, " into ")?;
                let (dim, index) = self.split_once(rest, " at ")?;
                Op::ScatterAdd {
                    value: self.node_ref(value)?,
                    dim: self.dim(dim)?,
                    index: self.node_ref(index)?,
                }
            }
            ["contract"] => {
                let [a, b] = self.node_refs(args)?;
                Op::Contract(a, b)
            }
            ["solve"] => {
                let (ab, dim) = self.split_once(args, " over ")?;
                let [a, b] = self.node_refs(ab)?;
                Op::Solve {
                    a,
                    b,
                    dim: self.dim(dim)?,
                }
            }
            ["scan", kind, rest @ ..] => {
                let kind = match *kind {
                    "sum" => ScanKind::Sum,
                    "prod" => ScanKind::Prod,
                    _ => return self.fail(format!("unknown scan `{kind}`")),
                };
                let (x, dim) = along(args)?;
                Op::Scan {
                    kind,
                    x,
                    dim,
                    reverse: rest == ["reverse"],
                }
            }
            ["argsort", rest @ ..] => {
                let (x, dim) = along(args)?;
                Op::ArgSort {
                    x,
                    dim,
                    descending: rest == ["descending"],
                }
            }
            ["random", dist] => {
                let dist = match *dist {
                    "uniform" => Dist::Uniform,
                    "normal" => Dist::Normal,
                    _ => return self.fail(format!("unknown distribution `{dist}`")),
                };
                let rest = args
                    .strip_prefix("site ")
                    .ok_or_else(|| self.error("random is `site N seed %s offset %o`"))?;
                let (site, rest) = self.split_once(rest, " seed ")?;
                let (seed, offset) = self.split_once(rest, " offset ")?;
                Op::Random {
                    dist,
                    site: self.integer(site)?,
                    seed: self.node_ref(seed)?,
                    offset: self.node_ref(offset)?,
                }
            }
            [kind, part] => {
                let Some(kind) = by_name(&DECOMPOSITIONS, kind) else {
                    return self.fail(format!("unknown op `{text}`"));
                };
                let (a, dims) = self.split_once(args, " as [")?;
                let dims = dims
                    .strip_suffix(']')
                    .ok_or_else(|| self.error("a decomposition is `%a as [R, C]`"))?;
                let (row, col) = self.split_once(dims, ", ")?;
                Op::Decompose {
                    kind,
                    part: self.integer(part)?,
                    a: self.node_ref(a)?,
                    row: self.dim(row)?,
                    col: self.dim(col)?,
                }
            }
            _ => return self.fail(format!("unknown op `{text}`")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAPH: &str = "graph t (objective)
  dim B = from inputs
  dim V = 4
  in x: f32[B, V]
  scalar beta: f32 = 0.1
  check %6 \"loss > 0\"
  %0: f32[B, V] = input x
  %1: f32 = input beta
  %2: f32[B] = reduce.logsumexp %0
  %3: f32[B] = mul %2, %1
  %4: f32 = reduce.sum %3
  %5: f32 = const -0.0
  %6: bool = gt %4, %5
  out loss = %4
";

    #[test]
    fn a_graph_reads_back_to_its_text() {
        let g = parse_graph(GRAPH).unwrap();
        assert_eq!(crate::print::print_graph(&g), GRAPH);
        assert_eq!(g.inputs[1].default, Some(f64::from(0.1f32)));
    }

    #[test]
    fn damaged_text_is_an_error_not_a_panic() {
        let lines: Vec<&str> = GRAPH.lines().collect();
        // Every line dropped, and every line with each of its characters dropped.
        for i in 0..lines.len() {
            let mut damaged = lines.clone();
            damaged.remove(i);
            let _ = parse_graph(&damaged.join("\n"));
            for k in 0..lines[i].len() {
                if !lines[i].is_char_boundary(k) || !lines[i].is_char_boundary(k + 1) {
                    continue;
                }
                let mut damaged = lines.clone();
                let cut = format!("{}{}", &lines[i][..k], &lines[i][k + 1..]);
                damaged[i] = &cut;
                let _ = parse_graph(&damaged.join("\n"));
            }
        }
        let err = parse_graph(&GRAPH.replace("reduce.sum %3", "reduce.sum %9")).unwrap_err();
        assert!(err.message.contains("does not precede"), "{err}");
        let err = parse_graph(&GRAPH.replace("f32[B]", "f32[C]")).unwrap_err();
        assert_eq!(err.message, "unknown dim `C`");
    }
}
