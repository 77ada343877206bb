# Shared by scripts/image-check.sh (the amd64 image) and
# scripts/image-arm64.sh (the arm64 image under emulation); sourced, not run.
# The callers set `set -euo pipefail` and cd to the repository root.

fail() { echo "image check: $*" >&2; exit 1; }

step_start=$SECONDS
# Prints how long the step just finished took.
step() { echo "image check: $1: $(( SECONDS - step_start )) s"; step_start=$SECONDS; }

# podman_settings DIR: podman's settings in DIR/containers.conf, exported as
# CONTAINERS_CONF (/etc/containers is untouched).
# runc: crun refuses the hybrid cgroup v1/v2 layout of some VMs (this one).
# cgroupfs and file events: CI has no systemd session or journald. Ulimits:
# podman's defaults (1048576 files, more processes than the machine's hard
# limit) make runc fail with "error setting rlimit ... operation not
# permitted" here; so do process limits above 32768 (this VM's pid_max),
# even under the hard limit. Modest limits, never above the hard ones.
podman_settings() {
    local nofile nproc
    nofile=$(ulimit -Hn); [[ $nofile =~ ^[0-9]+$ ]] && (( nofile <= 65536 )) || nofile=65536
    nproc=$(ulimit -Hu); [[ $nproc =~ ^[0-9]+$ ]] && (( nproc <= 16384 )) || nproc=16384
    cat >"$1/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
    export CONTAINERS_CONF=$PWD/$1/containers.conf
}

# base_tar ARCH TAR: a `debian:bookworm-slim` stand-in for ARCH (amd64,
# arm64) made with debootstrap, with the official image's apt sources
# (updates and security too), as a tar for `podman import`. Kept if TAR
# exists. A foreign ARCH needs its binfmt handler (the second stage runs
# the architecture's own dpkg).
base_tar() {
    local arch=$1 tar=$2 rootfs=$2.rootfs
    [[ -s $tar ]] && return
    rm -rf "$rootfs"
    debootstrap --arch="$arch" --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$tar.log" 2>&1 \
        || { tail -20 "$tar.log" >&2; exit 1; }
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
    tar -C "$rootfs" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$rootfs"
}

# smoke_checks TAG MPI: the image TAG (built with MPI=openmpi or mpich) as its
# users run it (USER mpiuser): `pikernels list` (its CMD) as this checkout
# lists, a verified leibniz, a verified two-rank mpirun inside one container
# on the MPI it was built for. Sets smoke_mpi to the MPI the run reported.
smoke_checks() {
    local tag=$1 mpi=$2 user list expected out oversubscribe= want
    user=$(podman run --rm "$tag" id -un)
    [[ $user == mpiuser ]] || fail "$tag runs as '$user', not mpiuser"
    # The image's CMD lists what this checkout's registry lists (the host's
    # build of the same sources), so no kernel is named here.
    list=$(podman run --rm "$tag")
    expected=$(target/release/pikernels list)
    [[ $list == "$expected" ]] || fail "'pikernels list' (the CMD of $tag) differs from this checkout's:"$'\n'"$list"$'\n'"expected:"$'\n'"$expected"
    out=$(timeout 600 podman run --rm "$tag" pikernels leibniz --terms 1e8 --format json)
    grep -q '"verified": *true' <<<"$out" || fail "leibniz in $tag did not verify:"$'\n'"$out"
    [[ $mpi == openmpi ]] && oversubscribe=--oversubscribe
    out=$(timeout 900 podman run --rm "$tag" mpirun -np 2 $oversubscribe pikernels pi-mc --samples 1e8 --format json)
    grep -q '"verified": *true' <<<"$out" && grep -q '"ranks": *2' <<<"$out" \
        || fail "mpirun -np 2 in $tag:"$'\n'"$out"
    smoke_mpi=$(grep -o '"mpi": *"[^"]*"' <<<"$out" | head -1)
    case $mpi in openmpi) want='Open MPI v4' ;; mpich) want='MPICH Version' ;; esac
    grep -q "$want" <<<"$smoke_mpi" || fail "$tag runs $smoke_mpi, not $want"
}
