step s(x: f32[..S], mode: enum { fast, exact } = fast) -> (y: f32[..S]) {
    let y = match mode {
        fast => x,
        exactt => x * 2.0,
        _ => x,
    };
    (y: y)
}
