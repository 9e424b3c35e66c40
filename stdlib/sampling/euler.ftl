import std.sampling.schedules

// Euler (Karras et al., 2022, Algorithm 2): diffusers' `EulerDiscreteScheduler`
// (`scheduling_euler_discrete.py`) with its class defaults (`linear` betas 0.0001 → 0.02;
// Stable Diffusion's configs pass `scaled_linear` 0.00085 → 0.012), `linspace` timestep spacing
// and `linear` interpolation of the sigmas, optionally respaced as Karras or exponential sigmas.
// The schedule's sigmas come from `euler_sigmas` (or the caller's own); the caller walks them,
// scaling the model input with `euler_scale_model_input`.

/// `scheduler.sigmas` after `set_timesteps(num_inference_steps)` (and its `timesteps`):
/// `σ_train = √((1 − ᾱ)/ᾱ)` in f32, the timesteps `linspace(0, T − 1, n)` in f32, reversed,
/// `σ(t)` linearly interpolated in f64 (`np.interp`) and stored in f32, then a final 0.
/// `use_karras_sigmas` respaces them as `_convert_to_karras` (ρ = 7 between σ_max and σ_min:
/// `sigma_max`/`sigma_min` when given, else the interpolated ends), `use_exponential_sigmas` as
/// `_convert_to_exponential` (`exp(linspace(ln σ_max, ln σ_min, n))`); both in f64, and the
/// timesteps then come from `_sigma_to_t`: the position of `ln σ` among the f32 `ln σ_train`,
/// interpolated (the bracket's width subtracted in f32, as numpy does), clipped to the table.
step euler_sigmas(
    num_inference_steps: i32,
    sigma_min: f64?,
    sigma_max: f64?,
    num_train_timesteps: i32 = 1000,
    beta_start: f64 = 1e-4,
    beta_end: f64 = 0.02,
    beta_schedule: enum { linear, scaled_linear, squaredcos_cap_v2 } = linear,
    use_karras_sigmas: static bool = false,
    use_exponential_sigmas: static bool = false,
) -> (sigmas: f32[N1], timesteps: f32[N]) requires Tt == num_train_timesteps,
    N == num_inference_steps, N1 == num_inference_steps + 1,
    0 < num_inference_steps <= num_train_timesteps, 1 < num_train_timesteps,
    !(use_karras_sigmas && use_exponential_sigmas) {
    let ac = alphas_cumprod(iota(Tt), beta_start, beta_end, beta_schedule);
    let table = sqrt((1.0 - ac) / ac);
    let last = f32(num_train_timesteps - 1);
    // np.linspace(0, T − 1, n, dtype=float32)[::-1]: the step in f64, each value rounded to f32.
    let up = f32(f64(last) * f64(iota(N)) / f64(max(num_inference_steps - 1, 1)));
    let timesteps = up[N: num_inference_steps - 1 - iota(N)];
    let t = f64(timesteps);
    let lo = i32(floor(t));
    let hi = min(lo + 1, num_train_timesteps - 1);
    let below = f64(table[Tt: lo]);
    let interpolated = below + (t - f64(lo)) * (f64(table[Tt: hi]) - below);
    let high = sigma_max ?? interpolated[N: 0];
    let low = sigma_min ?? interpolated[N: num_inference_steps - 1];
    // np.linspace(a, b, n): a + i·((b − a)/(n − 1)), the last exactly b ([a] at n = 1).
    let is_last = iota(N) == num_inference_steps - 1 && num_inference_steps > 1;
    let fraction = f64(iota(N)) * (1.0 / f64(max(num_inference_steps - 1, 1)));
    let respaced = if use_karras_sigmas {
        let rho = f64(7.0);
        let max_inv_rho = pow(high, 1.0 / rho);
        let min_inv_rho = pow(low, 1.0 / rho);
        pow(max_inv_rho + where(is_last, 1.0, fraction) * (min_inv_rho - max_inv_rho), rho)
    } else {
        let log_step = (log(low) - log(high)) * (1.0 / f64(max(num_inference_steps - 1, 1)));
        exp(where(is_last, log(low), f64(iota(N)) * log_step + log(high)))
    };
    let sigma = if use_karras_sigmas || use_exponential_sigmas { respaced } else { interpolated };
    // `_sigma_to_t`: the last table index whose f32 log-sigma is at most ln σ (the table rises
    // with t), clipped to [0, T − 2], and the weight of the next one.
    let log_table = log(table);
    let log_sigma = log(max(sigma, 1e-10));
    let below_count = sum(where(f64(log_table) <= log_sigma, 1, 0), Tt);
    let index = clamp(below_count - 1, 0, num_train_timesteps - 2);
    let log_low = log_table[Tt: index];
    let log_high = log_table[Tt: index + 1];
    let weight = clamp((f64(log_low) - log_sigma) / f64(log_low - log_high), 0.0, 1.0);
    let respaced_timesteps = f32((1.0 - weight) * f64(index) + weight * f64(index + 1));
    (
        sigmas: where(
            iota(N1) < num_inference_steps,
            f32(sigma[N: min(iota(N1), num_inference_steps - 1)]),
            0.0,
        ),
        timesteps: if use_karras_sigmas || use_exponential_sigmas {
            respaced_timesteps
        } else {
            timesteps
        },
    )
}

