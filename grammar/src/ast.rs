//! The abstract syntax tree. Every node carries the byte span of the source it came from.
//!
//! Expressions also carry their nesting depth, computed bottom-up by the parser, so that a
//! pathologically deep input is cut off with a diagnostic before any recursive pass sees it.

use std::fmt;

/// A half-open byte range `start..end` in one source file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// A lowercase name: a value, a declaration, a field or an enum variant.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    /// The text of the name.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// An uppercase dimension name, possibly primed (`R'`).
#[derive(Clone, Debug, PartialEq)]
pub struct DimName {
    /// The text of the name, primes included.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// A parsed `.ftl` file.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct File {
    /// Top-level items in source order.
    pub items: Vec<Item>,
}

/// A top-level item with its doc comment.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The `///` lines directly above the item, without the slashes.
    pub doc: Option<String>,
    /// What the item is.
    pub kind: ItemKind,
    /// The whole item.
    pub span: Span,
}

/// The kinds of top-level item.
#[derive(Clone, Debug, PartialEq)]
pub enum ItemKind {
    /// `import std.a.b` or `import "./file.ftl"`.
    Import(Import),
    /// `fn`, `objective`, `adapter` or `step`.
    Decl(Decl),
    /// `init`, `merge` or `unmerge` attached to an adapter.
    Attached(Attached),
    /// `test "name" { … }`.
    Test(Test),
}

/// An import.
#[derive(Clone, Debug, PartialEq)]
pub enum Import {
    /// `import std.objectives.dpo`: dotted module path.
    Module(Vec<Ident>),
    /// `import "./mine.ftl"`: path relative to the importing file.
    File {
        /// The path as written (escapes resolved).
        path: String,
        /// The string literal.
        span: Span,
    },
}

/// The four callable declaration kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeclKind {
    /// An inlined helper.
    Fn,
    /// A loss with metrics and gradients.
    Objective,
    /// A layer with forward, VJPs, init and merge.
    Adapter,
    /// A rule with named outputs and no gradient.
    Step,
}

impl DeclKind {
    /// The keyword that introduces the declaration.
    pub fn keyword(self) -> &'static str {
        match self {
            DeclKind::Fn => "fn",
            DeclKind::Objective => "objective",
            DeclKind::Adapter => "adapter",
            DeclKind::Step => "step",
        }
    }
}

/// A callable declaration.
#[derive(Clone, Debug, PartialEq)]
pub struct Decl {
    /// Which kind.
    pub kind: DeclKind,
    /// Its name.
    pub name: Ident,
    /// Parameters in order.
    pub params: Vec<Param>,
    /// The declared result, if written.
    pub ret: Option<RetType>,
    /// `requires` clauses.
    pub requires: Vec<Expr>,
    /// The body.
    pub body: Block,
}

/// Which block is attached to an adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachedKind {
    /// Produces the initial params.
    Init,
    /// Folds the adapter into the base weights.
    Merge,
    /// Undoes a merge.
    Unmerge,
}

impl AttachedKind {
    /// The keyword that introduces the block.
    pub fn keyword(self) -> &'static str {
        match self {
            AttachedKind::Init => "init",
            AttachedKind::Merge => "merge",
            AttachedKind::Unmerge => "unmerge",
        }
    }
}

/// `init lora(r: i32 = 8) requires R == r { … }`, `merge lora { … }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Attached {
    /// Init, merge or unmerge.
    pub kind: AttachedKind,
    /// The adapter it belongs to.
    pub target: Ident,
    /// Extra parameters (init options such as `r`).
    pub params: Vec<Param>,
    /// `requires` clauses.
    pub requires: Vec<Expr>,
    /// Assignments to params and const inputs.
    pub body: Block,
}

impl Attached {
    /// The entry name of the block (`lora.init`), as `--entry` takes it.
    pub fn entry_name(&self) -> String {
        format!("{}.{}", self.target.name, self.kind.keyword())
    }
}

/// `test "name" { … }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Test {
    /// The test's name.
    pub name: String,
    /// The name's string literal.
    pub name_span: Span,
    /// Statements to run.
    pub body: Block,
}

/// How a parameter takes part in differentiation and compilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A plain input: gradients are produced for float tensors.
    Input,
    /// `const`: no gradient (detached at entry).
    Const,
    /// `param`: a trainable adapter weight.
    Param,
    /// `static`: a compile-time option that picks a variant.
    Static,
}

