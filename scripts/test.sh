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
# --no-fail-fast: every test binary runs even when an earlier one fails, so
# one failure never hides the rest.
cargo test --workspace --release --locked --no-fail-fast "$@" -- --nocapture 2>&1 | tee "$log" || status=$?
# Every AVX/AVX2/FMA/AVX-512 intrinsic must be inlined into its caller: one
# defined as a function of its own is called from code compiled without the
# path's target features, a call per operation (a closure in the colouring
# did so, and the coloured picture cost 1.45x the escape loop, not 1.23x).
if [[ -x target/release/pikernels ]] && command -v nm >/dev/null; then
  apart=$(nm -C --defined-only target/release/pikernels | grep -cE 'core_arch::x86::(avx|avx2|fma|avx512[a-z]*)::') || true
  echo "simd intrinsics compiled out of line: $apart"
  [[ "$apart" == 0 ]] || status=1
else
  echo "simd intrinsics compiled out of line: not checked (no nm, or no release binary)"
fi
# The reliability suites' figures, added up over every test that prints them:
# "bad input...: N cases tried, M passed" and "fault injected: NAME: survived".
awk '/bad input.*cases tried/ { for (i = 1; i <= NF; i++) { if ($i ~ /^tried,?$/) t += $(i-2); if ($i ~ /^passed,?$/) p += $(i-1) } }
     /^fault injected: / { n++; if ($NF == "survived" && $(NF-1) != "NOT") s++ }
     END { printf "bad input: %d cases tried, %d passed\nfaults: %d injected, %d survived\n", t, p, n, s }' "$log"
# One closing line for the whole run: every test binary's counts added up.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
