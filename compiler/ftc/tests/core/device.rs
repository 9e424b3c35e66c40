//! The CUDA path without a GPU: [`SimDevice`] stands in for a CUDA device with memory of its
//! own and the CUDA launch model — the parameter cells a kernel's PTX takes, a grid of
//! 256-thread blocks — running the plan's CUDA kernels compiled for the host
//! (`ftl_mlir::cuda::host_emulation`: the same grid-stride mapping, thread index and thread
//! count as parameters), once per thread of the padded grid. It checks every launch: the cell
//! count is the PTX's (`device::param_count` of the kernel's buffers), and every pointer in
//! the cells lies in device memory with room for its buffer; its GEMM is `device::Gemm`'s
//! meaning (the cuBLAS call that computes it is checked in runtime/src/cuda.rs). Every entry of the repository
//! runs through it and must agree with the host executor; with a real device,
//! `cuda_runs_every_entry_like_the_interpreter` runs the PTX itself.

#![allow(unsafe_code)]

use super::every_entry_graph;
use ftc::run;
use ftl_plan::backend::Kernels;
use ftl_runtime::device::{launch_dims, param_count, Device, DeviceError, DevicePtr, Gemm};
use ftl_runtime::exec::{Executor, PackedFn};
use ftl_runtime::manifest::Manifest;
use ftl_runtime::Tensor;
use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;
use std::sync::{Arc, Mutex};

/// A device whose memory is host allocations it alone hands out and whose kernels are the
/// plan's CUDA kernels compiled for the host.
struct SimDevice {
    /// Each kernel's host entry point and its buffers' ranks and element sizes.
    kernels: HashMap<String, (PackedFn, Vec<(usize, usize)>)>,
    /// Live allocations by address.
    memory: Mutex<BTreeMap<u64, Box<[u64]>>>,
    launches: Mutex<usize>,
    /// Bytes copied to and from the device.
    copied: Mutex<(usize, usize)>,
    /// GEMMs asked for, and those run here (every other one: the rest go to the host).
    gemms: Mutex<(usize, usize)>,
}

impl SimDevice {
    /// The kernels of `manifest` from `jit`, which must outlive the device.
    fn new(jit: &ftl_mlir::jit::Jit, manifest: &Manifest) -> SimDevice {
        let mut kernels = HashMap::new();
        for k in manifest.kernels() {
            let shapes = k
                .buffers
                .iter()
                .map(|b| {
                    let d = &manifest.buffers[*b as usize];
                    (d.dims.len(), d.dtype.size_bytes())
                })
                .collect();
            kernels.insert(k.symbol.clone(), (jit.entry(&k.symbol).unwrap(), shapes));
        }
        SimDevice {
            kernels,
            memory: Mutex::new(BTreeMap::new()),
            launches: Mutex::new(0),
            copied: Mutex::new((0, 0)),
            gemms: Mutex::new((0, 0)),
        }
    }

    /// Whether `[ptr, ptr + bytes)` lies in one allocation.
    fn holds(&self, ptr: u64, bytes: u64) -> bool {
        let memory = self.memory.lock().unwrap();
        memory
            .range(..=ptr)
            .next_back()
            .is_some_and(|(start, words)| ptr + bytes <= start + words.len() as u64 * 8)
    }
}

impl Device for SimDevice {
    fn name(&self) -> String {
        "simulated device".into()
    }

    /// Memory filled with NaNs (all bits set), so that a run reading what it never wrote
    /// shows.
    fn alloc(&self, bytes: usize) -> Result<DevicePtr, DeviceError> {
        let words = vec![u64::MAX; bytes.div_ceil(8).max(1)].into_boxed_slice();
        let p = words.as_ptr() as u64;
        self.memory.lock().unwrap().insert(p, words);
        Ok(p)
    }

    fn free(&self, ptr: DevicePtr) {
        assert!(
            self.memory.lock().unwrap().remove(&ptr).is_some(),
            "double free"
        );
    }

