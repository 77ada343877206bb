#!/usr/bin/env python3
"""Checks the Kubernetes manifests in k8s/ without a cluster.

    k8s_manifests.py validate    render every kustomization, validate every object
    k8s_manifests.py launchers   print each MPIJob's launcher as JSON (for the
                                 emulation test in tests/k8s.rs)
    k8s_manifests.py containers IMAGE MPI[,MPI]
                                 run each MPIJob of those mpiImplementations
                                 (OpenMPI, MPICH) as containers of IMAGE (its
                                 -mpich tag for MPICH; scripts/k8s_containers.py,
                                 image-check.sh)

Run it through scripts/k8s-check.sh, which makes the Python environment.

MPI builds: an image tag's suffix names the MPI the image carries (none:
OpenMPI 4.1, -mpich: MPICH, -openmpi5: OpenMPI 5; VARIANTS below), and an
MPIJob's mpiImplementation and launcher flags must fit it.

Validation: every kustomization under k8s/overlays/ and k8s/indexed-job/ is
rendered with `kubectl kustomize`; MPIJobs are validated against the CRD's
openAPIV3Schema (k8s/schemas/, copied from the Kubeflow MPI Operator) made
strict (an unknown field is an error, where the API server would silently
drop it), their pod templates also as core PodTemplates; built-in kinds
against the Kubernetes schemas of kubernetes-validate. Then the rules the
deployment depends on (docs/deploy-k3s.md) are checked one by one.
"""

import re
import copy
import json
import os
import pathlib
import shlex
import subprocess
import sys

import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
CRD = K8S / "schemas" / "kubeflow.org_mpijobs.yaml"
KUBERNETES_VERSION = "1.32.0"  # K3s v1.32, as docs/deploy-k3s.md installs
HOSTFILE = "/etc/mpi/hostfile"
SSH_PORT = 2222
# The binary whose kernels' declarations give the result keys that describe
# a run rather than its result (where it wrote, its process grid, its
# rates): the emulations compare an MPIJob's result with one process's minus
# these. PIKERNELS_BIN, or this checkout's release build.
BINARY = os.environ.get("PIKERNELS_BIN") or str(ROOT / "target" / "release" / "pikernels")
_RUN_KEYS = {}


def run_keys(argv):
    """The result keys that describe the run of the kernel `argv` runs, as
    the binary lists them (`pikernels list --format json`, each kernel
    declaring them once)."""
    if not _RUN_KEYS:
        try:
            out = subprocess.run([BINARY, "list", "--format", "json"], capture_output=True, text=True, check=True,
                                 timeout=60).stdout
        except (OSError, subprocess.SubprocessError) as e:
            raise SystemExit(f"cannot list the kernels with {BINARY} (build it first, or set PIKERNELS_BIN): {e}")
        _RUN_KEYS.update({k["name"]: k["run_keys"] for k in json.loads(out)})
    after = argv[argv.index("pikernels") + 1:] if "pikernels" in argv else []
    if not after or after[0] not in _RUN_KEYS:
        raise SystemExit(f"no kernel in {shlex.join(argv)}")
    return list(_RUN_KEYS[after[0]])


def kustomizations():
    dirs = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
    return dirs + [K8S / "indexed-job"]


