#!/usr/bin/env bash
# Installs what cnnc needs on a fresh Debian 12 machine, skipping what is already there:
# Debian's clang 14 with libomp, OpenBLAS, zlib, libpng and pngcheck (pictures of `cnnc
# visualize` and their tests), Open MPI (`cnnc train --ranks`), GNU time (`make bench`
# memory), and the Fashion-MNIST data set. Needs root
# (or sudo) only when something is missing.
set -euo pipefail

packages=(clang libomp-dev libopenblas-dev zlib1g-dev libpng-dev pngcheck openmpi-bin libopenmpi-dev time dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
