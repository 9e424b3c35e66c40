//! `ftc`, the FTL compiler driver.

use clap::{Parser, Subcommand, ValueEnum};
use ftc::cache::{Cache, CACHE_DIR_VAR};
use ftc::driver::{self, Status};
use ftl_front::codes::Code;
use ftl_front::resolve::LoadOptions;
use ftl_front::{analysis, Analysis, MessageFormat};
use ftl_ir::pipeline::INTERNAL_ERROR;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// ftc — compile FTL training objectives, adapters and sampling steps.
///
/// Start with `ftc check examples/dpo.ftl`: it type-checks the file and everything it imports
/// and reports every error with its location and an error code. `ftc explain E0041` describes a
/// code at length. `ftc build FILE --emit ast|hir` prints a compiler stage (`--emit ir|grad
/// --entry E` the tensor graph). `ftc run FILE --entry E --random --dims B=4` runs an entry on
/// random inputs; `ftc test DIR` runs the `test` blocks.
#[derive(Parser)]
#[command(
    name = "ftc",
    version,
    about,
    long_about,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where imports are found, shared by the commands that read source.
#[derive(clap::Args, Clone)]
struct SourceArgs {
    /// Standard library directory for `import std.…` (default: $FTL_PATH, then the library built
    /// into ftc).
    #[arg(long, value_name = "DIR")]
    lib: Option<PathBuf>,
    /// Project root that string imports must stay inside (default: each file's directory).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// How to print errors: human (with source excerpts), short (one line each), json.
    #[arg(long, value_enum, default_value = "human")]
    message_format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Short,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Stage {
    /// The parsed file, printed back as canonical FTL source.
    Ast,
    /// The checked program: resolved names, typed expressions, bound dims.
    Hir,
    /// The tensor graph of one entry (`--entry`), simplified.
    Ir,
    /// The graph with its gradients (autodiff, then simplified).
    Grad,
    /// The fused kernels: one line each, `kernel <name> [<loop dims>] reads(...) writes(...)`
    /// (a tail kernel of unrelated nests gives each written buffer its own `[dims]`).
    Kernels,
    /// The kernels as MLIR (scf, arith, math and memref dialects).
    Mlir,
    /// The kernels lowered to the LLVM dialect.
    Llvm,
    /// The kernels as `gpu.func`s for the CUDA path (threads share each kernel's points in a
    /// grid-stride loop).
    Gpu,
    /// The kernels as PTX (`--target cuda[:sm_80|sm_90]`; needs libdevice: `FTL_LIBDEVICE`).
    Ptx,
}

impl Stage {
    /// The stage of one entry, `None` for the whole-file stages (ast, hir); `chip` is the GPU
    /// `--target` names (for ptx).
    fn entry_stage(self, chip: &'static str) -> Option<driver::EntryStage> {
        match self {
            Stage::Ast | Stage::Hir => None,
            Stage::Ir => Some(driver::EntryStage::Ir),
            Stage::Grad => Some(driver::EntryStage::Grad),
            Stage::Kernels => Some(driver::EntryStage::Kernels),
            Stage::Mlir => Some(driver::EntryStage::Mlir),
            Stage::Llvm => Some(driver::EntryStage::Llvm),
            Stage::Gpu => Some(driver::EntryStage::Gpu),
            Stage::Ptx => Some(driver::EntryStage::Ptx(chip)),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    /// Fused kernels through MLIR and LLVM (the default where ftc is built with LLVM).
    Mlir,
    /// The reference interpreter (the oracle the compiled path is tested against).
    Interp,
    /// Fused kernels compiled by Cranelift in milliseconds, without LLVM (slower kernels than
    /// MLIR's).
    Cranelift,
    /// Fused kernels as PTX, run on CUDA device 0 (needs an NVIDIA driver, an sm_80 or newer
    /// GPU and libdevice: `FTL_LIBDEVICE`).
    Cuda,
}

#[derive(Subcommand)]
enum Command {
    /// Type-check FILEs and their imports; exit 0 when clean, 1 on any error.
    Check {
        /// `.ftl` files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Rewrite FILEs in the canonical layout (comments and blank lines kept); with `--check`,
    /// only list those that are not formatted (exit 1 if any).
    Fmt {
        /// `.ftl` files to format.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Change nothing: exit 1 and name each file that is not formatted.
        #[arg(long)]
        check: bool,
        /// How to print errors: human (with source excerpts), short (one line each), json.
        #[arg(long, value_enum, default_value = "human")]
        message_format: Format,
    },
    /// Serve the Language Server Protocol on stdin/stdout (diagnostics, hover, go to
    /// definition, completion, signature help) for editors.
    Lsp {
        /// Standard library directory for `import std.…` (default: $FTL_PATH, then the library
        /// built into ftc).
        #[arg(long, value_name = "DIR")]
        lib: Option<PathBuf>,
    },
    /// Write the standard-library reference (`stdlib.md`, and `stdlib.html` with search) from
    /// the library's doc comments and signatures into DIR.
    Doc {
        /// The directory to write into (it must exist).
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: PathBuf,
        /// The library to document (default: the one built into ftc).
        #[arg(long, value_name = "DIR")]
        lib: Option<PathBuf>,
    },
    /// Print a compiler stage of FILE.
    Build {
        /// The `.ftl` file.
        file: PathBuf,
        /// Which stage to print.
        #[arg(long, value_enum, required_unless_present = "output")]
        emit: Option<Stage>,
        /// The entry for `--emit ir|grad|kernels|mlir|llvm` and `-o` (`sigmoid`, `lora.merge`).
        #[arg(long)]
        entry: Option<String>,
        /// Static options, e.g. `--set use_rslora=true`.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        sets: Vec<String>,
        /// Write the compiled entry as an artifact directory `NAME.ftlpack` (manifest and
        /// shared object, or PTX with `--target cuda…`), which `ftl-run` runs without the
        /// compiler.
        #[arg(short = 'o', long = "output", value_name = "NAME.ftlpack")]
        output: Option<PathBuf>,
        /// The CPU the artifact's kernels are compiled for: `native` (this machine's) or an
        /// x86-64 level (`x86-64`, `x86-64-v2`, `x86-64-v3`, `x86-64-v4`); default x86-64-v3.
        /// `ftl-run` refuses a machine that lacks the level's features.
        #[arg(long, value_name = "CPU", requires = "output")]
        target_cpu: Option<String>,
        /// The GPU for `--emit ptx`, or with `-o` of a CUDA artifact (PTX, run on the GPU by
        /// `ftl-run`): `cuda` (sm_90), `cuda:sm_80` (runs on sm_80 and later) or `cuda:sm_90`.
        #[arg(long, value_name = "cuda[:sm_XX]")]
        target: Option<String>,
        /// Which backend compiles the artifact (`-o`): MLIR or Cranelift (no LLVM; for
        /// `native` or an x86-64 level from v2).
        #[arg(long, value_enum, default_value = DEFAULT_BACKEND)]
        backend: Backend,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Run an entry on tensors: writes `loss`, `metric.<m>`, `grad.<x>` (objectives), the
    /// output and, given `grad.y`, its gradients (adapters), or the declared outputs (steps).
    Run {
        /// The `.ftl` file.
        file: PathBuf,
        /// The entry: an objective, adapter or step, or `adapter.init|merge|unmerge`.
        #[arg(long)]
        entry: String,
        /// A safetensors file holding the inputs by parameter name.
        #[arg(long, value_name = "IN.safetensors")]
        inputs: Option<PathBuf>,
        /// Where to write the outputs (atomically); without it they are only printed.
        #[arg(long, value_name = "OUT.safetensors")]
        out: Option<PathBuf>,
        /// Ignore inputs the entry does not read (by default they are an error, so that a
        /// misspelled name is not silently dropped).
        #[arg(long)]
        allow_extra_inputs: bool,
        /// A hyperparameter, scalar input or static option: `--set beta=0.5`.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        sets: Vec<String>,
        /// Draw valid random inputs for whatever the inputs file lacks (needs `--dims`).
        #[arg(long, requires = "dims")]
        random: bool,
        /// Dim sizes for `--random`: `B=4,T=16,V=50` (a pack: `S=2x3`).
        #[arg(long)]
        dims: Option<String>,
        /// Seed of the random inputs.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Which backend runs the kernels.
        #[arg(long, value_enum, default_value = DEFAULT_BACKEND)]
        backend: Backend,
        /// Compile in process without reading or filling the compile cache.
        #[arg(long)]
        no_cache: bool,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// The compile cache of `ftc run` (`$FTL_CACHE_DIR`, else `$XDG_CACHE_HOME/ftl`, else
    /// `~/.cache/ftl`): `info` shows it, `clear` empties it.
    Cache {
        /// What to do.
        #[arg(value_enum)]
        action: CacheAction,
    },
    /// Run every `test` block under PATHs (files or directories); ends with `N passed, N failed`.
    Test {
        /// Files or directories (default: the current directory).
        paths: Vec<PathBuf>,
        /// Which backend runs the entries the tests call.
        #[arg(long, value_enum, default_value = DEFAULT_BACKEND)]
        backend: Backend,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Merge a PEFT LoRA/DoRA adapter directory into base weights (PEFT's `merge_and_unload`).
    Merge {
        /// The base weights (`<module>.weight` keys).
        base: PathBuf,
        /// The adapter directory (`adapter_config.json`, `adapter_model.safetensors`).
        adapter: PathBuf,
        /// Where to write the merged weights.
        #[arg(short = 'o', long = "output", value_name = "OUT.safetensors")]
        output: PathBuf,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Write a fresh PEFT LoRA adapter (PEFT's default init) for the target modules of a base.
    Init {
        /// The adapter family (only `lora` today).
        #[arg(long, default_value = "lora")]
        adapter: String,
        /// The base weights.
        #[arg(long)]
        base: PathBuf,
        /// Module names to adapt, comma-separated (`q_proj,v_proj`).
        #[arg(long, value_delimiter = ',')]
        target: Vec<String>,
        /// Rank.
        #[arg(short = 'r', default_value_t = 8)]
        r: u32,
        /// `lora_alpha`.
        #[arg(long, default_value_t = 8.0)]
        lora_alpha: f64,
        /// Seed of the random init.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The adapter directory to write.
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: PathBuf,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Time an entry (forward and gradient) on random inputs of the given dims.
    Bench {
        /// The `.ftl` file.
        file: PathBuf,
        /// The entry.
        #[arg(long)]
        entry: String,
        /// Dim sizes: `B=4,T=256,V=32000`.
        #[arg(long)]
        dims: String,
        /// Hyperparameters or static options: `--set beta=0.5`.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        sets: Vec<String>,
        /// Timed repetitions (after one warm-up run).
        #[arg(long, default_value_t = 10)]
        reps: usize,
        /// Which backend runs it.
        #[arg(long, value_enum, default_value = DEFAULT_BACKEND)]
        backend: Backend,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Compare an entry's gradients with central finite differences in f64.
    Gradcheck {
        /// The `.ftl` file.
        file: PathBuf,
        /// The objective or adapter.
        #[arg(long)]
        entry: String,
        /// Dim sizes (default 3 each): `B=3,T=4`.
        #[arg(long)]
        dims: Option<String>,
        /// Hyperparameters or static options: `--set beta=0.5`.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        sets: Vec<String>,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Explain an error code, e.g. `ftc explain E0041`.
    Explain {
        /// The code (`E0041`, `e41` and `41` all work).
        code: String,
    },
}

/// `ftc cache` actions.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum CacheAction {
    /// Where the cache is, its entries and size.
    Info,
    /// Remove every cached entry.
    Clear,
}

/// `--backend`'s default: MLIR where it is built, else Cranelift.
const DEFAULT_BACKEND: &str = if cfg!(feature = "mlir") {
    "mlir"
} else {
    "cranelift"
};

impl From<Backend> for ftc::run::Backend {
    fn from(b: Backend) -> Self {
        match b {
            Backend::Mlir => ftc::run::Backend::Mlir,
            Backend::Interp => ftc::run::Backend::Interp,
            Backend::Cranelift => ftc::run::Backend::Cranelift,
            Backend::Cuda => ftc::run::Backend::Cuda,
        }
    }
}

impl SourceArgs {
    fn options(&self) -> LoadOptions {
        LoadOptions {
            lib_dir: self.lib.clone(),
            root: self.root.clone(),
            ..LoadOptions::default()
        }
    }

    fn format(&self) -> MessageFormat {
        self.message_format.into()
    }
}

impl From<Format> for MessageFormat {
    fn from(f: Format) -> MessageFormat {
        match f {
            Format::Human => MessageFormat::Human,
            Format::Short => MessageFormat::Short,
            Format::Json => MessageFormat::Json,
        }
    }
}

fn report(analysis: &Analysis, format: MessageFormat) -> bool {
    if analysis.diagnostics.is_empty() {
        return true;
    }
    let text = analysis.render_with_summary(format);
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
    false
}

fn finish(o: driver::Outcome) -> ExitCode {
    let _ = std::io::stdout().lock().write_all(o.stdout.as_bytes());
    let _ = std::io::stderr().lock().write_all(o.stderr.as_bytes());
    match o.status {
        Status::Success => ExitCode::SUCCESS,
        Status::Failure => ExitCode::FAILURE,
        Status::InternalError => ExitCode::from(101),
    }
}

fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check { files, source } => {
            let analysis = ftl_front::analyze(&files, &source.options());
            if report(&analysis, source.format()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Fmt {
            files,
            check,
            message_format,
        } => finish(ftc::fmt::format_files(&files, check, message_format.into())),
        Command::Lsp { lib } => match ftc::lsp::serve(lib) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Doc { out, lib } => finish(ftc::reference::write_reference(lib.as_deref(), &out)),
        Command::Build {
            file,
            entry,
            sets,
            output: Some(output),
            target_cpu,
            target,
            backend,
            source,
            ..
        } => {
            let Some(entry) = entry else {
                eprintln!("error: `-o NAME.ftlpack` needs `--entry NAME`");
                return ExitCode::FAILURE;
            };
            let gpu = if target.is_some() || matches!(backend, Backend::Cuda) {
                match driver::cuda_chip(target.as_deref()) {
                    Ok(chip) => Some(chip),
                    Err(f) => {
                        eprint!("{}", f.render());
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                None
            };
            let args = driver::BuildArgs {
                file: &file,
                entry: &entry,
                sets: &sets,
                output: &output,
                target_cpu: target_cpu.as_deref(),
                backend: backend.into(),
                gpu,
            };
            finish(driver::build_artifact(
                &args,
                &source.options(),
                source.format(),
            ))
        }
        Command::Build {
            file,
            emit,
            entry,
            sets,
            target,
            source,
            ..
        } => {
            let chip = match driver::cuda_chip(target.as_deref()) {
                Ok(chip) => chip,
                Err(f) => {
                    eprint!("{}", f.render());
                    return ExitCode::FAILURE;
                }
            };
            let Some(stage) = emit.and_then(|e| e.entry_stage(chip)) else {
                let analysis = ftl_front::analyze(&[file], &source.options());
                if !report(&analysis, source.format()) {
                    return ExitCode::FAILURE;
                }
                let text = match emit {
                    Some(Stage::Ast) => analysis::emit_ast(&analysis),
                    _ => analysis::emit_hir(&analysis),
                };
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
                return ExitCode::SUCCESS;
            };
            let Some(entry) = entry else {
                eprintln!("error: `--emit ir|grad|kernels|mlir|llvm|gpu|ptx` needs `--entry NAME`");
                return ExitCode::FAILURE;
            };
            finish(driver::emit_graph(
                &file,
                &entry,
                &sets,
                stage,
                &source.options(),
                source.format(),
            ))
        }
        Command::Run {
            file,
            entry,
            inputs,
            out,
            sets,
            random,
            dims,
            seed,
            backend,
            no_cache,
            allow_extra_inputs,
            source,
        } => {
            let args = driver::RunArgs {
                file,
                entry,
                inputs,
                out,
                sets,
                random_dims: if random { dims } else { None },
                seed,
                backend: backend.into(),
                allow_extra_inputs,
                cache: if no_cache { None } else { Cache::from_env() },
            };
            finish(driver::run_entry(&args, &source.options(), source.format()))
        }
        Command::Cache { action } => {
            let Some(cache) = Cache::from_env() else {
                println!(
                    "no compile cache ({CACHE_DIR_VAR} is empty, or neither it nor HOME is set)"
                );
                return ExitCode::SUCCESS;
            };
            match action {
                CacheAction::Info => print!("{}", cache.info()),
                CacheAction::Clear => match cache.clear() {
                    Ok(n) => println!("removed {n} cached entries from {}", cache.dir().display()),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                },
            }
            ExitCode::SUCCESS
        }
        Command::Test {
            paths,
            backend,
            source,
        } => {
            let paths = if paths.is_empty() {
                vec![PathBuf::from(".")]
            } else {
                paths
            };
            finish(driver::test_files(
                &paths,
                backend.into(),
                &source.options(),
                source.format(),
            ))
        }
        Command::Merge {
            base,
            adapter,
            output,
            source,
        } => finish(ftc::peft::merge(
            &base,
            &adapter,
            &output,
            &source.options(),
        )),
        Command::Init {
            adapter,
            base,
            target,
            r,
            lora_alpha,
            seed,
            output,
            source,
        } => {
            if adapter != "lora" {
                eprintln!(
                    "error[{}]: `--adapter {adapter}`: only `lora` is supported by `ftc init` today",
                    Code::BadSetting.id()
                );
                return ExitCode::FAILURE;
            }
            let args = ftc::peft::InitArgs {
                base,
                targets: target,
                r,
                lora_alpha,
                seed,
                out: output,
            };
            finish(ftc::peft::init(&args, &source.options()))
        }
        Command::Bench {
            file,
            entry,
            dims,
            sets,
            reps,
            backend,
            source,
        } => {
            let args = driver::BenchArgs {
                file,
                entry,
                dims,
                sets,
                reps,
                backend: backend.into(),
            };
            finish(driver::bench_entry(
                &args,
                &source.options(),
                source.format(),
            ))
        }
        Command::Gradcheck {
            file,
            entry,
            dims,
            sets,
            source,
        } => finish(driver::gradcheck_entry(
            &file,
            &entry,
            dims.as_deref(),
            &sets,
            &source.options(),
            source.format(),
        )),
        Command::Explain { code } => {
            match analysis::explain(&code) {
                Some(text) => {
                    let _ = std::io::stdout().lock().write_all(text.as_bytes());
                    ExitCode::SUCCESS
                }
                None => {
                    let (first, last) = (Code::ALL[0].id(), Code::ALL[Code::ALL.len() - 1].id());
                    eprintln!("error: `{code}` is not an FTL error code (they run from {first} to {last})");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A large stack keeps deep (but accepted) programs far from the limit in every pass.
    let worker = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || run(cli));
    match worker.map(|h| h.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!("{INTERNAL_ERROR}");
            ExitCode::from(101)
        }
    }
}
