fn f(x: f32[B]) -> f32[B] { exp(x, x) }
