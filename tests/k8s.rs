//! The Kubernetes manifests in k8s/, checked without a cluster:
//!
//! - every kustomization renders and validates (scripts/k8s-check.sh);
//! - every MPIJob's launcher command runs exactly as the rendered manifest
//!   has it, in the environment the MPI operator creates: worker hosts named
//!   `<job>-worker-<i>` (network namespaces with sshd on 2222 configured by
//!   the image's own sshd drop-in), reachable as
//!   `<job>-worker-<i>.<job>.<namespace>.svc`, the launcher named
//!   `<job>-launcher` (workers resolve it by that short name, as through the
//!   Service domain the operator adds to their DNS search list), the
//!   hostfile at /etc/mpi/hostfile in the job's MPI syntax (`host slots=N`
//!   for OpenMPI, `host:N` for MPICH, N from `slotsPerWorker`), the image's
//!   ssh client drop-in, and the variables the operator sets for that MPI;
//! - the Indexed Job's parts, merged, give the single run's result.
//!
//! Which MPI a job runs with follows its image tag (k8s_manifests.py,
//! VARIANTS): the default image's OpenMPI 4.1 is this machine's, with the
//! binary under test. The jobs for the MPICH and OpenMPI 5 builds (tags
//! `-mpich`, `-openmpi5`) run in [`other_mpi_manifests_launch_as_written`]
//! with pikernels built against that MPI and that MPI's launcher as `mpirun`,
//! named by `PIKERNELS_K8S_*` variables: scripts/mpi-matrix.sh builds them and
//! runs it (a CI step); without the variables it skips.
//!
//! The launcher's /etc (hosts, mpi/hostfile, ssh drop-ins) is an overlay in
//! a private mount namespace, so the machine's own files are never touched;
//! `pikernels` (and the MPI's programs, for another MPI) are put at
//! /usr/local/bin, where the image has them, the same way, on the launcher
//! and on each worker. Differences from a cluster, on purpose: everything
//! runs as root (so `OMPI_ALLOW_RUN_AS_ROOT=1`), and the launcher's ssh key
//! comes from an `IdentityFile` drop-in instead of the operator's Secret.
//! The image itself, its non-root user and the Secret's layout are exercised
//! by scripts/image-check.sh, which runs the same MPIJobs as containers.

use crate::netns;
use crate::util;

use netns::{Cluster, Spec};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use util::{bin, direct, run};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Generous: the first call creates the Python environment from PyPI.
const CHECK_TIMEOUT: Duration = Duration::from_secs(600);

fn k8s_check(what: &str) -> util::Run {
    let mut cmd = Command::new(format!("{REPO}/scripts/k8s-check.sh"));
    cmd.arg(what).env("PIKERNELS_BIN", util::bin());
    let r = run(cmd, CHECK_TIMEOUT);
    assert!(r.success(), "scripts/k8s-check.sh {what} failed:\n{r}");
    r
}

#[test]
fn manifests_render_and_validate() {
    let r = k8s_check("validate");
    assert!(r.stdout.contains("valid"), "{r}");
}

