fn f(a: f32[M, K], b: f32[N, L]) -> f32[M, N] { a @ b }
