//! PEFT adapter files: `ftc merge` folds a PEFT LoRA/DoRA adapter directory into base weights,
//! `ftc init` writes a fresh LoRA adapter in PEFT's layout. The math is the standard library's
//! own `lora.merge`, `dora.merge` and `lora.init`, compiled and run like any entry.
//!
//! Layout (PEFT `save_pretrained`): `ADAPTER_DIR/adapter_config.json` (`r`, `lora_alpha`,
//! `use_rslora`, `use_dora`, `rank_pattern`, `alpha_pattern`, `target_modules`, …) and
//! `ADAPTER_DIR/adapter_model.safetensors` with keys `base_model.model.<module>.lora_A.weight`,
//! `…lora_B.weight` (and `…lora_magnitude_vector` for DoRA); the base holds `<module>.weight`.

use crate::driver::Outcome;
use crate::ir::lower::{EntryOptions, StaticValue};
use crate::pipeline::{self, Failure};
use crate::run::CompiledEntry;
use ftl_front::codes::Code;
use ftl_front::resolve::{library_dir, LoadOptions};
use ftl_runtime::{safetensors_io, DType, Tensor};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

const PREFIX: &str = "base_model.model.";

fn bad(message: impl Into<String>) -> Failure {
    Failure::new(Code::BadInputs, message)
}

/// The standard library file of an adapter family.
fn stdlib_file(opts: &LoadOptions, name: &str) -> PathBuf {
    library_dir(opts)
        .join("adapters")
        .join(format!("{name}.ftl"))
}

/// Compiles the stdlib entry `entry` of `file` with static options.
fn compile_stdlib(
    opts: &LoadOptions,
    file: &str,
    entry: &str,
    statics: &[(&str, StaticValue)],
) -> Result<CompiledEntry, Failure> {
    let path = stdlib_file(opts, file);
    let analysis = ftl_front::analyze(std::slice::from_ref(&path), opts);
    if !analysis.diagnostics.is_empty() {
        return Err(Failure::new(
            Code::UnknownEntry,
            format!("the standard library's {} does not check", path.display()),
        ));
    }
    let id = pipeline::find_entry(&analysis, entry)?;
    let mut eopts = EntryOptions::default();
    for (k, v) in statics {
        eopts.statics.insert((*k).to_string(), v.clone());
    }
    let g = pipeline::compile(&analysis.hir, id, &eopts, false)?;
    CompiledEntry::new(&g)
}

/// PEFT's pattern lookup (`get_pattern_key`): the key whose name ends the module path at a `.`
/// boundary. Keys are matched literally (regular expressions are not supported).
fn pattern<'a>(patterns: &'a serde_json::Map<String, Value>, module: &str) -> Option<&'a Value> {
    patterns
        .iter()
        .find(|(k, _)| module == k.as_str() || module.ends_with(&format!(".{k}")))
        .map(|(_, v)| v)
}

fn read_all(path: &Path) -> Result<BTreeMap<String, Tensor>, Failure> {
    Ok(safetensors_io::read(path)
        .map_err(|e| bad(e.to_string()))?
        .into_iter()
        .collect())
}

/// `ftc merge BASE ADAPTER_DIR -o OUT`: the base weights with every adapted module merged.
pub fn merge(base: &Path, adapter_dir: &Path, out: &Path, opts: &LoadOptions) -> Outcome {
    merge_checked(base, adapter_dir, out, opts).into()
}

