#!/usr/bin/env bash
# Produces every number of docs/benchmarks.md, as Markdown on stdout:
#   scripts/bench.sh > /tmp/bench.md      (then paste into docs/benchmarks.md)
# Env: NP (rank counts, default 1,2), THREADS (default 1,2), REPEAT (default 3).
# Each rate is the run's own report (compute time, not mpirun's launch); the
# scaling tables come from scripts/scale.py, which also writes the SVG plots
# into docs/img/. Run it on an idle machine: check `cat /proc/loadavg`.
set -euo pipefail
cd "$(dirname "$0")/.."
NP=${NP:-1,2}
THREADS=${THREADS:-1,2}
REPEAT=${REPEAT:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1
cargo build --release --locked -q
BIN=target/release/pikernels
mkdir -p docs/img

# The Benchmarks Game's Mandelbrot: 16000x16000, 50 iterations, [-1.5,0.5]x[-1,1], radius 2.
BG=(--width 16000 --height 16000 --max-iter 50 --xmin -1.5 --xmax 0.5 --ymin -1 --ymax 1 --bailout 2)
declare -A CASES=(
  [leibniz]="leibniz --terms 1e10"
  [pi-mc]="pi-mc --samples 4e9"
  [mandelbrot-escape]="mandelbrot ${BG[*]} --escape-only"
  [mandelbrot-colour]="mandelbrot ${BG[*]} --no-output"
  [mandelbrot-seed]="mandelbrot --no-output"
)
ORDER=(leibniz pi-mc mandelbrot-escape mandelbrot-colour mandelbrot-seed)

# One rank, one thread: the per-core rate, best of REPEAT, on each code path.
rate() { # PATH-ENV ARGS... -> "rate item seconds"
  local simd=$1; shift
  for _ in $(seq "$REPEAT"); do
    PIKERNELS_SIMD=$simd "$BIN" "$@" --threads 1 --format json
  done | python3 -c '
import json, sys
dec = json.JSONDecoder(); s = sys.stdin.read(); i = 0; best = None
while i < len(s):
    while i < len(s) and s[i].isspace(): i += 1
    if i >= len(s): break
    r, i = dec.raw_decode(s, i)
    assert r["verified"], r["verification"]
    if best is None or r["throughput"]["per_core_per_s"] > best["throughput"]["per_core_per_s"]: best = r
t = best["throughput"]
print("%.3e %s %.3f %s" % (t["per_core_per_s"], t["item"], best["timing"]["compute_s"]["max"], best["build"]["isa"].split()[0]))'
}

echo "## Results ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD))"
echo
echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores," \
  "$(free -g | awk '/Mem:/{print $2}') GiB; $(uname -sm); $(rustc --version);" \
  "$(mpirun --version 2>/dev/null | sed -n 1p). Load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "### Per-core rates (1 rank, 1 thread, best of $REPEAT)"
echo
echo "| case | command | path | rate per core | compute s | scalar path | scalar s |"
echo "|---|---|---|---|---|---|---|"
for c in "${ORDER[@]}"; do
  # shellcheck disable=SC2086
  read -r r item s isa < <(rate auto ${CASES[$c]})
  # shellcheck disable=SC2086
  read -r pr _ ps _ < <(rate scalar ${CASES[$c]})
  echo "| $c | \`pikernels ${CASES[$c]}\` | $isa | $r $item/s | $s | $pr $item/s | $ps |"
done
echo
echo "Leibniz ns per term per core: divide 1e9 by the rate above."
echo
echo "### Every SIMD path (1 rank, 1 thread, one interleaved run, best of $REPEAT)"
echo
python3 scripts/bench_paths.py --repeat "$REPEAT" --bin "$BIN"
echo
echo "### Scaling (ranks x threads; compute time of the slowest rank; launch = mpirun's own cost)"
for c in leibniz pi-mc mandelbrot-escape; do
  echo
  echo "#### $c"
  echo
  # shellcheck disable=SC2086
  python3 scripts/scale.py ${CASES[$c]} --np "$NP" --threads "$THREADS" --repeat "$REPEAT" \
    --markdown --svg "docs/img/scaling-$c.svg" 2>/dev/null
  echo
  echo "![speedup of $c](img/scaling-$c.svg)"
done
echo
echo "Load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)."
