objective o(chosen: f32[B], rejected: f32[B]) {
    loss mean(chosen - rejected, B);
}

objective p(x: f32[B]) {
    loss o(chosen: x).loss;
}
