//! Loom models of the Cond queue protocol: a signal is never lost (a waiter queues before it
//! releases its lock, so a notifier finds it queued or already chosen), broadcast wakes
//! everyone waiting, a timed-out waiter gives its place (its "ticket") up so a signal never
//! lands on it, and signals wake the waiters in the order they started waiting (FIFO).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_cond`
//!
//! Each model reports the outcomes it observed (see `support/loom.rs`) and asserts that the
//! interesting ones occurred in some execution: a waiter that really waited, a signal that
//! found it, a broadcast that woke both, a timed waiter that timed out and one that was
//! signalled.
#![cfg(loom)]

#[path = "support/loom.rs"]
mod support;

use std::time::Duration;

use gosync::{loom_clock, Cond, Mutex};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use support::explore;

/// The classic handshake: no lost wake-up whatever the interleaving.
#[test]
fn signal_reaches_the_waiter() {
    let ex = explore(|| {
        loom_clock::reset();
        let mc = Arc::new((Mutex::new(false), Cond::new()));
        let waiter = {
            let mc = Arc::clone(&mc);
            thread::spawn(move || {
                let (m, c) = &*mc;
                let mut ready = m.lock();
                let waited = !*ready;
                c.wait_while(&mut ready, |r| !*r);
                waited
            })
        };
        let (m, c) = &*mc;
        *m.lock() = true;
        let found = c.signal();
        let waited = waiter.join().unwrap();
        assert!(!found || waited, "signal found a waiter that never waited");
        assert!(!c.signal());
        assert_eq!(c.waiters(), 0);
        [
            if waited { "waiter waited" } else { "" },
            if found { "signal found the waiter" } else { "" },
        ]
    });
    ex.assert_saw(&["waiter waited", "signal found the waiter"]);
}

/// Broadcast wakes both waiters.
#[test]
fn broadcast_reaches_both_waiters() {
    let ex = explore(|| {
        loom_clock::reset();
        let mc = Arc::new((Mutex::new(false), Cond::new()));
        let spawn = |mc: Arc<(Mutex<bool>, Cond)>| {
            thread::spawn(move || {
                let (m, c) = &*mc;
                let mut ready = m.lock();
                c.wait_while(&mut ready, |r| !*r);
            })
        };
        let a = spawn(Arc::clone(&mc));
        let b = spawn(Arc::clone(&mc));
        let (m, c) = &*mc;
        let woken = {
            let mut ready = m.lock();
            *ready = true;
            c.broadcast()
        };
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(c.waiters(), 0);
        [if woken == 2 {
            "broadcast woke both"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["broadcast woke both"]);
}

/// A timed waiter and a signal race: the signal reports a waiter exactly when the waiter did
/// not time out (its ticket was either claimed or given up, never both, never neither).
#[test]
fn timed_wait_and_signal_agree() {
    let ex = explore(|| {
        loom_clock::reset();
        let mc = Arc::new((Mutex::new(false), Cond::new()));
        let mc2 = Arc::clone(&mc);
        let waiter = thread::spawn(move || {
            let (m, c) = &*mc2;
            let mut g = m.lock();
            *g = true; // ticket taken below, under this lock
            c.wait_timeout(&mut g, Duration::from_millis(1))
        });
        let (m, c) = &*mc;
        // Only signal once the waiter holds a ticket.
        loop {
            if *m.lock() {
                break;
            }
            thread::yield_now();
        }
        loom_clock::advance(Duration::from_millis(5));
        let signalled = c.signal();
        let timed_out = waiter.join().unwrap();
        assert_eq!(signalled, !timed_out);
        assert!(!c.signal());
        assert_eq!(
            c.waiters(),
            0,
            "claimed or given up, the ticket is counted out once"
        );
        [if timed_out { "timed out" } else { "signalled" }]
    });
    ex.assert_saw(&["timed out", "signalled"]);
}

/// What the waiters of [`signal_wakes_in_fifo_order`] share.
#[derive(Default)]
struct Fifo {
    m: Mutex<()>,
    c: Cond,
    /// Waiters that have taken the lock on their way to `wait`.
    ready: AtomicUsize,
    /// The first waiter to return from `wait` (1 = A, 2 = B).
    first: AtomicUsize,
}

/// A waiter of [`signal_wakes_in_fifo_order`]; `then` runs under the lock, just before `wait`.
fn fifo_waiter(
    f: Arc<Fifo>,
    me: usize,
    then: Option<fn(Arc<Fifo>) -> thread::JoinHandle<()>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut g = f.m.lock();
        f.ready.fetch_add(1, Ordering::SeqCst);
        let next = then.map(|spawn| spawn(Arc::clone(&f)));
        f.c.wait(&mut g);
        let _ = f
            .first
            .compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst);
        drop(g);
        if let Some(next) = next {
            next.join().unwrap();
        }
    })
}

/// FIFO: A waits, then B waits; the first `signal` wakes A (the oldest ticket), never B, and
/// the second wakes B. With no spurious wake-ups (Go's guarantee) only a signalled waiter can
/// return from `wait`, so the first waiter to return is the one the first signal chose.
#[test]
fn signal_wakes_in_fifo_order() {
    let ex = explore(|| {
        loom_clock::reset();
        let f = Arc::new(Fifo::default());
        // A starts B while it holds the lock, so B's ticket comes after A's.
        let a = fifo_waiter(Arc::clone(&f), 1, Some(|f| fifo_waiter(f, 2, None)));
        // Both hold tickets once both counted themselves and released the lock.
        while f.ready.load(Ordering::SeqCst) < 2 {
            thread::yield_now();
        }
        drop(f.m.lock());
        assert!(f.c.signal(), "two waiters, yet the signal found none");
        while f.first.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        assert_eq!(
            f.first.load(Ordering::SeqCst),
            1,
            "the first signal must wake the oldest waiter"
        );
        assert!(f.c.signal(), "B is still waiting");
        a.join().unwrap();
        assert!(!f.c.signal());
        assert_eq!(f.c.waiters(), 0);
        [""]
    });
    assert!(ex.runs > 1, "model did not explore: {ex:?}");
}

