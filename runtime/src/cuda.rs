//! The CUDA [`Device`]: cudarc over the driver API, loaded at run time (`dynamic-loading`), so
//! everything builds and runs without CUDA and asks for `libcuda.so` only when a CUDA run
//! starts. One context (the device's primary one, shared with PyTorch) and one stream per
//! device object; memory from the device's stream-ordered pool, which keeps freed memory
//! cached for the next run (release threshold raised to the maximum): the caching allocator.
//! PTX is loaded by the driver, which assembles it for the device.

#![allow(unsafe_code)]

use crate::device::{launch_dims, Device, DeviceError, DevicePtr, Gemm};
use crate::manifest::Manifest;
use cudarc::cublas::{result as blas, sys as blas_sys};
use cudarc::driver::{result, sys, CudaContext, CudaFunction, CudaStream};
use std::collections::HashMap;
use std::sync::Arc;

/// A CUDA device with one loaded PTX module.
pub struct CudaDevice {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    functions: HashMap<String, CudaFunction>,
    name: String,
    peak_bandwidth: Option<f64>,
    /// cuBLAS on the device's stream, when its library loads (else GEMMs run on the host).
    blas: Option<blas_sys::cublasHandle_t>,
}

// SAFETY: the cuBLAS handle is used only through `&self` methods that bind the context and
// issue work on the device's one stream, as the driver handles are.
unsafe impl Send for CudaDevice {}
unsafe impl Sync for CudaDevice {}

impl Drop for CudaDevice {
    fn drop(&mut self) {
        if let Some(h) = self.blas.take() {
            // SAFETY: the handle was created by `load` and is destroyed once.
            unsafe {
                let _ = blas::destroy_handle(h);
            }
        }
    }
}

/// The arguments of one cuBLAS strided batched GEMM (column-major: `C = op(A) · op(B)`,
/// `C` of `m × n`) that computes a [`Gemm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlasCall {
    /// `op(A)` is `Aᵀ`.
    pub transa: bool,
    /// `op(B)` is `Bᵀ`.
    pub transb: bool,
    /// Rows of `C`.
    pub m: i32,
    /// Columns of `C`.
    pub n: i32,
    /// The summed size.
    pub k: i32,
    /// `A`, its leading dimension and batch stride (elements).
    pub a: (DevicePtr, i32, i64),
    /// `B`, likewise.
    pub b: (DevicePtr, i32, i64),
    /// `C`, likewise.
    pub c: (DevicePtr, i32, i64),
    /// The batch count.
    pub batch: i32,
}

/// How cuBLAS takes a logical `rows × cols` matrix whose element `(r, c)` is at `r·sr + c·sc`:
/// stored column-major with a leading dimension, used as is (`false`) or transposed. None when
/// neither stride is a unit one.
fn blas_operand(rows: usize, cols: usize, sr: usize, sc: usize) -> Option<(bool, usize)> {
    if sr == 1 || rows == 1 {
        let ld = if cols == 1 { rows.max(1) } else { sc };
        return (ld >= rows.max(1)).then_some((false, ld));
    }
    if sc == 1 || cols == 1 {
        let ld = if rows == 1 { cols.max(1) } else { sr };
        return (ld >= cols.max(1)).then_some((true, ld));
    }
    None
}

/// `c = x · y` for logical `x` (`m × k`), `y` (`k × n`), `c` (`m × n`), each `(ptr, [batch,
/// row, column] strides)`, when `c` is column-major as it stands.
fn blas_direct(
    (m, n, k, batch): (usize, usize, usize, usize),
    x: (DevicePtr, [usize; 3]),
    y: (DevicePtr, [usize; 3]),
    c: (DevicePtr, [usize; 3]),
) -> Option<BlasCall> {
    let (c_trans, ldc) = blas_operand(m, n, c.1[1], c.1[2])?;
    if c_trans {
        return None;
    }
    let (transa, lda) = blas_operand(m, k, x.1[1], x.1[2])?;
    let (transb, ldb) = blas_operand(k, n, y.1[1], y.1[2])?;
    let int = |v: usize| i32::try_from(v).ok();
    let long = |v: usize| i64::try_from(v).ok();
    Some(BlasCall {
        transa,
        transb,
        m: int(m)?,
        n: int(n)?,
        k: int(k)?,
        a: (x.0, int(lda)?, long(x.1[0])?),
        b: (y.0, int(ldb)?, long(y.1[0])?),
        c: (c.0, int(ldc)?, long(c.1[0])?),
        batch: int(batch)?,
    })
}

