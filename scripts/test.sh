#!/usr/bin/env bash
# Runs the whole test suite: unit tests of both crates and the integration
# tests that launch real `mpirun` jobs (every one with a timeout).
set -uo pipefail
cd "$(dirname "$0")/.."
# OpenMPI refuses to run as root unless told, and more ranks than cores need
# oversubscription; both are normal on CI machines and laptops.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1
# --nocapture lets the reliability suites print their figures (cases tried and
# passed, faults injected and survived); other tests print nothing themselves.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --release --locked "$@" -- --nocapture 2>&1 | tee "$log" || status=$?
# One closing line for the whole run: every test binary's counts added up.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
