objective o(chosen_logps: f32[B], beta: f32 = 0.1) {
    loss mean(chosen_logp * beta, B);
}
