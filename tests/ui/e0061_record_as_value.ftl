objective o(x: f32[B]) {
    loss mean(x, B);
}

objective p(x: f32[B]) {
    loss o(x) * 2.0;
}
