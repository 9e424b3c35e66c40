#!/usr/bin/env bash
# The main job: compile the DPO example and show what the compiler derived from it.
# Today the front end is complete (parse, resolve, check, typed HIR); running objectives on
# tensors (loss, metrics, gradients, kernel timings) arrives with the core and MLIR backend.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cargo build --quiet --release --bin ftc
ftc=target/release/ftc

echo "== ftc check examples/*.ftl"
$ftc check examples/dpo.ftl examples/lora.ftl examples/lcm.ftl && echo "clean"
echo
echo "== ftc build examples/dpo.ftl --emit hir"
$ftc build examples/dpo.ftl --emit hir
echo "== a wrong program gets a located error with a code"
printf 'fn f(a: f32[B, K], b: f32[B, K]) -> f32[B] { a @ b }\n' > target/wrong.ftl
$ftc check target/wrong.ftl || true
