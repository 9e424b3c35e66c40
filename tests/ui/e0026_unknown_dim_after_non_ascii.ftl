// Non-ASCII text before the error (‖A‖ · λ ⊙ β) must not shift the caret: spans are bytes.
fn f(x: f32[B, T]) -> f32[B] { sum(x, Q) }