/// The `Cond` belongs to the lock of its current waiters only: once a `signal` has chosen the
/// only waiter, another lock may wait on the `Cond` at once, even while the woken thread has
/// not taken its own lock back yet (it no longer counts). Before the signal, the waiter counts
/// from the moment it is inside `wait`.
#[test]
fn another_lock_may_wait_once_the_waiter_is_chosen() {
    let ex = explore(|| {
        loom_clock::reset();
        let mc = Arc::new((Mutex::new(false), Cond::new()));
        let mc2 = Arc::clone(&mc);
        let waiter = thread::spawn(move || {
            let (m, c) = &*mc2;
            let mut g = m.lock();
            *g = true; // ticket taken below, under this lock
            c.wait(&mut g);
        });
        let (m, c) = &*mc;
        loop {
            if *m.lock() {
                break;
            }
            thread::yield_now();
        }
        assert_eq!(c.waiters(), 1, "the waiter holds a ticket");
        assert!(c.signal());
        assert_eq!(c.waiters(), 0, "a chosen waiter no longer counts");
        let other = Mutex::new(());
        // Enters the `Cond` with the other lock (the check under test), then times out at once
        // (nobody would signal it).
        assert!(c.wait_timeout(&mut other.lock(), Duration::ZERO));
        waiter.join().unwrap();
        assert_eq!(c.waiters(), 0);
        [""]
    });
    assert!(ex.runs > 1, "model did not explore: {ex:?}");
}

/// A broadcast under the lock moves the waiter to the mutex's queue (it is not woken; the
/// holder's unlock wakes it), while another thread barges for the mutex. The waiter must come
/// back holding the lock, whatever the interleaving, and the mutex must end with no waiter
/// and unlocked.
#[test]
fn broadcast_moves_the_waiter_to_the_mutex_and_a_barger_cannot_strand_it() {
    let ex = explore(|| {
        loom_clock::reset();
        let mc = Arc::new((Mutex::new(0u32), Cond::new()));
        let waiter = {
            let mc = Arc::clone(&mc);
            thread::spawn(move || {
                let (m, c) = &*mc;
                let mut g = m.lock();
                *g += 1;
                c.wait_while(&mut g, |n| *n < 10);
                *g += 1;
            })
        };
        let (m, c) = &*mc;
        // The waiter counted itself in under the lock; it queues before releasing it.
        loop {
            if *m.lock() == 1 {
                break;
            }
            thread::yield_now();
        }
        let barger = {
            let mc = Arc::clone(&mc);
            thread::spawn(move || {
                *mc.0.lock() += 100;
            })
        };
        let moved = {
            let mut g = m.lock();
            *g += 10;
            assert_eq!(c.broadcast(), 1);
            // Moved: it now counts as the mutex's waiter (the barger may, too).
            m.waiters() >= 1
        };
        waiter.join().unwrap();
        barger.join().unwrap();
        assert_eq!(*m.lock(), 112);
        assert_eq!(c.waiters(), 0);
        assert_eq!(m.waiters(), 0);
        assert!(!m.is_locked() && !m.is_woken());
        [if moved { "moved to the mutex" } else { "" }]
    });
    ex.assert_saw(&["moved to the mutex"]);
}

/// Two waiters moved by one broadcast are woken one per unlock, without the "woken" bit: the
/// broadcaster's unlock wakes the first, and the first's own unlock may wake the second
/// before or after it ran. Both must come back, and the mutex end idle. (Each thread starts
/// the next while it holds the lock, so both waiters are queued when the broadcast comes,
/// without a polling loop.)
#[test]
fn two_moved_waiters_are_both_served() {
    let ex = explore(|| {
        loom_clock::reset();
        let mc = Arc::new((Mutex::new(0u32), Cond::new()));
        let (m, c) = &*mc;
        let mut g = m.lock();
        let second = {
            let mc = Arc::clone(&mc);
            thread::spawn(move || {
                let (m, c) = &*mc;
                let mut g = m.lock();
                let broadcaster = {
                    let mc = Arc::clone(&mc);
                    thread::spawn(move || {
                        let (m, c) = &*mc;
                        let mut g = m.lock();
                        *g += 10;
                        let woken = c.broadcast();
                        (woken, m.waiters())
                    })
                };
                c.wait_while(&mut g, |n| *n < 10);
                *g += 1;
                drop(g);
                broadcaster.join().unwrap()
            })
        };
        c.wait_while(&mut g, |n| *n < 10);
        *g += 1;
        drop(g);
        let (woken, mutex_waiters) = second.join().unwrap();
        assert_eq!(woken, 2);
        assert_eq!(*m.lock(), 12);
        assert_eq!(m.waiters(), 0);
        assert!(!m.is_locked() && !m.is_woken());
        [if mutex_waiters == 2 { "both moved" } else { "" }]
    });
    ex.assert_saw(&["both moved"]);
}
