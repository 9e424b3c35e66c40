//! Explicit SIMD: the innermost loop of a map nest, and of an f32 sum, max, min or logsumexp
//! over the contiguous dim, runs four elements at a time as f32x4/i32x4 values (a scalar loop
//! does the remainder). A value evaluated where the vectorized dim's coordinate is the loop's
//! position is a vector (a gather along that dim puts a scalar index there, so its base is read
//! as a scalar); one that does not depend on the dim stays a scalar and is splatted where it
//! meets a vector; booleans are i32x4 lane masks. [`Emitter::vectorizable`] admits a nest only
//! when every value it computes along that dim has a vector form with the scalar path's
//! numerics: f32, i32 and bool values, contiguous loads and stores of f32 and i32 buffers, the
//! shared polynomials (their constants splatted), no gather indexed along the dim, no integer
//! division, no libm call, no random draw.

use crate::emit::Emitter;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, ConstantData, Endianness, InstBuilder, MemFlagsData, Type, Value,
};
use ftl_ir::{BinOp, DimId, NodeId, Op, Reduction, UnOp};
use ftl_runtime::DType;
use std::collections::HashMap;

/// Elements per vector.
pub(crate) const LANES: i64 = 4;

/// Vectors per iteration of a vector reduction loop, each with its own accumulator
/// (independent chains for the out-of-order core, one loop test per `UNROLL * LANES`
/// elements). Map loops stay at one vector: unrolling them bought ~5% for ~20% more compile
/// time.
pub(crate) const UNROLL: i64 = 2;

/// Elements per iteration of a vector reduction loop.
pub(crate) const STEP: i64 = LANES * UNROLL;

/// Flags of a vector load or store: never trapping, not 16-byte aligned.
pub(crate) fn vector_mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// The vector type of a scalar compute type (a bool byte becomes an i32 lane mask).
pub(crate) fn vector_of(t: Type) -> Type {
    match t {
        types::F32 => types::F32X4,
        _ => types::I32X4,
    }
}

impl Emitter<'_, '_> {
    /// Whether `v` is a vector.
    pub(crate) fn is_vector(&self, v: Value) -> bool {
        self.b.func.dfg.value_type(v).is_vector()
    }

    /// The scalar `v` broadcast to `t` (a vector type); a bool byte becomes a lane mask.
    pub(crate) fn splat(&mut self, v: Value, t: Type) -> Value {
        let st = self.b.func.dfg.value_type(v);
        if st.is_vector() {
            return v;
        }
        let v = if st == types::I8 {
            let wide = self.b.ins().uextend(types::I32, v);
            self.b.ins().ineg(wide)
        } else {
            v
        };
        self.b.ins().splat(t, v)
    }

    /// `a` and `b` with a scalar broadcast to the other's vector type.
    pub(crate) fn align(&mut self, a: Value, b: Value) -> (Value, Value) {
        match (self.is_vector(a), self.is_vector(b)) {
            (true, false) => {
                let t = self.b.func.dfg.value_type(a);
                (a, self.splat(b, t))
            }
            (false, true) => {
                let t = self.b.func.dfg.value_type(b);
                (self.splat(a, t), b)
            }
            _ => (a, b),
        }
    }

    /// `c ? a : b`, per lane when `c` is a mask.
    pub(crate) fn choose(&mut self, c: Value, a: Value, b: Value) -> Value {
        let (a, b) = self.align(a, b);
        if !self.is_vector(c) {
            return self.b.ins().select(c, a, b);
        }
        let t = self.b.func.dfg.value_type(a);
        let t = if t.is_vector() { t } else { vector_of(t) };
        let (a, b) = (self.splat(a, t), self.splat(b, t));
        let mask = if t == types::I32X4 {
            c
        } else {
            let flags = MemFlagsData::new().with_endianness(Endianness::Little);
            self.b.ins().bitcast(t, flags, c)
        };
        self.b.ins().bitselect(mask, a, b)
    }

    /// A constant like `x`: a scalar, or splatted when `x` is a vector.
    pub(crate) fn const_like(&mut self, x: Value, scalar: Value) -> Value {
        if self.is_vector(x) {
            let t = self.b.func.dfg.value_type(x);
            self.splat(scalar, t)
        } else {
            scalar
        }
    }

    /// `[base, base + 1, base + 2, base + 3]` as i32 lanes (`base` an i64 position).
    pub(crate) fn lane_positions(&mut self, base: Value) -> Value {
        let narrow = self.b.ins().ireduce(types::I32, base);
        let first = self.b.ins().splat(types::I32X4, narrow);
        let bytes: Vec<u8> = (0..LANES as i32).flat_map(|k| k.to_le_bytes()).collect();
        let handle = self.b.func.dfg.constants.insert(ConstantData::from(bytes));
        let steps = self.b.ins().vconst(types::I32X4, handle);
        self.b.ins().iadd(first, steps)
    }

