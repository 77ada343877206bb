#!/usr/bin/env bash
# Installs the system packages pikernels needs to build and test, on Debian or
# Ubuntu, skipping what is already there. Run as root or with sudo available.
#   scripts/install-deps.sh          build + run (OpenMPI, libclang, pkg-config)
#   scripts/install-deps.sh --test   also what the test suite uses
#   scripts/install-deps.sh --arm64  also the arm64 cross build (scripts/arm64-check.sh,
#                                    scripts/arm64-mca.sh): Debian's Rust with an arm64
#                                    std, the cross linker, qemu-user, llvm-19 (llvm-mca)
set -euo pipefail

packages=(libopenmpi-dev openmpi-bin libclang-dev pkg-config)
if [[ "${1:-}" == "--arm64" ]]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    if [[ $(id -u) -eq 0 ]]; then dpkg --add-architecture arm64; else sudo dpkg --add-architecture arm64; fi
  fi
  packages+=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user llvm-19)
fi
if [[ "${1:-}" == "--test" ]]; then
  packages+=(ffmpeg openssh-server openssh-client iproute2 kubernetes-client python3 python3-venv)
  # tests/multihost.rs and tests/k8s.rs: unshare, flock and mount (network-namespace test hosts)
  packages+=(util-linux mount)
  # tests/progress.rs: script(1) gives the progress bar a real terminal
  packages+=(bsdutils)
fi

# A command that is already on the PATH counts as installed, whichever package
# brought it (some images ship kubectl from another source, and Debian's
# kubernetes-client would then conflict with it).
declare -A provides=([kubernetes-client]=kubectl [ffmpeg]=ffprobe [openmpi-bin]=mpirun)
missing=()
for p in "${packages[@]}"; do
  cmd=${provides[$p]:-}
  [[ -n "$cmd" ]] && command -v "$cmd" >/dev/null && continue
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
