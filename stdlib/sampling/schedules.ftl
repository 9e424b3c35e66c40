// Diffusers' discrete noise schedules (`DDPMScheduler`, `DDIMScheduler`, `LCMScheduler`,
// `TCDScheduler.__init__`; research/consistency.md §0): betas → `alphas_cumprod` in float32, as
// diffusers builds them with torch (`torch.linspace(..., dtype=float32)`, `torch.cumprod`, which
// accumulates in double on the CPU). Every step of std.sampling reads its `a_t` from here; the
// schedule is a small tensor computed once per call, before the per-element kernel.

/// The schedule at the training timesteps `t` = 0, 1, …, Tt − 1 (pass `iota(Tt)`):
/// `alphas_cumprod[i] = Π_{j ≤ i} (1 − β_j)` with
/// - `linear`: `β = linspace(beta_start, beta_end, Tt)` in f32;
/// - `scaled_linear`: `β = linspace(√beta_start, √beta_end, Tt)²` (the roots taken in f64, as
///   Python's `beta_start**0.5`, then the f32 linspace squared);
/// - `squaredcos_cap_v2`: `β_i = min(1 − ᾱ((i+1)/Tt) / ᾱ(i/Tt), 0.999)` with
///   `ᾱ(t) = cos((t + 0.008) / 1.008 · π / 2)²` in f64 (`betas_for_alpha_bar`), then f32.
fn alphas_cumprod(
    t: i32[Tt],
    beta_start: f64,
    beta_end: f64,
    beta_schedule: enum { linear, scaled_linear, squaredcos_cap_v2 } = scaled_linear,
) -> f32[Tt] {
    let n = f64(size(Tt));
    let bar_1 = cos((f64(t) / n + 0.008) / 1.008 * 3.141592653589793 / 2.0);
    let bar_2 = cos(((f64(t) + 1.0) / n + 0.008) / 1.008 * 3.141592653589793 / 2.0);
    let root = linspace(f32(sqrt(beta_start)), f32(sqrt(beta_end)), Tt);
    let betas = match beta_schedule {
        linear => linspace(f32(beta_start), f32(beta_end), Tt),
        scaled_linear => root * root,
        squaredcos_cap_v2 => f32(min(1.0 - bar_2 * bar_2 / (bar_1 * bar_1), 0.999)),
    };
    cumprod(1.0 - betas, Tt)
}

/// `scheduler.alphas_cumprod` for `num_train_timesteps` training steps (LCM/TCD defaults:
/// `scaled_linear` from 0.00085 to 0.012; DDPM/DDIM: `linear` from 0.0001 to 0.02).
step schedule(
    num_train_timesteps: i32 = 1000,
    beta_start: f64 = 8.5e-4,
    beta_end: f64 = 0.012,
    beta_schedule: enum { linear, scaled_linear, squaredcos_cap_v2 } = scaled_linear,
) -> (alphas_cumprod: f32[Tt]) requires Tt == num_train_timesteps {
    (alphas_cumprod: alphas_cumprod(iota(Tt), beta_start, beta_end, beta_schedule))
}

/// `pred_original_sample` (x₀) from a model output, diffusers' formulas and op order
/// (research/consistency.md §0): `epsilon` → `(x − √(1−a)·out) / √a`; `sample` → `out`;
/// `v_prediction` → `√a·x − √(1−a)·out`, with `a = alphas_cumprod[t]` (an f32 scalar).
fn pred_original_sample(
    model_output: f32[..S],
    sample: f32[..S],
    a: f32,
    prediction_type: enum { epsilon, sample, v_prediction } = epsilon,
) -> f32[..S] {
    match prediction_type {
        epsilon => (sample - sqrt(1.0 - a) * model_output) / sqrt(a),
        sample => model_output,
        v_prediction => sqrt(a) * sample - sqrt(1.0 - a) * model_output,
    }
}

/// `pred_epsilon` from a model output: `epsilon` → `out`; `sample` → `(x − √a·out) / √(1−a)`;
/// `v_prediction` → `√a·out + √(1−a)·x`.
fn pred_epsilon(
    model_output: f32[..S],
    sample: f32[..S],
    a: f32,
    prediction_type: enum { epsilon, sample, v_prediction } = epsilon,
) -> f32[..S] {
    match prediction_type {
        epsilon => model_output,
        sample => (sample - sqrt(a) * model_output) / sqrt(1.0 - a),
        v_prediction => sqrt(a) * model_output + sqrt(1.0 - a) * sample,
    }
}

/// LCM's boundary-condition `c_skip` (`get_scalings_for_boundary_condition_discrete`):
/// `σ_d² / ((t·timestep_scaling)² + σ_d²)`, in f32 as for an int64 timestep tensor.
fn lcm_c_skip(timestep: f32[..N], timestep_scaling: f32, sigma_data: f32) -> f32[..N] {
    let s = timestep * timestep_scaling;
    sigma_data * sigma_data / (s * s + sigma_data * sigma_data)
}

/// LCM's `c_out`: `s / √(s² + σ_d²)` with `s = t·timestep_scaling` (no σ_d factor, unlike EDM).
fn lcm_c_out(timestep: f32[..N], timestep_scaling: f32, sigma_data: f32) -> f32[..N] {
    let s = timestep * timestep_scaling;
    s / sqrt(s * s + sigma_data * sigma_data)
}

/// `alphas_cumprod[t]` at the given timesteps (`a_t` of a batch, as `add_noise` reads it).
step schedule_at(
    timesteps: i32[N],
    num_train_timesteps: i32 = 1000,
    beta_start: f64 = 8.5e-4,
    beta_end: f64 = 0.012,
    beta_schedule: enum { linear, scaled_linear, squaredcos_cap_v2 } = scaled_linear,
) -> (alphas_cumprod: f32[N]) requires Tt == num_train_timesteps {
    let ac = alphas_cumprod(iota(Tt), beta_start, beta_end, beta_schedule);
    (alphas_cumprod: ac[Tt: timesteps])
}

test "schedules match diffusers' float32 alphas_cumprod (research vector 9.1)" {
    // Expected values: tests/reference/diffusers_schedulers.py vectors (= the torch f32 column
    // of research/consistency.md §9.1 for scaled_linear).
    let s = schedule_at(timesteps: [0, 19, 259, 499, 531, 759, 999]);
    expect_close(
        s.alphas_cumprod,
        [
            0.999149978, 0.982243955, 0.658975244, 0.27766943, 0.236594155, 0.0522128902,
            0.00466009509,
        ],
        1e-8,
    );
    let l = schedule_at(
        timesteps: [0, 499, 999],
        beta_start: 1e-4,
        beta_end: 0.02,
        beta_schedule: linear,
    );
    expect_close(l.alphas_cumprod, [0.999899983, 0.0785872489, 4.03583072e-5], 1e-8);
    let c = schedule_at(timesteps: [0, 499, 999], beta_schedule: squaredcos_cap_v2);
    expect_close(c.alphas_cumprod, [0.999958694, 0.493843466, 2.42873499e-9], 1e-8);
}
