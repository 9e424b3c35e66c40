"""Adapters as ``torch.nn.Module``s (imported only when PyTorch is used)."""

from __future__ import annotations

import torch
from torch import nn


class AdapterModule(nn.Module):
    """An FTL adapter around an ``nn.Linear``: ``forward(x)`` calls the adapter with the base
    layer's ``weight`` and ``bias`` (frozen, not copied) and the adapter's parameters, which are
    registered so any optimizer trains them. ``merge()``/``unmerge()`` run the adapter's
    ``merge``/``unmerge`` steps on the base weight in place."""

    def __init__(self, adapter, base: nn.Linear, params: dict):
        super().__init__()
        self.adapter = adapter
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        names = [a[0] for a in adapter.args if a[4] == "param"]
        self.hyper = {k: v for k, v in params.items() if k not in names}
        given = {k: v for k, v in params.items() if k in names}
        if len(given) < len(names):
            init = adapter._companion("init")
            produced = init(weight=base.weight.detach(), **_settings_for(init, self.hyper))
            produced = produced if isinstance(produced, dict) else {names[0]: produced}
            given = {**produced, **given}
        for name in names:
            value = torch.as_tensor(given[name], dtype=base.weight.dtype).clone()
            self.register_parameter(name, nn.Parameter(value))
        self._param_names = names

    def _params(self) -> dict:
        return {n: getattr(self, n) for n in self._param_names}

    def _base(self) -> dict:
        out = {"weight": self.base.weight}
        if self.base.bias is not None:
            out["bias"] = self.base.bias
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(x=x, **self._base(), **self._params(), **_settings_for(self.adapter, self.hyper))

    @torch.no_grad()
    def _rewrite(self, which: str) -> None:
        step = self.adapter._companion(which)
        weight = step(**self._base(), **self._params(), **_settings_for(step, self.hyper))
        weight = weight["weight"] if isinstance(weight, dict) else weight
        self.base.weight.copy_(weight)

    def merge(self) -> None:
        """``W ← merged W`` (the adapter's ``merge`` step)."""
        self._rewrite("merge")

    def unmerge(self) -> None:
        """``W ← unmerged W`` (the adapter's ``unmerge`` step)."""
        self._rewrite("unmerge")


def _settings_for(entry, hyper: dict) -> dict:
    """The hyperparameters `entry` (the adapter or a companion step) reads."""
    names = {a[0] for a in entry.args}
    return {k: v for k, v in hyper.items() if k in names}
