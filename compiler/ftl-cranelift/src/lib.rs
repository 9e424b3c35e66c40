//! The Cranelift CPU backend: a fused [`Plan`] becomes Cranelift IR (`emit`, with the shared
//! scalar math of `math`) compiled in process by `cranelift-jit`, in milliseconds and without
//! LLVM. It implements [`Backend`] on the same plans and manifests as the MLIR backend and calls
//! its kernels through the same packed convention (runtime/src/exec.rs).
//!
//! Every loop kernel is compiled (maps, reductions, scans, scatters, gathers with their range
//! checks, Philox draws, sliced regions) in f32, f64, bf16 and f16 (computed in f32, rounded as
//! PyTorch rounds), i32, i64 and bool; host steps (GEMM, solves, decompositions) run in the
//! runtime as for the MLIR backend. What it cannot compile (a CPU without SSE4.1 for an
//! artifact) is [`CraneliftError::Unsupported`], a user-facing error naming what is missing,
//! never a miscompilation.

mod emit;
mod half;
mod lanes;
mod math;

use cranelift_codegen::isa::TargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{DataDescription, FuncId, Linkage, Module};
use cranelift_object::{ObjectBuilder, ObjectModule};
use ftl_ir::pipeline::Failure;
use ftl_plan::backend::{Backend, BackendError, Kernels};
use ftl_plan::fuse::{Kernel, Plan};
use ftl_runtime::exec::PackedFn;
use ftl_runtime::target::Target;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Why the Cranelift backend did not compile a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CraneliftError {
    /// The plan uses something this backend does not compile yet (the MLIR backend does).
    Unsupported(String),
    /// A compiler bug: Cranelift rejected the code generated for a verified plan.
    Internal(String),
}

impl fmt::Display for CraneliftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CraneliftError::Unsupported(what) => {
                write!(f, "the cranelift backend does not compile {what} yet")
            }
            CraneliftError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl From<CraneliftError> for Failure {
    /// What the backend cannot compile is E0095, naming the backend that can; a rejected
    /// function is a compiler bug.
    fn from(e: CraneliftError) -> Failure {
        match e {
            CraneliftError::Unsupported(_) => {
                Failure::unsupported(format!("{e} (run it with `--backend mlir`)"))
            }
            CraneliftError::Internal(m) => Failure::Internal(m),
        }
    }
}

/// The Cranelift backend, JIT-compiled in process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cranelift;

impl Backend for Cranelift {
    type Kernels = Jit;

    fn name(&self) -> &'static str {
        "cranelift"
    }

    fn compile(&self, plan: &Plan) -> Result<Jit, BackendError> {
        Jit::compile(plan).map_err(|e| BackendError(e.to_string()))
    }
}

/// Compiled kernels: the JIT's memory and each kernel's entry point.
pub struct Jit {
    module: Option<JITModule>,
    entries: HashMap<String, PackedFn>,
}

impl Kernels for Jit {
    fn entry(&self, symbol: &str) -> Option<PackedFn> {
        self.entries.get(symbol).copied()
    }
}

impl Drop for Jit {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the entry points die with `self`; the executor that called them is
            // dropped first (`CompiledEntry` keeps the kernels after it).
            #[allow(unsafe_code)]
            unsafe {
                m.free_memory();
            }
        }
    }
}

/// The kernels to compile: loop kernels, a sliced region's with its dim and slice buffers.
fn loop_kernels(plan: &Plan) -> Vec<(&Kernel, Option<emit::SliceOf<'_>>)> {
    let mut kernels = Vec::new();
    for k in plan.prelude.iter().chain(&plan.kernels) {
        match k {
            Kernel::Sliced {
                dim, body, local, ..
            } => kernels.extend(
                body.iter()
                    .filter(|b| matches!(b, Kernel::Loops { .. }))
                    .map(|b| (b, Some((*dim, local.as_slice())))),
            ),
            Kernel::Loops { .. } => kernels.push((k, None)),
            Kernel::Host { .. } => {}
        }
    }
    kernels
}

/// The instruction set at `opt_level=speed` for `target` (`None`: this CPU's, every feature it
/// has), position-independent for a shared library's object code. A level's features become
/// Cranelift's x86 flags; the vector loops need SSE4.1, so plain `x86-64` is refused.
fn isa_for(target: Option<&Target>, pic: bool) -> Result<Arc<dyn TargetIsa>, CraneliftError> {
    let mut flags = settings::builder();
    let set = |flags: &mut settings::Builder, k: &str, v: &str| {
        flags
            .set(k, v)
            .map_err(|e| CraneliftError::Internal(format!("setting {k}: {e}")))
    };
    set(&mut flags, "opt_level", "speed")?;
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", if pic { "true" } else { "false" })?;
    // Cranelift's IR verifier checks the emitter's output; test builds (debug assertions) run
    // it on every kernel, release builds save its time.
    let verify = if cfg!(debug_assertions) {
        "true"
    } else {
        "false"
    };
    set(&mut flags, "enable_verifier", verify)?;
    let level = target.filter(|t| t.cpu != "native");
    let mut isa = cranelift_native::builder_with_options(level.is_none())
        .map_err(|e| CraneliftError::Unsupported(format!("this CPU ({e})")))?;
    if let Some(t) = level {
        if !t.features.iter().any(|f| f == "sse4.1") {
            return Err(CraneliftError::Unsupported(format!(
                "kernels for `{}` (they need SSE4.1: x86-64-v2 or later)",
                t.cpu
            )));
        }
        for f in &t.features {
            let flag = format!("has_{}", f.replace('.', ""));
            // Features Cranelift has no flag for (sse, sse2, f16c, movbe, …) are ignored.
            let _ = isa.enable(&flag);
        }
    }
    isa.finish(settings::Flags::new(flags))
        .map_err(|e| CraneliftError::Internal(e.to_string()))
}

