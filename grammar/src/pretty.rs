//! The pretty printer: canonical FTL source for an AST. Parsing its output gives back the same
//! tree (spans aside); parentheses are written only where precedence needs them.

use crate::ast::*;
use std::fmt::Write;

/// Canonical source text of a file.
pub fn print_file(file: &File) -> String {
    let mut p = Printer::default();
    for (i, item) in file.items.iter().enumerate() {
        if i > 0 {
            p.out.push('\n');
        }
        p.item(item);
    }
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
struct Printer {
    out: String,
    indent: usize,
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

/// A float written so that it lexes as a float and reads back to the same value.
fn float_literal(v: f64) -> String {
    let s = format!("{v:?}");
    if s.contains(['.', 'e', 'E']) {
        s
    } else {
        format!("{s}.0")
    }
}

impl Printer {
    fn newline(&mut self) {
        self.out.push('\n');
        for _ in 0..self.indent {
            self.out.push_str("    ");
        }
    }

    fn item(&mut self, item: &Item) {
        if let Some(doc) = &item.doc {
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
                let _ = write!(self.out, "{} {}", d.kind.keyword(), d.name.name);
                self.params(&d.params);
                if let Some(ret) = &d.ret {
                    self.out.push_str(" -> ");
                    match ret {
                        RetType::Single(t) => self.ty(t),
                        RetType::Named(fields) => {
                            self.out.push('(');
                            for (i, (name, t)) in fields.iter().enumerate() {
                                if i > 0 {
                                    self.out.push_str(", ");
                                }
                                let _ = write!(self.out, "{}: ", name.name);
                                self.ty(t);
                            }
                            self.out.push(')');
                        }
                    }
                }
                self.requires(&d.requires);
                self.out.push(' ');
                self.block(&d.body);
                self.out.push('\n');
            }
            ItemKind::Attached(a) => {
                let _ = write!(self.out, "{} {}", a.kind.keyword(), a.target.name);
                if !a.params.is_empty() {
                    self.params(&a.params);
                }
                self.requires(&a.requires);
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

    fn params(&mut self, params: &[Param]) {
        if params.len() <= 3 && params.iter().all(|p| p.default.is_none()) {
            self.out.push('(');
            for (i, p) in params.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                self.param(p);
            }
            self.out.push(')');
            return;
        }
        self.out.push('(');
        self.indent += 1;
        for p in params {
            self.newline();
            self.param(p);
            self.out.push(',');
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

    fn requires(&mut self, requires: &[Expr]) {
        if requires.is_empty() {
            return;
        }
        self.out.push_str(" requires ");
        for (i, r) in requires.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.expr(r, 0);
        }
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

    fn block(&mut self, b: &Block) {
        if b.stmts.is_empty() {
            if let Some(tail) = &b.tail {
                if tail.depth <= 8
                    && !matches!(
                        tail.kind,
                        ExprKind::If(..) | ExprKind::Match(..) | ExprKind::For(..)
                    )
                {
                    self.out.push_str("{ ");
                    self.expr(tail, 0);
                    self.out.push_str(" }");
                    return;
                }
            } else {
                self.out.push_str("{}");
                return;
            }
        }
        self.out.push('{');
        self.indent += 1;
        for s in &b.stmts {
            self.newline();
            self.stmt(s);
        }
        if let Some(tail) = &b.tail {
            self.newline();
            self.expr(tail, 0);
        }
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

    fn args(&mut self, args: &[Arg]) {
        self.out.push('(');
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
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
        self.out.push(')');
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
                self.out.push('[');
                for (i, el) in elems.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.expr(el, 0);
                }
                self.out.push(']');
            }
            ExprKind::Record(fields) => {
                self.out.push('(');
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    let _ = write!(self.out, "{}: ", name.name);
                    self.expr(value, 0);
                }
                self.out.push(')');
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
                self.expr(a, left_min);
                let _ = write!(self.out, " {} ", op.symbol());
                self.expr(c, right_min);
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
                self.block(then);
                self.out.push_str(" else ");
                match (&otherwise.stmts[..], &otherwise.tail) {
                    ([], Some(tail)) if matches!(tail.kind, ExprKind::If(..)) => self.expr(tail, 0),
                    _ => self.block(otherwise),
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
            ExprKind::Match(scrutinee, arms) => {
                self.out.push_str("match ");
                self.expr(scrutinee, 0);
                self.out.push_str(" {");
                self.indent += 1;
                for arm in arms {
                    self.newline();
                    match &arm.pattern {
                        MatchPattern::Variant(v) => self.out.push_str(&v.name),
                        MatchPattern::Int(v, _) => {
                            let _ = write!(self.out, "{v}");
                        }
                        MatchPattern::Bool(v, _) => {
                            let _ = write!(self.out, "{v}");
                        }
                        MatchPattern::Wildcard(_) => self.out.push('_'),
                    }
                    self.out.push_str(" => ");
                    self.expr(&arm.value, 0);
                    self.out.push(',');
                }
                self.indent -= 1;
                self.newline();
                self.out.push('}');
            }
            ExprKind::Error => self.out.push_str("/* error */"),
        }
    }
}
