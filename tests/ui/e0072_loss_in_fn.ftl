fn f(x: f32[B]) -> f32[B] {
    loss mean(x, B);
    x
}
