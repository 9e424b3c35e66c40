// Each objective exercises one simplifier rule; `compiler/tests/core.rs` snapshots their IR.

/// log(sigmoid x) becomes log_sigmoid x.
objective log_of_sigmoid(x: f32[B]) {
    loss sum(log(sigmoid(x)), B);
}

/// log(1 + exp x) becomes softplus x.
objective log_one_plus_exp(x: f32[B]) {
    loss sum(log(1.0 + exp(x)), B);
}

/// log(softmax x) becomes x - logsumexp x (log_softmax).
objective log_of_softmax(x: f32[B, V]) {
    loss -sum(log(softmax(x, V)), B, V);
}

/// Identical subexpressions are computed once (CSE).
objective common_subexpressions(x: f32[B], y: f32[B]) {
    loss sum(exp(x * y) + exp(x * y), B);
}

/// Constants fold; `x * 1` and `x + 0` disappear; a static branch keeps one arm.
objective folding(x: f32[B], twice: static bool = false) {
    let k = 2.0 * 3.0 - 5.0;
    let y = if twice { x * 2.0 } else { x * k + 0.0 };
    loss sum(y, B);
}

/// Only what the outputs need survives (DCE).
objective dead_code(x: f32[B]) {
    let unused = exp(x) * 3.0;
    loss sum(x, B);
}

/// A gather of a contraction's free dim at a per-row index distributes over elementwise ops
/// and becomes a masked sum over the dim, the index still checked through a gather of iota:
/// the pick is then a reduction like the logsumexp beside it (see ftl_plan::slicing).
objective gather_of_contraction(
    hidden: f32[N, H],
    w: f32[V, H],
    bias: f32[V],
    labels: i32[N],
) {
    loss sum((hidden @ w + bias)[V: labels], N);
}

/// A sum over D of x − y, y constant over D, is sum(x) − |D|·y (no wait for y).
objective sum_of_shifted(x: f32[B, V]) {
    loss sum(sum(x - logsumexp(x, V), V), B);
}
