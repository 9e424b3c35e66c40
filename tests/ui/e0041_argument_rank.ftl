fn seq(logits: f32[B, T, V]) -> f32[B] { sum(logits, T, V) }

fn g(x: f32[N, V]) -> f32[N] { seq(x) }
