import std.sampling.schedules

// DDIM (Song et al., 2020, arXiv 2010.02502): diffusers' `DDIMScheduler.step`
// (`scheduling_ddim.py`; research/consistency.md §3), with DDIM's defaults (`linear` betas
// 0.0001 → 0.02, `clip_sample` on).

/// One DDIM step from `timestep` to `prev_timestep` (diffusers: `t − T // num_inference_steps`;
/// `< 0` reads `final_alpha_cumprod`): `x₀` from the model output (clamped to
/// ±`clip_sample_range` when `clip_sample`), `σ = eta·√((1−a_p)/(1−a_t)·(1 − a_t/a_p))`,
/// `prev_sample = √a_p·x₀ + √(1 − a_p − σ²)·ε (+ σ·noise when eta > 0)`; with
/// `use_clipped_model_output`, ε is recomputed from the clipped x₀. Thresholding is not
/// supported.
step ddim_step(
    model_output: f32[..S],
    sample: f32[..S],
    noise: f32[..S],
    timestep: i32,
    prev_timestep: i32,
    eta: f32 = 0.0,
    num_train_timesteps: i32 = 1000,
    beta_start: f64 = 1e-4,
    beta_end: f64 = 0.02,
    beta_schedule: enum { linear, scaled_linear, squaredcos_cap_v2 } = linear,
    prediction_type: enum { epsilon, sample, v_prediction } = epsilon,
    set_alpha_to_one: static bool = true,
    clip_sample: static bool = true,
    clip_sample_range: f32 = 1.0,
    use_clipped_model_output: static bool = false,
) -> (prev_sample: f32[..S], pred_original_sample: f32[..S]) requires Tt == num_train_timesteps,
    0 <= timestep < num_train_timesteps, prev_timestep < num_train_timesteps, eta >= 0.0 {
    let ac = alphas_cumprod(iota(Tt), beta_start, beta_end, beta_schedule);
    let final_alpha_cumprod = if set_alpha_to_one { 1.0 } else { ac[Tt: 0] };
    let a_t = ac[Tt: timestep];
    let a_p = ac[Tt: prev_timestep else final_alpha_cumprod];
    let x0 = pred_original_sample(model_output, sample, a_t, prediction_type);
    let x0c = if clip_sample { clamp(x0, -clip_sample_range, clip_sample_range) } else { x0 };
    let eps = pred_epsilon(model_output, sample, a_t, prediction_type);
    let eps_c = if use_clipped_model_output {
        (sample - sqrt(a_t) * x0c) / sqrt(1.0 - a_t)
    } else {
        eps
    };
    let variance = (1.0 - a_p) / (1.0 - a_t) * (1.0 - a_t / a_p);
    let std_dev = eta * sqrt(variance);
    let prev = sqrt(a_p) * x0c + sqrt(1.0 - a_p - std_dev * std_dev) * eps_c;
    (prev_sample: where(eta > 0.0, prev + std_dev * noise, prev), pred_original_sample: x0c)
}

/// `DDIMScheduler.set_timesteps(num_inference_steps)` with its `timestep_spacing`: `leading`
/// (DDIM's default) `j·(T // n)` reversed, plus `steps_offset`; `trailing` `round(T − j·Δ) − 1`
/// (numpy's `arange(T, 0, −T/n)`, whose fill uses `Δ = (T − T/n) − T`; for the few n where
/// numpy's arange has n + 1 elements, e.g. 61, there are n + 1 timesteps, the last −1, as
/// diffusers gets them); `linspace` `round(np.linspace(0, T − 1, n))` reversed (`[0]` for
/// n = 1). Rounding is half to even as numpy's. The matching `prev_timestep` of `ddim_step` is `t − T // n`.
step ddim_timesteps(
    num_inference_steps: i32,
    timestep_spacing: enum { leading, trailing, linspace } = leading,
    steps_offset: i32 = 0,
    num_train_timesteps: i32 = 1000,
) -> (timesteps: i32[N]) requires N == match timestep_spacing { trailing => i32(ceil(
        f64(num_train_timesteps) / (f64(num_train_timesteps) / f64(num_inference_steps)),
    )), leading => num_inference_steps, linspace => num_inference_steps },
    0 < num_inference_steps <= num_train_timesteps {
    // numpy's arange(T, 0, −T/n) has ceil(T / (T/n)) elements: n + 1 for some n (61, 103…).
    let j = f64(iota(N));
    let t = f64(num_train_timesteps);
    let n = f64(num_inference_steps);
    let reversed = n - 1.0 - j;
    let delta = t - t / n - t;
    let last = f64(num_train_timesteps - 1);
    let spaced = match timestep_spacing {
        leading => reversed * f64(floordiv(num_train_timesteps, num_inference_steps))
            + f64(steps_offset),
        trailing => round(t + j * delta) - 1.0,
        // np.linspace(0, T − 1, n): its last element is exactly T − 1, and n = 1 gives [0].
        linspace => round(
            where(n == 1.0, 0.0, where(reversed == n - 1.0, last, reversed * (last / (n - 1.0)))),
        ),
    };
    (timesteps: i32(spaced))
}

