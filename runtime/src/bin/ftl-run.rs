//! `ftl-run`: runs a compiled `.ftlpack` on a safetensors file, with no compiler in the
//! process. `ftl-run NAME.ftlpack --inputs IN.safetensors [--out OUT.safetensors] [--set k=v]`.

use ftl_runtime::artifact::Artifact;
use ftl_runtime::{safetensors_io, DType, Tensor};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: ftl-run NAME.ftlpack --inputs IN.safetensors [--out OUT.safetensors] [--set name=value]...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut pack = None;
    let (mut inputs, mut out, mut sets) = (None, None, Vec::new());
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned();
        match (args[i].as_str(), value) {
            ("--inputs", Some(v)) => inputs = Some(PathBuf::from(v)),
            ("--out", Some(v)) => out = Some(PathBuf::from(v)),
            ("--set", Some(v)) => sets.push(v),
            (a, _) if !a.starts_with("--") && pack.is_none() => {
                pack = Some(PathBuf::from(a));
                i += 1;
                continue;
            }
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::FAILURE;
            }
        }
        i += 2;
    }
    let Some(pack) = pack else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    match run(&pack, inputs, out, &sets) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    pack: &std::path::Path,
    inputs: Option<PathBuf>,
    out: Option<PathBuf>,
    sets: &[String],
) -> Result<String, String> {
    let artifact = Artifact::load(pack).map_err(|e| e.to_string())?;
    let exec = artifact.executor();
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    if let Some(p) = inputs {
        tensors.extend(safetensors_io::read(&p).map_err(|e| e.to_string())?);
    }
    for s in sets {
        let (k, v) = s
            .split_once('=')
            .ok_or(format!("`--set {s}` must be name=value"))?;
        let arg = exec
            .manifest()
            .args
            .iter()
            .find(|a| a.name == k && a.dims.is_empty())
            .ok_or(format!("`--set {s}`: no scalar argument `{k}`"))?;
        let x: f64 = match v {
            "true" => 1.0,
            "false" => 0.0,
            _ => v
                .parse()
                .map_err(|_| format!("`--set {s}`: not a number"))?,
        };
        tensors.insert(k.to_string(), Tensor::scalar(arg.dtype, x));
    }
    let (outputs, timings) = exec.run_timed(&tensors).map_err(|e| e.to_string())?;
    let mut text = format!(
        "{} ({}), ftl-run\n",
        exec.manifest().entry,
        exec.manifest().kind
    );
    for (name, t) in &outputs {
        if t.shape().is_empty() && t.dtype() != DType::Bool {
            text.push_str(&format!("{name}  {:.9}\n", t.to_f64()[0]));
        } else {
            text.push_str(&format!(
                "{name}  {}\n",
                ftl_runtime::type_text(t.dtype(), t.shape())
            ));
        }
    }
    for (k, ms) in timings {
        text.push_str(&format!("  {k:<16} {ms:.2} ms\n"));
    }
    if let Some(o) = out {
        safetensors_io::write_atomic(&o, &outputs).map_err(|e| e.to_string())?;
        text.push_str(&format!(
            "wrote {} tensors to {}\n",
            outputs.len(),
            o.display()
        ));
    }
    Ok(text)
}
