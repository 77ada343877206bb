//! The Kubernetes manifests in k8s/, checked without a cluster:
//!
//! - every kustomization renders and validates (scripts/k8s-check.sh);
//! - every MPIJob's launcher command runs exactly as the rendered manifest
//!   has it, in the environment the MPI operator creates: worker hosts named
//!   `<job>-worker-<i>` (network namespaces with sshd on 2222 configured by
//!   the image's own sshd drop-in), reachable as
//!   `<job>-worker-<i>.<job>.<namespace>.svc`, the hostfile at
//!   /etc/mpi/hostfile with `slots=` from `slotsPerWorker`, the image's ssh
//!   client drop-in, and the `OMPI_MCA_*` variables the operator sets;
//! - the Indexed Job's parts, merged, give the single run's result.
//!
//! The launcher's /etc (hosts, mpi/hostfile, ssh drop-ins) is an overlay in
//! a private mount namespace, so the machine's own files are never touched;
//! `pikernels` is put at /usr/local/bin, where the image has it, the same way.
//! Differences from a cluster, on purpose: everything runs as root (so
//! `OMPI_ALLOW_RUN_AS_ROOT=1`), and the launcher's ssh key comes from an
//! `IdentityFile` drop-in instead of the operator's Secret. The image itself,
//! its non-root user and the Secret's layout are exercised by
//! scripts/image-check.sh, which runs the same MPIJobs as containers.

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
    cmd.arg(what);
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

