//! Loom models of the Once family: one run, waiters block until it ends, publication of the
//! initializer's writes, TryOnce's retry with exactly one success, and a panicking function
//! (`Once` counts it as done, `OnceValue` re-raises it for every caller, waiters are woken).
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_once`
//!
//! In the models of two callers, every caller first touches a shared `entered` counter (see
//! `support/loom.rs`); an initializer that reads it as 2 when it finishes ran while the other
//! caller had arrived. That caller then waits for the run (parks, or finds it over when it
//! re-checks) unless it reaches the once only after the run. Each model asserts that loom
//! produced such executions, and that either thread ran the initializer in some execution.
//! That the waiting is really explored shows when the wake-up of parked callers is removed
//! from `RawOnce`: each of these models then deadlocks.
#![cfg(loom)]

#[path = "support/loom.rs"]
mod support;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use support::{explore, panic_message, quiet_panics, start};

use gosync::{Once, OnceValue, TryOnce};

/// Whether the other caller has arrived (read by an initializer as it finishes).
fn other_arrived(entered: &AtomicUsize) -> bool {
    entered.load(Ordering::SeqCst) == 2
}

/// Two callers race: f runs once and each caller, on return, sees its relaxed write.
#[test]
fn once_runs_once_and_publishes() {
    let ex = explore(|| {
        let once = Arc::new(Once::new());
        let value = Arc::new(AtomicUsize::new(0));
        let entered = Arc::new(AtomicUsize::new(0));
        let call = {
            let (once, value, entered) =
                (Arc::clone(&once), Arc::clone(&value), Arc::clone(&entered));
            move || {
                start(&entered);
                let mut ran = None;
                once.call_once(|| {
                    value.store(42, Ordering::Relaxed);
                    ran = Some(other_arrived(&entered));
                });
                assert_eq!(value.load(Ordering::Relaxed), 42);
                assert!(once.is_done());
                ran
            }
        };
        let t = thread::spawn(call.clone());
        let mine = call();
        let theirs = t.join().unwrap();
        assert!(
            mine.is_some() != theirs.is_some(),
            "f must run exactly once"
        );
        [
            if theirs.is_some() {
                "spawned thread ran f"
            } else {
                ""
            },
            if mine.or(theirs) == Some(true) {
                "the other caller arrived during the run"
            } else {
                ""
            },
        ]
    });
    ex.assert_saw(&[
        "spawned thread ran f",
        "the other caller arrived during the run",
    ]);
}

/// `is_done` == true implies the initializer's writes are visible (the seed's extend_once).
#[test]
fn is_done_publishes() {
    let ex = explore(|| {
        let once = Arc::new(Once::new());
        let value = Arc::new(AtomicUsize::new(0));
        let flag = Arc::new(AtomicUsize::new(0));
        let t = {
            let (once, value, flag) = (Arc::clone(&once), Arc::clone(&value), Arc::clone(&flag));
            thread::spawn(move || {
                start(&flag);
                once.call_once(|| value.store(7, Ordering::Relaxed))
            })
        };
        start(&flag);
        let done = once.is_done();
        if done {
            assert_eq!(value.load(Ordering::Relaxed), 7);
        }
        t.join().unwrap();
        assert!(once.is_done());
        [if done { "saw done" } else { "saw not done" }]
    });
    ex.assert_saw(&["saw done", "saw not done"]);
}

/// OnceValue shared by two threads: one computation, the same value for both.
#[test]
fn once_value_computed_once() {
    let ex = explore(|| {
        let calls = Arc::new(AtomicUsize::new(0));
        let entered = Arc::new(AtomicUsize::new(0));
        let waited = Arc::new(AtomicUsize::new(0));
        let v = {
            let (c, e, w) = (
                Arc::clone(&calls),
                Arc::clone(&entered),
                Arc::clone(&waited),
            );
            Arc::new(OnceValue::new(move || {
                let n = c.fetch_add(1, Ordering::Relaxed) + 10;
                if other_arrived(&e) {
                    w.store(1, Ordering::Relaxed);
                }
                n
            }))
        };
        let t = {
            let (v, entered) = (Arc::clone(&v), Arc::clone(&entered));
            thread::spawn(move || {
                start(&entered);
                *v.get()
            })
        };
        start(&entered);
        assert_eq!(*v.get(), 10);
        assert_eq!(t.join().unwrap(), 10);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        [if waited.load(Ordering::Relaxed) == 1 {
            "the other caller arrived during the run"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["the other caller arrived during the run"]);
}

/// TryOnce: the first attempt (whoever makes it) fails, the next succeeds; exactly one success
/// and no attempt after it.
#[test]
fn try_once_retries_with_exactly_one_success() {
    let ex = explore(|| {
        let once = Arc::new(TryOnce::new());
        let attempts = Arc::new(AtomicUsize::new(0));
        let entered = Arc::new(AtomicUsize::new(0));
        let waited = Arc::new(AtomicUsize::new(0));
        let call = {
            let (once, attempts) = (Arc::clone(&once), Arc::clone(&attempts));
            let (entered, waited) = (Arc::clone(&entered), Arc::clone(&waited));
            move |first: bool| {
                if first {
                    start(&entered);
                }
                once.call_once(|| {
                    if attempts.fetch_add(1, Ordering::Relaxed) == 0 {
                        if other_arrived(&entered) {
                            waited.store(1, Ordering::Relaxed);
                        }
                        Err(())
                    } else {
                        Ok(())
                    }
                })
            }
        };
        let t = {
            let call = call.clone();
            thread::spawn(move || call(true))
        };
        let mine = call(true);
        let theirs = t.join().unwrap();
        // Whatever the interleaving, the first attempt fails and the other caller (waiting
        // for it, or arriving after it) makes the second attempt, which succeeds.
        let oks = [mine, theirs].iter().filter(|r| r.is_ok()).count();
        assert_eq!(oks, 1, "exactly one caller sees its attempt fail");
        assert_eq!(attempts.load(Ordering::Relaxed), 2);
        assert!(once.is_done());
        // Done: a later call runs nothing.
        assert_eq!(call(false), Ok(()));
        assert_eq!(attempts.load(Ordering::Relaxed), 2);
        [
            if theirs.is_err() {
                "spawned thread failed first"
            } else {
                ""
            },
            if waited.load(Ordering::Relaxed) == 1 {
                "the other caller arrived during the failed run"
            } else {
                ""
            },
        ]
    });
    ex.assert_saw(&[
        "spawned thread failed first",
        "the other caller arrived during the failed run",
    ]);
}

const BOOM: &str = "initializer failed";

/// Runs `f`, returning the message of its panic, if any.
fn caught<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|e| panic_message(&*e).to_owned())
}

/// A panicking function, two callers (Go: "if f panics, Do considers it to have returned").
///
/// `Once`: `f` runs once; its caller gets the panic; the other caller, waiting for the run or
/// arriving after it, returns normally without running `f`; the `Once` is done. `OnceValue`:
/// `f` runs once and both callers panic with its message (Go 1.21's `OnceValue`). A caller that
/// waits for a panicking run must be woken: a lost wake-up deadlocks the model.
#[test]
fn panicking_function() {
    quiet_panics(&[BOOM]);
    let ex = explore(|| {
        let once = Arc::new(Once::new());
        let value = Arc::new(
            OnceValue::<u32, Box<dyn FnOnce() -> u32 + Send + Sync>>::new(Box::new(|| {
                panic!("{BOOM}")
            })),
        );
        let runs = Arc::new(AtomicUsize::new(0));
        let entered = Arc::new(AtomicUsize::new(0));
        let call = {
            let (once, value) = (Arc::clone(&once), Arc::clone(&value));
            let (runs, entered) = (Arc::clone(&runs), Arc::clone(&entered));
            move || {
                start(&entered);
                let mut waited = false;
                let mine = caught(|| {
                    once.call_once(|| {
                        runs.fetch_add(1, Ordering::Relaxed);
                        waited = other_arrived(&entered);
                        panic!("{BOOM}");
                    })
                });
                let got = caught(|| *value.get());
                (mine, got, waited)
            }
        };
        let t = thread::spawn(call.clone());
        let (mine, my_value, w1) = call();
        let (theirs, their_value, w2) = t.join().unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 1, "f ran more than once");
        assert!(once.is_done(), "a panic counts as done");
        let panics: Vec<&String> = [&mine, &theirs]
            .into_iter()
            .flat_map(|r| r.as_ref().err())
            .collect();
        assert_eq!(
            panics,
            [BOOM],
            "exactly the caller that ran f gets its panic"
        );
        assert_eq!(my_value, Err(BOOM.to_owned()));
        assert_eq!(their_value, Err(BOOM.to_owned()));
        assert!(value.is_done());
        [
            if theirs.is_err() {
                "spawned thread ran f"
            } else {
                ""
            },
            if w1 || w2 {
                "the other caller arrived during the panicking run"
            } else {
                ""
            },
        ]
    });
    ex.assert_saw(&[
        "spawned thread ran f",
        "the other caller arrived during the panicking run",
    ]);
}