/// `scale_model_input`: the sample divided by `√(σ² + 1)`, before the model sees it.
step euler_scale_model_input(sample: f32[..S], sigma: f32) -> (scaled: f32[..S]) {
    (scaled: sample / sqrt(sigma * sigma + 1.0))
}

/// One Euler step from `sigma` to `sigma_next` (consecutive entries of `sigmas`):
/// `γ = min(s_churn / num_inference_steps, √2 − 1)` when `s_tmin ≤ σ ≤ s_tmax` (else 0),
/// `σ̂ = σ(γ + 1)`, the sample first noised by `noise · s_noise · √(σ̂² − σ²)` when γ > 0,
/// `x₀` from the model output (`epsilon`: `x − σ̂·out`; `v_prediction`:
/// `out·(−σ/√(σ²+1)) + x/(σ²+1)`; `sample`: `out`), `prev = x + (x − x₀)/σ̂ · (σ_next − σ̂)`.
/// `noise` (a standard normal draw of the sample's shape) is read only when γ > 0.
step euler_step(
    model_output: f32[..S],
    sample: f32[..S],
    sigma: f32,
    sigma_next: f32,
    noise: f32[..S]?,
    s_tmax: f32?,
    num_inference_steps: i32 = 1,
    s_churn: f32 = 0.0,
    s_tmin: f32 = 0.0,
    s_noise: f32 = 1.0,
    prediction_type: enum { epsilon, sample, v_prediction } = epsilon,
) -> (prev_sample: f32[..S], pred_original_sample: f32[..S]) requires num_inference_steps > 0,
    s_churn >= 0.0, sigma >= 0.0 {
    let in_range = s_tmin <= sigma && sigma <= (s_tmax ?? 3.4028234663852886e38);
    let gamma = where(in_range, min(s_churn / f32(num_inference_steps), 0.41421356237309515), 0.0);
    let sigma_hat = sigma * (gamma + 1.0);
    let noised = where(
        gamma > 0.0,
        sample + (noise ?? 0.0 * sample) * s_noise * sqrt(sigma_hat * sigma_hat - sigma * sigma),
        sample,
    );
    let x0 = match prediction_type {
        epsilon => noised - sigma_hat * model_output,
        sample => model_output,
        v_prediction => model_output * (-sigma / sqrt(sigma * sigma + 1.0))
            + noised / (sigma * sigma + 1.0),
    };
    let derivative = (noised - x0) / sigma_hat;
    (prev_sample: noised + derivative * (sigma_next - sigma_hat), pred_original_sample: x0)
}

