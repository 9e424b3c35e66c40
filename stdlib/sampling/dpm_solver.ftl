import std.sampling.schedules

// DPM-Solver++ (Lu et al., 2022, arXiv 2211.01095), multistep, second order: diffusers'
// `DPMSolverMultistepScheduler` (`scheduling_dpmsolver_multistep.py`) with its defaults —
// `algorithm_type="dpmsolver++"`, `solver_order=2`, `linspace` timestep spacing, no Karras /
// exponential / flow sigmas, `final_sigmas_type="zero"`, no thresholding — and its
// `solver_type` (`midpoint` default, `heun`) and `prediction_type` (`epsilon`, `sample`,
// `v_prediction`). The scheduler keeps the previous step's converted model output; here the
// caller does: each step returns `x0` (the model output converted to a data prediction) to pass
// as `prev_x0`, with that step's sigma as `sigma_prev`, to the next one. diffusers runs the first
// step and the last (towards sigma 0, `lower_order_final`) at first order: leave `prev_x0` out
// there. Test values: diffusers 0.42's scheduler run on the same inputs (f32).

/// `scheduler.sigmas` and `scheduler.timesteps` after `set_timesteps(num_inference_steps)`:
/// timesteps `round(linspace(0, T − 1, n + 1))` reversed without its last (0), half to even as
/// NumPy's `round`; sigmas `√((1 − ᾱ)/ᾱ)` (f32) at those training timesteps, then a final 0.
step dpm_solver_sigmas(
    num_inference_steps: i32,
    num_train_timesteps: i32 = 1000,
    beta_start: f64 = 1e-4,
    beta_end: f64 = 0.02,
    beta_schedule: enum { linear, scaled_linear, squaredcos_cap_v2 } = linear,
) -> (sigmas: f32[N1], timesteps: i32[N]) requires Tt == num_train_timesteps,
    N == num_inference_steps, N1 == num_inference_steps + 1,
    0 < num_inference_steps <= num_train_timesteps {
    let ac = alphas_cumprod(iota(Tt), beta_start, beta_end, beta_schedule);
    let table = sqrt((1.0 - ac) / ac);
    // np.linspace(0, T − 1, n + 1)[::-1][:-1] in f64: position k is (T − 1)(n − k)/n.
    let steps = f64(num_inference_steps - iota(N));
    let spaced = f64(num_train_timesteps - 1) * steps / f64(num_inference_steps);
    let timesteps = i32(round(spaced));
    let sigma = table[Tt: timesteps];
    (
        sigmas: where(
            iota(N1) < num_inference_steps,
            sigma[N: min(iota(N1), num_inference_steps - 1)],
            0.0,
        ),
        timesteps: timesteps,
    )
}

/// `α_t = 1/√(σ² + 1)`, `σ_t = σ·α_t` and `λ = log α_t − log σ_t` of a sigma, as diffusers computes
/// them in f32 (`_sigma_to_alpha_sigma_t`); λ is +inf at σ = 0.
fn alpha_sigma_lambda(sigma: f32) -> (alpha: f32, sigma_t: f32, lambda: f32) {
    let alpha = 1.0 / sqrt(sigma * sigma + 1.0);
    let sigma_t = sigma * alpha;
    (alpha: alpha, sigma_t: sigma_t, lambda: log(alpha) - log(sigma_t))
}

