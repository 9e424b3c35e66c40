"""The training-run example (examples/python/train_with_ftl.py): 30 optimizer steps with the
reference library's own code and with FTL from the same weights on the same batches agree in
every per-step loss and in the final weights to 1e-4 relative."""

import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("trl")
pytest.importorskip("peft")

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples" / "python"))
import train_with_ftl as run  # noqa: E402


def _agree(losses_a, losses_b):
    assert len(losses_a) == run.STEPS
    assert run.max_relative(losses_b, losses_a) <= 1e-4
    assert losses_a[-1] < losses_a[0]  # it trained


def test_dpo_with_ftl_matches_trl():
    a, b, model_a, model_b = run.run_dpo()
    _agree(a, b)
    wa, wb = run.trainable(model_a), run.trainable(model_b)
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wb[name], wa[name], rtol=1e-4, atol=1e-6, msg=name)


def test_sft_with_ftl_matches_trl():
    a, b, model_a, model_b = run.run_sft()
    _agree(a, b)
    wa, wb = run.trainable(model_a), run.trainable(model_b)
    for name in wa:
        torch.testing.assert_close(wb[name], wa[name], rtol=1e-4, atol=1e-6, msg=name)


def test_lora_with_ftl_matches_peft():
    a, b, model_a, model_b = run.run_lora()
    _agree(a, b)
    peft_weights = run.trainable(model_a)
    checked = 0
    for name, module in model_b.named_modules():
        if hasattr(module, "adapter"):
            for which in ("lora_A", "lora_B"):
                ref = peft_weights[f"base_model.model.{name}.{which}.default.weight"]
                torch.testing.assert_close(getattr(module, which).detach(), ref, rtol=1e-4, atol=1e-6)
                checked += 1
    assert checked == 8  # q_proj and v_proj of two layers, A and B each


def test_ddp_over_two_processes_matches_one_process(tmp_path):
    import socket
    import subprocess

    import ddp_dpo

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp.pt"
    torchrun = Path(sys.executable).parent / "torchrun"
    subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(port),
         "ddp_dpo.py", "--out", str(out)],
        cwd=Path(run.__file__).parent, check=True, timeout=600,
    )
    ddp = torch.load(out)
    assert ddp["world"] == 2
    losses, weights = ddp_dpo.train(0, 1)
    assert run.max_relative(ddp["losses"], losses) <= 1e-5
    assert losses[-1] < losses[0]
    for name, w in weights.items():
        torch.testing.assert_close(ddp["weights"][name], w, rtol=1e-5, atol=1e-7, msg=name)
