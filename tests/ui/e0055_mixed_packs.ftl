fn f(x: f32[..S], y: f32[..L]) -> f32[..S] { x + y }
