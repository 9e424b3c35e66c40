//! The driver: one entry per `ftc` command, returning text and diagnostics instead of printing,
//! so that tests call exactly what the CLI calls.

use crate::cache::{Cache, Lookup};
use crate::{run, testing};
use ftl_front::resolve::LoadOptions;
use ftl_front::{analyze, Analysis, MessageFormat};
use ftl_ir::pipeline::{self, EntryRequest, Failure, GradPolicy};
use ftl_plan::fuse;
use ftl_runtime::target::Target;
use ftl_runtime::Tensor;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How a command ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Status {
    /// Exit status 0.
    #[default]
    Success,
    /// A user mistake or a failed check: exit status 1.
    Failure,
    /// A compiler bug: exit status 101.
    InternalError,
}

/// What a run-time command printed and how it ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// How it ended.
    pub status: Status,
}

impl Outcome {
    /// Exit status 0 with this output.
    pub fn ok(stdout: String) -> Outcome {
        Outcome {
            stdout,
            stderr: String::new(),
            status: Status::Success,
        }
    }

    fn fail(stderr: String) -> Outcome {
        Outcome {
            stdout: String::new(),
            stderr,
            status: Status::Failure,
        }
    }

    /// Whether the command succeeded.
    pub fn success(&self) -> bool {
        self.status == Status::Success
    }
}

impl From<Result<String, Failure>> for Outcome {
    fn from(result: Result<String, Failure>) -> Outcome {
        match result {
            Ok(stdout) => Outcome::ok(stdout),
            Err(f) => Outcome {
                stdout: String::new(),
                stderr: f.render(),
                status: match f {
                    Failure::User { .. } => Status::Failure,
                    Failure::Internal(_) => Status::InternalError,
                },
            },
        }
    }
}

/// The arguments of `ftc run`.
#[derive(Debug, Default, Clone)]
pub struct RunArgs {
    /// The `.ftl` file.
    pub file: PathBuf,
    /// `--entry`.
    pub entry: String,
    /// `--inputs`.
    pub inputs: Option<PathBuf>,
    /// `--out`.
    pub out: Option<PathBuf>,
    /// `--set k=v`, in order.
    pub sets: Vec<String>,
    /// `--random --dims …`: the dims spec.
    pub random_dims: Option<String>,
    /// `--seed` for `--random`.
    pub seed: u64,
    /// Which backend runs it.
    pub backend: run::Backend,
    /// `--allow-extra-inputs`: ignore inputs the entry does not read instead of refusing them.
    pub allow_extra_inputs: bool,
    /// The compile cache the MLIR backend reads and fills (`None`: compile in process).
    pub cache: Option<Cache>,
}

/// The analysis of one file, or the outcome that reports its diagnostics.
fn analysis_or_fail(
    file: &Path,
    opts: &LoadOptions,
    format: MessageFormat,
) -> Result<Analysis, Outcome> {
    let analysis = analyze(&[file.to_path_buf()], opts);
    if analysis.diagnostics.is_empty() {
        Ok(analysis)
    } else {
        Err(Outcome::fail(analysis.render_with_summary(format)))
    }
}

/// Analyses `file` and runs `command` on it: every command that compiles an entry.
fn with_analysis(
    file: &Path,
    opts: &LoadOptions,
    format: MessageFormat,
    command: impl FnOnce(&Analysis) -> Result<String, Failure>,
) -> Outcome {
    match analysis_or_fail(file, opts, format) {
        Ok(analysis) => command(&analysis).into(),
        Err(o) => o,
    }
}

/// Reads, compiles and runs an entry (`ftc run`).
pub fn run_entry(args: &RunArgs, opts: &LoadOptions, format: MessageFormat) -> Outcome {
    with_analysis(&args.file, opts, format, |analysis| {
        run_checked(analysis, args)
    })
}

