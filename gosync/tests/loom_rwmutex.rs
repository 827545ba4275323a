//! Loom models of the RwMutex reader/writer handshake: exclusion, a writer draining readers,
//! readers queued behind a writer, and the withdrawal of timed-out readers and writers (the fake
//! clock makes deadlines pass).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_rwmutex`
//!
//! Each model reports the outcomes it observed and asserts that every interesting one occurred
//! in some execution (see `support/loom.rs`): the reader before and after the writer, a writer
//! announced while a reader is inside, a timed waiter that timed out and one that got in, a
//! downgrade that lets a queued reader in while keeping the next writer out.
#![cfg(loom)]

#[path = "support/loom.rs"]
mod support;

use std::time::Duration;

use gosync::{loom_clock, RwMutex, RwMutexWriteGuard};
use loom::model::Builder;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use support::{explore, start, tally, Explored};

/// The most times the lock holder of a timed model yields, waiting for the timed thread to
/// finish, before it releases the lock anyway; the timed models run once for every patience
/// from 0 to this.
///
/// The timed thread spins (yielding, under loom) before it parks, and each of its yields hands
/// the CPU to the holder. A holder that released at once (patience 0, what these models did
/// first) always beat it: the deadline never passed while it was parked, and no execution
/// timed out. A holder that outwaits the spinning (18 yields, `sync/backoff.rs`) always lets it
/// time out. Patiences near the spin length make the release race the timeout, so sweeping
/// them covers both outcomes and the race between them, with room for the spinning to grow.
const PATIENCE: usize = 32;

/// Yields until `done` is set or `patience` runs out.
fn wait_a_little(done: &AtomicBool, patience: usize) {
    for _ in 0..patience {
        if done.load(Ordering::SeqCst) {
            return;
        }
        thread::yield_now();
    }
}

fn assert_clean<T>(m: &RwMutex<T>) {
    assert_eq!(m.readers(), 0, "readers left");
    assert!(!m.is_write_locked(), "writer left");
    assert!(m.try_write().is_some(), "lock not free");
}

/// A writer and a reader; loom's cell tracking checks they never overlap.
#[test]
fn writer_and_reader_exclude() {
    let ex = explore(|| {
        loom_clock::reset();
        let m = Arc::new(RwMutex::new(0u32));
        let flag = Arc::new(AtomicUsize::new(0));
        let w = {
            let (m, flag) = (Arc::clone(&m), Arc::clone(&flag));
            thread::spawn(move || {
                start(&flag);
                *m.write() += 1;
            })
        };
        start(&flag);
        let seen = *m.read();
        assert!(seen <= 1);
        w.join().unwrap();
        assert_eq!(*m.read(), 1);
        assert_clean(&m);
        [if seen == 1 {
            "read after the write"
        } else {
            "read before the write"
        }]
    });
    ex.assert_saw(&["read after the write", "read before the write"]);
}

/// A reader is inside when a writer announces itself; the writer waits for it (the last reader
/// out wakes the writer) and a second reader queues behind the writer.
#[test]
fn writer_drains_readers_and_queues_new_ones() {
    let ex = explore(|| {
        loom_clock::reset();
        let m = Arc::new(RwMutex::new(0u32));
        let r = m.read();
        let m2 = Arc::clone(&m);
        let w = thread::spawn(move || *m2.write() = 7);
        let m3 = Arc::clone(&m);
        let late = thread::spawn(move || *m3.read());
        assert_eq!(*r, 0);
        let announced = m.is_write_locked();
        drop(r);
        w.join().unwrap();
        let v = late.join().unwrap();
        assert!(v == 0 || v == 7);
        assert_clean(&m);
        [
            if announced {
                "writer announced while a reader was inside"
            } else {
                ""
            },
            if v == 7 {
                "late reader after the writer"
            } else {
                ""
            },
        ]
    });
    ex.assert_saw(&[
        "writer announced while a reader was inside",
        "late reader after the writer",
    ]);
}

