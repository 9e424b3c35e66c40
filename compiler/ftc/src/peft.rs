//! PEFT adapter files: `ftc merge` folds a PEFT LoRA/DoRA adapter directory into base weights,
//! `ftc init` writes a fresh LoRA adapter in PEFT's layout. The math is the standard library's
//! own `lora.merge`, `dora.merge` and `lora.init`, compiled and run like any entry.
//!
//! Layout (PEFT `save_pretrained`): `ADAPTER_DIR/adapter_config.json` (`r`, `lora_alpha`,
//! `use_rslora`, `use_dora`, `rank_pattern`, `alpha_pattern`, `target_modules`, …) and
//! `ADAPTER_DIR/adapter_model.safetensors` with keys `base_model.model.<module>.lora_A.weight`,
//! `…lora_B.weight` (and `…lora_magnitude_vector` for DoRA); the base holds `<module>.weight`.

use crate::driver::Outcome;
use crate::run::CompiledEntry;
use ftl_front::codes::Code;
use ftl_front::resolve::{library_dir, LoadOptions};
use ftl_ir::lower::{EntryOptions, StaticValue};
use ftl_ir::pipeline::{self, Failure};
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

/// A `rank_pattern` or `alpha_pattern`: PEFT's keys are Python regular expressions matched
/// by `get_pattern_key` as `re.match(rf"(.*\.)?({key})$", module)`, the first key (in the
/// file's order) that matches wins.
struct Patterns(Vec<(regex::Regex, f64)>);

impl Patterns {
    fn parse(config: &serde_json::Map<String, Value>, field: &str) -> Result<Patterns, Failure> {
        let mut out = Vec::new();
        let entries = match config.get(field) {
            None | Some(Value::Null) => return Ok(Patterns(out)),
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(bad(format!(
                    "adapter_config.json: `{field}` must be an object"
                )))
            }
        };
        for (key, v) in entries {
            let re = regex::Regex::new(&format!("^(?:.*\\.)?(?:{key})$")).map_err(|e| {
                bad(format!("adapter_config.json: `{field}` key `{key}` is not a regular expression FTL can match: {e}"))
            })?;
            let value = v.as_f64().ok_or_else(|| {
                bad(format!(
                    "adapter_config.json: `{field}`.`{key}` must be a number, not {v}"
                ))
            })?;
            out.push((re, value));
        }
        Ok(Patterns(out))
    }

    fn get(&self, module: &str) -> Option<f64> {
        self.0
            .iter()
            .find(|(re, _)| re.is_match(module))
            .map(|(_, v)| *v)
    }
}

/// The merge settings of a PEFT LoRA `adapter_config.json`, type-checked as PEFT's
/// `LoraConfig` would use them: a value of the wrong type, `r <= 0`, or a feature `ftc merge`
/// does not implement is refused by name instead of falling back to a default.
struct MergeConfig {
    r: f64,
    lora_alpha: f64,
    use_rslora: bool,
    use_dora: bool,
    rank_pattern: Patterns,
    alpha_pattern: Patterns,
}

fn merge_config(text: &str, path: &Path) -> Result<MergeConfig, Failure> {
    let at = |m: String| bad(format!("{}: {m}", path.display()));
    let value: Value = serde_json::from_str(text).map_err(|e| at(format!("not JSON: {e}")))?;
    let Value::Object(config) = value else {
        return Err(at("not a JSON object".into()));
    };
    let number = |field: &str, default: f64| match config.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_f64()
            .ok_or_else(|| at(format!("`{field}` must be a number, not {v}"))),
    };
    let flag = |field: &str| match config.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| at(format!("`{field}` must be true or false, not {v}"))),
    };
    let peft_type = match config.get("peft_type") {
        None | Some(Value::Null) => "LORA",
        Some(v) => v
            .as_str()
            .ok_or_else(|| at(format!("`peft_type` must be a string, not {v}")))?,
    };
    if peft_type != "LORA" {
        return Err(at(format!(
            "peft_type {peft_type} is not supported (LORA only)"
        )));
    }
    // PEFT refuses a non-positive rank when the config is built.
    let r = number("r", 8.0)?;
    if r.fract() != 0.0 || r <= 0.0 {
        return Err(at(format!(
            "`r` must be a positive integer, as PEFT requires (it is {r})"
        )));
    }
    let unsupported = |what: &str| at(format!("{what} is not supported by `ftc merge` yet"));
    if flag("fan_in_fan_out")? {
        return Err(unsupported("fan_in_fan_out (GPT-2 Conv1D weights)"));
    }
    if flag("lora_bias")? {
        return Err(unsupported("lora_bias (a trained bias on lora_B)"));
    }
    match config.get("modules_to_save") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(v) => return Err(unsupported(&format!("modules_to_save ({v})"))),
    }
    let rank_pattern = Patterns::parse(&config, "rank_pattern")?;
    for (_, pr) in &rank_pattern.0 {
        if pr.fract() != 0.0 || *pr <= 0.0 {
            return Err(at(format!(
                "`rank_pattern` ranks must be positive integers (found {pr})"
            )));
        }
    }
    Ok(MergeConfig {
        r,
        lora_alpha: number("lora_alpha", 8.0)?,
        use_rslora: flag("use_rslora")?,
        use_dora: flag("use_dora")?,
        alpha_pattern: Patterns::parse(&config, "alpha_pattern")?,
        rank_pattern,
    })
}

