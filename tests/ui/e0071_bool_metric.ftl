objective o(x: f32[B]) {
    loss mean(x, B);
    metric positive = all(x > 0.0, B);
}
