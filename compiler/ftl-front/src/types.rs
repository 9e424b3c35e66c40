//! Types as the checker sees them: tensors with named dims, records, tuples and options.

use ftl_runtime::DType;
use std::fmt;

/// One entry of a tensor's dims.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DimItem {
    /// A dim of the current declaration (`B`, `R'`, or a fresh `f.K` from a call).
    Named(String),
    /// An anonymous dim of fixed size (tensor literals, integer dims in types).
    Anon(u64),
    /// A pack of dims (`..S`).
    Pack(String),
}

impl fmt::Display for DimItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimItem::Named(n) => f.write_str(n),
            DimItem::Anon(size) => write!(f, "{size}"),
            DimItem::Pack(n) => write!(f, "..{n}"),
        }
    }
}

/// A tensor (or scalar, with no dims) type.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorTy {
    /// Element type.
    pub dtype: DType,
    /// Dims in layout order.
    pub dims: Vec<DimItem>,
    /// A literal (or built only from literals): adopts the other operand's dtype.
    pub weak: bool,
}

impl TensorTy {
    /// A scalar of `dtype`.
    pub fn scalar(dtype: DType) -> TensorTy {
        TensorTy {
            dtype,
            dims: Vec::new(),
            weak: false,
        }
    }

    /// A tensor with these dims.
    pub fn new(dtype: DType, dims: Vec<DimItem>) -> TensorTy {
        TensorTy {
            dtype,
            dims,
            weak: false,
        }
    }

    /// No dims.
    pub fn is_scalar(&self) -> bool {
        self.dims.is_empty()
    }

    /// Whether it has the named dim.
    pub fn has(&self, item: &DimItem) -> bool {
        self.dims.contains(item)
    }

    /// The same dims with another dtype.
    pub fn with_dtype(&self, dtype: DType) -> TensorTy {
        TensorTy {
            dtype,
            dims: self.dims.clone(),
            weak: false,
        }
    }
}

impl fmt::Display for TensorTy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dtype)?;
        if !self.dims.is_empty() {
            let dims: Vec<String> = self.dims.iter().map(ToString::to_string).collect();
            write!(f, "[{}]", dims.join(", "))?;
        }
        Ok(())
    }
}

/// The type of an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    /// A tensor or scalar.
    Tensor(TensorTy),
    /// The outputs of a call, or a record literal.
    Record(Vec<(String, Ty)>),
    /// The results of a multi-output builtin (`svd`), bound with `let (a, b) = …`.
    Tuple(Vec<Ty>),
    /// An enum option's value.
    Enum(Vec<String>),
    /// A constructor without dims: takes the shape of the output it is assigned to.
    Shapeless(DType),
    /// A dim or pack written as a builtin's argument.
    DimArg,
    /// A statement-like call (`expect_close`).
    Unit,
    /// An error already reported: accepted everywhere to avoid cascades.
    Error,
}

impl Ty {
    /// The tensor type, if it is one.
    pub fn tensor(&self) -> Option<&TensorTy> {
        match self {
            Ty::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// A record field's type.
    pub fn field(&self, name: &str) -> Option<&Ty> {
        match self {
            Ty::Record(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, t)| t),
            _ => None,
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Tensor(t) => write!(f, "{t}"),
            Ty::Record(fields) => {
                let parts: Vec<String> = fields.iter().map(|(n, t)| format!("{n}: {t}")).collect();
                write!(f, "({})", parts.join(", "))
            }
            Ty::Tuple(items) => {
                let parts: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(f, "({})", parts.join(", "))
            }
            Ty::Enum(variants) => write!(f, "enum {{ {} }}", variants.join(", ")),
            Ty::Shapeless(d) => write!(f, "{d}[?]"),
            Ty::DimArg => write!(f, "dim"),
            Ty::Unit => write!(f, "()"),
            Ty::Error => write!(f, "{{error}}"),
        }
    }
}

/// The dtype keyword's runtime dtype.
pub fn dtype_of(kw: ftl_syntax::ast::DTypeKw) -> DType {
    use ftl_syntax::ast::DTypeKw as K;
    match kw {
        K::F64 => DType::F64,
        K::F32 => DType::F32,
        K::Bf16 => DType::BF16,
        K::F16 => DType::F16,
        K::I64 => DType::I64,
        K::I32 => DType::I32,
        K::Bool => DType::Bool,
    }
}
