//! Loom models of SyncMap's lock-free read path: a reader racing a writer that inserts,
//! replaces, deletes and grows the table must see either the old or the new value of a key,
//! never a torn node, a freed node, or a key that was present throughout as missing.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_syncmap`
//!
//! Limitation: with loom 0.7 these models finish in very few iterations (`LOOM_LOG=info`
//! reports them): loom schedules the spawned writer first and lets the reader observe either
//! the old or the new values of the unsynchronised atomics, so the interleavings where the
//! reader runs in the middle of a growth are not all enumerated. The assertions still hold in
//! every execution loom does run (weak-memory reads included); a finer model is future work.
#![cfg(loom)]

use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

use gosync::map::SyncMap;
use loom::sync::Arc;
use loom::thread;

/// Deterministic hashing: loom replays executions and needs the same probe sequences each time.
type Fixed = BuildHasherDefault<DefaultHasher>;

fn map() -> SyncMap<u64, u64, Fixed> {
    SyncMap::with_shards_and_hasher(1, Fixed::default())
}

/// Reader vs. a writer that replaces and deletes: every load sees a value that was stored.
#[test]
fn load_races_replace_and_delete() {
    loom::model(|| {
        let m = Arc::new(map());
        m.store(1, 10);
        m.store(2, 20);
        let w = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                m.store(1, 11);
                m.delete(&2);
            })
        };
        let a = m.load(&1);
        assert!(a == Some(10) || a == Some(11), "key 1: {a:?}");
        let b = m.load(&2);
        assert!(b.is_none() || b == Some(20), "key 2: {b:?}");
        w.join().unwrap();
        assert_eq!(m.load(&1), Some(11));
        assert_eq!(m.load(&2), None);
        assert_eq!(m.len(), 1);
    });
}

/// Reader vs. a writer whose inserts grow the shard's table (the minimum table under loom is 4
/// slots, grown at 3 entries): a key present throughout is never reported missing.
#[test]
fn load_races_growth() {
    loom::model(|| {
        let m = Arc::new(map());
        m.store(7, 70);
        m.store(8, 80);
        let w = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                m.store(9, 90); // third entry: the table grows
                m.store(10, 100);
            })
        };
        assert_eq!(m.load(&7), Some(70));
        assert_eq!(m.load(&8), Some(80));
        let c = m.load(&9);
        assert!(c.is_none() || c == Some(90));
        w.join().unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m.load(&10), Some(100));
    });
}

/// Two writers on one shard plus a lock-free compare-and-swap check: exactly one CAS wins.
#[test]
fn compare_and_swap_is_exclusive() {
    loom::model(|| {
        let m = Arc::new(map());
        m.store(1, 0);
        let ts: Vec<_> = (1..=2u64)
            .map(|t| {
                let m = Arc::clone(&m);
                thread::spawn(move || m.compare_and_swap(&1, &0, t))
            })
            .collect();
        let wins: usize = ts.into_iter().map(|t| usize::from(t.join().unwrap())).sum();
        assert_eq!(wins, 1);
        let v = m.load(&1).unwrap();
        assert!(v == 1 || v == 2);
    });
}