/// One DPM-Solver++ step from `sigma` to `sigma_next` (consecutive entries of
/// `dpm_solver_sigmas`): the model output converted to the data prediction `x0` (`epsilon`:
/// `(x − σ_t·out)/α_t`; `v_prediction`: `α_t·x − σ_t·out`; `sample`: `out`), then with
/// `h = λ_next − λ`: first order `x' = (σ_next,t/σ_t)·x − α_next(e^{−h} − 1)·x0`; with the previous
/// step's `prev_x0` (at `sigma_prev`), second order with `r = (λ − λ_prev)/h`, `D1 = (x0 −
/// prev_x0)/r`: `midpoint` subtracts `½α_next(e^{−h} − 1)·D1`, `heun` adds
/// `α_next((e^{−h} − 1)/h + 1)·D1`.
step dpm_solver_step(
    model_output: f32[..S],
    sample: f32[..S],
    sigma: f32,
    sigma_next: f32,
    prev_x0: f32[..S]?,
    sigma_prev: f32 = 0.0,
    prediction_type: enum { epsilon, sample, v_prediction } = epsilon,
    solver_type: enum { midpoint, heun } = midpoint,
) -> (prev_sample: f32[..S], x0: f32[..S]) requires sigma > 0.0, sigma_next >= 0.0,
    !present(prev_x0) || sigma_prev > sigma {
    let s = alpha_sigma_lambda(sigma);
    let t = alpha_sigma_lambda(sigma_next);
    let x0 = match prediction_type {
        epsilon => (sample - s.sigma_t * model_output) / s.alpha,
        sample => model_output,
        v_prediction => s.alpha * sample - s.sigma_t * model_output,
    };
    let h = t.lambda - s.lambda;
    let decay = t.alpha * (exp(-h) - 1.0);
    let first = t.sigma_t / s.sigma_t * sample - decay * x0;
    let prev_sample = if present(prev_x0) {
        let p = alpha_sigma_lambda(sigma_prev);
        let r = (s.lambda - p.lambda) / h;
        let d1 = 1.0 / r * (x0 - prev_x0);
        match solver_type {
            midpoint => first - 0.5 * decay * d1,
            heun => first + t.alpha * ((exp(-h) - 1.0) / h + 1.0) * d1,
        }
    } else {
        first
    };
    (prev_sample: prev_sample, x0: x0)
}

test "dpm_solver_sigmas are diffusers' DPMSolverMultistepScheduler.set_timesteps sigmas" {
    let r = dpm_solver_sigmas(num_inference_steps: 10);
    expect_close(r.timesteps, [999, 899, 799, 699, 599, 500, 400, 300, 200, 100], 0.0);
    expect_close(
        r.sigmas,
        f32([
            157.4072723388672, 60.27141189575195, 25.528484344482422, 11.939519882202148,
            6.135210037231445, 3.442967414855957, 2.0410871505737305, 1.2401612997055054,
            0.7235912084579468, 0.34226012229919434, 0.0,
        ]),
        rtol: 2e-6,
        atol: 0.0,
    );
    let sd = dpm_solver_sigmas(
        num_inference_steps: 10,
        beta_start: 8.5e-4,
        beta_end: 0.012,
        beta_schedule: scaled_linear,
    );
    expect_close(
        sd.sigmas,
        f32([
            14.614646911621094, 8.30280590057373, 5.087765216827393, 3.321084499359131,
            2.2764639854431152, 1.6182796955108643, 1.1643916368484497, 0.8327531814575195,
            0.5716663599014282, 0.34393182396888733, 0.0,
        ]),
        rtol: 2e-6,
        atol: 0.0,
    );
    let four = dpm_solver_sigmas(num_inference_steps: 4);
    expect_close(four.timesteps, [999, 749, 500, 250], 0.0);
}