fn merge_checked(
    base: &Path,
    adapter_dir: &Path,
    out: &Path,
    opts: &LoadOptions,
) -> Result<String, Failure> {
    let config_path = adapter_dir.join("adapter_config.json");
    let text = std::fs::read_to_string(&config_path)
        .map_err(|e| bad(format!("{}: {e}", config_path.display())))?;
    let config: Value = serde_json::from_str(&text)
        .map_err(|e| bad(format!("{}: not JSON: {e}", config_path.display())))?;
    let peft_type = config["peft_type"].as_str().unwrap_or("LORA");
    if peft_type != "LORA" {
        return Err(bad(format!(
            "{}: peft_type {peft_type} is not supported (LORA only)",
            config_path.display()
        )));
    }
    if config["fan_in_fan_out"].as_bool() == Some(true) {
        return Err(bad(
            "fan_in_fan_out adapters (GPT-2 Conv1D weights) are not supported yet",
        ));
    }
    let empty = serde_json::Map::new();
    let rank_pattern = config["rank_pattern"].as_object().unwrap_or(&empty);
    let alpha_pattern = config["alpha_pattern"].as_object().unwrap_or(&empty);
    let alpha_default = config["lora_alpha"].as_f64().unwrap_or(8.0);
    let use_rslora = config["use_rslora"].as_bool().unwrap_or(false);
    let use_dora = config["use_dora"].as_bool().unwrap_or(false);
    let mut tensors = read_all(base)?;
    let adapter = read_all(&adapter_dir.join("adapter_model.safetensors"))?;
    let mut modules: Vec<String> = adapter
        .keys()
        .filter_map(|k| k.strip_prefix(PREFIX)?.strip_suffix(".lora_A.weight"))
        .map(str::to_string)
        .collect();
    modules.sort();
    if modules.is_empty() {
        return Err(bad(format!(
            "{}: no `{PREFIX}<module>.lora_A.weight` tensors",
            adapter_dir.display()
        )));
    }
    let statics = [("use_rslora", StaticValue::Bool(use_rslora))];
    let entry = if use_dora {
        compile_stdlib(opts, "dora", "dora.merge", &statics)?
    } else {
        compile_stdlib(opts, "lora", "lora.merge", &statics)?
    };
    let mut report = String::new();
    for m in &modules {
        let key = format!("{m}.weight");
        let weight = tensors
            .get(&key)
            .ok_or_else(|| bad(format!("the base has no `{key}` for adapted module `{m}`")))?
            .clone();
        let get = |suffix: &str| {
            adapter
                .get(&format!("{PREFIX}{m}.{suffix}"))
                .cloned()
                .ok_or_else(|| bad(format!("the adapter has no `{PREFIX}{m}.{suffix}`")))
        };
        let (a, b) = (get("lora_A.weight")?, get("lora_B.weight")?);
        let r = a.shape().first().copied().unwrap_or(0);
        if let Some(pr) = pattern(rank_pattern, m).and_then(Value::as_u64) {
            if pr as usize != r {
                return Err(bad(format!(
                    "module `{m}`: rank_pattern says r = {pr}, lora_A has {r} rows"
                )));
            }
        }
        let alpha = pattern(alpha_pattern, m)
            .and_then(Value::as_f64)
            .unwrap_or(alpha_default);
        let mut inputs = HashMap::new();
        inputs.insert("weight".to_string(), weight.cast(DType::F32));
        inputs.insert("lora_A".to_string(), a.cast(DType::F32));
        inputs.insert("lora_B".to_string(), b.cast(DType::F32));
        inputs.insert("lora_alpha".to_string(), Tensor::scalar(DType::F32, alpha));
        if use_dora {
            let mag =
                get("lora_magnitude_vector").or_else(|_| get("lora_magnitude_vector.weight"))?;
            inputs.insert("lora_magnitude_vector".to_string(), mag.cast(DType::F32));
        }
        let outs = entry
            .run(&inputs)
            .map_err(|f| bad(format!("module `{m}`: {}", f.messages().join("; "))))?;
        let merged = outs
            .into_iter()
            .find(|(n, _)| n == "weight")
            .map(|(_, t)| t)
            .ok_or_else(|| {
                Failure::new(Code::RunFailed, "internal error: merge wrote no weight")
            })?;
        // PEFT computes the delta in f32 and casts back to the base dtype.
        tensors.insert(key, merged.cast(weight.dtype()));
        report.push_str(&format!("merged {m} (r = {r}, lora_alpha = {alpha})\n"));
    }
    let list: Vec<(String, Tensor)> = tensors.into_iter().collect();
    safetensors_io::write_atomic(out, &list)?;
    report.push_str(&format!(
        "wrote {} tensors to {}\n",
        list.len(),
        out.display()
    ));
    Ok(report)
}

