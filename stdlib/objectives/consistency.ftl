import std.sampling.schedules

// Consistency-model training: the boundary scalings, latent consistency distillation (LCD, Luo
// et al., 2023, arXiv 2310.04378) as diffusers' `examples/consistency_distillation/
// train_lcm_distill_*.py` compute it, and improved consistency training's pseudo-Huber loss
// (iCT, Song & Dhariwal, 2023, arXiv 2310.14189) as diffusers'
// `examples/research_projects/consistency_training/train_cm_ct_unconditional.py` does
// (research/consistency.md §1.3, §4, §5.2, §6.1). The networks run outside: an LCD training
// step is `add_noise` → student → `lcd_teacher_step` (teacher outputs, CFG, one DDIM step) →
// target network on `x_prev` → `lcm_distill` (the loss and its gradient for the student).

/// `pred_original_sample` with one `a = alphas_cumprod[t]` per sample (the scripts'
/// `get_predicted_original_sample`; same formulas as std.sampling.schedules).
fn x0_per_sample(
    model_output: f32[B, ..S],
    sample: f32[B, ..S],
    a: f32[B],
    prediction_type: enum { epsilon, sample, v_prediction } = epsilon,
) -> f32[B, ..S] {
    match prediction_type {
        epsilon => (sample - sqrt(1.0 - a) * model_output) / sqrt(a),
        sample => model_output,
        v_prediction => sqrt(a) * sample - sqrt(1.0 - a) * model_output,
    }
}

/// `pred_epsilon` with one `a` per sample (the scripts' `get_predicted_noise`).
fn eps_per_sample(
    model_output: f32[B, ..S],
    sample: f32[B, ..S],
    a: f32[B],
    prediction_type: enum { epsilon, sample, v_prediction } = epsilon,
) -> f32[B, ..S] {
    match prediction_type {
        epsilon => model_output,
        sample => (sample - sqrt(a) * model_output) / sqrt(1.0 - a),
        v_prediction => sqrt(a) * model_output + sqrt(1.0 - a) * sample,
    }
}

/// LCM's boundary scalings at integer timesteps (`scalings_for_boundary_conditions`, and
/// `LCMScheduler.get_scalings_for_boundary_condition_discrete`): with `s = t · timestep_scaling`
/// in f32, `c_skip = σ_d² / (s² + σ_d²)`, `c_out = s / √(s² + σ_d²)`.
step lcm_scalings(
    timesteps: i32[N],
    timestep_scaling: f32 = 10.0,
    sigma_data: f32 = 0.5,
) -> (c_skip: f32[N], c_out: f32[N]) {
    let t = f32(timesteps);
    (c_skip: lcm_c_skip(t, timestep_scaling, sigma_data), c_out: lcm_c_out(t, timestep_scaling, sigma_data))
}

/// EDM/consistency-model scalings at noise levels σ (`CMStochasticIterativeScheduler`):
/// `c_skip = σ_d² / ((σ − σ_min)² + σ_d²)`, `c_out = (σ − σ_min)·σ_d / √(σ² + σ_d²)` and the input
/// scaling `c_in = 1 / √(σ² + σ_d²)` (`scale_model_input`).
step cm_scalings(
    sigmas: f32[N],
    sigma_min: f32 = 0.002,
    sigma_data: f32 = 0.5,
) -> (c_skip: f32[N], c_out: f32[N], c_in: f32[N]) {
    let d = sigmas - sigma_min;
    let r = sqrt(sigmas * sigmas + sigma_data * sigma_data);
    (
        c_skip: sigma_data * sigma_data / (d * d + sigma_data * sigma_data),
        c_out: d * sigma_data / r,
        c_in: 1.0 / r,
    )
}

/// `DDPMScheduler.add_noise`: `√a_t · x + √(1 − a_t) · noise` per sample, `a_t =
/// alphas_cumprod[timesteps]` (defaults: Stable Diffusion's scheduler, as the LCD scripts load).
step add_noise(
    original_samples: f32[B, ..S],
    noise: f32[B, ..S],
    timesteps: i32[B],
    num_train_timesteps: i32 = 1000,
    beta_start: f64 = 0.00085,
    beta_end: f64 = 0.012,
    beta_schedule: enum { linear, scaled_linear, squaredcos_cap_v2 } = scaled_linear,
) -> (noisy_samples: f32[B, ..S]) requires Tt == num_train_timesteps {
    let a = alphas_cumprod(iota(Tt), beta_start, beta_end, beta_schedule)[Tt: timesteps];
    (noisy_samples: sqrt(a) * original_samples + sqrt(1.0 - a) * noise)
}

