//! Loom models of the weighted semaphore: exclusion and permit accounting with blocking
//! waiters, the head-of-line rule, the race between granting permits to an async waiter
//! and dropping it (cancellation safety), and the transitions of the bounded-barging gate: a
//! woken head racing a barger, a due head handed its permit, a due head closing an open gate,
//! and a woken or granted head whose deadline passes.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_x`
//!
//! Each model reports the outcomes it observed and asserts that the interesting ones occurred
//! in some execution (see `support/loom.rs`): a holder with a waiter queued behind it, waiters
//! queued behind the held permit, a grant and a cancellation winning their race, a waiter
//! queued behind the head when the head is dropped.
#![cfg(loom)]

#[path = "support/loom.rs"]
mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use std::time::Duration;

use gosync::loom_clock;
use gosync::x::{Semaphore, SemaphorePermit};
use loom::sync::Arc;
use loom::thread;
use support::{explore, Guarded};

struct Noop;
impl Wake for Noop {
    fn wake(self: std::sync::Arc<Self>) {}
}

fn poll<F: Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
    let waker = Waker::from(std::sync::Arc::new(Noop));
    f.poll(&mut Context::from_waker(&waker))
}

/// Two threads and the main thread share one permit: never two holders, and the permit is
/// back at the end with an empty queue.
#[test]
fn exclusion_with_blocking_waiters() {
    let ex = explore(|| {
        let sem = Arc::new(Semaphore::new(1));
        let inside = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (sem, inside) = (sem.clone(), inside.clone());
                thread::spawn(move || {
                    let p = sem.acquire(1);
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    let queued = sem.waiters();
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(p);
                    queued
                })
            })
            .collect();
        let queued: Vec<usize> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.waiters(), 0);
        [if queued.contains(&1) {
            "a waiter queued behind the holder"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["a waiter queued behind the holder"]);
}

/// A weight-2 request and a weight-1 request on a semaphore of 2 with one permit held: both
/// complete once it is released, never more than 2 permits are held at once, all permits come
/// back, and the head-of-line rule holds: a small request arriving while the big one is queued
/// does not take the free permit ahead of it.
#[test]
fn weighted_waiters_complete() {
    let ex = explore(|| {
        let sem = Arc::new(Semaphore::new(2));
        // Permits held, counted by the holders: never more than the semaphore's size.
        let in_use = Arc::new(AtomicUsize::new(0));
        // Order in which the permits were obtained.
        let turns = Arc::new(AtomicUsize::new(0));
        fn hold<'a>(sem: &'a Semaphore, in_use: &AtomicUsize, n: usize) -> SemaphorePermit<'a> {
            let p = sem.acquire(n);
            let before = in_use.fetch_add(n, Ordering::SeqCst);
            assert!(before + n <= 2, "{} permits held", before + n);
            p
        }
        let held = hold(&sem, &in_use, 1);
        turns.fetch_add(1, Ordering::SeqCst);
        let spawn = |n: usize| {
            let (sem, in_use, turns) = (sem.clone(), in_use.clone(), turns.clone());
            thread::spawn(move || {
                // For the small request: is the big one queued already?
                let behind = sem.waiters() == 1;
                let p = hold(&sem, &in_use, n);
                let turn = turns.fetch_add(1, Ordering::SeqCst);
                in_use.fetch_sub(n, Ordering::SeqCst);
                drop(p);
                (turn, behind)
            })
        };
        let big = spawn(2);
        let small = spawn(1);
        let queued = sem.waiters();
        in_use.fetch_sub(1, Ordering::SeqCst);
        drop(held);
        let (big_turn, _) = big.join().unwrap();
        let (small_turn, small_behind_big) = small.join().unwrap();
        assert_eq!(sem.available(), 2);
        assert_eq!(sem.waiters(), 0);
        if small_behind_big {
            assert!(
                big_turn < small_turn,
                "the small request overtook the queued big one"
            );
        }
        [
            if queued == 2 {
                "both queued behind the held permit"
            } else {
                ""
            },
            if small_behind_big {
                "the small request arrived behind the big one"
            } else {
                ""
            },
        ]
    });
    ex.assert_saw(&[
        "both queued behind the held permit",
        "the small request arrived behind the big one",
    ]);
}

