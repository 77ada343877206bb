#!/usr/bin/env python3
"""Scaling study: sweep ranks and threads for one kernel, print a table, draw a plot.

    scripts/scale.py KERNEL [KERNEL OPTIONS...] [--np 1,2] [--threads 1,2]
                     [--repeat 3] [--svg scaling-KERNEL.svg] [--markdown]

Each point runs `mpirun -np N pikernels KERNEL ... --threads T --format json`
(`--repeat` times, keeping the fastest) and reads the run's own timing, so
mpirun's launch does not drown the signal. Columns:

  time      compute seconds, the slowest rank (report timing.compute_s.max)
  speedup   time(1 rank, 1 thread) / time
  eff       speedup / cores, cores = ranks x threads
  karp-flatt  experimentally determined serial fraction (1/S - 1/p) / (1 - 1/p)
  imbalance the report's max/mean of the ranks' compute times
  launch    seconds the whole mpirun took beyond the run's own wall time:
            process start, MPI_Init/Finalize, teardown (reported separately)

The plot (SVG, no plotting library needed) shows speedup against cores, one
line per thread count, with the ideal line.

Why a script and not a subcommand: the sweep launches mpirun, and an MPI
program that spawns mpirun itself is fragile; a script keeps the binary a
plain SPMD program and needs only Python 3's standard library.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
    "OMPI_MCA_mpi_yield_when_idle": "1",
}


def ints(s):
    try:
        v = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{s}' is not a comma-separated list of whole numbers")
    if not v or min(v) < 1:
        raise argparse.ArgumentTypeError(f"'{s}' must list numbers of at least 1")
    return v


def run_once(binary, kernel, extra, np_, threads, timeout):
    # --bind-to none: by default mpirun pins each of 1 or 2 ranks to one core,
    # and a rank's rayon threads would then share that core (no thread speedup).
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(np_), str(binary), kernel, *extra,
           "--threads", str(threads), "--format", "json"]
    env = {**os.environ, **MPI_ENV}
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    elapsed = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"scale.py: {' '.join(cmd)} failed (exit {p.returncode}):\n{p.stderr.strip()}")
    r = json.loads(p.stdout)
    if not r.get("verified"):
        sys.exit(f"scale.py: {' '.join(cmd)}: the run did not verify: {r.get('verification')}")
    t = r["timing"]
    return {
        "time": t["compute_s"]["max"],
        "imbalance": t["compute_s"]["imbalance"],
        "wall": t["wall_s"],
        "launch": elapsed - t["wall_s"],
        "per_core": r["throughput"]["per_core_per_s"],
        "item": r["throughput"]["item"],
        "isa": r.get("build", {}).get("isa", "?"),
    }


def sweep(args, extra):
    rows = []
    for t in args.threads:
        for n in args.np:
            runs = [run_once(args.bin, args.kernel, extra, n, t, args.timeout) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["time"])
            best["launch"] = min(r["launch"] for r in runs)
            best.update(np=n, threads=t, cores=n * t)
            rows.append(best)
            print(f"  np={n} threads={t}: {best['time']:.4f} s", file=sys.stderr)
    base = next((r for r in rows if r["cores"] == 1), None)
    for r in rows:
        r["speedup"] = base["time"] / r["time"] if base else float("nan")
        p = r["cores"]
        r["eff"] = r["speedup"] / p
        r["kf"] = (1 / r["speedup"] - 1 / p) / (1 - 1 / p) if p > 1 else float("nan")
    return rows


def table(rows, markdown):
    head = ["ranks", "threads", "cores", "time s", "speedup", "eff", "karp-flatt", "imbalance",
            "launch s", f"{rows[0]['item']}/s/core"]
    ncpu = os.cpu_count() or 1
    # '*' marks oversubscribed points: more ranks x threads than this machine has cores.
    body = [[str(r["np"]), str(r["threads"]), str(r["cores"]) + ("*" if r["cores"] > ncpu else ""), f"{r['time']:.4f}", f"{r['speedup']:.3f}",
             f"{r['eff'] * 100:.1f}%", "-" if r["cores"] == 1 else f"{r['kf']:.4f}", f"{r['imbalance']:.3f}",
             f"{r['launch']:.3f}", f"{r['per_core']:.3e}"] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(b) + " |" for b in body]
        if any(r["cores"] > ncpu for r in rows):
            lines += ["", f"\\* more ranks x threads than the {ncpu} cores here: oversubscribed, not a scaling point."]
    else:
        w = [max(len(x) for x in col) for col in zip(head, *body)]
        lines = ["  ".join(x.rjust(n) for x, n in zip(row, w)) for row in [head, *body]]
    return "\n".join(lines)


def svg(rows, title):
    """Speedup against cores, one polyline per thread count, and the ideal line."""
    W, H, L, B, R, T = 560, 400, 60, 50, 20, 40
    pmax = max(r["cores"] for r in rows)
    smax = max(pmax, max(r["speedup"] for r in rows))
    X = lambda p: L + (p - 1) / max(pmax - 1, 1) * (W - L - R) if pmax > 1 else L + (W - L - R) / 2
    Y = lambda s: H - B - s / smax * (H - B - T)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{L}" y1="{H - B}" x2="{L}" y2="{T}" stroke="black"/>',
           f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">cores (ranks x threads)</text>',
           f'<text x="15" y="{(T + H - B) / 2}" transform="rotate(-90 15 {(T + H - B) / 2})" text-anchor="middle">speedup</text>']
    for p in sorted({r["cores"] for r in rows} | {1}):
        out.append(f'<text x="{X(p)}" y="{H - B + 16}" text-anchor="middle">{p}</text>')
    for k in range(0, int(smax) + 1):
        out.append(f'<text x="{L - 8}" y="{Y(k) + 4}" text-anchor="end">{k}</text>')
    out.append(f'<line x1="{X(1)}" y1="{Y(1)}" x2="{X(pmax)}" y2="{Y(pmax)}" stroke="grey" stroke-dasharray="6,4"/>')
    out.append(f'<text x="{X(pmax) - 4}" y="{Y(pmax) - 6}" text-anchor="end" fill="grey">ideal</text>')
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    for i, t in enumerate(sorted({r["threads"] for r in rows})):
        pts = sorted((r["cores"], r["speedup"]) for r in rows if r["threads"] == t)
        c = colours[i % len(colours)]
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="'
                   + " ".join(f"{X(p):.1f},{Y(s):.1f}" for p, s in pts) + '"/>')
        out += [f'<circle cx="{X(p):.1f}" cy="{Y(s):.1f}" r="4" fill="{c}"/>' for p, s in pts]
        out.append(f'<text x="{L + 10}" y="{T + 16 * (i + 1)}" fill="{c}">{t} thread(s) per rank</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    ap.add_argument("kernel")
    ap.add_argument("--np", type=ints, default=[1, 2], help="rank counts, e.g. 1,2,4")
    ap.add_argument("--threads", type=ints, default=[1], help="threads per rank, e.g. 1,2")
    ap.add_argument("--repeat", type=int, default=3, help="runs per point; the fastest counts")
    ap.add_argument("--svg", type=Path, help="plot path [default: scaling-KERNEL.svg]")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--json", type=Path, help="also write every row, unrounded, as JSON here")
    ap.add_argument("--bin", type=Path, default=ROOT / "target" / "release" / "pikernels")
    ap.add_argument("--timeout", type=float, default=600, help="seconds one run may take")
    args, extra = ap.parse_known_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if not args.bin.exists():
        ap.error(f"{args.bin} not found: run `cargo build --release` first")
    rows = sweep(args, extra)
    print(table(rows, args.markdown))
    if args.json:
        # NaN (no Karp-Flatt for one core) is not JSON: null instead.
        clean = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in rows]
        args.json.write_text(json.dumps(clean, indent=1) + "\n")
    path = args.svg or Path(f"scaling-{args.kernel}.svg")
    path.write_text(svg(rows, f"pikernels {args.kernel} {' '.join(extra)}".strip()))
    print(f"plot: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
