//! The deadlock detector on real locks: each rule with a case that must be reported and cases
//! that must not (consistent order, try_lock, re-lock after release).
//!
//! Run: `cargo test -p gosync --features deadlock-detection --test detect`
#![cfg(feature = "deadlock-detection")]

use std::sync::{Arc, Mutex as StdMutex};
use std::thread;
use std::time::Duration;

use gosync::detect::{self, ReportKind};
use gosync::{Mutex, RwMutex};

/// The handler is process-wide: the tests of this file run one at a time.
static SERIAL: StdMutex<()> = StdMutex::new(());

/// Runs `f` with a handler that collects the reports raised on the calling thread (and
/// returns, so the program goes on); returns the kinds and the messages.
fn reports(f: impl FnOnce()) -> Vec<(ReportKind, String)> {
    let got = Arc::new(StdMutex::new(Vec::new()));
    let me = thread::current().id();
    let sink = got.clone();
    detect::set_handler(move |r| {
        if thread::current().id() == me {
            sink.lock().unwrap().push((r.kind(), r.to_string()));
        }
    });
    f();
    detect::reset_handler();
    let v = got.lock().unwrap().clone();
    v
}

#[test]
fn lock_order_inversion_is_reported_before_blocking_even_without_overlap() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let a = Arc::new(Mutex::named("accounts", 0));
    let b = Arc::new(Mutex::named("ledger", 0));
    // Thread 1 takes a then b and finishes before thread 2 starts: no deadlock happens.
    {
        let (a, b) = (a.clone(), b.clone());
        thread::spawn(move || {
            let _ga = a.lock();
            let _gb = b.lock();
        })
        .join()
        .unwrap();
    }
    // The opposite order is still reported, naming both locks and both sites.
    let r = reports(|| {
        let _gb = b.lock();
        let _ga = a.lock();
    });
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].0, ReportKind::LockOrderInversion);
    let msg = &r[0].1;
    assert!(
        msg.contains("\"accounts\"") && msg.contains("\"ledger\""),
        "{msg}"
    );
    assert!(
        msg.contains("tests/detect.rs"),
        "acquisition sites missing: {msg}"
    );
}

#[test]
fn consistent_order_and_try_lock_are_not_reported() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let a = Mutex::new(0);
    let b = Mutex::new(0);
    let r = reports(|| {
        for _ in 0..3 {
            let _ga = a.lock();
            let _gb = b.lock();
        }
        // try_lock in the opposite order creates no edge and no report.
        let _gb = b.lock();
        let ga = a.try_lock();
        assert!(ga.is_some());
    });
    assert!(r.is_empty(), "{r:?}");
    // A blocking lock after that try_lock's order is still fine: no b → a edge exists.
    let r = reports(|| {
        let _ga = a.lock();
        let _gb = b.lock();
    });
    assert!(r.is_empty(), "{r:?}");
}

#[test]
fn relock_of_a_held_mutex_panics_with_a_clear_message() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = Mutex::named("config", ());
    let g = m.lock();
    // Default handler: panic in the thread that would block, instead of hanging.
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _again = m.lock();
    }))
    .expect_err("re-locking must be reported");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("re-lock") && msg.contains("\"config\"") && msg.contains("ReentrantMutex"),
        "{msg}"
    );
    drop(g);
    // Re-lock after release is fine.
    let r = reports(|| {
        drop(m.lock());
        drop(m.lock());
    });
    assert!(r.is_empty(), "{r:?}");
}

/// Runs `f` under the default handler and returns the panic message it raised.
fn panic_message(f: impl FnOnce()) -> String {
    detect::reset_handler();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .expect_err("the detector must report (default handler: panic)");
    err.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn recursive_read_with_a_waiting_writer_is_reported() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rw = Arc::new(RwMutex::named("factorial", 1u64));
    // Without a waiting writer a recursive read is allowed (it cannot deadlock yet).
    let r = reports(|| {
        let _r1 = rw.read();
        let _r2 = rw.read();
    });
    assert!(r.is_empty(), "{r:?}");
    // With a writer waiting, the second read would queue behind it forever: reported instead.
    let r1 = rw.read();
    let writer = {
        let rw = rw.clone();
        thread::spawn(move || *rw.write() += 1)
    };
    // A waiting writer makes new readers wait, so try_read fails while we hold our read.
    while rw.try_read().is_some() {
        thread::sleep(Duration::from_millis(1));
    }
    let msg = panic_message(|| drop(rw.read()));
    assert!(
        msg.contains("recursive read") && msg.contains("\"factorial\""),
        "{msg}"
    );
    drop(r1);
    writer.join().unwrap();
    assert_eq!(*rw.read(), 2);
}

