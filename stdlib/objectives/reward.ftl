// The reward model's loss, as TRL 1.16's `RewardTrainer.compute_loss` computes it from the
// model's scalar outputs for the chosen and rejected halves of a batch. Test values: TRL's own
// `compute_loss` on these rewards (the trainer's state and the model stubbed), f64.

/// Bradley–Terry: `mean(−log σ(r_c − r_r − margin))`, plus
/// `center_rewards_coefficient · mean((r_c + r_r)²)` when given (Eisenstein et al.'s centering,
/// TRL's option). Metrics as TRL logs them: `min_reward`, `mean_reward`, `max_reward` over both
/// halves, `accuracy` (r_c > r_r) and `margin` (mean r_c − r_r, without the margin input).
objective reward(
    rewards_chosen: f32[B],
    rewards_rejected: f32[B],
    margin: const f32[B]?,
    center_rewards_coefficient: f32?,
) {
    let diff = rewards_chosen - rewards_rejected;
    let center = if present(center_rewards_coefficient) {
        center_rewards_coefficient * mean(pow(rewards_chosen + rewards_rejected, 2.0), B)
    } else {
        0.0
    };
    loss mean(-log_sigmoid(diff - (margin ?? zeros(B))), B) + center;
    metric min_reward = min(min(rewards_chosen, B), min(rewards_rejected, B));
    metric mean_reward = (sum(rewards_chosen, B) + sum(rewards_rejected, B)) / (2.0 * f32(B));
    metric max_reward = max(max(rewards_chosen, B), max(rewards_rejected, B));
    metric accuracy = mean(f32(rewards_chosen > rewards_rejected), B);
    metric margin = mean(diff, B);
}

test "reward matches TRL 1.16's RewardTrainer.compute_loss" {
    let r = reward(rewards_chosen: [1.5, -0.2, 0.7, 2.0], rewards_rejected: [0.5, 0.3, 0.9, -1.0]);
    expect_close(r.loss, 0.5335162231634158, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.rewards_chosen,
        [-0.06723535534249878, -0.15561483280046362, -0.1374584993281195, -0.011856468294391697],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(
        r.grad.rewards_rejected,
        [0.06723535534249878, 0.15561483280046362, 0.1374584993281195, 0.011856468294391697],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(r.metric.min_reward, -1.0);
    expect_close(r.metric.mean_reward, 0.5875);
    expect_close(r.metric.max_reward, 2.0);
    expect_close(r.metric.accuracy, 0.5);
    expect_close(r.metric.margin, 0.825);
}

test "reward with a margin and centering matches TRL 1.16" {
    let r = reward(
        rewards_chosen: [1.5, -0.2, 0.7, 2.0],
        rewards_rejected: [0.5, 0.3, 0.9, -1.0],
        margin: [0.5, 0.0, 1.0, 0.25],
        center_rewards_coefficient: 0.01,
    );
    expect_close(r.loss, 0.7622760061753608, rtol: 1e-6, atol: 1e-7);
    expect_close(
        r.grad.rewards_chosen,
        [-0.08438516719953637, -0.15511483280046362, -0.1841311958747544, -0.010021662543501904],
        rtol: 1e-5,
        atol: 1e-7,
    );
    expect_close(
        r.grad.rewards_rejected,
        [0.10438516719953636, 0.15611483280046362, 0.20013119587475442, 0.020021662543501906],
        rtol: 1e-5,
        atol: 1e-7,
    );
    gradcheck reward(B: 5);
}
