//! Loom models of the Mutex state machine: mutual exclusion, wake-ups, the LIFO re-queue,
//! starvation mode with direct handoff and the exit rule (driven by the fake clock), and timed
//! waiters leaving the queue.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_mutex`
//!
//! Each model reports the outcomes it observed and asserts that the interesting ones occurred
//! in some execution (see `support/loom.rs`): a locker queued while the lock was held, both
//! orders of the lockers, a failed and a successful `try_lock`, starvation mode with its
//! handoff, a timed waiter that timed out and one that got the lock.
#![cfg(loom)]

#[path = "support/loom.rs"]
mod support;

use std::time::Duration;

use gosync::{loom_clock, Mutex};
use loom::model::Builder;
use loom::sync::Arc;
use loom::thread;
use support::{explore, explore_with, tally, Explored};

/// Mutex state must be back to all-zero when nobody holds or wants the lock.
fn assert_clean<T>(m: &Mutex<T>) {
    assert!(!m.is_locked(), "still locked");
    assert!(!m.is_starving(), "still starving");
    assert_eq!(m.waiters(), 0, "waiters left");
    assert!(!m.is_woken(), "woken bit left set");
}

/// The most turns a holder in [`two_lockers`] gives the other locker to queue behind it; the
/// model runs once for every patience from 0 to this. A locker first spins (`ACTIVE_SPIN`
/// rounds, each a yield under loom) and each of its yields hands the CPU back to the holder:
/// a holder that unlocked at once (what the model did first) always beat it, and no execution
/// had a waiter parked behind the holder; one that outwaits the spinning always has one.
const PATIENCE: usize = 8;

/// Yields, holding the lock, until a waiter is queued or `patience` runs out.
fn wait_for_waiter<T>(m: &Mutex<T>, patience: usize) -> bool {
    for _ in 0..patience {
        if m.waiters() > 0 {
            return true;
        }
        thread::yield_now();
    }
    false
}

/// Two threads increment under the lock; the cell tracking of loom checks exclusion.
#[test]
fn two_lockers() {
    let mut ex = Explored::default();
    for patience in 0..=PATIENCE {
        ex.absorb(tally(Builder::new(), move || {
            loom_clock::reset();
            let m = Arc::new(Mutex::new(Vec::new()));
            // Each locker records, under the lock, who it is and whether the other queued while
            // it held the lock (it gives the other a few turns to do so: see `PATIENCE`).
            let locker = move |m: &Mutex<Vec<(char, bool)>>, me: char| {
                let mut g = m.lock();
                let queued = wait_for_waiter(m, patience);
                g.push((me, queued));
            };
            let m2 = Arc::clone(&m);
            let t = thread::spawn(move || locker(&m2, 'b'));
            locker(&m, 'a');
            t.join().unwrap();
            let v = m.lock().clone();
            assert_eq!(v.len(), 2);
            assert_clean(&m);
            [
                if v[0].0 == 'b' {
                    "spawned thread locked first"
                } else {
                    ""
                },
                if v.iter().any(|e| e.1) {
                    "a locker queued behind the holder"
                } else {
                    "no locker queued"
                },
            ]
        }));
    }
    ex.print().assert_saw(&[
        "spawned thread locked first",
        "a locker queued behind the holder",
        "no locker queued",
    ]);
}

/// Three threads: a holder locking twice and two lockers, up to two of them queued at once;
/// every interleaving ends with all updates and a clean state. (In this model the woken waiter
/// always wins its race by spinning, so the LIFO re-queue it was meant to reach never happens:
/// [`woken_waiter_requeues_at_front`] models that.)
#[test]
fn three_lockers_with_requeue() {
    let mut builder = Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.unwrap_or(2).min(2));
    let ex = explore_with(builder, || {
        loom_clock::reset();
        let m = Arc::new(Mutex::new(0u32));
        // The most waiters any holder saw queued behind it.
        let lock_and_add = |m: &Mutex<u32>, n: u32| {
            let mut g = m.lock();
            *g += n;
            m.waiters()
        };
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let m = Arc::clone(&m);
                thread::spawn(move || lock_and_add(&m, 1))
            })
            .collect();
        let mut most = 0;
        for _ in 0..2 {
            most = most.max(lock_and_add(&m, 10));
        }
        for h in handles {
            most = most.max(h.join().unwrap());
        }
        assert_eq!(*m.lock(), 22);
        assert_clean(&m);
        [if most == 2 {
            "two waiters queued at once"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["two waiters queued at once"]);
}

