//! Loom models of the RwMutex reader/writer handshake: exclusion, a writer draining readers,
//! readers queued behind a writer, and the withdrawal of timed-out readers and writers (the fake
//! clock makes deadlines pass).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_rwmutex`
#![cfg(loom)]

use std::time::Duration;

use gosync::{loom_clock, RwMutex};
use loom::sync::Arc;
use loom::thread;

fn assert_clean<T>(m: &RwMutex<T>) {
    assert_eq!(m.readers(), 0, "readers left");
    assert!(!m.is_write_locked(), "writer left");
    assert!(m.try_write().is_some(), "lock not free");
}

/// A writer and a reader; loom's cell tracking checks they never overlap.
#[test]
fn writer_and_reader_exclude() {
    loom::model(|| {
        loom_clock::reset();
        let m = Arc::new(RwMutex::new(0u32));
        let m2 = Arc::clone(&m);
        let w = thread::spawn(move || *m2.write() += 1);
        let seen = *m.read();
        assert!(seen <= 1);
        w.join().unwrap();
        assert_eq!(*m.read(), 1);
        assert_clean(&m);
    });
}

/// A reader is inside when a writer announces itself; the writer waits for it (the last reader
/// out wakes the writer) and a second reader queues behind the writer.
#[test]
fn writer_drains_readers_and_queues_new_ones() {
    loom::model(|| {
        loom_clock::reset();
        let m = Arc::new(RwMutex::new(0u32));
        let r = m.read();
        let m2 = Arc::clone(&m);
        let w = thread::spawn(move || *m2.write() = 7);
        let m3 = Arc::clone(&m);
        let late = thread::spawn(move || *m3.read());
        assert_eq!(*r, 0);
        drop(r);
        w.join().unwrap();
        let v = late.join().unwrap();
        assert!(v == 0 || v == 7);
        assert_clean(&m);
    });
}

/// A reader times out behind a writer (or gets in if the writer leaves first): either way the
/// lock ends clean and no phantom reader is left for the writer's unlock.
#[test]
fn timed_reader_withdraws() {
    loom::model(|| {
        loom_clock::reset();
        let m = Arc::new(RwMutex::new(0u32));
        let g = m.write();
        let m2 = Arc::clone(&m);
        let r = thread::spawn(move || m2.try_read_for(Duration::from_millis(1)).map(|g| *g));
        loom_clock::advance(Duration::from_millis(5));
        drop(g);
        let got = r.join().unwrap();
        assert!(got.is_none() || got == Some(0));
        assert_clean(&m);
    });
}

/// A writer times out while a reader is inside: it withdraws (cancelling its epoch), or the
/// reader leaves first and the writer gets the lock. The lock ends clean either way.
#[test]
fn timed_writer_withdraws() {
    loom::model(|| {
        loom_clock::reset();
        let m = Arc::new(RwMutex::new(0u32));
        let r = m.read();
        let m2 = Arc::clone(&m);
        let w = thread::spawn(move || {
            m2.try_write_for(Duration::from_millis(1))
                .map(|mut g| *g += 1)
                .is_some()
        });
        loom_clock::advance(Duration::from_millis(5));
        drop(r);
        let got = w.join().unwrap();
        assert_eq!(*m.read(), u32::from(got));
        assert_clean(&m);
    });
}
