fn f(x: f32[B]) -> f32[B] { where(x, x, 0.0) }
