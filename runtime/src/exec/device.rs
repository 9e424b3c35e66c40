//! The executor's device path: the same run (binding, dims, budget, steps in order) with the
//! generated kernels launched on a [`Device`] over device copies of the buffers, and GEMMs on
//! the device where its GEMM takes them. The other host routines (argsort, solve,
//! decompositions, GEMMs it does not take) run on the host copies, so buffers move between the
//! two where a step needs them: each buffer (each view's base) is fresh on the host, on the
//! device or on both, and is copied only when a step needs it where it is stale.
//!
//! A kernel may write any of its buffers but the inputs, so after a launch those are fresh on
//! the device only; a host routine writes its result, fresh on the host only; temporaries and
//! outputs start fresh nowhere (their contents are unspecified until a step writes them, as
//! on the host), so neither is copied before its first write. The status word
//! (an out-of-range gather) lives on the device and is read after the prelude, before each host
//! routine and at the end.

use super::{fail, group_stride, ExecError, ExecErrorKind, Executor, Memory, Slice};
use crate::device::{push_memref, Device, DeviceError, DevicePtr, Gemm, MAX_THREADS};
use crate::manifest::{BufferRole, ContractDecl, KernelDecl, Step};
use crate::DType;

/// Where a buffer's current contents are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fresh {
    /// Not written yet this run (a temporary or an output): nothing to copy either way.
    Nowhere,
    Host,
    Device,
    Both,
}

/// One run's device state: the device memory of each buffer base, where each is fresh, the
/// status word and the dims vectors uploaded so far.
pub(super) struct DeviceRun<'d> {
    device: &'d dyn Device,
    memory: Vec<Option<(DevicePtr, usize)>>,
    fresh: Vec<Fresh>,
    status: DevicePtr,
    dims: Vec<(Vec<i64>, DevicePtr)>,
    /// Milliseconds spent copying buffers between host and device so far.
    pub(super) copy_ms: f64,
}

impl From<DeviceError> for ExecError {
    fn from(e: DeviceError) -> ExecError {
        ExecError {
            messages: vec![e.to_string()],
            kind: ExecErrorKind::Device,
        }
    }
}

impl<'d> DeviceRun<'d> {
    /// A run on `device` over buffers of these roles: arguments and literals fresh on the
    /// host, temporaries and outputs not written yet.
    pub(super) fn new(
        device: &'d dyn Device,
        roles: impl Iterator<Item = &'d BufferRole>,
    ) -> Result<DeviceRun<'d>, ExecError> {
        let fresh: Vec<Fresh> = roles
            .map(|r| match r {
                BufferRole::Temp | BufferRole::Output(_) => Fresh::Nowhere,
                _ => Fresh::Host,
            })
            .collect();
        let run = DeviceRun {
            device,
            memory: vec![None; fresh.len()],
            fresh,
            status: device.alloc(3 * 8)?,
            dims: Vec::new(),
            copy_ms: 0.0,
        };
        // Dropped (and freed) if this fails.
        device.upload(run.status, &[0; 3 * 8])?;
        Ok(run)
    }

    /// The device copy of `dims` (uploaded once per distinct vector).
    fn dims(&mut self, dims: &[i64]) -> Result<DevicePtr, ExecError> {
        if let Some((_, p)) = self.dims.iter().find(|(d, _)| d == dims) {
            return Ok(*p);
        }
        let p = self.device.alloc(dims.len() * 8)?;
        self.dims.push((dims.to_vec(), p));
        self.device.upload(p, bytemuck::cast_slice(dims))?;
        Ok(p)
    }
}

impl Drop for DeviceRun<'_> {
    fn drop(&mut self) {
        for (p, _) in self.memory.iter().flatten() {
            self.device.free(*p);
        }
        for (_, p) in &self.dims {
            self.device.free(*p);
        }
        self.device.free(self.status);
    }
}

