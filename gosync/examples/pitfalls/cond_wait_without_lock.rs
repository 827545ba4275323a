//! Trap: calling Cond.Wait without holding c.L (the seed's referee forgets `c.L.Lock()`).
//!
//! Run: `cargo run -p gosync --example pitfall_cond_wait_without_lock`
#[path = "common.rs"]
mod common;

use std::sync::Arc;
use std::thread;

use gosync::{Cond, Mutex};

fn main() {
    common::trap(
        "Wait called without holding the Cond's lock",
        "Wait unlocks a mutex that is not locked: fatal error: sync: unlock of unlocked mutex",
    );
    // `Cond::wait` takes the `MutexGuard`, the proof that the lock is held: the Go program
    // has no Rust equivalent that compiles (compile_fail doctest in gosync::pitfalls).
    let state = Arc::new((Mutex::new(0u32), Cond::new()));
    let athletes: Vec<_> = (0..10)
        .map(|_| {
            let state = state.clone();
            thread::spawn(move || {
                let (ready, cond) = &*state;
                *ready.lock() += 1;
                cond.broadcast();
            })
        })
        .collect();
    let (ready, cond) = &*state;
    let mut g = ready.lock(); // the lock the Go program forgot: required to call wait
    while *g != 10 {
        cond.wait(&mut g);
    }
    drop(g);
    for a in athletes {
        a.join().unwrap();
    }
    println!("all 10 athletes ready");
    common::gosync("waiting requires the guard, so waiting without the lock does not compile");
}
