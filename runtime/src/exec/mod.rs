//! The executor: runs a [`Manifest`] with kernel function pointers (from a shared object or a
//! JIT). It binds and checks the arguments before anything runs, resolves dims, runs the
//! prelude and the `requires` checks, allocates buffers, then runs the steps — splitting each
//! parallel kernel's outermost loop across threads — and returns the outputs.
//!
//! Kernels use MLIR's packed calling convention: `_mlir_<symbol>(void **args)`, where `args`
//! points at each lowered parameter: the dims (`memref<?xi64>`), a status word
//! (`memref<?xi64>`, set non-zero by a kernel that met an out-of-range gather), the loop bounds
//! `lo` and `hi` (`index`), then one memref per buffer (allocated and aligned pointers, offset,
//! sizes, strides). An executor made [`Executor::on_device`] launches them on a
//! [`Device`] instead, with the same cells less `lo` and `hi` (the `device` module).

#![allow(unsafe_code)]

use crate::bind::{self, ArgSpec};
use crate::budget::Budget;
use crate::device::{push_memref, Device};
use crate::dims::{checked_product, DimError};
use crate::host;
use crate::manifest::{BufferRole, ContractDecl, DimRule, KernelDecl, Manifest, Step};
use crate::{DType, Tensor, TensorRef};
use std::collections::HashMap;
use std::ffi::c_void;
use std::fmt;
use std::sync::Arc;

mod device;
use device::DeviceRun;

/// A decomposition computed during a run: (kind, rows, columns, the matrix, its parts), kept
/// for the steps that read its other parts.
type Decomposed = (host::Decomposition, usize, usize, Vec<f64>, Vec<Vec<f64>>);

/// What a run's host routines keep for later steps: solve factors by matrix buffer, and
/// decompositions.
#[derive(Default)]
struct HostMemo {
    factors: HashMap<u32, crate::solve::Factors>,
    decomposed: Vec<Decomposed>,
}

/// Named output tensors, in manifest order.
pub type Outputs = Vec<(String, Tensor)>;

/// Each step's name and wall time in milliseconds (on a device, last, the time of the copies
/// between host and device memory, named [`COPIES`], which the steps' times exclude).
pub type Timings = Vec<(String, f64)>;

/// The name of a device run's copy time in its [`Timings`].
pub const COPIES: &str = "copies";

/// The milliseconds a run spent in its steps: its [`Timings`] without the copies.
pub fn steps_ms(timings: &Timings) -> f64 {
    timings
        .iter()
        .filter(|(k, _)| k != COPIES)
        .map(|(_, ms)| ms)
        .sum()
}

/// A kernel's packed entry point.
pub type PackedFn = unsafe extern "C" fn(*mut *mut c_void);

/// A failed run: one message per problem.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecError {
    /// What went wrong.
    pub messages: Vec<String>,
    /// Whether the inputs did not fit the signature (as opposed to a check or a run failure).
    pub kind: ExecErrorKind,
}

/// What kind of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecErrorKind {
    /// Missing input, wrong dtype or rank, inconsistent dim.
    Inputs,
    /// A `requires` condition does not hold.
    Requires,
    /// Failure while running (out-of-range gather, singular solve, missing kernel).
    Run,
    /// The sizes ask for more memory than the limit allows (or than 64 bits can count).
    TooLarge,
    /// The manifest is not self-consistent (see [`crate::validate`]): a damaged or forged
    /// artifact, or a compiler bug.
    InvalidManifest,
    /// The device failed (a driver call, device memory).
    Device,
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.messages.join("\n"))
    }
}

impl std::error::Error for ExecError {}

/// A sliced region's buffers: what holds one slice and what is combined over slices.
struct Region<'m> {
    dim: u32,
    local: &'m [u32],
    start: &'m [(u32, crate::manifest::Identity)],
}

/// A run's memory, dim sizes and kernel status, as the steps use them.
struct Run<'r, 'm, 't, 'd> {
    mem: &'r mut [Option<Memory<'t>>],
    sizes: &'m [Option<i64>],
    status: &'r mut [i64],
    memo: &'r mut HostMemo,
    device: Option<&'r mut DeviceRun<'d>>,
}

/// The slice a kernel or GEMM of a sliced region runs on.
struct Slice<'m> {
    region: &'m Region<'m>,
    /// The slice's first column.
    offset: usize,
    /// The whole dim's size.
    whole: usize,
}

fn fail<T>(kind: ExecErrorKind, m: impl Into<String>) -> Result<T, ExecError> {
    Err(ExecError {
        messages: vec![m.into()],
        kind,
    })
}

/// Host memory for one buffer: 8-byte aligned words.
enum Memory<'a> {
    Borrowed(TensorRef<'a>),
    Owned(Vec<u64>),
    View(u32),
}

/// A raw buffer pointer that threads may share: each thread writes a disjoint range of the
/// outer loop, so concurrent kernel calls never touch the same element.
#[derive(Clone, Copy)]
struct Shared(*mut u8);
// SAFETY: see the type's comment; the pointers outlive the thread scope that uses them.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// The pointer (a method, so closures capture the whole `Shared`).
    fn get(self) -> *mut u8 {
        self.0
    }
}

/// Runs manifests with resolved kernels.
pub struct Executor {
    manifest: Manifest,
    /// The binder's view of the manifest's arguments, made once.
    specs: Vec<ArgSpec>,
    kernels: HashMap<String, PackedFn>,
    /// How many threads a run may use (changed between runs by [`Executor::set_threads`]).
    threads: std::sync::atomic::AtomicUsize,
    /// The most bytes one run may allocate.
    memory_limit: u64,
    /// Buffers of earlier runs (temporaries, recycled outputs), reused by size: repeated runs
    /// (a training loop, a benchmark) touch warm memory instead of faulting in fresh pages.
    pool: std::sync::Mutex<Vec<Vec<u64>>>,
    /// The device the kernels run on (`None`: the host's `kernels`).
    device: Option<Arc<dyn Device>>,
}

/// The most memory (in 8-byte words: 2 GiB) the pool of reused buffers holds between runs.
const POOL_WORDS: usize = 1 << 28;

/// Buffers at least this large are backed by transparent huge pages where the kernel allows.
const HUGE_BYTES: usize = 4 << 20;