/// The cuBLAS call computing `g`: directly when `c` is column-major, else as `cᵀ = bᵀ · aᵀ`
/// (a row-major `c` is a column-major `cᵀ`). None when an operand has no unit stride or a size
/// exceeds cuBLAS's integers.
pub fn blas_call(g: &Gemm) -> Option<BlasCall> {
    let t = |(p, [sb, sr, sc]): (DevicePtr, [usize; 3])| (p, [sb, sc, sr]);
    blas_direct((g.m, g.n, g.k, g.batch), g.a, g.b, g.c)
        .or_else(|| blas_direct((g.n, g.m, g.k, g.batch), t(g.b), t(g.a), t(g.c)))
}

/// The device's compute capability as a chip name (`sm_90`).
pub fn chip_of(major: i32, minor: i32) -> String {
    format!("sm_{major}{minor}")
}

/// The chip PTX is made for on a device of compute capability `major.minor`: sm_90 from 9.0
/// on, sm_80 for 8.x (the driver assembles PTX for the chip it runs on, so sm_80 code runs on
/// sm_86 and sm_89, sm_90 code on later chips); None below 8.0.
pub fn ptx_chip(major: i32, _minor: i32) -> Option<&'static str> {
    match major {
        9.. => Some("sm_90"),
        8 => Some("sm_80"),
        _ => None,
    }
}

fn failed(what: &str) -> impl Fn(result::DriverError) -> DeviceError + '_ {
    move |e| DeviceError::Failed(format!("{what}: {e}"))
}

/// Whether a device whose PTX chip is `device_chip` ([`ptx_chip`]) runs PTX made for `chip`:
/// sm_80 code runs on every supported device, sm_90 code from sm_90 on.
pub fn runs(device_chip: &str, chip: &str) -> bool {
    chip == "sm_80" || chip == device_chip
}

/// Opens device `ordinal` (its primary context): an error, never a panic, without a driver or
/// a device. Returns the context and the chip to make PTX for ([`ptx_chip`]).
pub fn open(ordinal: usize) -> Result<(Arc<CudaContext>, &'static str), DeviceError> {
    // SAFETY: only tries to load the library; cudarc's calls panic when it is missing.
    if !unsafe { sys::is_culib_present() } {
        return Err(DeviceError::NoDriver);
    }
    let ctx = CudaContext::new(ordinal)
        .map_err(|e| DeviceError::Unavailable(format!("no usable CUDA device {ordinal} ({e})")))?;
    let (major, minor) = ctx
        .compute_capability()
        .map_err(failed("reading the compute capability"))?;
    let chip = ptx_chip(major, minor).ok_or_else(|| {
        DeviceError::Unavailable(format!(
            "{} is older than sm_80, the first chip FTL makes code for",
            chip_of(major, minor)
        ))
    })?;
    Ok((ctx, chip))
}

