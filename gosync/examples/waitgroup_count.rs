//! The seed's first WaitGroup example (`1_concurrent_count.go`): ten workers each bump a
//! shared counter once; the main thread waits for all of them with a `WaitGroup` and then
//! reads the total.
//!
//! Run: `cargo run --example waitgroup_count`
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use gosync::WaitGroup;

/// A counter safe for concurrent use, as in the seed.
#[derive(Default)]
struct Counter {
    count: Mutex<u64>,
}

impl Counter {
    fn incr(&self) {
        *self.count.lock().unwrap() += 1;
    }
    fn count(&self) -> u64 {
        *self.count.lock().unwrap()
    }
}

/// One worker: sleep a moment, add one, and tell the WaitGroup it is done.
fn worker(c: &Counter, wg: &WaitGroup) {
    thread::sleep(Duration::from_millis(100));
    c.incr();
    wg.done(); // Go: defer wg.Done()
}

fn main() {
    // Go style: add(10) up front, spawn, done in each worker, wait.
    let counter = Arc::new(Counter::default());
    let wg = Arc::new(WaitGroup::new());
    wg.add(10);
    for _ in 0..10 {
        let (c, wg) = (Arc::clone(&counter), Arc::clone(&wg));
        thread::spawn(move || worker(&c, &wg));
    }
    wg.wait();
    println!("Go style (add/done/wait): count = {}", counter.count());
    assert_eq!(counter.count(), 10);

    // Go 1.25 style: wg.go(f) adds, spawns and calls done for you (even if f panics).
    let counter = Arc::new(Counter::default());
    for _ in 0..10 {
        let c = Arc::clone(&counter);
        wg.go(move || {
            thread::sleep(Duration::from_millis(100));
            c.incr();
        });
    }
    wg.wait(); // the same WaitGroup, reused: its previous wait returned
    println!("wg.go style:              count = {}", counter.count());
    assert_eq!(counter.count(), 10);

    // Rust style: scoped threads borrow the counter and the WaitGroup, no Arc needed.
    let counter = Counter::default();
    let wg = WaitGroup::new();
    thread::scope(|s| {
        for _ in 0..10 {
            wg.add(1);
            s.spawn(|| worker(&counter, &wg));
        }
        wg.wait();
        println!("scoped threads:           count = {}", counter.count());
    });
    assert_eq!(counter.count(), 10);
}
