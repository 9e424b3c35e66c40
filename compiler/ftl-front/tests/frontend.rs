//! Front-end integration tests: one wrong program per error code (rendered diagnostics pinned by
//! insta), stage snapshots of every example and stdlib file, the pretty printer's round trip,
//! the docs' lists of builtins and codes, and thousands of mutated inputs that must never panic.
//! This binary links no LLVM (the `ftc` command line is tested in `ftc`'s core tests).
//!
//! Update snapshots with `cargo insta review` (or `INSTA_UPDATE=always cargo test`).

use ftl_front::analysis::{self, Analysis, MessageFormat};
use ftl_front::codes::Code;
use ftl_front::resolve::LoadOptions;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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

/// `.ftl` files under `dir`, recursively, sorted.
fn ftl_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "ftl") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Diagnostics as text with the machine-specific repository path removed.
fn rendered(analysis: &Analysis, format: MessageFormat) -> String {
    let root = repo().display().to_string();
    analysis
        .render(format)
        .replace(&format!("{root}/"), "")
        .replace(&root, "")
}

/// The corpus every example, stdlib module and test case is drawn from.
fn corpus() -> Vec<PathBuf> {
    let r = repo();
    let mut files = ftl_files(&r.join("examples"));
    files.extend(ftl_files(&r.join("stdlib")));
    files.extend(ftl_files(&r.join("tests").join("ui")));
    files
}

#[test]
fn every_error_case_reports_its_code_at_a_location() {
    let ui = repo().join("tests").join("ui");
    let mut covered = BTreeSet::new();
    let cases: Vec<PathBuf> = ftl_files(&ui)
        .into_iter()
        .filter(|p| p.parent() == Some(ui.as_path()))
        .collect();
    assert!(cases.len() >= 40, "only {} error cases", cases.len());
    for case in cases {
        let stem = case.file_stem().unwrap().to_string_lossy().into_owned();
        let analysis = ftl_front::analyze(std::slice::from_ref(&case), &options());
        assert!(
            !analysis.diagnostics.is_empty(),
            "{stem}: no error reported"
        );
        for d in &analysis.diagnostics {
            assert!(
                d.primary().is_some() || d.code == Code::CannotRead,
                "{stem}: {} has no location",
                d.code.id()
            );
            covered.insert(d.code.id());
        }
        if let Some(expected) = stem.strip_prefix('e').and_then(|s| s.get(..4)) {
            let id = format!("E{expected}");
            assert!(
                analysis.diagnostics.iter().any(|d| d.code.id() == id),
                "{stem}: expected {id}, got {:?}",
                analysis
                    .diagnostics
                    .iter()
                    .map(|d| d.code.id())
                    .collect::<Vec<_>>()
            );
        }
        insta::assert_snapshot!(
            format!("ui__{stem}"),
            rendered(&analysis, MessageFormat::Human)
        );
    }
    assert!(
        covered.len() >= 40,
        "only {} distinct codes covered: {covered:?}",
        covered.len()
    );
}

#[test]
fn examples_and_stdlib_check_clean_and_their_stages_are_pinned() {
    let r = repo();
    let mut files = ftl_files(&r.join("examples"));
    files.extend(ftl_files(&r.join("stdlib")));
    assert!(files.len() >= 4);
    for file in files {
        let name = file
            .strip_prefix(&r)
            .unwrap()
            .display()
            .to_string()
            .replace(['/', '.'], "_");
        let analysis = ftl_front::analyze(std::slice::from_ref(&file), &options());
        assert!(
            analysis.diagnostics.is_empty(),
            "{name}:\n{}",
            rendered(&analysis, MessageFormat::Human)
        );
        insta::assert_snapshot!(format!("ast__{name}"), analysis::emit_ast(&analysis));
        insta::assert_snapshot!(format!("hir__{name}"), analysis::emit_hir(&analysis));
    }
}