impl CudaDevice {
    /// Loads `ptx` (made for this device's chip) into `ctx` and looks up the kernels of
    /// `manifest`.
    pub fn load(
        ctx: Arc<CudaContext>,
        ptx: &str,
        manifest: &Manifest,
    ) -> Result<CudaDevice, DeviceError> {
        if ptx.contains('\0') {
            return Err(DeviceError::Failed("the PTX holds a NUL byte".into()));
        }
        let module = ctx
            .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
            .map_err(failed("loading the PTX"))?;
        let mut functions = HashMap::new();
        for s in manifest.kernels().map(|k| k.symbol.as_str()) {
            if s.contains('\0') {
                return Err(DeviceError::Failed(format!("bad kernel name {s:?}")));
            }
            let f = module
                .load_function(s)
                .map_err(failed(&format!("kernel `{s}`")))?;
            functions.insert(s.to_string(), f);
        }
        let stream = ctx.new_stream().map_err(failed("creating a stream"))?;
        // Keep freed memory in the pool between runs instead of returning it to the driver.
        // SAFETY: the device is the context's; the attribute takes a u64.
        unsafe {
            let pool = result::device::get_default_mem_pool(ctx.cu_device())
                .map_err(failed("mem pool"))?;
            let mut threshold = u64::MAX;
            result::mem_pool::set_attribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                &mut threshold as *mut u64 as *mut std::ffi::c_void,
            )
            .map_err(failed("mem pool"))?;
        }
        let (major, minor) = ctx
            .compute_capability()
            .map_err(failed("reading the compute capability"))?;
        let name = format!(
            "{} ({})",
            ctx.name().unwrap_or_else(|_| "CUDA device".into()),
            chip_of(major, minor)
        );
        // Memory clock (kHz) × bus width (bits), double data rate.
        let attribute = |a| ctx.attribute(a).ok().filter(|v| *v > 0);
        let peak_bandwidth =
            attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE)
                .zip(attribute(
                    sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH,
                ))
                .map(|(khz, bits)| f64::from(khz) * 1e3 * 2.0 * f64::from(bits) / 8.0);
        // SAFETY: only tries to load the library; cudarc's calls panic when it is missing.
        let blas = if unsafe { blas_sys::is_culib_present() } {
            let h =
                blas::create_handle().map_err(|e| DeviceError::Failed(format!("cuBLAS: {e:?}")))?;
            // SAFETY: a fresh handle and the device's live stream.
            unsafe { blas::set_stream(h, stream.cu_stream() as blas_sys::cudaStream_t) }
                .map_err(|e| DeviceError::Failed(format!("cuBLAS: {e:?}")))?;
            Some(h)
        } else {
            None
        };
        Ok(CudaDevice {
            ctx,
            stream,
            functions,
            name,
            peak_bandwidth,
            blas,
        })
    }

    fn bind(&self) -> Result<(), DeviceError> {
        self.ctx
            .bind_to_thread()
            .map_err(failed("binding the context"))
    }
}

impl Device for CudaDevice {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn alloc(&self, bytes: usize) -> Result<DevicePtr, DeviceError> {
        self.bind()?;
        let bytes = bytes.max(1);
        // SAFETY: the stream is live; the memory is used on the same stream only.
        unsafe { result::malloc_async(self.stream.cu_stream(), bytes) }
            .map_err(failed(&format!("allocating {bytes} bytes")))
    }

    fn free(&self, ptr: DevicePtr) {
        if self.bind().is_ok() {
            // SAFETY: `ptr` came from `alloc` on this stream; stream order makes the
            // free follow every use issued before it.
            unsafe {
                let _ = result::free_async(ptr, self.stream.cu_stream());
            }
        }
    }

    fn upload(&self, dst: DevicePtr, src: &[u8]) -> Result<(), DeviceError> {
        self.bind()?;
        // SAFETY: `dst` holds `src.len()` bytes (the caller's contract); a copy from pageable
        // host memory has been staged when the call returns, so `src` may change afterwards.
        unsafe { result::memcpy_htod_async(dst, src, self.stream.cu_stream()) }
            .map_err(failed("copying to the device"))
    }

    fn download(&self, src: DevicePtr, dst: &mut [u8]) -> Result<(), DeviceError> {
        self.bind()?;
        // SAFETY: `src` holds `dst.len()` bytes; the stream is synchronized before `dst` is
        // read.
        unsafe { result::memcpy_dtoh_async(dst, src, self.stream.cu_stream()) }
            .map_err(failed("copying from the device"))?;
        self.synchronize()
    }

    fn has_kernel(&self, symbol: &str) -> bool {
        self.functions.contains_key(symbol)
    }

