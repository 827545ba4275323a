//! Trap: the seed's recursive factorial: each level takes a read lock while the previous
//! level still holds one, and a writer arrives in between (writer → reader → new reader →
//! writer: a cycle).
//!
//! Run: `cargo run -p gosync --features deadlock-detection --example pitfall_rwmutex_factorial`
#[path = "common.rs"]
mod common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use gosync::RwMutex;

fn factorial(m: &RwMutex<u64>, n: u64, writer_started: &dyn Fn()) -> Option<u64> {
    let _r = m.read();
    if n == 3 {
        // Let a writer queue up while this level holds its read lock.
        writer_started();
    }
    if n == 0 {
        return Some(1);
    }
    if gosync::detect::is_enabled() {
        factorial(m, n - 1, writer_started).map(|f| n * f)
    } else {
        // Without the detector the next read would wait behind the writer forever: probe it.
        let probe = m.try_read_for(Duration::from_millis(200))?;
        drop(probe);
        factorial(m, n - 1, writer_started).map(|f| n * f)
    }
}

fn main() {
    common::trap(
        "recursive read locks while a writer waits (the factorial example)",
        "the writer waits for the outer readers, the inner reader waits for the writer: hangs",
    );
    let m = Arc::new(RwMutex::named("factorial", 0u64));
    let writer = {
        let m = m.clone();
        move || {
            let m2 = m.clone();
            thread::spawn(move || *m2.write() += 1);
            // Wait until the writer is queued (new readers then wait).
            while m.try_read().is_some() {
                thread::sleep(Duration::from_millis(1));
            }
        }
    };
    let result = common::caught(|| {
        let r = factorial(&m, 5, &writer);
        println!("factorial(5) = {r:?}");
    });
    match result {
        Some(report) => {
            println!("detector report:\n{report}");
            common::gosync("the detector reports the recursive read the moment a writer waits");
        }
        None => {
            common::gosync("without the detector the inner read would hang as in Go (the timed probe gave up: None above)");
            common::needs_detector("pitfall_rwmutex_factorial");
        }
    }
    // Once every reader is gone the writer finishes.
    while *m.read() != 1 {
        thread::sleep(Duration::from_millis(1));
    }
}
