//! Cranelift IR for the loop kernels of a fused plan: one function per kernel with the packed
//! signature `fn(args: *mut *mut i64)` (runtime/src/exec.rs: the dims, the status word, the
//! split loop's `lo`/`hi`, then one memref descriptor per buffer), loops as blocks with the
//! induction variable and accumulators as block parameters. Inlined nodes are recomputed where
//! they are used and cached per loop level (a value computed in an outer loop is reused inside;
//! Cranelift's mid-end hoists the rest); a gather evaluates its base at the gathered position.
//! The translation mirrors compiler/ftl-mlir/src/emit.rs op for op, so both backends compute the
//! same numbers up to summation order.

use crate::lanes;
use crate::CraneliftError;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, AbiParam, FuncRef, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{FuncId, Linkage, Module};
use ftl_ir::{BinOp, DimId, Dist, Graph, NodeId, Op, Reduction, ScanKind, UnOp};
use ftl_plan::deps::{highest, lowest, LoopDeps};
use ftl_plan::fuse::{BufId, Kernel, Nest, NestKind, Plan};
use ftl_plan::scalar_math;
use ftl_runtime::DType;
use std::collections::{HashMap, HashSet};

/// Flags of every load and store: aligned and never trapping (the executor checked every
/// buffer's shape against the plan before the call).
const MEM: MemFlagsData = MemFlagsData::trusted();

/// A coordinate environment: each dim's loop variable (an i64).
type Env = Vec<(DimId, Value)>;

/// Values computed at one loop level, keyed by node and the coordinates it depends on.
type Level = HashMap<(NodeId, Vec<Option<Value>>), Value>;

/// A loop body: the induction variable (or the environment) and the carried values in, their
/// next values out.
type Step<'a, E, At> = &'a mut dyn FnMut(&mut E, At, Vec<Value>) -> Vec<Value>;

/// One kernel function being built.
pub(crate) struct Emitter<'m, 'f> {
    /// The function builder (public to the shared math in `crate::math`).
    pub(crate) b: FunctionBuilder<'f>,
    module: &'m mut dyn Module,
    pub(crate) plan: &'m Plan,
    pub(crate) g: &'m Graph,
    /// Every dim's size (i64), loaded once.
    dims: Vec<Value>,
    /// The status word's address.
    status: Value,
    /// Each buffer's base address.
    bufs: HashMap<BufId, Value>,
    envs: Vec<Env>,
    /// Values computed per open loop level, outermost first, keyed by node and the
    /// coordinates it depends on.
    cache: Vec<Level>,
    deps: LoopDeps<'m>,
    /// The node the current nest computes (evaluated, never loaded).
    root: Option<NodeId>,
    libm: HashMap<&'static str, FuncRef>,
    /// The first problem met; emission goes on with placeholder values.
    error: Option<CraneliftError>,
    /// In a sliced region: the sliced dim, the slice's offset and the dim's whole size (the
    /// loops run over the slice's width, `dims`).
    slice: Option<(DimId, Value, Value)>,
    /// In a sliced region: the buffers that hold one slice.
    local: Vec<BufId>,
    /// The memory (see [`Plan::memory_of`]) of every buffer the kernel stores to; the others
    /// are read-only while it runs.
    written: HashSet<BufId>,
    /// Inside a loop that runs `LANES` elements at a time: its dim and the first element's
    /// position. A value is a vector only where the environment's coordinate of that dim is
    /// this position (a gather along the dim puts a scalar index there instead).
    lanes: Option<(DimId, Value)>,
    /// Whether the shared math's constants are splatted (it is evaluating vectors).
    pub(crate) splat_consts: bool,
}

/// A kernel of a sliced region: the sliced dim and the region's slice-sized buffers.
pub(crate) type SliceOf<'p> = (DimId, &'p [BufId]);

/// Declares and defines the function of loop kernel `k` in `module`.
pub(crate) fn define(
    module: &mut dyn Module,
    plan: &Plan,
    k: &Kernel,
    slice: Option<SliceOf<'_>>,
    symbol: &str,
    linkage: Linkage,
) -> Result<FuncId, CraneliftError> {
    let internal = |e: String| CraneliftError::Internal(format!("kernel `{}`: {e}", k.name()));
    let Kernel::Loops { nests, .. } = k else {
        return Err(internal("not a loop kernel".into()));
    };
    let ptr = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    sig.params.push(AbiParam::new(ptr));
    let id = module
        .declare_function(symbol, linkage, &sig)
        .map_err(|e| internal(e.to_string()))?;
    let mut ctx = module.make_context();
    ctx.func.signature = sig;
    let mut fbc = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut ctx.func, &mut fbc);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let args = b.block_params(entry)[0];
    let mut e = Emitter {
        b,
        module,
        plan,
        g: &plan.graph,
        dims: Vec::new(),
        status: args,
        bufs: HashMap::new(),
        envs: Vec::new(),
        cache: vec![HashMap::new()],
        deps: LoopDeps::new(plan),
        root: None,
        libm: HashMap::new(),
        error: None,
        slice: None,
        local: slice.map_or_else(Vec::new, |(_, l)| l.to_vec()),
        written: nests.iter().map(|n| plan.memory_of(n.out)).collect(),
        lanes: None,
        splat_consts: false,
    };
    let (lo, hi) = e.prologue(args, k, ptr);
    if let Some((d, _)) = slice {
        // After the sizes: the slice's offset and the sliced dim's whole size.
        let n = plan.graph.dims.len() as i32;
        let dims_ptr = e.dims_ptr(args, ptr);
        let offset = e.b.ins().load(types::I64, MEM, dims_ptr, n * 8);
        let whole = e.b.ins().load(types::I64, MEM, dims_ptr, n * 8 + 8);
        e.slice = Some((d, offset, whole));
    }
    e.kernel_body(nests, ftl_plan::manifest::split_dim(plan, k), lo, hi);
    e.b.ins().return_(&[]);
    let Emitter { mut b, error, .. } = e;
    b.seal_all_blocks();
    b.finalize(module.target_config());
    if let Some(err) = error {
        return Err(match err {
            CraneliftError::Internal(m) => internal(m),
            other => other,
        });
    }
    module
        .define_function(id, &mut ctx)
        .map_err(|e| internal(format!("{e:?}")))?;
    Ok(id)
}

