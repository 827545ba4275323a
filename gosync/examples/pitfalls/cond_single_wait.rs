//! Trap: calling Cond.Wait once instead of in a loop: being woken does not mean the condition
//! holds.
//!
//! Run: `cargo run -p gosync --example pitfall_cond_single_wait`
#[path = "common.rs"]
mod common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use gosync::{Cond, Mutex};

fn main() {
    common::trap(
        "a single Wait, without re-checking the condition",
        "the waiter proceeds after the first Broadcast, with 1 of 10 athletes ready",
    );
    let state = Arc::new((Mutex::new(0u32), Cond::new()));
    let spawn_athletes = |state: &Arc<(Mutex<u32>, Cond)>| -> Vec<thread::JoinHandle<()>> {
        (0..10u64)
            .map(|i| {
                let state = state.clone();
                thread::spawn(move || {
                    thread::sleep(Duration::from_millis(10 * (i + 1)));
                    let (ready, cond) = &*state;
                    *ready.lock() += 1;
                    cond.broadcast();
                })
            })
            .collect()
    };
    let (ready, cond) = &*state;

    // Wrong: one wait.
    let athletes = spawn_athletes(&state);
    let mut g = ready.lock();
    cond.wait(&mut g);
    println!("single wait: woke with {} of 10 ready", *g);
    drop(g);
    for a in athletes {
        a.join().unwrap();
    }

    // Right: wait_while re-checks the condition after every wake-up.
    *ready.lock() = 0;
    let athletes = spawn_athletes(&state);
    let mut g = ready.lock();
    cond.wait_while(&mut g, |n| *n < 10);
    println!("wait_while: woke with {} of 10 ready", *g);
    assert_eq!(*g, 10);
    drop(g);
    for a in athletes {
        a.join().unwrap();
    }
    common::gosync(
        "gosync's Cond has no spurious wake-ups, but a wake-up still only means \"check again\"; \
         wait_while is the loop written once",
    );
}
