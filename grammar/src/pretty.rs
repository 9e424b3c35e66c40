//! The pretty printer: canonical FTL source for an AST. Parsing its output gives back the same
//! tree (spans aside); parentheses are written only where precedence needs them.
//!
//! Layout: four-space indents; a list (call arguments, a tensor literal, a record, parameters
//! with defaults) that does not fit in [`WIDTH`] columns is broken one element per line with a
//! trailing comma (a tensor of plain numbers packs as many per line as fit). [`format_source`]
//! adds the source's comments and blank lines to that layout (`ftc fmt`).

use crate::ast::*;
use crate::lexer::{comments, Comment};
use std::fmt::Write;

/// The line width the layout keeps to where it can.
pub const WIDTH: usize = 100;

/// Canonical source text of a file.
pub fn print_file(file: &File) -> String {
    let mut p = Printer::default();
    p.file(file);
    p.out
}

/// `source` in the canonical layout with its comments (each on its own line, where it stood
/// between items, statements or match arms; one inside an expression follows the statement)
/// and single blank lines between statements where the source had any. `Err` with the syntax
/// errors when it does not parse.
pub fn format_source(source: &str) -> Result<String, Vec<crate::SyntaxError>> {
    let (file, errors) = crate::parse_file(source);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut p = Printer {
        trivia: Some(Trivia {
            source,
            comments: comments(source),
            next: 0,
            last_end: 0,
        }),
        ..Printer::default()
    };
    p.file(&file);
    if !p.out.ends_with('\n') {
        p.out.push('\n');
    }
    Ok(p.out)
}

/// The canonical header of a declaration or attached block (what precedes its body, doc
/// comment excluded); `None` for imports and tests.
pub fn print_signature(item: &Item) -> Option<String> {
    let mut p = Printer::default();
    match &item.kind {
        ItemKind::Decl(d) => p.decl_header(d),
        ItemKind::Attached(a) => p.attached_header(a),
        ItemKind::Import(_) | ItemKind::Test(_) => return None,
    }
    Some(p.out)
}

/// Canonical source text of one parameter (`name: const f32[B] = default`).
pub fn print_param(param: &Param) -> String {
    let mut p = Printer::default();
    p.param(param);
    p.out
}

/// Canonical source text of one expression.
pub fn print_expr(expr: &Expr) -> String {
    let mut p = Printer::default();
    p.expr(expr, 0);
    p.out
}

/// Canonical source text of a type.
pub fn print_type(ty: &TypeExpr) -> String {
    let mut p = Printer::default();
    p.ty(ty);
    p.out
}

#[derive(Default)]
struct Printer<'s> {
    out: String,
    indent: usize,
    /// The source's comments and blank lines, when formatting a source text.
    trivia: Option<Trivia<'s>>,
    /// `match` on one line (in `requires` conditions).
    inline_match: bool,
    /// Inside a binary chain already broken onto continuation lines.
    continuation: bool,
    /// Printing on one line (a scratch print measuring what fits): lists and operator chains
    /// are written inline without trying to break them, so measuring costs the text's size
    /// (trying every break inside a measurement would be exponential in the nesting).
    one_line: bool,
}

/// What the AST does not hold: comments (in source order) and where the last element printed
/// ended, to see blank lines between elements.
struct Trivia<'s> {
    source: &'s str,
    comments: Vec<Comment>,
    /// The first comment not yet printed.
    next: usize,
    /// The source offset where the last printed element or comment ended.
    last_end: usize,
}

/// Binding strength, loosest first; a child weaker than its slot is parenthesized.
mod prec {
    pub const COALESCE: u8 = 1;
    pub const OR: u8 = 2;
    pub const AND: u8 = 3;
    pub const COMPARE: u8 = 4;
    pub const ADD: u8 = 5;
    pub const MUL: u8 = 6;
    pub const UNARY: u8 = 7;
    pub const POSTFIX: u8 = 8;
}

fn binop_prec(op: BinOp) -> u8 {
    match op {
        BinOp::Coalesce => prec::COALESCE,
        BinOp::Or => prec::OR,
        BinOp::And => prec::AND,
        BinOp::Add | BinOp::Sub => prec::ADD,
        BinOp::Mul | BinOp::Div | BinOp::Rem | BinOp::MatMul => prec::MUL,
    }
}

