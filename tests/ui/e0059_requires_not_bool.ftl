objective o(x: f32[B], beta: f32 = 0.1) requires beta {
    loss mean(x, B);
}
