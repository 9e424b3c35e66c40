fn f(x: f32[B], k: static f32 = 1.0) -> f32[B] { x * k }
