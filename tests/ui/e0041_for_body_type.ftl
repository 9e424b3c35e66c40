// Each iteration's value becomes the accumulator: the body must have its dims and dtype.
objective o(x: f32[B, T]) {
    let s = for k in 0..2, acc = zeros(B) { acc + x };
    loss sum(s, B);
}
