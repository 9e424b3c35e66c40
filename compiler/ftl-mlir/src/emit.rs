//! MLIR text for a fused plan: one `func.func` per generated kernel, loops as `scf.for` over
//! memrefs (destination passing: every buffer is an argument), values as `arith`/`math` ops
//! evaluated at the loop's coordinates. Inlined nodes are recomputed where they are used; a
//! gather evaluates its base at the gathered position. Elementwise results of 16-bit floats are
//! rounded to their dtype after every op (computed in f32), as the interpreter does.

use ftl_ir::{BinOp, DimId, Graph, NodeId, Op, Reduction, UnOp};
use ftl_plan::backend::BackendError;
use ftl_plan::deps::{highest, lowest, LoopDeps};
use ftl_plan::fuse::{BufId, Kernel, Nest, NestKind, Plan};
use ftl_plan::scalar_math;
use ftl_runtime::DType;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

/// The element type of a dtype in memory.
pub fn elem(d: DType) -> &'static str {
    match d {
        DType::F64 => "f64",
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        DType::I64 => "i64",
        DType::I32 => "i32",
        DType::Bool => "i1",
    }
}

/// The type values of a dtype are computed in (16-bit floats compute in f32).
pub fn compute(d: DType) -> &'static str {
    match d {
        DType::BF16 | DType::F16 => "f32",
        _ => elem(d),
    }
}

/// The memref type of a buffer of `rank` dims.
pub fn memref(d: DType, rank: usize) -> String {
    let mut s = String::from("memref<");
    for _ in 0..rank {
        s.push_str("?x");
    }
    s.push_str(elem(d));
    s.push('>');
    s
}

/// Where the kernels run: the flavor of the functions [`module_text`] and [`gpu_module_text`]
/// write around the same loop nests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `func.func @k(dims, status, lo, hi, buffers…)`: the executor calls it on a range of the
    /// split dim per thread.
    Cpu,
    /// `gpu.func @k(dims, status, buffers…) kernel`: the threads share the points of the
    /// kernel's grid (`ftl_plan::manifest::grid_dims`), thread `block_id · block_dim +
    /// thread_id` taking every `grid_dim · block_dim`-th point of the flattened domain; a kernel
    /// without a grid runs on thread 0. f64 transcendentals are `math` ops (libdevice's
    /// `__nv_log1p`, …).
    Gpu,
    /// The GPU flavor's kernels as host functions with the CPU's signature, `lo` the thread's
    /// index and `hi` the grid's thread count: run once per thread, they check the GPU mapping
    /// on a machine without a GPU (`crate::cuda::host_emulation`).
    GpuOnHost,
}

/// An open region: its text so far, the line that opens it, and the values computed in it
/// (keyed by node and the coordinates it depends on).
#[derive(Default)]
struct Scope {
    header: String,
    text: Vec<String>,
    cache: HashMap<(NodeId, Vec<String>), String>,
}

/// One function being emitted.
pub struct Func<'p> {
    pub(super) plan: &'p Plan,
    g: &'p Graph,
    prologue: String,
    next: u32,
    bufs: HashMap<BufId, String>,
    dim_sizes: Vec<String>,
    consts: HashMap<String, String>,
    /// Open regions, outermost (the function body) first.
    scopes: Vec<Scope>,
    /// The scope instructions are written into (hoisting writes into an outer one).
    at: usize,
    /// Coordinate environments: dim → (SSA index value, scope level where it is defined).
    envs: Vec<Vec<(DimId, String, usize)>>,
    /// Per node: the loop dims its value depends on.
    deps: LoopDeps<'p>,
    /// The node the current nest computes (evaluated, never loaded).
    root: Option<NodeId>,
    /// The C library's f64 functions the kernel calls (declared once in the module).
    libm: BTreeSet<&'static str>,
    /// CPU or GPU function.
    flavor: Flavor,
    /// In a sliced region: the sliced dim, the slice's offset and the dim's whole size (index
    /// values; the loops run over the slice's width, `dim_sizes`).
    slice: Option<(DimId, String, String)>,
    /// In a sliced region: the buffers that hold one slice.
    local: Vec<BufId>,
    /// The first plan this emitter could not translate (a compiler bug); emission goes on with
    /// placeholder values and the kernel is refused at the end.
    error: Option<BackendError>,
}

impl<'p> Func<'p> {
    fn new(plan: &'p Plan, flavor: Flavor) -> Self {
        Func {
            flavor,
            plan,
            g: &plan.graph,
            prologue: String::new(),
            next: 0,
            bufs: HashMap::new(),
            dim_sizes: Vec::new(),
            consts: HashMap::new(),
            scopes: vec![Scope::default()],
            at: 0,
            envs: Vec::new(),
            deps: LoopDeps::new(plan),
            root: None,
            libm: BTreeSet::new(),
            slice: None,
            local: Vec::new(),
            error: None,
        }
    }

    /// Records that the plan cannot be translated (the first reason wins) and returns a
    /// placeholder value, so emission can finish; [`kernel_function`] then returns the error.
    fn fail(&mut self, reason: String) -> String {
        self.error.get_or_insert(BackendError(reason));
        "%unsupported".to_string()
    }

    fn line(&mut self, s: &str) {
        let at = self.at;
        self.scopes[at].text.push(s.to_string());
    }

    /// Opens a region (`scf.for … {`, `scf.if … {`); its body is written into it.
    fn open(&mut self, header: String) {
        self.scopes.push(Scope {
            header,
            ..Scope::default()
        });
        self.at = self.scopes.len() - 1;
    }

    /// Closes the innermost region, writing it (header, indented body, `}`) into its parent.
    fn close(&mut self) {
        if self.scopes.len() < 2 {
            self.fail("a region was closed that was never opened".into());
            return;
        }
        let Some(scope) = self.scopes.pop() else {
            return;
        };
        self.at = self.scopes.len() - 1;
        let parent = &mut self.scopes[self.at];
        parent.text.push(scope.header);
        parent
            .text
            .extend(scope.text.into_iter().map(|l| format!("  {l}")));
        parent.text.push("}".to_string());
    }

    /// The level of the innermost open region.
    fn depth(&self) -> usize {
        self.scopes.len() - 1
    }

    fn fresh(&mut self) -> String {
        self.next += 1;
        format!("%v{}", self.next)
    }

    /// Emits `%x = <rhs>` and returns `%x`.
    pub(super) fn emit_val(&mut self, rhs: &str) -> String {
        let v = self.fresh();
        self.line(&format!("{v} = {rhs}"));
        v
    }

    fn constant(&mut self, text: String) -> String {
        if let Some(v) = self.consts.get(&text) {
            return v.clone();
        }
        let v = self.fresh();
        let _ = writeln!(self.prologue, "    {v} = arith.constant {text}");
        self.consts.insert(text, v.clone());
        v
    }

    /// A float constant of type `ty`.
    pub(super) fn const_f(&mut self, ty: &str, v: f64) -> String {
        let text = if v.is_nan() {
            if ty == "f64" {
                "0x7FF8000000000000".to_string()
            } else {
                "0x7FC00000".to_string()
            }
        } else if v.is_infinite() {
            match (ty, v > 0.0) {
                ("f64", true) => "0x7FF0000000000000".into(),
                ("f64", false) => "0xFFF0000000000000".into(),
                (_, true) => "0x7F800000".into(),
                (_, false) => "0xFF800000".into(),
            }
        } else {
            format!("{v:.17e}")
        };
        self.constant(format!("{text} : {ty}"))
    }

    /// An integer constant of type `ty` (`index`, `i64`, `i32`, `i1`).
    pub(super) fn const_i(&mut self, ty: &str, v: i64) -> String {
        if ty == "i1" {
            return self.constant((if v != 0 { "true" } else { "false" }).to_string());
        }
        self.constant(format!("{v} : {ty}"))
    }

    fn idx(&mut self, v: i64) -> String {
        self.const_i("index", v)
    }

    /// A constant of a node's compute type.
    fn const_of(&mut self, d: DType, v: f64) -> String {
        let ty = compute(d);
        match d {
            DType::F64 | DType::F32 | DType::BF16 | DType::F16 => self.const_f(ty, v),
            DType::Bool => self.const_i("i1", i64::from(v != 0.0)),
            _ => self.const_i(ty, v as i64),
        }
    }

    /// Rounds an f32-computed 16-bit float result to its dtype.
    fn round(&mut self, d: DType, v: String) -> String {
        match d {
            DType::BF16 => {
                let bits = self.bf16_bits(&v);
                self.emit_val(&format!("arith.bitcast {bits} : i32 to f32"))
            }
            DType::F16 => {
                let t = self.emit_val(&format!("arith.truncf {v} : f32 to {}", elem(d)));
                self.emit_val(&format!("arith.extf {t} : {} to f32", elem(d)))
            }
            _ => v,
        }
    }

