//! Trap: an initialisation that fails inside Once.Do: Once counts it as done and never retries,
//! leaving the resource uninitialised.
//!
//! Run: `cargo run -p gosync --example pitfall_once_failed_init`
#[path = "common.rs"]
mod common;

use std::sync::atomic::{AtomicU32, Ordering};

use gosync::{Once, OnceValues, TryOnce};

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

/// Fails the first time (the network is not up yet), succeeds afterwards.
fn connect() -> Result<(), String> {
    if ATTEMPTS.fetch_add(1, Ordering::SeqCst) == 0 {
        Err("connection refused".into())
    } else {
        Ok(())
    }
}

fn main() {
    common::trap(
        "init fails inside Once.Do",
        "Once is done anyway; every later Do skips it and the resource stays nil",
    );
    let once = Once::new();
    once.call_once(|| {
        let _ = connect(); // the error has nowhere to go
    });
    once.call_once(|| unreachable!("Go's Once never runs f again"));
    println!("Once: is_done() = {} after a failed init", once.is_done());

    ATTEMPTS.store(0, Ordering::SeqCst);
    let init = TryOnce::new();
    let first = init.call_once(connect);
    let second = init.call_once(connect);
    println!(
        "TryOnce: first {first:?}, then {second:?}; is_done() = {}",
        init.is_done()
    );
    assert!(first.is_err() && second.is_ok() && init.is_done());

    // OnceValues keeps the error for every caller to see (Go 1.21's OnceValues).
    let conn = OnceValues::new(|| -> Result<u32, String> { Err("bad DSN".into()) });
    assert_eq!(conn.get(), Err(&"bad DSN".to_string()));
    common::gosync("TryOnce retries until an attempt succeeds (the seed's rewrite_once); OnceValues reports the error; Once::is_done answers the seed's extend_once");
}