    fn upload(&self, dst: DevicePtr, src: &[u8]) -> Result<(), DeviceError> {
        assert!(self.holds(dst, src.len() as u64), "upload out of bounds");
        self.copied.lock().unwrap().0 += src.len();
        // SAFETY: checked above: the destination is a live allocation of this device.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
        Ok(())
    }

    fn download(&self, src: DevicePtr, dst: &mut [u8]) -> Result<(), DeviceError> {
        assert!(self.holds(src, dst.len() as u64), "download out of bounds");
        self.copied.lock().unwrap().1 += dst.len();
        // SAFETY: checked above.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    fn has_kernel(&self, symbol: &str) -> bool {
        self.kernels.contains_key(symbol)
    }

    fn launch(&self, symbol: &str, threads: u64, params: &[u64]) -> Result<(), DeviceError> {
        let (f, buffers) = &self.kernels[symbol];
        assert_eq!(
            params.len(),
            param_count(buffers.iter().map(|(rank, _)| *rank)),
            "{symbol}: cells"
        );
        // The dims and status memrefs, then each buffer: its pointer and sizes in device memory.
        let dims = params[3] * 8;
        assert!(self.holds(params[0], dims), "{symbol}: dims");
        assert!(self.holds(params[5], 24), "{symbol}: status");
        let mut at = 10;
        // Every other launch runs the padded grid a GPU would (blocks of up to 256 threads), the
        // others two to five threads, fewer than the points, so that threads stride over them
        // and a thread past the first has none in a one-thread kernel.
        let mut launches = self.launches.lock().unwrap();
        let threads = if launches.is_multiple_of(2) {
            let (grid, block) = launch_dims(threads).expect("a launchable grid");
            u64::from(grid) * u64::from(block)
        } else {
            threads.min(3) + 2
        };
        *launches += 1;
        drop(launches);
        for (rank, elem) in buffers {
            let count: u64 = params[at + 3..at + 3 + rank].iter().product();
            assert_eq!(params[at], params[at + 1]);
            assert!(
                self.holds(params[at], count * *elem as u64),
                "{symbol}: a buffer is not in device memory"
            );
            at += 3 + 2 * rank;
        }
        for t in 0..threads {
            let mut cells: Vec<u64> = params[..10].to_vec();
            cells.extend([t, threads]);
            cells.extend(&params[10..]);
            let mut args: Vec<*mut c_void> = cells
                .iter_mut()
                .map(|c| c as *mut u64 as *mut c_void)
                .collect();
            // SAFETY: the cells are the kernel's parameters, checked above to point into live
            // device allocations large enough for each buffer.
            unsafe { f(args.as_mut_ptr()) };
        }
        Ok(())
    }

    fn synchronize(&self) -> Result<(), DeviceError> {
        Ok(())
    }

    /// `Gemm`'s meaning, on every other call (the others decline, so the executor's host
    /// fallback runs too), after checking each operand's extent lies in device memory.
    fn gemm(&self, g: &Gemm) -> Result<bool, DeviceError> {
        {
            let mut gemms = self.gemms.lock().unwrap();
            gemms.0 += 1;
            if gemms.0.is_multiple_of(2) {
                return Ok(false);
            }
            gemms.1 += 1;
        }
        let size = if g.f64 { 8 } else { 4 };
        let extent = |(p, s): (DevicePtr, [usize; 3]), rows: usize, cols: usize| {
            let last = [(g.batch, s[0]), (rows, s[1]), (cols, s[2])]
                .iter()
                .map(|(n, st)| n.saturating_sub(1) * st)
                .sum::<usize>();
            let empty = g.batch == 0 || rows == 0 || cols == 0;
            assert!(
                empty || self.holds(p, ((last + 1) * size) as u64),
                "a GEMM operand is not in device memory"
            );
        };
        extent(g.a, g.m, g.k);
        extent(g.b, g.k, g.n);
        extent(g.c, g.m, g.n);
        let at = |(p, s): (DevicePtr, [usize; 3]), bi: usize, r: usize, c: usize| {
            p as usize + (bi * s[0] + r * s[1] + c * s[2]) * size
        };
        // SAFETY: every address below is inside an operand's extent, checked above.
        let read = |addr: usize| unsafe {
            if g.f64 {
                *(addr as *const f64)
            } else {
                f64::from(*(addr as *const f32))
            }
        };
        for bi in 0..g.batch {
            for i in 0..g.m {
                for j in 0..g.n {
                    let mut sum = 0.0;
                    for l in 0..g.k {
                        sum += read(at(g.a, bi, i, l)) * read(at(g.b, bi, l, j));
                    }
                    let ci = at(g.c, bi, i, j);
                    let v = if g.accumulate { read(ci) + sum } else { sum };
                    // SAFETY: as above.
                    unsafe {
                        if g.f64 {
                            *(ci as *mut f64) = v;
                        } else {
                            *(ci as *mut f32) = v as f32;
                        }
                    }
                }
            }
        }
        Ok(true)
    }
}

