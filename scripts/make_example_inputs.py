#!/usr/bin/env python3
"""Writes the small safetensors inputs shipped in examples/data (standard library only).

Values are drawn from Python's `random` with fixed seeds, so rerunning rewrites identical files.
"""
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "examples", "data")
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
from safetensors_plain import write_safetensors as write  # noqa: E402

def normal(rng, n, scale=1.0):
    return [rng.gauss(0.0, scale) for _ in range(n)]


def dpo(rng):
    b, t, v = 2, 6, 16
    labels = lambda: [rng.randrange(v) if rng.random() > 0.15 else -100 for _ in range(b * t)]
    write(os.path.join(OUT, "dpo_logits.safetensors"), [
        ("chosen_logits", "F32", [b, t, v], normal(rng, b * t * v, 2.0)),
        ("chosen_labels", "I32", [b, t], labels()),
        ("rejected_logits", "F32", [b, t, v], normal(rng, b * t * v, 2.0)),
        ("rejected_labels", "I32", [b, t], labels()),
        ("ref_chosen_logps", "F32", [b], [-20.0, -18.5]),
        ("ref_rejected_logps", "F32", [b], [-19.0, -21.0]),
    ])


def lora(rng):
    n, i, o, r = 3, 4, 5, 2
    write(os.path.join(OUT, "lora.safetensors"), [
        ("x", "F32", [n, i], normal(rng, n * i)),
        ("weight", "F32", [o, i], normal(rng, o * i, 0.5)),
        ("lora_A", "F32", [r, i], normal(rng, r * i, 0.5)),
        ("lora_B", "F32", [o, r], normal(rng, o * r, 0.1)),
        ("grad.y", "F32", [n, o], normal(rng, n * o)),
    ])


def lcm(rng):
    """Inputs of std.sampling.lcm's `lcm_step` (first of LCM's 4 steps: 999 -> 759)."""
    shape = [2, 4]
    write(os.path.join(OUT, "lcm.safetensors"), [
        ("model_output", "F32", shape, normal(rng, 8)),
        ("sample", "F32", shape, normal(rng, 8)),
        ("noise", "F32", shape, normal(rng, 8)),
        ("timestep", "I32", [], [999]),
        ("prev_timestep", "I32", [], [759]),
        ("last_step", "BOOL", [], [False]),
    ])


def flow_lcm(rng):
    shape = [2, 4]
    write(os.path.join(OUT, "flow_lcm.safetensors"), [
        ("model_output", "F32", shape, normal(rng, 8)),
        ("sample", "F32", shape, normal(rng, 8)),
        ("noise", "F32", shape, normal(rng, 8)),
        ("sigma", "F32", [], [0.75]),
        ("sigma_next", "F32", [], [0.5]),
    ])


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    dpo(random.Random(1))
    lora(random.Random(2))
    lcm(random.Random(3))
    flow_lcm(random.Random(4))