/// Debug text of a tree with byte spans removed (`12..20`), so trees compare by structure.
fn without_spans(tree: &ftl_syntax::ast::File) -> String {
    let text = format!("{tree:#?}");
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if text[i..].starts_with("..")
                && text[i + 2..].starts_with(|c: char| c.is_ascii_digit())
            {
                i += 2;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                out.push_str("<span>");
                continue;
            }
            out.push_str(&text[start..i]);
            continue;
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

/// E0081 is decided on the HIR: a record field spelled like the adapter's data input does not
/// make a `let` data-dependent (a word scan of the printed source said it did).
#[test]
fn merge_may_use_a_let_whose_field_is_named_like_the_data_input() {
    let dir = std::env::temp_dir().join(format!("ftl-front-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lookalike.ftl");
    std::fs::write(
        &file,
        "fn halves(w: f32[O, I]) -> (x: f32[O, I], rest: f32[O, I]) {\n    (x: w * 0.5, rest: w * 0.5)\n}\n\n\
         adapter a(x: f32[N, I], weight: const f32[O, I], lora_B: param f32[O, I]) -> f32[N, O] {\n    \
         let half = halves(lora_B).x;\n    x @ (weight + half)\n}\n\nmerge a {\n    weight = weight + half;\n}\n",
    )
    .unwrap();
    let analysis = ftl_front::analyze(std::slice::from_ref(&file), &options());
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        analysis.diagnostics.is_empty(),
        "{}",
        rendered(&analysis, MessageFormat::Short)
    );
}

/// docs/ARCHITECTURE.md has one `### `folder/` — `crate`` section per workspace member, and
/// no other.
#[test]
fn architecture_doc_lists_exactly_the_workspace_crates() {
    let r = repo();
    let workspace = std::fs::read_to_string(r.join("Cargo.toml")).unwrap();
    let members = workspace
        .split("members = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("a members list");
    let mut expected = BTreeSet::new();
    for member in members.split(',').map(|m| m.trim().trim_matches('"')) {
        if member.is_empty() {
            continue;
        }
        let manifest = std::fs::read_to_string(r.join(member).join("Cargo.toml")).unwrap();
        let name = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .expect("a package name")
            .trim_matches('"')
            .to_string();
        expected.insert(format!("### `{member}/` — `{name}`"));
    }
    let doc = std::fs::read_to_string(r.join("docs").join("ARCHITECTURE.md")).unwrap();
    let listed: BTreeSet<String> = doc
        .lines()
        .filter(|l| l.starts_with("### `"))
        .map(|l| l.split(" and the ").next().unwrap_or(l).to_string())
        .collect();
    assert_eq!(listed, expected);
}

#[test]
fn pretty_printer_output_parses_back_to_the_same_tree() {
    let mut checked = 0;
    for file in corpus() {
        let Ok(source) = std::fs::read_to_string(&file) else {
            continue;
        };
        let (tree, errors) = ftl_syntax::parse_file(&source);
        if !errors.is_empty() {
            continue;
        }
        let printed = ftl_syntax::pretty::print_file(&tree);
        let (again, errors) = ftl_syntax::parse_file(&printed);
        assert!(
            errors.is_empty(),
            "{}: printed form does not parse: {errors:?}\n{printed}",
            file.display()
        );
        assert_eq!(
            without_spans(&tree),
            without_spans(&again),
            "{}: tree changed",
            file.display()
        );
        assert_eq!(
            printed,
            ftl_syntax::pretty::print_file(&again),
            "{}: printing is not idempotent",
            file.display()
        );
        checked += 1;
    }
    assert!(checked >= 60, "only {checked} files round-tripped");
}

#[test]
fn language_reference_lists_every_builtin_and_error_code() {
    let doc = std::fs::read_to_string(repo().join("docs").join("language.md")).unwrap();
    for b in ftl_front::builtins::BUILTINS {
        assert!(
            doc.contains(&format!("| `{}` |", b.name)),
            "docs/language.md lacks builtin `{}`",
            b.name
        );
    }
    for c in Code::ALL {
        assert!(
            doc.contains(&format!("| {} | {} |", c.id(), c.title())),
            "docs/language.md lacks {}",
            c.id()
        );
    }
}

/// xorshift64*: deterministic mutations without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8], donors: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len().max(1);
        let at = rng.below(len);
        let span = rng.below(40).min(v.len().saturating_sub(at));
        match rng.below(7) {
            0 => {
                v.drain(at..at + span);
            }
            1 => {
                let copy: Vec<u8> = v[at..at + span].to_vec();
                let to = rng.below(v.len() + 1);
                v.splice(to..to, copy);
            }
            2 => {
                let junk: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                v.splice(at..at, junk);
            }
            3 => v.truncate(at),
            4 => {
                let tokens = [
                    &b"("[..],
                    b")",
                    b"{",
                    b"}",
                    b"[",
                    b"]",
                    b",",
                    b";",
                    b"..",
                    b"->",
                    b"?",
                    b"@",
                    b"let ",
                    b"fn ",
                    b"B",
                    b"'",
                ];
                let t = tokens[rng.below(tokens.len())];
                v.splice(at..at, t.iter().copied());
            }
            5 => {
                let donor = &donors[rng.below(donors.len())];
                let from = rng.below(donor.len());
                let n = rng.below(200).min(donor.len() - from);
                v.splice(at..at, donor[from..from + n].iter().copied());
            }
            _ => {
                if at < v.len() {
                    v[at] = rng.next() as u8;
                }
            }
        }
    }
    v
}

