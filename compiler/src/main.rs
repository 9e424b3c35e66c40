//! `ftc`, the FTL compiler driver.

use clap::{Parser, Subcommand, ValueEnum};
use ftl_compiler::driver::{self, MessageFormat};
use ftl_compiler::resolve::LoadOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// ftc — compile FTL training objectives, adapters and sampling steps.
///
/// Start with `ftc check examples/dpo.ftl`: it type-checks the file and everything it imports
/// and reports every error with its location and an error code. `ftc explain E0041` describes a
/// code at length. `ftc build FILE --emit ast|hir` prints a compiler stage.
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
    /// Standard library directory for `import std.…` (default: $FTL_PATH, then ftc's `stdlib/`).
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
    /// Print a compiler stage of FILE.
    Build {
        /// The `.ftl` file.
        file: PathBuf,
        /// Which stage to print.
        #[arg(long, value_enum)]
        emit: Stage,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Explain an error code, e.g. `ftc explain E0041`.
    Explain {
        /// The code (`E0041`, `e41` and `41` all work).
        code: String,
    },
}

impl SourceArgs {
    fn options(&self) -> LoadOptions {
        LoadOptions {
            lib_dir: self.lib.clone(),
            root: self.root.clone(),
        }
    }

    fn format(&self) -> MessageFormat {
        match self.message_format {
            Format::Human => MessageFormat::Human,
            Format::Short => MessageFormat::Short,
            Format::Json => MessageFormat::Json,
        }
    }
}

fn report(analysis: &driver::Analysis, format: MessageFormat) -> bool {
    if analysis.diagnostics.is_empty() {
        return true;
    }
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(analysis.render(format).as_bytes());
    if format == MessageFormat::Human {
        let n = analysis.diagnostics.len();
        let _ = writeln!(
            err,
            "error: {n} error{} found",
            if n == 1 { "" } else { "s" }
        );
    }
    false
}

fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check { files, source } => {
            let analysis = driver::analyze(&files, &source.options());
            if report(&analysis, source.format()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Build { file, emit, source } => {
            let analysis = driver::analyze(&[file], &source.options());
            if !report(&analysis, source.format()) {
                return ExitCode::FAILURE;
            }
            let text = match emit {
                Stage::Ast => driver::emit_ast(&analysis),
                Stage::Hir => driver::emit_hir(&analysis),
            };
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Command::Explain { code } => match driver::explain(&code) {
            Some(text) => {
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
                ExitCode::SUCCESS
            }
            None => {
                eprintln!(
                    "error: `{code}` is not an FTL error code (they run from E0001 to E0086)"
                );
                ExitCode::FAILURE
            }
        },
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
            eprintln!(
                "error: internal compiler error (please report it with the input that caused it)"
            );
            ExitCode::from(101)
        }
    }
}
