// Shapes around the Cranelift backend's vector width (4 lanes): bool results along the
// contiguous dim (stored one byte each, never as lane masks), lengths that leave a remainder,
// and a gather whose index varies along the vectorized dim. The values are the same on every
// backend.

step flags(x: f32[R, N], limit: f32[R]) -> (big: bool[R, N], count: i32[R]) {
    let big = x > limit;
    (big: big, count: sum(i32(big), N))
}

step pick(table: f32[K], at: i32[N]) -> (y: f32[N]) {
    (y: table[K: at] * 2.0,)
}

test "bool outputs and counts along a 6-wide row" {
    let r = flags(x: [[0.1, 0.9, 0.7, 0.2, 0.6, 0.3], [0.8, 0.8, 0.1, 0.9, 0.2, 0.95]], limit: [0.5, 0.7]);
    expect_close(f32(r.big), [[0.0, 1.0, 1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 1.0, 0.0, 1.0]], 0.0);
    expect_close(f32(r.count), [3.0, 4.0], 0.0);
}

test "a gather indexed along the contiguous dim" {
    let r = pick(table: [1.0, 2.0, 3.0], at: [2, 0, 1, 1, 2, 0, 0]);
    expect_close(r.y, [6.0, 2.0, 4.0, 4.0, 6.0, 2.0, 2.0], 0.0);
}
