#!/usr/bin/env bash
# Regenerates docs/stdlib_reference.png, the README's picture of the generated reference: the
# page `ftc doc` writes (docs/stdlib.html), opened with a search, in headless Chromium
# (Debian's `chromium` package). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size=1400,1000 \
    --screenshot="$PWD/docs/stdlib_reference.png" \
    "file://$PWD/docs/stdlib.html?q=sigmoid%20dpo"
