//! The CUDA path's code generation: a fused plan's kernels as `gpu.func`s ([`emit::Flavor::Gpu`]),
//! lowered in process by MLIR's NVVM pipeline to PTX for sm_80 or sm_90
//! (`nvvm-attach-target`, `convert-gpu-to-nvvm`, `gpu-module-to-binary{format=isa}`, the
//! pipeline of research/compiler.md). libdevice (`libdevice.10.bc`) is linked for the few
//! functions NVVM maps there (`fabs`, `sqrt`, f64 `log1p`…); the f32 transcendentals are the
//! shared polynomials, as on the CPU.
//!
//! Mapping (first version, before a GPU was available to tune it): the threads of a launch share
//! the points of the kernel's domain (`ftl_plan::manifest::grid_dims`: the dims of its output,
//! flattened row-major), each thread taking every stride-th point (a grid-stride loop), so the
//! threads of a warp touch neighbouring elements of a map; a point's reductions run in its
//! thread. A kernel without a grid (tails, the prelude) runs on thread 0. Host steps (GEMM,
//! solve, argsort, decompositions) are not kernels and stay with the runtime.

use crate::emit;
use ftl_plan::backend::BackendError;
use ftl_plan::fuse::Plan;
use std::path::{Path, PathBuf};

/// The GPU architectures PTX is generated for.
pub use ftl_plan::backend::CUDA_CHIPS as CHIPS;

/// The environment variable naming `libdevice.10.bc`.
pub const LIBDEVICE_VAR: &str = "FTL_LIBDEVICE";

/// Why PTX could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CudaError {
    /// A chip other than [`CHIPS`].
    UnknownChip(String),
    /// No libdevice found (or a path the pass options cannot carry).
    NoLibdevice(String),
    /// The plan or its lowering failed: a compiler bug.
    Internal(String),
}

impl From<BackendError> for CudaError {
    fn from(e: BackendError) -> CudaError {
        CudaError::Internal(e.0)
    }
}

/// `libdevice.10.bc`: `$FTL_LIBDEVICE`, else under `$CUDA_HOME` or `/usr/local/cuda`
/// (`nvvm/libdevice/`). PyPI's `nvidia-cuda-nvcc-cu12` ships one too (point the variable at
/// `site-packages/nvidia/cuda_nvcc/nvvm/libdevice/libdevice.10.bc`).
pub fn libdevice() -> Result<PathBuf, CudaError> {
    if let Some(p) = std::env::var_os(LIBDEVICE_VAR).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(CudaError::NoLibdevice(format!(
                "{LIBDEVICE_VAR}={} is not a file",
                p.display()
            )))
        };
    }
    let roots = std::env::var_os("CUDA_HOME")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/usr/local/cuda")]);
    for root in roots {
        let p = root.join("nvvm").join("libdevice").join("libdevice.10.bc");
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(CudaError::NoLibdevice(format!(
        "CUDA code needs libdevice.10.bc (CUDA toolkit, or PyPI's nvidia-cuda-nvcc-cu12): set \
         {LIBDEVICE_VAR} to its path"
    )))
}

/// The NVVM pipeline for `chip`, linking `libdevice`.
fn pipeline(chip: &str, libdevice: &Path) -> Result<String, CudaError> {
    if !CHIPS.contains(&chip) {
        return Err(CudaError::UnknownChip(chip.to_string()));
    }
    let lib = libdevice.to_str().filter(|p| {
        !p.chars()
            .any(|c| c.is_whitespace() || matches!(c, ',' | '{' | '}' | '"'))
    });
    let Some(lib) = lib else {
        return Err(CudaError::NoLibdevice(format!(
            "{}: a libdevice path with spaces, commas or braces cannot be passed to MLIR",
            libdevice.display()
        )));
    };
    Ok(format!(
        "builtin.module(nvvm-attach-target{{chip={chip} O=3 l={lib}}},\
         gpu.module(convert-scf-to-cf,expand-strided-metadata,lower-affine,convert-gpu-to-nvvm),\
         reconcile-unrealized-casts,gpu-module-to-binary{{format=isa}})"
    ))
}

/// The plan's kernels as `gpu.func`s (`ftc build --emit gpu`).
pub fn gpu_text(plan: &Plan) -> Result<String, CudaError> {
    Ok(emit::gpu_module_text(plan, plan.prelude.as_ref())?)
}

