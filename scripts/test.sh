#!/usr/bin/env bash
# Runs the whole test suite: unit tests of both crates and the integration
# tests that launch real `mpirun` jobs (every one with a timeout).
set -euo pipefail
cd "$(dirname "$0")/.."
# OpenMPI refuses to run as root unless told, and more ranks than cores need
# oversubscription; both are normal on CI machines and laptops.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1
# --nocapture lets the reliability suites print their figures (cases tried and
# passed, faults injected and survived); other tests print nothing themselves.
cargo test --workspace --release --locked "$@" -- --nocapture
