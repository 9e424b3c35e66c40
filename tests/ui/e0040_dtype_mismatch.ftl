fn f(x: f32[B], y: f64[B]) -> f32[B] { x + y }
