//! The resolver: reads the root files and, transitively, every module they import.
//!
//! `import std.a.b` maps to `a/b.ftl` in the standard library (a directory given by `--lib` or
//! `FTL_PATH`, else the copy built into the compiler, [`crate::stdlib`]); `import "./x.ftl"` is
//! relative to the importing file and must stay inside its root (the project root for user
//! files, the library directory for std modules). Missing files, escapes and cycles are located
//! errors; a module is read once however often it is imported.

use crate::codes::Code;
use crate::diagnostic::{Diagnostic, Location};
use crate::source::{FileId, SourceMap};
use ftl_syntax::ast::{self, Import, ItemKind, Span};
use ftl_syntax::{SyntaxError, SyntaxErrorKind};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The largest source file accepted.
pub const MAX_SOURCE_BYTES: u64 = 8 << 20;

/// A handle to a module of a [`Program`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleId(pub u32);

/// One import of a module, resolved.
#[derive(Clone, Debug)]
pub struct ResolvedImport {
    /// The imported module.
    pub module: ModuleId,
    /// The name it is qualified by (`dpo` for `import std.objectives.dpo`).
    pub alias: String,
}

/// A parsed module.
#[derive(Debug)]
pub struct Module {
    /// Its source file.
    pub file: FileId,
    /// Its syntax tree.
    pub ast: ast::File,
    /// Dotted name for std modules (`std.core.logps`), the file stem otherwise.
    pub name: String,
    /// Its imports, resolved (failed imports are left out and reported).
    pub imports: Vec<ResolvedImport>,
}

/// Every module of one compilation.
#[derive(Debug, Default)]
pub struct Program {
    /// The files read.
    pub sources: SourceMap,
    /// The modules, imported ones included.
    pub modules: Vec<Module>,
    /// The modules named on the command line.
    pub roots: Vec<ModuleId>,
}

impl Program {
    /// The module behind a handle.
    pub fn module(&self, id: ModuleId) -> &Module {
        &self.modules[id.0 as usize]
    }
}

/// Where modules are looked up.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Standard library directory (`--lib`); else `FTL_PATH`; else the embedded library.
    pub lib_dir: Option<PathBuf>,
    /// Project root for string imports (`--root`); else each root file's directory.
    pub root: Option<PathBuf>,
    /// Texts that stand for files on disk (by canonical path): an editor's unsaved documents.
    pub overlay: HashMap<PathBuf, String>,
}

/// The standard library directory in effect: `--lib`, else a non-empty `FTL_PATH`, else the
/// library built into the compiler ([`crate::stdlib::ROOT`]). The one place this is decided.
pub fn library_dir(opts: &LoadOptions) -> PathBuf {
    if let Some(dir) = &opts.lib_dir {
        return dir.clone();
    }
    if let Some(dir) = std::env::var_os("FTL_PATH").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    PathBuf::from(crate::stdlib::ROOT)
}

/// Whether a module file exists (in the embedded library or on disk).
fn module_exists(path: &Path) -> bool {
    if crate::stdlib::is_embedded(path) {
        crate::stdlib::source(path).is_some()
    } else {
        path.is_file()
    }
}

/// Reads and parses `paths` and everything they import.
pub fn load(paths: &[PathBuf], opts: &LoadOptions) -> (Program, Vec<Diagnostic>) {
    let mut loader = Loader {
        program: Program::default(),
        diags: Vec::new(),
        by_path: HashMap::new(),
        lib: canonical_or_self(&library_dir(opts)),
        stack: Vec::new(),
        overlay: opts.overlay.clone(),
    };
    for path in paths {
        let root = match &opts.root {
            Some(r) => canonical_or_self(r),
            None => canonical_or_self(
                path.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new(".")),
            ),
        };
        if let Some(id) = loader.load_module(path, root, file_stem(path), None) {
            loader.program.roots.push(id);
        }
    }
    (loader.program, loader.diags)
}

