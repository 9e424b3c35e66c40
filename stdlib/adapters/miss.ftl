// MiSS: Matrix Shard Sharing (Kang, 2024, arXiv 2409.15371; PEFT's former "Bone"), as PEFT
// 0.21's `MissLinear` (`peft/tuners/miss/layer.py`) with its default init (`init_weights=True`):
// one `[r, out]` block shared by every r-wide shard of the input, `y = base(x) + (Σ_shards x)
// @ miss_block`; an input width that r does not divide is zero-padded, as PEFT's `F.pad` (the
// last shard sums fewer columns). PEFT's `bat` and `mini` variants are not supported. Test values:
// PEFT itself (f64).

/// MiSS on `nn.Linear` (`weight: [O, I]`): `y = x Wᵀ + b + fold(dropout(x)) · miss_block`, where
/// `fold` sums the input columns congruent modulo r (`x.reshape(…, I/r, r).sum(-2)`).
adapter miss(
    x: f32[..L, I],
    weight: const f32[O, I],
    bias: const f32[O]?,
    miss_block: param f32[R, O],
    miss_dropout: f32 = 0.0,
) -> f32[..L, O] requires 0.0 <= miss_dropout < 1.0 {
    let folded = scatter(drop(x, miss_dropout), R: iota(I) % size(R));
    x @ weight + (bias ?? 0.0) + contract(folded, miss_block, R)
}

/// PEFT's init: `miss_block` zero (the layer starts as the base layer).
init miss(r: i32 = 64) requires R == r {
    miss_block = zeros();
}

/// PEFT's merge (`get_delta_weight_miss`): every input column i gains `miss_block[i mod r]`.
merge miss {
    weight = weight + miss_block[R: iota(I) % size(R)];
}

/// PEFT's unmerge: the same block subtracted.
unmerge miss {
    weight = weight - miss_block[R: iota(I) % size(R)];
}

test "miss matches PEFT: forward and gradients, an input width r does not divide" {
    // PEFT 0.21 (f64): MissConfig(r=2) on nn.Linear(5, 4) (5 columns: the last shard padded),
    // miss_block set to the values below; gradients of y.sum(). Its merged weight (first row
    // [−0.2, −0.1422, 0.0383, −0.0648, 0.0191]) is checked through the merged forward in
    // compiler/ftc/tests/core.rs.
    let r = miss(
        x: [
            [
                -1.0, -0.7857142857142857, -0.5714285714285714, -0.3571428571428572,
                -0.1428571428571429,
            ],
            [0.0714285714285714, 0.2857142857142856, 0.5, 0.7142857142857142, 0.9285714285714284],
            [1.1428571428571428, 1.3571428571428572, 1.5714285714285712, 1.7857142857142856, 2.0],
        ],
        weight: [
            [
                -0.7, -0.5421686909928944, -0.4617018362648002, -0.4648353676150659,
                -0.48094340742552966,
            ],
            [
                -0.42747137483473485, -0.2858362866619979, -0.11851186644391058,
                -0.011590491127135519, 0.0043697432610177375,
            ],
            [
                -0.01756000582577913, 0.010527295134403356, 0.1305532345157459, 0.2999114405247692,
                0.430639682937908,
            ],
            [
                0.47029194191044854, 0.450157036754546, 0.45649182975941255, 0.5512170647965164,
                0.7149877209662951,
            ],
        ],
        bias: [0.3, -0.2, 0.1, 0.05],
        miss_block: [[0.5, -0.2, 0.3, 0.1], [0.4, -0.6, -0.3, 0.2]],
    );
    expect_close(
        r.y,
        [
            [0.6102524245690448, 1.551864735830942, -0.30537304353879713, -1.733843571074054],
            [0.23562817210659137, -1.2756784168191588, 0.9311322928401822, 1.8480981369836798],
            [-0.13899608035586297, -4.10322156946926, 2.1676376292191613, 5.430039845041414],
        ],
        1e-5,
    );
    expect_close(
        r.grad.x,
        [
            [
                0.025260561249934588, -0.667320645765943, 0.7068313615664477, 0.07470264657908432,
                1.3690537397396911,
            ],
            [
                0.025260561249934588, -0.667320645765943, 0.7068313615664477, 0.07470264657908432,
                1.3690537397396911,
            ],
            [
                0.025260561249934588, -0.667320645765943, 0.7068313615664477, 0.07470264657908432,
                1.3690537397396911,
            ],
        ],
        1e-5,
    );
    expect_close(r.grad.miss_block, [[4.5, 4.5, 4.5, 4.5], [3.0, 3.0, 3.0, 3.0]], 1e-5);
    gradcheck miss(L: 3, I: 5, O: 4, R: 2);
}
