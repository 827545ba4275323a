//! The seed's Cond example: ten athletes get ready at random times; the referee waits until
//! all ten are ready, then starts the race.
//!
//! The seed's two Cond mistakes do not carry over:
//! - "Wait without holding the lock" cannot compile: `wait` takes the `MutexGuard`.
//! - "Wait once and assume the condition holds": the referee below loops on the condition
//!   (a wake-up is only a chance to check), and `wait_while` is the same loop written for you.
//!
//! Run: `cargo run -p gosync --example cond_race`

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use gosync::{Cond, Mutex};

fn main() {
    let race = Arc::new((Mutex::new(0u32), Cond::new()));

    let athletes: Vec<_> = (0..10u64)
        .map(|i| {
            let race = race.clone();
            thread::spawn(move || {
                // The seed sleeps rand(10) seconds; a few pseudo-random milliseconds here.
                thread::sleep(Duration::from_millis((i * 37) % 50));
                let (ready, cond) = &*race;
                *ready.lock() += 1;
                println!("athlete #{i} is ready");
                // Broadcast wakes the referee (and anyone else waiting) to re-check.
                cond.broadcast();
            })
        })
        .collect();

    let (ready, cond) = &*race;
    let mut guard = ready.lock();
    let mut wake_ups = 0;
    while *guard != 10 {
        cond.wait(&mut guard);
        wake_ups += 1;
        println!("referee woken ({} ready)", *guard);
    }
    println!("all athletes ready after {wake_ups} wake-ups. Race starts: 3, 2, 1, ...");
    drop(guard);

    // The same wait as one call: `wait_while` checks under the lock and after every wake-up.
    let mut guard = ready.lock();
    cond.wait_while(&mut guard, |n| *n != 10);
    assert_eq!(*guard, 10);
    drop(guard);

    for a in athletes {
        a.join().unwrap();
    }
}
