"""Objectives as a ``torch.library`` custom op, for ``torch.compile``.

While ``torch.compile`` traces a model, an objective call becomes one call of the custom op
``ftl::objective(tensors, handle, key)``: ``handle`` names the loaded objective, ``key`` the
tensor inputs' names and the scalar settings (constants of the graph). Its fake implementation
gives the outputs' shapes from the inputs' (compiling the variant if needed, outside the
trace), so the graph does not break at the call, and its autograd formula hands back the
gradients the kernels computed with the loss. In eager mode the cheaper
``torch.autograd.Function`` path of ``ftl.Objective`` is used instead.

The op returns ``[loss, *metrics (in the entry's order), *one gradient per tensor input]``; an
input without a gradient (labels, ``const`` inputs) gets an empty tensor in its place.
"""

from __future__ import annotations

import torch

#: Objectives used under ``torch.compile``, by ``id`` (the op's ``handle``).
OBJECTIVES: dict = {}

_DTYPES = {
    "f64": torch.float64,
    "f32": torch.float32,
    "bf16": torch.bfloat16,
    "f16": torch.float16,
    "i64": torch.int64,
    "i32": torch.int32,
    "bool": torch.bool,
}


def _decode(handle: int, key: str):
    objective = OBJECTIVES[handle]
    names_text, _, scalars_text = key.partition("|")
    names = names_text.split(",") if names_text else []
    scalars = {}
    for item in filter(None, scalars_text.split(";")):
        name, _, value = item.partition("=")
        scalars[name] = float(value)
    return objective, names, scalars


def _variant(objective, names, tensors, scalars):
    from . import _torch_dtypes

    given = set(names) | set(scalars)
    present = tuple(sorted(n for n in given if n in objective._optional))
    differing = tuple(
        sorted(
            (n, _torch_dtypes()[t.dtype])
            for n, t in zip(names, tensors)
            if _torch_dtypes()[t.dtype] != objective._by_name[n].dtype
        )
    )
    return objective._variant((present, differing), True)


def _bind(objective, names, tensors) -> dict:
    """Dim name -> size (a pack's name -> its sizes), from the tensor inputs' shapes."""
    sizes: dict = {}
    for name, t in zip(names, tensors):
        dims = objective._by_name[name].dims
        pack = next((k for k, d in enumerate(dims) if d.startswith("..")), None)
        shape = list(t.shape)
        if pack is None:
            sizes.update({d: s for d, s in zip(dims, shape) if not d.isdigit()})
        else:
            extra = len(shape) - (len(dims) - 1)
            sizes.update({d: s for d, s in zip(dims[:pack], shape[:pack])})
            sizes[dims[pack]] = shape[pack : pack + extra]
            sizes.update({d: s for d, s in zip(dims[pack + 1 :], shape[pack + extra :])})
    return sizes


@torch.library.custom_op("ftl::objective", mutates_args=())
def objective_op(tensors: list[torch.Tensor], handle: int, key: str) -> list[torch.Tensor]:
    objective, names, scalars = _decode(handle, key)
    out = objective._run({**dict(zip(names, tensors)), **scalars}, grad=True, as_torch=True)
    grads = [out[f"grad.{n}"] if f"grad.{n}" in out else t.new_empty(0) for n, t in zip(names, tensors)]
    return [out["loss"], *(out[f"metric.{m}"] for m in objective._metric_names), *grads]


@objective_op.register_fake
def _(tensors, handle, key):
    objective, names, scalars = _decode(handle, key)
    outputs = {n: (dtype, dims) for n, dtype, dims in _variant(objective, names, tensors, scalars).outputs}
    sizes = _bind(objective, names, tensors)

    def fake(name):
        dtype, dims = outputs[name]
        shape = []
        for d in dims:
            if d not in sizes:
                raise RuntimeError(f"ftl: the size of `{d}` in output `{name}` is not an input's dim")
            shape.extend(sizes[d] if isinstance(sizes[d], list) else [sizes[d]])
        return tensors[0].new_empty(shape, dtype=_DTYPES[dtype])

    grads = [fake(f"grad.{n}") if f"grad.{n}" in outputs else t.new_empty(0) for n, t in zip(names, tensors)]
    return [fake("loss"), *(fake(f"metric.{m}") for m in objective._metric_names), *grads]


def _setup_context(ctx, inputs, output):
    tensors, handle, key = inputs
    objective = OBJECTIVES[handle]
    ctx.grads = output[1 + len(objective._metric_names) :]
    ctx.differentiable = [g.numel() > 0 or t.numel() == 0 for g, t in zip(ctx.grads, tensors)]


def _backward(ctx, grads):
    g = grads[0]
    return (
        [gr * g.to(gr.dtype) if keep and gr.numel() > 0 else None for gr, keep in zip(ctx.grads, ctx.differentiable)],
        None,
        None,
    )


objective_op.register_autograd(_backward, setup_context=_setup_context)


def call(objective, inputs: dict):
    """``objective(**inputs)`` through the custom op (while ``torch.compile`` traces)."""
    names = [n for n, v in inputs.items() if isinstance(v, torch.Tensor) and not objective._by_name[n].is_scalar]
    scalars = ";".join(f"{n}={float(v)}" for n, v in inputs.items() if n not in names and v is not None)
    key = ",".join(names) + "|" + scalars
    outs = objective_op([inputs[n] for n in names], id(objective), key)
    metrics = dict(zip(objective._metric_names, outs[1 : 1 + len(objective._metric_names)]))
    return outs[0], metrics