/// `try_lock` never succeeds while the lock is held and never disturbs a sleeping waiter.
#[test]
fn try_lock_against_lock() {
    let ex = explore(|| {
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
        [if got {
            "try_lock succeeded"
        } else {
            "try_lock failed"
        }]
    });
    ex.assert_saw(&["try_lock succeeded", "try_lock failed"]);
}

/// A holds the lock while B queues and waits `waited` on the fake clock; A unlocks and at once
/// locks again. If A wins that race, B (woken) queues again, at the front (Go's LIFO re-queue),
/// and, if it waited > 1 ms, switches the mutex to starvation mode; A's next unlock then hands
/// the lock to B directly, and B, the last waiter, switches back (exit rule). Every execution
/// must end clean with both updates, and whenever A saw starvation mode, B must get the lock
/// right after A. Returns the outcomes seen.
fn unlock_relock_against_waiter(waited: Duration) -> [&'static str; 2] {
    loom_clock::reset();
    let m = Arc::new(Mutex::new(Vec::new()));
    let mut g = m.lock();
    g.push('a');
    let m2 = Arc::clone(&m);
    let b = thread::spawn(move || m2.lock().push('b'));
    while m.waiters() == 0 {
        thread::yield_now();
    }
    loom_clock::advance(waited);
    drop(g);
    let mut g = m.lock();
    g.push('a');
    // If B was woken and is competing (WOKEN set), let it lose the race: it then queues
    // again and, if it waited > 1 ms, sets starvation mode while we hold the lock.
    while m.is_woken() {
        thread::yield_now();
    }
    let requeued = m.waiters() == 1;
    let starving = m.is_starving();
    if starving {
        assert!(
            waited > Duration::from_millis(1),
            "starving, but no one waited 1 ms"
        );
        assert!(m.is_locked());
        assert!(m.waiters() >= 1, "starving without waiters");
    }
    drop(g);
    if starving {
        // Handoff: no one can take the lock before B, not even a try_lock.
        if let Some(mut g) = m.try_lock() {
            g.push('x');
        }
    }
    b.join().unwrap();
    // Nobody holds or wants the lock: checked before locking it again, which would clear
    // a starvation mode left behind by the last waiter (the exit rule's job).
    assert_clean(&m);
    let v = m.lock().clone();
    assert_eq!(v.iter().filter(|&&c| c == 'a').count(), 2);
    assert_eq!(v.iter().filter(|&&c| c == 'b').count(), 1);
    if starving {
        assert_eq!(
            &v[..3],
            &['a', 'a', 'b'],
            "handoff must go to the starving waiter"
        );
    }
    assert_clean(&m);
    [
        if requeued {
            "the woken waiter queued again"
        } else {
            ""
        },
        if starving {
            "starvation mode with handoff"
        } else {
            "normal mode"
        },
    ]
}

/// Starvation mode, its handoff and its exit rule ([`unlock_relock_against_waiter`], with B
/// waiting 2 ms): some execution must reach starvation mode, and some must not.
#[test]
fn starvation_handoff_and_exit_rule() {
    let ex = explore(|| unlock_relock_against_waiter(Duration::from_millis(2)));
    ex.assert_saw(&["starvation mode with handoff", "normal mode"]);
}

/// The LIFO re-queue in normal mode ([`unlock_relock_against_waiter`], B waiting no time):
/// some execution must have the woken waiter queue again, and none may reach starvation mode.
/// [`three_lockers_with_requeue`] never produced a re-queue (its woken waiters always won by
/// spinning).
#[test]
fn woken_waiter_requeues_at_front() {
    let ex = explore(|| unlock_relock_against_waiter(Duration::ZERO));
    ex.assert_saw(&["the woken waiter queued again"]);
    assert_eq!(ex.count("starvation mode with handoff"), 0);
}

/// A timed waiter whose deadline passes (fake clock) leaves the queue without breaking the
/// state, whether it times out or is woken first; a blocking waiter is still served.
#[test]
fn timed_waiter_leaves_cleanly() {
    let ex = explore(|| {
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
        assert_eq!(*m.lock(), 10 + u32::from(got));
        assert_clean(&m);
        [if got { "got the lock" } else { "timed out" }]
    });
    ex.assert_saw(&["timed out", "got the lock"]);
}
