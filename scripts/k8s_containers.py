"""The MPIJobs of k8s/ run as containers of the built image, laid out as the
Kubeflow MPI operator (v2beta1 controller) lays out their pods:

- one network per job; workers named `<job>-worker-<i>` (their hostname),
  reachable from the launcher as `<job>-worker-<i>.<job>.<namespace>.svc`
  (the job's headless Service); the workers also reach the launcher and each
  other by short name (`<job>-launcher`), because the operator adds the
  Service's domain to the workers' DNS search list, which MPICH's and Intel
  MPI's proxies need to call the launcher back; the launcher gets no such
  search domain. There is no cluster DNS here: these names go into each
  container's /etc/hosts, with addresses fixed before the containers start;
- the ssh Secret (an ECDSA P-521 key in PEM, as the operator generates it)
  mounted read-only at the job's `sshAuthMountPath` in launcher and workers,
  with the operator's items: `id_rsa`, `id_rsa.pub`, `authorized_keys`, mode
  0644, owned by root (a Secret volume without defaultMode);
- the ConfigMap at /etc/mpi: `hostfile` (0444; `<fqdn> slots=N` for OpenMPI,
  `<fqdn>:N` for MPICH and Intel) and `discover_hosts.sh` (0555);
- the operator's launcher environment for the job's `mpiImplementation`;
- workers run exactly the manifest's command as the manifest's user, after
  its init containers (as their own user) on the same output volume; the
  launcher starts once every worker's sshd accepts connections
  (`WaitForWorkersReady` with the manifests' TCP readiness probe);
- each worker's output volume is a directory standing for its node's
  hostPath, and files are taken from there, as docs/deploy-k3s.md says.

The job must succeed with every rank on a worker, in hostfile order, and give
the results (and the PNG, byte for byte) of the same kernel arguments run in
one container of the image.

Run through scripts/k8s-check.sh containers IMAGE MPI[,MPI] (scripts/image-check.sh).
"""

import ipaddress
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAUNCH_TIMEOUT_S = 300
PODMAN_TIMEOUT_S = 120


