//! Loom models of `WaitGroup`: add/done/wait, several waiters, reuse across rounds, a timed
//! wait racing the release, a timed-out waiter starting the next round while the release of
//! the previous one is still under way, and a `done` too many (caught) racing a wait and a
//! release.
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_waitgroup`
//!
//! Each task reads `waiters()` just before its `done`; the models assert (see
//! `support/loom.rs`) that some execution had the waiters registered (about to park or parked)
//! when the count reached zero, so the release path that wakes them is exercised.
#![cfg(loom)]

#[path = "support/loom.rs"]
mod support;

use std::time::Duration;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use gosync::{loom_clock, WaitGroup};
use support::{explore, panic_message, quiet_panics};

/// Two tasks finish; `wait` returns only after both, and sees their (relaxed) writes.
#[test]
fn wait_sees_every_done() {
    let ex = explore(|| {
        let wg = Arc::new(WaitGroup::new());
        let data = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        wg.add(2);
        let tasks: Vec<_> = (0..2)
            .map(|i| {
                let (wg, data) = (Arc::clone(&wg), Arc::clone(&data));
                thread::spawn(move || {
                    data[i].store(i + 1, Ordering::Relaxed);
                    let waiting = wg.waiters();
                    wg.done();
                    waiting
                })
            })
            .collect();
        wg.wait();
        assert_eq!(data[0].load(Ordering::Relaxed), 1);
        assert_eq!(data[1].load(Ordering::Relaxed), 2);
        assert_eq!(wg.count(), 0);
        let saw: Vec<usize> = tasks.into_iter().map(|t| t.join().unwrap()).collect();
        [if saw.contains(&1) {
            "a task finished with the waiter registered"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["a task finished with the waiter registered"]);
}

/// Two waiters, one task: both waiters are released (no lost wake-up), none early.
#[test]
fn every_waiter_is_released() {
    let ex = explore(|| {
        let wg = Arc::new(WaitGroup::new());
        let flag = Arc::new(AtomicUsize::new(0));
        wg.add(1);
        let waiter = {
            let (wg, flag) = (Arc::clone(&wg), Arc::clone(&flag));
            thread::spawn(move || {
                wg.wait();
                assert_eq!(flag.load(Ordering::Relaxed), 1, "released before done");
            })
        };
        let worker = {
            let (wg, flag) = (Arc::clone(&wg), Arc::clone(&flag));
            thread::spawn(move || {
                flag.store(1, Ordering::Relaxed);
                let waiting = wg.waiters();
                wg.done();
                waiting
            })
        };
        wg.wait();
        assert_eq!(flag.load(Ordering::Relaxed), 1, "released before done");
        waiter.join().unwrap();
        let waiting = worker.join().unwrap();
        assert_eq!(wg.waiters(), 0);
        [if waiting == 2 {
            "done found both waiters registered"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["done found both waiters registered"]);
}

/// Reuse: a second round on the same group after the first wait returned.
#[test]
fn reusable_after_wait_returned() {
    let ex = explore(|| {
        let wg = Arc::new(WaitGroup::new());
        let hits = Arc::new(AtomicUsize::new(0));
        let mut second_waited = false;
        for round in 1..=2 {
            wg.add(1);
            let (w, h) = (Arc::clone(&wg), Arc::clone(&hits));
            let task = thread::spawn(move || {
                h.fetch_add(1, Ordering::Relaxed);
                let waiting = w.waiters();
                w.done();
                waiting
            });
            wg.wait();
            assert_eq!(hits.load(Ordering::Relaxed), round);
            let waiting = task.join().unwrap();
            second_waited = round == 2 && waiting == 1;
        }
        [if second_waited {
            "second round released a registered waiter"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["second round released a registered waiter"]);
}

/// A timed waiter races the release: it times out (leaving the waiter count balanced, so the
/// next round's `add` does not take it for a waiter of an unfinished release) or is released
/// (and then sees the task's write). Both outcomes must occur.
#[test]
fn timed_wait_races_release() {
    let ex = explore(|| {
        loom_clock::reset();
        let wg = Arc::new(WaitGroup::new());
        let flag = Arc::new(AtomicUsize::new(0));
        wg.add(1);
        let waiter = {
            let (wg, flag) = (Arc::clone(&wg), Arc::clone(&flag));
            thread::spawn(move || {
                let released = wg.wait_timeout(Duration::from_millis(1));
                if released {
                    assert_eq!(flag.load(Ordering::Relaxed), 1, "released before done");
                }
                released
            })
        };
        // Move the clock only once the waiter has taken its deadline and registered.
        while wg.waiters() == 0 {
            thread::yield_now();
        }
        loom_clock::advance(Duration::from_millis(5));
        flag.store(1, Ordering::Relaxed);
        wg.done();
        let released = waiter.join().unwrap();
        assert_eq!(wg.waiters(), 0, "waiter registrations out of balance");
        // A new round works (a leftover waiter would make this `add` report misuse).
        wg.add(1);
        wg.done();
        wg.wait();
        [if released { "released" } else { "timed out" }]
    });
    ex.assert_saw(&["released", "timed out"]);
}

/// A timed waiter times out while the last `done` is releasing it, then (its wait has
/// returned, so this is legal) starts a new round on the same thread: `add(1)` and a second
/// wait, which the main thread ends with a second `done`. The releasing `done` must not panic
/// ("Add called concurrently with Wait") when it finds the new round's counter or the new
/// round's waiter while it finishes the old release, and must not release the new waiter.
#[test]
fn timed_out_waiter_starts_next_round_during_release() {
    let ex = explore(|| {
        loom_clock::reset();
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let waiter = {
            let wg = Arc::clone(&wg);
            thread::spawn(move || {
                let released = wg.wait_timeout(Duration::from_millis(1));
                wg.add(1);
                // Its deadline lies past the clock's last move: only a `done` ends it.
                let second = wg.wait_timeout(Duration::from_millis(1));
                assert!(second, "the second wait timed out");
                released
            })
        };
        // Move the clock only once the waiter has taken its deadline and registered.
        while wg.waiters() == 0 {
            thread::yield_now();
        }
        loom_clock::advance(Duration::from_millis(5));
        wg.done();
        // End the waiter's second round.
        while wg.count() == 0 {
            thread::yield_now();
        }
        wg.done();
        let released = waiter.join().unwrap();
        assert_eq!(wg.count(), 0);
        assert_eq!(wg.waiters(), 0, "waiter registrations out of balance");
        [if released { "released" } else { "timed out" }]
    });
    ex.assert_saw(&["released", "timed out"]);
}

const NEGATIVE: &str = "sync: negative WaitGroup counter";

/// A `done` too many (caught) races a `wait` on a zero counter: the waiter must not be
/// stranded by the transient negative counter, and the group must stay usable.
#[test]
fn negative_counter_does_not_strand_a_waiter() {
    quiet_panics(&[NEGATIVE]);
    let ex = explore(|| {
        let wg = Arc::new(WaitGroup::new());
        let waiter = {
            let wg = Arc::clone(&wg);
            thread::spawn(move || wg.wait())
        };
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wg.done()))
            .expect_err("done on a zero counter must panic");
        assert_eq!(panic_message(&*err), NEGATIVE);
        waiter.join().unwrap();
        assert_eq!(wg.count(), 0);
        assert_eq!(wg.waiters(), 0);
        wg.add(1);
        wg.done();
        wg.wait();
        [""]
    });
    assert!(ex.runs > 1, "model did not explore: {ex:?}");
}

/// The last legal `done` is releasing a waiter while a `done` too many (caught) drives the
/// counter negative: exactly one of the two `done`s panics, with the negative-counter message
/// (which one depends on the order), and the waiter is released either way.
#[test]
fn negative_counter_during_release() {
    quiet_panics(&[NEGATIVE]);
    let ex = explore(|| {
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let waiter = {
            let wg = Arc::clone(&wg);
            thread::spawn(move || wg.wait())
        };
        while wg.waiters() == 0 {
            thread::yield_now();
        }
        // Spawned only now, so that both `done`s find the waiter registered.
        let task = {
            let wg = Arc::clone(&wg);
            thread::spawn(move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wg.done()))
                    .err()
                    .map(|e| panic_message(&*e).to_owned())
            })
        };
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wg.done()))
            .err()
            .map(|e| panic_message(&*e).to_owned());
        let theirs = task.join().unwrap();
        waiter.join().unwrap();
        let panics: Vec<&String> = mine.iter().chain(theirs.iter()).collect();
        assert_eq!(panics.len(), 1, "exactly one done is too many: {panics:?}");
        assert_eq!(panics[0], NEGATIVE);
        assert_eq!(wg.count(), 0);
        assert_eq!(wg.waiters(), 0);
        wg.add(1);
        wg.done();
        [if theirs.is_some() {
            "the task's done was the one too many"
        } else {
            "the main thread's done was the one too many"
        }]
    });
    ex.assert_saw(&[
        "the task's done was the one too many",
        "the main thread's done was the one too many",
    ]);
}
