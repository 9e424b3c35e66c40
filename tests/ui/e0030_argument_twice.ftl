fn f(x: f32) -> f32 { x }

fn g(y: f32) -> f32 { f(y, x: y) }
