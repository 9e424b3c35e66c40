//! Lowering MLIR text to LLVM with melior and compiling it in process (the ExecutionEngine
//! JIT) or to an object file. The pipeline is the one verified in research/compiler.md §1.

use melior::dialect::DialectRegistry;
use melior::ir::block::BlockLike;
use melior::ir::operation::{OperationLike, OperationMutLike, WalkOrder, WalkResult};
use melior::ir::{Attribute, Module};
use melior::pass::PassManager;
use melior::utility::{
    parse_pass_pipeline, register_all_dialects, register_all_llvm_translations, register_all_passes,
};
use melior::{Context, ExecutionEngine};
use std::sync::Once;

/// The lowering from our kernels (scf, arith, math, memref) to the LLVM dialect.
pub const PIPELINE: &str = "builtin.module(convert-scf-to-cf,expand-strided-metadata,lower-affine,\
convert-to-llvm,reconcile-unrealized-casts)";

static PASSES: Once = Once::new();

fn context() -> Context {
    // Registering passes twice double-frees inside MLIR (melior's own note), hence `Once`.
    PASSES.call_once(register_all_passes);
    let registry = DialectRegistry::new();
    register_all_dialects(&registry);
    let ctx = Context::new();
    ctx.append_dialect_registry(&registry);
    ctx.load_all_available_dialects();
    register_all_llvm_translations(&ctx);
    ctx
}

/// Parses, verifies and lowers `text`; returns the LLVM-dialect module as text.
pub fn lower_to_llvm_text(text: &str) -> Result<String, String> {
    let ctx = context();
    let module = lowered(&ctx, text)?;
    Ok(module.as_operation().to_string())
}

/// Parses and verifies `text`, runs `pipeline` on it and returns the result as text (the
/// CUDA path's NVVM pipeline, `crate::cuda`).
pub fn run_pipeline(text: &str, pipeline: &str) -> Result<String, String> {
    let ctx = context();
    let mut module = Module::parse(&ctx, text)
        .ok_or_else(|| "internal error: the generated MLIR does not parse".to_string())?;
    if !module.as_operation().verify() {
        return Err("internal error: the generated MLIR does not verify".into());
    }
    let pm = PassManager::new(&ctx);
    parse_pass_pipeline(pm.as_operation_pass_manager(), pipeline)
        .map_err(|e| format!("internal error: pass pipeline: {e}"))?;
    pm.run(&mut module)
        .map_err(|e| format!("internal error: the pipeline failed: {e}"))?;
    Ok(module.as_operation().to_string())
}

fn lowered<'c>(ctx: &'c Context, text: &str) -> Result<Module<'c>, String> {
    let mut module = Module::parse(ctx, text)
        .ok_or_else(|| "internal error: the generated MLIR does not parse".to_string())?;
    if !module.as_operation().verify() {
        return Err("internal error: the generated MLIR does not verify".into());
    }
    let pm = PassManager::new(ctx);
    parse_pass_pipeline(pm.as_operation_pass_manager(), PIPELINE)
        .map_err(|e| format!("internal error: pass pipeline: {e}"))?;
    pm.run(&mut module)
        .map_err(|e| format!("internal error: lowering to LLVM failed: {e}"))?;
    // An op the pipeline left in another dialect would make the ExecutionEngine fail to
    // translate the module and hand back an engine that crashes when used: refuse it here.
    let mut stray = None;
    module.as_operation().walk(WalkOrder::PreOrder, |op| {
        let name = op
            .name()
            .as_string_ref()
            .as_str()
            .unwrap_or("?")
            .to_string();
        if name == "builtin.module" || name.starts_with("llvm.") {
            WalkResult::Advance
        } else {
            stray = Some(name);
            WalkResult::Interrupt
        }
    });
    match stray {
        Some(op) => Err(format!(
            "internal error: `{op}` was not lowered to the LLVM dialect"
        )),
        None => Ok(module),
    }
}

/// Pins every function of the lowered `module` to `cpu`. The ExecutionEngine's target machine
/// is the host's; LLVM takes a function's own `target-cpu` and `target-features` attributes
/// over it (both must be set: a function without features would get the host's). `no_inline`
/// keeps a kernel out of the engine's packed wrapper, which is compiled for the host.
fn target_cpu(ctx: &Context, module: &Module, cpu: &str) -> Result<(), String> {
    let bad = || format!("internal error: cannot pin the kernels to CPU `{cpu}`");
    let name = Attribute::parse(ctx, &format!("\"{cpu}\"")).ok_or_else(bad)?;
    // Any non-empty feature list replaces the host's; the CPU level then decides the rest.
    let features = Attribute::parse(ctx, "#llvm.target_features<[\"+sse2\"]>").ok_or_else(bad)?;
    let unit = Attribute::parse(ctx, "unit").ok_or_else(bad)?;
    let body = module.body();
    let mut op = body.first_operation_mut();
    while let Some(mut f) = op {
        if f.name().as_string_ref().as_str() == Ok("llvm.func") {
            f.set_attribute("target_cpu", name);
            f.set_attribute("target_features", features);
            f.set_attribute("no_inline", unit);
        }
        op = f.next_in_block_mut();
    }
    Ok(())
}

/// Compiled kernels held by an in-process JIT.
pub struct Jit {
    engine: ExecutionEngine,
    // The engine owns its LLVM module; the MLIR context only has to outlive compilation, but
    // keeping it avoids relying on that.
    _ctx: Context,
}

impl Jit {
    /// Compiles `text` at LLVM -O3 for the host CPU.
    pub fn compile(text: &str) -> Result<Jit, String> {
        Jit::compile_with(text, false, None)
    }

    /// Compiles `text` at -O3 as position-independent code (for a shared object), for the host
    /// CPU or, given `cpu`, for that CPU level (`x86-64-v3`) and no more.
    pub fn compile_with(text: &str, pic: bool, cpu: Option<&str>) -> Result<Jit, String> {
        let ctx = context();
        let engine = {
            let module = lowered(&ctx, text)?;
            if let Some(cpu) = cpu {
                target_cpu(&ctx, &module, cpu)?;
            }
            ExecutionEngine::new(&module, 3, &[], true, pic)
        };
        let jit = Jit { engine, _ctx: ctx };
        // `FTL_DUMP_OBJECT=path` writes the compiled code for inspection (objdump -d).
        if let Some(path) = std::env::var_os("FTL_DUMP_OBJECT") {
            jit.write_object(std::path::Path::new(&path));
        }
        Ok(jit)
    }

    /// Writes the compiled code as an object file.
    pub fn write_object(&self, path: &std::path::Path) {
        self.engine.dump_to_object_file(&path.to_string_lossy());
    }
}

impl ftl_plan::backend::Kernels for Jit {
    /// The packed entry point of a kernel (`_mlir_<symbol>`), if it exists.
    fn entry(&self, symbol: &str) -> Option<ftl_runtime::exec::PackedFn> {
        let p = self.engine.lookup(&format!("_mlir_{symbol}"));
        if p.is_null() {
            return None;
        }
        // SAFETY: `_mlir_<symbol>` is the ExecutionEngine's packed wrapper, whose C signature is
        // `void(void **)`; the pointer stays valid while `self` (the engine) lives.
        #[allow(unsafe_code)]
        Some(unsafe { std::mem::transmute::<*mut (), ftl_runtime::exec::PackedFn>(p) })
    }
}
