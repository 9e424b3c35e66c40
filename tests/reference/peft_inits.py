#!/usr/bin/env python3
"""PEFT 0.21's data-driven LoRA inits run by PEFT itself, printing the `test` blocks of
stdlib/adapters/lora.ftl for `lora_ga_init`, `corda_covariance`/`corda_init` and `eva_init`.

PEFT's own code: `Linear.lora_ga_init` (with `_peft_loraga_grad` set as `preprocess_loraga`
would), `collect_eigens_for_layer` + the cropping of `crop_corda_eigens` + `Linear.corda_init`,
and `IncrementalPCA` as EVA's `SVDHook` configures it. Singular vectors' signs are made canonical
on PEFT's output (FTL's `svd` makes each U column's largest entry positive); the matrices are
random and full rank so PEFT's `svd_lowrank` calls are exact, except LoRA-GA's `weight_svd`
σ₁(W) estimate (q = r, random), replaced by the exact σ₁.

    .venv/bin/python tests/reference/peft_inits.py > blocks.ftl
(PEFT's corda module imports `attrs`; install it where the venv lacks it.)
"""
import torch, warnings
warnings.filterwarnings("ignore")
from peft import LoraConfig, get_peft_model
from peft.tuners.lora.config import LoraGAConfig
from peft.tuners.lora.corda import collect_eigens_for_layer, CordaEigens
from peft.utils.incremental_pca import IncrementalPCA
torch.manual_seed(0)
def lit(t):
    if t.dim() == 0: return repr(float(t))
    return "[" + ", ".join(lit(u) for u in t) + "]"
class M(torch.nn.Module):
    def __init__(self, lin):
        super().__init__(); self.lin = lin
    def forward(self, x): return self.lin(x)
def layer_for(W, r, alpha):
    lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=False)
    with torch.no_grad(): lin.weight.copy_(W)
    m = get_peft_model(M(lin), LoraConfig(r=r, lora_alpha=alpha, init_lora_weights=False, target_modules=["lin"]))
    return m.base_model.model.lin
def canon_by_b(A, B):
    for k in range(B.shape[1]):
        i = B[:, k].abs().argmax()
        if B[i, k] < 0: B[:, k] *= -1; A[k] *= -1
    return A, B
out = []
W = torch.randn(6, 5)
G = torch.randn(6, 5) * torch.linspace(0.5, 2, 5)
r, alpha = 2, 4.0
cases = []
for direction, ftl_dir in [("ArB2r", "ar_b2r"), ("A2rBr", "a2r_br"), ("ArBr", "ar_br")]:
    for scale in ["stable", "weight_svd", "gd_scale", "unit"]:
        if direction != "ArB2r" and scale != "stable": continue
        layer = layer_for(W, r, alpha)
        layer.get_base_layer()._peft_loraga_grad = G.clone()
        layer.lora_ga_init("default", LoraGAConfig(direction=direction, scale=scale))
        A = layer.lora_A["default"].weight.detach().clone(); B = layer.lora_B["default"].weight.detach().clone()
        if scale == "weight_svd":
            # PEFT estimates σ₁(W) with svd_lowrank(W, q=r) (random, not reproducible): its formula
            # with the exact σ₁, from the `unit` result (B = U_B·S_B).
            unit = layer_for(W, r, alpha)
            unit.get_base_layer()._peft_loraga_grad = G.clone()
            unit.lora_ga_init("default", LoraGAConfig(direction=direction, scale="unit"))
            B = unit.lora_B["default"].weight.detach().clone()
            B = B * (torch.linalg.svdvals(W.double())[0].float() / B[:, 0].norm())
        for k in range(r):  # A row k's sign: the U column it belongs to (G a_k ∝ u_k)
            u = G @ A[k]; i = u.abs().argmax()
            if u[i] < 0: A[k] *= -1
        for j in range(r):
            i = B[:, j].abs().argmax()
            if B[i, j] < 0: B[:, j] *= -1
        s = alpha / r
        Wres = W - s * (B @ A)
        cases.append(f'''    let {ftl_dir}_{scale} = lora_ga_init(weight: w, grad: g, r: 2, lora_alpha: 4.0, direction: {ftl_dir}, scale: {scale});
    expect_close({ftl_dir}_{scale}.lora_A, {lit(A)}, rtol: 1e-4, atol: 1e-5);
    expect_close({ftl_dir}_{scale}.lora_B, {lit(B)}, rtol: 1e-4, atol: 1e-5);
    expect_close({ftl_dir}_{scale}.weight, {lit(Wres)}, rtol: 1e-4, atol: 1e-5);''')
