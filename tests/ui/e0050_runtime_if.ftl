fn f(x: f32[B], t: f32) -> f32[B] { if t > 0.5 { x } else { -x } }