test "euler_sigmas are diffusers' EulerDiscreteScheduler.set_timesteps(10) sigmas" {
    let r = euler_sigmas(num_inference_steps: 10);
    expect_close(
        r.sigmas,
        f32([
            157.4072723388672, 54.5675163269043, 21.417497634887695, 9.488921165466309,
            4.703334331512451, 2.5546913146972656, 1.4623570442199707, 0.8219357132911682,
            0.3803713917732239, 0.010001329705119133, 0.0,
        ]),
        rtol: 2e-6,
        atol: 0.0,
    );
    expect_close(
        r.timesteps,
        f32([999.0, 888.0, 777.0, 666.0, 555.0, 444.0, 333.0, 222.0, 111.0, 0.0]),
        0.0,
    );
}

test "euler_step (epsilon) is diffusers' EulerDiscreteScheduler.step at step 3 of 10" {
    let r = euler_step(
        model_output: [
            [0.3370000123977661, 1.0110000371932983, -1.434999942779541],
            [0.9769999980926514, 0.5220000147819519, 1.2380000352859497],
        ],
        sample: [
            [0.8029999732971191, 0.17499999701976776, 0.08900000154972076],
            [-0.6140000224113464, 0.04600000008940697, -1.3680000305175781],
        ],
        sigma: 9.488921165466309,
        sigma_next: 4.703334331512451,
        num_inference_steps: 10,
        prediction_type: epsilon,
    );
    expect_close(
        r.prev_sample,
        [
            [-0.80974280834198, -4.663228511810303, 6.956316947937012],
            [-5.289517879486084, -2.4520764350891113, -7.2925567626953125],
        ],
        rtol: 2e-6,
        atol: 1e-6,
    );
    expect_close(
        r.pred_original_sample,
        [
            [-2.3947665691375732, -9.418299674987793, 13.70560073852539],
            [-9.884675979614258, -4.907217025756836, -13.11528491973877],
        ],
        rtol: 2e-6,
        atol: 1e-6,
    );
    let s = euler_scale_model_input(
        sample: [
            [0.8029999732971191, 0.17499999701976776, 0.08900000154972076],
            [-0.6140000224113464, 0.04600000008940697, -1.3680000305175781],
        ],
        sigma: 9.488921165466309,
    );
    expect_close(
        s.scaled,
        [
            [0.08415894955396652, 0.01834099180996418, 0.009327705018222332],
            [-0.0643506795167923, 0.004821060691028833, -0.14337415993213654],
        ],
        rtol: 2e-6,
        atol: 1e-7,
    );
}

test "euler_step (v_prediction) is diffusers' EulerDiscreteScheduler.step at step 3 of 10" {
    let r = euler_step(
        model_output: [
            [0.4950000047683716, -0.164000004529953, -0.6779999732971191],
            [-1.059000015258789, 0.7480000257492065, 0.23899999260902405],
        ],
        sample: [
            [-0.8650000095367432, 0.29899999499320984, 0.4189999997615814],
            [-0.07999999821186066, 0.9259999990463257, 0.8159999847412109],
        ],
        sigma: 9.488921165466309,
        sigma_next: 4.703334331512451,
        num_inference_steps: 10,
        prediction_type: v_prediction,
    );
    expect_close(
        r.prev_sample,
        [
            [-0.6818133592605591, 0.2321157604455948, 0.550060510635376],
            [0.4910520911216736, 0.0889519453048706, 0.2891117334365845],
        ],
        rtol: 2e-6,
        atol: 1e-6,
    );
    expect_close(
        r.pred_original_sample,
        [
            [-0.5017752647399902, 0.1663811057806015, 0.6788684129714966],
            [1.0522891283035278, -0.7337091565132141, -0.22872062027454376],
        ],
        rtol: 2e-6,
        atol: 1e-6,
    );
    let s = euler_scale_model_input(
        sample: [
            [-0.8650000095367432, 0.29899999499320984, 0.4189999997615814],
            [-0.07999999821186066, 0.9259999990463257, 0.8159999847412109],
        ],
        sigma: 9.488921165466309,
    );
    expect_close(
        s.scaled,
        [
            [-0.09065690636634827, 0.03133689612150192, 0.0439135767519474],
            [-0.008384453132748604, 0.09705004841089249, 0.08552142232656479],
        ],
        rtol: 2e-6,
        atol: 1e-7,
    );
}

