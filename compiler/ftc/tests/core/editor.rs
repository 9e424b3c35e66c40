//! The tools for people writing `.ftl` files: `ftc fmt` (in place, `--check`, refusing what
//! does not parse or is not a file).

use super::{ftc, repo, scratch};

#[test]
fn ftc_fmt_rewrites_in_place_checks_and_refuses_what_does_not_parse() {
    let dir = scratch("fmt");
    let messy = dir.join("messy.ftl");
    std::fs::write(
        &messy,
        "fn f(x: f32[B]) -> f32 {   // doubles\n  sum(2.0*x, B) }\n",
    )
    .unwrap();
    let path = messy.to_str().unwrap();

    let (code, out, _) = ftc(&["fmt", "--check", path]);
    assert_eq!(code, 1);
    assert!(out.contains("messy.ftl is not formatted"), "{out}");
    assert!(std::fs::read_to_string(&messy).unwrap().contains("2.0*x"));

    let (code, out, err) = ftc(&["fmt", path]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("formatted"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&messy).unwrap(),
        "fn f(x: f32[B]) -> f32 {\n    // doubles\n    sum(2.0 * x, B)\n}\n"
    );
    assert_eq!(ftc(&["fmt", "--check", path]).0, 0);

    let broken = dir.join("broken.ftl");
    std::fs::write(&broken, "fn f( {\n").unwrap();
    let (code, _, err) = ftc(&["fmt", broken.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("[E0002]"), "{err}");
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), "fn f( {\n");

    let (code, _, err) = ftc(&["fmt", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("is not a file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `docs/stdlib.md` and `docs/stdlib.html` are `ftc doc`'s output for `stdlib/` (regenerate
/// with `ftc doc -o docs`), and the reference carries what a user needs of an entry.
#[test]
fn the_stdlib_reference_in_docs_is_ftc_docs_output() {
    let files = ftc::reference::library_files(Some(&repo().join("stdlib"))).unwrap();
    for (name, text) in ftc::reference::render(&files) {
        let committed = std::fs::read_to_string(repo().join("docs").join(name)).unwrap();
        assert!(
            committed == text,
            "docs/{name} is out of date: run `ftc doc -o docs`"
        );
    }
    let r = ftl_front::doc::reference(&files);
    let dpo = r
        .modules
        .iter()
        .find(|m| m.path == "std.objectives.dpo")
        .unwrap();
    let sigmoid = dpo.entries.iter().find(|e| e.name == "sigmoid").unwrap();
    assert_eq!(sigmoid.kind, "objective");
    assert!(sigmoid.doc.contains("TRL"), "{}", sigmoid.doc);
    let beta = sigmoid.params.iter().find(|p| p.name == "beta").unwrap();
    assert_eq!(
        (beta.role, beta.ty.as_str(), beta.default.as_deref()),
        ("hyperparameter", "f32", Some("0.1"))
    );
    let chosen = &sigmoid.params[0];
    assert_eq!(
        (chosen.name.as_str(), chosen.ty.as_str()),
        ("chosen_logps", "f32[B]")
    );
    assert!(sigmoid.requires.iter().any(|r| r.contains("beta > 0.0")));
    assert!(sigmoid.outputs.contains(&"grad.chosen_logps".to_string()));
    assert!(sigmoid.metrics.contains(&"rewards_accuracies".to_string()));
    assert!(!dpo.doc.is_empty());

    let (code, _, err) = ftc(&["doc", "-o", "no/such/dir"]);
    assert_eq!(code, 1);
    assert!(err.contains("error[E0097]"), "{err}");
}
