/// One LCM multistep sampling step, as diffusers' `LCMScheduler.step` with the
/// `scaled_linear` schedule. `prev_timestep < 0` reads `final_alpha_cumprod` = 1
/// (`set_alpha_to_one=True`); `last_step` returns the denoised sample without noise.
step lcm_step(
    model_output: f32[..S],
    sample: f32[..S],
    noise: f32[..S],
    timestep: i32,
    prev_timestep: i32,
    last_step: bool,
    prediction_type: enum { epsilon, sample, v_prediction } = epsilon,
    num_train_timesteps: i32 = 1000,
    beta_start: f32 = 0.00085,
    beta_end: f32 = 0.012,
    timestep_scaling: f32 = 10.0,
) -> (prev_sample: f32[..S], denoised: f32[..S]) requires Tt == num_train_timesteps {
    let betas = linspace(sqrt(beta_start), sqrt(beta_end), Tt);
    let alphas_cumprod = cumprod(1.0 - betas * betas, Tt);
    let a_t = alphas_cumprod[Tt: timestep];
    let a_p = alphas_cumprod[Tt: prev_timestep else 1.0];
    // diffusers multiplies the int64 timestep by 10.0 in f32.
    let st = f32(timestep) * timestep_scaling;
    let c_skip = 0.25 / (st * st + 0.25);
    let c_out = st / sqrt(st * st + 0.25);
    let x0 = match prediction_type {
        epsilon => (sample - sqrt(1.0 - a_t) * model_output) / sqrt(a_t),
        sample => model_output,
        v_prediction => sqrt(a_t) * sample - sqrt(1.0 - a_t) * model_output,
    };
    let denoised = c_out * x0 + c_skip * sample;
    let noised = sqrt(a_p) * denoised + sqrt(1.0 - a_p) * noise;
    (prev_sample: where(last_step, denoised, noised), denoised: denoised)
}

test "lcm epsilon step at t=999 matches diffusers" {
    // research/consistency.md §9.3, first row (prev_timestep 759).
    let r = lcm_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: [0.5, -1.0, 0.25, 2.0],
        noise: [1.0, -0.5, 0.0, 0.25],
        timestep: 999,
        prev_timestep: 759,
        last_step: false,
    );
    expect_close(r.denoised, [5.862942643, -11.725885286, -0.722188981, 35.143483542], 1e-5);
    expect_close(r.prev_sample, [2.31323466, -3.166153974, -0.165021254, 8.273724041], 1e-5);
}
