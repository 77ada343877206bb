#!/usr/bin/env bash
# The arm64 (Raspberry Pi 4/5, aarch64-unknown-linux-gnu) check of the kernels:
# cross-builds `kernels/examples/portable_check.rs` for aarch64, runs it under
# qemu-aarch64 (the portable paths, as a Pi runs them), and requires the same
# digests, bit for bit, as the native x86-64 run (AVX-512 where the CPU has
# it). Each run also checks every kernel against its plain reference.
#
#   scripts/arm64-check.sh             # needs the packages below
#   scripts/arm64-check.sh --install   # installs them first (Debian, as root)
#
# Why Debian's Rust for the cross build: rustup cannot add a target without
# the internet, while Debian ships rustc 1.96 (`rustc-web`, above the MSRV)
# with an arm64 standard library (`libstd-rust-web-dev:arm64`). Its binaries
# live in /usr/bin, behind rustup's in PATH, so they are named explicitly.
# qemu-user here cannot start threads (a one-thread program hangs in
# pthread_create), so the check runs on the calling thread only; the
# threaded code paths are the same Rust on both architectures.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu

if [[ ${1:-} == --install ]]; then
    dpkg --add-architecture arm64
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        rustc-web cargo-web "libstd-rust-web-dev:arm64" gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
        >/dev/null
fi
for tool in /usr/bin/rustc /usr/bin/cargo aarch64-linux-gnu-gcc qemu-aarch64; do
    command -v "$tool" >/dev/null || { echo "arm64 check: $tool is missing (run with --install)" >&2; exit 1; }
done

native=$(cargo run -q --release --locked -p pikernels-kernels --example portable_check)

RUSTC=/usr/bin/rustc CARGO_TARGET_DIR=target/arm64 \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    /usr/bin/cargo build -q --release --locked -p pikernels-kernels --example portable_check --target "$TARGET"
bin=target/arm64/$TARGET/release/examples/portable_check
# ELF e_machine (bytes 18-19) is 0xb7 for aarch64.
[[ $(od -An -tx1 -j18 -N2 "$bin" | tr -d ' ') == b700 ]] || { echo "arm64 check: $bin is not aarch64" >&2; exit 1; }
arm=$(timeout 300 qemu-aarch64 -L /usr/aarch64-linux-gnu "$bin")

echo "x86-64: ${native##*$'\n'}"
echo "arm64:  ${arm##*$'\n'}"
# Every line but the last (which names the platform) must match.
if ! diff <(sed '$d' <<<"$native") <(sed '$d' <<<"$arm"); then
    echo "arm64 check: the aarch64 results differ from x86-64's (above)" >&2
    exit 1
fi
echo "arm64 check: $(sed '$d' <<<"$arm" | wc -l) digests identical on aarch64 (qemu) and x86-64"