/// One source file read as [`load`] reads it (size limit, UTF-8), not parsed: the source map
/// holding it, its id and text when it could be read, and the diagnostics why not.
pub fn read_one(path: &Path) -> (SourceMap, Option<(FileId, String)>, Vec<Diagnostic>) {
    let mut loader = Loader {
        program: Program::default(),
        diags: Vec::new(),
        by_path: HashMap::new(),
        lib: PathBuf::new(),
        stack: Vec::new(),
        overlay: HashMap::new(),
    };
    let read = loader.read_source(path, None);
    (loader.program.sources, read, loader.diags)
}

struct Loader {
    program: Program,
    diags: Vec<Diagnostic>,
    by_path: HashMap<PathBuf, ModuleId>,
    lib: PathBuf,
    /// Modules being loaded, for cycle detection: (canonical path, import site in the parent).
    stack: Vec<PathBuf>,
    /// [`LoadOptions::overlay`].
    overlay: HashMap<PathBuf, String>,
}

/// The path a module is known by: embedded paths as they are, others canonicalized.
fn canonical_module_path(path: &Path) -> std::io::Result<PathBuf> {
    if crate::stdlib::is_embedded(path) {
        Ok(path.to_path_buf())
    } else {
        std::fs::canonicalize(path)
    }
}

fn canonical_or_self(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "main".to_string(), |s| s.to_string_lossy().into_owned())
}

impl Loader {
    /// Loads one module; `site` is the import that asked for it (for located errors).
    fn load_module(
        &mut self,
        path: &Path,
        root: PathBuf,
        name: String,
        site: Option<Location>,
    ) -> Option<ModuleId> {
        let canonical = match canonical_module_path(path) {
            Ok(p) => p,
            Err(e) => {
                let msg = format!(
                    "cannot read `{}`: {}",
                    crate::source::display_path(path),
                    io_reason(&e)
                );
                self.diags.push(match site {
                    Some(at) => {
                        Diagnostic::new(Code::ImportNotFound, at, msg).with_label("imported here")
                    }
                    None => Diagnostic::unlocated(Code::CannotRead, msg),
                });
                return None;
            }
        };
        if let Some(pos) = self.stack.iter().position(|p| *p == canonical) {
            let chain: Vec<String> = self.stack[pos..]
                .iter()
                .chain(std::iter::once(&canonical))
                .map(|p| crate::source::display_path(p))
                .collect();
            let at = site.expect("a cycle is always reached through an import");
            self.diags.push(
                Diagnostic::new(Code::ImportCycle, at, "import cycle")
                    .with_label("this import closes the cycle")
                    .with_help(format!("the cycle is {}", chain.join(" -> "))),
            );
            return None;
        }
        if let Some(&id) = self.by_path.get(&canonical) {
            return Some(id);
        }
        let (file, text) = self.read_source(&canonical, site)?;
        let (ast, errors) = ftl_syntax::parse_file(&text);
        for e in &errors {
            self.diags.push(syntax_diagnostic(file, e));
        }
        let id = ModuleId(self.program.modules.len() as u32);
        self.by_path.insert(canonical.clone(), id);
        self.program.modules.push(Module {
            file,
            ast,
            name,
            imports: Vec::new(),
        });
        self.stack.push(canonical.clone());
        let imports = self.resolve_imports(id, &canonical, &root);
        self.stack.pop();
        self.program.modules[id.0 as usize].imports = imports;
        Some(id)
    }

