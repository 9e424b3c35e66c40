// A sampling rule written outside the standard library: diffusers' `FlowMatchLCMScheduler.step`
// (research/consistency.md §4, last paragraph), the flow-matching analogue of LCM. The standard
// library's LCM, TCD and DDIM steps live in std.sampling; this file shows the shape of a new one.

/// One flow-matching LCM step on a velocity prediction: `x₀ = x − σ·v`, then
/// `prev_sample = (1 − σ_next)·x₀ + σ_next·noise`. The caller passes the schedule's `sigma` and
/// the next one (0 after the last step, so the last step returns `x₀`).
step flow_lcm_step(
    model_output: f32[..S],
    sample: f32[..S],
    noise: f32[..S],
    sigma: f32,
    sigma_next: f32,
) -> (prev_sample: f32[..S], denoised: f32[..S]) {
    let x0 = sample - sigma * model_output;
    (prev_sample: (1.0 - sigma_next) * x0 + sigma_next * noise, denoised: x0)
}

test "flow_lcm_step re-noises x0 to the next sigma" {
    let r = flow_lcm_step(
        model_output: [0.5, -1.0],
        sample: [1.0, 2.0],
        noise: [0.25, -0.5],
        sigma: 0.75,
        sigma_next: 0.5,
    );
    // x0 = [1 - 0.375, 2 + 0.75] = [0.625, 2.75]; prev = 0.5 x0 + 0.5 noise.
    expect_close(r.denoised, [0.625, 2.75], 1e-7);
    expect_close(r.prev_sample, [0.4375, 1.125], 1e-7);
    let last = flow_lcm_step(
        model_output: [0.5, -1.0],
        sample: [1.0, 2.0],
        noise: [0.25, -0.5],
        sigma: 0.75,
        sigma_next: 0.0,
    );
    expect_close(last.prev_sample, [0.625, 2.75], 1e-7);
}
