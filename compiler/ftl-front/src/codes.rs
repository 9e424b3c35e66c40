//! The table of error codes: each code's id, title and long explanation, in one place.

/// An error code. `ftc explain <ID>` prints its explanation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// E0001: invalid character.
    InvalidToken,
    /// E0002: unexpected token.
    UnexpectedToken,
    /// E0003: unexpected end of file.
    UnexpectedEof,
    /// E0004: integer literal too large.
    IntTooLarge,
    /// E0005: float literal out of range.
    FloatOutOfRange,
    /// E0006: malformed string literal.
    BadString,
    /// E0007: expression nested too deeply.
    TooDeep,
    /// E0008: source file too large.
    FileTooLarge,
    /// E0009: source is not valid UTF-8.
    InvalidUtf8,
    /// E0010: cannot read file.
    CannotRead,
    /// E0011: import not found.
    ImportNotFound,
    /// E0012: import outside the project root.
    ImportEscapesRoot,
    /// E0013: import cycle.
    ImportCycle,
    /// E0020: unknown name.
    UnknownName,
    /// E0021: duplicate declaration.
    DuplicateDecl,
    /// E0022: duplicate name.
    DuplicateBinding,
    /// E0023: not callable.
    NotCallable,
    /// E0024: ambiguous name.
    AmbiguousName,
    /// E0025: unknown field.
    UnknownField,
    /// E0026: unknown dim.
    UnknownDim,
    /// E0027: unknown keyword argument.
    UnknownKeyword,
    /// E0028: wrong number of arguments.
    WrongArity,
    /// E0029: missing argument.
    MissingArgument,
    /// E0030: argument given twice.
    DuplicateArgument,
    /// E0031: recursive call.
    Recursion,
    /// E0032: init/merge/unmerge without its adapter.
    BadAttachedBlock,
    /// E0033: unknown enum variant.
    UnknownVariant,
    /// E0040: dtype mismatch.
    DTypeMismatch,
    /// E0041: dims do not match.
    DimMismatch,
    /// E0042: expected a scalar.
    ExpectedScalar,
    /// E0043: expected a bool.
    ExpectedBool,
    /// E0044: expected an integer.
    ExpectedInteger,
    /// E0045: `@` needs exactly one shared dim.
    BadContraction,
    /// E0046: dim not in operand.
    DimNotInOperand,
    /// E0047: body does not match the declared type.
    ReturnTypeMismatch,
    /// E0048: default has the wrong type.
    DefaultTypeMismatch,
    /// E0049: a parameter with a default must be a scalar.
    HyperparameterNotScalar,
    /// E0050: condition is not static.
    NonStaticCondition,
    /// E0051: optional input used without a default.
    OptionalNotChecked,
    /// E0052: `??` on a value that is always present.
    CoalesceNotOptional,
    /// E0053: literal shape does not fit.
    AnonymousDimMismatch,
    /// E0054: ragged tensor literal.
    RaggedLiteral,
    /// E0055: misused pack.
    BadPack,
    /// E0056: invalid dim rename, split or merge.
    BadReshape,
    /// E0057: invalid dim equation.
    BadDimEquation,
    /// E0058: dim is never bound.
    DimNotBound,
    /// E0059: invalid requires clause.
    BadRequires,
    /// E0060: not a record.
    NotARecord,
    /// E0061: not a tensor value.
    NotATensor,
    /// E0070: an objective needs exactly one loss.
    LossCount,
    /// E0071: loss or metric is not a float scalar.
    LossNotScalar,
    /// E0072: statement not allowed here.
    MisplacedLoss,
    /// E0073: missing or unexpected result value.
    MissingResult,
    /// E0074: outputs not assigned as declared.
    BadOutputs,
    /// E0075: assignment to a name that is not an output.
    BadAssignment,
    /// E0077: test-only construct outside a test.
    TestOnly,
    /// E0078: invalid gradcheck.
    BadGradcheck,
    /// E0079: builtin has no gradient here.
    NotDifferentiable,
    /// E0081: merge uses a value that depends on the data input.
    DataDependentLet,
    /// E0083: invalid static option.
    BadStatic,
    /// E0084: step output does not match the input it updates.
    StepOutputType,
    /// E0085: invalid match.
    BadMatch,
    /// E0086: cannot infer the shape.
    ShapeNotInferable,
    /// E0090: no such entry.
    UnknownEntry,
    /// E0091: inputs do not match the entry.
    BadInputs,
    /// E0092: invalid `--set` or `--dims`.
    BadSetting,
    /// E0093: a `requires` condition fails on the given values.
    RequiresFailed,
    /// E0094: error while running.
    RunFailed,
    /// E0095: construct not supported by this backend.
    Unsupported,
    /// E0096: the sizes exceed the memory limit.
    TooLarge,
    /// E0097: the output path cannot be written safely.
    BadOutput,
    /// E0098: the CUDA device cannot be used.
    Device,
}

