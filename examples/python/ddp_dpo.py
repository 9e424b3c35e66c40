#!/usr/bin/env python3
"""DPO with FTL's kernels under PyTorch's distributed engine: DDP over gloo, FTL computing the
loss and its gradients on every rank, PyTorch all-reducing the gradients.

    torchrun --nproc_per_node 2 examples/python/ddp_dpo.py --out ddp.pt
    python examples/python/ddp_dpo.py --out single.pt        # one process, the combined batch

Each rank takes its share of every batch of preference pairs; DDP averages the gradients, which
for equal shares is the gradient of the combined batch's mean loss, so the per-step losses
(averaged over ranks) and the final weights equal the single process's
(`compiler/python/tests/test_training.py` checks 1e-5 relative).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys

import torch
import torch.distributed as dist

import ftl
from train_with_ftl import PAIRS, next_token_labels, reference_logps, synthetic_batches, tiny_gpt2


def train(rank: int, world: int, beta: float = 0.1, lr: float = 0.1):
    base = tiny_gpt2(0)
    ref = copy.deepcopy(base).eval()
    model = copy.deepcopy(base).train()
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    dpo = ftl.load("std.objectives.dpo", "sigmoid_from_logits", beta=beta)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    share = PAIRS // world
    losses = []
    for batch in synthetic_batches(1):
        # This rank's pairs: rows [lo, hi) of the chosen half and the same rows of the rejected half.
        lo, hi = rank * share, (rank + 1) * share
        rows = torch.cat([torch.arange(lo, hi), PAIRS + torch.arange(lo, hi)])
        local = {k: v[rows] for k, v in batch.items()}
        labels = next_token_labels(local)
        ref_logps = reference_logps(ref, local, labels)
        opt.zero_grad()
        logits = model(input_ids=local["input_ids"], attention_mask=local["attention_mask"]).logits
        loss, _ = dpo(
            chosen_logits=logits[:share], chosen_labels=labels[:share],
            rejected_logits=logits[share:], rejected_labels=labels[share:],
            ref_chosen_logps=ref_logps[:share], ref_rejected_logps=ref_logps[share:],
        )
        loss.backward()  # DDP all-reduces (averages) the gradients here
        opt.step()
        logged = loss.detach().clone()
        if world > 1:
            dist.all_reduce(logged)
            logged /= world
        losses.append(logged.item())
    weights = (model.module if world > 1 else model).state_dict()
    return losses, {k: v.detach().clone() for k, v in weights.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="where rank 0 saves the losses and final weights")
    args = ap.parse_args()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("gloo")
        torch.set_num_threads(1)
        ftl.set_num_threads(1)  # one core per rank: the ranks share the machine
    losses, weights = train(rank, world)
    if rank == 0:
        torch.save({"losses": losses, "weights": weights, "world": world}, args.out)
        print(f"world {world}: step 1 loss {losses[0]:.6f}, step {len(losses)} loss {losses[-1]:.6f}")
    if world > 1:
        dist.destroy_process_group()
        # Leave without the interpreter's teardown: about one rank in six then aborted with
        # "terminate called without an active exception" once FTL had run in the process (not
        # without it); the results are saved and the group is closed, so nothing is lost.
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
