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

/// The distillation scripts' elementwise distance of prediction and target (`d` their
/// difference): `l2` is `d²`, `huber` the pseudo-Huber `√(d² + c²) − c`.
fn distill_distance(
    d: f32[B, ..S],
    loss_type: enum { l2, huber } = l2,
    huber_c: f32 = 0.001,
) -> f32[B, ..S] {
    match loss_type {
        l2 => d * d,
        huber => sqrt(d * d + huber_c * huber_c) - huber_c,
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
    (
        c_skip: lcm_c_skip(t, timestep_scaling, sigma_data),
        c_out: lcm_c_out(t, timestep_scaling, sigma_data),
    )
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
    beta_start: f64 = 8.5e-4,
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
    beta_start: f64 = 8.5e-4,
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
    beta_start: f64 = 8.5e-4,
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
    let target = lcm_c_skip(t_e, timestep_scaling, 0.5) * x_prev
        + lcm_c_out(t_e, timestep_scaling, 0.5) * x0_e;
    let d = model_pred - target;
    loss mean(distill_distance(d, loss_type, huber_c), B, ..S);
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
    let c = where(huber_c > 0.0, huber_c, 5.4e-4 * sqrt(f32(size(..S))));
    let d = student_denoised - teacher_denoised;
    let weight = 1.0 / (student_sigmas - teacher_sigmas);
    loss mean(weight * (sqrt(d * d + c * c) - c), B, ..S);
}

/// The Phased Consistency Model's distillation loss (Wang et al., 2024, arXiv 2405.18407), as
/// `G-U-N/Phased-Consistency-Model`'s `train_pcm_lora_sd15.py` computes it: the DDIM grid of
/// `num_ddim_timesteps` (`t_start = (index + 1)·k − 1`, `t_end = max(t_start − k, 0)`,
/// `k = T // num_ddim_timesteps`) is cut into `multiphase` phases at the edge indices
/// `floor(linspace(0, num_ddim_timesteps, multiphase, endpoint=False))`; both the student's
/// prediction at `t_start` and the target network's at `t_end` jump to their phase's lower edge,
/// `√a·x₀ + √(1 − a)·out` with `a = ddim_alpha_cumprods_prev[edge]` (`alphas_cumprod[0]` at edge 0,
/// else `alphas_cumprod[edge·k − 1]`; the script's quirk: `out` is the raw model output, also
/// for v-prediction); the target is `x_prev` itself when `index` is an edge (`c_skip = 1`).
/// `l2` = `mean(d²)`, `huber` = `mean(√(d² + c²) − c)`. `noisy_latents` is the student's input
/// (`add_noise` at `t_start`), `x_prev` the teacher's DDIM step (`lcd_teacher_step` to `t_end`),
/// `target_output` the target network on `x_prev` at `t_end`. Gradient for `model_output`.
objective pcm_distill(
    model_output: f32[B, ..S],
    noisy_latents: const f32[B, ..S],
    target_output: const f32[B, ..S],
    x_prev: const f32[B, ..S],
    index: i32[B],
    multiphase: i32 = 8,
    num_ddim_timesteps: i32 = 50,
    loss_type: enum { l2, huber } = l2,
    huber_c: f32 = 0.001,
    num_train_timesteps: i32 = 1000,
    beta_start: f64 = 8.5e-4,
    beta_end: f64 = 0.012,
    beta_schedule: enum { linear, scaled_linear, squaredcos_cap_v2 } = scaled_linear,
    prediction_type: enum { epsilon, sample, v_prediction } = epsilon,
) requires Tt == num_train_timesteps, Ph == multiphase,
    match prediction_type { epsilon => 1, sample => 0, v_prediction => 1 } == 1,
    0 < multiphase <= num_ddim_timesteps, 0 < num_ddim_timesteps <= num_train_timesteps,
    huber_c > 0.0 {
    let ac = alphas_cumprod(iota(Tt), beta_start, beta_end, beta_schedule);
    let k = floordiv(num_train_timesteps, num_ddim_timesteps);
    let t_start = (index + 1) * k - 1;
    let t_end = max(t_start - k, 0);
    // np.floor(np.linspace(0, n, multiphase, endpoint=False)): j · (n / multiphase) in f64.
    let edges = i32(floor(f64(iota(Ph)) * (f64(num_ddim_timesteps) / f64(multiphase))));
    let edge = max(where(edges <= index, edges, 0), Ph);
    // The script's `ddim_alpha_cumprods_prev` is float64 (rebuilt from `.tolist()`), so both
    // jumps run in f64 and the loss's `.float()` rounds them back.
    let a_edge = f64(where(edge == 0, ac[Tt: 0], ac[Tt: max(edge * k - 1, 0)]));
    let x0_student = x0_per_sample(model_output, noisy_latents, ac[Tt: t_start], prediction_type);
    let model_pred = f32(sqrt(a_edge) * f64(x0_student) + sqrt(1.0 - a_edge) * f64(model_output));
    let x0_target = x0_per_sample(target_output, x_prev, ac[Tt: t_end], prediction_type);
    let jumped = sqrt(a_edge) * f64(x0_target) + sqrt(1.0 - a_edge) * f64(target_output);
    let c_skip = where(edge == index, 1.0, 0.0);
    let target = f32(f64(c_skip * x_prev) + f64(1.0 - c_skip) * jumped);
    let d = model_pred - target;
    loss mean(distill_distance(d, loss_type, huber_c), B, ..S);
}

/// Easy Consistency Tuning's noise levels (Geng et al., 2024, arXiv 2406.14548; locuslab/ect
/// `training/loss.py`, `ECMLoss`): `t = exp(P_mean + P_std · n)` from standard normal draws `n`,
/// and `r = max(t · (1 − q^−(stage+1) · adj), 0)`, `adj = 1 + k·sigmoid(−b·t)` (`sigmoid` mapping)
/// or 1 (`constant`, ECT's `const`), in f32 as the reference computes it. Defaults: `ct_train.py`'s.
step ect_schedule(
    rnd_normal: f32[B],
    stage: i32,
    p_mean: f32 = -1.1,
    p_std: f32 = 2.0,
    q: f64 = 2.0,
    k: f32 = 8.0,
    b: f32 = 1.0,
    mapping: enum { sigmoid, constant } = sigmoid,
) -> (t: f32[B], r: f32[B]) requires stage >= 0, q > 0.0 {
    let t = exp(rnd_normal * p_std + p_mean);
    let adj = match mapping {
        sigmoid => 1.0 + k * sigmoid(-b * t),
        constant => 1.0 + 0.0 * t,
    };
    let decay = f32(1.0 / pow(q, f64(stage + 1)));
    (t: t, r: max(t * (1.0 - decay * adj), 0.0))
}

/// ECT's consistency loss (`ECMLoss.__call__`): the teacher's output `D_yr` (no gradient,
/// `nan_to_num`ed) is replaced by the clean sample `y` where `r = 0`; per sample
/// `d = ‖D_yt − D_yr‖₂` over all its elements, `√(d² + c²) − c` when `c > 0` (else `d`),
/// weighted by `snrpk` = `(t² + σ_d²)/(t·σ_d)²` (the repository's current weighting) or
/// `inverse_gap` = `1/(t − r)` (its first release); averaged over the batch as the training
/// loop's `loss.sum() / batch` does. Gradient for `student_denoised` (`D_yt`).
objective ect_loss(
    student_denoised: f32[B, ..S],
    teacher_denoised: const f32[B, ..S],
    samples: const f32[B, ..S],
    t: const f32[B],
    r: const f32[B],
    c: f32 = 0.0,
    sigma_data: f32 = 0.5,
    weighting: enum { snrpk, inverse_gap } = snrpk,
) requires c >= 0.0 {
    let finite = clamp(teacher_denoised, -3.4028234663852886e38, 3.4028234663852886e38);
    let teacher = where(r > 0.0, where(teacher_denoised == teacher_denoised, finite, 0.0), samples);
    let d = student_denoised - teacher;
    let squared = sum(d * d, ..S);
    let distance = where(c > 0.0, sqrt(squared + c * c) - c, sqrt(squared));
    let weight = match weighting {
        snrpk => (t * t + sigma_data * sigma_data) / (t * sigma_data * (t * sigma_data)),
        inverse_gap => 1.0 / (t - r),
    };
    loss mean(distance * weight, B);
}

test "boundary scalings match diffusers (research vectors 9.2 and 9.5, float32)" {
    // Expected values: tests/reference/diffusers_schedulers.py vectors.
    let l = lcm_scalings(timesteps: [0, 1, 19, 259, 999]);
    expect_close(
        l.c_skip,
        [1.0, 0.002493765671, 6.925159596e-6, 3.726837861e-8, 2.505007535e-9],
        1e-7,
    );
    // c_out rounds to exactly 1.0 in f32 from t = 259 on.
    expect_close(l.c_out, [0.0, 0.9987523556, 0.9999965429, 1.0, 1.0], 1e-7);
    let c = cm_scalings(sigmas: [80.0, 1.382367957, 0.002]);
    expect_close(c.c_skip, [3.906292477e-5, 0.115986906, 1.0], 1e-7);
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
    expect_close(
        l2.grad.model_output,
        [[-0.843318177, 0.695075146, 0.0461389931, 0.398593401]],
        1e-5,
    );
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
    gradcheck lcm_distill(
        B: 2,
        S: 3,
        loss_type: huber,
        huber_c: 0.1,
        prediction_type: v_prediction,
    );
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

test "ect_schedule is ECMLoss's t and r (sigmoid and const mappings)" {
    // Expected values: tests/reference/consistency_training.py (torch, f32).
    let n = [-1.5, 0.0, 0.8, 2.2];
    let a = ect_schedule(rnd_normal: n, stage: 0);
    expect_close(
        a.t,
        [0.016572676599025726, 0.33287107944488525, 1.6487212181091309, 27.11264419555664],
        1e-6,
    );
    expect_close(a.r, [0.0, 0.0, 0.0, 13.55632209777832], 1e-6);
    let b = ect_schedule(rnd_normal: n, stage: 3);
    expect_close(
        b.r,
        [0.011428045108914375, 0.24257276952266693, 1.4127217531204224, 25.41810417175293],
        1e-6,
    );
    let c = ect_schedule(rnd_normal: n, stage: 1, mapping: constant);
    expect_close(
        c.r,
        [0.012429507449269295, 0.24965330958366394, 1.2365409135818481, 20.334484100341797],
        1e-6,
    );
}

test "ect_loss is ECMLoss's weighted per-sample distance, teacher NaN/inf cleaned, y where r = 0" {
    // Expected values: tests/reference/consistency_training.py (torch autograd, f32). Sample 2
    // has r = 0 (its NaN/inf teacher row is replaced by y); sample 1's NaN becomes 0.
    let student = [[0.3, -0.2, 0.5], [1.0, 0.4, -0.7], [0.05, 0.1, 0.2]];
    let teacher = [[0.25, -0.1, 0.45], [0.0 / 0.0, 0.2, -0.5], [0.0, 0.0, 1.0 / 0.0]];
    let y = [[0.2, -0.3, 0.6], [0.9, 0.5, -0.6], [0.1, 0.0, 0.3]];
    let t = [0.5, 2.0, 0.05];
    let r = [0.3, 1.5, 0.0];
    let a = ect_loss(student_denoised: student, teacher_denoised: teacher, samples: y, t: t, r: r);
    expect_close(a.loss, 21.99884033203125, 1e-6);
    expect_close(
        a.grad.student_denoised,
        [
            [1.0886622667312622, -2.177324056625366, 1.0886622667312622],
            [1.3631882667541504, 0.27263766527175903, -0.27263763546943665],
            [-44.88888168334961, 89.77776336669922, -89.77777099609375],
        ],
        1e-6,
    );
    let h = ect_loss(
        student_denoised: student,
        teacher_denoised: teacher,
        samples: y,
        t: t,
        r: r,
        c: 0.03,
    );
    expect_close(h.loss, 18.24664878845215, 1e-6);
    expect_close(
        h.grad.student_denoised,
        [
            [1.0574023723602295, -2.114804267883301, 1.0574023723602295],
            [1.3626205921173096, 0.2725241184234619, -0.2725240886211395],
            [-44.01716995239258, 88.03433990478516, -88.03434753417969],
        ],
        1e-6,
    );
    let g = ect_loss(
        student_denoised: student,
        teacher_denoised: teacher,
        samples: y,
        t: t,
        r: r,
        weighting: inverse_gap,
    );
    expect_close(g.loss, 1.896944522857666, 1e-6);
    expect_close(
        g.grad.student_denoised,
        [
            [0.6804139614105225, -1.3608276844024658, 0.6804139614105225],
            [0.6415003538131714, 0.12830007076263428, -0.12830005586147308],
            [-2.222222328186035, 4.44444465637207, -4.4444451332092285],
        ],
        1e-6,
    );
    gradcheck ect_loss(B: 2, S: 3, c: 0.1);
    gradcheck ect_loss(B: 3, S: 2, weighting: inverse_gap);
}

test "pcm_distill is PCM's phased LCD loss (l2, huber, v-prediction, one phase)" {
    // Expected values: tests/reference/consistency_training.py (torch autograd, f32); DDIM
    // indices 13, 6 (an edge at 8 phases: the target is x_prev) and 0.
    let out = [[0.1, -0.3, 0.2], [0.5, 0.0, -0.4], [-0.2, 0.7, 0.3]];
    let noisy = [[0.9, -0.5, 0.1], [0.3, 1.2, -0.8], [-1.0, 0.4, 0.6]];
    let target_out = [[0.05, -0.2, 0.25], [0.4, 0.1, -0.3], [-0.1, 0.6, 0.2]];
    let x_prev = [[0.8, -0.45, 0.15], [0.35, 1.1, -0.7], [-0.9, 0.35, 0.55]];
    let a = pcm_distill(
        model_output: out,
        noisy_latents: noisy,
        target_output: target_out,
        x_prev: x_prev,
        index: [13, 6, 0],
    );
    expect_close(a.loss, 0.006223912350833416, 1e-6);
    expect_close(
        a.grad.model_output,
        [
            [-0.002347497269511223, 9.170407429337502e-4, 0.0010832897387444973],
            [6.135893054306507e-4, -0.0011036945506930351, 8.901171386241913e-4],
            [0.0020468062721192837, 4.733236273750663e-4, -5.512160714715719e-4],
        ],
        rtol: 1e-5,
        atol: 1e-9,
    );
    let h = pcm_distill(
        model_output: out,
        noisy_latents: noisy,
        target_output: target_out,
        x_prev: x_prev,
        index: [13, 6, 0],
        loss_type: huber,
        multiphase: 4,
    );
    expect_close(h.loss, 0.07572802901268005, 1e-6);
    expect_close(
        h.grad.model_output,
        [
            [-0.009781867265701294, 0.009779978543519974, 0.009780611842870712],
            [0.044663410633802414, -0.04466453939676285, 0.04466041550040245],
            [0.011692407540977001, 0.011678922921419144, -0.011682660318911076],
        ],
        rtol: 1e-5,
        atol: 1e-9,
    );
    let v = pcm_distill(
        model_output: out,
        noisy_latents: noisy,
        target_output: target_out,
        x_prev: x_prev,
        index: [13, 6, 0],
        prediction_type: v_prediction,
        multiphase: 1,
    );
    expect_close(v.loss, 0.003527514636516571, 1e-6);
    expect_close(
        v.grad.model_output,
        [
            [-0.004137976095080376, -0.004347000736743212, 0.0026496953796595335],
            [0.00829887855798006, -0.008879555389285088, 0.002796604298055172],
            [0.0016149993753060699, 6.141516496427357e-4, -3.048268554266542e-4],
        ],
        rtol: 1e-5,
        atol: 1e-9,
    );
    gradcheck pcm_distill(B: 2, S: 3, loss_type: huber, huber_c: 0.5);
}