#[test]
fn write_after_read_on_the_same_thread_is_a_relock() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rw = RwMutex::new(0);
    let r = rw.read();
    // The write lock would wait for this thread's own read forever.
    let msg = panic_message(|| drop(rw.write()));
    assert!(msg.contains("re-lock"), "{msg}");
    drop(r);
    drop(rw.write());
}

#[test]
fn an_actual_deadlock_between_threads_is_reported_instead_of_hanging() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Two threads each hold one lock (taken with try_lock: no order edges) and block on the
    // other's. The second blocking thread first sees the order inversion; the handler lets it
    // go on (as a handler that only logs would), so it reaches the wait-for check, which must
    // find the cycle. That report panics, so the thread does not hang.
    let kinds = Arc::new(StdMutex::new(Vec::new()));
    {
        let kinds = kinds.clone();
        detect::set_handler(move |r| {
            kinds.lock().unwrap().push(r.kind());
            if r.kind() == ReportKind::Deadlock {
                panic!("{r}");
            }
        });
    }
    let a = Arc::new(Mutex::named("left", ()));
    let b = Arc::new(Mutex::named("right", ()));
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let t = {
        let (a, b, barrier) = (a.clone(), b.clone(), barrier.clone());
        thread::spawn(move || {
            let _gb = b.try_lock().expect("free");
            barrier.wait();
            // Blocks on `left` (held by the main thread), or is reported if it comes second.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(a.lock())))
                .err()
                .map(|e| e.downcast_ref::<String>().cloned().unwrap_or_default())
        })
    };
    let ga = a.try_lock().expect("free");
    barrier.wait();
    thread::sleep(Duration::from_millis(50));
    let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(b.lock())))
        .err()
        .map(|e| e.downcast_ref::<String>().cloned().unwrap_or_default());
    drop(ga);
    let theirs = t.join().unwrap();
    detect::reset_handler();
    // Exactly one of the two threads closes the cycle and gets the report; the other then
    // acquires once the reporter unwinds and drops its guard.
    let reported: Vec<String> = [mine, theirs].into_iter().flatten().collect();
    assert_eq!(reported.len(), 1, "{reported:?}");
    let msg = &reported[0];
    assert!(msg.contains("deadlock (wait-for cycle)"), "{msg}");
    assert!(
        msg.contains("\"left\"") && msg.contains("\"right\""),
        "{msg}"
    );
    let kinds = kinds.lock().unwrap().clone();
    assert_eq!(
        kinds,
        vec![ReportKind::LockOrderInversion, ReportKind::Deadlock],
        "the inversion comes first, then the cycle"
    );
}

#[test]
fn reentrant_mutex_reenters_silently_but_takes_part_in_lock_order() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = gosync::ReentrantMutex::new(());
    let m = Mutex::named("plain", ());
    let reported = reports(|| {
        let _a = r.lock();
        let _b = r.lock(); // re-entry: never a report
        let _g = m.lock(); // order: ReentrantMutex before "plain"
    });
    assert!(reported.is_empty(), "{reported:?}");
    let reported = reports(|| {
        let _g = m.lock();
        let _a = r.lock(); // the opposite order
    });
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(reported[0].0, ReportKind::LockOrderInversion);
    assert!(
        reported[0].1.contains("ReentrantMutex"),
        "{}",
        reported[0].1
    );
}

/// `Cond::wait` gives its mutex up and takes it back; both must go through the detector, or
/// a wait-for cycle through that mutex goes unseen and the threads hang.
///
/// T1 holds `outer` (taken after `inner`) while it waits on `inner`'s Cond. T2 takes `inner`,
/// signals, and blocks on `outer`. T1's re-lock of `inner` inside `wait` closes the cycle: T1
/// must get a report (here the order `outer` → `inner` contradicts the one T1 used first), not
/// sleep for ever.
#[test]
fn cond_wait_relock_is_seen_by_the_detector() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    detect::reset_handler();
    let pair = Arc::new((Mutex::named("inner", ()), gosync::Cond::new()));
    let outer = Arc::new(Mutex::named("outer", ()));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (report_tx, report_rx) = std::sync::mpsc::channel();
    let t1 = {
        let (pair, outer) = (pair.clone(), outer.clone());
        thread::spawn(move || {
            let (m, c) = &*pair;
            let mut g = m.lock();
            let _o = outer.lock();
            ready_tx.send(()).unwrap();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.wait(&mut g)));
            let msg = r
                .err()
                .map(|e| e.downcast_ref::<String>().cloned().unwrap_or_default());
            report_tx.send(msg).unwrap();
            // Dropping `_o` lets T2 finish; `g` does not hold `inner` after the report, and
            // dropping it must not unlock T2's lock.
        })
    };
    let t2 = {
        let (pair, outer) = (pair.clone(), outer.clone());
        thread::spawn(move || {
            ready_rx.recv().unwrap();
            let (m, c) = &*pair;
            let _g = m.lock(); // free once T1 waits
            c.signal();
            drop(outer.lock()); // T1 holds it
        })
    };
    let msg = report_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("no report within 20 s: the Cond's re-lock is invisible to the detector and the threads hang")
        .expect("T1's wait returned without a report");
    assert!(
        msg.contains("\"inner\"") && msg.contains("\"outer\""),
        "{msg}"
    );
    t1.join().unwrap();
    t2.join().unwrap();
    // Both locks are free and consistent again.
    assert!(pair.0.try_lock().is_some());
    assert!(outer.try_lock().is_some());
}