def render(directory):
    out = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"kubectl kustomize {directory} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def strict(schema):
    """The schema with unknown fields rejected wherever it lists the fields."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return schema


def mpijob_validator():
    crd = next(d for d in yaml.safe_load_all(CRD.read_text()) if d)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v2beta1")
    schema = strict(version["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema)


class Problems:
    def __init__(self):
        self.items = []

    def add(self, where, what):
        self.items.append(f"{where}: {what}")


def containers(pod_spec):
    return pod_spec.get("initContainers", []) + pod_spec.get("containers", [])


def check_resources(p, where, pod_spec):
    for c in containers(pod_spec):
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(kind, {}):
                    p.add(where, f"container {c['name']} has no resources.{kind}.{r}")


def check_scheduling(p, where, pod_spec, spread):
    """spread: None (the launcher: no spreading), "required" or "preferred"."""
    if pod_spec.get("nodeSelector", {}).get("role") != "worker":
        p.add(where, "no nodeSelector role=worker")
    anti = pod_spec.get("affinity", {}).get("podAntiAffinity", {})
    if spread and not anti.get(f"{spread}DuringSchedulingIgnoredDuringExecution"):
        p.add(where, f"no {spread} podAntiAffinity spreading the pods over nodes")


def duration_s(text):
    """Seconds of a pikernels --timeout value: 90s, 29m, 1h30m, 500ms, or plain seconds."""
    scale = {"ms": 1e-3, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+(?:\.\d+)?)([a-z]*)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    if len(parts) == 1 and parts[0][1] == "":
        return float(parts[0][0])
    if any(u not in scale for _, u in parts):
        return None
    return sum(float(n) * scale[u] for n, u in parts)


def check_timeout(p, name, argv, deadline):
    """A pikernels run passes --timeout a little under the pod's deadline, so
    the report explains a deadline instead of the pod vanishing."""
    if "pikernels" not in argv or argv[argv.index("pikernels") + 1:][:1] == ["list"]:
        return
    if "--timeout" not in argv:
        p.add(name, "pikernels runs without --timeout (set it a little under activeDeadlineSeconds)")
        return
    limit = duration_s(argv[argv.index("--timeout") + 1])
    if limit is None or deadline is None or not (0.8 * deadline <= limit < deadline):
        p.add(name, f"--timeout {argv[argv.index('--timeout') + 1]} is not a little under activeDeadlineSeconds {deadline}")


def check_mpijob(p, name, job, validator):
    for e in validator.iter_errors(job):
        p.add(name, f"CRD schema: {'/'.join(map(str, e.absolute_path))}: {e.message}")
    spec = job["spec"]
    if spec.get("launcherCreationPolicy") != "WaitForWorkersReady":
        p.add(name, "launcherCreationPolicy is not WaitForWorkersReady")
    if not isinstance(spec.get("slotsPerWorker"), int):
        p.add(name, "slotsPerWorker is not set")
    run = spec.get("runPolicy", {})
    for field in ("cleanPodPolicy", "backoffLimit", "activeDeadlineSeconds"):
        if field not in run:
            p.add(name, f"runPolicy.{field} is not set")
    replicas = spec["mpiReplicaSpecs"]
    for role in ("Launcher", "Worker"):
        pod = replicas[role]["template"]
        where = f"{name} {role}"
        try:
            kubernetes_validate.validate(
                {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": pod},
                KUBERNETES_VERSION,
                strict=True,
            )
        except kubernetes_validate.ValidationError as e:
            p.add(where, f"pod template: {str(e).splitlines()[0]}")
        check_resources(p, where, pod["spec"])
        check_scheduling(p, where, pod["spec"], "required" if role == "Worker" else None)
    launcher = replicas["Launcher"]["template"]["spec"]["containers"][0]
    argv = launcher.get("command", []) + launcher.get("args", [])
    line = " ".join(argv)
    if argv[:1] != ["mpirun"]:
        p.add(name, f"the launcher does not run mpirun: {line}")
    if f"--hostfile {HOSTFILE}" not in line:
        p.add(name, f"the launcher does not pass --hostfile {HOSTFILE} (OpenMPI 5 ignores OMPI_MCA_orte_*)")
    if "--bind-to none" not in line:
        p.add(name, "the launcher does not pass --bind-to none (rayon threads would share one core)")
    check_timeout(p, name, argv, run.get("activeDeadlineSeconds"))
    images = {c["image"] for r in ("Launcher", "Worker") for c in containers(replicas[r]["template"]["spec"])}
    variants = {image_variant(i) for i in images}
    if len(variants) != 1:
        p.add(name, f"the pods use images of different MPI builds: {sorted(images)}")
    else:
        check_launcher_for_mpi(p, name, spec.get("mpiImplementation"), variants.pop(), sorted(images), argv)
    worker = replicas["Worker"]["template"]["spec"]["containers"][0]
    probe = worker.get("readinessProbe", {}).get("tcpSocket", {}).get("port")
    if probe != SSH_PORT:
        p.add(name, f"the worker's readinessProbe is not a TCP check of port {SSH_PORT}")


# The MPI builds of k8s/Dockerfile, named by their image tag's suffix
# (docs/deploy-k3s.md, "Which MPI"): the mpiImplementation an MPIJob on that
# image must declare (the operator writes the hostfile and sets variables for
# it), and the options its mpirun takes before `pikernels`, with their
# argument counts. Each list is what that launcher accepts and the manifests
# need, so a flag of one MPI in another's job is caught before a pod fails on
# it: OpenMPI 4.1's mpirun rejects --prtemca, MPICH's Hydra rejects both.
VARIANTS = {
    "openmpi4": {"suffix": "", "mpi": "OpenMPI", "options": {"--hostfile": 1, "--bind-to": 1, "--mca": 2}},
    "openmpi5": {
        "suffix": "-openmpi5",
        "mpi": "OpenMPI",
        "options": {"--hostfile": 1, "--bind-to": 1, "--mca": 2, "--prtemca": 2},
    },
    "mpich": {"suffix": "-mpich", "mpi": "MPICH", "options": {"--hostfile": 1, "-f": 1, "--bind-to": 1}},
}
# OpenMPI 5's mpirun (PRRTE) ignores the operator's OMPI_MCA_orte_* variables,
# orte_keep_fqdn_hostnames included; its own setting, off by default, is
# prte_keep_fqdn_hostnames. OpenMPI 5.0.11 kept the hostfile's full names
# and ran the job without it as well (tests/k8s.rs, measured); the -openmpi5
# jobs set it anyway, so no PRRTE falls back to the short `<job>-worker-<i>`,
# which does not resolve in a pod (OpenMPI 4.1 without the operator's
# variable shows that). This is the spelling its mpirun accepts.
OPENMPI5_KEEP_FQDN = ["--prtemca", "prte_keep_fqdn_hostnames", "1"]


def image_variant(image):
    """The MPI build an image tag carries: its suffix, else the default."""
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
    for variant, v in VARIANTS.items():
        if v["suffix"] and tag.endswith(v["suffix"]):
            return variant
    return "openmpi4"


def launcher_options(argv):
    """mpirun's options and their arguments: what comes before `pikernels`."""
    return argv[1 : argv.index("pikernels")] if "pikernels" in argv else argv[1:]


