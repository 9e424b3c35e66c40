// Consistency models' multistep sampler (Song et al., 2023, arXiv 2303.01469, Algorithm 1):
// diffusers' `CMStochasticIterativeScheduler` (`scheduling_consistency_models.py`;
// research/consistency.md §4), the EDM/Karras schedule of OpenAI's consistency models.

/// `set_timesteps(timesteps=…)`: for timesteps t (descending, < num_train_timesteps) the Karras
/// sigmas of the reversed ramp `t[::-1] / (num_train_timesteps − 1)`, computed in f64 and stored
/// as f32 as diffusers does, and the model's timesteps `1000 · 0.25 · ln(σ + 1e-44)` from the f64
/// sigmas. diffusers appends σ_min after the last sigma; pass it as the last step's `sigma_next`.
step cm_sigmas(
    timesteps: i32[N],
    num_train_timesteps: i32 = 40,
    sigma_min: f64 = 0.002,
    sigma_max: f64 = 80.0,
    rho: f64 = 7.0,
) -> (sigmas: f32[N], model_timesteps: f64[N]) requires 1 < num_train_timesteps {
    let ramp = f64(timesteps[N: size(N) - 1 - iota(N)]) / f64(num_train_timesteps - 1);
    let min_inv_rho = pow(sigma_min, 1.0 / rho);
    let max_inv_rho = pow(sigma_max, 1.0 / rho);
    let sigmas = pow(max_inv_rho + ramp * (min_inv_rho - max_inv_rho), rho);
    (sigmas: f32(sigmas), model_timesteps: 1000.0 * 0.25 * log(sigmas + 1e-44))
}

/// One step of `CMStochasticIterativeScheduler.step`: the consistency function's boundary
/// scalings `c_skip = σ_d² / ((σ − σ_min)² + σ_d²)`, `c_out = (σ − σ_min)·σ_d / √(σ² + σ_d²)`,
/// `denoised = c_out·F + c_skip·x` (clamped to [−1, 1] with `clip_denoised`), then
/// `prev = denoised + z·s_noise·√(σ̂² − σ_min²)` with `σ̂ = clamp(σ_next, σ_min, σ_max)`. As in
/// diffusers, the arithmetic is f32 with the Python-float settings converted where they meet a
/// tensor, and `σ_min²` is squared in f64 first. `add_noise` is diffusers' `len(timesteps) > 1`
/// (one-step sampling adds no noise); `noise` stands in for its `randn_tensor`.
step cm_stochastic_step(
    model_output: f32[..S],
    sample: f32[..S],
    noise: f32[..S],
    sigma: f32,
    sigma_next: f32,
    add_noise: bool,
    sigma_min: f64 = 0.002,
    sigma_max: f64 = 80.0,
    sigma_data: f32 = 0.5,
    s_noise: f32 = 1.0,
    clip_denoised: static bool = true,
) -> (prev_sample: f32[..S], denoised: f32[..S]) requires sigma >= 0.0, sigma_next >= 0.0 {
    let offset = sigma - f32(sigma_min);
    let c_skip = sigma_data * sigma_data / (offset * offset + sigma_data * sigma_data);
    let c_out = offset * sigma_data / sqrt(sigma * sigma + sigma_data * sigma_data);
    let raw = c_out * model_output + c_skip * sample;
    let denoised = if clip_denoised { clamp(raw, -1.0, 1.0) } else { raw };
    let z = where(add_noise, noise, 0.0) * s_noise;
    let sigma_hat = clamp(sigma_next, f32(sigma_min), f32(sigma_max));
    (
        prev_sample: denoised + z * sqrt(sigma_hat * sigma_hat - f32(sigma_min * sigma_min)),
        denoised: denoised,
    )
}

test "cm_sigmas is diffusers' set_timesteps" {
    // CMStochasticIterativeScheduler().set_timesteps(timesteps=[22, 0]) and set_timesteps(3)
    // (diffusers 0.42): sigmas without the appended sigma_min, and timesteps.
    let a = cm_sigmas(timesteps: [22, 0]);
    expect_close(a.sigmas, [80.0, 1.3823679685592651], 0.0);
    expect_close(a.model_timesteps, f64([1095.5066586684702, 80.94948482281791]), 1e-13);
    let b = cm_sigmas(timesteps: [26, 13, 0]);
    expect_close(b.sigmas, [80.0, 9.723201751708984, 0.46997904777526855], 0.0);
    expect_close(
        b.model_timesteps,
        f64([1095.5066586684702, 568.6287304457778, -188.76678568058682]),
        1e-13,
    );
}

test "two cm steps are diffusers' step with its own noise" {
    // diffusers 0.42 `step` over timesteps [22, 0] from x = [40, -80, 20, 160] with model output
    // [0.1, -0.2, 0.3, -0.4] and generators seeded 0 then 1; `noise` is randn_tensor of each.
    let s1 = cm_stochastic_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: [40.0, -80.0, 20.0, 160.0],
        noise: [1.5409960746765137, -0.293428897857666, -2.1787893772125244, 0.5684312582015991],
        sigma: 80.0,
        sigma_next: 1.3823679685592651,
        add_noise: true,
    );
    expect_close(
        s1.prev_sample,
        [2.181781768798828, -0.508746862411499, -2.8611111640930176, 0.5920393466949463],
        1e-6,
    );
    let s2 = cm_stochastic_step(
        model_output: [0.1, -0.2, 0.3, -0.4],
        sample: s1.prev_sample,
        noise: [0.6613521575927734, 0.266924113035202, 0.06167725846171379, 0.6213173270225525],
        sigma: 1.3823679685592651,
        sigma_next: 0.0020000000949949026,
        add_noise: true,
    );
    expect_close(
        s2.prev_sample,
        [0.3000093996524811, -0.15290948748588562, -0.190998837351799, -0.11913415789604187],
        1e-6,
    );
}

test "one-step cm sampling adds no noise, and clip_denoised can be off" {
    let one = cm_stochastic_step(
        model_output: [0.3, -0.9, 0.1, 0.5],
        sample: [40.0, -80.0, 20.0, 160.0],
        noise: [5.0, 5.0, 5.0, 5.0],
        sigma: 80.0,
        sigma_next: 0.0020000000949949026,
        add_noise: false,
    );
    expect_close(
        one.prev_sample,
        [0.1515558511018753, -0.45310500264167786, 0.05077902972698212, 0.2562389373779297],
        1e-6,
    );
    let free = cm_stochastic_step(
        model_output: [3.0, -2.0, 0.5, 1.0],
        sample: [40.0, -80.0, 20.0, 160.0],
        noise: [-0.4867807626724243, -0.6038215756416321, -0.5580962300300598, 0.6675242781639099],
        sigma: 80.0,
        sigma_next: 1.3823679685592651,
        add_noise: true,
        clip_denoised: false,
    );
    expect_close(
        free.prev_sample,
        [0.8285862803459167, -1.8377832174301147, -0.5207234621047974, 1.4289910793304443],
        1e-6,
    );
}
