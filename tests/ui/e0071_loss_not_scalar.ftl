objective o(x: f32[B]) {
    loss x * 2.0;
}