fn expr_prec(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Binary(op, ..) => binop_prec(*op),
        ExprKind::Compare(..) => prec::COMPARE,
        ExprKind::Unary(..) => prec::UNARY,
        _ => prec::POSTFIX + 1,
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A float written so that it lexes as a float and reads back to the same value: the shortest
/// decimal form, in exponent form below 10⁻³ where that is shorter (`1e-4`, not `0.0001`).
fn float_literal(v: f64) -> String {
    let s = format!("{v:?}");
    let s = if s.contains(['.', 'e', 'E']) {
        s
    } else {
        format!("{s}.0")
    };
    let exp = format!("{v:e}");
    if v != 0.0 && v.abs() < 1e-3 && exp.len() < s.len() {
        exp
    } else {
        s
    }
}

impl Printer<'_> {
    fn newline(&mut self) {
        self.out.push('\n');
        for _ in 0..self.indent {
            self.out.push_str("    ");
        }
    }

    /// The column the next character goes to.
    fn column(&self) -> usize {
        self.out.len() - self.out.rfind('\n').map_or(0, |i| i + 1)
    }

    /// `print` on one line in a scratch printer at this indent (no comments), matches inline
    /// where they are here.
    fn flat(&self, print: impl FnOnce(&mut Printer<'_>)) -> String {
        let mut p = Printer {
            indent: self.indent,
            one_line: true,
            inline_match: self.inline_match,
            ..Printer::default()
        };
        print(&mut p);
        p.out
    }

    /// Whether `text` fits on the current line with one column to spare (for the `;` or `,`
    /// that usually follows).
    fn fits(&self, text: &str) -> bool {
        !text.contains('\n') && self.column() + text.chars().count() < WIDTH
    }

    fn file(&mut self, file: &File) {
        for (i, item) in file.items.iter().enumerate() {
            let comments = self.take_comments(item.span.start);
            if comments.is_empty() {
                if i > 0 {
                    self.out.push('\n');
                }
            } else {
                self.top_comments(&comments, i > 0);
                if self.blank_before(item.span.start) {
                    self.out.push('\n');
                }
            }
            self.item(item);
            self.mark_end(item.span.end);
        }
        let rest = self.take_comments(usize::MAX);
        self.top_comments(&rest, true);
    }

    /// Top-level comments, each on its line; `separated`: a blank line before the first.
    fn top_comments(&mut self, comments: &[(bool, String)], separated: bool) {
        for (i, (blank, text)) in comments.iter().enumerate() {
            if (i == 0 && separated) || (i > 0 && *blank) {
                self.out.push('\n');
            }
            self.out.push_str(text);
            self.out.push('\n');
        }
    }

    /// The comments before source offset `before` not printed yet, each with whether a blank
    /// line came before it in the source.
    fn take_comments(&mut self, before: usize) -> Vec<(bool, String)> {
        let Some(t) = &mut self.trivia else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        while let Some(c) = t.comments.get(t.next).filter(|c| c.span.start < before) {
            taken.push((
                blank_between(t.source, t.last_end, c.span.start),
                c.text.clone(),
            ));
            t.last_end = c.span.end;
            t.next += 1;
        }
        taken
    }

    /// Whether the source has a blank line between the last element or comment and `start`.
    fn blank_before(&self, start: usize) -> bool {
        self.trivia
            .as_ref()
            .is_some_and(|t| blank_between(t.source, t.last_end, start))
    }

    /// A fresh indented line for an element of a block (a statement, a tail, a match arm, a
    /// broken parameter) starting at source offset `start`, after the comments before it; a
    /// blank line where the source had one, except before the first element.
    fn open_line(&mut self, start: usize, first: bool) {
        let comments = self.take_comments(start);
        for (i, (blank, text)) in comments.iter().enumerate() {
            if *blank && (i > 0 || !first) {
                self.out.push('\n');
            }
            self.newline();
            self.out.push_str(text);
        }
        let blank = self.blank_before(start);
        if blank && (!comments.is_empty() || !first) {
            self.out.push('\n');
        }
        self.newline();
    }

    /// Before a block's closing brace at `end`: its last comments, each on its line.
    fn close_lines(&mut self, end: usize) {
        for (blank, text) in self.take_comments(end) {
            if blank {
                self.out.push('\n');
            }
            self.newline();
            self.out.push_str(&text);
        }
    }

    /// After an element that ended at `end`: the comments inside it not printed within it,
    /// each on its line below it.
    fn end_element(&mut self, end: usize) {
        for (_, text) in self.take_comments(end) {
            self.newline();
            self.out.push_str(&text);
        }
        self.mark_end(end);
    }

    /// An element ended at `end`.
    fn mark_end(&mut self, end: usize) {
        if let Some(t) = &mut self.trivia {
            t.last_end = t.last_end.max(end);
        }
    }

    fn item(&mut self, item: &Item) {
        if let Some(doc) = &item.doc {
            self.doc_region_comments(item.span.start);
            for line in doc.split('\n') {
                if line.is_empty() {
                    self.out.push_str("///\n");
                } else {
                    let _ = writeln!(self.out, "/// {line}");
                }
            }
        }
        match &item.kind {
            ItemKind::Import(Import::Module(path)) => {
                let names: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
                let _ = writeln!(self.out, "import {}", names.join("."));
            }
            ItemKind::Import(Import::File { path, .. }) => {
                let _ = writeln!(self.out, "import {}", escape(path));
            }
            ItemKind::Decl(d) => {
                self.decl_header(d);
                self.out.push(' ');
                self.block(&d.body);
                self.out.push('\n');
            }
            ItemKind::Attached(a) => {
                self.attached_header(a);
                self.out.push(' ');
                self.block(&a.body);
                self.out.push('\n');
            }
            ItemKind::Test(t) => {
                let _ = write!(self.out, "test {} ", escape(&t.name));
                self.block(&t.body);
                self.out.push('\n');
            }
        }
    }

    /// `kind name(params) -> ret requires …`.
    fn decl_header(&mut self, d: &Decl) {
        let _ = write!(self.out, "{} {}", d.kind.keyword(), d.name.name);
        // The return type and ` {` follow the parameters on their line.
        let after = d
            .ret
            .as_ref()
            .map_or(2, |ret| self.flat(|p| p.ret(ret)).len() + 6);
        self.params(&d.params, after);
        if let Some(ret) = &d.ret {
            self.out.push_str(" -> ");
            self.ret(ret);
        }
        self.requires(&d.requires);
    }

    fn ret(&mut self, ret: &RetType) {
        match ret {
            RetType::Single(t) => self.ty(t),
            RetType::Named(fields) => self.list(('(', ')'), fields, false, |p, (name, t)| {
                let _ = write!(p.out, "{}: ", name.name);
                p.ty(t);
            }),
        }
    }

    /// `init name(params) requires …` (and merge, unmerge).
    fn attached_header(&mut self, a: &Attached) {
        let _ = write!(self.out, "{} {}", a.kind.keyword(), a.target.name);
        if !a.params.is_empty() {
            self.params(&a.params, 2);
        }
        self.requires(&a.requires);
    }

    /// Before a documented item starting at `start`: the comments between its first doc line
    /// and its keyword. The `///` ones are its doc (printed from the tree, not again); plain
    /// `//` lines among them are printed first, each on its line, so the doc stays together.
    fn doc_region_comments(&mut self, start: usize) {
        let Some(t) = &mut self.trivia else {
            return;
        };
        let head = item_head(t.source, start);
        let mut plain = Vec::new();
        while let Some(c) = t.comments.get(t.next).filter(|c| c.span.start < head) {
            if !c.text.starts_with("///") {
                plain.push(c.text.clone());
            }
            t.last_end = c.span.end;
            t.next += 1;
        }
        for text in plain {
            self.out.push_str(&text);
            self.out.push('\n');
        }
    }

    /// The parameter list, `after` columns of the line kept for what follows it.
    fn params(&mut self, params: &[Param], after: usize) {
        if params.len() <= 3 {
            let flat = self.flat(|p| p.list(('(', ')'), params, false, |p, x| p.param(x)));
            if self.fits(&format!("{flat}{}", " ".repeat(after))) {
                self.out.push_str(&flat);
                return;
            }
        }
        self.out.push('(');
        self.indent += 1;
        for (i, p) in params.iter().enumerate() {
            self.open_line(p.span.start, i == 0);
            self.param(p);
            self.out.push(',');
            self.end_element(p.span.end);
        }
        self.indent -= 1;
        self.newline();
        self.out.push(')');
    }

    fn param(&mut self, p: &Param) {
        let _ = write!(self.out, "{}: ", p.name.name);
        match p.kind {
            ParamKind::Input => {}
            ParamKind::Const => self.out.push_str("const "),
            ParamKind::Param => self.out.push_str("param "),
            ParamKind::Static => self.out.push_str("static "),
        }
        self.ty(&p.ty);
        if let Some(d) = &p.default {
            self.out.push_str(" = ");
            self.expr(d, 0);
        }
    }

    /// ` requires a, b, …`, the conditions packed on continuation lines where they do not fit.
    fn requires(&mut self, requires: &[Expr]) {
        if requires.is_empty() {
            return;
        }
        self.out.push_str(" requires ");
        let inline_match = std::mem::replace(&mut self.inline_match, true);
        self.indent += 1;
        for (i, r) in requires.iter().enumerate() {
            let text = self.flat(|p| p.expr(r, 0));
            if i > 0 {
                self.out.push(',');
                if self.fits(&format!(" {text} {{")) {
                    self.out.push(' ');
                } else {
                    self.newline();
                }
            }
            if self.fits(&format!("{text} {{")) {
                self.out.push_str(&text);
            } else {
                // Too long even on its own line: broken as an expression is.
                self.expr(r, 0);
            }
        }
        self.indent -= 1;
        self.inline_match = inline_match;
    }

    fn ty(&mut self, t: &TypeExpr) {
        match t {
            TypeExpr::Tensor {
                dtype,
                dims,
                optional,
                ..
            } => {
                self.out.push_str(dtype.keyword());
                if let Some(dims) = dims {
                    self.out.push('[');
                    for (i, d) in dims.iter().enumerate() {
                        if i > 0 {
                            self.out.push_str(", ");
                        }
                        match d {
                            DimEntry::Named(n) => self.out.push_str(&n.name),
                            DimEntry::Sized(n, v, _) => {
                                let _ = write!(self.out, "{} = {v}", n.name);
                            }
                            DimEntry::Fixed(v, _) => {
                                let _ = write!(self.out, "{v}");
                            }
                            DimEntry::Pack(n) => {
                                let _ = write!(self.out, "..{}", n.name);
                            }
                        }
                    }
                    self.out.push(']');
                }
                if *optional {
                    self.out.push('?');
                }
            }
            TypeExpr::Enum { variants, .. } => {
                let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
                let _ = write!(self.out, "enum {{ {} }}", names.join(", "));
            }
        }
    }

    /// `b` as `{ tail }` (or `{}`) when it is only a short tail that fits here.
    fn one_line_block(&self, b: &Block) -> Option<String> {
        if !b.stmts.is_empty() || self.comment_within(b.span) {
            return None;
        }
        let Some(tail) = &b.tail else {
            return Some("{}".to_string());
        };
        let one_line = self.flat(|p| {
            p.out.push_str("{ ");
            p.expr(tail, 0);
            p.out.push_str(" }");
        });
        let simple = tail.depth <= 8
            && !matches!(
                tail.kind,
                ExprKind::If(..) | ExprKind::Match(..) | ExprKind::For(..)
            );
        (simple && self.fits(&one_line)).then_some(one_line)
    }

    fn block(&mut self, b: &Block) {
        if self.one_line {
            // Measuring: a lone tail inline, anything else on lines (it does not fit anyway).
            match (&b.stmts[..], &b.tail) {
                ([], None) => self.out.push_str("{}"),
                ([], Some(tail)) => {
                    self.out.push_str("{ ");
                    self.expr(tail, 0);
                    self.out.push_str(" }");
                }
                _ => self.block_lines(b),
            }
            return;
        }
        if let Some(one_line) = self.one_line_block(b) {
            self.out.push_str(&one_line);
            return;
        }
        self.block_lines(b);
    }

    /// `b` with each statement on its line.
    fn block_lines(&mut self, b: &Block) {
        self.out.push('{');
        self.indent += 1;
        for (i, s) in b.stmts.iter().enumerate() {
            self.open_line(s.span.start, i == 0);
            self.stmt(s);
            self.end_element(s.span.end);
        }
        if let Some(tail) = &b.tail {
            self.open_line(tail.span.start, b.stmts.is_empty());
            self.expr(tail, 0);
            self.end_element(tail.span.end);
        }
        self.close_lines(b.span.end);
        self.indent -= 1;
        self.newline();
        self.out.push('}');
    }

    fn stmt(&mut self, s: &Stmt) {
        match &s.kind {
            StmtKind::Let { pat, ty, value } => {
                self.out.push_str("let ");
                match pat {
                    Pattern::Name(n) => self.out.push_str(&n.name),
                    Pattern::Tuple(names, _) => {
                        let names: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
                        let _ = write!(self.out, "({})", names.join(", "));
                    }
                }
                if let Some(t) = ty {
                    self.out.push_str(": ");
                    self.ty(t);
                }
                self.out.push_str(" = ");
                self.expr(value, 0);
            }
            StmtKind::Loss(e) => {
                self.out.push_str("loss ");
                self.expr(e, 0);
            }
            StmtKind::Metric(name, e) => {
                let _ = write!(self.out, "metric {} = ", name.name);
                self.expr(e, 0);
            }
            StmtKind::Metrics(e) => {
                self.out.push_str("metric ..");
                self.expr(e, 0);
            }
            StmtKind::Assign(name, e) => {
                let _ = write!(self.out, "{} = ", name.name);
                self.expr(e, 0);
            }
            StmtKind::Gradcheck { target, args } => {
                self.out.push_str("gradcheck ");
                self.expr(target, 0);
                if !args.is_empty() {
                    self.args(args);
                }
            }
            StmtKind::Expr(e) => self.expr(e, 0),
            StmtKind::Error => self.out.push_str("/* error */"),
        }
        self.out.push(';');
    }

    /// Whether a comment not printed yet lies inside `span`.
    fn comment_within(&self, span: Span) -> bool {
        self.trivia.as_ref().is_some_and(|t| {
            t.comments[t.next..]
                .iter()
                .any(|c| c.span.start >= span.start && c.span.start < span.end)
        })
    }

    /// `open items close` on one line when it fits, else one item per line (or, `packed`, as
    /// many as fit) with a trailing comma.
    fn list<T>(
        &mut self,
        (open, close): (char, char),
        items: &[T],
        packed: bool,
        item: fn(&mut Printer<'_>, &T),
    ) {
        let inline = |p: &mut Printer<'_>| {
            p.out.push(open);
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    p.out.push_str(", ");
                }
                item(p, x);
            }
            p.out.push(close);
        };
        if self.one_line {
            inline(self);
            return;
        }
        let flat = self.flat(inline);
        if items.is_empty() || self.fits(&flat) {
            self.out.push_str(&flat);
            return;
        }
        self.out.push(open);
        self.indent += 1;
        self.newline();
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                let text = self.flat(|p| item(p, x));
                if packed && self.fits(&format!(" {text},")) {
                    self.out.push(' ');
                } else {
                    self.newline();
                }
            }
            item(self, x);
            self.out.push(',');
        }
        self.indent -= 1;
        self.newline();
        self.out.push(close);
    }

    fn args(&mut self, args: &[Arg]) {
        self.list(('(', ')'), args, false, |p, a| p.arg(a));
    }

    fn arg(&mut self, a: &Arg) {
        match a {
            Arg::Positional(e) => self.expr(e, 0),
            Arg::Keyword(n, e) => {
                let _ = write!(self.out, "{}: ", n.name);
                self.expr(e, 0);
            }
            Arg::DimKeyword(d, e) => {
                let _ = write!(self.out, "{}: ", d.name);
                self.expr(e, 0);
            }
            Arg::DimMap(a, b) => {
                let _ = write!(self.out, "{} -> {}", a.name, b.name);
            }
        }
    }

    fn match_pattern(&mut self, p: &MatchPattern) {
        match p {
            MatchPattern::Variant(v) => self.out.push_str(&v.name),
            MatchPattern::Int(v, _) => {
                let _ = write!(self.out, "{v}");
            }
            MatchPattern::Bool(v, _) => {
                let _ = write!(self.out, "{v}");
            }
            MatchPattern::Wildcard(_) => self.out.push('_'),
        }
    }

    fn dim_pattern(&mut self, p: &DimPattern) {
        match p {
            DimPattern::One(d) => self.out.push_str(&d.name),
            DimPattern::Group(dims, _) => {
                let names: Vec<&str> = dims.iter().map(|d| d.name.as_str()).collect();
                let _ = write!(self.out, "({})", names.join(", "));
            }
            DimPattern::Pack(d) => {
                let _ = write!(self.out, "..{}", d.name);
            }
        }
    }

    /// Prints `e`, parenthesized if it binds more loosely than `min`.
    fn expr(&mut self, e: &Expr, min: u8) {
        let wrap = expr_prec(e) < min;
        if wrap {
            self.out.push('(');
        }
        self.expr_inner(e);
        if wrap {
            self.out.push(')');
        }
    }

    fn expr_inner(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Int(v) => {
                let _ = write!(self.out, "{v}");
            }
            ExprKind::Float(v) => self.out.push_str(&float_literal(*v)),
            ExprKind::Bool(v) => {
                let _ = write!(self.out, "{v}");
            }
            ExprKind::Name(n) => self.out.push_str(&n.name),
            ExprKind::Dim(d) => self.out.push_str(&d.name),
            ExprKind::Pack(d) => {
                let _ = write!(self.out, "..{}", d.name);
            }
            ExprKind::Tensor(elems) => {
                let numbers = elems.iter().all(|e| {
                    matches!(
                        &e.kind,
                        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_)
                    ) || matches!(&e.kind, ExprKind::Unary(UnOp::Neg, x)
                        if matches!(x.kind, ExprKind::Int(_) | ExprKind::Float(_)))
                });
                self.list(('[', ']'), elems, numbers, |p, el| p.expr(el, 0));
            }
            ExprKind::Record(fields) => {
                self.list(('(', ')'), fields, false, |p, (name, value)| {
                    let _ = write!(p.out, "{}: ", name.name);
                    p.expr(value, 0);
                });
            }
            ExprKind::Unary(op, inner) => {
                self.out.push(match op {
                    UnOp::Neg => '-',
                    UnOp::Not => '!',
                });
                self.expr(inner, prec::UNARY);
            }
            ExprKind::Binary(op, a, c) => {
                let p = binop_prec(*op);
                // Left-associative except `??`, which associates to the right.
                let (left_min, right_min) = if *op == BinOp::Coalesce {
                    (p + 1, p)
                } else {
                    (p, p + 1)
                };
                let inline = |q: &mut Printer<'_>| {
                    q.expr(a, left_min);
                    let _ = write!(q.out, " {} ", op.symbol());
                    q.expr(c, right_min);
                };
                if self.one_line {
                    inline(self);
                    return;
                }
                let flat = self.flat(inline);
                if self.fits(&flat) {
                    self.out.push_str(&flat);
                    return;
                }
                // A call on the right of a name whose head fits after it breaks its own
                // arguments instead.
                let atomic = matches!(
                    a.kind,
                    ExprKind::Name(_) | ExprKind::Field(..) | ExprKind::Int(_) | ExprKind::Float(_)
                );
                if let (ExprKind::Call(f, _), true) = (&c.kind, atomic) {
                    let head = self.flat(|q| {
                        q.expr(a, left_min);
                        let _ = write!(q.out, " {} ", op.symbol());
                        q.expr(f, prec::POSTFIX);
                        q.out.push('(');
                    });
                    if self.fits(&head) && expr_prec(c) >= right_min {
                        self.expr(a, left_min);
                        let _ = write!(self.out, " {} ", op.symbol());
                        self.expr(c, right_min);
                        return;
                    }
                }
                // Too long: the right operand on a continuation line, led by the operator (a
                // chain of one operator continues at the same indent).
                self.expr(a, left_min);
                let continued = self.continuation;
                if !continued {
                    self.indent += 1;
                }
                self.continuation = true;
                self.newline();
                let _ = write!(self.out, "{} ", op.symbol());
                self.continuation = false;
                self.expr(c, right_min);
                self.continuation = continued;
                if !continued {
                    self.indent -= 1;
                }
            }
            ExprKind::Compare(first, rest) => {
                self.expr(first, prec::ADD);
                for (op, operand) in rest {
                    let _ = write!(self.out, " {} ", op.symbol());
                    self.expr(operand, prec::ADD);
                }
            }
            ExprKind::Call(f, args) => {
                self.expr(f, prec::POSTFIX);
                self.args(args);
            }
            ExprKind::Cast(d, inner) => {
                let _ = write!(self.out, "{}(", d.keyword());
                self.expr(inner, 0);
                self.out.push(')');
            }
            ExprKind::Field(base, name) => {
                self.expr(base, prec::POSTFIX);
                let _ = write!(self.out, ".{}", name.name);
            }
            ExprKind::Index(base, entries) => {
                self.expr(base, prec::POSTFIX);
                self.out.push('[');
                for (i, entry) in entries.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    match entry {
                        IndexEntry::Gather {
                            dim,
                            index,
                            default,
                        } => {
                            let _ = write!(self.out, "{}: ", dim.name);
                            self.expr(index, 0);
                            if let Some(d) = default {
                                self.out.push_str(" else ");
                                self.expr(d, 0);
                            }
                        }
                        IndexEntry::Reshape { from, to } => {
                            self.dim_pattern(from);
                            self.out.push_str(" -> ");
                            self.dim_pattern(to);
                        }
                        IndexEntry::Swap(a, b) => {
                            let _ = write!(self.out, "{} <-> {}", a.name, b.name);
                        }
                    }
                }
                self.out.push(']');
            }
            ExprKind::If(cond, then, otherwise) => {
                self.out.push_str("if ");
                self.expr(cond, 0);
                self.out.push(' ');
                let else_if = match (&otherwise.stmts[..], &otherwise.tail) {
                    ([], Some(tail)) if matches!(tail.kind, ExprKind::If(..)) => Some(tail),
                    _ => None,
                };
                if self.one_line {
                    self.block(then);
                    self.out.push_str(" else ");
                    match else_if {
                        Some(tail) => self.expr(tail, 0),
                        None => self.block(otherwise),
                    }
                    return;
                }
                // Both branches on one line when both are short, else both on lines.
                let flat = self.flat(|p| {
                    p.out
                        .push_str(&p.one_line_block(then).unwrap_or_else(|| "\n".into()));
                    p.out.push_str(" else ");
                    if else_if.is_none() {
                        p.out
                            .push_str(&p.one_line_block(otherwise).unwrap_or_else(|| "\n".into()));
                    }
                });
                if else_if.is_none() && self.fits(&flat) {
                    self.out.push_str(&flat);
                    return;
                }
                self.block_lines(then);
                self.out.push_str(" else ");
                match else_if {
                    Some(tail) => self.expr(tail, 0),
                    None => self.block_lines(otherwise),
                }
            }
            ExprKind::For(f) => {
                self.out.push_str(&format!("for {} in ", f.var.name));
                self.expr(&f.lo, 0);
                self.out.push_str("..");
                self.expr(&f.hi, 0);
                self.out.push_str(&format!(", {} = ", f.acc.name));
                self.expr(&f.init, 0);
                self.out.push(' ');
                self.block(&f.body);
            }
            ExprKind::Match(scrutinee, arms) if self.inline_match => {
                self.out.push_str("match ");
                self.expr(scrutinee, 0);
                self.out.push_str(" { ");
                for (i, arm) in arms.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.match_pattern(&arm.pattern);
                    self.out.push_str(" => ");
                    self.expr(&arm.value, 0);
                }
                self.out.push_str(" }");
            }
            ExprKind::Match(scrutinee, arms) => {
                self.out.push_str("match ");
                self.expr(scrutinee, 0);
                self.out.push_str(" {");
                self.indent += 1;
                for (i, arm) in arms.iter().enumerate() {
                    self.open_line(arm.span.start, i == 0);
                    self.match_pattern(&arm.pattern);
                    self.out.push_str(" => ");
                    self.expr(&arm.value, 0);
                    self.out.push(',');
                    self.end_element(arm.span.end);
                }
                self.close_lines(e.span.end);
                self.indent -= 1;
                self.newline();
                self.out.push('}');
            }
            ExprKind::Error => self.out.push_str("/* error */"),
        }
    }
}

