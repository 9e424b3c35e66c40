//! `ftl-run`: runs a compiled `.ftlpack` (CPU code, or PTX on CUDA device 0) on a safetensors
//! file, with no compiler in the process. `ftl-run NAME.ftlpack [--inputs IN.safetensors]
//! [--out OUT.safetensors] [--set name=value]... [--allow-extra-inputs] [--reps N]`: with
//! `--reps`, the run is repeated N times after one warm-up and timed (`median_ms=… min_ms=…
//! io_gb_s=…`, and the device's peak bandwidth for a CUDA artifact). Every failure is one
//! `error: …` line per problem on stderr and exit status 1.

use ftl_runtime::artifact::Artifact;
use ftl_runtime::{bind, output, safetensors_io, DType, Tensor};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: ftl-run NAME.ftlpack [--inputs IN.safetensors] [--out OUT.safetensors] \
[--set name=value]... [--allow-extra-inputs] [--reps N]";

/// The command line, each option at most once (`--set` once per name).
#[derive(Debug, Default)]
struct Args {
    pack: Option<PathBuf>,
    inputs: Option<PathBuf>,
    out: Option<PathBuf>,
    sets: Vec<(String, String)>,
    allow_extra_inputs: bool,
    /// Timed repetitions after a warm-up run.
    reps: Option<usize>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut parsed = Args::default();
    let mut it = args.iter();
    let once = |slot: &mut Option<PathBuf>, name: &str, value: Option<&String>| {
        let value = value.ok_or(format!("`{name}` needs a value"))?;
        if slot.replace(PathBuf::from(value)).is_some() {
            return Err(format!("`{name}` is given twice"));
        }
        Ok(())
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--inputs" => once(&mut parsed.inputs, a, it.next())?,
            "--out" => once(&mut parsed.out, a, it.next())?,
            "--set" => {
                let s = it.next().ok_or("`--set` needs name=value")?;
                let (k, v) = s
                    .split_once('=')
                    .ok_or(format!("`--set {s}` must be name=value"))?;
                if parsed.sets.iter().any(|(n, _)| n == k) {
                    return Err(format!("`--set {k}=…` is given twice"));
                }
                parsed.sets.push((k.to_string(), v.to_string()));
            }
            "--allow-extra-inputs" => parsed.allow_extra_inputs = true,
            "--reps" => {
                let n = it
                    .next()
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|n| (1..=100_000).contains(n))
                    .ok_or("`--reps` needs a count from 1 to 100000")?;
                if parsed.reps.replace(n).is_some() {
                    return Err("`--reps` is given twice".into());
                }
            }
            _ if a.starts_with('-') => return Err(format!("unknown option `{a}`")),
            _ if parsed.pack.is_none() => parsed.pack = Some(PathBuf::from(a)),
            _ => return Err(format!("unexpected argument `{a}`")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let result = parse_args(&args).and_then(|a| match a.pack.is_some() {
        true => Ok(a),
        false => Err("no artifact given".to_string()),
    });
    let args = match result {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    match run(&args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<String, Vec<String>> {
    let one = |e: String| vec![e];
    let pack = args.pack.as_deref().unwrap_or(std::path::Path::new("."));
    let artifact = Artifact::load(pack).map_err(|e| e.messages)?;
    let exec = artifact.executor();
    let specs = exec.arg_specs();
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    if let Some(p) = &args.inputs {
        tensors.extend(safetensors_io::read(p).map_err(|e| one(e.to_string()))?);
    }
    for (k, v) in &args.sets {
        let arg = specs
            .iter()
            .find(|a| a.name == *k && a.dims.is_empty())
            .ok_or_else(|| one(format!("`--set {k}={v}`: no scalar argument `{k}`")))?;
        let x = arg.dtype.parse_value(v).ok_or_else(|| {
            one(format!(
                "`--set {k}={v}`: not a value of its dtype {}",
                arg.dtype
            ))
        })?;
        tensors.insert(k.clone(), Tensor::scalar(arg.dtype, x));
    }
    let mut errors = Vec::new();
    if !args.allow_extra_inputs {
        errors.extend(bind::unknown_inputs(
            specs,
            tensors.keys().map(String::as_str),
        ));
    }
    errors.extend(bind::coerce_scalars(specs, &mut tensors));
    if !errors.is_empty() {
        return Err(errors.into_iter().map(|e| e.message).collect());
    }
    let (mut outputs, mut timings) = exec.run_timed(&tensors).map_err(|e| e.messages)?;
    let (mut times, mut step_times) = (Vec::new(), Vec::new());
    for _ in 0..args.reps.unwrap_or(0) {
        for (_, t) in std::mem::take(&mut outputs) {
            exec.recycle(t);
        }
        let start = std::time::Instant::now();
        (outputs, timings) = exec.run_timed(&tensors).map_err(|e| e.messages)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        step_times.push(ftl_runtime::exec::steps_ms(&timings));
    }
    let target = artifact.target();
    let mut text = format!(
        "{} ({}), ftl-run, {} {}\n",
        exec.manifest().entry,
        exec.manifest().kind,
        if target.is_cuda() { "CUDA" } else { "CPU" },
        target.cpu
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
    if !times.is_empty() {
        times.sort_by(f64::total_cmp);
        step_times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let steps = step_times[step_times.len() / 2];
        // The bytes every run must move at least (its inputs and outputs), per second of its
        // steps (on a device: without the copies between host and device).
        let bytes: usize = tensors.values().map(|t| t.bytes().len()).sum::<usize>()
            + outputs.iter().map(|(_, t)| t.bytes().len()).sum::<usize>();
        let gb_s = bytes as f64 / (steps * 1e-3) / 1e9;
        text.push_str(&format!(
            "reps={} median_ms={median:.3} min_ms={:.3} steps_median_ms={steps:.3} io_gb_s={gb_s:.1}",
            times.len(),
            times[0]
        ));
        if let Some(d) = exec.device() {
            text.push_str(&ftl_runtime::device::bandwidth_fields(d, gb_s));
        }
        text.push('\n');
    }
    if let Some(o) = &args.out {
        safetensors_io::write_atomic(o, &outputs)
            .map_err(|e: output::OutputError| one(e.to_string()))?;
        text.push_str(&format!(
            "wrote {} tensors to {}\n",
            outputs.len(),
            o.display()
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_are_given_at_most_once() {
        let a = parse(&[
            "p.ftlpack",
            "--set",
            "beta=0.1",
            "--inputs",
            "in",
            "--allow-extra-inputs",
        ])
        .unwrap();
        assert_eq!(a.pack, Some(PathBuf::from("p.ftlpack")));
        assert_eq!(a.sets, [("beta".to_string(), "0.1".to_string())]);
        assert!(a.allow_extra_inputs);
        assert!(parse(&["p", "--inputs", "a", "--inputs", "b"])
            .unwrap_err()
            .contains("twice"));
        assert!(parse(&["p", "--out", "a", "--out", "b"])
            .unwrap_err()
            .contains("twice"));
        assert!(parse(&["p", "--set", "beta=1", "--set", "beta=2"])
            .unwrap_err()
            .contains("twice"));
        assert!(parse(&["p", "q"])
            .unwrap_err()
            .contains("unexpected argument"));
        assert!(parse(&["p", "--sets", "x"])
            .unwrap_err()
            .contains("unknown option"));
        assert!(parse(&["p", "--inputs"])
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse(&["p", "--set", "beta"])
            .unwrap_err()
            .contains("name=value"));
        assert_eq!(parse(&["p", "--reps", "5"]).unwrap().reps, Some(5));
        for bad in [
            &["p", "--reps", "0"][..],
            &["p", "--reps", "x"],
            &["p", "--reps"],
        ] {
            assert!(parse(bad).unwrap_err().contains("count"), "{bad:?}");
        }
        assert!(parse(&["p", "--reps", "2", "--reps", "3"])
            .unwrap_err()
            .contains("twice"));
    }
}
