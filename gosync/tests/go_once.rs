//! Go's `src/sync/once_test.go` and `oncefunc_test.go`, ported, plus the seed's Once pitfalls
//! and `TryOnce`.
#![cfg(not(loom))]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use gosync::{Once, OnceFunc, OnceValue, OnceValues, TryOnce};

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string payload>".to_string()
    }
}

fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Box<dyn std::any::Any + Send>> {
    panic::catch_unwind(AssertUnwindSafe(f))
}

// ---- once_test.go -------------------------------------------------------------------------

#[test]
fn test_once() {
    let once = Once::new();
    let value = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..10 {
            s.spawn(|| {
                once.call_once(|| {
                    thread::sleep(Duration::from_millis(1));
                    value.fetch_add(1, Ordering::Relaxed);
                });
                // Every caller sees the effect of f on return.
                assert_eq!(value.load(Ordering::Relaxed), 1, "once failed inside run");
            });
        }
    });
    assert_eq!(value.load(Ordering::Relaxed), 1, "once failed outside run");
    assert!(once.is_done());
}

#[test]
fn test_once_panic() {
    let once = Once::new();
    let err = catch(|| once.call_once(|| panic!("failed"))).expect_err("Once.Do did not panic");
    assert_eq!(message(&*err), "failed");
    // Go: a panicking f counts as done.
    assert!(once.is_done());
    once.call_once(|| panic!("Once.Do called twice"));
}

#[test]
fn once_waiters_block_until_f_finishes_even_if_it_panics() {
    let once = Once::new();
    let started = Barrier::new(2);
    let finished = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            let _ = catch(|| {
                once.call_once(|| {
                    started.wait();
                    thread::sleep(Duration::from_millis(20));
                    finished.store(true, Ordering::Relaxed);
                    panic!("boom");
                })
            });
        });
        started.wait();
        once.call_once(|| unreachable!("f must not run twice"));
        assert!(
            finished.load(Ordering::Relaxed),
            "returned before f finished"
        );
    });
}

#[test]
fn recursive_call_once_panics_instead_of_deadlocking() {
    // The seed's first Once pitfall: Do inside Do deadlocks in Go.
    let once = Once::new();
    let err = catch(|| once.call_once(|| once.call_once(|| {}))).expect_err("must panic");
    let msg = message(&*err);
    assert!(
        msg.contains("Once::call_once called from inside its own initializer"),
        "{msg}"
    );
    // The outer f panicked, which (Go's rule) counts as done.
    assert!(once.is_done());
}

#[test]
fn is_done_tracks_completion() {
    static ONCE: Once = Once::new();
    assert!(!ONCE.is_done());
    ONCE.call_once(|| assert!(!ONCE.is_done(), "not done while running"));
    assert!(ONCE.is_done());
}

// ---- oncefunc_test.go ---------------------------------------------------------------------

