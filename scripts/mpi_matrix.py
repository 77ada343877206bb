#!/usr/bin/env python3
"""Runs the same jobs with pikernels built against several MPI libraries and
requires identical results.

    scripts/mpi_matrix.py NAME=BINARY:LAUNCHER:EXPECTED ...

Each build is named (NAME), run by its own launcher (LAUNCHER, e.g.
`mpiexec.mpich`), and must report, in its `build.mpi`, a library whose name
starts with EXPECTED (so a binary that silently loaded another MPI fails).
The first build is the reference. The jobs are every kernel's small
examples, as the reference binary lists them (`pikernels list --format
json`: each kernel declares them once, in its job file); a kernel without
one says why, and the matrix prints it. For every job and every process
count, each build's result must equal the reference's, field by field, and
written files must be byte-identical. Every run has a time limit.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

NPS = [1, 2, 3]


def jobs(binary):
    """(label, argv after the binary, output flag or None, result keys that
    describe the run) for every small example of every kernel the binary
    lists; prints the kernels left out."""
    listed = json.loads(subprocess.run([binary, "list", "--format", "json"], capture_output=True, text=True,
                                       check=True, timeout=60).stdout)
    out = []
    for k in listed:
        if not k["small"]:
            print(f"  {k['name']}: not in the matrix: {k['no_small_because']}")
        for e in k["small"]:
            out.append((f"{k['name']} {e['label']}".strip(), [k["name"], *e["args"]], k["output"], set(k["run_keys"])))
    if len(out) < len(listed):
        sys.exit(f"mpi matrix: only {len(out)} jobs from {len(listed)} kernels: is the list right?")
    return out


def run(binary, launcher, np, args, out_flag, run_keys, workdir):
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
    result = {k: v for k, v in report["result"].items() if k not in run_keys}
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
        for label, args, out_flag, run_keys in jobs(builds[0][1]):
            for np in NPS:
                reference = None
                for name, binary, launcher, expected in builds:
                    report, result, digest = run(binary, launcher, np, args, out_flag, run_keys, workdir)
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
