#!/usr/bin/env bash
# Benchmarks of the compiled path (ftc bench, release build) next to the hand-written fused C
# kernel and, when available, PyTorch or NumPy eager. Not part of CI.
#   bash bench/run.sh [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
reps="${1:-10}"
cargo build --quiet --release --bin ftc
ftc=target/release/ftc
echo "== ftc bench (MLIR backend)"
$ftc bench examples/dpo.ftl --entry sigmoid_from_logits --dims B=4,T=256,V=32000 --reps "$reps"
$ftc bench stdlib/objectives/sft.ftl --entry sft --dims B=8,T=256,V=32000 --reps "$reps"
$ftc bench examples/lora.ftl --entry lora --dims L=2048,I=2048,O=2048,R=16 --reps "$reps"
for dims in L=512,I=1024,O=1024,R=32,E=496 L=2048,I=1024,O=1024,R=32,E=496 \
    L=512,I=1024,O=1024,R=1,E=523776; do
    $ftc bench stdlib/adapters/oft.ftl --entry oft --dims "$dims" --set use_cayley_neumann=false \
        --reps "$reps"
done
$ftc bench stdlib/sampling/lcm.ftl --entry lcm_step --dims S=16x4x128x128 --reps "$reps" \
    --set timestep=999 --set prev_timestep=759 --set last_step=false
echo
echo "== hand-written fused C (../shared/bench/handwritten_dpo.c), same DPO work"
if [ -f ../shared/bench/handwritten_dpo.c ] && command -v gcc >/dev/null; then
    gcc -O3 -ffast-math -mavx2 -mfma -fopenmp ../shared/bench/handwritten_dpo.c -o target/handwritten_dpo -lm
    target/handwritten_dpo
else
    echo "(not available)"
fi
echo
echo "== eager references"
"${PYTHON:-python3}" bench/eager_reference.py --reps 3 || echo "(python3 with torch or numpy needed)"