/// What a run on the simulated device did: its launches and the bytes it uploaded and
/// downloaded.
struct Traffic {
    launches: usize,
    uploaded: usize,
    downloaded: usize,
    /// GEMMs run on the device.
    gemms: usize,
}

/// The outputs of `g` on `inputs` through the device path over a [`SimDevice`], and what it
/// moved.
fn run_simulated(
    g: &ftl_ir::Graph,
    inputs: &HashMap<String, Tensor>,
) -> (
    Result<Vec<(String, Tensor)>, ftl_ir::pipeline::Failure>,
    Traffic,
) {
    let plan = ftl_plan::fuse::fuse(g);
    let manifest = ftl_plan::manifest::build(&plan).unwrap();
    let jit = ftl_mlir::cuda::host_emulation(&plan).unwrap();
    let device = Arc::new(SimDevice::new(&jit, &manifest));
    let exec = Executor::on_device(manifest, device.clone()).unwrap();
    let out = exec.run(inputs).map_err(Into::into);
    drop(exec);
    assert!(
        device.memory.lock().unwrap().is_empty(),
        "{}: device memory left allocated",
        g.name
    );
    let (uploaded, downloaded) = *device.copied.lock().unwrap();
    let launches = *device.launches.lock().unwrap();
    let traffic = Traffic {
        launches,
        uploaded,
        downloaded,
        gemms: device.gemms.lock().unwrap().1,
    };
    (out, traffic)
}

/// Every entry of the repository through the device path: the same outputs and gradients as
/// the host executor (to 1e-5: the GPU kernels' loops are not vectorized), the same errors, no
/// device memory left behind; GEMMs run on the device (every other one) and on the host.
#[test]
fn the_device_path_runs_every_entry_like_the_host() {
    let mut failures = Vec::new();
    let (mut checked, mut launches, mut gemms) = (0, 0, 0);
    for (entry, g) in every_entry_graph() {
        let inputs = run::random_inputs(&g, &BTreeMap::new(), Some(5), 21).unwrap();
        let host = run::run_on(run::Backend::Mlir, &g, &inputs);
        let (device, traffic) = run_simulated(&g, &inputs);
        launches += traffic.launches;
        gemms += traffic.gemms;
        let label = format!("{entry} (host vs simulated device)");
        checked += usize::from(super::compare_runs(&label, &host, &device, &mut failures));
    }
    eprintln!(
        "{checked} entries on the simulated device, {launches} launches, {gemms} GEMMs there"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 200, "{checked}");
    assert!(gemms >= 50, "{gemms} GEMMs on the device");
}

/// DPO from logits moves its inputs to the device once and its outputs back once: no
/// temporary or output is copied before it is written, and nothing else comes back but the
/// prelude's scalars and the status word (a few bytes each).
#[test]
fn a_device_run_copies_inputs_in_and_outputs_out_once() {
    let file = super::repo().join("examples").join("dpo.ftl");
    let g = super::graph_of(&file, "sigmoid_from_logits", true);
    let dims = BTreeMap::from([
        ("B".to_string(), vec![2]),
        ("T".to_string(), vec![8]),
        ("V".to_string(), vec![50]),
    ]);
    let inputs = run::random_inputs(&g, &dims, None, 3).unwrap();
    let (out, traffic) = run_simulated(&g, &inputs);
    let out = out.unwrap();
    let input_bytes: usize = inputs.values().map(|t| t.bytes().len()).sum();
    let output_bytes: usize = out.iter().map(|(_, t)| t.bytes().len()).sum();
    let small = 256;
    assert!(
        traffic.uploaded >= input_bytes && traffic.uploaded <= input_bytes + small,
        "uploaded {} for {input_bytes} bytes of inputs",
        traffic.uploaded
    );
    assert!(
        traffic.downloaded >= output_bytes && traffic.downloaded <= output_bytes + small,
        "downloaded {} for {output_bytes} bytes of outputs",
        traffic.downloaded
    );
}

