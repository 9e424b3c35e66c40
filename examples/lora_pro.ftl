// LoRA-Pro (Wang et al., 2024, arXiv 2407.18242), "full" mode, as the `lora-pro-adamw`
// package (0.2.1, PyPI) computes it in `lorapro_full_adjustment`, a port of the official
// release's DeepSpeed integration: LoRA's gradients become the low-rank equivalent of an AdamW
// step on the full weight, then A and B take a plain step with decoupled weight decay. Written
// as a gradient rule: the step calls `std.adapters.lora` and reads its `grad`. Quirks kept:
// (AAᵀ)⁻¹ and (BᵀB)⁻¹ are pinv of the matrix plus 1e-8·I (an inverse here: both are symmetric
// positive definite); step 0 (`t = 0`) skips the (BᵀB)⁻¹ factor and the Sylvester term; after
// the first step the second moment adds the square of the bf16-rounded equivalent gradient.

import std.adapters.lora

/// The inverse of a small symmetric positive definite `m[R, R']`, indexed as `m`.
fn inverse(m: f32[R, R']) -> f32[R, R'] { solve(m, eye(R, R''), R')[R' -> P][R'' -> R'][P -> R] }

/// X with `sb·X + X·sa = c` (all r × r), by the vec trick: one (r²) × (r²) solve of
/// `(I ⊗ sb + saᵀ ⊗ I) vec(X) = vec(c)`.
fn sylvester(sb: f32[R, R'], sa: f32[R, R'], c: f32[R, R']) -> f32[R, R'] {
    let k = zeros(R, R', R'', R''') + sb[R' -> R''] * eye(R', R''') + eye(R, R'') * sa[R -> R'''];
    let x = solve(k[(R, R') -> Q][(R'', R''') -> Q'], c[(R, R') -> Q], Q');
    x[Q' -> (R'', R''')][R'' -> R][R''' -> R']
}

/// `x` rounded to bf16 and back.
fn through_bf16(x: f32[O, I]) -> f32[O, I] { f32(bf16(x)) }

/// One LoRA-Pro step on the loss Σ y of `lora.lora` (upstream gradient 1): `m`, `v` are the
/// full-size AdamW moments of the equivalent gradient `s·(B·g_A + g_B·A)`, `t` the 0-based step.
step lora_pro(
    x: f32[N, I],
    weight: f32[O, I],
    lora_A: f32[R, I],
    lora_B: f32[O, R],
    m: f32[O, I],
    v: f32[O, I],
    t: i32,
    lora_alpha: f32 = 8.0,
    lr: f64 = 1e-4,
    beta1: f64 = 0.9,
    beta2: f64 = 0.999,
    eps: f64 = 1e-8,
    weight_decay: f64 = 0.01,
) -> (lora_A: f32[R, I], lora_B: f32[O, R], m: f32[O, I], v: f32[O, I]) requires t >= 0 {
    let s = lora_alpha / R;
    let s2 = s * s;
    let r = lora.lora(x: x, weight: weight, lora_A: lora_A, lora_B: lora_B, lora_alpha: lora_alpha);
    let a = lora_A;
    let b = lora_B;
    let first = t == 0;
    let aat = contract(a, a[R -> R'], I);
    let btb = contract(b, b[R -> R'], O);
    let aat_inv = inverse(aat + 1e-8 * eye(R, R'));
    let btb_inv = inverse(btb + 1e-8 * eye(R, R'));
    let projector = eye(O, O') - contract(contract(b, btb_inv, R), b[O -> O'][R -> R'], R');
    // grad @ (AAᵀ)⁻¹ for a [O, R] gradient, and the projection of one onto B's complement.
    let right = contract(r.grad.lora_B, aat_inv, R)[R' -> R];
    let grad_a = where(first, r.grad.lora_A, contract(btb_inv, r.grad.lora_A[R -> R'], R') / s2);
    let grad_b = where(first, right / s2, contract(projector, right[O -> O'], O') / s2);
    let equiv = s * (contract(b, grad_a, R) + contract(grad_b, a, R));
    let m2 = where(first, f32(1.0 - beta1) * equiv, m + f32(1.0 - beta1) * (equiv - m));
    let v2 = where(
        first,
        f32(1.0 - beta2) * (equiv * equiv),
        v * f32(beta2) + f32(1.0 - beta2) * through_bf16(equiv) * through_bf16(equiv),
    );
    let step_index = f64(t + 1);
    let bias1 = f32(1.0 - pow(beta1, step_index));
    let bias2 = f32(1.0 - pow(beta2, step_index));
    let g = m2 / bias1 / (sqrt(v2) / sqrt(bias2) + f32(eps));
    let grad_a_orin = s * contract(b, g, O);
    let grad_b_orin = s * contract(g, a, I);
    let right_orin = contract(grad_b_orin, aat_inv, R)[R' -> R];
    let rhs = -contract(contract(btb_inv, grad_a_orin[R -> R'], R'), a[R -> R'], I) / s2;
    let xs = sylvester(btb, aat, rhs);
    let new_a = where(
        first,
        grad_a_orin,
        contract(btb_inv, grad_a_orin[R -> R'], R') / s2 + contract(xs, a[R -> R'], R'),
    );
    let new_b = where(
        first,
        right_orin / s2,
        contract(projector, right_orin[O -> O'], O') / s2 - contract(b, xs, R)[R' -> R],
    );
    let decay = f32(1.0 - lr * weight_decay);
    (lora_A: a * decay - f32(lr) * new_a, lora_B: b * decay - f32(lr) * new_b, m: m2, v: v2)
}

test "two LoRA-Pro steps match lora-pro-adamw on a PEFT LoRA layer" {
    // LoRAProAdamW(peft_model, lr=0.01, weight_decay=0.01) on nn.Linear(3, 2) with
    // LoraConfig(r=2, lora_alpha=8), loss model(x).sum(), two steps (torch 2.15, f32); the
    // second step goes through the Sylvester solve.
    let x = [[1.0, 2.0, -1.0], [0.5, -0.5, 2.0]];
    let w = [[1.0, 0.0, 0.5], [0.0, 1.0, -0.5]];
    let zero = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]];
    let s0 = lora_pro(
        x: x,
        weight: w,
        lora_A: [[0.1, -0.2, 0.3], [0.0, 0.4, -0.1]],
        lora_B: [[0.2, -0.1], [0.05, 0.3]],
        m: zero,
        v: zero,
        t: 0,
        lr: 0.01,
    );
    expect_close(
        s0.lora_A,
        [
            [0.08999000489711761, -0.20998001098632813, 0.2899700105190277],
            [-0.00800000037997961, 0.3919600248336792, -0.10799000412225723],
        ],
        1e-5,
    );
    expect_close(
        s0.lora_B,
        [[0.18566377460956573, -0.11366520822048187], [0.035678766667842865, 0.2862947881221771]],
        1e-5,
    );
    let s1 = lora_pro(
        x: x,
        weight: w,
        lora_A: s0.lora_A,
        lora_B: s0.lora_B,
        m: s0.m,
        v: s0.v,
        t: 1,
        lr: 0.01,
    );
    expect_close(
        s1.lora_A,
        [
            [0.07701588422060013, -0.21659961342811584, 0.283159464597702],
            [-0.013080982491374016, 0.3888187110424042, -0.11129345744848251],
        ],
        1e-5,
    );
    expect_close(
        s1.lora_B,
        [[0.1774221658706665, -0.12198560684919357], [0.02973156049847603, 0.28010332584381104]],
        1e-5,
    );
    expect_close(
        s1.m,
        [
            [0.2767230272293091, 0.35710763931274414, 0.2624307870864868],
            [0.3685230612754822, 0.44890764355659485, 0.32363077998161316],
        ],
        1e-5,
    );
    expect_close(
        s1.v,
        [
            [0.004230577498674393, 0.007540206890553236, 0.004253996070474386],
            [0.008139455690979958, 0.013269312679767609, 0.007167988922446966],
        ],
        1e-5,
    );
}
