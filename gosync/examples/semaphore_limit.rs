//! Bounded parallel downloads: 24 files, at most 3 in flight, from a loopback server this
//! example starts itself. The server counts concurrent connections, which shows the bound.
//!
//! Run: `cargo run -p gosync --example semaphore_limit`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync::x::Semaphore;

const FILES: usize = 24;
const MAX_IN_FLIGHT: usize = 3;

/// A tiny server: each connection sends one line (a file name) and gets 64 KiB back after a
/// short delay. Tracks the peak number of connections served at once.
fn start_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().unwrap().port();
    let peak = Arc::new(AtomicUsize::new(0));
    let active = Arc::new(AtomicUsize::new(0));
    let peak2 = peak.clone();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (active, peak) = (active.clone(), peak2.clone());
            thread::spawn(move || {
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let mut name = String::new();
                let _ = BufReader::new(&conn).read_line(&mut name);
                thread::sleep(Duration::from_millis(20)); // the "disk"
                let body = vec![b'x'; 64 * 1024];
                let _ = conn.write_all(&body);
                active.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (port, peak)
}

fn download(port: u16, name: &str) -> std::io::Result<usize> {
    let mut conn = TcpStream::connect(("127.0.0.1", port))?;
    writeln!(conn, "{name}")?;
    let mut body = Vec::new();
    conn.read_to_end(&mut body)?;
    Ok(body.len())
}

fn main() {
    let (port, peak) = start_server();
    let sem = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..FILES)
        .map(|i| {
            // Go: sem.Acquire(ctx, 1) before `go`, defer sem.Release(1) inside.
            let permit = sem.acquire_owned(1);
            thread::spawn(move || {
                let _permit = permit; // released when the download ends
                download(port, &format!("file-{i}.bin")).expect("download")
            })
        })
        .collect();
    let bytes: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    // Go's trick to wait for everyone: take all permits.
    let all = sem.acquire(MAX_IN_FLIGHT);
    drop(all);
    let peak = peak.load(Ordering::SeqCst);
    println!(
        "downloaded {FILES} files ({} KiB) in {:?}; at most {peak} in flight (limit {MAX_IN_FLIGHT})",
        bytes / 1024,
        t0.elapsed()
    );
    assert!(
        peak <= MAX_IN_FLIGHT,
        "the semaphore let {peak} downloads run at once"
    );
}