    /// An f32-computed value in its 16-bit storage type.
    fn narrow(&mut self, d: DType, v: &str) -> String {
        match d {
            DType::BF16 => {
                let bits = self.bf16_bits(v);
                let c16 = self.const_i("i32", 16);
                let high = self.emit_val(&format!("arith.shrui {bits}, {c16} : i32"));
                let half = self.emit_val(&format!("arith.trunci {high} : i32 to i16"));
                self.emit_val(&format!("arith.bitcast {half} : i16 to bf16"))
            }
            _ => self.emit_val(&format!("arith.truncf {v} : f32 to {}", elem(d))),
        }
    }

    /// The f32 `v` rounded to bf16 as PyTorch rounds (to nearest, ties to even; a NaN stays a
    /// quiet NaN), as the bits of the f32 that holds it (low half zero). Integer arithmetic:
    /// LLVM's own f32 → bf16 truncation is a call of `__truncsfbf2` on CPUs without AVX-512
    /// BF16, which neither vectorizes nor resolves in the JIT.
    fn bf16_bits(&mut self, v: &str) -> String {
        let bits = self.emit_val(&format!("arith.bitcast {v} : f32 to i32"));
        let c16 = self.const_i("i32", 16);
        let one = self.const_i("i32", 1);
        let bias = self.const_i("i32", 0x7FFF);
        let quiet = self.const_i("i32", 0x0040_0000);
        let high_half = self.const_i("i32", -65536);
        let shifted = self.emit_val(&format!("arith.shrui {bits}, {c16} : i32"));
        let lsb = self.emit_val(&format!("arith.andi {shifted}, {one} : i32"));
        let biased = self.emit_val(&format!("arith.addi {bits}, {bias} : i32"));
        let rounded = self.emit_val(&format!("arith.addi {biased}, {lsb} : i32"));
        let nan_bits = self.emit_val(&format!("arith.ori {bits}, {quiet} : i32"));
        let is_nan = self.emit_val(&format!("arith.cmpf uno, {v}, {v} : f32"));
        let chosen = self.emit_val(&format!(
            "arith.select {is_nan}, {nan_bits}, {rounded} : i32"
        ));
        self.emit_val(&format!("arith.andi {chosen}, {high_half} : i32"))
    }

    fn env_coord(&self, env: u32, d: DimId) -> Option<String> {
        self.envs[env as usize]
            .iter()
            .rev()
            .find(|(x, _, _)| *x == d)
            .map(|(_, v, _)| v.clone())
    }

    fn env_level(&self, env: u32, d: DimId) -> usize {
        self.envs[env as usize]
            .iter()
            .rev()
            .find(|(x, _, _)| *x == d)
            .map_or(0, |(_, _, l)| *l)
    }

    fn push_env(&mut self, coords: Vec<(DimId, String, usize)>) -> u32 {
        self.envs.push(coords);
        self.envs.len() as u32 - 1
    }

    /// The loop dims a node's value depends on (`ftl_plan::deps`).
    fn deps_of(&mut self, id: NodeId) -> Vec<DimId> {
        self.deps.of(id)
    }

    /// Loads a buffer element at the coordinates of `env` (converted to the compute type).
    fn load(&mut self, b: BufId, node: NodeId, env: u32) -> String {
        let n = self.g.node(node);
        let mut idx = Vec::new();
        for d in n.dims.clone() {
            let c = self
                .env_coord(env, d)
                .unwrap_or_else(|| self.const_i("index", 0));
            idx.push(c);
        }
        let (dtype, rank) = (n.dtype, n.dims.len());
        let arg = self.bufs[&b].clone();
        self.load_widened(&arg, dtype, rank, &idx.join(", "))
    }

    /// `memref.load` of the `rank`-dim memref `view` at `idx`, 16-bit floats widened to f32.
    fn load_widened(&mut self, view: &str, dtype: DType, rank: usize, idx: &str) -> String {
        let v = self.emit_val(&format!(
            "memref.load {view}[{idx}] : {}",
            memref(dtype, rank)
        ));
        match dtype {
            DType::BF16 | DType::F16 => {
                self.emit_val(&format!("arith.extf {v} : {} to f32", elem(dtype)))
            }
            _ => v,
        }
    }

    /// The row-major offset, in `dims`, of `env`'s coordinates (0 for a dim `env` lacks).
    fn flat_index(&mut self, dims: &[DimId], env: u32) -> String {
        let mut flat = self.idx(0);
        for d in dims {
            let size = self.dim_sizes[d.0 as usize].clone();
            let c = self
                .env_coord(env, *d)
                .unwrap_or_else(|| self.const_i("index", 0));
            let scaled = self.emit_val(&format!("arith.muli {flat}, {size} : index"));
            flat = self.emit_val(&format!("arith.addi {scaled}, {c} : index"));
        }
        flat
    }

    /// Loads `node`'s element at row-major offset `flat` of its buffer `b` (rank ≥ 1), through
    /// a one-dim view of the (contiguous, identity-layout) memref.
    fn load_flat(&mut self, b: BufId, node: NodeId, flat: &str) -> String {
        let n = self.g.node(node);
        let (dtype, rank) = (n.dtype, n.dims.len());
        let arg = self.bufs[&b].clone();
        let view = if rank == 1 {
            arg
        } else {
            let group = (0..rank).map(|k| k.to_string()).collect::<Vec<_>>();
            self.emit_val(&format!(
                "memref.collapse_shape {arg} [[{}]] : {} into {}",
                group.join(", "),
                memref(dtype, rank),
                memref(dtype, 1)
            ))
        };
        self.load_widened(&view, dtype, 1, flat)
    }

    /// Stores a computed value into a buffer at `env`'s coordinates.
    fn store(&mut self, b: BufId, node: NodeId, env: u32, v: &str) {
        let n = self.g.node(node);
        let mut idx = Vec::new();
        for d in n.dims.clone() {
            let c = self
                .env_coord(env, d)
                .unwrap_or_else(|| self.const_i("index", 0));
            idx.push(c);
        }
        let v = match n.dtype {
            DType::BF16 | DType::F16 => self.narrow(n.dtype, v),
            _ => v.to_string(),
        };
        let arg = self.bufs[&b].clone();
        self.line(&format!(
            "memref.store {v}, {arg}[{}] : {}",
            idx.join(", "),
            memref(n.dtype, n.dims.len())
        ));
    }

    /// The value of `id` at `env`: a load if it is materialized (and not the nest's root),
    /// else its op evaluated from its operands.
    fn value(&mut self, id: NodeId, env: u32) -> String {
        // Computed once in the outermost open region where every coordinate it depends on is
        // defined: loop-invariant loads and arithmetic are hoisted out of inner loops.
        let deps = self.deps_of(id);
        let coords: Vec<String> = deps
            .iter()
            .map(|d| self.env_coord(env, *d).unwrap_or_default())
            .collect();
        let key = (id, coords);
        let level = deps
            .iter()
            .map(|d| self.env_level(env, *d))
            .max()
            .unwrap_or(0)
            .min(self.at);
        if let Some(v) = self.scopes[..=self.at]
            .iter()
            .rev()
            .find_map(|s| s.cache.get(&key).cloned())
        {
            return v;
        }
        let saved = self.at;
        self.at = level;
        // A constant is an immediate even when it is also stored (a constant output): loading
        // it could read its buffer before the nest that stores it has run in this kernel (and
        // a reused buffer holds an earlier run's value).
        let constant = matches!(self.g.node(id).op, Op::Const(_));
        let v = match self.plan.buffer_of(id) {
            Some(b) if Some(id) != self.root && !constant => self.load(b, id, env),
            _ => self.compute(id, env),
        };
        self.at = saved;
        self.scopes[level].cache.insert(key, v.clone());
        v
    }