/// The plan's CUDA kernels compiled for the host ([`emit::Flavor::GpuOnHost`]): each kernel
/// has the CPU's packed signature with `lo` the thread's index and `hi` the grid's thread
/// count. The oracle for the CUDA mapping where there is no GPU: run once per thread of a
/// launch, they compute what the PTX computes on the device (compiler/ftc/tests/core/device.rs).
pub fn host_emulation(plan: &Plan) -> Result<crate::jit::Jit, CudaError> {
    let text = emit::gpu_on_host_module_text(plan, plan.prelude.as_ref())?;
    crate::jit::Jit::compile(&text).map_err(CudaError::Internal)
}

/// The plan's kernels as PTX for `chip` (`ftc build --emit ptx`).
pub fn ptx(plan: &Plan, chip: &str, libdevice: &Path) -> Result<String, CudaError> {
    let pipeline = pipeline(chip, libdevice)?;
    let lowered =
        crate::jit::run_pipeline(&gpu_text(plan)?, &pipeline).map_err(CudaError::Internal)?;
    assembly(&lowered).ok_or_else(|| {
        CudaError::Internal("the NVVM pipeline produced no PTX assembly".to_string())
    })
}

/// Writes the CUDA artifact `dir` (`NAME.ftlpack`: `manifest.json` and `kernels.ptx`) for
/// `chip`: kernels named uniquely for this entry and build (as CPU artifacts), the PTX ending
/// in a comment holding the manifest's digest, which the loader checks.
pub fn write_artifact(
    plan: &Plan,
    dir: &Path,
    chip: &str,
    libdevice: &Path,
) -> Result<(), ftl_ir::pipeline::Failure> {
    use ftl_runtime::artifact;
    let digest = artifact::sha256_hex(gpu_text(plan).map_err(internal)?.as_bytes());
    let plan = ftl_plan::artifact::with_unique_symbols(plan, &digest);
    let manifest = ftl_plan::manifest::build(&plan).map_err(ftl_ir::pipeline::Failure::Internal)?;
    let ptx = ptx(&plan, chip, libdevice).map_err(internal)?;
    let sealed = format!(
        "{ptx}\n// {}{}\n",
        artifact::DIGEST_MARK,
        artifact::manifest_digest(&manifest)
    );
    let target = ftl_runtime::target::Target::cuda(chip);
    ftl_runtime::output::write_dir(dir, artifact::is_artifact, |tmp| {
        std::fs::write(tmp.join(artifact::KERNELS_PTX), &sealed).map_err(|e| e.to_string())?;
        artifact::seal(tmp, &target, &manifest)
    })?;
    Ok(())
}

/// A failure the caller checked could not happen (a known chip, a usable libdevice).
fn internal(e: CudaError) -> ftl_ir::pipeline::Failure {
    ftl_ir::pipeline::Failure::Internal(format!("{e:?}"))
}

/// The PTX in a lowered module's `#gpu.object` (`assembly = "…"`, MLIR's escaped string:
/// `\XX` hex bytes).
fn assembly(module: &str) -> Option<String> {
    let start = module.find("assembly = \"")? + "assembly = \"".len();
    let bytes = &module.as_bytes()[start..];
    let mut out = Vec::new();
    let mut k = 0;
    while k < bytes.len() {
        match bytes[k] {
            b'"' => return String::from_utf8(out).ok(),
            b'\\' if k + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[k + 1..k + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                k += 3;
            }
            b => {
                out.push(b);
                k += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembly_strings_are_unescaped() {
        let m = r#"gpu.binary @k [#gpu.object<#nvvm.target, assembly = "//\0A.version 7.8\0A\09a\5Cb\22">]"#;
        assert_eq!(assembly(m).as_deref(), Some("//\n.version 7.8\n\ta\\b\""));
        assert_eq!(assembly("no object"), None);
    }

    #[test]
    fn only_known_chips_and_plain_paths() {
        let lib = Path::new("/x/libdevice.10.bc");
        assert!(pipeline("sm_90", lib).unwrap().contains("chip=sm_90"));
        assert_eq!(
            pipeline("sm_75", lib),
            Err(CudaError::UnknownChip("sm_75".into()))
        );
        assert!(matches!(
            pipeline("sm_80", Path::new("/a b/libdevice.10.bc")),
            Err(CudaError::NoLibdevice(_))
        ));
    }
}
