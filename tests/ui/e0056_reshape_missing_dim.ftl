fn f(x: f32[N, D]) -> f32[S, B, D] { x[M -> (S, B)] }