/// A reader times out behind a writer (or gets in if the writer leaves first): either way the
/// lock ends clean and no phantom reader is left for the writer's unlock. Both outcomes must
/// occur (see [`PATIENCE`]).
#[test]
fn timed_reader_withdraws() {
    let mut ex = Explored::default();
    for patience in 0..=PATIENCE {
        ex.absorb(tally(Builder::new(), move || {
            loom_clock::reset();
            let m = Arc::new(RwMutex::new(0u32));
            let g = m.write();
            let done = Arc::new(AtomicBool::new(false));
            let r = {
                let (m, done) = (Arc::clone(&m), Arc::clone(&done));
                thread::spawn(move || {
                    let got = m.try_read_for(Duration::from_millis(1)).map(|g| *g);
                    done.store(true, Ordering::SeqCst);
                    got
                })
            };
            // Move the clock only once the reader has taken its deadline and queued: otherwise
            // its deadline lies past the advanced clock and it can never time out.
            while m.readers() == 0 {
                thread::yield_now();
            }
            loom_clock::advance(Duration::from_millis(5));
            wait_a_little(&done, patience);
            drop(g);
            let got = r.join().unwrap();
            assert!(got.is_none() || got == Some(0));
            assert_clean(&m);
            [if got.is_none() { "timed out" } else { "got in" }]
        }));
    }
    ex.print().assert_saw(&["timed out", "got in"]);
}

/// A writer times out while a reader is inside: it withdraws (cancelling its epoch), or the
/// reader leaves first and the writer gets the lock. The lock ends clean either way. Both
/// outcomes must occur (see [`PATIENCE`]).
#[test]
fn timed_writer_withdraws() {
    let mut ex = Explored::default();
    for patience in 0..=PATIENCE {
        ex.absorb(tally(Builder::new(), move || {
            loom_clock::reset();
            let m = Arc::new(RwMutex::new(0u32));
            let r = m.read();
            let done = Arc::new(AtomicBool::new(false));
            let w = {
                let (m, done) = (Arc::clone(&m), Arc::clone(&done));
                thread::spawn(move || {
                    let got = m
                        .try_write_for(Duration::from_millis(1))
                        .map(|mut g| *g += 1)
                        .is_some();
                    done.store(true, Ordering::SeqCst);
                    got
                })
            };
            // Move the clock only once the writer has taken its deadline and announced itself.
            while !m.is_write_locked() {
                thread::yield_now();
            }
            loom_clock::advance(Duration::from_millis(5));
            wait_a_little(&done, patience);
            drop(r);
            let got = w.join().unwrap();
            assert_eq!(*m.read(), u32::from(got));
            assert_clean(&m);
            [if got { "got the lock" } else { "timed out" }]
        }));
    }
    ex.print().assert_saw(&["timed out", "got the lock"]);
}

/// A writer downgrades to a read lock while a reader and a second writer wait behind it. The
/// reader may get in at once (it shares the lock with the downgraded guard); the second writer
/// must not get in before the downgraded guard is gone, and everything ends clean.
#[test]
fn downgrade_admits_readers_not_writers() {
    let ex = explore(|| {
        loom_clock::reset();
        let m = Arc::new(RwMutex::new(0u32));
        // Set while the downgraded read guard is alive.
        let shared = Arc::new(AtomicBool::new(false));
        let mut w = m.write();
        let reader = {
            let (m, shared) = (Arc::clone(&m), Arc::clone(&shared));
            thread::spawn(move || {
                let g = m.read();
                (*g, shared.load(Ordering::SeqCst))
            })
        };
        let writer = {
            let m = Arc::clone(&m);
            thread::spawn(move || *m.write() = 2)
        };
        *w = 1;
        let r = RwMutexWriteGuard::downgrade(w);
        shared.store(true, Ordering::SeqCst);
        thread::yield_now();
        // No writer can have got in while we hold the downgraded guard.
        assert_eq!(*r, 1);
        shared.store(false, Ordering::SeqCst);
        drop(r);
        let (seen, alongside) = reader.join().unwrap();
        writer.join().unwrap();
        assert!(seen == 1 || seen == 2, "reader saw {seen}");
        assert_eq!(*m.read(), 2);
        assert_clean(&m);
        [
            if alongside {
                "reader shared the lock with the downgraded guard"
            } else {
                ""
            },
            if seen == 2 {
                "reader after the second writer"
            } else {
                ""
            },
        ]
    });
    ex.assert_saw(&[
        "reader shared the lock with the downgraded guard",
        "reader after the second writer",
    ]);
}
