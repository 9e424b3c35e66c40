//! Running compiled graphs: `--set` and `--dims` settings, `--random` inputs, the interpreter
//! and the compiled (MLIR) backend behind `ftc run`, and `ftc gradcheck`'s finite differences.

use ftl_front::codes::Code;
use ftl_front::hir::{DeclId, Hir};
use ftl_ir::autodiff::differentiable_input;
use ftl_ir::lower::EntryOptions;
use ftl_ir::pipeline::{compile, Failure};
use ftl_ir::{BinOp, DimId, DimSize, EntryKind, Graph, NodeId, Op, Role};
use ftl_plan::backend::{self, Kernels};
use ftl_plan::{fuse, manifest};
use ftl_runtime::bind::{self, Binding};
use ftl_runtime::budget::{self, Budget};
use ftl_runtime::dims::{checked_product, DimError};
use ftl_runtime::{philox, DType, Tensor};
use std::collections::{BTreeMap, HashMap};

/// Parses `--dims B=4,T=16,S=2x3` (a pack takes `x`-separated axes).
pub fn parse_dims(spec: &str) -> Result<BTreeMap<String, Vec<usize>>, Failure> {
    let mut out = BTreeMap::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || {
            Failure::new(
                Code::BadSetting,
                format!("`--dims {spec}`: `{part}` must be NAME=SIZE with a positive size"),
            )
        };
        let (name, size) = part.split_once('=').ok_or_else(bad)?;
        let name = name.trim().trim_start_matches("..");
        if out.contains_key(name) {
            return Err(Failure::new(
                Code::BadSetting,
                format!("`--dims {spec}` gives {name} twice"),
            ));
        }
        let sizes: Vec<usize> = size
            .split('x')
            .map(|s| {
                s.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0 && *n <= 1 << 31)
            })
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        out.insert(name.to_string(), sizes);
    }
    Ok(out)
}

