//! The one pipeline every command uses: find an entry of the analysed root files, apply its
//! `--set` options, lower it and run the core passes (simplify → autodiff → simplify, verified
//! after each) under an explicit [`GradPolicy`]. Commands differ only in the [`EntryRequest`]
//! they build. Failures are typed: a user mistake carries its [`Code`], a compiler bug is
//! [`Failure::Internal`] and never shows a user error code.

use crate::autodiff::differentiate;
use crate::lower::{self, EntryOptions, LowerError};
use crate::settings;
use crate::simplify::{simplify, simplify_after_gradients};
use crate::verify::{verify, VerifyError};
use crate::Graph;
use ftl_front::codes::Code;
use ftl_front::hir::{DeclId, DeclKind, Hir};
use ftl_front::Analysis;
use ftl_runtime::exec::{ExecError, ExecErrorKind};
use ftl_runtime::{DType, Tensor};
use std::collections::HashMap;

/// Why a command failed after the front end accepted its files.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// A user mistake (inputs, settings, a failed `requires`): its code and one message per
    /// problem.
    User {
        /// The error code.
        code: Code,
        /// One line each.
        messages: Vec<String>,
    },
    /// A compiler bug (a verifier failure, an op a backend did not expect): reported as an
    /// internal compiler error, exit status 101.
    Internal(String),
}

impl Failure {
    /// Something this build or backend does not do (E0095), with what to use instead in the
    /// message.
    pub fn unsupported(message: impl Into<String>) -> Failure {
        Failure::new(Code::Unsupported, message)
    }

    /// One user-facing problem.
    pub fn new(code: Code, message: impl Into<String>) -> Failure {
        Failure::User {
            code,
            messages: vec![message.into()],
        }
    }

    /// `error[E…]: message` lines, or the internal-error line.
    pub fn render(&self) -> String {
        match self {
            Failure::User { code, messages } => messages
                .iter()
                .map(|m| format!("error[{}]: {m}\n", code.id()))
                .collect(),
            Failure::Internal(m) => format!("{INTERNAL_ERROR}: {m}\n"),
        }
    }

    /// The messages as one line each (for test reports).
    pub fn messages(&self) -> Vec<String> {
        match self {
            Failure::User { messages, .. } => messages.clone(),
            Failure::Internal(m) => vec![format!("{INTERNAL_ERROR}: {m}")],
        }
    }

    /// The user error code, `None` for an internal error.
    pub fn code(&self) -> Option<Code> {
        match self {
            Failure::User { code, .. } => Some(*code),
            Failure::Internal(_) => None,
        }
    }
}

/// The first words of every internal-error report.
pub const INTERNAL_ERROR: &str =
    "error: internal compiler error (please report it with the input that caused it)";

/// A failed run as a failure: user errors by kind; a manifest the compiler itself built that
/// does not validate is a compiler bug.
fn run_failure(kind: ExecErrorKind, messages: Vec<String>) -> Failure {
    let code = match kind {
        ExecErrorKind::Inputs => Code::BadInputs,
        ExecErrorKind::Requires => Code::RequiresFailed,
        ExecErrorKind::Run => Code::RunFailed,
        ExecErrorKind::TooLarge => Code::TooLarge,
        ExecErrorKind::Device => Code::Device,
        ExecErrorKind::InvalidManifest => return Failure::Internal(messages.join("; ")),
    };
    Failure::User { code, messages }
}

impl From<ExecError> for Failure {
    fn from(e: ExecError) -> Failure {
        run_failure(e.kind, e.messages)
    }
}

impl From<ftl_runtime::device::DeviceError> for Failure {
    fn from(e: ftl_runtime::device::DeviceError) -> Failure {
        Failure::new(Code::Device, e.to_string())
    }
}

impl From<ftl_runtime::output::OutputError> for Failure {
    fn from(e: ftl_runtime::output::OutputError) -> Failure {
        Failure::new(Code::BadOutput, e.to_string())
    }
}

impl From<LowerError> for Failure {
    fn from(e: LowerError) -> Failure {
        match e {
            LowerError::Unsupported(m) => Failure::new(Code::Unsupported, m),
            LowerError::Internal(m) => Failure::Internal(m),
            LowerError::CallFailed(m) => Failure::new(Code::RunFailed, m),
        }
    }
}

impl From<VerifyError> for Failure {
    fn from(e: VerifyError) -> Failure {
        Failure::Internal(e.to_string())
    }
}

/// The entries of the root files: (name as `--entry` takes it, declaration).
pub fn entries(analysis: &Analysis) -> Vec<(String, DeclId)> {
    analysis
        .root_decls()
        .filter(|(_, d)| !matches!(d.kind, DeclKind::Fn | DeclKind::Test))
        .map(|(id, d)| (d.short_name().to_string(), id))
        .collect()
}

