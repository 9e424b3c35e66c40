//! The lexer: logos turns text into tokens; a small pass then attaches `///` doc comments to the
//! top-level item that follows them and drops the others (they are ordinary comments there).

use crate::ast::Span;
use logos::Logos;
use std::fmt;

/// Why a piece of text is not a token.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum LexErrorKind {
    /// A character that starts no token.
    #[default]
    InvalidChar,
    /// An integer literal that does not fit in 64 bits.
    IntTooLarge,
    /// A float literal that overflows to infinity.
    FloatTooLarge,
    /// A string literal with no closing quote.
    UnterminatedString,
    /// A string literal with an unknown escape.
    BadEscape,
}

/// A lexing error with its location.
#[derive(Clone, Debug, PartialEq)]
pub struct LexError {
    /// What went wrong.
    pub kind: LexErrorKind,
    /// Where.
    pub span: Span,
}

fn parse_int(lex: &mut logos::Lexer<'_, RawTok>) -> Result<i64, LexErrorKind> {
    lex.slice().parse().map_err(|_| LexErrorKind::IntTooLarge)
}

fn parse_float(lex: &mut logos::Lexer<'_, RawTok>) -> Result<f64, LexErrorKind> {
    match lex.slice().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(LexErrorKind::FloatTooLarge),
    }
}

fn parse_string(lex: &mut logos::Lexer<'_, RawTok>) -> Result<String, LexErrorKind> {
    let body = &lex.slice()[1..lex.slice().len() - 1];
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            _ => return Err(LexErrorKind::BadEscape),
        }
    }
    Ok(out)
}

fn unterminated_string(_: &mut logos::Lexer<'_, RawTok>) -> Result<(), LexErrorKind> {
    Err(LexErrorKind::UnterminatedString)
}

fn invalid_char(_: &mut logos::Lexer<'_, RawTok>) -> Result<(), LexErrorKind> {
    Err(LexErrorKind::InvalidChar)
}

/// Tokens as logos produces them.
#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(error = LexErrorKind)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(skip r"//([^/\n][^\n]*)?")]
enum RawTok {
    #[regex(r"///[^\n]*", |lex| lex.slice()[3..].to_string(), allow_greedy = true)]
    DocLine(String),
    #[regex(r#""([^"\\\n]|\\.)*""#, parse_string)]
    Str(String),
    #[regex(r#""([^"\\\n]|\\.)*"#, unterminated_string)]
    UnterminatedStr,
    #[regex("[0-9]+", parse_int)]
    Int(i64),
    #[regex(r"[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?", parse_float)]
    #[regex(r"[0-9]+[eE][+-]?[0-9]+", parse_float)]
    Float(f64),
    #[regex("[a-z_][A-Za-z0-9_]*", |lex| lex.slice().to_string())]
    Ident(String),
    #[regex("[A-Z][A-Za-z0-9_]*'*", |lex| lex.slice().to_string())]
    Dim(String),
    #[regex(r"[^\x00-\x7F]", invalid_char)]
    NonAscii,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(";")]
    Semi,
    #[token(":")]
    Colon,
    #[token(".")]
    Dot,
    #[token("..")]
    DotDot,
    #[token("->")]
    Arrow,
    #[token("<->")]
    Swap,
    #[token("=>")]
    FatArrow,
    #[token("=")]
    Assign,
    #[token("==")]
    EqEq,
    #[token("!=")]
    Ne,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("@")]
    At,
    #[token("!")]
    Bang,
    #[token("&&")]
    AndAnd,
    #[token("||")]
    OrOr,
    #[token("??")]
    Coalesce,
    #[token("?")]
    Question,
}

/// A token of the FTL grammar.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// `///` lines directly above a top-level item, joined with newlines.
    Doc(String),
    /// A string literal with escapes resolved.
    Str(String),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A lowercase name (keywords are separate tokens).
    Ident(String),
    /// An uppercase dim name.
    Dim(String),
    /// A keyword.
    Kw(Keyword),
    /// Any other punctuation, as written.
    Punct(&'static str),
}

