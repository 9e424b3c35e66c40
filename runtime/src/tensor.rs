//! Host tensors: a dtype, a row-major shape and little-endian element bytes in 8-byte aligned
//! storage (so a kernel can view them as `f32`/`f64` slices without copying).

use crate::DType;
use half::{bf16, f16};
use std::fmt;

/// A dense, row-major host tensor.
#[derive(Clone, PartialEq)]
pub struct Tensor {
    dtype: DType,
    shape: Vec<usize>,
    /// Element bytes, padded to whole words for alignment.
    words: Vec<u64>,
    len_bytes: usize,
}

impl Tensor {
    /// A tensor of zeros.
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        let len_bytes = shape.iter().product::<usize>() * dtype.size_bytes();
        Tensor {
            dtype,
            shape: shape.to_vec(),
            words: vec![0; len_bytes.div_ceil(8)],
            len_bytes,
        }
    }

    /// A tensor from little-endian element bytes; `None` when the length does not match.
    pub fn from_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Option<Tensor> {
        let mut t = Tensor::zeros(dtype, shape);
        if bytes.len() != t.len_bytes {
            return None;
        }
        t.bytes_mut().copy_from_slice(bytes);
        Some(t)
    }

    /// A tensor whose elements are `values` rounded to `dtype` (see [`DType::round`]).
    ///
    /// # Panics
    /// When `values.len()` is not the product of `shape` (a caller bug, never user input).
    pub fn from_f64(dtype: DType, shape: &[usize], values: &[f64]) -> Tensor {
        assert_eq!(
            values.len(),
            shape.iter().product::<usize>(),
            "shape mismatch"
        );
        Tensor::from_fn(dtype, shape, |i| values[i])
    }

    /// A tensor whose element `i` (row-major) is `f(i)` rounded to `dtype`, written in place.
    pub fn from_fn(dtype: DType, shape: &[usize], mut f: impl FnMut(usize) -> f64) -> Tensor {
        let mut t = Tensor::zeros(dtype, shape);
        let size = dtype.size_bytes();
        let bytes = t.bytes_mut();
        // One loop per dtype (the match outside the loop), so each loop is a plain conversion.
        macro_rules! fill {
            ($convert:expr) => {
                for (i, out) in bytes.chunks_exact_mut(size).enumerate() {
                    out.copy_from_slice(&$convert(f(i)).to_le_bytes());
                }
            };
        }
        match dtype {
            DType::F64 => fill!(|v: f64| v),
            DType::F32 => fill!(|v: f64| v as f32),
            DType::BF16 => fill!(bf16::from_f64),
            DType::F16 => fill!(f16::from_f64),
            DType::I64 => fill!(|v: f64| DType::I64.round(v) as i64),
            DType::I32 => fill!(|v: f64| DType::I32.round(v) as i32),
            DType::Bool => fill!(|v: f64| u8::from(v != 0.0)),
        }
        t
    }

    /// A tensor taking ownership of word storage holding its elements (no copy); `None` when
    /// the storage is too small.
    pub fn from_words(dtype: DType, shape: &[usize], words: Vec<u64>) -> Option<Tensor> {
        let len_bytes = shape.iter().product::<usize>() * dtype.size_bytes();
        (words.len() * 8 >= len_bytes).then(|| Tensor {
            dtype,
            shape: shape.to_vec(),
            words,
            len_bytes,
        })
    }

    /// The word storage (for reuse by an executor).
    pub fn into_words(self) -> Vec<u64> {
        self.words
    }

    /// A 0-d tensor.
    pub fn scalar(dtype: DType, value: f64) -> Tensor {
        Tensor::from_f64(dtype, &[], &[value])
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape (empty for a scalar).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len_bytes]
    }

    /// The element bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.words)[..self.len_bytes]
    }

    /// The tensor as a borrowed view (what the executor and the binder read).
    pub fn as_ref(&self) -> TensorRef<'_> {
        TensorRef {
            dtype: self.dtype,
            shape: &self.shape,
            bytes: self.bytes(),
        }
    }

    /// Every element widened to f64 (exact for every dtype but i64 beyond 2^53).
    pub fn to_f64(&self) -> Vec<f64> {
        self.as_ref().to_f64()
    }

    /// The same elements converted to another dtype.
    pub fn cast(&self, dtype: DType) -> Tensor {
        Tensor::from_f64(dtype, &self.shape, &self.to_f64())
    }

    /// The same elements with another shape of the same size.
    pub fn reshaped(mut self, shape: &[usize]) -> Option<Tensor> {
        if shape.iter().product::<usize>() != self.len() {
            return None;
        }
        self.shape = shape.to_vec();
        Some(self)
    }
}

