#!/usr/bin/env bash
# Builds the arm64 (linux/arm64: Raspberry Pi 4/5) image on an x86-64 host and
# runs it under emulation (qemu-user-static through binfmt_misc), with podman:
#
#   scripts/image-arm64.sh [--install]
#
# --install: the Debian packages first (root).
#
# The image is k8s/Dockerfile's runtime stage as written, on an arm64 base;
# only its builder stage is replaced: compiling pikernels under emulation
# takes hours on two cores, so the binary is cross-compiled on the host
# (Debian's rustc-web with its arm64 standard library, the aarch64 GNU
# toolchain) against the arm64 OpenMPI of the image itself.
#
# 1. binfmt: binfmt_misc mounted and qemu-aarch64-static registered with the
#    F flag (the handler is opened once, so it works inside containers).
# 2. base: an arm64 `debian:bookworm-slim` made with debootstrap
#    (scripts/image/lib.sh), imported as $BASE; cached in target/image.
# 3. runtime: the Dockerfile's runtime stage up to the binary's COPY
#    (apt-get under emulation: OpenMPI, ssh, ffmpeg; mpiuser), built for
#    linux/arm64.
# 4. sysroot: that image's /usr/lib/aarch64-linux-gnu, plus the headers and
#    pkg-config files of its OpenMPI (libopenmpi-dev:arm64 of the same
#    version, unpacked, not installed).
# 5. cross build: `cargo build --release --locked --bin pikernels --target
#    aarch64-unknown-linux-gnu`; mpi-sys finds the MPI through pkg-config
#    (MPI_PKG_CONFIG=ompi) in the sysroot, bindgen reads the arm64 mpi.h.
# 6. the image: the rest of the runtime stage, COPYing the cross-built binary.
# 7. smoke checks as mpiuser under emulation, as scripts/image-check.sh does
#    for amd64: `pikernels list`, a verified leibniz, a verified
#    `mpirun -np 2 pikernels pi-mc` on Open MPI 4.
#
# Every step prints its duration; docs/deploy-k3s.md ("The arm64 image under
# emulation") records a run.
#
# Why binfmt and not `qemu-aarch64 -L`: with -L (a library prefix) Debian
# bookworm's qemu 7.2 spins in a dynamically linked program's first
# pthread_create; run through binfmt, inside a rootfs, threads work.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=localhost/pikernels:ci-arm64
RUNTIME=localhost/pikernels-runtime:ci-arm64
BASE=localhost/debian-arm64:bookworm-slim
TARGET=aarch64-unknown-linux-gnu
work=target/image
arm=target/image-arm64
mkdir -p "$arm"

if [[ ${1:-} == --install ]]; then
    dpkg --add-architecture arm64
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        podman runc debootstrap uidmap slirp4netns qemu-user-static \
        rustc-web cargo-web "libstd-rust-web-dev:arm64" gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
        pkg-config clang libclang-dev >/dev/null
fi
for tool in podman runc debootstrap qemu-aarch64-static /usr/bin/rustc /usr/bin/cargo aarch64-linux-gnu-gcc pkg-config; do
    command -v "$tool" >/dev/null || { echo "image arm64: $tool is missing (run with --install)" >&2; exit 1; }
done
source scripts/image/lib.sh
podman_settings "$work"

# 1. binfmt.
binfmt=/proc/sys/fs/binfmt_misc
[[ -e $binfmt/register ]] || mount -t binfmt_misc binfmt_misc "$binfmt"
if [[ ! -e $binfmt/qemu-aarch64 ]]; then
    cat /usr/lib/binfmt.d/qemu-aarch64.conf >"$binfmt/register"
fi
grep -q '^flags: .*F' "$binfmt/qemu-aarch64" || fail "$binfmt/qemu-aarch64 has no F flag (containers cannot see the host's qemu)"
step "binfmt ($(grep interpreter "$binfmt/qemu-aarch64"))"

# 2. The arm64 base image.
if ! podman image exists "$BASE"; then
    base_tar arm64 "$work/bookworm-slim-arm64.tar"
    podman import -q --arch arm64 "$work/bookworm-slim-arm64.tar" "$BASE" >/dev/null
fi
step "base image $BASE"

