#!/usr/bin/env python3
"""Per-core rate of each kernel on every SIMD path this CPU has, in one
interleaved run (each repetition runs every case on every path in turn, so a
noisy machine slows all paths alike), as a Markdown table on stdout. Used by
scripts/bench.sh; runnable alone:

    python3 scripts/bench_paths.py [--repeat 3] [--bin target/release/pikernels]
        [--cases mandelbrot] [--paths avx512,avx2]

(`--cases` keeps the cases whose name contains the word; `--paths` the
listed paths, of those the CPU has: for more repetitions of the cases in
question on a loaded machine. `--bin` given more than once compares
binaries, e.g. a branch's against main's: each repetition runs every case
on every path with each binary in turn, and there is a table per binary.)

One rank, one thread (`--threads 1`), no launcher. Rates are the report's own
(compute time, not process start); the best of the repetitions is shown, with
each path's rate as a fraction of the fastest path's. The coloured Mandelbrot
row also gives the coloured compute time over the escape-only compute time of
the same picture, per path."""
import argparse, json, os, subprocess

ap = argparse.ArgumentParser()
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--bin", action="append", help="the binary (default target/release/pikernels); repeat to compare")
ap.add_argument("--cases", default="", help="only the cases whose name contains this")
ap.add_argument("--paths", default="avx512,avx2,neon,scalar", help="comma-separated paths to try")
a = ap.parse_args()
bins = a.bin or ["target/release/pikernels"]
# The cases: the benchmark runs of every kernel with a path per instruction
# set, as the (first) binary lists them (each kernel declares them once).
listed = json.loads(subprocess.run([bins[0], "list", "--format", "json"], capture_output=True, text=True,
                                   check=True).stdout)
CASES = [(f"{k['name']} {e['label']}".strip(), " ".join([k["name"], *e["args"]]))
         for k in listed if k["simd_paths"] for e in k["bench"]]
CASES = [c for c in CASES if a.cases in c[0]]

paths = [p for p in a.paths.split(",")
         if subprocess.run([bins[0], "list"], env={**os.environ, "PIKERNELS_SIMD": p},
                           capture_output=True).returncode == 0]
best = {}
for _ in range(a.repeat):
    for name, cmd in CASES:
        for p in paths:
            for b in bins:
                out = subprocess.run([b, *cmd.split(), "--threads", "1", "--format", "json"],
                                     env={**os.environ, "PIKERNELS_SIMD": p}, capture_output=True, text=True, check=True)
                r = json.loads(out.stdout)
                assert r["verified"], r["verification"]
                key = (b, name, p)
                t = r["timing"]["compute_s"]["max"]
                if key not in best or t < best[key][1]:
                    best[key] = (r["throughput"]["per_core_per_s"], t, r["throughput"]["item"], r["build"]["isa"])



def table(b):
    """The table of binary `b` (titled with its name when comparing)."""
    if len(bins) > 1:
        print(f"\n`{b}`:\n")
    print("| kernel | command | " + " | ".join(paths) + " |")
    print("|---|---|" + "---|" * len(paths))
    for name, cmd in CASES:
        top = max(best[(b, name, p)][0] for p in paths)
        cells = []
        for p in paths:
            rate, t, item, isa = best[(b, name, p)]
            # A hand-written twin names itself "<kernel> <path> (std::arch)" in the report's isa.
            kernel = name.split()[0]
            loop = " (std::arch)" if f"{kernel} {p} (std::arch)" in isa else ""
            cells.append(f"{rate:.3g} {item}/s{loop}, {t:.3f} s ({rate / top:.0%})")
        print(f"| {name} | `{cmd}` | " + " | ".join(cells) + " |")
    names = [name for name, _ in CASES]
    if "mandelbrot coloured" in names and "mandelbrot escape" in names:
        ratios = [f"{p} {best[(b, 'mandelbrot coloured', p)][1] / best[(b, 'mandelbrot escape', p)][1]:.2f}x" for p in paths]
        print(f"\nColoured over escape-only compute, same picture: {', '.join(ratios)}.")


for b in bins:
    table(b)