    /// A bool mask or scalar as 0/1 of `to` (f32 or i32, vector when the mask is).
    pub(crate) fn mask_to(&mut self, v: Value, to: DType) -> Value {
        let one = self.b.ins().iconst(types::I32, 1);
        let ones = self.b.ins().splat(types::I32X4, one);
        let bits = self.b.ins().band(v, ones);
        match to {
            DType::F32 => self.b.ins().fcvt_from_sint(types::F32X4, bits),
            _ => bits,
        }
    }

    /// The lanes of the f32 vector `v` combined by `op` into one scalar, lane 0 first.
    pub(crate) fn horizontal(&mut self, op: Reduction, v: Value) -> Value {
        let mut acc = self.b.ins().extractlane(v, 0);
        for k in 1..LANES as u8 {
            let x = self.b.ins().extractlane(v, k);
            acc = self.combine_step(op, acc, x);
        }
        acc
    }

    /// Whether every value the nest rooted at `root` computes along `d` has a vector form (see
    /// the module's doc).
    pub(crate) fn vectorizable(&mut self, id: NodeId, d: DimId, root: NodeId) -> bool {
        let mut memo = HashMap::new();
        self.vector_ok(id, d, root, &mut memo)
    }

    fn vector_ok(
        &mut self,
        id: NodeId,
        d: DimId,
        root: NodeId,
        memo: &mut HashMap<NodeId, bool>,
    ) -> bool {
        if let Some(ok) = memo.get(&id) {
            return *ok;
        }
        if !self.deps_of(id).contains(&d) {
            return true;
        }
        let n = self.g.node(id).clone();
        let kinds = |t: DType| matches!(t, DType::F32 | DType::I32);
        let ok = if !kinds(n.dtype) && n.dtype != DType::Bool {
            false
        } else if self.plan.buffer_of(id).is_some()
            && Some(id) != Some(root)
            && !matches!(n.op, Op::Const(_))
        {
            kinds(n.dtype) && n.dims.last() == Some(&d)
        } else {
            let mut ok = |s: &mut Self, x: NodeId| s.vector_ok(x, d, root, memo);
            match &n.op {
                Op::Iota(_) => kinds(n.dtype),
                Op::Unary(op, a) => {
                    let fits = match n.dtype {
                        DType::F32 => true,
                        DType::I32 => {
                            matches!(op, UnOp::Neg | UnOp::Abs | UnOp::Sign | UnOp::Relu)
                        }
                        _ => *op == UnOp::Not,
                    };
                    fits && ok(self, *a)
                }
                Op::Binary(op, a, b) => {
                    let fits = match self.g.node(*a).dtype {
                        DType::F32 => {
                            *op != BinOp::Pow
                                || matches!(self.g.node(*b).op, Op::Const(v) if v == 2.0 || v == 1.0 || v == 0.5)
                        }
                        DType::I32 => {
                            !matches!(op, BinOp::Div | BinOp::FloorDiv | BinOp::Rem | BinOp::Pow)
                        }
                        DType::Bool => matches!(op, BinOp::And | BinOp::Or | BinOp::Eq | BinOp::Ne),
                        _ => false,
                    };
                    fits && ok(self, *a) && ok(self, *b)
                }
                Op::Select(c, a, b) => {
                    kinds(n.dtype) && ok(self, *c) && ok(self, *a) && ok(self, *b)
                }
                Op::Cast(a) => {
                    let from = self.g.node(*a).dtype;
                    (kinds(from) || from == DType::Bool) && ok(self, *a)
                }
                Op::Broadcast(a) | Op::Transpose(a) | Op::Detach(a) => ok(self, *a),
                Op::Gather {
                    base,
                    index,
                    default,
                    ..
                } => {
                    !self.deps_of(*index).contains(&d)
                        && ok(self, *base)
                        && default.is_none_or(|x| ok(self, x))
                }
                Op::Contract(a, b) => n.dtype == DType::F32 && ok(self, *a) && ok(self, *b),
                _ => false,
            }
        };
        memo.insert(id, ok);
        ok
    }

    /// A vector conversion between f32, i32 and bool masks.
    pub(crate) fn convert_vector(&mut self, v: Value, from: DType, to: DType) -> Value {
        match (from, to) {
            (a, b) if a == b => v,
            (DType::Bool, t) => self.mask_to(v, t),
            (DType::F32, DType::I32) => self.b.ins().fcvt_to_sint_sat(types::I32X4, v),
            (DType::I32, DType::F32) => self.b.ins().fcvt_from_sint(types::F32X4, v),
            (DType::F32, DType::Bool) => {
                let z = self.b.ins().f32const(0.0);
                let zeros = self.b.ins().splat(types::F32X4, z);
                self.b.ins().fcmp(FloatCC::NotEqual, v, zeros)
            }
            _ => {
                let z = self.b.ins().iconst(types::I32, 0);
                let zeros = self.b.ins().splat(types::I32X4, z);
                self.b.ins().icmp(IntCC::NotEqual, v, zeros)
            }
        }
    }
}
