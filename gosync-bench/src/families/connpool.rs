//! `connpool`: checkout + checkin overhead of connection pools.
//!
//! Every pool gets the same manager behaviour (connect once, a trivial `is_valid` on each
//! checkout, never broken), 8 connections opened up front, and `clients` threads or tasks
//! doing `get` → touch the connection → drop, as fast as they can. With 64 clients on 8
//! connections most checkouts wait, so that row measures the pools' waiting paths.
//!
//! Workloads:
//! - `blocking/trivial`: the connection is a number; gosync `Pool` vs r2d2.
//! - `blocking/tcp`: a real loopback `TcpStream` to an in-process echo server, one 1-byte
//!   echo round trip per checkout; gosync `Pool` vs r2d2.
//! - `async/trivial`, `async/tcp`: the same on a 2-worker tokio runtime with `clients`
//!   tasks; gosync `AsyncPool` vs bb8 and deadpool (managed).

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use crate::harness::{run_parallel, run_tasks, Ctx, Impl};
use gosync::connpool as gp;

const POOL: usize = 8;
const FAMILY: &str = "connpool";

/// Worker threads of the tokio runtime the async cells run on (their OS thread count).
const RUNTIME_WORKERS: usize = 2;

// ---------------------------------------------------------------- the echo server

/// An in-process TCP echo server, started once: one thread running a single-threaded
/// tokio runtime serves every connection. (A thread per connection made the result depend
/// on how the OS scheduler treats one hot echo thread versus several lukewarm ones, i.e. on
/// whether a pool reuses connections LIFO or rotates them FIFO, not on the pool.)
fn echo_addr() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind the echo listener");
        let addr = l.local_addr().expect("echo listener address");
        l.set_nonblocking(true).expect("non-blocking listener");
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .expect("echo runtime");
            rt.block_on(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let l = tokio::net::TcpListener::from_std(l).expect("echo listener");
                while let Ok((mut s, _)) = l.accept().await {
                    let _ = s.set_nodelay(true);
                    tokio::spawn(async move {
                        let mut buf = [0u8; 64];
                        while let Ok(n) = s.read(&mut buf).await {
                            if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            });
        });
        addr
    })
}

fn dial() -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(echo_addr())?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn echo(s: &mut TcpStream) {
    let mut b = [7u8];
    s.write_all(&b).expect("echo write");
    s.read_exact(&mut b).expect("echo read");
    black_box(b);
}

async fn echo_async(s: &mut tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut b = [7u8];
    s.write_all(&b).await.expect("echo write");
    s.read_exact(&mut b).await.expect("echo read");
    black_box(b);
}