/// Reserved words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Keyword {
    Fn,
    Objective,
    Adapter,
    Step,
    Init,
    Merge,
    Unmerge,
    Test,
    Import,
    Let,
    Loss,
    Metric,
    Const,
    Param,
    Static,
    Enum,
    If,
    Else,
    For,
    In,
    Match,
    Requires,
    Gradcheck,
    True,
    False,
    F64,
    F32,
    Bf16,
    F16,
    I64,
    I32,
    Bool,
}

/// Every reserved word, as written (for editors' completion and grammars).
pub const KEYWORDS: &[&str] = &[
    "fn",
    "objective",
    "adapter",
    "step",
    "init",
    "merge",
    "unmerge",
    "test",
    "import",
    "let",
    "loss",
    "metric",
    "const",
    "param",
    "static",
    "enum",
    "if",
    "else",
    "for",
    "in",
    "match",
    "requires",
    "gradcheck",
    "true",
    "false",
    "f64",
    "f32",
    "bf16",
    "f16",
    "i64",
    "i32",
    "bool",
];

impl Keyword {
    /// The keyword for a lowercase word, if it is one.
    pub fn from_word(word: &str) -> Option<Keyword> {
        Some(match word {
            "fn" => Keyword::Fn,
            "objective" => Keyword::Objective,
            "adapter" => Keyword::Adapter,
            "step" => Keyword::Step,
            "init" => Keyword::Init,
            "merge" => Keyword::Merge,
            "unmerge" => Keyword::Unmerge,
            "test" => Keyword::Test,
            "import" => Keyword::Import,
            "let" => Keyword::Let,
            "loss" => Keyword::Loss,
            "metric" => Keyword::Metric,
            "const" => Keyword::Const,
            "param" => Keyword::Param,
            "static" => Keyword::Static,
            "enum" => Keyword::Enum,
            "if" => Keyword::If,
            "else" => Keyword::Else,
            "for" => Keyword::For,
            "in" => Keyword::In,
            "match" => Keyword::Match,
            "requires" => Keyword::Requires,
            "gradcheck" => Keyword::Gradcheck,
            "true" => Keyword::True,
            "false" => Keyword::False,
            "f64" => Keyword::F64,
            "f32" => Keyword::F32,
            "bf16" => Keyword::Bf16,
            "f16" => Keyword::F16,
            "i64" => Keyword::I64,
            "i32" => Keyword::I32,
            "bool" => Keyword::Bool,
            _ => return None,
        })
    }

    /// Keywords that start a top-level item (a doc comment attaches to these).
    fn starts_item(self) -> bool {
        matches!(
            self,
            Keyword::Fn
                | Keyword::Objective
                | Keyword::Adapter
                | Keyword::Step
                | Keyword::Init
                | Keyword::Merge
                | Keyword::Unmerge
                | Keyword::Test
                | Keyword::Import
        )
    }
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Doc(_) => write!(f, "doc comment"),
            Tok::Str(s) => write!(f, "string {s:?}"),
            Tok::Int(v) => write!(f, "`{v}`"),
            Tok::Float(v) => write!(f, "`{v:?}`"),
            Tok::Ident(s) | Tok::Dim(s) => write!(f, "`{s}`"),
            Tok::Kw(k) => write!(f, "`{}`", format!("{k:?}").to_lowercase()),
            Tok::Punct(p) => write!(f, "`{p}`"),
        }
    }
}

/// A token with its byte range, as the parser consumes it.
pub type Spanned = (usize, Tok, usize);

fn punct(raw: &RawTok) -> Option<&'static str> {
    Some(match raw {
        RawTok::LParen => "(",
        RawTok::RParen => ")",
        RawTok::LBracket => "[",
        RawTok::RBracket => "]",
        RawTok::LBrace => "{",
        RawTok::RBrace => "}",
        RawTok::Comma => ",",
        RawTok::Semi => ";",
        RawTok::Colon => ":",
        RawTok::Dot => ".",
        RawTok::DotDot => "..",
        RawTok::Arrow => "->",
        RawTok::Swap => "<->",
        RawTok::FatArrow => "=>",
        RawTok::Assign => "=",
        RawTok::EqEq => "==",
        RawTok::Ne => "!=",
        RawTok::Lt => "<",
        RawTok::Le => "<=",
        RawTok::Gt => ">",
        RawTok::Ge => ">=",
        RawTok::Plus => "+",
        RawTok::Minus => "-",
        RawTok::Star => "*",
        RawTok::Slash => "/",
        RawTok::Percent => "%",
        RawTok::At => "@",
        RawTok::Bang => "!",
        RawTok::AndAnd => "&&",
        RawTok::OrOr => "||",
        RawTok::Coalesce => "??",
        RawTok::Question => "?",
        _ => return None,
    })
}