/// Options of `ftc init`.
#[derive(Debug, Clone)]
pub struct InitArgs {
    /// The base weights.
    pub base: PathBuf,
    /// Module name suffixes to adapt (`q_proj`, `v_proj`).
    pub targets: Vec<String>,
    /// Rank.
    pub r: u32,
    /// `lora_alpha`.
    pub lora_alpha: f64,
    /// Seed of the kaiming-uniform draws.
    pub seed: u64,
    /// The adapter directory to write.
    pub out: PathBuf,
}

/// `ftc init --adapter lora`: a fresh PEFT LoRA adapter (PEFT's default init) for the targets.
pub fn init(args: &InitArgs, opts: &LoadOptions) -> Outcome {
    init_checked(args, opts).into()
}

fn init_checked(args: &InitArgs, opts: &LoadOptions) -> Result<String, Failure> {
    if args.r == 0 {
        return Err(Failure::new(Code::BadSetting, "`-r` must be positive"));
    }
    let base = read_all(&args.base)?;
    let entry = compile_stdlib(opts, "lora", "lora.init", &[])?;
    let mut adapter = Vec::new();
    let mut adapted = Vec::new();
    for (k, (key, weight)) in base.iter().enumerate() {
        let Some(module) = key.strip_suffix(".weight") else {
            continue;
        };
        let last = module.rsplit('.').next().unwrap_or(module);
        if weight.shape().len() != 2 || !args.targets.iter().any(|t| t == last || t == module) {
            continue;
        }
        let mut inputs = HashMap::new();
        inputs.insert("weight".to_string(), weight.cast(DType::F32));
        inputs.insert(
            "r".to_string(),
            Tensor::scalar(DType::I32, f64::from(args.r)),
        );
        inputs.insert(
            "seed".to_string(),
            Tensor::scalar(DType::I64, args.seed as f64),
        );
        inputs.insert("offset".to_string(), Tensor::scalar(DType::I64, k as f64));
        let outs = entry
            .run(&inputs)
            .map_err(|f| bad(format!("module `{module}`: {}", f.messages().join("; "))))?;
        for (name, t) in outs {
            adapter.push((
                format!("{PREFIX}{module}.{name}.weight"),
                t.cast(weight.dtype()),
            ));
        }
        adapted.push(module.to_string());
    }
    if adapted.is_empty() {
        return Err(bad(format!(
            "no 2-D `<module>.weight` in {} ends with one of: {}",
            args.base.display(),
            args.targets.join(", ")
        )));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| bad(format!("{}: {e}", args.out.display())))?;
    let config = serde_json::json!({
        "peft_type": "LORA",
        "r": args.r,
        "lora_alpha": args.lora_alpha,
        "target_modules": args.targets,
        "lora_dropout": 0.0,
        "bias": "none",
        "use_rslora": false,
        "use_dora": false,
        "fan_in_fan_out": false,
        "init_lora_weights": true,
        "rank_pattern": {},
        "alpha_pattern": {},
        "task_type": Value::Null,
        "base_model_name_or_path": Value::Null,
    });
    let text = serde_json::to_string_pretty(&config)
        .map_err(|e| Failure::new(Code::RunFailed, e.to_string()))?;
    // The weights first and the config last, each atomically: a failed write never leaves a
    // new config beside old weights.
    adapter.sort_by(|a, b| a.0.cmp(&b.0));
    safetensors_io::write_atomic(&args.out.join("adapter_model.safetensors"), &adapter)?;
    ftl_runtime::output::write_bytes(&args.out.join("adapter_config.json"), text.as_bytes())?;
    Ok(format!(
        "wrote a LoRA adapter (r = {}, lora_alpha = {}) for {} modules to {}\n",
        args.r,
        args.lora_alpha,
        adapted.len(),
        args.out.display()
    ))
}