def check_launcher_for_mpi(p, name, mpi, variant, images, argv):
    want = VARIANTS[variant]
    if mpi != want["mpi"]:
        p.add(
            name,
            f"mpiImplementation {mpi} with images {images}: tag suffix "
            f"'{want['suffix'] or '(none)'}' is the {variant} build, mpiImplementation {want['mpi']}",
        )
    opts = launcher_options(argv)
    i = 0
    while i < len(opts):
        n = want["options"].get(opts[i])
        if n is None or i + n >= len(opts):
            p.add(name, f"mpirun option {opts[i]!r} is not one the {variant} launcher takes here "
                        f"({', '.join(want['options'])}): {' '.join(argv)}")
            break
        i += 1 + n
    keeps = any(argv[k : k + 3] == OPENMPI5_KEEP_FQDN for k in range(len(argv)))
    if variant == "openmpi5" and not keeps:
        p.add(name, f"the OpenMPI 5 launcher does not pass {' '.join(OPENMPI5_KEEP_FQDN)} (PRRTE's own setting "
                    "for keeping the hostfile's full names, which resolve in a pod)")
    if variant != "openmpi5" and any("prte" in a for a in argv):
        p.add(name, f"a PRRTE (OpenMPI 5) setting in a {variant} job: {' '.join(argv)}")


def check_indexed_job(p, name, job):
    spec = job["spec"]
    if spec.get("completionMode") != "Indexed":
        p.add(name, "completionMode is not Indexed")
    pod = spec["template"]["spec"]
    check_resources(p, name, pod)
    check_scheduling(p, name, pod, "preferred")
    c = pod["containers"][0]
    argv = c.get("command", []) + c.get("args", [])
    want = f"$(JOB_COMPLETION_INDEX)/{spec.get('completions')}"
    if want not in argv:
        p.add(name, f"args do not contain --partition {want} (parts must equal completions): {argv}")
    check_timeout(p, name, argv, spec.get("activeDeadlineSeconds"))
    if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in c.get("env", [])):
        p.add(name, "JOB_COMPLETION_INDEX is not declared in env, so $(JOB_COMPLETION_INDEX) would not expand")