    fn read_source(&mut self, path: &Path, site: Option<Location>) -> Option<(FileId, String)> {
        let shown = crate::source::display_path(path);
        let fail = |code: Code, msg: String| match site {
            Some(at) => Diagnostic::new(code, at, msg).with_label("imported here"),
            None => Diagnostic::unlocated(code, msg),
        };
        if let Some(text) = self.overlay.get(path) {
            if text.len() as u64 > MAX_SOURCE_BYTES {
                self.diags.push(fail(
                    Code::FileTooLarge,
                    format!(
                        "`{shown}` is {} bytes; source files may be at most {MAX_SOURCE_BYTES} bytes",
                        text.len()
                    ),
                ));
                return None;
            }
            let file = self.program.sources.add(path.to_path_buf(), text.clone());
            return Some((file, text.clone()));
        }
        if crate::stdlib::is_embedded(path) {
            let Some(text) = crate::stdlib::source(path) else {
                self.diags.push(fail(
                    Code::CannotRead,
                    format!("cannot read `{shown}`: no such file"),
                ));
                return None;
            };
            let file = self
                .program
                .sources
                .add(path.to_path_buf(), text.to_string());
            return Some((file, text.to_string()));
        }
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.diags.push(fail(
                    Code::CannotRead,
                    format!("cannot read `{shown}`: {}", io_reason(&e)),
                ));
                return None;
            }
        };
        if !meta.is_file() {
            self.diags
                .push(fail(Code::CannotRead, format!("`{shown}` is not a file")));
            return None;
        }
        if meta.len() > MAX_SOURCE_BYTES {
            self.diags.push(fail(
                Code::FileTooLarge,
                format!(
                    "`{shown}` is {} bytes; source files may be at most {MAX_SOURCE_BYTES} bytes",
                    meta.len()
                ),
            ));
            return None;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.diags.push(fail(
                    Code::CannotRead,
                    format!("cannot read `{shown}`: {}", io_reason(&e)),
                ));
                return None;
            }
        };
        match String::from_utf8(bytes) {
            Ok(text) => {
                let file = self.program.sources.add(path.to_path_buf(), text.clone());
                Some((file, text))
            }
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                // Point at the replacement character that stands for the first invalid byte.
                let at = lossy[..]
                    .char_indices()
                    .map(|(i, _)| i)
                    .find(|&i| i >= offset)
                    .unwrap_or(lossy.len());
                let end = lossy[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                let file = self.program.sources.add(path.to_path_buf(), lossy);
                self.diags.push(
                    Diagnostic::new(
                        Code::InvalidUtf8,
                        Location {
                            file,
                            span: Span::new(at, end),
                        },
                        format!(
                            "`{shown}` is not valid UTF-8 (first invalid byte at offset {offset})"
                        ),
                    )
                    .with_label("invalid byte"),
                );
                None
            }
        }
    }

    fn resolve_imports(&mut self, id: ModuleId, path: &Path, root: &Path) -> Vec<ResolvedImport> {
        let module = &self.program.modules[id.0 as usize];
        let file = module.file;
        let imports: Vec<Import> = module
            .ast
            .items
            .iter()
            .filter_map(|item| match &item.kind {
                ItemKind::Import(i) => Some(i.clone()),
                _ => None,
            })
            .collect();
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut out = Vec::new();
        for import in imports {
            let resolved = match import {
                Import::Module(segments) => self.resolve_std(file, &segments),
                Import::File { path: rel, span } => {
                    self.resolve_string(file, &dir, root, &rel, span)
                }
            };
            if let Some((target, next_root, name, alias, site)) = resolved {
                if let Some(m) = self.load_module(&target, next_root, name, Some(site)) {
                    out.push(ResolvedImport { module: m, alias });
                }
            }
        }
        out
    }

    #[allow(clippy::type_complexity)]
    fn resolve_std(
        &mut self,
        file: FileId,
        segments: &[ast::Ident],
    ) -> Option<(PathBuf, PathBuf, String, String, Location)> {
        let whole = segments[0].span.to(segments[segments.len() - 1].span);
        let at = Location { file, span: whole };
        let names: Vec<&str> = segments.iter().map(|s| s.name.as_str()).collect();
        if names[0] != "std" || names.len() < 2 {
            self.diags.push(
                Diagnostic::new(Code::ImportNotFound, at, format!("cannot import `{}`", names.join(".")))
                    .with_label("not a standard-library module")
                    .with_help("module imports start with `std.` (e.g. `import std.core.logps`); import your own files with a string: `import \"./mine.ftl\"`"),
            );
            return None;
        }
        let mut target = self.lib.clone();
        for n in &names[1..] {
            target.push(n);
        }
        target.set_extension("ftl");
        if !module_exists(&target) {
            self.diags.push(
                Diagnostic::new(
                    Code::ImportNotFound,
                    at,
                    format!("no module `{}` in the standard library", names.join(".")),
                )
                .with_label(format!(
                    "looked for {}",
                    crate::source::display_path(&target)
                ))
                .with_help("set the library directory with `--lib DIR` or the FTL_PATH variable"),
            );
            return None;
        }
        let alias = names[names.len() - 1].to_string();
        Some((target, self.lib.clone(), names.join("."), alias, at))
    }

    #[allow(clippy::type_complexity)]
    fn resolve_string(
        &mut self,
        file: FileId,
        dir: &Path,
        root: &Path,
        rel: &str,
        span: Span,
    ) -> Option<(PathBuf, PathBuf, String, String, Location)> {
        let at = Location { file, span };
        let joined = dir.join(rel);
        let canonical = match std::fs::canonicalize(&joined) {
            Ok(p) => p,
            Err(_) => {
                // Report escapes before existence: a missing file outside the root is still an escape.
                if !lexically_inside(&joined, root) {
                    self.escape_error(at, rel, root);
                } else {
                    self.diags.push(
                        Diagnostic::new(Code::ImportNotFound, at, format!("cannot find `{rel}`"))
                            .with_label(format!(
                                "looked for {}",
                                crate::source::display_path(&joined)
                            )),
                    );
                }
                return None;
            }
        };
        if !canonical.starts_with(root) {
            self.escape_error(at, rel, root);
            return None;
        }
        let stem = file_stem(&canonical);
        Some((canonical, root.to_path_buf(), stem.clone(), stem, at))
    }

    fn escape_error(&mut self, at: Location, rel: &str, root: &Path) {
        self.diags.push(
            Diagnostic::new(
                Code::ImportEscapesRoot,
                at,
                format!("import `{rel}` leaves the project root"),
            )
            .with_label("outside the root")
            .with_help(format!(
                "the project root is {}; pass `--root DIR` to widen it",
                crate::source::display_path(root)
            )),
        );
    }
}

