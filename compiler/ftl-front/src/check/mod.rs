//! The checker: names, dtypes and named dims of every declaration, producing the typed HIR.
//!
//! Declarations are checked on demand, callee before caller (a call checks its callee first),
//! so an in-progress callee means recursion. Each body is checked by a `body::Ctx`; `random` decides
//! which declarations draw random numbers and which `let`s a `merge` may use (E0081).

mod body;
mod builtin_call;
pub mod dims;
mod expr;
mod random;
mod requires;
mod tests;

use crate::codes::Code;
use crate::diagnostic::{Diagnostic, Location};
use crate::hir::{self, DeclId, Hir};
use crate::resolve::{ModuleId, Program};
use crate::types::Ty;
use ftl_syntax::ast::{self, AttachedKind, ItemKind, ParamKind};
use std::collections::HashMap;

/// What a declaration-level entry of the checker refers to.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// A `fn`/`objective`/`adapter`/`step` item.
    Decl(ModuleId, usize),
    /// An `init`/`merge`/`unmerge` item, with its adapter's entry.
    Attached(ModuleId, usize, DeclId),
    /// A `test` item.
    Test(ModuleId, usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Unchecked,
    InProgress,
    Done,
}

/// A checked declaration's interface, as its callers see it.
#[derive(Clone, Debug)]
pub struct Signature {
    /// Kind of declaration.
    pub kind: hir::DeclKind,
    /// Its parameters.
    pub params: Vec<hir::Param>,
    /// Whether a default exists, per parameter.
    pub has_default: Vec<bool>,
    /// Outputs: a `fn` without named outputs has one output named `` (its value).
    pub outputs: Vec<(String, Ty)>,
}

/// The result of checking a program.
pub struct Checked {
    /// The typed HIR.
    pub hir: Hir,
    /// Every error found.
    pub diagnostics: Vec<Diagnostic>,
}

/// Checks every module of `program`.
pub fn check(program: &Program) -> Checked {
    let mut ck = Checker::new(program);
    for id in 0..ck.entries.len() {
        // Nothing is in progress at the top level, so this cannot report a cycle.
        let _ = ck.ensure_checked(DeclId(id as u32));
    }
    Checked {
        hir: Hir { decls: ck.hir },
        diagnostics: ck.diags,
    }
}

/// Program-wide state shared by the bodies being checked.
pub(crate) struct Checker<'p> {
    program: &'p Program,
    entries: Vec<Source>,
    /// Per module: declaration name → entry.
    scopes: Vec<HashMap<String, DeclId>>,
    /// Per adapter entry: its attached blocks.
    attached: HashMap<DeclId, Vec<(AttachedKind, DeclId)>>,
    state: Vec<State>,
    sigs: Vec<Option<Signature>>,
    /// Per declaration: whether it draws random numbers (itself or through a callee).
    draws_random: Vec<bool>,
    hir: Vec<Option<hir::Decl>>,
    diags: Vec<Diagnostic>,
}

