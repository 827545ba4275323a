//! The seed's `4_rewrite_once.go`: Go's `Once` treats a failed initialisation as done, so a
//! connection that failed to open stays unopened forever. `TryOnce` reports the failure and
//! lets the next call try again, until one succeeds.
//!
//! Run: `cargo run --example once_retry`
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::thread;

use gosync::{Once, TryOnce};

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

/// A dial that fails the first two times (the network is flaky).
fn dial() -> Result<String, String> {
    let n = ATTEMPTS.fetch_add(1, Ordering::SeqCst) + 1;
    if n <= 2 {
        Err(format!("attempt {n}: connection refused"))
    } else {
        Ok(format!("conn#{n}"))
    }
}

fn main() {
    println!("Go's Once: a failed init is still 'done' (the seed's second pitfall)");
    let once = Once::new();
    let conn: Mutex<Option<String>> = Mutex::new(None);
    once.call_once(|| *conn.lock().unwrap() = dial().ok());
    once.call_once(|| *conn.lock().unwrap() = dial().ok()); // not run
    println!(
        "  is_done = {}, conn = {:?}: stuck without a connection",
        once.is_done(),
        conn.lock().unwrap()
    );

    println!("Go's Once with a panicking init: the panic reaches the caller, then it is done");
    let once = Once::new();
    panic::set_hook(Box::new(|_| {}));
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        once.call_once(|| panic!("init failed"))
    }));
    let _ = panic::take_hook();
    println!(
        "  first call panicked: {}, is_done = {}",
        r.is_err(),
        once.is_done()
    );

    println!("TryOnce: failures are reported and retried; exactly one success");
    ATTEMPTS.store(0, Ordering::SeqCst);
    let once = TryOnce::new();
    let conn: Mutex<Option<String>> = Mutex::new(None);
    let connect = || {
        once.call_once(|| {
            let c = dial()?;
            *conn.lock().unwrap() = Some(c);
            Ok::<(), String>(())
        })
    };
    thread::scope(|s| {
        for id in 0..4 {
            let connect = &connect;
            s.spawn(move || loop {
                match connect() {
                    Ok(()) => break,
                    Err(e) => println!("  caller {id}: {e}, retrying"),
                }
            });
        }
    });
    println!(
        "  is_done = {}, conn = {:?}, dial attempts = {}",
        once.is_done(),
        conn.lock().unwrap(),
        ATTEMPTS.load(Ordering::SeqCst)
    );
    assert_eq!(ATTEMPTS.load(Ordering::SeqCst), 3);
}