impl Executor {
    /// The buffer whose memory `b` is (a view's base).
    fn base(&self, mem: &[Option<Memory<'_>>], b: u32) -> u32 {
        let mut at = b;
        for _ in 0..=mem.len() {
            match &mem[at as usize] {
                Some(Memory::View(of)) => at = *of,
                _ => break,
            }
        }
        at
    }

    /// Makes the device copies of `which` current: allocated at their host size and uploaded
    /// where the host holds the only current copy (a buffer not written yet needs no copy).
    fn to_device(
        &self,
        run: &mut DeviceRun<'_>,
        mem: &[Option<Memory<'_>>],
        which: &[u32],
    ) -> Result<(), ExecError> {
        for &b in which {
            let base = self.base(mem, b) as usize;
            let p = match run.memory[base] {
                Some((p, _)) => p,
                None => {
                    let bytes = self.capacity(mem, base as u32);
                    let p = run.device.alloc(bytes)?;
                    run.memory[base] = Some((p, bytes));
                    p
                }
            };
            if run.fresh[base] == Fresh::Host {
                let start = std::time::Instant::now();
                run.device.upload(p, self.all_bytes(mem, base as u32)?)?;
                run.device.synchronize()?;
                run.copy_ms += start.elapsed().as_secs_f64() * 1e3;
                run.fresh[base] = Fresh::Both;
            }
        }
        Ok(())
    }

    /// Makes the host copies of `which` current (a host routine's operands, the prelude's
    /// scalars, the outputs), downloading where the device holds the only current copy (a
    /// buffer not written yet needs no copy).
    pub(super) fn to_host(
        &self,
        run: &mut DeviceRun<'_>,
        mem: &mut [Option<Memory<'_>>],
        which: &[u32],
    ) -> Result<(), ExecError> {
        for &b in which {
            let base = self.base(mem, b) as usize;
            if run.fresh[base] != Fresh::Device {
                continue;
            }
            let Some((p, bytes)) = run.memory[base] else {
                return fail(
                    ExecErrorKind::Run,
                    "internal error: a device buffer is missing",
                );
            };
            match &mut mem[base] {
                Some(Memory::Owned(w)) => {
                    let host: &mut [u8] = bytemuck::cast_slice_mut(w);
                    let n = bytes.min(host.len());
                    let start = std::time::Instant::now();
                    run.device.download(p, &mut host[..n])?;
                    run.copy_ms += start.elapsed().as_secs_f64() * 1e3;
                }
                _ => {
                    return fail(
                        ExecErrorKind::Run,
                        "internal error: a kernel wrote a buffer the run does not own",
                    )
                }
            }
            run.fresh[base] = Fresh::Both;
        }
        Ok(())
    }

    /// Where buffer `b` (made current on the device) starts there: at the slice's rows in a
    /// sliced region.
    fn device_ptr(
        &self,
        run: &DeviceRun<'_>,
        mem: &[Option<Memory<'_>>],
        b: u32,
        sizes: &[Option<i64>],
        slice: Option<&Slice<'_>>,
    ) -> Result<DevicePtr, ExecError> {
        let Some((p, _)) = run.memory[self.base(mem, b) as usize] else {
            return fail(
                ExecErrorKind::Run,
                "internal error: a device buffer is missing",
            );
        };
        Ok(p + slice.map_or(0, |s| self.slice_offset(b, s, sizes)) as u64)
    }

    /// Launches kernel `k` on the device (the launch form of `Executor::kernel`): its buffers
    /// made current there, offset to the slice's rows in a sliced region.
    pub(super) fn launch(
        &self,
        run: &mut DeviceRun<'_>,
        k: &KernelDecl,
        mem: &[Option<Memory<'_>>],
        sizes: &[Option<i64>],
        slice: Option<&Slice<'_>>,
    ) -> Result<(), ExecError> {
        self.to_device(run, mem, &k.buffers)?;
        let dims = self.kernel_dims(sizes, slice);
        let mut cells = Vec::new();
        push_memref(&mut cells, run.dims(&dims)?, &[dims.len() as i64]);
        push_memref(&mut cells, run.status, &[3]);
        for &b in &k.buffers {
            let shape: Vec<i64> = self.shape(b, sizes).iter().map(|s| *s as i64).collect();
            push_memref(
                &mut cells,
                self.device_ptr(run, mem, b, sizes, slice)?,
                &shape,
            );
            let base = self.base(mem, b) as usize;
            if !matches!(self.manifest.buffers[base].role, BufferRole::Arg(_)) {
                run.fresh[base] = Fresh::Device;
            }
        }
        let threads = grid_threads(&k.grid, &dims);
        run.device.launch(&k.symbol, threads, &cells)?;
        // Synchronized per step, so that step timings are the kernels' own.
        run.device.synchronize()?;
        Ok(())
    }

    /// Runs contraction `c` on the device when it can — f32 or f64 operands of the result's
    /// dtype, in a layout the device's GEMM takes — and says whether it did (else the caller
    /// runs it on the host). In a sliced region the operands start at the slice's rows and a
    /// result combined over the slices accumulates.
    pub(super) fn device_contract(
        &self,
        run: &mut DeviceRun<'_>,
        c: &ContractDecl,
        mem: &[Option<Memory<'_>>],
        sizes: &[Option<i64>],
        slice: Option<&Slice<'_>>,
    ) -> Result<bool, ExecError> {
        if !self.contract_in_place(c) {
            return Ok(false);
        }
        let dtype = self.manifest.buffers[c.out as usize].dtype;
        let size = |d: &u32| sizes[*d as usize].unwrap_or(0).max(0) as usize;
        let prod = |ds: &[u32]| ds.iter().map(size).product::<usize>();
        let accumulate = slice.is_some_and(|s| s.region.start.iter().any(|(b, _)| *b == c.out));
        self.to_device(run, mem, &[c.a, c.b, c.out])?;
        let operand = |b: u32, rows: &[u32], cols: &[u32]| -> Result<_, ExecError> {
            let st = self.dim_strides(b, sizes);
            let stride = |group: &[u32]| group_stride(&st, group);
            Ok((
                self.device_ptr(run, mem, b, sizes, slice)?,
                [stride(&c.batch), stride(rows), stride(cols)],
            ))
        };
        let gemm = Gemm {
            f64: dtype == DType::F64,
            batch: prod(&c.batch),
            m: prod(&c.m),
            n: prod(&c.n),
            k: prod(&c.k),
            a: operand(c.a, &c.m, &c.k)?,
            b: operand(c.b, &c.k, &c.n)?,
            c: operand(c.out, &c.m, &c.n)?,
            accumulate,
        };
        if !run.device.gemm(&gemm)? {
            return Ok(false);
        }
        run.device.synchronize()?;
        let base = self.base(mem, c.out) as usize;
        run.fresh[base] = Fresh::Device;
        Ok(true)
    }

    /// Reads the device's status word into `status` and reports an out-of-range gather.
    pub(super) fn device_status(
        &self,
        run: &mut DeviceRun<'_>,
        sizes: &[Option<i64>],
        status: &mut [i64],
    ) -> Result<(), ExecError> {
        run.device
            .download(run.status, bytemuck::cast_slice_mut(&mut status[..3]))?;
        self.check_status(status, &self.kernel_dims(sizes, None))
    }

    /// Brings a host routine's operands (and its result, which a slice may only partly write)
    /// to the host; afterwards [`Executor::wrote_on_host`] marks the result.
    pub(super) fn before_host_step(
        &self,
        run: &mut DeviceRun<'_>,
        step: &Step,
        mem: &mut [Option<Memory<'_>>],
        sizes: &[Option<i64>],
        status: &mut [i64],
    ) -> Result<(), ExecError> {
        self.device_status(run, sizes, status)?;
        let Some((reads, out)) = host_operands(step) else {
            return fail(
                ExecErrorKind::Run,
                "internal error: a kernel run as a host routine",
            );
        };
        self.to_host(run, mem, &reads)?;
        self.to_host(run, mem, &[out])
    }

    /// Marks buffer `b` as written on the host.
    pub(super) fn wrote_on_host(
        &self,
        run: &mut DeviceRun<'_>,
        mem: &[Option<Memory<'_>>],
        b: u32,
    ) {
        let base = self.base(mem, b) as usize;
        run.fresh[base] = Fresh::Host;
    }
}

/// A host routine's operands and result (None for the steps that are not one).
pub(super) fn host_operands(step: &Step) -> Option<(Vec<u32>, u32)> {
    match step {
        Step::Contract(c) => Some((vec![c.a, c.b], c.out)),
        Step::ArgSort { x, out, .. } => Some((vec![*x], *out)),
        Step::Decompose { a, out, .. } => Some((vec![*a], *out)),
        Step::Solve { a, b, out, .. } => Some((vec![*a, *b], *out)),
        Step::Kernel(_) | Step::Sliced { .. } => None,
    }
}

/// The threads a launch of a kernel with this grid takes: one per point of the grid's dims (at
/// `dims`' sizes), at most [`MAX_THREADS`] (each thread strides over the points), one for a
/// kernel without a grid.
fn grid_threads(grid: &[u32], dims: &[i64]) -> u64 {
    if grid.is_empty() {
        return 1;
    }
    let points = grid
        .iter()
        .map(|d| dims.get(*d as usize).copied().unwrap_or(0).max(0) as u64)
        .fold(1u64, |a, s| a.saturating_mul(s));
    points.clamp(1, MAX_THREADS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_has_a_thread_per_point_up_to_the_cap() {
        assert_eq!(grid_threads(&[], &[7, 9]), 1);
        assert_eq!(grid_threads(&[0, 1], &[7, 9]), 63);
        assert_eq!(grid_threads(&[1], &[7, 0]), 1);
        assert_eq!(grid_threads(&[0, 1, 2], &[8, 1024, 128_256]), MAX_THREADS);
    }
}
