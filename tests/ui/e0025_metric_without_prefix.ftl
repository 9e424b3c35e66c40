// Metrics are read as `r.metric.<name>`, the name `ftc run` writes; the bare name gets a hint.
objective o(x: f32[B]) {
    loss sum(x, B);
    metric peak = max(x, B);
}

test "metric spelling" {
    let r = o(x: [1.0, 2.0]);
    expect_close(r.peak, 2.0, 0.0);
}
