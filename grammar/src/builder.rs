//! Helpers the grammar's actions call: expression nodes with their depth, and recovered errors.

use crate::ast::*;
use crate::lexer::{LexError, Tok};
use crate::{SyntaxError, SyntaxErrorKind};
use lalrpop_util::{ErrorRecovery, ParseError};

/// The deepest expression tree accepted. Deeper input is replaced by an error node, so every
/// later pass may recurse over the tree without risking the stack.
pub const MAX_DEPTH: u32 = 256;

/// The depth given to a node cut off for being too deep; its ancestors are cut off silently.
const CUT_OFF: u32 = MAX_DEPTH + 1;

/// Builds nodes for the grammar and collects the errors it recovers from.
#[derive(Default)]
pub struct Builder {
    /// Errors recovered during the parse, in source order.
    pub errors: Vec<SyntaxError>,
}

impl Builder {
    /// A node of `kind` spanning `l..r`, or an error node if it would be too deep.
    pub fn expr(&mut self, kind: ExprKind, l: usize, r: usize) -> Expr {
        let span = Span::new(l, r);
        let below = child_depth(&kind);
        if below >= CUT_OFF {
            return Expr {
                kind: ExprKind::Error,
                span,
                depth: CUT_OFF,
            };
        }
        if below + 1 > MAX_DEPTH {
            self.errors.push(SyntaxError {
                kind: SyntaxErrorKind::TooDeep,
                span,
            });
            return Expr {
                kind: ExprKind::Error,
                span,
                depth: CUT_OFF,
            };
        }
        Expr {
            kind,
            span,
            depth: below + 1,
        }
    }

    /// `a op c`.
    pub fn binary(&mut self, op: BinOp, a: Expr, c: Expr, l: usize, r: usize) -> Expr {
        self.expr(ExprKind::Binary(op, Box::new(a), Box::new(c)), l, r)
    }

    /// Records an error the parser recovered from.
    pub fn recover(&mut self, recovery: ErrorRecovery<usize, Tok, LexError>) {
        self.errors.push(convert_parse_error(recovery.error));
    }
}

/// Turns lalrpop's error into ours.
pub fn convert_parse_error(error: ParseError<usize, Tok, LexError>) -> SyntaxError {
    match error {
        ParseError::InvalidToken { location } => SyntaxError {
            kind: SyntaxErrorKind::UnexpectedToken {
                found: "invalid token".into(),
                expected: vec![],
            },
            span: Span::new(location, location + 1),
        },
        ParseError::UnrecognizedEof { location, expected } => SyntaxError {
            kind: SyntaxErrorKind::UnexpectedEof {
                expected: friendly_expected(&expected),
            },
            span: Span::new(location, location),
        },
        ParseError::UnrecognizedToken {
            token: (l, tok, r),
            expected,
        } => SyntaxError {
            kind: SyntaxErrorKind::UnexpectedToken {
                found: tok.to_string(),
                expected: friendly_expected(&expected),
            },
            span: Span::new(l, r),
        },
        ParseError::ExtraToken { token: (l, tok, r) } => SyntaxError {
            kind: SyntaxErrorKind::UnexpectedToken {
                found: tok.to_string(),
                expected: vec![],
            },
            span: Span::new(l, r),
        },
        ParseError::User { error } => SyntaxError {
            kind: SyntaxErrorKind::Lex(error.kind),
            span: error.span,
        },
    }
}

/// lalrpop names terminals as in the grammar (`"("`, `IDENT`); users want `(` and "a name".
fn friendly_expected(expected: &[String]) -> Vec<String> {
    let mut out: Vec<String> = expected
        .iter()
        .map(|t| match t.as_str() {
            "IDENT" => "a name".to_string(),
            "DIM" => "a dim name".to_string(),
            "INT" => "an integer".to_string(),
            "FLOAT" => "a number".to_string(),
            "STR" => "a string".to_string(),
            "DOC" => "a doc comment".to_string(),
            other => format!("`{}`", other.trim_matches('"')),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn block_depth(block: &Block) -> u32 {
    let stmts = block.stmts.iter().map(|s| match &s.kind {
        StmtKind::Let { value: e, .. }
        | StmtKind::Loss(e)
        | StmtKind::Metric(_, e)
        | StmtKind::Metrics(e)
        | StmtKind::Assign(_, e)
        | StmtKind::Expr(e) => e.depth,
        StmtKind::Gradcheck { target, args } => args
            .iter()
            .map(arg_depth)
            .max()
            .unwrap_or(0)
            .max(target.depth),
        StmtKind::Error => 0,
    });
    stmts
        .chain(block.tail.iter().map(|t| t.depth))
        .max()
        .unwrap_or(0)
}

fn arg_depth(arg: &Arg) -> u32 {
    match arg {
        Arg::Positional(e) | Arg::Keyword(_, e) | Arg::DimKeyword(_, e) => e.depth,
        Arg::DimMap(..) => 0,
    }
}

/// The largest depth among a node's direct children (0 for a leaf).
fn child_depth(kind: &ExprKind) -> u32 {
    let max = |it: &mut dyn Iterator<Item = u32>| it.max().unwrap_or(0);
    match kind {
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Name(_)
        | ExprKind::Dim(_)
        | ExprKind::Pack(_)
        | ExprKind::Error => 0,
        ExprKind::Tensor(elems) => max(&mut elems.iter().map(|e| e.depth)),
        ExprKind::Record(fields) => max(&mut fields.iter().map(|(_, e)| e.depth)),
        ExprKind::Unary(_, e) | ExprKind::Cast(_, e) | ExprKind::Field(e, _) => e.depth,
        ExprKind::Binary(_, a, c) => a.depth.max(c.depth),
        ExprKind::Compare(first, rest) => {
            first.depth.max(max(&mut rest.iter().map(|(_, e)| e.depth)))
        }
        ExprKind::Call(f, args) => f.depth.max(max(&mut args.iter().map(arg_depth))),
        ExprKind::Index(e, entries) => {
            e.depth
                .max(max(&mut entries.iter().map(|entry| match entry {
                    IndexEntry::Gather { index, default, .. } => {
                        index.depth.max(default.as_ref().map_or(0, |d| d.depth))
                    }
                    IndexEntry::Reshape { .. } | IndexEntry::Swap(..) => 0,
                })))
        }
        ExprKind::If(c, t, e) => c.depth.max(block_depth(t)).max(block_depth(e)),
        ExprKind::For(f) => {
            f.lo.depth
                .max(f.hi.depth)
                .max(f.init.depth)
                .max(block_depth(&f.body))
        }
        ExprKind::Match(s, arms) => s.depth.max(max(&mut arms.iter().map(|a| a.value.depth))),
    }
}
