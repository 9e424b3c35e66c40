//! Losses from hidden states (issue 16): every `*_from_hidden` entry equals its from-logits
//! counterpart run on `hidden @ lm_headᵀ (+ bias)` computed here — loss, metrics and, through
//! the chain rule done here, the gradients of `hidden`, `lm_head` and the bias — on random
//! inputs, with the logits sliced 16 columns at a time (so every slice path runs, the last slice
//! narrower) and on the interpreter; and the plan of `sft_from_hidden` holds no `[B, T, V]`
//! buffer outside a sliced region.

use super::{options, rel_err, repo, scratch, Draws, Tensors};
use ftl_front::MessageFormat;
use ftl_ir::pipeline;
use ftl_runtime::{safetensors_io, DType, Tensor};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// `ftc run` of `entry` on `inputs`, on `backend`, with the slice width `columns` (MLIR).
fn run(
    dir: &Path,
    file: &str,
    entry: &str,
    inputs: &HashMap<String, Tensor>,
    backend: &str,
    columns: &str,
) -> HashMap<String, Tensor> {
    let tag = format!("{entry}-{backend}-{columns}");
    let input = dir.join(format!("{tag}.in.safetensors"));
    let list: Tensors = inputs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    safetensors_io::write_atomic(&input, &list).unwrap();
    let out = dir.join(format!("{tag}.out.safetensors"));
    let o = Command::new(env!("CARGO_BIN_EXE_ftc"))
        .arg("run")
        .arg(repo().join("stdlib").join("objectives").join(file))
        .args(["--entry", entry, "--backend", backend, "--inputs"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .env("FTL_SLICE_COLUMNS", columns)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{tag}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    safetensors_io::read(&out).unwrap().into_iter().collect()
}

/// Row-major `a [m, k] · b [n, k]ᵀ` (`transpose_b`) or `a [m, k] · b [k, n]`.
fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize, transpose_b: bool) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k)
                .map(|x| {
                    let bv = if transpose_b {
                        b[j * k + x]
                    } else {
                        b[x * n + j]
                    };
                    a[i * k + x] * bv
                })
                .sum();
        }
    }
    c
}

/// `x [r, c]` transposed.
fn transpose(x: &[f64], r: usize, c: usize) -> Vec<f64> {
    (0..c * r).map(|i| x[(i % r) * c + i / r]).collect()
}

/// One entry and its counterpart: how the counterpart's logits inputs are named (the whole
/// batch, or chosen and rejected halves) and which inputs are renamed for it.
struct Case {
    file: &'static str,
    hidden_entry: &'static str,
    logits_entry: &'static str,
    /// `[]`: one `logits` input; `[c, r]`: the first half of the rows as `c`, the second as `r`.
    logits_names: &'static [&'static str],
    /// (hidden entry's input, counterpart's inputs it becomes: one name, or two halves).
    renamed: &'static [(&'static str, &'static [&'static str])],
    /// Extra inputs: (name, shape in rows N, per-row, or `[]` scalar, dtype kind).
    extra: &'static [(&'static str, Extra)],
}

#[derive(Clone, Copy)]
enum Extra {
    /// `[N]` standard-ish floats (reference log-probs).
    RowFloats,
    /// `[B]` floats for the chosen / rejected halves.
    HalfFloats,
    /// `[N]` booleans.
    RowBools,
    /// `[N, T]` 0/1 mask (i32).
    Mask,
    /// `[K]` floats (KL log-probs).
    KFloats,
}

