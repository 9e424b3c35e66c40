step s(x: f32[..S]) -> (y: f32[..S], z: f32[..S]) {
    (y: x)
}