async fn dial_async() -> std::io::Result<tokio::net::TcpStream> {
    let s = tokio::net::TcpStream::connect(echo_addr()).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

// ---------------------------------------------------------------- managers

/// Trivial connections (a number).
struct Trivial;
/// Loopback TCP connections (blocking).
struct Tcp;
/// Loopback TCP connections (tokio).
struct TcpAsync;

/// The same manager behaviour for every pool: connect with `$connect`, a trivial
/// validity check, never broken. gosync's and r2d2's traits (blocking) and gosync's and
/// bb8's traits (async) have the same shape, so one macro arm serves each pair.
macro_rules! blocking_manager {
    ($ty:ty, $conn:ty, $connect:expr, $($tr:path),+) => {$(
        impl $tr for $ty {
            type Connection = $conn;
            type Error = std::io::Error;
            fn connect(&self) -> std::io::Result<$conn> {
                $connect
            }
            fn is_valid(&self, _: &mut $conn) -> std::io::Result<()> {
                Ok(())
            }
            fn has_broken(&self, _: &mut $conn) -> bool {
                false
            }
        }
    )+};
}

macro_rules! async_manager {
    ($ty:ty, $conn:ty, $connect:expr, $($tr:path),+) => {
        $(
            impl $tr for $ty {
                type Connection = $conn;
                type Error = std::io::Error;
                async fn connect(&self) -> std::io::Result<$conn> {
                    $connect
                }
                async fn is_valid(&self, _: &mut $conn) -> std::io::Result<()> {
                    Ok(())
                }
                fn has_broken(&self, _: &mut $conn) -> bool {
                    false
                }
            }
        )+
        impl deadpool::managed::Manager for $ty {
            type Type = $conn;
            type Error = std::io::Error;
            async fn create(&self) -> std::io::Result<$conn> {
                $connect
            }
            async fn recycle(
                &self,
                _: &mut $conn,
                _: &deadpool::managed::Metrics,
            ) -> deadpool::managed::RecycleResult<std::io::Error> {
                Ok(())
            }
        }
    };
}

blocking_manager!(Trivial, u64, Ok(1), gp::Manager, r2d2::ManageConnection);
blocking_manager!(Tcp, TcpStream, dial(), gp::Manager, r2d2::ManageConnection);
async_manager!(Trivial, u64, Ok(1), gp::AsyncManager, bb8::ManageConnection);
async_manager!(
    TcpAsync,
    tokio::net::TcpStream,
    dial_async().await,
    gp::AsyncManager,
    bb8::ManageConnection
);

// ---------------------------------------------------------------- pools

fn gosync_config() -> gp::Config {
    gp::Config {
        max_open: POOL,
        max_idle: POOL,
        wait_timeout: Some(Duration::from_secs(30)),
        test_on_checkout: true,
        ..gp::Config::default()
    }
}

fn gosync_pool<M: gp::Manager>(m: M) -> gp::Pool<M> {
    let pool = gp::Pool::new(m, gosync_config());
    // Open all connections up front, like r2d2's default min_idle = max_size.
    let all: Vec<_> = (0..POOL).map(|_| pool.get().expect("warm up")).collect();
    drop(all);
    pool
}

fn r2d2_pool<M: r2d2::ManageConnection>(m: M) -> r2d2::Pool<M> {
    r2d2::Pool::builder()
        .max_size(POOL as u32)
        .connection_timeout(Duration::from_secs(30))
        .test_on_check_out(true)
        .build(m)
        .expect("r2d2 pool")
}

async fn gosync_async_pool<M: gp::AsyncManager>(m: M) -> gp::AsyncPool<M> {
    let pool = gp::AsyncPool::new(m, gosync_config());
    let mut all = Vec::new();
    for _ in 0..POOL {
        all.push(pool.get().await.expect("warm up"));
    }
    drop(all);
    pool
}

async fn bb8_pool<M: bb8::ManageConnection>(m: M) -> bb8::Pool<M> {
    bb8::Pool::builder()
        .max_size(POOL as u32)
        .min_idle(Some(POOL as u32))
        .connection_timeout(Duration::from_secs(30))
        .test_on_check_out(true)
        .build(m)
        .await
        .expect("bb8 pool")
}

async fn deadpool_pool<M: deadpool::managed::Manager<Error = std::io::Error>>(
    m: M,
) -> deadpool::managed::Pool<M> {
    let pool = deadpool::managed::Pool::builder(m)
        .max_size(POOL)
        .build()
        .expect("deadpool pool");
    let mut all = Vec::new();
    for _ in 0..POOL {
        all.push(pool.get().await.expect("warm up"));
    }
    drop(all);
    pool
}

// ---------------------------------------------------------------- async driver

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_WORKERS)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------- the family

/// Client counts: the run's thread counts plus 64 (many clients on 8 connections).
fn clients(ctx: &Ctx) -> Vec<usize> {
    let mut c = ctx.threads();
    if !c.contains(&64) {
        c.push(64);
    }
    c
}

/// Entry point.
pub fn run(ctx: &mut Ctx) {
    ctx.note(format!(
        "connpool: {POOL} connections opened up front; each op = get, touch (or a 1-byte TCP echo), drop; \
         all pools validate on checkout with a trivial check"
    ));
    blocking(ctx);
    asynchronous(ctx);
}

