"""The `ftl` package end to end: entries compiled in process and called on PyTorch tensors and
NumPy arrays, against the same math written in PyTorch eager (the reference)."""

import warnings

import numpy as np
import pytest
import torch

import ftl

B, T, V = 2, 5, 7


def _logits(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, V, generator=g).to(dtype)


def _labels(seed=1, dtype=torch.int64):
    g = torch.Generator().manual_seed(seed)
    lab = torch.randint(0, V, (B, T), generator=g)
    lab[0, 0] = -100  # ignored, as TRL pads prompts
    return lab.to(dtype)


def _seq_logps(logits, labels):
    """TRL's per-sequence log-probs (sum over non-ignored tokens), in f32."""
    mask = labels != -100
    safe = torch.where(mask, labels, 0).long()
    lp = torch.log_softmax(logits.float(), -1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return (lp * mask).sum(-1)


def _dpo_reference(cl, rl, clab, rlab, rc, rr, beta):
    chosen = beta * (_seq_logps(cl, clab) - rc)
    rejected = beta * (_seq_logps(rl, rlab) - rr)
    return -torch.nn.functional.logsigmoid(chosen - rejected).mean(), chosen, rejected


@pytest.fixture(scope="module")
def dpo():
    return ftl.load("std.objectives.dpo", "sigmoid_from_logits", beta=0.1)


def _dpo_inputs(dtype=torch.float32, label_dtype=torch.int64):
    return dict(
        chosen_logits=_logits(dtype, 0).requires_grad_(),
        rejected_logits=_logits(dtype, 1).requires_grad_(),
        chosen_labels=_labels(2, label_dtype),
        rejected_labels=_labels(3, label_dtype),
        ref_chosen_logps=torch.tensor([-20.0, -18.5]),
        ref_rejected_logps=torch.tensor([-19.0, -21.0]),
    )


def test_load_describes_the_entry(dpo):
    assert dpo.kind == "objective"
    assert dpo.name == "dpo::sigmoid_from_logits"
    names = [a[0] for a in dpo.args]
    assert names[:2] == ["chosen_logits", "chosen_labels"]


def test_dpo_matches_pytorch_and_backward_scales_by_the_incoming_gradient(dpo):
    x = _dpo_inputs()
    loss, metrics = dpo(**x)
    assert loss.grad_fn is not None
    (3.0 * loss).backward()
    cl = x["chosen_logits"].detach().clone().requires_grad_()
    rl = x["rejected_logits"].detach().clone().requires_grad_()
    ref, chosen, rejected = _dpo_reference(
        cl, rl, x["chosen_labels"], x["rejected_labels"], x["ref_chosen_logps"], x["ref_rejected_logps"], 0.1
    )
    (3.0 * ref).backward()
    torch.testing.assert_close(loss.detach(), ref.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(x["chosen_logits"].grad, cl.grad, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(x["rejected_logits"].grad, rl.grad, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(metrics["rewards_margins"], (chosen - rejected).mean().detach(), rtol=1e-5, atol=1e-7)
    assert set(metrics) >= {"rewards_chosen", "rewards_rejected", "rewards_accuracies", "rewards_margins"}


def test_gradients_accumulate_like_pytorch(dpo):
    x = _dpo_inputs()
    for _ in range(2):
        loss, _ = dpo(**x)
        loss.backward()
    once = _dpo_inputs()
    loss, _ = dpo(**once)
    loss.backward()
    torch.testing.assert_close(x["chosen_logits"].grad, 2 * once["chosen_logits"].grad)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_16_bit_logits_and_int64_labels_read_in_place(dpo, dtype):
    x = _dpo_inputs(dtype, torch.int64)
    loss, _ = dpo(**x)
    loss.backward()
    cl = x["chosen_logits"].detach().clone().requires_grad_()
    rl = x["rejected_logits"].detach().clone().requires_grad_()
    ref, _, _ = _dpo_reference(
        cl, rl, x["chosen_labels"], x["rejected_labels"], x["ref_chosen_logps"], x["ref_rejected_logps"], 0.1
    )
    ref.backward()
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.detach(), ref.detach(), rtol=1e-6, atol=1e-7)
    # The gradient has its tensor's dtype; computed in f32, rounded once (as PyTorch does).
    assert x["chosen_logits"].grad.dtype == dtype
    torch.testing.assert_close(x["chosen_logits"].grad, cl.grad, rtol=1e-2, atol=1e-5)


def test_no_grad_calls_run_the_forward_only(dpo):
    x = _dpo_inputs()
    with torch.no_grad():
        loss, metrics = dpo(**x)
    ref, _, _ = _dpo_reference(
        x["chosen_logits"], x["rejected_logits"], x["chosen_labels"], x["rejected_labels"],
        x["ref_chosen_logps"], x["ref_rejected_logps"], 0.1,
    )
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-6, atol=1e-7)
    assert x["chosen_logits"].grad is None


def test_an_optional_scalar_given_at_call_time_picks_its_variant(dpo):
    def inputs():
        x = _dpo_inputs()
        x["rejected_labels"][1, 3:] = -100  # a shorter rejected completion: a tail to weigh
        return x

    loss, _ = dpo(**inputs(), ld_alpha=1.0)  # LD-DPO with alpha 1 is plain DPO
    ref, _ = dpo(**inputs())
    torch.testing.assert_close(loss, ref)
    half, _ = dpo(**inputs(), ld_alpha=0.5)
    assert abs(half.item() - ref.item()) > 1e-4


def test_scalar_settings_at_call_time(dpo):
    x = _dpo_inputs()
    loss, _ = dpo(**x, beta=0.5)
    ref, _, _ = _dpo_reference(
        x["chosen_logits"], x["rejected_logits"], x["chosen_labels"], x["rejected_labels"],
        x["ref_chosen_logps"], x["ref_rejected_logps"], 0.5,
    )
    torch.testing.assert_close(loss.detach(), ref.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "change, argument",
    [
        (lambda x: x.update(chosen_logits=x["chosen_logits"].detach().double().requires_grad_()), "chosen_logits"),
        (lambda x: x.update(rejected_labels=torch.zeros(B, T + 1, dtype=torch.int64)), "rejected_labels"),
        (lambda x: x.pop("ref_chosen_logps"), "ref_chosen_logps"),
        (lambda x: x.update(chosen_mask=torch.ones(B, T)), "chosen_mask"),
        (lambda x: x.update(beta="large"), "beta"),
    ],
    ids=["wrong dtype", "wrong shape", "missing", "unknown", "not a number"],
)
def test_wrong_inputs_raise_naming_the_argument_and_leave_grad_untouched(dpo, change, argument):
    x = _dpo_inputs()
    change(x)
    with pytest.raises(ftl.FtlError) as e:
        loss, _ = dpo(**x)
        loss.backward()
    assert e.value.code == "E0091"
    assert f"`{argument}`" in e.value.message
    assert all(v.grad is None for v in x.values() if isinstance(v, torch.Tensor))


def test_int64_labels_outside_int32_fail_instead_of_wrapping(dpo):
    x = _dpo_inputs()
    x["chosen_labels"][1, 2] = 2**32 + 3  # would wrap onto label 3
    with pytest.raises(ftl.FtlError) as e:
        dpo(**x)
    assert e.value.code == "E0094"
    assert x["chosen_logits"].grad is None


def test_non_contiguous_inputs_are_copied_with_one_warning(dpo):
    x = _dpo_inputs()
    wide = torch.randn(B, T, 2 * V)
    wide[..., :V] = x["chosen_logits"].detach()
    strided = wide[..., :V].requires_grad_()
    assert not strided.is_contiguous()
    x["chosen_logits"] = strided
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss, _ = dpo(**x)
        dpo(**x)
    assert sum("not contiguous" in str(w.message) for w in caught) == 1
    loss.backward()
    ref = _dpo_inputs()
    ref_loss, _ = dpo(**ref)
    ref_loss.backward()
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(strided.grad, ref["chosen_logits"].grad)


def test_numpy_arrays_in_numpy_arrays_out():
    sft = ftl.load("std.objectives.sft", "sft")
    logits = _logits().numpy()
    labels = _labels(dtype=torch.int32).numpy()
    loss, metrics = sft(logits=logits, labels=labels)
    assert isinstance(loss, np.ndarray)
    ref = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits).reshape(-1, V), torch.from_numpy(labels).long().reshape(-1), ignore_index=-100
    )
    np.testing.assert_allclose(loss, ref.numpy(), rtol=1e-6)
    assert metrics["num_tokens"] == (labels != -100).sum()


