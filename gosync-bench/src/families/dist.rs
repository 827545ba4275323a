//! `dist`: gosync-dist's etcd Mutex against etcd's server-side Lock RPC (through etcd-client)
//! and, with `--go`, Go's own `clientv3/concurrency.Mutex`, all on one local etcd that this
//! family starts itself (skipped with a note when `etcd` is not installed).
//!
//! Workload `lock+unlock`: each of 1, 4 or 16 clients has its own session and runs
//! lock + unlock on one name until the iterations are done. With one client the ns/op is the
//! uncontended round trip; with more it is the inverse of the contended throughput. The
//! gosync row also reports `watches/op`: watches opened per acquisition (a waiter watches only
//! its predecessor, so at most one per acquisition: no herd).
//!
//! Every run makes each client lock at least [`OPS_PER_CLIENT`] times: the clients all start
//! at once, and the first handovers of a run are not the steady state (Go's waiters, which
//! watch from a past revision, are served by etcd's catch-up loop, which runs every 100 ms,
//! once their queue has formed). A run of a couple of operations per client would measure
//! only that start.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gosync_dist::etcd_client::LockOptions;
use gosync_dist::{Mutex, Session, SessionOptions};

use crate::harness::{latency_histogram, Ctx, Impl, Sample};

const FAMILY: &str = "dist";

/// The fewest lock+unlock operations per client in one run (see the module docs).
const OPS_PER_CLIENT: u64 = 20;