    fn convert(&mut self, v: &str, from: DType, to: DType) -> String {
        let (f, t) = (compute(from), compute(to));
        if f == t && from.is_float() == to.is_float() {
            return v.to_string();
        }
        match (from, to) {
            (a, b) if a.is_float() && b.is_float() => {
                if f == "f64" {
                    self.emit_val(&format!("arith.truncf {v} : f64 to {t}"))
                } else {
                    self.emit_val(&format!("arith.extf {v} : {f} to {t}"))
                }
            }
            (DType::Bool, b) if b.is_float() => {
                self.emit_val(&format!("arith.uitofp {v} : i1 to {t}"))
            }
            (DType::Bool, _) => self.emit_val(&format!("arith.extui {v} : i1 to {t}")),
            (a, DType::Bool) if a.is_float() => {
                let z = self.const_f(f, 0.0);
                self.emit_val(&format!("arith.cmpf une, {v}, {z} : {f}"))
            }
            (_, DType::Bool) => {
                let z = self.const_i(f, 0);
                self.emit_val(&format!("arith.cmpi ne, {v}, {z} : {f}"))
            }
            (a, b) if a.is_int() && b.is_float() => {
                self.emit_val(&format!("arith.sitofp {v} : {f} to {t}"))
            }
            (a, _) if a.is_float() => self.emit_val(&format!("arith.fptosi {v} : {f} to {t}")),
            _ => {
                if f == "i64" {
                    self.emit_val(&format!("arith.trunci {v} : i64 to {t}"))
                } else {
                    self.emit_val(&format!("arith.extsi {v} : {f} to {t}"))
                }
            }
        }
    }

    /// `name(x)` of the C library (f64 → f64). On the GPU the `math` op of that name, which
    /// the NVVM lowering maps to libdevice's `__nv_name`.
    fn libm_f64(&mut self, name: &'static str, x: &str) -> String {
        if self.flavor == Flavor::Gpu {
            return self.emit_val(&format!("math.{name} {x} : f64"));
        }
        // The host's C library (also for the GPU flavor run on the host).
        self.libm.insert(name);
        self.emit_val(&format!("func.call @{name}({x}) : (f64) -> f64"))
    }

    fn unary_float(&mut self, op: UnOp, x: &str, ty: &str) -> String {
        let f64_math = |s: &mut Self, name: &str| s.emit_val(&format!("math.{name} {x} : {ty}"));
        if ty == "f64" {
            // exp, log, sin and cos become LLVM intrinsics (calls of the C library's f64
            // functions); log1p, expm1, tanh and erf have no intrinsic (MLIR would expand log1p
            // as log(1 + x) and expm1 as exp(x) - 1, losing every digit near 0), so they call
            // the C library directly, as the interpreter's f64 methods do.
            return match op {
                UnOp::Exp => f64_math(self, "exp"),
                UnOp::Log => f64_math(self, "log"),
                UnOp::Log1p => self.libm_f64("log1p", x),
                UnOp::Expm1 => self.libm_f64("expm1", x),
                UnOp::Tanh => self.libm_f64("tanh", x),
                UnOp::Erf => self.libm_f64("erf", x),
                UnOp::Sin => f64_math(self, "sin"),
                UnOp::Cos => f64_math(self, "cos"),
                UnOp::Sigmoid => {
                    let nx = self.emit_val(&format!("arith.negf {x} : f64"));
                    let e = self.emit_val(&format!("math.exp {nx} : f64"));
                    let one = self.const_f("f64", 1.0);
                    let d = self.emit_val(&format!("arith.addf {one}, {e} : f64"));
                    self.emit_val(&format!("arith.divf {one}, {d} : f64"))
                }
                UnOp::Softplus | UnOp::LogSigmoid => {
                    let xin = if op == UnOp::LogSigmoid {
                        self.emit_val(&format!("arith.negf {x} : f64"))
                    } else {
                        x.to_string()
                    };
                    let ax = self.emit_val(&format!("math.absf {xin} : f64"));
                    let nax = self.emit_val(&format!("arith.negf {ax} : f64"));
                    let e = self.emit_val(&format!("math.exp {nax} : f64"));
                    let l = self.libm_f64("log1p", &e);
                    let z = self.const_f("f64", 0.0);
                    let m = self.emit_val(&format!("arith.maximumf {xin}, {z} : f64"));
                    let sp = self.emit_val(&format!("arith.addf {m}, {l} : f64"));
                    if op == UnOp::LogSigmoid {
                        self.emit_val(&format!("arith.negf {sp} : f64"))
                    } else {
                        sp
                    }
                }
                UnOp::Log1mexp => {
                    let em = self.libm_f64("expm1", x);
                    let nem = self.emit_val(&format!("arith.negf {em} : f64"));
                    let a = self.emit_val(&format!("math.log {nem} : f64"));
                    let e = self.emit_val(&format!("math.exp {x} : f64"));
                    let ne = self.emit_val(&format!("arith.negf {e} : f64"));
                    let b = self.libm_f64("log1p", &ne);
                    let t = self.const_f("f64", -std::f64::consts::LN_2);
                    let c = self.emit_val(&format!("arith.cmpf ogt, {x}, {t} : f64"));
                    self.emit_val(&format!("arith.select {c}, {a}, {b} : f64"))
                }
                _ => self.unary_common(op, x, ty),
            };
        }
        let x = &x.to_string();
        match op {
            UnOp::Exp => scalar_math::exp(self, x),
            UnOp::Log => scalar_math::log(self, x),
            UnOp::Log1p => scalar_math::log1p(self, x),
            UnOp::Expm1 => scalar_math::expm1(self, x),
            UnOp::Tanh => scalar_math::tanh(self, x),
            UnOp::Sigmoid => scalar_math::sigmoid(self, x),
            UnOp::Softplus => scalar_math::softplus(self, x),
            UnOp::LogSigmoid => {
                let nx = self.emit_val(&format!("arith.negf {x} : f32"));
                let sp = scalar_math::softplus(self, &nx);
                self.emit_val(&format!("arith.negf {sp} : f32"))
            }
            UnOp::Log1mexp => scalar_math::log1mexp(self, x),
            UnOp::Erf => scalar_math::erf(self, x),
            UnOp::Sin => scalar_math::sin_cos(self, x, false),
            UnOp::Cos => scalar_math::sin_cos(self, x, true),
            _ => self.unary_common(op, x, ty),
        }
    }

    fn unary_common(&mut self, op: UnOp, x: &str, ty: &str) -> String {
        match op {
            UnOp::Neg => self.emit_val(&format!("arith.negf {x} : {ty}")),
            UnOp::Sqrt => self.emit_val(&format!("math.sqrt {x} : {ty}")),
            UnOp::Rsqrt => {
                let s = self.emit_val(&format!("math.sqrt {x} : {ty}"));
                let one = self.const_f(ty, 1.0);
                self.emit_val(&format!("arith.divf {one}, {s} : {ty}"))
            }
            UnOp::Abs => self.emit_val(&format!("math.absf {x} : {ty}")),
            UnOp::Floor => self.emit_val(&format!("math.floor {x} : {ty}")),
            UnOp::Ceil => self.emit_val(&format!("math.ceil {x} : {ty}")),
            UnOp::Round => self.emit_val(&format!("math.roundeven {x} : {ty}")),
            UnOp::Relu => {
                let z = self.const_f(ty, 0.0);
                let c = self.emit_val(&format!("arith.cmpf ogt, {x}, {z} : {ty}"));
                self.emit_val(&format!("arith.select {c}, {x}, {z} : {ty}"))
            }
            UnOp::Sign => {
                let z = self.const_f(ty, 0.0);
                let one = self.const_f(ty, 1.0);
                let m1 = self.const_f(ty, -1.0);
                let pos = self.emit_val(&format!("arith.cmpf ogt, {x}, {z} : {ty}"));
                let neg = self.emit_val(&format!("arith.cmpf olt, {x}, {z} : {ty}"));
                let a = self.emit_val(&format!("arith.select {neg}, {m1}, {x} : {ty}"));
                self.emit_val(&format!("arith.select {pos}, {one}, {a} : {ty}"))
            }
            _ => x.to_string(),
        }
    }

    fn unary_int(&mut self, op: UnOp, x: &str, ty: &str) -> String {
        match op {
            UnOp::Neg => {
                let z = self.const_i(ty, 0);
                self.emit_val(&format!("arith.subi {z}, {x} : {ty}"))
            }
            UnOp::Not => {
                let t = self.const_i("i1", 1);
                self.emit_val(&format!("arith.xori {x}, {t} : i1"))
            }
            UnOp::Abs => self.emit_val(&format!("math.absi {x} : {ty}")),
            UnOp::Sign => {
                let z = self.const_i(ty, 0);
                let one = self.const_i(ty, 1);
                let m1 = self.const_i(ty, -1);
                let pos = self.emit_val(&format!("arith.cmpi sgt, {x}, {z} : {ty}"));
                let neg = self.emit_val(&format!("arith.cmpi slt, {x}, {z} : {ty}"));
                let a = self.emit_val(&format!("arith.select {neg}, {m1}, {z} : {ty}"));
                self.emit_val(&format!("arith.select {pos}, {one}, {a} : {ty}"))
            }
            UnOp::Relu => {
                let z = self.const_i(ty, 0);
                self.emit_val(&format!("arith.maxsi {x}, {z} : {ty}"))
            }
            _ => x.to_string(),
        }
    }

