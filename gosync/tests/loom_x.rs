//! Loom models of the weighted semaphore: exclusion and permit accounting with blocking
//! waiters, the head-of-line rule, and the race between granting permits to an async waiter
//! and dropping it (cancellation safety).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_x`
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use gosync::x::Semaphore;
use loom::sync::Arc;
use loom::thread;

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
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(1));
        let inside = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (sem, inside) = (sem.clone(), inside.clone());
                thread::spawn(move || {
                    let p = sem.acquire(1);
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(p);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.waiters(), 0);
    });
}

/// A weight-2 request and a weight-1 request on a semaphore of 2 with one permit held: both
/// complete once it is released, and all permits come back.
#[test]
fn weighted_waiters_complete() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(2));
        let held = sem.acquire(1);
        let big = {
            let sem = sem.clone();
            thread::spawn(move || drop(sem.acquire(2)))
        };
        let small = {
            let sem = sem.clone();
            thread::spawn(move || drop(sem.acquire(1)))
        };
        drop(held);
        big.join().unwrap();
        small.join().unwrap();
        assert_eq!(sem.available(), 2);
        assert_eq!(sem.waiters(), 0);
    });
}

/// An async waiter is queued; one thread releases the permit (granting it) while the waiter's
/// owner drops the future. Whatever the order, the permit is not lost and not doubled.
#[test]
fn cancel_races_with_grant() {
    loom::model(|| {
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
        drop(fut);
        drop(got);
        releaser.join().unwrap();
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.waiters(), 0);
    });
}

/// The head waiter (weight 2) is dropped while a weight-1 waiter stands behind it and one
/// permit is free: the second waiter must be granted (Go's notifyWaiters on cancel).
#[test]
fn dropped_head_lets_next_through() {
    loom::model(|| {
        let sem = std::sync::Arc::new(Semaphore::new(2));
        let held = sem.acquire_owned(1);
        let mut big = Box::pin(sem.clone().acquire_owned_async(2));
        assert!(poll(big.as_mut()).is_pending());
        let small = {
            let sem = sem.clone();
            thread::spawn(move || drop(sem.acquire(1)))
        };
        drop(big);
        small.join().unwrap();
        drop(held);
        assert_eq!(sem.available(), 2);
        assert_eq!(sem.waiters(), 0);
    });
}
