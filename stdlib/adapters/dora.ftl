// DoRA (Liu et al., 2024, arXiv 2402.09353) as PEFT computes it (`src/peft/tuners/lora/dora.py`,
// `variants.py: DoraLinearVariant`; research/adapters.md §1.4): LoRA plus a magnitude per output
// row, the row norm of `W + s·B A` detached. Test vectors: research/adapters.md §6.

/// DoRA: with `x̃ = dropout(x)`, `n = ‖W + s·B A‖` per output row (detached, "treated as a
/// constant", paper §4.3) and `c = m / n`, PEFT's forward `y = Wx + b + (c − 1)⊙W x̃ + c⊙s·B A x̃`
/// (= `c⊙(Wx + s·B A x) + b` without dropout; with dropout PEFT recomputes the base product on
/// `x̃`, reproduced here). `weight_norm` is only written by `merge` and read by `unmerge`.
adapter dora(
    x: f32[..L, I],
    weight: const f32[O, I],
    bias: const f32[O]?,
    weight_norm: const f32[O]?,
    lora_A: param f32[R, I],
    lora_B: param f32[O, R],
    lora_magnitude_vector: param f32[O],
    lora_alpha: f32 = 8.0,
    lora_dropout: f32 = 0.0,
    use_rslora: static bool = false,
) -> f32[..L, O] requires 0.0 <= lora_dropout < 1.0 {
    let s = if use_rslora { lora_alpha / sqrt(R) } else { lora_alpha / R };
    let delta = s * (lora_B @ lora_A);
    let norm = detach(sqrt(sum((weight + delta) * (weight + delta), I)));
    let c = lora_magnitude_vector / norm;
    let xd = drop(x, lora_dropout);
    x @ weight + (bias ?? 0.0) + (c - 1.0) * (xd @ weight) + c * s * (xd @ lora_A @ lora_B)
}

/// PEFT's init: LoRA's (`lora_A` kaiming-uniform with a = √5, `lora_B = 0`) and `m = ‖W‖` per
/// row, so DoRA starts as the base layer.
init dora(r: i32 = 8) requires R == r {
    lora_A = kaiming_uniform(fan_in: I, a: sqrt(5.0));
    lora_B = zeros();
    lora_magnitude_vector = sqrt(sum(weight * weight, I));
}

/// PEFT `merge`: `n = ‖W + ΔW‖` per row, `W' = (m / n) ⊙ (W + ΔW)`; the norm is kept in
/// `weight_norm` because it cannot be recovered from the merged weight.
merge dora {
    weight = lora_magnitude_vector / norm * (weight + delta);
    weight_norm = norm;
}

/// PEFT `unmerge`: `W = W' / (m / n) − ΔW` with the norm kept by `merge`.
unmerge dora {
    weight = weight / (lora_magnitude_vector / (weight_norm ?? 1.0)) - delta;
}

/// `sum(y ⊙ g)`: DoRA under a given upstream gradient, for tests.
objective dora_probe(
    x: const f32[L, I],
    weight: const f32[O, I],
    lora_A: f32[R, I],
    lora_B: f32[O, R],
    lora_magnitude_vector: f32[O],
    g: const f32[O],
    lora_alpha: f32 = 8.0,
) {
    let r = dora(
        x: x,
        weight: weight,
        lora_A: lora_A,
        lora_B: lora_B,
        lora_magnitude_vector: lora_magnitude_vector,
        lora_alpha: lora_alpha,
    );
    loss sum(r.y * g, L, O);
}

test "dora matches PEFT on research vector 6 (forward, detached-norm backward)" {
    let r = dora(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [[1.0, 0.0, -1.0, 2.0], [0.5, 1.0, 0.0, -1.0], [2.0, -1.0, 1.0, 0.0]],
        bias: [0.1, -0.2, 0.3],
        lora_A: [[0.1, 0.2, -0.1, 0.0], [0.0, -0.3, 0.2, 0.1]],
        lora_B: [[1.0, 0.5], [-0.5, 1.0], [0.2, -0.2]],
        lora_magnitude_vector: [2.0, 1.5, 3.0],
        lora_alpha: 4.0,
    );
    expect_close(r.y, [[5.292504128584245, -1.4930654850485536, 4.0092014719317115]], 1e-6);
    // m = n (PEFT's init value): DoRA equals LoRA, [6.8, -0.9, 2.92] (+ bias).
    let i = dora(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [[1.0, 0.0, -1.0, 2.0], [0.5, 1.0, 0.0, -1.0], [2.0, -1.0, 1.0, 0.0]],
        lora_A: [[0.1, 0.2, -0.1, 0.0], [0.0, -0.3, 0.2, 0.1]],
        lora_B: [[1.0, 0.5], [-0.5, 1.0], [0.2, -0.2]],
        lora_magnitude_vector: [2.619160170741759, 1.044030650891055, 2.3616943070600818],
        lora_alpha: 4.0,
    );
    expect_close(i.y, [[6.8, -0.9, 2.92]], 1e-6);
    // Backward with g = [1, -1, 0.5] (the norm does not depend on A, B: PEFT's detach).
    let p = dora_probe(
        x: [[1.0, 2.0, 3.0, 4.0]],
        weight: [[1.0, 0.0, -1.0, 2.0], [0.5, 1.0, 0.0, -1.0], [2.0, -1.0, 1.0, 0.0]],
        lora_A: [[0.1, 0.2, -0.1, 0.0], [0.0, -0.3, 0.2, 0.1]],
        lora_B: [[1.0, 0.5], [-0.5, 1.0], [0.2, -0.2]],
        lora_magnitude_vector: [2.0, 1.5, 3.0],
        g: [1.0, -1.0, 0.5],
        lora_alpha: 4.0,
    );
    expect_close(
        p.grad.lora_magnitude_vector,
        [2.5962520642921225, 0.8620436566990359, 0.618200245321952],
        1e-6,
    );
    expect_close(
        p.grad.lora_A,
        [
            [3.2180014198119404, 6.436002839623881, 9.65400425943582, 12.872005679247762],
            [-2.3639302026800295, -4.727860405360059, -7.091790608040089, -9.455720810720118],
        ],
        1e-6,
    );
    expect_close(
        p.grad.lora_B,
        [
            [0.30544141932848495, 0.6108828386569702],
            [-0.5746957711326907, -1.149391542265382],
            [0.2540548953377884, 0.5081097906755772],
        ],
        1e-6,
    );
    gradcheck dora(L: 3, I: 4, O: 3, R: 2);
    gradcheck dora_probe(L: 2, I: 4, O: 3, R: 2);
}