    fn binary(&mut self, op: BinOp, a: &str, b: &str, dt: DType, b_node: NodeId) -> String {
        let ty = compute(dt);
        if dt == DType::Bool {
            let name = match op {
                BinOp::And => "andi",
                BinOp::Or => "ori",
                BinOp::Eq => return self.emit_val(&format!("arith.cmpi eq, {a}, {b} : i1")),
                BinOp::Ne => return self.emit_val(&format!("arith.cmpi ne, {a}, {b} : i1")),
                BinOp::Lt => return self.emit_val(&format!("arith.cmpi ult, {a}, {b} : i1")),
                BinOp::Le => return self.emit_val(&format!("arith.cmpi ule, {a}, {b} : i1")),
                BinOp::Gt => return self.emit_val(&format!("arith.cmpi ugt, {a}, {b} : i1")),
                BinOp::Ge => return self.emit_val(&format!("arith.cmpi uge, {a}, {b} : i1")),
                _ => "ori",
            };
            return self.emit_val(&format!("arith.{name} {a}, {b} : i1"));
        }
        if dt.is_float() {
            let simple = match op {
                BinOp::Add => Some("addf"),
                BinOp::Sub => Some("subf"),
                BinOp::Mul => Some("mulf"),
                BinOp::Div => Some("divf"),
                BinOp::Min => Some("minimumf"),
                BinOp::Max => Some("maximumf"),
                _ => None,
            };
            if let Some(name) = simple {
                return self.emit_val(&format!("arith.{name} {a}, {b} : {ty}"));
            }
            let pred = match op {
                BinOp::Eq => Some("oeq"),
                BinOp::Ne => Some("une"),
                BinOp::Lt => Some("olt"),
                BinOp::Le => Some("ole"),
                BinOp::Gt => Some("ogt"),
                BinOp::Ge => Some("oge"),
                _ => None,
            };
            if let Some(p) = pred {
                return self.emit_val(&format!("arith.cmpf {p}, {a}, {b} : {ty}"));
            }
            return match op {
                BinOp::Pow => {
                    // Small constant exponents as products, as exact as the interpreter's powf.
                    match self.g.node(b_node).op {
                        Op::Const(2.0) => self.emit_val(&format!("arith.mulf {a}, {a} : {ty}")),
                        Op::Const(1.0) => a.to_string(),
                        Op::Const(0.5) => self.emit_val(&format!("math.sqrt {a} : {ty}")),
                        _ => self.emit_val(&format!("math.powf {a}, {b} : {ty}")),
                    }
                }
                BinOp::Rem | BinOp::FloorDiv => {
                    let q = self.emit_val(&format!("arith.divf {a}, {b} : {ty}"));
                    let f = self.emit_val(&format!("math.floor {q} : {ty}"));
                    if op == BinOp::FloorDiv {
                        f
                    } else {
                        let p = self.emit_val(&format!("arith.mulf {b}, {f} : {ty}"));
                        self.emit_val(&format!("arith.subf {a}, {p} : {ty}"))
                    }
                }
                _ => a.to_string(),
            };
        }
        // Integers.
        let simple = match op {
            BinOp::Add => Some("addi"),
            BinOp::Sub => Some("subi"),
            BinOp::Mul => Some("muli"),
            BinOp::Min => Some("minsi"),
            BinOp::Max => Some("maxsi"),
            _ => None,
        };
        if let Some(name) = simple {
            return self.emit_val(&format!("arith.{name} {a}, {b} : {ty}"));
        }
        let pred = match op {
            BinOp::Eq => Some("eq"),
            BinOp::Ne => Some("ne"),
            BinOp::Lt => Some("slt"),
            BinOp::Le => Some("sle"),
            BinOp::Gt => Some("sgt"),
            BinOp::Ge => Some("sge"),
            _ => None,
        };
        if let Some(p) = pred {
            return self.emit_val(&format!("arith.cmpi {p}, {a}, {b} : {ty}"));
        }
        match op {
            BinOp::FloorDiv | BinOp::Rem | BinOp::Div => {
                // Division by zero gives 0, as in the interpreter.
                let z = self.const_i(ty, 0);
                let one = self.const_i(ty, 1);
                let isz = self.emit_val(&format!("arith.cmpi eq, {b}, {z} : {ty}"));
                let safe = self.emit_val(&format!("arith.select {isz}, {one}, {b} : {ty}"));
                let q = self.emit_val(&format!("arith.floordivsi {a}, {safe} : {ty}"));
                let r = if op == BinOp::Rem {
                    let p = self.emit_val(&format!("arith.muli {q}, {safe} : {ty}"));
                    self.emit_val(&format!("arith.subi {a}, {p} : {ty}"))
                } else {
                    q
                };
                self.emit_val(&format!("arith.select {isz}, {z}, {r} : {ty}"))
            }
            _ => a.to_string(),
        }
    }

    /// Computes node `id`'s op at `env` from its operands' values.
    fn compute(&mut self, id: NodeId, env: u32) -> String {
        let n = self.g.node(id).clone();
        let dt = n.dtype;
        match &n.op {
            Op::Const(v) => self.const_of(dt, *v),
            Op::Size(dims) => {
                let mut acc = self.idx(1);
                for d in dims {
                    let s = self.whole_size(*d);
                    acc = self.emit_val(&format!("arith.muli {acc}, {s} : index"));
                }
                let i = self.emit_val(&format!("arith.index_cast {acc} : index to i64"));
                self.convert(&i, DType::I64, dt)
            }
            Op::Iota(d) => {
                let c = self
                    .env_coord(env, *d)
                    .unwrap_or_else(|| self.const_i("index", 0));
                let c = match self.slice.clone() {
                    Some((sd, offset, _)) if sd == *d => {
                        self.emit_val(&format!("arith.addi {c}, {offset} : index"))
                    }
                    _ => c,
                };
                let i = self.emit_val(&format!("arith.index_cast {c} : index to i64"));
                self.convert(&i, DType::I64, dt)
            }
            Op::Unary(op, a) => {
                let x = self.value(*a, env);
                let ty = compute(dt);
                let r = if dt.is_float() {
                    self.unary_float(*op, &x, ty)
                } else {
                    self.unary_int(*op, &x, ty)
                };
                self.round(dt, r)
            }
            Op::Binary(op, a, b) => {
                let (x, y) = (self.value(*a, env), self.value(*b, env));
                let operand_dt = self.g.node(*a).dtype;
                let r = self.binary(*op, &x, &y, operand_dt, *b);
                if op.is_comparison() {
                    r
                } else {
                    self.round(dt, r)
                }
            }
            Op::Select(c, a, b) => {
                let (cv, x, y) = (
                    self.value(*c, env),
                    self.value(*a, env),
                    self.value(*b, env),
                );
                self.emit_val(&format!("arith.select {cv}, {x}, {y} : {}", compute(dt)))
            }
            Op::Cast(a) => {
                let x = self.value(*a, env);
                let from = self.g.node(*a).dtype;
                let r = self.convert(&x, from, dt);
                self.round(dt, r)
            }
            Op::Broadcast(a) | Op::Transpose(a) | Op::Detach(a) => self.value(*a, env),
            Op::Gather {
                base,
                dim,
                index,
                default,
            } => {
                let i = self.value(*index, env);
                let it = compute(self.g.node(*index).dtype);
                let iv = self.emit_val(&format!("arith.index_cast {i} : {it} to index"));
                let zero = self.idx(0);
                let size = self.whole_size(*dim);
                let ge = self.emit_val(&format!("arith.cmpi sge, {iv}, {zero} : index"));
                let lt = self.emit_val(&format!("arith.cmpi slt, {iv}, {size} : index"));
                let inside = self.emit_val(&format!("arith.andi {ge}, {lt} : i1"));
                let safe = self.emit_val(&format!("arith.select {inside}, {iv}, {zero} : index"));
                // Along a sliced dim the base is index arithmetic (the plan admits no other),
                // evaluated at the slice's coordinate of the index.
                let safe = match self.slice.clone() {
                    Some((sd, offset, _)) if sd == *dim => {
                        self.emit_val(&format!("arith.subi {safe}, {offset} : index"))
                    }
                    _ => safe,
                };
                let mut coords = self.envs[env as usize].clone();
                coords.push((*dim, safe, self.at));
                let genv = self.push_env(coords);
                let v = self.value(*base, genv);
                match default {
                    Some(dv) => {
                        let d = self.value(*dv, env);
                        self.emit_val(&format!(
                            "arith.select {inside}, {v}, {d} : {}",
                            compute(dt)
                        ))
                    }
                    None => {
                        let t = self.const_i("i1", 1);
                        let outside = self.emit_val(&format!("arith.xori {inside}, {t} : i1"));
                        // Report the bad index: status = [1, dim, index].
                        let i64v = self.convert(&i, self.g.node(*index).dtype, DType::I64);
                        let one = self.const_i("i64", 1);
                        let dim_id = self.const_i("i64", i64::from(dim.0));
                        let (c0, c1, c2) = (self.idx(0), self.idx(1), self.idx(2));
                        self.line(&format!("scf.if {outside} {{"));
                        for (slot, v) in [(c0, one), (c1, dim_id), (c2, i64v)] {
                            self.line(&format!(
                                "  memref.store {v}, %status[{slot}] : memref<?xi64>"
                            ));
                        }
                        self.line("}");
                        v
                    }
                }
            }
            Op::Random {
                dist,
                site,
                seed,
                offset,
            } => {
                // The element's row-major index in the node's own dims.
                let flat = self.flat_index(&n.dims, env);
                let idx = self.emit_val(&format!("arith.index_cast {flat} : index to i64"));
                let (s, o) = (self.value(*seed, env), self.value(*offset, env));
                let words = scalar_math::philox(self, &idx, *site, &s, &o);
                let r = scalar_math::random(self, &words, *dist == ftl_ir::Dist::Normal);
                self.convert(&r, DType::F32, dt)
            }
            Op::Contract(a, b) => {
                // Only reached as the operand of a Reduce-style contraction nest.
                let (x, y) = (self.value(*a, env), self.value(*b, env));
                self.emit_val(&format!("arith.mulf {x}, {y} : {}", compute(dt)))
            }
            Op::Relabel(a) if Some(id) == self.root => {
                // An output that relabels another buffer: same row-major data, so element
                // (coords) is the operand's element at the same flat offset.
                let a = *a;
                let mut flat = self.flat_index(&n.dims, env);
                if let Some(b) = self
                    .plan
                    .buffer_of(a)
                    .filter(|_| !self.g.node(a).dims.is_empty())
                {
                    // A materialized operand is read at the flat offset itself, without
                    // recovering its coordinates (a division per dim and element).
                    return self.load_flat(b, a, &flat);
                }
                let mut coords = Vec::new();
                for d in self.g.node(a).dims.clone().iter().rev() {
                    let size = self.dim_sizes[d.0 as usize].clone();
                    let c = self.emit_val(&format!("arith.remui {flat}, {size} : index"));
                    flat = self.emit_val(&format!("arith.divui {flat}, {size} : index"));
                    coords.push((*d, c, self.at));
                }
                let aenv = self.push_env(coords);
                self.value(a, aenv)
            }
            Op::Input(_) | Op::Literal(_) | Op::Relabel(_) => {
                // Materialized: loaded by `value`; reaching here means it is a nest root copy.
                let Some(b) = self.plan.buffer_of(id) else {
                    return self.fail(format!("node {} is neither materialized nor inline", id.0));
                };
                let saved = self.root.take();
                let v = self.load(b, id, env);
                self.root = saved;
                v
            }
            other => self.fail(format!("`{other:?}` cannot be evaluated inline")),
        }
    }

