"""FTL from Python: compile an objective, adapter or sampling step from a ``.ftl`` file and call
it on PyTorch tensors or NumPy arrays.

    import ftl, torch
    dpo = ftl.load("std.objectives.dpo", "sigmoid_from_logits", beta=0.1)
    loss, metrics = dpo(chosen_logits=..., rejected_logits=..., chosen_labels=..., ...)
    loss.backward()          # fills .grad of every input that requires it

The compiler and the fused CPU kernels run in this process (the native module ``ftl._native``);
compiled kernels are kept in the compile cache that ``ftc run`` uses (``FTL_CACHE_DIR``).
Contiguous CPU inputs are read in place and outputs are handed over without a copy; a
non-contiguous input is copied once, with a warning. Kernels run with the GIL released on
``torch.get_num_threads()`` threads (or :func:`set_num_threads`).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import _native

__all__ = [
    "FtlError",
    "Entry",
    "Objective",
    "Adapter",
    "Step",
    "load",
    "set_num_threads",
    "library_dir",
]
__version__ = _native.__version__


class FtlError(Exception):
    """A user error from the compiler or the runtime: ``code`` is FTL's error code (``E0091``
    for inputs that do not match the entry; ``ftc explain CODE`` describes it) and ``message``
    the rendered diagnostics. Raised before any kernel runs, so no ``.grad`` is touched."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _native_call(f, *args):
    try:
        return f(*args)
    except _native.NativeError as e:
        code, text = e.args
        raise FtlError(code, text) from None


_threads: int | None = None


def set_num_threads(n: int | None) -> None:
    """Bound the kernels' threads to ``n`` (``None``: follow ``torch.get_num_threads()``, or
    every core when PyTorch is not imported)."""
    global _threads
    _threads = None if n is None else max(1, int(n))


def _num_threads() -> int:
    if _threads is not None:
        return _threads
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    return os.cpu_count() or 1


def library_dir() -> Path:
    """The standard library that ``import std.…`` and ``load("std.…")`` read."""
    return Path(_native.library_dir())


def _source_path(source: str | os.PathLike) -> Path:
    """A ``.ftl`` path, or a module name such as ``std.objectives.dpo``."""
    text = os.fspath(source)
    if text.endswith(".ftl") or os.sep in text or os.path.exists(text):
        return Path(text)
    parts = text.split(".")
    if parts[0] == "std" and len(parts) > 1:
        return library_dir().joinpath(*parts[1:]).with_suffix(".ftl")
    return Path(text)


