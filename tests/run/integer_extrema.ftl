// Max and min reductions over integer tensors start from the type's own extreme value
// (an i32 reduction once started from i64::MIN, which MLIR rejects as an i32 constant).

step extrema32(x: i32[N]) -> (max: i32, min: i32) { (max: max(x, N), min: min(x, N)) }

step extrema64(x: i64[N]) -> (max: i64, min: i64) { (max: max(x, N), min: min(x, N)) }

test "i32 and i64 max/min reductions" {
    let a = extrema32(x: [3, -7, 5]);
    expect_close(f32(a.max), 5.0, 0.0);
    expect_close(f32(a.min), -7.0, 0.0);
    let n = extrema32(x: [-3, -7, -5]);
    expect_close(f32(n.max), -3.0, 0.0);
    let b = extrema64(x: i64([3, -7, 5]));
    expect_close(f64(b.max), 5.0, 0.0);
    expect_close(f64(b.min), -7.0, 0.0);
}