impl<'p> Checker<'p> {
    fn new(program: &'p Program) -> Checker<'p> {
        let mut ck = Checker {
            program,
            entries: Vec::new(),
            scopes: vec![HashMap::new(); program.modules.len()],
            attached: HashMap::new(),
            state: Vec::new(),
            sigs: Vec::new(),
            draws_random: Vec::new(),
            hir: Vec::new(),
            diags: Vec::new(),
        };
        for (m, module) in program.modules.iter().enumerate() {
            ck.collect_module(ModuleId(m as u32), &module.ast);
        }
        ck.state = vec![State::Unchecked; ck.entries.len()];
        ck.sigs = vec![None; ck.entries.len()];
        ck.draws_random = vec![false; ck.entries.len()];
        ck.hir = vec![None; ck.entries.len()];
        ck
    }

    fn loc(&self, module: ModuleId, span: ast::Span) -> Location {
        Location {
            file: self.program.module(module).file,
            span,
        }
    }

    fn push_entry(&mut self, source: Source) -> DeclId {
        self.entries.push(source);
        DeclId(self.entries.len() as u32 - 1)
    }

    fn collect_module(&mut self, m: ModuleId, file: &'p ast::File) {
        let mut first_site: HashMap<String, ast::Span> = HashMap::new();
        for (i, item) in file.items.iter().enumerate() {
            if let ItemKind::Decl(d) = &item.kind {
                if let Some(prev) = first_site.get(&d.name.name) {
                    let diag = Diagnostic::new(
                        Code::DuplicateDecl,
                        self.loc(m, d.name.span),
                        format!("`{}` is declared twice", d.name.name),
                    )
                    .with_label("second declaration")
                    .with_secondary(self.loc(m, *prev), "first declared here");
                    self.diags.push(diag);
                    continue;
                }
                first_site.insert(d.name.name.clone(), d.name.span);
                let id = self.push_entry(Source::Decl(m, i));
                self.scopes[m.0 as usize].insert(d.name.name.clone(), id);
            }
        }
        for (i, item) in file.items.iter().enumerate() {
            match &item.kind {
                ItemKind::Attached(a) => self.collect_attached(m, i, a),
                ItemKind::Test(_) => {
                    self.push_entry(Source::Test(m, i));
                }
                _ => {}
            }
        }
    }

    fn collect_attached(&mut self, m: ModuleId, i: usize, a: &ast::Attached) {
        let target = self.scopes[m.0 as usize].get(&a.target.name).copied();
        let adapter = target
            .filter(|id| matches!(self.decl_ast(*id), Some(d) if d.kind == ast::DeclKind::Adapter));
        let Some(adapter) = adapter else {
            let what = if target.is_some() {
                "is not an adapter"
            } else {
                "is not declared in this module"
            };
            self.diags.push(
                Diagnostic::new(
                    Code::BadAttachedBlock,
                    self.loc(m, a.target.span),
                    format!(
                        "`{} {}`: `{}` {what}",
                        a.kind.keyword(),
                        a.target.name,
                        a.target.name
                    ),
                )
                .with_label("no adapter of this name"),
            );
            return;
        };
        let blocks = self.attached.get(&adapter).cloned().unwrap_or_default();
        if blocks.iter().any(|(k, _)| *k == a.kind) {
            self.diags.push(
                Diagnostic::new(
                    Code::BadAttachedBlock,
                    self.loc(m, a.target.span),
                    format!("`{}` has two `{}` blocks", a.target.name, a.kind.keyword()),
                )
                .with_label("second block"),
            );
            return;
        }
        let id = self.push_entry(Source::Attached(m, i, adapter));
        self.attached.entry(adapter).or_default().push((a.kind, id));
    }

    fn item(&self, m: ModuleId, i: usize) -> &'p ast::Item {
        &self.program.module(m).ast.items[i]
    }

