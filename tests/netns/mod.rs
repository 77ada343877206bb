//! Test hosts made of Linux network namespaces, for tests that launch MPI
//! jobs across "machines" over real TCP and real SSH.
//!
//! Each host is a network namespace with a veth pair plugged into a bridge
//! in the root namespace, an address in a private /24 of `10.231.0.0/16`, its
//! own hostname (a UTS namespace, so `MPI_Get_processor_name` differs per
//! host) and its own `sshd` with a throwaway key. The root namespace holds
//! the bridge's address `.1` and acts as the launcher's machine.
//!
//! Nothing outside the test's temporary directory and the interfaces and
//! namespaces it created is touched: each sshd runs in a private mount
//! namespace with a tmpfs on `/run` (sshd's privilege-separation directory
//! lives there), and its config, keys and pid file are in the temp dir.
//! [`Cluster`]'s `Drop` removes everything, also when the test panics. Names
//! and the subnet are unique per run (the bridge name encodes the subnet and
//! its creation is the atomic claim), so parallel runs never collide. A run
//! killed outright (SIGKILL: no `Drop`) leaves its namespaces behind; they are
//! named after its pid, and the next run removes those of dead processes.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable that turns "cannot run here" into a failure (CI sets it).
pub const REQUIRE: &str = "PIKERNELS_REQUIRE_NETNS";

/// First two octets of every test subnet: private, and unusual enough not to
/// clash with anything a machine is likely to use.
const PREFIX: &str = "10.231";

/// Why network-namespace hosts cannot be made here, if they cannot.
pub fn unavailable() -> Option<String> {
    // SAFETY: plain syscall without arguments.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (network namespaces, veth pairs and a bridge)".into());
    }
    for tool in ["/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen", "/usr/bin/unshare"] {
        if !Path::new(tool).exists() {
            return Some(format!("{tool} is missing (scripts/install-deps.sh --test installs it)"));
        }
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!("`ip netns` fails: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Some(format!("`ip` (iproute2) cannot run: {e}")),
    }
}

/// Returns `true` if the test may go on; otherwise prints why it cannot run
/// here and returns `false`, or panics when [`REQUIRE`] is set to 1.
pub fn available_or_explain(test: &str) -> bool {
    let Some(why) = unavailable() else { return true };
    if std::env::var(REQUIRE).as_deref() == Ok("1") {
        panic!("{test}: {REQUIRE}=1 but network-namespace hosts cannot be made here: {why}");
    }
    eprintln!("{test}: SKIPPED, passing vacuously: {why}. Set {REQUIRE}=1 to make this a failure.");
    false
}

/// One test host.
#[derive(Clone, Debug)]
pub struct Host {
    /// Its hostname (what the report's `hosts` shows).
    pub name: String,
    /// Its network namespace (no test reads it yet).
    #[allow(dead_code)]
    pub netns: String,
    /// Its address on the bridge.
    pub addr: String,
}

/// How to make the hosts.
pub struct Spec<'a> {
    /// Hostnames, one host each.
    pub hostnames: Vec<String>,
    /// The port each sshd listens on.
    pub ssh_port: u16,
    /// sshd configuration appended after the test's own settings (which come
    /// first and therefore win: sshd takes the first value of a keyword).
    pub sshd_extra: String,
    /// Shell commands run in each host's private mount namespace before sshd
    /// starts (e.g. mounts that make the host look like a container image).
    pub host_setup: &'a str,
}

/// Test hosts on a private bridge; dropped, they are gone.
pub struct Cluster {
    /// The hosts, in the order of [`Spec::hostnames`].
    pub hosts: Vec<Host>,
    /// Third octet of the subnet `10.231.X.0/24`.
    pub octet: u8,
    /// The root namespace's address on the bridge (the launcher's machine).
    pub launcher_addr: String,
    bridge: String,
    veths: Vec<String>,
    netns: Vec<String>,
    sshd: Vec<Child>,
    dir: tempfile::TempDir,
}