impl Code {
    /// Every code, in numeric order.
    pub const ALL: [Code; 72] = [
        Code::InvalidToken,
        Code::UnexpectedToken,
        Code::UnexpectedEof,
        Code::IntTooLarge,
        Code::FloatOutOfRange,
        Code::BadString,
        Code::TooDeep,
        Code::FileTooLarge,
        Code::InvalidUtf8,
        Code::CannotRead,
        Code::ImportNotFound,
        Code::ImportEscapesRoot,
        Code::ImportCycle,
        Code::UnknownName,
        Code::DuplicateDecl,
        Code::DuplicateBinding,
        Code::NotCallable,
        Code::AmbiguousName,
        Code::UnknownField,
        Code::UnknownDim,
        Code::UnknownKeyword,
        Code::WrongArity,
        Code::MissingArgument,
        Code::DuplicateArgument,
        Code::Recursion,
        Code::BadAttachedBlock,
        Code::UnknownVariant,
        Code::DTypeMismatch,
        Code::DimMismatch,
        Code::ExpectedScalar,
        Code::ExpectedBool,
        Code::ExpectedInteger,
        Code::BadContraction,
        Code::DimNotInOperand,
        Code::ReturnTypeMismatch,
        Code::DefaultTypeMismatch,
        Code::HyperparameterNotScalar,
        Code::NonStaticCondition,
        Code::OptionalNotChecked,
        Code::CoalesceNotOptional,
        Code::AnonymousDimMismatch,
        Code::RaggedLiteral,
        Code::BadPack,
        Code::BadReshape,
        Code::BadDimEquation,
        Code::DimNotBound,
        Code::BadRequires,
        Code::NotARecord,
        Code::NotATensor,
        Code::LossCount,
        Code::LossNotScalar,
        Code::MisplacedLoss,
        Code::MissingResult,
        Code::BadOutputs,
        Code::BadAssignment,
        Code::TestOnly,
        Code::BadGradcheck,
        Code::NotDifferentiable,
        Code::DataDependentLet,
        Code::BadStatic,
        Code::StepOutputType,
        Code::BadMatch,
        Code::ShapeNotInferable,
        Code::UnknownEntry,
        Code::BadInputs,
        Code::BadSetting,
        Code::RequiresFailed,
        Code::RunFailed,
        Code::Unsupported,
        Code::TooLarge,
        Code::BadOutput,
        Code::Device,
    ];