/// Whether `path` stays inside `root` after resolving `.` and `..` textually.
fn lexically_inside(path: &Path, root: &Path) -> bool {
    let mut parts: Vec<std::path::Component> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::CurDir => {}
            other => parts.push(other),
        }
    }
    parts.iter().collect::<PathBuf>().starts_with(root)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// The diagnostic for a syntax error.
pub fn syntax_diagnostic(file: FileId, e: &SyntaxError) -> Diagnostic {
    use ftl_syntax::lexer::LexErrorKind;
    let at = Location { file, span: e.span };
    match &e.kind {
        SyntaxErrorKind::Lex(kind) => {
            let (code, msg, help) = match kind {
                LexErrorKind::InvalidChar => (Code::InvalidToken, "invalid character", None),
                LexErrorKind::IntTooLarge => (
                    Code::IntTooLarge,
                    "integer literal too large",
                    Some("integers must fit in 64 bits"),
                ),
                LexErrorKind::FloatTooLarge => {
                    (Code::FloatOutOfRange, "float literal out of range", None)
                }
                LexErrorKind::UnterminatedString => (
                    Code::BadString,
                    "unterminated string",
                    Some("close the string on the same line"),
                ),
                LexErrorKind::BadEscape => (
                    Code::BadString,
                    "unknown escape in string",
                    Some("escapes are \\n, \\t, \\\" and \\\\"),
                ),
            };
            let d = Diagnostic::new(code, at, msg).with_label("here");
            match help {
                Some(h) => d.with_help(h),
                None => d,
            }
        }
        SyntaxErrorKind::UnexpectedToken { found, expected } => {
            let d = Diagnostic::new(Code::UnexpectedToken, at, format!("unexpected {found}"))
                .with_label("unexpected");
            with_expected(d, expected)
        }
        SyntaxErrorKind::UnexpectedEof { expected } => {
            let d = Diagnostic::new(Code::UnexpectedEof, at, "unexpected end of file")
                .with_label("the file ends here");
            with_expected(d, expected)
        }
        SyntaxErrorKind::TooDeep => Diagnostic::new(
            Code::TooDeep,
            at,
            format!(
                "expression nested more than {} levels deep",
                ftl_syntax::MAX_DEPTH
            ),
        )
        .with_label("too deep")
        .with_help("split the expression with `let`"),
    }
}

fn with_expected(d: Diagnostic, expected: &[String]) -> Diagnostic {
    match expected.len() {
        0 => d,
        1..=8 => d.with_help(format!("expected {}", expected.join(", "))),
        n => d.with_help(format!(
            "expected one of {} tokens, such as {}",
            n,
            expected[..6].join(", ")
        )),
    }
}