/// The adapter tensor names `ftc merge` understands for `module`: anything else (embedding
/// LoRA, a lora_B bias, a saved module copy) is refused by name rather than ignored.
fn adapter_suffix(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(PREFIX)?;
    [
        ".lora_A.weight",
        ".lora_B.weight",
        ".lora_magnitude_vector",
        ".lora_magnitude_vector.weight",
    ]
    .into_iter()
    .find_map(|s| rest.strip_suffix(s).map(|m| (m, s)))
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
    let config = merge_config(&text, &config_path)?;
    let use_dora = config.use_dora;
    let adapter = read_all(&adapter_dir.join("adapter_model.safetensors"))?;
    if let Some(other) = adapter.keys().find(|k| adapter_suffix(k).is_none()) {
        return Err(bad(format!(
            "{}: tensor `{other}` is not a LoRA/DoRA weight `ftc merge` can fold in \
             (embedding LoRA, lora_bias and modules_to_save are not supported yet)",
            adapter_dir.display()
        )));
    }
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
    // Only the adapted weights are decoded; every other base tensor is copied as it is.
    let wanted: Vec<String> = modules.iter().map(|m| format!("{m}.weight")).collect();
    let tensors: BTreeMap<String, Tensor> =
        safetensors_io::read_filtered(base, |n| wanted.iter().any(|w| w == n))
            .map_err(|e| bad(e.to_string()))?
            .into_iter()
            .collect();
    let mut merged_weights = BTreeMap::new();
    let statics = [("use_rslora", StaticValue::Bool(config.use_rslora))];
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
        if !weight.dtype().is_float() {
            return Err(bad(format!(
                "`{key}` is {}: only float weights can be merged",
                weight.dtype()
            )));
        }
        let get = |suffix: &str| {
            adapter
                .get(&format!("{PREFIX}{m}.{suffix}"))
                .cloned()
                .ok_or_else(|| bad(format!("the adapter has no `{PREFIX}{m}.{suffix}`")))
        };
        let (a, b) = (get("lora_A.weight")?, get("lora_B.weight")?);
        let r = a.shape().first().copied().unwrap_or(0);
        // PEFT builds each layer with the pattern's rank (else `r`) and loads the weights into
        // it, so a file whose lora_A has another rank does not load.
        let want_r = config.rank_pattern.get(m).unwrap_or(config.r);
        if want_r != r as f64 {
            return Err(bad(format!(
                "module `{m}`: the config gives r = {want_r}, lora_A has {r} rows"
            )));
        }
        let alpha = config.alpha_pattern.get(m).unwrap_or(config.lora_alpha);
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
        merged_weights.insert(key, merged.cast(weight.dtype()));
        report.push_str(&format!("merged {m} (r = {r}, lora_alpha = {alpha})\n"));
    }
    safetensors_io::rewrite(base, &merged_weights, out).map_err(|e| match e {
        safetensors_io::RewriteError::Read(e) => bad(e.to_string()),
        safetensors_io::RewriteError::Write(e) => Failure::from(e),
    })?;
    report.push_str(&format!(
        "wrote {} with {} merged weights (every other tensor and the metadata as in the base)\n",
        out.display(),
        merged_weights.len()
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