/// After `Cond::wait` returns, the waiting thread owns the mutex again as far as the detector
/// is concerned: a wait-for cycle through that mutex is found.
///
/// W waits on the Cond and is signalled (the signaller held the mutex meanwhile and released
/// it). Then T2, holding `other`, blocks on the mutex W holds, and W blocks on `other`.
#[test]
fn cond_wait_hands_the_mutex_back_to_its_waiter() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Order reports are let through (as by a logging handler); the cycle report panics.
    detect::set_handler(|r| {
        if r.kind() == ReportKind::Deadlock {
            panic!("{r}");
        }
    });
    let pair = Arc::new((Mutex::named("state", ()), gosync::Cond::new()));
    let other = Arc::new(Mutex::named("other", ()));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let w = {
        let (pair, other) = (pair.clone(), other.clone());
        thread::spawn(move || {
            let (m, c) = &*pair;
            let mut g = m.lock();
            let signaller = {
                let pair = pair.clone();
                thread::spawn(move || {
                    let (m, c) = &*pair;
                    let _g = m.lock(); // free once W waits
                    assert!(c.signal());
                })
            };
            c.wait(&mut g);
            signaller.join().unwrap();
            let t2 = {
                let (pair, other) = (pair.clone(), other.clone());
                thread::spawn(move || {
                    let _o = other.try_lock().expect("free");
                    drop(pair.0.lock()); // W holds it
                })
            };
            while m.waiters() == 0 {
                thread::yield_now();
            }
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(other.lock())));
            let msg = r
                .err()
                .map(|e| e.downcast_ref::<String>().cloned().unwrap_or_default());
            drop(g);
            t2.join().unwrap();
            done_tx.send(msg).unwrap();
        })
    };
    let msg = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("no report within 20 s: the mutex re-taken by Cond::wait has no owner for the detector, and the threads hang")
        .expect("W acquired `other` without a report");
    detect::reset_handler();
    w.join().unwrap();
    assert!(msg.contains("deadlock (wait-for cycle)"), "{msg}");
    assert!(
        msg.contains("\"state\"") && msg.contains("\"other\""),
        "{msg}"
    );
}

/// A Cond waiting with an `RwMutex` guard (write or read, Go's `RLocker`) releases and re-takes
/// it through the detector too: the re-take while holding `outer`, after `inner` → `outer`
/// was seen, is an order inversion reported before the wait re-locks.
#[test]
fn cond_wait_with_rwmutex_guards_is_seen_by_the_detector() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for read in [false, true] {
        let inner = Arc::new((RwMutex::named("inner", ()), gosync::Cond::new()));
        let outer = Mutex::named("outer", ());
        let signaller = |inner: Arc<(RwMutex<()>, gosync::Cond)>| {
            thread::spawn(move || {
                // Once the waiter is queued (it released `inner` first), wake it.
                while !inner.1.signal() {
                    thread::yield_now();
                }
            })
        };
        let got = reports(|| {
            let t = signaller(inner.clone());
            let (l, c) = &*inner;
            if read {
                let mut g = l.read();
                let _o = outer.lock(); // inner → outer
                c.wait(&mut g); // re-takes inner while holding outer
            } else {
                let mut g = l.write();
                let _o = outer.lock();
                c.wait(&mut g);
            }
            t.join().unwrap();
        });
        let kinds: Vec<_> = got.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            vec![ReportKind::LockOrderInversion],
            "read={read}: {got:?}"
        );
        assert!(
            got[0].1.contains("\"inner\"") && got[0].1.contains("\"outer\""),
            "{}",
            got[0].1
        );
        // Everything was released: both locks are free again.
        assert!(inner.0.try_write().is_some() && outer.try_lock().is_some());
    }
}