    /// `scf.for` over `dim` from `lo` to `hi`, calling `body` inside with the loop variable.
    fn for_loop(&mut self, lo: &str, hi: &str, body: impl FnOnce(&mut Self, String)) {
        let iv = self.fresh();
        let one = self.idx(1);
        self.open(format!("scf.for {iv} = {lo} to {hi} step {one} {{"));
        body(self, iv);
        self.close();
    }

    /// The GPU's loop over a domain: this thread's points `%gpu_tid, + %gpu_stride, …` of the
    /// row-major flattened `dims`, then `body` at each. A point's coordinates are loop-carried:
    /// the first point's and the stride's mixed-radix digits are found once (the divisions),
    /// and each step adds the stride's digits with carries — a 64-bit division per dim and
    /// point would cost more than a map's memory traffic on a GPU.
    fn grid_domain(&mut self, dims: &[DimId], body: &mut dyn FnMut(&mut Self, u32)) {
        let sizes: Vec<String> = dims
            .iter()
            .map(|d| self.dim_sizes[d.0 as usize].clone())
            .collect();
        let mut total = self.idx(1);
        for size in &sizes {
            total = self.emit_val(&format!("arith.muli {total}, {size} : index"));
        }
        let t = self.fresh();
        let header = format!("scf.for {t} = %gpu_tid to {total} step %gpu_stride");
        if let [d] = dims {
            self.open(format!("{header} {{"));
            let env = self.push_env(vec![(*d, t, self.depth())]);
            body(self, env);
            self.close();
            return;
        }
        let first = self.digits("%gpu_tid", &sizes);
        let step = self.digits("%gpu_stride", &sizes);
        let args: Vec<String> = dims.iter().map(|_| self.fresh()).collect();
        let inits: Vec<String> = args
            .iter()
            .zip(&first)
            .map(|(a, f)| format!("{a} = {f}"))
            .collect();
        let types = vec!["index"; dims.len()].join(", ");
        let result = self.fresh();
        self.open(format!(
            "{result}:{} = {header} iter_args({}) -> ({types}) {{",
            dims.len(),
            inits.join(", ")
        ));
        let depth = self.depth();
        let coords = dims
            .iter()
            .zip(&args)
            .map(|(d, a)| (*d, a.clone(), depth))
            .collect();
        let env = self.push_env(coords);
        body(self, env);
        // The next point: the stride's digits added from the innermost, carrying (each sum is
        // below twice its dim's size). The outermost never wraps: past the last point the loop
        // ends.
        let (zero, one) = (self.idx(0), self.idx(1));
        let mut next = vec![String::new(); dims.len()];
        let mut carry: Option<String> = None;
        for k in (0..dims.len()).rev() {
            let mut sum = self.emit_val(&format!("arith.addi {}, {} : index", args[k], step[k]));
            if let Some(c) = &carry {
                sum = self.emit_val(&format!("arith.addi {sum}, {c} : index"));
            }
            if k == 0 {
                next[0] = sum;
                break;
            }
            let over = self.emit_val(&format!("arith.cmpi uge, {sum}, {} : index", sizes[k]));
            let wrapped = self.emit_val(&format!("arith.subi {sum}, {} : index", sizes[k]));
            next[k] = self.emit_val(&format!("arith.select {over}, {wrapped}, {sum} : index"));
            carry = Some(self.emit_val(&format!("arith.select {over}, {one}, {zero} : index")));
        }
        self.line(&format!("scf.yield {} : {types}", next.join(", ")));
        self.close();
    }

    /// `x`'s mixed-radix digits in dims of these sizes (row-major: the first digit is the
    /// quotient left after the others, unbounded).
    fn digits(&mut self, x: &str, sizes: &[String]) -> Vec<String> {
        let mut out = vec![String::new(); sizes.len()];
        let mut rest = x.to_string();
        for k in (1..sizes.len()).rev() {
            out[k] = self.emit_val(&format!("arith.remui {rest}, {} : index", sizes[k]));
            rest = self.emit_val(&format!("arith.divui {rest}, {} : index", sizes[k]));
        }
        out[0] = rest;
        out
    }

    /// Emits loops over `dims` (the first one over `lo..hi` when given), then `body` with the
    /// coordinates environment.
    fn domain(
        &mut self,
        dims: &[DimId],
        split: Option<(String, String)>,
        coords: Vec<(DimId, String, usize)>,
        body: &mut dyn FnMut(&mut Self, u32),
    ) {
        if dims.is_empty() {
            let env = self.push_env(coords);
            body(self, env);
            return;
        }
        let d = dims[0];
        let (lo, hi) = match split {
            Some(r) => r,
            None => (self.idx(0), self.dim_sizes[d.0 as usize].clone()),
        };
        self.for_loop(&lo, &hi, |s, iv| {
            let mut c = coords.clone();
            c.push((d, iv, s.depth()));
            s.domain(&dims[1..], None, c, body);
        });
    }

    /// The body of one nest at the point `env` of its domain.
    fn nest_body(&mut self, nest: &Nest, env: u32) {
        let root = nest.root;
        let node = self.g.node(root).clone();
        self.root = Some(root);
        match &nest.kind {
            NestKind::Map => {
                let v = self.compute(root, env);
                let v = if self.local.contains(&nest.out) && node.dtype == DType::F32 {
                    self.flush_subnormal(&v)
                } else {
                    v
                };
                self.store(nest.out, root, env, &v);
            }
            NestKind::Reduce { op, inner } => {
                let operand = match node.op {
                    Op::Reduce(_, a) => a,
                    _ => root, // a contraction: the product at each point is computed inline
                };
                let v = self.reduce(*op, operand, inner, env, node.dtype, root);
                let v = match &self.slice {
                    Some((d, _, _)) if inner.contains(d) => {
                        let old = self.load(nest.out, root, env);
                        self.combine(*op, &old, &v, node.dtype)
                    }
                    _ => v,
                };
                self.store(nest.out, root, env, &v);
            }
            NestKind::Scan => self.scan(nest, env),
            NestKind::Scatter => {}
        }
        self.root = None;
    }