def test_compile_errors_raise_with_code_and_diagnostics(tmp_path):
    bad = tmp_path / "bad.ftl"
    bad.write_text("objective f(x: f32[B]) {\n    loss sum(x, C);\n}\n")
    with pytest.raises(ftl.FtlError) as e:
        ftl.load(bad, "f")
    assert e.value.code.startswith("E")
    assert "bad.ftl" in e.value.message
    with pytest.raises(ftl.FtlError) as e:
        ftl.load("std.objectives.dpo", "no_such_entry")
    assert e.value.code == "E0090"


def test_step_matches_the_ddim_formula():
    ddim = ftl.load("std.sampling.ddim", "ddim_step")
    assert ddim.kind == "step"
    g = torch.Generator().manual_seed(4)
    sample, eps = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    out = ddim(model_output=eps, sample=sample, noise=torch.zeros_like(sample), timestep=500, prev_timestep=480)
    prev = out["prev_sample"] if isinstance(out, dict) else out
    betas = torch.linspace(0.0001, 0.02, 1000, dtype=torch.float64)
    ac = torch.cumprod(1 - betas, 0)
    a_t, a_prev = ac[500], ac[480]
    x0 = ((sample.double() - (1 - a_t).sqrt() * eps.double()) / a_t.sqrt()).clamp(-1, 1)  # clip_sample
    ref = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps.double()
    torch.testing.assert_close(prev.double(), ref, rtol=1e-5, atol=1e-5)