fn run_checked(analysis: &Analysis, args: &RunArgs) -> Result<String, Failure> {
    use ftl_front::codes::Code;
    let mut inputs: HashMap<String, Tensor> = HashMap::new();
    if let Some(path) = &args.inputs {
        let tensors = ftl_runtime::safetensors_io::read(path)
            .map_err(|e| Failure::new(Code::BadInputs, e.to_string()))?;
        inputs.extend(tensors);
    }
    // Random inputs draw an upstream gradient for adapters, so they get gradients too.
    let request = EntryRequest {
        entry: &args.entry,
        sets: &args.sets,
        grad: if args.random_dims.is_some() {
            GradPolicy::Differentiable
        } else {
            GradPolicy::WhenUpstreamGiven
        },
    };
    let g = pipeline::compile_entry(analysis, &request, &mut inputs)?;
    if let Some(spec) = &args.random_dims {
        let dims = run::parse_dims(spec)?;
        for (k, v) in run::random_inputs(&g, &dims, None, args.seed)? {
            inputs.entry(k).or_insert(v);
        }
    }
    run::check_inputs(&g, &mut inputs, args.allow_extra_inputs)?;
    let start = std::time::Instant::now();
    let (outputs, timings, header) = match args.backend {
        run::Backend::Mlir => {
            // A cache that cannot be used (no C compiler to link, an unwritable directory)
            // only costs the in-process compile.
            let cached = args.cache.as_ref().and_then(|c| c.load_or_build(&g).ok());
            let (outputs, timings, how, compile_ms) = match cached {
                Some((artifact, lookup)) => {
                    let compile_ms = start.elapsed().as_secs_f64() * 1e3;
                    let (o, t) = artifact.executor().run_timed(&inputs)?;
                    let how = match lookup {
                        Lookup::Hit => "cached kernels loaded in",
                        Lookup::Stored => "compile and cache",
                    };
                    (o, t, how, compile_ms)
                }
                None => {
                    let compiled = run::CompiledEntry::new(&g)?;
                    let compile_ms = start.elapsed().as_secs_f64() * 1e3;
                    let (o, t) = compiled.run_timed(&inputs)?;
                    (o, t, "compile", compile_ms)
                }
            };
            let run_ms: f64 = timings.iter().map(|(_, t)| t).sum();
            (
                outputs,
                timings,
                format!("mlir: {how} {compile_ms:.1} ms, kernels {run_ms:.2} ms"),
            )
        }
        run::Backend::Cranelift | run::Backend::Cuda => {
            let (compiled, name) = match args.backend {
                run::Backend::Cuda => (run::CompiledEntry::with_cuda(&g)?, "cuda"),
                _ => (run::CompiledEntry::with_cranelift(&g)?, "cranelift"),
            };
            let compile_ms = start.elapsed().as_secs_f64() * 1e3;
            let (outputs, timings) = compiled.run_timed(&inputs)?;
            let run_ms: f64 = timings.iter().map(|(_, t)| t).sum();
            (
                outputs,
                timings,
                format!("{name}: compile {compile_ms:.1} ms, kernels {run_ms:.2} ms"),
            )
        }
        run::Backend::Interp => {
            let outputs = run::run_graph(&g, &inputs)?;
            let ms = start.elapsed().as_secs_f64() * 1e3;
            (outputs, Vec::new(), format!("interpreter: {ms:.1} ms"))
        }
    };
    let mut stdout = format!(
        "{} ({}), {header}\n",
        g.name,
        format!("{:?}", g.kind).to_lowercase()
    );
    stdout.push_str(&run::table(&outputs));
    for (kernel, ms) in &timings {
        stdout.push_str(&format!("  kernel {kernel:<16} {ms:.3} ms\n"));
    }
    if let Some(out) = &args.out {
        ftl_runtime::safetensors_io::write_atomic(out, &outputs)?;
        stdout.push_str(&format!(
            "wrote {} tensors to {}\n",
            outputs.len(),
            out.display()
        ));
    }
    Ok(stdout)
}

/// The stages of one entry that `ftc build --emit` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryStage {
    /// The graph before autodiff.
    Ir,
    /// The graph with its gradients.
    Grad,
    /// The fused kernel plan (of the gradient graph for objectives and adapters).
    Kernels,
    /// The kernels as MLIR (scf, arith, math, memref).
    Mlir,
    /// The kernels lowered to the LLVM dialect.
    Llvm,
    /// The kernels as `gpu.func`s (the CUDA path).
    Gpu,
    /// The kernels as PTX for a GPU architecture (`sm_80`, `sm_90`).
    Ptx(&'static str),
}

