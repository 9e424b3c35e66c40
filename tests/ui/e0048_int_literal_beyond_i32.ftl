// An integer literal beyond i32 is an i64: it cannot silently wrap into an i32 parameter.
step scaled(x: f32[B], k: i32 = 3000000000) -> (y: f32[B]) {
    (y: x * f32(k),)
}
