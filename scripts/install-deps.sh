#!/usr/bin/env bash
# Installs the system packages pikernels needs to build and test, on Debian or
# Ubuntu, skipping what is already there. Run as root or with sudo available.
#   scripts/install-deps.sh          build + run (OpenMPI, libclang, pkg-config)
#   scripts/install-deps.sh --test   also what the test suite uses
set -euo pipefail

packages=(libopenmpi-dev openmpi-bin libclang-dev clang pkg-config)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(ffmpeg openssh-server openssh-client iproute2 kubernetes-client python3 python3-venv bsdutils)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
