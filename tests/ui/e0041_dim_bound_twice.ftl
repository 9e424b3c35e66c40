fn f(a: f32[B], b: f32[B]) -> f32[B] { a + b }

fn g(x: f32[N], y: f32[M]) -> f32[N] { f(x, y) }