/// Where the item whose doc comment starts at `start` begins past its comment lines (its
/// keyword).
fn item_head(source: &str, start: usize) -> usize {
    let mut at = start;
    loop {
        let rest = &source[at..];
        let trimmed = rest.trim_start();
        let skipped = rest.len() - trimmed.len();
        if !trimmed.starts_with("//") {
            return at + skipped;
        }
        at += skipped + trimmed.find('\n').map_or(trimmed.len(), |i| i + 1);
    }
}

/// Whether `source[from..to]` holds an empty line (two line breaks with only spaces between).
fn blank_between(source: &str, from: usize, to: usize) -> bool {
    let Some(gap) = source.get(from.min(to)..to) else {
        return false;
    };
    let mut breaks = 0;
    for c in gap.chars() {
        match c {
            '\n' => {
                breaks += 1;
                if breaks >= 2 {
                    return true;
                }
            }
            ' ' | '\t' | '\r' => {}
            _ => breaks = 0,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::format_source;

    const MESSY: &str = "// A file comment.

import std.objectives.dpo


/// Doc of f.
fn f(x: f32[B], y: f32[B]) -> f32 {
    // before the first statement
    let a = x + y;   // trailing, moved below


    let b = sum(a, // inside a call
        B);
    // at the end of the block
    b
}
// between items
test \"t\" { let v = f(x: [1.0, 2.0], y: [0.5, 0.25]); expect_close(v, 3.75, 1e-6); }
// last
";

    const CANONICAL: &str = "// A file comment.

import std.objectives.dpo

/// Doc of f.
fn f(x: f32[B], y: f32[B]) -> f32 {
    // before the first statement
    let a = x + y;
    // trailing, moved below

    let b = sum(a, B);
    // inside a call
    // at the end of the block
    b
}

// between items
test \"t\" {
    let v = f(x: [1.0, 2.0], y: [0.5, 0.25]);
    expect_close(v, 3.75, 1e-6);
}

// last
";

    #[test]
    fn formatting_keeps_comments_and_blank_lines_and_is_idempotent() {
        let once = format_source(MESSY).unwrap();
        assert_eq!(once, CANONICAL);
        assert_eq!(format_source(&once).unwrap(), once);
    }

    #[test]
    fn long_lists_break_one_element_per_line_and_numbers_pack() {
        let long = format!(
            "fn g() -> f32 {{ h(first_argument_name: {0}, second_argument_name: [{1}], third: 1.0) }}\n",
            "1.0 + 2.0 + 3.0",
            (0..30).map(|i| format!("{i}.5")).collect::<Vec<_>>().join(", ")
        );
        let out = format_source(&long).unwrap();
        assert!(out.lines().all(|l| l.len() < super::WIDTH), "{out}");
        assert!(
            out.contains("    h(\n        first_argument_name: 1.0 + 2.0 + 3.0,\n"),
            "{out}"
        );
        assert!(
            out.contains("0.5, 1.5, 2.5,"),
            "numbers pack several per line:\n{out}"
        );
        assert_eq!(format_source(&out).unwrap(), out);
    }

    #[test]
    fn long_and_deep_expressions_format_in_time_proportional_to_their_size() {
        // A 250-term chain and calls nested 100 deep: each measurement is linear, so these take
        // milliseconds (trying every break inside measurements took exponential time).
        let chain: Vec<String> = (0..250).map(|i| format!("x{i}")).collect();
        let nested = format!("{}x{}", "f(".repeat(100), ")".repeat(100));
        let ifs = format!(
            "{}x{}",
            "if x > 0.0 { 1.0 } else { ".repeat(60),
            " }".repeat(60)
        );
        let tails = format!(
            "{}x{}",
            "if x > 0.0 { ".repeat(60),
            " } else { x }".repeat(60)
        );
        for body in [chain.join(" + "), nested, ifs, tails] {
            let src = format!("fn g(x: f32) -> f32 {{ {body} }}\n");
            let out = format_source(&src).unwrap();
            assert_eq!(format_source(&out).unwrap(), out);
        }
    }

    #[test]
    fn a_file_that_does_not_parse_is_not_formatted() {
        assert!(format_source("fn f( {").is_err());
    }
}
