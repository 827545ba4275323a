//! Loom models of SyncMap's lock-free read path: a reader racing a writer that inserts,
//! replaces, deletes and grows the table must see either the old or the new value of a key,
//! never a torn node, a freed node, or a key that was present throughout as missing.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_syncmap`
//!
//! Each thread first touches the shared `start` counter and each model asserts that loom
//! explored the racing outcome (see `support/loom.rs` for why both are needed).
//!
//! Under loom, retired nodes and tables are kept until the map drops (see `map/reclaim.rs`),
//! so these models check the publication protocol, not seize.
#![cfg(loom)]

#[path = "support/loom.rs"]
mod support;

use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

use gosync::map::SyncMap;
use loom::sync::atomic::AtomicUsize;
use loom::sync::Arc;
use loom::thread;
use support::{explore, start};

/// Deterministic hashing: loom replays executions and needs the same probe sequences each time.
type Fixed = BuildHasherDefault<DefaultHasher>;

fn map() -> Map {
    SyncMap::with_shards_and_hasher(1, Fixed::default())
}

type Map = SyncMap<u64, u64, Fixed>;

/// One reader racing one writer on a map seeded with `seed`, explored by loom. `read` runs
/// in the model's main thread while `write` runs in a spawned one, and returns whether it
/// observed the writer's effect; `check` runs after the join. Asserts that loom explored more
/// than one execution, and that some executions observed the writer and some did not.
fn reader_vs_writer(
    seed: &'static [(u64, u64)],
    write: fn(&Map),
    read: fn(&Map) -> bool,
    check: fn(&Map),
) {
    explore(move || {
        let m = Arc::new(map());
        for &(k, v) in seed {
            m.store(k, v);
        }
        let flag = Arc::new(AtomicUsize::new(0));
        let w = {
            let (m, flag) = (Arc::clone(&m), Arc::clone(&flag));
            thread::spawn(move || {
                start(&flag);
                write(&m);
            })
        };
        start(&flag);
        let saw = read(&m);
        w.join().unwrap();
        check(&m);
        [if saw {
            "observed the writer"
        } else {
            "missed the writer"
        }]
    })
    .assert_saw(&["observed the writer", "missed the writer"]);
}

/// Reader vs. a writer that replaces and deletes: every load sees a value that was stored.
#[test]
fn load_races_replace_and_delete() {
    reader_vs_writer(
        &[(1, 10), (2, 20)],
        |m| {
            m.store(1, 11);
            m.delete(&2);
        },
        |m| {
            let a = m.load(&1);
            assert!(a == Some(10) || a == Some(11), "key 1: {a:?}");
            let b = m.load(&2);
            assert!(b.is_none() || b == Some(20), "key 2: {b:?}");
            a == Some(11)
        },
        |m| {
            assert_eq!(m.load(&1), Some(11));
            assert_eq!(m.load(&2), None);
            assert_eq!(m.len(), 1);
        },
    );
}

/// Reader vs. a writer whose inserts grow the shard's table (the minimum table under loom is 4
/// slots, grown at 3 entries): a key present throughout is never reported missing.
#[test]
fn load_races_growth() {
    reader_vs_writer(
        &[(7, 70), (8, 80)],
        |m| {
            m.store(9, 90); // third entry: the table grows
            m.store(10, 100);
        },
        |m| {
            let c = m.load(&9);
            assert!(c.is_none() || c == Some(90));
            assert_eq!(m.load(&7), Some(70));
            assert_eq!(m.load(&8), Some(80));
            c == Some(90)
        },
        |m| {
            assert_eq!(m.len(), 4);
            assert_eq!(m.load(&10), Some(100));
        },
    );
}

/// Reader vs. a deleter and re-inserter of the same key (a tombstone reused): the reader sees
/// the old value, the new one or nothing, never another key's value.
#[test]
fn load_races_delete_and_reinsert() {
    reader_vs_writer(
        &[(1, 10), (2, 20)],
        |m| {
            m.delete(&1);
            m.store(1, 12);
        },
        |m| {
            let a = m.load(&1);
            assert!(
                a.is_none() || a == Some(10) || a == Some(12),
                "key 1: {a:?}"
            );
            assert_eq!(m.load(&2), Some(20));
            a.is_none()
        },
        |m| {
            assert_eq!(m.load(&1), Some(12));
            assert_eq!(m.len(), 2);
        },
    );
}

/// Two writers on one shard plus a lock-free compare-and-swap check: exactly one CAS wins.
#[test]
fn compare_and_swap_is_exclusive() {
    explore(|| {
        let m = Arc::new(map());
        m.store(1, 0);
        let flag = Arc::new(AtomicUsize::new(0));
        let ts: Vec<_> = (1..=2u64)
            .map(|t| {
                let (m, flag) = (Arc::clone(&m), Arc::clone(&flag));
                thread::spawn(move || {
                    start(&flag);
                    m.compare_and_swap(&1, &0, t)
                })
            })
            .collect();
        let wins: Vec<bool> = ts.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(wins.iter().filter(|w| **w).count(), 1);
        let v = m.load(&1).unwrap();
        assert!(v == 1 || v == 2);
        [if wins[0] {
            "first thread won"
        } else {
            "second thread won"
        }]
    })
    .assert_saw(&["first thread won", "second thread won"]);
}

/// Two threads increment one key with `compute` (the first finds it absent): the closure runs
/// outside the lock, so a thread whose read went stale must retry; no update is lost and the
/// two results are 1 and 2.
#[test]
fn compute_loses_no_update() {
    explore(|| {
        let m = Arc::new(map());
        let flag = Arc::new(AtomicUsize::new(0));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let (m, flag) = (Arc::clone(&m), Arc::clone(&flag));
                thread::spawn(move || {
                    start(&flag);
                    let mut runs = 0;
                    let got = m.compute(1, |v| {
                        runs += 1;
                        Some(v.map_or(1, |v| v + 1))
                    });
                    (got.unwrap(), runs)
                })
            })
            .collect();
        let results: Vec<(u64, usize)> = ts.into_iter().map(|t| t.join().unwrap()).collect();
        let mut got: Vec<u64> = results.iter().map(|r| r.0).collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2], "lost or duplicated update");
        assert_eq!(m.load(&1), Some(2));
        [if results.iter().any(|r| r.1 > 1) {
            "a compute retried"
        } else {
            "no retry"
        }]
    })
    .assert_saw(&["a compute retried", "no retry"]);
}
