objective o(x: f32[B]) {
    let a = x +;
    let b = * x;
    loss mean(a + b, B);
}
