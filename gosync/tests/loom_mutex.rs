//! Loom models of the Mutex state machine: mutual exclusion, wake-ups, the LIFO re-queue,
//! starvation mode with direct handoff and the exit rule (driven by the fake clock), and timed
//! waiters leaving the queue.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_mutex`
#![cfg(loom)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gosync::{loom_clock, Mutex};
use loom::sync::Arc;
use loom::thread;

/// Mutex state must be back to all-zero when nobody holds or wants the lock.
fn assert_clean<T>(m: &Mutex<T>) {
    assert!(!m.is_locked(), "still locked");
    assert!(!m.is_starving(), "still starving");
    assert_eq!(m.waiters(), 0, "waiters left");
    assert!(!m.is_woken(), "woken bit left set");
}

/// Two threads increment under the lock; the cell tracking of loom checks exclusion.
#[test]
fn two_lockers() {
    loom::model(|| {
        loom_clock::reset();
        let m = Arc::new(Mutex::new(0u32));
        let m2 = Arc::clone(&m);
        let t = thread::spawn(move || *m2.lock() += 1);
        *m.lock() += 1;
        t.join().unwrap();
        assert_eq!(*m.lock(), 2);
        assert_clean(&m);
    });
}

/// Three threads: one holder re-locking, two sleepers, so a woken waiter can lose the race and
/// be re-queued at the front (LIFO), and the unlocker's wake goes to the front queue.
#[test]
fn three_lockers_with_requeue() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.unwrap_or(2).min(2));
    builder.check(|| {
        loom_clock::reset();
        let m = Arc::new(Mutex::new(0u32));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let m = Arc::clone(&m);
                thread::spawn(move || *m.lock() += 1)
            })
            .collect();
        for _ in 0..2 {
            *m.lock() += 10;
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*m.lock(), 22);
        assert_clean(&m);
    });
}

/// `try_lock` never succeeds while the lock is held and never disturbs a sleeping waiter.
#[test]
fn try_lock_against_lock() {
    loom::model(|| {
        loom_clock::reset();
        let m = Arc::new(Mutex::new(0u32));
        let m2 = Arc::clone(&m);
        let t = thread::spawn(move || {
            if let Some(mut g) = m2.try_lock() {
                *g += 1;
                true
            } else {
                false
            }
        });
        let mut g = m.lock();
        *g += 1;
        drop(g);
        let got = t.join().unwrap();
        assert_eq!(*m.lock(), 1 + u32::from(got));
        assert_clean(&m);
    });
}

static SAW_STARVING: AtomicBool = AtomicBool::new(false);
static SAW_HANDOFF_ORDER: AtomicBool = AtomicBool::new(false);

/// Starvation mode: B waits "2 ms" (fake clock) while A holds the lock; A unlocks and at once
/// locks again. If A wins that race, B (woken, waited > 1 ms) switches the mutex to starvation
/// mode; A's next unlock then hands the lock to B directly, and B, the last waiter, switches
/// back (exit rule). Every execution must end clean with both updates; some execution must
/// reach starvation mode, and whenever A saw it, B must get the lock right after A.
#[test]
fn starvation_handoff_and_exit_rule() {
    SAW_STARVING.store(false, Ordering::Relaxed);
    SAW_HANDOFF_ORDER.store(false, Ordering::Relaxed);
    loom::model(|| {
        loom_clock::reset();
        let m = Arc::new(Mutex::new(Vec::new()));
        let mut g = m.lock();
        g.push('a');
        let m2 = Arc::clone(&m);
        let b = thread::spawn(move || m2.lock().push('b'));
        while m.waiters() == 0 {
            thread::yield_now();
        }
        loom_clock::advance(Duration::from_millis(2));
        drop(g);
        let mut g = m.lock();
        g.push('a');
        // If B was woken and is competing (WOKEN set), let it lose the race: it then queues
        // again and, having waited > 1 ms, sets starvation mode while we hold the lock.
        while m.is_woken() {
            thread::yield_now();
        }
        let starving = m.is_starving();
        if starving {
            assert!(m.is_locked());
            assert!(m.waiters() >= 1, "starving without waiters");
            SAW_STARVING.store(true, Ordering::Relaxed);
        }
        drop(g);
        if starving {
            // Handoff: no one can take the lock before B, not even a try_lock.
            if let Some(mut g) = m.try_lock() {
                g.push('x');
            }
        }
        b.join().unwrap();
        let v = m.lock().clone();
        assert_eq!(v.iter().filter(|&&c| c == 'a').count(), 2);
        assert_eq!(v.iter().filter(|&&c| c == 'b').count(), 1);
        if starving {
            assert_eq!(
                &v[..3],
                &['a', 'a', 'b'],
                "handoff must go to the starving waiter"
            );
            SAW_HANDOFF_ORDER.store(true, Ordering::Relaxed);
        }
        assert_clean(&m);
    });
    assert!(
        SAW_STARVING.load(Ordering::Relaxed),
        "no execution reached starvation mode"
    );
    assert!(SAW_HANDOFF_ORDER.load(Ordering::Relaxed));
}

static SAW_TIMEOUT: AtomicBool = AtomicBool::new(false);

/// A timed waiter whose deadline passes (fake clock) leaves the queue without breaking the
/// state, whether it times out or is woken first; a blocking waiter is still served.
#[test]
fn timed_waiter_leaves_cleanly() {
    SAW_TIMEOUT.store(false, Ordering::Relaxed);
    loom::model(|| {
        loom_clock::reset();
        let m = Arc::new(Mutex::new(0u32));
        let g = m.lock();
        let m2 = Arc::clone(&m);
        let timed = thread::spawn(move || {
            m2.try_lock_for(Duration::from_millis(1))
                .map(|mut g| *g += 1)
                .is_some()
        });
        while m.waiters() == 0 {
            thread::yield_now();
        }
        loom_clock::advance(Duration::from_millis(5));
        drop(g);
        *m.lock() += 10;
        let got = timed.join().unwrap();
        if !got {
            SAW_TIMEOUT.store(true, Ordering::Relaxed);
        }
        assert_eq!(*m.lock(), 10 + u32::from(got));
        assert_clean(&m);
    });
    assert!(
        SAW_TIMEOUT.load(Ordering::Relaxed),
        "no execution timed out"
    );
}
