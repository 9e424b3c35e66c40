#!/usr/bin/env bash
# Runs every check the project has: formatting, lints, all tests, `ftc check` over every .ftl
# file in the repository and `ftc test` over every test block. This is what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

export CI="${CI:-true}"          # insta: fail on snapshot mismatch instead of writing files
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
cargo test --workspace

# Every .ftl file in the repository must type-check (the error corpus under tests/ui excepted).
mapfile -t files < <(find examples stdlib -name '*.ftl' | sort)
cargo run --quiet --bin ftc -- check "${files[@]}"
echo "ftc check: ${#files[@]} files clean"

# The tree-sitter grammar: its crate's tests (every .ftl file parses without error nodes, the
# corpus) ran with `cargo test`; where the tree-sitter CLI is installed, the committed parser is
# what grammar.js generates and `tree-sitter test` passes too.
if command -v tree-sitter > /dev/null; then
    (cd grammar/editors/tree-sitter-ftl && tree-sitter generate && tree-sitter test)
    git diff --exit-code -- grammar/editors/tree-sitter-ftl/src
else
    echo "tree-sitter CLI not installed: grammar.js not regenerated (the crate's tests ran)"
fi

# Every .ftl file but the error corpus is in `ftc fmt`'s canonical layout.
mapfile -t formatted < <(git ls-files '*.ftl' | grep -v '^tests/ui/' | sort)
cargo run --quiet --bin ftc -- fmt --check "${formatted[@]}"
echo "ftc fmt --check: ${#formatted[@]} files formatted"

# Every test block (reference values, gradchecks) must pass; entry calls run on the default
# (MLIR) backend. The core tests also run every block on the interpreter.
cargo run --quiet --bin ftc -- test examples stdlib tests/run

# The LLVM-free ftc (`--no-default-features`: Cranelift and the interpreter, no MLIR/LLVM) builds
# and runs every test block on the Cranelift backend, its default there.
cargo clippy --quiet -p ftc --no-default-features --lib --bins --target-dir target/light -- -D warnings
cargo build --quiet -p ftc --no-default-features --bin ftc --target-dir target/light
target/light/debug/ftc check "${files[@]}" > /dev/null
target/light/debug/ftc test examples stdlib tests/run
# ... and writes an artifact from Cranelift object code that `ftl-run` (no compiler) runs.
target/light/debug/ftc build examples/dpo.ftl --entry sigmoid_from_logits -o target/light/dpo.ftlpack
cargo run --quiet --bin ftl-run -- target/light/dpo.ftlpack --inputs examples/data/dpo_logits.safetensors > /dev/null

# The C ABI: runtime/include/ftl.h and the runtime's shared library, from a C program.
bash tests/capi/run.sh

# The Python package: built into the project venv (created, with PyTorch from PyPI, when
# missing) and tested end to end against PyTorch eager.
venv="$(bash scripts/python-env.sh)"
"$venv/bin/python" -m pytest -q compiler/python/tests

# The CUDA path without a GPU: the PTX of every entry for sm_80 and sm_90, assembled by ptxas
# and taking the executor's launch cells, and a CUDA artifact built and checked (ptxas and
# libdevice from PyPI's nvidia-cuda-nvcc-cu12 in the venv). Where a GPU is present the same
# tests run the artifact on it (and the core tests ran every entry there).
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
FTL_LIBDEVICE="$site/nvidia/cuda_nvcc/nvvm/libdevice/libdevice.10.bc" \
FTL_PTXAS="$site/nvidia/cuda_nvcc/bin/ptxas" \
    cargo test -q -p ftc --test core -- --nocapture every_entry_compiles_to_ptx \
    cuda_artifacts_are_sealed cuda_runs_every_entry
