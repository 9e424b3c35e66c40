fn f(x: f32[B, T], y: f32[V]) -> f32[B] { sum(x, V) }