fn sh(cmd: &str) -> Result<(), String> {
    let out = Command::new("sh").args(["-c", cmd]).stdin(Stdio::null()).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`{cmd}` failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

#[track_caller]
fn must(cmd: &str) {
    if let Err(e) = sh(cmd) {
        panic!("setting up test hosts: {e}");
    }
}

impl Cluster {
    /// Makes the hosts of `spec` and waits until every sshd accepts a login.
    /// Panics (after tearing down what exists) if anything fails.
    pub fn start(spec: &Spec) -> Cluster {
        let dir = tempfile::Builder::new().prefix("pikernels-netns-").tempdir().expect("temporary directory");
        sweep_leftovers();
        let (octet, bridge) = claim_subnet();
        let mut c = Cluster {
            hosts: Vec::new(),
            octet,
            launcher_addr: format!("{PREFIX}.{octet}.1"),
            bridge,
            veths: Vec::new(),
            netns: Vec::new(),
            sshd: Vec::new(),
            dir,
        };
        must(&format!("ip addr add {}/24 dev {b} && ip link set {b} up", c.launcher_addr, b = c.bridge));
        let d = c.dir.path().to_path_buf();
        must(&format!(
            "ssh-keygen -q -t ed25519 -N '' -C pikernels-test-host -f {0}/host_key && \
             ssh-keygen -q -t ed25519 -N '' -C pikernels-test-user -f {0}/user_key && \
             cp {0}/user_key.pub {0}/authorized_keys",
            d.display()
        ));
        for (i, name) in spec.hostnames.iter().enumerate() {
            let netns = format!("pikernels-{}-{octet}-{i}", std::process::id());
            let (outer, inner) = (format!("pkv{octet}x{i}"), format!("pkp{octet}x{i}"));
            let addr = format!("{PREFIX}.{octet}.{}", 11 + i);
            must(&format!("ip netns add {netns}"));
            c.netns.push(netns.clone());
            must(&format!("ip link add {outer} type veth peer name {inner}"));
            c.veths.push(outer.clone());
            must(&format!(
                "ip link set {inner} netns {netns} && ip link set {outer} master {b} up && \
                 ip -n {netns} link set lo up && ip -n {netns} addr add {addr}/24 dev {inner} && \
                 ip -n {netns} link set {inner} up",
                b = c.bridge
            ));
            let config = d.join(format!("sshd-{i}.conf"));
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress {addr}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
                     PidFile {d}/sshd-{i}.pid\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\n{extra}\n",
                    port = spec.ssh_port,
                    d = d.display(),
                    extra = spec.sshd_extra
                ),
            )
            .unwrap();
            let log = std::fs::File::create(d.join(format!("sshd-{i}.log"))).unwrap();
            let script = format!(
                "set -e; hostname {name}; mount -t tmpfs pikernels-run /run; mkdir -p /run/sshd; {setup}\n\
                 exec /usr/sbin/sshd -D -e -f {config}",
                setup = spec.host_setup,
                config = config.display()
            );
            let child = Command::new("ip")
                .args(["netns", "exec", &netns, "unshare", "--uts", "--mount", "sh", "-c", &script])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .expect("start sshd");
            c.sshd.push(child);
            c.hosts.push(Host { name: name.clone(), netns, addr });
        }
        for i in 0..c.hosts.len() {
            c.wait_for_ssh(i, spec.ssh_port);
        }
        c
    }

    /// The bridge, network namespaces and root-side veths this cluster made.
    pub fn created(&self) -> (String, Vec<String>, Vec<String>) {
        (self.bridge.clone(), self.netns.clone(), self.veths.clone())
    }

    /// The test's temporary directory (keys, configs, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The private key every host accepts.
    pub fn user_key(&self) -> PathBuf {
        self.dir.path().join("user_key")
    }

    /// The subnet in CIDR form, for OpenMPI's `*_if_include`.
    pub fn subnet(&self) -> String {
        format!("{PREFIX}.{}.0/24", self.octet)
    }

    /// ssh options that log in to the test hosts with the throwaway key and
    /// without consulting or changing anybody's known_hosts.
    pub fn ssh_options(&self) -> String {
        format!(
            "-i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
             -o BatchMode=yes -o LogLevel=ERROR",
            self.user_key().display()
        )
    }

    /// The sshd logs, for failure messages.
    pub fn logs(&self) -> String {
        (0..self.hosts.len())
            .map(|i| {
                let log = std::fs::read_to_string(self.dir.path().join(format!("sshd-{i}.log"))).unwrap_or_default();
                format!("--- sshd of {}\n{log}", self.hosts[i].name)
            })
            .collect()
    }

    fn wait_for_ssh(&mut self, i: usize, port: u16) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.sshd[i].try_wait().unwrap() {
                panic!("sshd of {} exited ({status}):\n{}", self.hosts[i].name, self.logs());
            }
            let probe = format!("timeout 10 ssh {} -p {port} {} hostname", self.ssh_options(), self.hosts[i].addr);
            let out = Command::new("sh").args(["-c", &probe]).stdin(Stdio::null()).output().unwrap();
            if out.status.success() {
                let seen = String::from_utf8_lossy(&out.stdout).trim().to_string();
                assert_eq!(seen, self.hosts[i].name, "host {} answers with the wrong hostname", self.hosts[i].addr);
                return;
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "cannot log in to {} over ssh: {}\n{}",
                    self.hosts[i].addr,
                    String::from_utf8_lossy(&out.stderr),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Removes what runs that were killed outright (no `Drop`) left: namespaces
/// are named `pikernels-PID-X-I` after the test process that made them, and
/// those of processes no longer alive go, with their veth and bridge. Live
/// runs are left alone.
fn sweep_leftovers() {
    let out = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let fields: Vec<&str> = name.strip_prefix("pikernels-").map(|r| r.split('-').collect()).unwrap_or_default();
        let [pid, octet, i] = fields[..] else { continue };
        let (Ok(pid), Ok(octet), Ok(i)) = (pid.parse::<u32>(), octet.parse::<u8>(), i.parse::<usize>()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = sh(&format!("for p in $(ip netns pids {name}); do kill -9 $p; done"));
        let _ = sh(&format!("ip link del pkv{octet}x{i}"));
        let _ = sh(&format!("ip netns del {name}"));
        let _ = sh(&format!("ip link del pkbr{octet}"));
    }
}

/// Picks a free `10.231.X.0/24` by creating the bridge named after it:
/// creation fails if another run holds that X, and we try the next.
fn claim_subnet() -> (u8, String) {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    let used = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for k in 0..230u64 {
        let octet = (20 + (seed + k * 37) % 230) as u8;
        if used.contains(&format!(" {PREFIX}.{octet}.")) {
            continue;
        }
        let bridge = format!("pkbr{octet}");
        if sh(&format!("ip link add {bridge} type bridge")).is_ok() {
            return (octet, bridge);
        }
    }
    panic!("no free subnet {PREFIX}.X.0/24 for test hosts");
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.sshd {
            // SAFETY: plain syscall on the process group spawned for this sshd.
            unsafe { libc::killpg(child.id() as i32, libc::SIGTERM) };
        }
        for child in &mut self.sshd {
            let _ = child.wait();
        }
        for ns in &self.netns {
            // Whatever still runs inside (an orted of a failed job) goes too.
            let _ = sh(&format!("for p in $(ip netns pids {ns}); do kill -9 $p; done"));
        }
        for veth in &self.veths {
            let _ = sh(&format!("ip link del {veth}"));
        }
        for ns in &self.netns {
            let _ = sh(&format!("ip netns del {ns}"));
        }
        let _ = sh(&format!("ip link del {}", self.bridge));
    }
}