    /// `v` with a subnormal value flushed to zero (sign kept), as a CPU in flush-to-zero mode
    /// stores it. Slices of a sliced region feed GEMMs, where each subnormal operand costs a
    /// microcode assist per multiply: the gradient of logits holds `softmax · g` far below
    /// 2⁻¹²⁶ in a long vocabulary's tail, which made its two GEMMs 7× slower. The values
    /// flushed are below 1.2e-38.
    fn flush_subnormal(&mut self, v: &str) -> String {
        let a = self.emit_val(&format!("math.absf {v} : f32"));
        let tiny = self.const_f("f32", f64::from(f32::MIN_POSITIVE));
        let small = self.emit_val(&format!("arith.cmpf olt, {a}, {tiny} : f32"));
        let zero = self.const_f("f32", 0.0);
        let signed = self.emit_val(&format!("math.copysign {zero}, {v} : f32"));
        self.emit_val(&format!("arith.select {small}, {signed}, {v} : f32"))
    }

    /// A dim's whole size: in a sliced region the sliced dim's loops cover one slice, while
    /// `size`, iota positions and gather bounds mean the whole dim.
    fn whole_size(&self, d: DimId) -> String {
        match &self.slice {
            Some((sd, _, whole)) if *sd == d => whole.clone(),
            _ => self.dim_sizes[d.0 as usize].clone(),
        }
    }

    /// A reduction's value so far (`old`, over earlier slices) combined with this slice's.
    fn combine(&mut self, op: Reduction, old: &str, part: &str, dt: DType) -> String {
        let ty = compute(dt);
        let float = dt.is_float();
        let instr = match op {
            Reduction::Sum if float => "addf",
            Reduction::Sum => "addi",
            Reduction::Max if float => "maximumf",
            Reduction::Max => "maxsi",
            Reduction::Min if float => "minimumf",
            Reduction::Min => "minsi",
            Reduction::Any => "ori",
            Reduction::All => "andi",
            Reduction::LogSumExp => {
                // log(e^a + e^b) = m + log(e^(a-m) + e^(b-m)), m = max(a, b); an infinite m
                // (both -inf, or an inf) is the result itself.
                let m = self.emit_val(&format!("arith.maximumf {old}, {part} : {ty}"));
                let da = self.emit_val(&format!("arith.subf {old}, {m} : {ty}"));
                let db = self.emit_val(&format!("arith.subf {part}, {m} : {ty}"));
                let ea = self.unary_float(UnOp::Exp, &da, ty);
                let eb = self.unary_float(UnOp::Exp, &db, ty);
                let s = self.emit_val(&format!("arith.addf {ea}, {eb} : {ty}"));
                return self.lse_finish(&m, &s, ty);
            }
            Reduction::ArgMax => return self.fail("an argmax over a sliced dim".into()),
        };
        let v = self.emit_val(&format!("arith.{instr} {old}, {part} : {ty}"));
        self.round(dt, v)
    }

    /// A reduction over `inner` at `env`; returns the result in the node's compute type.
    fn reduce(
        &mut self,
        op: Reduction,
        operand: NodeId,
        inner: &[DimId],
        env: u32,
        out_dt: DType,
        root: NodeId,
    ) -> String {
        let in_dt = if operand == root {
            out_dt
        } else {
            self.g.node(operand).dtype
        };
        let ty = compute(in_dt);
        let eval = |s: &mut Self, env: u32| {
            if operand == root {
                s.compute(root, env)
            } else {
                s.value(operand, env)
            }
        };
        if op == Reduction::LogSumExp && inner.len() == 1 && ty == "f32" {
            return self.logsumexp_online(inner[0], env, &eval);
        }
        let (init, combine): (String, &str) = match op {
            Reduction::Sum => (
                self.const_of(in_dt, 0.0),
                if in_dt.is_float() { "addf" } else { "addi" },
            ),
            Reduction::Max | Reduction::LogSumExp => (
                self.const_of(in_dt, lowest(in_dt)),
                if in_dt.is_float() {
                    "maximumf"
                } else {
                    "maxsi"
                },
            ),
            Reduction::Min => (
                self.const_of(in_dt, highest(in_dt)),
                if in_dt.is_float() {
                    "minimumf"
                } else {
                    "minsi"
                },
            ),
            Reduction::Any => (self.const_i("i1", 0), "ori"),
            Reduction::All => (self.const_i("i1", 1), "andi"),
            Reduction::ArgMax => return self.argmax(operand, inner, env, in_dt, out_dt, &eval),
        };
        let flags = if combine == "addf" {
            " fastmath<reassoc>"
        } else {
            ""
        };
        let acc = self.fold(inner, env, &init, ty, &mut |s, env, acc| {
            let x = eval(s, env);
            s.emit_val(&format!("arith.{combine} {acc}, {x}{flags} : {ty}"))
        });
        if op == Reduction::LogSumExp {
            // Two sweeps (max, then sum of exp) when the online form does not apply.
            let m = acc;
            let zero = self.const_of(in_dt, 0.0);
            let s = self.fold(inner, env, &zero, ty, &mut |s, env, acc| {
                let x = eval(s, env);
                let d = s.emit_val(&format!("arith.subf {x}, {m} : {ty}"));
                let e = s.unary_float(UnOp::Exp, &d, ty);
                s.emit_val(&format!("arith.addf {acc}, {e} fastmath<reassoc> : {ty}"))
            });
            return self.lse_finish(&m, &s, ty);
        }
        acc
    }

    /// Nested `scf.for` loops over `dims` carrying one accumulator.
    fn fold(
        &mut self,
        dims: &[DimId],
        env: u32,
        init: &str,
        ty: &str,
        step: &mut dyn FnMut(&mut Self, u32, &str) -> String,
    ) -> String {
        if dims.is_empty() {
            return step(self, env, init);
        }
        let d = dims[0];
        let (lo, hi, one) = (
            self.idx(0),
            self.dim_sizes[d.0 as usize].clone(),
            self.idx(1),
        );
        let (iv, acc, res) = (self.fresh(), self.fresh(), self.fresh());
        self.open(format!(
            "{res} = scf.for {iv} = {lo} to {hi} step {one} iter_args({acc} = {init}) -> ({ty}) {{"
        ));
        let mut coords = self.envs[env as usize].clone();
        coords.push((d, iv, self.depth()));
        let inner_env = self.push_env(coords);
        let v = self.fold(&dims[1..], inner_env, &acc, ty, step);
        self.line(&format!("scf.yield {v} : {ty}"));
        self.close();
        res
    }

    fn lse_finish(&mut self, m: &str, s: &str, ty: &str) -> String {
        let l = self.unary_float(UnOp::Log, s, ty);
        let r = self.emit_val(&format!("arith.addf {m}, {l} : {ty}"));
        let a = self.emit_val(&format!("math.absf {m} : {ty}"));
        let inf = self.const_f(ty, f64::INFINITY);
        let finite = self.emit_val(&format!("arith.cmpf olt, {a}, {inf} : {ty}"));
        self.emit_val(&format!("arith.select {finite}, {r}, {m} : {ty}"))
    }

