// (IA)³ (Liu et al., 2022, arXiv 2205.05638) as PEFT computes it (`src/peft/tuners/ia3`;
// research/adapters.md §2): a learned vector rescales a layer's output (attention and output
// projections) or, for feed-forward layers (`feedforward_modules`), its input.

/// (IA)³ on an attention/output layer: PEFT scales the base layer's whole result,
/// `y = l ⊙ (x Wᵀ + b)`.
adapter ia3(
    x: f32[..L, I],
    weight: const f32[O, I],
    bias: const f32[O]?,
    ia3_l: param f32[O],
) -> f32[..L, O] { ia3_l * (x @ weight + (bias ?? 0.0)) }

/// PEFT's init: `l = 1`.
init ia3 {
    ia3_l = ones();
}

/// `merge`: `W ← l ⊙ W` by rows and `b ← l ⊙ b`, as PEFT does for a non-feed-forward layer
/// (a layer without bias gets a zero `bias`).
merge ia3 {
    weight = ia3_l * weight;
    bias = ia3_l * (bias ?? 0.0);
}

/// `unmerge`: `W ← W / l` by rows, `b ← b / l`.
unmerge ia3 {
    weight = weight / ia3_l;
    bias = (bias ?? 0.0) / ia3_l;
}

/// (IA)³ on a feed-forward layer: the input is scaled, `y = (l ⊙ x) Wᵀ + b`.
adapter ia3_feedforward(
    x: f32[..L, I],
    weight: const f32[O, I],
    bias: const f32[O]?,
    ia3_l: param f32[I],
) -> f32[..L, O] { ia3_l * x @ weight + (bias ?? 0.0) }

/// PEFT's init: `l = 1`.
init ia3_feedforward {
    ia3_l = ones();
}

/// `merge`: `W ← W ⊙ l` by columns.
merge ia3_feedforward {
    weight = weight * ia3_l;
}

/// `unmerge`: `W ← W / l` by columns.
unmerge ia3_feedforward {
    weight = weight / ia3_l;
}

test "ia3 scales outputs, ia3_feedforward inputs, as PEFT" {
    let o = ia3(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [[1.0, 0.0, -1.0, 2.0], [0.5, 1.0, 0.0, -1.0], [2.0, -1.0, 1.0, 0.0]],
        bias: [0.1, -0.2, 0.3],
        ia3_l: [0.5, 2.0, -1.0],
    );
    expect_close(o.y, [[3.05, -3.4, -3.3]], 1e-6);
    let f = ia3_feedforward(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [[1.0, 0.0, -1.0, 2.0], [0.5, 1.0, 0.0, -1.0], [2.0, -1.0, 1.0, 0.0]],
        bias: [0.1, -0.2, 0.3],
        ia3_l: [1.0, 0.5, 2.0, -1.0],
    );
    expect_close(f.y, [[-12.9, 5.3, 7.3]], 1e-6);
    gradcheck ia3(L: 3, I: 4, O: 3);
    gradcheck ia3_feedforward(L: 3, I: 4, O: 3);
}
