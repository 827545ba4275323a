//! Trap: two goroutines taking two locks in opposite orders (the classic deadlock).
//!
//! Run: `cargo run -p gosync --features deadlock-detection --example pitfall_mutex_lock_order`
#[path = "common.rs"]
mod common;

use std::sync::Arc;
use std::thread;

use gosync::Mutex;

fn main() {
    common::trap(
        "lock-order inversion: A then B on one goroutine, B then A on another",
        "hangs when the two runs overlap; when they do not, nothing shows until production",
    );
    let a = Arc::new(Mutex::named("accounts", 0));
    let b = Arc::new(Mutex::named("audit log", 0));
    // Thread 1: accounts, then audit log. It finishes before thread 2 starts, so nothing hangs.
    {
        let (a, b) = (a.clone(), b.clone());
        thread::spawn(move || {
            let mut ga = a.lock();
            let mut gb = b.lock();
            *ga += 1;
            *gb += 1;
        })
        .join()
        .unwrap();
    }
    // Thread 2: the opposite order.
    let report = common::caught(|| {
        let _gb = b.lock();
        let _ga = a.lock();
    });
    match report {
        Some(r) => {
            println!("detector report:\n{r}");
            common::gosync("the detector reports the inversion before it blocks, even though these runs never overlapped");
        }
        None => {
            assert!(!gosync::detect::is_enabled());
            common::gosync(
                "without the detector this run passes (the runs did not overlap), as in Go",
            );
            common::needs_detector("pitfall_mutex_lock_order");
        }
    }
}
