objective o(x: f32[B], beta: f32 = 0.1) {
    loss mean(x * beta, B);
}

objective p(x: f32[B]) {
    loss o(x, betta: 0.5).loss;
}