fn blocking(ctx: &mut Ctx) {
    let g = gosync_pool(Trivial);
    let r = r2d2_pool(Trivial);
    for &t in &clients(ctx) {
        ctx.compare(
            FAMILY,
            "blocking/trivial",
            t,
            vec![
                Impl::new("gosync", |iters| {
                    run_parallel(t, iters, |_, it| {
                        while it.next() {
                            let c = g.get().expect("gosync get");
                            black_box(*c);
                        }
                    })
                    .into()
                }),
                Impl::new("r2d2", |iters| {
                    run_parallel(t, iters, |_, it| {
                        while it.next() {
                            let c = r.get().expect("r2d2 get");
                            black_box(*c);
                        }
                    })
                    .into()
                }),
            ],
        );
    }
    leak_check(ctx, "blocking/trivial", g.stats());

    let g = gosync_pool(Tcp);
    let r = r2d2_pool(Tcp);
    for &t in &clients(ctx) {
        ctx.compare(
            FAMILY,
            "blocking/tcp",
            t,
            vec![
                Impl::new("gosync", |iters| {
                    run_parallel(t, iters, |_, it| {
                        while it.next() {
                            let mut c = g.get().expect("gosync get");
                            echo(&mut c);
                        }
                    })
                    .into()
                }),
                Impl::new("r2d2", |iters| {
                    run_parallel(t, iters, |_, it| {
                        while it.next() {
                            let mut c = r.get().expect("r2d2 get");
                            echo(&mut c);
                        }
                    })
                    .into()
                }),
            ],
        );
    }
    leak_check(ctx, "blocking/tcp", g.stats());
}

fn asynchronous(ctx: &mut Ctx) {
    let rt = runtime();
    let g = rt.block_on(gosync_async_pool(Trivial));
    let b = rt.block_on(bb8_pool(Trivial));
    let d = rt.block_on(deadpool_pool(Trivial));
    for &t in &clients(ctx) {
        ctx.compare_with_os_threads(
            FAMILY,
            "async/trivial",
            t,
            RUNTIME_WORKERS,
            vec![
                Impl::new("gosync", |iters| {
                    run_tasks(&rt, t, iters, |_, n| {
                        let g = g.clone();
                        async move {
                            for _ in 0..n {
                                let c = g.get().await.expect("gosync get");
                                black_box(*c);
                            }
                        }
                    })
                    .into()
                }),
                Impl::new("bb8", |iters| {
                    run_tasks(&rt, t, iters, |_, n| {
                        let b = b.clone();
                        async move {
                            for _ in 0..n {
                                let c = b.get().await.expect("bb8 get");
                                black_box(*c);
                            }
                        }
                    })
                    .into()
                }),
                Impl::new("deadpool", |iters| {
                    run_tasks(&rt, t, iters, |_, n| {
                        let d = d.clone();
                        async move {
                            for _ in 0..n {
                                let c = d.get().await.expect("deadpool get");
                                black_box(*c);
                            }
                        }
                    })
                    .into()
                }),
            ],
        );
    }
    leak_check(ctx, "async/trivial", g.stats());

    let g = rt.block_on(gosync_async_pool(TcpAsync));
    let b = rt.block_on(bb8_pool(TcpAsync));
    let d = rt.block_on(deadpool_pool(TcpAsync));
    for &t in &clients(ctx) {
        ctx.compare_with_os_threads(
            FAMILY,
            "async/tcp",
            t,
            RUNTIME_WORKERS,
            vec![
                Impl::new("gosync", |iters| {
                    run_tasks(&rt, t, iters, |_, n| {
                        let g = g.clone();
                        async move {
                            for _ in 0..n {
                                let mut c = g.get().await.expect("gosync get");
                                echo_async(&mut c).await;
                            }
                        }
                    })
                    .into()
                }),
                Impl::new("bb8", |iters| {
                    run_tasks(&rt, t, iters, |_, n| {
                        let b = b.clone();
                        async move {
                            for _ in 0..n {
                                let mut c = b.get().await.expect("bb8 get");
                                echo_async(&mut c).await;
                            }
                        }
                    })
                    .into()
                }),
                Impl::new("deadpool", |iters| {
                    run_tasks(&rt, t, iters, |_, n| {
                        let d = d.clone();
                        async move {
                            for _ in 0..n {
                                let mut c = d.get().await.expect("deadpool get");
                                echo_async(&mut c).await;
                            }
                        }
                    })
                    .into()
                }),
            ],
        );
    }
    leak_check(ctx, "async/tcp", g.stats());
}

/// After a workload every connection must be back and none beyond the limit opened.
fn leak_check(ctx: &mut Ctx, workload: &str, s: gp::Stats) {
    assert!(
        s.in_use == 0 && s.waiting == 0 && s.open <= POOL,
        "connpool/{workload}: connections leaked: {s:?}"
    );
    ctx.metric(
        FAMILY,
        &format!("{workload} wait_count"),
        "gosync",
        s.wait_count as f64,
        "count",
    );
}
