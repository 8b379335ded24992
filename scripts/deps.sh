#!/usr/bin/env bash
# Installs tapegrad's build dependencies from Debian 12 packages, only those that are missing:
# a second run does nothing and takes well under a second.
set -euo pipefail

packages=(
  g++ cmake ninja-build
  libxtensor-dev libxtensor-blas-dev libxsimd-dev libopenblas-dev libtbb-dev doctest-dev
  nlohmann-json3-dev zlib1g-dev libcli11-dev libstb-dev librandom123-dev
  libopenmpi-dev openmpi-bin
)
packages+=("$@")  # callers may add more (e.g. python3-sklearn for the digits data)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
