#!/usr/bin/env python3
"""Runs the same jobs with pikernels built against several MPI libraries and
requires identical results.

    scripts/mpi_matrix.py NAME=BINARY:LAUNCHER:EXPECTED ...

Each build is named (NAME), run by its own launcher (LAUNCHER, e.g.
`mpiexec.mpich`), and must report, in its `build.mpi`, a library whose name
starts with EXPECTED (so a binary that silently loaded another MPI fails).
The first build is the reference. For every job below and every process
count, each build's result must equal the reference's, field by field, and
written files must be byte-identical. Every run has a time limit.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

JOBS = [
    ("pi-mc", ["pi-mc", "--samples", "2e8", "--seed", "7"], None),
    ("leibniz", ["leibniz", "--terms", "1e8"], None),
    ("mandelbrot", ["mandelbrot", "--width", "320", "--height", "240", "--max-iter", "200"], "--out"),
    ("mandelbrot p2p", ["mandelbrot", "--width", "320", "--height", "240", "--comm", "p2p"], "--out"),
    ("mandelbrot dynamic", ["mandelbrot", "--width", "320", "--height", "240", "--comm", "dynamic"], "--out"),
    ("sort", ["sort", "--keys", "1e6", "--dist", "zipf"], "--output"),
    ("matmul rows", ["matmul", "--n", "67", "--entries", "integer", "--algorithm", "rows"], "--out"),
    ("matmul summa", ["matmul", "--n", "67", "--entries", "integer", "--algorithm", "summa"], "--out"),
    ("heat p2p", ["heat", "--size", "301x203", "--steps", "60", "--comm", "p2p"], "--out"),
    ("heat collective, depth 2", ["heat", "--size", "301x203", "--steps", "61", "--init", "hotspot",
                                  "--comm", "collective", "--halo-depth", "2"], "--out"),
]
NPS = [1, 2, 3]
# Fields that describe the run rather than its result.
VOLATILE = {"output", "output_bytes", "gflops", "cell_updates_per_s", "bytes_per_s_per_core"}


def run(binary, launcher, np, args, out_flag, workdir):
    argv = launcher.split() + ["-np", str(np), binary] + args + ["--threads", "1", "--format", "json"]
    out = None
    if out_flag:
        out = os.path.join(workdir, "out.bin")
        argv += [out_flag, out]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=workdir)
    if p.returncode != 0:
        sys.exit(f"mpi matrix: {' '.join(argv)} failed (exit {p.returncode}):\n{p.stderr.strip()}")
    report = json.loads(p.stdout)
    digest = None
    if out:
        with open(out, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        os.remove(out)
    result = {k: v for k, v in report["result"].items() if k not in VOLATILE}
    return report, result, digest


def main():
    builds = []
    for spec in sys.argv[1:]:
        name, rest = spec.split("=", 1)
        binary, launcher, expected = rest.split(":", 2)
        builds.append((name, os.path.abspath(binary), launcher, expected))
    if len(builds) < 2:
        sys.exit("usage: mpi_matrix.py NAME=BINARY:LAUNCHER:EXPECTED NAME=... (two builds at least)")
    runs = same = 0
    with tempfile.TemporaryDirectory() as workdir:
        for label, args, out_flag in JOBS:
            for np in NPS:
                reference = None
                for name, binary, launcher, expected in builds:
                    report, result, digest = run(binary, launcher, np, args, out_flag, workdir)
                    runs += 1
                    mpi = report["build"].get("mpi", "")
                    if not mpi.startswith(expected):
                        sys.exit(f"mpi matrix: the {name} build runs with '{mpi}', not {expected}")
                    if report["ranks"] != np or not report["verified"]:
                        sys.exit(f"mpi matrix: {name} {label} -np {np}: ranks {report['ranks']}, verified {report['verified']}")
                    if reference is None:
                        reference = (builds[0][0], result, digest)
                        same += 1
                        continue
                    if (result, digest) != reference[1:]:
                        sys.exit(
                            f"mpi matrix: {label} -np {np}: {name} gave {result} {digest}, "
                            f"{reference[0]} gave {reference[1]} {reference[2]}"
                        )
                    same += 1
            print(f"  {label}: identical on {', '.join(b[0] for b in builds)} at -np {','.join(map(str, NPS))}")
    libs = ", ".join(f"{b[0]} ({b[3]}...)" for b in builds)
    print(f"mpi matrix: {runs} runs, {same} identical to the reference, on {libs}")


if __name__ == "__main__":
    main()
