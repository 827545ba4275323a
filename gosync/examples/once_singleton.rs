//! The seed's Once chapter: a singleton built three ways — with a mutex (correct but every
//! call takes the lock), with `Once` (`Do` runs only the first function it is given), and as
//! a value (`OnceValue`, the shape of the seed's `threeOnce`).
//!
//! At the end it shows the seed's first Once pitfall, a `Do` inside its own function: Go
//! deadlocks, gosync panics with a message that says so.
//!
//! Run: `cargo run --example once_singleton`
use std::sync::Mutex;
use std::thread;

use gosync::{Once, OnceValue};

/// A "connection", expensive to make.
#[derive(Debug)]
struct Conn {
    addr: &'static str,
}

fn dial(addr: &'static str) -> Conn {
    println!("  dialing {addr} (happens once)");
    Conn { addr }
}

// 1. The seed's `1_single_mutex.go`: correct, but every caller contends for the lock forever.
static CONN_MU: Mutex<Option<&'static Conn>> = Mutex::new(None);

fn conn_with_mutex() -> &'static Conn {
    let mut c = CONN_MU.lock().unwrap();
    c.get_or_insert_with(|| Box::leak(Box::new(dial("mutex.example:80"))))
}

// 3. The seed's `threeOnce`: the value and its Once together, initialised on first use.
static THREE: OnceValue<f64> = OnceValue::new(|| {
    println!("  computing three (happens once)");
    3.0
});

static CONN: OnceValue<Conn> = OnceValue::new(|| dial("once.example:80"));

fn main() {
    println!("mutex singleton:");
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| assert_eq!(conn_with_mutex().addr, "mutex.example:80"));
        }
    });

    println!("Once: only the first function passed to call_once runs (2_call_once.go):");
    let once = Once::new();
    once.call_once(|| println!("  f1 runs"));
    once.call_once(|| println!("  f2 never runs"));
    println!("  once.is_done() = {}", once.is_done());

    println!("OnceValue singletons (the lock-free fast path after the first call):");
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                assert_eq!(CONN.get().addr, "once.example:80");
                assert_eq!(*THREE.get(), 3.0);
            });
        }
    });
    println!("  CONN = {:?}, three() = {}", CONN.get(), THREE.get());

    println!("The seed's first Once pitfall: Do inside its own f (Go deadlocks)");
    let once = Once::new();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(|| {
        once.call_once(|| {
            once.call_once(|| println!("  never printed"));
        })
    });
    let _ = std::panic::take_hook();
    let err = r.expect_err("a re-entrant call_once panics");
    let msg = err.downcast_ref::<String>().expect("a formatted message");
    println!("  gosync panics instead: {msg}");
}
