"""Every adapter the PEFT-transcription harness (compiler/ftc/tests/core.rs, plain Python) does not
cover, against PEFT's own layers: the installed ``peft`` wraps an ``nn.Linear`` (or a norm layer)
with random adapter weights (its init, perturbed), and the same weights drive the FTL adapter's ``module``. Forward,
gradients of x and of every adapter parameter under a random upstream gradient, then merge and
unmerge, all compared with PEFT's."""

import copy

import pytest
import torch

import ftl

peft = pytest.importorskip("peft")


class _Wrap(torch.nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)


def _linear(i=8, o=6, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(i, o)


def _layer_norm(seed=0):
    torch.manual_seed(seed)
    ln = torch.nn.LayerNorm(8)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.5, 0.5)
    return ln


def _rms_norm(seed=0):
    torch.manual_seed(seed)
    rms = torch.nn.RMSNorm(8, eps=1e-6)
    with torch.no_grad():
        rms.weight.uniform_(0.5, 1.5)
    return rms


# (FTL module, entry, base layer, PEFT config, FTL param -> PEFT tensor path, FTL settings)
CASES = [
    ("std.adapters.hra", "hra", _linear, lambda: peft.HRAConfig(r=4, target_modules=["layer"]),
     {"hra_u": "hra_u.default"}, {}),
    ("std.adapters.miss", "miss", _linear, lambda: peft.MissConfig(r=3, target_modules=["layer"]),
     {"miss_block": "miss_block.default"}, {}),
    ("std.adapters.oft", "oft", _linear,
     lambda: peft.OFTConfig(r=0, oft_block_size=4, target_modules=["layer"]),
     {"oft_R": "oft_R.default.weight"}, {}),
    ("std.adapters.oft", "oft", _linear,
     lambda: peft.OFTConfig(r=0, oft_block_size=4, use_cayley_neumann=False, target_modules=["layer"]),
     {"oft_R": "oft_R.default.weight"}, {"use_cayley_neumann": False}),
    ("std.adapters.oft", "oft_shared", _linear,
     lambda: peft.OFTConfig(r=0, oft_block_size=4, block_share=True, target_modules=["layer"]),
     {"oft_R": "oft_R.default.weight"}, {"oft_block_size": 4}),
    ("std.adapters.oft", "oft_shared", _linear,
     lambda: peft.OFTConfig(r=0, oft_block_size=2, block_share=True, use_cayley_neumann=False,
                            target_modules=["layer"]),
     {"oft_R": "oft_R.default.weight"}, {"oft_block_size": 2, "use_cayley_neumann": False}),
    ("std.adapters.boft", "boft", _linear,
     lambda: peft.BOFTConfig(boft_block_size=4, target_modules=["layer"]),
     {"boft_R": "boft_R.default", "boft_s": "boft_s.default"}, {}),
    ("std.adapters.boft", "boft", _linear,
     lambda: peft.BOFTConfig(boft_block_size=2, boft_n_butterfly_factor=3, target_modules=["layer"]),
     {"boft_R": "boft_R.default", "boft_s": "boft_s.default"}, {"boft_n_butterfly_factor": 3}),
    ("std.adapters.fourierft", "fourierft", _linear,
     lambda: peft.FourierFTConfig(n_frequency=12, scaling=20.0, target_modules=["layer"]),
     {"fourierft_spectrum": "fourierft_spectrum.default"}, {"scaling": 20.0}),
    ("std.adapters.ln_tuning", "ln_tuning", _layer_norm,
     lambda: peft.LNTuningConfig(target_modules=["layer"]),
     {"ln_weight": "ln_tuning_layers.default.weight", "ln_bias": "ln_tuning_layers.default.bias"},
     {}),
    ("std.adapters.ln_tuning", "ln_tuning_rms", _rms_norm,
     lambda: peft.LNTuningConfig(target_modules=["layer"]),
     {"ln_weight": "ln_tuning_layers.default.weight"}, {}),
]


class _BlockDiag:
    """PEFT's BOFT CUDA extension (`fbd_cuda`: a batched block-diagonal matrix), computed by
    torch. Without it PEFT silently drops to one butterfly factor; with it, BOFT's butterfly
    factors are what the configuration asks for."""

    @staticmethod
    def forward(blocks):
        return [torch.stack([torch.block_diag(*blocks[n]) for n in range(blocks.shape[0])])]

    @staticmethod
    def backward(grad, blocks):
        n, d, h, _ = blocks.shape
        return [torch.stack([torch.stack([grad[i, j * h:(j + 1) * h, j * h:(j + 1) * h] for j in range(d)]) for i in range(n)])]


def _consts(entry, layer):
    """Constant inputs PEFT keeps outside its parameters: FourierFT's spectral positions."""
    if entry == "fourierft":
        rows, cols = layer.indices["default"].to(torch.int32)
        return {"fourierft_rows": rows, "fourierft_cols": cols}
    return {}


def _ours(name, t):
    """A PEFT tensor in the FTL adapter's layout (BOFT's `[O, 1]` scale as a vector)."""
    return t.squeeze(-1) if name == "boft_s" else t


def _tensor(module, path):
    for part in path.split("."):
        module = module[part] if isinstance(module, torch.nn.ModuleDict) else getattr(module, part)
    return module


@pytest.mark.filterwarnings("ignore:Unsupported layer type")
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[1]}{'-' + str(c[5]) if c[5] else ''}")
def test_adapter_matches_peft_layer(case, monkeypatch):
    source, entry, make_base, make_config, paths, settings = case
    if entry == "boft":
        monkeypatch.setattr("peft.tuners.boft.layer._FBD_CUDA", _BlockDiag())
    base = make_base()
    ours_base = copy.deepcopy(base)
    model = peft.get_peft_model(_Wrap(base), make_config())
    layer = model.base_model.model.layer
    torch.manual_seed(1)
    with torch.no_grad():
        for path in paths.values():
            # Around the layer's init (BOFT's scale starts at 1, a norm's weight near 1).
            t = _tensor(layer, path)
            t.copy_(t + torch.randn_like(t) * 0.3)
    # PEFT keeps BOFT's scale as [O, 1]; FTL's `boft_s` is the vector [O].
    values = {name: _ours(name, _tensor(layer, path).detach().clone()) for name, path in paths.items()}
    ours = ftl.load(source, entry, **settings).module(ours_base, **values, **_consts(entry, layer))

    x = torch.randn(2, 3, 8)
    x_peft, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_peft, y_ours = model(x_peft), ours(x_ours)
    torch.testing.assert_close(y_ours, y_peft, rtol=1e-5, atol=1e-5)
    upstream = torch.randn_like(y_peft)
    (y_peft * upstream).sum().backward()
    (y_ours * upstream).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_peft.grad, rtol=1e-4, atol=1e-5)
    for name, path in paths.items():
        theirs = _ours(name, _tensor(layer, path).grad)
        torch.testing.assert_close(getattr(ours, name).grad, theirs, rtol=1e-4, atol=1e-5)

    with torch.no_grad():
        layer.merge()
        ours.merge()
        torch.testing.assert_close(ours_base.weight, layer.get_base_layer().weight, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours_base(x), y_peft.detach(), rtol=1e-5, atol=1e-5)
        layer.unmerge()
        ours.unmerge()
        torch.testing.assert_close(ours_base.weight, layer.get_base_layer().weight, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours(x), y_peft.detach(), rtol=1e-5, atol=1e-5)
