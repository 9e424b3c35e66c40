// Shapes around the Cranelift backend's vector width (4 lanes): bool results along the
// contiguous dim (stored one byte each, never as lane masks), lengths that leave a remainder,
// and a gather whose index varies along the vectorized dim. The values are the same on every
// backend.

step flags(x: f32[R, N], limit: f32[R]) -> (big: bool[R, N], count: i32[R]) {
    let big = x > limit;
    (big: big, count: sum(i32(big), N))
}

step pick(table: f32[K], at: i32[N]) -> (y: f32[N]) { (y: table[K: at] * 2.0) }

test "bool outputs and counts along a 6-wide row" {
    let r = flags(
        x: [[0.1, 0.9, 0.7, 0.2, 0.6, 0.3], [0.8, 0.8, 0.1, 0.9, 0.2, 0.95]],
        limit: [0.5, 0.7],
    );
    expect_close(f32(r.big), [[0.0, 1.0, 1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 1.0, 0.0, 1.0]], 0.0);
    expect_close(f32(r.count), [3.0, 4.0], 0.0);
}

test "a gather indexed along the contiguous dim" {
    let r = pick(table: [1.0, 2.0, 3.0], at: [2, 0, 1, 1, 2, 0, 0]);
    expect_close(r.y, [6.0, 2.0, 4.0, 4.0, 6.0, 2.0, 2.0], 0.0);
}

step recenter(x: f32[N, V], at: i32[N]) -> (y: f32[N, V], total: f32[N]) {
    let y = x - x[V: at] + f32(iota(V)[V: at]);
    (y: y, total: sum(y, V))
}

test "a gather along the vectorized dim at an index that does not vary along it" {
    // Row n subtracts its own element at[n] (a scalar for the whole row) and adds at[n]: the
    // gathered load and iota are one value, not four consecutive ones.
    let r = recenter(
        x: [[0.5, 1.0, 2.0, 4.0, 8.0, 16.0], [3.0, 1.0, 4.0, 1.0, 5.0, 9.0]],
        at: [4, 1],
    );
    expect_close(r.y, [[-3.5, -3.0, -2.0, 0.0, 4.0, 12.0], [3.0, 1.0, 4.0, 1.0, 5.0, 9.0]], 0.0);
    expect_close(r.total, [7.5, 23.0], 0.0);
}
