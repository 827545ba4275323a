//! Trap: re-entering an RWMutex: Lock inside Lock, or Lock while holding RLock (hangs).
//!
//! Run: `cargo run -p gosync --features deadlock-detection --example pitfall_rwmutex_reentrant`
#[path = "common.rs"]
mod common;

use std::time::Duration;

use gosync::RwMutex;

fn main() {
    common::trap(
        "a reader that calls code which takes the write lock (or a writer that locks again)",
        "the writer waits for the reader, the reader waits for the writer: hangs",
    );
    let cache = RwMutex::named("cache", vec![1, 2, 3]);
    let reading = cache.read();
    let outcome = if gosync::detect::is_enabled() {
        common::caught(|| drop(cache.write()))
    } else {
        // Without the detector `write()` blocks forever; show it with a timeout.
        assert!(cache.try_write_for(Duration::from_millis(200)).is_none());
        None
    };
    drop(reading);
    match outcome {
        Some(report) => {
            println!("detector report:\n{report}");
            common::gosync("the detector reports the re-lock before blocking");
        }
        None => {
            common::gosync(
                "without the detector it blocks as in Go (shown here with try_write_for)",
            );
            common::needs_detector("pitfall_rwmutex_reentrant");
        }
    }
    // After the reader has gone, the writer gets in.
    cache.write().push(4);
    assert_eq!(cache.read().len(), 4);
}
