//! Trap: reusing a WaitGroup (Add for the next round) before the previous Wait has returned.
//!
//! Run: `cargo run -p gosync --example pitfall_waitgroup_reuse`
#[path = "common.rs"]
mod common;

use std::sync::Arc;
use std::thread;

use gosync::WaitGroup;

fn main() {
    common::trap(
        "starting the next round (Add) while waiters of the previous round are still waking",
        "panic: sync: WaitGroup is reused before previous Wait has returned (or the misuse panic)",
    );
    let wg = Arc::new(WaitGroup::new());
    let mut panics = Vec::new();
    // Many short rounds with a waiter thread each: the next round's add races the wake-up.
    for _ in 0..2000 {
        wg.add(1);
        let waiter = {
            let wg = wg.clone();
            thread::spawn(move || common::caught(|| wg.wait()))
        };
        wg.done();
        if let Some(m) = common::caught(|| {
            wg.add(1);
            wg.done();
        }) {
            panics.push(m);
        }
        if let Some(m) = waiter.join().unwrap() {
            panics.push(m);
        }
    }
    panics.sort();
    panics.dedup();
    println!("messages seen over 2000 racing rounds: {panics:?}");
    for m in &panics {
        assert!(m.starts_with("sync: WaitGroup"), "unexpected message {m}");
    }
    common::gosync(
        "the same detection as Go with its exact messages (whether a given run loses the race \
         depends on timing); reuse after wait() returned is fine",
    );
    let wg = WaitGroup::new();
    for round in 0..3 {
        wg.add(1);
        wg.done();
        wg.wait();
        println!("round {round} reused cleanly");
    }
}