/// One parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Its name.
    pub name: Ident,
    /// Input, const, param or static.
    pub kind: ParamKind,
    /// Its type.
    pub ty: TypeExpr,
    /// Default value (hyperparameters and options).
    pub default: Option<Expr>,
    /// The whole parameter.
    pub span: Span,
}

/// The declared result of a declaration.
#[derive(Clone, Debug, PartialEq)]
pub enum RetType {
    /// `-> f32[..L, O]`.
    Single(TypeExpr),
    /// `-> (prev_sample: f32[..S], denoised: f32[..S])`.
    Named(Vec<(Ident, TypeExpr)>),
}

/// Element types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DTypeKw {
    /// 64-bit float.
    F64,
    /// 32-bit float.
    F32,
    /// bfloat16.
    Bf16,
    /// IEEE half.
    F16,
    /// 64-bit signed integer.
    I64,
    /// 32-bit signed integer.
    I32,
    /// Boolean.
    Bool,
}

impl DTypeKw {
    /// The keyword as written.
    pub fn keyword(self) -> &'static str {
        match self {
            DTypeKw::F64 => "f64",
            DTypeKw::F32 => "f32",
            DTypeKw::Bf16 => "bf16",
            DTypeKw::F16 => "f16",
            DTypeKw::I64 => "i64",
            DTypeKw::I32 => "i32",
            DTypeKw::Bool => "bool",
        }
    }
}

/// A type as written.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeExpr {
    /// `f32`, `f32[B, T]`, `f32[O]?`.
    Tensor {
        /// Element type.
        dtype: DTypeKw,
        /// `None` for a scalar written without brackets.
        dims: Option<Vec<DimEntry>>,
        /// Written with a trailing `?`.
        optional: bool,
        /// The whole type.
        span: Span,
    },
    /// `enum { epsilon, sample }`.
    Enum {
        /// Variant names.
        variants: Vec<Ident>,
        /// The whole type.
        span: Span,
    },
}

impl TypeExpr {
    /// Where the type was written.
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Tensor { span, .. } | TypeExpr::Enum { span, .. } => *span,
        }
    }
}

/// One entry between the brackets of a tensor type.
#[derive(Clone, Debug, PartialEq)]
pub enum DimEntry {
    /// `B`, `R'`.
    Named(DimName),
    /// `S = 2`: a named dim of fixed size.
    Sized(DimName, u64, Span),
    /// `2`: an anonymous dim of fixed size.
    Fixed(u64, Span),
    /// `..S`: a pack of any number of dims.
    Pack(DimName),
}

/// `{ stmt; stmt; tail }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Statements in order.
    pub stmts: Vec<Stmt>,
    /// The value of the block, if any.
    pub tail: Option<Box<Expr>>,
    /// Braces included.
    pub span: Span,
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    /// What it does.
    pub kind: StmtKind,
    /// The whole statement.
    pub span: Span,
}

/// The statement forms.
#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `let x = e;`, `let x: f32[B] = e;`, `let (u, s, vh) = svd(…);`.
    Let {
        /// What is bound.
        pat: Pattern,
        /// Optional annotation.
        ty: Option<TypeExpr>,
        /// The bound value.
        value: Expr,
    },
    /// `loss e;`
    Loss(Expr),
    /// `metric name = e;`
    Metric(Ident, Expr),
    /// `metric ..e;`: every field of the record e is a metric of that name.
    Metrics(Expr),
    /// `name = e;` (outputs of init, merge, unmerge and steps).
    Assign(Ident, Expr),
    /// `gradcheck sigmoid;` or `gradcheck sigmoid(B: 3, beta: 0.5);`
    Gradcheck {
        /// The entry to check (a name or a qualified name).
        target: Expr,
        /// Dim sizes and hyperparameters.
        args: Vec<Arg>,
    },
    /// `e;`
    Expr(Expr),
    /// A statement that failed to parse (already reported).
    Error,
}

/// The left side of a `let`.
#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    /// One name.
    Name(Ident),
    /// `(a, b, c)`: the outputs of a multi-result builtin in order.
    Tuple(Vec<Ident>, Span),
}

/// An expression with its span and nesting depth.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it was written.
    pub span: Span,
    /// Height of the tree below this node (1 for a leaf).
    pub depth: u32,
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    /// `-x`
    Neg,
    /// `!x`
    Not,
}

