//! File tests for the passes, cranelift-style: each `tests/filetests/*.ftlir` holds a graph in
//! the text form of `--emit ir`, a `; pass:` line naming the passes to run (`simplify`,
//! `autodiff`, `fuse`; in order, the graph verified after each), and the expected output as
//! `; check:` lines (substrings that must appear on successive lines of the output, in order)
//! and `; not:` lines (substrings that must appear nowhere). No LLVM is linked.

use ftl_ir::parse::parse_graph;
use ftl_ir::{autodiff, print, simplify, verify};
use ftl_plan::fuse;
use std::path::{Path, PathBuf};

fn filetests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/filetests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/filetests exists")
        .map(|e| e.expect("a readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ftlir"))
        .collect();
    files.sort();
    files
}

/// The directive lines `; NAME: value` of a file.
fn directives<'t>(text: &'t str, name: &str) -> Vec<&'t str> {
    let prefix = format!("; {name}:");
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .map(str::trim)
        .collect()
}

/// Runs one file; the error says what failed and shows the output.
fn run(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut g = parse_graph(&text).map_err(|e| format!("parse: {e}"))?;
    let passes = directives(&text, "pass");
    let [passes] = passes.as_slice() else {
        return Err("one `; pass:` line expected".into());
    };
    let mut output = None;
    for pass in passes.split(',').map(str::trim) {
        if output.is_some() {
            return Err("`fuse` must be the last pass".into());
        }
        match pass {
            "simplify" => g = simplify::simplify(&g),
            "simplify_after_gradients" => g = simplify::simplify_after_gradients(&g),
            "autodiff" => g = autodiff::differentiate(&g),
            "fuse" => output = Some(fuse::print_plan(&fuse::fuse(&g))),
            other => return Err(format!("unknown pass `{other}`")),
        }
        verify::verify(&g, "filetest").map_err(|e| format!("after {pass}: {e}"))?;
    }
    let output = output.unwrap_or_else(|| print::print_graph(&g));
    let checks = directives(&text, "check");
    if checks.is_empty() {
        return Err(format!("no `; check:` lines\n{output}"));
    }
    let lines: Vec<&str> = output.lines().collect();
    let mut at = 0;
    for check in checks {
        match lines[at..].iter().position(|l| l.contains(check)) {
            Some(k) => at += k + 1,
            None => return Err(format!("`; check: {check}` not found\n{output}")),
        }
    }
    for not in directives(&text, "not") {
        if output.contains(not) {
            return Err(format!("`; not: {not}` found\n{output}"));
        }
    }
    Ok(())
}

#[test]
fn every_filetest_passes() {
    let files = filetests();
    assert!(!files.is_empty(), "no file tests found");
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| run(f).err().map(|e| format!("{}: {e}", f.display())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A check that does not hold fails its file (the runner can fail).
#[test]
fn a_wrong_check_fails() {
    let dir = std::env::temp_dir().join(format!("ftl-filetest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("wrong.ftlir");
    std::fs::write(
        &file,
        "; pass: simplify\ngraph t (step)\n  dim N = from inputs\n  in x: f32[N]\n  \
         %0: f32[N] = input x\n  out y = %0\n; check: exp\n",
    )
    .unwrap();
    let err = run(&file).unwrap_err();
    assert!(err.contains("`; check: exp` not found"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
