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

/// A JSON-RPC client of `ftc lsp` over its stdio.
struct LspClient {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    next_id: i64,
}

impl LspClient {
    fn start(lib: &std::path::Path) -> LspClient {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ftc"))
            .args(["lsp", "--lib", lib.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        LspClient {
            child,
            stdout,
            next_id: 1,
        }
    }

    fn send(&mut self, msg: serde_json::Value) {
        use std::io::Write;
        let body = msg.to_string();
        let stdin = self.child.stdin.as_mut().unwrap();
        write!(stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        stdin.flush().unwrap();
    }

    fn read(&mut self) -> serde_json::Value {
        use std::io::{BufRead, Read};
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.stdout.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("Content-Length: ") {
                length = n.parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.stdout.read_exact(&mut body).unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    /// Sends a request and returns its result (skipping notifications in between).
    fn request(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        );
        loop {
            let msg = self.read();
            if msg["id"] == id {
                assert!(msg.get("error").is_none(), "{msg}");
                return msg["result"].clone();
            }
        }
    }

    fn notify(&mut self, method: &str, params: serde_json::Value) {
        self.send(serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next diagnostics published.
    fn diagnostics(&mut self) -> serde_json::Value {
        loop {
            let msg = self.read();
            if msg["method"] == "textDocument/publishDiagnostics" {
                return msg["params"].clone();
            }
        }
    }
}

/// The LSP position of the first `needle` in `text` (ASCII text), plus `extra` characters.
fn position_of(text: &str, needle: &str, extra: usize) -> serde_json::Value {
    let at = text.find(needle).unwrap() + extra;
    let line = text[..at].matches('\n').count();
    let character = at - text[..at].rfind('\n').map_or(0, |i| i + 1);
    serde_json::json!({"line": line, "character": character})
}

/// `ftc lsp` end to end: an error in an opened file is published with its code and range;
/// hover shows a value's named-dim type; definition of an imported stdlib entry is its file
/// and line; completion offers the callee's parameters; signature help names the active one;
/// formatting gives `ftc fmt`'s text.
#[test]
fn ftc_lsp_diagnoses_hovers_goes_to_definition_and_completes() {
    let dir = scratch("lsp");
    let file = dir.join("pref.ftl");
    std::fs::write(&file, "").unwrap();
    let uri = format!("file://{}", file.display());
    let lib = repo().join("stdlib");
    let mut lsp = LspClient::start(&lib);
    let init = lsp.request(
        "initialize",
        serde_json::json!({"processId": null, "rootUri": null, "capabilities": {}}),
    );
    assert_eq!(init["capabilities"]["hoverProvider"], true, "{init}");
    lsp.notify("initialized", serde_json::json!({}));

    let broken = "objective f(x: f32[B]) {\n    loss sum(x, B) + undefined_name;\n}\n";
    lsp.notify(
        "textDocument/didOpen",
        serde_json::json!({"textDocument": {"uri": uri, "languageId": "ftl", "version": 1, "text": broken}}),
    );
    let published = lsp.diagnostics();
    let first = &published["diagnostics"][0];
    assert_eq!(first["code"], "E0020", "{published}");
    assert_eq!(
        first["range"]["start"],
        position_of(broken, "undefined_name", 0)
    );
    assert_eq!(
        first["range"]["end"],
        position_of(broken, "undefined_name", 14)
    );

    let good = "import std.objectives.dpo\n\n\
                objective pair(c: f32[B], r: f32[B], rc: const f32[B], rr: const f32[B]) {\n    \
                let margin = c - r;\n    \
                let d = dpo.sigmoid(chosen_logps: c, rejected_logps: r, ref_chosen_logps: rc, ref_rejected_logps: rr);\n    \
                loss d.loss + mean(margin, B);\n}\n";
    lsp.notify(
        "textDocument/didChange",
        serde_json::json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": good}]}),
    );
    let published = lsp.diagnostics();
    assert_eq!(
        published["diagnostics"],
        serde_json::json!([]),
        "{published}"
    );

    let at = |needle: &str, extra: usize| serde_json::json!({"textDocument": {"uri": uri}, "position": position_of(good, needle, extra)});
    let hover = lsp.request("textDocument/hover", at("mean(margin", 6));
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(text.contains("margin: f32[B]"), "{text}");

    // Where names are bound: a parameter in the header, a `let`.
    let hover = lsp.request("textDocument/hover", at("rc: const", 0));
    assert!(
        hover["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("rc: f32[B]"),
        "{hover}"
    );
    let hover = lsp.request("textDocument/hover", at("margin = c - r", 0));
    assert!(
        hover["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("margin: f32[B]"),
        "{hover}"
    );

    let def = lsp.request("textDocument/definition", at("dpo.sigmoid", 5));
    let target = std::fs::canonicalize(lib.join("objectives").join("dpo.ftl")).unwrap();
    assert_eq!(def["uri"], format!("file://{}", target.display()), "{def}");
    let source = std::fs::read_to_string(&target).unwrap();
    let line = source[..source.find("objective sigmoid(").unwrap()]
        .matches('\n')
        .count();
    assert_eq!(def["range"]["start"]["line"], line, "{def}");

    let hover = lsp.request("textDocument/hover", at("dpo.sigmoid", 5));
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(
        text.contains("objective sigmoid(") && text.contains("TRL"),
        "{text}"
    );

    let items = lsp.request("textDocument/completion", at("chosen_logps: c", 0));
    let labels: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["label"].as_str())
        .collect();
    for want in ["rejected_logps:", "beta:", "logsumexp", "margin", "let"] {
        assert!(labels.contains(&want), "{want} not in {labels:?}");
    }

    let help = lsp.request("textDocument/signatureHelp", at("rejected_logps: r", 3));
    let sig = &help["signatures"][0];
    assert!(
        sig["label"]
            .as_str()
            .unwrap()
            .starts_with("objective sigmoid("),
        "{help}"
    );
    assert_eq!(help["activeParameter"], 1, "{help}");

    let edits = lsp.request(
        "textDocument/formatting",
        serde_json::json!({"textDocument": {"uri": uri}, "options": {"tabSize": 4, "insertSpaces": true}}),
    );
    let formatted = edits[0]["newText"].as_str().unwrap();
    assert_eq!(formatted, ftl_syntax::pretty::format_source(good).unwrap());
    assert!(
        formatted.contains("\n    let d = dpo.sigmoid(\n        chosen_logps: c,\n"),
        "{formatted}"
    );

    // A change is re-checked in the open documents that import it.
    let helper = dir.join("helper.ftl");
    std::fs::write(&helper, "").unwrap();
    let helper_uri = format!("file://{}", helper.display());
    let user = dir.join("user.ftl");
    std::fs::write(&user, "").unwrap();
    let user_uri = format!("file://{}", user.display());
    let open = |lsp: &mut LspClient, uri: &str, text: &str| {
        lsp.notify(
            "textDocument/didOpen",
            serde_json::json!({"textDocument": {"uri": uri, "languageId": "ftl", "version": 1, "text": text}}),
        );
    };
    open(
        &mut lsp,
        &helper_uri,
        "fn twice(x: f32[B]) -> f32[B] { 2.0 * x }\n",
    );
    lsp.diagnostics();
    open(
        &mut lsp,
        &user_uri,
        "import \"./helper.ftl\"\n\nobjective o(x: f32[B]) {\n    loss sum(twice(x), B);\n}\n",
    );
    let mut published = Vec::new();
    while published.len() < 3 {
        published.push(lsp.diagnostics());
    }
    lsp.notify(
        "textDocument/didChange",
        serde_json::json!({"textDocument": {"uri": helper_uri, "version": 2},
            "contentChanges": [{"text": "fn thrice(x: f32[B]) -> f32[B] { 3.0 * x }\n"}]}),
    );
    let mut for_user = None;
    for _ in 0..4 {
        let p = lsp.diagnostics();
        if p["uri"] == user_uri.as_str() {
            for_user = Some(p);
            break;
        }
    }
    let for_user = for_user.expect("the importing document is re-checked");
    assert_eq!(for_user["diagnostics"][0]["code"], "E0020", "{for_user}");

    lsp.request("shutdown", serde_json::Value::Null);
    lsp.notify("exit", serde_json::Value::Null);
    assert!(lsp.child.wait().unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The VS Code extension's manifest, language configuration and TextMate grammar are valid
/// JSON, wire the `ftl` language to `ftc lsp`'s extension and the grammar, and the grammar
/// knows every keyword of the lexer.
#[test]
fn the_vscode_extension_is_wired_and_its_grammar_knows_every_keyword() {
    let dir = repo().join("grammar").join("editors").join("vscode");
    let json = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    };
    let manifest = json("package.json");
    assert_eq!(
        manifest["contributes"]["languages"][0]["extensions"][0],
        ".ftl"
    );
    assert_eq!(
        manifest["contributes"]["grammars"][0]["scopeName"],
        "source.ftl"
    );
    assert!(std::fs::read_to_string(dir.join("extension.js"))
        .unwrap()
        .contains("['lsp']"));
    json("language-configuration.json");
    let grammar = json("syntaxes/ftl.tmLanguage.json");
    assert_eq!(grammar["scopeName"], "source.ftl");
    let text = grammar.to_string();
    for k in ftl_syntax::lexer::KEYWORDS {
        assert!(
            text.contains(&format!("|{k}|"))
                || text.contains(&format!("({k}|"))
                || text.contains(&format!("|{k})")),
            "{k}"
        );
    }
}

/// Whatever arrives on `ftc lsp`'s stdin ends in a message and exit status 1, never an abort:
/// a message too large to allocate, a malformed header, invalid JSON.
#[test]
fn ftc_lsp_refuses_oversized_and_malformed_input() {
    use std::io::Write;
    for input in [
        &b"Content-Length: 99999999999999999\r\n\r\n"[..],
        &b"garbage\n"[..],
        &b"Content-Length: 5\r\n\r\n{oops"[..],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ftc"))
            .arg("lsp")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{input:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: "), "{err}");
    }
    let (code, _, err) = ftc(&["doc", "--lib", "no/such/lib", "-o", "."]);
    assert_eq!(code, 1);
    assert!(err.contains("error[E0010]"), "{err}");
}
