//! `ftl-syntax`: the FTL lexer (logos), grammar (lalrpop, generated at build time), an AST whose
//! every node carries a byte span, and a pretty printer whose output parses back to the same AST.
//!
//! Parsing never fails: [`parse_file`] always returns a tree (with error nodes where the input
//! was wrong) together with every syntax error it recovered from.

pub mod ast;
mod builder;
pub mod lexer;
pub mod pretty;

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, clippy::pedantic, missing_docs, unused)]
    grammar
);

use ast::{Expr, File, Span};
pub use builder::MAX_DEPTH;
use lexer::LexErrorKind;

/// A syntax error with its location.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    /// What went wrong.
    pub kind: SyntaxErrorKind,
    /// Where.
    pub span: Span,
}

/// The kinds of syntax error.
#[derive(Clone, Debug, PartialEq)]
pub enum SyntaxErrorKind {
    /// Text that is not a token.
    Lex(LexErrorKind),
    /// A token the grammar does not allow here.
    UnexpectedToken {
        /// The token found, as the user would write it.
        found: String,
        /// What would have been accepted.
        expected: Vec<String>,
    },
    /// The file ended in the middle of something.
    UnexpectedEof {
        /// What would have been accepted.
        expected: Vec<String>,
    },
    /// Expressions nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// Lexes `source`, turning lexing errors into syntax errors.
fn lex_with_errors(source: &str) -> (Vec<lexer::Spanned>, Vec<SyntaxError>) {
    let (tokens, lex_errors) = lexer::lex(source);
    let errors = lex_errors
        .into_iter()
        .map(|e| SyntaxError {
            kind: SyntaxErrorKind::Lex(e.kind),
            span: e.span,
        })
        .collect();
    (tokens, errors)
}

/// Parses a whole file. Lexing errors are reported and the offending text skipped; the parser
/// recovers at statement and item boundaries, so one run reports several errors.
pub fn parse_file(source: &str) -> (File, Vec<SyntaxError>) {
    let (tokens, mut errors) = lex_with_errors(source);
    let mut b = builder::Builder::default();
    let result = grammar::FileParser::new().parse(&mut b, tokens.into_iter().map(Ok));
    errors.append(&mut b.errors);
    let file = match result {
        Ok(file) => file,
        Err(e) => {
            errors.push(builder::convert_parse_error(e));
            File::default()
        }
    };
    errors.sort_by_key(|e| (e.span.start, e.span.end));
    (file, errors)
}

/// Parses one expression (used by tests and by `--set` values on the command line).
pub fn parse_expr(source: &str) -> Result<Expr, Vec<SyntaxError>> {
    let (tokens, mut errors) = lex_with_errors(source);
    let mut b = builder::Builder::default();
    let result = grammar::ExprParser::new().parse(&mut b, tokens.into_iter().map(Ok));
    errors.append(&mut b.errors);
    match result {
        Ok(expr) if errors.is_empty() => Ok(expr),
        Ok(_) => Err(errors),
        Err(e) => {
            errors.push(builder::convert_parse_error(e));
            Err(errors)
        }
    }
}
