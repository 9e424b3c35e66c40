fn f(logits: f32[B, V], labels: f32[B]) -> f32[B] { logits[V: labels] }