/// Binary operators (comparisons are [`CmpOp`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (true division)
    Div,
    /// `%` (floor modulo)
    Rem,
    /// `@` (contract the one shared dim)
    MatMul,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `??` (default for an optional input)
    Coalesce,
}

impl BinOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::MatMul => "@",
            BinOp::And => "&&",
            BinOp::Or => "||",
            BinOp::Coalesce => "??",
        }
    }
}

/// Comparison operators; `a < b <= c` chains as in Python.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A call argument.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// `e`
    Positional(Expr),
    /// `name: e`
    Keyword(Ident, Expr),
    /// `D: e` (scatter target dim, gradcheck dim sizes)
    DimKeyword(DimName, Expr),
    /// `D -> K` (a dim that a builtin maps to a new one: `topk(x, V -> K)`)
    DimMap(DimName, DimName),
}

/// A dimension or a group of them on one side of `->` in an index.
#[derive(Clone, Debug, PartialEq)]
pub enum DimPattern {
    /// `R`
    One(DimName),
    /// `(S, B)`
    Group(Vec<DimName>, Span),
    /// `..S`
    Pack(DimName),
}

/// One entry of `x[...]`.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexEntry {
    /// `D: i` or `D: i else v`.
    Gather {
        /// The dim indexed.
        dim: DimName,
        /// Integer index tensor.
        index: Expr,
        /// Value read out of range.
        default: Option<Expr>,
    },
    /// `R -> R'`, `N -> (S, B)`, `(O1, O2) -> O`, `..S -> D`.
    Reshape {
        /// The dims taken.
        from: DimPattern,
        /// The dims produced.
        to: DimPattern,
    },
    /// `R <-> R'`: exchange two dims' names (a transpose).
    Swap(DimName, DimName),
}

/// One arm of a `match`.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchArm {
    /// A variant name, an integer, or `_`.
    pub pattern: MatchPattern,
    /// The arm's value.
    pub value: Expr,
    /// The whole arm.
    pub span: Span,
}

/// What a `match` arm compares against.
#[derive(Clone, Debug, PartialEq)]
pub enum MatchPattern {
    /// `epsilon =>`
    Variant(Ident),
    /// `3 =>` (static i32)
    Int(i64, Span),
    /// `true =>`
    Bool(bool, Span),
    /// `_ =>`
    Wildcard(Span),
}

/// `for var in lo..hi, acc = init { body }`: `acc` starts as `init` and becomes the body's
/// value for `var` = lo, …, hi − 1 in turn (static bounds); the loop's value is the last `acc`.
#[derive(Clone, Debug, PartialEq)]
pub struct ForLoop {
    /// The iteration variable (a static `i32`).
    pub var: Ident,
    /// First value of `var`.
    pub lo: Expr,
    /// One past the last value of `var`.
    pub hi: Expr,
    /// The accumulator.
    pub acc: Ident,
    /// The accumulator's value before the first iteration.
    pub init: Expr,
    /// The next accumulator, from `var` and `acc`.
    pub body: Block,
}

/// The expression forms.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// `3`
    Int(i64),
    /// `0.1`
    Float(f64),
    /// `true`
    Bool(bool),
    /// `x`
    Name(Ident),
    /// `B` used as a value (its size) or as a builtin's dim argument.
    Dim(DimName),
    /// `..S` as a builtin's dim argument.
    Pack(DimName),
    /// `[1.0, 2.0]`
    Tensor(Vec<Expr>),
    /// `(prev_sample: e, denoised: e)`
    Record(Vec<(Ident, Expr)>),
    /// `-x`, `!x`
    Unary(UnOp, Box<Expr>),
    /// `a + b`
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `a < b <= c`
    Compare(Box<Expr>, Vec<(CmpOp, Expr)>),
    /// `f(a, k: v)`
    Call(Box<Expr>, Vec<Arg>),
    /// `f32(x)`
    Cast(DTypeKw, Box<Expr>),
    /// `r.loss`
    Field(Box<Expr>, Ident),
    /// `x[D: i]`, `x[R -> R']`
    Index(Box<Expr>, Vec<IndexEntry>),
    /// `if c { … } else { … }`
    If(Box<Expr>, Box<Block>, Box<Block>),
    /// `match e { a => x, _ => y }`
    Match(Box<Expr>, Vec<MatchArm>),
    /// `for k in lo..hi, acc = init { body }`: a static loop, unrolled when lowered.
    For(Box<ForLoop>),
    /// A part that failed to parse or was too deep (already reported).
    Error,
}
