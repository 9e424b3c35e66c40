fn f(x: f32) -> f32 {
    let g = x;
    g(x)
}
