//! `mpirun --hostfile` across machines: two test hosts made of network
//! namespaces (own hostname, own sshd, real TCP over a bridge), four ranks,
//! and the results must equal a single-host run's bit for bit.
//!
//! Needs root; elsewhere it says why and passes vacuously, unless
//! `PIKERNELS_REQUIRE_NETNS=1` (set by CI) makes that a failure.

use crate::netns;
use crate::util;

use netns::{Cluster, Spec};
use serde_json::Value;
use std::process::Command;
use util::{bin, direct, mpi_env, run, TIMEOUT};

/// The flags a hostfile run over SSH needs here; docs/hostfiles README explains each.
fn mpirun_over_ssh(cluster: &Cluster, hostfile: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("mpirun");
    mpi_env(&mut cmd)
        .arg("--hostfile")
        .arg(hostfile)
        .args(["-np", "4", "--bind-to", "none"])
        // ssh with the throwaway key, no known_hosts of anybody's touched.
        .args(["--mca", "plm_rsh_args", &cluster.ssh_options()])
        // Daemons and ranks talk over the test bridge only.
        .args(["--mca", "oob_tcp_if_include", &cluster.subnet()])
        .args(["--mca", "btl_tcp_if_include", &cluster.subnet()])
        .arg(bin())
        .args(args)
        .args(["--format", "json"]);
    cmd
}

fn result_of(r: &util::Run, what: &str) -> Value {
    assert!(r.success(), "{what}:\n{r}");
    let report = r.report();
    assert_eq!(report["verified"], true, "{what}:\n{r}");
    report
}

#[test]
fn hostfile_run_spreads_ranks_over_hosts_with_single_host_results() {
    if !netns::available_or_explain("multihost") {
        return;
    }
    let spec = Spec {
        hostnames: vec!["pk-node-a".into(), "pk-node-b".into()],
        ssh_port: 22,
        sshd_extra: String::new(),
        host_setup: "",
    };
    let cluster = Cluster::start(&spec);
    let hostfile = cluster.dir().join("hostfile");
    let lines: String = cluster.hosts.iter().map(|h| format!("{} slots=2\n", h.addr)).collect();
    std::fs::write(&hostfile, lines).unwrap();
    // Ranks fill a host's slots before the next host: 0,1 on a; 2,3 on b.
    let expected_hosts: Vec<&str> = vec!["pk-node-a", "pk-node-a", "pk-node-b", "pk-node-b"];
    let out = util::tempdir();

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["pi-mc", "--samples", "3000017", "--seed", "7"], "hits"),
        (vec!["leibniz", "--terms", "2000003"], "pi"),
    ];
    for (args, field) in &cases {
        let single = result_of(&direct(&[args.as_slice(), &["--format", "json"]].concat()), "single host");
        for comm in ["collective", "p2p", "dynamic"] {
            let a = [args.as_slice(), &["--comm", comm, "--threads", "1"]].concat();
            let r = run(mpirun_over_ssh(&cluster, &hostfile, &a), TIMEOUT);
            let report = result_of(&r, &format!("{a:?} over the hostfile\n{}", cluster.logs()));
            assert_eq!(report["hosts"], serde_json::json!(expected_hosts), "{a:?}");
            assert_eq!(report["result"][field], single["result"][field], "{a:?}: {field} differs from one host");
            if *field == "pi" {
                let (x, y) = (report["result"]["pi"].as_f64().unwrap(), single["result"]["pi"].as_f64().unwrap());
                assert_eq!(x.to_bits(), y.to_bits(), "{a:?}");
            }
        }
    }

    let picture = ["mandelbrot", "--width", "211", "--height", "97", "--max-iter", "150"];
    let one = out.path().join("one.png");
    let single =
        result_of(&direct(&[&picture[..], &["--format", "json", "--out", one.to_str().unwrap()]].concat()), "single");
    for comm in ["collective", "dynamic"] {
        let png = out.path().join(format!("multi-{comm}.png"));
        let a = [&picture[..], &["--comm", comm, "--threads", "1", "--out", png.to_str().unwrap()]].concat();
        let r = run(mpirun_over_ssh(&cluster, &hostfile, &a), TIMEOUT);
        let report = result_of(&r, &format!("{a:?} over the hostfile\n{}", cluster.logs()));
        assert_eq!(report["hosts"], serde_json::json!(expected_hosts), "{a:?}");
        assert_eq!(report["result"]["total_iterations"], single["result"]["total_iterations"], "{a:?}");
        assert!(std::fs::read(&png).unwrap() == std::fs::read(&one).unwrap(), "{comm}: PNG bytes differ from one host");
    }
}

#[test]
fn test_hosts_are_torn_down_when_a_test_fails() {
    if !netns::available_or_explain("multihost teardown") {
        return;
    }
    let spec = Spec { hostnames: vec!["pk-doomed".into()], ssh_port: 22, sshd_extra: String::new(), host_setup: "" };
    let mut made = None;
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let cluster = Cluster::start(&spec);
        made = Some((cluster.created(), cluster.dir().to_path_buf()));
        panic!("a failing test");
    }));
    assert!(failed.is_err());
    let ((bridge, namespaces, veths), dir) = made.expect("the cluster was made");
    let ip = |args: &[&str]| Command::new("ip").args(args).output().unwrap();
    assert!(!ip(&["link", "show", &bridge]).status.success(), "bridge {bridge} is gone");
    for veth in &veths {
        assert!(!ip(&["link", "show", veth]).status.success(), "veth {veth} is gone");
    }
    let listed = String::from_utf8(ip(&["netns", "list"]).stdout).unwrap();
    for ns in &namespaces {
        assert!(!listed.lines().any(|l| l.split_whitespace().next() == Some(ns)), "netns {ns} is gone");
    }
    assert!(!dir.exists(), "the keys and configs are removed");
}

#[test]
fn the_localhost_hostfile_example_runs_as_documented() {
    let hostfile = concat!(env!("CARGO_MANIFEST_DIR"), "/hostfiles/localhost.openmpi");
    let mut cmd = Command::new("mpirun");
    mpi_env(&mut cmd)
        .args(["--hostfile", hostfile, "-np", "4", "--bind-to", "none"])
        .arg(bin())
        .args(["leibniz", "--terms", "1e6", "--format", "json"]);
    let report = result_of(&run(cmd, TIMEOUT), "hostfiles/localhost.openmpi");
    assert_eq!(report["ranks"], 4, "the hostfile's 4 slots are used");
}
