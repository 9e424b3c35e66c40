//! Compiling an entry for Python and running it on caller-owned memory.
//!
//! [`compile`] analyses the file, compiles one variant of the entry through the one pipeline
//! ([`ftl_ir::pipeline::compile_variant`]) and loads its kernels as an `.ftlpack` artifact:
//! from the compile cache (`FTL_CACHE_DIR`, as `ftc run`), else built into a private
//! temporary directory. [`Entry::run`] binds the caller's tensors as borrowed views
//! ([`TensorRef`]) — no copy in — and hands each output back as a [`Buffer`] — no copy out.

use crate::buffer::Buffer;
use crate::NativeError;
use ftc::cache::{Cache, Lookup};
use ftl_front::codes::Code;
use ftl_front::resolve::LoadOptions;
use ftl_front::{analyze, MessageFormat};
use ftl_ir::pipeline::{self, Failure, VariantRequest};
use ftl_ir::{Graph, Role};
use ftl_runtime::artifact::Artifact;
use ftl_runtime::bind::{self, DimSpec};
use ftl_runtime::target::Target;
use ftl_runtime::{DType, Tensor, TensorRef};
use pyo3::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;

/// Why a compile or a run failed, before it becomes a Python exception.
enum Error {
    /// A user error: its code and the rendered diagnostics.
    User(&'static str, String),
    /// A compiler bug.
    Internal(String),
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        match f.code() {
            Some(code) => Error::User(code.id(), f.render()),
            None => Error::Internal(f.render()),
        }
    }
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::User(code, text) => NativeError::new_err((code, text)),
            Error::Internal(text) => pyo3::exceptions::PyRuntimeError::new_err(text),
        }
    }
}

/// A user error about the inputs of a call (E0091), one line per problem.
fn bad_inputs(messages: Vec<String>) -> Error {
    Failure::User {
        code: Code::BadInputs,
        messages,
    }
    .into()
}

/// A compiled variant of an entry, ready to run.
#[pyclass(frozen, module = "ftl._native")]
pub struct Entry {
    name: String,
    kind: String,
    /// Each argument's role, in the order of the manifest's arguments (one per graph input),
    /// whose binder specs and defaults the executor holds.
    roles: Vec<Role>,
    /// Outputs in order: name, dtype, dim names (`..name` for a pack).
    outputs: Vec<(String, DType, Vec<String>)>,
    /// Every parameter the declaration has: name, declared tensor dtype (none for a static
    /// option), whether it is optional, whether it is a scalar. A variant's `args` omit the
    /// optional inputs it was not compiled for.
    params: Vec<(String, Option<DType>, bool, bool)>,
    /// Scalar settings given at compile time, passed with every run unless the call gives them.
    settings: HashMap<String, Tensor>,
    cached: bool,
    compile_ms: f64,
    artifact: Artifact,
    /// Where the artifact lives when the cache was not used (removed after the artifact's
    /// library is unloaded: fields drop in order).
    _dir: Option<tempfile::TempDir>,
}

/// The standard library directory `import std.…` reads (`lib`, else `FTL_PATH`, else the
/// library built into the package).
#[pyfunction]
#[pyo3(signature = (lib=None))]
pub fn library_dir(lib: Option<PathBuf>) -> PathBuf {
    ftl_front::resolve::library_dir(&LoadOptions {
        lib_dir: lib,
        root: None,
        ..LoadOptions::default()
    })
}

/// Compiles `entry` of the file at `path`: `sets` as `name=value` (static options and scalar
/// settings), `present` the optional inputs the caller will pass, `grad` whether gradients are
/// computed (objectives and adapters), `dtypes` the FTL dtype of each tensor the caller will
/// pass where it differs from the declared one (bf16 logits, i64 labels: the binder's rule,
/// [`ftl_ir::lower::binds_as`]). Raises `NativeError(code, text)` on a user error.
#[pyfunction]
#[pyo3(signature = (path, entry, sets, present, dtypes, grad, lib=None, root=None))]
#[allow(clippy::too_many_arguments)]
pub fn compile(
    py: Python<'_>,
    path: PathBuf,
    entry: String,
    sets: Vec<String>,
    present: Vec<String>,
    dtypes: Vec<(String, String)>,
    grad: bool,
    lib: Option<PathBuf>,
    root: Option<PathBuf>,
) -> PyResult<Entry> {
    let opts = LoadOptions {
        lib_dir: lib,
        root,
        ..LoadOptions::default()
    };
    let dtypes: Vec<(String, DType)> = dtypes
        .into_iter()
        .filter_map(|(n, d)| dtype_named(&d).map(|d| (n, d)))
        .collect();
    py.detach(move || {
        let request = VariantRequest {
            entry: &entry,
            sets: &sets,
            present: &present,
            dtypes: &dtypes,
            grad,
        };
        build(&path, &request, &opts)
    })
    .map_err(PyErr::from)
}

