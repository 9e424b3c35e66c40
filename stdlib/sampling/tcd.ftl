import std.sampling.schedules

import std.sampling.lcm

// Trajectory Consistency Distillation (Zheng et al., 2024, arXiv 2402.19159): diffusers'
// `TCDScheduler.step` (`scheduling_tcd.py`; research/consistency.md §2.2).

/// One TCD step (γ = `eta`): a DDIM jump from `timestep` to `s = floor((1 − eta)·prev_t)`,
/// `pred_noised_sample = √a_s·x₀ + √(1−a_s)·ε`, then forward diffusion from s back to `prev_t`:
/// `prev_sample = √(a_p/a_s)·x_s + √(1 − a_p/a_s)·noise` (none when `eta = 0` or on the last
/// step). diffusers' quirks kept: `s` is the floor of an f32 product (`(1 − eta)` rounded to f32,
/// times the timestep as f32), so e.g. eta 0.3 at prev_t 90 gives 63, not 62; after the last
/// step (`prev_timestep < 0`) prev_t is 0, not `final_alpha_cumprod`, so the last output keeps
/// a `√(1−a_0)·ε` residual.
step tcd_step(
    model_output: f32[..S],
    sample: f32[..S],
    noise: f32[..S],
    timestep: i32,
    prev_timestep: i32,
    last_step: bool,
    eta: f64 = 0.3,
    num_train_timesteps: i32 = 1000,
    beta_start: f64 = 8.5e-4,
    beta_end: f64 = 0.012,
    beta_schedule: enum { linear, scaled_linear, squaredcos_cap_v2 } = scaled_linear,
    prediction_type: enum { epsilon, sample, v_prediction } = epsilon,
) -> (prev_sample: f32[..S], pred_noised_sample: f32[..S]) requires Tt == num_train_timesteps,
    0 <= timestep < num_train_timesteps, prev_timestep < num_train_timesteps, 0.0 <= eta <= 1.0 {
    let ac = alphas_cumprod(iota(Tt), beta_start, beta_end, beta_schedule);
    let prev_t = max(prev_timestep, 0);
    let s = i32(floor(f32(1.0 - eta) * f32(prev_t)));
    let a_t = ac[Tt: timestep];
    let a_p = ac[Tt: prev_t];
    let a_s = ac[Tt: s];
    let x0 = pred_original_sample(model_output, sample, a_t, prediction_type);
    let eps = pred_epsilon(model_output, sample, a_t, prediction_type);
    let x_s = sqrt(a_s) * x0 + sqrt(1.0 - a_s) * eps;
    let noised = sqrt(a_p / a_s) * x_s + sqrt(1.0 - a_p / a_s) * noise;
    (prev_sample: where(eta > 0.0 && !last_step, noised, x_s), pred_noised_sample: x_s)
}

test "tcd_step matches TCDScheduler.step (research vector 9.4, float32 as diffusers)" {
    // Expected values: tests/reference/diffusers_schedulers.py vectors.
    let d = tcd_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: [0.5, -1.0, 0.25, 2.0],
        noise: [1.0, -0.5, 0.0, 0.25],
        timestep: 999,
        prev_timestep: 759,
        last_step: false,
        eta: 0.0,
    );
    // eta = 0 is a deterministic DDIM step.
    expect_close(d.prev_sample, [1.43704557, -2.87409115, 0.127041742, 7.64092064], 1e-7);
    let e = tcd_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: [0.5, -1.0, 0.25, 2.0],
        noise: [1.0, -0.5, 0.0, 0.25],
        timestep: 999,
        prev_timestep: 759,
        last_step: false,
    );
    expect_close(e.pred_noised_sample, [2.93916488, -5.87832975, -0.0891605616, 16.7446365], 1e-7);
    expect_close(e.prev_sample, [2.26352453, -3.20286703, -0.0418851115, 8.08685398], 1e-7);
    let l = tcd_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: [0.5, -1.0, 0.25, 2.0],
        noise: [1.0, -0.5, 0.0, 0.25],
        timestep: 259,
        prev_timestep: -1,
        last_step: true,
    );
    expect_close(l.prev_sample, [0.54668206, -1.09336412, 0.100861259, 2.73866343], 1e-7);
    let v = tcd_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: [0.5, -1.0, 0.25, 2.0],
        noise: [1.0, -0.5, 0.0, 0.25],
        timestep: 759,
        prev_timestep: 499,
        last_step: false,
        prediction_type: v_prediction,
    );
    expect_close(v.pred_noised_sample, [0.369450301, -0.738900602, 0.0512901545, 1.90479326], 1e-7);
    expect_close(v.prev_sample, [0.946579576, -0.882939339, 0.0379139669, 1.57640374], 1e-7);
    // The f32 floor: (1 - 0.3) * 90 is 62.99999999999999 in f64 but 63.0 in f32, so s = 63, not 62.
    let q = tcd_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: [0.5, -1.0, 0.25, 2.0],
        noise: [1.0, -0.5, 0.0, 0.25],
        timestep: 999,
        prev_timestep: 90,
        last_step: false,
    );
    expect_close(q.pred_noised_sample, [5.70202017, -11.4040403, -0.624342442, 33.9292068], 1e-7);
    expect_close(q.prev_sample, [5.78877497, -11.3041983, -0.613887846, 33.4066238], 1e-7);
}

/// `TCDScheduler.set_timesteps(num_inference_steps, strength=…)` without custom timesteps: the
/// grid LCM uses (`lcm_timesteps`): `(l − ⌊j·l/n⌋)·k − 1` with `k = T // original_inference_steps`,
/// `l = ⌊original_inference_steps · strength⌋` (diffusers 0.42 builds it the same way for both
/// schedulers and refuses n > l likewise).
step tcd_timesteps(
    num_inference_steps: i32,
    original_inference_steps: i32 = 50,
    strength: f64 = 1.0,
    num_train_timesteps: i32 = 1000,
) -> (timesteps: i32[N]) requires N == num_inference_steps,
    0 < num_inference_steps <= original_inference_steps,
    original_inference_steps <= num_train_timesteps, 0.0 < strength <= 1.0,
    f64(original_inference_steps) * strength >= f64(num_inference_steps) {
    let r = lcm.lcm_timesteps(
        num_inference_steps: num_inference_steps,
        original_inference_steps: original_inference_steps,
        strength: strength,
        num_train_timesteps: num_train_timesteps,
    );
    (timesteps: r.timesteps[N -> N])
}

test "tcd_timesteps are TCDScheduler.set_timesteps' (diffusers 0.42)" {
    expect_close(tcd_timesteps(num_inference_steps: 4).timesteps, [999, 759, 499, 259], 0.0);
    expect_close(
        tcd_timesteps(num_inference_steps: 8, strength: 0.5).timesteps,
        [499, 439, 379, 319, 259, 199, 139, 79],
        0.0,
    );
}