impl Emitter<'_, '_> {
    fn fail(&mut self, e: CraneliftError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// The type `d`'s values are computed in (bool as a byte holding 0 or 1, bf16 and f16 in
    /// f32 as on the MLIR path; they are stored as their 16 bits).
    fn ty(&self, d: DType) -> Type {
        match d {
            DType::F64 => types::F64,
            DType::F32 | DType::BF16 | DType::F16 => types::F32,
            DType::I64 => types::I64,
            DType::I32 => types::I32,
            DType::Bool => types::I8,
        }
    }

    /// An integer constant of `ty`, its immediate zero-extended as Cranelift wants it.
    fn iconst(&mut self, ty: Type, v: i64) -> Value {
        let imm = match ty {
            types::I8 => i64::from(v as u8),
            types::I32 => i64::from(v as u32),
            _ => v,
        };
        self.b.ins().iconst(ty, imm)
    }

    fn const_of(&mut self, d: DType, v: f64) -> Value {
        match d {
            DType::F64 => self.b.ins().f64const(v),
            DType::Bool => self.iconst(types::I8, i64::from(v != 0.0)),
            DType::I64 | DType::I32 => {
                let t = self.ty(d);
                self.iconst(t, v as i64)
            }
            DType::F32 | DType::BF16 | DType::F16 => self.b.ins().f32const(v as f32),
        }
    }

    /// The i64 in the cell `args[i]` points at.
    fn cell(&mut self, args: Value, ptr: Type, i: usize) -> Value {
        let at = self.b.ins().load(ptr, MEM, args, (i * 8) as i32);
        self.b.ins().load(types::I64, MEM, at, 0)
    }

    /// The address of the dims array (the first descriptor's aligned pointer).
    fn dims_ptr(&mut self, args: Value, ptr: Type) -> Value {
        self.cell(args, ptr, 1)
    }

    /// Reads the packed arguments: dims, status, `lo`/`hi`, each buffer's aligned pointer.
    fn prologue(&mut self, args: Value, k: &Kernel, ptr: Type) -> (Value, Value) {
        let dims_ptr = self.dims_ptr(args, ptr);
        self.status = self.cell(args, ptr, 6);
        let lo = self.cell(args, ptr, 10);
        let hi = self.cell(args, ptr, 11);
        let mut at = 12;
        for b in ftl_plan::manifest::kernel_buffers(self.plan, k) {
            let rank = self.g.node(self.plan.buffer(b).node).dims.len();
            let base = self.cell(args, ptr, at + 1);
            self.bufs.insert(b, base);
            at += 3 + 2 * rank;
        }
        for d in 0..self.g.dims.len() {
            let s = self.b.ins().load(types::I64, MEM, dims_ptr, (d * 8) as i32);
            self.dims.push(s);
        }
        (lo, hi)
    }

    fn env_coord(&self, env: usize, d: DimId) -> Option<Value> {
        self.envs[env]
            .iter()
            .rev()
            .find(|(x, _)| *x == d)
            .map(|(_, v)| *v)
    }

    fn push_env(&mut self, coords: Env) -> usize {
        self.envs.push(coords);
        self.envs.len() - 1
    }

    /// The loop dims a node's value depends on (`ftl_plan::deps`).
    pub(crate) fn deps_of(&mut self, id: NodeId) -> Vec<DimId> {
        self.deps.of(id)
    }

    /// The address of element `flat` (row-major) of buffer `b` holding `dtype`.
    fn address(&mut self, b: BufId, dtype: DType, flat: Value) -> Value {
        let base = self.bufs[&b];
        let size = dtype.size_bytes() as i64;
        let offset = self.b.ins().imul_imm_s(flat, size);
        self.b.ins().iadd(base, offset)
    }

    /// The row-major offset, in `dims`, of `env`'s coordinates (0 for a dim `env` lacks).
    fn flat_index(&mut self, dims: &[DimId], env: usize) -> Value {
        let mut flat = self.iconst(types::I64, 0);
        for d in dims {
            let size = self.dims[d.0 as usize];
            let c = match self.env_coord(env, *d) {
                Some(c) => c,
                None => self.iconst(types::I64, 0),
            };
            let scaled = self.b.ins().imul(flat, size);
            flat = self.b.ins().iadd(scaled, c);
        }
        flat
    }

    fn load_flat(&mut self, b: BufId, node: NodeId, flat: Value, mem: MemFlagsData) -> Value {
        let dtype = self.g.node(node).dtype;
        let ty = self.ty(dtype);
        let addr = self.address(b, dtype, flat);
        if dtype == DType::BF16 {
            // A bf16 is the high half of the f32 with the same value.
            let half = self.b.ins().load(types::I16, mem, addr, 0);
            let wide = self.b.ins().uextend(types::I32, half);
            let bits = self.b.ins().ishl_imm_s(wide, 16);
            return self.b.ins().bitcast(types::F32, MemFlagsData::new(), bits);
        }
        if dtype == DType::F16 {
            let half = self.b.ins().load(types::I16, mem, addr, 0);
            let wide = self.b.ins().uextend(types::I32, half);
            return self.f16_to_f32(wide);
        }
        self.b.ins().load(ty, mem, addr, 0)
    }

    /// The flags of a load of buffer `b` at coordinates of the loops (always in bounds): one of
    /// memory the kernel never writes may move, so Cranelift hoists it out of the loops over
    /// dims it does not depend on (a row's label or log-normalizer read once per row, not
    /// once per vocabulary element).
    fn coordinate_load(&self, b: BufId, flags: MemFlagsData) -> MemFlagsData {
        if self.written.contains(&self.plan.memory_of(b)) {
            flags
        } else {
            flags.with_readonly().with_can_move()
        }
    }

    /// The f32 `v` rounded to bf16 as PyTorch rounds (to nearest, ties to even; a NaN stays a
    /// quiet NaN), as the bits of the f32 that holds it (low half zero), in integer arithmetic
    /// as compiler/ftl-mlir/src/emit.rs computes it.
    fn bf16_bits(&mut self, v: Value) -> Value {
        let bits = self.b.ins().bitcast(types::I32, MemFlagsData::new(), v);
        let shifted = self.b.ins().ushr_imm_s(bits, 16);
        let lsb = self.b.ins().band_imm_s(shifted, 1);
        let biased = self.b.ins().iadd_imm_s(bits, 0x7FFF);
        let rounded = self.b.ins().iadd(biased, lsb);
        let nan_bits = self.b.ins().bor_imm_s(bits, 0x0040_0000);
        let is_nan = self.b.ins().fcmp(FloatCC::Unordered, v, v);
        let chosen = self.b.ins().select(is_nan, nan_bits, rounded);
        self.b.ins().band_imm_s(chosen, -65536)
    }

    /// Rounds an f32-computed result to its dtype (bf16, f16: to the nearest value of it).
    fn round(&mut self, d: DType, v: Value) -> Value {
        match d {
            DType::BF16 => {
                let bits = self.bf16_bits(v);
                self.b.ins().bitcast(types::F32, MemFlagsData::new(), bits)
            }
            DType::F16 => {
                let bits = self.f32_to_f16(v);
                self.f16_to_f32(bits)
            }
            _ => v,
        }
    }

    /// Loads a buffer element at the coordinates of `env` (four contiguous elements when the
    /// buffer runs along the vectorized dim).
    fn load(&mut self, b: BufId, node: NodeId, env: usize) -> Value {
        let n = self.g.node(node);
        let (dims, dtype) = (n.dims.clone(), n.dtype);
        let flat = self.flat_index(&dims, env);
        if self.along_lanes(&dims, env) {
            let t = lanes::vector_of(self.ty(dtype));
            let addr = self.address(b, dtype, flat);
            let mem = self.coordinate_load(b, lanes::vector_mem());
            return self.b.ins().load(t, mem, addr, 0);
        }
        let mem = self.coordinate_load(b, MEM);
        self.load_flat(b, node, flat, mem)
    }

    /// Whether a buffer over `dims` is read four at a time at `env`: it runs along the vector
    /// loop's dim and `env` is at the loop's position there.
    fn along_lanes(&self, dims: &[DimId], env: usize) -> bool {
        self.lanes
            .is_some_and(|(d, iv)| dims.contains(&d) && self.env_coord(env, d) == Some(iv))
    }

    /// Stores a computed value into a buffer at `env`'s coordinates.
    fn store(&mut self, b: BufId, node: NodeId, env: usize, v: Value) {
        let n = self.g.node(node);
        let (dims, dtype) = (n.dims.clone(), n.dtype);
        let flat = self.flat_index(&dims, env);
        let addr = self.address(b, dtype, flat);
        if self.along_lanes(&dims, env) {
            let t = lanes::vector_of(self.ty(dtype));
            let v = self.splat(v, t);
            self.b.ins().store(lanes::vector_mem(), v, addr, 0);
            return;
        }
        let v = match dtype {
            DType::BF16 => {
                let bits = self.bf16_bits(v);
                let high = self.b.ins().ushr_imm_s(bits, 16);
                self.b.ins().ireduce(types::I16, high)
            }
            DType::F16 => {
                let bits = self.f32_to_f16(v);
                self.b.ins().ireduce(types::I16, bits)
            }
            _ => v,
        };
        self.b.ins().store(MEM, v, addr, 0);
    }

    /// The value of `id` at `env`: a load if it is materialized (and not the nest's root),
    /// else its op evaluated from its operands; reused while its coordinates are in scope.
    fn value(&mut self, id: NodeId, env: usize) -> Value {
        let deps = self.deps_of(id);
        let coords: Vec<Option<Value>> = deps.iter().map(|d| self.env_coord(env, *d)).collect();
        let key = (id, coords);
        if let Some(v) = self.cache.iter().rev().find_map(|c| c.get(&key).copied()) {
            return v;
        }
        let constant = matches!(self.g.node(id).op, Op::Const(_));
        let v = match self.plan.buffer_of(id) {
            Some(b) if Some(id) != self.root && !constant => self.load(b, id, env),
            _ => self.compute(id, env),
        };
        if let Some(level) = self.cache.last_mut() {
            level.insert(key, v);
        }
        v
    }

    /// A loop from `lo` to `hi` carrying `carried`; `body` gets the induction variable and the
    /// carried values and returns their next values. Returns the carried values at the exit.
    fn loop_over(
        &mut self,
        lo: Value,
        hi: Value,
        carried: Vec<Value>,
        body: Step<'_, Self, Value>,
    ) -> Vec<Value> {
        self.loop_range(lo, hi, 1, carried, body).1
    }

    /// A loop from `lo` while `iv < hi`, `iv += step`; returns the first `iv` that failed the
    /// test and the carried values at the exit.
    ///
    /// It is laid out guarded and bottom-tested (`if lo < hi { do { … } while iv < hi }`): the
    /// body is the loop's header and the exit is dominated by the guard, outside the loop.
    /// Cranelift's loop-invariant code motion (egraph elaboration, in the version pinned) loses
    /// the loop when it elaborates a header's dominator-tree child that is outside the loop
    /// before the body, as it does for a top-tested loop's exit; with this layout every block the
    /// header dominates is in the loop, so invariant values (a row's label, normalizer and
    /// coefficients, the row's offset, the math's vector constants) are computed once per row.
    fn loop_range(
        &mut self,
        lo: Value,
        hi: Value,
        step: i64,
        carried: Vec<Value>,
        body: Step<'_, Self, Value>,
    ) -> (Value, Vec<Value>) {
        let types: Vec<Type> = carried
            .iter()
            .map(|v| self.b.func.dfg.value_type(*v))
            .collect();
        let (inside, exit) = (self.b.create_block(), self.b.create_block());
        for block in [inside, exit] {
            self.b.append_block_param(block, types::I64);
            for t in &types {
                self.b.append_block_param(block, *t);
            }
        }
        let start: Vec<_> = std::iter::once(lo).chain(carried).map(Into::into).collect();
        let any = self.b.ins().icmp(IntCC::SignedLessThan, lo, hi);
        self.b.ins().brif(any, inside, &start, exit, &start);
        self.b.switch_to_block(inside);
        let params = self.b.block_params(inside).to_vec();
        let (iv, state) = (params[0], params[1..].to_vec());
        self.cache.push(HashMap::new());
        let next = body(self, iv, state);
        self.cache.pop();
        let next_iv = self.b.ins().iadd_imm_s(iv, step);
        let back: Vec<_> = std::iter::once(next_iv)
            .chain(next)
            .map(Into::into)
            .collect();
        let more = self.b.ins().icmp(IntCC::SignedLessThan, next_iv, hi);
        self.b.ins().brif(more, inside, &back, exit, &back);
        self.b.switch_to_block(exit);
        let params = self.b.block_params(exit).to_vec();
        (params[0], params[1..].to_vec())
    }

    /// Loops over `dims` (the first over `split` when given), then `body` at each point; the
    /// last dim runs `LANES` at a time, then one at a time, when it is `vector`.
    fn domain(
        &mut self,
        dims: &[DimId],
        split: Option<(Value, Value)>,
        coords: Env,
        vector: Option<DimId>,
        body: &mut dyn FnMut(&mut Self, usize),
    ) {
        if dims.is_empty() {
            let env = self.push_env(coords);
            body(self, env);
            return;
        }
        let d = dims[0];
        let (lo, hi) = match split {
            Some(r) => r,
            None => (self.iconst(types::I64, 0), self.dims[d.0 as usize]),
        };
        let lo = if dims.len() == 1 && vector == Some(d) {
            let last = self.b.ins().iadd_imm_s(hi, 1 - lanes::LANES);
            let (rest, _) = self.loop_range(lo, last, lanes::LANES, Vec::new(), &mut |s, iv, _| {
                let mut c = coords.clone();
                c.push((d, iv));
                s.lanes = Some((d, iv));
                s.domain(&[], None, c, None, body);
                s.lanes = None;
                Vec::new()
            });
            rest
        } else {
            lo
        };
        self.loop_over(lo, hi, Vec::new(), &mut |s, iv, _| {
            let mut c = coords.clone();
            c.push((d, iv));
            s.domain(&dims[1..], None, c, vector, body);
            Vec::new()
        });
    }

    /// The nests of a kernel: nests over one domain share its loops, others run one by one.
    fn kernel_body(&mut self, nests: &[Nest], split: Option<DimId>, lo: Value, hi: Value) {
        let Some(first) = nests.first() else {
            self.fail(CraneliftError::Internal(
                "a kernel with no loop nest".into(),
            ));
            return;
        };
        let first_dims = self.nest_dims(first);
        let shared = nests.len() > 1
            && nests.iter().all(|n| {
                matches!(n.kind, NestKind::Map | NestKind::Reduce { .. })
                    && self.g.node(n.root).dims == first_dims
            });
        if shared || (nests.len() == 1 && !matches!(nests[0].kind, NestKind::Scatter)) {
            let range = split.filter(|_| !first_dims.is_empty()).map(|_| (lo, hi));
            let vector = self.map_vector_dim(nests, &first_dims);
            self.domain(&first_dims, range, Vec::new(), vector, &mut |s, env| {
                for n in nests {
                    s.nest_body(n, env);
                }
            });
        } else {
            for n in nests {
                if matches!(n.kind, NestKind::Scatter) {
                    self.scatter(n);
                    continue;
                }
                let dims = self.nest_dims(n);
                let vector = self.map_vector_dim(std::slice::from_ref(n), &dims);
                self.domain(&dims, None, Vec::new(), vector, &mut |s, env| {
                    s.nest_body(n, env)
                });
            }
        }
    }

    /// The dim a domain of map nests runs `LANES` at a time: its last, when every nest is a
    /// map whose values all have a vector form (see crate::lanes) and no region is sliced.
    fn map_vector_dim(&mut self, nests: &[Nest], dims: &[DimId]) -> Option<DimId> {
        let d = *dims.last()?;
        // Stored four at a time: f32 or i32 roots only (a bool is a byte in memory).
        let ok = self.slice.is_none()
            && nests.iter().all(|n| {
                let root = self.g.node(n.root);
                matches!(n.kind, NestKind::Map)
                    && matches!(root.dtype, DType::F32 | DType::I32)
                    && root.dims.last() == Some(&d)
                    && self.vectorizable(n.root, d, n.root)
            });
        ok.then_some(d)
    }

    /// A nest's loop dims (a scan's without its scanned dim).
    fn nest_dims(&self, n: &Nest) -> Vec<DimId> {
        let node = self.g.node(n.root);
        match (&n.kind, &node.op) {
            (NestKind::Scan, Op::Scan { dim, .. }) => {
                node.dims.iter().copied().filter(|d| d != dim).collect()
            }
            _ => node.dims.clone(),
        }
    }

    /// The body of one nest at the point `env` of its domain.
    fn nest_body(&mut self, nest: &Nest, env: usize) {
        let root = nest.root;
        let node = self.g.node(root).clone();
        self.root = Some(root);
        match &nest.kind {
            NestKind::Map => {
                let v = self.compute(root, env);
                let v = if self.local.contains(&nest.out) && node.dtype == DType::F32 {
                    self.flush_subnormal(v)
                } else {
                    v
                };
                self.store(nest.out, root, env, v);
            }
            NestKind::Reduce { op, inner } => {
                let operand = match node.op {
                    Op::Reduce(_, a) => a,
                    _ => root, // a contraction: the product at each point is computed inline
                };
                let v = self.reduce(*op, operand, inner, env, node.dtype, root);
                let v = match self.slice {
                    Some((d, _, _)) if inner.contains(&d) => {
                        let old = self.load(nest.out, root, env);
                        self.combine(*op, old, v, node.dtype)
                    }
                    _ => v,
                };
                self.store(nest.out, root, env, v);
            }
            NestKind::Scan => self.scan(nest, env),
            NestKind::Scatter => {}
        }
        self.root = None;
    }

    /// `v` with a subnormal value flushed to zero (sign kept), as the MLIR backend stores a
    /// slice (compiler/ftl-mlir/src/emit.rs: subnormal GEMM operands cost microcode assists).
    fn flush_subnormal(&mut self, v: Value) -> Value {
        let a = self.b.ins().fabs(v);
        let tiny = self.b.ins().f32const(f32::MIN_POSITIVE);
        let small = self.b.ins().fcmp(FloatCC::LessThan, a, tiny);
        let zero = self.b.ins().f32const(0.0);
        let signed = self.b.ins().fcopysign(zero, v);
        self.b.ins().select(small, signed, v)
    }

    /// A dim's whole size: in a sliced region the sliced dim's loops cover one slice, while
    /// `size`, iota positions and gather bounds mean the whole dim.
    fn whole_size(&self, d: DimId) -> Value {
        match self.slice {
            Some((sd, _, whole)) if sd == d => whole,
            _ => self.dims[d.0 as usize],
        }
    }

    /// A reduction's value over earlier slices (`old`) combined with this slice's.
    fn combine(&mut self, op: Reduction, old: Value, part: Value, dt: DType) -> Value {
        let v = self.combined(op, old, part, dt);
        self.round(dt, v)
    }

    fn combined(&mut self, op: Reduction, old: Value, part: Value, dt: DType) -> Value {
        let ins = self.b.ins();
        match (op, dt.is_float()) {
            (Reduction::Sum, true) => ins.fadd(old, part),
            (Reduction::Sum, false) => ins.iadd(old, part),
            (Reduction::Max, true) => self.nan_propagating_extremum(true, old, part),
            (Reduction::Max, false) => ins.smax(old, part),
            (Reduction::Min, true) => self.nan_propagating_extremum(false, old, part),
            (Reduction::Min, false) => ins.smin(old, part),
            (Reduction::Any, _) => ins.bor(old, part),
            (Reduction::All, _) => ins.band(old, part),
            (Reduction::LogSumExp, _) => {
                // log(e^a + e^b) = m + log(e^(a−m) + e^(b−m)), m = max(a, b).
                let m = self.nan_propagating_extremum(true, old, part);
                let da = self.b.ins().fsub(old, m);
                let db = self.b.ins().fsub(part, m);
                let ea = self.unary_float(UnOp::Exp, da, dt);
                let eb = self.unary_float(UnOp::Exp, db, dt);
                let s = self.b.ins().fadd(ea, eb);
                self.lse_finish(m, s, dt)
            }
            (Reduction::ArgMax, _) => {
                self.fail(CraneliftError::Unsupported(
                    "an argmax over a sliced dim".into(),
                ));
                old
            }
        }
    }

    /// `m + log(s)`, or `m` itself when it is infinite (all −∞, or an inf).
    fn lse_finish(&mut self, m: Value, s: Value, dt: DType) -> Value {
        let l = self.unary_float(UnOp::Log, s, dt);
        let r = self.b.ins().fadd(m, l);
        let a = self.b.ins().fabs(m);
        let inf = self.const_of(dt, f64::INFINITY);
        let finite = self.b.ins().fcmp(FloatCC::LessThan, a, inf);
        self.b.ins().select(finite, r, m)
    }

    /// A reduction over `inner` at `env`, in the node's type.
    fn reduce(
        &mut self,
        op: Reduction,
        operand: NodeId,
        inner: &[DimId],
        env: usize,
        out_dt: DType,
        root: NodeId,
    ) -> Value {
        let in_dt = if operand == root {
            out_dt
        } else {
            self.g.node(operand).dtype
        };
        let eval = move |s: &mut Self, env: usize| {
            if operand == root {
                s.compute(root, env)
            } else {
                s.value(operand, env)
            }
        };
        if op == Reduction::ArgMax {
            return self.argmax(inner, env, in_dt, out_dt, &eval);
        }
        // A float sum, max, min or logsumexp runs its last dim four lanes at a time when the
        // operand has a vector form along it.
        let vector = inner.last().copied().filter(|d| {
            in_dt == DType::F32
                && matches!(
                    op,
                    Reduction::Sum | Reduction::Max | Reduction::Min | Reduction::LogSumExp
                )
                && self.vectorizable(operand, *d, root)
        });
        // A logsumexp takes two sweeps: the maximum, then the sum of exponentials shifted by it.
        let first = if op == Reduction::LogSumExp {
            Reduction::Max
        } else {
            op
        };
        let init = self.identity(first, in_dt);
        let acc = self.fold_lanes(inner, env, init, first, vector, &eval);
        if op != Reduction::LogSumExp {
            return acc;
        }
        let m = acc;
        let zero = self.const_of(in_dt, 0.0);
        let shifted_exp = move |s: &mut Self, env: usize| {
            let x = eval(s, env);
            let (x, m) = s.align(x, m);
            let diff = s.b.ins().fsub(x, m);
            s.splat_consts = s.is_vector(diff);
            let e = s.unary_float(UnOp::Exp, diff, in_dt);
            s.splat_consts = false;
            e
        };
        let sum = self.fold_lanes(inner, env, zero, Reduction::Sum, vector, &shifted_exp);
        self.lse_finish(m, sum, in_dt)
    }

    /// The identity of a reduction over values of `dt` (a max's is the type's least value).
    fn identity(&mut self, op: Reduction, dt: DType) -> Value {
        match op {
            Reduction::Max | Reduction::LogSumExp | Reduction::ArgMax => {
                self.const_of(dt, lowest(dt))
            }
            Reduction::Min => self.const_of(dt, highest(dt)),
            Reduction::Any => self.iconst(types::I8, 0),
            Reduction::All => self.iconst(types::I8, 1),
            Reduction::Sum => self.const_of(dt, 0.0),
        }
    }

    /// A reduction of `elem` over `dims` from `acc` by `op` (a sum, max, min, any or all), one
    /// element at a time; the last dim, when it is `vector` (f32 only), first `lanes::UNROLL`
    /// vectors at a time into as many vector accumulators, combined and folded into `acc` lane
    /// by lane, then the remaining elements one at a time.
    fn fold_lanes(
        &mut self,
        dims: &[DimId],
        env: usize,
        acc: Value,
        op: Reduction,
        vector: Option<DimId>,
        elem: &dyn Fn(&mut Self, usize) -> Value,
    ) -> Value {
        if dims.is_empty() {
            let x = elem(self, env);
            return self.combine_step(op, acc, x);
        }
        let d = dims[0];
        let (lo, hi) = (self.iconst(types::I64, 0), self.dims[d.0 as usize]);
        let (lo, acc) = if dims.len() == 1 && vector == Some(d) {
            let last = self.b.ins().iadd_imm_s(hi, 1 - lanes::STEP);
            let identity = self.identity(op, DType::F32);
            let start = self.b.ins().splat(types::F32X4, identity);
            let starts = vec![start; lanes::UNROLL as usize];
            // One accumulator per vector of an iteration, combined after the loop.
            let (rest, accs) = self.loop_range(lo, last, lanes::STEP, starts, &mut |s, iv, a| {
                let mut next = Vec::new();
                for (k, acc) in (0..).zip(a) {
                    let pos = s.b.ins().iadd_imm_s(iv, k * lanes::LANES);
                    let mut coords = s.envs[env].clone();
                    coords.push((d, pos));
                    let at = s.push_env(coords);
                    s.lanes = Some((d, pos));
                    let x = elem(s, at);
                    s.lanes = None;
                    next.push(s.combine_step(op, acc, x));
                }
                next
            });
            let mut folded = accs[0];
            for a in &accs[1..] {
                folded = self.combine_step(op, folded, *a);
            }
            let h = self.horizontal(op, folded);
            (rest, self.combine_step(op, acc, h))
        } else {
            (lo, acc)
        };
        self.loop_over(lo, hi, vec![acc], &mut |s, iv, a| {
            let mut coords = s.envs[env].clone();
            coords.push((d, iv));
            let at = s.push_env(coords);
            vec![s.fold_lanes(&dims[1..], at, a[0], op, vector, elem)]
        })[0]
    }

    /// One step of a reduction: `acc` combined with `x` (a scalar broadcast to meet a vector),
    /// in the arithmetic of their type.
    pub(crate) fn combine_step(&mut self, op: Reduction, acc: Value, x: Value) -> Value {
        let (acc, x) = self.align(acc, x);
        let dt = match self.b.func.dfg.value_type(acc).lane_type() {
            types::F64 => DType::F64,
            types::F32 => DType::F32,
            types::I64 => DType::I64,
            types::I32 => DType::I32,
            _ => DType::Bool,
        };
        self.combined(op, acc, x, dt)
    }

    /// The first index of the largest value along `inner[0]` (NaN counts as largest).
    fn argmax(
        &mut self,
        inner: &[DimId],
        env: usize,
        in_dt: DType,
        out_dt: DType,
        eval: &dyn Fn(&mut Self, usize) -> Value,
    ) -> Value {
        let d = inner[0];
        let init = self.identity(Reduction::ArgMax, in_dt);
        let (lo, hi) = (self.iconst(types::I64, 0), self.dims[d.0 as usize]);
        let at0 = self.iconst(types::I64, 0);
        let res = self.loop_over(lo, hi, vec![init, at0], &mut |s, iv, acc| {
            let (best, at) = (acc[0], acc[1]);
            let mut coords = s.envs[env].clone();
            coords.push((d, iv));
            let e = s.push_env(coords);
            let x = eval(s, e);
            let better = if in_dt.is_float() {
                let gt = s.b.ins().fcmp(FloatCC::GreaterThan, x, best);
                let xn = s.b.ins().fcmp(FloatCC::Unordered, x, x);
                let bn = s.b.ins().fcmp(FloatCC::Ordered, best, best);
                let nan_first = s.b.ins().band(xn, bn);
                s.b.ins().bor(gt, nan_first)
            } else {
                s.b.ins().icmp(IntCC::SignedGreaterThan, x, best)
            };
            let nb = s.b.ins().select(better, x, best);
            let na = s.b.ins().select(better, iv, at);
            vec![nb, na]
        });
        self.convert(res[1], DType::I64, out_dt)
    }

    /// A running sum or product along the scan dim at `env`, accumulated in f64 for floats
    /// as the interpreter does.
    fn scan(&mut self, nest: &Nest, env: usize) {
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
        let acc_dt = if dt.is_float() { DType::F64 } else { dt };
        let init = self.const_of(acc_dt, if kind == ScanKind::Sum { 0.0 } else { 1.0 });
        let (lo, hi) = (self.iconst(types::I64, 0), self.dims[dim.0 as usize]);
        self.loop_over(lo, hi, vec![init], &mut |s, iv, acc| {
            let pos = if reverse {
                let last = s.b.ins().iadd_imm_s(hi, -1);
                s.b.ins().isub(last, iv)
            } else {
                iv
            };
            let mut coords = s.envs[env].clone();
            coords.push((dim, pos));
            let e = s.push_env(coords);
            let v = s.value(x, e);
            let xd = s.g.node(x).dtype;
            let v = s.convert(v, xd, acc_dt);
            let n = match (kind, acc_dt.is_float()) {
                (ScanKind::Sum, true) => s.b.ins().fadd(acc[0], v),
                (ScanKind::Prod, true) => s.b.ins().fmul(acc[0], v),
                (ScanKind::Sum, false) => s.b.ins().iadd(acc[0], v),
                (ScanKind::Prod, false) => s.b.ins().imul(acc[0], v),
            };
            let out = s.convert(n, acc_dt, dt);
            let out = s.round(dt, out);
            s.store(nest.out, nest.root, e, out);
            vec![n]
        });
    }

    /// A scatter-add nest: zero the output, then add each value at its index.
    fn scatter(&mut self, nest: &Nest) {
        let node = self.g.node(nest.root).clone();
        let Op::ScatterAdd { value, dim, index } = node.op else {
            return;
        };
        let (out, root, dtype) = (nest.out, nest.root, node.dtype);
        let out_dims = node.dims.clone();
        self.domain(&out_dims, None, Vec::new(), None, &mut |s, env| {
            let zero = s.const_of(dtype, 0.0);
            s.store(out, root, env, zero);
        });
        let mut space: Vec<DimId> = out_dims.iter().copied().filter(|d| *d != dim).collect();
        for d in self
            .g
            .node(value)
            .dims
            .iter()
            .chain(&self.g.node(index).dims)
        {
            if !space.contains(d) {
                space.push(*d);
            }
        }
        self.domain(&space, None, Vec::new(), None, &mut |s, env| {
            let i = s.value(index, env);
            let it = s.g.node(index).dtype;
            let iv = s.convert(i, it, DType::I64);
            let size = s.dims[dim.0 as usize];
            let inside = s.in_range(iv, size);
            let v = s.value(value, env);
            let (then, join) = (s.b.create_block(), s.b.create_block());
            s.b.ins().brif(inside, then, &[], join, &[]);
            s.b.switch_to_block(then);
            let mut coords = s.envs[env].clone();
            coords.push((dim, iv));
            let oenv = s.push_env(coords);
            let b = s.plan.buffer_of(root).unwrap_or(out);
            let old = s.load(b, root, oenv);
            let sum = if dtype.is_float() {
                s.b.ins().fadd(old, v)
            } else {
                s.b.ins().iadd(old, v)
            };
            s.store(out, root, oenv, sum);
            s.b.ins().jump(join, &[]);
            s.b.switch_to_block(join);
        });
    }

    /// Whether the i64 `i` is in `[0, size)`.
    fn in_range(&mut self, i: Value, size: Value) -> Value {
        let ge = self
            .b
            .ins()
            .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, i, 0);
        let lt = self.b.ins().icmp(IntCC::SignedLessThan, i, size);
        self.b.ins().band(ge, lt)
    }

