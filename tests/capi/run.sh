#!/usr/bin/env bash
# Builds the runtime's shared library and an artifact of examples/dpo.ftl's `sigmoid`, compiles
# tests/capi/dpo.c against runtime/include/ftl.h and runs it (scripts/test.sh calls this).
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cargo build --quiet -p ftl-runtime
cargo run --quiet --bin ftc -- build examples/dpo.ftl --entry sigmoid -o "$tmp/dpo.ftlpack" >/dev/null
lib="$(pwd)/target/debug"
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror -O1 -I runtime/include tests/capi/dpo.c \
    -L "$lib" -Wl,-rpath,"$lib" -lftl_runtime -lm -o "$tmp/capi_dpo"
"$tmp/capi_dpo" "$tmp/dpo.ftlpack"
