//! The buffer-pool trap from the seed's Pool chapter (Go issue 23199), and the fix.
//!
//! Hugo's `bufpool` — a `sync.Pool` of `bytes.Buffer` that resets and puts back every buffer —
//! is the leaky version: one huge page grows a buffer to megabytes, and because busy pools keep
//! reusing their buffers, that memory stays pinned however rarely huge pages come. The fixed
//! version, [`BufferPool`], never keeps a buffer above 64 KiB and drops large buffers that keep
//! being under-used.
//!
//! Four threads render pages: 99% are ~2 KiB, 1% are 4 MiB. After every round the pools run a
//! cleanup cycle (Go runs one at every GC). Run: `cargo run --release --example pool_buffer`
use std::io::Write;
use std::sync::Arc;
use std::thread;

use gosync::pool::{BufferPool, Pool};

const THREADS: usize = 4;
const PAGES: usize = 2_000;

/// Size of page `i` of thread `t`: mostly small, one in a hundred huge.
fn page_size(t: usize, i: usize) -> usize {
    if (i * 7 + t * 13).is_multiple_of(100) {
        4 << 20
    } else {
        1_500 + (i * 31 + t) % 1_000
    }
}

fn render(out: &mut impl Write, size: usize) {
    let line = [b'x'; 100];
    let mut left = size;
    while left > 0 {
        let n = left.min(line.len());
        out.write_all(&line[..n]).unwrap();
        left -= n;
    }
}

fn kib(b: usize) -> String {
    format!("{:9.1} KiB", b as f64 / 1024.0)
}

fn main() {
    // The leaky pool: Hugo's bufpool, `Reset` then `Put`, whatever the size.
    let leaky: Arc<Pool<Vec<u8>>> =
        Arc::new(Pool::builder(Vec::new).weigher(|v| v.capacity()).build());
    // The fixed pool.
    let fixed = Arc::new(BufferPool::new());

    println!("retained after each round's cleanup cycle (idle + victim generations)");
    println!("round   leaky pool       BufferPool");
    for round in 1..=5 {
        let hs: Vec<_> = (0..THREADS)
            .map(|t| {
                let (leaky, fixed) = (Arc::clone(&leaky), Arc::clone(&fixed));
                thread::spawn(move || {
                    for i in 0..PAGES {
                        let size = page_size(t, i);

                        let mut b = leaky.get();
                        render(&mut b, size);
                        b.clear(); // Reset
                        leaky.put(b); // Put: keeps the 4 MiB capacity

                        let mut b = fixed.get();
                        render(&mut *b, size);
                        fixed.put(b); // dropped if oversized or persistently under-used
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        leaky.cleanup();
        fixed.cleanup();
        println!(
            "{round:>5}   {}   {}",
            kib(leaky.stats().retained),
            kib(fixed.stats().retained)
        );
    }
    let s = fixed.stats();
    println!(
        "\nBufferPool: {} oversized buffers dropped at put, {} dropped for under-use, {} reused",
        s.discarded_oversized,
        s.discarded_underused,
        s.small.hits + s.small.steals + s.small.victim_hits + s.large.hits + s.large.steals
    );
    let l = leaky.stats();
    println!(
        "leaky pool: {} idle buffers hold {}",
        l.idle + l.idle_victim,
        kib(l.retained).trim()
    );
}
