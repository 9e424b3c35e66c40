// Phased Consistency Model sampling (Wang et al., 2024, arXiv 2405.18407): the deterministic
// flow-matching scheduler of `G-U-N/Phased-Consistency-Model`
// (`code/text_to_image_sd3/pcm_fm_deterministic_scheduler.py`, `PCMFMDeterministicScheduler`)
// that samples PCM-distilled SD3 models: `pcm_timesteps` phase edges on the shifted flow-matching
// sigmas, an Euler step from one edge to the next. (PCM's SD 1.5 LoRAs sample with
// `std.sampling.tcd`; the distillation loss is `std.objectives.consistency.pcm_distill`.)

/// `set_timesteps(num_inference_steps)`: the scheduler's grid `σ_i = shift·s/(1 + (shift − 1)·s)`,
/// `s = k·(pcm_timesteps − i)/T` (`k = T // pcm_timesteps`; f32 as torch computes it), taken at
/// `floor(linspace(0, pcm_timesteps, n, endpoint=False))`; timesteps `σ·T`, and a final 0 sigma.
step pcm_fm_sigmas(
    num_inference_steps: i32,
    shift: f64 = 1.0,
    pcm_timesteps: i32 = 50,
    num_train_timesteps: i32 = 1000,
) -> (sigmas: f32[N1], timesteps: f32[N]) requires N == num_inference_steps,
    N1 == num_inference_steps + 1, 0 < num_inference_steps <= pcm_timesteps,
    0 < pcm_timesteps <= num_train_timesteps, shift > 0.0 {
    let k = floordiv(num_train_timesteps, pcm_timesteps);
    // np.floor(np.linspace(0, P, n, endpoint=False)): j · (P / n) in f64.
    let index = i32(floor(f64(iota(N)) * (f64(pcm_timesteps) / f64(num_inference_steps))));
    let s = f32(k * (pcm_timesteps - index)) / f32(num_train_timesteps);
    let sigma = f32(shift) * s / (1.0 + f32(shift - 1.0) * s);
    (
        sigmas: where(
            iota(N1) < num_inference_steps,
            sigma[N: min(iota(N1), num_inference_steps - 1)],
            0.0,
        ),
        timesteps: sigma * f32(num_train_timesteps),
    )
}

/// `step`: the flow-matching Euler step from `sigma` to `sigma_next` (consecutive entries of
/// `sigmas`), written as the scheduler writes it: `denoised = x − out·σ`,
/// `prev = x + (x − denoised)/σ · (σ_next − σ)` (f32).
step pcm_fm_step(
    model_output: f32[..S],
    sample: f32[..S],
    sigma: f32,
    sigma_next: f32,
) -> (prev_sample: f32[..S]) requires sigma > 0.0 {
    let denoised = sample - model_output * sigma;
    let derivative = (sample - denoised) / sigma;
    (prev_sample: sample + derivative * (sigma_next - sigma))
}

test "pcm_fm_sigmas is PCMFMDeterministicScheduler.set_timesteps" {
    // Expected values: tests/reference/consistency_training.py (the scheduler's code, torch f32).
    let a = pcm_fm_sigmas(num_inference_steps: 4, shift: 3.0);
    expect_close(a.sigmas, [1.0, 0.9047619104385376, 0.75, 0.5131579041481018, 0.0], 0.0);
    expect_close(a.timesteps, [1000.0, 904.7619018554688, 750.0, 513.1578979492188], 0.0);
    let b = pcm_fm_sigmas(num_inference_steps: 2);
    expect_close(b.sigmas, [1.0, 0.5, 0.0], 0.0);
    expect_close(b.timesteps, [1000.0, 500.0], 0.0);
    let c = pcm_fm_sigmas(num_inference_steps: 7, shift: 3.0);
    expect_close(
        c.sigmas,
        [
            1.0, 0.9485293626785278, 0.8852459192276001, 0.8055556416511536, 0.7021276354789734,
            0.5625, 0.3636363744735718, 0.0,
        ],
        0.0,
    );
    expect_close(
        c.timesteps,
        [
            1000.0, 948.5293579101563, 885.2459106445313, 805.5556640625, 702.1276245117188, 562.5,
            363.6363830566406,
        ],
        0.0,
    );
}

test "pcm_fm_step is PCMFMDeterministicScheduler.step" {
    let out = [0.3, -1.2, 0.7, 0.05];
    let x = [1.1, -0.4, 0.25, -2.0];
    let first = pcm_fm_step(
        model_output: out,
        sample: x,
        sigma: 1.0,
        sigma_next: 0.9047619104385376,
    );
    expect_close(
        first.prev_sample,
        [1.0714285373687744, -0.2857142984867096, 0.18333333730697632, -2.0047619342803955],
        1e-7,
    );
    let last = pcm_fm_step(
        model_output: out,
        sample: x,
        sigma: 0.5131579041481018,
        sigma_next: 0.0,
    );
    expect_close(
        last.prev_sample,
        [0.9460526704788208, 0.2157895267009735, -0.10921052098274231, -2.025657892227173],
        1e-7,
    );
}
