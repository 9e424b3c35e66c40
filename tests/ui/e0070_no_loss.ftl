objective o(x: f32[B]) {
    metric m = mean(x, B);
}