test "a 4-step DPM-Solver++(2M) walk is diffusers' (midpoint and heun, epsilon and v_prediction)" {
    // set_timesteps(4): sigmas [157.407…, 17.247…, 3.443…, 0.958…, 0]; the model outputs are
    // fixed tensors, one per step; steps 1 and 2 are second order, 0 and 3 first order.
    let x = [[0.5, -1.25, 2.0], [0.1, 0.7, -0.3]];
    let m0 = [[0.2, -0.1, 0.4], [1.0, -0.5, 0.25]];
    let m1 = [[-0.3, 0.6, 0.1], [0.05, 0.9, -0.7]];
    let m2 = [[0.8, 0.2, -0.4], [-0.6, 0.3, 0.5]];
    let m3 = [[0.1, 0.1, 0.1], [0.2, -0.2, 0.0]];
    let s0 = 157.4072723388672;
    let s1 = 17.24698257446289;
    let s2 = 3.442967414855957;
    let s3 = 0.9580338001251221;
    let a0 = dpm_solver_step(model_output: m0, sample: x, sigma: s0, sigma_next: s1);
    expect_close(
        a0.prev_sample,
        [
            [2.933161973953, -10.578117370605, 14.977860450745],
            [-7.201875686646, 10.434589385986, -4.761717796326],
        ],
        rtol: 1e-6,
        atol: 1e-6,
    );
    let a1 = dpm_solver_step(
        model_output: m1,
        sample: a0.prev_sample,
        sigma: s1,
        sigma_next: s2,
        prev_x0: a0.x0,
        sigma_prev: s0,
    );
    expect_close(
        a1.prev_sample,
        [
            [15.990263938904, -54.264003753662, 72.208396911621],
            [-33.562896728516, 44.851123809814, -18.917045593262],
        ],
        rtol: 1e-6,
        atol: 1e-6,
    );
    let a2 = dpm_solver_step(
        model_output: m2,
        sample: a1.prev_sample,
        sigma: s2,
        sigma_next: s3,
        prev_x0: a1.x0,
        sigma_prev: s1,
    );
    expect_close(
        a2.prev_sample,
        [
            [39.698394775391, -141.286178588867, 188.326080322266],
            [-84.362815856934, 114.547294616699, -49.737720489502],
        ],
        rtol: 1e-6,
        atol: 1e-6,
    );
    let a3 = dpm_solver_step(model_output: m3, sample: a2.prev_sample, sigma: s3, sigma_next: 0.0);
    expect_close(
        a3.prev_sample,
        [
            [54.880790710449, -195.756942749023, 260.708862304688],
            [-117.022033691406, 158.823226928711, -68.879623413086],
        ],
        rtol: 1e-6,
        atol: 1e-6,
    );
    let h1 = dpm_solver_step(
        model_output: m1,
        sample: a0.prev_sample,
        sigma: s1,
        sigma_next: s2,
        prev_x0: a0.x0,
        sigma_prev: s0,
        solver_type: heun,
    );
    expect_close(
        h1.prev_sample,
        [
            [16.170951843262, -54.51696395874, 72.31681060791],
            [-33.219593048096, 44.345195770264, -18.573738098145],
        ],
        rtol: 1e-6,
        atol: 1e-6,
    );
    let v0 = dpm_solver_step(
        model_output: m0,
        sample: x,
        sigma: s0,
        sigma_next: s1,
        prediction_type: v_prediction,
    );
    expect_close(
        v0.prev_sample,
        [
            [0.489027261734, -1.243184447289, 1.97672533989],
            [0.048326477408, 0.724839806557, -0.312486410141],
        ],
        rtol: 1e-6,
        atol: 1e-7,
    );
    let v1 = dpm_solver_step(
        model_output: m1,
        sample: v0.prev_sample,
        sigma: s1,
        sigma_next: s2,
        prev_x0: v0.x0,
        sigma_prev: s0,
        prediction_type: v_prediction,
    );
    expect_close(
        v1.prev_sample,
        [
            [0.586259305477, -1.407698631287, 1.937409877777],
            [0.113419622183, 0.395331680775, -0.072762109339],
        ],
        rtol: 1e-6,
        atol: 1e-7,
    );
    let w1 = dpm_solver_step(
        model_output: m1,
        sample: v0.prev_sample,
        sigma: s1,
        sigma_next: s2,
        prev_x0: v0.x0,
        sigma_prev: s0,
        prediction_type: v_prediction,
        solver_type: heun,
    );
    expect_close(
        w1.prev_sample,
        [
            [0.597251713276, -1.423685908318, 1.945830345154],
            [0.133371591568, 0.366815268993, -0.053220532835],
        ],
        rtol: 1e-6,
        atol: 1e-7,
    );
}
