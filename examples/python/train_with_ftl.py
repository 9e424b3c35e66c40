#!/usr/bin/env python3
"""A real training loop with FTL's objectives and adapters next to the libraries they replace.

Three runs of 30 optimizer steps on tiny random-weight models built from `transformers`
configs (nothing is downloaded) and synthetic data made here, each twice — once with the
reference library's own code, once with the `ftl` package — from the same initial weights on
the same batches:

- **DPO** on a tiny GPT-2: (a) TRL 1.16's `DPOTrainer._compute_loss` (its fused LM head for the
  log-probs, its sigmoid loss) vs (b) the model's logits into FTL's `sigmoid_from_logits`;
- **SFT** on a tiny GPT-2: (a) TRL's SFT loss (`SFTTrainer.compute_loss`'s `nll` branch: the
  fused head's per-token log-probs, summed over the completion tokens / their count) vs (b)
  FTL's `sft` on the logits;
- **LoRA** on a tiny Llama's `q_proj`/`v_proj` (GPT-2's attention is a fused `Conv1D`, not the
  `nn.Linear` PEFT and FTL wrap): (a) PEFT's `LoraConfig` vs (b) FTL's `lora` module, with the
  same initial `lora_A`/`lora_B`, both trained on the SFT loss.

`python examples/python/train_with_ftl.py [--plot docs/training_curves.png]` prints the
per-step losses and the largest relative differences; the test suite runs the same functions
(`compiler/python/tests/test_training.py`) and asserts per-step losses and final weights agree
to 1e-4 relative.
"""

from __future__ import annotations

import argparse
import copy
from collections import defaultdict
from types import SimpleNamespace

import torch
import torch.nn.functional as F

import ftl

STEPS = 30
PAIRS = 4  # preference pairs (or SFT sequences) per step
PROMPT, COMPLETION, VOCAB = 6, 10, 64


def tiny_gpt2(seed: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=2,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )
    return GPT2LMHeadModel(config).float()


def tiny_llama(seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32,
    )
    return LlamaForCausalLM(config).float()


def synthetic_batches(seed: int, n: int = STEPS):
    """Prompt + completion token sequences: `input_ids` [2P, T] (chosen rows, then rejected),
    `completion_mask` marking completion tokens, as TRL's DPO collator lays them out."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        prompt = torch.randint(0, VOCAB, (PAIRS, PROMPT), generator=g)
        chosen = torch.randint(0, VOCAB // 2, (PAIRS, COMPLETION), generator=g)  # a learnable preference
        rejected = torch.randint(VOCAB // 2, VOCAB, (PAIRS, COMPLETION), generator=g)
        ids = torch.cat([torch.cat([prompt, chosen], 1), torch.cat([prompt, rejected], 1)], 0)
        mask = torch.zeros_like(ids)
        mask[:, PROMPT:] = 1
        batches.append(dict(input_ids=ids, attention_mask=torch.ones_like(ids), completion_mask=mask))
    return batches


def shifted_labels(batch):
    """Next-token labels for the logits at positions 0..T-2: completion tokens, else -100."""
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    return labels[:, 1:]


def next_token_labels(batch):
    """The labels of every logits position, the last one ignored: shifting the labels instead
    of slicing the logits keeps the logits contiguous, so FTL reads them in place."""
    labels = torch.full_like(batch["input_ids"], -100)
    labels[:, :-1] = shifted_labels(batch)
    return labels


@torch.no_grad()
def reference_logps(ref_model, batch, labels):
    """The reference model's per-sequence log-probs of the labelled tokens (PyTorch)."""
    logits = ref_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    per_token = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (per_token * (labels != -100)).sum(-1)


class _Accelerator:
    device = torch.device("cpu")

    def gather_for_metrics(self, x):
        return x

    gather = gather_for_metrics

    def unwrap_model(self, model):
        return model


def trl_dpo_loss(model, ref_model, batch, beta):
    """TRL 1.16's `DPOTrainer._compute_loss` on `batch` (the trainer's state stubbed)."""
    from trl import DPOTrainer

    state = SimpleNamespace(
        model=model, ref_model=ref_model, accelerator=_Accelerator(), aux_loss_enabled=False,
        ld_alpha=None, precompute_ref_logps=False, args=SimpleNamespace(gradient_checkpointing_kwargs=None),
        f_divergence_type="reverse_kl", loss_types=["sigmoid"], loss_weights=[1.0], beta=beta,
        label_smoothing=0.0, use_weighting=False, _metrics=defaultdict(lambda: defaultdict(list)),
        _total_train_tokens=0, _tp_size=1,
    )
    return DPOTrainer._compute_loss(state, model, batch, return_outputs=False)


def add_trl_head(model):
    from trl.trainer.utils import add_fused_lm_head

    add_fused_lm_head(model, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
    return model


def trl_sft_loss(model, batch):
    """TRL 1.16's SFT loss (`SFTTrainer.compute_loss`, loss_type "nll"): -Σ log p over the
    completion tokens / their number, from the fused LM head."""
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels, fused_lm_head=True)
    per_token_loss = -outputs.log_probs
    return per_token_loss.sum() / outputs.label_mask.sum().clamp(min=1)


def _optimizer(params, lr=0.1):
    """SGD with momentum: its update is linear in the gradient, so the two runs' weights differ
    by as much as their gradients do (Adam's normalised update would turn a 1e-7 difference in a
    near-zero gradient into a step of `lr` either way)."""
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def chosen_only(batches):
    """SFT trains on the chosen completions."""
    return [{k: v[:PAIRS] for k, v in b.items()} for b in batches]