test "euler_step with churn adds the scaled noise first (diffusers' formula)" {
    // gamma = min(2 / 4, √2 − 1), sigma_hat = 2(1 + gamma); x = 1 + 0.5·√(sigma_hat² − 4);
    // epsilon: x0 = x − sigma_hat·out; prev = x + (x − x0)/sigma_hat·(1 − sigma_hat).
    let r = euler_step(
        model_output: [0.25],
        sample: [1.0],
        sigma: 2.0,
        sigma_next: 1.0,
        noise: [0.5],
        num_inference_steps: 4,
        s_churn: 2.0,
    );
    let g = 0.41421356237309515;
    let sh = 2.0 * (1.0 + g);
    let x = 1.0 + 0.5 * sqrt(sh * sh - 4.0);
    expect_close(r.prev_sample, [x + 0.25 * (1.0 - sh)], 1e-6);
}

test "euler_sigmas interpolate between training timesteps (7 steps) and follow the schedule" {
    // diffusers 0.42: set_timesteps(7) gives timesteps 832.5, 499.5, 166.5 between training
    // steps (np.interp); and with Stable Diffusion's scaled_linear betas.
    let r = euler_sigmas(num_inference_steps: 7);
    expect_close(r.timesteps, f32([999.0, 832.5, 666.0, 499.5, 333.0, 166.5, 0.0]), 0.0);
    expect_close(
        r.sigmas,
        f32([
            157.4072723388672, 33.66373062133789, 9.488921165466309, 3.4335522651672363,
            1.4623570442199707, 0.5856084823608398, 0.010001329705119133, 0.0,
        ]),
        rtol: 2e-6,
        atol: 0.0,
    );
    let sd = euler_sigmas(
        num_inference_steps: 7,
        beta_schedule: scaled_linear,
        beta_start: 8.5e-4,
        beta_end: 0.012,
    );
    expect_close(
        sd.sigmas,
        f32([
            14.614646911621094, 5.948918342590332, 2.9183084964752197, 1.6155834197998047,
            0.9323583245277405, 0.4935535192489624, 0.029167532920837402, 0.0,
        ]),
        rtol: 2e-6,
        atol: 0.0,
    );
}

test "Karras sigmas are diffusers' set_timesteps with use_karras_sigmas" {
    // EulerDiscreteScheduler(use_karras_sigmas=True).set_timesteps(n) (diffusers 0.42): sigmas
    // and the `_sigma_to_t` timesteps, at n = 10, 4 and 1, the class defaults and SD's schedule.
    let r = euler_sigmas(num_inference_steps: 10, use_karras_sigmas: true);
    expect_close(
        r.sigmas,
        f32([
            157.4072723388672, 85.71073150634766, 44.04764938354492, 21.10560417175293,
            9.274740219116211, 3.6526403427124023, 1.2463603019714355, 0.34970614314079285,
            0.0739302858710289, 0.010001329705119133, 0.0,
        ]),
        rtol: 2e-6,
        atol: 0.0,
    );
    expect_close(
        r.timesteps,
        f32([
            999.0, 936.9221801757813, 863.8296508789063, 775.1343383789063, 662.638916015625,
            510.7070007324219, 300.9902648925781, 102.16522979736328, 18.309188842773438, 0.0,
        ]),
        rtol: 2e-6,
        atol: 0.0,
    );
    let four = euler_sigmas(num_inference_steps: 4, use_karras_sigmas: true);
    expect_close(
        four.sigmas,
        f32([157.4072723388672, 21.10560417175293, 1.2463603019714355, 0.010001329705119133, 0.0]),
        rtol: 2e-6,
        atol: 0.0,
    );
    expect_close(
        four.timesteps,
        f32([999.0, 775.1343383789063, 300.9902648925781, 0.0]),
        rtol: 2e-6,
        atol: 0.0,
    );
    let one = euler_sigmas(num_inference_steps: 1, use_karras_sigmas: true);
    expect_close(one.sigmas, f32([0.010001329705119133, 0.0]), rtol: 2e-6, atol: 0.0);
    expect_close(one.timesteps, f32([0.0]), 0.0);
    let sd = euler_sigmas(
        num_inference_steps: 10,
        use_karras_sigmas: true,
        beta_schedule: scaled_linear,
        beta_start: 8.5e-4,
        beta_end: 0.012,
    );
    expect_close(
        sd.sigmas,
        f32([
            14.614646911621094, 9.102936744689941, 5.478401184082031, 3.1686110496520996,
            1.7494231462478638, 0.9140765070915222, 0.44692090153694153, 0.20139986276626587,
            0.08191104978322983, 0.029167532920837402, 0.0,
        ]),
        rtol: 2e-6,
        atol: 0.0,
    );
    expect_close(
        sd.timesteps,
        f32([
            999.0, 916.2840576171875, 815.0449829101563, 687.1532592773438, 523.1989135742188,
            327.147216796875, 145.9390411376953, 40.85687255859375, 6.732409954071045, 0.0,
        ]),
        rtol: 2e-6,
        atol: 0.0,
    );
}