#[test]
fn thousands_of_mutated_and_pathological_inputs_never_panic() {
    let donors: Vec<Vec<u8>> = corpus()
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    let dir = std::env::temp_dir().join(format!("ftl-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..3000 {
        let base = &donors[i % donors.len()];
        inputs.push(mutate(&mut rng, base, &donors));
    }
    let deep = |open: &str, mid: &str, close: &str, n: usize| {
        format!(
            "fn f(x: f32) -> f32 {{ {}{mid}{} }}",
            open.repeat(n),
            close.repeat(n)
        )
        .into_bytes()
    };
    inputs.push(deep("(", "x", ")", 100_000));
    inputs.push(deep("-", "x", "", 100_000));
    inputs.push(deep("[", "1.0", "]", 50_000));
    inputs.push(deep("if true { ", "x", " } else { x }", 2_000));
    inputs.push(format!("fn f(x: f32) -> f32 {{ x{} }}", " + x".repeat(100_000)).into_bytes());
    inputs.push(vec![0xff; 4096]);
    inputs.push((0..=255u8).cycle().take(10_000).collect());
    inputs.push(b"fn f(x: f32) -> f32 { 123456789012345678901234567890 * 1e400 }".to_vec());
    let count = inputs.len();
    let worker = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            for (i, input) in inputs.iter().enumerate() {
                let path = dir.join(format!("case{i}.ftl"));
                std::fs::write(&path, input).unwrap();
                let result = std::panic::catch_unwind(|| {
                    ftl_front::analyze(std::slice::from_ref(&path), &options())
                });
                if result.is_err() {
                    let kept = std::env::temp_dir().join("ftl-fuzz-panic.ftl");
                    std::fs::write(&kept, input).unwrap();
                    panic!(
                        "input {i} made the front end panic; saved to {}",
                        kept.display()
                    );
                }
                let _ = std::fs::remove_file(&path);
                if let Ok(text) = std::str::from_utf8(input) {
                    if let Err(why) = formats_faithfully(text) {
                        let kept = std::env::temp_dir().join("ftl-fuzz-format.ftl");
                        std::fs::write(&kept, input).unwrap();
                        panic!("input {i}: {why}; saved to {}", kept.display());
                    }
                }
            }
            let _ = std::fs::remove_dir(&dir);
        })
        .unwrap();
    worker.join().expect("a mutated input panicked");
    assert!(count > 3000);
}

/// `ftc fmt` on `text`, when it parses: the same tree (spans aside), the same comments, and
/// formatting the result changes nothing.
fn formats_faithfully(text: &str) -> Result<(), String> {
    let out = match std::panic::catch_unwind(|| ftl_syntax::pretty::format_source(text)) {
        Err(_) => return Err("the formatter panicked".into()),
        Ok(Err(_)) => return Ok(()),
        Ok(Ok(out)) => out,
    };
    let (before, _) = ftl_syntax::parse_file(text);
    let (after, errors) = ftl_syntax::parse_file(&out);
    if !errors.is_empty() || without_spans(&before) != without_spans(&after) {
        return Err(format!("the formatted text means something else:\n{out}"));
    }
    // Compared as a sorted list: plain comments among an item's doc lines are printed before
    // them; a doc line is written `/// text`.
    let comments = |t: &str| {
        let mut texts: Vec<String> = ftl_syntax::lexer::comments(t)
            .into_iter()
            .map(|c| match c.text.strip_prefix("///") {
                Some(doc) => format!("/// {}", doc.strip_prefix(' ').unwrap_or(doc))
                    .trim_end()
                    .to_string(),
                None => c.text,
            })
            .collect();
        texts.sort();
        texts
    };
    if comments(text) != comments(&out) {
        return Err(format!("comments changed:\n{out}"));
    }
    match ftl_syntax::pretty::format_source(&out) {
        Ok(again) if again == out => Ok(()),
        _ => Err(format!("formatting is not idempotent:\n{out}")),
    }
}

/// Every builtin the table gives a gradient rule is differentiated by some `gradcheck` of the
/// repository (the rule's text is documentation; autodiff differentiates the primitives a
/// builtin lowers to, and these finite-difference checks are what ties the two together).
#[test]
fn every_builtin_with_a_gradient_rule_is_gradchecked() {
    use ftl_front::builtins::{Vjp, BUILTINS};
    use ftl_front::hir::{DeclId, ExprKind, Hir, Stmt};
    fn reached(hir: &Hir, decl: DeclId, seen: &mut BTreeSet<u32>, used: &mut BTreeSet<String>) {
        if !seen.insert(decl.0) {
            return;
        }
        let Some(d) = hir.decl(decl) else { return };
        for e in &d.body.exprs {
            match &e.kind {
                ExprKind::Builtin { id, .. } => {
                    used.insert(id.name().to_string());
                }
                ExprKind::Call { decl, .. } => reached(hir, *decl, seen, used),
                _ => {}
            }
        }
    }
    let r = repo();
    let mut files = ftl_files(&r.join("examples"));
    files.extend(ftl_files(&r.join("stdlib")));
    files.extend(ftl_files(&r.join("tests").join("run")));
    let mut used = BTreeSet::new();
    for file in files {
        let analysis = ftl_front::analyze(std::slice::from_ref(&file), &options());
        let mut seen = BTreeSet::new();
        for d in analysis.hir.decls.iter().flatten() {
            for s in &d.body.stmts {
                if let Stmt::Gradcheck(target, _) = s {
                    reached(&analysis.hir, *target, &mut seen, &mut used);
                }
            }
        }
    }
    let missing: Vec<&str> = BUILTINS
        .iter()
        .filter(|b| matches!(b.vjp, Vjp::Rule(_)) && !used.contains(b.name))
        .map(|b| b.name)
        .collect();
    assert!(
        missing.is_empty(),
        "no gradcheck differentiates {missing:?}"
    );
}