    /// `name(args…)` of the C library (f64, or f32 for `powf`).
    fn call(&mut self, name: &'static str, args: &[Value], ty: Type) -> Value {
        let f = match self.libm.get(name) {
            Some(f) => *f,
            None => {
                let mut sig = self.module.make_signature();
                for _ in args {
                    sig.params.push(AbiParam::new(ty));
                }
                sig.returns.push(AbiParam::new(ty));
                let f = match self.module.declare_function(name, Linkage::Import, &sig) {
                    Ok(id) => self.module.declare_func_in_func(id, self.b.func),
                    Err(e) => {
                        self.fail(CraneliftError::Internal(format!("declaring {name}: {e}")));
                        return args[0];
                    }
                };
                self.libm.insert(name, f);
                f
            }
        };
        let call = self.b.ins().call(f, args);
        self.b.inst_results(call)[0]
    }

    fn convert(&mut self, v: Value, from: DType, to: DType) -> Value {
        let (f, t) = (self.ty(from), self.ty(to));
        if f == t
            && from.is_float() == to.is_float()
            && (from == DType::Bool) == (to == DType::Bool)
        {
            return v;
        }
        let ins = self.b.ins();
        match (from, to) {
            (a, b) if a.is_float() && b.is_float() => {
                if f == types::F64 {
                    ins.fdemote(t, v)
                } else {
                    ins.fpromote(t, v)
                }
            }
            (DType::Bool, b) if b.is_float() => ins.fcvt_from_uint(t, v),
            (DType::Bool, _) => ins.uextend(t, v),
            (a, DType::Bool) if a.is_float() => {
                let z = if f == types::F64 {
                    self.b.ins().f64const(0.0)
                } else {
                    self.b.ins().f32const(0.0)
                };
                self.b.ins().fcmp(FloatCC::NotEqual, v, z)
            }
            (_, DType::Bool) => ins.icmp_imm_s(IntCC::NotEqual, v, 0),
            (a, b) if a.is_int() && b.is_float() => ins.fcvt_from_sint(t, v),
            (a, _) if a.is_float() => ins.fcvt_to_sint_sat(t, v),
            _ => {
                if f == types::I64 {
                    ins.ireduce(t, v)
                } else {
                    ins.sextend(t, v)
                }
            }
        }
    }

