//! An accelerator the executor runs kernels on: memory the host does not address, and kernels
//! launched by symbol over a number of threads. [`crate::cuda::CudaDevice`] is the CUDA one;
//! the executor's device path (`exec::device`) moves buffers between host and device around
//! the steps that run on the host.
//!
//! The launch convention is the CUDA path's (compiler/ftl-mlir/src/cuda.rs): one parameter
//! cell (8 bytes) per field of each lowered memref — the dims, the status word, then one per
//! buffer: allocated and aligned pointer, offset, sizes, strides — with no `lo`/`hi` (a thread
//! finds its index of the kernel's split dim from its block and thread ids).

use std::fmt;

/// An address in device memory.
pub type DevicePtr = u64;

/// Why a device could not be used or a device operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// No driver library could be loaded (`libcuda.so`).
    NoDriver,
    /// The driver loaded but the device cannot be used (none present, no compatible chip).
    Unavailable(String),
    /// A driver call failed while running.
    Failed(String),
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::NoDriver => f.write_str(
                "no CUDA driver: libcuda.so could not be loaded (is an NVIDIA driver installed?)",
            ),
            DeviceError::Unavailable(m) => write!(f, "the CUDA device cannot be used: {m}"),
            DeviceError::Failed(m) => write!(f, "CUDA: {m}"),
        }
    }
}

impl std::error::Error for DeviceError {}

/// Memory and kernels on one device, used from one executor at a time. Operations are ordered
/// (as on one CUDA stream); `synchronize` waits for all of them.
pub trait Device: Send + Sync {
    /// Names the device in reports (`NVIDIA H100 80GB HBM3 (sm_90)`).
    fn name(&self) -> String;

    /// `bytes` of device memory (at least one byte is allocated), its contents unspecified.
    fn alloc(&self, bytes: usize) -> Result<DevicePtr, DeviceError>;

    /// Returns memory from [`Device::alloc`] after the operations using it.
    fn free(&self, ptr: DevicePtr);

    /// Copies `src` to device memory at `dst`, which holds at least `src.len()` bytes.
    fn upload(&self, dst: DevicePtr, src: &[u8]) -> Result<(), DeviceError>;

    /// Copies device memory at `src` into `dst`; returns once `dst` holds it.
    fn download(&self, src: DevicePtr, dst: &mut [u8]) -> Result<(), DeviceError>;

    /// Whether the loaded code has the kernel `symbol`.
    fn has_kernel(&self, symbol: &str) -> bool;

    /// Launches `symbol` over `threads` threads (at least one) with the parameter cells of the
    /// module's convention.
    fn launch(&self, symbol: &str, threads: u64, params: &[u64]) -> Result<(), DeviceError>;

    /// Waits for every operation issued so far.
    fn synchronize(&self) -> Result<(), DeviceError>;

    /// The memory bandwidth the device's specification gives, in bytes per second (for
    /// benchmarks' roofline), when known.
    fn peak_bandwidth(&self) -> Option<f64> {
        None
    }

    /// Runs `gemm` on device memory, or returns false when the device cannot (no BLAS, or a
    /// layout it does not take): the executor then runs it on the host.
    fn gemm(&self, gemm: &Gemm) -> Result<bool, DeviceError> {
        let _ = gemm;
        Ok(false)
    }
}

/// A batch of matrix products on device memory, every operand addressed by element strides:
/// `c[b, i, j] = Σ_l a[b, i, l] · b[b, l, j]` (plus the old `c` when `accumulate`) for `b` in
/// `0..batch`, `i` in `0..m`, `j` in `0..n`, `l` in `0..k`; element `(b, r, s)` of an operand
/// with strides `[sb, sr, ss]` is at `ptr + (b·sb + r·sr + s·ss) · size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gemm {
    /// f32 or f64, every operand.
    pub f64: bool,
    /// Batch count and the matrix sizes.
    pub batch: usize,
    /// Rows of `a` and `c`.
    pub m: usize,
    /// Columns of `b` and `c`.
    pub n: usize,
    /// Columns of `a`, rows of `b`.
    pub k: usize,
    /// `a` and its strides (batch, row, column).
    pub a: (DevicePtr, [usize; 3]),
    /// `b` and its strides.
    pub b: (DevicePtr, [usize; 3]),
    /// `c` and its strides.
    pub c: (DevicePtr, [usize; 3]),
    /// Adds the product to `c` instead of replacing it.
    pub accumulate: bool,
}