/// The GPU architecture `--target cuda[:sm_XX]` names (default sm_90); E0092 otherwise.
pub fn cuda_chip(target: Option<&str>) -> Result<&'static str, Failure> {
    use ftl_front::codes::Code;
    let chip = match target {
        None | Some("cuda") => "sm_90",
        Some(t) => t.strip_prefix("cuda:").unwrap_or(""),
    };
    ftl_plan::backend::CUDA_CHIPS
        .into_iter()
        .find(|c| *c == chip)
        .ok_or_else(|| {
            Failure::new(
                Code::BadSetting,
                format!(
                    "`--target {}`: PTX is made for `cuda`, `cuda:sm_80` or `cuda:sm_90`",
                    target.unwrap_or_default()
                ),
            )
        })
}

/// `ftc build --emit ir|grad|kernels|mlir|llvm|gpu|ptx`: a stage of one entry.
pub fn emit_graph(
    file: &Path,
    entry: &str,
    sets: &[String],
    stage: EntryStage,
    opts: &LoadOptions,
    format: MessageFormat,
) -> Outcome {
    with_analysis(file, opts, format, |analysis| {
        let request = EntryRequest {
            entry,
            sets,
            grad: match stage {
                EntryStage::Ir => GradPolicy::Forward,
                _ => GradPolicy::Differentiable,
            },
        };
        let g = pipeline::compile_entry(analysis, &request, &mut HashMap::new())?;
        Ok(match stage {
            EntryStage::Ir | EntryStage::Grad => ftl_ir::print::print_graph(&g),
            EntryStage::Kernels => fuse::print_plan(&fuse::fuse(&g)),
            EntryStage::Mlir => crate::llvm::module_text(&fuse::fuse(&g))?,
            EntryStage::Llvm => crate::llvm::llvm_text(&fuse::fuse(&g))?,
            EntryStage::Gpu => crate::llvm::gpu_text(&fuse::fuse(&g))?,
            EntryStage::Ptx(chip) => crate::llvm::ptx(&fuse::fuse(&g), chip)?,
        })
    })
}

/// `ftc gradcheck`: finite differences against autodiff for one entry.
pub fn gradcheck_entry(
    file: &Path,
    entry: &str,
    dims: Option<&str>,
    sets: &[String],
    opts: &LoadOptions,
    format: MessageFormat,
) -> Outcome {
    let mut passed = true;
    let mut outcome = with_analysis(file, opts, format, |analysis| {
        let id = pipeline::find_entry(analysis, entry)?;
        let mut eopts = ftl_ir::lower::EntryOptions::default();
        let mut inputs = HashMap::new();
        ftl_ir::settings::apply_sets(&analysis.hir, id, sets, &mut eopts, &mut inputs)?;
        let dims = match dims {
            Some(d) => run::parse_dims(d)?,
            None => Default::default(),
        };
        let report = run::gradcheck(&analysis.hir, id, &dims, &inputs, &eopts)?;
        let mut stdout = String::new();
        for (name, n, e) in &report.inputs {
            stdout.push_str(&format!(
                "grad.{name}: {n} elements, max relative error {e:.2e}\n"
            ));
        }
        passed = report.worst() <= run::GRADCHECK_TOL;
        stdout.push_str(if passed {
            "gradcheck passed\n"
        } else {
            "gradcheck FAILED\n"
        });
        Ok(stdout)
    });
    if !passed {
        outcome.status = Status::Failure;
    }
    outcome
}

/// `.ftl` files under `paths` (directories recursively, sorted).
pub fn ftl_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn walk(p: &std::path::Path, out: &mut Vec<PathBuf>) {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            entries.sort();
            for e in entries {
                walk(&e, out);
            }
        } else if p.extension().is_some_and(|e| e == "ftl") {
            out.push(p.to_path_buf());
        }
    }
    for p in paths {
        if p.is_file() {
            out.push(p.clone());
        } else {
            walk(p, &mut out);
        }
    }
    out
}

