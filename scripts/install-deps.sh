#!/usr/bin/env bash
# Installs the system packages FTL needs (LLVM/MLIR 22 from Debian), only those that are missing.
# Safe to run repeatedly: with everything present it does nothing and makes no network call.
set -euo pipefail

PACKAGES=(llvm-22-dev libmlir-22-dev mlir-22-tools libpolly-22-dev libclang-22-dev
          libzstd-dev zlib1g-dev libz3-dev libxml2-dev)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "installing missing system packages: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
