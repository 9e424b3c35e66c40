//! Compiles the parser `tree-sitter generate` wrote (src/parser.c) into the crate.

fn main() {
    let src = std::path::Path::new("src");
    let parser = src.join("parser.c");
    println!("cargo:rerun-if-changed={}", parser.display());
    cc::Build::new()
        .std("c11")
        .include(src)
        .flag_if_supported("-Wno-unused-parameter")
        .file(&parser)
        .compile("tree-sitter-ftl");
}
