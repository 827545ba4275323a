//! Loom models of the Mutex state machine: mutual exclusion, wake-ups, the LIFO re-queue,
//! starvation mode with direct handoff and the exit rule (driven by the fake clock), timed
//! waiters leaving the queue, a starvation handoff racing the deadline of the waiter it goes to,
//! a due waiter served by an unlock while a woken waiter has not run yet, and the ownership rules of `ReentrantMutex` and `TokenMutex`.
//!
//! The models use only the public API, so they state the contract, not the algorithm. Where a
//! model claims exclusion, a [`Guarded`](support::Guarded) section spans each critical section
//! and loom checks that no two overlap.
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

use gosync::{loom_clock, Mutex, ReentrantMutex, TokenMutex};
use loom::model::Builder;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use support::{explore, explore_with, tally, Explored, Guarded};

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

/// Two threads lock, each holding the lock across scheduling points; a [`Guarded`] section
/// spanning each critical section makes loom check that they never overlap.
#[test]
fn two_lockers() {
    let mut ex = Explored::default();
    for patience in 0..=PATIENCE {
        ex.absorb(tally(Builder::new(), move || {
            loom_clock::reset();
            let m = Arc::new((Mutex::new(Vec::new()), Guarded::new()));
            // Each locker records, under the lock, who it is and whether the other queued while
            // it held the lock (it gives the other a few turns to do so: see `PATIENCE`).
            let locker = move |(m, data): &(Mutex<Vec<(char, bool)>>, Guarded), me: char| {
                let mut g = m.lock();
                let section = data.exclusive();
                let queued = wait_for_waiter(m, patience);
                g.push((me, queued));
                drop(section);
            };
            let m2 = Arc::clone(&m);
            let t = thread::spawn(move || locker(&m2, 'b'));
            locker(&m, 'a');
            t.join().unwrap();
            let (m, data) = &*m;
            assert_eq!(data.writes(), 2);
            let v = m.lock().clone();
            assert_eq!(v.len(), 2);
            assert_clean(m);
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

/// Starvation mode's handoff races the deadline of the timed waiter it goes to.
///
/// The main thread holds the lock; B (`try_lock_for`, 10 ms) and C (`lock`) queue. After
/// 5 ms on the fake clock the main thread unlocks and at once locks again; if it wins, the
/// woken waiter queues again at the front and, having waited more than 1 ms, puts the mutex in
/// starvation mode. Then B's deadline passes just as the main thread unlocks, handing the lock
/// to the front waiter. Whichever wins, the contract holds: B either gets the lock (a handoff
/// at the deadline is still a success) or times out and the lock goes on to C; no critical
/// sections overlap ([`Guarded`]), nobody is left waiting, and the mutex ends clean. Some
/// execution must hand the lock to B at its deadline, and some must have B time out.
#[test]
fn starvation_handoff_races_timeout() {
    let ex = explore(|| {
        loom_clock::reset();
        let m = Arc::new((Mutex::new(Vec::new()), Guarded::new()));
        let (mx, data) = &*m;
        let mut g = mx.lock();
        let section = data.exclusive();
        g.push('a');
        let b = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let (mx, data) = &*m;
                let mut g = mx.try_lock_for(Duration::from_millis(10))?;
                let _section = data.exclusive();
                g.push('b');
                Some(())
            })
        };
        while mx.waiters() == 0 {
            thread::yield_now();
        }
        let c = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let (mx, data) = &*m;
                let mut g = mx.lock();
                let _section = data.exclusive();
                g.push('c');
            })
        };
        while mx.waiters() < 2 {
            thread::yield_now();
        }
        loom_clock::advance(Duration::from_millis(5));
        drop(section);
        drop(g);
        let mut g = mx.lock();
        let section = data.exclusive();
        g.push('a');
        // If B was woken and is competing, let it lose: it queues again, starving.
        while mx.is_woken() {
            thread::yield_now();
        }
        let starving = mx.is_starving();
        // B's deadline passes; its timeout races the unlock's handoff.
        loom_clock::advance(Duration::from_millis(10));
        drop(section);
        drop(g);
        let b_got = b.join().unwrap().is_some();
        c.join().unwrap();
        assert_clean(mx);
        assert_eq!(data.writes(), 3 + u32::from(b_got));
        let v = mx.lock().clone();
        assert_eq!(v.iter().filter(|&&x| x == 'c').count(), 1);
        assert_eq!(v.iter().filter(|&&x| x == 'b').count(), usize::from(b_got));
        // Who held the lock right after the main thread's second turn: in starvation mode, the
        // waiter it was handed to (B and C may have queued in either order).
        let second = v.iter().rposition(|&x| x == 'a').unwrap();
        let next = v.get(second + 1).copied();
        if starving {
            assert!(next.is_some(), "starving, but nobody was waiting");
        }
        [
            if starving { "starvation mode" } else { "" },
            match (starving, b_got) {
                (true, true) if next == Some('b') => "handoff reached the timed waiter",
                (true, false) => "the timed waiter timed out in starvation mode",
                _ => "",
            },
        ]
    });
    ex.assert_saw(&[
        "starvation mode",
        "handoff reached the timed waiter",
        "the timed waiter timed out in starvation mode",
    ]);
}

