objective o(x: f32[B]) {
    let y = x * 2.0
    loss mean(y, B);
}
