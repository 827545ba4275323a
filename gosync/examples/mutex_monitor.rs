//! The notes' "monitor the Mutex" example: Go reads the private `state` word through `unsafe`
//! to print the waiter count and the woken / starving bits. gosync exposes them safely
//! (`waiters()`, `is_woken()`, `is_starving()`, `is_locked()`), so a monitor can watch the lock
//! live while threads fight over it.
//!
//! Run: `cargo run --example mutex_monitor`
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync::Mutex;

fn main() {
    let mu = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    // Eight workers hold the lock for ~500 µs at a time and want it back at once: waits soon
    // exceed 1 ms, so the mutex goes into starvation mode and hands the lock over in turn.
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (mu, stop) = (Arc::clone(&mu), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut g = mu.lock();
                    *g += 1;
                    let until = Instant::now() + Duration::from_micros(500);
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                }
            })
        })
        .collect();

    let (mut seen_starving, mut max_waiters) = (0, 0);
    println!(
        "{:>6} {:>7} {:>6} {:>9} {:>8}",
        "t(ms)", "waiters", "woken", "starving", "locked"
    );
    let start = Instant::now();
    for i in 0..40 {
        thread::sleep(Duration::from_millis(25));
        let (w, woken, starving, locked) = (
            mu.waiters(),
            mu.is_woken(),
            mu.is_starving(),
            mu.is_locked(),
        );
        max_waiters = max_waiters.max(w);
        seen_starving += usize::from(starving);
        if i % 4 == 0 {
            let t = start.elapsed().as_millis();
            println!("{t:>6} {w:>7} {woken:>6} {starving:>9} {locked:>8}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    println!(
        "critical sections: {}, max waiters seen: {max_waiters}, starving in {seen_starving}/40 samples",
        *mu.lock()
    );
    println!(
        "after the workers left: waiters={}, starving={}",
        mu.waiters(),
        mu.is_starving()
    );
}