# 3. The runtime stage of k8s/Dockerfile up to the binary's COPY, on $BASE.
# Split at that COPY: the part above it builds $RUNTIME, the part from it
# on (with the host's binary) builds $TAG.
dockerfile_from() { sed -n '/^FROM debian:bookworm-slim/,$p' k8s/Dockerfile; }
grep -q '^COPY --from=builder /usr/local/bin/pikernels /usr/local/bin/pikernels$' k8s/Dockerfile \
    || fail "k8s/Dockerfile no longer COPYs /usr/local/bin/pikernels from the builder: update $0"
dockerfile_from | sed '/^COPY --from=builder/,$d' | sed "s|^FROM debian:bookworm-slim|FROM $BASE|" >"$arm/runtime.Containerfile"
nice -n 15 podman build --pull=never --platform linux/arm64 --build-arg MPI=openmpi -f "$arm/runtime.Containerfile" -t "$RUNTIME" . \
    >"$arm/build-runtime.log" 2>&1 || { tail -40 "$arm/build-runtime.log" >&2; fail "podman build of $RUNTIME failed (log: $arm/build-runtime.log)"; }
step "runtime stage for linux/arm64 under emulation ($RUNTIME)"

# 4. The sysroot: the runtime's libraries and its OpenMPI's development files.
sysroot=$arm/sysroot
ompi=$(podman run --rm "$RUNTIME" dpkg-query -W -f '${Version}' libopenmpi3)
rm -rf "$sysroot" "$arm/debs" && mkdir -p "$sysroot" "$arm/debs"
container=$(podman create "$RUNTIME" true)
podman export "$container" | tar -x -C "$sysroot" usr/lib/aarch64-linux-gnu
podman rm -f "$container" >/dev/null
(cd "$arm/debs" && apt-get download -q "libopenmpi-dev:arm64=$ompi" >/dev/null 2>&1) \
    || fail "apt-get download libopenmpi-dev:arm64=$ompi failed (dpkg --add-architecture arm64 and apt-get update, or --install)"
dpkg -x "$arm"/debs/libopenmpi-dev_*_arm64.deb "$sysroot"
step "sysroot (OpenMPI $ompi)"

# 5. The cross build. rpath-link: libmpi.so's own dependencies (hwloc,
# libevent, pmix, ...) are resolved in the sysroot at link time.
libdir=$PWD/$sysroot/usr/lib/aarch64-linux-gnu
RUSTC=/usr/bin/rustc CARGO_TARGET_DIR=target/arm64 \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=-Wl,-rpath-link,$libdir -C link-arg=-Wl,-rpath-link,$libdir/openmpi/lib" \
    PKG_CONFIG_ALLOW_CROSS=1 PKG_CONFIG_LIBDIR=$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$PWD/$sysroot MPI_PKG_CONFIG=ompi \
    nice -n 15 /usr/bin/cargo build -q --release --locked --bin pikernels --target "$TARGET" \
    >"$arm/cross-build.log" 2>&1 || { tail -40 "$arm/cross-build.log" >&2; fail "the cross build failed (log: $arm/cross-build.log)"; }
bin=target/arm64/$TARGET/release/pikernels
# ELF e_machine (bytes 18-19) is 0xb7 for aarch64.
[[ $(od -An -tx1 -j18 -N2 "$bin" | tr -d ' ') == b700 ]] || fail "$bin is not aarch64"
step "cross build of pikernels for $TARGET ($(/usr/bin/rustc --version))"

# 6. The image: the rest of the runtime stage, the binary from the host.
ctx=$arm/context
rm -rf "$ctx" && mkdir -p "$ctx" && cp "$bin" "$ctx/pikernels"
{
    echo "FROM $RUNTIME"
    dockerfile_from | sed -n '/^COPY --from=builder/,$p' \
        | sed 's|^COPY --from=builder /usr/local/bin/pikernels |COPY pikernels |'
} >"$arm/image.Containerfile"
podman build -q --pull=never --platform linux/arm64 -f "$arm/image.Containerfile" -t "$TAG" "$ctx" >/dev/null
step "image $TAG ($(podman image inspect "$TAG" --format '{{.Architecture}}, {{.Size}}' | awk -F', ' '{ printf "%s, %.0f MB", $1, $2 / 1e6 }'))"

# 7. Smoke checks under emulation, as mpiuser.
machine=$(podman run --rm "$TAG" uname -m 2>/dev/null)
[[ $machine == aarch64 ]] || fail "$TAG runs on '$machine', not aarch64"
smoke_checks "$TAG" openmpi
step "smoke checks of $TAG as mpiuser under emulation (list, leibniz, mpirun -np 2 pi-mc on $smoke_mpi)"
