//! The shared scalar math ([`ftl_plan::scalar_math`]) as MLIR: each scalar instruction becomes
//! one `arith` or `math` operation on f32, i32 or i64 SSA values, all of which LLVM vectorizes.

use crate::emit::Func;
use ftl_plan::scalar_math::{Compare, Convert, FloatOp, FloatUnary, Int, IntOp, ScalarOps};

fn int_type(ty: Int) -> &'static str {
    match ty {
        Int::I32 => "i32",
        Int::I64 => "i64",
    }
}

impl ScalarOps for Func<'_> {
    type Val = String;

    fn f32_const(&mut self, v: f64) -> String {
        self.const_f("f32", v)
    }

    fn int_const(&mut self, ty: Int, v: i64) -> String {
        self.const_i(int_type(ty), v)
    }

    fn float(&mut self, op: FloatOp, a: &String, b: &String) -> String {
        let name = match op {
            FloatOp::Add => "arith.addf",
            FloatOp::Sub => "arith.subf",
            FloatOp::Mul => "arith.mulf",
            FloatOp::Div => "arith.divf",
            FloatOp::Min => "arith.minimumf",
            FloatOp::Max => "arith.maximumf",
            FloatOp::CopySign => "math.copysign",
        };
        self.emit_val(&format!("{name} {a}, {b} : f32"))
    }

    fn float_unary(&mut self, op: FloatUnary, a: &String) -> String {
        let name = match op {
            FloatUnary::Neg => "arith.negf",
            FloatUnary::Abs => "math.absf",
            FloatUnary::Floor => "math.floor",
            FloatUnary::Sqrt => "math.sqrt",
        };
        self.emit_val(&format!("{name} {a} : f32"))
    }

    fn fma(&mut self, a: &String, b: &String, c: &String) -> String {
        self.emit_val(&format!("math.fma {a}, {b}, {c} : f32"))
    }

    fn compare(&mut self, pred: Compare, a: &String, b: &String) -> String {
        let pred = match pred {
            Compare::Lt => "olt",
            Compare::Gt => "ogt",
            Compare::Eq => "oeq",
            Compare::Unordered => "uno",
        };
        self.emit_val(&format!("arith.cmpf {pred}, {a}, {b} : f32"))
    }

    fn select(&mut self, c: &String, a: &String, b: &String) -> String {
        self.emit_val(&format!("arith.select {c}, {a}, {b} : f32"))
    }

    fn int(&mut self, op: IntOp, ty: Int, a: &String, b: &String) -> String {
        let name = match op {
            IntOp::Add => "addi",
            IntOp::Sub => "subi",
            IntOp::Mul => "muli",
            IntOp::And => "andi",
            IntOp::Or => "ori",
            IntOp::Xor => "xori",
            IntOp::Shl => "shli",
            IntOp::ShrU => "shrui",
        };
        self.emit_val(&format!("arith.{name} {a}, {b} : {}", int_type(ty)))
    }

    fn int_ne(&mut self, a: &String, b: &String) -> String {
        self.emit_val(&format!("arith.cmpi ne, {a}, {b} : i32"))
    }

    fn convert(&mut self, op: Convert, a: &String) -> String {
        let (name, from, to) = match op {
            Convert::F32ToI32 => ("fptosi", "f32", "i32"),
            Convert::I32ToF32 => ("sitofp", "i32", "f32"),
            Convert::U32ToF32 => ("uitofp", "i32", "f32"),
            Convert::F32Bits => ("bitcast", "f32", "i32"),
            Convert::BitsF32 => ("bitcast", "i32", "f32"),
            Convert::I64Low => ("trunci", "i64", "i32"),
            Convert::U32ToI64 => ("extui", "i32", "i64"),
        };
        self.emit_val(&format!("arith.{name} {a} : {from} to {to}"))
    }
}
