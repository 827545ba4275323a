//! Trap: a WaitGroup counter going negative (Add with a negative delta, or one Done too many).
//!
//! Run: `cargo run -p gosync --example pitfall_waitgroup_negative`
#[path = "common.rs"]
mod common;

use gosync::WaitGroup;

fn main() {
    common::trap(
        "Done called more often than Add",
        "panic: sync: negative WaitGroup counter",
    );
    let wg = WaitGroup::new();
    wg.add(1);
    wg.done();
    let msg = common::caught(|| wg.done());
    println!("second done(): panic {msg:?}");
    assert_eq!(msg.as_deref(), Some("sync: negative WaitGroup counter"));
    assert_eq!(wg.count(), 0, "the failed done left the counter as it was");
    common::gosync(
        "the same panic with Go's exact message; the counter is left unchanged, so a caught panic \
         leaves a usable WaitGroup. `WaitGroup::guard()` pairs add and done by construction",
    );
}