/// Integer inputs used as gather positions, with the dim they index; and those compared with
/// −100 (ignore-index labels).
fn index_inputs(g: &Graph) -> (HashMap<u32, DimId>, Vec<u32>) {
    let source = |mut id: NodeId| -> Option<u32> {
        loop {
            match &g.node(id).op {
                Op::Input(k) => return Some(*k),
                Op::Cast(a) | Op::Broadcast(a) | Op::Transpose(a) | Op::Relabel(a) => id = *a,
                Op::Select(_, a, b) => {
                    id = if matches!(g.node(*a).op, Op::Const(_)) {
                        *b
                    } else {
                        *a
                    }
                }
                _ => return None,
            }
        }
    };
    let mut ranges = HashMap::new();
    let mut ignore = Vec::new();
    for n in &g.nodes {
        match &n.op {
            Op::Gather { dim, index, .. } => {
                if let Some(k) = source(*index) {
                    ranges.entry(k).or_insert(*dim);
                }
            }
            Op::Binary(BinOp::Ne | BinOp::Eq, a, b) => {
                for (x, c) in [(a, b), (b, a)] {
                    if matches!(g.node(*c).op, Op::Const(v) if v == -100.0) {
                        if let Some(k) = source(*x) {
                            ignore.push(k);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    (ranges, ignore)
}

/// A scalar node's value from constants, scalar defaults and dim sizes (`size` gives a dim's
/// size), or None when it reads anything else.
fn scalar_value(g: &Graph, id: NodeId, size: &dyn Fn(DimId) -> Option<u64>) -> Option<f64> {
    let n = g.node(id);
    if !n.dims.is_empty() {
        return None;
    }
    let v = match &n.op {
        Op::Const(v) => *v,
        Op::Input(k) => g.inputs[*k as usize].default?,
        Op::Size(ds) => {
            checked_product(ds.iter().map(|d| size(*d)).collect::<Option<Vec<u64>>>()?)? as f64
        }
        Op::Cast(a) => scalar_value(g, *a, size)?,
        Op::Unary(op, a) => ftl_ir::scalar::unary(*op, scalar_value(g, *a, size)?),
        Op::Binary(op, a, b) => {
            ftl_ir::scalar::binary(*op, scalar_value(g, *a, size)?, scalar_value(g, *b, size)?)
        }
        _ => return None,
    };
    Some(n.dtype.round(v))
}

/// The size a `requires D == expr` check fixes for `d`, when expr can be evaluated from the
/// other dims' sizes and scalar defaults and is a positive integer.
fn required_size(g: &Graph, d: DimId, size: &dyn Fn(DimId) -> Option<u64>) -> Option<u64> {
    let is_size_of_d = |mut id: NodeId| loop {
        match &g.node(id).op {
            Op::Cast(a) => id = *a,
            Op::Size(ds) => return ds.as_slice() == [d],
            _ => return false,
        }
    };
    g.checks.iter().find_map(|c| {
        let Op::Binary(BinOp::Eq, a, b) = g.node(c.cond).op else {
            return None;
        };
        let rhs = if is_size_of_d(a) {
            b
        } else if is_size_of_d(b) {
            a
        } else {
            return None;
        };
        let v = scalar_value(g, rhs, size)?;
        (v >= 1.0 && v.fract() == 0.0 && v < 1e15).then_some(v as u64)
    })
}

/// Random valid inputs for `g` with these dim sizes: floats standard normal (f32-rounded),
/// integers used as gather positions in range (ignore-index labels −100 at about 1 in 8),
/// other integers in [0, 10), bools fair coins. Scalars with defaults keep them. Dims missing
/// from `dims` take `default_size` (an error without one).
pub fn random_inputs(
    g: &Graph,
    dims: &BTreeMap<String, Vec<usize>>,
    default_size: Option<usize>,
    seed: u64,
) -> Result<HashMap<String, Tensor>, Failure> {
    let (ranges, ignore) = index_inputs(g);
    fn size_of(
        g: &Graph,
        d: DimId,
        dims: &BTreeMap<String, Vec<usize>>,
        default_size: Option<usize>,
        depth: usize,
    ) -> Result<Vec<usize>, Failure> {
        let dim = g.dim(d);
        let bare = dim.name.trim_start_matches("..");
        // Another dim's size, for a size computed from it.
        let other_size = |x: DimId| {
            let axes = size_of(g, x, dims, default_size, depth + 1).ok()?;
            checked_product(axes.iter().map(|a| *a as u64))
        };
        if matches!(
            dim.size,
            DimSize::Arg | DimSize::Pack | DimSize::Quotient(..)
        ) {
            // A dim the inputs bind but a `requires D == expr` fixes (OFT's E = K(K−1)/2)
            // takes expr's value when no size is given.
            let derived = || {
                if dim.size != DimSize::Arg || depth > 32 {
                    return None;
                }
                required_size(g, d, &other_size).map(|n| vec![n as usize])
            };
            return dims
                .get(bare)
                .cloned()
                .or_else(derived)
                .or_else(|| default_size.map(|n| vec![n]))
                .ok_or_else(|| {
                    Failure::new(
                        Code::BadSetting,
                        format!("give the size of {} with `--dims {bare}=…`", dim.name),
                    )
                });
        }
        let mut known = HashMap::new();
        for x in dim.size.operand_dims() {
            let axes = size_of(g, x, dims, default_size, depth + 1)?;
            let n = checked_product(axes.iter().map(|a| *a as u64)).ok_or_else(|| {
                Failure::new(
                    Code::TooLarge,
                    DimError::TooLarge(g.dim(x).name.clone()).to_string(),
                )
            })?;
            known.insert(x, n);
        }
        let scalar = match dim.size {
            // `requires K == floordiv(I, R)`: from the defaults and the other dims' sizes.
            DimSize::Scalar(id) if depth <= 32 => scalar_value(g, id, &other_size),
            _ => None,
        };
        let size = dim
            .size
            .size(
                &dim.name,
                &Binding::default(),
                |x| Ok(known.get(&x).copied()),
                |_| Ok(scalar),
            )
            .map_err(|e| match e {
                DimError::TooLarge(_) => Failure::new(Code::TooLarge, e.to_string()),
                _ => Failure::new(Code::BadSetting, e.to_string()),
            })?
            .ok_or_else(|| {
                Failure::new(
                    Code::BadSetting,
                    format!(
                        "the size of {} depends on an input without a default",
                        dim.name
                    ),
                )
            })?;
        Ok(vec![size as usize])
    }
    if let Some(unknown) = dims.keys().find(|k| {
        !g.dims
            .iter()
            .any(|d| d.name.trim_start_matches("..") == k.as_str())
    }) {
        return Err(Failure::new(
            Code::BadSetting,
            format!("`--dims`: the entry has no dim {unknown}"),
        ));
    }
    let limit = budget::limit_from_env().map_err(|m| Failure::new(Code::TooLarge, m))?;
    let mut memory = Budget::new(limit);
    let size_of = |d: DimId| size_of(g, d, dims, default_size, 0);
    // Every input's shape is sized and charged before any is drawn.
    let mut shapes = Vec::new();
    for (k, inp) in g.inputs.iter().enumerate() {
        if inp.default.is_some() || inp.role == Role::Seed {
            continue;
        }
        let mut shape = Vec::new();
        for d in &inp.dims {
            shape.extend(size_of(*d)?);
        }
        let shape64: Vec<u64> = shape.iter().map(|s| *s as u64).collect();
        memory
            .charge(&format!("input `{}`", inp.name), &shape64, inp.dtype)
            .map_err(|e| Failure::new(Code::TooLarge, e.to_string()))?;
        shapes.push((k, inp, shape));
    }
    let mut out = HashMap::new();
    for (k, inp, shape) in shapes {
        let site = 0x8000_0000 | k as u32;
        let range = match ranges.get(&(k as u32)) {
            Some(d) => size_of(*d)?.iter().product::<usize>(),
            None => 10,
        };
        let is_ignore = ignore.contains(&(k as u32));
        let t = Tensor::from_fn(inp.dtype, &shape, |i| {
            let w = philox::draw(seed, 0, site, i as u64);
            match inp.dtype {
                DType::Bool => f64::from(w[0] & 1),
                d if d.is_int() => {
                    if is_ignore && w[1].is_multiple_of(8) {
                        -100.0
                    } else {
                        (u64::from(w[0]) % range.max(1) as u64) as f64
                    }
                }
                _ => philox::normal(w[0], w[1]),
            }
        });
        out.insert(inp.name.clone(), t);
    }
    Ok(out)
}

/// Checks the given inputs against what `g` reads before anything runs: names it does not
/// read are errors unless `allow_extra`; scalars given in another numeric dtype are converted
/// when their value is one of the declared dtype (the runtime's rule, shared with `ftl-run`).
pub fn check_inputs(
    g: &Graph,
    inputs: &mut HashMap<String, Tensor>,
    allow_extra: bool,
) -> Result<(), Failure> {
    let specs = ftl_ir::arg_specs(g);
    let mut errors = Vec::new();
    if !allow_extra {
        errors.extend(bind::unknown_inputs(
            &specs,
            inputs.keys().map(String::as_str),
        ));
    }
    errors.extend(bind::coerce_scalars(&specs, inputs));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::User {
            code: Code::BadInputs,
            messages: errors.into_iter().map(|e| e.message).collect(),
        })
    }
}

/// Runs a compiled graph on inputs; adapters compute gradients only when `grad.<out>` is given.
pub fn run_graph(
    g: &Graph,
    inputs: &HashMap<String, Tensor>,
) -> Result<Vec<(String, Tensor)>, Failure> {
    let wanted: Option<Vec<String>> = if g.kind == EntryKind::Adapter {
        let has_upstream = g
            .inputs
            .iter()
            .filter(|i| i.role == Role::Upstream)
            .all(|i| inputs.contains_key(&i.name));
        if has_upstream {
            None
        } else {
            Some(
                g.outputs
                    .iter()
                    .map(|(n, _)| n.clone())
                    .filter(|n| !n.starts_with("grad."))
                    .collect(),
            )
        }
    } else {
        None
    };
    let mut g2;
    let graph = match &wanted {
        Some(_) => {
            // Without an upstream gradient the gradient inputs are not required.
            g2 = g.clone();
            for i in &mut g2.inputs {
                if i.role == Role::Upstream {
                    i.required = false;
                }
            }
            &g2
        }
        None => g,
    };
    ftl_interp::run(graph, inputs, wanted.as_deref()).map_err(Failure::from)
}

/// Which backend runs an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Fused kernels compiled through MLIR and LLVM, run by the runtime's executor.
    Mlir,
    /// The reference interpreter.
    Interp,
    /// Fused kernels compiled by Cranelift (no LLVM), run by the same executor.
    Cranelift,
    /// Fused kernels as PTX through MLIR's NVVM path, launched on CUDA device 0 by the same
    /// executor (GEMMs through cuBLAS; other host routines stay on the host).
    Cuda,
}

impl Default for Backend {
    /// MLIR where it is built (the `mlir` feature, on by default), else Cranelift.
    fn default() -> Backend {
        if cfg!(feature = "mlir") {
            Backend::Mlir
        } else {
            Backend::Cranelift
        }
    }
}

/// A graph fused into a kernel plan and compiled by a backend, ready to run on the executor.
pub struct CompiledEntry {
    /// The executor, holding the manifest and the kernels' entry points.
    pub executor: ftl_runtime::exec::Executor,
    /// Keeps the compiled host code alive for the executor (dropped after it); a device
    /// executor holds its own code.
    _kernels: Option<Box<dyn Kernels>>,
}

impl CompiledEntry {
    /// Fuses `g` and compiles it with the MLIR CPU backend.
    pub fn new(g: &Graph) -> Result<CompiledEntry, Failure> {
        CompiledEntry::with_backend(&crate::llvm::backend()?, g)
    }

    /// Fuses `g`, builds its manifest and compiles its kernels with `backend`.
    pub fn with_backend<B: backend::Backend>(
        backend: &B,
        g: &Graph,
    ) -> Result<CompiledEntry, Failure>
    where
        B::Kernels: 'static,
    {
        CompiledEntry::from_plan(g, |plan| Ok(backend.compile(plan)?))
    }

    /// Fuses `g` and compiles it with the Cranelift backend; what that backend does not
    /// compile yet is a user-facing error (E0095, with a hint to use the MLIR backend).
    pub fn with_cranelift(g: &Graph) -> Result<CompiledEntry, Failure> {
        CompiledEntry::from_plan(g, |plan| {
            ftl_cranelift::Jit::compile(plan).map_err(Failure::from)
        })
    }

    /// Fuses `g` and compiles it with `backend`'s code generator (`None` for the interpreter,
    /// which runs the graph itself).
    pub fn for_backend(backend: Backend, g: &Graph) -> Result<Option<CompiledEntry>, Failure> {
        match backend {
            Backend::Mlir => CompiledEntry::new(g).map(Some),
            Backend::Cranelift => CompiledEntry::with_cranelift(g).map(Some),
            Backend::Cuda => CompiledEntry::with_cuda(g).map(Some),
            Backend::Interp => Ok(None),
        }
    }

    /// Fuses `g`, makes PTX for CUDA device 0's chip and loads it there. The device is opened
    /// first: without a driver or a usable device this is E0098 before anything compiles.
    pub fn with_cuda(g: &Graph) -> Result<CompiledEntry, Failure> {
        let (ctx, chip) = ftl_runtime::cuda::open(0)?;
        let plan = fuse::fuse(g);
        let manifest = manifest::build(&plan).map_err(Failure::Internal)?;
        let ptx = crate::llvm::ptx(&plan, chip)?;
        let device = ftl_runtime::cuda::CudaDevice::load(ctx, &ptx, &manifest)?;
        let executor =
            ftl_runtime::exec::Executor::on_device(manifest, std::sync::Arc::new(device))?;
        Ok(CompiledEntry {
            executor,
            _kernels: None,
        })
    }

    fn from_plan<K: Kernels + 'static>(
        g: &Graph,
        compile: impl FnOnce(&fuse::Plan) -> Result<K, Failure>,
    ) -> Result<CompiledEntry, Failure> {
        let plan = fuse::fuse(g);
        let manifest = manifest::build(&plan).map_err(Failure::Internal)?;
        let kernels = compile(&plan)?;
        let executor = ftl_runtime::exec::Executor::new(manifest, |s| kernels.entry(s))?;
        Ok(CompiledEntry {
            executor,
            _kernels: Some(Box::new(kernels)),
        })
    }

    /// Runs the compiled entry.
    pub fn run(&self, inputs: &HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, Failure> {
        self.run_timed(inputs).map(|(o, _)| o)
    }

    /// Hands an output's memory back for the next run (benchmarks, training loops).
    pub fn recycle(&self, t: Tensor) {
        self.executor.recycle(t);
    }

    /// Runs the compiled entry, also returning each step's time in milliseconds.
    pub fn run_timed(
        &self,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<(ftl_runtime::exec::Outputs, ftl_runtime::exec::Timings), Failure> {
        self.executor.run_timed(inputs).map_err(Failure::from)
    }
}

/// Runs a graph on the chosen backend.
pub fn run_on(
    backend: Backend,
    g: &Graph,
    inputs: &HashMap<String, Tensor>,
) -> Result<Vec<(String, Tensor)>, Failure> {
    match CompiledEntry::for_backend(backend, g)? {
        Some(compiled) => compiled.run(inputs),
        None => run_graph(g, inputs),
    }
}

/// The result of a gradient check.
#[derive(Clone, Debug)]
pub struct GradcheckReport {
    /// Per gradient input: (name, elements checked, largest relative error).
    pub inputs: Vec<(String, usize, f64)>,
}

impl GradcheckReport {
    /// The largest relative error over every input.
    pub fn worst(&self) -> f64 {
        self.inputs.iter().map(|x| x.2).fold(0.0, f64::max)
    }
}

/// Tolerance of `gradcheck`: |analytic − numeric| ≤ 1e-6 · max(1, |analytic|, |numeric|) plus
/// the round-off of the differenced objective, 16·ε·|f| / h.
pub const GRADCHECK_TOL: f64 = 1e-6;

/// Central finite differences in f64 on random inputs of these dims, against autodiff.
pub fn gradcheck(
    hir: &Hir,
    id: DeclId,
    dims: &BTreeMap<String, Vec<usize>>,
    sets: &HashMap<String, Tensor>,
    statics: &EntryOptions,
) -> Result<GradcheckReport, Failure> {
    let mut opts = statics.clone();
    opts.promote_f64 = true;
    let g = compile(hir, id, &opts, true)?;
    if g.kind == EntryKind::Step {
        return Err(Failure::new(
            Code::BadSetting,
            format!("`{}` is a step: it has no gradients to check", g.name),
        ));
    }
    let mut inputs = random_inputs(&g, dims, Some(3), 0x5eed)?;
    for (k, v) in sets {
        let dtype = g
            .inputs
            .iter()
            .find(|i| i.name == *k)
            .map_or(v.dtype(), |i| i.dtype);
        inputs.insert(k.clone(), v.cast(dtype));
    }
    // For adapters, a random upstream gradient; the checked scalar is Σ y·grad.y (+ aux_loss).
    let upstream: Vec<(String, String)> = g
        .inputs
        .iter()
        .filter(|i| i.role == Role::Upstream)
        .map(|i| {
            (
                i.name.clone(),
                i.name.trim_start_matches("grad.").to_string(),
            )
        })
        .collect();
    let full = run_graph(&g, &inputs)?;
    // `detach` holds its value: differences must not see through it either.
    let frozen = ftl_interp::detached_values(&g, &inputs).map_err(Failure::from)?;
    let get = |outs: &[(String, Tensor)], n: &str| {
        outs.iter().find(|(k, _)| k == n).map(|(_, t)| t.to_f64())
    };
    let objective = |outs: &[(String, Tensor)], inputs: &HashMap<String, Tensor>| -> f64 {
        if upstream.is_empty() {
            return get(outs, "loss").map_or(0.0, |v| v[0]);
        }
        let mut s = get(outs, "aux_loss").map_or(0.0, |v| v[0]);
        for (gname, out) in &upstream {
            let (Some(y), Some(gy)) = (get(outs, out), inputs.get(gname).map(Tensor::to_f64))
            else {
                continue;
            };
            s += y.iter().zip(&gy).map(|(a, b)| a * b).sum::<f64>();
        }
        s
    };
    let forward_names: Vec<String> = g
        .outputs
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| !n.starts_with("grad."))
        .collect();
    let mut report = GradcheckReport { inputs: Vec::new() };
    for inp in g.inputs.iter().filter(|i| differentiable_input(i)) {
        let Some(x) = inputs.get(&inp.name).cloned() else {
            continue;
        };
        let analytic = get(&full, &format!("grad.{}", inp.name)).unwrap_or_default();
        let base = x.to_f64();
        // Check every element of small inputs, an even sample of large ones.
        let stride = (base.len() / 64).max(1);
        let mut worst: f64 = 0.0;
        let mut checked = 0;
        for e in (0..base.len()).step_by(stride) {
            let h = 1e-6 * base[e].abs().max(1.0);
            let eval = |delta: f64| -> Result<f64, Failure> {
                let mut v = base.clone();
                v[e] += delta;
                let mut ins = inputs.clone();
                ins.insert(inp.name.clone(), Tensor::from_f64(x.dtype(), x.shape(), &v));
                let outs = ftl_interp::run_frozen(&g, &ins, Some(&forward_names), frozen.clone())
                    .map_err(Failure::from)?;
                Ok(objective(&outs, &ins))
            };
            let (up, down) = (eval(h)?, eval(-h)?);
            let numeric = (up - down) / (2.0 * h);
            let a = analytic.get(e).copied().unwrap_or(0.0);
            // Each evaluation of the objective is exact only to its f64 round-off, which the
            // difference divides by 2h: a large sum (|f| = 1e5 at h = 1e-6) leaves ~1e-5 in
            // the numeric gradient however right the analytic one is. The tolerance widens by
            // that much (16 ulps of |f| over h), so only errors above round-off count.
            let roundoff = 16.0 * f64::EPSILON * up.abs().max(down.abs()) / h;
            let scale = a.abs().max(numeric.abs()).max(1.0) + roundoff / GRADCHECK_TOL;
            let rel = (a - numeric).abs() / scale;
            worst = if rel.is_nan() {
                f64::INFINITY
            } else {
                worst.max(rel)
            };
            checked += 1;
        }
        report.inputs.push((inp.name.clone(), checked, worst));
    }
    Ok(report)
}

/// The scalars of a result as a small table, then one line per larger tensor.
pub fn table(outputs: &[(String, Tensor)]) -> String {
    let width = outputs.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, t) in outputs {
        let v = t.to_f64();
        if t.shape().is_empty() {
            out.push_str(&format!("{name:<width$}  {:.9}\n", v[0]));
        } else {
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            out.push_str(&format!(
                "{name:<width$}  {}  (L2 norm {norm:.6})\n",
                ftl_runtime::type_text(t.dtype(), t.shape())
            ));
        }
    }
    out
}