    fn entry(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Code::InvalidToken => ("E0001", "invalid character", "The lexer found a character that starts no FTL token. FTL source is ASCII outside string literals and comments; names are `[a-z_][A-Za-z0-9_]*` (values) or `[A-Z][A-Za-z0-9_]*` with optional primes (dims)."),
            Code::UnexpectedToken => ("E0002", "unexpected token", "The parser found a token that the grammar does not allow at this point. The message lists what would have been accepted. A common cause is a missing `;` after a statement or a missing `,` between parameters."),
            Code::UnexpectedEof => ("E0003", "unexpected end of file", "The file ended in the middle of a declaration, block or expression, usually because a `}` or `)` is missing."),
            Code::IntTooLarge => ("E0004", "integer literal too large", "Integer literals must fit in a signed 64-bit integer (at most 9223372036854775807)."),
            Code::FloatOutOfRange => ("E0005", "float literal out of range", "A float literal overflowed to infinity when read as f64. Write a smaller number; FTL has no infinite literals."),
            Code::BadString => ("E0006", "malformed string literal", "A string literal has no closing quote on its line, or uses an escape other than `\\n`, `\\t`, `\\\"` and `\\\\`."),
            Code::TooDeep => ("E0007", "expression nested too deeply", "Expressions may nest at most 256 levels. Deeper input is rejected so that no stage of the compiler can overflow its stack; split the expression with `let`."),
            Code::FileTooLarge => ("E0008", "source file too large", "A source file may be at most 8 MiB. FTL programs are small; a larger file is almost certainly not FTL source."),
            Code::InvalidUtf8 => ("E0009", "source is not valid UTF-8", "The file contains bytes that are not UTF-8. The diagnostic points at the first invalid byte. Binary files cannot be compiled."),
            Code::CannotRead => ("E0010", "cannot read file", "The file named on the command line or in an import does not exist or cannot be read."),
            Code::ImportNotFound => ("E0011", "import not found", "`import std.a.b` looks for `a/b.ftl` in the standard library (`--lib DIR`, then the `FTL_PATH` variable, then the `stdlib/` folder shipped with ftc); `import \"./x.ftl\"` looks relative to the importing file."),
            Code::ImportEscapesRoot => ("E0012", "import outside the project root", "A string import must stay inside the project root: the directory of the file given on the command line, or `--root DIR`. This keeps a program from reading arbitrary files through imports."),
            Code::ImportCycle => ("E0013", "import cycle", "Modules may not import each other in a cycle. Move the shared declarations to a third module that both import."),
            Code::UnknownName => ("E0020", "unknown name", "The name is not a parameter, a `let`, a declaration of this module or of an imported module, or a builtin. Check the spelling; the help suggests a close name when there is one."),
            Code::DuplicateDecl => ("E0021", "duplicate declaration", "Two declarations in one module have the same name. Every `fn`, `objective`, `adapter` and `step` of a module needs its own name (`init`/`merge`/`unmerge` blocks are named after their adapter and may appear once each)."),
            Code::DuplicateBinding => ("E0022", "duplicate name", "A parameter, `let`, output or pattern binds a name that is already bound in the same declaration. FTL has no shadowing: give the new value its own name."),
            Code::NotCallable => ("E0023", "not callable", "Only declarations (`fn`, `objective`, `adapter`, `step`) and builtins can be called. Values and dims cannot."),
            Code::AmbiguousName => ("E0024", "ambiguous name", "Two imported modules declare this name. Qualify it with the module name: `dpo.sigmoid(...)`."),
            Code::UnknownField => ("E0025", "unknown field", "The record has no field of this name. Objectives return `loss`, their metrics and (in tests) `grad.<input>`; adapters return `y` (or their named outputs) and `aux_loss`; steps return their declared outputs."),
            Code::UnknownDim => ("E0026", "unknown dim", "The dim is not bound in this declaration. Dims are bound by the types of the parameters or by a `requires D == expr` clause; dim names are local to each declaration."),
            Code::UnknownKeyword => ("E0027", "unknown keyword argument", "The callee has no parameter of this name."),
            Code::WrongArity => ("E0028", "wrong number of arguments", "The call passes more positional arguments than the callee has parameters, or a builtin is called with the wrong number of arguments."),
            Code::MissingArgument => ("E0029", "missing argument", "A parameter without a default value and not optional (`T?`) must be given."),
            Code::DuplicateArgument => ("E0030", "argument given twice", "A parameter was given both positionally and by keyword, or twice by keyword."),
            Code::Recursion => ("E0031", "recursive call", "Declarations are inlined at their call sites, so a declaration may not call itself directly or through others."),
            Code::BadAttachedBlock => ("E0032", "init/merge/unmerge without its adapter", "An `init`, `merge` or `unmerge` block must name an `adapter` declared in the same module, and each kind may appear once per adapter."),
            Code::UnknownVariant => ("E0033", "unknown enum variant", "The value is not one of the variants of the enum option."),
            Code::DTypeMismatch => ("E0040", "dtype mismatch", "The operands or the argument have element types that do not combine. Integers promote to the float operand's dtype and literals take the other operand's dtype, but two different float dtypes, or bool in arithmetic, need an explicit cast such as `f32(x)`."),
            Code::DimMismatch => ("E0041", "dims do not match", "The named dims (or the fixed sizes) of two values disagree where they must be equal: an argument's rank differs from its parameter's, a dim is bound to two different dims, or a fixed size differs."),
            Code::ExpectedScalar => ("E0042", "expected a scalar", "A hyperparameter, a `loss`, a `metric`, a tolerance or a scalar argument must have no dims."),
            Code::ExpectedBool => ("E0043", "expected a bool", "Conditions (`if`, `where`, `&&`, `||`, `!`, `requires`) must be bool values. Compare explicitly: `x > 0.0`."),
            Code::ExpectedInteger => ("E0044", "expected an integer", "Gather indices, `iota` arithmetic and integer options must have an integer dtype (i32 or i64). Cast with `i32(x)` if needed."),
            Code::BadContraction => ("E0045", "`@` needs exactly one shared dim", "`a @ b` contracts the one named dim that both operands have. With none there is nothing to contract; with several, say which with `contract(a, b, K)` (the other shared dims are then batch dims)."),
            Code::DimNotInOperand => ("E0046", "dim not in operand", "A reduction, softmax, gather, scan or rename names a dim that the operand does not have, or a reduction names no dim at all."),
            Code::ReturnTypeMismatch => ("E0047", "body does not match the declared type", "The value of the body must have the declared dtype and exactly the declared dims (in any order: the output is laid out in the declared order)."),
            Code::DefaultTypeMismatch => ("E0048", "default has the wrong type", "A parameter's default value must have the parameter's type: a float literal for a float hyperparameter, an integer for an integer one, a variant for an enum option."),
            Code::HyperparameterNotScalar => ("E0049", "a parameter with a default must be a scalar", "Only hyperparameters and options (scalars, bools, enums) can have defaults. Tensor inputs are always given by the caller, or declared optional with `T?`."),
            Code::NonStaticCondition => ("E0050", "condition is not static", "`if` and `match` choose a compiled variant, so their condition must be known at build time: a `static` or `enum` option, `present(x)`, or a literal. For a run-time choice per element use `where(c, a, b)`."),
            Code::OptionalNotChecked => ("E0051", "optional input used without a default", "An optional input (`T?`) may be absent. Use it as `x ?? default`, or inside `if present(x) { ... }`."),
            Code::CoalesceNotOptional => ("E0052", "`??` on a value that is always present", "The left side of `??` must be an optional input."),
            Code::AnonymousDimMismatch => ("E0053", "literal shape does not fit", "A tensor literal has anonymous dims that adopt the other operand's dims by position; the ranks or sizes disagree."),
            Code::RaggedLiteral => ("E0054", "ragged tensor literal", "All rows of a tensor literal must have the same length, and all elements must be numbers or bools of one kind."),
            Code::BadPack => ("E0055", "misused pack", "A type may contain one `..S` pack. Values with two different packs cannot be combined, and a pack can only be named where dims are expected."),
            Code::BadReshape => ("E0056", "invalid dim rename, split or merge", "`x[R -> R']` needs R in x and R' not in x; `x[N -> (S, B)]` splits N into new dims; `x[(O1, O2) -> O]` merges dims of x into a new one; `x[R <-> R']` swaps two dims of x."),
            Code::BadDimEquation => ("E0057", "invalid dim equation", "`requires D == expr` binds or checks a dim D; expr must be an integer expression of literals, integer hyperparameters and dims."),
            Code::DimNotBound => ("E0058", "dim is never bound", "Every dim of a declaration must get its size from an input's shape or from a `requires D == expr` clause. An `init` runs before its params exist, so their dims need a `requires` (e.g. `requires R == r`)."),
            Code::BadRequires => ("E0059", "invalid requires clause", "A `requires` clause is a bool condition on hyperparameters and dims (checked when arguments are bound, before any kernel runs) or a dim equation `D == expr`."),
            Code::NotARecord => ("E0060", "not a record", "Only the results of objectives, adapters and steps (and record literals) have fields."),
            Code::NotATensor => ("E0061", "not a tensor value", "A record, a dim list or an enum option cannot be used where a tensor or scalar is expected. Take a field of a record: `r.loss`."),
            Code::LossCount => ("E0070", "an objective needs exactly one loss", "An `objective` has exactly one `loss` statement (an adapter may have one auxiliary `loss`; other declarations none)."),
            Code::LossNotScalar => ("E0071", "loss or metric is not a float scalar", "`loss` and `metric` values must be float scalars. Reduce over every dim (`mean(x, B)`) and cast bools with `f32(b)`."),
            Code::MisplacedLoss => ("E0072", "statement not allowed here", "`loss` belongs in objectives (and adapters, as an auxiliary loss); `metric` in objectives; assignments in `init`, `merge`, `unmerge` and `step` bodies; `gradcheck` and expression statements in tests."),
            Code::MissingResult => ("E0073", "missing or unexpected result value", "A `fn` or `adapter` body ends with its value (and an adapter declares its output type); an objective's result is its `loss`, so its body has no final value."),
            Code::BadOutputs => ("E0074", "outputs not assigned as declared", "A `step` gives each declared output exactly once (in its final record or by assignment), and an `init` assigns every `param` of its adapter exactly once."),
            Code::BadAssignment => ("E0075", "assignment to a name that is not an output", "In `init`, `merge` and `unmerge`, only the adapter's `param` and `const` inputs can be assigned (merge and unmerge assign `const` inputs and may rewrite `param`s, as LN tuning's swap does); in a `step`, only its declared outputs."),
            Code::TestOnly => ("E0077", "test-only construct outside a test", "`expect_close` and `gradcheck` exist only in `test` blocks; the `grad` field of a call's record only in `test` blocks and `step`s (a step computes the call's backward where it reads it)."),
            Code::BadGradcheck => ("E0078", "invalid gradcheck", "`gradcheck` takes an objective or adapter, with optional dim sizes (`B: 3`) and hyperparameters (`beta: 0.5`); sizes must be positive integers."),
            Code::NotDifferentiable => ("E0079", "builtin has no gradient here", "`svd`, `qr`, `eigh` and `lu` have no vector-Jacobian product, so they may only be used where no gradient flows: in steps, init/merge/unmerge blocks and tests."),
            Code::DataDependentLet => ("E0081", "merge uses a value that depends on the data input", "A `merge`/`unmerge` block sees the adapter's `let`s that depend only on weights and hyperparameters. This one depends on a data input (or on randomness), which merge does not have."),
            Code::BadStatic => ("E0083", "invalid static option", "`static` parameters are `bool` or `i32` scalars with a literal default; enum options list their variants and default to one of them."),
            Code::StepOutputType => ("E0084", "step output does not match the input it updates", "A step output named like an input is that input's next value, so it must have the input's type."),
            Code::BadMatch => ("E0085", "invalid match", "`match` needs an enum or static value, arms naming its variants (each once), and every variant covered or a `_` arm."),
            Code::ShapeNotInferable => ("E0086", "cannot infer the shape", "Constructors such as `zeros()`, `rand()` or `kaiming_uniform(...)` without dims take their shape from the output they are assigned to; elsewhere, name the dims: `zeros(B, T)`."),
            Code::UnknownEntry => ("E0090", "no such entry", "`--entry` names an objective, adapter or step of the file (`sigmoid`), or an adapter's block (`lora.init`, `lora.merge`, `lora.unmerge`). The message lists the entries the file has."),
            Code::BadInputs => ("E0091", "inputs do not match the entry", "Every input the entry reads must be in the inputs file (by its parameter name) with the declared dtype and rank, and each named dim must have one size across all inputs. The message names the input, the expected type and what was found; nothing is written."),
            Code::BadSetting => ("E0092", "invalid --set or --dims", "`--set name=value` gives a hyperparameter, a scalar input or a static option of the entry (`--set beta=0.5`, `--set use_rslora=true`, `--set prediction_type=v_prediction`); `--dims B=4,T=16` gives positive dim sizes (a pack takes `S=2x3`)."),
            Code::RequiresFailed => ("E0093", "a requires condition fails", "A declaration's `requires` clause is checked when arguments are bound, before any computation: the given hyperparameters or dims violate it."),
            Code::RunFailed => ("E0094", "error while running", "The entry failed on these inputs, for example a gather index out of range without an `else` value."),
            Code::Unsupported => ("E0095", "not supported by this backend yet", "The construct type-checks but the backend cannot run it yet; the message says which and why."),
            Code::TooLarge => ("E0096", "over the memory limit", "The dims bound by the inputs, `--dims` or `--set` ask for more memory than one run may allocate (half of the physical memory unless FTL_MEMORY_LIMIT says otherwise, e.g. FTL_MEMORY_LIMIT=64G), or for a size that does not fit in 64 bits. Nothing is allocated or run."),
            Code::Device => ("E0098", "the CUDA device cannot be used", "`--backend cuda` (and a CUDA artifact) needs an NVIDIA driver (`libcuda.so`, loaded when the run starts), a device of compute capability 8.0 or 9.0 (sm_80, sm_90) and, to compile, libdevice (`FTL_LIBDEVICE`). The message says which is missing, or which driver call failed while running (out of device memory, a failed launch). Every other backend runs without CUDA."),
            Code::BadOutput => ("E0097", "cannot write the output", "Outputs are written to a new file beside the target and renamed over it. The target must be a regular file or not exist: a directory, a device, a FIFO or a symbolic link is refused, so that no run can replace what it was not meant to."),
        }
    }

    /// The id, e.g. `E0020`.
    pub fn id(self) -> &'static str {
        self.entry().0
    }

    /// A short title.
    pub fn title(self) -> &'static str {
        self.entry().1
    }

    /// The long explanation.
    pub fn explanation(self) -> &'static str {
        self.entry().2
    }

    /// The code with this id (case-insensitive; `20` and `E20` work too).
    pub fn from_id(id: &str) -> Option<Code> {
        let digits = id.trim().trim_start_matches(['E', 'e']);
        let number: u32 = digits.parse().ok()?;
        Code::ALL
            .into_iter()
            .find(|c| c.id()[1..].parse::<u32>() == Ok(number))
    }
}
