"""ECT's and PCM's losses on random inputs against tests/reference/consistency_training.py (the
reference repositories' code transcribed in torch): loss and the gradient of the student's
output, on the package's compiled kernels."""

import importlib.util
import pathlib

import pytest
import torch

import ftl

_REF = pathlib.Path(__file__).resolve().parents[3] / "tests" / "reference" / "consistency_training.py"
_spec = importlib.util.spec_from_file_location("consistency_training", _REF)
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)


@pytest.mark.parametrize(
    "settings",
    [{}, {"c": 0.05}, {"weighting": "inverse_gap"}, {"sigma_data": 0.7, "c": 0.2}],
    ids=["snrpk", "huber", "inverse_gap", "sigma_data"],
)
def test_ect_loss_matches_the_reference(settings):
    g = torch.Generator().manual_seed(11)
    student = torch.randn(4, 3, 5, 5, generator=g)
    teacher = torch.randn(4, 3, 5, 5, generator=g)
    y = torch.randn(4, 3, 5, 5, generator=g)
    t, r = reference.ect_schedule(torch.randn(4, generator=g), stage=1)
    r[0] = 0.0  # one sample at r = 0: its target is the clean sample
    ours = ftl.load("std.objectives.consistency", "ect_loss", **settings)
    s_ours = student.clone().requires_grad_()
    loss, _ = ours(student_denoised=s_ours, teacher_denoised=teacher, samples=y, t=t, r=r)
    loss.backward()
    s_ref = student.clone().requires_grad_()
    kw = {"c": settings.get("c", 0.0), "sigma_data": settings.get("sigma_data", 0.5),
          "wt": "snrpk" if settings.get("weighting", "snrpk") == "snrpk" else "inverse_gap"}
    ref = reference.ect_loss(s_ref, teacher, y, t, r, **kw)
    ref.backward()
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s_ours.grad, s_ref.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "settings",
    [{}, {"loss_type": "huber", "multiphase": 4}, {"prediction_type": "v_prediction", "multiphase": 2}],
    ids=["l2", "huber", "v_prediction"],
)
def test_pcm_distill_matches_the_reference(settings):
    g = torch.Generator().manual_seed(12)
    out, noisy, target_out, x_prev = (torch.randn(6, 4, 3, 3, generator=g) for _ in range(4))
    index = torch.tensor([0, 6, 7, 25, 37, 49])  # edges at 8 phases: 0, 6, 12, 18, 25, 31, 37, 43
    ours = ftl.load("std.objectives.consistency", "pcm_distill", **settings)
    o_ours = out.clone().requires_grad_()
    loss, _ = ours(model_output=o_ours, noisy_latents=noisy, target_output=target_out, x_prev=x_prev,
                   index=index.to(torch.int32))
    loss.backward()
    o_ref = out.clone().requires_grad_()
    ref = reference.pcm_distill(o_ref.reshape(6, -1), noisy.reshape(6, -1), target_out.reshape(6, -1),
                                x_prev.reshape(6, -1), index, **settings)
    ref.backward()
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(o_ours.grad, o_ref.grad, rtol=1e-4, atol=1e-8)
