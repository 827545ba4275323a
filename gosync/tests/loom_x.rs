//! Loom models of the weighted semaphore: exclusion and permit accounting with blocking
//! waiters, the head-of-line rule, and the race between granting permits to an async waiter
//! and dropping it (cancellation safety).
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

use gosync::x::{Semaphore, SemaphorePermit};
use loom::sync::Arc;
use loom::thread;
use support::explore;

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
