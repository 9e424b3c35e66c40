fn f(x: f32[B, T]) -> f32[B] { x * 2.0 }