out.append(f'''
test "lora_ga_init is PEFT's lora_ga_init (every direction, every scale)" {{
    // PEFT 0.21's `Linear.lora_ga_init` (r = 2, lora_alpha = 4) with `_peft_loraga_grad` = g;
    // its `svd_lowrank` is exact here (q = min(4r, 5) = 5 = the rank); signs made canonical
    // (each singular vector's U column with its largest entry positive) on PEFT's output, and
    // the residual W − s·B A recomputed from them.
    let w = {lit(W)};
    let g = {lit(G)};
''' + "\n".join(cases) + "\n}")
# CorDA
X = torch.randn(3, 7, 5) + 0.1
C = sum((x / torch.max(x).abs()).t() @ (x / torch.max(x).abs()) for x in X) / 3
ccases = []
for method in ["ipm", "kpm"]:
    layer = layer_for(W, r, alpha)
    base = layer.get_base_layer(); base.covariance_matrix = C.clone()
    e = collect_eigens_for_layer(base, LoraConfig(r=r, target_modules=["lin"]))
    if method == "ipm":
        e = CordaEigens(S_WC=e.S_WC[:r].clone(), U_WC=e.U_WC[:, :r].clone(), V_WC=e.V_WC[:, :r].clone())
    else:
        e = CordaEigens(S_WC=e.S_WC[-r:].clone(), U_WC=e.U_WC[:, -r:].clone(), V_WC=e.V_WC[:, -r:].clone())
    base.eigens = e
    layer.corda_init("default", "corda")
    A = layer.lora_A["default"].weight.detach().clone(); B = layer.lora_B["default"].weight.detach().clone()
    A, B = canon_by_b(A, B)
    ccases.append(f'''    let {method} = corda_init(weight: w, covariance: c.covariance, r: 2, lora_alpha: 4.0, corda_method: {method});
    expect_close({method}.lora_A, {lit(A)}, rtol: 1e-4, atol: 1e-5);
    expect_close({method}.lora_B, {lit(B)}, rtol: 1e-4, atol: 1e-5);
    expect_close({method}.weight, {lit(base.weight.detach())}, rtol: 1e-4, atol: 1e-5);''')
out.append(f'''
test "corda_covariance and corda_init are PEFT's (ipm and kpm)" {{
    // PEFT 0.21: the covariance as `calib_cov_distribution`'s hook builds it from three samples,
    // then `collect_eigens_for_layer` (damp 0.01 passes its inverse check here),
    // `crop_corda_eigens` and `Linear.corda_init` (r = 2, lora_alpha = 4); signs made canonical
    // on PEFT's output (each B column's largest entry positive, A's row with it).
    let w = {lit(W)};
    let c = corda_covariance(inputs: {lit(X)});
    expect_close(c.covariance, {lit(C)}, rtol: 1e-5, atol: 1e-6);
''' + "\n".join(ccases) + '''
    expect_close(ipm.inverse_error, 0.0, 1e-4);
}''')
# EVA
Z = torch.randn(12, 3) @ torch.randn(3, 5) + torch.tensor([0.5, -1.0, 2.0, 0.0, 0.3])
ecases = []
for whiten in [False, True]:
    ipca = IncrementalPCA(n_components=2, copy=True, lowrank=True, lowrank_seed=42)
    ipca.partial_fit(Z.clone())
    u = ipca.components_[:2].clone()
    if whiten: u /= ipca.singular_values_[:2].sqrt().reshape(-1, 1)
    name = "white" if whiten else "plain"
    ecases.append(f'''    let {name} = eva_init(weight: zeros_w, activations: z, r: 2, whiten: {"true" if whiten else "false"});
    expect_close({name}.lora_A, {lit(u)}, rtol: 1e-4, atol: 1e-5);''')
out.append(f'''
test "eva_init is PEFT's EVA components (plain and whitened)" {{
    // PEFT 0.21's `IncrementalPCA(n_components=2, lowrank=True, lowrank_seed=42)` as its
    // `SVDHook` runs it, one `partial_fit` over the 12 × 5 activations (rank 3 after centring,
    // so `svd_lowrank` with q = 4 is exact), components (whitened: ÷ √singular value); lora_B = 0.
    let z = {lit(Z)};
    let zeros_w = [[0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]];
''' + "\n".join(ecases) + '''
    expect_close(plain.lora_B, [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], 0.0);
}''')
print("\n".join(out))
