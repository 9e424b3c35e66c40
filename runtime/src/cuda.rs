//! The CUDA [`Device`]: cudarc over the driver API, loaded at run time (`dynamic-loading`), so
//! everything builds and runs without CUDA and asks for `libcuda.so` only when a CUDA run
//! starts. One context (the device's primary one, shared with PyTorch) and one stream per
//! device object; memory from the device's stream-ordered pool, which keeps freed memory
//! cached for the next run (release threshold raised to the maximum): the caching allocator.
//! PTX is loaded by the driver, which assembles it for the device.

#![allow(unsafe_code)]

use crate::device::{launch_dims, Device, DeviceError, DevicePtr};
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
    /// Loads `ptx` (made for this device's chip) into `ctx` and looks up `symbols`.
    pub fn load(
        ctx: Arc<CudaContext>,
        ptx: &str,
        symbols: &[&str],
    ) -> Result<CudaDevice, DeviceError> {
        if ptx.contains('\0') {
            return Err(DeviceError::Failed("the PTX holds a NUL byte".into()));
        }
        let module = ctx
            .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
            .map_err(failed("loading the PTX"))?;
        let mut functions = HashMap::new();
        for s in symbols {
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
        Ok(CudaDevice {
            ctx,
            stream,
            functions,
            name,
            peak_bandwidth,
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

    fn alloc_zeroed(&self, bytes: usize) -> Result<DevicePtr, DeviceError> {
        self.bind()?;
        let bytes = bytes.max(1);
        let s = self.stream.cu_stream();
        // SAFETY: the stream is live; the memory is zeroed on the same stream before any use.
        unsafe {
            let p = result::malloc_async(s, bytes)
                .map_err(failed(&format!("allocating {bytes} bytes")))?;
            result::memset_d8_async(p, 0, bytes, s).map_err(failed("zeroing"))?;
            Ok(p)
        }
    }

    fn free(&self, ptr: DevicePtr) {
        if self.bind().is_ok() {
            // SAFETY: `ptr` came from `alloc_zeroed` on this stream; stream order makes the
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