    fn launch(&self, symbol: &str, threads: u64, params: &[u64]) -> Result<(), DeviceError> {
        self.bind()?;
        let f = self
            .functions
            .get(symbol)
            .ok_or_else(|| DeviceError::Failed(format!("no kernel `{symbol}`")))?;
        let (grid, block) = launch_dims(threads).ok_or_else(|| {
            DeviceError::Failed(format!("{threads} threads are more than one launch covers"))
        })?;
        let mut cells = params.to_vec();
        let mut args: Vec<*mut std::ffi::c_void> = cells
            .iter_mut()
            .map(|c| c as *mut u64 as *mut std::ffi::c_void)
            .collect();
        // SAFETY: the kernel was generated for exactly these parameter cells (one u64 per
        // lowered memref field); the pointers in them are live device allocations of this run;
        // the driver copies the parameters before returning.
        unsafe {
            result::launch_kernel(
                f.cu_function(),
                (grid, 1, 1),
                (block, 1, 1),
                0,
                self.stream.cu_stream(),
                &mut args,
            )
        }
        .map_err(failed(&format!("launching `{symbol}`")))
    }

    fn peak_bandwidth(&self) -> Option<f64> {
        self.peak_bandwidth
    }

    fn gemm(&self, g: &Gemm) -> Result<bool, DeviceError> {
        let (Some(h), Some(call)) = (self.blas, blas_call(g)) else {
            return Ok(false);
        };
        if g.k == 0 {
            return Ok(false); // c = 0 (or unchanged): the host's routine says so plainly.
        }
        if g.m == 0 || g.n == 0 || g.batch == 0 {
            return Ok(true);
        }
        self.bind()?;
        let op = |t: bool| {
            if t {
                blas_sys::cublasOperation_t::CUBLAS_OP_T
            } else {
                blas_sys::cublasOperation_t::CUBLAS_OP_N
            }
        };
        let beta: f64 = if g.accumulate { 1.0 } else { 0.0 };
        let (a, b, c) = (call.a, call.b, call.c);
        macro_rules! strided_batched {
            ($gemm:path, $t:ty) => {
                $gemm(
                    h,
                    op(call.transa),
                    op(call.transb),
                    call.m,
                    call.n,
                    call.k,
                    &1.0,
                    a.0 as *const $t,
                    a.1,
                    a.2,
                    b.0 as *const $t,
                    b.1,
                    b.2,
                    &(beta as $t),
                    c.0 as *mut $t,
                    c.1,
                    c.2,
                    call.batch,
                )
            };
        }
        // SAFETY: the pointers are live device allocations of this run holding every element
        // the strides address (the executor's buffers); scalars are host values.
        let done = unsafe {
            if g.f64 {
                strided_batched!(blas::dgemm_strided_batched, f64)
            } else {
                strided_batched!(blas::sgemm_strided_batched, f32)
            }
        };
        done.map_err(|e| DeviceError::Failed(format!("cuBLAS GEMM: {e:?}")))?;
        Ok(true)
    }