    /// Online logsumexp in one sweep over `d`: blocks of 256 (block max, then the block's
    /// exponentials rescaled to the running max), so each element is read from memory once.
    fn logsumexp_online(
        &mut self,
        d: DimId,
        env: u32,
        eval: &dyn Fn(&mut Self, u32) -> String,
    ) -> String {
        let ty = "f32";
        let (zero_i, block, one) = (self.idx(0), self.idx(256), self.idx(1));
        let n = self.dim_sizes[d.0 as usize].clone();
        let ninf = self.const_f(ty, f64::NEG_INFINITY);
        let zero = self.const_f(ty, 0.0);
        let onef = self.const_f(ty, 1.0);
        let (iv, m, s, res) = (self.fresh(), self.fresh(), self.fresh(), self.fresh());
        self.open(format!("{res}:2 = scf.for {iv} = {zero_i} to {n} step {block} iter_args({m} = {ninf}, {s} = {zero}) -> (f32, f32) {{"));
        let end = self.emit_val(&format!("arith.addi {iv}, {block} : index"));
        let end = self.emit_val(&format!("arith.minsi {end}, {n} : index"));
        let fold_range =
            |this: &mut Self, init: &str, step: &mut dyn FnMut(&mut Self, u32, &str) -> String| {
                let (k, acc, r) = (this.fresh(), this.fresh(), this.fresh());
                this.open(format!("{r} = scf.for {k} = {iv} to {end} step {one} iter_args({acc} = {init}) -> (f32) {{"));
                let mut coords = this.envs[env as usize].clone();
                coords.push((d, k, this.depth()));
                let e = this.push_env(coords);
                let v = step(this, e, &acc);
                this.line(&format!("scf.yield {v} : f32"));
                this.close();
                r
            };
        let bm = fold_range(self, &ninf, &mut |s, e, acc| {
            let x = eval(s, e);
            s.emit_val(&format!("arith.maximumf {acc}, {x} : f32"))
        });
        let nm = self.emit_val(&format!("arith.maximumf {m}, {bm} : f32"));
        let bs = fold_range(self, &zero, &mut |s, e, acc| {
            let x = eval(s, e);
            let t = s.emit_val(&format!("arith.subf {x}, {nm} : f32"));
            let ex = scalar_math::exp(s, &t);
            s.emit_val(&format!("arith.addf {acc}, {ex} fastmath<reassoc> : f32"))
        });
        let same = self.emit_val(&format!("arith.cmpf oeq, {m}, {nm} : f32"));
        let dm = self.emit_val(&format!("arith.subf {m}, {nm} : f32"));
        let ed = scalar_math::exp(self, &dm);
        let scale = self.emit_val(&format!("arith.select {same}, {onef}, {ed} : f32"));
        let s2 = self.emit_val(&format!("math.fma {s}, {scale}, {bs} : f32"));
        let all_ninf = self.emit_val(&format!("arith.cmpf oeq, {nm}, {ninf} : f32"));
        let s2 = self.emit_val(&format!("arith.select {all_ninf}, {zero}, {s2} : f32"));
        self.line(&format!("scf.yield {nm}, {s2} : f32, f32"));
        self.close();
        self.lse_finish(&format!("{res}#0"), &format!("{res}#1"), ty)
    }

    fn argmax(
        &mut self,
        operand: NodeId,
        inner: &[DimId],
        env: u32,
        in_dt: DType,
        out_dt: DType,
        eval: &dyn Fn(&mut Self, u32) -> String,
    ) -> String {
        let ty = compute(in_dt);
        let d = inner[0];
        let (lo, hi, one) = (
            self.idx(0),
            self.dim_sizes[d.0 as usize].clone(),
            self.idx(1),
        );
        let init = self.const_of(in_dt, lowest(in_dt));
        let zero_i = self.idx(0);
        let (iv, best, at, res) = (self.fresh(), self.fresh(), self.fresh(), self.fresh());
        self.open(format!("{res}:2 = scf.for {iv} = {lo} to {hi} step {one} iter_args({best} = {init}, {at} = {zero_i}) -> ({ty}, index) {{"));
        let mut coords = self.envs[env as usize].clone();
        coords.push((d, iv.clone(), self.depth()));
        let e = self.push_env(coords);
        let x = eval(self, e);
        let better = if in_dt.is_float() {
            let gt = self.emit_val(&format!("arith.cmpf ogt, {x}, {best} : {ty}"));
            let xn = self.emit_val(&format!("arith.cmpf uno, {x}, {x} : {ty}"));
            let bn = self.emit_val(&format!("arith.cmpf ord, {best}, {best} : {ty}"));
            let nan_first = self.emit_val(&format!("arith.andi {xn}, {bn} : i1"));
            self.emit_val(&format!("arith.ori {gt}, {nan_first} : i1"))
        } else {
            self.emit_val(&format!("arith.cmpi sgt, {x}, {best} : {ty}"))
        };
        let nb = self.emit_val(&format!("arith.select {better}, {x}, {best} : {ty}"));
        let na = self.emit_val(&format!("arith.select {better}, {iv}, {at} : index"));
        self.line(&format!("scf.yield {nb}, {na} : {ty}, index"));
        self.close();
        let _ = operand;
        let i = self.emit_val(&format!("arith.index_cast {res}#1 : index to i64"));
        self.convert(&i, DType::I64, out_dt)
    }

    /// A running sum or product along the scan dim at `env` (the other dims), accumulated in
    /// f64 for floats as the interpreter does.
    fn scan(&mut self, nest: &Nest, env: u32) {
        let node = self.g.node(nest.root).clone();
        let Op::Scan {
            kind,
            x,
            dim,
            reverse,
        } = node.op
        else {
            return;
        };
        let dt = node.dtype;
        let acc_ty = if dt.is_float() { "f64" } else { compute(dt) };
        let init = if acc_ty == "f64" {
            self.const_f(
                "f64",
                if kind == ftl_ir::ScanKind::Sum {
                    0.0
                } else {
                    1.0
                },
            )
        } else {
            self.const_i(acc_ty, i64::from(kind != ftl_ir::ScanKind::Sum))
        };
        let (lo, hi, one) = (
            self.idx(0),
            self.dim_sizes[dim.0 as usize].clone(),
            self.idx(1),
        );
        let (iv, acc, res) = (self.fresh(), self.fresh(), self.fresh());
        self.open(format!("{res} = scf.for {iv} = {lo} to {hi} step {one} iter_args({acc} = {init}) -> ({acc_ty}) {{"));
        let pos = if reverse {
            let last = self.emit_val(&format!("arith.subi {hi}, {one} : index"));
            self.emit_val(&format!("arith.subi {last}, {iv} : index"))
        } else {
            iv.clone()
        };
        let mut coords = self.envs[env as usize].clone();
        coords.push((dim, pos, self.depth()));
        let e = self.push_env(coords);
        let v = self.value(x, e);
        let v = self.convert(
            &v,
            self.g.node(x).dtype,
            if acc_ty == "f64" { DType::F64 } else { dt },
        );
        let op = match (kind, acc_ty == "f64") {
            (ftl_ir::ScanKind::Sum, true) => "addf",
            (ftl_ir::ScanKind::Prod, true) => "mulf",
            (ftl_ir::ScanKind::Sum, false) => "addi",
            (ftl_ir::ScanKind::Prod, false) => "muli",
        };
        let n = self.emit_val(&format!("arith.{op} {acc}, {v} : {acc_ty}"));
        let out = self.convert(&n, if acc_ty == "f64" { DType::F64 } else { dt }, dt);
        let out = self.round(dt, out);
        self.store(nest.out, nest.root, e, &out);
        self.line(&format!("scf.yield {n} : {acc_ty}"));
        self.close();
    }

    /// A scatter-add nest: zero the output, then add each value at its index.
    fn scatter(&mut self, nest: &Nest) {
        let node = self.g.node(nest.root).clone();
        let Op::ScatterAdd { value, dim, index } = node.op else {
            return;
        };
        let zero = self.const_of(node.dtype, 0.0);
        let out_dims = node.dims.clone();
        self.domain(&out_dims, None, vec![], &mut |s, env| {
            s.store(nest.out, nest.root, env, &zero);
        });
        let mut space: Vec<DimId> = out_dims.iter().copied().filter(|d| *d != dim).collect();
        for d in self
            .g
            .node(value)
            .dims
            .clone()
            .into_iter()
            .chain(self.g.node(index).dims.clone())
        {
            if !space.contains(&d) {
                space.push(d);
            }
        }
        let out = nest.out;
        let root = nest.root;
        self.domain(&space, None, vec![], &mut |s, env| {
            let i = s.value(index, env);
            let it = compute(s.g.node(index).dtype);
            let iv = s.emit_val(&format!("arith.index_cast {i} : {it} to index"));
            let z = s.idx(0);
            let size = s.dim_sizes[dim.0 as usize].clone();
            let ge = s.emit_val(&format!("arith.cmpi sge, {iv}, {z} : index"));
            let lt = s.emit_val(&format!("arith.cmpi slt, {iv}, {size} : index"));
            let inside = s.emit_val(&format!("arith.andi {ge}, {lt} : i1"));
            let v = s.value(value, env);
            s.open(format!("scf.if {inside} {{"));
            let mut coords = s.envs[env as usize].clone();
            coords.push((dim, iv, s.depth() - 1));
            let oenv = s.push_env(coords);
            let b = s.plan.buffer_of(root).unwrap_or(out);
            let old = s.load(b, root, oenv);
            let ty = compute(node.dtype);
            let add = if node.dtype.is_float() {
                "addf"
            } else {
                "addi"
            };
            let sum = s.emit_val(&format!("arith.{add} {old}, {v} : {ty}"));
            s.store(out, root, oenv, &sum);
            s.close();
        });
    }
}

