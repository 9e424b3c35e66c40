// `metric ..e;` spreads a record of float scalars.
objective o(x: f32[B]) {
    loss sum(x, B);
    metric ..x;
}