#[test]
fn test_once_func() {
    let calls = AtomicUsize::new(0);
    let f = OnceFunc::new(|| {
        calls.fetch_add(1, Ordering::Relaxed);
    });
    assert!(!f.is_done());
    for _ in 0..3 {
        f.call();
    }
    assert!(f.is_done());
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[test]
fn test_once_value() {
    let calls = AtomicUsize::new(0);
    let f = OnceValue::new(|| calls.fetch_add(1, Ordering::Relaxed) + 1);
    for _ in 0..3 {
        assert_eq!(*f.get(), 1);
    }
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[test]
fn test_once_values() {
    let calls = AtomicUsize::new(0);
    let f = OnceValues::new(|| {
        calls.fetch_add(1, Ordering::Relaxed);
        Ok::<_, ()>((1, 2))
    });
    for _ in 0..3 {
        assert_eq!(f.get(), Ok(&(1, 2)));
    }
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    let e = OnceValues::new(|| {
        calls.fetch_add(1, Ordering::Relaxed);
        Err::<u8, _>("bad")
    });
    for _ in 0..3 {
        assert_eq!(e.get(), Err(&"bad"));
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        2,
        "an Err is cached, not retried"
    );
}

/// Both calls panic with the same value, and f runs once.
fn expect_repanics(label: &str, calls: &AtomicUsize, call: impl Fn()) {
    for i in 0..2 {
        let err = catch(&call).expect_err(&format!("{label}: call {i} did not panic"));
        let p: &&'static str = err.downcast_ref().expect("the payload keeps its type");
        assert_eq!(*p, "x", "{label}: call {i}");
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        1,
        "{label}: f ran more than once"
    );
}

#[test]
fn test_once_func_panic() {
    let calls = AtomicUsize::new(0);
    let f = OnceFunc::new(|| {
        calls.fetch_add(1, Ordering::Relaxed);
        panic!("x");
    });
    expect_repanics("OnceFunc", &calls, || f.call());
    assert!(f.is_done());
}

#[test]
fn test_once_value_panic() {
    let calls = AtomicUsize::new(0);
    let f = OnceValue::new(|| -> u32 {
        calls.fetch_add(1, Ordering::Relaxed);
        panic!("x");
    });
    expect_repanics("OnceValue", &calls, || {
        f.get();
    });
}

#[test]
fn test_once_values_panic() {
    let calls = AtomicUsize::new(0);
    let f = OnceValues::new(|| -> Result<u32, ()> {
        calls.fetch_add(1, Ordering::Relaxed);
        panic!("x");
    });
    expect_repanics("OnceValues", &calls, || {
        let _ = f.get();
    });
}

#[test]
fn formatted_panic_message_is_repeated_exactly() {
    let key = String::from("port");
    let f = OnceValue::new(move || -> u32 { panic!("config {key} missing") });
    for _ in 0..3 {
        let err = catch(|| *f.get()).unwrap_err();
        assert_eq!(
            err.downcast_ref::<String>().map(String::as_str),
            Some("config port missing")
        );
    }
}

#[test]
fn non_string_payload_first_intact_then_described() {
    let f = OnceFunc::new(|| panic::panic_any(42_i32));
    let first = catch(|| f.call()).unwrap_err();
    assert_eq!(
        first.downcast_ref::<i32>(),
        Some(&42),
        "the first caller gets the payload"
    );
    let later = catch(|| f.call()).unwrap_err();
    assert!(
        message(&*later).contains("panicked earlier"),
        "{}",
        message(&*later)
    );
}

#[test]
fn concurrent_callers_of_a_panicking_once_value_all_panic() {
    let calls = AtomicUsize::new(0);
    let f = OnceValue::new(|| -> u32 {
        calls.fetch_add(1, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(10));
        panic!("x");
    });
    let panicked = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                if let Err(e) = catch(|| *f.get()) {
                    assert_eq!(message(&*e), "x");
                    panicked.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(panicked.load(Ordering::Relaxed), 4);
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[test]
fn concurrent_once_value_runs_once_and_shares_the_value() {
    let calls = AtomicUsize::new(0);
    let v = OnceValue::new(|| {
        calls.fetch_add(1, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(5));
        vec![1, 2, 3]
    });
    let addrs: Vec<usize> = thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| s.spawn(|| v.get() as *const Vec<i32> as usize))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        addrs.windows(2).all(|w| w[0] == w[1]),
        "everyone gets the same value"
    );
    assert_eq!(v.get(), &vec![1, 2, 3]);
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[test]
fn recursive_once_value_panics() {
    // A value whose initializer reads itself: Go deadlocks; this panics with a clear message.
    static V: OnceValue<u32> = OnceValue::new(init);
    fn init() -> u32 {
        *V.get() + 1
    }
    let err = catch(|| *V.get()).unwrap_err();
    let msg = message(&*err);
    assert!(
        msg.contains("OnceValue::get called from inside its own initializer"),
        "{msg}"
    );
    // And, per Go 1.21, every later call re-panics with the same message.
    assert_eq!(message(&*catch(|| *V.get()).unwrap_err()), msg);
}

/// Go's TestOnceXGC: f (and everything it captured) is released after the first call, whether
/// it returned or panicked.
#[test]
fn test_once_x_drops_f_after_first_call() {
    fn check(name: &str, make: impl FnOnce(Arc<()>) -> Box<dyn Fn()>) {
        let captured = Arc::new(());
        let weak = Arc::downgrade(&captured);
        let call = make(captured);
        assert!(
            weak.upgrade().is_some(),
            "{name}: f dropped before the first call"
        );
        let _ = catch(&call);
        assert!(
            weak.upgrade().is_none(),
            "{name}: f still alive after the first call"
        );
    }
    check("OnceFunc", |c| {
        let f = OnceFunc::new(move || assert_eq!(Arc::strong_count(&c), 1));
        Box::new(move || f.call())
    });
    check("OnceFunc panic", |c| {
        let f = OnceFunc::new(move || {
            let _c = c;
            panic!("x")
        });
        Box::new(move || f.call())
    });
    check("OnceValue", |c| {
        let f = OnceValue::new(move || Arc::strong_count(&c));
        Box::new(move || {
            f.get();
        })
    });
    check("OnceValue panic", |c| {
        let f = OnceValue::new(move || -> u8 {
            let _c = c;
            panic!("x")
        });
        Box::new(move || {
            f.get();
        })
    });
    check("OnceValues", |c| {
        let f = OnceValues::new(move || Ok::<_, ()>(Arc::strong_count(&c)));
        Box::new(move || {
            let _ = f.get();
        })
    });
    check("OnceValues panic", |c| {
        let f = OnceValues::new(move || -> Result<u8, ()> {
            let _c = c;
            panic!("x")
        });
        Box::new(move || {
            let _ = f.get();
        })
    });
}

#[test]
fn once_value_drops_its_value() {
    let value = Arc::new(());
    let v = OnceValue::new({
        let value = Arc::clone(&value);
        move || value
    });
    v.get();
    assert_eq!(Arc::strong_count(&value), 2);
    drop(v);
    assert_eq!(Arc::strong_count(&value), 1);
}

#[test]
fn statics_with_plain_functions() {
    fn three() -> f64 {
        3.0
    }
    fn init_logging() {}
    static THREE: OnceValue<f64> = OnceValue::new(three);
    static SETUP: OnceFunc = OnceFunc::new(init_logging);
    static PORT: OnceValues<u16, std::num::ParseIntError> = OnceValues::new(|| "80".parse());
    assert_eq!(*THREE.get(), 3.0);
    SETUP.call();
    assert_eq!(PORT.get(), Ok(&80));
}

// ---- TryOnce: the seed's retryable Once ---------------------------------------------------

#[test]
fn try_once_retries_until_success() {
    let once = TryOnce::new();
    let attempts = AtomicUsize::new(0);
    let dial = || {
        let n = attempts.fetch_add(1, Ordering::Relaxed);
        if n < 2 {
            Err(format!("dial attempt {n} failed"))
        } else {
            Ok(())
        }
    };
    assert_eq!(once.call_once(dial), Err("dial attempt 0 failed".into()));
    assert!(!once.is_done());
    assert_eq!(once.call_once(dial), Err("dial attempt 1 failed".into()));
    assert_eq!(once.call_once(dial), Ok(()));
    assert!(once.is_done());
    assert_eq!(once.call_once(dial), Ok(()));
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
}

#[test]
fn try_once_concurrent_callers_see_exactly_one_success() {
    for _ in 0..if cfg!(debug_assertions) { 20 } else { 100 } {
        let once = TryOnce::new();
        let attempts = AtomicUsize::new(0);
        let successes = AtomicUsize::new(0);
        let oks = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    // Each thread keeps trying until the TryOnce is done.
                    loop {
                        let r = once.call_once(|| {
                            let n = attempts.fetch_add(1, Ordering::Relaxed);
                            thread::yield_now();
                            if n < 3 {
                                return Err(n);
                            }
                            successes.fetch_add(1, Ordering::Relaxed);
                            Ok(())
                        });
                        if r.is_ok() {
                            assert!(once.is_done());
                            oks.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                });
            }
        });
        assert_eq!(
            successes.load(Ordering::Relaxed),
            1,
            "exactly one f succeeds"
        );
        assert_eq!(
            attempts.load(Ordering::Relaxed),
            4,
            "no f runs after the success"
        );
        assert_eq!(oks.load(Ordering::Relaxed), 6);
    }
}

