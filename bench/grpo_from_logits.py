#!/usr/bin/env python3
"""GRPO from logits, 16 completions (2 prompts × 8), T=512, V=32000, f32, loss + backward: the
`ftl` package's `grpo_from_logits` (TRL's default `dapo` loss) next to TRL 1.16's own code path
in PyTorch eager — `selective_log_softmax` and `entropy_from_logits` of `logits / temperature`,
then `GRPOTrainer._compute_loss` (the trainer's state stubbed) — in the same process. Not CI.

    bash scripts/python-env.sh --release && .venv/bin/python bench/grpo_from_logits.py [--reps 5]
"""

import argparse
import types
from collections import defaultdict

import torch

import ftl
from eager_reference import timed

B, T, V = 16, 512, 32000


def trl_loss(logits, ids, inputs, temperature):
    from trl import GRPOTrainer
    from trl.trainer.utils import entropy_from_logits, selective_log_softmax

    scaled = logits / temperature
    lp = selective_log_softmax(scaled, ids)
    with torch.no_grad():
        ent = entropy_from_logits(scaled)

    class Acc:
        device = torch.device("cpu")
        num_processes = 1

        def gather(self, x):
            return x

        gather_for_metrics = gather

        def reduce(self, x, reduction="sum"):
            return x

    s = types.SimpleNamespace(
        model=types.SimpleNamespace(training=True), top_entropy_quantile=1.0, off_policy_mask_threshold=None,
        importance_sampling_level="token", beta=0.04, loss_type="dapo", epsilon_low=0.2, epsilon_high=0.28,
        use_vllm=False, current_gradient_accumulation_steps=1, max_completion_length=T, accelerator=Acc(),
        _entropy_bonus_enabled=False, aux_loss_enabled=False, _metrics={"train": defaultdict(list)},
        args=types.SimpleNamespace(use_bias_correction_kl=True, delta=None, steps_per_generation=1),
        _get_per_token_logps_and_entropies=lambda *a, **k: (lp, ent, None),
    )
    return GRPOTrainer._compute_loss(s, None, inputs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(B, T, V, generator=g).requires_grad_()
    ids = torch.randint(0, V, (B, T), generator=g)
    mask = (torch.arange(T)[None, :] < torch.randint(T // 2, T + 1, (B, 1), generator=g)).int()
    old = -torch.rand(B, T, generator=g) * 12
    ref = old + 0.1 * torch.randn(B, T, generator=g)
    adv = torch.randn(B, generator=g)
    grpo = ftl.load("std.objectives.grpo", "grpo_from_logits", beta=0.04, epsilon_high=0.28, temperature=0.9)
    inputs = dict(
        logits=logits, completion_ids=ids, advantages=adv, completion_mask=mask,
        old_per_token_logps=old, ref_per_token_logps=ref,
    )
    kernels = []

    def ftl_step():
        logits.grad = None
        loss, _ = grpo(**inputs)
        kernels.append(grpo.last_kernel_ms)
        loss.backward()

    trl_inputs = {
        "prompt_ids": torch.zeros(B, 1, dtype=torch.long), "prompt_mask": torch.ones(B, 1, dtype=torch.long),
        "completion_ids": ids, "completion_mask": mask, "advantages": adv,
        "old_per_token_logps": old, "ref_per_token_logps": ref, "num_items_in_batch": mask.sum().float(),
    }

    def eager_step():
        logits.grad = None
        trl_loss(logits, ids, trl_inputs, 0.9).backward()

    logits.grad = None
    loss, _ = grpo(**inputs)
    loss.backward()
    ftl_grad = logits.grad.clone()
    logits.grad = None
    ref_loss = trl_loss(logits, ids, trl_inputs, 0.9)
    ref_loss.backward()
    rel = ((ftl_grad - logits.grad).norm() / logits.grad.norm()).item()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; loss ftl {loss.item():.7f} "
          f"TRL {ref_loss.item():.7f}; gradient relative L2 difference {rel:.1e}")
    f_med, f_min = timed(ftl_step, args.reps)
    e_med, e_min = timed(eager_step, args.reps)
    k = sorted(kernels)[len(kernels) // 2]
    print(f"GRPO from logits B={B}, T={T}, V={V} (dapo, β=0.04), loss + backward, ms median / min:")
    print(f"  ftl   {f_med:8.1f} / {f_min:8.1f}  (kernels {k:.1f})")
    print(f"  eager {e_med:8.1f} / {e_min:8.1f}  (TRL 1.16's code path)  → {e_med / f_med:.1f}× ")


if __name__ == "__main__":
    main()
