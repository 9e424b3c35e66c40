//! The shared scalar math ([`ftl_plan::scalar_math`]) as Cranelift instructions on f32, i32 and
//! i64 values, and the C library's functions the kernels call for f64 (as the MLIR backend does).

use crate::emit::Emitter;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
use ftl_plan::scalar_math::{Compare, Convert, FloatOp, FloatUnary, Int, IntOp, ScalarOps};

extern "C" {
    fn exp(x: f64) -> f64;
    fn log(x: f64) -> f64;
    fn log1p(x: f64) -> f64;
    fn expm1(x: f64) -> f64;
    fn tanh(x: f64) -> f64;
    fn erf(x: f64) -> f64;
    fn sin(x: f64) -> f64;
    fn cos(x: f64) -> f64;
    fn pow(x: f64, y: f64) -> f64;
    fn powf(x: f32, y: f32) -> f32;
}

/// The C library functions kernels may call, by the names `emit` imports them under.
pub(crate) fn library() -> [(&'static str, *const u8); 10] {
    [
        ("exp", exp as *const u8),
        ("log", log as *const u8),
        ("log1p", log1p as *const u8),
        ("expm1", expm1 as *const u8),
        ("tanh", tanh as *const u8),
        ("erf", erf as *const u8),
        ("sin", sin as *const u8),
        ("cos", cos as *const u8),
        ("pow", pow as *const u8),
        ("powf", powf as *const u8),
    ]
}

/// `t`, or its four-lane vector.
fn lanes_of(t: types::Type, vector: bool) -> types::Type {
    if vector {
        crate::lanes::vector_of(t)
    } else {
        t
    }
}

fn int_type(ty: Int) -> types::Type {
    match ty {
        Int::I32 => types::I32,
        Int::I64 => types::I64,
    }
}

impl Emitter<'_, '_> {
    /// The larger (`max`) or smaller of `a` and `b`, NaN if either is: one or two comparisons
    /// and a select, where Cranelift's IEEE `fmax`/`fmin` are a branchy (scalar) or eight
    /// instruction (vector) sequence on x64. Of two zeros of different sign either may be
    /// returned, as in PyTorch's vectorized max.
    pub(crate) fn nan_propagating_extremum(&mut self, max: bool, a: Value, b: Value) -> Value {
        let (a, b) = self.align(a, b);
        let cc = if max {
            FloatCC::GreaterThan
        } else {
            FloatCC::LessThan
        };
        let wins = self.b.ins().fcmp(cc, a, b);
        let a_nan = self.b.ins().fcmp(FloatCC::Unordered, a, a);
        let take_a = self.b.ins().bor(wins, a_nan);
        self.choose(take_a, a, b)
    }

    /// The scalar a vector `v` was splatted from, when it was.
    fn splatted_scalar(&self, v: Value) -> Option<Value> {
        let inst = self.b.func.dfg.value_def(v).inst()?;
        match self.b.func.dfg.insts[inst] {
            cranelift_codegen::ir::InstructionData::Unary {
                opcode: cranelift_codegen::ir::Opcode::Splat,
                arg,
            } => Some(arg),
            _ => None,
        }
    }
}

impl ScalarOps for Emitter<'_, '_> {
    type Val = Value;

    fn f32_const(&mut self, v: f64) -> Value {
        let c = self.b.ins().f32const(v as f32);
        if self.splat_consts {
            self.b.ins().splat(types::F32X4, c)
        } else {
            c
        }
    }

    fn int_const(&mut self, ty: Int, v: i64) -> Value {
        let t = int_type(ty);
        let imm = if t == types::I32 {
            i64::from(v as u32)
        } else {
            v
        };
        let c = self.b.ins().iconst(t, imm);
        if self.splat_consts && t == types::I32 {
            self.b.ins().splat(types::I32X4, c)
        } else {
            c
        }
    }

    fn float(&mut self, op: FloatOp, a: &Value, b: &Value) -> Value {
        let (a, b) = (*a, *b);
        if op == FloatOp::CopySign && self.is_vector(a) {
            // Cranelift's x64 backend has no vector fcopysign: |a|'s bits with b's sign bit.
            let flags = MemFlagsData::new();
            let (ai, bi) = (
                self.b.ins().bitcast(types::I32X4, flags, a),
                self.b.ins().bitcast(types::I32X4, flags, b),
            );
            let magnitude = self.b.ins().iconst(types::I32, 0x7FFF_FFFF);
            let magnitude = self.b.ins().splat(types::I32X4, magnitude);
            let sign = self.b.ins().bnot(magnitude);
            let m = self.b.ins().band(ai, magnitude);
            let s = self.b.ins().band(bi, sign);
            let bits = self.b.ins().bor(m, s);
            return self.b.ins().bitcast(types::F32X4, flags, bits);
        }
        if matches!(op, FloatOp::Min | FloatOp::Max) {
            return self.nan_propagating_extremum(op == FloatOp::Max, a, b);
        }
        let ins = self.b.ins();
        match op {
            FloatOp::Add => ins.fadd(a, b),
            FloatOp::Sub => ins.fsub(a, b),
            FloatOp::Mul => ins.fmul(a, b),
            FloatOp::Div => ins.fdiv(a, b),
            FloatOp::CopySign => ins.fcopysign(a, b),
            FloatOp::Min | FloatOp::Max => unreachable!("handled above"),
        }
    }

    fn float_unary(&mut self, op: FloatUnary, a: &Value) -> Value {
        let ins = self.b.ins();
        match op {
            FloatUnary::Neg => ins.fneg(*a),
            FloatUnary::Abs => ins.fabs(*a),
            FloatUnary::Floor => ins.floor(*a),
            FloatUnary::Sqrt => ins.sqrt(*a),
        }
    }

    fn fma(&mut self, a: &Value, b: &Value, c: &Value) -> Value {
        self.b.ins().fma(*a, *b, *c)
    }

    fn compare(&mut self, pred: Compare, a: &Value, b: &Value) -> Value {
        let cc = match pred {
            Compare::Lt => FloatCC::LessThan,
            Compare::Gt => FloatCC::GreaterThan,
            Compare::Eq => FloatCC::Equal,
            Compare::Unordered => FloatCC::Unordered,
        };
        self.b.ins().fcmp(cc, *a, *b)
    }

    fn select(&mut self, c: &Value, a: &Value, b: &Value) -> Value {
        self.choose(*c, *a, *b)
    }

    fn int(&mut self, op: IntOp, _ty: Int, a: &Value, b: &Value) -> Value {
        let (a, b) = (*a, *b);
        // A vector shift takes a scalar amount (the math shifts by constants only): the splatted
        // constant's scalar.
        let b = if matches!(op, IntOp::Shl | IntOp::ShrU) && self.is_vector(b) {
            self.splatted_scalar(b)
                .unwrap_or_else(|| self.b.ins().extractlane(b, 0))
        } else {
            b
        };
        let ins = self.b.ins();
        match op {
            IntOp::Add => ins.iadd(a, b),
            IntOp::Sub => ins.isub(a, b),
            IntOp::Mul => ins.imul(a, b),
            IntOp::And => ins.band(a, b),
            IntOp::Or => ins.bor(a, b),
            IntOp::Xor => ins.bxor(a, b),
            IntOp::Shl => ins.ishl(a, b),
            IntOp::ShrU => ins.ushr(a, b),
        }
    }

    fn int_ne(&mut self, a: &Value, b: &Value) -> Value {
        self.b.ins().icmp(IntCC::NotEqual, *a, *b)
    }

    fn convert(&mut self, op: Convert, a: &Value) -> Value {
        let (a, plain) = (*a, MemFlagsData::new());
        let vector = self.is_vector(a);
        let ins = self.b.ins();
        match op {
            Convert::F32ToI32 => ins.fcvt_to_sint_sat(lanes_of(types::I32, vector), a),
            Convert::I32ToF32 => ins.fcvt_from_sint(lanes_of(types::F32, vector), a),
            Convert::U32ToF32 => ins.fcvt_from_uint(lanes_of(types::F32, vector), a),
            Convert::F32Bits => ins.bitcast(lanes_of(types::I32, vector), plain, a),
            Convert::BitsF32 => ins.bitcast(lanes_of(types::F32, vector), plain, a),
            Convert::I64Low => ins.ireduce(types::I32, a),
            Convert::U32ToI64 => ins.uextend(types::I64, a),
        }
    }
}
