import std.sampling.schedules

// Latent Consistency Models (Luo et al., 2023, arXiv 2310.04378): diffusers' `LCMScheduler.step`
// (`scheduling_lcm.py`; research/consistency.md §1.4). The caller walks the timesteps of
// `set_timesteps` (e.g. [999, 759, 499, 259] for 4 steps) and passes each with the next one.

/// One LCM multistep sampling step: `x₀` from the model output, `denoised = c_out·x₀ +
/// c_skip·x` with LCM's boundary scalings, then `prev_sample = √a_p·denoised + √(1−a_p)·noise`
/// — or `denoised` itself on the last step (`last_step`, diffusers' `step_index ==
/// num_inference_steps − 1`). `prev_timestep < 0` reads `final_alpha_cumprod` (1 with
/// `set_alpha_to_one`, else `alphas_cumprod[0]`). `noise` stands in for diffusers' `randn_tensor`.
/// Thresholding (a per-sample quantile) is not supported; `clip_sample` is.
step lcm_step(
    model_output: f32[..S],
    sample: f32[..S],
    noise: f32[..S],
    timestep: i32,
    prev_timestep: i32,
    last_step: bool,
    num_train_timesteps: i32 = 1000,
    beta_start: f64 = 8.5e-4,
    beta_end: f64 = 0.012,
    beta_schedule: enum { linear, scaled_linear, squaredcos_cap_v2 } = scaled_linear,
    prediction_type: enum { epsilon, sample, v_prediction } = epsilon,
    timestep_scaling: f32 = 10.0,
    set_alpha_to_one: static bool = true,
    clip_sample: static bool = false,
    clip_sample_range: f32 = 1.0,
) -> (prev_sample: f32[..S], denoised: f32[..S]) requires Tt == num_train_timesteps,
    0 <= timestep < num_train_timesteps, prev_timestep < num_train_timesteps {
    let ac = alphas_cumprod(iota(Tt), beta_start, beta_end, beta_schedule);
    let final_alpha_cumprod = if set_alpha_to_one { 1.0 } else { ac[Tt: 0] };
    let a_t = ac[Tt: timestep];
    let a_p = ac[Tt: prev_timestep else final_alpha_cumprod];
    let t = f32(timestep);
    let x0 = pred_original_sample(model_output, sample, a_t, prediction_type);
    let x0c = if clip_sample { clamp(x0, -clip_sample_range, clip_sample_range) } else { x0 };
    let c_skip = lcm_c_skip(t, timestep_scaling, 0.5);
    let c_out = lcm_c_out(t, timestep_scaling, 0.5);
    let denoised = c_out * x0c + c_skip * sample;
    let noised = sqrt(a_p) * denoised + sqrt(1.0 - a_p) * noise;
    (prev_sample: where(last_step, denoised, noised), denoised: denoised)
}

/// `LCMScheduler.set_timesteps(num_inference_steps, original_inference_steps, strength)`: the
/// skipped grid `[1, …, L]·k − 1` (`k = T // original_inference_steps`, `L =
/// int(original_inference_steps · strength)`), reversed, at indices
/// `floor(np.linspace(0, L, n, endpoint=False))` — computed as numpy does, `floor(j · (L / n))`
/// in f64, which is not always the exact rational (L = 30, n = 22, j = 11 gives 14). TCD uses
/// the same grid when `original_inference_steps` is not passed to its `set_timesteps`.
step lcm_timesteps(
    num_inference_steps: i32,
    original_inference_steps: i32 = 50,
    strength: f64 = 1.0,
    num_train_timesteps: i32 = 1000,
) -> (timesteps: i32[N]) requires N == num_inference_steps,
    0 < num_inference_steps <= original_inference_steps,
    original_inference_steps <= num_train_timesteps, 0.0 < strength <= 1.0,
    f64(original_inference_steps) * strength >= f64(num_inference_steps) {
    let k = floordiv(num_train_timesteps, original_inference_steps);
    let l = i32(f64(original_inference_steps) * strength);
    let index = i32(floor(f64(iota(N)) * (f64(l) / f64(num_inference_steps))));
    (timesteps: (l - index) * k - 1)
}

