//! The FTL grammar for tree-sitter (`grammar.js`, parser generated into `src/parser.c`) with
//! its highlight and fold queries, for editors; the compiler's own parser is `ftl-syntax`.
//! The tests parse every `.ftl` file of the repository without an error node and check the
//! corpus under `test/corpus/`.

use tree_sitter_language::LanguageFn;

extern "C" {
    fn tree_sitter_ftl() -> *const ();
}

/// The tree-sitter language of FTL.
pub const LANGUAGE: LanguageFn = unsafe { LanguageFn::from_raw(tree_sitter_ftl) };

/// The highlight query.
pub const HIGHLIGHTS_QUERY: &str = include_str!("../../queries/highlights.scm");

/// The fold query.
pub const FOLDS_QUERY: &str = include_str!("../../queries/folds.scm");

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn parser() -> tree_sitter::Parser {
        let mut p = tree_sitter::Parser::new();
        p.set_language(&super::LANGUAGE.into()).unwrap();
        p
    }

    fn ftl_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() && !matches!(name.as_str(), "target" | "ui" | ".git" | "node_modules")
            {
                ftl_files(&path, out);
            } else if name.ends_with(".ftl") {
                out.push(path);
            }
        }
    }

    /// The first error or missing node of a tree, as `line:column kind`.
    fn first_error(node: tree_sitter::Node<'_>) -> Option<String> {
        if node.is_error() || node.is_missing() {
            let p = node.start_position();
            return Some(format!("{}:{} {}", p.row + 1, p.column + 1, node.to_sexp()));
        }
        let mut cursor = node.walk();
        let children: Vec<_> = node.children(&mut cursor).collect();
        children.into_iter().find_map(first_error)
    }

    #[test]
    fn every_ftl_file_of_the_repository_parses_without_error_nodes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
        let mut files = Vec::new();
        for dir in ["stdlib", "examples", "tests"] {
            ftl_files(&root.join(dir), &mut files);
        }
        assert!(files.len() > 40, "{}", files.len());
        let mut parser = parser();
        let failures: Vec<String> = files
            .iter()
            .filter_map(|f| {
                let text = std::fs::read_to_string(f).ok()?;
                let tree = parser.parse(&text, None).unwrap();
                first_error(tree.root_node()).map(|e| format!("{}: {e}", f.display()))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// `test/corpus/*.txt` (tree-sitter's format: a `===` header with the name, the source, a
    /// `---` line, the expected tree): each source parses to its tree.
    #[test]
    fn the_corpus_parses_to_its_trees() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test/corpus");
        let mut parser = parser();
        let mut checked = 0;
        // The corpus writes trees without field names (`name: `), as `tree-sitter test` does.
        let squash = |s: &str| {
            s.split_whitespace()
                .filter(|w| !w.ends_with(':'))
                .collect::<Vec<_>>()
                .join(" ")
        };
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            for case in split_cases(&text) {
                let (name, source, expected) = case;
                let tree = parser.parse(source, None).unwrap();
                assert_eq!(
                    squash(&tree.root_node().to_sexp()),
                    squash(expected),
                    "{}: {name}",
                    entry.path().display()
                );
                checked += 1;
            }
        }
        assert!(checked >= 5, "{checked}");
    }

    /// (name, source, expected tree) of each case of a corpus file.
    fn split_cases(text: &str) -> Vec<(&str, &str, &str)> {
        let lines: Vec<(usize, &str)> = text
            .split_inclusive('\n')
            .scan(0, |at, l| {
                let start = *at;
                *at += l.len();
                Some((start, l))
            })
            .collect();
        let header = |l: &str| l.starts_with("===") && l.trim_end().chars().all(|c| c == '=');
        let mut cases = Vec::new();
        let mut i = 0;
        while i + 2 < lines.len() {
            if !header(lines[i].1) || !header(lines[i + 2].1) {
                i += 1;
                continue;
            }
            let name = lines[i + 1].1.trim();
            let body_start = lines[i + 2].0 + lines[i + 2].1.len();
            let next = lines[i + 3..]
                .iter()
                .position(|(_, l)| header(l))
                .map_or(lines.len(), |k| i + 3 + k);
            let body_end = lines.get(next).map_or(text.len(), |(s, _)| *s);
            let body = &text[body_start..body_end];
            if let Some((source, expected)) = body.split_once("\n---\n") {
                cases.push((name, source, expected));
            }
            i = next;
        }
        cases
    }
}
