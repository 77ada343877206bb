#!/usr/bin/env python3
"""Heat's efficiency at -np 2 against -np 1, on compute, wall and whole-process
time, np 1 and np 2 in turn (interleaved), three repetitions per step count:

    python3 scripts/heat_scaling.py [BINARY] [STEPS,STEPS...]

defaults target/release/pikernels and 100,300; 4000x4000 cells, one thread a
rank, the PNG to /tmp/heat-scaling-np{1,2}.png. Efficiency = np 1's time over
twice np 2's; compute is the slowest rank's compute_s, wall the report's
wall_s, total the whole mpirun process. Prints the digests and verdicts too.
Used for docs/benchmarks.md (heat)."""
binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/pikernels"
steps_list = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "100,300").split(",")]
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_mpi_yield_when_idle="1")
for steps in steps_list:
  for rep in range(3):
    row = {}
    for np_ in (1, 2):
        cmd = ["mpirun", "-np", str(np_), binary, "heat", "--size", "4000x4000", "--steps", str(steps),
               "--threads", "1", "--out", f"/tmp/heat-scaling-np{np_}.png", "--format", "json"]
        t = time.time()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        el = time.time() - t
        r = json.loads(out.stdout)
        tm = r["timing"]
        row[np_] = (tm["compute_s"]["max"], tm["comm_s"]["max"], tm["wall_s"], tm["verify_s"], tm["output_s"], el, r["result"]["field_digest"], r["verified"])
    c1, w1 = row[1][0], row[1][2]
    c2, w2 = row[2][0], row[2][2]
    print(f"steps {steps} rep {rep}: np1 compute {c1:.2f} wall {w1:.2f} verify {row[1][3]:.2f} output {row[1][4]:.2f} total {row[1][5]:.2f} | "
          f"np2 compute {c2:.2f} comm {row[2][1]:.2f} wall {w2:.2f} verify {row[2][3]:.2f} output {row[2][4]:.2f} total {row[2][5]:.2f} | "
          f"eff compute {c1/(2*c2)*100:.0f}% wall {w1/(2*w2)*100:.0f}% total {row[1][5]/(2*row[2][5])*100:.0f}% | {row[1][6]} {row[2][6]} {row[1][7]} {row[2][7]}", flush=True)
