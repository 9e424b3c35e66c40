//! The manifest of a compiled entry: its arguments, dims, buffers and the steps that run it.
//! The compiler writes it (into an `.ftlpack`, or in memory for its JIT); [`crate::exec`]
//! executes it with kernel function pointers from a shared object or a JIT. It names no
//! language construct: only buffers, dims, kernels and library routines.

use crate::bind::DimSpec;
pub use crate::dims::DimRule;
use crate::DType;
use serde::{Deserialize, Serialize};

/// A dim of the entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DimDecl {
    /// Its name (a pack's name starts with `..`).
    pub name: String,
    /// How its size is known.
    pub size: DimRule,
}

/// An argument of the entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArgDecl {
    /// The name (the safetensors key).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Declared dims, as the binder checks them.
    pub dims: Vec<DimSpec>,
    /// Whether it must be given.
    pub required: bool,
    /// Its value when not given (scalars).
    pub default: Option<f64>,
    /// The buffer that holds it.
    pub buffer: u32,
}

/// What a buffer holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BufferRole {
    /// Argument number `n`.
    Arg(u32),
    /// Constant data.
    Literal(Vec<f64>),
    /// An intermediate.
    Temp,
    /// A named output.
    Output(String),
    /// The memory of another buffer under these dims.
    View(u32),
}

/// A buffer: dense, row-major over its dims.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BufferDecl {
    /// Element type.
    pub dtype: DType,
    /// Dims, by index into [`Manifest::dims`].
    pub dims: Vec<u32>,
    /// What it holds.
    pub role: BufferRole,
}

/// A generated kernel: `symbol(dims, status, lo, hi, buffers…)` through the packed interface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelDecl {
    /// The function's name (its packed wrapper is `_mlir_<symbol>`).
    pub symbol: String,
    /// Buffers passed after the fixed arguments, in order.
    pub buffers: Vec<u32>,
    /// The dim of the outermost loop, split across threads (`None`: one thread).
    pub split: Option<u32>,
    /// The dims of the kernel's domain, whose points a device's threads share (one point per
    /// thread, striding by the grid): empty for a kernel that runs on one thread.
    #[serde(default)]
    pub grid: Vec<u32>,
}

/// A contraction `out = Σ a·b` done by the packed GEMM: each operand's dims are grouped into
/// batch, row and column groups (each contiguous in its layout).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContractDecl {
    /// Left operand.
    pub a: u32,
    /// Right operand.
    pub b: u32,
    /// Result.
    pub out: u32,
    /// Dims shared by a, b and out.
    pub batch: Vec<u32>,
    /// Dims of a and out (rows).
    pub m: Vec<u32>,
    /// Dims of b and out (columns).
    pub n: Vec<u32>,
    /// Dims of a and b summed.
    pub k: Vec<u32>,
}

/// A step of the entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Step {
    /// Run generated code.
    Kernel(KernelDecl),
    /// Packed GEMM.
    Contract(ContractDecl),
    /// Stable argsort of `x` along `dim` into `out` (i32).
    ArgSort {
        /// Input.
        x: u32,
        /// Output permutation.
        out: u32,
        /// The dim sorted.
        dim: u32,
        /// Largest first.
        descending: bool,
    },
    /// Part `part` of a decomposition of `a` seen as a `row × col` matrix.
    Decompose {
        /// Which decomposition.
        kind: crate::host::Decomposition,
        /// Which result.
        part: u8,
        /// The matrix.
        a: u32,
        /// The result.
        out: u32,
        /// Row dim.
        row: u32,
        /// Column dim.
        col: u32,
    },
    /// `steps` once per slice of `dim` (a sliced region: a contraction's result over the dim
    /// is made and consumed a slice at a time). `local` buffers hold one slice (the dim at the
    /// slice's width); the other buffers with the dim have it outermost and are read or written
    /// at the slice's rows; `start` buffers are combined over the slices (by the kernels, or
    /// GEMMs summing over the dim) and hold the combination's identity before the first.
    Sliced {
        /// The sliced dim.
        dim: u32,
        /// Buffers that hold one slice.
        local: Vec<u32>,
        /// Buffers combined over the slices, with the value each starts at.
        start: Vec<(u32, Identity)>,
        /// Kernels and GEMMs, run in order on each slice.
        steps: Vec<Step>,
    },
    /// Solve `contract(a, out, dim) == b`.
    Solve {
        /// Square matrix.
        a: u32,
        /// Right-hand sides.
        b: u32,
        /// Solution.
        out: u32,
        /// The dim of `a` contracted with the solution.
        dim: u32,
    },
}

/// The value a buffer combined over slices starts at (the identity of its combination).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Identity {
    /// Sums (and `any`).
    Zero,
    /// `all`.
    One,
    /// Maxima and logsumexps.
    NegInfinity,
    /// Minima.
    Infinity,
}

impl Identity {
    /// The value.
    pub fn value(self) -> f64 {
        match self {
            Identity::Zero => 0.0,
            Identity::One => 1.0,
            Identity::NegInfinity => f64::NEG_INFINITY,
            Identity::Infinity => f64::INFINITY,
        }
    }
}

/// A `requires` condition: a bool scalar the prelude computes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckDecl {
    /// The bool buffer.
    pub buffer: u32,
    /// The condition as written.
    pub text: String,
}

/// Everything the runtime needs to run one entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The entry's qualified name.
    pub entry: String,
    /// `objective`, `adapter` or `step`.
    pub kind: String,
    /// Arguments.
    pub args: Vec<ArgDecl>,
    /// Dims.
    pub dims: Vec<DimDecl>,
    /// Buffers.
    pub buffers: Vec<BufferDecl>,
    /// Scalars computed before anything else (sizes from `requires D == …`, conditions).
    pub prelude: Option<KernelDecl>,
    /// Conditions checked after the prelude.
    pub checks: Vec<CheckDecl>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Outputs: name and buffer.
    pub outputs: Vec<(String, u32)>,
}

impl Manifest {
    /// Every generated kernel it runs: the prelude, then the steps' kernels in order (those
    /// of sliced regions included).
    pub fn kernels(&self) -> impl Iterator<Item = &KernelDecl> {
        let in_steps = self.steps.iter().flat_map(|s| match s {
            Step::Sliced { steps, .. } => steps.as_slice(),
            _ => std::slice::from_ref(s),
        });
        self.prelude.iter().chain(in_steps.filter_map(|s| match s {
            Step::Kernel(k) => Some(k),
            _ => None,
        }))
    }
}
