//! Core integration tests: the IR and gradient text of every entry (pinned by insta), one
//! snapshot per simplifier rule, `ftc test` over the repository, `ftc run` end to end against an
//! independent computation of DPO from logits, and wrong inputs that must each give one clear
//! error and write nothing.
//!
//! Update snapshots with `cargo insta review` (or `INSTA_UPDATE=always cargo test`).

use ftc::driver::{self, EntryStage, RunArgs};
use ftc::run;
use ftl_front::resolve::LoadOptions;
use ftl_front::MessageFormat;
use ftl_ir::pipeline;
use ftl_runtime::{safetensors_io, DType, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "core/device.rs"]
mod device;
#[path = "core/editor.rs"]
mod editor;
#[path = "core/from_hidden.rs"]
mod from_hidden;
#[path = "core/hardening.rs"]
mod hardening;

fn repo() -> PathBuf {
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")).unwrap()
}

fn options() -> LoadOptions {
    LoadOptions {
        lib_dir: Some(repo().join("stdlib")),
        root: None,
        ..LoadOptions::default()
    }
}

/// Named tensors, as a safetensors file holds them.
type Tensors = Vec<(String, Tensor)>;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ftl-core-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The graph of `entry` in `file` (with gradients when `grad`), which must check clean.
fn graph_of(file: &Path, entry: &str, grad: bool) -> ftl_ir::Graph {
    let analysis = ftl_front::analyze(&[file.to_path_buf()], &options());
    assert!(
        analysis.diagnostics.is_empty(),
        "{}",
        analysis.render(MessageFormat::Short)
    );
    let id = pipeline::find_entry(&analysis, entry).unwrap();
    pipeline::compile(&analysis.hir, id, &Default::default(), grad).unwrap()
}

/// Every entry of the example and fixture files: its IR, its gradient graph and its kernels.
#[test]
fn ir_and_gradient_text_of_every_entry_is_pinned() {
    let r = repo();
    let mut files = driver::ftl_files(&[r.join("examples"), r.join("tests").join("run")]);
    files.sort();
    for file in files {
        let analysis = ftl_front::analyze(std::slice::from_ref(&file), &options());
        assert!(analysis.diagnostics.is_empty(), "{}", file.display());
        let stem = file.file_stem().unwrap().to_string_lossy().to_string();
        for (entry, _) in pipeline::entries(&analysis) {
            for (stage, which) in [
                ("ir", EntryStage::Ir),
                ("grad", EntryStage::Grad),
                ("kernels", EntryStage::Kernels),
            ] {
                let o =
                    driver::emit_graph(&file, &entry, &[], which, &options(), MessageFormat::Short);
                assert!(o.success(), "{} {entry}: {}", file.display(), o.stderr);
                if which != EntryStage::Kernels {
                    // The graph text reads back to a graph that prints the same.
                    let g = ftl_ir::parse::parse_graph(&o.stdout)
                        .unwrap_or_else(|e| panic!("{stage} {entry}: {e}\n{}", o.stdout));
                    assert_eq!(ftl_ir::print::print_graph(&g), o.stdout, "{stage} {entry}");
                }
                insta::assert_snapshot!(format!("{stage}__{stem}__{entry}"), o.stdout);
            }
        }
    }
}

/// Each simplifier rule, shown on the smallest program that needs it.
#[test]
fn each_simplifier_rule_has_a_snapshot() {
    let file = repo().join("tests").join("ir").join("rewrites.ftl");
    let analysis = ftl_front::analyze(std::slice::from_ref(&file), &options());
    assert!(analysis.diagnostics.is_empty());
    for (entry, _) in pipeline::entries(&analysis) {
        let o = driver::emit_graph(
            &file,
            &entry,
            &[],
            EntryStage::Ir,
            &options(),
            MessageFormat::Short,
        );
        assert!(o.success(), "{entry}: {}", o.stderr);
        insta::assert_snapshot!(format!("rewrite__{entry}"), o.stdout);
    }
    // The rules really fire: no log of sigmoid/exp/softmax survives, and no node is repeated.
    for (entry, banned) in [
        ("log_of_sigmoid", " log %"),
        ("log_one_plus_exp", " log %"),
        ("log_of_softmax", " exp %"),
        ("dead_code", " exp %"),
    ] {
        let o = driver::emit_graph(
            &file,
            entry,
            &[],
            EntryStage::Ir,
            &options(),
            MessageFormat::Short,
        );
        assert!(!o.stdout.contains(banned), "{entry}:\n{}", o.stdout);
    }
    let o = driver::emit_graph(
        &file,
        "common_subexpressions",
        &[],
        EntryStage::Ir,
        &options(),
        MessageFormat::Short,
    );
    assert_eq!(o.stdout.matches(" exp %").count(), 1, "{}", o.stdout);
}

/// `ftc test` passes over the repository's tests and fails (exit 1) on a wrong expectation.
#[test]
fn ftc_test_runs_every_test_block() {
    let r = repo();
    for backend in [run::Backend::Interp, run::Backend::Mlir] {
        let o = driver::test_files(
            &[
                r.join("examples"),
                r.join("stdlib"),
                r.join("tests").join("run"),
            ],
            backend,
            &options(),
            MessageFormat::Short,
        );
        assert!(o.success(), "{backend:?}: {}{}", o.stdout, o.stderr);
        assert!(o.stdout.ends_with(" passed, 0 failed\n"), "{}", o.stdout);
        assert!(
            o.stdout
                .contains("\n    print: r.y = f32[2, 2] [1, 2, 3, 4]\n"),
            "{}",
            o.stdout
        );
    }

    let dir = scratch("failing-test");
    let src = std::fs::read_to_string(r.join("examples").join("dpo.ftl"))
        .unwrap()
        .replace("0.7376561461290296", "0.75");
    let file = dir.join("dpo.ftl");
    std::fs::write(&file, src).unwrap();
    let o = driver::test_files(
        &[file],
        run::Backend::Interp,
        &options(),
        MessageFormat::Short,
    );
    assert!(!o.success());
    assert!(o.stdout.contains("1 passed, 1 failed"), "{}", o.stdout);
    assert!(
        o.stdout.contains("expect_close(r.loss, 0.75, 1e-6)"),
        "{}",
        o.stdout
    );
}

/// log-softmax of one row, in f64.
fn log_softmax(row: &[f64]) -> Vec<f64> {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
    row.iter().map(|x| x - lse).collect()
}