def _setting(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return f"{name}={'true' if value else 'false'}"
    if isinstance(value, (int, float, str)):
        return f"{name}={value}"
    raise FtlError("E0092", f"setting `{name}` must be a number, a bool or a name, not {type(value).__name__}")


# FTL dtype names <-> NumPy and PyTorch dtypes.
_NUMPY = {
    np.dtype("float64"): "f64",
    np.dtype("float32"): "f32",
    np.dtype("float16"): "f16",
    np.dtype("int64"): "i64",
    np.dtype("int32"): "i32",
    np.dtype("bool"): "bool",
}


_TORCH_DTYPES: dict = {}


def _torch_dtypes() -> dict:
    """PyTorch dtypes -> FTL dtype names (built once, after PyTorch is imported)."""
    if not _TORCH_DTYPES:
        import torch

        _TORCH_DTYPES.update(
            {
                torch.float64: "f64",
                torch.float32: "f32",
                torch.bfloat16: "bf16",
                torch.float16: "f16",
                torch.int64: "i64",
                torch.int32: "i32",
                torch.bool: "bool",
            }
        )
    return _TORCH_DTYPES


_TENSOR_TYPE: list = []


def _is_torch(value) -> bool:
    if not _TENSOR_TYPE:
        torch = sys.modules.get("torch")
        if torch is None:
            return False
        _TENSOR_TYPE.append(torch.Tensor)
    return isinstance(value, _TENSOR_TYPE[0])


class _Arg:
    __slots__ = ("name", "dtype", "dims", "required", "role", "default")

    def __init__(self, name, dtype, dims, required, role, default):
        self.name, self.dtype, self.dims = name, dtype, dims
        self.required, self.role, self.default = required, role, default

    @property
    def is_scalar(self) -> bool:
        return not self.dims


class Entry:
    """A loaded entry. Each distinct set of optional inputs (and, for adapters, whether
    gradients are wanted) is one compiled variant, compiled on first use."""

    #: Whether the variant compiled at load (no optional inputs) is the one with gradients.
    _load_with_grad = True

    def __init__(self, path: Path, entry: str, sets: list[str], lib, root, first=None):
        self._path, self._entry, self._sets = path, entry, sets
        self._lib, self._root = lib, root
        self._variants: dict[tuple, Any] = {}
        self._copied: set[str] = set()
        #: Milliseconds the last call's kernels and library routines took (the rest of a
        #: call's time is the bridge: argument checks, binding, handing outputs over).
        self.last_kernel_ms = 0.0
        if first is None:
            first = self._variant(((), ()), self._load_with_grad)
        self._variants[(((), ()), self._load_with_grad)] = first
        self.name: str = first.name
        self.kind: str = first.kind
        self._args = [_Arg(*a) for a in first.args]
        self._by_name = {a.name: a for a in self._args}
        # Optional inputs the load-time variant was not compiled for.
        for name, dtype, optional, scalar in first.params:
            if optional and name not in self._by_name:
                dims = [] if scalar else ["?"]
                self._by_name[name] = _Arg(name, dtype, dims, False, "scalar" if scalar else "input", None)
        self._optional = {name for name, _, optional, _ in first.params if optional}
        self._metric_names = [n[len("metric.") :] for n, _, _ in first.outputs if n.startswith("metric.")]
        if self.kind == "objective" and "torch" in sys.modules:
            from . import _compile

            _compile.OBJECTIVES[id(self)] = self

    def _variant(self, key: tuple, grad: bool):
        present, dtypes = key
        v = self._variants.get((key, grad))
        if v is None:
            v = _native_call(
                _native.compile,
                str(self._path),
                self._entry,
                self._sets,
                list(present),
                list(dtypes),
                grad,
                self._lib,
                self._root,
            )
            self._variants[(key, grad)] = v
        return v

    @property
    def args(self) -> list[tuple]:
        """``(name, dtype, dims, required, role)`` of each argument."""
        return [(a.name, a.dtype, a.dims, a.required, a.role) for a in self._args]

    def _prepare(self, inputs: dict[str, Any]):
        """Splits inputs into tensor memory and scalars; errors name the argument."""
        unknown = sorted(n for n in inputs if n not in self._by_name)
        if unknown:
            names = ", ".join(self._by_name)
            raise FtlError(
                "E0091",
                "".join(f"error[E0091]: input `{n}` is not read by `{self.name}` (it reads: {names})\n" for n in unknown),
            )
        raw, scalars, keep = [], [], []
        for name, value in inputs.items():
            if value is None:
                continue
            arg = self._by_name[name]
            if arg.is_scalar and not isinstance(value, np.ndarray) and (not _is_torch(value) or value.dim() == 0):
                scalars.append((name, self._number(name, value)))
                continue
            t, entry = self._memory(name, value)
            keep.append(t)
            raw.append(entry)
        return raw, scalars, keep

    @staticmethod
    def _number(name, value) -> float:
        try:
            return float(value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError):
            raise FtlError("E0091", f"error[E0091]: input `{name}` must be a number, not {type(value).__name__}\n") from None

    def _memory(self, name, value):
        if _is_torch(value):
            if value.device.type != "cpu":
                raise FtlError(
                    "E0091",
                    f"error[E0091]: input `{name}` is on {value.device}; this build of FTL runs on the CPU\n",
                )
            dtype = _torch_dtypes().get(value.dtype)
            if dtype is None:
                raise FtlError("E0091", f"error[E0091]: input `{name}` has dtype {value.dtype}, which FTL does not have\n")
            t = value
            if not t.is_contiguous():
                self._warn_copy(name)
                t = t.detach().contiguous()
            return t, (name, t.data_ptr(), t.nbytes, dtype, list(t.shape))
        a = np.asarray(value)
        dtype = _NUMPY.get(a.dtype)
        if dtype is None:
            raise FtlError("E0091", f"error[E0091]: input `{name}` has dtype {a.dtype}, which FTL does not have\n")
        if not (a.flags.c_contiguous and a.flags.aligned):
            self._warn_copy(name)
            a = np.ascontiguousarray(a)
        return a, (name, a.__array_interface__["data"][0], a.nbytes, dtype, list(a.shape))

    def _warn_copy(self, name):
        if name not in self._copied:
            self._copied.add(name)
            warnings.warn(
                f"ftl: input `{name}` of `{self.name}` is not contiguous; it is copied on every call",
                stacklevel=4,
            )

    def _variant_key(self, inputs, raw) -> tuple:
        """What picks the compiled variant: the optional inputs given, and the dtype of each
        tensor given in another dtype than declared (compiled to read it in place)."""
        present = tuple(sorted(n for n, v in inputs.items() if v is not None and n in self._optional))
        dtypes = tuple(sorted((r[0], r[3]) for r in raw if r[3] != self._by_name[r[0]].dtype))
        return present, dtypes

    def _run(self, inputs: dict[str, Any], grad: bool, as_torch: bool) -> dict[str, Any]:
        raw, scalars, keep = self._prepare(inputs)
        variant = self._variant(self._variant_key(inputs, raw), grad)
        buffers, self.last_kernel_ms = _native_call(variant.run, raw, scalars, _num_threads())
        del keep  # the inputs' memory was borrowed until here
        return {name: _adopt(b, as_torch) for name, b in buffers}

    def _wants_torch(self, inputs) -> bool:
        return any(_is_torch(v) for v in inputs.values())


def _adopt(buffer, as_torch: bool):
    a = np.asarray(buffer)
    if not as_torch:
        return a
    import torch

    t = torch.from_numpy(a)
    return t.view(torch.bfloat16) if buffer.dtype == "bf16" else t


class Step(Entry):
    """A ``step`` (sampling rules, inits, merges): a plain call returning its outputs, a dict
    by name (the tensor itself when there is one output)."""

    _load_with_grad = False

    def __call__(self, **inputs):
        out = self._run(inputs, grad=False, as_torch=self._wants_torch(inputs))
        return next(iter(out.values())) if len(out) == 1 else out


class Objective(Entry):
    """An ``objective``: ``loss, metrics = obj(**inputs)``. With PyTorch inputs that require
    gradients, ``loss.backward()`` fills their ``.grad`` (scaled by the incoming gradient);
    the forward and backward kernels run together in the call. Under ``torch.compile`` the call
    is a ``torch.library`` custom op (``ftl._compile``), so the graph does not break at it."""

    def __call__(self, **inputs):
        torch = sys.modules.get("torch")
        if torch is not None and torch.compiler.is_compiling():
            from . import _compile

            return _compile.call(self, inputs)
        differentiable = [
            n for n, v in inputs.items() if _is_torch(v) and v.requires_grad and self._by_name.get(n, None) is not None
        ]
        if torch is not None and differentiable and torch.is_grad_enabled():
            names = list(inputs)
            loss, *metrics = _ObjectiveFunction.apply(self, names, *inputs.values())
            return loss, dict(zip(self._metric_names, metrics))
        out = self._run(inputs, grad=False, as_torch=self._wants_torch(inputs))
        return out["loss"], {k[len("metric.") :]: v for k, v in out.items() if k.startswith("metric.")}


def _function_classes():
    import torch

    class ObjectiveFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, objective, names, *values):
            out = objective._run(dict(zip(names, values)), grad=True, as_torch=True)
            ctx.grads = [out.get(f"grad.{n}") for n in names]
            metrics = [out[f"metric.{m}"] for m in objective._metric_names]
            ctx.mark_non_differentiable(*metrics)
            return (out["loss"], *metrics)

        @staticmethod
        def backward(ctx, g_loss, *_metric_grads):
            unit = g_loss.numel() == 1 and float(g_loss) == 1.0
            grads = [
                None if (g is None or not need) else (g if unit else g * g_loss.to(g.dtype))
                for g, need in zip(ctx.grads, ctx.needs_input_grad[2:])
            ]
            ctx.grads = None
            return (None, None, *grads)

    class AdapterFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, adapter, names, *values):
            inputs = dict(zip(names, values))
            out = adapter._run(inputs, grad=False, as_torch=True)
            ctx.adapter, ctx.names = adapter, names
            ctx.save_for_backward(*(v if _is_torch(v) else None for v in values))
            ctx.scalars = {n: v for n, v in inputs.items() if not _is_torch(v)}
            ctx.outputs = [k for k in out if not k.startswith("grad.")]
            return tuple(out[k] for k in ctx.outputs)

        @staticmethod
        def backward(ctx, *upstream):
            saved = ctx.saved_tensors
            inputs = {n: v for n, v in zip(ctx.names, saved) if v is not None}
            inputs.update(ctx.scalars)
            for name, g in zip(ctx.outputs, upstream):
                inputs[f"grad.{name}"] = g.contiguous()
            out = ctx.adapter._run(inputs, grad=True, as_torch=True)
            return (
                None,
                None,
                *[out.get(f"grad.{n}") if need else None for n, need in zip(ctx.names, ctx.needs_input_grad[2:])],
            )

    return ObjectiveFunction, AdapterFunction