def check_image(p):
    """What the manifests and the emulation test assume about the image (no
    container engine here to build it): its files, user, packages and port."""
    dockerfile = (K8S / "Dockerfile").read_text()
    stages = dockerfile.split("\nFROM ")
    if len(stages) != 3:
        p.add("k8s/Dockerfile", "is not two stages (builder and runtime)")
        return
    builder, runtime = stages[1], stages[2]
    for pkg in ("libopenmpi-dev", "libmpich-dev", "libclang-dev"):
        if pkg not in builder:
            p.add("k8s/Dockerfile", f"the builder stage does not install {pkg}")
    for pkg in ("openmpi-bin", "mpich", "openssh-server", "ffmpeg"):
        if pkg not in runtime:
            p.add("k8s/Dockerfile", f"the runtime stage does not install {pkg}")
    for needle, why in (
        ("USER mpiuser", "runs as the non-root mpiuser"),
        ("--uid 1000", "mpiuser has uid 1000 (the manifests' runAsUser)"),
        ("/usr/local/bin/pikernels", "installs pikernels on the PATH of ssh sessions"),
        ("k8s/docker/sshd_config /etc/ssh/sshd_config.d/", "installs the sshd drop-in"),
        ("k8s/docker/ssh_config /etc/ssh/ssh_config.d/", "installs the ssh client drop-in"),
        (f"EXPOSE {SSH_PORT}", f"exposes {SSH_PORT}"),
    ):
        if needle not in runtime:
            p.add("k8s/Dockerfile", f"the runtime stage no longer {why} ({needle!r} missing)")
    for name in ("sshd_config", "ssh_config"):
        text = (K8S / "docker" / name).read_text()
        ports = [line.split()[1] for line in text.splitlines() if line.strip().startswith("Port ")]
        if ports != [str(SSH_PORT)]:
            p.add(f"k8s/docker/{name}", f"Port is {ports}, not {SSH_PORT}")


def validate():
    validator = mpijob_validator()
    p = Problems()
    check_image(p)
    seen = 0
    for directory in kustomizations():
        for obj in render(directory):
            seen += 1
            name = f"{directory.relative_to(ROOT)}: {obj['kind']} {obj['metadata']['name']}"
            if obj["kind"] == "MPIJob":
                if obj["apiVersion"] != "kubeflow.org/v2beta1":
                    p.add(name, f"apiVersion {obj['apiVersion']} is not kubeflow.org/v2beta1")
                check_mpijob(p, name, obj, validator)
                continue
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as e:
                p.add(name, f"Kubernetes {KUBERNETES_VERSION} schema: {str(e).splitlines()[0]}")
            if obj["kind"] == "Job":
                check_indexed_job(p, name, obj)
    # The validation must be able to fail: a misspelt field has to be caught.
    canary = copy.deepcopy(next(o for o in render(kustomizations()[0]) if o["kind"] == "MPIJob"))
    canary["spec"]["slotPerWorker"] = 1
    if not list(validator.iter_errors(canary)):
        p.add("self-check", "the strict CRD schema accepted a misspelt field (slotPerWorker)")
    # So must the per-MPI rules: each of these launchers is wrong for its build.
    argv = ["mpirun", "--hostfile", HOSTFILE, "--bind-to", "none", "pikernels", "pi-mc"]
    keep = argv[:1] + OPENMPI5_KEEP_FQDN + argv[1:]
    for what, mpi, variant, bad in (
        ("OpenMPI 5's flags on OpenMPI 4.1", "OpenMPI", "openmpi4", keep),
        ("OpenMPI 5 without keeping full names", "OpenMPI", "openmpi5", argv),
        ("an OpenMPI flag for Hydra", "MPICH", "mpich", argv[:1] + ["--mca", "btl", "tcp,self"] + argv[1:]),
        ("the MPICH image as OpenMPI", "OpenMPI", "mpich", argv),
        ("the OpenMPI 5 image as MPICH", "MPICH", "openmpi5", keep),
    ):
        q = Problems()
        check_launcher_for_mpi(q, "self-check", mpi, variant, [], bad)
        if not q.items:
            p.add("self-check", f"the per-MPI rules accepted {what}")
    if p.items:
        print("\n".join(p.items), file=sys.stderr)
        raise SystemExit(f"{len(p.items)} problem(s) in the manifests")
    print(f"ok: {seen} objects from {len(kustomizations())} kustomizations valid")