/// LCD's teacher step (no gradient): x₀ and ε of the teacher's conditional and unconditional
/// outputs at `start_timesteps`, classifier-free guidance in LCM's form (`cond + w·(cond −
/// uncond)`, `w` per sample), then `DDIMSolver.ddim_step` to `end_timesteps`:
/// `x_prev = √a_e · x₀ + √(1 − a_e) · ε`. (The script's `ddim_alpha_cumprods_prev[index]` is
/// `alphas_cumprod[t_end]` with `t_end = max(t_start − k, 0)`.)
step lcd_teacher_step(
    noisy_latents: f32[B, ..S],
    cond_output: f32[B, ..S],
    uncond_output: f32[B, ..S],
    w: f32[B],
    start_timesteps: i32[B],
    end_timesteps: i32[B],
    num_train_timesteps: i32 = 1000,
    beta_start: f64 = 0.00085,
    beta_end: f64 = 0.012,
    beta_schedule: enum { linear, scaled_linear, squaredcos_cap_v2 } = scaled_linear,
    prediction_type: enum { epsilon, sample, v_prediction } = epsilon,
) -> (x_prev: f32[B, ..S]) requires Tt == num_train_timesteps {
    let ac = alphas_cumprod(iota(Tt), beta_start, beta_end, beta_schedule);
    let a_s = ac[Tt: start_timesteps];
    let a_e = ac[Tt: end_timesteps];
    let x0_c = x0_per_sample(cond_output, noisy_latents, a_s, prediction_type);
    let x0_u = x0_per_sample(uncond_output, noisy_latents, a_s, prediction_type);
    let eps_c = eps_per_sample(cond_output, noisy_latents, a_s, prediction_type);
    let eps_u = eps_per_sample(uncond_output, noisy_latents, a_s, prediction_type);
    let x0 = x0_c + w * (x0_c - x0_u);
    let eps = eps_c + w * (eps_c - eps_u);
    (x_prev: sqrt(a_e) * x0 + sqrt(1.0 - a_e) * eps)
}

/// The latent consistency distillation loss: the student's consistency function at the start
/// timestep, `model_pred = c_skip(t_s)·x_t + c_out(t_s)·x₀(model_output, x_t, t_s)`, against the
/// target network's at the end timestep, `target = c_skip(t_e)·x_prev + c_out(t_e)·x₀(target_output,
/// x_prev, t_e)` (no gradient): `l2` = `mean((model_pred − target)²)`, `huber` =
/// `mean(√((model_pred − target)² + c²) − c)` with `c = huber_c`. Gradient for `model_output`.
objective lcm_distill(
    model_output: f32[B, ..S],
    noisy_latents: const f32[B, ..S],
    target_output: const f32[B, ..S],
    x_prev: const f32[B, ..S],
    start_timesteps: i32[B],
    end_timesteps: i32[B],
    loss_type: enum { l2, huber } = l2,
    huber_c: f32 = 0.001,
    timestep_scaling: f32 = 10.0,
    num_train_timesteps: i32 = 1000,
    beta_start: f64 = 0.00085,
    beta_end: f64 = 0.012,
    beta_schedule: enum { linear, scaled_linear, squaredcos_cap_v2 } = scaled_linear,
    prediction_type: enum { epsilon, sample, v_prediction } = epsilon,
) requires Tt == num_train_timesteps, huber_c > 0.0 {
    let ac = alphas_cumprod(iota(Tt), beta_start, beta_end, beta_schedule);
    let t_s = f32(start_timesteps);
    let t_e = f32(end_timesteps);
    let x0_s = x0_per_sample(model_output, noisy_latents, ac[Tt: start_timesteps], prediction_type);
    let model_pred = lcm_c_skip(t_s, timestep_scaling, 0.5) * noisy_latents
        + lcm_c_out(t_s, timestep_scaling, 0.5) * x0_s;
    let x0_e = x0_per_sample(target_output, x_prev, ac[Tt: end_timesteps], prediction_type);
    let target = lcm_c_skip(t_e, timestep_scaling, 0.5) * x_prev + lcm_c_out(t_e, timestep_scaling, 0.5) * x0_e;
    let d = model_pred - target;
    let per_element = match loss_type {
        l2 => d * d,
        huber => sqrt(d * d + huber_c * huber_c) - huber_c,
    };
    loss mean(per_element, B, ..S);
}

/// iCT's weighted pseudo-Huber consistency-training loss (diffusers' research script):
/// `mean(λ · (√((D_student − D_teacher)² + c²) − c))` elementwise, `λ = 1 / (σ_student −
/// σ_teacher)` (`σ_{i+1} − σ_i`), with `c = huber_c`, or `0.00054·√d` (d = elements per
/// sample, the script's default `0.00054 · resolution · √channels`) when `huber_c` is 0. The
/// teacher's denoised output is a stop-gradient target; gradient for `student_denoised`.
objective ict_loss(
    student_denoised: f32[B, ..S],
    teacher_denoised: const f32[B, ..S],
    student_sigmas: const f32[B],
    teacher_sigmas: const f32[B],
    huber_c: f32 = 0.0,
) requires huber_c >= 0.0 {
    let c = where(huber_c > 0.0, huber_c, 0.00054 * sqrt(f32(size(..S))));
    let d = student_denoised - teacher_denoised;
    let weight = 1.0 / (student_sigmas - teacher_sigmas);
    loss mean(weight * (sqrt(d * d + c * c) - c), B, ..S);
}

