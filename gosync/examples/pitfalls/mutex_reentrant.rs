//! Trap: re-locking a Mutex the same goroutine holds (Go's Mutex is not reentrant: it hangs).
//!
//! Run: `cargo run -p gosync --features deadlock-detection --example pitfall_mutex_reentrant`
#[path = "common.rs"]
mod common;

use std::time::Duration;

use gosync::{Mutex, ReentrantMutex};

fn bar(l: &Mutex<()>) -> bool {
    // The seed's bar(): locks again while foo() holds the lock.
    if gosync::detect::is_enabled() {
        match common::caught(|| drop(l.lock())) {
            Some(report) => {
                println!("detector report:\n{report}");
                false
            }
            None => true,
        }
    } else {
        // Without the detector `l.lock()` would block forever; show it with a timeout.
        l.try_lock_for(Duration::from_millis(200)).is_some()
    }
}

fn main() {
    common::trap(
        "re-locking a Mutex the same goroutine holds (foo locks, then calls bar, which locks)",
        "the goroutine blocks forever",
    );
    let l = Mutex::named("l", ());
    let g = l.lock();
    let got = bar(&l);
    assert!(
        !got,
        "a non-reentrant mutex must not be re-acquired by its holder"
    );
    drop(g);
    if gosync::detect::is_enabled() {
        common::gosync("the detector reports the re-lock at once, naming the lock and both sites");
    } else {
        common::gosync("without the detector it blocks as in Go (shown here with try_lock_for)");
        common::needs_detector("pitfall_mutex_reentrant");
    }
    // The seed's fix, built in: a lock that knows its owner thread.
    let r = ReentrantMutex::new(0);
    let outer = r.lock();
    let inner = r.lock(); // same thread: re-enters instead of blocking
    println!("ReentrantMutex re-entered: {} {}", *outer, *inner);
}
