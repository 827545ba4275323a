//! The notes' first Mutex example: 10 goroutines (threads here) each add 100,000 to a shared
//! counter. Without the lock the total would come out short; with it, it is exactly 1,000,000.
//!
//! Run: `cargo run --example mutex_counter`
use std::sync::Arc;
use std::thread;

use gosync::Mutex;

fn main() {
    let counter = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let counter = Arc::clone(&counter);
            thread::spawn(move || {
                for _ in 0..100_000 {
                    *counter.lock() += 1; // the guard unlocks at the end of the statement
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let total = *counter.lock();
    println!("count = {total}");
    assert_eq!(total, 1_000_000);
}
