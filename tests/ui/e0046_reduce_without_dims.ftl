fn f(x: f32[B, T]) -> f32 { sum(x) }
