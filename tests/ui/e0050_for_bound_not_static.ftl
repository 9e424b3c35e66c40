// A `for` loop is unrolled when compiled: its bounds must be known at build time.
objective o(x: f32[B], n: i32 = 3) {
    let s = for k in 0..n, acc = zeros(B) { acc + x };
    loss sum(s, B);
}
