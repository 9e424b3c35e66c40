//! The front end (parse, resolve, check, render) on arbitrary bytes as a source file: it must
//! return diagnostics, never panic, overflow the stack or run away.
#![no_main]

use ftl_front::resolve::LoadOptions;
use ftl_front::MessageFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("ftl-fuzz-front-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.ftl");
    std::fs::write(&path, data).expect("the scratch file is writable");
    let opts = LoadOptions {
        lib_dir: None,
        root: Some(dir),
    };
    let analysis = ftl_front::analyze(&[path], &opts);
    for format in [MessageFormat::Human, MessageFormat::Short, MessageFormat::Json] {
        let _ = analysis.render(format);
    }
});
