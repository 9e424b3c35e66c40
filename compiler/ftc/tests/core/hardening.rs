//! The attacks of the hardening issue, each a regression test: sizes that overflow or exceed the
//! memory limit, outputs that must not replace devices, links or foreign directories, inputs the
//! entry does not read, values outside their dtype, and artifacts that were damaged, swapped or
//! built for another CPU. Every one must end in a coded error and exit status 1.

use super::{ftc, repo, scratch};
use ftl_runtime::artifact::Artifact;
use ftl_runtime::{safetensors_io, DType, Tensor};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

/// `ftc` with extra environment variables.
fn ftc_env(env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ftc"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(repo())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Exit status 1 with `code` in the messages.
#[track_caller]
fn refused((status, _, err): (i32, String, String), code: &str) -> String {
    assert_eq!(status, 1, "{err}");
    assert!(err.contains(code), "expected {code}: {err}");
    err
}

const DPO: &str = "examples/dpo.ftl";
const DPO_INPUTS: &str = "examples/data/dpo_logits.safetensors";

#[test]
fn sizes_that_wrap_or_exceed_the_memory_limit_are_refused_before_allocating() {
    let dir = scratch("sizes");
    // The issue's 306-byte file: zero-size dims pass every input at 0 bytes while the output
    // [2^32, 2^32] would wrap the byte count (a heap overflow before the checks existed).
    let big = 1usize << 32;
    let attack: Vec<(String, Tensor)> = vec![
        ("x".into(), Tensor::zeros(DType::F32, &[big, 0])),
        ("weight".into(), Tensor::zeros(DType::F32, &[big, 0])),
        ("lora_A".into(), Tensor::zeros(DType::F32, &[0, 0])),
        ("lora_B".into(), Tensor::zeros(DType::F32, &[big, 0])),
    ];
    let file = dir.join("attack.safetensors");
    safetensors_io::write_atomic(&file, &attack).unwrap();
    assert!(std::fs::metadata(&file).unwrap().len() < 400);
    let file = file.to_str().unwrap();
    for backend in ["mlir", "interp"] {
        let args = [
            "run",
            "examples/lora.ftl",
            "--entry",
            "lora",
            "--inputs",
            file,
            "--backend",
            backend,
        ];
        let err = refused(ftc(&args), "E0096");
        assert!(
            err.contains("O=4294967296") && err.contains("FTL_MEMORY_LIMIT"),
            "{err}"
        );
    }
    let dims = "L=2147483648x2147483648,I=2,O=2,R=1";
    for backend in ["mlir", "interp"] {
        let args = [
            "run",
            "examples/lora.ftl",
            "--entry",
            "lora",
            "--random",
            "--dims",
            dims,
            "--backend",
            backend,
        ];
        refused(ftc(&args), "E0096");
    }
    refused(
        ftc(&[
            "gradcheck",
            "examples/lora.ftl",
            "--entry",
            "lora",
            "--dims",
            dims,
        ]),
        "E0096",
    );
    refused(
        ftc(&[
            "run",
            DPO,
            "--entry",
            "sigmoid",
            "--random",
            "--dims",
            "B=2147483648",
        ]),
        "E0096",
    );
    // The limit is the user's to set; a value that is not a size is refused, not ignored.
    for (limit, expect) in [("1K", "1.0 KiB"), ("lots", "FTL_MEMORY_LIMIT=lots")] {
        let run = [
            "run",
            DPO,
            "--entry",
            "sigmoid_from_logits",
            "--inputs",
            DPO_INPUTS,
        ];
        let (status, err) = ftc_env(&[("FTL_MEMORY_LIMIT", limit)], &run);
        assert_eq!(status, 1, "{err}");
        assert!(err.contains("E0096") && err.contains(expect), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn outputs_never_replace_devices_links_or_foreign_directories() {
    let dir = scratch("outputs");
    let run_to = |out: &Path| {
        ftc(&[
            "run",
            DPO,
            "--entry",
            "sigmoid_from_logits",
            "--inputs",
            DPO_INPUTS,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    refused(run_to(Path::new("/dev/null")), "E0097");
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());

    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "keep").unwrap();
    let link = dir.join("link.safetensors");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    refused(run_to(&link), "E0097");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());

    let private = dir.join("private.safetensors");
    std::fs::write(&private, "old").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (status, _, err) = run_to(&private);
    assert_eq!(status, 0, "{err}");
    assert_eq!(
        std::fs::metadata(&private).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(safetensors_io::read(&private).is_ok());

    // `build -o` replaces its own artifact whole and refuses anything else.
    let build = |out: &Path| {
        ftc(&[
            "build",
            DPO,
            "--entry",
            "sigmoid",
            "-o",
            out.to_str().unwrap(),
            "--target-cpu",
            "native",
        ])
    };
    let home = dir.join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("notes"), "mine").unwrap();
    refused(build(&home), "E0097");
    assert_eq!(std::fs::read_to_string(home.join("notes")).unwrap(), "mine");
    let pack = dir.join("sigmoid.ftlpack");
    for _ in 0..2 {
        let (status, _, err) = build(&pack);
        assert_eq!(status, 0, "{err}");
    }
    assert!(Artifact::load(&pack).is_ok());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "home",
            "link.safetensors",
            "private.safetensors",
            "sigmoid.ftlpack",
            "victim.txt"
        ],
        "no temporary file or directory is left"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unread_inputs_repeated_options_and_values_outside_their_dtype_are_refused() {
    let dir = scratch("inputs");
    let mut tensors = safetensors_io::read(&repo().join(DPO_INPUTS)).unwrap();
    tensors.push(("biass".into(), Tensor::scalar(DType::F32, 1.0)));
    let extra = dir.join("extra.safetensors");
    safetensors_io::write_atomic(&extra, &tensors).unwrap();
    let extra = extra.to_str().unwrap();
    let err = refused(
        ftc(&[
            "run",
            DPO,
            "--entry",
            "sigmoid_from_logits",
            "--inputs",
            extra,
        ]),
        "E0091",
    );
    assert!(
        err.contains("`biass`") && err.contains("--allow-extra-inputs"),
        "{err}"
    );
    let (status, _, err) = ftc(&[
        "run",
        DPO,
        "--entry",
        "sigmoid_from_logits",
        "--inputs",
        extra,
        "--allow-extra-inputs",
    ]);
    assert_eq!(status, 0, "{err}");

    // A scalar in the file is checked in its declared dtype: no wrapping, no NaN integers.
    let ddim = "stdlib/sampling/ddim.ftl";
    let dims = ["--random", "--dims", "S=2x2"];
    for (name, value) in [("timestep", 4294968295.0), ("timestep", f64::NAN)] {
        let file = dir.join("scalar.safetensors");
        safetensors_io::write_atomic(
            &file,
            &[(name.to_string(), Tensor::scalar(DType::F64, value))],
        )
        .unwrap();
        let mut args = vec![
            "run",
            ddim,
            "--entry",
            "ddim_step",
            "--inputs",
            file.to_str().unwrap(),
        ];
        args.extend(dims);
        refused(ftc(&args), "E0091");
    }
    for set in ["timestep=4294968295", "timestep=nan", "eta=1e39", "eta=inf"] {
        let mut args = vec!["run", ddim, "--entry", "ddim_step", "--set", set];
        args.extend(dims);
        refused(ftc(&args), "E0092");
    }
    let mut args = vec![
        "run",
        ddim,
        "--entry",
        "ddim_step",
        "--set",
        "eta=0.1",
        "--set",
        "eta=0.2",
    ];
    args.extend(dims);
    refused(ftc(&args), "E0092");
    refused(
        ftc(&[
            "run", DPO, "--entry", "sigmoid", "--random", "--dims", "B=2,B=3",
        ]),
        "E0092",
    );
    refused(
        ftc(&[
            "run", DPO, "--entry", "sigmoid", "--random", "--dims", "B=2,Q=3",
        ]),
        "E0092",
    );

    // A directory or a FIFO as the inputs file: an error, not "No such device" or a hang.
    let err = refused(
        ftc(&[
            "run",
            DPO,
            "--entry",
            "sigmoid",
            "--inputs",
            dir.to_str().unwrap(),
        ]),
        "E0091",
    );
    assert!(err.contains("is a directory"), "{err}");
    let fifo = dir.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let err = refused(
        ftc(&[
            "run",
            DPO,
            "--entry",
            "sigmoid",
            "--inputs",
            fifo.to_str().unwrap(),
        ]),
        "E0091",
    );
    assert!(err.contains("not a regular file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Rewrites the manifest of the artifact copy `pack` with `edit`.
fn edit_manifest(pack: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = pack.join("manifest.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
}

fn copy_pack(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["manifest.json", "kernels.so"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

#[test]
fn artifacts_are_verified_before_any_native_code_runs() {
    let dir = scratch("artifacts");
    let build = |entry: &str, out: &Path, cpu: &str| {
        let (status, _, err) = ftc(&[
            "build",
            DPO,
            "--entry",
            entry,
            "-o",
            out.to_str().unwrap(),
            "--target-cpu",
            cpu,
        ]);
        assert_eq!(status, 0, "{err}");
    };
    let good = dir.join("good.ftlpack");
    build("sigmoid_from_logits", &good, "native");
    let other = dir.join("other.ftlpack");
    build("sigmoid", &other, "native");
    assert!(Artifact::load(&good).is_ok());

    type Tamper = (&'static str, Box<dyn Fn(&Path)>, &'static str);
    let cases: Vec<Tamper> = vec![
        (
            "an output index out of range",
            Box::new(|p: &Path| {
                edit_manifest(p, |v| v["manifest"]["outputs"][0][1] = 99999.into())
            }),
            "does not exist",
        ),
        (
            "a view cycle",
            Box::new(|p: &Path| {
                edit_manifest(p, |v| {
                    let buffers = v["manifest"]["buffers"].as_array_mut().unwrap();
                    let n = buffers.len();
                    buffers.push(
                        serde_json::json!({"dtype": "f32", "dims": [], "role": {"View": n + 1}}),
                    );
                    buffers
                        .push(serde_json::json!({"dtype": "f32", "dims": [], "role": {"View": n}}));
                })
            }),
            "cycle",
        ),
        (
            "checks removed",
            Box::new(|p: &Path| {
                edit_manifest(p, |v| v["manifest"]["checks"] = serde_json::json!([]))
            }),
            "not built for this manifest",
        ),
        (
            "a dtype changed",
            Box::new(|p: &Path| {
                edit_manifest(p, |v| {
                    for b in v["manifest"]["buffers"].as_array_mut().unwrap() {
                        if b["dtype"] == "f32" {
                            b["dtype"] = "f64".into();
                        }
                    }
                    for a in v["manifest"]["args"].as_array_mut().unwrap() {
                        if a["dtype"] == "f32" {
                            a["dtype"] = "f64".into();
                        }
                    }
                })
            }),
            "not built for this manifest",
        ),
        (
            "another entry's library",
            Box::new({
                let other = other.clone();
                move |p: &Path| {
                    std::fs::copy(other.join("kernels.so"), p.join("kernels.so")).unwrap();
                }
            }),
            "digest",
        ),
        (
            "another entry's library and digest",
            Box::new({
                let other = other.clone();
                move |p: &Path| {
                    std::fs::copy(other.join("kernels.so"), p.join("kernels.so")).unwrap();
                    let theirs: serde_json::Value = serde_json::from_slice(
                        &std::fs::read(other.join("manifest.json")).unwrap(),
                    )
                    .unwrap();
                    edit_manifest(p, |v| {
                        v["kernels_sha256"] = theirs["kernels_sha256"].clone()
                    });
                }
            }),
            "not built for this manifest",
        ),
        (
            "a CPU feature this machine lacks",
            Box::new(|p: &Path| {
                edit_manifest(p, |v| {
                    v["target"]["features"]
                        .as_array_mut()
                        .unwrap()
                        .push("no-such-feature".into());
                })
            }),
            "lacks no-such-feature",
        ),
        (
            "another format",
            Box::new(|p: &Path| edit_manifest(p, |v| v["format"] = 0.into())),
            "format",
        ),
        (
            "a linked manifest",
            Box::new(|p: &Path| {
                let real = p.with_extension("json");
                std::fs::rename(p.join("manifest.json"), &real).unwrap();
                std::os::unix::fs::symlink(&real, p.join("manifest.json")).unwrap();
            }),
            "not a regular file",
        ),
    ];
    for (k, (what, tamper, expect)) in cases.iter().enumerate() {
        let pack = dir.join(format!("t{k}.ftlpack"));
        copy_pack(&good, &pack);
        tamper(&pack);
        match Artifact::load(&pack) {
            Ok(_) => panic!("{what}: loaded"),
            Err(e) => assert!(e.to_string().contains(expect), "{what}: {e}"),
        }
    }
    // The default target is a portable level, recorded in the manifest.
    if std::env::consts::ARCH == "x86_64" {
        let portable = dir.join("portable.ftlpack");
        let (status, out, err) = ftc(&[
            "build",
            DPO,
            "--entry",
            "sigmoid",
            "-o",
            portable.to_str().unwrap(),
        ]);
        assert_eq!(status, 0, "{err}");
        assert!(out.contains("x86-64-v3"), "{out}");
        let a = Artifact::load(&portable);
        if ftl_runtime::target::Target::named("x86-64-v3")
            .unwrap()
            .unsupported_here()
            .is_none()
        {
            assert_eq!(a.unwrap().target().cpu, "x86-64-v3");
        }
    }
    refused(
        ftc(&[
            "build",
            DPO,
            "--entry",
            "sigmoid",
            "-o",
            "x.ftlpack",
            "--target-cpu",
            "pentium",
        ]),
        "E0092",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Program shapes whose compile time was exponential or quadratic finish (a regression would
/// not: 2^200 paths, 2^40 inlined calls, 20 000 diagnostics each re-indexing the file).
#[test]
fn compile_time_stays_near_linear_in_program_size() {
    let dir = scratch("compile-time");
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let mut chain = String::from("objective chain(x: f32[N]) {\n    let a0 = x;\n");
    for i in 1..=200 {
        chain.push_str(&format!(
            "    let a{i} = sin(a{}) + a{} * x;\n",
            i - 1,
            i - 1
        ));
    }
    chain.push_str("    loss sum(a200, N);\n}\n");
    let chain = write("chain.ftl", chain);
    let (status, out, err) = ftc(&["build", &chain, "--emit", "kernels", "--entry", "chain"]);
    assert_eq!(status, 0, "{err}");
    assert!(out.contains("kernel"), "{out}");

    let mut shared = String::from("fn h0(x: f32[N]) -> f32[N] { sin(x) }\n");
    for i in 1..=40 {
        shared.push_str(&format!(
            "fn h{i}(x: f32[N]) -> f32[N] {{ h{}(x) + h{}(x) }}\n",
            i - 1,
            i - 1
        ));
    }
    shared.push_str("objective shared(x: f32[N]) { loss sum(h40(x), N); }\n");
    let shared = write("shared.ftl", shared);
    let (status, _, err) = ftc(&["build", &shared, "--emit", "kernels", "--entry", "shared"]);
    assert_eq!(status, 0, "{err}");

    // Calls on values that never meet again (sin∘cos ≠ cos∘sin): 2^30 inlined bodies, refused
    // once the graph passes 2^18 operations.
    let mut apart = String::from("fn g0(x: f32[N]) -> f32[N] { sin(x) }\n");
    for i in 1..=30 {
        apart.push_str(&format!(
            "fn g{i}(x: f32[N]) -> f32[N] {{ g{}(sin(x)) + g{}(cos(x)) }}\n",
            i - 1,
            i - 1
        ));
    }
    apart.push_str("objective apart(x: f32[N]) { loss sum(g30(x), N); }\n");
    let apart = write("apart.ftl", apart);
    let err = refused(
        ftc(&["build", &apart, "--emit", "kernels", "--entry", "apart"]),
        "E0095",
    );
    assert!(err.contains("expands to more than"), "{err}");

    // A static loop of two billion iterations is refused before it is unrolled.
    let looped = write(
        "looped.ftl",
        "objective looped(x: f32[N]) {\n    let s = for k in 0..2000000000, acc = x { acc };\n    \
         loss sum(s, N);\n}\n"
            .to_string(),
    );
    let err = refused(
        ftc(&["build", &looped, "--emit", "kernels", "--entry", "looped"]),
        "E0095",
    );
    assert!(err.contains("2000000000 iterations"), "{err}");

    let errors = write(
        "errors.ftl",
        "objective e(x: f32[N]) { loss x +; }\n".repeat(20_000),
    );
    let (status, _, err) = ftc(&["check", &errors]);
    assert_eq!(status, 1);
    assert!(
        err.contains("more errors") && err.len() < 100_000,
        "{} bytes",
        err.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A safetensors file written byte by byte (dtypes FTL has no type for, and a header
/// `__metadata__`): (name, dtype, shape, data).
fn write_raw_safetensors(path: &Path, tensors: &[(String, &str, Vec<usize>, Vec<u8>)]) {
    let mut header = serde_json::Map::new();
    header.insert(
        "__metadata__".into(),
        serde_json::json!({"format": "pt", "origin": "test"}),
    );
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let start = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut text = serde_json::to_vec(&header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut file = (text.len() as u64).to_le_bytes().to_vec();
    file.extend(text);
    file.extend(data);
    std::fs::write(path, file).unwrap();
}

/// The header of a safetensors file.
fn raw_header(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + n]).unwrap()
}

#[test]
fn merge_refuses_what_it_does_not_implement_and_keeps_what_it_does_not_touch() {
    let fx = repo().join("tests").join("fixtures").join("peft");
    let dir = scratch("merge-parity");
    let out = dir.join("merged.safetensors");
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fx.join("adapter").join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    let merge_with = |edit: &dyn Fn(&mut serde_json::Value), extra: Option<&str>| {
        let adapter = dir.join("adapter");
        let _ = std::fs::remove_dir_all(&adapter);
        std::fs::create_dir_all(&adapter).unwrap();
        let mut c = config.clone();
        edit(&mut c);
        std::fs::write(
            adapter.join("adapter_config.json"),
            serde_json::to_vec(&c).unwrap(),
        )
        .unwrap();
        let mut tensors =
            safetensors_io::read(&fx.join("adapter").join("adapter_model.safetensors")).unwrap();
        if let Some(name) = extra {
            tensors.push((name.to_string(), Tensor::zeros(DType::F32, &[2, 2])));
        }
        safetensors_io::write_atomic(&adapter.join("adapter_model.safetensors"), &tensors).unwrap();
        ftc::peft::merge(
            &fx.join("base.safetensors"),
            &adapter,
            &out,
            &super::options(),
        )
    };
    let refused_with = |o: ftc::driver::Outcome, text: &str| {
        assert!(!o.success(), "merged: {}", o.stdout);
        assert!(
            o.stderr.contains("E0091") && o.stderr.contains(text),
            "{}",
            o.stderr
        );
    };
    refused_with(merge_with(&|c| c["r"] = 0.into(), None), "positive integer");
    refused_with(
        merge_with(&|c| c["lora_alpha"] = "16".into(), None),
        "`lora_alpha` must be a number",
    );
    refused_with(
        merge_with(&|c| c["use_dora"] = "yes".into(), None),
        "`use_dora` must be true or false",
    );
    refused_with(
        merge_with(&|c| *c = serde_json::json!([1, 2]), None),
        "not a JSON object",
    );
    refused_with(
        merge_with(&|c| c["lora_bias"] = true.into(), None),
        "lora_bias",
    );
    refused_with(
        merge_with(
            &|c| c["modules_to_save"] = serde_json::json!(["lm_head"]),
            None,
        ),
        "modules_to_save",
    );
    refused_with(
        merge_with(
            &|_| {},
            Some("base_model.model.embed_tokens.lora_embedding_A"),
        ),
        "lora_embedding_A",
    );
    // Pattern keys are regular expressions, as PEFT matches them: this one reaches every
    // q_proj and v_proj and gives a rank their lora_A does not have.
    refused_with(
        merge_with(
            &|c| c["rank_pattern"] = serde_json::json!({r".*_proj": 5}),
            None,
        ),
        "the config gives r = 5",
    );
    let o = merge_with(
        &|c| c["alpha_pattern"] = serde_json::json!({r"layers\.\d+\.self_attn\.(q|v)_proj": 2}),
        None,
    );
    assert!(o.success(), "{}", o.stderr);
    assert!(
        !o.stdout.contains("lora_alpha = 8") && o.stdout.contains("lora_alpha = 2"),
        "{}",
        o.stdout
    );

    // A base with a u8 tensor and metadata: both pass through untouched.
    let mut base: Vec<(String, &str, Vec<usize>, Vec<u8>)> =
        safetensors_io::read(&fx.join("base.safetensors"))
            .unwrap()
            .into_iter()
            .map(|(n, t)| (n, "F32", t.shape().to_vec(), t.bytes().to_vec()))
            .collect();
    base.push(("quant.scales".into(), "U8", vec![3], vec![7, 8, 255]));
    let base_path = dir.join("base-u8.safetensors");
    write_raw_safetensors(&base_path, &base);
    let o = ftc::peft::merge(&base_path, &fx.join("adapter"), &out, &super::options());
    assert!(o.success(), "{}", o.stderr);
    let header = raw_header(&out);
    assert_eq!(header["__metadata__"]["origin"], "test");
    assert_eq!(header["quant.scales"]["dtype"], "U8");
    std::fs::remove_dir_all(&dir).unwrap();
}
