#!/usr/bin/env bash
# The main job: compile the DPO-from-logits example to fused kernels (MLIR -> LLVM) and run it
# on the inputs shipped in examples/data, printing its loss, metrics, gradients and kernel
# timings; then time it at full size, run it from an AOT artifact without the compiler, and
# check it against the reference interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cargo build --quiet --release --bin ftc --bin ftl-run
ftc=target/release/ftc
mkdir -p target/out

echo "== ftc run examples/dpo.ftl --entry sigmoid_from_logits (shipped inputs)"
$ftc run examples/dpo.ftl --entry sigmoid_from_logits \
    --inputs examples/data/dpo_logits.safetensors --set beta=0.1 \
    --out target/out/dpo_grads.safetensors
echo
echo "== the kernels ftc fused it into"
$ftc build examples/dpo.ftl --emit kernels --entry sigmoid_from_logits
echo
echo "== ftc bench at B=4 pairs, T=256, V=32000 (forward + gradient, f32)"
$ftc bench examples/dpo.ftl --entry sigmoid_from_logits --dims B=4,T=256,V=32000 --reps 5
echo
echo "== AOT: ftc build -o dpo.ftlpack, then ftl-run (no compiler in the process)"
$ftc build examples/dpo.ftl --entry sigmoid_from_logits -o target/out/dpo.ftlpack
target/release/ftl-run target/out/dpo.ftlpack --inputs examples/data/dpo_logits.safetensors
echo
echo "== the same inputs on the reference interpreter"
$ftc run examples/dpo.ftl --entry sigmoid_from_logits \
    --inputs examples/data/dpo_logits.safetensors --backend interp
echo
echo "== a wrong input gets one clear error, and nothing is written"
$ftc run examples/dpo.ftl --entry sigmoid --inputs examples/data/lora.safetensors \
    --out target/out/never.safetensors || true
