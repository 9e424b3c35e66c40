#!/usr/bin/env bash
# Runs each fuzz target (fuzz/: the front end, the safetensors binder, the artifact loader and
# executor) for SECONDS (default 600) with libFuzzer through cargo-fuzz, seeded from the
# repository (.ftl sources, examples/data, manifests of example artifacts). Not part of CI.
# Crashes land in fuzz/artifacts/TARGET/; each becomes a regression test.
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(front binder artifact)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo build --quiet --release --bin ftc
corpus=target/fuzz-corpus
mkdir -p "$corpus/front" "$corpus/binder" "$corpus/artifact"
find examples stdlib tests -name '*.ftl' -exec cp {} "$corpus/front/" \;
cp examples/data/*.safetensors "$corpus/binder/"
# Artifact seeds: an example's manifest, NUL, its shipped inputs.
for spec in "examples/dpo.ftl sigmoid_from_logits dpo_logits" "examples/lora.ftl lora lora" \
            "examples/flow_lcm.ftl flow_lcm_step flow_lcm"; do
    set -- $spec
    pack="target/fuzz-seed-$2.ftlpack"
    target/release/ftc build "$1" --entry "$2" -o "$pack" --target-cpu native >/dev/null
    python3 -c 'import json,sys; sys.stdout.buffer.write(json.dumps(json.load(open(sys.argv[1]))["manifest"]).encode()+b"\0"+open(sys.argv[2],"rb").read())' \
        "$pack/manifest.json" "examples/data/$3.safetensors" > "$corpus/artifact/$2"
done
# With a nightly toolchain the targets run under AddressSanitizer (a heap overflow stops at the
# faulting access); on stable, without a sanitizer (libFuzzer still finds panics, aborts,
# stack overflows, timeouts and out-of-memory via -rss_limit_mb).
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz run)
else
    fuzz=(cargo fuzz run --sanitizer none)
fi
for t in "${targets[@]}"; do
    echo "== fuzz $t for ${seconds}s"
    (cd fuzz && "${fuzz[@]}" "$t" "../$corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=20 -print_final_stats=1) 2>&1 \
        | grep -E '^(#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|.*Test unit written)' || true
done