/// On a machine with a CUDA device: every entry on the GPU agrees with the interpreter to 1e-5
/// (f32). Skipped, saying so, where there is none (CI).
#[test]
fn cuda_runs_every_entry_like_the_interpreter() {
    if let Err(e) = ftl_runtime::cuda::open(0) {
        println!("skipped: {e}");
        return;
    }
    if ftl_mlir::cuda::libdevice().is_err() {
        println!("skipped: no libdevice (set FTL_LIBDEVICE)");
        return;
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for (entry, g) in every_entry_graph() {
        let inputs = run::random_inputs(&g, &BTreeMap::new(), Some(6), 11).unwrap();
        let want = run::run_graph(&g, &inputs);
        let got = run::run_on(run::Backend::Cuda, &g, &inputs);
        let label = format!("{entry} (interp vs cuda)");
        checked += usize::from(super::compare_runs(&label, &want, &got, &mut failures));
    }
    println!("{checked} entries run on the GPU");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `--backend cuda` where no driver can be loaded (the CI machine): E0098 and exit status 1 for
/// `ftc run`, `ftc test` and `ftc bench`, never a panic; `-o` needs no device (a CUDA artifact
/// is PTX: made wherever libdevice is, E0095 saying where to get it otherwise), and refuses an
/// unknown chip or CPU options with E0092.
#[test]
fn cuda_without_a_driver_is_a_coded_error() {
    if ftl_runtime::cuda::open(0).is_ok() {
        println!("skipped: a CUDA device is present");
        return;
    }
    let runs: [&[&str]; 3] = [
        &[
            "run",
            "examples/dpo.ftl",
            "--entry",
            "sigmoid",
            "--random",
            "--dims",
            "B=4",
        ],
        &["test", "examples/dpo.ftl"],
        &[
            "bench",
            "examples/dpo.ftl",
            "--entry",
            "sigmoid",
            "--dims",
            "B=4",
        ],
    ];
    for args in runs {
        let mut args = args.to_vec();
        args.extend(["--backend", "cuda"]);
        let (code, _, err) = super::ftc(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("E0098"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = super::scratch("cuda-artifact").join("x.ftlpack");
    let out = out.to_str().unwrap();
    let (code, _, err) = super::ftc(&[
        "build",
        "examples/dpo.ftl",
        "--entry",
        "sigmoid",
        "-o",
        out,
        "--backend",
        "cuda",
    ]);
    if ftl_mlir::cuda::libdevice().is_ok() {
        assert_eq!(code, 0, "{err}");
    } else {
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("E0095") && err.contains("FTL_LIBDEVICE"),
            "{err}"
        );
    }
    // A chip PTX is not made for, or CPU options on a CUDA artifact: E0092.
    for extra in [
        &["--target", "cuda:sm_99"][..],
        &["--target", "cuda", "--target-cpu", "native"],
    ] {
        let mut args = vec!["build", "examples/dpo.ftl", "--entry", "sigmoid", "-o", out];
        args.extend(extra);
        let (code, _, err) = super::ftc(&args);
        assert_eq!(code, 1, "{extra:?}: {err}");
        assert!(err.contains("E0092"), "{extra:?}: {err}");
    }
}

/// `ftc build -o --target cuda:sm_80` writes a CUDA artifact — `kernels.ptx` ending in the
/// manifest's digest, a manifest for `nvptx64`/`sm_80` — checked like a CPU one before any
/// device is touched (a changed PTX is refused as damaged), then loaded on the GPU: without a
/// driver a device error (exit 1 from `ftl-run`), with one the host executor's results. Needs
/// libdevice (`FTL_LIBDEVICE`; `scripts/test.sh` sets it), skipped without.
#[test]
fn cuda_artifacts_are_sealed_and_run_on_the_gpu() {
    use ftl_runtime::artifact::Artifact;
    use ftl_runtime::exec::ExecErrorKind;
    if ftl_mlir::cuda::libdevice().is_err() {
        println!("skipped: no libdevice (set FTL_LIBDEVICE)");
        return;
    }
    let dir = super::scratch("cuda-artifact-run");
    let pack = dir.join("dpo.ftlpack");
    let file = super::repo().join("examples").join("dpo.ftl");
    let args = ftc::driver::BuildArgs {
        file: &file,
        entry: "sigmoid_from_logits",
        sets: &[],
        output: &pack,
        target_cpu: None,
        backend: run::Backend::Mlir,
        gpu: Some("sm_80"),
    };
    let o = ftc::driver::build_artifact(&args, &super::options(), ftl_front::MessageFormat::Short);
    assert!(o.success(), "{}", o.stderr);
    assert!(o.stdout.contains("PTX for sm_80"), "{}", o.stdout);
    assert!(!pack.join("kernels.so").exists());
    let ptx = std::fs::read_to_string(pack.join("kernels.ptx")).unwrap();
    assert!(ptx.contains(".target sm_80") && ptx.contains("// ftl-manifest-sha256="));
    let header: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pack.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(header["target"]["arch"], "nvptx64");
    assert_eq!(header["target"]["cpu"], "sm_80");
    // A PTX changed after the build is refused before a device is opened.
    let damaged = dir.join("damaged.ftlpack");
    std::fs::create_dir(&damaged).unwrap();
    std::fs::copy(pack.join("manifest.json"), damaged.join("manifest.json")).unwrap();
    std::fs::write(damaged.join("kernels.ptx"), ptx.replace("sm_80", "sm_90")).unwrap();
    let e = Artifact::load(&damaged).err().expect("a changed PTX loads");
    assert_eq!(e.kind, ExecErrorKind::InvalidManifest, "{e}");
    let data = super::repo().join("examples/data/dpo_logits.safetensors");
    // `ftl-run` beside `ftc` (built by `cargo test --workspace`).
    let ftl_run = std::path::Path::new(env!("CARGO_BIN_EXE_ftc")).with_file_name("ftl-run");
    let ran = ftl_run.exists().then(|| {
        std::process::Command::new(&ftl_run)
            .arg(&pack)
            .arg("--inputs")
            .arg(&data)
            .output()
            .unwrap()
    });
    let status = |o: &std::process::Output| {
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    match Artifact::load(&pack) {
        Err(e) => {
            assert_eq!(e.kind, ExecErrorKind::Device, "{e}");
            if let Some((code, err)) = ran.as_ref().map(status) {
                assert_eq!(code, Some(1), "{err}");
                assert!(err.contains("CUDA") && !err.contains("panicked"), "{err}");
            }
            println!("no GPU: the artifact is refused with {e}");
        }
        Ok(artifact) => {
            if let Some((code, err)) = ran.as_ref().map(status) {
                assert_eq!(code, Some(0), "{err}");
            }
            let inputs: HashMap<String, Tensor> = ftl_runtime::safetensors_io::read(&data)
                .unwrap()
                .into_iter()
                .collect();
            let got = artifact.executor().run(&inputs).unwrap();
            let g = super::graph_of(&file, "sigmoid_from_logits", true);
            let want = run::run_graph(&g, &inputs).unwrap();
            let mut failures = Vec::new();
            super::compare_outputs("cuda artifact", &want, &got, &mut failures);
            assert!(failures.is_empty(), "{failures:?}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes the bundle a GPU machine checks every entry with when `FTL_GPU_BUNDLE` names a
/// directory (`scripts/gpu-check.sh` sets it; skipped otherwise): per entry a CUDA
/// artifact for sm_90 (`NAME.ftlpack`), random inputs at dims 6 (`NAME.in.safetensors`) and the
/// interpreter's outputs on them (`NAME.want.safetensors`), which `bench/gpu_check.py` compares
/// with `ftl-run`'s on the device — the machine there has no Rust or LLVM to build `ftc` with.
#[test]
fn write_gpu_check_bundle() {
    let Some(dir) = std::env::var_os("FTL_GPU_BUNDLE").filter(|d| !d.is_empty()) else {
        println!("skipped: FTL_GPU_BUNDLE names no directory");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let libdevice = ftl_mlir::cuda::libdevice().expect("libdevice (FTL_LIBDEVICE)");
    let (mut written, mut names) = (0, std::collections::HashSet::new());
    for (_, g) in every_entry_graph() {
        let inputs = run::random_inputs(&g, &BTreeMap::new(), Some(6), 11).unwrap();
        let Ok(want) = run::run_graph(&g, &inputs) else {
            continue; // An entry whose random inputs fail a check: nothing to compare.
        };
        let mut name: String = g
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        // Entries of the same name in two files (examples/dpo.ftl and the library's).
        while !names.insert(name.clone()) {
            name.push('_');
        }
        let plan = ftl_plan::fuse::fuse(&g);
        let pack = dir.join(format!("{name}.ftlpack"));
        ftl_mlir::cuda::write_artifact(&plan, &pack, "sm_90", &libdevice).unwrap();
        let mut inputs: Vec<(String, Tensor)> = inputs.into_iter().collect();
        inputs.sort_by(|a, b| a.0.cmp(&b.0));
        ftl_runtime::safetensors_io::write_atomic(
            &dir.join(format!("{name}.in.safetensors")),
            &inputs,
        )
        .unwrap();
        ftl_runtime::safetensors_io::write_atomic(
            &dir.join(format!("{name}.want.safetensors")),
            &want,
        )
        .unwrap();
        written += 1;
    }
    println!("{written} entries written to {}", dir.display());
    assert!(written >= 200, "{written}");
}

/// bf16 logits and i64 labels on the device path: the variant `ftc run` compiles for them
/// reads bf16 in place on the device and writes bf16 gradients equal to the host's to one bf16
/// ulp (the emulated GPU kernels sum in another order before the one rounding).
#[test]
fn bf16_logits_run_on_the_device_path_as_on_the_host() {
    use ftl_ir::pipeline::{EntryRequest, GradPolicy};
    use ftl_runtime::DType;
    let file = super::repo().join("examples").join("dpo.ftl");
    let shipped = super::repo().join("examples/data/dpo_logits.safetensors");
    let mut inputs: HashMap<String, Tensor> = ftl_runtime::safetensors_io::read(&shipped)
        .unwrap()
        .into_iter()
        .map(|(name, t)| match t.dtype() {
            DType::F32 if name.ends_with("_logits") => (name, t.cast(DType::BF16)),
            DType::I32 => (name, t.cast(DType::I64)),
            _ => (name, t),
        })
        .collect();
    let analysis = ftl_front::analyze(std::slice::from_ref(&file), &super::options());
    let request = EntryRequest {
        entry: "sigmoid_from_logits",
        sets: &[],
        grad: GradPolicy::Differentiable,
    };
    let g = ftl_ir::pipeline::compile_entry(&analysis, &request, &mut inputs).unwrap();
    let host = run::run_on(run::Backend::Mlir, &g, &inputs).unwrap();
    let (device, _) = run_simulated(&g, &inputs);
    let device = device.unwrap();
    for ((name, want), (_, got)) in host.iter().zip(&device) {
        assert_eq!(want.dtype(), got.dtype(), "{name}");
        if name.starts_with("grad.") {
            assert_eq!(got.dtype(), DType::BF16, "{name}");
        }
        for (k, (a, b)) in got.to_f64().iter().zip(want.to_f64()).enumerate() {
            assert!(
                (a - b).abs() <= b.abs() / 128.0 + 1e-6,
                "{name}[{k}]: {a} vs {b}"
            );
        }
    }
}
