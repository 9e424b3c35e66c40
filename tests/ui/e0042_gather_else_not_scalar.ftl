fn f(x: f32[B, V], i: i32[B], d: f32[B]) -> f32[B] { x[V: i else d] }