fn build(path: &PathBuf, request: &VariantRequest, opts: &LoadOptions) -> Result<Entry, Error> {
    let start = std::time::Instant::now();
    let analysis = analyze(std::slice::from_ref(path), opts);
    if let Some(first) = analysis.diagnostics.first() {
        return Err(Error::User(
            first.code.id(),
            analysis.render_with_summary(MessageFormat::Human),
        ));
    }
    let mut settings = HashMap::new();
    let g = pipeline::compile_variant(&analysis, request, &mut settings)?;
    let id = pipeline::find_entry(&analysis, request.entry)?;
    let params = analysis
        .hir
        .decl(id)
        .map(|d| {
            d.params
                .iter()
                .map(|p| {
                    let tensor = p.ty.tensor();
                    let scalar = tensor.is_none_or(|t| t.dims.is_empty());
                    (p.name.clone(), tensor.map(|t| t.dtype), p.optional, scalar)
                })
                .collect()
        })
        .unwrap_or_default();
    let (artifact, dir, cached) = load_kernels(&g)?;
    let manifest = artifact.executor().manifest();
    let outputs = manifest
        .outputs
        .iter()
        .map(|(name, b)| {
            let buffer = &manifest.buffers[*b as usize];
            let dims = buffer
                .dims
                .iter()
                .map(|d| manifest.dims[*d as usize].name.clone())
                .collect();
            (name.clone(), buffer.dtype, dims)
        })
        .collect();
    let roles = g.inputs.iter().map(|i| i.role).collect();
    Ok(Entry {
        name: g.name.clone(),
        kind: format!("{:?}", g.kind).to_lowercase(),
        roles,
        outputs,
        params,
        settings,
        cached,
        compile_ms: start.elapsed().as_secs_f64() * 1e3,
        artifact,
        _dir: dir,
    })
}

