step ema(target: f32[..S], online: f32[..S], decay: f32 = 0.95) -> (target: f64[..S]) {
    (target: decay * target + (1.0 - decay) * online)
}
