// LN tuning (Zhao et al., 2023, arXiv 2312.11420) as PEFT 0.21's `LNTuningLayer`
// (`peft/tuners/ln_tuning/layer.py`): the adapter is a trainable copy of a normalization layer,
// used in its place; the base layer stays frozen. PEFT's merge swaps the two layers (the base
// computes with the tuned parameters, the adapter keeps the base's) and its unmerge swaps them
// back: both blocks here are that swap. `ln_tuning` is `nn.LayerNorm`, `ln_tuning_rms` the
// RMS norm of Llama-style models (`LlamaRMSNorm`, PEFT's default targets for them). Test values:
// PEFT itself (f64).

/// LN tuning of `nn.LayerNorm(I, eps)` with an affine weight and bias (`weight`, `bias`: the
/// frozen base layer's): `y = (x − mean)/√(var + eps) · ln_weight + ln_bias` over I, the
/// biased variance, as `torch.nn.functional.layer_norm`.
adapter ln_tuning(
    x: f32[..L, I],
    weight: const f32[I],
    bias: const f32[I],
    ln_weight: param f32[I],
    ln_bias: param f32[I],
    eps: f32 = 1e-5,
) -> f32[..L, I] requires eps >= 0.0 {
    let centered = x - mean(x, I);
    let rstd = 1.0 / sqrt(mean(centered * centered, I) + eps);
    centered * rstd * ln_weight + ln_bias
}

/// PEFT's init: the adapter is a deep copy of the base layer.
init ln_tuning {
    ln_weight = weight;
    ln_bias = bias;
}

/// PEFT's merge: the layers trade places, so the base computes with the tuned parameters and
/// the adapter holds the base's.
merge ln_tuning {
    weight = ln_weight;
    bias = ln_bias;
    ln_weight = weight;
    ln_bias = bias;
}

/// PEFT's unmerge: the same swap, back.
unmerge ln_tuning {
    weight = ln_weight;
    bias = ln_bias;
    ln_weight = weight;
    ln_bias = bias;
}

/// LN tuning of an RMS norm (`LlamaRMSNorm(I, eps)`): `y = ln_weight · x/√(mean(x²) + eps)`
/// over I (computed in f32, as transformers does).
adapter ln_tuning_rms(
    x: f32[..L, I],
    weight: const f32[I],
    ln_weight: param f32[I],
    eps: f32 = 1e-6,
) -> f32[..L, I] requires eps >= 0.0 { ln_weight * (x / sqrt(mean(x * x, I) + eps)) }

/// PEFT's init: a deep copy of the base layer.
init ln_tuning_rms {
    ln_weight = weight;
}

/// PEFT's merge: the layers trade places.
merge ln_tuning_rms {
    weight = ln_weight;
    ln_weight = weight;
}

/// PEFT's unmerge: the same swap, back.
unmerge ln_tuning_rms {
    weight = ln_weight;
    ln_weight = weight;
}

test "ln_tuning matches PEFT's LNTuningLayer on nn.LayerNorm: forward and gradients" {
    // PEFT 0.21 (f64): LNTuningConfig(target_modules=["ln"]) on nn.LayerNorm(4) with base
    // weight [1, 0.9, 1.1, 1.2], bias [0, 0.1, -0.1, 0.2] and the adapter's copy set to the
    // values below; gradients of y.sum(). The merge swap is checked against PEFT's `merge()` in
    // compiler/python/tests/test_peft_layers.py.
    let x = [[0.5, -1.0, 2.0, 0.25], [1.5, 0.0, -0.5, 3.0], [-2.0, 1.0, 0.75, -0.25]];
    let r = ln_tuning(
        x: x,
        weight: [1.0, 0.9, 1.1, 1.2],
        bias: [0.0, 0.1, -0.1, 0.2],
        ln_weight: [0.8, -0.5, 1.3, 0.7],
        ln_bias: [0.3, -0.2, 0.05, 0.1],
    );
    expect_close(
        r.y,
        [
            [0.34689662426061363, 0.47413897374632014, 1.9551753605874265, -0.023103638684110587],
            [0.5921179183560116, 0.16514739794501448, -1.3740748519855563, 1.1224127142460405],
            [-0.9719928825582989, -0.676997330959362, 1.01459460260671, 0.025800415184099246],
        ],
        1e-5,
    );
    expect_close(
        r.grad.x,
        [
            [0.1766281383873186, -0.21692399353801278, -0.18016571785716723, 0.22046157300786157],
            [0.14727620805180125, -0.7509866635348708, 0.5805840900906367, 0.02312636539243279],
            [-0.09861309737026092, -0.7379476813143773, 0.749855507121714, 0.08670527156292451],
        ],
        1e-5,
    );
    expect_close(
        r.grad.ln_weight,
        [-1.1662229249270921, -1.1245780814639454, 1.1120731624681386, 1.178727843922899],
        1e-5,
    );
    expect_close(r.grad.ln_bias, [3.0, 3.0, 3.0, 3.0], 1e-6);
    gradcheck ln_tuning(L: 3, I: 4);
}

test "ln_tuning_rms matches PEFT's LNTuningLayer on LlamaRMSNorm" {
    // PEFT 0.21 on transformers' LlamaRMSNorm(4, eps=1e-6) (which normalises in f32), base
    // weight [1, 0.9, 1.1, 1.2], the adapter's copy set to the values below; y.sum() gradients.
    let x = [[0.5, -1.0, 2.0, 0.25], [1.5, 0.0, -0.5, 3.0], [-2.0, 1.0, 0.75, -0.25]];
    let r = ln_tuning_rms(x: x, weight: [1.0, 0.9, 1.1, 1.2], ln_weight: [0.8, -0.5, 1.3, 0.7]);
    expect_close(
        r.y,
        [
            [0.3470885992050171, 0.43386074900627136, 2.256075894832611, 0.15185126215219497],
            [0.7077213287353517, 0.0, -0.3833490401506424, 1.238512325286865],
            [-1.3492380142211915, -0.4216368794441223, 0.8221919536590576, -0.1475729078054428],
        ],
        1e-6,
    );
    expect_close(
        r.grad.x,
        [
            [0.39404788613319397, 0.16639789938926697, -0.07247936725616455, 0.45734041929244995],
            [0.26795974373817444, -0.2948838770389557, 0.8346495628356934, 0.0051284730434417725],
            [0.2848394215106964, -0.2267470806837082, 1.2424232959747314, 0.541569173336029],
        ],
        1e-5,
    );
    expect_close(
        r.grad.ln_weight,
        [-0.36803510785102844, -0.024447739124298096, 2.0730144679546356, 1.7754152566194534],
        1e-5,
    );
    gradcheck ln_tuning_rms(L: 3, I: 4);
}