/// The kernels of `g`: from the compile cache when the environment names a usable one, else
/// built into a temporary directory.
fn load_kernels(g: &Graph) -> Result<(Artifact, Option<tempfile::TempDir>, bool), Error> {
    if let Some(cache) = Cache::from_env() {
        if let Ok((artifact, lookup)) = cache.load_or_build(g) {
            return Ok((artifact, None, lookup == Lookup::Hit));
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("ftl-entry-")
        .tempdir()
        .map_err(|e| Error::Internal(format!("a temporary directory for kernels: {e}")))?;
    let path = dir.path().join("entry.ftlpack");
    ftl_mlir::write_artifact(&ftl_plan::fuse::fuse(g), &path, &Target::native())?;
    let artifact = Artifact::load(&path).map_err(Failure::from)?;
    Ok((artifact, Some(dir), false))
}

/// The name Python uses for a role.
fn role_name(role: Role) -> &'static str {
    match role {
        Role::Input => "input",
        Role::Const => "const",
        Role::Param => "param",
        Role::Scalar => "scalar",
        Role::Seed => "seed",
        Role::Upstream => "upstream",
    }
}

fn dtype_named(name: &str) -> Option<DType> {
    DType::ALL.into_iter().find(|d| d.name() == name)
}

/// One tensor argument of [`Entry::run`]: name, data address, byte length, FTL dtype name,
/// shape.
type RawTensor = (String, usize, usize, String, Vec<usize>);

impl Entry {
    /// Takes back an output's memory for the next run (see [`Buffer`]).
    pub fn recycle(&self, t: Tensor) {
        self.artifact.executor().recycle(t);
    }
}

#[pymethods]
impl Entry {
    /// The entry's qualified name (`dpo::sigmoid_from_logits`).
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// `objective`, `adapter` or `step`.
    #[getter]
    fn kind(&self) -> &str {
        &self.kind
    }

    /// Whether the kernels came from the compile cache.
    #[getter]
    fn cached(&self) -> bool {
        self.cached
    }

    /// Milliseconds spent analysing, compiling (or loading) and linking.
    #[getter]
    fn compile_ms(&self) -> f64 {
        self.compile_ms
    }

    /// The arguments: `(name, dtype, dims, required, role, default)`; dims are names, fixed
    /// sizes, or `..name` for a pack.
    #[getter]
    #[allow(clippy::type_complexity)]
    fn args(
        &self,
    ) -> Vec<(
        String,
        &'static str,
        Vec<String>,
        bool,
        &'static str,
        Option<f64>,
    )> {
        let executor = self.artifact.executor();
        executor
            .arg_specs()
            .iter()
            .zip(&executor.manifest().args)
            .zip(&self.roles)
            .map(|((spec, decl), role)| {
                let dims = spec
                    .dims
                    .iter()
                    .map(|d| match d {
                        DimSpec::Named(n) => n.clone(),
                        DimSpec::Fixed(n) => n.to_string(),
                        DimSpec::Pack(n) => format!("..{n}"),
                    })
                    .collect();
                let required = spec.required && !self.settings.contains_key(&spec.name);
                (
                    spec.name.clone(),
                    spec.dtype.name(),
                    dims,
                    required,
                    role_name(*role),
                    decl.default,
                )
            })
            .collect()
    }

    /// Every declared parameter: `(name, dtype or None, optional, scalar)`.
    #[getter]
    fn params(&self) -> Vec<(String, Option<&'static str>, bool, bool)> {
        self.params
            .iter()
            .map(|(n, d, o, s)| (n.clone(), d.map(DType::name), *o, *s))
            .collect()
    }

    /// The outputs in order: `(name, dtype, dims)`, dims by name (`..name` for a pack), so a
    /// caller can tell an output's shape from its inputs' without running (PyTorch's fake
    /// tensors under `torch.compile`).
    #[getter]
    fn outputs(&self) -> Vec<(String, &'static str, Vec<String>)> {
        self.outputs
            .iter()
            .map(|(n, d, dims)| (n.clone(), d.name(), dims.clone()))
            .collect()
    }

    /// Runs the kernels with the GIL released. `tensors` describe caller-owned memory that
    /// must stay alive and unchanged during the call (the Python side holds the objects);
    /// `scalars` are 0-d arguments given as numbers; `threads` bounds the kernels' threads.
    /// Inputs are checked (names, dtypes, shapes) before any kernel runs. Returns the outputs
    /// in order and the milliseconds the executor's steps took (kernels and library routines).
    fn run(
        slf: &Bound<'_, Self>,
        py: Python<'_>,
        tensors: Vec<RawTensor>,
        scalars: Vec<(String, f64)>,
        threads: usize,
    ) -> PyResult<(Vec<(String, Buffer)>, f64)> {
        let this = slf.get();
        let executor = this.artifact.executor();
        let specs = executor.arg_specs();
        let names = tensors
            .iter()
            .map(|t| t.0.as_str())
            .chain(scalars.iter().map(|s| s.0.as_str()));
        let mut errors: Vec<String> = bind::unknown_inputs(specs, names)
            .into_iter()
            .map(|e| e.message)
            .collect();
        // Numbers become 0-d tensors of their argument's dtype (bools as 0/1, which the
        // binder's own scalar coercion leaves alone).
        let mut owned: HashMap<String, Tensor> = this.settings.clone();
        for (name, value) in &scalars {
            let Some(spec) = specs.iter().find(|s| &s.name == name) else {
                continue;
            };
            if !spec.dims.is_empty() {
                errors.push(format!(
                    "input `{name}` is a number, expected {}",
                    spec.type_text()
                ));
            } else if !spec.dtype.holds(*value) {
                errors.push(format!(
                    "input `{name}` is {value}, which is not a value of its dtype {}",
                    spec.dtype
                ));
            } else {
                owned.insert(name.clone(), Tensor::scalar(spec.dtype, *value));
            }
        }
        let mut views: HashMap<String, TensorRef<'_>> =
            owned.iter().map(|(k, t)| (k.clone(), t.as_ref())).collect();
        for (name, address, len, dtype, shape) in &tensors {
            let Some(dtype) = dtype_named(dtype) else {
                errors.push(format!(
                    "input `{name}` has dtype {dtype}, which FTL does not have"
                ));
                continue;
            };
            match borrow(*address, *len, dtype, shape) {
                Some(view) => {
                    views.insert(name.clone(), view);
                }
                None => errors.push(format!(
                    "input `{name}`: {len} bytes at {address:#x} are not a dense {} tensor",
                    ftl_runtime::type_text(dtype, shape)
                )),
            }
        }
        if !errors.is_empty() {
            return Err(bad_inputs(errors).into());
        }
        executor.set_threads(threads);
        let (outputs, timings) = py
            .detach(|| executor.run_views_timed(&views))
            .map_err(|e| Error::from(Failure::from(e)))?;
        let steps_ms = timings.iter().map(|(_, ms)| ms).sum();
        let outputs = outputs
            .into_iter()
            .map(|(name, t)| (name, Buffer::new(t, slf.clone().unbind())))
            .collect();
        Ok((outputs, steps_ms))
    }
}

/// A view of `len` bytes at `address` as a dense tensor; `None` when they do not hold one
/// (wrong length, misaligned, a null address with bytes).
#[allow(unsafe_code)]
fn borrow<'a>(
    address: usize,
    len: usize,
    dtype: DType,
    shape: &'a [usize],
) -> Option<TensorRef<'a>> {
    if len == 0 {
        return TensorRef::new(dtype, shape, &[]);
    }
    if address == 0 {
        return None;
    }
    // SAFETY: the Python side passes the data pointer and byte size of a live, contiguous
    // tensor or array it keeps referenced for the whole call; kernels never write inputs.
    let bytes = unsafe { std::slice::from_raw_parts(address as *const u8, len) };
    TensorRef::new(dtype, shape, bytes)
}
