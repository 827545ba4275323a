//! Go's `src/sync/waitgroup_test.go`, ported, plus the seed's WaitGroup mistakes and the
//! extras (`go`, `wait_timeout`, `guard`).
#![cfg(not(loom))]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use gosync::WaitGroup;

const NEGATIVE: &str = "sync: negative WaitGroup counter";
const REUSED: &str = "sync: WaitGroup is reused before previous Wait has returned";

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string payload>".to_string()
    }
}

fn panic_message(f: impl FnOnce()) -> Option<String> {
    panic::catch_unwind(AssertUnwindSafe(f))
        .err()
        .map(|p| message(&*p))
}

/// Go's testWaitGroup: `wg1` is a start barrier, `wg2` a release barrier; nobody may pass
/// `wg2.wait()` before the last `wg2.done()`, and everybody must pass after it.
fn barrier_round(wg1: &Arc<WaitGroup>, wg2: &Arc<WaitGroup>) {
    let n = 16;
    wg1.add(n as isize);
    wg2.add(n as isize);
    let (tx, rx) = mpsc::channel();
    for _ in 0..n {
        let (wg1, wg2, tx) = (Arc::clone(wg1), Arc::clone(wg2), tx.clone());
        thread::spawn(move || {
            wg1.done();
            wg2.wait();
            tx.send(()).unwrap();
        });
    }
    wg1.wait();
    for _ in 0..n {
        assert!(rx.try_recv().is_err(), "WaitGroup released group too soon");
        wg2.done();
    }
    for _ in 0..n {
        // Blocks (and the test times out) if the barrier fails to release someone.
        rx.recv_timeout(Duration::from_secs(60))
            .expect("a waiter was never released");
    }
}

#[test]
fn test_wait_group_with_reuse() {
    let wg1 = Arc::new(WaitGroup::new());
    let wg2 = Arc::new(WaitGroup::new());
    // Run the same test a few times to ensure the WaitGroups are reusable.
    for _ in 0..8 {
        barrier_round(&wg1, &wg2);
    }
    assert_eq!((wg1.count(), wg2.count(), wg2.waiters()), (0, 0, 0));
}

#[test]
fn test_wait_group_misuse() {
    let wg = WaitGroup::new();
    wg.add(1);
    wg.done();
    assert_eq!(panic_message(|| wg.done()).as_deref(), Some(NEGATIVE));
    // Better than Go: the failed call undid itself, the WaitGroup is still usable.
    assert_eq!(wg.count(), 0);
    wg.add(2);
    wg.done();
    wg.done();
    wg.wait();
}

#[test]
fn seed_negative_add() {
    // The seed's first mistake: Add(10); Add(-10); Add(-1).
    let wg = WaitGroup::new();
    wg.add(10);
    wg.add(-10);
    assert_eq!(panic_message(|| wg.add(-1)).as_deref(), Some(NEGATIVE));
    assert_eq!(panic_message(|| wg.add(-5)).as_deref(), Some(NEGATIVE));
    wg.add(3);
    assert_eq!(panic_message(|| wg.add(-4)).as_deref(), Some(NEGATIVE));
    assert_eq!(wg.count(), 3);
}

#[test]
fn add_outside_counter_range_panics() {
    let wg = WaitGroup::new();
    let msg = panic_message(|| wg.add(isize::MAX)).expect("must panic");
    assert!(msg.contains("outside the counter's range"), "{msg}");
    assert_eq!(wg.count(), 0);
}

#[test]
fn test_wait_group_race() {
    // Go runs 1000 rounds; the body is cheap, keep it bounded in debug builds.
    for _ in 0..if cfg!(debug_assertions) { 200 } else { 1000 } {
        let wg = Arc::new(WaitGroup::new());
        let n = Arc::new(AtomicUsize::new(0));
        wg.add(2);
        for _ in 0..2 {
            let (wg, n) = (Arc::clone(&wg), Arc::clone(&n));
            thread::spawn(move || {
                n.fetch_add(1, Ordering::Relaxed);
                wg.done();
            });
        }
        wg.wait();
        assert_eq!(n.load(Ordering::Relaxed), 2, "Spurious wakeup from Wait");
    }
}

#[test]
fn test_wait_group_go() {
    let wg = Arc::new(WaitGroup::new());
    let i = Arc::new(AtomicUsize::new(0));
    let i2 = Arc::clone(&i);
    let h = wg.go(move || {
        i2.fetch_add(1, Ordering::Relaxed);
        7
    });
    wg.wait();
    assert_eq!(i.load(Ordering::Relaxed), 1);
    assert_eq!(h.join().unwrap(), 7);
}

#[test]
fn go_calls_done_even_if_the_task_panics() {
    // Go 1.25's rule (TestIssue76126 asks the opposite of 1.26; gosync keeps 1.25): a panic in
    // the task must not make Wait hang, and the panic is not lost — it is in the handle.
    let wg = Arc::new(WaitGroup::new());
    let h = wg.go(|| panic!("test"));
    let ok = wg.go(|| 1);
    assert!(
        wg.wait_timeout(Duration::from_secs(60)),
        "Wait hung on a panicking task"
    );
    assert_eq!(wg.count(), 0);
    assert_eq!(message(&*h.join().unwrap_err()), "test");
    assert_eq!(ok.join().unwrap(), 1);
}

