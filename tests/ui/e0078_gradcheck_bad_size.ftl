objective o(x: f32[B]) {
    loss mean(x, B);
}

test "bad size" {
    gradcheck o(B: 0);
}
