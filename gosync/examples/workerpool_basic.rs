//! A TCP server whose connections are handled by a fixed set of workers instead of one thread
//! per connection — the seed's Worker Pool motivation (fasthttp's worker pool), on loopback.
//!
//! The acceptor hands each accepted connection to a `WorkerPool` of 4 workers with a bounded
//! queue of 16 connections; when both are full, `submit` blocks the acceptor (back-pressure
//! instead of an unbounded pile of threads). 8 client threads send 25 jobs each.
//!
//! Run: `cargo run --example workerpool_basic`

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use gosync::workerpool::{Options, WorkerPool};

const CLIENTS: usize = 8;
const JOBS_PER_CLIENT: usize = 25;

/// The "work": the sum of the squares of 1..=n.
fn handle(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let n: u64 = line
        .trim()
        .strip_prefix("job ")
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    let answer: u64 = (1..=n).map(|k| k * k).sum();
    thread::sleep(Duration::from_millis(1)); // pretend to do I/O
    writeln!(writer, "{answer}")
}

fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let pool = Arc::new(WorkerPool::with_options(
        4,
        Options::new()
            .queue_capacity(16)
            .thread_name("conn-worker")
            .panic_handler(|p| eprintln!("a connection handler panicked: {p:?}")),
    ));
    let handled = Arc::new(AtomicUsize::new(0));

    // Acceptor: feeds connections to the pool; stops after the expected number.
    let acceptor = {
        let (pool, handled) = (Arc::clone(&pool), Arc::clone(&handled));
        thread::spawn(move || {
            for stream in listener.incoming().take(CLIENTS * JOBS_PER_CLIENT) {
                let stream = stream.expect("accept");
                let handled = Arc::clone(&handled);
                pool.submit(move || {
                    if let Err(e) = handle(stream) {
                        eprintln!("connection error: {e}");
                    }
                    handled.fetch_add(1, Ordering::Relaxed);
                })
                .expect("pool is open");
            }
        })
    };

    // Clients.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            thread::spawn(move || -> std::io::Result<u64> {
                let mut total = 0;
                for j in 0..JOBS_PER_CLIENT {
                    let n = (c * JOBS_PER_CLIENT + j) as u64 % 100;
                    let mut s = TcpStream::connect(addr)?;
                    writeln!(s, "job {n}")?;
                    let mut reply = String::new();
                    BufReader::new(s).read_line(&mut reply)?;
                    let got: u64 = reply.trim().parse().expect("numeric reply");
                    assert_eq!(
                        got,
                        n * (n + 1) * (2 * n + 1) / 6,
                        "server answered job {n}"
                    );
                    total += got;
                }
                Ok(total)
            })
        })
        .collect();
    let mut total = 0;
    for c in clients {
        total += c.join().expect("client thread")?;
    }
    acceptor.join().expect("acceptor thread");
    pool.stop_wait();

    let s = pool.stats();
    println!(
        "{} connections handled by at most {} workers (peak {}), checksum {total}",
        handled.load(Ordering::Relaxed),
        pool.cap(),
        s.peak_workers
    );
    println!(
        "stats: submitted {}, completed {}, panicked {}, workers started {}",
        s.submitted, s.completed, s.panicked, s.workers_started
    );
    assert_eq!(handled.load(Ordering::Relaxed), CLIENTS * JOBS_PER_CLIENT);
    Ok(())
}
