//! Element types of FTL tensors.

use std::fmt;

/// The element type of a tensor.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 64-bit IEEE float.
    F64,
    /// 32-bit IEEE float.
    F32,
    /// bfloat16 (computed in f32).
    BF16,
    /// IEEE half (computed in f32).
    F16,
    /// 64-bit signed integer.
    I64,
    /// 32-bit signed integer.
    I32,
    /// Boolean.
    Bool,
}

impl DType {
    /// Every dtype, widest float first.
    pub const ALL: [DType; 7] = [
        DType::F64,
        DType::F32,
        DType::BF16,
        DType::F16,
        DType::I64,
        DType::I32,
        DType::Bool,
    ];

    /// The name used in FTL source and in safetensors headers (lowercase).
    pub fn name(self) -> &'static str {
        match self {
            DType::F64 => "f64",
            DType::F32 => "f32",
            DType::BF16 => "bf16",
            DType::F16 => "f16",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::Bool => "bool",
        }
    }

    /// Bytes per element in storage.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::BF16 | DType::F16 => 2,
            DType::Bool => 1,
        }
    }

    /// A floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F64 | DType::F32 | DType::BF16 | DType::F16)
    }

    /// A signed integer type.
    pub fn is_int(self) -> bool {
        matches!(self, DType::I64 | DType::I32)
    }
}

impl DType {
    /// Whether `v` is a value of this dtype as given, not changed by [`DType::round`] beyond
    /// float rounding: an integer in range for integer types, 0 or 1 for bool, a value that
    /// stays finite for floats (`1e39` is not an f32; inf and NaN are). NaN is only a float.
    pub fn holds(self, v: f64) -> bool {
        match self {
            DType::F64 => true,
            DType::F32 | DType::BF16 | DType::F16 => !v.is_finite() || self.round(v).is_finite(),
            DType::I64 => v.fract() == 0.0 && (-(2f64.powi(63))..2f64.powi(63)).contains(&v),
            DType::I32 => {
                v.fract() == 0.0 && (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&v)
            }
            DType::Bool => v == 0.0 || v == 1.0,
        }
    }

    /// Parses a scalar of this dtype as `--set` writes it (`0.1`, `-100`, `true`): `None` for
    /// text that is not a finite value of the dtype (out of range, `inf`, `nan`, `1e400`).
    pub fn parse_value(self, text: &str) -> Option<f64> {
        let text = text.trim();
        match self {
            DType::Bool => match text {
                "true" | "1" => Some(1.0),
                "false" | "0" => Some(0.0),
                _ => None,
            },
            DType::I64 | DType::I32 => {
                let v = text.parse::<i64>().ok()? as f64;
                self.holds(v).then_some(v)
            }
            _ => {
                let v = text.parse::<f64>().ok()?;
                (v.is_finite() && self.round(v).is_finite()).then_some(v)
            }
        }
    }

    /// Rounds an f64 to the nearest value of this dtype (round-to-nearest-even for floats,
    /// truncation toward zero with wrapping for integers, non-zero → true for bool). Every
    /// elementwise result of the interpreter passes through this, as DESIGN.md's numerics ask.
    pub fn round(self, v: f64) -> f64 {
        match self {
            DType::F64 => v,
            DType::F32 => v as f32 as f64,
            DType::BF16 => half::bf16::from_f64(v).to_f64(),
            DType::F16 => half::f16::from_f64(v).to_f64(),
            DType::I64 => {
                if v.is_finite() {
                    v.trunc() as i64 as f64
                } else {
                    0.0
                }
            }
            DType::I32 => {
                if v.is_finite() {
                    (v.trunc() as i64) as i32 as f64
                } else {
                    0.0
                }
            }
            DType::Bool => f64::from(u8::from(v != 0.0)),
        }
    }

    /// The dtype of a safetensors header entry, if FTL has it.
    pub fn from_safetensors(d: safetensors::Dtype) -> Option<DType> {
        use safetensors::Dtype as S;
        Some(match d {
            S::F64 => DType::F64,
            S::F32 => DType::F32,
            S::BF16 => DType::BF16,
            S::F16 => DType::F16,
            S::I64 => DType::I64,
            S::I32 => DType::I32,
            S::BOOL => DType::Bool,
            _ => return None,
        })
    }

    /// The safetensors header dtype.
    pub fn to_safetensors(self) -> safetensors::Dtype {
        use safetensors::Dtype as S;
        match self {
            DType::F64 => S::F64,
            DType::F32 => S::F32,
            DType::BF16 => S::BF16,
            DType::F16 => S::F16,
            DType::I64 => S::I64,
            DType::I32 => S::I32,
            DType::Bool => S::BOOL,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::DType;

    #[test]
    fn names_are_distinct_and_sizes_match_storage() {
        let names: std::collections::HashSet<_> = DType::ALL.iter().map(|d| d.name()).collect();
        assert_eq!(names.len(), DType::ALL.len());
        assert_eq!(DType::BF16.size_bytes(), 2);
        assert!(DType::BF16.is_float() && !DType::I32.is_float() && DType::I64.is_int());
    }
}