/// Zeroed word storage; large allocations are advised to use huge pages before first touch.
/// An allocation the system refuses is an error, not an abort. The memory comes from the
/// allocator's zeroed allocation, which for large sizes maps fresh zero pages instead of
/// writing zeros, so a kernel's first write is the only touch (the outputs of a run from
/// Python, handed over and never recycled, are fresh every call).
fn fresh_words(n: usize) -> Result<Vec<u64>, ExecError> {
    let refused = || ExecError {
        messages: vec![format!(
            "the system refused to allocate {} bytes",
            n.saturating_mul(8)
        )],
        kind: ExecErrorKind::TooLarge,
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<u64>(n).map_err(|_| refused())?;
    // SAFETY: the layout has a non-zero size; a null result is handled below.
    let p = unsafe { std::alloc::alloc_zeroed(layout) } as *mut u64;
    if p.is_null() {
        return Err(refused());
    }
    #[cfg(target_os = "linux")]
    if n * 8 >= HUGE_BYTES {
        // SAFETY: the range is exactly the allocation; MADV_HUGEPAGE only changes how the
        // kernel backs it (the contents stay zero).
        unsafe {
            libc::madvise(p as *mut c_void, n * 8, libc::MADV_HUGEPAGE);
        }
    }
    // SAFETY: `p` was allocated by the global allocator with the layout of `n` u64s, all of
    // them initialised (zero); the Vec takes ownership with length and capacity `n`.
    Ok(unsafe { Vec::from_raw_parts(p, n, n) })
}

impl Executor {
    /// An executor for `manifest`; `resolve` maps a kernel symbol to its packed entry point.
    pub fn new(
        manifest: Manifest,
        resolve: impl Fn(&str) -> Option<PackedFn>,
    ) -> Result<Executor, ExecError> {
        crate::validate::validate(&manifest).map_err(|e| ExecError {
            messages: vec![e.to_string()],
            kind: ExecErrorKind::InvalidManifest,
        })?;
        let mut kernels = HashMap::new();
        for symbol in manifest.kernels().map(|k| &k.symbol) {
            let f = resolve(symbol).ok_or_else(|| ExecError {
                messages: vec![format!("kernel `{symbol}` is missing from the artifact")],
                kind: ExecErrorKind::InvalidManifest,
            })?;
            kernels.insert(symbol.clone(), f);
        }
        Executor::with_kernels(manifest, kernels, None)
    }

    /// The executor of a validated manifest with its kernels.
    fn with_kernels(
        manifest: Manifest,
        kernels: HashMap<String, PackedFn>,
        device: Option<Arc<dyn Device>>,
    ) -> Result<Executor, ExecError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let specs = manifest
            .args
            .iter()
            .map(|a| ArgSpec {
                name: a.name.clone(),
                dtype: a.dtype,
                dims: a.dims.clone(),
                required: a.required,
            })
            .collect();
        Ok(Executor {
            manifest,
            specs,
            kernels,
            threads: threads.into(),
            memory_limit: crate::budget::limit_from_env().map_err(|m| ExecError {
                messages: vec![m],
                kind: ExecErrorKind::TooLarge,
            })?,
            pool: std::sync::Mutex::new(Vec::new()),
            device,
        })
    }

    /// An executor for `manifest` whose kernels run on `device` (which must have loaded
    /// every kernel the manifest names); host routines stay on the host.
    pub fn on_device(manifest: Manifest, device: Arc<dyn Device>) -> Result<Executor, ExecError> {
        let missing = manifest.kernels().find(|k| !device.has_kernel(&k.symbol));
        if let Some(s) = missing.map(|k| &k.symbol) {
            return fail(
                ExecErrorKind::InvalidManifest,
                format!("kernel `{s}` is missing from the device code"),
            );
        }
        crate::validate::validate(&manifest).map_err(|e| ExecError {
            messages: vec![e.to_string()],
            kind: ExecErrorKind::InvalidManifest,
        })?;
        Executor::with_kernels(manifest, HashMap::new(), Some(device))
    }

    /// Uses at most `n` threads (1: everything on the calling thread).
    pub fn with_threads(self, n: usize) -> Executor {
        self.set_threads(n);
        self
    }

    /// Uses at most `n` threads from the next run on (a caller that shares the machine with
    /// another thread pool, such as PyTorch's, sets it before each run).
    pub fn set_threads(&self, n: usize) {
        self.threads
            .store(n.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    fn threads(&self) -> usize {
        self.threads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Allocates at most `bytes` per run (buffers, temporaries and outputs together).
    pub fn with_memory_limit(mut self, bytes: u64) -> Executor {
        self.memory_limit = bytes;
        self
    }

    /// The device the kernels run on, if not the host.
    pub fn device(&self) -> Option<&dyn Device> {
        self.device.as_deref()
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The binder's view of the arguments.
    pub fn arg_specs(&self) -> &[ArgSpec] {
        &self.specs
    }

    /// Runs the entry on `inputs`; returns the outputs in manifest order. `only`, when given,
    /// restricts the outputs returned (all steps still run).
    pub fn run(&self, inputs: &HashMap<String, Tensor>) -> Result<Outputs, ExecError> {
        self.run_timed(inputs).map(|(outs, _)| outs)
    }

    /// [`Executor::run`], also returning each step's wall time in milliseconds (kernel
    /// symbol, or the library routine's name).
    pub fn run_timed(
        &self,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<(Outputs, Timings), ExecError> {
        let views: HashMap<String, TensorRef<'_>> = inputs
            .iter()
            .map(|(name, t)| (name.clone(), t.as_ref()))
            .collect();
        self.run_views_timed(&views)
    }

    /// [`Executor::run_timed`] on borrowed inputs (caller-owned memory: no copy is made; the
    /// kernels never write an input).
    pub fn run_views_timed(
        &self,
        inputs: &HashMap<String, TensorRef<'_>>,
    ) -> Result<(Outputs, Timings), ExecError> {
        let m = &self.manifest;
        let mut timings = Vec::new();
        let binding =
            bind::bind(&self.specs, |n| inputs.get(n).copied()).map_err(|errs| ExecError {
                messages: errs.into_iter().map(|e| e.message).collect(),
                kind: ExecErrorKind::Inputs,
            })?;
        // Arguments: given tensors are borrowed; defaults become owned scalars; an absent
        // optional argument gets zeroed storage of its full size when it is allocated.
        let mut mem: Vec<Option<Memory<'_>>> = (0..m.buffers.len()).map(|_| None).collect();
        for a in &m.args {
            mem[a.buffer as usize] = match (inputs.get(&a.name), a.default) {
                (Some(t), _) => Some(Memory::Borrowed(*t)),
                (None, Some(v)) => Some(Memory::Owned(words(&Tensor::scalar(a.dtype, v)))),
                (None, None) => None,
            };
        }
        // Dims bound by arguments; scalar-sized ones after the prelude.
        let mut sizes: Vec<Option<i64>> = vec![None; m.dims.len()];
        self.resolve_dims(&mut sizes, &binding, &HashMap::new())?;
        self.check_prefilled(&mem, &sizes)?;
        let mut status = vec![0i64; 3];
        let mut budget = Budget::new(self.memory_limit);
        let mut device = match &self.device {
            Some(d) => Some(DeviceRun::new(
                d.as_ref(),
                m.buffers.iter().map(|b| &b.role),
            )?),
            None => None,
        };
        if let Some(p) = &m.prelude {
            self.charge(&mut budget, &mem, &p.buffers, &sizes)?;
            self.alloc(&mut mem, &p.buffers, &sizes)?;
            self.kernel(p, &mut mem, &sizes, None, &mut status, device.as_mut())?;
            if let Some(run) = device.as_mut() {
                self.device_status(run, &sizes, &mut status)?;
                self.to_host(run, &mut mem, &p.buffers)?;
            }
            let mut scalars = HashMap::new();
            for d in &m.dims {
                if let DimRule::Scalar(b) = d.size {
                    scalars.insert(b, self.scalar(&mem, b)?);
                }
            }
            // Scalar-sized dims and the dims derived from them.
            self.resolve_dims(&mut sizes, &binding, &scalars)?;
            for c in &m.checks {
                if self.scalar(&mem, c.buffer)? == 0.0 {
                    return fail(
                        ExecErrorKind::Requires,
                        format!("`{}` does not hold{}", c.text, self.scalar_args(inputs)),
                    );
                }
            }
        }
        if let Some(k) = sizes.iter().position(Option::is_none) {
            return fail(
                ExecErrorKind::Run,
                format!(
                    "dim {} is not bound: no input that has it was given",
                    m.dims[k].name
                ),
            );
        }
        self.check_prefilled(&mem, &sizes)?;
        // A sliced region's local buffers hold one slice: sized at the widest slice of the
        // regions they belong to.
        let mut widths = HashMap::new();
        let mut local_width: HashMap<u32, (u32, usize)> = HashMap::new();
        for (k, step) in m.steps.iter().enumerate() {
            if let Step::Sliced { dim, local, .. } = step {
                let per_column: usize = local
                    .iter()
                    .map(|b| {
                        let decl = &m.buffers[*b as usize];
                        let column: usize = decl
                            .dims
                            .iter()
                            .filter(|d| *d != dim)
                            .map(|d| sizes[*d as usize].unwrap_or(0).max(0) as usize)
                            .fold(1usize, |a, s| a.saturating_mul(s));
                        column.saturating_mul(decl.dtype.size_bytes())
                    })
                    .fold(0usize, |a, c| a.saturating_add(c));
                let extent = sizes[*dim as usize].unwrap_or(0).max(0) as usize;
                let width = crate::slices::width(per_column, extent);
                for b in local {
                    let w = local_width.entry(*b).or_insert((*dim, 0));
                    w.1 = w.1.max(width);
                }
                widths.insert(k, width);
            }
        }
        for (b, (dim, width)) in &local_width {
            let mut at_width = sizes.clone();
            at_width[*dim as usize] = Some(*width as i64);
            self.charge(&mut budget, &mem, &[*b], &at_width)?;
            self.alloc(&mut mem, &[*b], &at_width)?;
        }
        let all: Vec<u32> = (0..m.buffers.len() as u32).collect();
        self.charge(&mut budget, &mem, &all, &sizes)?;
        self.alloc(&mut mem, &all, &sizes)?;
        let mut memo = HostMemo::default();
        // Local buffers that hold their whole contraction (a region of one slice computed it).
        let mut whole = std::collections::HashSet::new();
        for (k, step) in m.steps.iter().enumerate() {
            let start = std::time::Instant::now();
            let copied_before = device.as_ref().map_or(0.0, |d| d.copy_ms);
            let name = match step {
                Step::Kernel(k) => k.symbol.clone(),
                Step::Contract(_) => "gemm".to_string(),
                Step::ArgSort { .. } => "argsort".to_string(),
                Step::Solve { .. } => "solve".to_string(),
                Step::Decompose { .. } => "decompose".to_string(),
                Step::Sliced { .. } => format!("slices{k}"),
            };
            match step {
                Step::Kernel(k) => {
                    self.kernel(k, &mut mem, &sizes, None, &mut status, device.as_mut())?
                }
                Step::Sliced {
                    dim,
                    local,
                    start,
                    steps,
                } => {
                    let width = widths.get(&k).copied().unwrap_or(1);
                    let region = Region {
                        dim: *dim,
                        local,
                        start,
                    };
                    let run = Run {
                        mem: &mut mem,
                        sizes: &sizes,
                        status: &mut status,
                        memo: &mut memo,
                        device: device.as_mut(),
                    };
                    // A region's time is its steps' (each summed over the slices).
                    let inner = self.sliced(&region, steps, width, run, &mut whole)?;
                    timings.extend(inner.into_iter().map(|(n, ms)| (format!("{name}/{n}"), ms)));
                    continue;
                }
                _ => {
                    let run = Run {
                        mem: &mut mem,
                        sizes: &sizes,
                        status: &mut status,
                        memo: &mut memo,
                        device: device.as_mut(),
                    };
                    self.routine(step, run, None)?
                }
            }
            // A device step's time is its own, without the copies it waited for.
            let copied = device.as_ref().map_or(0.0, |d| d.copy_ms) - copied_before;
            timings.push((name, start.elapsed().as_secs_f64() * 1e3 - copied));
        }
        if let Some(run) = device.as_mut() {
            self.device_status(run, &sizes, &mut status)?;
            let outputs: Vec<u32> = m.outputs.iter().map(|(_, b)| *b).collect();
            self.to_host(run, &mut mem, &outputs)?;
            timings.push((COPIES.to_string(), run.copy_ms));
        }
        drop(device);
        let mut outs = Vec::new();
        for (name, b) in &m.outputs {
            let shape = self.file_shape(*b, &sizes, &binding);
            let dtype = m.buffers[*b as usize].dtype;
            // An output's own buffer becomes the tensor without a copy.
            let owned = match mem[*b as usize].take() {
                Some(Memory::Owned(w)) => Tensor::from_words(dtype, &shape, w),
                other => {
                    mem[*b as usize] = other;
                    None
                }
            };
            let t = match owned {
                Some(t) => t,
                None => self
                    .tensor(&mem, *b, &sizes)?
                    .reshaped(&shape)
                    .ok_or_else(|| ExecError {
                        messages: vec!["internal error: an output does not fit its shape".into()],
                        kind: ExecErrorKind::Run,
                    })?,
            };
            outs.push((name.clone(), t));
        }
        for m in mem.into_iter().flatten() {
            if let Memory::Owned(w) = m {
                self.give_back(w);
            }
        }
        Ok((outs, timings))
    }

    /// Runs a library routine (on a slice in a sliced region): a GEMM on the run's device when
    /// it takes it, else on the host — with a device, its operands made current on the host
    /// first and its result marked written there.
    fn routine(
        &self,
        step: &Step,
        run: Run<'_, '_, '_, '_>,
        slice: Option<&Slice<'_>>,
    ) -> Result<(), ExecError> {
        let Run {
            mem,
            sizes,
            status,
            memo,
            mut device,
        } = run;
        if let (Some(run), Step::Contract(c)) = (device.as_deref_mut(), step) {
            if self.device_contract(run, c, mem, sizes, slice)? {
                return Ok(());
            }
        }
        if let Some(run) = device.as_deref_mut() {
            self.before_host_step(run, step, mem, sizes, status)?;
        }
        self.host_step(step, mem, sizes, slice, memo)?;
        if let (Some(run), Some((_, out))) = (device, device::host_operands(step)) {
            self.wrote_on_host(run, mem, out);
        }
        Ok(())
    }

    /// Runs a step that is a library routine (argsort, a decomposition's part, solve, GEMM — on
    /// the slice in a sliced region) on host memory.
    fn host_step(
        &self,
        step: &Step,
        mem: &mut [Option<Memory<'_>>],
        sizes: &[Option<i64>],
        slice: Option<&Slice<'_>>,
        memo: &mut HostMemo,
    ) -> Result<(), ExecError> {
        let m = &self.manifest;
        match step {
            Step::ArgSort {
                x,
                out,
                dim,
                descending,
            } => {
                let xv = self.tensor(mem, *x, sizes)?.to_f64();
                let (outer, n, inner) = self.split_at(*x, *dim, sizes);
                let mut perm = vec![0.0; xv.len()];
                for o in 0..outer {
                    for i in 0..inner {
                        let at = |k: usize| (o * n + k) * inner + i;
                        let row: Vec<f64> = (0..n).map(|k| xv[at(k)]).collect();
                        for (k, p) in host::argsort(&row, *descending).into_iter().enumerate() {
                            perm[at(k)] = p as f64;
                        }
                    }
                }
                self.store(mem, *out, sizes, &perm)
            }
            Step::Decompose {
                kind,
                part,
                a,
                out,
                row,
                col,
            } => {
                let t = self.tensor(mem, *a, sizes)?.to_f64();
                let ad = &m.buffers[*a as usize].dims;
                let size = |d: u32| sizes[d as usize].unwrap_or(0) as usize;
                let (rs, cs) = (size(*row), size(*col));
                // Strides of the dims in the operand's layout.
                let stride = |d: u32| -> usize {
                    let k = ad.iter().position(|x| *x == d).unwrap_or(0);
                    ad[k + 1..].iter().map(|x| size(*x)).product()
                };
                let (sr, sc) = (stride(*row), stride(*col));
                // The operand's other dims are batch dims, leading in the result: one
                // decomposition per matrix.
                let batch: Vec<u32> = ad
                    .iter()
                    .copied()
                    .filter(|d| d != row && d != col)
                    .collect();
                let mut values = Vec::new();
                for bi in 0..batch.iter().map(|d| size(*d)).product::<usize>() {
                    let (mut rest, mut base) = (bi, 0);
                    for d in batch.iter().rev() {
                        base += (rest % size(*d)) * stride(*d);
                        rest /= size(*d).max(1);
                    }
                    let mat: Vec<f64> = (0..rs * cs)
                        .map(|x| t[base + (x / cs) * sr + (x % cs) * sc])
                        .collect();
                    // The parts of one decomposition are separate steps: the matrix is
                    // factored once and its parts kept for the others.
                    let known = memo.decomposed.iter().position(|(k, r, c, input, _)| {
                        (*k, *r, *c) == (*kind, rs, cs) && *input == mat
                    });
                    let at = match known {
                        Some(at) => at,
                        None => {
                            let parts =
                                host::decompose(*kind, &mat, rs, cs).map_err(|e| ExecError {
                                    messages: vec![e],
                                    kind: ExecErrorKind::Run,
                                })?;
                            memo.decomposed.push((*kind, rs, cs, mat, parts));
                            memo.decomposed.len() - 1
                        }
                    };
                    let part =
                        memo.decomposed[at]
                            .4
                            .get(*part as usize)
                            .ok_or_else(|| ExecError {
                                messages: vec![format!("a decomposition has no part {part}")],
                                kind: ExecErrorKind::InvalidManifest,
                            })?;
                    values.extend_from_slice(part);
                }
                self.store(mem, *out, sizes, &values)
            }
            Step::Solve { a, b, out, dim } => {
                self.solve((*a, *b, *out, *dim), mem, sizes, &mut memo.factors)
            }
            Step::Contract(c) => self.contract(c, mem, sizes, slice),
            Step::Kernel(_) | Step::Sliced { .. } => fail(
                ExecErrorKind::InvalidManifest,
                "internal error: a kernel step run as a host routine",
            ),
        }
    }

    /// Sizes every dim it can from the binding, the scalars computed so far and the sizes
    /// known so far (a fixpoint over the shared rules of [`crate::dims`]).
    fn resolve_dims(
        &self,
        sizes: &mut [Option<i64>],
        binding: &bind::Binding,
        scalars: &HashMap<u32, f64>,
    ) -> Result<(), ExecError> {
        let m = &self.manifest;
        loop {
            let mut changed = false;
            for (k, d) in m.dims.iter().enumerate() {
                if sizes[k].is_some() {
                    continue;
                }
                let size = d
                    .size
                    .size(
                        &d.name,
                        binding,
                        |x| Ok(sizes.get(x as usize).copied().flatten().map(|s| s as u64)),
                        |b| Ok(scalars.get(&b).copied()),
                    )
                    .map_err(|e| ExecError {
                        kind: match e {
                            DimError::TooLarge(_) => ExecErrorKind::TooLarge,
                            _ => ExecErrorKind::Run,
                        },
                        messages: vec![e.to_string()],
                    })?;
                if let Some(s) = size {
                    sizes[k] = Some(s as i64);
                    changed = true;
                }
            }
            if !changed {
                return Ok(());
            }
        }
    }

    /// Charges the listed buffers that will be allocated against the run's budget, with
    /// checked sizes, before any of them is allocated; a view must have its base's size.
    fn charge(
        &self,
        budget: &mut Budget,
        mem: &[Option<Memory<'_>>],
        which: &[u32],
        sizes: &[Option<i64>],
    ) -> Result<(), ExecError> {
        let too_large = |e: crate::budget::OverBudget| ExecError {
            messages: vec![e.to_string()],
            kind: ExecErrorKind::TooLarge,
        };
        for &b in which {
            if mem[b as usize].is_some() {
                continue;
            }
            let decl = &self.manifest.buffers[b as usize];
            let shape: Vec<u64> = self.shape(b, sizes).iter().map(|s| *s as u64).collect();
            let dims: Vec<String> = decl
                .dims
                .iter()
                .zip(&shape)
                .map(|(d, s)| format!("{}={s}", self.manifest.dims[*d as usize].name))
                .collect();
            let what = match &decl.role {
                BufferRole::Output(name) => format!("output `{name}` [{}]", dims.join(", ")),
                _ => format!("an intermediate [{}]", dims.join(", ")),
            };
            if let BufferRole::View(of) = decl.role {
                let base: Vec<u64> = self.shape(of, sizes).iter().map(|s| *s as u64).collect();
                let (n, m) = (checked_product(shape), checked_product(base));
                if n.is_none() || n != m {
                    let count =
                        |c: Option<u64>| c.map_or("over 2^48".to_string(), |c| c.to_string());
                    return fail(
                        ExecErrorKind::Run,
                        format!(
                            "cannot view {} elements as {}: the dims of a split or merge do not multiply out",
                            count(m),
                            count(n)
                        ),
                    );
                }
                continue;
            }
            budget
                .charge(&what, &shape, decl.dtype)
                .map_err(too_large)?;
        }
        Ok(())
    }

    fn scalar_args(&self, inputs: &HashMap<String, TensorRef<'_>>) -> String {
        let parts: Vec<String> = self
            .manifest
            .args
            .iter()
            .filter(|a| a.dims.is_empty())
            .filter_map(|a| {
                let v = inputs.get(&a.name).map(|t| t.to_f64()[0]).or(a.default)?;
                Some(format!("{} = {v}", a.name))
            })
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    }

    /// The value of a scalar buffer.
    fn scalar(&self, mem: &[Option<Memory<'_>>], b: u32) -> Result<f64, ExecError> {
        let t = self.tensor(mem, b, &[])?;
        t.to_f64().first().copied().ok_or_else(|| ExecError {
            messages: vec!["internal error: an empty scalar".into()],
            kind: ExecErrorKind::Run,
        })
    }

    fn shape(&self, b: u32, sizes: &[Option<i64>]) -> Vec<usize> {
        self.manifest.buffers[b as usize]
            .dims
            .iter()
            .map(|d| sizes[*d as usize].unwrap_or(0) as usize)
            .collect()
    }

    fn len(&self, b: u32, sizes: &[Option<i64>]) -> usize {
        self.shape(b, sizes).iter().product()
    }

    fn file_shape(&self, b: u32, sizes: &[Option<i64>], binding: &bind::Binding) -> Vec<usize> {
        let mut shape = Vec::new();
        for d in &self.manifest.buffers[b as usize].dims {
            let decl = &self.manifest.dims[*d as usize];
            match decl.size {
                DimRule::Pack => shape.extend(
                    binding
                        .packs
                        .get(decl.name.trim_start_matches(".."))
                        .cloned()
                        .unwrap_or_default(),
                ),
                _ => shape.push(sizes[*d as usize].unwrap_or(0) as usize),
            }
        }
        shape
    }

    /// Allocates (zeroed) every listed buffer that has no memory yet.
    fn alloc(
        &self,
        mem: &mut [Option<Memory<'_>>],
        which: &[u32],
        sizes: &[Option<i64>],
    ) -> Result<(), ExecError> {
        for &b in which {
            if mem[b as usize].is_some() {
                continue;
            }
            let decl = &self.manifest.buffers[b as usize];
            mem[b as usize] = Some(match &decl.role {
                // `charge` checked that a view has its base's element count.
                BufferRole::View(of) => Memory::View(*of),
                BufferRole::Literal(values) => Memory::Owned(words(&Tensor::from_f64(
                    decl.dtype,
                    &self.shape(b, sizes),
                    values,
                ))),
                // An absent optional argument reads as zeros.
                BufferRole::Arg(_) => {
                    let bytes = self.len(b, sizes) * decl.dtype.size_bytes();
                    Memory::Owned(fresh_words(bytes.div_ceil(8).max(1))?)
                }
                _ => {
                    let bytes = self.len(b, sizes) * decl.dtype.size_bytes();
                    Memory::Owned(self.take_words(bytes.div_ceil(8).max(1))?)
                }
            });
        }
        Ok(())
    }

    /// Storage of `n` words: a pooled buffer of that size, or a fresh one. Contents are
    /// unspecified: every kernel writes all of its output (scatters zero theirs first).
    fn take_words(&self, n: usize) -> Result<Vec<u64>, ExecError> {
        if let Ok(mut pool) = self.pool.lock() {
            if let Some(k) = pool.iter().position(|w| w.len() == n) {
                return Ok(pool.swap_remove(k));
            }
        }
        fresh_words(n)
    }

    /// Gives an output tensor's memory back for the next run to reuse.
    pub fn recycle(&self, t: Tensor) {
        self.give_back(t.into_words());
    }

    fn give_back(&self, w: Vec<u64>) {
        if w.len() > POOL_WORDS {
            return;
        }
        if let Ok(mut pool) = self.pool.lock() {
            // Oldest first out, so a loop whose shapes change does not hoard every size.
            let mut held: usize = pool.iter().map(Vec::len).sum();
            while !pool.is_empty() && (pool.len() >= 64 || held + w.len() > POOL_WORDS) {
                held -= pool.remove(0).len();
            }
            pool.push(w);
        }
    }

    fn ptr(&self, mem: &mut [Option<Memory<'_>>], b: u32) -> *mut u8 {
        let mut b = b;
        loop {
            match &mut mem[b as usize] {
                Some(Memory::View(of)) => b = *of,
                Some(Memory::Borrowed(t)) => return t.bytes().as_ptr() as *mut u8,
                Some(Memory::Owned(w)) => return w.as_mut_ptr() as *mut u8,
                None => return std::ptr::null_mut(),
            }
        }
    }

    /// Buffer `b`'s bytes (following views), at most its size at `sizes`.
    fn bytes<'m>(
        &self,
        mem: &'m [Option<Memory<'_>>],
        b: u32,
        sizes: &[Option<i64>],
    ) -> Result<&'m [u8], ExecError> {
        let decl = &self.manifest.buffers[b as usize];
        let n: usize = self.shape(b, sizes).iter().product::<usize>() * decl.dtype.size_bytes();
        let bytes = self.all_bytes(mem, b)?;
        Ok(&bytes[..n.min(bytes.len())])
    }

    /// All the bytes behind buffer `b` (following views).
    fn all_bytes<'m>(&self, mem: &'m [Option<Memory<'_>>], b: u32) -> Result<&'m [u8], ExecError> {
        let mut at = b;
        let bytes: &[u8] = loop {
            match &mem[at as usize] {
                Some(Memory::View(of)) => at = *of,
                Some(Memory::Borrowed(t)) => break t.bytes(),
                Some(Memory::Owned(w)) => break bytemuck::cast_slice(w),
                None => {
                    return fail(
                        ExecErrorKind::Run,
                        "internal error: a buffer was never allocated",
                    )
                }
            }
        };
        Ok(bytes)
    }

    fn tensor(
        &self,
        mem: &[Option<Memory<'_>>],
        b: u32,
        sizes: &[Option<i64>],
    ) -> Result<Tensor, ExecError> {
        let decl = &self.manifest.buffers[b as usize];
        let shape = self.shape(b, sizes);
        Tensor::from_bytes(decl.dtype, &shape, self.bytes(mem, b, sizes)?).ok_or_else(|| {
            ExecError {
                messages: vec!["internal error: a buffer is smaller than its dims".into()],
                kind: ExecErrorKind::Run,
            }
        })
    }

    /// Buffer `b`'s elements as f64: f32 and f64 storage read in place, other dtypes copied.
    fn values<'m>(
        &self,
        mem: &'m [Option<Memory<'_>>],
        b: u32,
        sizes: &[Option<i64>],
    ) -> Result<Values<'m>, ExecError> {
        let bytes = self.bytes(mem, b, sizes)?;
        let len = self.len(b, sizes);
        let view = match self.manifest.buffers[b as usize].dtype {
            DType::F32 => bytemuck::try_cast_slice(bytes)
                .ok()
                .filter(|v: &&[f32]| v.len() == len)
                .map(Values::F32),
            DType::F64 => bytemuck::try_cast_slice(bytes)
                .ok()
                .filter(|v: &&[f64]| v.len() == len)
                .map(Values::F64),
            _ => None,
        };
        match view {
            Some(v) => Ok(v),
            None => Ok(Values::Copied(self.tensor(mem, b, sizes)?.to_f64())),
        }
    }

    /// Writes `values` (one per element) into buffer `b`'s memory.
    fn store(
        &self,
        mem: &mut [Option<Memory<'_>>],
        b: u32,
        sizes: &[Option<i64>],
        values: &[f64],
    ) -> Result<(), ExecError> {
        let decl = &self.manifest.buffers[b as usize];
        let shape = self.shape(b, sizes);
        if values.len() != shape.iter().product::<usize>() {
            return fail(
                ExecErrorKind::InvalidManifest,
                "a library routine's result does not fit its output buffer",
            );
        }
        let t = Tensor::from_f64(decl.dtype, &shape, values);
        let capacity = self.capacity(mem, b);
        if t.bytes().len() > capacity {
            return fail(
                ExecErrorKind::InvalidManifest,
                "an output buffer is smaller than its dims",
            );
        }
        let p = self.ptr(mem, b);
        // SAFETY: `p` is the buffer's memory, which holds at least `capacity` bytes.
        unsafe { std::ptr::copy_nonoverlapping(t.bytes().as_ptr(), p, t.bytes().len()) };
        Ok(())
    }

    /// The bytes behind buffer `b` (following views); 0 when unallocated.
    fn capacity(&self, mem: &[Option<Memory<'_>>], b: u32) -> usize {
        let mut at = b;
        for _ in 0..=mem.len() {
            match &mem[at as usize] {
                Some(Memory::View(of)) => at = *of,
                Some(Memory::Borrowed(t)) => return t.bytes().len(),
                Some(Memory::Owned(w)) => return w.len() * 8,
                None => return 0,
            }
        }
        0
    }

    /// Every given tensor has exactly its buffer's element count under the sizes resolved so
    /// far (the binder checked it against the declared dims; this ties those to the layout
    /// the kernels use, so no manifest can make a kernel read past an input), and every
    /// default holds its buffer's bytes.
    fn check_prefilled(
        &self,
        mem: &[Option<Memory<'_>>],
        sizes: &[Option<i64>],
    ) -> Result<(), ExecError> {
        for (b, slot) in mem.iter().enumerate() {
            let decl = &self.manifest.buffers[b];
            if slot.is_none() || decl.dims.iter().any(|d| sizes[*d as usize].is_none()) {
                continue;
            }
            let count = checked_product(self.shape(b as u32, sizes).iter().map(|s| *s as u64));
            let fits = match slot {
                Some(Memory::Borrowed(t)) => {
                    count == Some(t.len() as u64) && t.dtype() == decl.dtype
                }
                Some(Memory::Owned(w)) => count
                    .and_then(|c| c.checked_mul(decl.dtype.size_bytes() as u64))
                    .is_some_and(|bytes| bytes <= w.len() as u64 * 8),
                _ => true,
            };
            if !fits {
                return fail(
                    ExecErrorKind::InvalidManifest,
                    format!("input or default buffer {b} does not fit its dims"),
                );
            }
        }
        Ok(())
    }

    fn split_at(&self, b: u32, dim: u32, sizes: &[Option<i64>]) -> (usize, usize, usize) {
        let dims = &self.manifest.buffers[b as usize].dims;
        let k = dims.iter().position(|d| *d == dim).unwrap_or(0);
        let s = self.shape(b, sizes);
        (s[..k].iter().product(), s[k], s[k + 1..].iter().product())
    }

    /// Every dim's size (a sliced dim's at the slice's width), then the slice's offset and the
    /// sliced dim's whole size (0, 0 outside a sliced region): a kernel compiled for a region
    /// reads them for iota, gather bounds and `size`.
    fn kernel_dims(&self, sizes: &[Option<i64>], slice: Option<&Slice<'_>>) -> Vec<i64> {
        let mut dims: Vec<i64> = sizes.iter().map(|s| s.unwrap_or(0)).collect();
        dims.extend(slice.map_or([0, 0], |s| [s.offset as i64, s.whole as i64]));
        dims
    }

    /// Runs one generated kernel: launched on the run's device when it has one, else on the
    /// host with its outer loop split across threads when it is parallel.
    fn kernel(
        &self,
        k: &KernelDecl,
        mem: &mut [Option<Memory<'_>>],
        sizes: &[Option<i64>],
        slice: Option<&Slice<'_>>,
        status: &mut [i64],
        device: Option<&mut DeviceRun<'_>>,
    ) -> Result<(), ExecError> {
        if let Some(run) = device {
            return self.launch(run, k, mem, sizes, slice);
        }
        let f = self
            .kernels
            .get(&k.symbol)
            .copied()
            .ok_or_else(|| ExecError {
                messages: vec![format!("kernel `{}` is not loaded", k.symbol)],
                kind: ExecErrorKind::InvalidManifest,
            })?;
        let dims = self.kernel_dims(sizes, slice);
        let bufs: Vec<(Shared, Vec<i64>)> = k
            .buffers
            .iter()
            .map(|b| {
                let shape: Vec<i64> = self.shape(*b, sizes).iter().map(|s| *s as i64).collect();
                let at = slice.map_or(0, |s| self.slice_offset(*b, s, sizes));
                // SAFETY (of the offset): `slice_offset` is nonzero only for a buffer whose
                // outermost dim is the sliced one; its rows [offset, offset + width) exist.
                (Shared(self.ptr(mem, *b).wrapping_add(at)), shape)
            })
            .collect();
        let total = k.split.map_or(1, |d| dims[d as usize]);
        let threads = if k.split.is_some() && total >= 2 {
            self.threads().min(total as usize)
        } else {
            1
        };
        let status_ptr = Shared(status.as_mut_ptr() as *mut u8);
        let call = |lo: i64, hi: i64| {
            let mut cells: Vec<u64> = Vec::new();
            push_memref(&mut cells, dims.as_ptr() as u64, &[dims.len() as i64]);
            push_memref(&mut cells, status_ptr.get() as u64, &[3]);
            cells.push(lo as u64);
            cells.push(hi as u64);
            for (p, shape) in &bufs {
                push_memref(&mut cells, p.get() as u64, shape);
            }
            let mut args: Vec<*mut c_void> = cells
                .iter_mut()
                .map(|c| c as *mut u64 as *mut c_void)
                .collect();
            // SAFETY: the kernel was compiled for exactly this argument list (the manifest's
            // buffers, in order, with their dims), every pointer is live for the call, and
            // concurrent calls write disjoint ranges of the split loop.
            unsafe { f(args.as_mut_ptr()) };
        };
        if threads <= 1 {
            call(0, total);
        } else {
            let chunk = (total + threads as i64 - 1) / threads as i64;
            std::thread::scope(|s| {
                for t in 0..threads as i64 {
                    let (lo, hi) = (t * chunk, ((t + 1) * chunk).min(total));
                    if lo < hi {
                        let call = &call;
                        s.spawn(move || call(lo, hi));
                    }
                }
            });
        }
        self.check_status(status, &dims)
    }

    /// The error a kernel's status word reports (an out-of-range gather), if any.
    fn check_status(&self, status: &[i64], dims: &[i64]) -> Result<(), ExecError> {
        if status[0] != 0 {
            let dim = usize::try_from(status[1]).ok();
            let (name, size) = match dim.and_then(|d| self.manifest.dims.get(d).zip(dims.get(d))) {
                Some((d, s)) => (d.name.as_str(), *s),
                None => ("?", 0),
            };
            return fail(
                ExecErrorKind::Run,
                format!(
                    "gather index {} is out of range for dim {name} of size {size} (write `else v` to allow it)",
                    status[2]
                ),
            );
        }
        Ok(())
    }

    fn contract(
        &self,
        c: &ContractDecl,
        mem: &mut [Option<Memory<'_>>],
        sizes: &[Option<i64>],
        slice: Option<&Slice<'_>>,
    ) -> Result<(), ExecError> {
        let prod = |ds: &[u32]| {
            ds.iter()
                .map(|d| sizes[*d as usize].unwrap_or(0) as usize)
                .product::<usize>()
        };
        let (nb, m, n, k) = (prod(&c.batch), prod(&c.m), prod(&c.n), prod(&c.k));
        // Each operand's group strides from its layout (groups are contiguous runs). In a
        // sliced region only the sliced dim differs from the whole, and a buffer that is not
        // a slice has it outermost, so its strides are the same at either size.
        let strides = |b: u32| self.dim_strides(b, sizes);
        // Element offsets of the slice's rows in the operands that are not slices.
        let elems = |b: u32| {
            slice.map_or(0, |s| {
                self.slice_offset(b, s, sizes)
                    / self.manifest.buffers[b as usize].dtype.size_bytes()
            })
        };
        let (ea, eb, eo) = (elems(c.a), elems(c.b), elems(c.out));
        let accumulate = slice.is_some_and(|s| s.region.start.iter().any(|(b, _)| *b == c.out));
        let group = |st: &HashMap<u32, usize>, ds: &[u32]| group_stride(st, ds) as isize;
        let (sa, sb, so) = (strides(c.a), strides(c.b), strides(c.out));
        let dtype = self.manifest.buffers[c.out as usize].dtype;
        let direct = self.contract_in_place(c);
        // f32/f64 operands are read in place; 16-bit floats go through an f32 copy.
        let (a_copy, b_copy, mut out_copy) = if direct {
            (None, None, None)
        } else {
            (
                Some(self.tensor_at(mem, c.a, sizes, ea)?.cast(DType::F32)),
                Some(self.tensor_at(mem, c.b, sizes, eb)?.cast(DType::F32)),
                Some(Tensor::zeros(DType::F32, &[nb * m * n])),
            )
        };
        // Operands read in place start at the slice's rows; copies start there already.
        let (ea, eb, eo) = if direct { (ea, eb, eo) } else { (0, 0, 0) };
        let ap = match &a_copy {
            Some(t) => t.bytes().as_ptr(),
            None => self.ptr(mem, c.a) as *const u8,
        };
        let bp = match &b_copy {
            Some(t) => t.bytes().as_ptr(),
            None => self.ptr(mem, c.b) as *const u8,
        };
        let op = match &mut out_copy {
            Some(t) => t.bytes_mut().as_mut_ptr(),
            None => self.ptr(mem, c.out),
        };
        let batch_offset = |st: &HashMap<u32, usize>, mut idx: usize| -> usize {
            let mut off = 0;
            for d in c.batch.iter().rev() {
                let s = sizes[*d as usize].unwrap_or(1) as usize;
                off += (idx % s) * st.get(d).copied().unwrap_or(0);
                idx /= s;
            }
            off
        };
        let par = if m * n * k >= 1 << 18 && self.threads() > 1 {
            faer::Par::rayon(self.threads())
        } else {
            faer::Par::Seq
        };
        for bi in 0..nb {
            let (oa, ob, oo) = (
                ea + batch_offset(&sa, bi),
                eb + batch_offset(&sb, bi),
                eo + batch_offset(&so, bi),
            );
            macro_rules! run_gemm {
                ($t:ty) => {{
                    // SAFETY: the pointers are the operands' (or their copies') memory, 8-byte
                    // aligned, and the group strides come from their own row-major layouts, so
                    // every element addressed lies inside its buffer; the output does not
                    // overlap the operands (routines never write their inputs).
                    let (out, lhs, rhs) = unsafe {
                        (
                            faer::MatMut::<$t>::from_raw_parts_mut(
                                (op as *mut $t).add(oo),
                                m,
                                n,
                                group(&so, &c.m),
                                group(&so, &c.n),
                            ),
                            faer::MatRef::<$t>::from_raw_parts(
                                (ap as *const $t).add(oa),
                                m,
                                k,
                                group(&sa, &c.m),
                                group(&sa, &c.k),
                            ),
                            faer::MatRef::<$t>::from_raw_parts(
                                (bp as *const $t).add(ob),
                                k,
                                n,
                                group(&sb, &c.k),
                                group(&sb, &c.n),
                            ),
                        )
                    };
                    let accum = if accumulate && direct {
                        faer::Accum::Add
                    } else {
                        faer::Accum::Replace
                    };
                    faer::linalg::matmul::matmul(out, accum, lhs, rhs, 1 as $t, par)
                }};
            }
            // The copies are f32 whatever the output's dtype: an f64 output over f32 (or 16-bit)
            // operands multiplies in f32 and widens on the store.
            if direct && dtype == DType::F64 {
                run_gemm!(f64)
            } else {
                run_gemm!(f32)
            }
        }
        if let Some(out) = out_copy {
            let mut values = out.to_f64();
            match slice {
                None => self.store(mem, c.out, sizes, &values)?,
                Some(_) => {
                    let at = elems(c.out);
                    if accumulate {
                        let old = self.tensor_at(mem, c.out, sizes, at)?.to_f64();
                        for (v, o) in values.iter_mut().zip(old) {
                            *v += o;
                        }
                    }
                    self.store_at(mem, c.out, sizes, at, &values)?;
                }
            }
        }
        Ok(())
    }

    /// Each dim's element stride in buffer `b`'s row-major layout at `sizes`.
    fn dim_strides(&self, b: u32, sizes: &[Option<i64>]) -> HashMap<u32, usize> {
        let dims = &self.manifest.buffers[b as usize].dims;
        let mut st = HashMap::new();
        let mut acc = 1usize;
        for d in dims.iter().rev() {
            st.insert(*d, acc);
            acc *= sizes[*d as usize].unwrap_or(0) as usize;
        }
        st
    }

    /// Whether contraction `c` multiplies its operands in place: f32 or f64 operands of the
    /// result's dtype (others go through f32 copies on the host).
    fn contract_in_place(&self, c: &ContractDecl) -> bool {
        let dtype = self.manifest.buffers[c.out as usize].dtype;
        matches!(dtype, DType::F32 | DType::F64)
            && [c.a, c.b]
                .iter()
                .all(|b| self.manifest.buffers[*b as usize].dtype == dtype)
    }

    /// Runs a sliced region: its combined buffers start at their identity, then its steps
    /// run on each slice of `width` columns of the dim (the last one narrower).
    ///
    /// Returns each step's time summed over the slices.
    ///
    /// When one slice covers the dim, the region's first step (the contraction) computed its
    /// local buffer whole; a later such region skips recomputing it (`whole` tracks those
    /// buffers), so a plan sliced for large inputs costs nothing extra on small ones.
    fn sliced(
        &self,
        region: &Region<'_>,
        steps: &[Step],
        width: usize,
        run: Run<'_, '_, '_, '_>,
        whole_buffers: &mut std::collections::HashSet<u32>,
    ) -> Result<Vec<(String, f64)>, ExecError> {
        let Run {
            mem,
            sizes,
            status,
            memo,
            mut device,
        } = run;
        for (b, identity) in region.start {
            let n = self.len(*b, sizes);
            self.store(mem, *b, sizes, &vec![identity.value(); n])?;
            if let Some(run) = device.as_deref_mut() {
                self.wrote_on_host(run, mem, *b);
            }
        }
        let whole = sizes[region.dim as usize].unwrap_or(0).max(0) as usize;
        let single = width >= whole;
        let source = match steps.first() {
            Some(Step::Contract(c)) if region.local.contains(&c.out) => Some(c.out),
            _ => None,
        };
        let skip_source = single && source.is_some_and(|b| whole_buffers.contains(&b));
        for b in region.local {
            whole_buffers.remove(b);
        }
        if single {
            whole_buffers.extend(source);
        }
        let mut spent = vec![0.0; steps.len()];
        let mut offset = 0;
        while offset < whole {
            let w = width.max(1).min(whole - offset);
            let mut at_slice = sizes.to_vec();
            at_slice[region.dim as usize] = Some(w as i64);
            let slice = Slice {
                region,
                offset,
                whole,
            };
            for (i, step) in steps.iter().enumerate().skip(usize::from(skip_source)) {
                let start = std::time::Instant::now();
                match step {
                    Step::Kernel(k) => self.kernel(
                        k,
                        mem,
                        &at_slice,
                        Some(&slice),
                        status,
                        device.as_deref_mut(),
                    )?,
                    Step::Contract(_) => {
                        let run = Run {
                            mem: &mut *mem,
                            sizes: &at_slice,
                            status: &mut *status,
                            memo: &mut *memo,
                            device: device.as_deref_mut(),
                        };
                        self.routine(step, run, Some(&slice))?
                    }
                    _ => {
                        return fail(
                            ExecErrorKind::InvalidManifest,
                            "a sliced region holds a step other than a kernel or a GEMM",
                        )
                    }
                }
                spent[i] += start.elapsed().as_secs_f64() * 1e3;
            }
            offset += w;
        }
        Ok(steps
            .iter()
            .zip(spent)
            .map(|(s, ms)| {
                let name = match s {
                    Step::Kernel(k) => k.symbol.clone(),
                    _ => "gemm".to_string(),
                };
                (name, ms)
            })
            .collect())
    }

    /// The byte offset of the slice's first row in buffer `b`: 0 for a local buffer (it holds
    /// just the slice) and for one without the sliced dim; else (the dim is outermost, as the
    /// verifier checked) the slice's offset times the bytes of one row.
    fn slice_offset(&self, b: u32, slice: &Slice<'_>, sizes: &[Option<i64>]) -> usize {
        let decl = &self.manifest.buffers[b as usize];
        if slice.region.local.contains(&b) || decl.dims.first() != Some(&slice.region.dim) {
            return 0;
        }
        let row: usize = decl.dims[1..]
            .iter()
            .map(|d| sizes[*d as usize].unwrap_or(0) as usize)
            .product();
        slice.offset * row * decl.dtype.size_bytes()
    }

    /// Buffer `b`'s elements from element `at` on, under `sizes` (a slice's rows).
    fn tensor_at(
        &self,
        mem: &[Option<Memory<'_>>],
        b: u32,
        sizes: &[Option<i64>],
        at: usize,
    ) -> Result<Tensor, ExecError> {
        let decl = &self.manifest.buffers[b as usize];
        let shape = self.shape(b, sizes);
        let size = decl.dtype.size_bytes();
        let n = shape.iter().product::<usize>() * size;
        let all = self.all_bytes(mem, b)?;
        all.get(at * size..at * size + n)
            .and_then(|bytes| Tensor::from_bytes(decl.dtype, &shape, bytes))
            .ok_or_else(|| ExecError {
                messages: vec!["internal error: a slice reaches past its buffer".into()],
                kind: ExecErrorKind::Run,
            })
    }

    /// Writes `values` into buffer `b` from element `at` on.
    fn store_at(
        &self,
        mem: &mut [Option<Memory<'_>>],
        b: u32,
        sizes: &[Option<i64>],
        at: usize,
        values: &[f64],
    ) -> Result<(), ExecError> {
        let decl = &self.manifest.buffers[b as usize];
        let t = Tensor::from_f64(decl.dtype, &self.shape(b, sizes), values);
        let start = at * decl.dtype.size_bytes();
        if start + t.bytes().len() > self.capacity(mem, b) {
            return fail(
                ExecErrorKind::InvalidManifest,
                "a slice reaches past its output buffer",
            );
        }
        let p = self.ptr(mem, b);
        // SAFETY: `p` is the buffer's memory, which holds at least `start + len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(t.bytes().as_ptr(), p.add(start), t.bytes().len()) };
        Ok(())
    }

    /// `solve(A, b, dim)` through [`crate::solve`], in f32 unless the result is f64. A's
    /// factors stay in `factors` for the rest of the run (each buffer is written once per run),
    /// so the backward pass's transposed solve against the same A does not factor again.
    fn solve(
        &self,
        (a, b, out, dim): (u32, u32, u32, u32),
        mem: &mut [Option<Memory<'_>>],
        sizes: &[Option<i64>],
        factors: &mut HashMap<u32, crate::solve::Factors>,
    ) -> Result<(), ExecError> {
        use crate::solve::{factor_strided, solve_strided, Layout, Precision};
        let m = &self.manifest;
        let dims = |x: u32| m.buffers[x as usize].dims.as_slice();
        let size = |d: u32| sizes[d as usize].unwrap_or(0) as usize;
        let run_error = |e: String| ExecError {
            messages: vec![e],
            kind: ExecErrorKind::Run,
        };
        let precision = Precision::of_result(m.buffers[out as usize].dtype);
        if factors.get(&a).map(|f| f.precision()) != Some(precision) {
            let av = self.values(mem, a, sizes)?;
            let f = factor_strided(|i| av.get(i), dims(a), precision, self.threads(), size)
                .map_err(run_error)?;
            factors.insert(a, f);
        }
        let bv = self.values(mem, b, sizes)?;
        let layout = Layout {
            a: dims(a),
            b: dims(b),
            x: dims(out),
            dim,
        };
        let x = solve_strided(&factors[&a], |i| bv.get(i), &layout, self.threads(), size)
            .map_err(run_error)?;
        self.store(mem, out, sizes, &x)
    }
}

/// A buffer's elements, read as f64 one at a time.
enum Values<'m> {
    F32(&'m [f32]),
    F64(&'m [f64]),
    Copied(Vec<f64>),
}

impl Values<'_> {
    fn get(&self, i: usize) -> f64 {
        match self {
            Values::F32(v) => f64::from(v[i]),
            Values::F64(v) => v[i],
            Values::Copied(v) => v[i],
        }
    }
}

/// The element stride of a contraction group in a layout whose dims have `strides`: its last
/// dim's (groups are contiguous runs); 0 for an empty group.
fn group_stride(strides: &HashMap<u32, usize>, group: &[u32]) -> usize {
    group
        .last()
        .map_or(0, |d| strides.get(d).copied().unwrap_or(0))
}

fn words(t: &Tensor) -> Vec<u64> {
    let mut w = vec![0u64; t.bytes().len().div_ceil(8).max(1)];
    bytemuck::cast_slice_mut::<u64, u8>(&mut w)[..t.bytes().len()].copy_from_slice(t.bytes());
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `y[M, N] = a[M, K] @ b[K, N]` with f32 operands and an output of `out_dtype`.
    fn matmul(out_dtype: &str) -> Manifest {
        serde_json::from_value(serde_json::json!({
            "entry": "t::mm", "kind": "objective",
            "args": [
                {"name": "a", "dtype": "f32", "dims": [{"Named": "M"}, {"Named": "K"}],
                 "required": true, "default": null, "buffer": 0},
                {"name": "b", "dtype": "f32", "dims": [{"Named": "K"}, {"Named": "N"}],
                 "required": true, "default": null, "buffer": 1}
            ],
            "dims": [{"name": "M", "size": "Arg"}, {"name": "K", "size": "Arg"},
                     {"name": "N", "size": "Arg"}],
            "buffers": [
                {"dtype": "f32", "dims": [0, 1], "role": {"Arg": 0}},
                {"dtype": "f32", "dims": [1, 2], "role": {"Arg": 1}},
                {"dtype": out_dtype, "dims": [0, 2], "role": {"Output": "y"}}
            ],
            "prelude": null, "checks": [],
            "steps": [{"Contract": {"a": 0, "b": 1, "out": 2, "batch": [], "m": [0],
                                    "n": [2], "k": [1]}}],
            "outputs": [["y", 2]]
        }))
        .unwrap()
    }

    fn run(m: Manifest) -> Result<Vec<f64>, ExecError> {
        let exec = Executor::new(m, |_| None)?;
        let inputs = HashMap::from([
            (
                "a".to_string(),
                Tensor::from_f64(DType::F32, &[2, 3], &[1., 2., 3., 4., 5., 6.]),
            ),
            (
                "b".to_string(),
                Tensor::from_f64(DType::F32, &[3, 2], &[1., 0., 0., 1., 1., 1.]),
            ),
        ]);
        Ok(exec.run(&inputs)?.remove(0).1.to_f64())
    }

    /// Found by the artifact fuzz target: an f64 product of f32 operands ran the f64 GEMM
    /// over the f32 copies, reading and writing past them.
    #[test]
    fn a_wider_output_than_its_operands_multiplies_in_f32() {
        let expected = vec![4., 5., 10., 11.];
        assert_eq!(run(matmul("f32")).unwrap(), expected);
        assert_eq!(run(matmul("f64")).unwrap(), expected);
        assert_eq!(run(matmul("bf16")).unwrap(), expected);
    }

    #[test]
    fn routines_never_write_inputs_and_defaults_are_scalars() {
        let mut m = matmul("f32");
        if let Step::Contract(c) = &mut m.steps[0] {
            c.out = 0;
            c.a = 2;
        }
        let err = run(m).unwrap_err();
        assert_eq!(err.kind, ExecErrorKind::InvalidManifest);
        assert!(err.messages[0].contains("not a temporary or an output"));
        let mut m = matmul("f32");
        m.args[0].default = Some(1.0);
        m.args[0].required = false;
        let err = run(m).unwrap_err();
        assert!(err.messages[0].contains("has a default but is not a scalar"));
    }
}
