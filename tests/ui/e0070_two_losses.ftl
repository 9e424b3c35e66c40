objective o(x: f32[B]) {
    loss mean(x, B);
    loss sum(x, B);
}
