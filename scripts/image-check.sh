#!/usr/bin/env bash
# Builds the container image from k8s/Dockerfile, exactly as written, with
# podman, then checks it as its users run it:
#
#   scripts/image-check.sh [--install] [--mpich]
#
# --install: the Debian packages first (root); --mpich: also the MPICH image.
#
# 1. base: `debian:bookworm-slim` made with debootstrap (no registry is
#    reachable here) and imported under the name the Dockerfile's FROM uses,
#    with the official image's apt sources; cached in target/image.
# 2. builder: `rust:1-slim-bookworm` is pulled if it can be; otherwise a
#    stand-in (scripts/image/rust-standin.Containerfile, Debian's Rust) is
#    built from the base and tagged with that name.
# 3. the image: `podman build -f k8s/Dockerfile .` (and, with --mpich,
#    `--build-arg MPI=mpich`), the host's cargo registry mounted for the
#    builder's `cargo build --locked` (an overlay: the build's writes are
#    thrown away).
# 4. smoke checks of each as the image's user: `pikernels list`, a verified
#    leibniz, a two-rank mpirun inside one container, the MPI it loaded.
# 5. the MPIJobs run as containers of the image, laid out as the MPI operator
#    lays out pods (scripts/k8s_containers.py).
#
# Every step prints its duration. Podman's settings live in
# target/image/containers.conf (CONTAINERS_CONF); /etc/containers is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=localhost/pikernels:ci
BASE=docker.io/library/debian:bookworm-slim
BUILDER=docker.io/library/rust:1-slim-bookworm
work=target/image
mkdir -p "$work"

# The MPICH build (`--build-arg MPI=mpich`) and its MPIJob only with
# --mpich: the image takes as long as the default one (about 12-15 min here),
# which CI's hour cannot hold beside the rest (docs/deploy-k3s.md, "MPICH").
mpis=openmpi
for arg in "$@"; do if [[ $arg == --mpich ]]; then mpis="openmpi mpich"; fi; done
if [[ " $* " == *" --install "* ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        podman runc debootstrap uidmap slirp4netns openssh-client >/dev/null
fi
for tool in podman runc debootstrap ssh-keygen; do
    command -v "$tool" >/dev/null || { echo "image check: $tool is missing (run with --install)" >&2; exit 1; }
done

source scripts/image/lib.sh
podman_settings "$work"

# 1. The base image.
if ! podman image exists "$BASE"; then
    base_tar amd64 "$work/bookworm-slim.tar"
    podman import -q "$work/bookworm-slim.tar" "$BASE" >/dev/null
fi
step "base image $BASE"

# 2. The builder image.
if ! podman image exists "$BUILDER" && ! timeout 120 podman pull -q "$BUILDER" >/dev/null 2>&1; then
    podman build -q --pull=never -t "$BUILDER" -f scripts/image/rust-standin.Containerfile scripts/image >/dev/null
    echo "image check: $BUILDER cannot be pulled here; built the stand-in (Debian's Rust)"
fi
step "builder image $BUILDER ($(podman run --rm "$BUILDER" cargo --version))"

# 3. The images, from the Dockerfile as it is: the default (OpenMPI) and,
# with --mpich, the MPICH build (`--build-arg MPI=mpich`, tag suffix -mpich).
registry=$(realpath -m "${CARGO_HOME:-$HOME/.cargo}/registry")
[[ -d $registry ]] || { echo "image check: no cargo registry at $registry (build pikernels on the host first)" >&2; exit 1; }
for mpi in $mpis; do
    tag=$TAG; [[ $mpi == openmpi ]] || tag=$TAG-$mpi
    podman build --pull=never -f k8s/Dockerfile -t "$tag" --build-arg MPI=$mpi \
        -v "$registry:/usr/local/cargo/registry:O" . >"$work/build-$mpi.log" 2>&1 \
        || { tail -40 "$work/build-$mpi.log" >&2; fail "podman build -f k8s/Dockerfile --build-arg MPI=$mpi failed (log: $work/build-$mpi.log)"; }
    step "podman build -f k8s/Dockerfile --build-arg MPI=$mpi ($(podman image inspect "$tag" --format '{{.Size}}' | awk '{ printf "%.0f MB", $1 / 1e6 }'))"

    # 4. Smoke checks, as the image runs by default (USER mpiuser).
    smoke_checks "$tag" "$mpi"
    step "smoke checks of $tag as mpiuser (list, leibniz, mpirun -np 2 pi-mc on $smoke_mpi)"
done

# 5. The MPIJobs as containers: those of the MPIs built above (the MPICH
# overlay only with --mpich; the others are listed as not run).
built=OpenMPI; [[ $mpis == *mpich* ]] && built=OpenMPI,MPICH
scripts/k8s-check.sh containers "$TAG" "$built"
step "MPIJobs as containers"
