//! Throwaway etcd servers for the tests: one member, or a cluster of three for the fault
//! tests. Each member runs as a child process on free loopback ports with its data in a
//! temporary directory (on /dev/shm when it exists: etcd fsyncs every write), and is killed
//! and removed when its handle drops.
//!
//! If `etcd` is not installed, [`Etcd::start`] and [`Cluster::start`] return `None` after a
//! loud `SKIPPED` message, unless `GOSYNC_REQUIRE_SERVERS=1` (set by CI through
//! `scripts/ci-services.sh`): then they panic, so CI cannot pass by skipping.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Whether missing servers must fail the test instead of skipping it.
pub fn required() -> bool {
    std::env::var("GOSYNC_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

fn etcd_bin() -> Option<PathBuf> {
    if let Some(p) = which("etcd") {
        return Some(p);
    }
    assert!(
        !required(),
        "GOSYNC_REQUIRE_SERVERS=1 but etcd is not installed (Debian: apt-get install etcd-server)"
    );
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         SKIPPED: etcd is not installed (no `etcd` on PATH).\n\
         These tests need a real etcd; install it (Debian: apt-get install etcd-server) \
         or run scripts/ci-services.sh.\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    None
}

// The port picker shared with the gosync crate's server tests: ports outside the kernel's
// ephemeral range, so that no outgoing connection takes one before its server binds it.
#[path = "../../../gosync/tests/support/ports.rs"]
mod ports;
#[allow(unused_imports)] // each test file uses a different part
pub use ports::{ephemeral_range, free_port, free_ports, outside};

/// How many times [`Cluster::start_n`] starts a cluster whose member found a port taken.
const START_ATTEMPTS: usize = 3;

/// The (client, peer) ports of `n` cluster members and one more for the cluster token, all
/// distinct.
pub fn cluster_ports(n: usize) -> (Vec<(u16, u16)>, u16) {
    let picked = free_ports(2 * n + 1);
    let ports = picked[..2 * n].chunks(2).map(|p| (p[0], p[1])).collect();
    (ports, picked[2 * n])
}

fn temp_dir(kind: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!(
        "gosync-{kind}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// One etcd member process.
pub struct Member {
    name: String,
    cmd: Vec<String>,
    dir: PathBuf,
    child: Option<Child>,
    /// The client URL (`http://127.0.0.1:port`).
    pub endpoint: String,
    stopped: bool,
}

impl Member {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("log"))
            .expect("open the member's log");
        let child = Command::new(&self.cmd[0])
            .args(&self.cmd[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start etcd member {}: {e}", self.name));
        self.child = Some(child);
        self.stopped = false;
    }

    /// The member's process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("member is running").id() as i32
    }

    /// SIGKILL, and wait for the process to end.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            if self.stopped {
                let _ = signal(c.id() as i32, libc::SIGCONT);
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the member again after [`kill`](Member::kill), with its data.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running member");
        self.spawn();
    }

    /// Freezes the process (SIGSTOP): it keeps its sockets but answers nothing.
    pub fn freeze(&mut self) {
        signal(self.pid(), libc::SIGSTOP).expect("SIGSTOP");
        self.stopped = true;
    }

    /// Thaws a frozen process (SIGCONT).
    pub fn thaw(&mut self) {
        signal(self.pid(), libc::SIGCONT).expect("SIGCONT");
        self.stopped = false;
    }

    /// Whether the member answers `endpoint health` (via etcdctl, 2 s timeout).
    fn healthy(&self) -> bool {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint))
            .arg("--command-timeout=2s")
            .arg("endpoint")
            .arg("health")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The member is not healthy yet: panics with its log once `deadline` (set 60 s after the
    /// wait began) has passed, else sleeps a moment before the caller looks again.
    fn not_healthy_yet(&self, deadline: Instant) {
        assert!(
            Instant::now() < deadline,
            "etcd member {} did not become healthy within 60 s:\n{}",
            self.name,
            self.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    /// The member's log so far (for failure messages).
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn signal(pid: i32, sig: i32) -> std::io::Result<()> {
    // SAFETY: kill(2) with a pid we started and a valid signal number has no memory effects.
    let r = unsafe { libc::kill(pid, sig) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A cluster of etcd members (one for most tests, three for the fault tests).
pub struct Cluster {
    /// The members, in the order of `--initial-cluster`.
    pub members: Vec<Member>,
}

/// A single-member cluster.
pub type Etcd = Cluster;

impl Cluster {
    /// Starts a single member, or `None` (after a loud message) if etcd is missing.
    pub fn start() -> Option<Cluster> {
        Cluster::start_n(1)
    }

    /// Starts `n` members forming one cluster, or `None` if etcd is missing.
    pub fn start_n(n: usize) -> Option<Cluster> {
        Cluster::start_with(n, cluster_ports)
    }

    /// Starts `n` members on the ports `pick` returns (as [`cluster_ports`] does). A member
    /// that exits at start because one of its ports was taken in the meantime (by another
    /// process picking ports) makes the whole cluster start again on newly picked ports, up to
    /// [`START_ATTEMPTS`] times; any other early exit fails at once with the member's log.
    pub fn start_with(
        n: usize,
        mut pick: impl FnMut(usize) -> (Vec<(u16, u16)>, u16),
    ) -> Option<Cluster> {
        let bin = etcd_bin()?;
        for attempt in 1..=START_ATTEMPTS {
            let mut c = Cluster::spawn(&bin, pick(n));
            match c.poll_ready() {
                Ok(()) => return Some(c),
                Err(why) => {
                    assert!(
                        attempt < START_ATTEMPTS,
                        "etcd cluster did not start in {START_ATTEMPTS} attempts: {why}"
                    );
                    eprintln!("etcd cluster start, attempt {attempt}: {why}; trying other ports");
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn spawn(bin: &std::path::Path, (ports, token_port): (Vec<(u16, u16)>, u16)) -> Cluster {
        let token = format!("gosync-{}-{}", std::process::id(), token_port);
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect();
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                let dir = temp_dir("etcd");
                let endpoint = format!("http://127.0.0.1:{client}");
                let peer_url = format!("http://127.0.0.1:{peer}");
                let cmd = vec![
                    bin.display().to_string(),
                    format!("--name=m{i}"),
                    format!("--data-dir={}", dir.join("data").display()),
                    format!("--listen-client-urls={endpoint}"),
                    format!("--advertise-client-urls={endpoint}"),
                    format!("--listen-peer-urls={peer_url}"),
                    format!("--initial-advertise-peer-urls={peer_url}"),
                    format!("--initial-cluster={}", initial.join(",")),
                    "--initial-cluster-state=new".to_string(),
                    format!("--initial-cluster-token={token}"),
                    // Generous for a loaded 2-core machine: a too-short election timeout
                    // makes the members depose each other while the tests run.
                    "--heartbeat-interval=100".to_string(),
                    "--election-timeout=1000".to_string(),
                    "--log-level=warn".to_string(),
                    "--logger=zap".to_string(),
                ];
                let mut m = Member {
                    name: format!("m{i}"),
                    cmd,
                    dir,
                    child: None,
                    endpoint,
                    stopped: false,
                };
                m.spawn();
                m
            })
            .collect();
        Cluster { members }
    }

    /// Waits (bounded) until every member answers `endpoint health`. `Err` when a member
    /// exited because a port was taken; a member that exited for another reason, or a
    /// cluster that is not healthy within 60 s, panics with the member's log.
    fn poll_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        for m in &mut self.members {
            while !m.healthy() {
                if let Some(status) = m.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                    let log = m.log_tail();
                    if log.contains("address already in use") {
                        return Err(format!("member {} found its port taken", m.name));
                    }
                    panic!("etcd member {} exited at start ({status}):\n{log}", m.name);
                }
                m.not_healthy_yet(deadline);
            }
        }
        Ok(())
    }

    /// The client endpoints of all members.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.endpoint.clone()).collect()
    }

    /// The first member's endpoint.
    pub fn endpoint(&self) -> String {
        self.members[0].endpoint.clone()
    }

    /// Waits until every running member answers `endpoint health` (bounded).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            while !m.healthy() {
                m.not_healthy_yet(deadline);
            }
        }
    }

    /// The index of the current leader, as reported by the running members (bounded wait).
    pub fn leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            for (i, m) in self.members.iter().enumerate() {
                if m.child.is_none() || m.stopped {
                    continue;
                }
                let out = Command::new("etcdctl")
                    .env("ETCDCTL_API", "3")
                    .arg(format!("--endpoints={}", m.endpoint))
                    .arg("--command-timeout=2s")
                    .arg("endpoint")
                    .arg("status")
                    .arg("-w")
                    .arg("fields")
                    .output();
                let Ok(out) = out else { continue };
                let text = String::from_utf8_lossy(&out.stdout);
                let field = |name: &str| {
                    text.lines()
                        .find(|l| l.starts_with(&format!("\"{name}\"")))
                        .and_then(|l| l.split(':').nth(1))
                        .map(|v| v.trim().to_string())
                };
                if let (Some(member), Some(leader)) = (field("MemberID"), field("Leader")) {
                    if member == leader {
                        return i;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no etcd member reported itself leader within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Keys under `prefix` (via etcdctl, independent of the code under test).
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let m = self
            .members
            .iter()
            .find(|m| m.child.is_some() && !m.stopped)
            .expect("a running member");
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", m.endpoint))
            .arg("get")
            .arg("--prefix")
            .arg("--keys-only")
            .arg(prefix)
            .output()
            .expect("run etcdctl");
        assert!(out.status.success(), "etcdctl get failed: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}
