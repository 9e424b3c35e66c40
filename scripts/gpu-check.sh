#!/usr/bin/env bash
# Builds the bundle that checks the CUDA path on a GPU machine with no Rust or LLVM (the device
# machines have CUDA, PyTorch and Python): target/gpu-bundle holds ftl-run (release), for every
# entry of examples/, stdlib/ and tests/run/ a CUDA artifact for sm_90 with random inputs and the
# interpreter's outputs (entries/), and the artifacts of the benchmark workloads (bench/) —
# about 20 MB, under the 64 MiB a device call carries. Then, there:
#     python3 bench/gpu_check.py target/gpu-bundle     (carry: target/gpu-bundle)
# Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(bash scripts/python-env.sh)"
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
export FTL_LIBDEVICE="$site/nvidia/cuda_nvcc/nvvm/libdevice/libdevice.10.bc"
bundle=target/gpu-bundle
rm -rf "$bundle"
mkdir -p "$bundle/bench"
cargo build --quiet --release --bin ftl-run
cargo build --quiet --bin ftc
cp target/release/ftl-run "$bundle/"
FTL_GPU_BUNDLE="$PWD/$bundle/entries" \
    cargo test -q -p ftc --test core write_gpu_check_bundle -- --nocapture
for spec in examples/dpo.ftl:sigmoid_from_logits stdlib/objectives/sft.ftl:sft \
    stdlib/sampling/lcm.ftl:lcm_step; do
    target/debug/ftc build "${spec%%:*}" --entry "${spec##*:}" --target cuda:sm_90 \
        -o "$bundle/bench/${spec##*:}.ftlpack"
done
du -sh "$bundle"