/// Root runs here, which OpenMPI refuses unless told; the image runs as
/// mpiuser and needs none of this (scripts/k8s_containers.py runs it so).
const AS_ROOT_ENV: [(&str, &str); 2] = [("OMPI_ALLOW_RUN_AS_ROOT", "1"), ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")];

/// Names the MPI build (`mpich` or `openmpi5`, the image tag suffixes of
/// k8s/Dockerfile's builds) whose MPIJobs [`other_mpi_manifests_launch_as_written`]
/// runs.
const MPI_VAR: &str = "PIKERNELS_K8S_MPI";
/// pikernels built against that MPI.
const PIKERNELS_VAR: &str = "PIKERNELS_K8S_PIKERNELS";
/// That MPI's launcher, which is `mpirun` in its image, and any programs its
/// remote side needs on the PATH (OpenMPI 5's `prted`), space-separated.
const MPI_PROGRAMS_VAR: &str = "PIKERNELS_K8S_MPI_PROGRAMS";

/// The MPI an emulated MPIJob runs with, as its image has it: `pikernels`
/// built against that MPI, and the MPI's programs, at /usr/local/bin on the
/// launcher and on every worker. The default image's MPI is this machine's
/// OpenMPI 4.1 (its `mpirun` is on the PATH already) with the binary under
/// test.
struct MpiBuild {
    /// `openmpi4`, `mpich` or `openmpi5` (k8s_manifests.py, VARIANTS).
    variant: String,
    pikernels: std::path::PathBuf,
    /// Links made in /usr/local/bin: the first is `mpirun`, the others keep
    /// their names.
    programs: Vec<String>,
}

impl MpiBuild {
    fn default_image() -> MpiBuild {
        MpiBuild { variant: "openmpi4".into(), pikernels: bin(), programs: Vec::new() }
    }

    /// Shell that puts `pikernels` and the MPI's programs alone in
    /// /usr/local/bin, as in the image.
    fn bin_setup(&self) -> String {
        let mut sh = format!(
            "mount -t tmpfs pikernels-bin /usr/local/bin; ln -s {} /usr/local/bin/pikernels",
            self.pikernels.display()
        );
        for (i, p) in self.programs.iter().enumerate() {
            let name = if i == 0 { "mpirun" } else { Path::new(p).file_name().unwrap().to_str().unwrap() };
            sh.push_str(&format!("; ln -s {p} /usr/local/bin/{name}"));
        }
        sh
    }

    /// The line the operator writes per worker into /etc/mpi/hostfile.
    fn hostfile_line(&self, host: &str, slots: usize) -> String {
        if self.variant == "mpich" {
            format!("{host}:{slots}\n")
        } else {
            format!("{host} slots={slots}\n")
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

/// A single-host run of a manifest's kernel arguments, with `--out`/`--report`
/// pointed into `dir`.
fn single_host(kernel_args: &[String], dir: &Path) -> (Value, Option<Vec<u8>>) {
    let mut args: Vec<String> = Vec::new();
    let mut png = None;
    let mut it = kernel_args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => {
                let p = dir.join("single.png");
                it.next();
                args.extend(["--out".into(), p.display().to_string()]);
                png = Some(p);
            }
            "--report" => {
                it.next();
            }
            _ => args.push(a.clone()),
        }
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = direct(&a);
    assert!(r.success(), "single-host reference {a:?}:\n{r}");
    (r.report(), png.map(|p| std::fs::read(p).unwrap()))
}

/// Runs one MPIJob's launcher against emulated workers, with `mpi` as the
/// image's MPI. As a `control`, the run lacks one thing the operator or the
/// manifest provides and must go wrong, showing the emulation depends on it
/// and cannot pass by accident:
///
/// - OpenMPI 4.1 without the operator's `OMPI_MCA_orte_*` variables shortens
///   the hostfile's names to `<job>-worker-<i>`, which do not resolve, as in
///   a pod;
/// - OpenMPI 5 ignores those variables, the operator's
///   `OMPI_MCA_orte_default_hostfile` included: without the manifest's
///   `--hostfile` it runs every rank on the launcher (the run succeeds, so
///   the control asserts where the ranks ran);
/// - MPICH's Hydra proxies call the launcher back by its short name
///   `<job>-launcher`, which workers resolve through the Service's domain the
///   operator adds to their DNS search list; without it they cannot.
fn emulate_mpijob(job: &Value, mpi: &MpiBuild, control: bool) {
    let name = job["name"].as_str().unwrap();
    let namespace = job["namespace"].as_str().unwrap();
    let workers = job["workers"].as_u64().unwrap() as usize;
    let slots = job["slots_per_worker"].as_u64().unwrap() as usize;
    let mut argv = strings(&job["argv"]);
    let out_mount = job["out_mount"].as_str().expect("workers mount an output directory");
    assert!(out_mount.starts_with("/mnt/"), "the emulation mounts a tmpfs on /mnt: {out_mount}");
    assert_eq!(job["variant"].as_str(), Some(mpi.variant.as_str()), "{name}: the job is not for this MPI build");
    let launcher = format!("{name}-launcher");
    let fqdn = |h: &str| format!("{h}.{name}.{namespace}.svc");

    let sshd_image_config = std::fs::read_to_string(format!("{REPO}/k8s/docker/sshd_config")).unwrap();
    let outs = util::tempdir();
    // The workers' /etc/hosts, bind-mounted over theirs: the launcher by its
    // short name (the Service's domain is in a worker's DNS search list) and
    // its full one. Its address is known once the cluster exists; the file
    // is written in place then (the mounts see the same inode).
    let worker_hosts = outs.path().join("worker-hosts");
    let machine_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    std::fs::write(&worker_hosts, &machine_hosts).unwrap();
    let setup = format!(
        "{}; mount -t tmpfs pikernels-mnt /mnt; mkdir -p {out_mount}; \
         mount --bind {o}/out-$(hostname | sed 's/.*-worker-//') {out_mount}; mount --bind {o}/worker-hosts /etc/hosts",
        mpi.bin_setup(),
        o = outs.path().display()
    );
    let hostnames: Vec<String> = (0..workers).map(|i| format!("{name}-worker-{i}")).collect();
    for i in 0..workers {
        std::fs::create_dir(outs.path().join(format!("out-{i}"))).unwrap();
    }
    let spec = Spec { hostnames: hostnames.clone(), ssh_port: 2222, sshd_extra: sshd_image_config, host_setup: &setup };
    let cluster = Cluster::start(&spec);
    let mut hosts = machine_hosts.clone();
    if !(control && mpi.variant == "mpich") {
        hosts.push_str(&format!("{} {launcher} {}\n", cluster.launcher_addr, fqdn(&launcher)));
    }
    std::fs::write(&worker_hosts, hosts).unwrap();

    // The launcher's /etc as the operator and the image make it.
    let etc = cluster.dir().join("launcher-etc");
    let upper = etc.join("upper");
    std::fs::create_dir_all(upper.join("mpi")).unwrap();
    std::fs::create_dir_all(upper.join("ssh/ssh_config.d")).unwrap();
    std::fs::create_dir_all(etc.join("work")).unwrap();
    let hostfile: String = hostnames.iter().map(|h| mpi.hostfile_line(&fqdn(h), slots)).collect();
    std::fs::write(upper.join("mpi/hostfile"), hostfile).unwrap();
    let mut hosts = machine_hosts;
    hosts.push_str(&format!("{} {} {launcher}\n", cluster.launcher_addr, fqdn(&launcher)));
    for (h, host) in hostnames.iter().zip(&cluster.hosts) {
        hosts.push_str(&format!("{} {}\n", host.addr, fqdn(h)));
    }
    std::fs::write(upper.join("hosts"), hosts).unwrap();
    std::fs::copy(format!("{REPO}/k8s/docker/ssh_config"), upper.join("ssh/ssh_config.d/pikernels.conf")).unwrap();
    std::fs::write(
        upper.join("ssh/ssh_config.d/zz-test-identity.conf"),
        format!("Host *\n    IdentityFile {}\n    BatchMode yes\n", cluster.user_key().display()),
    )
    .unwrap();

    // The launcher pod's hostname is `<job>-launcher`.
    let script = format!(
        "set -e; hostname {launcher}; \
         mount -t overlay pikernels-etc -o lowerdir=/etc,upperdir={u},workdir={w} /etc; {bin}; exec \"$@\"",
        u = upper.display(),
        w = etc.join("work").display(),
        bin = mpi.bin_setup()
    );
    if control && mpi.variant == "openmpi5" {
        let at = argv.windows(2).position(|w| w == ["--hostfile", "/etc/mpi/hostfile"]).expect("--hostfile");
        argv.drain(at..at + 2);
    }
    let mut cmd = Command::new("timeout");
    if control && mpi.variant == "mpich" {
        // Hydra's mpiexec waits for ever on proxies that have failed (its own
        // MPIEXEC_TIMEOUT does not end it either): killed after 30 s, its
        // output says why.
        cmd.args(["-s", "KILL", "30", "unshare"]);
    } else {
        cmd = Command::new("unshare");
    }
    cmd.args(["--mount", "--uts", "sh", "-c", &script, "launcher"]).args(&argv);
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", std::env::var("HOME").unwrap_or_else(|_| "/root".into()));
    // What the operator sets (scripts/k8s_manifests.py, operator_env): the
    // OMPI_MCA_orte_* ones matter to OpenMPI 4 only, which is why the
    // manifests pass --hostfile explicitly as well.
    for (k, v) in job["operator_env"].as_object().expect("operator_env") {
        if !(control && mpi.variant == "openmpi4" && k.starts_with("OMPI_MCA_orte_")) {
            cmd.env(k, v.as_str().unwrap());
        }
    }
    cmd.envs(AS_ROOT_ENV);
    for (k, v) in job["env"].as_object().unwrap() {
        cmd.env(k, v.as_str().unwrap());
    }
    let r = run(cmd, Duration::from_secs(300));
    if control && mpi.variant == "openmpi5" {
        // It runs, but every rank on the launcher: OpenMPI 5 ignores the
        // operator's OMPI_MCA_orte_default_hostfile.
        assert!(r.success(), "{name}: without --hostfile:\n{r}");
        let hosts = r.report()["hosts"].clone();
        let all_launcher = hosts.as_array().is_some_and(|h| !h.is_empty() && h.iter().all(|x| x == launcher.as_str()));
        assert!(all_launcher, "{name}: without --hostfile every rank should run on {launcher}: {hosts}");
        return;
    }
    if control {
        assert!(!r.success(), "{name} ({}): the control run succeeded:\n{r}", mpi.variant);
        let why = if mpi.variant == "mpich" {
            format!("unable to get host address for {launcher}")
        } else {
            format!("Could not resolve hostname {name}-worker-")
        };
        assert!(r.stderr.contains(&why), "{name} ({}): expected '{why}':\n{r}\n{}", mpi.variant, cluster.logs());
        return;
    }
    assert!(r.success(), "{name}: the launcher command {argv:?} failed:\n{r}\n{}", cluster.logs());
    let report = r.report();
    assert_eq!(report["verified"], true, "{name}:\n{r}");
    let expected: Vec<String> = hostnames.iter().flat_map(|h| std::iter::repeat_n(h.clone(), slots)).collect();
    assert_eq!(report["hosts"], serde_json::json!(expected), "{name}: ranks must run on the workers, in order");
    let lib = report["build"]["mpi"].as_str().unwrap_or_default();
    let want = match mpi.variant.as_str() {
        "mpich" => "MPICH",
        "openmpi5" => "Open MPI v5",
        _ => "Open MPI v4",
    };
    assert!(lib.starts_with(want), "{name}: ran with '{lib}', not {want}");

    let kernel_args: Vec<String> = argv.iter().skip_while(|a| *a != "pikernels").skip(1).cloned().collect();
    let refs = util::tempdir();
    let (single, png) = single_host(&kernel_args, refs.path());
    // The whole result, but for what describes the run (output path, process
    // grid, rates: the kernel's declared run_keys, through k8s_manifests.py).
    let ignores = strings(&job["result_ignores"]);
    let comparable = |r: &Value| -> serde_json::Map<String, Value> {
        let m = r["result"].as_object().expect("a result object");
        m.iter().filter(|(k, _)| !ignores.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    assert!(!comparable(&single).is_empty(), "{name}: nothing left to compare:\n{single}");
    assert_eq!(comparable(&report), comparable(&single), "{name}: the MPIJob's result differs from one process's");
    if let Some(png) = png {
        let file = kernel_args[kernel_args.iter().position(|a| a == "--out").unwrap() + 1].clone();
        let rel = Path::new(&file).strip_prefix(out_mount).expect("the PNG goes to the output volume");
        let written = std::fs::read(outs.path().join("out-0").join(rel))
            .unwrap_or_else(|e| panic!("{name}: rank 0 (worker 0) wrote no {file}: {e}"));
        assert!(written == png, "{name}: the PNG differs from a single-host render");
        assert!(outs.path().join("out-1").read_dir().unwrap().next().is_none(), "only rank 0 writes");
    }
}

fn emulate_indexed_job(job: &Value) {
    let parts = job["indexed_completions"].as_u64().unwrap();
    let argv = strings(&job["argv"]);
    assert_eq!(argv[0], "pikernels");
    let dir = util::tempdir();
    let mut files = Vec::new();
    for i in 0..parts {
        let args: Vec<String> =
            argv[1..].iter().map(|a| a.replace("$(JOB_COMPLETION_INDEX)", &i.to_string())).collect();
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = direct(&a);
        assert!(r.success(), "part {i}: {a:?}\n{r}");
        let f = dir.path().join(format!("part-{i}.json"));
        std::fs::write(&f, &r.stdout).unwrap();
        files.push(f.display().to_string());
    }
    let mut merge = vec!["merge", "--format", "json"];
    merge.extend(files.iter().map(String::as_str));
    let r = direct(&merge);
    assert!(r.success(), "merge:\n{r}");
    let whole_args: Vec<&str> = {
        let p = argv.iter().position(|a| a == "--partition").unwrap();
        argv[1..].iter().enumerate().filter(|(k, _)| *k + 1 != p && *k + 1 != p + 1).map(|(_, a)| a.as_str()).collect()
    };
    let single = direct(&whole_args);
    assert!(single.success(), "{whole_args:?}\n{single}");
    assert_eq!(r.report()["result"], single.report()["result"], "merged Indexed Job parts vs one run");
}

#[test]
fn manifests_launch_as_written_in_the_operators_environment() {
    if !netns::available_or_explain("k8s emulation") {
        return;
    }
    let jobs: Value = serde_json::from_str(&k8s_check("launchers").stdout).unwrap();
    let mpi = MpiBuild::default_image();
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    for job in jobs.as_array().unwrap() {
        if job.get("indexed_completions").is_some() {
            emulate_indexed_job(job);
            *kinds.entry("indexed").or_default() += 1;
        } else if job["variant"] != "openmpi4" {
            // The launcher here is this machine's OpenMPI 4.1, the default
            // image's MPI; the MPICH and OpenMPI 5 builds' MPIJobs run in
            // other_mpi_manifests_launch_as_written (scripts/mpi-matrix.sh).
            *kinds.entry("other-mpi").or_default() += 1;
        } else {
            emulate_mpijob(job, &mpi, false);
            if !kinds.contains_key("mpijob") {
                // Once without the operator's OMPI_MCA_orte_* (the control).
                emulate_mpijob(job, &mpi, true);
            }
            *kinds.entry("mpijob").or_default() += 1;
        }
    }
    assert!(kinds.get("mpijob").copied().unwrap_or(0) >= 3, "every kernel has an MPIJob: {kinds:?}");
    assert_eq!(kinds.get("indexed"), Some(&1), "{kinds:?}");
}

/// The MPIJobs for another MPI build of the image (tag suffix `-mpich` or
/// `-openmpi5`), run the same way with that MPI: [`MPI_VAR`] names the build,
/// [`PIKERNELS_VAR`] the binary built against it and [`MPI_PROGRAMS_VAR`] its
/// launcher. Those builds exist only in scripts/mpi-matrix.sh, which runs
/// this test once per build after the rest of the suite (and requires that
/// it ran); elsewhere it skips.
#[test]
fn other_mpi_manifests_launch_as_written() {
    let Ok(variant) = std::env::var(MPI_VAR) else {
        eprintln!(
            "other-MPI k8s emulation: SKIPPED, passing vacuously: {MPI_VAR} is not set (scripts/mpi-matrix.sh sets it)"
        );
        return;
    };
    if !netns::available_or_explain("other-MPI k8s emulation") {
        return;
    }
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{MPI_VAR}={variant} needs {k} too"));
    let mpi = MpiBuild {
        variant: variant.clone(),
        pikernels: std::fs::canonicalize(var(PIKERNELS_VAR)).expect(PIKERNELS_VAR),
        programs: var(MPI_PROGRAMS_VAR).split_whitespace().map(String::from).collect(),
    };
    assert!(!mpi.programs.is_empty(), "{MPI_PROGRAMS_VAR} names no launcher");
    let jobs: Value = serde_json::from_str(&k8s_check("launchers").stdout).unwrap();
    let mine: Vec<&Value> = jobs.as_array().unwrap().iter().filter(|j| j["variant"] == variant.as_str()).collect();
    assert!(!mine.is_empty(), "no MPIJob for the {variant} build among the manifests");
    for job in &mine {
        emulate_mpijob(job, &mpi, false);
    }
    emulate_mpijob(mine[0], &mpi, true);
}
