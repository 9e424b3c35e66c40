"""Adapters as ``torch.nn.Module``s (imported only when PyTorch is used)."""

from __future__ import annotations

import torch
from torch import nn


class AdapterModule(nn.Module):
    """An FTL adapter around a base layer with ``weight`` (and ``bias``): an ``nn.Linear``, or a
    norm layer for LN tuning. ``forward(x)`` calls the adapter with the base layer's ``weight``
    and ``bias`` (frozen, not copied) and the adapter's parameters, which are registered so any
    optimizer trains them. ``merge()``/``unmerge()`` run the adapter's ``merge``/``unmerge``
    steps in place on whatever they write: the base's weight and bias, and adapter parameters."""

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
            consts = {k: v.detach() for k, v in self._base().items() if k in _arg_names(init)}
            produced = init(**consts, **_settings_for(init, self.hyper))
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
        if getattr(self.base, "bias", None) is not None:
            out["bias"] = self.base.bias
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(x=x, **self._base(), **self._params(), **_settings_for(self.adapter, self.hyper))

    @torch.no_grad()
    def _rewrite(self, which: str) -> None:
        step = self.adapter._companion(which)
        written = step(**self._base(), **self._params(), **_settings_for(step, self.hyper))
        written = written if isinstance(written, dict) else {"weight": written}
        # Computed from the old values first, then copied: a swap (LN tuning) reads both sides.
        for name, value in written.items():
            if name in self._param_names:
                getattr(self, name).copy_(value)
            elif getattr(self.base, name, None) is not None:
                getattr(self.base, name).copy_(value)

    def merge(self) -> None:
        """``W ← merged W`` (the adapter's ``merge`` step)."""
        self._rewrite("merge")

    def unmerge(self) -> None:
        """``W ← unmerged W`` (the adapter's ``unmerge`` step)."""
        self._rewrite("unmerge")


def _arg_names(entry) -> set:
    """The argument names of `entry`."""
    return {a[0] for a in entry.args}


def _settings_for(entry, hyper: dict) -> dict:
    """The hyperparameters `entry` (the adapter or a companion step) reads."""
    names = _arg_names(entry)
    return {k: v for k, v in hyper.items() if k in names}