def run_dpo(beta: float = 0.1):
    """Returns (trl losses, ftl losses, trl model, ftl model)."""
    base = tiny_gpt2(0)
    ref = add_trl_head(copy.deepcopy(base).eval())
    model_a = add_trl_head(copy.deepcopy(base).train())
    model_b = copy.deepcopy(base).train()
    ref_b = copy.deepcopy(base).eval()
    dpo = ftl.load("std.objectives.dpo", "sigmoid_from_logits", beta=beta)
    opt_a, opt_b = _optimizer(model_a.parameters()), _optimizer(model_b.parameters())
    losses_a, losses_b = [], []
    for batch in synthetic_batches(1):
        opt_a.zero_grad()
        loss_a = trl_dpo_loss(model_a, ref, batch, beta)
        loss_a.backward()
        opt_a.step()
        losses_a.append(loss_a.item())

        opt_b.zero_grad()
        labels = next_token_labels(batch)
        ref_logps = reference_logps(ref_b, batch, labels)
        logits = model_b(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss_b, _ = dpo(
            chosen_logits=logits[:PAIRS], chosen_labels=labels[:PAIRS],
            rejected_logits=logits[PAIRS:], rejected_labels=labels[PAIRS:],
            ref_chosen_logps=ref_logps[:PAIRS], ref_rejected_logps=ref_logps[PAIRS:],
        )
        loss_b.backward()
        opt_b.step()
        losses_b.append(loss_b.item())
    return losses_a, losses_b, model_a, model_b


def run_sft():
    base = tiny_gpt2(2)
    model_a = add_trl_head(copy.deepcopy(base).train())
    model_b = copy.deepcopy(base).train()
    sft = ftl.load("std.objectives.sft", "sft")
    opt_a, opt_b = _optimizer(model_a.parameters()), _optimizer(model_b.parameters())
    losses_a, losses_b = [], []
    for batch in chosen_only(synthetic_batches(3)):
        opt_a.zero_grad()
        loss_a = trl_sft_loss(model_a, batch)
        loss_a.backward()
        opt_a.step()
        losses_a.append(loss_a.item())

        opt_b.zero_grad()
        logits = model_b(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss_b, _ = sft(logits=logits, labels=next_token_labels(batch))
        loss_b.backward()
        opt_b.step()
        losses_b.append(loss_b.item())
    return losses_a, losses_b, model_a, model_b


def run_lora(r: int = 4, alpha: float = 8.0):
    from peft import LoraConfig, get_peft_model

    base = tiny_llama(4)
    model_a = get_peft_model(
        copy.deepcopy(base), LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=["q_proj", "v_proj"])
    )
    model_a.train()
    model_b = copy.deepcopy(base).train()
    for p in model_b.parameters():
        p.requires_grad_(False)
    lora = ftl.load("std.adapters.lora", "lora")
    # The same initial adapter weights as PEFT's (its kaiming-uniform A, zero B).
    peft_layers = {n: m for n, m in model_a.named_modules() if hasattr(m, "lora_A") and isinstance(m.lora_A, torch.nn.ModuleDict)}
    for name, layer in peft_layers.items():
        path = name.split("base_model.model.", 1)[1]
        parent_path, attr = path.rsplit(".", 1)
        parent = model_b.get_submodule(parent_path)
        module = lora.module(
            getattr(parent, attr),
            lora_A=layer.lora_A["default"].weight.detach(),
            lora_B=layer.lora_B["default"].weight.detach(),
            lora_alpha=alpha,
        )
        setattr(parent, attr, module)
    opt_a = _optimizer([p for p in model_a.parameters() if p.requires_grad], lr=0.5)
    opt_b = _optimizer([p for p in model_b.parameters() if p.requires_grad], lr=0.5)
    losses_a, losses_b = [], []
    for batch in chosen_only(synthetic_batches(5)):
        labels = shifted_labels(batch).reshape(-1)
        for model, opt, losses in ((model_a, opt_a, losses_a), (model_b, opt_b, losses_b)):
            opt.zero_grad()
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
            loss = F.cross_entropy(logits.reshape(-1, VOCAB), labels, ignore_index=-100)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses_a, losses_b, model_a, model_b


def max_relative(a, b) -> float:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return ((a - b).abs() / b.abs().clamp(min=1e-12)).max().item()


def trainable(model) -> dict:
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plot", help="write the loss curves to this PNG")
    args = ap.parse_args()
    runs = {"DPO (TRL vs FTL)": run_dpo(), "SFT (TRL vs FTL)": run_sft(), "LoRA (PEFT vs FTL)": run_lora()}
    for name, (a, b, _, _) in runs.items():
        print(f"{name}: step 1 {a[0]:.6f} / {b[0]:.6f}, step {STEPS} {a[-1]:.6f} / {b[-1]:.6f}, "
              f"max relative difference {max_relative(a, b):.2e}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
        for ax, (name, (a, b, _, _)) in zip(axes, runs.items()):
            ax.plot(range(1, STEPS + 1), a, label=name.split("(")[1].split(" vs")[0], lw=3, alpha=0.5)
            ax.plot(range(1, STEPS + 1), b, "--", label="FTL", lw=1.5)
            ax.set_title(name.split(" (")[0])
            ax.set_xlabel("optimizer step")
            ax.legend()
        axes[0].set_ylabel("loss")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
