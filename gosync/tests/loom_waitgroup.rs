//! Loom models of `WaitGroup`: add/done/wait, several waiters, reuse across rounds.
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_waitgroup`
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use gosync::WaitGroup;

/// Two tasks finish; `wait` returns only after both, and sees their (relaxed) writes.
#[test]
fn wait_sees_every_done() {
    loom::model(|| {
        let wg = Arc::new(WaitGroup::new());
        let data = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        wg.add(2);
        let tasks: Vec<_> = (0..2)
            .map(|i| {
                let (wg, data) = (Arc::clone(&wg), Arc::clone(&data));
                thread::spawn(move || {
                    data[i].store(i + 1, Ordering::Relaxed);
                    wg.done();
                })
            })
            .collect();
        wg.wait();
        assert_eq!(data[0].load(Ordering::Relaxed), 1);
        assert_eq!(data[1].load(Ordering::Relaxed), 2);
        assert_eq!(wg.count(), 0);
        for t in tasks {
            t.join().unwrap();
        }
    });
}

/// Two waiters, one task: both waiters are released (no lost wake-up), none early.
#[test]
fn every_waiter_is_released() {
    loom::model(|| {
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
                wg.done();
            })
        };
        wg.wait();
        assert_eq!(flag.load(Ordering::Relaxed), 1, "released before done");
        waiter.join().unwrap();
        worker.join().unwrap();
        assert_eq!(wg.waiters(), 0);
    });
}

/// Reuse: a second round on the same group after the first wait returned.
#[test]
fn reusable_after_wait_returned() {
    loom::model(|| {
        let wg = Arc::new(WaitGroup::new());
        let hits = Arc::new(AtomicUsize::new(0));
        for round in 1..=2 {
            wg.add(1);
            let (w, h) = (Arc::clone(&wg), Arc::clone(&hits));
            let task = thread::spawn(move || {
                h.fetch_add(1, Ordering::Relaxed);
                w.done();
            });
            wg.wait();
            assert_eq!(hits.load(Ordering::Relaxed), round);
            task.join().unwrap();
        }
    });
}
