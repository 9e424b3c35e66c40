step s(x: f32[..S], mode: enum { a, b, c } = a) -> (y: f32[..S]) {
    let y = match mode {
        a => x,
        b => x * 2.0,
    };
    (y: y)
}
