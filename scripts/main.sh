#!/usr/bin/env bash
# The main job: compile the DPO-from-logits example and run it on the inputs shipped in
# examples/data, printing its loss, metrics and gradients; then run its test blocks, check its
# gradients against finite differences, and show the derived gradient graph's size.
# (Kernel timings arrive with the MLIR backend; today the reference interpreter runs it.)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cargo build --quiet --release --bin ftc
ftc=target/release/ftc
mkdir -p target/out

echo "== ftc run examples/dpo.ftl --entry sigmoid_from_logits"
start=$(date +%s%N)
$ftc run examples/dpo.ftl --entry sigmoid_from_logits \
    --inputs examples/data/dpo_logits.safetensors --set beta=0.1 \
    --out target/out/dpo_grads.safetensors
echo "(compile + run: $(( ($(date +%s%N) - start) / 1000000 )) ms, reference interpreter)"
echo
echo "== the same on random inputs: B=4, T=64, V=512"
$ftc run examples/dpo.ftl --entry sigmoid_from_logits --random --dims B=4,T=64,V=512 --seed 7
echo
echo "== ftc test examples"
$ftc test examples
echo
echo "== ftc gradcheck examples/dpo.ftl --entry sigmoid_from_logits --dims B=2,T=3,V=5"
$ftc gradcheck examples/dpo.ftl --entry sigmoid_from_logits --dims B=2,T=3,V=5
echo
echo "== ftc build examples/dpo.ftl --emit grad --entry sigmoid (the derived gradient graph)"
$ftc build examples/dpo.ftl --emit grad --entry sigmoid
echo "== a wrong input gets one clear error, and nothing is written"
$ftc run examples/dpo.ftl --entry sigmoid_from_logits --inputs examples/data/lora.safetensors \
    --out target/out/never.safetensors || true