    fn unary_float(&mut self, op: UnOp, x: Value, dt: DType) -> Value {
        if dt == DType::F64 {
            // The C library's f64 functions, as the MLIR backend calls them.
            let lib = |s: &mut Self, name: &'static str, x: Value| s.call(name, &[x], types::F64);
            return match op {
                UnOp::Exp => lib(self, "exp", x),
                UnOp::Log => lib(self, "log", x),
                UnOp::Log1p => lib(self, "log1p", x),
                UnOp::Expm1 => lib(self, "expm1", x),
                UnOp::Tanh => lib(self, "tanh", x),
                UnOp::Erf => lib(self, "erf", x),
                UnOp::Sin => lib(self, "sin", x),
                UnOp::Cos => lib(self, "cos", x),
                UnOp::Sigmoid => {
                    let nx = self.b.ins().fneg(x);
                    let e = lib(self, "exp", nx);
                    let one = self.b.ins().f64const(1.0);
                    let d = self.b.ins().fadd(one, e);
                    self.b.ins().fdiv(one, d)
                }
                UnOp::Softplus | UnOp::LogSigmoid => {
                    let xin = if op == UnOp::LogSigmoid {
                        self.b.ins().fneg(x)
                    } else {
                        x
                    };
                    let ax = self.b.ins().fabs(xin);
                    let nax = self.b.ins().fneg(ax);
                    let e = lib(self, "exp", nax);
                    let l = lib(self, "log1p", e);
                    let z = self.b.ins().f64const(0.0);
                    let m = self.b.ins().fmax(xin, z);
                    let sp = self.b.ins().fadd(m, l);
                    if op == UnOp::LogSigmoid {
                        self.b.ins().fneg(sp)
                    } else {
                        sp
                    }
                }
                UnOp::Log1mexp => {
                    let em = lib(self, "expm1", x);
                    let nem = self.b.ins().fneg(em);
                    let a = lib(self, "log", nem);
                    let e = lib(self, "exp", x);
                    let ne = self.b.ins().fneg(e);
                    let b = lib(self, "log1p", ne);
                    let t = self.b.ins().f64const(-std::f64::consts::LN_2);
                    let c = self.b.ins().fcmp(FloatCC::GreaterThan, x, t);
                    self.b.ins().select(c, a, b)
                }
                _ => self.unary_common(op, x, dt),
            };
        }
        match op {
            UnOp::Exp => scalar_math::exp(self, &x),
            UnOp::Log => scalar_math::log(self, &x),
            UnOp::Log1p => scalar_math::log1p(self, &x),
            UnOp::Expm1 => scalar_math::expm1(self, &x),
            UnOp::Tanh => scalar_math::tanh(self, &x),
            UnOp::Sigmoid => scalar_math::sigmoid(self, &x),
            UnOp::Softplus => scalar_math::softplus(self, &x),
            UnOp::LogSigmoid => {
                let nx = self.b.ins().fneg(x);
                let sp = scalar_math::softplus(self, &nx);
                self.b.ins().fneg(sp)
            }
            UnOp::Log1mexp => scalar_math::log1mexp(self, &x),
            UnOp::Erf => scalar_math::erf(self, &x),
            UnOp::Sin => scalar_math::sin_cos(self, &x, false),
            UnOp::Cos => scalar_math::sin_cos(self, &x, true),
            _ => self.unary_common(op, x, dt),
        }
    }