#[test]
fn guard_calls_done_on_drop_and_on_panic() {
    let wg = WaitGroup::new();
    let scope = panic::catch_unwind(AssertUnwindSafe(|| {
        thread::scope(|s| {
            for i in 0..4 {
                let g = wg.guard();
                s.spawn(move || {
                    let _g = g;
                    if i == 2 {
                        panic!("task {i} failed");
                    }
                });
            }
            assert!(wg.wait_timeout(Duration::from_secs(60)));
            assert_eq!(wg.count(), 0);
        });
    }));
    // The scope re-raises the task's panic when it ends.
    assert!(scope.is_err());
}

#[test]
fn wait_timeout_times_out_and_unregisters() {
    let wg = WaitGroup::new();
    wg.add(1);
    let start = Instant::now();
    assert!(!wg.wait_timeout(Duration::from_millis(20)));
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!(wg.waiters(), 0, "a timed-out waiter must unregister");
    assert_eq!(wg.count(), 1);
    // Still a working WaitGroup.
    thread::scope(|s| {
        s.spawn(|| {
            while wg.waiters() == 0 {
                thread::yield_now();
            }
            wg.done();
        });
        assert!(wg.wait_timeout(Duration::from_secs(60)));
    });
    assert!(
        wg.wait_timeout(Duration::from_millis(1)),
        "counter zero: immediate true"
    );
}

#[test]
fn many_timed_waiters_mixed_with_plain_waiters() {
    for _ in 0..20 {
        let wg = WaitGroup::new();
        wg.add(1);
        let released = AtomicUsize::new(0);
        thread::scope(|s| {
            for i in 0..4 {
                let (wg, released) = (&wg, &released);
                s.spawn(move || {
                    if i % 2 == 0 {
                        wg.wait();
                        released.fetch_add(1, Ordering::Relaxed);
                    } else {
                        // Short timeouts race with the release: both outcomes are fine, but
                        // `true` must mean the counter really reached zero.
                        if wg.wait_timeout(Duration::from_micros(200)) {
                            assert_eq!(wg.count(), 0);
                        }
                    }
                });
            }
            thread::sleep(Duration::from_micros(300));
            wg.done();
        });
        assert_eq!(released.load(Ordering::Relaxed), 2);
        assert_eq!(wg.waiters(), 0);
    }
}

#[test]
fn wait_on_zero_counter_returns_at_once() {
    let wg = WaitGroup::new();
    wg.wait();
    wg.add(1);
    wg.done();
    wg.wait();
    assert!(wg.wait_timeout(Duration::ZERO));
}

#[test]
fn reuse_before_previous_wait_returned_panics() {
    // The seed's third mistake: Done() releases the waiter, and Add(1) starts the next round
    // before the woken Wait has returned. Go panics in the woken Wait (when it notices);
    // so does gosync. The race is real, so try until the waiter loses it.
    let mut seen = None;
    for _ in 0..200 {
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let w = Arc::clone(&wg);
        let waiter = thread::spawn(move || panic_message(|| w.wait()));
        while wg.waiters() == 0 {
            thread::yield_now();
        }
        wg.done();
        wg.add(1); // next round, while the waiter is still waking up
        let outcome = waiter.join().unwrap();
        wg.done();
        if let Some(msg) = outcome {
            seen = Some(msg);
            break;
        }
    }
    assert_eq!(seen.as_deref(), Some(REUSED));
}

#[test]
fn many_waiters_all_released_each_round() {
    let wg = WaitGroup::new();
    let passed = AtomicUsize::new(0);
    for round in 1..=5 {
        wg.add(3);
        let go = AtomicBool::new(false);
        thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    wg.wait();
                    assert!(go.load(Ordering::Acquire), "released before the last done");
                    passed.fetch_add(1, Ordering::Relaxed);
                });
            }
            for _ in 0..2 {
                wg.done();
            }
            thread::sleep(Duration::from_millis(1));
            go.store(true, Ordering::Release);
            wg.done();
        });
        assert_eq!(passed.load(Ordering::Relaxed), 6 * round);
    }
}

#[test]
fn wait_sees_the_tasks_writes() {
    let wg = WaitGroup::new();
    let data: Vec<AtomicUsize> = (0..8).map(|_| AtomicUsize::new(0)).collect();
    thread::scope(|s| {
        for (i, d) in data.iter().enumerate() {
            wg.add(1);
            let wg = &wg;
            s.spawn(move || {
                d.store(i + 1, Ordering::Relaxed);
                wg.done();
            });
        }
        wg.wait();
        for (i, d) in data.iter().enumerate() {
            assert_eq!(d.load(Ordering::Relaxed), i + 1);
        }
    });
}

#[test]
fn debug_shows_count_and_waiters() {
    let wg = WaitGroup::new();
    wg.add(3);
    assert_eq!(format!("{wg:?}"), "WaitGroup { count: 3, waiters: 0 }");
}

#[test]
fn const_static_and_send_sync() {
    static WG: WaitGroup = WaitGroup::new();
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<WaitGroup>();
    assert_send_sync::<gosync::WaitGroupGuard<'static>>();
    WG.add(1);
    WG.done();
    WG.wait();
}