/// Shell that puts `pikernels` alone in /usr/local/bin, as in the image.
fn image_bin_setup() -> String {
    format!("mount -t tmpfs pikernels-bin /usr/local/bin; ln -s {} /usr/local/bin/pikernels", bin().display())
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

/// Runs one MPIJob's launcher against emulated workers. Without `orte_vars`
/// (the operator's `OMPI_MCA_orte_*` variables) the run must fail: OpenMPI 4
/// then shortens the hostfile's names to `<job>-worker-<i>`, which do not
/// resolve, as in a pod. That is the control showing the emulation depends
/// on what the operator provides and cannot pass by accident.
fn emulate_mpijob(job: &Value, orte_vars: bool) {
    let name = job["name"].as_str().unwrap();
    let namespace = job["namespace"].as_str().unwrap();
    let workers = job["workers"].as_u64().unwrap() as usize;
    let slots = job["slots_per_worker"].as_u64().unwrap() as usize;
    let argv = strings(&job["argv"]);
    let out_mount = job["out_mount"].as_str().expect("workers mount an output directory");
    assert!(out_mount.starts_with("/mnt/"), "the emulation mounts a tmpfs on /mnt: {out_mount}");

    let sshd_image_config = std::fs::read_to_string(format!("{REPO}/k8s/docker/sshd_config")).unwrap();
    let outs = util::tempdir();
    let setup = format!(
        "{}; mount -t tmpfs pikernels-mnt /mnt; mkdir -p {out_mount}; \
         mount --bind {}/out-$(hostname | sed 's/.*-worker-//') {out_mount}",
        image_bin_setup(),
        outs.path().display()
    );
    let hostnames: Vec<String> = (0..workers).map(|i| format!("{name}-worker-{i}")).collect();
    for i in 0..workers {
        std::fs::create_dir(outs.path().join(format!("out-{i}"))).unwrap();
    }
    let spec = Spec { hostnames: hostnames.clone(), ssh_port: 2222, sshd_extra: sshd_image_config, host_setup: &setup };
    let cluster = Cluster::start(&spec);

    // The launcher's /etc as the operator and the image make it.
    let etc = cluster.dir().join("launcher-etc");
    let upper = etc.join("upper");
    std::fs::create_dir_all(upper.join("mpi")).unwrap();
    std::fs::create_dir_all(upper.join("ssh/ssh_config.d")).unwrap();
    std::fs::create_dir_all(etc.join("work")).unwrap();
    let fqdn = |i: usize| format!("{name}-worker-{i}.{name}.{namespace}.svc");
    let hostfile: String = (0..workers).map(|i| format!("{} slots={slots}\n", fqdn(i))).collect();
    std::fs::write(upper.join("mpi/hostfile"), hostfile).unwrap();
    let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    for (i, h) in cluster.hosts.iter().enumerate() {
        hosts.push_str(&format!("{} {}\n", h.addr, fqdn(i)));
    }
    std::fs::write(upper.join("hosts"), hosts).unwrap();
    std::fs::copy(format!("{REPO}/k8s/docker/ssh_config"), upper.join("ssh/ssh_config.d/pikernels.conf")).unwrap();
    std::fs::write(
        upper.join("ssh/ssh_config.d/zz-test-identity.conf"),
        format!("Host *\n    IdentityFile {}\n    BatchMode yes\n", cluster.user_key().display()),
    )
    .unwrap();

    let script = format!(
        "set -e; mount -t overlay pikernels-etc -o lowerdir=/etc,upperdir={u},workdir={w} /etc; {bin}; exec \"$@\"",
        u = upper.display(),
        w = etc.join("work").display(),
        bin = image_bin_setup()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "sh", "-c", &script, "launcher"]).args(&argv);
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", std::env::var("HOME").unwrap_or_else(|_| "/root".into()));
    // What the operator sets (scripts/k8s_manifests.py, operator_env): the
    // OMPI_MCA_orte_* ones matter to OpenMPI 4 only, which is why the
    // manifests pass --hostfile explicitly as well.
    for (k, v) in job["operator_env"].as_object().expect("operator_env") {
        if orte_vars || !k.starts_with("OMPI_MCA_orte_") {
            cmd.env(k, v.as_str().unwrap());
        }
    }
    cmd.envs(AS_ROOT_ENV);
    for (k, v) in job["env"].as_object().unwrap() {
        cmd.env(k, v.as_str().unwrap());
    }
    let r = run(cmd, Duration::from_secs(300));
    if !orte_vars {
        assert!(!r.success(), "{name}: ran without OMPI_MCA_orte_keep_fqdn_hostnames:\n{r}");
        let short = format!("Could not resolve hostname {name}-worker-");
        assert!(r.stderr.contains(&short), "{name}: expected '{short}':\n{r}");
        return;
    }
    assert!(r.success(), "{name}: the launcher command {argv:?} failed:\n{r}\n{}", cluster.logs());
    let report = r.report();
    assert_eq!(report["verified"], true, "{name}:\n{r}");
    let expected: Vec<String> = hostnames.iter().flat_map(|h| std::iter::repeat_n(h.clone(), slots)).collect();
    assert_eq!(report["hosts"], serde_json::json!(expected), "{name}: ranks must run on the workers, in order");

    let kernel_args: Vec<String> = argv.iter().skip_while(|a| *a != "pikernels").skip(1).cloned().collect();
    let refs = util::tempdir();
    let (single, png) = single_host(&kernel_args, refs.path());
    // The whole result, but for what describes the run (k8s_manifests.py,
    // RUN_DEPENDENT_RESULT: output path, process grid, rates).
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
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    for job in jobs.as_array().unwrap() {
        if job.get("indexed_completions").is_some() {
            emulate_indexed_job(job);
            *kinds.entry("indexed").or_default() += 1;
        } else if job["mpi"] != "OpenMPI" {
            // The launcher here is this machine's OpenMPI 4.1, the image's
            // MPI; an MPIJob for another MPI runs as containers of its own
            // image instead (scripts/image-check.sh --mpich; not in CI).
            *kinds.entry("other-mpi").or_default() += 1;
        } else {
            emulate_mpijob(job, true);
            if !kinds.contains_key("mpijob") {
                // Once without the operator's OMPI_MCA_orte_* (the control).
                emulate_mpijob(job, false);
            }
            *kinds.entry("mpijob").or_default() += 1;
        }
    }
    assert!(kinds.get("mpijob").copied().unwrap_or(0) >= 3, "every kernel has an MPIJob: {kinds:?}");
    assert_eq!(kinds.get("indexed"), Some(&1), "{kinds:?}");
}
