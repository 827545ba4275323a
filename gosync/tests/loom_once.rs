//! Loom models of the Once family: one run, waiters block until it ends, publication of the
//! initializer's writes, TryOnce's retry with exactly one success.
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_once`
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use gosync::{Once, OnceValue, TryOnce};

/// Two callers race: f runs once and each caller, on return, sees its relaxed write.
#[test]
fn once_runs_once_and_publishes() {
    loom::model(|| {
        let once = Arc::new(Once::new());
        let value = Arc::new(AtomicUsize::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let call = {
            let (once, value, calls) = (Arc::clone(&once), Arc::clone(&value), Arc::clone(&calls));
            move || {
                once.call_once(|| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    value.store(42, Ordering::Relaxed);
                });
                assert_eq!(value.load(Ordering::Relaxed), 42);
                assert!(once.is_done());
            }
        };
        let t = thread::spawn(call.clone());
        call();
        t.join().unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    });
}

/// `is_done` == true implies the initializer's writes are visible (the seed's extend_once).
#[test]
fn is_done_publishes() {
    loom::model(|| {
        let once = Arc::new(Once::new());
        let value = Arc::new(AtomicUsize::new(0));
        let t = {
            let (once, value) = (Arc::clone(&once), Arc::clone(&value));
            thread::spawn(move || once.call_once(|| value.store(7, Ordering::Relaxed)))
        };
        if once.is_done() {
            assert_eq!(value.load(Ordering::Relaxed), 7);
        }
        t.join().unwrap();
        assert!(once.is_done());
    });
}

/// OnceValue shared by two threads: one computation, the same value for both.
#[test]
fn once_value_computed_once() {
    loom::model(|| {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let v = Arc::new(OnceValue::new(move || {
            c.fetch_add(1, Ordering::Relaxed) + 10
        }));
        let t = {
            let v = Arc::clone(&v);
            thread::spawn(move || *v.get())
        };
        assert_eq!(*v.get(), 10);
        assert_eq!(t.join().unwrap(), 10);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    });
}

/// TryOnce: the first attempt (whoever makes it) fails, the next succeeds; exactly one success
/// and no attempt after it.
#[test]
fn try_once_retries_with_exactly_one_success() {
    loom::model(|| {
        let once = Arc::new(TryOnce::new());
        let attempts = Arc::new(AtomicUsize::new(0));
        let call = {
            let (once, attempts) = (Arc::clone(&once), Arc::clone(&attempts));
            move || {
                once.call_once(|| {
                    if attempts.fetch_add(1, Ordering::Relaxed) == 0 {
                        Err(())
                    } else {
                        Ok(())
                    }
                })
            }
        };
        let t = thread::spawn(call.clone());
        let mine = call();
        let theirs = t.join().unwrap();
        // Whatever the interleaving, the first attempt fails and the other caller (waiting
        // for it, or arriving after it) makes the second attempt, which succeeds.
        let oks = [mine, theirs].iter().filter(|r| r.is_ok()).count();
        assert_eq!(oks, 1, "exactly one caller sees its attempt fail");
        assert_eq!(attempts.load(Ordering::Relaxed), 2);
        assert!(once.is_done());
        // Done: a later call runs nothing.
        assert_eq!(call(), Ok(()));
        assert_eq!(attempts.load(Ordering::Relaxed), 2);
    });
}