#[test]
fn try_once_panic_leaves_it_not_done() {
    let once = TryOnce::new();
    let err = catch(|| once.call_once(|| -> Result<(), ()> { panic!("flaky") })).unwrap_err();
    assert_eq!(message(&*err), "flaky");
    assert!(!once.is_done());
    assert_eq!(once.call_once(|| Ok::<(), ()>(())), Ok(()));
    assert!(once.is_done());
}

#[test]
fn try_once_reentrance_panics() {
    let once = TryOnce::new();
    let err = catch(|| once.call_once(|| once.call_once(|| Ok::<(), ()>(())))).unwrap_err();
    assert!(message(&*err).contains("TryOnce::call_once called from inside"));
    assert!(!once.is_done());
}

#[test]
fn send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Once>();
    assert_send_sync::<TryOnce>();
    assert_send_sync::<OnceFunc>();
    assert_send_sync::<OnceValue<String>>();
    assert_send_sync::<OnceValues<String, std::io::Error>>();
}

#[test]
fn debug_output() {
    let v = OnceValue::new(|| 5);
    assert_eq!(format!("{v:?}"), "OnceValue { value: <not yet run> }");
    v.get();
    assert_eq!(format!("{v:?}"), "OnceValue { value: 5 }");
    let once = Once::new();
    once.call_once(|| {});
    assert_eq!(format!("{once:?}"), "Once { state: done }");
}