/// A borrowed dense row-major tensor: what the executor and the binder read an input from,
/// whether its memory belongs to a [`Tensor`] or to a caller (a PyTorch tensor, a C buffer).
/// Its bytes are aligned to the element size, so kernels and in-place reads may view them
/// as typed slices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorRef<'a> {
    dtype: DType,
    shape: &'a [usize],
    bytes: &'a [u8],
}

impl<'a> TensorRef<'a> {
    /// A view of `bytes` as a `dtype` tensor of `shape`; `None` when the length is not the
    /// shape's element count times the element size (or overflows), or when the bytes are not
    /// aligned to the element size.
    pub fn new(dtype: DType, shape: &'a [usize], bytes: &'a [u8]) -> Option<TensorRef<'a>> {
        let size = dtype.size_bytes();
        let len = shape.iter().try_fold(size, |acc, s| acc.checked_mul(*s))?;
        (bytes.len() == len && (bytes.as_ptr() as usize).is_multiple_of(size)).then_some(
            TensorRef {
                dtype,
                shape,
                bytes,
            },
        )
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape (empty for a scalar).
    pub fn shape(&self) -> &'a [usize] {
        self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Every element widened to f64 (exact for every dtype but i64 beyond 2^53).
    pub fn to_f64(&self) -> Vec<f64> {
        let size = self.dtype.size_bytes();
        self.bytes
            .chunks_exact(size)
            .map(|c| match self.dtype {
                DType::F64 => f64::from_le_bytes(c.try_into().unwrap_or_default()),
                DType::F32 => f64::from(f32::from_le_bytes(c.try_into().unwrap_or_default())),
                DType::BF16 => bf16::from_le_bytes([c[0], c[1]]).to_f64(),
                DType::F16 => f16::from_le_bytes([c[0], c[1]]).to_f64(),
                DType::I64 => i64::from_le_bytes(c.try_into().unwrap_or_default()) as f64,
                DType::I32 => f64::from(i32::from_le_bytes(c.try_into().unwrap_or_default())),
                DType::Bool => f64::from(u8::from(c[0] != 0)),
            })
            .collect()
    }
}

/// The type of a shape as FTL writes it: `f32[4, 16]`.
pub fn type_text(dtype: DType, shape: &[usize]) -> String {
    if shape.is_empty() {
        return dtype.to_string();
    }
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    format!("{dtype}[{}]", dims.join(", "))
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = self.to_f64();
        write!(f, "{} ", type_text(self.dtype, &self.shape))?;
        if values.len() <= 8 {
            write!(f, "{values:?}")
        } else {
            write!(f, "{:?}…", &values[..8])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_round_trips_through_f64() {
        let values = [0.0, 1.0, -2.0, 3.0];
        for dtype in DType::ALL {
            let t = Tensor::from_f64(dtype, &[2, 2], &values);
            let expect: Vec<f64> = values.iter().map(|v| dtype.round(*v)).collect();
            assert_eq!(t.to_f64(), expect, "{dtype}");
            assert_eq!(t.bytes().len(), 4 * dtype.size_bytes());
        }
    }

    #[test]
    fn views_check_length_and_alignment() {
        let t = Tensor::from_f64(DType::F32, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let v = TensorRef::new(DType::F32, &[2, 3], t.bytes()).expect("a dense view");
        assert_eq!(v, t.as_ref());
        assert_eq!(v.to_f64(), t.to_f64());
        assert!(
            TensorRef::new(DType::F32, &[2, 2], t.bytes()).is_none(),
            "length"
        );
        assert!(
            TensorRef::new(DType::F32, &[5], &t.bytes()[1..21]).is_none(),
            "alignment"
        );
        assert!(
            TensorRef::new(DType::F32, &[usize::MAX, 2], t.bytes()).is_none(),
            "overflow"
        );
        assert!(TensorRef::new(DType::BF16, &[3], &t.bytes()[2..8]).is_some());
    }

    #[test]
    fn rounding_follows_the_dtype() {
        assert_eq!(DType::F32.round(0.1), f64::from(0.1f32));
        assert_eq!(DType::BF16.round(1.0 + 1.0 / 512.0), 1.0);
        assert_eq!(DType::I32.round(-2.7), -2.0);
        assert_eq!(DType::Bool.round(-0.5), 1.0);
    }
}