    fn unary_common(&mut self, op: UnOp, x: Value, dt: DType) -> Value {
        match op {
            UnOp::Neg => self.b.ins().fneg(x),
            UnOp::Sqrt => self.b.ins().sqrt(x),
            UnOp::Rsqrt => {
                let s = self.b.ins().sqrt(x);
                let one = self.const_of(dt, 1.0);
                let one = self.const_like(x, one);
                self.b.ins().fdiv(one, s)
            }
            UnOp::Abs => self.b.ins().fabs(x),
            UnOp::Floor => self.b.ins().floor(x),
            UnOp::Ceil => self.b.ins().ceil(x),
            UnOp::Round => self.b.ins().nearest(x),
            UnOp::Relu => {
                let z = self.const_of(dt, 0.0);
                let z = self.const_like(x, z);
                let c = self.b.ins().fcmp(FloatCC::GreaterThan, x, z);
                self.choose(c, x, z)
            }
            UnOp::Sign => {
                let (z, one, m1) = (
                    self.const_of(dt, 0.0),
                    self.const_of(dt, 1.0),
                    self.const_of(dt, -1.0),
                );
                let z = self.const_like(x, z);
                let pos = self.b.ins().fcmp(FloatCC::GreaterThan, x, z);
                let neg = self.b.ins().fcmp(FloatCC::LessThan, x, z);
                let a = self.choose(neg, m1, x);
                self.choose(pos, one, a)
            }
            _ => x,
        }
    }