/// An async waiter is queued; one thread releases the permit (granting it) while the waiter's
/// owner drops the future. Whatever the order, the permit is not lost and not doubled.
#[test]
fn cancel_races_with_grant() {
    let ex = explore(|| {
        // std's Arc: the owned-permit API takes one (loom does not need to track it).
        let sem = std::sync::Arc::new(Semaphore::new(1));
        let held = sem.acquire_owned(1);
        let mut fut = Box::pin(sem.clone().acquire_owned_async(1));
        assert!(poll(fut.as_mut()).is_pending());
        let releaser = thread::spawn(move || drop(held));
        let got = match poll(fut.as_mut()) {
            Poll::Ready(p) => Some(p),
            Poll::Pending => None,
        };
        let granted = got.is_some();
        drop(fut);
        drop(got);
        releaser.join().unwrap();
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.waiters(), 0);
        [if granted {
            "the waiter was granted"
        } else {
            "the waiter was dropped first"
        }]
    });
    ex.assert_saw(&["the waiter was granted", "the waiter was dropped first"]);
}

/// The head waiter (weight 2) is dropped while a weight-1 waiter stands behind it and one
/// permit is free: the second waiter must be granted (Go's notifyWaiters on cancel).
#[test]
fn dropped_head_lets_next_through() {
    let ex = explore(|| {
        let sem = std::sync::Arc::new(Semaphore::new(2));
        let held = sem.acquire_owned(1);
        let mut big = Box::pin(sem.clone().acquire_owned_async(2));
        assert!(poll(big.as_mut()).is_pending());
        let small = {
            let sem = sem.clone();
            thread::spawn(move || drop(sem.acquire(1)))
        };
        let queued = sem.waiters();
        drop(big);
        small.join().unwrap();
        drop(held);
        assert_eq!(sem.available(), 2);
        assert_eq!(sem.waiters(), 0);
        [if queued == 2 {
            "the small waiter queued behind the head"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["the small waiter queued behind the head"]);
}

/// Past every handoff threshold the semaphore can pick (at most 1 ms).
const DUE: Duration = Duration::from_millis(2);

/// The gate. A sleeps at the head; the holder's release wakes A and opens the gate, and the
/// releaser asks again at once: it may take the permit before A runs (barging). A, losing,
/// sleeps again and closes the gate in the same step that saw the permit gone, so the barger's
/// release wakes it again. Every execution serves both, one at a time, and ends with the permit
/// back and the queue empty.
#[test]
fn woken_head_races_a_barger() {
    let ex = explore(|| {
        loom_clock::reset();
        let sem = Arc::new(Semaphore::new(1));
        let cell = Arc::new(Guarded::new());
        let turns = Arc::new(AtomicUsize::new(0));
        let held = sem.acquire(1);
        let a = {
            let (sem, cell, turns) = (sem.clone(), cell.clone(), turns.clone());
            thread::spawn(move || {
                let p = sem.acquire(1);
                let section = cell.exclusive();
                let turn = turns.fetch_add(1, Ordering::SeqCst);
                drop(section);
                drop(p);
                turn
            })
        };
        while sem.waiters() == 0 {
            thread::yield_now();
        }
        drop(held);
        let p = sem.acquire(1);
        let section = cell.exclusive();
        let main_turn = turns.fetch_add(1, Ordering::SeqCst);
        drop(section);
        drop(p);
        a.join().unwrap();
        assert_eq!(cell.writes(), 2);
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.waiters(), 0);
        [if main_turn == 0 {
            "the releaser barged past the woken head"
        } else {
            "the woken head got the permit first"
        }]
    });
    ex.assert_saw(&[
        "the releaser barged past the woken head",
        "the woken head got the permit first",
    ]);
}

/// A has been at the head longer than any handoff threshold when the holder releases: the
/// permit is handed to A, so the releaser's `try_acquire` right after fails unless A has
/// already had its turn.
#[test]
fn due_head_is_handed_the_permit() {
    let ex = explore(|| {
        loom_clock::reset();
        let sem = Arc::new(Semaphore::new(1));
        let turns = Arc::new(AtomicUsize::new(0));
        let held = sem.acquire(1);
        let a = {
            let (sem, turns) = (sem.clone(), turns.clone());
            thread::spawn(move || {
                let p = sem.acquire(1);
                turns.fetch_add(1, Ordering::SeqCst);
                drop(p);
            })
        };
        while sem.waiters() == 0 {
            thread::yield_now();
        }
        loom_clock::advance(DUE);
        drop(held);
        let again = sem.try_acquire(1);
        let a_done = turns.load(Ordering::SeqCst) == 1;
        assert!(
            again.is_none() || a_done,
            "the releaser took the permit from a due head"
        );
        let handed = again.is_none();
        drop(again);
        a.join().unwrap();
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.waiters(), 0);
        [if handed {
            "the due head was handed the permit"
        } else {
            "the head was done before the try"
        }]
    });
    ex.assert_saw(&["the due head was handed the permit"]);
}

/// The gate is open (A woken, not yet running) and the releaser barged; when A's debt falls due
/// the next release closes the gate, so the permit waits for A: the releaser's `try_acquire`
/// then fails unless A has had its turn.
#[test]
fn due_head_closes_an_open_gate() {
    let ex = explore(|| {
        loom_clock::reset();
        let sem = Arc::new(Semaphore::new(1));
        let turns = Arc::new(AtomicUsize::new(0));
        let held = sem.acquire(1);
        let a = {
            let (sem, turns) = (sem.clone(), turns.clone());
            thread::spawn(move || {
                let p = sem.acquire(1);
                turns.fetch_add(1, Ordering::SeqCst);
                drop(p);
            })
        };
        while sem.waiters() == 0 {
            thread::yield_now();
        }
        drop(held);
        let barged = sem.try_acquire(1);
        let did_barge = barged.is_some() && turns.load(Ordering::SeqCst) == 0;
        loom_clock::advance(DUE);
        drop(barged);
        let again = sem.try_acquire(1);
        let a_done = turns.load(Ordering::SeqCst) == 1;
        assert!(
            again.is_none() || a_done,
            "the releaser took the permit again from a due head"
        );
        drop(again);
        a.join().unwrap();
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.waiters(), 0);
        [if did_barge {
            "barged past the woken head, then its debt fell due"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["barged past the woken head, then its debt fell due"]);
}

/// A (timed) is at the head and B behind it; the clock passes A's deadline (`advance`, either
/// before A's debt is due, so the release wakes A to compete, or after, so the release hands A
/// the permit) and the releaser tries to barge. Whatever wins each race (A's timeout against
/// the wake-up or the grant, A's last attempt against the barger), no permit is lost, B is
/// served, and the queue ends empty.
fn timed_head_with_waiter_behind(advance: Duration) -> Vec<&'static str> {
    loom_clock::reset();
    let sem = Arc::new(Semaphore::new(1));
    let cell = Arc::new(Guarded::new());
    let held = sem.acquire(1);
    let a = {
        let (sem, cell) = (sem.clone(), cell.clone());
        thread::spawn(move || {
            let p = sem.acquire_timeout(1, Duration::from_micros(50));
            let got = p.is_some();
            if got {
                drop(cell.exclusive());
            }
            got
        })
    };
    while sem.waiters() == 0 {
        thread::yield_now();
    }
    let b = {
        let (sem, cell) = (sem.clone(), cell.clone());
        thread::spawn(move || {
            let p = sem.acquire(1);
            drop(cell.exclusive());
            drop(p);
        })
    };
    while sem.waiters() < 2 {
        thread::yield_now();
    }
    loom_clock::advance(advance);
    drop(held);
    let barged = sem.try_acquire(1);
    if barged.is_some() {
        drop(cell.exclusive());
    }
    let did_barge = barged.is_some();
    drop(barged);
    let a_got = a.join().unwrap();
    b.join().unwrap();
    assert_eq!(sem.available(), 1, "a permit was lost");
    assert_eq!(sem.waiters(), 0);
    vec![
        if a_got { "A was served" } else { "A gave up" },
        if did_barge && !a_got {
            "A gave up after a barger took the permit"
        } else {
            ""
        },
    ]
}

#[test]
fn woken_head_times_out_with_a_waiter_behind() {
    let ex = explore(|| timed_head_with_waiter_behind(Duration::from_micros(60)));
    ex.assert_saw(&[
        "A was served",
        "A gave up",
        "A gave up after a barger took the permit",
    ]);
}

#[test]
fn granted_head_times_out_with_a_waiter_behind() {
    let ex = explore(|| timed_head_with_waiter_behind(DUE));
    ex.assert_saw(&["A was served", "A gave up"]);
}
