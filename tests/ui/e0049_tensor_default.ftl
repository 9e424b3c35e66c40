objective o(x: f32[B] = 0.0) {
    loss mean(x, B);
}
