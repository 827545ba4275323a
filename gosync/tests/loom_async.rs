//! Loom models of the async waits racing their wake-ups: a future dropped while the release or
//! the end of a run is delivered to it must lose nothing (no stranded waiter, no leaked
//! registration), and a task and a thread waiting on one object are both served.
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_async`
#![cfg(loom)]

#[path = "support/loom.rs"]
mod support;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use gosync::{loom_clock, TryOnce, WaitGroup};
use support::explore;

/// A waker that records that it was called.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A future polled by hand inside the model.
struct Task<F: Future> {
    fut: Pin<Box<F>>,
    flag: std::sync::Arc<Flag>,
}

impl<F: Future> Task<F> {
    fn new(fut: F) -> Self {
        Task {
            fut: Box::pin(fut),
            flag: std::sync::Arc::default(),
        }
    }
    fn poll(&mut self) -> Poll<F::Output> {
        self.flag.0.store(false, Ordering::SeqCst);
        let waker = Waker::from(std::sync::Arc::clone(&self.flag));
        self.fut.as_mut().poll(&mut Context::from_waker(&waker))
    }
    fn woken(&self) -> bool {
        self.flag.0.load(Ordering::SeqCst)
    }
}

/// A waiting future is dropped while the last `done` releases it: either way the group ends
/// with no waiter registered and is usable for a new round.
#[test]
fn wait_async_dropped_while_released() {
    let ex = explore(|| {
        loom_clock::reset();
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let mut task = Task::new(wg.wait_async());
        assert!(task.poll().is_pending());
        let worker = {
            let wg = Arc::clone(&wg);
            thread::spawn(move || wg.done())
        };
        let released_first = task.woken();
        drop(task);
        // Whether or not the release has happened, the dropped future is no longer counted.
        assert_eq!(wg.waiters(), 0, "a dropped future stays registered");
        worker.join().unwrap();
        assert_eq!(wg.waiters(), 0);
        assert_eq!(wg.count(), 0);
        // A new round works.
        wg.add(1);
        wg.done();
        [if released_first {
            "released, then dropped before its poll"
        } else {
            "dropped while still queued"
        }]
    });
    ex.assert_saw(&[
        "released, then dropped before its poll",
        "dropped while still queued",
    ]);
}

/// A task and a blocked thread wait; the task is dropped while the last `done` runs. The
/// thread must be released whatever the interleaving (the drop may even finish the release).
#[test]
fn wait_async_drop_never_strands_a_thread() {
    let ex = explore(|| {
        loom_clock::reset();
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let mut task = Task::new(wg.wait_async());
        assert!(task.poll().is_pending());
        let waiter = {
            let wg = Arc::clone(&wg);
            thread::spawn(move || wg.wait())
        };
        let worker = {
            let wg = Arc::clone(&wg);
            thread::spawn(move || {
                let registered = wg.waiters();
                wg.done();
                registered
            })
        };
        drop(task);
        waiter.join().unwrap();
        let registered = worker.join().unwrap();
        assert_eq!(wg.waiters(), 0);
        [if registered == 2 {
            "done saw the task and the thread registered"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["done saw the task and the thread registered"]);
}

/// The task running a `TryOnce` attempt is dropped mid-attempt while a blocked thread waits
/// for it: the thread must then run its own attempt, and exactly one attempt succeeds.
#[test]
fn try_once_attempt_dropped_while_a_thread_waits() {
    let ex = explore(|| {
        loom_clock::reset();
        let once = Arc::new(TryOnce::new());
        let mut runner = Task::new({
            let once = Arc::clone(&once);
            async move {
                once.call_async(std::future::pending::<Result<(), ()>>)
                    .await
            }
        });
        assert!(runner.poll().is_pending());
        let thread_ran = Arc::new(AtomicUsize::new(0));
        let waiter = {
            let (once, thread_ran) = (Arc::clone(&once), Arc::clone(&thread_ran));
            thread::spawn(move || {
                once.call_once(|| {
                    thread_ran.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), ()>(())
                })
            })
        };
        drop(runner);
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert!(once.is_done());
        assert_eq!(thread_ran.load(Ordering::SeqCst), 1);
        [""]
    });
    assert!(ex.runs > 1, "model did not explore: {ex:?}");
}

/// A task waits for a thread's `TryOnce` attempt, which fails; the task is dropped while the
/// failure is delivered. Nothing is left queued, and a later call runs.
#[test]
fn try_once_waiter_dropped_while_woken() {
    let ex = explore(|| {
        loom_clock::reset();
        let once = Arc::new(TryOnce::new());
        let started = Arc::new(AtomicBool::new(false));
        let go = Arc::new(AtomicBool::new(false));
        let runner = {
            let (once, started, go) = (Arc::clone(&once), Arc::clone(&started), Arc::clone(&go));
            thread::spawn(move || {
                once.call_once(|| {
                    started.store(true, Ordering::SeqCst);
                    while !go.load(Ordering::SeqCst) {
                        thread::yield_now();
                    }
                    Err::<(), ()>(())
                })
            })
        };
        while !started.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        let mut task = Task::new({
            let once = Arc::clone(&once);
            async move { once.call_async(|| async { Ok::<(), ()>(()) }).await }
        });
        let first = task.poll();
        go.store(true, Ordering::SeqCst);
        let woken = task.woken();
        drop(task);
        assert_eq!(runner.join().unwrap(), Err(()));
        assert!(!once.is_done(), "the task never ran its attempt");
        // Nobody is left waiting; the next call runs.
        assert_eq!(once.call_once(|| Ok::<(), ()>(())), Ok(()));
        [if first.is_pending() && woken {
            "woken by the failure, dropped before its poll"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["woken by the failure, dropped before its poll"]);
}
