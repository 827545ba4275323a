//! Trap: calling Add inside the goroutine, so Wait may run before it and return too early.
//!
//! Run: `cargo run -p gosync --example pitfall_waitgroup_add_after_wait`
#[path = "common.rs"]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use gosync::WaitGroup;

fn main() {
    common::trap(
        "Add called by the task instead of before starting it",
        "Wait can return before the tasks ran (no error; sometimes the misuse panic)",
    );
    let wg = Arc::new(WaitGroup::new());
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..4 {
        let (wg, done) = (wg.clone(), done.clone());
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            wg.add(1); // too late
            done.fetch_add(1, Ordering::SeqCst);
            wg.done();
        });
    }
    wg.wait();
    println!(
        "wrong: wait() returned after {} of 4 tasks",
        done.load(Ordering::SeqCst)
    );

    // The fix gosync offers: WaitGroup::go (Go 1.25's wg.Go) adds before it spawns.
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..4 {
        let done = done.clone();
        wg.go(move || {
            thread::sleep(Duration::from_millis(50));
            done.fetch_add(1, Ordering::SeqCst);
        });
    }
    wg.wait();
    assert_eq!(done.load(Ordering::SeqCst), 4);
    println!("right: wait() returned after 4 of 4 tasks");
    common::gosync(
        "an Add that races the release of waiters panics with Go's message \
         (`sync: WaitGroup misuse: Add called concurrently with Wait`); the late-Add race itself \
         cannot be seen by any WaitGroup, so `WaitGroup::go` makes the correct order the easy one",
    );
}