test "lcm_step matches LCMScheduler.step (research vector 9.3, float32 as diffusers)" {
    // Expected values: tests/reference/diffusers_schedulers.py vectors (diffusers' ops in f32, to
    // within 1e-7; the f64 values of research/consistency.md §9.3 differ by up to 4e-7).
    let e = lcm_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: [0.5, -1.0, 0.25, 2.0],
        noise: [1.0, -0.5, 0.0, 0.25],
        timestep: 999,
        prev_timestep: 759,
        last_step: false,
    );
    expect_close(e.denoised, [5.86294508, -11.7258902, -0.722189665, 35.1434975], 1e-7);
    expect_close(e.prev_sample, [2.31323481, -3.16615415, -0.165021345, 8.27372456], 1e-7);
    let v = lcm_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: [0.5, -1.0, 0.25, 2.0],
        noise: [1.0, -0.5, 0.0, 0.25],
        timestep: 999,
        prev_timestep: 759,
        last_step: false,
        prediction_type: v_prediction,
    );
    expect_close(v.denoised, [-0.0656342804, 0.131268561, -0.282233983, 0.535596669], 1e-7);
    expect_close(v.prev_sample, [0.958546042, -0.456776738, -0.0644908622, 0.365770489], 1e-7);
    let s = lcm_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: [0.5, -1.0, 0.25, 2.0],
        noise: [1.0, -0.5, 0.0, 0.25],
        timestep: 999,
        prev_timestep: 759,
        last_step: false,
        prediction_type: sample,
    );
    expect_close(s.prev_sample, [0.99639374, -0.532472074, 0.0685504228, 0.151985347], 1e-7);
    // The last step returns `denoised` without noise.
    let l = lcm_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: [0.5, -1.0, 0.25, 2.0],
        noise: [1.0, -0.5, 0.0, 0.25],
        timestep: 259,
        prev_timestep: -1,
        last_step: true,
    );
    expect_close(l.prev_sample, [0.543997824, -1.08799565, 0.0921538994, 2.75149512], 1e-7);
    expect_close(l.denoised, [0.543997824, -1.08799565, 0.0921538994, 2.75149512], 1e-7);
    // clip_sample clamps x0 to ±clip_sample_range before the scalings (c_out is 1 in f32 here).
    let c = lcm_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: [0.5, -1.0, 0.25, 2.0],
        noise: [1.0, -0.5, 0.0, 0.25],
        timestep: 999,
        prev_timestep: 759,
        last_step: true,
        clip_sample: true,
    );
    expect_close(c.denoised, [1.0, -1.0, -0.722189665, 1.0], 1e-7);
}

test "lcm_timesteps match LCMScheduler.set_timesteps (research/consistency.md §1.2)" {
    expect_close(lcm_timesteps(num_inference_steps: 1).timesteps, [999], 0.0);
    expect_close(lcm_timesteps(num_inference_steps: 3).timesteps, [999, 679, 339], 0.0);
    expect_close(lcm_timesteps(num_inference_steps: 4).timesteps, [999, 759, 499, 259], 0.0);
    expect_close(
        lcm_timesteps(num_inference_steps: 6).timesteps,
        [999, 839, 679, 499, 339, 179],
        0.0,
    );
    expect_close(
        lcm_timesteps(num_inference_steps: 8).timesteps,
        [999, 879, 759, 639, 499, 379, 259, 139],
        0.0,
    );
    expect_close(
        lcm_timesteps(num_inference_steps: 4, strength: 0.5).timesteps,
        [499, 379, 259, 139],
        0.0,
    );
    expect_close(
        lcm_timesteps(num_inference_steps: 4, original_inference_steps: 20).timesteps,
        [999, 749, 499, 249],
        0.0,
    );
    // numpy's floor(11 · (30 / 22)) = floor(14.999999999999998) = 14, so position 11 is
    // (30 − 14)·33 − 1 = 527 (the exact rational would give 494).
    let q = lcm_timesteps(num_inference_steps: 22, original_inference_steps: 30);
    expect_close(
        q.timesteps,
        [
            989, 956, 923, 857, 824, 791, 725, 692, 659, 593, 560, 527, 461, 428, 362, 329, 296,
            230, 197, 164, 98, 65,
        ],
        0.0,
    );
}