def podman(*args, timeout=PODMAN_TIMEOUT_S, check=True):
    try:
        r = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise SystemExit(f"podman {' '.join(args)} ran over {timeout} s:\n{e.stdout or ''}{e.stderr or ''}")
    if check and r.returncode != 0:
        raise SystemExit(f"podman {' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r


def secret_dir(tmp):
    d = tmp / "ssh-secret"
    d.mkdir()
    key = tmp / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-b", "521", "-m", "PEM", "-N", "", "-f", str(key)], check=True)
    pub = (tmp / "key.pub").read_text()
    (d / "id_rsa").write_bytes(key.read_bytes())
    (d / "id_rsa.pub").write_text(pub)
    (d / "authorized_keys").write_text(pub)
    for f in d.iterdir():
        f.chmod(0o644)
    d.chmod(0o755)
    return d


def config_dir(tmp, job, fqdns, slots):
    d = tmp / "mpi-config"
    d.mkdir()
    line = "{} slots={}\n" if job["mpi"] == "OpenMPI" else "{}:{}\n"
    (d / "hostfile").write_text("".join(line.format(h, slots) for h in fqdns))
    (d / "discover_hosts.sh").write_text("#!/bin/sh\n" + "".join(f"echo {h}\n" for h in fqdns))
    (d / "hostfile").chmod(0o444)
    (d / "discover_hosts.sh").chmod(0o555)
    d.chmod(0o755)
    return d


def user_flag(uid):
    return ["--user", f"{uid}:{uid}"] if uid is not None else []


def entrypoint(argv):
    """A pod's `command` replaces the image's ENTRYPOINT and `args` its CMD;
    podman takes the first as --entrypoint (JSON) and the rest after the image."""
    return ["--entrypoint", json.dumps(argv[:1])], argv[1:]


def wait_ready(ip, port, deadline):
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((ip, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.25)
    return False


def single_run(image, kernel_args, tmp):
    """The same kernel arguments in one container of the image (no mpirun),
    --out/--report pointed into a scratch directory."""
    out = tmp / "single"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    args, png = [], None
    it = iter(kernel_args)
    for a in it:
        if a == "--out":
            next(it)
            args += ["--out", "/single/single.png"]
            png = out / "single.png"
        elif a == "--report":
            next(it)
        else:
            args.append(a)
    r = podman("run", "--pull=never", "--rm", "-v", f"{out}:/single", image, "pikernels", *args, timeout=LAUNCH_TIMEOUT_S, check=False)
    if r.returncode != 0:
        raise SystemExit(f"single-container reference {args} failed:\n{r.stdout}{r.stderr}")
    return json.loads(r.stdout), (png.read_bytes() if png else None)


def local_image(job, image):
    """The locally built image standing for the manifest's: the MPICH build
    (tag suffix -mpich) or the default OpenMPI one."""
    tags = {job[r]["image"].rsplit(":", 1)[-1] for r in ("launcher", "worker")}
    if len(tags) != 1:
        raise SystemExit(f"{job['name']}: launcher and workers use different images: {tags}")
    return image + ("-mpich" if tags.pop().endswith("-mpich") else "")


def run_job(job, image, tmp, control=False):
    """Runs one MPIJob. With `control`, the launcher lacks the operator's
    OMPI_MCA_orte_* variables and must fail: OpenMPI 4.1 then shortens the
    hostfile's names to `<job>-worker-<i>`, which do not resolve, as in a pod.
    That shows the run depends on the operator's layout, not on luck."""
    image = local_image(job, image)
    name, ns = job["name"], job["namespace"]
    workers, slots = job["workers"], job["slots_per_worker"]
    net = f"pikernels-{name}"
    hostnames = [f"{name}-worker-{i}" for i in range(workers)]
    fqdns = [f"{h}.{name}.{ns}.svc" for h in hostnames]
    secret = secret_dir(tmp)
    config = config_dir(tmp, job, fqdns, slots)
    out_mount = job["out_mount"]
    nodes = [tmp / f"node-{i}" for i in range(workers)]
    ssh_mount = job["ssh_mount"]
    started = []
    podman("network", "rm", "-f", net, check=False)
    podman("network", "create", net)
    try:
        subnet = ipaddress.ip_network(podman("network", "inspect", net, "--format", "{{range .Subnets}}{{.Subnet}}{{end}}").stdout.strip())
        launcher_ip = str(subnet.network_address + 9)
        ips = [str(subnet.network_address + 10 + i) for i in range(workers)]
        launcher = f"{name}-launcher"
        # The workers' view: the Service's domain is in their search list.
        worker_hosts = [f"--add-host={launcher}:{launcher_ip}", f"--add-host={launcher}.{name}.{ns}.svc:{launcher_ip}"]
        worker_hosts += [f"--add-host={h}:{ip}" for h, ip in zip(hostnames, ips)]
        worker_hosts += [f"--add-host={f}:{ip}" for f, ip in zip(fqdns, ips)]
        for i, host in enumerate(hostnames):
            nodes[i].mkdir()  # the node's hostPath directory, root-owned as kubelet makes it
            vol = ["-v", f"{nodes[i]}:{out_mount}"] if out_mount else []
            for init in job["worker"]["init"]:
                ep, rest = entrypoint(init["argv"])
                podman("run", "--pull=never", "--rm", *user_flag(init["user"]), *vol, *ep, image, *rest)
            ep, rest = entrypoint(job["worker"]["argv"])
            env = [f"--env={k}={v}" for k, v in (job["worker"]["env"] | {"K_MPI_JOB_ROLE": "worker"}).items()]
            podman(
                "run", "--pull=never", "-d", "--name", host, "--hostname", host, "--network", net, "--ip", ips[i],
                *[h for h in worker_hosts if not h.startswith(f"--add-host={host}:")],
                *user_flag(job["worker"]["user"]), *env, "-v", f"{secret}:{ssh_mount}:ro", *vol, *ep, image, *rest,
            )  # fmt: skip
            started.append(host)
        deadline = time.monotonic() + 60
        for host, ip in zip(hostnames, ips):
            if not wait_ready(ip, 2222, deadline):
                logs = podman("logs", host, check=False)
                raise SystemExit(f"{name}: worker {host} never accepted on 2222 (its sshd):\n{logs.stdout}{logs.stderr}")
        ep, rest = entrypoint(job["launcher"]["argv"])
        env = job["operator_env"] | job["launcher"]["env"]
        if control:
            env = {k: v for k, v in env.items() if not k.startswith("OMPI_MCA_orte_")}
        t = time.monotonic()
        started.append(launcher)
        r = podman(
            "run", "--pull=never", "--rm", "--name", launcher, "--hostname", launcher, "--network", net, "--ip", launcher_ip,
            *user_flag(job["launcher"]["user"]), *[f"--env={k}={v}" for k, v in env.items()],
            *[f"--add-host={f}:{ip}" for f, ip in zip(fqdns, ips)],
            "-v", f"{secret}:{ssh_mount}:ro", "-v", f"{config}:/etc/mpi:ro", *ep, image, *rest,
            timeout=LAUNCH_TIMEOUT_S, check=False,
        )  # fmt: skip
        took = time.monotonic() - t
        if control:
            short = f"Could not resolve hostname {name}-worker-"
            if r.returncode == 0 or short not in r.stderr:
                raise SystemExit(f"{name}: without OMPI_MCA_orte_* the launcher should fail with '{short}':\n{r.stdout}{r.stderr}")
            print(f"containers: {name}: the control without the operator's OMPI_MCA_orte_* variables failed as it must")
            return
        if r.returncode != 0:
            logs = "".join(podman("logs", h, check=False).stderr for h in hostnames)
            raise SystemExit(f"{name}: the launcher {job['launcher']['argv']} failed ({r.returncode}):\n{r.stdout}{r.stderr}\nworkers:\n{logs}")
    finally:
        for h in started:
            podman("rm", "-f", "-t", "0", h, check=False)
        podman("network", "rm", "-f", net, check=False)

    report = json.loads(r.stdout)
    problems = []
    if report.get("verified") is not True:
        problems.append(f"not verified: {report.get('verification')}")
    want_hosts = [h for h in hostnames for _ in range(slots)]
    if report.get("hosts") != want_hosts:
        problems.append(f"ranks ran on {report.get('hosts')}, not the workers {want_hosts}")
    argv = job["launcher"]["argv"]
    kernel_args = argv[argv.index("pikernels") + 1 :]
    single, png = single_run(image, kernel_args, tmp)
    # The result, but for what describes the run (output path, process grid, rates).
    ours, theirs = ({k: v for k, v in r["result"].items() if k not in job["result_ignores"]} for r in (report, single))
    if ours != theirs:
        problems.append(f"result {ours} differs from one container's {theirs}")
    files = 0
    if png is not None:
        target = kernel_args[kernel_args.index("--out") + 1]
        rel = pathlib.PurePosixPath(target).relative_to(out_mount)
        written = nodes[0] / rel
        if not written.is_file():
            problems.append(f"worker 0's node has no {rel} (rank 0 writes {target})")
        else:
            files += 1
            if written.read_bytes() != png:
                problems.append(f"{rel} on worker 0's node differs from one container's PNG")
            if written.stat().st_uid != job["worker"]["user"]:
                problems.append(f"{rel} is owned by uid {written.stat().st_uid}, not the workers' user")
        for i in range(1, workers):
            if any(nodes[i].iterdir()):
                problems.append(f"worker {i}'s node has files: only rank 0 writes")
    if problems:
        raise SystemExit(f"{name} ({job['kustomization']}):\n  " + "\n  ".join(problems))
    print(
        f"containers: {name}: {image}, {workers} workers x {slots} slots, {job['mpi']}, ranks on {report['hosts']}, "
        f"result identical to one container's{', PNG too' if files else ''} (launcher {took:.1f} s)"
    )


def main(specs, image, built):
    """Runs every MPIJob whose mpiImplementation is in `built` (the MPIs
    whose images this run built: image-check.sh builds the MPICH one only
    with --mpich); the others are named as not run, never passed."""
    if os.geteuid() != 0:
        raise SystemExit("the container emulation needs root (podman networks)")
    jobs = [j for j in specs if "workers" in j]
    if not jobs:
        raise SystemExit("no MPIJob among the kustomizations")
    # `built` names mpiImplementations; the OpenMPI image built here is the
    # default (OpenMPI 4.1) one, so a job for the -openmpi5 build is not run.
    skipped = [j for j in jobs if j["mpi"] not in built or j["variant"] == "openmpi5"]
    jobs = [j for j in jobs if j not in skipped]
    for job in jobs:
        with tempfile.TemporaryDirectory(prefix="pikernels-containers-") as tmp:
            run_job(job, image, pathlib.Path(tmp))
    control = next(j for j in jobs if j["mpi"] == "OpenMPI")
    with tempfile.TemporaryDirectory(prefix="pikernels-containers-") as tmp:
        run_job(control, image, pathlib.Path(tmp), control=True)
    print(f"containers: {len(jobs)} MPIJobs ran as containers of {image}")
    for j in skipped:
        print(f"containers: NOT RUN: {j['name']} ({j['variant']}): its image was not built in this run")
    sys.stdout.flush()
