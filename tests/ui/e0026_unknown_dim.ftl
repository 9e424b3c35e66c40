fn f(x: f32[B, T]) -> f32[B] { sum(x, Q) }
