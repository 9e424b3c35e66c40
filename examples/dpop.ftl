import std.objectives.dpo

/// DPO-Positive (Smaug; Pal et al., 2024, arXiv 2402.13228, Eq. 3): DPO whose margin is
/// penalized by λ · max(0, log π_ref(y_w) − log π_θ(y_w)), so the chosen completion's
/// likelihood cannot fall below the reference's while the margin grows. The penalty's kink
/// follows `torch.clamp(…, min=0)` (gradient 0 at 0), and the metrics are TRL's `rewards/*`
/// from std.objectives.dpo.
objective dpop(
    chosen_logps: f32[B],
    rejected_logps: f32[B],
    ref_chosen_logps: const f32[B],
    ref_rejected_logps: const f32[B],
    beta: f32 = 0.1,
    lambda_dpop: f32 = 50.0,
) requires beta > 0.0, lambda_dpop >= 0.0 {
    let chosen = chosen_logps - ref_chosen_logps;
    let rejected = rejected_logps - ref_rejected_logps;
    let penalty = clamp(ref_chosen_logps - chosen_logps, min: 0.0);
    loss mean(-log_sigmoid(beta * (chosen - rejected - lambda_dpop * penalty)), B);
    metric ..dpo.rewards(beta, chosen, rejected);
    metric penalty = mean(penalty, B);
}

test "dpop matches the paper's loss in torch" {
    // -F.logsigmoid(beta * ((pc - rc) - (pr - rr) - lam * (rc - pc).clamp(min=0))).mean(),
    // backward, f64; the third pair sits on the penalty's kink (rc == pc).
    let r = dpop(
        chosen_logps: [-10.0, -12.5, -8.0],
        rejected_logps: [-11.0, -12.0, -15.0],
        ref_chosen_logps: [-9.5, -13.0, -8.0],
        ref_rejected_logps: [-11.5, -12.5, -14.0],
    );
    expect_close(r.loss, 1.3363961775337287, 1e-6);
    expect_close(
        r.grad.chosen_logps,
        [-1.5824646854163102, -0.016666666666666666, -0.01583402708403533],
        1e-6,
    );
    expect_close(
        r.grad.rejected_logps,
        [0.03102871932188844, 0.016666666666666666, 0.01583402708403533],
        1e-6,
    );
    expect_close(r.metric.penalty, 0.5 / 3.0, 1e-6);
    gradcheck dpop(B: 4);
}

test "with lambda 0 dpop is dpo's sigmoid" {
    let x = [-10.0, -12.5, -8.0];
    let y = [-11.0, -12.0, -15.0];
    let rx = [-9.5, -13.0, -8.0];
    let ry = [-11.5, -12.5, -14.0];
    let p = dpop(
        chosen_logps: x,
        rejected_logps: y,
        ref_chosen_logps: rx,
        ref_rejected_logps: ry,
        lambda_dpop: 0.0,
    );
    let d = dpo.sigmoid(
        chosen_logps: x,
        rejected_logps: y,
        ref_chosen_logps: rx,
        ref_rejected_logps: ry,
    );
    expect_close(p.loss, d.loss, 1e-7);
    expect_close(p.grad.chosen_logps, d.grad.chosen_logps, 1e-7);
}
