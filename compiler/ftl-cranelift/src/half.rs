//! IEEE half precision in integer arithmetic (no F16C, no libcall): f16 tensors are stored as
//! their 16 bits and computed in f32, as on the MLIR path, which lets LLVM's `fpext`/`fptrunc`
//! do the same conversions. Widening is exact; narrowing rounds to nearest, ties to even,
//! overflows to infinity and keeps NaN a (quiet) NaN.

use crate::emit::Emitter;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};

impl Emitter<'_, '_> {
    /// The f32 of the f16 whose bits are the low 16 of the i32 `h`.
    pub(crate) fn f16_to_f32(&mut self, h: Value) -> Value {
        let sign = self.b.ins().band_imm_s(h, 0x8000);
        let sign = self.b.ins().ishl_imm_s(sign, 16);
        let em = self.b.ins().band_imm_s(h, 0x7FFF);
        // Normal and infinite/NaN: the exponent re-biased by 112 (and all-ones kept all-ones).
        let shifted = self.b.ins().ishl_imm_s(em, 13);
        let normal = self.b.ins().iadd_imm_s(shifted, 0x3800_0000);
        let special = self.b.ins().iadd_imm_s(shifted, 0x7000_0000);
        let is_special = self
            .b
            .ins()
            .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, em, 0x7C00);
        let big = self.b.ins().select(is_special, special, normal);
        // Zero and subnormal: the integer em times 2^-24, exact in f32.
        let count = self.b.ins().fcvt_from_sint(types::F32, em);
        let unit = self.b.ins().f32const(f32::from_bits(0x3380_0000));
        let tiny = self.b.ins().fmul(count, unit);
        let tiny = self.b.ins().bitcast(types::I32, MemFlagsData::new(), tiny);
        let is_small = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, em, 0x0400);
        let magnitude = self.b.ins().select(is_small, tiny, big);
        let bits = self.b.ins().bor(magnitude, sign);
        self.b.ins().bitcast(types::F32, MemFlagsData::new(), bits)
    }

    /// The bits (in an i32) of the f16 nearest the f32 `v`.
    pub(crate) fn f32_to_f16(&mut self, v: Value) -> Value {
        let bits = self.b.ins().bitcast(types::I32, MemFlagsData::new(), v);
        let sign = self.b.ins().ushr_imm_s(bits, 16);
        let sign = self.b.ins().band_imm_s(sign, 0x8000);
        let f = self.b.ins().band_imm_s(bits, 0x7FFF_FFFF);
        // Normal results: drop 13 mantissa bits rounding to nearest even, re-bias by 112; a
        // carry out of the largest finite value becomes infinity (0x7c00).
        let lsb = self.b.ins().ushr_imm_s(f, 13);
        let lsb = self.b.ins().band_imm_s(lsb, 1);
        let biased = self.b.ins().iadd_imm_s(f, 0x0FFF);
        let rounded = self.b.ins().iadd(biased, lsb);
        let rounded = self.b.ins().ushr_imm_s(rounded, 13);
        let normal = self.b.ins().iadd_imm_s(rounded, -(112 << 10));
        // Subnormal results: |v|·2^24 rounded to the nearest even integer (exact scaling); a
        // result of 1024 is the smallest normal, 0x0400, as it should be.
        let magnitude = self.b.ins().bitcast(types::F32, MemFlagsData::new(), f);
        let scale = self.b.ins().f32const(16_777_216.0);
        let scaled = self.b.ins().fmul(magnitude, scale);
        let nearest = self.b.ins().nearest(scaled);
        let subnormal = self.b.ins().fcvt_to_sint_sat(types::I32, nearest);
        let is_small = self
            .b
            .ins()
            .icmp_imm_s(IntCC::SignedLessThan, f, 0x3880_0000);
        let finite = self.b.ins().select(is_small, subnormal, normal);
        // |v| ≥ 65536 and infinity: infinity; NaN: the quiet NaN.
        let inf = self.b.ins().iconst(types::I32, 0x7C00);
        let nan = self.b.ins().iconst(types::I32, 0x7E00);
        let is_nan = self
            .b
            .ins()
            .icmp_imm_s(IntCC::SignedGreaterThan, f, 0x7F80_0000);
        let is_big = self
            .b
            .ins()
            .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, f, 0x4780_0000);
        let out = self.b.ins().select(is_big, inf, finite);
        let out = self.b.ins().select(is_nan, nan, out);
        self.b.ins().bor(out, sign)
    }
}