impl Jit {
    /// Compiles every generated kernel of `plan` (the prelude included) for this CPU.
    pub fn compile(plan: &Plan) -> Result<Jit, CraneliftError> {
        let mut builder = JITBuilder::with_isa(
            isa_for(None, false)?,
            cranelift_module::default_libcall_names(),
        );
        for (name, f) in math::library() {
            builder.symbol(name, f);
        }
        let mut module = JITModule::new(builder);
        let mut ids: Vec<(String, FuncId)> = Vec::new();
        for (k, slice) in loop_kernels(plan) {
            let name = k.name().to_string();
            let id = emit::define(&mut module, plan, k, slice, &name, Linkage::Local)?;
            ids.push((name, id));
        }
        module
            .finalize_definitions()
            .map_err(|e| CraneliftError::Internal(e.to_string()))?;
        let mut entries = HashMap::new();
        for (name, id) in ids {
            let code = module.get_finalized_function(id);
            // SAFETY: `emit::define` gave every kernel the packed signature `fn(*mut *mut
            // c_void)` in the platform's C calling convention.
            #[allow(unsafe_code)]
            let f: PackedFn = unsafe { std::mem::transmute::<*const u8, PackedFn>(code) };
            entries.insert(name, f);
        }
        Ok(Jit {
            module: Some(module),
            entries,
        })
    }
}

/// Builds the artifact `dir` (`.ftlpack`) of `plan` for `target` with Cranelift's object code,
/// as `ftl_mlir::write_artifact` does with MLIR's: symbols made unique by a digest of the plan
/// and the CPU, the manifest's digest embedded, linked by `ftl_plan::artifact::link`.
pub fn write_artifact(plan: &Plan, dir: &Path, target: &Target) -> Result<(), Failure> {
    let digest = ftl_runtime::artifact::sha256_hex(
        format!(
            "cranelift {}\n{}",
            target.cpu,
            ftl_plan::fuse::print_plan(plan)
        )
        .as_bytes(),
    );
    let plan = ftl_plan::artifact::with_unique_symbols(plan, &digest);
    let manifest = ftl_plan::manifest::build(&plan).map_err(Failure::Internal)?;
    let digest = ftl_runtime::artifact::manifest_digest(&manifest);
    let code = object(&plan, &digest, target)?;
    ftl_plan::artifact::link(dir, target, &manifest, |path| {
        std::fs::write(path, &code).map_err(|e| format!("{}: {e}", path.display()))
    })
}

/// The object code of `plan`'s kernels for an `.ftlpack` (`ftl_plan::artifact::link`): each
/// kernel exported as its packed entry `_mlir_<symbol>` (the name the runtime's loader looks
/// up, shared with the MLIR backend's libraries), the f64 functions imported from the C
/// library, and `manifest_digest` embedded after the runtime's mark. Compiled for `target`
/// (`native`, or an x86-64 level from v2).
pub fn object(
    plan: &Plan,
    manifest_digest: &str,
    target: &Target,
) -> Result<Vec<u8>, CraneliftError> {
    let internal = |e: String| CraneliftError::Internal(e);
    let builder = ObjectBuilder::new(
        isa_for(Some(target), true)?,
        "ftl_kernels",
        cranelift_module::default_libcall_names(),
    )
    .map_err(|e| internal(e.to_string()))?;
    let mut module = ObjectModule::new(builder);
    for (k, slice) in loop_kernels(plan) {
        let name = format!("_mlir_{}", k.name());
        emit::define(&mut module, plan, k, slice, &name, Linkage::Export)?;
    }
    let id = module
        .declare_data("ftl_manifest_digest", Linkage::Export, false, false)
        .map_err(|e| internal(e.to_string()))?;
    let mut data = DataDescription::new();
    let mark = format!("{}{manifest_digest}", ftl_runtime::artifact::DIGEST_MARK);
    data.define(mark.into_bytes().into_boxed_slice());
    module
        .define_data(id, &data)
        .map_err(|e| internal(e.to_string()))?;
    module.finish().emit().map_err(|e| internal(e.to_string()))
}
