//! The MLIR backend: a fused [`Plan`] becomes MLIR text (`emit`, with the vectorizable math of
//! `math`), lowered to LLVM and compiled by melior (`jit`), and a runtime [`Manifest`] that tells
//! the executor which buffers each kernel takes and which library routines (GEMM, argsort,
//! solve) run between them.

pub mod emit;
pub mod jit;
mod math;

use crate::fuse::{self, BufRole, HostKind, Kernel, Plan};
use crate::interp::arg_specs;
use crate::ir::{DimSize, EntryKind, Op};
use ftl_runtime::manifest::{
    ArgDecl, BufferDecl, BufferRole, CheckDecl, ContractDecl, DimDecl, DimRule, KernelDecl,
    Manifest, Step,
};

/// A compiled entry: its MLIR module and the manifest that runs it.
pub struct Compiled {
    /// The MLIR module (scf/arith/math/memref), one function per generated kernel.
    pub mlir: String,
    /// How the runtime runs it.
    pub manifest: Manifest,
}

fn kernel_decl(plan: &Plan, k: &Kernel) -> KernelDecl {
    KernelDecl {
        symbol: k.name().to_string(),
        buffers: emit::kernel_buffers(plan, k).iter().map(|b| b.0).collect(),
        split: emit::split_dim(plan, k).map(|d| d.0),
    }
}

/// Emits the MLIR of `plan` and its manifest.
pub fn compile_plan(plan: &Plan) -> Result<Compiled, String> {
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
    let specs = arg_specs(g);
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
    let buf_of = |id: crate::ir::NodeId| -> Result<u32, String> {
        plan.buffer_of(id)
            .map(|b| b.0)
            .ok_or_else(|| format!("internal error: %{} has no buffer", id.0))
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
    let mut steps = Vec::new();
    for k in &plan.kernels {
        match k {
            Kernel::Loops { .. } => steps.push(Step::Kernel(kernel_decl(plan, k))),
            Kernel::Host {
                kind, root, out, ..
            } => {
                let node = g.node(*root);
                let step = match (kind, &node.op) {
                    (HostKind::Contract, Op::Contract(a, b)) => {
                        let [batch, m, n, kk] = fuse::gemm_groups(g, *root)
                            .ok_or("internal error: a host contraction without GEMM groups")?;
                        let ids = |v: Vec<crate::ir::DimId>| v.into_iter().map(|d| d.0).collect();
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
                    _ => return Err("internal error: a host step of the wrong kind".into()),
                };
                steps.push(step);
            }
        }
    }
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
                .ok_or_else(|| format!("internal error: output `{name}` has no buffer"))
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
    Ok(Compiled {
        mlir: emit::module_text(plan, plan.prelude.as_ref()),
        manifest,
    })
}

/// Writes the artifact `dir` (`NAME.ftlpack`): `manifest.json` and `kernels.so`, linked from
/// the JIT's object code with the system C compiler (`cc`, or `$CC`).
pub fn write_artifact(plan: &Plan, dir: &std::path::Path) -> Result<(), String> {
    use ftl_runtime::artifact::{write_manifest, KERNELS};
    let compiled = compile_plan(plan)?;
    let jit = jit::Jit::compile_with(&compiled.mlir, true)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let object = dir.join("kernels.o");
    jit.write_object(&object);
    if !object.exists() {
        return Err("internal error: LLVM wrote no object code".into());
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = std::process::Command::new(&cc)
        .arg("-shared")
        .arg("-o")
        .arg(dir.join(KERNELS))
        .arg(&object)
        .arg("-lm")
        .status()
        .map_err(|e| format!("cannot run `{cc}` to link the kernels: {e}"))?;
    let _ = std::fs::remove_file(&object);
    if !status.success() {
        return Err(format!(
            "`{cc} -shared` failed to link the kernels ({status})"
        ));
    }
    write_manifest(dir, &compiled.manifest).map_err(|e| format!("{}: {e}", dir.display()))
}
