objective o(x: f32[B]) {
    loss mean(x, B);
}

objective p(x: f32[B]) {
    let r = o(x);
    loss mean(r.grad.x, B);
}