/// A throwaway etcd member, killed and removed on drop.
struct Etcd {
    child: Child,
    dir: PathBuf,
    endpoint: String,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// The port picker the test suites use: two distinct ports outside the kernel's ephemeral
// range, so that no outgoing connection takes one before etcd binds it.
#[path = "../../../gosync/tests/support/ports.rs"]
mod ports;

fn start_etcd() -> Result<Etcd, String> {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("gosync-bench-etcd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let picked = ports::free_ports(2);
    let (client, peer) = (picked[0], picked[1]);
    let endpoint = format!("127.0.0.1:{client}");
    let child = Command::new("etcd")
        .arg(format!("--data-dir={}", dir.join("data").display()))
        .arg(format!("--listen-client-urls=http://{endpoint}"))
        .arg(format!("--advertise-client-urls=http://{endpoint}"))
        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
        .arg(format!(
            "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
        ))
        .arg(format!("--initial-cluster=default=http://127.0.0.1:{peer}"))
        .arg("--log-level=error")
        .arg("--logger=zap")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("etcd is not installed ({e}); Debian: apt-get install etcd-server"))?;
    let etcd = Etcd {
        child,
        dir,
        endpoint,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&etcd.endpoint).is_err() {
        if Instant::now() > deadline {
            return Err("etcd did not start listening within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(etcd)
}

/// Builds the Go peer (GOPATH mode, Debian's etcd sources); `None` with a reason otherwise.
fn build_go_peer() -> Result<PathBuf, String> {
    let gopath = Path::new("/usr/share/gocode");
    if !gopath
        .join("src/go.etcd.io/etcd/clientv3/concurrency")
        .is_dir()
    {
        return Err(
            "Go's etcd client sources are missing (Debian: apt-get install golang-etcd-server-dev)"
                .into(),
        );
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("go/etcdmutex");
    let out = std::env::temp_dir().join(format!("gosync-bench-etcdmutex-{}", std::process::id()));
    let o = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath)
        .env("GOFLAGS", "")
        .output()
        .map_err(|e| format!("go build: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "go build of go/etcdmutex failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(out)
}

fn go_run(bin: &Path, endpoint: &str, clients: usize, iters: u64, name: &str) -> Duration {
    let o = Command::new(bin)
        .arg(format!("-endpoint={endpoint}"))
        .arg(format!("-clients={clients}"))
        .arg(format!("-iters={iters}"))
        .arg(format!("-name={name}"))
        .output()
        .expect("run the Go peer");
    assert!(
        o.status.success(),
        "Go peer failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let ns: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("elapsed_ns "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the Go peer prints elapsed_ns");
    Duration::from_nanos(ns.max(1))
}

/// Runs `iters` lock+unlock operations over `clients` concurrent clients; `op(i)` is one.
fn run_clients<F, Fut>(
    rt: &tokio::runtime::Runtime,
    clients: usize,
    iters: u64,
    op: F,
) -> (Duration, hdrhistogram::Histogram<u64>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let (op, next) = (op.clone(), next.clone());
                tokio::spawn(async move {
                    let mut h = latency_histogram();
                    while next.fetch_add(1, Ordering::Relaxed) < iters {
                        let t = Instant::now();
                        op(c).await;
                        let _ = h.record(t.elapsed().as_nanos() as u64);
                    }
                    h
                })
            })
            .collect();
        let mut all = latency_histogram();
        for t in tasks {
            all.add(t.await.expect("client task")).expect("histograms");
        }
        (start.elapsed(), all)
    })
}

/// The family's entry point.
pub fn run(ctx: &mut Ctx) {
    let etcd = match start_etcd() {
        Ok(e) => e,
        Err(why) => {
            ctx.note(format!("dist: skipped: {why}"));
            return;
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let go_peer = if ctx.go_enabled() {
        match build_go_peer() {
            Ok(b) => Some(b),
            Err(why) => {
                ctx.note(format!("dist: no Go column: {why}"));
                None
            }
        }
    } else {
        None
    };
    let endpoint = etcd.endpoint.clone();
    let connect = |rt: &tokio::runtime::Runtime| {
        rt.block_on(Session::connect(
            SessionOptions::new([endpoint.as_str()])
                .ttl(Duration::from_secs(60))
                .connect_timeout(Duration::from_secs(30)),
        ))
        .expect("connect to the benchmark's etcd")
    };
    for clients in [1usize, 4, 16] {
        let sessions: Vec<Session> = (0..clients).map(|_| connect(&rt)).collect();
        let mutexes: Arc<Vec<Mutex>> = Arc::new(
            sessions
                .iter()
                .map(|s| Mutex::new(s, format!("bench/gosync{clients}")).expect("name"))
                .collect(),
        );
        let rpc_sessions: Vec<Session> = (0..clients).map(|_| connect(&rt)).collect();
        let rpc: Arc<Vec<(gosync_dist::etcd_client::Client, i64)>> = Arc::new(
            rpc_sessions
                .iter()
                .map(|s| (s.client().clone(), s.lease_id()))
                .collect(),
        );
        let min_iters = OPS_PER_CLIENT * clients as u64;
        let mut impls = Vec::new();
        {
            let (mutexes, sessions) = (mutexes.clone(), sessions.clone());
            let rt = &rt;
            impls.push(
                Impl::new("gosync-dist Mutex", move |iters| {
                    let watches0: u64 = sessions.iter().map(Session::watches_opened).sum();
                    let m = mutexes.clone();
                    let (el, h) = run_clients(rt, clients, iters, move |c| {
                        let m = m.clone();
                        async move {
                            let g = m[c].lock().await.expect("lock");
                            g.unlock().await.expect("unlock");
                        }
                    });
                    let watches: u64 =
                        sessions.iter().map(Session::watches_opened).sum::<u64>() - watches0;
                    Sample::with_latency(el, h).extra("watches/op", watches as f64 / iters as f64)
                })
                .min_iters(min_iters),
            );
        }
        {
            let rpc = rpc.clone();
            let rt = &rt;
            let name = format!("bench/rpc{clients}");
            impls.push(
                Impl::new("etcd Lock RPC", move |iters| {
                    let rpc = rpc.clone();
                    let name = name.clone();
                    let (el, h) = run_clients(rt, clients, iters, move |c| {
                        let (mut client, lease) = rpc[c].clone();
                        let name = name.clone();
                        async move {
                            let r = client
                                .lock(name, Some(LockOptions::new().with_lease(lease)))
                                .await
                                .expect("Lock RPC");
                            client.unlock(r.key().to_vec()).await.expect("Unlock RPC");
                        }
                    });
                    Sample::with_latency(el, h)
                })
                .min_iters(min_iters),
            );
        }
        if let Some(bin) = &go_peer {
            let endpoint = etcd.endpoint.clone();
            let name = format!("bench/go{clients}");
            impls.push(
                Impl::new("Go concurrency.Mutex", move |iters| {
                    go_run(bin, &endpoint, clients, iters, &name).into()
                })
                .min_iters(min_iters),
            );
        }
        ctx.compare(FAMILY, "lock+unlock", clients, impls);
        for s in sessions.iter().chain(&rpc_sessions) {
            let _ = rt.block_on(s.close());
        }
    }
    if let Some(bin) = go_peer {
        let _ = std::fs::remove_file(bin);
    }
}