    fn decl_ast(&self, id: DeclId) -> Option<&'p ast::Decl> {
        match self.entries[id.0 as usize] {
            Source::Decl(m, i) => match &self.item(m, i).kind {
                ItemKind::Decl(d) => Some(d),
                _ => None,
            },
            _ => None,
        }
    }

    /// Qualified name of a module for HIR names.
    fn module_name(&self, m: ModuleId) -> &str {
        &self.program.module(m).name
    }

    /// Looks a callable name up in a module's scope: its own declarations, then its imports.
    /// Whether module `m` itself declares `name`.
    fn declares(&self, m: ModuleId, name: &str) -> bool {
        self.scopes[m.0 as usize].contains_key(name)
    }

    fn lookup_decl(&self, m: ModuleId, name: &str) -> Result<Option<DeclId>, Vec<String>> {
        if let Some(id) = self.scopes[m.0 as usize].get(name) {
            return Ok(Some(*id));
        }
        let found: Vec<(String, DeclId)> = self
            .program
            .module(m)
            .imports
            .iter()
            .filter_map(|imp| {
                self.scopes[imp.module.0 as usize]
                    .get(name)
                    .map(|id| (imp.alias.clone(), *id))
            })
            .collect();
        match found.len() {
            0 => Ok(None),
            1 => Ok(Some(found[0].1)),
            _ => Err(found.into_iter().map(|(alias, _)| alias).collect()),
        }
    }

    /// `alias.name`: a declaration of an imported module.
    fn lookup_qualified(&self, m: ModuleId, alias: &str, name: &str) -> Option<Option<DeclId>> {
        let imp = self
            .program
            .module(m)
            .imports
            .iter()
            .find(|i| i.alias == alias)?;
        Some(self.scopes[imp.module.0 as usize].get(name).copied())
    }

    /// Names visible in a module (for "did you mean").
    fn visible_decl_names(&self, m: ModuleId) -> Vec<String> {
        let mut names: Vec<String> = self.scopes[m.0 as usize].keys().cloned().collect();
        for imp in &self.program.module(m).imports {
            names.extend(self.scopes[imp.module.0 as usize].keys().cloned());
        }
        names
    }

    /// Checks an entry unless it is checked already; `Err(())` means it is being checked (a cycle).
    fn ensure_checked(&mut self, id: DeclId) -> Result<(), ()> {
        match self.state[id.0 as usize] {
            State::Done => return Ok(()),
            State::InProgress => return Err(()),
            State::Unchecked => {}
        }
        self.state[id.0 as usize] = State::InProgress;
        let result = match self.entries[id.0 as usize] {
            Source::Decl(m, i) => {
                let ItemKind::Decl(d) = &self.item(m, i).kind else {
                    unreachable!()
                };
                body::check_decl(self, m, d)
            }
            Source::Attached(m, i, adapter) => {
                let ItemKind::Attached(a) = &self.item(m, i).kind else {
                    unreachable!()
                };
                match self.ensure_checked(adapter) {
                    Ok(()) => body::check_attached(self, m, a, adapter),
                    Err(()) => None,
                }
            }
            Source::Test(m, i) => {
                let ItemKind::Test(t) = &self.item(m, i).kind else {
                    unreachable!()
                };
                tests::check_test(self, m, t)
            }
        };
        if let Some((decl, sig)) = result {
            let draws = random::body_draws_random(&decl.body, &|d| self.draws_random(d));
            self.draws_random[id.0 as usize] = draws;
            self.sigs[id.0 as usize] = Some(sig);
            self.hir[id.0 as usize] = Some(decl);
        }
        self.state[id.0 as usize] = State::Done;
        Ok(())
    }

    fn signature(&self, id: DeclId) -> Option<&Signature> {
        self.sigs[id.0 as usize].as_ref()
    }

    /// Whether a checked declaration draws random numbers (false until it is checked).
    fn draws_random(&self, id: DeclId) -> bool {
        self.draws_random
            .get(id.0 as usize)
            .copied()
            .unwrap_or(false)
    }

    /// A checked declaration's HIR.
    fn checked_decl(&self, id: DeclId) -> Option<&hir::Decl> {
        self.hir.get(id.0 as usize)?.as_ref()
    }
}

/// Close names for "did you mean".
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        if c == name {
            continue;
        }
        let score = strsim::jaro_winkler(name, c);
        let close = score > 0.85 || (strsim::levenshtein(name, c) <= 2 && name.len() > 2);
        if close && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

/// The gradient inputs of a signature: non-const float inputs and params (not hyperparameters).
pub(crate) fn gradient_inputs(params: &[hir::Param]) -> Vec<(String, Ty)> {
    params
        .iter()
        .filter(|p| matches!(p.kind, ParamKind::Input | ParamKind::Param) && p.default.is_none())
        .filter(|p| matches!(&p.ty, Ty::Tensor(t) if t.dtype.is_float()))
        .map(|p| (p.name.clone(), p.ty.clone()))
        .collect()
}
