//! The backend-neutral half of code generation: a fused [`Plan`] becomes the runtime's
//! [`Manifest`] (which buffers each kernel takes, which dim it splits across threads, which
//! library routines — GEMM, argsort, solve, decompositions — run between kernels). Every
//! backend asks these questions of the plan here and only translates kernels itself.

use crate::fuse::{self, BufId, BufRole, HostKind, Kernel, NestKind, Plan};
use ftl_ir::{DimId, DimSize, EntryKind, Op};
use ftl_runtime::manifest::{
    ArgDecl, BufferDecl, BufferRole, CheckDecl, ContractDecl, DimDecl, DimRule, KernelDecl,
    Manifest, Step,
};

fn kernel_decl(plan: &Plan, k: &Kernel) -> KernelDecl {
    KernelDecl {
        symbol: k.name().to_string(),
        buffers: kernel_buffers(plan, k).iter().map(|b| b.0).collect(),
        split: split_dim(plan, k).map(|d| d.0),
        grid: grid_dims(plan, k).iter().map(|d| d.0).collect(),
    }
}

/// The runtime's manifest of `plan`: arguments, dims, buffers, the prelude, checks, steps and
/// outputs. An error is a compiler bug (a plan the fuser should not have produced).
pub fn build(plan: &Plan) -> Result<Manifest, String> {
    let g = &plan.graph;
    let mut buffers: Vec<BufferDecl> = plan
        .buffers
        .iter()
        .map(|b| {
            let node = g.node(b.node);
            BufferDecl {
                dtype: node.dtype,
                dims: node.dims.iter().map(|d| d.0).collect(),
                role: match &b.role {
                    BufRole::Input(k) => BufferRole::Arg(*k),
                    BufRole::Literal => match &node.op {
                        Op::Literal(v) => BufferRole::Literal(v.clone()),
                        _ => BufferRole::Temp,
                    },
                    BufRole::Temp => BufferRole::Temp,
                    BufRole::Output(n) => BufferRole::Output(n.clone()),
                    BufRole::View(of) => BufferRole::View(of.0),
                },
            }
        })
        .collect();
    // Every argument gets a buffer, used or not (the binder still checks it and binds its dims).
    let specs = ftl_ir::arg_specs(g);
    let mut args = Vec::new();
    for (k, (inp, spec)) in g.inputs.iter().zip(specs).enumerate() {
        let existing = plan
            .buffers
            .iter()
            .position(|b| b.role == BufRole::Input(k as u32));
        let buffer = match existing {
            Some(b) => b as u32,
            None => {
                buffers.push(BufferDecl {
                    dtype: inp.dtype,
                    dims: inp.dims.iter().map(|d| d.0).collect(),
                    role: BufferRole::Arg(k as u32),
                });
                buffers.len() as u32 - 1
            }
        };
        args.push(ArgDecl {
            name: spec.name,
            dtype: spec.dtype,
            dims: spec.dims,
            required: spec.required,
            default: inp.default,
            buffer,
        });
    }
    let buf_of = |id: ftl_ir::NodeId| -> Result<u32, String> {
        plan.buffer_of(id)
            .map(|b| b.0)
            .ok_or_else(|| format!("%{} has no buffer", id.0))
    };
    let mut dims = Vec::new();
    for d in &g.dims {
        let size = match &d.size {
            DimSize::Arg => DimRule::Arg,
            DimSize::Pack => DimRule::Pack,
            DimSize::Const(n) => DimRule::Const(*n),
            DimSize::Scalar(id) => DimRule::Scalar(buf_of(*id)?),
            DimSize::Product(ds) => DimRule::Product(ds.iter().map(|x| x.0).collect()),
            DimSize::Quotient(a, ds) => DimRule::Quotient(a.0, ds.iter().map(|x| x.0).collect()),
            DimSize::Min(a, b) => DimRule::Min(a.0, b.0),
        };
        dims.push(DimDecl {
            name: d.name.clone(),
            size,
        });
    }
    let steps = plan
        .kernels
        .iter()
        .map(|k| step_of(plan, k))
        .collect::<Result<Vec<_>, String>>()?;
    let checks = g
        .checks
        .iter()
        .map(|c| {
            Ok(CheckDecl {
                buffer: buf_of(c.cond)?,
                text: c.text.clone(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let outputs = g
        .outputs
        .iter()
        .map(|(name, _)| {
            plan.buffers
                .iter()
                .position(|b| b.role == BufRole::Output(name.clone()))
                .map(|b| (name.clone(), b as u32))
                .ok_or_else(|| format!("output `{name}` has no buffer"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let kind = match g.kind {
        EntryKind::Objective => "objective",
        EntryKind::Adapter => "adapter",
        EntryKind::Step => "step",
    };
    let manifest = Manifest {
        entry: g.name.clone(),
        kind: kind.to_string(),
        args,
        dims,
        buffers,
        prelude: plan.prelude.as_ref().map(|k| kernel_decl(plan, k)),
        checks,
        steps,
        outputs,
    };
    // The loader's verifier, run on every manifest the compiler builds.
    ftl_runtime::validate::validate(&manifest).map_err(|e| format!("internal error: {e}"))?;
    Ok(manifest)
}

/// The buffers a kernel's function takes, in order.
pub fn kernel_buffers(plan: &Plan, k: &Kernel) -> Vec<BufId> {
    let mut out: Vec<BufId> = Vec::new();
    if let Kernel::Loops { nests, .. } = k {
        for n in nests {
            for b in crate::fuse::nest_reads(plan, n).into_iter().chain([n.out]) {
                if !out.contains(&b) {
                    out.push(b);
                }
            }
            // A scatter reads back its own output.
            if let Some(b) = plan.buffer_of(n.root) {
                if !out.contains(&b) {
                    out.push(b);
                }
            }
        }
    }
    out
}

/// The domain of a kernel that runs its nests over one shared domain of loops (a single
/// map, reduction or scan nest, or maps and reductions with the same dims; a scan's domain
/// lacks its scanned dim): the loops a CPU thread runs a range of the first of, and whose
/// points a GPU's threads share. None for a kernel whose nests each loop over their own dims.
pub fn shared_domain(plan: &Plan, k: &Kernel) -> Option<Vec<DimId>> {
    let Kernel::Loops { nests, .. } = k else {
        return None;
    };
    let first = nests.first()?;
    let dims_of = |n: &fuse::Nest| -> Option<Vec<DimId>> {
        let node = plan.graph.node(n.root);
        match n.kind {
            NestKind::Scan => {
                let Op::Scan { dim, .. } = node.op else {
                    return None;
                };
                Some(node.dims.iter().copied().filter(|d| *d != dim).collect())
            }
            _ => Some(node.dims.clone()),
        }
    };
    let first_dims = dims_of(first)?;
    let shared = nests.len() > 1
        && nests.iter().all(|n| {
            matches!(n.kind, NestKind::Map | NestKind::Reduce { .. })
                && plan.graph.node(n.root).dims == first_dims
        });
    (shared || (nests.len() == 1 && !matches!(first.kind, NestKind::Scatter))).then_some(first_dims)
}

/// The dims whose points a GPU's threads share: the shared domain of a kernel with a split dim
/// (which is its first), else none (the kernel runs on one thread).
pub fn grid_dims(plan: &Plan, k: &Kernel) -> Vec<DimId> {
    match (split_dim(plan, k), shared_domain(plan, k)) {
        (Some(d), Some(dims)) if dims.first() == Some(&d) => dims,
        _ => Vec::new(),
    }
}

/// The dim whose outermost loop a kernel splits across threads, if any.
pub fn split_dim(plan: &Plan, k: &Kernel) -> Option<DimId> {
    match k {
        Kernel::Loops {
            nests, tail: false, ..
        } => {
            let first = &nests[0];
            if matches!(first.kind, NestKind::Scatter) {
                return None;
            }
            let node = plan.graph.node(first.root);
            let outer = match first.kind {
                NestKind::Scan => {
                    let Op::Scan { dim, .. } = node.op else {
                        return None;
                    };
                    node.dims.iter().copied().find(|d| *d != dim)
                }
                _ => node.dims.first().copied(),
            };
            outer
        }
        _ => None,
    }
}

/// The runtime step of one plan kernel.
fn step_of(plan: &Plan, k: &Kernel) -> Result<Step, String> {
    let g = &plan.graph;
    let buf_of = |id: ftl_ir::NodeId| -> Result<u32, String> {
        plan.buffer_of(id)
            .map(|b| b.0)
            .ok_or_else(|| format!("%{} has no buffer", id.0))
    };
    match k {
        Kernel::Loops { .. } => Ok(Step::Kernel(kernel_decl(plan, k))),
        Kernel::Host {
            kind, root, out, ..
        } => {
            let node = g.node(*root);
            let step = match (kind, &node.op) {
                (HostKind::Contract, Op::Contract(a, b)) => {
                    let [batch, m, n, kk] = fuse::gemm_groups(g, *root)
                        .ok_or("a host contraction without GEMM groups")?;
                    let ids = |v: Vec<ftl_ir::DimId>| v.into_iter().map(|d| d.0).collect();
                    Step::Contract(ContractDecl {
                        a: buf_of(*a)?,
                        b: buf_of(*b)?,
                        out: out.0,
                        batch: ids(batch),
                        m: ids(m),
                        n: ids(n),
                        k: ids(kk),
                    })
                }
                (HostKind::ArgSort, Op::ArgSort { x, dim, descending }) => Step::ArgSort {
                    x: buf_of(*x)?,
                    out: out.0,
                    dim: dim.0,
                    descending: *descending,
                },
                (
                    HostKind::Decompose,
                    Op::Decompose {
                        kind,
                        part,
                        a,
                        row,
                        col,
                    },
                ) => Step::Decompose {
                    kind: *kind,
                    part: *part,
                    a: buf_of(*a)?,
                    out: out.0,
                    row: row.0,
                    col: col.0,
                },
                (HostKind::Solve, Op::Solve { a, b, dim }) => Step::Solve {
                    a: buf_of(*a)?,
                    b: buf_of(*b)?,
                    out: out.0,
                    dim: dim.0,
                },
                _ => return Err("a host step of the wrong kind".into()),
            };
            Ok(step)
        }
        Kernel::Sliced {
            dim,
            local,
            accumulate,
            body,
            ..
        } => Ok(Step::Sliced {
            dim: dim.0,
            local: local.iter().map(|b| b.0).collect(),
            start: accumulate
                .iter()
                .map(|(b, op)| (b.0, crate::slicing::identity(*op)))
                .collect(),
            steps: body
                .iter()
                .map(|k| step_of(plan, k))
                .collect::<Result<Vec<_>, String>>()?,
        }),
    }
}