/// Lexes a whole source text. `//` starts a comment (so floor division is the builtin
/// `floordiv`); `///` directly above a top-level item is its doc comment.
pub fn lex(source: &str) -> (Vec<Spanned>, Vec<LexError>) {
    let mut tokens: Vec<Spanned> = Vec::new();
    let mut errors = Vec::new();
    let mut pending_doc: Vec<(usize, String, usize)> = Vec::new();
    let mut depth: i64 = 0;
    let mut lexer = RawTok::lexer(source);
    while let Some(result) = lexer.next() {
        let range = lexer.span();
        let raw = match result {
            Ok(raw) => raw,
            Err(kind) => {
                // A malformed literal still stands for a value, so the parse goes on cleanly.
                let placeholder = match kind {
                    LexErrorKind::IntTooLarge => Some(Tok::Int(0)),
                    LexErrorKind::FloatTooLarge => Some(Tok::Float(0.0)),
                    LexErrorKind::UnterminatedString | LexErrorKind::BadEscape => {
                        Some(Tok::Str(String::new()))
                    }
                    LexErrorKind::InvalidChar => None,
                };
                errors.push(LexError {
                    kind,
                    span: Span::new(range.start, range.end),
                });
                if let Some(tok) = placeholder {
                    tokens.push((range.start, tok, range.end));
                }
                continue;
            }
        };
        let tok = match raw {
            RawTok::DocLine(text) => {
                pending_doc.push((range.start, text, range.end));
                continue;
            }
            RawTok::Str(s) => Tok::Str(s),
            RawTok::Int(v) => Tok::Int(v),
            RawTok::Float(v) => Tok::Float(v),
            RawTok::Ident(word) => match Keyword::from_word(&word) {
                Some(kw) => Tok::Kw(kw),
                None => Tok::Ident(word),
            },
            RawTok::Dim(name) => Tok::Dim(name),
            RawTok::UnterminatedStr | RawTok::NonAscii => {
                unreachable!("these patterns only produce errors")
            }
            other => Tok::Punct(punct(&other).expect("every remaining raw token is punctuation")),
        };
        if !pending_doc.is_empty() {
            let attaches = depth == 0 && matches!(tok, Tok::Kw(kw) if kw.starts_item());
            if attaches {
                let start = pending_doc[0].0;
                let end = pending_doc[pending_doc.len() - 1].2;
                let text: Vec<&str> = pending_doc
                    .iter()
                    .map(|(_, t, _)| t.strip_prefix(' ').unwrap_or(t))
                    .collect();
                tokens.push((start, Tok::Doc(text.join("\n")), end));
            }
            pending_doc.clear();
        }
        match tok {
            Tok::Punct("(" | "[" | "{") => depth += 1,
            Tok::Punct(")" | "]" | "}") => depth -= 1,
            _ => {}
        }
        tokens.push((range.start, tok, range.end));
    }
    (tokens, errors)
}

/// A `//` comment (or a `///` line) of the source, for the formatter.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    /// From the slashes to the end of the line (the line break excluded).
    pub span: Span,
    /// Its text, slashes included, trailing spaces removed.
    pub text: String,
}

/// Every comment of `source` in order, `///` lines included (those a top-level item holds as
/// its doc too). Slashes inside string literals start none.
pub fn comments(source: &str) -> Vec<Comment> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // A string literal ends at its closing quote or the line's end.
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = source[i..].find('\n').map_or(source.len(), |n| i + n);
                out.push(Comment {
                    span: Span::new(i, end),
                    text: source[i..end].trim_end().to_string(),
                });
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Keyword, KEYWORDS};

    #[test]
    fn every_listed_keyword_is_one_and_names_itself() {
        for word in KEYWORDS {
            let k = Keyword::from_word(word).expect(word);
            assert_eq!(format!("{k:?}").to_lowercase(), *word);
        }
        assert!(Keyword::from_word("floordiv").is_none());
    }
}