class _Lazy:
    """The autograd functions, defined on first use (PyTorch is optional)."""

    def __init__(self, index):
        self.index = index
        self.cls = None

    def apply(self, *args):
        if self.cls is None:
            self.cls = _function_classes()[self.index]
        return self.cls.apply(*args)


_ObjectiveFunction = _Lazy(0)
_AdapterFunction = _Lazy(1)


class Adapter(Entry):
    """An ``adapter``: ``y = adapter(x=..., weight=..., lora_A=..., ...)`` is differentiable
    in ``x`` and every ``param``; :meth:`module` wraps an ``nn.Linear`` as a ``torch.nn.Module``
    whose adapter weights are registered parameters."""

    def __call__(self, **inputs):
        torch = sys.modules.get("torch")
        needs = any(_is_torch(v) and v.requires_grad for v in inputs.values())
        if torch is not None and needs and torch.is_grad_enabled():
            outs = _AdapterFunction.apply(self, list(inputs), *inputs.values())
        else:
            out = self._run(inputs, grad=False, as_torch=self._wants_torch(inputs))
            outs = tuple(v for k, v in out.items() if not k.startswith("grad."))
        return outs[0] if len(outs) == 1 else outs

    def _companion(self, suffix: str):
        short = self._entry.split(".")[-1]
        return Step(self._path, f"{short}.{suffix}", self._sets, self._lib, self._root)

    def module(self, base, **params):
        """A ``torch.nn.Module`` computing this adapter around ``base`` (an ``nn.Linear``, or the
        norm layer LN tuning adapts): ``weight``/``bias`` come from ``base`` (frozen), adapter
        weights from ``params`` or, when not given, from the adapter's ``init``
        (``<adapter>.init``) run on the base's weight (and bias, when the init reads it)."""
        from ._module import AdapterModule

        return AdapterModule(self, base, params)


def load(source, entry: str, *, lib=None, root=None, **settings):
    """Compile ``entry`` of ``source`` (a ``.ftl`` path or a module name such as
    ``std.objectives.dpo``) with static options and scalar settings (``beta=0.1``); returns an
    :class:`Objective`, :class:`Adapter` or :class:`Step`. Raises :class:`FtlError`."""
    path = _source_path(source)
    sets = [_setting(k, v) for k, v in settings.items()]
    lib = None if lib is None else os.fspath(lib)
    root = None if root is None else os.fspath(root)
    # Compiled with gradients: a step has none, so this is every kind's load-time variant.
    first = _native_call(_native.compile, str(path), entry, sets, [], [], True, lib, root)
    cls = {"objective": Objective, "adapter": Adapter}.get(first.kind, Step)
    return cls(path, entry, sets, lib, root, first)