/// A kernel of a sliced region: the sliced dim and the region's slice-sized buffers.
type SliceOf<'p> = (DimId, &'p [BufId]);

/// The MLIR function of one generated kernel and the C library functions it calls (`None` for
/// host steps), or why the plan cannot be translated (a compiler bug: the verifier accepted it).
fn kernel_function(
    plan: &Plan,
    k: &Kernel,
    flavor: Flavor,
    slice: Option<SliceOf<'_>>,
) -> Result<Option<(String, BTreeSet<&'static str>)>, BackendError> {
    let Kernel::Loops { name, nests, .. } = k else {
        return Ok(None);
    };
    if nests.is_empty() {
        return Err(BackendError(format!("kernel `{name}` has no loop nest")));
    }
    let mut f = Func::new(plan, flavor);
    let bufs = ftl_plan::manifest::kernel_buffers(plan, k);
    let mut params = vec![
        "%dims: memref<?xi64>".to_string(),
        "%status: memref<?xi64>".to_string(),
    ];
    if flavor != Flavor::Gpu {
        params.push("%lo: index".to_string());
        params.push("%hi: index".to_string());
    }
    for b in &bufs {
        let node = plan.graph.node(plan.buffer(*b).node);
        let arg = format!("%b{}", b.0);
        params.push(format!("{arg}: {}", memref(node.dtype, node.dims.len())));
        f.bufs.insert(*b, arg);
    }
    // Every dim size, loaded once.
    for k in 0..plan.graph.dims.len() {
        let c = f.idx(k as i64);
        let v = f.fresh();
        let _ = writeln!(
            f.prologue,
            "    {v} = memref.load %dims[{c}] : memref<?xi64>"
        );
        let s = f.fresh();
        let _ = writeln!(f.prologue, "    {s} = arith.index_cast {v} : i64 to index");
        f.dim_sizes.push(s);
    }
    // After the sizes: the slice's offset and the sliced dim's whole size.
    if let Some((d, local)) = slice {
        f.local = local.to_vec();
        let mut extra = Vec::new();
        for k in 0..2 {
            let c = f.idx((plan.graph.dims.len() + k) as i64);
            let (v, s) = (f.fresh(), f.fresh());
            let _ = writeln!(
                f.prologue,
                "    {v} = memref.load %dims[{c}] : memref<?xi64>\n    {s} = arith.index_cast {v} : i64 to index"
            );
            extra.push(s);
        }
        f.slice = Some((d, extra[0].clone(), extra[1].clone()));
    }
    let split = ftl_plan::manifest::split_dim(plan, k);
    let grid = ftl_plan::manifest::grid_dims(plan, k);
    let on_cpu = flavor == Flavor::Cpu;
    match ftl_plan::manifest::shared_domain(plan, k) {
        // GPU threads share the domain's points.
        Some(_) if !on_cpu && !grid.is_empty() => f.grid_domain(&grid, &mut |s, env| {
            for n in nests {
                s.nest_body(n, env);
            }
        }),
        // Nests of a non-tail kernel share their domain loops (a CPU thread runs a range of
        // the first).
        Some(dims) => {
            let range = split.filter(|_| on_cpu && !dims.is_empty());
            let range = range.map(|_| ("%lo".to_string(), "%hi".to_string()));
            f.domain(&dims, range, vec![], &mut |s, env| {
                for n in nests {
                    s.nest_body(n, env);
                }
            });
        }
        None => {
            for n in nests {
                if matches!(n.kind, NestKind::Scatter) {
                    f.scatter(n);
                    continue;
                }
                let dims = match n.kind {
                    NestKind::Scan => {
                        let node = plan.graph.node(n.root);
                        let Op::Scan { dim, .. } = node.op else {
                            f.fail(format!("kernel `{name}`: a scan nest's root is no scan"));
                            continue;
                        };
                        node.dims.iter().copied().filter(|d| *d != dim).collect()
                    }
                    _ => plan.graph.node(n.root).dims.clone(),
                };
                f.domain(&dims, None, vec![], &mut |s, env| s.nest_body(n, env));
            }
        }
    }
    let mut text = match flavor {
        Flavor::Cpu | Flavor::GpuOnHost => {
            format!("  func.func @{name}({}) {{\n", params.join(", "))
        }
        Flavor::Gpu => format!("    gpu.func @{name}({}) kernel {{\n", params.join(", ")),
    };
    text.push_str(&f.prologue);
    // The thread's index and the grid's thread count; a kernel without a grid runs on the
    // first thread alone.
    let single = grid.is_empty();
    if flavor != Flavor::Cpu {
        let _ = writeln!(text, "    %gpu_zero = arith.constant 0 : index");
    }
    match flavor {
        Flavor::Cpu => {}
        Flavor::Gpu => text.push_str(
            "    %gpu_block = gpu.block_id x\n    %gpu_threads = gpu.block_dim x\n    \
             %gpu_thread = gpu.thread_id x\n    %gpu_blocks = gpu.grid_dim x\n    \
             %gpu_first = arith.muli %gpu_block, %gpu_threads : index\n    \
             %gpu_tid = arith.addi %gpu_first, %gpu_thread : index\n    \
             %gpu_stride = arith.muli %gpu_blocks, %gpu_threads : index\n",
        ),
        Flavor::GpuOnHost => text.push_str(
            "    %gpu_tid = arith.addi %lo, %gpu_zero : index\n    \
             %gpu_stride = arith.addi %hi, %gpu_zero : index\n",
        ),
    }
    if flavor != Flavor::Cpu && single {
        text.push_str(
            "    %gpu_active = arith.cmpi eq, %gpu_tid, %gpu_zero : index\n    scf.if %gpu_active {\n",
        );
    }
    for l in &f.scopes[0].text {
        text.push_str("    ");
        text.push_str(l);
        text.push('\n');
    }
    if flavor != Flavor::Cpu && single {
        text.push_str("    }\n");
    }
    match flavor {
        Flavor::Cpu | Flavor::GpuOnHost => text.push_str("    func.return\n  }\n"),
        Flavor::Gpu => text.push_str("    gpu.return\n    }\n"),
    }
    match f.error {
        Some(e) => Err(BackendError(format!("kernel `{name}`: {}", e.0))),
        None => Ok(Some((text, f.libm))),
    }
}

/// The whole module: one function per generated kernel (and the prelude, if any).
pub fn module_text(plan: &Plan, prelude: Option<&Kernel>) -> Result<String, BackendError> {
    let mut out = String::from("module {\n");
    out.push_str(&functions(plan, prelude, Flavor::Cpu, "  ")?);
    out.push_str("}\n");
    Ok(out)
}

/// The GPU flavor's kernels as host functions ([`Flavor::GpuOnHost`]).
pub fn gpu_on_host_module_text(
    plan: &Plan,
    prelude: Option<&Kernel>,
) -> Result<String, BackendError> {
    let mut out = String::from("module {\n");
    out.push_str(&functions(plan, prelude, Flavor::GpuOnHost, "  ")?);
    out.push_str("}\n");
    Ok(out)
}

/// The GPU module: the same kernels as `gpu.func`s in one `gpu.module @ftl_kernels`
/// ([`Flavor::Gpu`]), for the NVVM pipeline (`crate::cuda`).
pub fn gpu_module_text(plan: &Plan, prelude: Option<&Kernel>) -> Result<String, BackendError> {
    let mut out =
        String::from("module attributes {gpu.container_module} {\n  gpu.module @ftl_kernels {\n");
    out.push_str(&functions(plan, prelude, Flavor::Gpu, "    ")?);
    out.push_str("  }\n}\n");
    Ok(out)
}

/// Every kernel's function, then the declarations of the f64 library functions they call.
fn functions(
    plan: &Plan,
    prelude: Option<&Kernel>,
    flavor: Flavor,
    indent: &str,
) -> Result<String, BackendError> {
    let mut out = String::new();
    let mut libm = BTreeSet::new();
    let mut kernels: Vec<(&Kernel, Option<SliceOf<'_>>)> = Vec::new();
    for k in prelude.into_iter().chain(&plan.kernels) {
        match k {
            Kernel::Sliced {
                dim, body, local, ..
            } => kernels.extend(body.iter().map(|b| (b, Some((*dim, local.as_slice()))))),
            _ => kernels.push((k, None)),
        }
    }
    for (k, slice) in kernels {
        if let Some((f, called)) = kernel_function(plan, k, flavor, slice)? {
            out.push_str(&f);
            libm.extend(called);
        }
    }
    for name in libm {
        let _ = writeln!(out, "{indent}func.func private @{name}(f64) -> f64");
    }
    Ok(out)
}