/// The entry `name` of the root files.
pub fn find_entry(analysis: &Analysis, name: &str) -> Result<DeclId, Failure> {
    let all = entries(analysis);
    if let Some((_, id)) = all.iter().find(|(n, _)| n == name) {
        return Ok(*id);
    }
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    Err(Failure::new(
        Code::UnknownEntry,
        format!(
            "the file has no entry `{name}`; entries: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ),
    ))
}

/// Whether a compiled entry gets gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradPolicy {
    /// The forward graph only (`--emit ir`, merges and inits).
    Forward,
    /// Gradients for every differentiable entry (objectives and adapters).
    Differentiable,
    /// `ftc run` on given inputs: objectives always; adapters only when the inputs hold the
    /// upstream gradient `grad.<output>` of every output.
    WhenUpstreamGiven,
}

/// What a command asks of the pipeline.
#[derive(Clone, Debug)]
pub struct EntryRequest<'a> {
    /// The entry's name (`sigmoid`, `lora.merge`).
    pub entry: &'a str,
    /// `--set name=value`, in order.
    pub sets: &'a [String],
    /// Whether gradients are computed.
    pub grad: GradPolicy,
}

/// Finds the entry, applies its settings (scalar settings land in `inputs`), and compiles it
/// to a verified, simplified graph (with gradients when the policy asks for them): the variant
/// for the inputs given.
pub fn compile_entry(
    analysis: &Analysis,
    request: &EntryRequest,
    inputs: &mut HashMap<String, Tensor>,
) -> Result<Graph, Failure> {
    let id = find_entry(analysis, request.entry)?;
    let hir = &analysis.hir;
    let grad = match request.grad {
        GradPolicy::Forward => false,
        GradPolicy::Differentiable => true,
        GradPolicy::WhenUpstreamGiven => match hir.decl(id).map(|d| d.kind) {
            Some(DeclKind::Objective) => true,
            Some(DeclKind::Adapter) => settings::has_upstream(hir, id, inputs),
            _ => false,
        },
    };
    let present: Vec<String> = inputs.keys().cloned().collect();
    let dtypes: Vec<(String, DType)> = inputs.iter().map(|(n, t)| (n.clone(), t.dtype())).collect();
    let variant = VariantRequest {
        entry: request.entry,
        sets: request.sets,
        present: &present,
        dtypes: &dtypes,
        grad,
    };
    compile_found(hir, id, &variant, inputs)
}

/// What a caller that binds inputs itself asks of the pipeline (the Python package, which
/// compiles one variant per set of optional inputs it is given, before it has the tensors).
#[derive(Clone, Debug)]
pub struct VariantRequest<'a> {
    /// The entry's name.
    pub entry: &'a str,
    /// Settings as `name=value`, in order.
    pub sets: &'a [String],
    /// The optional inputs the caller will pass.
    pub present: &'a [String],
    /// The dtypes of the tensors the caller will pass (see [`crate::lower::binds_as`]).
    pub dtypes: &'a [(String, DType)],
    /// Whether gradients are computed (objectives and adapters only).
    pub grad: bool,
}

/// Compiles one variant of an entry; scalar settings land in `scalars` (to be passed with
/// every run). `grad` is honoured for objectives and adapters only.
pub fn compile_variant(
    analysis: &Analysis,
    request: &VariantRequest,
    scalars: &mut HashMap<String, Tensor>,
) -> Result<Graph, Failure> {
    let id = find_entry(analysis, request.entry)?;
    compile_found(&analysis.hir, id, request, scalars)
}

/// [`compile_variant`] of the declaration `id` (its name already looked up).
fn compile_found(
    hir: &Hir,
    id: DeclId,
    request: &VariantRequest,
    scalars: &mut HashMap<String, Tensor>,
) -> Result<Graph, Failure> {
    let mut options = EntryOptions::default();
    settings::apply_sets(hir, id, request.sets, &mut options, scalars)?;
    let present = |n: &str| request.present.iter().any(|p| p == n) || scalars.contains_key(n);
    settings::options_for(hir, id, present, &mut options);
    options.input_dtypes = request.dtypes.iter().cloned().collect();
    let grad = request.grad && hir.decl(id).is_some_and(|d| d.kind.differentiable());
    compile(hir, id, &options, grad)
}

/// The forward graph of an entry (`grad: false`) or the forward + gradient graph: lowering,
/// then simplify → autodiff → simplify (differentials replaced by their values), verified
/// after each pass.
pub fn compile(hir: &Hir, id: DeclId, opts: &EntryOptions, grad: bool) -> Result<Graph, Failure> {
    let g = lower::lower_entry(hir, id, opts)?;
    verify(&g, "lowering")?;
    if !grad {
        // No gradient will be derived: the differentials give way to their values now.
        let g = simplify_after_gradients(&g);
        verify(&g, "simplify")?;
        return Ok(g);
    }
    let g = simplify(&g);
    verify(&g, "simplify")?;
    let g = differentiate(&g);
    verify(&g, "autodiff")?;
    let g = simplify_after_gradients(&g);
    verify(&g, "simplify")?;
    Ok(g)
}