    fn unary_int(&mut self, op: UnOp, x: Value, dt: DType) -> Value {
        let ty = self.ty(dt);
        match op {
            UnOp::Neg => self.b.ins().ineg(x),
            UnOp::Not => self.b.ins().bxor_imm_s(x, 1),
            UnOp::Abs => self.b.ins().iabs(x),
            UnOp::Sign => {
                let (z, one, m1) = (self.iconst(ty, 0), self.iconst(ty, 1), self.iconst(ty, -1));
                let z = self.const_like(x, z);
                let pos = self.b.ins().icmp(IntCC::SignedGreaterThan, x, z);
                let neg = self.b.ins().icmp(IntCC::SignedLessThan, x, z);
                let a = self.choose(neg, m1, z);
                self.choose(pos, one, a)
            }
            UnOp::Relu => {
                let z = self.iconst(ty, 0);
                let z = self.const_like(x, z);
                self.b.ins().smax(x, z)
            }
            _ => x,
        }
    }

    fn binary(&mut self, op: BinOp, a: Value, b: Value, dt: DType, b_node: NodeId) -> Value {
        if dt == DType::Bool {
            let cc = match op {
                BinOp::And => return self.b.ins().band(a, b),
                BinOp::Eq => IntCC::Equal,
                BinOp::Ne => IntCC::NotEqual,
                BinOp::Lt => IntCC::UnsignedLessThan,
                BinOp::Le => IntCC::UnsignedLessThanOrEqual,
                BinOp::Gt => IntCC::UnsignedGreaterThan,
                BinOp::Ge => IntCC::UnsignedGreaterThanOrEqual,
                _ => return self.b.ins().bor(a, b),
            };
            return self.b.ins().icmp(cc, a, b);
        }
        if dt.is_float() {
            let cc = match op {
                BinOp::Add => return self.b.ins().fadd(a, b),
                BinOp::Sub => return self.b.ins().fsub(a, b),
                BinOp::Mul => return self.b.ins().fmul(a, b),
                BinOp::Div => return self.b.ins().fdiv(a, b),
                BinOp::Min => return self.nan_propagating_extremum(false, a, b),
                BinOp::Max => return self.nan_propagating_extremum(true, a, b),
                BinOp::Eq => FloatCC::Equal,
                BinOp::Ne => FloatCC::NotEqual,
                BinOp::Lt => FloatCC::LessThan,
                BinOp::Le => FloatCC::LessThanOrEqual,
                BinOp::Gt => FloatCC::GreaterThan,
                BinOp::Ge => FloatCC::GreaterThanOrEqual,
                BinOp::Pow => {
                    // Small constant exponents as products, as exact as the interpreter's powf.
                    return match self.g.node(b_node).op {
                        Op::Const(2.0) => self.b.ins().fmul(a, a),
                        Op::Const(1.0) => a,
                        Op::Const(0.5) => self.b.ins().sqrt(a),
                        _ if dt == DType::F64 => self.call("pow", &[a, b], types::F64),
                        _ => self.call("powf", &[a, b], types::F32),
                    };
                }
                BinOp::Rem | BinOp::FloorDiv => {
                    let q = self.b.ins().fdiv(a, b);
                    let f = self.b.ins().floor(q);
                    if op == BinOp::FloorDiv {
                        return f;
                    }
                    let p = self.b.ins().fmul(b, f);
                    return self.b.ins().fsub(a, p);
                }
                _ => return a,
            };
            return self.b.ins().fcmp(cc, a, b);
        }
        let cc = match op {
            BinOp::Add => return self.b.ins().iadd(a, b),
            BinOp::Sub => return self.b.ins().isub(a, b),
            BinOp::Mul => return self.b.ins().imul(a, b),
            BinOp::Min => return self.b.ins().smin(a, b),
            BinOp::Max => return self.b.ins().smax(a, b),
            BinOp::Eq => IntCC::Equal,
            BinOp::Ne => IntCC::NotEqual,
            BinOp::Lt => IntCC::SignedLessThan,
            BinOp::Le => IntCC::SignedLessThanOrEqual,
            BinOp::Gt => IntCC::SignedGreaterThan,
            BinOp::Ge => IntCC::SignedGreaterThanOrEqual,
            BinOp::FloorDiv | BinOp::Rem | BinOp::Div => return self.floor_div(op, a, b, dt),
            _ => return a,
        };
        self.b.ins().icmp(cc, a, b)
    }

