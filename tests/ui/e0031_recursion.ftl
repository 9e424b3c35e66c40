fn f(x: f32) -> f32 { g(x) }

fn g(x: f32) -> f32 { f(x) }