#[test]
fn from_hidden_entries_match_their_from_logits_counterparts_on_random_inputs() {
    let dir = scratch("from-hidden");
    let (n, t, h, v) = (4usize, 5usize, 6usize, 40usize);
    let half = n / 2;
    let cases = [
        Case {
            file: "sft.ftl",
            hidden_entry: "sft_from_hidden",
            logits_entry: "sft",
            logits_names: &[],
            renamed: &[],
            extra: &[],
        },
        Case {
            file: "dpo.ftl",
            hidden_entry: "sigmoid_from_hidden",
            logits_entry: "sigmoid_from_logits",
            logits_names: &["chosen_logits", "rejected_logits"],
            renamed: &[("labels", &["chosen_labels", "rejected_labels"])],
            extra: &[
                ("ref_chosen_logps", Extra::HalfFloats),
                ("ref_rejected_logps", Extra::HalfFloats),
            ],
        },
        Case {
            file: "orpo.ftl",
            hidden_entry: "orpo_from_hidden",
            logits_entry: "orpo",
            logits_names: &["chosen_logits", "rejected_logits"],
            renamed: &[("labels", &["chosen_labels", "rejected_labels"])],
            extra: &[],
        },
        Case {
            file: "cpo.ftl",
            hidden_entry: "cpo_from_hidden",
            logits_entry: "cpo_from_logits",
            logits_names: &["chosen_logits", "rejected_logits"],
            renamed: &[("labels", &["chosen_labels", "rejected_labels"])],
            extra: &[],
        },
        Case {
            file: "cpo.ftl",
            hidden_entry: "simpo_from_hidden",
            logits_entry: "simpo_from_logits",
            logits_names: &["chosen_logits", "rejected_logits"],
            renamed: &[("labels", &["chosen_labels", "rejected_labels"])],
            extra: &[],
        },
        Case {
            file: "grpo.ftl",
            hidden_entry: "grpo_from_hidden",
            logits_entry: "grpo_from_logits",
            logits_names: &[],
            renamed: &[],
            extra: &[
                ("advantages", Extra::RowFloats),
                ("completion_mask", Extra::Mask),
                ("ref_per_token_logps", Extra::Mask),
            ],
        },
        Case {
            file: "kto.ftl",
            hidden_entry: "kto_from_hidden",
            logits_entry: "",
            logits_names: &[],
            renamed: &[],
            extra: &[
                ("label", Extra::RowBools),
                ("ref_logps", Extra::RowFloats),
                ("kl_logps", Extra::KFloats),
                ("ref_kl_logps", Extra::KFloats),
            ],
        },
    ];
    let mut draws = Draws(1616);
    let mut failures = Vec::new();
    for case in &cases {
        for with_bias in [false, true] {
            let hidden = draws.tensor(&[n, t, h]);
            let lm_head = draws.tensor(&[v, h]);
            let bias = draws.tensor(&[v]);
            // Labels in range, a few ignored (-100) — the GRPO ids are all in range.
            let labels: Vec<f64> = (0..n * t)
                .map(|i| {
                    let u = draws.uniform();
                    if case.hidden_entry != "grpo_from_hidden" && i % 7 == 3 {
                        -100.0
                    } else {
                        (u * v as f64).floor()
                    }
                })
                .collect();
            let mut inputs: HashMap<String, Tensor> = HashMap::new();
            inputs.insert("hidden".into(), hidden.clone());
            inputs.insert("lm_head".into(), lm_head.clone());
            let labels_name = if case.hidden_entry == "grpo_from_hidden" {
                "completion_ids"
            } else {
                "labels"
            };
            inputs.insert(
                labels_name.into(),
                Tensor::from_f64(DType::I32, &[n, t], &labels),
            );
            if with_bias {
                inputs.insert("lm_head_bias".into(), bias.clone());
            }
            for (name, extra) in case.extra {
                let value = match extra {
                    Extra::RowFloats => draws.tensor(&[n]),
                    Extra::HalfFloats => draws.tensor(&[half]),
                    Extra::KFloats => draws.tensor(&[3]),
                    Extra::RowBools => Tensor::from_f64(DType::Bool, &[n], &[1.0, 0.0, 1.0, 0.0]),
                    Extra::Mask => {
                        let m: Vec<f64> = (0..n * t).map(|i| f64::from(i % 5 != 4)).collect();
                        Tensor::from_f64(DType::I32, &[n, t], &m)
                    }
                };
                // GRPO's reference log-probs are log-probs: negative.
                let value = if *name == "ref_per_token_logps" {
                    Tensor::from_f64(
                        DType::F32,
                        &[n, t],
                        &draws
                            .tensor(&[n, t])
                            .to_f64()
                            .iter()
                            .map(|x| -x.abs())
                            .collect::<Vec<_>>(),
                    )
                } else {
                    value
                };
                inputs.insert((*name).into(), value);
            }
            let tag = format!("{} (bias: {with_bias})", case.hidden_entry);
            let sliced = run(&dir, case.file, case.hidden_entry, &inputs, "mlir", "16");
            let interp = run(&dir, case.file, case.hidden_entry, &inputs, "interp", "16");
            for (name, want) in &interp {
                let e = sliced
                    .get(name)
                    .map_or(f64::INFINITY, |got| rel_err(&got.to_f64(), &want.to_f64()));
                if e.is_nan() || e > 1e-5 {
                    failures.push(format!("{tag}: {name}: sliced vs interpreter {e:.2e}"));
                }
            }
            if case.logits_entry.is_empty() {
                continue;
            }
            // The counterpart on logits = hidden · lm_headᵀ (+ bias), computed here.
            let (hv, wv, bv) = (hidden.to_f64(), lm_head.to_f64(), bias.to_f64());
            let mut logits = matmul(&hv, &wv, n * t, h, v, true);
            if with_bias {
                for (i, x) in logits.iter_mut().enumerate() {
                    *x += bv[i % v];
                }
            }
            // Part `part` of `of` equal runs of rows.
            let rows = |x: &[f64], part: usize, of: usize| -> Vec<f64> {
                let per = x.len() / of;
                x[part * per..(part + 1) * per].to_vec()
            };
            let mut theirs: HashMap<String, Tensor> = HashMap::new();
            match case.logits_names {
                [] => {
                    theirs.insert(
                        "logits".into(),
                        Tensor::from_f64(DType::F32, &[n, t, v], &logits),
                    );
                }
                [c, r] => {
                    for (part, name) in [c, r].iter().enumerate() {
                        theirs.insert(
                            (*name).to_string(),
                            Tensor::from_f64(DType::F32, &[half, t, v], &rows(&logits, part, 2)),
                        );
                    }
                }
                _ => unreachable!(),
            }
            for (name, t) in &inputs {
                if ["hidden", "lm_head", "lm_head_bias"].contains(&name.as_str()) {
                    continue;
                }
                match case.renamed.iter().find(|(from, _)| from == name) {
                    Some((_, [one])) => {
                        theirs.insert((*one).to_string(), t.clone());
                    }
                    Some((_, [c, r])) => {
                        let vals = t.to_f64();
                        let mut shape = t.shape().to_vec();
                        shape[0] /= 2;
                        for (part, to) in [c, r].iter().enumerate() {
                            theirs.insert(
                                (*to).to_string(),
                                Tensor::from_f64(t.dtype(), &shape, &rows(&vals, part, 2)),
                            );
                        }
                    }
                    _ => {
                        theirs.insert(name.clone(), t.clone());
                    }
                }
            }
            let reference = run(&dir, case.file, case.logits_entry, &theirs, "mlir", "0");
            // The logits' gradient, whole, from the counterpart's (one or two halves).
            let grad_logits: Vec<f64> = match case.logits_names {
                [] => reference["grad.logits"].to_f64(),
                [c, r] => [c, r]
                    .iter()
                    .flat_map(|name| reference[&format!("grad.{name}")].to_f64())
                    .collect(),
                _ => unreachable!(),
            };
            let mut expected: Vec<(String, Vec<f64>)> = vec![
                (
                    "grad.hidden".into(),
                    matmul(&grad_logits, &wv, n * t, v, h, false),
                ),
                (
                    "grad.lm_head".into(),
                    matmul(&transpose(&grad_logits, n * t, v), &hv, v, n * t, h, false),
                ),
            ];
            if with_bias {
                let mut gb = vec![0.0; v];
                for (i, g) in grad_logits.iter().enumerate() {
                    gb[i % v] += g;
                }
                expected.push(("grad.lm_head_bias".into(), gb));
            }
            for (name, t) in &reference {
                if !name.starts_with("grad.") {
                    expected.push((name.clone(), t.to_f64()));
                }
            }
            for (name, want) in &expected {
                let e = sliced
                    .get(name)
                    .map_or(f64::INFINITY, |got| rel_err(&got.to_f64(), want));
                if e.is_nan() || e > 1e-5 {
                    failures.push(format!("{tag}: {name}: vs {} {e:.2e}", case.logits_entry));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Issue 16's pin: no buffer of `sft_from_hidden`'s plan over B, T and V lives outside a
/// sliced region (the logits and their gradient exist a slice at a time).
#[test]
fn sft_from_hidden_plans_no_whole_logits() {
    let file = repo().join("stdlib").join("objectives").join("sft.ftl");
    let analysis = ftl_front::analyze(&[file], &options());
    assert!(
        analysis.diagnostics.is_empty(),
        "{}",
        analysis.render(MessageFormat::Short)
    );
    let id = pipeline::find_entry(&analysis, "sft_from_hidden").unwrap();
    let g = pipeline::compile(&analysis.hir, id, &Default::default(), true).unwrap();
    let plan = ftl_plan::fuse::fuse(&g);
    let dim = |name: &str| g.dims.iter().position(|d| d.name == name).unwrap() as u32;
    let logits_dims = [dim("B"), dim("T"), dim("V")];
    let mut local = std::collections::BTreeSet::new();
    let mut regions = 0;
    for k in &plan.kernels {
        if let ftl_plan::fuse::Kernel::Sliced { local: l, .. } = k {
            local.extend(l.iter().copied());
            regions += 1;
        }
    }
    assert!(regions >= 2, "{}", ftl_plan::fuse::print_plan(&plan));
    for (k, b) in plan.buffers.iter().enumerate() {
        let dims: Vec<u32> = g.node(b.node).dims.iter().map(|d| d.0).collect();
        let whole_logits = logits_dims.iter().all(|d| dims.contains(d));
        assert!(
            !whole_logits || local.contains(&ftl_plan::fuse::BufId(k as u32)),
            "buffer {k} holds [B, T, V] whole:\n{}",
            ftl_plan::fuse::print_plan(&plan)
        );
    }
}
