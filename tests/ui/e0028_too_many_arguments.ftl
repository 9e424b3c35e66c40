fn f(x: f32) -> f32 { x }

fn g(x: f32) -> f32 { f(x, x) }