def test_lora_module_trains_and_merges():
    torch.manual_seed(0)
    base = torch.nn.Linear(8, 6)
    lora = ftl.load("std.adapters.lora", "lora")
    assert lora.kind == "adapter"
    a0, b0 = torch.randn(2, 8) * 0.1, torch.randn(6, 2) * 0.1
    module = lora.module(base, lora_A=a0, lora_B=b0, lora_alpha=4.0)
    x = torch.randn(3, 5, 8, requires_grad=True)
    y = module(x)
    ref_a, ref_b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    ref = torch.nn.functional.linear(x_ref, base.weight, base.bias) + 2.0 * (x_ref @ ref_a.T @ ref_b.T)
    torch.testing.assert_close(y, ref.detach(), rtol=1e-5, atol=1e-6)
    upstream = torch.randn_like(ref)
    (y * upstream).sum().backward()
    (ref * upstream).sum().backward()
    torch.testing.assert_close(module.lora_A.grad, ref_a.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(module.lora_B.grad, ref_b.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-6)
    assert base.weight.grad is None
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    opt.step()
    assert not torch.equal(module.lora_A.detach(), a0)
    with torch.no_grad():
        adapted = module(x)
        module.merge()
        torch.testing.assert_close(base(x), adapted, rtol=1e-5, atol=1e-5)
        module.unmerge()


def test_lora_module_initialises_from_the_adapters_init():
    base = torch.nn.Linear(16, 4)
    module = ftl.load("std.adapters.lora", "lora").module(base, r=4)
    assert module.lora_A.shape == (4, 16) and module.lora_B.shape == (4, 4)
    assert torch.count_nonzero(module.lora_B) == 0  # PEFT's init: B = 0
    with torch.no_grad():
        torch.testing.assert_close(module(torch.ones(2, 16)), base(torch.ones(2, 16)))


def test_variants_load_side_by_side_without_a_cache(monkeypatch):
    # Two artifacts loaded in one process (regression: a reused descriptor number made the
    # loader hand back the first library for the second).
    monkeypatch.setenv("FTL_CACHE_DIR", "")
    dpo = ftl.load("std.objectives.dpo", "sigmoid_from_logits")
    for dtype in (torch.float32, torch.bfloat16):
        loss, _ = dpo(**_dpo_inputs(dtype))
        loss.backward()


def test_thread_count_can_be_set(dpo):
    ftl.set_num_threads(1)
    try:
        loss1, _ = dpo(**_dpo_inputs())
    finally:
        ftl.set_num_threads(None)
    loss2, _ = dpo(**_dpo_inputs())
    torch.testing.assert_close(loss1, loss2)


def test_torch_compile_traces_through_the_objective_without_a_graph_break(dpo):
    def step(x):
        loss, metrics = dpo(**x)
        return 2.0 * loss, metrics["rewards_margins"]

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    x, y = _dpo_inputs(), _dpo_inputs()
    loss, margin = compiled(x)
    loss.backward()
    ref_loss, ref_margin = step(y)
    ref_loss.backward()
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(margin, ref_margin)
    torch.testing.assert_close(x["chosen_logits"].grad, y["chosen_logits"].grad)
    torch.testing.assert_close(x["rejected_logits"].grad, y["rejected_logits"].grad)


def test_repeated_calls_reuse_output_memory_safely():
    # Outputs go back to the entry's pool when dropped; a constant output once made every
    # second call fail its requires (the kernel read the reused buffer before writing it).
    sft = ftl.load("std.objectives.sft", "sft", log_metrics=False)
    logits, labels = _logits(), _labels()
    losses = [sft(logits=logits, labels=labels)[0].item() for _ in range(4)]
    assert len(set(losses)) == 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sft_from_hidden_slices_the_logits_and_matches_pytorch(monkeypatch, dtype):
    # 16-column slices of a 40-word vocabulary: three slices, the last narrower.
    monkeypatch.setenv("FTL_SLICE_COLUMNS", "16")
    g = torch.Generator().manual_seed(3)
    hidden = torch.randn(2, 5, 8, generator=g).to(dtype).requires_grad_()
    head = (0.3 * torch.randn(40, 8, generator=g)).to(dtype).requires_grad_()
    bias = torch.randn(40, generator=g).to(dtype).requires_grad_()
    labels = torch.randint(0, 40, (2, 5), generator=g)
    labels[0, :2] = -100
    sft = ftl.load("std.objectives.sft", "sft_from_hidden")
    loss, metrics = sft(hidden=hidden, lm_head=head, labels=labels, lm_head_bias=bias)
    loss.backward()
    h, w, b = (t.detach().float().requires_grad_() for t in (hidden, head, bias))
    logits = h @ w.T + b
    ref = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
    ref.backward()
    torch.testing.assert_close(loss.detach(), ref.detach(), rtol=1e-5, atol=1e-6)
    keep = labels != -100
    accuracy = (logits.argmax(-1) == labels)[keep].float().mean()
    torch.testing.assert_close(metrics["mean_token_accuracy"], accuracy, rtol=1e-6, atol=1e-6)
    # The gradients have their tensors' dtypes: computed in f32, rounded once.
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-4)
    for got, want in ((hidden, h), (head, w), (bias, b)):
        assert got.grad.dtype == dtype
        torch.testing.assert_close(got.grad.float(), want.grad, **tol)