/// `ftc run` on the shipped DPO inputs agrees with DPO computed here from its formula (TRL's
/// `get_batch_logps` summed over non-ignored tokens, then the sigmoid loss), gradients included.
#[test]
fn dpo_from_logits_run_matches_an_independent_computation() {
    let r = repo();
    let inputs = r
        .join("examples")
        .join("data")
        .join("dpo_logits.safetensors");
    let dir = scratch("dpo-run");
    let out = dir.join("out.safetensors");
    let args = RunArgs {
        file: r.join("examples").join("dpo.ftl"),
        entry: "sigmoid_from_logits".into(),
        inputs: Some(inputs.clone()),
        out: Some(out.clone()),
        sets: vec!["beta=0.2".into()],
        ..RunArgs::default()
    };
    let o = driver::run_entry(&args, &options(), MessageFormat::Short);
    assert!(o.success(), "{}", o.stderr);
    assert!(o.stdout.contains("loss "), "{}", o.stdout);
    let got: HashMap<String, Tensor> = safetensors_io::read(&out).unwrap().into_iter().collect();
    let ins: HashMap<String, Tensor> = safetensors_io::read(&inputs).unwrap().into_iter().collect();

    let (b, t, v) = {
        let s = ins["chosen_logits"].shape();
        (s[0], s[1], s[2])
    };
    let beta = 0.2f64;
    let seq = |logits: &[f64], labels: &[f64]| -> Vec<f64> {
        (0..b)
            .map(|i| {
                (0..t)
                    .filter(|j| labels[i * t + j] != -100.0)
                    .map(|j| {
                        let row = &logits[(i * t + j) * v..(i * t + j + 1) * v];
                        log_softmax(row)[labels[i * t + j] as usize]
                    })
                    .sum()
            })
            .collect()
    };
    let f = |n: &str| ins[n].to_f64();
    let (cl, rl) = (f("chosen_logits"), f("rejected_logits"));
    let (cy, ry) = (f("chosen_labels"), f("rejected_labels"));
    let (pc, pr) = (seq(&cl, &cy), seq(&rl, &ry));
    let (rc, rr) = (f("ref_chosen_logps"), f("ref_rejected_logps"));
    let z: Vec<f64> = (0..b)
        .map(|i| beta * (pc[i] - rc[i]) - beta * (pr[i] - rr[i]))
        .collect();
    let loss = z.iter().map(|z| (1.0 + (-z).exp()).ln()).sum::<f64>() / b as f64;
    let got_loss = got["loss"].to_f64()[0];
    assert!(
        (got_loss - loss).abs() < 1e-5 * (1.0 + loss.abs()),
        "{got_loss} vs {loss}"
    );
    // d loss / d logits[i, j, :] = -σ(-z_i) β / B · (onehot(label) − softmax) on kept tokens.
    for (name, logits, labels, sign) in [
        ("grad.chosen_logits", &cl, &cy, 1.0),
        ("grad.rejected_logits", &rl, &ry, -1.0),
    ] {
        let g = got[name].to_f64();
        assert_eq!(got[name].shape(), &[b, t, v]);
        for i in 0..b {
            let coef = -sign * beta / b as f64 / (1.0 + z[i].exp());
            for j in 0..t {
                let row = &logits[(i * t + j) * v..(i * t + j + 1) * v];
                let p: Vec<f64> = log_softmax(row).iter().map(|x| x.exp()).collect();
                for k in 0..v {
                    let label = labels[i * t + j];
                    let want = if label == -100.0 {
                        0.0
                    } else {
                        coef * (f64::from(u8::from(k as f64 == label)) - p[k])
                    };
                    let have = g[(i * t + j) * v + k];
                    assert!(
                        (have - want).abs() < 1e-6,
                        "{name}[{i},{j},{k}]: {have} vs {want}"
                    );
                }
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every entry of `examples/`, `stdlib/` and `tests/run/`, compiled (with gradients where it
/// has them) as `ftc run --random` compiles it.
fn every_entry_graph() -> Vec<(String, ftl_ir::Graph)> {
    let r = repo();
    let files = driver::ftl_files(&[
        r.join("examples"),
        r.join("stdlib"),
        r.join("tests").join("run"),
    ]);
    let mut out = Vec::new();
    for file in files {
        let analysis = ftl_front::analyze(std::slice::from_ref(&file), &options());
        assert!(analysis.diagnostics.is_empty(), "{}", file.display());
        for (entry, id) in pipeline::entries(&analysis) {
            let kind = analysis.hir.decl(id).unwrap().kind;
            let g = pipeline::compile(
                &analysis.hir,
                id,
                &Default::default(),
                kind.differentiable(),
            )
            .unwrap();
            out.push((entry, g));
        }
    }
    out
}

/// Where the PTX's kernels do not take the parameter cells the device executor passes: each
/// `.entry` must have `device::param_count` of its manifest buffers' ranks, and every kernel of
/// the manifest must be an entry.
fn launch_abi_mismatches(plan: &ftl_plan::fuse::Plan, ptx: &str) -> Vec<String> {
    let manifest = ftl_plan::manifest::build(plan).unwrap();
    let mut entries = HashMap::new();
    let mut lines = ptx.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.trim().strip_prefix(".visible .entry ") {
            let name = rest.trim_end_matches('(').to_string();
            let params = lines
                .by_ref()
                .take_while(|l| l.trim() != ")")
                .filter(|l| l.trim().starts_with(".param"))
                .count();
            entries.insert(name, params);
        }
    }
    let mut out = Vec::new();
    for k in manifest.kernels() {
        let ranks = k
            .buffers
            .iter()
            .map(|b| manifest.buffers[*b as usize].dims.len());
        let want = ftl_runtime::device::param_count(ranks);
        match entries.get(&k.symbol) {
            Some(n) if *n == want => {}
            other => out.push(format!(
                "kernel {} takes {other:?} parameters, the executor passes {want}",
                k.symbol
            )),
        }
    }
    out
}

/// Every entry of the repository compiles to PTX for sm_80 and sm_90 that `ptxas` accepts,
/// whose kernels take the parameters the device executor passes, with no spills in the DPO,
/// SFT and LCM kernels (issue 15). Needs libdevice and ptxas
/// (`FTL_LIBDEVICE`, `FTL_PTXAS`: PyPI's nvidia-cuda-nvcc-cu12, which `scripts/test.sh` installs
/// into the project venv and points them at); skipped with a printed reason without them.
#[test]
fn every_entry_compiles_to_ptx_that_ptxas_accepts() {
    let (Some(libdevice), Some(ptxas)) = (
        std::env::var_os("FTL_LIBDEVICE").filter(|v| !v.is_empty()),
        std::env::var_os("FTL_PTXAS").filter(|v| !v.is_empty()),
    ) else {
        println!("skipped: set FTL_LIBDEVICE and FTL_PTXAS (scripts/test.sh does) to check PTX");
        return;
    };
    let (libdevice, ptxas) = (PathBuf::from(libdevice), PathBuf::from(ptxas));
    let dir = scratch("ptx");
    let mut failures = Vec::new();
    let mut checked = 0;
    for (entry, g) in every_entry_graph() {
        let plan = ftl_plan::fuse::fuse(&g);
        for chip in ftl_mlir::cuda::CHIPS {
            let ptx = match ftl_mlir::cuda::ptx(&plan, chip, &libdevice) {
                Ok(p) => p,
                Err(e) => {
                    failures.push(format!("{entry} ({chip}): {e:?}"));
                    continue;
                }
            };
            for failure in launch_abi_mismatches(&plan, &ptx) {
                failures.push(format!("{entry} ({chip}): {failure}"));
            }
            let path = dir.join(format!("{}_{chip}.ptx", entry.replace('.', "_")));
            std::fs::write(&path, &ptx).unwrap();
            let out = Command::new(&ptxas)
                .args(["--gpu-name", chip, "-v", "-o"])
                .arg(path.with_extension("cubin"))
                .arg(&path)
                .output()
                .unwrap();
            let report = String::from_utf8_lossy(&out.stderr).to_string();
            if !out.status.success() {
                failures.push(format!("{entry} ({chip}): ptxas: {report}"));
            } else if ["sigmoid_from_logits", "sft", "lcm_step"].contains(&entry.as_str())
                && report.contains("bytes spill")
                && !report
                    .lines()
                    .filter(|l| l.contains("spill"))
                    .all(|l| l.contains(" 0 bytes spill stores, 0 bytes spill loads"))
            {
                failures.push(format!("{entry} ({chip}) spills: {report}"));
            }
            checked += 1;
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        failures.is_empty(),
        "{checked} checked:\n{}",
        failures.join("\n")
    );
    assert!(checked > 200, "only {checked} PTX modules checked");
    println!("{checked} PTX modules assembled by ptxas");
}

/// The binder's dtype rule: bf16 logits and i64 labels bind to `f32`/`i32` parameters; both
/// backends read them in place, compute in f32 and write bf16 gradients equal to the f32
/// gradients of the same (bf16-valued) logits rounded once; an i64 label outside i32 fails.
#[test]
fn bf16_logits_and_i64_labels_bind_on_both_backends() {
    let r = repo();
    let shipped = r
        .join("examples")
        .join("data")
        .join("dpo_logits.safetensors");
    let dir = scratch("dpo-bf16");
    let mut narrow = Vec::new();
    let mut wide = Vec::new();
    for (name, t) in safetensors_io::read(&shipped).unwrap() {
        let (n, w) = match t.dtype() {
            DType::F32 if name.ends_with("_logits") => {
                let b = t.cast(DType::BF16);
                let back = b.cast(DType::F32);
                (b, back)
            }
            DType::I32 => (t.cast(DType::I64), t.clone()),
            _ => (t.clone(), t.clone()),
        };
        narrow.push((name.clone(), n));
        wide.push((name, w));
    }
    let (narrow_in, wide_in) = (dir.join("bf16.safetensors"), dir.join("f32.safetensors"));
    safetensors_io::write_atomic(&narrow_in, &narrow).unwrap();
    safetensors_io::write_atomic(&wide_in, &wide).unwrap();
    // `ftc run` of DPO from logits on an inputs file, writing `out` when given.
    let dpo_run = |inputs: &Path, backend: run::Backend, out: Option<PathBuf>| {
        let args = RunArgs {
            file: r.join("examples").join("dpo.ftl"),
            entry: "sigmoid_from_logits".into(),
            inputs: Some(inputs.to_path_buf()),
            out,
            backend,
            ..RunArgs::default()
        };
        driver::run_entry(&args, &options(), MessageFormat::Short)
    };
    let run_on = |inputs: &Path, backend: run::Backend, tag: &str| -> HashMap<String, Tensor> {
        let out = dir.join(format!("{tag}.safetensors"));
        let o = dpo_run(inputs, backend, Some(out.clone()));
        assert!(o.success(), "{tag}: {}", o.stderr);
        safetensors_io::read(&out).unwrap().into_iter().collect()
    };
    let reference = run_on(&wide_in, run::Backend::Interp, "f32");
    for backend in [run::Backend::Mlir, run::Backend::Interp] {
        let got = run_on(&narrow_in, backend, &format!("{backend:?}"));
        let (l, want) = (got["loss"].to_f64()[0], reference["loss"].to_f64()[0]);
        assert!(
            (l - want).abs() <= 1e-6 * want.abs(),
            "{backend:?}: loss {l} vs {want}"
        );
        for name in ["grad.chosen_logits", "grad.rejected_logits"] {
            assert_eq!(got[name].dtype(), DType::BF16, "{backend:?} {name}");
            let rounded = reference[name].cast(DType::BF16).to_f64();
            for (k, (a, b)) in got[name].to_f64().iter().zip(&rounded).enumerate() {
                // One bf16 ulp: the backends sum in different orders before the one rounding.
                assert!(
                    (a - b).abs() <= b.abs() / 128.0 + 1e-12,
                    "{backend:?} {name}[{k}]: {a} vs {b}"
                );
            }
        }
    }
    // A label beyond i32 saturates and fails the gather's range check instead of wrapping.
    let mut bad = narrow.clone();
    for (name, t) in &mut bad {
        if name == "chosen_labels" {
            let mut v = t.to_f64();
            v[0] = 4294967299.0; // 2^32 + 3 would wrap onto label 3
            *t = Tensor::from_f64(DType::I64, t.shape(), &v);
        }
    }
    let bad_in = dir.join("bad.safetensors");
    safetensors_io::write_atomic(&bad_in, &bad).unwrap();
    for backend in [run::Backend::Mlir, run::Backend::Interp] {
        let o = dpo_run(&bad_in, backend, None);
        assert!(
            !o.success() && o.stderr.contains("E0094"),
            "{backend:?}: {}",
            o.stderr
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Each example (and the stdlib LCM step, whose inputs ship with them) runs on its shipped
/// inputs and on random ones.
#[test]
fn every_example_runs() {
    let r = repo();
    let ex = |f: &str| r.join("examples").join(f);
    let data = |f: &str| Some(r.join("examples").join("data").join(f));
    let cases = [
        (
            "dpo.ftl",
            "sigmoid_from_logits",
            data("dpo_logits.safetensors"),
            None,
        ),
        ("dpo.ftl", "sigmoid", None, Some("B=4")),
        ("dpop.ftl", "dpop", None, Some("B=4")),
        ("lora_pro.ftl", "lora_pro", None, Some("N=3,I=4,O=3,R=2")),
        ("lora.ftl", "lora", data("lora.safetensors"), None),
        ("lora.ftl", "lora.merge", data("lora.safetensors"), None),
        ("lora.ftl", "lora.unmerge", data("lora.safetensors"), None),
        ("lora.ftl", "lora.init", data("lora.safetensors"), None),
        (
            "flow_lcm.ftl",
            "flow_lcm_step",
            data("flow_lcm.safetensors"),
            None,
        ),
        ("flow_lcm.ftl", "flow_lcm_step", None, Some("S=2x3")),
        (
            "../stdlib/sampling/lcm.ftl",
            "lcm_step",
            data("lcm.safetensors"),
            None,
        ),
    ];
    for (file, entry, inputs, dims) in cases {
        let args = RunArgs {
            file: ex(file),
            entry: entry.into(),
            inputs,
            random_dims: dims.map(String::from),
            // The shipped data files hold the whole adapter's signature, read by its blocks in part.
            allow_extra_inputs: true,
            ..RunArgs::default()
        };
        let o = driver::run_entry(&args, &options(), MessageFormat::Short);
        assert!(o.success(), "{file} {entry}: {}", o.stderr);
    }
}

/// Merge then unmerge gives back the base weight (the LoRA example's blocks as steps).
#[test]
fn lora_merge_then_unmerge_returns_the_weight() {
    let r = repo();
    let dir = scratch("merge");
    let merged = dir.join("merged.safetensors");
    let run_block = |entry: &str, inputs: PathBuf, out: &Path| {
        let args = RunArgs {
            file: r.join("examples").join("lora.ftl"),
            entry: entry.into(),
            inputs: Some(inputs),
            out: Some(out.to_path_buf()),
            allow_extra_inputs: true,
            ..RunArgs::default()
        };
        let o = driver::run_entry(&args, &options(), MessageFormat::Short);
        assert!(o.success(), "{}", o.stderr);
    };
    let base_path = r.join("examples").join("data").join("lora.safetensors");
    run_block("lora.merge", base_path.clone(), &merged);
    let mut ins: HashMap<String, Tensor> = safetensors_io::read(&base_path)
        .unwrap()
        .into_iter()
        .collect();
    let base = ins["weight"].to_f64();
    let m: HashMap<String, Tensor> = safetensors_io::read(&merged).unwrap().into_iter().collect();
    ins.insert("weight".into(), m["weight"].clone());
    let with_merged = dir.join("in2.safetensors");
    let list: Tensors = ins.into_iter().collect();
    safetensors_io::write_atomic(&with_merged, &list).unwrap();
    let back = dir.join("back.safetensors");
    run_block("lora.unmerge", with_merged, &back);
    let b: HashMap<String, Tensor> = safetensors_io::read(&back).unwrap().into_iter().collect();
    for (x, y) in b["weight"].to_f64().iter().zip(&base) {
        assert!((x - y).abs() < 1e-6, "{x} vs {y}");
    }
    assert!(m["weight"]
        .to_f64()
        .iter()
        .zip(&base)
        .any(|(x, y)| (x - y).abs() > 1e-3));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Wrong inputs: one clear error each (snapshotted), exit 1, and no output file.
#[test]
fn wrong_inputs_give_one_clear_error_and_write_nothing() {
    let r = repo();
    let dir = scratch("bad-inputs");
    let good: Tensors = safetensors_io::read(
        &r.join("examples")
            .join("data")
            .join("dpo_logits.safetensors"),
    )
    .unwrap();
    let with = |edit: &dyn Fn(&mut Tensors)| {
        let mut v = good.clone();
        edit(&mut v);
        v
    };
    let replace = |name: &'static str, t: Tensor| {
        move |v: &mut Tensors| {
            for (n, x) in v.iter_mut() {
                if n == name {
                    *x = t.clone();
                }
            }
        }
    };
    let cases: Vec<(&str, Tensors, Vec<String>, &str)> = vec![
        (
            "missing_tensor",
            with(&|v| v.retain(|(n, _)| n != "rejected_labels")),
            vec![],
            "sigmoid_from_logits",
        ),
        (
            "wrong_dtype",
            with(&replace(
                "chosen_labels",
                Tensor::zeros(DType::F32, &[2, 6]),
            )),
            vec![],
            "sigmoid_from_logits",
        ),
        (
            "inconsistent_dim",
            with(&replace(
                "ref_rejected_logps",
                Tensor::zeros(DType::F32, &[3]),
            )),
            vec![],
            "sigmoid_from_logits",
        ),
        (
            "wrong_rank",
            with(&replace(
                "rejected_logits",
                Tensor::zeros(DType::F32, &[2, 96]),
            )),
            vec![],
            "sigmoid_from_logits",
        ),
        (
            "bad_set_name",
            good.clone(),
            vec!["gamma=0.5".into()],
            "sigmoid_from_logits",
        ),
        (
            "bad_set_value",
            good.clone(),
            vec!["beta=high".into()],
            "sigmoid_from_logits",
        ),
        (
            "requires_fails",
            good.clone(),
            vec!["beta=-1".into()],
            "sigmoid_from_logits",
        ),
        ("unknown_entry", good.clone(), vec![], "simpo"),
        (
            "label_out_of_range",
            with(&replace(
                "chosen_labels",
                Tensor::from_f64(DType::I32, &[2, 6], &[99.0; 12]),
            )),
            vec![],
            "sigmoid_from_logits",
        ),
    ];
    for (name, tensors, sets, entry) in cases {
        let inputs = dir.join(format!("{name}.safetensors"));
        safetensors_io::write_atomic(&inputs, &tensors).unwrap();
        let out = dir.join(format!("{name}.out.safetensors"));
        let args = RunArgs {
            file: r.join("examples").join("dpo.ftl"),
            entry: entry.into(),
            inputs: Some(inputs),
            out: Some(out.clone()),
            sets,
            ..RunArgs::default()
        };
        let o = driver::run_entry(&args, &options(), MessageFormat::Short);
        assert!(!o.success(), "{name} succeeded");
        assert!(!out.exists(), "{name} wrote an output");
        assert_eq!(o.stderr.lines().count(), 1, "{name}: {}", o.stderr);
        insta::assert_snapshot!(format!("bad_input__{name}"), o.stderr);
    }
    // A file that is not safetensors.
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"not a tensor file").unwrap();
    let args = RunArgs {
        file: r.join("examples").join("dpo.ftl"),
        entry: "sigmoid".into(),
        inputs: Some(junk),
        ..RunArgs::default()
    };
    let o = driver::run_entry(&args, &options(), MessageFormat::Short);
    assert!(
        !o.success() && o.stderr.contains("error[E0091]"),
        "{}",
        o.stderr
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// f16 runs on Cranelift as on MLIR (integer conversions, bit-equal); what Cranelift does not
/// compile — an artifact for a CPU without SSE4.1 — is E0095 with a hint, never an internal
/// error.
#[test]
fn cranelift_runs_f16_and_refuses_what_it_cannot_compile() {
    let dir = scratch("cranelift-f16");
    let file = dir.join("half.ftl");
    std::fs::write(
        &file,
        "step halve(x: f16[N]) -> (y: f16[N]) {\n    (y: x * 0.5,)\n}\n",
    )
    .unwrap();
    let run = |backend| {
        let out = dir.join(format!("{backend:?}.safetensors"));
        let args = RunArgs {
            file: file.clone(),
            entry: "halve".into(),
            random_dims: Some("N=37".into()),
            out: Some(out.clone()),
            backend,
            ..RunArgs::default()
        };
        let o = driver::run_entry(&args, &options(), MessageFormat::Short);
        assert!(o.success(), "{backend:?}: {}", o.stderr);
        safetensors_io::read(&out).unwrap()
    };
    assert_eq!(run(run::Backend::Cranelift), run(run::Backend::Mlir));
    let pack = dir.join("old.ftlpack");
    let args = driver::BuildArgs {
        file: &file,
        entry: "halve",
        sets: &[],
        output: &pack,
        target_cpu: Some("x86-64"),
        backend: run::Backend::Cranelift,
        gpu: None,
    };
    let o = driver::build_artifact(&args, &options(), MessageFormat::Short);
    assert_eq!(o.status, driver::Status::Failure, "{}", o.stderr);
    assert!(
        o.stderr.contains("error[E0095]") && o.stderr.contains("--backend mlir"),
        "{}",
        o.stderr
    );
    assert!(!pack.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A failing `requires` is reported as written: BOFT's butterfly check keeps its `%` operators
/// (the text once lost every `%`, the marker of a parameter in the IR's text).
#[test]
fn a_failing_requires_is_printed_with_its_operators() {
    let args = RunArgs {
        file: repo().join("stdlib").join("adapters").join("boft.ftl"),
        entry: "boft".into(),
        sets: vec!["boft_n_butterfly_factor=3".into()],
        random_dims: Some("L=2,I=12,O=3,F=3,D=6,K=2,K'=2".into()),
        ..RunArgs::default()
    };
    let o = driver::run_entry(&args, &options(), MessageFormat::Short);
    assert!(!o.success());
    assert!(
        o.stderr.contains("error[E0093]")
            && o.stderr.contains("(size(K) % 2) == 0")
            && o.stderr.contains("(boft_n_butterfly_factor == 1)"),
        "{}",
        o.stderr
    );
}

/// `ftc gradcheck` on the examples' differentiable entries, including dropout and rsLoRA.
#[test]
fn gradcheck_command_passes_on_the_examples() {
    let r = repo();
    for (file, entry, dims, sets) in [
        ("dpo.ftl", "sigmoid", None, vec![]),
        (
            "dpo.ftl",
            "sigmoid_from_logits",
            Some("B=2,T=3,V=7"),
            vec!["beta=0.3".to_string()],
        ),
        (
            "lora.ftl",
            "lora",
            Some("L=2x2,I=3,O=2,R=2"),
            vec!["use_rslora=true".to_string()],
        ),
        (
            "lora.ftl",
            "lora",
            Some("L=4,I=3,O=2,R=2"),
            vec!["lora_dropout=0.3".to_string()],
        ),
    ] {
        let o = driver::gradcheck_entry(
            &r.join("examples").join(file),
            entry,
            dims,
            &sets,
            &options(),
            MessageFormat::Short,
        );
        assert!(o.success(), "{file} {entry}: {}{}", o.stdout, o.stderr);
        assert!(o.stdout.contains("gradcheck passed"));
    }
}

/// The `ftc` binary's run-time commands: exit 0 on success, 1 on any error, 101 never.
#[test]
fn ftc_binary_exit_codes() {
    let r = repo();
    let ftc = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ftc"))
            .args(args)
            .current_dir(&r)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, _) = ftc(&[
        "run",
        "examples/dpo.ftl",
        "--entry",
        "sigmoid",
        "--random",
        "--dims",
        "B=3",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("grad.chosen_logps"), "{out}");
    let (code, _, err) = ftc(&[
        "run",
        "examples/dpo.ftl",
        "--entry",
        "sigmoid",
        "--random",
        "--dims",
        "B=0",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("error[E0092]"), "{err}");
    let (code, _, err) = ftc(&["run", "examples/dpo.ftl", "--entry", "sigmoid"]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 4, "one line per missing input: {err}");
    let (code, out, _) = ftc(&["test", "examples/lora.ftl"]);
    assert_eq!(code, 0);
    assert!(out.ends_with("1 passed, 0 failed\n"), "{out}");
    let (code, out, _) = ftc(&["gradcheck", "examples/dpo.ftl", "--entry", "sigmoid"]);
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = ftc(&[
        "gradcheck",
        "examples/flow_lcm.ftl",
        "--entry",
        "flow_lcm_step",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("is a step"), "{err}");
    let (code, out, _) = ftc(&[
        "build",
        "examples/lora.ftl",
        "--emit",
        "grad",
        "--entry",
        "lora",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("out grad.lora_A"), "{out}");
}

/// DPO from logits, written plainly, fuses into the 3-pass plan: per logits tensor one read
/// pass (row logsumexp), a tail over [B, T]/[B], and one pass that reads the logits and writes
/// the gradient; no temporary of size B·T·V.
#[test]
fn dpo_from_logits_fuses_into_three_passes() {
    use ftl_plan::fuse::{self, BufRole, Kernel};
    let r = repo();
    let g = graph_of(
        &r.join("examples").join("dpo.ftl"),
        "sigmoid_from_logits",
        true,
    );
    let plan = fuse::fuse(&g);
    let v = g.dims.iter().position(|d| d.name == "V").unwrap();
    let has_v = |node: ftl_ir::NodeId| g.node(node).dims.iter().any(|d| d.0 as usize == v);
    for b in &plan.buffers {
        assert!(
            !(b.role == BufRole::Temp && has_v(b.node)),
            "a B·T·V temporary: {b:?}"
        );
    }
    let text = fuse::print_plan(&plan);
    let big: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("V]") || l.contains("| V"))
        .collect();
    assert_eq!(big.len(), 2, "{text}");
    assert!(
        big[0].contains("logsumexp") && big[1].contains("map"),
        "{text}"
    );
    assert!(
        big[1].contains("writes(grad.rejected_logits, grad.chosen_logits)"),
        "{text}"
    );
    let tails = plan
        .kernels
        .iter()
        .filter(|k| matches!(k, Kernel::Loops { tail: true, .. }))
        .count();
    assert_eq!(plan.kernels.len(), 3, "{text}");
    assert_eq!(tails, 1, "{text}");
}

/// A sampling step is one pass over the latents: the schedule (a scan over Tt) and the per-step
/// scalars run in small kernels, then one map reads model_output, sample and noise and writes
/// both outputs (`prev_sample` reuses `denoised` in the same loop body).
#[test]
fn lcm_step_is_one_pass_over_the_latents() {
    let r = repo();
    let o = driver::emit_graph(
        &r.join("stdlib").join("sampling").join("lcm.ftl"),
        "lcm_step",
        &[],
        EntryStage::Kernels,
        &options(),
        MessageFormat::Short,
    );
    assert!(o.success(), "{}", o.stderr);
    let big: Vec<&str> = o.stdout.lines().filter(|l| l.contains("..S")).collect();
    assert_eq!(big.len(), 1, "{}", o.stdout);
    assert!(
        big[0].contains("writes(denoised, prev_sample)"),
        "{}",
        o.stdout
    );
}

/// Relative error with a floor: |a − b| / max(|b|, 0.1 · max|b|, 1e-6), after forgiving 1e-8 of
/// absolute difference. Entries far below the tensor's largest are compared at that scale, and
/// the 1e-8 covers gradients that are differences of close f32 terms (σ'(x) − σ'(y) in
/// `apo_down`), where the operands' last-ulp differences are all that remains.
fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            if x == y || (x.is_nan() && y.is_nan()) {
                0.0
            } else {
                ((x - y).abs() - 1e-8).max(0.0) / y.abs().max(1e-1 * scale).max(1e-6)
            }
        })
        .fold(0.0, f64::max)
}

/// The outputs of one run against a reference run: each within a relative error of 1e-5 (f32;
/// see `rel_err`), a failure line for each that is not.
fn compare_outputs(
    label: &str,
    want: &[(String, Tensor)],
    got: &[(String, Tensor)],
    failures: &mut Vec<String>,
) {
    for ((name, w), (_, g)) in want.iter().zip(got) {
        let e = rel_err(&g.to_f64(), &w.to_f64());
        if e.is_nan() || e > 1e-5 || w.shape() != g.shape() {
            failures.push(format!("{label}: {name}: relative error {e:.2e}"));
        }
    }
}

/// Two runs of one entry agree: both give outputs within 1e-5 ([`compare_outputs`]) or both
/// fail with the same code; anything else is a failure. Returns whether outputs were compared.
fn compare_runs(
    label: &str,
    want: &Result<Tensors, ftl_ir::pipeline::Failure>,
    got: &Result<Tensors, ftl_ir::pipeline::Failure>,
    failures: &mut Vec<String>,
) -> bool {
    match (want, got) {
        (Ok(w), Ok(g)) => {
            compare_outputs(label, w, g, failures);
            true
        }
        (Err(w), Err(g)) if w.code() == g.code() => false,
        (w, g) => {
            failures.push(format!(
                "{label}: {:?} vs {:?}",
                w.as_ref().err(),
                g.as_ref().err()
            ));
            false
        }
    }
}

/// Every entry of the repository on the interpreter and both compiled backends (MLIR,
/// Cranelift), on random inputs: outputs and gradients agree to a relative error of 1e-5 (f32;
/// see `rel_err`); and each graph's text parses back to an equal graph.
///
/// Dims of 6 against the interpreter; dims of 11 Cranelift against MLIR, so that Cranelift's
/// vector loops (two vectors of 4 lanes per iteration in a reduction, one in a map) and their
/// scalar remainders all run (against MLIR: at that size a few decompositions in the inits
/// are conditioned so that the host routines' f32 differ from the interpreter's f64 by more
/// than the bound, alike on both compiled backends).
#[test]
fn compiled_backends_match_the_interpreter_on_every_entry() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (entry, g) in every_entry_graph() {
        let qualified = g.name.clone();
        // Its text reads back to the same graph.
        let text = ftl_ir::print::print_graph(&g);
        match ftl_ir::parse::parse_graph(&text) {
            Ok(parsed) if parsed == g => {}
            other => failures.push(format!("{entry}: text does not read back: {other:?}")),
        }
        let dims = std::collections::BTreeMap::new();
        let inputs = run::random_inputs(&g, &dims, Some(6), 11).unwrap();
        let want = run::run_graph(&g, &inputs);
        for backend in [run::Backend::Mlir, run::Backend::Cranelift] {
            let got = run::run_on(backend, &g, &inputs);
            let label = format!("{qualified} (interp vs {backend:?}): {entry}");
            checked += usize::from(compare_runs(&label, &want, &got, &mut failures));
        }
        let inputs = run::random_inputs(&g, &dims, Some(11), 12).unwrap();
        let mlir = run::run_on(run::Backend::Mlir, &g, &inputs);
        let cranelift = run::run_on(run::Backend::Cranelift, &g, &inputs);
        let label = format!("{qualified} (MLIR vs Cranelift, dims 11): {entry}");
        checked += usize::from(compare_runs(&label, &mlir, &cranelift, &mut failures));
    }
    eprintln!("{checked} entry runs checked on the compiled backends");
    assert!(
        failures.is_empty(),
        "{checked} entry runs checked; failures:\n{}",
        failures.join("\n")
    );
    assert!(checked >= 60, "{checked}");
}

/// `ftc run --set offset=1` on a parameter named `offset` (an i64 setting, like the random
/// stream's) binds the declared i32 on both backends: the dim sized from it is 15, not 0.
#[test]
fn a_scalar_set_in_another_dtype_sizes_dims_alike_on_both_backends() {
    for backend in [run::Backend::Mlir, run::Backend::Interp] {
        let args = RunArgs {
            file: repo().join("tests").join("run").join("requires.ftl"),
            entry: "offset_named".into(),
            sets: vec!["size=6".into(), "offset=1".into()],
            backend,
            ..RunArgs::default()
        };
        let o = driver::run_entry(&args, &options(), MessageFormat::Short);
        assert!(o.success(), "{backend:?}: {}", o.stderr);
        assert!(o.stdout.contains("i32[15]"), "{backend:?}: {}", o.stdout);
    }
}

/// Repeated runs that hand their outputs back (a training loop, `ftc bench`, Python dropping
/// them) get reused, unzeroed buffers; nothing may read one before writing it. Regression: a
/// constant output and a `requires` over the same constant failed every second run.
#[test]
fn repeated_runs_with_recycled_outputs_give_the_same_result() {
    let g = graph_of(
        &repo().join("tests").join("run").join("requires.ftl"),
        "constant_metric",
        true,
    );
    let compiled = run::CompiledEntry::new(&g).unwrap();
    let inputs = HashMap::from([(
        "x".to_string(),
        Tensor::from_f64(DType::F32, &[2], &[1.0, 2.0]),
    )]);
    for k in 0..4 {
        let outs = compiled
            .run(&inputs)
            .unwrap_or_else(|e| panic!("run {k}: {}", e.render()));
        assert_eq!(outs[0].1.to_f64(), vec![3.0], "run {k}");
        for (_, t) in outs {
            compiled.recycle(t);
        }
    }
}

/// Conditions over dims bound by `requires` from other such dims see their values on every
/// backend (issue 13: the compiled path saw 0 and refused `I == R * K` though it held, or
/// accepted `K >= 1` though it failed, blaming the inputs).
#[test]
fn requires_conditions_over_derived_dims_hold_and_fail_alike_on_both_backends() {
    let file = repo().join("tests").join("run").join("requires.ftl");
    let analysis = ftl_front::analyze(std::slice::from_ref(&file), &options());
    assert!(analysis.diagnostics.is_empty());
    let (_, id) = pipeline::entries(&analysis)
        .into_iter()
        .find(|(name, _)| name.ends_with("split_rows"))
        .unwrap();
    let g = pipeline::compile(&analysis.hir, id, &Default::default(), true).unwrap();
    for (i, r, holds) in [(6, 2, true), (7, 2, false), (1, 2, false), (9, 3, true)] {
        let dims = std::collections::BTreeMap::from([
            ("I".to_string(), vec![i]),
            ("R".to_string(), vec![r]),
        ]);
        let inputs = run::random_inputs(&g, &dims, None, 5).unwrap();
        for backend in [run::Backend::Interp, run::Backend::Mlir] {
            match run::run_on(backend, &g, &inputs) {
                Ok(_) => assert!(holds, "{backend:?} I={i} R={r} ran"),
                Err(e) => assert!(
                    !holds && e.code().map(|c| c.id()) == Some("E0093"),
                    "{backend:?} I={i} R={r}: {e:?}"
                ),
            }
        }
    }
}

/// Distance in units in the last place between two f32 values.
fn ulps(a: f32, b: f32) -> u64 {
    if a == b || (a.is_nan() && b.is_nan()) {
        return 0;
    }
    let key = |x: f32| {
        let i = x.to_bits() as i32;
        if i < 0 {
            i64::from(i32::MIN) - i64::from(i)
        } else {
            i64::from(i)
        }
    };
    (key(a) - key(b)).unsigned_abs()
}

/// The compiled path's f32 transcendentals (polynomials that vectorize) stay within a few ulp
/// of the correctly rounded values over their working ranges.
#[test]
fn compiled_transcendentals_are_accurate_to_a_few_ulp() {
    use ftl_ir::scalar;
    let dir = scratch("ulp");
    let file = dir.join("math.ftl");
    std::fs::write(
        &file,
        "step grid(x: f32[N], p: f32[N], s: f32[N]) -> (\n\
         e: f32[N], l: f32[N], l1: f32[N], em: f32[N], th: f32[N], sg: f32[N], sp: f32[N],\n\
         er: f32[N], sn: f32[N], cs: f32[N]) {\n\
         (e: exp(x), l: log(p), l1: log1p(p), em: expm1(s), th: tanh(s), sg: sigmoid(x),\n\
          sp: softplus(x), er: erf(s), sn: sin(s), cs: cos(s))\n}\n",
    )
    .unwrap();
    let g = graph_of(&file, "grid", false);
    let n = 20001;
    let x: Vec<f64> = (0..n)
        .map(|i| -87.0 + 174.0 * i as f64 / (n - 1) as f64)
        .collect();
    let p: Vec<f64> = (0..n)
        .map(|i| 10f64.powf(-30.0 + 36.0 * i as f64 / (n - 1) as f64))
        .collect();
    let s: Vec<f64> = (0..n)
        .map(|i| -10.0 + 20.0 * i as f64 / (n - 1) as f64)
        .collect();
    let f32v = |v: &[f64]| Tensor::from_f64(DType::F32, &[v.len()], v);
    let inputs: HashMap<String, Tensor> = [("x", f32v(&x)), ("p", f32v(&p)), ("s", f32v(&s))]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let outs: HashMap<String, Vec<f64>> = run::run_on(run::Backend::Mlir, &g, &inputs)
        .unwrap()
        .into_iter()
        .map(|(k, t)| (k, t.to_f64()))
        .collect();
    let r = |v: f64| v as f32 as f64;
    let xs: Vec<f64> = inputs["x"].to_f64();
    let ps: Vec<f64> = inputs["p"].to_f64();
    let ss: Vec<f64> = inputs["s"].to_f64();
    type Reference = fn(f64) -> f64;
    let cases: [(&str, &[f64], Reference, u64); 10] = [
        ("e", &xs, f64::exp, 2),
        ("l", &ps, f64::ln, 2),
        ("l1", &ps, f64::ln_1p, 3),
        ("em", &ss, f64::exp_m1, 3),
        ("th", &ss, f64::tanh, 4),
        ("sg", &xs, scalar::sigmoid, 3),
        ("sp", &xs, scalar::softplus, 3),
        ("er", &ss, scalar::erf, 4),
        ("sn", &ss, f64::sin, 3),
        ("cs", &ss, f64::cos, 3),
    ];
    let mut report = Vec::new();
    for (name, input, f, bound) in cases {
        let got = &outs[name];
        let worst = input
            .iter()
            .zip(got)
            .map(|(a, y)| ulps(*y as f32, r(f(*a)) as f32))
            .max()
            .unwrap();
        report.push(format!("{name}: {worst} ulp"));
        assert!(
            worst <= bound,
            "{name}: {worst} ulp > {bound}; all: {report:?}"
        );
    }
    eprintln!("compiled f32 math, max error: {}", report.join(", "));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The compiled path's f64 log1p, expm1, tanh and erf are the C library's (MLIR alone would
/// expand log1p as log(1 + x) and expm1 as exp(x) - 1, and leave erf unlowered): they agree
/// with the interpreter's f64 functions to the last bits, down to tiny arguments.
#[test]
fn compiled_f64_transcendentals_keep_full_precision() {
    use ftl_ir::scalar;
    let dir = scratch("f64math");
    let file = dir.join("math.ftl");
    std::fs::write(
        &file,
        "step grid(s: f64[N]) -> (l1: f64[N], em: f64[N], th: f64[N], er: f64[N]) {\n\
         (l1: log1p(s), em: expm1(s), th: tanh(s), er: erf(s))\n}\n",
    )
    .unwrap();
    let g = graph_of(&file, "grid", false);
    // ±10^k for k in [-15, 0.5]: where the naive expansions lose their digits.
    let s: Vec<f64> = (0..2001)
        .map(|i| {
            let v = 10f64.powf(-15.0 + 15.5 * (i / 2) as f64 / 1000.0);
            if i % 2 == 0 {
                v
            } else {
                -v * 0.9
            }
        })
        .collect();
    let inputs: HashMap<String, Tensor> = [(
        "s".to_string(),
        Tensor::from_f64(DType::F64, &[s.len()], &s),
    )]
    .into();
    let outs: HashMap<String, Tensor> = run::run_on(run::Backend::Mlir, &g, &inputs)
        .unwrap()
        .into_iter()
        .collect();
    type Reference = fn(f64) -> f64;
    let cases: [(&str, Reference); 4] = [
        ("l1", f64::ln_1p),
        ("em", f64::exp_m1),
        ("th", f64::tanh),
        ("er", scalar::erf),
    ];
    for (name, f) in cases {
        let got = outs[name].to_f64();
        for (x, y) in s.iter().zip(&got) {
            let want = f(*x);
            assert!(
                (y.is_nan() && want.is_nan())
                    || (y - want).abs() <= 4.0 * f64::EPSILON * want.abs(),
                "{name}({x:e}) = {y:e}, want {want:e}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A module the pipeline cannot lower completely is an internal error, not an engine that
/// crashes when called.
#[test]
fn a_module_left_partly_unlowered_is_refused_by_the_jit() {
    let text = "module {\n  func.func @k(%x: f64) -> f64 {\n    %y = math.erf %x : f64\n    \
                func.return %y : f64\n  }\n}\n";
    let err = ftl_mlir::jit::Jit::compile(text).err().expect("refused");
    assert!(
        err.contains("math.erf") && err.starts_with("internal error"),
        "{err}"
    );
}

/// `ftc build -o NAME.ftlpack` writes a manifest and a shared object that the runtime loads
/// with the system loader (no LLVM in the loop) and runs to the JIT's results, for both CPU
/// backends (Cranelift's object code links the same way).
#[test]
fn artifacts_run_in_the_runtime_alone() {
    let r = repo();
    let dir = scratch("artifact");
    let data = r
        .join("examples")
        .join("data")
        .join("dpo_logits.safetensors");
    let inputs: HashMap<String, Tensor> =
        safetensors_io::read(&data).unwrap().into_iter().collect();
    for backend in [run::Backend::Mlir, run::Backend::Cranelift] {
        let pack = dir.join(format!("dpo_{backend:?}.ftlpack"));
        let file = r.join("examples").join("dpo.ftl");
        let args = driver::BuildArgs {
            file: &file,
            entry: "sigmoid_from_logits",
            sets: &[],
            output: &pack,
            // Native, so the library's summation order is the JIT's and results are bit-equal.
            target_cpu: Some("native"),
            backend,
            gpu: None,
        };
        let o = driver::build_artifact(&args, &options(), MessageFormat::Short);
        assert!(o.success(), "{backend:?}: {}", o.stderr);
        assert!(pack.join("manifest.json").exists() && pack.join("kernels.so").exists());
        assert!(!pack.join("kernels.o").exists());
        let artifact = ftl_runtime::artifact::Artifact::load(&pack).unwrap();
        let got = artifact.executor().run(&inputs).unwrap();
        let jit = dir.join(format!("jit_{backend:?}.safetensors"));
        let args = RunArgs {
            file: r.join("examples").join("dpo.ftl"),
            entry: "sigmoid_from_logits".into(),
            inputs: Some(data.clone()),
            out: Some(jit.clone()),
            backend,
            cache: None,
            ..RunArgs::default()
        };
        assert!(driver::run_entry(&args, &options(), MessageFormat::Short).success());
        let want: HashMap<String, Tensor> =
            safetensors_io::read(&jit).unwrap().into_iter().collect();
        for (name, t) in &got {
            assert_eq!(t, &want[name], "{backend:?}: {name}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The MLIR text of a small entry is pinned (the kernels' loops, hoisting and math).
#[test]
fn mlir_text_is_pinned() {
    let file = repo().join("examples").join("dpo.ftl");
    let o = driver::emit_graph(
        &file,
        "sigmoid",
        &[],
        EntryStage::Mlir,
        &options(),
        MessageFormat::Short,
    );
    assert!(o.success(), "{}", o.stderr);
    assert!(o.stdout.contains("func.func @k0_sum") && !o.stdout.contains("llvm.call"));
    insta::assert_snapshot!("mlir__dpo__sigmoid", o.stdout);
    let o = driver::emit_graph(
        &file,
        "sigmoid",
        &[],
        EntryStage::Llvm,
        &options(),
        MessageFormat::Short,
    );
    assert!(
        o.success() && o.stdout.contains("llvm.func @k0_sum"),
        "{}",
        o.stderr
    );
    // The CUDA path's kernels: the same nests as gpu.funcs, one thread per split index.
    let o = driver::emit_graph(
        &file,
        "sigmoid",
        &[],
        EntryStage::Gpu,
        &options(),
        MessageFormat::Short,
    );
    assert!(
        o.success() && o.stdout.contains("gpu.func @k0_sum"),
        "{}",
        o.stderr
    );
    insta::assert_snapshot!("gpu__dpo__sigmoid", o.stdout);
    // PTX needs libdevice: without one (and no CUDA toolkit) the error says where to get it.
    if std::env::var_os("FTL_LIBDEVICE").is_none()
        && !Path::new("/usr/local/cuda/nvvm/libdevice/libdevice.10.bc").exists()
        && std::env::var_os("CUDA_HOME").is_none()
    {
        let o = driver::emit_graph(
            &file,
            "sigmoid",
            &[],
            EntryStage::Ptx("sm_90"),
            &options(),
            MessageFormat::Short,
        );
        assert!(!o.success() && o.stderr.contains("E0095") && o.stderr.contains("FTL_LIBDEVICE"));
    }
}

/// The tests' random draws: xorshift64 with a fixed seed, so every run sees the same inputs.
struct Draws(u64);

impl Draws {
    fn bits(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 >> 11
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        self.bits() as f64 / (1u64 << 53) as f64
    }

    /// An f32 tensor of uniform values in [−1, 1).
    fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let v: Vec<f64> = (0..shape.iter().product::<usize>())
            .map(|_| self.uniform() * 2.0 - 1.0)
            .collect();
        Tensor::from_f64(DType::F32, shape, &v)
    }

    /// `len` standard normal values (Box–Muller on (0, 1) uniforms).
    fn normal(&mut self, len: usize) -> Vec<f64> {
        (0..len)
            .map(|_| {
                let mut open = || (self.bits() as f64 + 0.5) / (1u64 << 53) as f64;
                let (a, b) = (open(), open());
                (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
            })
            .collect()
    }
}

/// Whether `python3` runs here; prints why the calling test is skipped when it does not.
fn python3_available(needed_for: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: python3 is not installed (needed for {needed_for})");
    }
    ok
}

/// Runs `entry` of `file` on `input` with `sets` on both backends and checks each output with
/// `tests/reference/SCRIPT check IN OUT ENTRY SETS…`; one line per failure (the script's report).
fn check_on_both_backends(
    script: &str,
    file: PathBuf,
    entry: &str,
    input: &Path,
    sets: &[String],
) -> Vec<String> {
    let mut failures = Vec::new();
    for backend in [run::Backend::Mlir, run::Backend::Interp] {
        let out = input.with_extension(format!("{backend:?}.safetensors"));
        let args = RunArgs {
            file: file.clone(),
            entry: entry.into(),
            inputs: Some(input.to_path_buf()),
            out: Some(out.clone()),
            sets: sets.to_vec(),
            backend,
            // One inputs file serves every entry of a family, each reading its part.
            allow_extra_inputs: true,
            ..RunArgs::default()
        };
        let o = driver::run_entry(&args, &options(), MessageFormat::Short);
        assert!(o.success(), "{entry} {sets:?}: {}", o.stderr);
        let check = std::process::Command::new("python3")
            .arg(repo().join("tests").join("reference").join(script))
            .arg("check")
            .arg(input)
            .arg(&out)
            .arg(entry)
            .args(sets)
            .output()
            .unwrap();
        if !check.status.success() {
            failures.push(format!(
                "{entry} {sets:?} ({backend:?}): {}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            ));
        }
    }
    failures
}

/// The stdlib objectives on random log-probabilities (drawn here, not chosen), on both backends,
/// against tests/reference/trl_objectives.py — TRL's formulas transcribed in plain Python —
/// for loss, metrics and gradients (relative error ≤ 1e-4). Skipped without python3.
#[test]
fn stdlib_objectives_match_the_trl_reference_on_random_inputs() {
    if !python3_available("the TRL reference script") {
        return;
    }
    let r = repo();
    let dir = scratch("trl");
    let dpo = [
        "sigmoid",
        "hinge",
        "ipo",
        "exo_pair",
        "nca_pair",
        "robust",
        "bco_pair",
        "sppo_hard",
        "aot",
        "aot_unpaired",
        "apo_zero",
        "apo_down",
        "discopop",
        "sigmoid_norm",
        "sigmoid_forward_kl",
        "sigmoid_js",
        "sigmoid_alpha",
    ];
    let mut cases: Vec<(&str, &str, Vec<String>)> = Vec::new();
    for e in dpo {
        let sets = match e {
            "exo_pair" => vec!["label_smoothing=0.01".to_string()],
            "robust" | "aot" | "aot_unpaired" => vec!["label_smoothing=0.2".to_string()],
            "sigmoid_alpha" => vec!["f_alpha_divergence_coef=0.3".to_string()],
            _ => vec![],
        };
        cases.push(("dpo.ftl", e, sets));
    }
    for e in ["cpo", "cpo_hinge", "cpo_ipo", "simpo"] {
        cases.push(("cpo.ftl", e, vec!["beta=2.0".to_string()]));
    }
    cases.push(("orpo.ftl", "odds_ratio", vec!["beta=0.5".to_string()]));
    cases.push(("kto.ftl", "kto", vec!["undesirable_weight=1.2".to_string()]));
    let mut draws = Draws(0x9e37_79b9_7f4a_7c15);
    let mut uniform = move || draws.uniform();
    let mut failures = Vec::new();
    for (file, entry, sets) in cases {
        let n = 6;
        let mut logps = |len: usize, lo: f64, hi: f64| -> Tensor {
            let v: Vec<f64> = (0..len).map(|_| lo + (hi - lo) * uniform()).collect();
            Tensor::from_f64(DType::F32, &[len], &v)
        };
        let mut inputs: Vec<(String, Tensor)> = if entry == "kto" {
            vec![
                ("chosen_logps".into(), logps(5, -40.0, -5.0)),
                ("rejected_logps".into(), logps(4, -40.0, -5.0)),
                ("kl_logps".into(), logps(3, -40.0, -5.0)),
                ("ref_chosen_logps".into(), logps(5, -40.0, -5.0)),
                ("ref_rejected_logps".into(), logps(4, -40.0, -5.0)),
                ("ref_kl_logps".into(), logps(3, -40.0, -5.0)),
            ]
        } else if entry == "odds_ratio" || entry == "cpo_ipo" || entry == "simpo" {
            vec![
                ("chosen_logps".into(), logps(n, -4.0, -0.05)),
                ("rejected_logps".into(), logps(n, -4.0, -0.05)),
            ]
        } else {
            // Policy and reference log-probs of the same completions differ by a few nats.
            let chosen = logps(n, -40.0, -5.0);
            let rejected = logps(n, -40.0, -5.0);
            let mut near = |t: &Tensor| {
                let v: Vec<f64> = t
                    .to_f64()
                    .iter()
                    .map(|a| a - 3.0 + 6.0 * uniform())
                    .collect();
                Tensor::from_f64(DType::F32, &[n], &v)
            };
            let ref_chosen = near(&chosen);
            let ref_rejected = near(&rejected);
            vec![
                ("chosen_logps".into(), chosen),
                ("rejected_logps".into(), rejected),
                ("ref_chosen_logps".into(), ref_chosen),
                ("ref_rejected_logps".into(), ref_rejected),
                (
                    "chosen_lengths".into(),
                    Tensor::from_f64(DType::F32, &[n], &[0.0, 1.0, 3.0, 7.0, 12.0, 20.0]),
                ),
                (
                    "rejected_lengths".into(),
                    Tensor::from_f64(DType::F32, &[n], &[5.0, 2.0, 0.0, 9.0, 4.0, 16.0]),
                ),
            ]
        };
        if !matches!(entry, "ipo" | "sigmoid_norm") {
            inputs.retain(|(k, _)| !k.ends_with("_lengths"));
        }
        let input_path = dir.join(format!("{entry}.in.safetensors"));
        safetensors_io::write_atomic(&input_path, &inputs).unwrap();
        failures.extend(check_on_both_backends(
            "trl_objectives.py",
            r.join("stdlib").join("objectives").join(file),
            entry,
            &input_path,
            &sets,
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every stdlib adapter on random inputs and a random `grad.y` (drawn here, not chosen), on both
/// backends, against tests/reference/peft_adapters.py — PEFT's layers transcribed in plain
/// Python — for `y`, `aux_loss`, `grad.x` and every `grad.<param>` (relative error ≤ 5e-4).
#[test]
fn stdlib_adapters_match_the_peft_reference_on_random_inputs() {
    if !python3_available("the PEFT reference script") {
        return;
    }
    let r = repo();
    let dir = scratch("peft-ref");
    let (i, o, k) = (6, 4, 3);
    let mut draws = Draws(0x2545_f491_4f6c_dd1d);
    let mut rand = move |shape: &[usize]| draws.tensor(shape);
    // (entry, file, params as (name, shape), --set values, x's leading dims)
    type Case = (
        &'static str,
        &'static str,
        Vec<(&'static str, Vec<usize>)>,
        Vec<&'static str>,
        Vec<usize>,
    );
    let cases: Vec<Case> = vec![
        (
            "lora",
            "lora.ftl",
            vec![("lora_A", vec![k, i]), ("lora_B", vec![o, k])],
            vec!["lora_alpha=16"],
            vec![2, 3],
        ),
        (
            "lora",
            "lora.ftl",
            vec![("lora_A", vec![k, i]), ("lora_B", vec![o, k])],
            vec!["use_rslora=true"],
            vec![5],
        ),
        (
            "dora",
            "dora.ftl",
            vec![
                ("lora_A", vec![k, i]),
                ("lora_B", vec![o, k]),
                ("lora_magnitude_vector", vec![o]),
            ],
            vec!["lora_alpha=4"],
            vec![5],
        ),
        (
            "vera",
            "vera.ftl",
            vec![
                ("vera_A", vec![k, i]),
                ("vera_B", vec![o, k]),
                ("vera_lambda_d", vec![k]),
                ("vera_lambda_b", vec![o]),
            ],
            vec![],
            vec![5],
        ),
        ("ia3", "ia3.ftl", vec![("ia3_l", vec![o])], vec![], vec![5]),
        (
            "ia3_feedforward",
            "ia3.ftl",
            vec![("ia3_l", vec![i])],
            vec![],
            vec![5],
        ),
        (
            "loha",
            "loha.ftl",
            vec![
                ("hada_w1_a", vec![o, k]),
                ("hada_w1_b", vec![k, i]),
                ("hada_w2_a", vec![o, k]),
                ("hada_w2_b", vec![k, i]),
            ],
            vec!["alpha=6"],
            vec![5],
        ),
        (
            "lokr",
            "lokr.ftl",
            vec![("lokr_w1", vec![2, 2]), ("lokr_w2", vec![2, 3])],
            vec!["alpha=6", "r=4"],
            vec![5],
        ),
        (
            "lokr_decomposed",
            "lokr.ftl",
            vec![
                ("lokr_w1", vec![2, 2]),
                ("lokr_w2_a", vec![2, 2]),
                ("lokr_w2_b", vec![2, 3]),
            ],
            vec![],
            vec![5],
        ),
        (
            "adalora",
            "adalora.ftl",
            vec![
                ("lora_A", vec![k, i]),
                ("lora_E", vec![k]),
                ("lora_B", vec![o, k]),
            ],
            vec!["orth_reg_weight=0.3"],
            vec![5],
        ),
    ];
    let mut failures = Vec::new();
    for (n, (entry, file, params, sets, lead)) in cases.into_iter().enumerate() {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let x_shape: Vec<usize> = lead.iter().copied().chain([i]).collect();
        let y_shape: Vec<usize> = lead.iter().copied().chain([o]).collect();
        let mut inputs = vec![
            ("x".to_string(), rand(&x_shape)),
            ("weight".to_string(), rand(&[o, i])),
            ("bias".to_string(), rand(&[o])),
            ("grad.y".to_string(), rand(&y_shape)),
        ];
        for (name, shape) in params {
            inputs.push((name.to_string(), rand(&shape)));
        }
        let input_path = dir.join(format!("{n}.{entry}.in.safetensors"));
        safetensors_io::write_atomic(&input_path, &inputs).unwrap();
        failures.extend(check_on_both_backends(
            "peft_adapters.py",
            r.join("stdlib").join("adapters").join(file),
            entry,
            &input_path,
            &sets,
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The sampling steps on random latents (drawn here, not chosen) at several timesteps and
/// configurations, on both backends, against tests/reference/diffusers_schedulers.py —
/// diffusers' `LCMScheduler`/`TCDScheduler`/`DDIMScheduler`/`DPMSolverMultistepScheduler`/
/// `EulerDiscreteScheduler.step` and PCM's flow-matching step transcribed with float32
/// emulated as torch computes it (relative error ≤ 2e-4; in practice ≤ 1e-6).
#[test]
fn sampling_steps_match_the_diffusers_reference_on_random_inputs() {
    if !python3_available("the diffusers reference script") {
        return;
    }
    let r = repo();
    let dir = scratch("diffusers-ref");
    let mut draws = Draws(0x853c_49e6_748f_ea9b);
    let mut normal = move |len: usize| draws.normal(len);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "lcm",
            vec!["timestep=999", "prev_timestep=759", "last_step=false"],
        ),
        (
            "lcm",
            vec![
                "timestep=499",
                "prev_timestep=259",
                "last_step=false",
                "prediction_type=v_prediction",
            ],
        ),
        (
            "lcm",
            vec![
                "timestep=259",
                "prev_timestep=-1",
                "last_step=true",
                "prediction_type=sample",
            ],
        ),
        (
            "lcm",
            vec![
                "timestep=879",
                "prev_timestep=759",
                "last_step=false",
                "clip_sample=true",
                "beta_schedule=squaredcos_cap_v2",
            ],
        ),
        (
            "tcd",
            vec!["timestep=999", "prev_timestep=759", "last_step=false"],
        ),
        (
            "tcd",
            vec![
                "timestep=999",
                "prev_timestep=90",
                "last_step=false",
                "eta=0.3",
            ],
        ),
        (
            "tcd",
            vec![
                "timestep=759",
                "prev_timestep=499",
                "last_step=false",
                "eta=0.55",
                "prediction_type=v_prediction",
            ],
        ),
        (
            "tcd",
            vec!["timestep=259", "prev_timestep=-1", "last_step=true"],
        ),
        ("ddim", vec!["timestep=750", "prev_timestep=500"]),
        (
            "ddim",
            vec![
                "timestep=500",
                "prev_timestep=250",
                "eta=1.0",
                "clip_sample=false",
            ],
        ),
        (
            "ddim",
            vec![
                "timestep=20",
                "prev_timestep=-20",
                "use_clipped_model_output=true",
                "prediction_type=sample",
            ],
        ),
        (
            "ddim",
            vec![
                "timestep=999",
                "prev_timestep=979",
                "eta=0.5",
                "beta_schedule=scaled_linear",
                "beta_start=0.00085",
                "beta_end=0.012",
                "clip_sample=false",
            ],
        ),
    ];
    // DPM-Solver++(2M) second-order steps (sigmas of a 10-step schedule, then its last step).
    let dpm = |sets: &[&'static str]| -> (&'static str, Vec<&'static str>) {
        ("dpm_solver", sets.to_vec())
    };
    let mut cases = cases;
    cases.extend([
        dpm(&[
            "sigma=25.528484344482422",
            "sigma_next=11.939519882202148",
            "sigma_prev=60.27141189575195",
        ]),
        dpm(&[
            "sigma=3.442967414855957",
            "sigma_next=2.0410871505737305",
            "sigma_prev=6.135210037231445",
            "prediction_type=v_prediction",
            "solver_type=heun",
        ]),
        dpm(&[
            "sigma=0.7235912084579468",
            "sigma_next=0.34226012229919434",
            "sigma_prev=1.2401612997055054",
            "prediction_type=sample",
        ]),
    ]);
    // Euler (with churn: the noise is added first) and PCM's flow-matching step.
    cases.extend([
        (
            "euler",
            vec![
                "sigma=9.488921165466309",
                "sigma_next=4.703334331512451",
                "num_inference_steps=10",
            ],
        ),
        (
            "euler",
            vec![
                "sigma=2.5546913146972656",
                "sigma_next=1.4623570442199707",
                "num_inference_steps=10",
                "s_churn=2.0",
                "prediction_type=v_prediction",
            ],
        ),
        (
            "pcm_fm",
            vec!["sigma=0.9047619104385376", "sigma_next=0.75"],
        ),
    ]);
    let shape = [2usize, 4, 8, 8];
    let len: usize = shape.iter().product();
    let mut failures = Vec::new();
    for (n, (step, sets)) in cases.into_iter().enumerate() {
        let file = if step == "pcm_fm" { "pcm" } else { step };
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let inputs: Vec<(String, Tensor)> = ["model_output", "sample", "noise", "prev_x0"]
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    Tensor::from_f64(DType::F32, &shape, &normal(len)),
                )
            })
            .collect();
        let input_path = dir.join(format!("{n}.{step}.in.safetensors"));
        safetensors_io::write_atomic(&input_path, &inputs).unwrap();
        failures.extend(check_on_both_backends(
            "diffusers_schedulers.py",
            r.join("stdlib")
                .join("sampling")
                .join(format!("{file}.ftl")),
            &format!("{step}_step"),
            &input_path,
            &sets,
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `ftc merge` on the PEFT fixture equals `merge_and_unload`'s result (computed by
/// tests/fixtures/peft/make_fixture.py, honouring `rank_pattern` and `alpha_pattern`); `ftc init`
/// writes PEFT's layout, whose fresh adapter merges to the base unchanged.
#[test]
fn peft_merge_and_init_use_peft_files() {
    let r = repo();
    let fx = r.join("tests").join("fixtures").join("peft");
    let dir = scratch("peft");
    let merged = dir.join("merged.safetensors");
    let o = ftc::peft::merge(
        &fx.join("base.safetensors"),
        &fx.join("adapter"),
        &merged,
        &options(),
    );
    assert!(o.success(), "{}", o.stderr);
    let got: HashMap<String, Tensor> = safetensors_io::read(&merged).unwrap().into_iter().collect();
    let want: HashMap<String, Tensor> = safetensors_io::read(&fx.join("expected.safetensors"))
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(got.len(), want.len());
    for (k, w) in &want {
        assert!(rel_err(&got[k].to_f64(), &w.to_f64()) < 1e-6, "{k}");
    }

    let adapter = dir.join("fresh");
    let args = ftc::peft::InitArgs {
        base: fx.join("base.safetensors"),
        targets: vec!["q_proj".into(), "v_proj".into()],
        r: 4,
        lora_alpha: 16.0,
        seed: 3,
        out: adapter.clone(),
    };
    let o = ftc::peft::init(&args, &options());
    assert!(o.success(), "{}", o.stderr);
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(adapter.join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["r"], 4);
    assert_eq!(config["peft_type"], "LORA");
    let tensors: HashMap<String, Tensor> =
        safetensors_io::read(&adapter.join("adapter_model.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    let a = &tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"];
    assert_eq!(a.shape(), &[4, 4]);
    // kaiming_uniform(a = √5) over fan-in 4: |A| ≤ 1/√4.
    assert!(a.to_f64().iter().all(|v| v.abs() <= 0.5) && a.to_f64().iter().any(|v| *v != 0.0));
    let b = &tensors["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"];
    assert!(b.to_f64().iter().all(|v| *v == 0.0));
    let remerged = dir.join("remerged.safetensors");
    let o = ftc::peft::merge(
        &fx.join("base.safetensors"),
        &adapter,
        &remerged,
        &options(),
    );
    assert!(o.success(), "{}", o.stderr);
    assert_eq!(
        safetensors_io::read(&remerged).unwrap(),
        safetensors_io::read(&fx.join("base.safetensors")).unwrap()
    );

    // Wrong files are one clear error each.
    let o = ftc::peft::merge(
        &fx.join("base.safetensors"),
        &dir.join("nowhere"),
        &merged,
        &options(),
    );
    assert!(
        !o.success() && o.stderr.contains("adapter_config.json"),
        "{}",
        o.stderr
    );
    let o = ftc::peft::merge(
        &fx.join("expected.safetensors"),
        &fx.join("adapter"),
        &dir.join("x.safetensors"),
        &options(),
    );
    assert!(o.success(), "{}", o.stderr);
    let o = ftc::peft::merge(
        &adapter.join("adapter_model.safetensors"),
        &fx.join("adapter"),
        &dir.join("y.safetensors"),
        &options(),
    );
    assert!(
        !o.success() && o.stderr.contains("the base has no"),
        "{}",
        o.stderr
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// PiSSA and OLoRA inits on a random weight: the residual plus `s·B A` is the weight, and
/// PiSSA's residual has exactly the weight's singular values beyond the first r.
#[test]
fn pissa_and_olora_inits_keep_the_layer_and_split_its_spectrum() {
    use ftl_runtime::host::{decompose, Decomposition};
    let r = repo();
    let dir = scratch("pissa");
    let (o, i, rank, alpha) = (7usize, 5usize, 2usize, 6.0f64);
    let w: Vec<f64> = (0..o * i)
        .map(|k| ((k * 37 % 11) as f64 - 5.0) / 3.0 + 0.1 * k as f64)
        .collect();
    let inputs = dir.join("w.safetensors");
    safetensors_io::write_atomic(
        &inputs,
        &[("weight".into(), Tensor::from_f64(DType::F32, &[o, i], &w))],
    )
    .unwrap();
    let s = alpha / rank as f64;
    for entry in ["pissa_init", "olora_init"] {
        let out = dir.join(format!("{entry}.safetensors"));
        let args = RunArgs {
            file: r.join("stdlib").join("adapters").join("lora.ftl"),
            entry: entry.into(),
            inputs: Some(inputs.clone()),
            out: Some(out.clone()),
            sets: vec![format!("r={rank}"), format!("lora_alpha={alpha}")],
            ..RunArgs::default()
        };
        let res = driver::run_entry(&args, &options(), MessageFormat::Short);
        assert!(res.success(), "{}", res.stderr);
        let got: HashMap<String, Tensor> =
            safetensors_io::read(&out).unwrap().into_iter().collect();
        let (wr, a, b) = (
            got["weight"].to_f64(),
            got["lora_A"].to_f64(),
            got["lora_B"].to_f64(),
        );
        for oi in 0..o {
            for ii in 0..i {
                let ba: f64 = (0..rank).map(|k| b[oi * rank + k] * a[k * i + ii]).sum();
                let back = wr[oi * i + ii] + s * ba;
                assert!(
                    (back - w[oi * i + ii]).abs() < 1e-4,
                    "{entry} W_res + s·BA != W at {oi},{ii}"
                );
            }
        }
        if entry == "pissa_init" {
            let sw = &decompose(Decomposition::Svd, &w, o, i).unwrap()[1];
            let sr = &decompose(Decomposition::Svd, &wr, o, i).unwrap()[1];
            for k in 0..i - rank {
                assert!(
                    (sr[k] - sw[k + rank]).abs() < 1e-4,
                    "residual spectrum {sr:?} vs {sw:?}"
                );
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// KaSA's init truncates the base weight as PEFT does: the rank-(k − r) SVD approximation, equal
/// to the weight PEFT 0.21 leaves in the layer (`KasaLinearVariant._truncate_base_weight`, f32).
#[test]
fn kasa_init_truncates_the_base_weight_as_peft() {
    let dir = scratch("kasa");
    let w0: [f64; 20] = [
        0.42042818602691356,
        0.1858797375490857,
        -0.03632900008519794,
        0.3763281692289248,
        0.12971351638863884,
        0.26041059136837535,
        -0.2874633759199114,
        -0.133173389274643,
        0.07275353041683828,
        -0.18940757615126635,
        -0.04215538310385754,
        -0.2890792919074539,
        -0.12945334678288614,
        0.10903536914457614,
        -0.016235283900972695,
        -0.05294964334835039,
        -0.0829298809951471,
        -0.26346373142713686,
        0.14761463194395658,
        0.25479896257326057,
    ];
    let peft: [f64; 20] = [
        0.4147798418998718,
        0.1918780654668808,
        -0.05969361960887909,
        0.36729395389556885,
        0.15042363107204437,
        0.1330995112657547,
        -0.28806576132774353,
        -0.19510690867900848,
        0.144497811794281,
        -0.03734796121716499,
        0.02361968345940113,
        -0.2743065357208252,
        -0.14693990349769592,
        0.04264524579048157,
        -0.06128065288066864,
        0.10930122435092926,
        -0.10815120488405228,
        -0.09560154378414154,
        0.10887909680604935,
        0.0007738769054412842,
    ];
    let inputs = dir.join("w.safetensors");
    safetensors_io::write_atomic(
        &inputs,
        &[("weight".into(), Tensor::from_f64(DType::F32, &[4, 5], &w0))],
    )
    .unwrap();
    let out = dir.join("init.safetensors");
    let args = RunArgs {
        file: repo().join("stdlib").join("adapters").join("kasa.ftl"),
        entry: "kasa.init".into(),
        inputs: Some(inputs),
        out: Some(out.clone()),
        sets: vec!["r=2".into()],
        ..RunArgs::default()
    };
    let res = driver::run_entry(&args, &options(), MessageFormat::Short);
    assert!(res.success(), "{}", res.stderr);
    let got: HashMap<String, Tensor> = safetensors_io::read(&out).unwrap().into_iter().collect();
    assert!(
        rel_err(&got["weight"].to_f64(), &peft) < 1e-5,
        "{:?}",
        got["weight"].to_f64()
    );
    assert!(got["lora_B"].to_f64().iter().all(|v| *v == 0.0));
    assert_eq!(got["lora_diag"].shape(), &[2]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The random inits draw PEFT's distributions: on a 64 × 512 weight, the standard deviation of
/// each drawn factor is its distribution's within 5%, kaiming-uniform draws stay inside their
/// bound, and the zero-initialised factors are exactly zero.
#[test]
fn random_inits_draw_peft_distributions() {
    let r = repo();
    let dir = scratch("inits");
    let std_of = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
    };
    let i = 512usize;
    // (file, entry, --set, dims, [(output, expected std, uniform bound or 0 for a normal)], zeros)
    type InitCase = (
        &'static str,
        &'static str,
        Vec<&'static str>,
        &'static str,
        Vec<(&'static str, f64, f64)>,
        Vec<&'static str>,
    );
    let kaiming = |fan_in: usize| (6.0 / (6.0 * fan_in as f64)).sqrt();
    let cases: Vec<InitCase> = vec![
        (
            "lora.ftl",
            "gaussian_init",
            vec!["r=8"],
            "O=64,I=512",
            vec![("lora_A", 1.0 / 8.0, 0.0)],
            vec!["lora_B"],
        ),
        (
            "lora.ftl",
            "lora.init",
            vec!["r=8"],
            "O=64,I=512",
            vec![("lora_A", kaiming(i) / 3f64.sqrt(), kaiming(i))],
            vec!["lora_B"],
        ),
        (
            "adalora.ftl",
            "adalora.init",
            vec!["init_r=12"],
            "O=64,I=512",
            vec![("lora_A", 0.02, 0.0), ("lora_B", 0.02, 0.0)],
            vec!["lora_E"],
        ),
        (
            "lokr.ftl",
            "lokr.init",
            vec!["out_l=8", "out_k=8", "in_m=8", "in_n=64"],
            "O=64,I=512",
            vec![("lokr_w2", kaiming(64) / 3f64.sqrt(), kaiming(64))],
            vec!["lokr_w1"],
        ),
    ];
    for (file, entry, sets, dims, drawn, zeros) in cases {
        let out = dir.join(format!("{entry}.safetensors"));
        let args = RunArgs {
            file: r.join("stdlib").join("adapters").join(file),
            entry: entry.into(),
            random_dims: Some(dims.into()),
            out: Some(out.clone()),
            sets: sets.iter().map(|s| s.to_string()).collect(),
            ..RunArgs::default()
        };
        let res = driver::run_entry(&args, &options(), MessageFormat::Short);
        assert!(res.success(), "{entry}: {}", res.stderr);
        let got: HashMap<String, Tensor> =
            safetensors_io::read(&out).unwrap().into_iter().collect();
        for (name, want, bound) in drawn {
            let v = got[name].to_f64();
            let sd = std_of(&v);
            assert!(
                (sd / want - 1.0).abs() < 0.05,
                "{entry} {name}: std {sd} vs {want}"
            );
            if bound > 0.0 {
                assert!(
                    v.iter().all(|x| x.abs() <= bound),
                    "{entry} {name}: beyond ±{bound}"
                );
            }
        }
        for name in zeros {
            assert!(
                got[name].to_f64().iter().all(|x| *x == 0.0),
                "{entry} {name}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Adapter merges, on random inputs: the merged base alone reproduces the adapter's forward,
/// unmerge gives the base back, and DoRA's merged rows have norm m.
#[test]
fn adapter_merges_reproduce_the_forward_and_unmerge_restores_the_base() {
    let r = repo();
    let dir = scratch("merges");
    let run_entry = |file: &str,
                     entry: &str,
                     inputs: &HashMap<String, Tensor>,
                     sets: &[&str]|
     -> HashMap<String, Tensor> {
        let path = dir.join(format!("{entry}.in.safetensors"));
        let list: Tensors = inputs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        safetensors_io::write_atomic(&path, &list).unwrap();
        let out = dir.join(format!("{entry}.out.safetensors"));
        let args = RunArgs {
            file: r.join("stdlib").join("adapters").join(file),
            entry: entry.into(),
            inputs: Some(path),
            out: Some(out.clone()),
            sets: sets.iter().map(|s| s.to_string()).collect(),
            // The adapter's inputs, of which merge and unmerge read the weights only.
            allow_extra_inputs: true,
            ..RunArgs::default()
        };
        let o = driver::run_entry(&args, &options(), MessageFormat::Short);
        assert!(o.success(), "{entry}: {}", o.stderr);
        safetensors_io::read(&out).unwrap().into_iter().collect()
    };
    let mut draws = Draws(17);
    let mut rand = |shape: &[usize]| draws.tensor(shape);
    let (n, i, o, k) = (3, 5, 4, 2);
    let base: HashMap<String, Tensor> = [
        ("x", rand(&[n, i])),
        ("weight", rand(&[o, i])),
        ("bias", rand(&[o])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    /// (file, entry, the adapter's own parameters)
    type AdapterCase<'a> = (&'a str, &'a str, Vec<(&'a str, Tensor)>);
    let adapters: Vec<AdapterCase> = vec![
        (
            "lora.ftl",
            "lora",
            vec![("lora_A", rand(&[k, i])), ("lora_B", rand(&[o, k]))],
        ),
        (
            "dora.ftl",
            "dora",
            vec![
                ("lora_A", rand(&[k, i])),
                ("lora_B", rand(&[o, k])),
                ("lora_magnitude_vector", rand(&[o])),
            ],
        ),
        (
            "vera.ftl",
            "vera",
            vec![
                ("vera_A", rand(&[k, i])),
                ("vera_B", rand(&[o, k])),
                ("vera_lambda_d", rand(&[k])),
                ("vera_lambda_b", rand(&[o])),
            ],
        ),
        (
            "loha.ftl",
            "loha",
            vec![
                ("hada_w1_a", rand(&[o, k])),
                ("hada_w1_b", rand(&[k, i])),
                ("hada_w2_a", rand(&[o, k])),
                ("hada_w2_b", rand(&[k, i])),
            ],
        ),
        (
            "kasa.ftl",
            "kasa",
            vec![
                ("lora_A", rand(&[k, i])),
                ("lora_B", rand(&[o, k])),
                ("lora_diag", rand(&[k])),
            ],
        ),
        ("hra.ftl", "hra", vec![("hra_u", rand(&[i, k]))]),
        ("miss.ftl", "miss", vec![("miss_block", rand(&[k, o]))]),
        ("ia3.ftl", "ia3_feedforward", vec![("ia3_l", rand(&[i]))]),
        ("ia3.ftl", "ia3", vec![("ia3_l", rand(&[o]))]),
        (
            "adalora.ftl",
            "adalora",
            vec![
                ("lora_A", rand(&[k, i])),
                ("lora_E", rand(&[k])),
                ("lora_B", rand(&[o, k])),
            ],
        ),
        (
            "lokr.ftl",
            "lokr",
            vec![("lokr_w1", rand(&[2, 1])), ("lokr_w2", rand(&[o / 2, i]))],
        ),
        (
            "lokr.ftl",
            "lokr_decomposed",
            vec![
                ("lokr_w1", rand(&[2, 1])),
                ("lokr_w2_a", rand(&[o / 2, k])),
                ("lokr_w2_b", rand(&[k, i])),
            ],
        ),
    ];
    for (file, entry, params) in adapters {
        let mut inputs = base.clone();
        for (name, t) in params {
            inputs.insert(name.into(), t);
        }
        let y = run_entry(file, entry, &inputs, &[])["y"].to_f64();
        let merged = run_entry(file, &format!("{entry}.merge"), &inputs, &[]);
        // The merged base alone: LoRA's forward with B = 0.
        let mut plain: HashMap<String, Tensor> = base.clone();
        plain.insert("weight".into(), merged["weight"].clone());
        if let Some(b) = merged.get("bias") {
            // (IA)³ scales the bias too.
            plain.insert("bias".into(), b.clone());
        }
        plain.insert("lora_A".into(), Tensor::zeros(DType::F32, &[k, i]));
        plain.insert("lora_B".into(), Tensor::zeros(DType::F32, &[o, k]));
        let y_merged = run_entry("lora.ftl", "lora", &plain, &[])["y"].to_f64();
        assert!(
            rel_err(&y_merged, &y) < 1e-5,
            "{entry}: merged forward differs"
        );
        let mut back = inputs.clone();
        back.insert("weight".into(), merged["weight"].clone());
        if let Some(b) = merged.get("bias") {
            back.insert("bias".into(), b.clone());
        }
        if let Some(norm) = merged.get("weight_norm") {
            back.insert("weight_norm".into(), norm.clone());
            // DoRA: each merged row has norm |m|.
            let w = merged["weight"].to_f64();
            let m = inputs["lora_magnitude_vector"].to_f64();
            for row in 0..o {
                let nr = (0..i).map(|c| w[row * i + c].powi(2)).sum::<f64>().sqrt();
                assert!(
                    (nr - m[row].abs()).abs() < 1e-5,
                    "dora row {row}: {nr} vs {}",
                    m[row]
                );
            }
        }
        let restored = run_entry(file, &format!("{entry}.unmerge"), &back, &[]);
        assert!(
            rel_err(&restored["weight"].to_f64(), &base["weight"].to_f64()) < 1e-5,
            "{entry}: unmerge"
        );
        if let Some(b) = restored.get("bias") {
            assert!(
                rel_err(&b.to_f64(), &base["bias"].to_f64()) < 1e-5,
                "{entry}: unmerge bias"
            );
        }
    }
    // OFT rotates the input in blocks (I = 6 = 2 blocks of 3), on both of PEFT's rotations.
    for sets in [&[][..], &["use_cayley_neumann=false"][..]] {
        let mut inputs: HashMap<String, Tensor> = [
            ("x", rand(&[n, 6])),
            ("weight", rand(&[o, 6])),
            ("bias", rand(&[o])),
            ("oft_R", rand(&[2, 3])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let y = run_entry("oft.ftl", "oft", &inputs, sets)["y"].to_f64();
        let merged = run_entry("oft.ftl", "oft.merge", &inputs, sets)["weight"].clone();
        let mut plain = inputs.clone();
        plain.insert("weight".into(), merged.clone());
        plain.insert("oft_R".into(), Tensor::zeros(DType::F32, &[2, 3]));
        let y_merged = run_entry("oft.ftl", "oft", &plain, sets)["y"].to_f64();
        assert!(
            rel_err(&y_merged, &y) < 1e-5,
            "oft {sets:?}: merged forward differs"
        );
        let original = inputs.insert("weight".into(), merged).unwrap();
        let restored = run_entry("oft.ftl", "oft.unmerge", &inputs, sets)["weight"].to_f64();
        assert!(
            rel_err(&restored, &original.to_f64()) < 1e-5,
            "oft {sets:?}: unmerge"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The compile cache: the first run stores an artifact, the next loads it (same outputs), a
/// damaged entry is rebuilt, and `ftc cache info|clear` report and empty the directory given by
/// `FTL_CACHE_DIR`.
#[test]
fn the_compile_cache_stores_loads_and_rebuilds() {
    use ftc::cache::{Cache, Lookup};
    let dir = scratch("cache");
    let cache = Cache::at(dir.join("c"));
    let run_once = |cache: &Cache| {
        let args = RunArgs {
            file: repo().join("stdlib").join("sampling").join("lcm.ftl"),
            entry: "lcm_step".into(),
            inputs: Some(repo().join("examples").join("data").join("lcm.safetensors")),
            cache: Some(cache.clone()),
            ..RunArgs::default()
        };
        let o = driver::run_entry(&args, &options(), MessageFormat::Short);
        assert!(o.success(), "{}", o.stderr);
        o.stdout
    };
    let first = run_once(&cache);
    assert!(first.contains("compile and cache"), "{first}");
    let second = run_once(&cache);
    assert!(second.contains("cached kernels loaded"), "{second}");
    let values = |out: &str| {
        out.lines()
            .filter(|l| l.contains('['))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(values(&first), values(&second));
    // Damage the stored library: the loader refuses it and the entry is rebuilt.
    let entry = std::fs::read_dir(cache.dir())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(entry.join(ftl_runtime::artifact::KERNELS), b"not a library").unwrap();
    let g = graph_of(
        &repo().join("stdlib").join("sampling").join("lcm.ftl"),
        "lcm_step",
        false,
    );
    let (_, lookup) = cache.load_or_build(&g).unwrap();
    assert_eq!(lookup, Lookup::Stored);
    assert_eq!(cache.load_or_build(&g).unwrap().1, Lookup::Hit);
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ftc"))
            .args(args)
            .env("FTL_CACHE_DIR", cache.dir())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(cli(&["cache", "info"]).contains("entries: 1"));
    assert!(cli(&["cache", "clear"]).contains("removed 1"));
    assert!(cli(&["cache", "info"]).contains("entries: 0"));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn ftc(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ftc"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ftc_exit_codes_messages_and_formats() {
    let (code, _, err) = ftc(&[
        "check",
        "examples/dpo.ftl",
        "examples/lora.ftl",
        "examples/flow_lcm.ftl",
    ]);
    assert_eq!(code, 0, "{err}");

    let (code, _, err) = ftc(&["check", "tests/ui/e0040_dtype_mismatch.ftl"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("[E0040]") && err.contains("tests/ui/e0040_dtype_mismatch.ftl:1:"),
        "{err}"
    );

    let (code, _, err) = ftc(&[
        "check",
        "--message-format",
        "short",
        "tests/ui/e0026_unknown_dim.ftl",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("tests/ui/e0026_unknown_dim.ftl:1:39: error[E0026]"),
        "{err}"
    );

    let (code, _, err) = ftc(&[
        "check",
        "--message-format",
        "json",
        "tests/ui/e0045_matmul_ambiguous.ftl",
    ]);
    assert_eq!(code, 1);
    let first: serde_json::Value = serde_json::from_str(err.lines().next().unwrap()).unwrap();
    assert_eq!(first["code"], "E0045");
    assert_eq!(first["labels"][0]["line"], 1);

    let (code, _, err) = ftc(&["check", "no/such/file.ftl"]);
    assert_eq!(code, 1);
    assert!(err.contains("E0010"), "{err}");

    // A source file over 8 MiB (a comment, so only its size is wrong) is refused.
    let big = std::env::temp_dir().join(format!("ftl-big-{}.ftl", std::process::id()));
    std::fs::write(&big, format!("// {}\n", "x".repeat(8 << 20))).unwrap();
    let (code, _, err) = ftc(&["check", big.to_str().unwrap()]);
    std::fs::remove_file(&big).unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("E0008"), "{err}");

    let (code, out, _) = ftc(&["explain", "E0041"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("E0041: dims do not match"), "{out}");
    let (code, _, _) = ftc(&["explain", "E9999"]);
    assert_eq!(code, 1);
    for c in ftl_front::codes::Code::ALL {
        assert!(
            ftl_front::analysis::explain(c.id()).is_some_and(|t| t.len() > 60),
            "{} needs an explanation",
            c.id()
        );
    }

    let (code, out, _) = ftc(&["build", "examples/dpo.ftl", "--emit", "hir"]);
    assert_eq!(code, 0);
    assert!(out.contains("objective dpo::sigmoid"), "{out}");
    let (code, out, _) = ftc(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("check") && out.contains("explain"), "{out}");
}