    /// Integer division rounding down (and its remainder); by zero gives 0, as in the
    /// interpreter, and MIN / −1 wraps instead of trapping.
    fn floor_div(&mut self, op: BinOp, a: Value, b: Value, dt: DType) -> Value {
        let ty = self.ty(dt);
        let (zero, one) = (self.iconst(ty, 0), self.iconst(ty, 1));
        let is_zero = self.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
        let safe = self.b.ins().select(is_zero, one, b);
        let is_m1 = self.b.ins().icmp_imm_s(IntCC::Equal, safe, -1);
        let divisor = self.b.ins().select(is_m1, one, safe);
        let q = self.b.ins().sdiv(a, divisor);
        let negated = self.b.ins().ineg(a);
        let q = self.b.ins().select(is_m1, negated, q);
        let p = self.b.ins().imul(q, safe);
        let r = self.b.ins().isub(a, p);
        let inexact = self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
        let signs = self.b.ins().bxor(a, safe);
        let opposite = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, signs, 0);
        let adjust = self.b.ins().band(inexact, opposite);
        let q1 = self.b.ins().isub(q, one);
        let q = self.b.ins().select(adjust, q1, q);
        let res = if op == BinOp::Rem {
            let p = self.b.ins().imul(q, safe);
            self.b.ins().isub(a, p)
        } else {
            q
        };
        self.b.ins().select(is_zero, zero, res)
    }

    /// Computes node `id`'s op at `env` from its operands' values.
    fn compute(&mut self, id: NodeId, env: usize) -> Value {
        let n = self.g.node(id).clone();
        let dt = n.dtype;
        match &n.op {
            Op::Const(v) => self.const_of(dt, *v),
            Op::Size(dims) => {
                let mut acc = self.iconst(types::I64, 1);
                for d in dims {
                    let size = self.whole_size(*d);
                    acc = self.b.ins().imul(acc, size);
                }
                self.convert(acc, DType::I64, dt)
            }
            Op::Iota(d) => {
                let c = match self.env_coord(env, *d) {
                    Some(c) => c,
                    None => self.iconst(types::I64, 0),
                };
                let vector = self.lanes == Some((*d, c));
                let c = match self.slice {
                    Some((sd, offset, _)) if sd == *d => self.b.ins().iadd(c, offset),
                    _ => c,
                };
                if vector {
                    let positions = self.lane_positions(c);
                    return self.convert_vector(positions, DType::I32, dt);
                }
                self.convert(c, DType::I64, dt)
            }
            Op::Unary(op, a) => {
                let x = self.value(*a, env);
                let vector = self.is_vector(x);
                self.splat_consts = vector;
                let r = if dt.is_float() {
                    self.unary_float(*op, x, dt)
                } else if vector && dt == DType::Bool {
                    self.b.ins().bnot(x)
                } else {
                    self.unary_int(*op, x, dt)
                };
                self.splat_consts = false;
                self.round(dt, r)
            }
            Op::Binary(op, a, b) => {
                let (x, y) = (self.value(*a, env), self.value(*b, env));
                let (x, y) = self.align(x, y);
                let operand_dt = self.g.node(*a).dtype;
                let r = self.binary(*op, x, y, operand_dt, *b);
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
                self.choose(cv, x, y)
            }
            Op::Cast(a) => {
                let x = self.value(*a, env);
                let from = self.g.node(*a).dtype;
                if self.is_vector(x) {
                    return self.convert_vector(x, from, dt);
                }
                let r = self.convert(x, from, dt);
                self.round(dt, r)
            }
            Op::Broadcast(a) | Op::Transpose(a) | Op::Detach(a) => self.value(*a, env),
            Op::Gather {
                base,
                dim,
                index,
                default,
            } => self.gather(*base, *dim, *index, *default, env),
            Op::Random {
                dist,
                site,
                seed,
                offset,
            } => {
                // The element's row-major index in the node's own dims.
                let idx = self.flat_index(&n.dims, env);
                let (s, o) = (self.value(*seed, env), self.value(*offset, env));
                let words = scalar_math::philox(self, &idx, *site, &s, &o);
                let r = scalar_math::random(self, &words, *dist == Dist::Normal);
                self.convert(r, DType::F32, dt)
            }
            Op::Contract(a, b) => {
                // Only reached as the operand of a Reduce-style contraction nest.
                let (x, y) = (self.value(*a, env), self.value(*b, env));
                let (x, y) = self.align(x, y);
                self.b.ins().fmul(x, y)
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
                    return self.load_flat(b, a, flat, MEM);
                }
                let mut coords = Vec::new();
                for d in self.g.node(a).dims.clone().iter().rev() {
                    let size = self.dims[d.0 as usize];
                    let c = self.b.ins().urem(flat, size);
                    flat = self.b.ins().udiv(flat, size);
                    coords.push((*d, c));
                }
                let aenv = self.push_env(coords);
                self.value(a, aenv)
            }
            Op::Input(_) | Op::Literal(_) | Op::Relabel(_) => {
                let Some(b) = self.plan.buffer_of(id) else {
                    self.fail(CraneliftError::Internal(format!(
                        "node {} is neither materialized nor inline",
                        id.0
                    )));
                    return self.const_of(dt, 0.0);
                };
                self.load(b, id, env)
            }
            other => {
                self.fail(CraneliftError::Internal(format!(
                    "`{other:?}` cannot be evaluated inline"
                )));
                self.const_of(dt, 0.0)
            }
        }
    }

    /// `base` at `env` with `dim`'s coordinate replaced by the index; an index out of range
    /// gives `default` or records `[1, dim, index]` in the status word.
    fn gather(
        &mut self,
        base: NodeId,
        dim: DimId,
        index: NodeId,
        default: Option<NodeId>,
        env: usize,
    ) -> Value {
        let i = self.value(index, env);
        let it = self.g.node(index).dtype;
        let iv = self.convert(i, it, DType::I64);
        let size = self.whole_size(dim);
        let inside = self.in_range(iv, size);
        let zero = self.iconst(types::I64, 0);
        let safe = self.b.ins().select(inside, iv, zero);
        // Along a sliced dim the base is index arithmetic (the plan admits no other),
        // evaluated at the slice's coordinate of the index.
        let safe = match self.slice {
            Some((sd, offset, _)) if sd == dim => self.b.ins().isub(safe, offset),
            _ => safe,
        };
        let mut coords = self.envs[env].clone();
        coords.push((dim, safe));
        let genv = self.push_env(coords);
        let v = self.value(base, genv);
        if let Some(dv) = default {
            let d = self.value(dv, env);
            return self.choose(inside, v, d);
        }
        let (report, join) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(inside, join, &[], report, &[]);
        self.b.switch_to_block(report);
        let one = self.iconst(types::I64, 1);
        let dim_id = self.iconst(types::I64, i64::from(dim.0));
        for (slot, v) in [(0, one), (8, dim_id), (16, iv)] {
            self.b.ins().store(MEM, v, self.status, slot);
        }
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(join);
        v
    }
}