def operator_env(mpi, slots):
    """What the MPI operator sets in a launcher's environment for each MPI
    (kubeflow/mpi-operator, pkg/controller/mpi_job_controller.go, v2beta1).
    Both emulations use it: tests/k8s.rs and scripts/k8s_containers.py."""
    env = {"K_MPI_JOB_ROLE": "launcher", "NVIDIA_VISIBLE_DEVICES": "", "NVIDIA_DRIVER_CAPABILITIES": ""}
    hostfile = "/etc/mpi/hostfile"
    if mpi == "OpenMPI":
        env |= {
            "OMPI_MCA_orte_keep_fqdn_hostnames": "true",
            "OMPI_MCA_orte_default_hostfile": hostfile,
            "OMPI_MCA_plm_rsh_args": "-o ConnectionAttempts=10",
            "OMPI_MCA_orte_set_default_slots": str(slots),
        }
    elif mpi == "MPICH":
        env |= {"HYDRA_HOST_FILE": hostfile, "HYDRA_LAUNCH_EXTRA_ARGS": "-o ConnectionAttempts=10"}
    else:
        env |= {
            "I_MPI_HYDRA_HOST_FILE": hostfile,
            "I_MPI_HYDRA_BOOTSTRAP_EXEC_EXTRA_ARGS": "-o ConnectionAttempts=10",
            "I_MPI_PERHOST": str(slots),
        }
    return env


def launcher_specs():
    """Each MPIJob's launcher and workers, and the Indexed Job's command, as
    rendered: what the emulations run."""
    out = []
    for directory in kustomizations():
        for obj in render(directory):
            if obj["kind"] == "MPIJob":
                spec = obj["spec"]
                c = spec["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
                out.append(
                    {
                        "kustomization": str(directory.relative_to(ROOT)),
                        "name": obj["metadata"]["name"],
                        "namespace": obj["metadata"]["namespace"],
                        "slots_per_worker": spec.get("slotsPerWorker", 1),
                        "result_ignores": run_keys(c.get("command", []) + c.get("args", [])),
                        "workers": spec["mpiReplicaSpecs"]["Worker"]["replicas"],
                        "argv": c.get("command", []) + c.get("args", []),
                        "env": {e["name"]: e["value"] for e in c.get("env", []) if "value" in e},
                        "mpi": spec.get("mpiImplementation", "OpenMPI"),
                        # The MPI build of the image (tag suffix): openmpi4, openmpi5 or mpich.
                        "variant": image_variant(c["image"]),
                        "operator_env": operator_env(
                            spec.get("mpiImplementation", "OpenMPI"), spec.get("slotsPerWorker", 1)
                        ),
                        "ssh_mount": spec.get("sshAuthMountPath", "/root/.ssh"),
                        "launcher": replica_pod(spec, "Launcher"),
                        "worker": replica_pod(spec, "Worker"),
                        "out_mount": next(
                            (
                                m["mountPath"]
                                for m in spec["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0].get(
                                    "volumeMounts", []
                                )
                            ),
                            None,
                        ),
                    }
                )
            elif obj["kind"] == "Job":
                c = obj["spec"]["template"]["spec"]["containers"][0]
                out.append(
                    {
                        "kustomization": str(directory.relative_to(ROOT)),
                        "name": obj["metadata"]["name"],
                        "indexed_completions": obj["spec"]["completions"],
                        "argv": c.get("command", []) + c.get("args", []),
                    }
                )
    return out


def replica_pod(spec, role):
    """What an emulation needs of one replica's pod: its first container's
    command, user, env, and its init containers' commands."""
    pod = spec["mpiReplicaSpecs"][role]["template"]["spec"]
    c = pod["containers"][0]
    user = pod.get("securityContext", {}).get("runAsUser")
    return {
        "image": c["image"],
        "argv": c.get("command", []) + c.get("args", []),
        "user": user,
        "env": {e["name"]: e["value"] for e in c.get("env", []) if "value" in e},
        "init": [
            {
                "argv": i.get("command", []) + i.get("args", []),
                "user": i.get("securityContext", {}).get("runAsUser", user),
                "mounts": [m["mountPath"] for m in i.get("volumeMounts", [])],
            }
            for i in pod.get("initContainers", [])
        ],
    }


def launchers():
    print(json.dumps(launcher_specs(), indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["containers"] and len(sys.argv) == 4:
        import k8s_containers

        k8s_containers.main(launcher_specs(), sys.argv[2], sys.argv[3].split(","))
        raise SystemExit(0)
    commands = {"validate": validate, "launchers": launchers}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        raise SystemExit(f"usage: {shlex.quote(sys.argv[0])} {'|'.join(commands)} | containers IMAGE MPI[,MPI]")
    commands[sys.argv[1]]()