/// `ftc test`: every test block of every file, one line each, then `N passed, N failed`.
pub fn test_files(
    paths: &[PathBuf],
    backend: run::Backend,
    opts: &LoadOptions,
    format: MessageFormat,
) -> Outcome {
    if backend == run::Backend::Cuda {
        // Every test would fail alike without a device: say why once.
        if let Err(e) = ftl_runtime::cuda::open(0) {
            return Outcome::from(Err::<String, Failure>(e.into()));
        }
    }
    let (mut passed, mut failed) = (0, 0);
    let mut stdout = String::new();
    let mut stderr = String::new();
    for file in ftl_files(paths) {
        let analysis = match analysis_or_fail(&file, opts, format) {
            Ok(a) => a,
            Err(o) => {
                stderr.push_str(&o.stderr);
                failed += 1;
                continue;
            }
        };
        for t in testing::run_tests(&analysis, backend) {
            let name = t.name.split_once("::").map_or(t.name.as_str(), |x| x.1);
            let name = name.trim_start_matches("test ");
            if t.failures.is_empty() {
                passed += 1;
                stdout.push_str(&format!("test {}: {name} ... ok\n", file.display()));
            } else {
                failed += 1;
                stdout.push_str(&format!("test {}: {name} ... FAILED\n", file.display()));
                for f in &t.failures {
                    stdout.push_str(&format!("    {f}\n"));
                }
            }
            for p in &t.printed {
                stdout.push_str(&format!("    print: {p}\n"));
            }
        }
    }
    stdout.push_str(&format!("{passed} passed, {failed} failed\n"));
    Outcome {
        stdout,
        stderr,
        status: if failed == 0 {
            Status::Success
        } else {
            Status::Failure
        },
    }
}

/// The arguments of `ftc bench`.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// The `.ftl` file.
    pub file: PathBuf,
    /// `--entry`.
    pub entry: String,
    /// `--dims B=4,T=256,V=32000`.
    pub dims: String,
    /// `--set k=v`.
    pub sets: Vec<String>,
    /// Timed repetitions.
    pub reps: usize,
    /// Which backend.
    pub backend: run::Backend,
}

