//! Finding lock contention: four workers share a hot lock (held while "refreshing") and a
//! cold one; the mutex profile shows who held the lock others waited for, the block profile
//! where they waited.
//!
//! ```text
//! cargo run --release --example profile_contention
//! go tool pprof -top mutex.pb.gz
//! ```

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use gosync::profile::{self, Kind};
use gosync::Mutex;

/// The slow critical section: holds the hot lock while it works.
#[inline(never)]
fn refresh_cache(cache: &Mutex<Vec<u64>>) {
    let mut c = cache.lock();
    let n = c.len() as u64;
    c.push(n);
    thread::sleep(Duration::from_micros(500));
}

/// A quick critical section on another lock.
#[inline(never)]
fn count_request(counter: &Mutex<u64>) {
    *counter.lock() += 1;
}

fn main() -> std::io::Result<()> {
    profile::set_mutex_rate(1); // every contention (Go: runtime.SetMutexProfileFraction(1))
    profile::set_block_rate(1); // every blocking event (Go: runtime.SetBlockProfileRate(1))

    let cache = Arc::new(Mutex::new(Vec::new()));
    let counter = Arc::new(Mutex::new(0u64));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (cache, counter) = (cache.clone(), counter.clone());
            thread::spawn(move || {
                for i in 0..200 {
                    if i % 4 == 0 {
                        refresh_cache(&cache);
                    }
                    count_request(&counter);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker panicked");
    }

    let dir = std::env::current_dir()?;
    for (kind, name) in [(Kind::Mutex, "mutex.pb.gz"), (Kind::Block, "block.pb.gz")] {
        profile::write_pprof(std::fs::File::create(dir.join(name))?, kind)?;
    }
    print!("{}", profile::top(5));
    println!();
    println!("wrote mutex.pb.gz and block.pb.gz; read them with:");
    println!("  go tool pprof -top mutex.pb.gz");
    println!("  go tool pprof -http=: block.pb.gz");
    Ok(())
}