    fn synchronize(&self) -> Result<(), DeviceError> {
        self.bind()?;
        self.stream
            .synchronize()
            .map_err(failed("running the kernels"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chips_are_named_from_the_compute_capability() {
        assert_eq!(chip_of(9, 0), "sm_90");
        assert_eq!(chip_of(8, 6), "sm_86");
        assert_eq!(ptx_chip(9, 0), Some("sm_90"));
        assert_eq!(ptx_chip(10, 0), Some("sm_90"));
        assert_eq!(ptx_chip(8, 9), Some("sm_80"));
        assert_eq!(ptx_chip(7, 5), None);
        assert!(runs("sm_90", "sm_80") && runs("sm_90", "sm_90") && runs("sm_80", "sm_80"));
        assert!(!runs("sm_80", "sm_90") && !runs("sm_90", "sm_100"));
    }

    /// cuBLAS's column-major GEMM as its documentation defines it, on `mem` (pointers are
    /// element indices).
    fn blas_reference(call: &BlasCall, mem: &mut [f64], accumulate: bool) {
        let at = |(p, ld, _): (DevicePtr, i32, i64), r: usize, c: usize, bi: usize, stride: i64| {
            p as usize + bi * stride as usize + r + c * ld as usize
        };
        for bi in 0..call.batch as usize {
            for i in 0..call.m as usize {
                for j in 0..call.n as usize {
                    let mut sum = 0.0;
                    for l in 0..call.k as usize {
                        let (ar, ac) = if call.transa { (l, i) } else { (i, l) };
                        let (br, bc) = if call.transb { (j, l) } else { (l, j) };
                        sum += mem[at(call.a, ar, ac, bi, call.a.2)]
                            * mem[at(call.b, br, bc, bi, call.b.2)];
                    }
                    let ci = at(call.c, i, j, bi, call.c.2);
                    mem[ci] = if accumulate { mem[ci] + sum } else { sum };
                }
            }
        }
    }

    /// [`Gemm`]'s meaning, on `mem`.
    fn strided_reference(g: &Gemm, mem: &mut [f64]) {
        let at = |(p, s): (DevicePtr, [usize; 3]), bi: usize, r: usize, c: usize| {
            p as usize + bi * s[0] + r * s[1] + c * s[2]
        };
        for bi in 0..g.batch {
            for i in 0..g.m {
                for j in 0..g.n {
                    let sum: f64 = (0..g.k)
                        .map(|l| mem[at(g.a, bi, i, l)] * mem[at(g.b, bi, l, j)])
                        .sum();
                    let ci = at(g.c, bi, i, j);
                    mem[ci] = if g.accumulate { mem[ci] + sum } else { sum };
                }
            }
        }
    }

    /// Every combination of row- and column-major operands (padded leading dimensions, batch
    /// strides, sizes of 1): the cuBLAS call [`blas_call`] makes computes what the `Gemm`
    /// means; a layout without a unit stride has no call.
    #[test]
    fn gemm_layouts_map_to_the_cublas_call_that_computes_them() {
        let mut checked = 0;
        for (m, n, k, batch) in [
            (3, 4, 5, 2),
            (1, 4, 3, 1),
            (3, 1, 2, 3),
            (2, 3, 1, 2),
            (1, 1, 4, 2),
        ] {
            for layout in 0..8u32 {
                for accumulate in [false, true] {
                    // Operand `rows × cols` at `base`, row-major (`major`) or column-major,
                    // leading dimension padded by 1, batches one matrix apart plus 3.
                    let place = |base: usize, rows: usize, cols: usize, row_major: bool| {
                        let (sr, sc) = if row_major {
                            (cols + 1, 1)
                        } else {
                            (1, rows + 1)
                        };
                        let size = (rows.max(1) + 1) * (cols.max(1) + 1) + 3;
                        ((base as DevicePtr, [size, sr, sc]), base + size * batch)
                    };
                    let (a, end) = place(0, m, k, layout & 1 != 0);
                    let (b, end) = place(end, k, n, layout & 2 != 0);
                    let (c, end) = place(end, m, n, layout & 4 != 0);
                    let g = Gemm {
                        f64: true,
                        batch,
                        m,
                        n,
                        k,
                        a,
                        b,
                        c,
                        accumulate,
                    };
                    let mut want: Vec<f64> =
                        (0..end).map(|x| ((x * 7919) % 13) as f64 - 6.0).collect();
                    let mut got = want.clone();
                    strided_reference(&g, &mut want);
                    let call = blas_call(&g).expect("a unit-stride layout has a call");
                    blas_reference(&call, &mut got, accumulate);
                    assert_eq!(got, want, "{g:?} → {call:?}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 80);
        // No unit stride in `a`: the host's GEMM takes it.
        let g = Gemm {
            f64: false,
            batch: 1,
            m: 2,
            n: 2,
            k: 2,
            a: (0, [0, 4, 2]),
            b: (16, [0, 2, 1]),
            c: (32, [0, 2, 1]),
            accumulate: false,
        };
        assert_eq!(blas_call(&g), None);
    }

    /// Without a driver the device is an error (there is none on the CI machine); with one,
    /// device 0 opens.
    #[test]
    fn opening_without_a_driver_is_an_error_not_a_panic() {
        match open(0) {
            Err(DeviceError::NoDriver) => println!("no CUDA driver here: the error path ran"),
            Err(e) => println!("driver present, no device: {e}"),
            Ok((_, chip)) => println!("opened a CUDA device: {chip}"),
        }
    }
}
