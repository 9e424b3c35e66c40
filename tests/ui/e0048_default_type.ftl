objective o(x: f32[B], beta: f32 = true) {
    loss mean(x, B);
}