/// A process's resident memory from `/proc/self/status` (`VmRSS` or `VmHWM`), in MiB.
fn proc_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `ftc bench`: random inputs of the given dims, compile once, warm up, time forward +
/// gradient `reps` times; prints per-kernel medians and
/// `median_ms=<x> min_ms=<x> peak_rss_mb=<x>`.
pub fn bench_entry(args: &BenchArgs, opts: &LoadOptions, format: MessageFormat) -> Outcome {
    with_analysis(&args.file, opts, format, |analysis| {
        use std::time::Instant;
        let mut inputs = HashMap::new();
        let request = EntryRequest {
            entry: &args.entry,
            sets: &args.sets,
            grad: GradPolicy::Differentiable,
        };
        let start = Instant::now();
        let g = pipeline::compile_entry(analysis, &request, &mut inputs)?;
        let compiled = run::CompiledEntry::for_backend(args.backend, &g)?;
        let compile_ms = start.elapsed().as_secs_f64() * 1e3;
        let baseline_mb = proc_mb("VmRSS:");
        let dims = run::parse_dims(&args.dims)?;
        for (k, v) in run::random_inputs(&g, &dims, None, 1)? {
            inputs.entry(k).or_insert(v);
        }
        run::check_inputs(&g, &mut inputs, false)?;
        let input_mb: f64 =
            inputs.values().map(|t| t.bytes().len() as f64).sum::<f64>() / 1048576.0;
        let once = |inputs: &HashMap<String, ftl_runtime::Tensor>| -> Result<
            (ftl_runtime::exec::Outputs, ftl_runtime::exec::Timings),
            Failure,
        > {
            match &compiled {
                Some(c) => c.run_timed(inputs),
                None => run::run_graph(&g, inputs).map(|o| (o, Vec::new())),
            }
        };
        let (outs, _) = once(&inputs)?;
        let output_mb: f64 = outs
            .iter()
            .map(|(_, t)| t.bytes().len() as f64)
            .sum::<f64>()
            / 1048576.0;
        if let Some(c) = &compiled {
            for (_, t) in outs {
                c.recycle(t);
            }
        }
        let (mut times, mut step_times) = (Vec::new(), Vec::new());
        let mut per_kernel: Vec<(String, Vec<f64>)> = Vec::new();
        for _ in 0..args.reps.max(1) {
            let t0 = Instant::now();
            let (outs, timings) = once(&inputs)?;
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            if let Some(c) = &compiled {
                // A training loop reuses its gradient buffers from step to step.
                for (_, t) in outs {
                    c.recycle(t);
                }
            }
            step_times.push(ftl_runtime::exec::steps_ms(&timings));
            for (k, (name, ms)) in timings.into_iter().enumerate() {
                if per_kernel.len() <= k {
                    per_kernel.push((name, Vec::new()));
                }
                per_kernel[k].1.push(ms);
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let mut text = format!(
            "{} ({}), {:?} backend, dims {}, {} reps\ncompile_ms={compile_ms:.1} inputs_mb={input_mb:.1} outputs_mb={output_mb:.1} baseline_rss_mb={baseline_mb:.1}\n",
            g.name,
            format!("{:?}", g.kind).to_lowercase(),
            args.backend,
            args.dims,
            times.len()
        );
        for (name, mut ts) in per_kernel {
            text.push_str(&format!("  {name:<16} median {:.2} ms\n", median(&mut ts)));
        }
        let min = times.iter().copied().fold(f64::INFINITY, f64::min);
        let med = median(&mut times);
        // The bytes every run must move at least (its inputs and outputs), per second of its
        // steps (on a device: without the copies between host and device; the interpreter
        // reports no steps).
        let steps = match median(&mut step_times) {
            s if s > 0.0 => s,
            _ => med,
        };
        let gb_s = (input_mb + output_mb) * 1048576.0 / (steps * 1e-3) / 1e9;
        text.push_str(&format!(
            "median_ms={med:.2} min_ms={min:.2} peak_rss_mb={:.1} steps_median_ms={steps:.2} \
             io_gb_s={gb_s:.1}",
            proc_mb("VmHWM:")
        ));
        if let Some(d) = compiled.as_ref().and_then(|c| c.executor.device()) {
            text.push_str(&ftl_runtime::device::bandwidth_fields(d, gb_s));
        }
        text.push('\n');
        Ok(text)
    })
}

/// What `ftc build -o` compiles, and how.
#[derive(Clone, Copy, Debug)]
pub struct BuildArgs<'a> {
    /// The `.ftl` file.
    pub file: &'a Path,
    /// The entry.
    pub entry: &'a str,
    /// `--set` values.
    pub sets: &'a [String],
    /// The artifact directory (`NAME.ftlpack`).
    pub output: &'a Path,
    /// `--target-cpu`: a level or `native` (Cranelift: from `x86-64-v2`).
    pub target_cpu: Option<&'a str>,
    /// `--target cuda[:sm_XX]`: a CUDA artifact (PTX) for this chip instead of CPU code.
    pub gpu: Option<&'static str>,
    /// Which backend compiles the kernels.
    pub backend: run::Backend,
}

/// `ftc build FILE --entry E -o NAME.ftlpack`: the compiled entry as an artifact directory, its
/// kernels (MLIR's or Cranelift's) compiled for `target_cpu` (default:
/// [`Target::default_for_artifact`]).
pub fn build_artifact(args: &BuildArgs<'_>, opts: &LoadOptions, format: MessageFormat) -> Outcome {
    use ftl_front::codes::Code;
    let BuildArgs {
        file,
        entry,
        sets,
        output,
        target_cpu,
        backend,
        gpu,
    } = *args;
    with_analysis(file, opts, format, |analysis| {
        let request = EntryRequest {
            entry,
            sets,
            grad: GradPolicy::Differentiable,
        };
        let g = pipeline::compile_entry(analysis, &request, &mut HashMap::new())?;
        let plan = fuse::fuse(&g);
        if let Some(chip) = gpu {
            if target_cpu.is_some() || !matches!(backend, run::Backend::Mlir | run::Backend::Cuda) {
                return Err(Failure::new(
                    Code::BadSetting,
                    "a CUDA artifact (`--target cuda…`) is PTX made through MLIR: it takes no \
                     `--target-cpu` and no other `--backend`",
                ));
            }
            crate::llvm::write_cuda_artifact(&plan, output, chip)?;
            return Ok(format!(
                "wrote {} ({} kernels, PTX for {chip})\n",
                output.display(),
                plan.kernels.len()
            ));
        }
        let target = match target_cpu {
            Some(name) => Target::named(name).map_err(|m| Failure::new(Code::BadSetting, m))?,
            None => Target::default_for_artifact(),
        };
        match backend {
            run::Backend::Mlir => crate::llvm::write_artifact(&plan, output, &target)?,
            run::Backend::Cranelift => ftl_cranelift::write_artifact(&plan, output, &target)?,
            // A CUDA build has its chip and returned above.
            run::Backend::Interp | run::Backend::Cuda => {
                return Err(Failure::new(
                    Code::BadSetting,
                    "the interpreter makes no artifact: `-o` needs `--backend mlir`, `cranelift` \
                     or `cuda`",
                ))
            }
        }
        Ok(format!(
            "wrote {} ({} kernels, for CPU {})\n",
            output.display(),
            plan.kernels.len(),
            target.cpu
        ))
    })
}
