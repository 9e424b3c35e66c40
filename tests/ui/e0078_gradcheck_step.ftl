step s(x: f32[..S]) -> (y: f32[..S]) {
    (y: x)
}

test "gradcheck a step" {
    gradcheck s;
}
