//! The tools for people writing `.ftl` files: `ftc fmt` (in place, `--check`, refusing what
//! does not parse or is not a file).

use super::{ftc, scratch};

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