test "ddim_step matches DDIMScheduler.step (research/consistency.md §3, float32 as diffusers)" {
    // Expected values: tests/reference/diffusers_schedulers.py vectors. On the LCM schedule
    // without clipping, as research vector 9.4's DDIM rows.
    let d = ddim_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: [0.5, -1.0, 0.25, 2.0],
        noise: [1.0, -0.5, 0.0, 0.25],
        timestep: 750,
        prev_timestep: 500,
        beta_start: 8.5e-4,
        beta_end: 0.012,
        beta_schedule: scaled_linear,
        clip_sample: false,
    );
    expect_close(d.pred_original_sample, [1.69977295, -3.39954591, -0.174904928, 10.0784245], 1e-7);
    expect_close(d.prev_sample, [0.978593946, -1.95718789, 0.163263112, 4.95768404], 1e-7);
    let n = ddim_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: [0.5, -1.0, 0.25, 2.0],
        noise: [1.0, -0.5, 0.0, 0.25],
        timestep: 750,
        prev_timestep: 500,
        eta: 1.0,
        beta_start: 8.5e-4,
        beta_end: 0.012,
        beta_schedule: scaled_linear,
        clip_sample: false,
    );
    expect_close(n.prev_sample, [1.70869803, -2.24501228, 0.00880808383, 5.35902166], 1e-7);
    // DDIM's own defaults: linear betas and x0 clipped to ±1.
    let c = ddim_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: [0.5, -1.0, 0.25, 2.0],
        noise: [1.0, -0.5, 0.0, 0.25],
        timestep: 999,
        prev_timestep: 759,
    );
    expect_close(c.pred_original_sample, [1.0, -1.0, -1.0, 1.0], 1e-7);
    expect_close(c.prev_sample, [0.153491721, -0.253347784, 0.245932549, -0.345788598], 1e-7);
}

test "ddim_timesteps match DDIMScheduler.set_timesteps" {
    // research/consistency.md §3: 4 leading steps are [750, 500, 250, 0].
    expect_close(ddim_timesteps(num_inference_steps: 4).timesteps, [750, 500, 250, 0], 0.0);
    expect_close(
        ddim_timesteps(num_inference_steps: 4, steps_offset: 1).timesteps,
        [751, 501, 251, 1],
        0.0,
    );
    // numpy: np.round(np.arange(1000, 0, -1000 / 3)) - 1 and np.linspace(0, 999, 3).round()[::-1].
    expect_close(
        ddim_timesteps(num_inference_steps: 3, timestep_spacing: trailing).timesteps,
        [999, 666, 332],
        0.0,
    );
    expect_close(
        ddim_timesteps(num_inference_steps: 4, timestep_spacing: linspace).timesteps,
        [999, 666, 333, 0],
        0.0,
    );
    expect_close(
        ddim_timesteps(num_inference_steps: 3, timestep_spacing: linspace).timesteps,
        [999, 500, 0],
        0.0,
    );
    // diffusers 0.42: set_timesteps(1) with linspace gives [0]; trailing at n = 61 gives 62
    // timesteps (numpy's arange), starting 999, 983, 966 and ending 48, 32, 15, −1.
    expect_close(
        ddim_timesteps(num_inference_steps: 1, timestep_spacing: linspace).timesteps,
        [0],
        0.0,
    );
    let t61 = ddim_timesteps(num_inference_steps: 61, timestep_spacing: trailing).timesteps;
    expect_close(t61[N: 0], 999, 0.0);
    expect_close(t61[N: 2], 966, 0.0);
    expect_close(t61[N: 58], 48, 0.0);
    expect_close(t61[N: 61], -1, 0.0);
}