/// The most threads one launch takes: a kernel's threads stride over its points, and 2²⁰ is
/// several waves of a large GPU (132 SMs × 2048 resident threads on an H100).
pub const MAX_THREADS: u64 = 1 << 20;

/// A benchmark's bandwidth next to `device`'s peak: ` device="…" peak_gb_s=… io_pct_of_peak=…`
/// (`gb_s`: the bytes a run moves per second).
pub fn bandwidth_fields(device: &dyn Device, gb_s: f64) -> String {
    let mut text = format!(" device=\"{}\"", device.name());
    if let Some(peak) = device.peak_bandwidth() {
        text.push_str(&format!(
            " peak_gb_s={:.0} io_pct_of_peak={:.1}",
            peak / 1e9,
            100.0 * gb_s * 1e9 / peak
        ));
    }
    text
}

/// The threads of one block: a multiple of the warp size that keeps every SM of sm_80/sm_90
/// busy at 2048 resident threads.
pub const BLOCK_THREADS: u32 = 256;

/// The grid and block sizes (x only) that cover `threads` threads, or None beyond what one
/// launch can address (2³¹ − 1 blocks).
pub fn launch_dims(threads: u64) -> Option<(u32, u32)> {
    let threads = threads.max(1);
    let block = (threads.min(u64::from(BLOCK_THREADS))) as u32;
    let grid = u32::try_from(threads.div_ceil(u64::from(block)))
        .ok()
        .filter(|g| *g <= i32::MAX as u32)?;
    Some((grid, block))
}

/// The parameter cells of one lowered memref: pointer twice (allocated, aligned), offset 0,
/// sizes, then row-major strides (a size-0 dim strides as 1).
pub fn push_memref(cells: &mut Vec<u64>, ptr: u64, shape: &[i64]) {
    cells.push(ptr);
    cells.push(ptr);
    cells.push(0);
    cells.extend(shape.iter().map(|s| *s as u64));
    let mut strides = vec![0u64; shape.len()];
    let mut stride = 1i64;
    for (i, s) in shape.iter().enumerate().rev() {
        strides[i] = stride as u64;
        stride = stride.saturating_mul((*s).max(1));
    }
    cells.extend(strides);
}

/// How many parameter cells a kernel with buffers of these ranks takes: the dims and status
/// memrefs (5 each), then 3 + 2·rank per buffer. A kernel's PTX `.entry` has exactly as many
/// `.param`s (checked in the compiler's tests).
pub fn param_count(ranks: impl IntoIterator<Item = usize>) -> usize {
    10 + ranks.into_iter().map(|r| 3 + 2 * r).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launches_cover_the_threads_in_blocks_of_256() {
        assert_eq!(launch_dims(0), Some((1, 1)));
        assert_eq!(launch_dims(1), Some((1, 1)));
        assert_eq!(launch_dims(100), Some((1, 100)));
        assert_eq!(launch_dims(256), Some((1, 256)));
        assert_eq!(launch_dims(257), Some((2, 256)));
        assert_eq!(launch_dims(8 * 1024 * 128_256), Some((4_104_192, 256)));
        assert_eq!(
            launch_dims(u64::from(i32::MAX as u32) * 256),
            Some((i32::MAX as u32, 256))
        );
        assert_eq!(launch_dims(u64::from(i32::MAX as u32) * 256 + 1), None);
        assert_eq!(launch_dims(u64::MAX), None);
    }

    #[test]
    fn memrefs_lower_to_pointer_offset_sizes_strides() {
        let mut cells = Vec::new();
        push_memref(&mut cells, 0x1000, &[2, 3, 4]);
        assert_eq!(cells, [0x1000, 0x1000, 0, 2, 3, 4, 12, 4, 1]);
        cells.clear();
        push_memref(&mut cells, 8, &[]);
        assert_eq!(cells, [8, 8, 0]);
        cells.clear();
        push_memref(&mut cells, 8, &[0, 5]);
        assert_eq!(cells, [8, 8, 0, 0, 5, 5, 1]);
        assert_eq!(param_count([1, 0, 2]), 10 + 5 + 3 + 7);
    }
}