/// A woken waiter that has not run yet must not stall a due queue. B and C sleep in the queue
/// until both are due; an unlock wakes B (which then owns the woken bit, so later unlocks wake
/// nobody), and the main thread locks and unlocks again before B runs. That unlock checks the
/// clock and hands the lock straight to the due front waiter, C. Without the clock check, C
/// would wait for B to run, lose, and queue again. Exclusion is checked throughout.
#[test]
fn due_waiter_served_while_woken_waiter_has_not_run() {
    let ex = explore(|| {
        loom_clock::reset();
        let m = Arc::new((Mutex::new(Vec::new()), Guarded::new()));
        let (mx, data) = &*m;
        let mut g = mx.lock();
        let section = data.exclusive();
        g.push('a');
        let spawn = |name: char| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let (mx, data) = &*m;
                let mut g = mx.lock();
                let _section = data.exclusive();
                g.push(name);
            })
        };
        let b = spawn('b');
        while mx.waiters() == 0 {
            thread::yield_now();
        }
        let c = spawn('c');
        while mx.waiters() < 2 {
            thread::yield_now();
        }
        // Both have waited past the patience; the handoff interval has never been used.
        loom_clock::advance(Duration::from_millis(5));
        drop(section);
        drop(g);
        // The unlock woke the front waiter (B, or C if it queued first) to compete.
        let mut g = mx.lock();
        let section = data.exclusive();
        g.push('a');
        let woken_pending = mx.is_woken();
        drop(section);
        drop(g);
        b.join().unwrap();
        c.join().unwrap();
        assert_clean(mx);
        assert_eq!(data.writes(), 4);
        let v = mx.lock().clone();
        assert_eq!(v.len(), 4);
        // Who came right after the main thread's two turns in a row. B queued first, so the
        // first unlock woke B; C getting the lock next while B still held the woken bit means
        // the second unlock handed the lock to C directly.
        let second = v.iter().rposition(|&x| x == 'a').unwrap();
        let next = v.get(second + 1).copied();
        [
            if woken_pending {
                "a woken waiter had not run when the lock was released again"
            } else {
                ""
            },
            if woken_pending && second == 1 && next == Some('c') {
                "the due waiter was served while the woken one had not run"
            } else {
                ""
            },
        ]
    });
    ex.assert_saw(&[
        "a woken waiter had not run when the lock was released again",
        "the due waiter was served while the woken one had not run",
    ]);
}

/// ReentrantMutex: the owner re-enters without waiting; another thread waits until the owner's
/// last guard is gone, and only then owns it. [`Guarded`] sections check that the two owners'
/// tenures never overlap.
#[test]
fn reentrant_mutex_ownership() {
    let ex = explore(|| {
        loom_clock::reset();
        let m = Arc::new((ReentrantMutex::new(()), Guarded::new()));
        let t = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let (m, data) = &*m;
                assert!(!m.is_owned_by_current_thread());
                let found_owned = m.is_locked();
                let g = m.lock();
                let section = data.exclusive();
                assert!(m.is_owned_by_current_thread());
                let again = m.try_lock().expect("the owner re-enters");
                drop((again, section, g));
                assert!(!m.is_owned_by_current_thread());
                found_owned
            })
        };
        let (mx, data) = &*m;
        let outer = mx.lock();
        let section = data.exclusive();
        let inner = mx.lock(); // re-entry: must not wait
        assert!(mx.is_owned_by_current_thread());
        drop(outer);
        // Still owned through `inner`: the other thread must not get in here.
        let other_in = mx.try_lock().is_none();
        assert!(!other_in, "the owner's try_lock must re-enter");
        thread::yield_now();
        assert!(mx.is_owned_by_current_thread());
        drop(section);
        drop(inner);
        let found_owned = t.join().unwrap();
        assert!(!mx.is_locked());
        assert_eq!(data.writes(), 2);
        [if found_owned {
            "the other thread found the mutex owned"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["the other thread found the mutex owned"]);
}

/// TokenMutex: guards of one token share the lock across threads (the same token re-enters
/// from another thread while held), another token waits until every guard of the owner is
/// gone. The main thread and U hold token 1 (shared sections), T wants token 2 (an exclusive
/// section); loom checks that T never overlaps a token-1 guard.
#[test]
fn token_mutex_ownership() {
    let ex = explore(|| {
        loom_clock::reset();
        let m = Arc::new((TokenMutex::new(()), Guarded::new(), AtomicBool::new(false)));
        let (mx, data, main_holds) = &*m;
        let g = mx.lock(1);
        let section = data.shared();
        main_holds.store(true, Ordering::SeqCst);
        let u = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let (mx, data, main_holds) = &*m;
                let g = mx.lock(1);
                let section = data.shared();
                let shared = main_holds.load(Ordering::SeqCst);
                assert_eq!(mx.owner(), Some(1));
                drop(section);
                drop(g);
                shared
            })
        };
        let t = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let (mx, data, _) = &*m;
                let g = mx.lock(2);
                let section = data.exclusive();
                assert_eq!(mx.owner(), Some(2));
                drop(section);
                drop(g);
            })
        };
        thread::yield_now();
        main_holds.store(false, Ordering::SeqCst);
        drop(section);
        drop(g);
        let shared = u.join().unwrap();
        t.join().unwrap();
        assert_eq!(mx.owner(), None);
        assert!(!mx.is_locked());
        assert_eq!(data.writes(), 1);
        [if shared {
            "token 1 re-entered from another thread while held"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["token 1 re-entered from another thread while held"]);
}