test "Karras sigmas between the configured sigma_min and sigma_max" {
    // EulerDiscreteScheduler(use_karras_sigmas=True, sigma_min=0.1, sigma_max=10.0)
    // .set_timesteps(10) and (1): the timesteps land between training steps.
    let r = euler_sigmas(
        num_inference_steps: 10,
        use_karras_sigmas: true,
        sigma_min: 0.1,
        sigma_max: 10.0,
    );
    expect_close(
        r.sigmas,
        f32([
            10.0, 6.802164554595947, 4.524204254150391, 2.934119939804077, 1.8493021726608276,
            1.128182053565979, 0.662885844707489, 0.37282225489616394, 0.19914104044437408,
            0.10000000149011612, 0.0,
        ]),
        rtol: 2e-6,
        atol: 0.0,
    );
    expect_close(
        r.timesteps,
        f32([
            673.6654663085938, 615.412353515625, 548.3543090820313, 470.3806457519531,
            380.28704833984375, 281.3498229980469, 185.64576721191406, 108.83751678466797,
            57.11867141723633, 26.409259796142578,
        ]),
        rtol: 2e-6,
        atol: 0.0,
    );
    let one = euler_sigmas(
        num_inference_steps: 1,
        use_karras_sigmas: true,
        sigma_min: 0.1,
        sigma_max: 10.0,
    );
    expect_close(one.sigmas, f32([10.0, 0.0]), rtol: 2e-6, atol: 0.0);
    expect_close(one.timesteps, f32([673.6654663085938]), rtol: 2e-6, atol: 0.0);
}

test "exponential sigmas are diffusers' set_timesteps with use_exponential_sigmas" {
    let r = euler_sigmas(num_inference_steps: 10, use_exponential_sigmas: true);
    expect_close(
        r.sigmas,
        f32([
            157.4072723388672, 53.78920364379883, 18.380844116210938, 6.281101226806641,
            2.1463775634765625, 0.733460009098053, 0.2506379187107086, 0.08564797043800354,
            0.02926762029528618, 0.010001329705119133, 0.0,
        ]),
        rtol: 2e-6,
        atol: 0.0,
    );
    expect_close(
        r.timesteps,
        f32([
            999.0, 886.3991088867188, 757.3358154296875, 602.76953125, 409.974365234375,
            202.27745056152344, 72.80216979980469, 21.941909790039063, 4.806363105773926, 0.0,
        ]),
        rtol: 2e-6,
        atol: 0.0,
    );
    let four = euler_sigmas(num_inference_steps: 4, use_exponential_sigmas: true);
    expect_close(
        four.sigmas,
        f32([157.4072723388672, 6.281101226806641, 0.2506379187107086, 0.010001329705119133, 0.0]),
        rtol: 2e-6,
        atol: 0.0,
    );
    expect_close(
        four.timesteps,
        f32([999.0, 602.76953125, 72.80216979980469, 0.0]),
        rtol: 2e-6,
        atol: 0.0,
    );
}