test "boundary scalings match diffusers (research vectors 9.2 and 9.5, float32)" {
    // Expected values: tests/reference/diffusers_schedulers.py vectors.
    let l = lcm_scalings(timesteps: [0, 1, 19, 259, 999]);
    expect_close(l.c_skip, [1.0, 0.002493765671, 6.925159596e-06, 3.726837861e-08, 2.505007535e-09], 1e-7);
    // c_out rounds to exactly 1.0 in f32 from t = 259 on.
    expect_close(l.c_out, [0.0, 0.9987523556, 0.9999965429, 1.0, 1.0], 1e-7);
    let c = cm_scalings(sigmas: [80.0, 1.382367957, 0.002]);
    expect_close(c.c_skip, [3.906292477e-05, 0.115986906, 1.0], 1e-7);
    expect_close(c.c_out, [0.4999777377, 0.4695084691, 0.0], 1e-7);
    expect_close(c.c_in, [0.01249975525, 0.6802656651, 1.999984026], 1e-7);
}

test "one LCD step matches the distillation script (research vector 9.6, float32)" {
    // Index 37 of the 50-step DDIM grid: t_start 759, t_end 739, w = 8.
    let n = add_noise(
        original_samples: [[0.5, -1.0, 0.25, 2.0]],
        noise: [[1.0, -0.5, 0.0, 0.25]],
        timesteps: [759],
    );
    expect_close(n.noisy_samples, [[1.0877943, -0.715273201, 0.0571253486, 0.70038867]], 1e-7);
    let t = lcd_teacher_step(
        noisy_latents: [[1.0877943, -0.715273201, 0.0571253486, 0.70038867]],
        cond_output: [[0.2, -0.1, 0.0, 0.1]],
        uncond_output: [[0.0, 0.1, -0.1, 0.3]],
        w: [8.0],
        start_timesteps: [759],
        end_timesteps: [739],
    );
    expect_close(t.x_prev, [[1.02374125, -0.628661275, -0.00702142715, 0.888240337]], 1e-7);
    let l2 = lcm_distill(
        model_output: [[0.1, -0.2, 0.3, -0.4]],
        noisy_latents: [[1.0877943, -0.715273201, 0.0571253486, 0.70038867]],
        target_output: [[0.05, -0.15, 0.25, -0.35]],
        x_prev: [[1.02374125, -0.628661275, -0.00702142715, 0.888240337]],
        start_timesteps: [759],
        end_timesteps: [739],
    );
    expect_close(l2.loss, 0.0746636013, 1e-6);
    expect_close(l2.grad.model_output, [[-0.843318177, 0.695075146, 0.0461389931, 0.398593401]], 1e-5);
    let h = lcm_distill(
        model_output: [[0.1, -0.2, 0.3, -0.4]],
        noisy_latents: [[1.0877943, -0.715273201, 0.0571253486, 0.70038867]],
        target_output: [[0.05, -0.15, 0.25, -0.35]],
        x_prev: [[1.02374125, -0.628661275, -0.00702142715, 0.888240337]],
        start_timesteps: [759],
        end_timesteps: [739],
        loss_type: huber,
    );
    expect_close(h.loss, 0.231737858, 1e-6);
    gradcheck lcm_distill(B: 2, S: 3);
    gradcheck lcm_distill(B: 2, S: 3, loss_type: huber, huber_c: 0.1, prediction_type: v_prediction);
}

test "ict_loss is iCT's λ-weighted pseudo-Huber loss" {
    // λ = 1 / (0.75 − 0.5) = 4; c = 0.00054·√4 by default.
    let a = ict_loss(
        student_denoised: [[0.1, -0.2, 0.3, 0.0]],
        teacher_denoised: [[0.0, 0.0, 0.25, 0.0]],
        student_sigmas: [0.75],
        teacher_sigmas: [0.5],
    );
    expect_close(a.loss, 0.3467804104, 1e-6);
    let b = ict_loss(
        student_denoised: [[0.1, -0.2, 0.3, 0.0]],
        teacher_denoised: [[0.0, 0.0, 0.25, 0.0]],
        student_sigmas: [0.75],
        teacher_sigmas: [0.5],
        huber_c: 0.01,
    );
    expect_close(b.loss, 0.3217387953, 1e-6);
    expect_close(b.grad.student_denoised, [[0.99503719, -0.99875234, 0.98058068, 0.0]], 1e-6);
    gradcheck ict_loss(B: 2, S: 3, huber_c: 0.5);
}
