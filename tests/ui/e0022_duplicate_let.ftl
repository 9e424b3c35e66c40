fn f(x: f32) -> f32 {
    let y = x;
    let y = x * 2.0;
    y
}
