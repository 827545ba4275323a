//! The Rust-style map API (compute/update, entry, retain, iterators, capacity, Extend,
//! FromIterator, bounded TimedMap): proptest models against `HashMap`/`BTreeMap`, and
//! concurrent runs whose results are checked for linearizability.
#![cfg(not(loom))]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use gosync::map::{
    Entry, EvictionPolicy, ExpiryReason, RwMap, ShardedMap, SyncMap, TimedMap, TreeMap,
};
use proptest::prelude::*;

/// Keys: 21 short strings, so operations collide often.
fn key() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-d]{0,2}").unwrap()
}

// ---------------------------------------------------------------------------------------------
// SyncMap: compute / update / update_or_insert / retain / pin / extend / reserve
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum SyncOp {
    /// compute: absent → insert `v`; present → add `v` (wrapping), delete if the sum is even.
    Compute(String, u8),
    Update(String, u8),
    UpdateOrInsert(String, u8, u8),
    UpdateOrInsertWith(String, u8, u8),
    Store(String, u8),
    Delete(String),
    /// retain the entries whose value is not divisible by the modulus.
    Retain(u8),
    Extend(Vec<(String, u8)>),
    Reserve(u16),
    PinGet(String),
    Iterate,
}

fn sync_op() -> impl Strategy<Value = SyncOp> {
    let v = 0u8..8;
    prop_oneof![
        4 => (key(), v.clone()).prop_map(|(k, v)| SyncOp::Compute(k, v)),
        3 => (key(), v.clone()).prop_map(|(k, v)| SyncOp::Update(k, v)),
        3 => (key(), v.clone(), v.clone()).prop_map(|(k, a, b)| SyncOp::UpdateOrInsert(k, a, b)),
        2 => (key(), v.clone(), v.clone()).prop_map(|(k, a, b)| SyncOp::UpdateOrInsertWith(k, a, b)),
        3 => (key(), v.clone()).prop_map(|(k, v)| SyncOp::Store(k, v)),
        2 => key().prop_map(SyncOp::Delete),
        1 => (2u8..5).prop_map(SyncOp::Retain),
        1 => prop::collection::vec((key(), v.clone()), 0..5).prop_map(SyncOp::Extend),
        1 => (0u16..300).prop_map(SyncOp::Reserve),
        2 => key().prop_map(SyncOp::PinGet),
        1 => Just(SyncOp::Iterate),
    ]
}

fn compute_rule(cur: Option<u8>, v: u8) -> Option<u8> {
    match cur {
        None => Some(v),
        Some(c) => Some(c.wrapping_add(v)).filter(|s| s % 2 == 1),
    }
}

fn check_sync_ops(
    m: &SyncMap<String, u8>,
    ops: &[SyncOp],
) -> Result<HashMap<String, u8>, TestCaseError> {
    let mut model: HashMap<String, u8> = HashMap::new();
    for (step, op) in ops.iter().enumerate() {
        match op {
            SyncOp::Compute(k, v) => {
                let mut runs = 0;
                let got = m.compute(k.clone(), |cur| {
                    runs += 1;
                    compute_rule(cur.copied(), *v)
                });
                let want = compute_rule(model.get(k).copied(), *v);
                match want {
                    Some(w) => model.insert(k.clone(), w),
                    None => model.remove(k),
                };
                prop_assert_eq!(got, want, "step {}: {:?}", step, op);
                prop_assert_eq!(runs, 1, "uncontended: f runs once");
            }
            SyncOp::Update(k, v) => {
                let got = m.update(k.as_str(), |c| c.wrapping_add(*v));
                let want = model.get_mut(k).map(|c| {
                    *c = c.wrapping_add(*v);
                    *c
                });
                prop_assert_eq!(got, want, "step {}: {:?}", step, op);
            }
            SyncOp::UpdateOrInsert(k, add, init) | SyncOp::UpdateOrInsertWith(k, add, init) => {
                let got = if matches!(op, SyncOp::UpdateOrInsert(..)) {
                    m.update_or_insert(k.clone(), |c| c.wrapping_add(*add), *init)
                } else {
                    m.update_or_insert_with(k.clone(), |c| c.wrapping_add(*add), || *init)
                };
                let e = model.entry(k.clone()).or_insert(init.wrapping_sub(*add));
                *e = e.wrapping_add(*add);
                prop_assert_eq!(got, *e, "step {}: {:?}", step, op);
            }
            SyncOp::Store(k, v) => {
                m.store(k.clone(), *v);
                model.insert(k.clone(), *v);
            }
            SyncOp::Delete(k) => {
                m.delete(k.as_str());
                model.remove(k);
            }
            SyncOp::Retain(modulus) => {
                let mut seen = HashSet::new();
                m.retain(|k, v| {
                    assert!(seen.insert(k.clone()), "retain showed {k} twice");
                    v % modulus != 0
                });
                prop_assert_eq!(seen.len(), model.len());
                model.retain(|_, v| *v % modulus != 0);
            }
            SyncOp::Extend(pairs) => {
                let mut r = m;
                r.extend(pairs.iter().cloned());
                model.extend(pairs.iter().cloned());
            }
            SyncOp::Reserve(n) => {
                m.reserve(*n as usize);
                prop_assert!(
                    m.capacity() >= m.len() + *n as usize,
                    "capacity {} < len {} + {}",
                    m.capacity(),
                    m.len(),
                    n
                );
            }
            SyncOp::PinGet(k) => {
                let p = m.pin();
                prop_assert_eq!(p.get(k.as_str()), model.get(k));
                prop_assert_eq!(p.contains_key(k.as_str()), model.contains_key(k));
            }
            SyncOp::Iterate => {
                let p = m.pin();
                let got: HashMap<String, u8> = p.iter().map(|(k, v)| (k.clone(), *v)).collect();
                prop_assert_eq!(p.iter().count(), got.len(), "a key seen twice");
                prop_assert_eq!(&got, &model);
            }
        }
        prop_assert_eq!(m.len(), model.len(), "len after step {}: {:?}", step, op);
    }
    Ok(model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sync_map_compound_ops_match_a_hashmap(ops in prop::collection::vec(sync_op(), 0..60)) {
        // Many shards, and one shard (growth and tombstones on every path).
        for m in [SyncMap::new(), SyncMap::with_shards(1)] {
            let model = check_sync_ops(&m, &ops)?;
            let mut rest: Vec<(String, u8)> = m.into_iter().collect();
            rest.sort();
            let mut want: Vec<_> = model.into_iter().collect();
            want.sort();
            prop_assert_eq!(rest, want);
        }
    }
}

#[test]
fn sync_map_from_iter_extend_capacity() {
    let m: SyncMap<u32, u32> = (0..1000).map(|i| (i, i)).collect();
    assert_eq!(m.len(), 1000);
    assert!(m.capacity() >= 1000);
    let mut m2 = SyncMap::with_capacity(5000);
    assert!(m2.capacity() >= 5000, "with_capacity: {}", m2.capacity());
    m2.extend(m);
    assert_eq!(m2.len(), 1000);
    let mut all: Vec<_> = m2.into_iter().collect();
    all.sort_unstable();
    assert_eq!(all, (0..1000).map(|i| (i, i)).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------------
// Lock-based maps: entry / retain / iter / extend / reserve
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum LockOp {
    /// entry: or_insert(v), then add 1.
    EntryAdd(String, u8),
    /// entry: remove if present, else insert v.
    EntryToggle(String, u8),
    /// entry: and_modify(double).or_default()
    EntryModify(String),
    Set(String, u8),
    Retain(u8),
    Extend(Vec<(String, u8)>),
    Reserve(u16),
    Iterate,
}

fn lock_op() -> impl Strategy<Value = LockOp> {
    let v = 0u8..8;
    prop_oneof![
        4 => (key(), v.clone()).prop_map(|(k, v)| LockOp::EntryAdd(k, v)),
        3 => (key(), v.clone()).prop_map(|(k, v)| LockOp::EntryToggle(k, v)),
        2 => key().prop_map(LockOp::EntryModify),
        3 => (key(), v.clone()).prop_map(|(k, v)| LockOp::Set(k, v)),
        1 => (2u8..5).prop_map(LockOp::Retain),
        1 => prop::collection::vec((key(), v), 0..5).prop_map(LockOp::Extend),
        1 => (0u16..300).prop_map(LockOp::Reserve),
        1 => Just(LockOp::Iterate),
    ]
}

/// The model of a lock-based map's operations.
fn apply_model(model: &mut BTreeMap<String, u8>, op: &LockOp) -> Option<u8> {
    match op {
        LockOp::EntryAdd(k, v) => {
            let e = model.entry(k.clone()).or_insert(*v);
            *e = e.wrapping_add(1);
            Some(*e)
        }
        LockOp::EntryToggle(k, v) => match model.remove(k) {
            Some(old) => Some(old),
            None => {
                model.insert(k.clone(), *v);
                None
            }
        },
        LockOp::EntryModify(k) => {
            let e = model
                .entry(k.clone())
                .and_modify(|x| *x = x.wrapping_mul(2))
                .or_default();
            Some(*e)
        }
        LockOp::Set(k, v) => model.insert(k.clone(), *v),
        LockOp::Retain(m) => {
            model.retain(|_, v| *v % m != 0);
            None
        }
        LockOp::Extend(pairs) => {
            model.extend(pairs.iter().cloned());
            None
        }
        LockOp::Reserve(_) | LockOp::Iterate => None,
    }
}

/// What each lock-based map needs for the model test.
trait LockMap {
    fn entry_add(&self, k: &str, v: u8) -> Option<u8>;
    fn entry_toggle(&self, k: &str, v: u8) -> Option<u8>;
    fn entry_modify(&self, k: &str) -> Option<u8>;
    fn set(&self, k: &str, v: u8) -> Option<u8>;
    fn retain_not_divisible(&self, m: u8);
    fn extend_shared(&self, pairs: &[(String, u8)]);
    /// Reserves and returns (capacity, len), or `None` if the map has no capacity.
    fn reserve(&self, n: usize) -> Option<(usize, usize)>;
    fn contents(&self) -> Vec<(String, u8)>;
    fn len(&self) -> usize;
}

macro_rules! entry_common {
    () => {
        fn set(&self, k: &str, v: u8) -> Option<u8> {
            self.set(k.to_string(), v)
        }
        fn retain_not_divisible(&self, m: u8) {
            self.retain(|_, v| *v % m != 0)
        }
        fn extend_shared(&self, pairs: &[(String, u8)]) {
            let mut r = self;
            r.extend(pairs.iter().cloned());
        }
    };
}

impl LockMap for ShardedMap<String, u8> {
    fn entry_add(&self, k: &str, v: u8) -> Option<u8> {
        Some(self.entry(k.to_string(), |e| {
            let x = e.or_insert(v);
            *x = x.wrapping_add(1);
            *x
        }))
    }
    fn entry_toggle(&self, k: &str, v: u8) -> Option<u8> {
        self.entry(k.to_string(), |e| match e {
            Entry::Occupied(o) => Some(o.remove()),
            Entry::Vacant(va) => {
                va.insert(v);
                None
            }
        })
    }
    fn entry_modify(&self, k: &str) -> Option<u8> {
        Some(self.entry(k.to_string(), |e| {
            *e.and_modify(|x| *x = x.wrapping_mul(2)).or_default()
        }))
    }
    entry_common!();
    fn reserve(&self, n: usize) -> Option<(usize, usize)> {
        self.reserve(n);
        Some((self.capacity(), self.len()))
    }
    fn contents(&self) -> Vec<(String, u8)> {
        let v: Vec<_> = self.iter().collect();
        let set: HashSet<_> = v.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(set.len(), v.len(), "iter showed a key twice");
        v
    }
    fn len(&self) -> usize {
        self.len()
    }
}

impl LockMap for RwMap<String, u8> {
    fn entry_add(&self, k: &str, v: u8) -> Option<u8> {
        Some(self.entry(k.to_string(), |e| {
            let x = e.or_insert(v);
            *x = x.wrapping_add(1);
            *x
        }))
    }
    fn entry_toggle(&self, k: &str, v: u8) -> Option<u8> {
        use std::collections::hash_map::Entry as E;
        self.entry(k.to_string(), |e| match e {
            E::Occupied(o) => Some(o.remove()),
            E::Vacant(va) => {
                va.insert(v);
                None
            }
        })
    }
    fn entry_modify(&self, k: &str) -> Option<u8> {
        Some(self.entry(k.to_string(), |e| {
            *e.and_modify(|x| *x = x.wrapping_mul(2)).or_default()
        }))
    }
    entry_common!();
    fn reserve(&self, n: usize) -> Option<(usize, usize)> {
        self.reserve(n);
        Some((self.capacity(), self.len()))
    }
    fn contents(&self) -> Vec<(String, u8)> {
        self.iter().collect()
    }
    fn len(&self) -> usize {
        self.len()
    }
}

impl LockMap for TreeMap<String, u8> {
    fn entry_add(&self, k: &str, v: u8) -> Option<u8> {
        Some(self.entry(k.to_string(), |e| {
            let x = e.or_insert(v);
            *x = x.wrapping_add(1);
            *x
        }))
    }
    fn entry_toggle(&self, k: &str, v: u8) -> Option<u8> {
        use std::collections::btree_map::Entry as E;
        self.entry(k.to_string(), |e| match e {
            E::Occupied(o) => Some(o.remove()),
            E::Vacant(va) => {
                va.insert(v);
                None
            }
        })
    }
    fn entry_modify(&self, k: &str) -> Option<u8> {
        Some(self.entry(k.to_string(), |e| {
            *e.and_modify(|x| *x = x.wrapping_mul(2)).or_default()
        }))
    }
    fn set(&self, k: &str, v: u8) -> Option<u8> {
        self.insert(k.to_string(), v)
    }
    fn retain_not_divisible(&self, m: u8) {
        self.retain(|_, v| *v % m != 0)
    }
    fn extend_shared(&self, pairs: &[(String, u8)]) {
        let mut r = self;
        r.extend(pairs.iter().cloned());
    }
    fn reserve(&self, _: usize) -> Option<(usize, usize)> {
        None
    }
    fn contents(&self) -> Vec<(String, u8)> {
        let v: Vec<_> = self.iter().collect();
        assert!(v.windows(2).all(|w| w[0].0 < w[1].0), "iter in key order");
        v
    }
    fn len(&self) -> usize {
        self.len()
    }
}

fn check_lock_ops(m: &impl LockMap, ops: &[LockOp]) -> Result<(), TestCaseError> {
    let mut model: BTreeMap<String, u8> = BTreeMap::new();
    for (step, op) in ops.iter().enumerate() {
        let got = match op {
            LockOp::EntryAdd(k, v) => m.entry_add(k, *v),
            LockOp::EntryToggle(k, v) => m.entry_toggle(k, *v),
            LockOp::EntryModify(k) => m.entry_modify(k),
            LockOp::Set(k, v) => m.set(k, *v),
            LockOp::Retain(d) => {
                m.retain_not_divisible(*d);
                None
            }
            LockOp::Extend(pairs) => {
                m.extend_shared(pairs);
                None
            }
            LockOp::Reserve(n) => {
                if let Some((cap, len)) = m.reserve(*n as usize) {
                    prop_assert!(
                        cap >= len + *n as usize,
                        "capacity {} < {} + {}",
                        cap,
                        len,
                        n
                    );
                }
                None
            }
            LockOp::Iterate => {
                let mut got = m.contents();
                got.sort();
                let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
                prop_assert_eq!(got, want, "step {}", step);
                None
            }
        };
        let want = apply_model(&mut model, op);
        prop_assert_eq!(got, want, "step {}: {:?}", step, op);
        prop_assert_eq!(m.len(), model.len(), "len after step {}", step);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn sharded_map_entry_ops_match_a_btreemap(ops in prop::collection::vec(lock_op(), 0..60)) {
        check_lock_ops(&ShardedMap::<String, u8>::with_shards(4), &ops)?;
    }

    #[test]
    fn rw_map_entry_ops_match_a_btreemap(ops in prop::collection::vec(lock_op(), 0..60)) {
        check_lock_ops(&RwMap::<String, u8>::new(), &ops)?;
    }

    #[test]
    fn tree_map_entry_ops_match_a_btreemap(ops in prop::collection::vec(lock_op(), 0..60)) {
        check_lock_ops(&TreeMap::<String, u8>::new(), &ops)?;
    }
}

#[test]
fn lock_maps_from_iter_into_iter_and_capacity() {
    let pairs: Vec<(u32, u32)> = (0..500).map(|i| (i, i * 2)).collect();
    let sharded: ShardedMap<u32, u32> = pairs.iter().copied().collect();
    let rw: RwMap<u32, u32> = pairs.iter().copied().collect();
    let tree: TreeMap<u32, u32> = pairs.iter().copied().collect();
    assert!(ShardedMap::<u32, u32>::with_capacity(1000).capacity() >= 1000);
    assert!(RwMap::<u32, u32>::with_capacity(1000).capacity() >= 1000);
    let mut a: Vec<_> = sharded.into_iter().collect();
    let mut b: Vec<_> = rw.into_iter().collect();
    let c: Vec<_> = tree.into_iter().collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, pairs);
    assert_eq!(b, pairs);
    assert_eq!(c, pairs);
}

// ---------------------------------------------------------------------------------------------
// Linearizability of the atomic read-modify-writes under 4 threads
// ---------------------------------------------------------------------------------------------

/// One increment: the value it produced and when it ran (nanoseconds since the test began).
#[derive(Clone, Copy, Debug)]
struct Op {
    start: u64,
    end: u64,
    ret: u64,
}

/// An increment history of one counter is linearizable iff the returned values are exactly
/// 1..=n (each increment saw a distinct predecessor: no lost update) and real time is
/// respected: if `a` ended before `b` started, then `a` returned less than `b`.
fn check_counter_history(what: &str, mut ops: Vec<Op>) {
    ops.sort_by_key(|o| o.ret);
    for (i, o) in ops.iter().enumerate() {
        assert_eq!(
            o.ret,
            i as u64 + 1,
            "{what}: returned values are not 1..=n (lost or duplicated update)"
        );
    }
    // Walking down from the largest value, remember the earliest end among larger values.
    let mut min_end_above = u64::MAX;
    for o in ops.iter().rev() {
        assert!(
            o.start <= min_end_above,
            "{what}: an increment that returned more finished before the one returning {} began",
            o.ret
        );
        min_end_above = min_end_above.min(o.end);
    }
}

/// Runs `per_thread` increments on each of 4 threads, on keys `0..keys` in turn, with
/// `incr(key)` returning the new value; checks each key's history.
fn linearizable_increments(what: &str, keys: u64, incr: impl Fn(u64) -> u64 + Sync) {
    const THREADS: usize = 4;
    let per_thread: u64 = if cfg!(debug_assertions) {
        2_000
    } else {
        20_000
    };
    let t0 = Instant::now();
    let now = || t0.elapsed().as_nanos() as u64;
    let barrier = Barrier::new(THREADS);
    let histories: Vec<Vec<(u64, Op)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS as u64)
            .map(|t| {
                let (incr, barrier) = (&incr, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    (0..per_thread)
                        .map(|i| {
                            let k = (i + t) % keys;
                            let start = now();
                            let ret = incr(k);
                            (
                                k,
                                Op {
                                    start,
                                    end: now(),
                                    ret,
                                },
                            )
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut by_key: HashMap<u64, Vec<Op>> = HashMap::new();
    for (k, op) in histories.into_iter().flatten() {
        by_key.entry(k).or_default().push(op);
    }
    assert_eq!(by_key.len() as u64, keys);
    for (k, ops) in by_key {
        check_counter_history(&format!("{what}, key {k}"), ops);
    }
}

/// Yields now and then inside an update closure, so that other threads get to run between an
/// update's read and its publication (on 2 cores that window is otherwise rarely hit).
fn widen(v: u64) -> u64 {
    if v.is_multiple_of(3) {
        std::thread::yield_now();
    }
    v
}

#[test]
fn sync_map_compute_is_linearizable() {
    let m = SyncMap::new();
    linearizable_increments("SyncMap::compute", 3, |k| {
        m.compute(k, |v| Some(widen(v.map_or(1, |v| v + 1))))
            .unwrap()
    });
}

#[test]
fn sync_map_update_or_insert_is_linearizable() {
    let m = SyncMap::new();
    linearizable_increments("SyncMap::update_or_insert", 3, |k| {
        m.update_or_insert(k, |v| widen(v + 1), 1)
    });
}

#[test]
fn sync_map_update_is_linearizable_with_concurrent_other_writes() {
    // Counters 0..3 are updated; other keys churn (store + delete) in the same shards, and a
    // reader pins and iterates, so the updates race with growth and tombstones.
    let m = Arc::new(SyncMap::new());
    for k in 0..3u64 {
        m.store(k, 0u64);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (m, stop) = (Arc::clone(&m), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 100u64;
            while !stop.load(Ordering::Relaxed) {
                m.store(i, i);
                m.delete(&(i - 50).max(100));
                let p = m.pin();
                let n = p.iter().count();
                assert!(n >= 3, "pinned iteration lost a counter: saw {n} entries");
                i += 1;
            }
        })
    };
    linearizable_increments("SyncMap::update", 3, |k| {
        m.update(&k, |v| widen(v + 1))
            .expect("counters are never deleted")
    });
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
}

#[test]
fn sharded_map_entry_is_linearizable() {
    let m = ShardedMap::with_shards(2);
    linearizable_increments("ShardedMap::entry", 3, |k| {
        m.entry(k, |e| {
            let v = e.or_insert(0);
            *v += 1;
            widen(*v)
        })
    });
}

#[test]
fn rw_map_and_tree_map_entry_are_linearizable() {
    let rw = RwMap::new();
    linearizable_increments("RwMap::entry", 3, |k| {
        rw.entry(k, |e| {
            let v = e.or_insert(0);
            *v += 1;
            widen(*v)
        })
    });
    let tree = TreeMap::new();
    linearizable_increments("TreeMap::entry", 3, |k| {
        tree.entry(k, |e| {
            let v = e.or_insert(0);
            *v += 1;
            widen(*v)
        })
    });
}

#[test]
fn the_counter_check_catches_a_lost_update() {
    // A non-atomic read-then-store increment on the same map loses updates under 4 threads:
    // the checker must say so (otherwise the checks above prove nothing).
    let m = SyncMap::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        linearizable_increments("load+store", 1, |k| {
            let v = m.load(&k).unwrap_or(0) + 1;
            std::thread::yield_now();
            m.store(k, v);
            v
        })
    }));
    assert!(
        r.is_err(),
        "a racy increment passed the linearizability check"
    );
}

#[test]
fn pinned_iteration_sees_each_key_at_most_once_and_every_stable_key() {
    let m = Arc::new(SyncMap::new());
    for k in 0..1_000u32 {
        m.store(k, k);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (m, stop) = (Arc::clone(&m), Arc::clone(&stop));
        std::thread::spawn(move || {
            // Keys 500.. are deleted and reinserted (and new ones added) over and over.
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let k = 500 + i % 500;
                m.delete(&k);
                m.store(k, k);
                m.store(10_000 + i % 4_000, 0);
                i += 1;
            }
        })
    };
    for _ in 0..50 {
        let p = m.pin();
        let mut seen = HashSet::new();
        for (k, _) in p.iter() {
            assert!(seen.insert(*k), "key {k} seen twice");
        }
        for k in 0..500u32 {
            assert!(seen.contains(&k), "stable key {k} not seen");
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Bounded TimedMap: an exact LRU model, and TinyLFU's accounting
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum CacheOp {
    Insert(u8, u16),
    Get(u8),
    Remove(u8),
}

fn cache_op() -> impl Strategy<Value = CacheOp> {
    prop_oneof![
        3 => (0u8..12, any::<u16>()).prop_map(|(k, v)| CacheOp::Insert(k, v)),
        3 => (0u8..12).prop_map(CacheOp::Get),
        1 => (0u8..12).prop_map(CacheOp::Remove),
    ]
}

type Reports = Arc<Mutex<Vec<(u8, u16, ExpiryReason)>>>;

fn bounded(cap: usize, policy: EvictionPolicy) -> (TimedMap<u8, u16>, Reports) {
    let reports: Reports = Arc::default();
    let sink = Arc::clone(&reports);
    let m = TimedMap::builder()
        .max_capacity(cap)
        .shards(1)
        .eviction_policy(policy)
        .eviction_listener(move |k: &u8, v: &u16, why| sink.lock().unwrap().push((*k, *v, why)))
        .build();
    (m, reports)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// With one shard, `EvictionPolicy::Lru` is exactly an LRU cache.
    #[test]
    fn bounded_lru_matches_an_lru_model(cap in 1usize..6, ops in prop::collection::vec(cache_op(), 0..80)) {
        let (m, reports) = bounded(cap, EvictionPolicy::Lru);
        let mut lru: VecDeque<(u8, u16)> = VecDeque::new(); // front = most recent
        for (step, op) in ops.iter().enumerate() {
            reports.lock().unwrap().clear();
            let mut want_reports = Vec::new();
            match *op {
                CacheOp::Insert(k, v) => {
                    let got = m.insert(k, v, Duration::from_secs(3600));
                    let old = lru.iter().position(|e| e.0 == k).map(|i| lru.remove(i).unwrap().1);
                    if let Some(o) = old {
                        want_reports.push((k, o, ExpiryReason::Replaced));
                    }
                    lru.push_front((k, v));
                    if lru.len() > cap {
                        let (ek, ev) = lru.pop_back().unwrap();
                        want_reports.push((ek, ev, ExpiryReason::Evicted));
                    }
                    prop_assert_eq!(got, old, "step {}", step);
                }
                CacheOp::Get(k) => {
                    let want = lru.iter().position(|e| e.0 == k).map(|i| {
                        let e = lru.remove(i).unwrap();
                        lru.push_front(e);
                        e.1
                    });
                    prop_assert_eq!(m.get(&k), want, "step {}", step);
                }
                CacheOp::Remove(k) => {
                    let want = lru.iter().position(|e| e.0 == k).map(|i| lru.remove(i).unwrap().1);
                    if let Some(v) = want {
                        want_reports.push((k, v, ExpiryReason::Removed));
                    }
                    prop_assert_eq!(m.remove(&k), want, "step {}", step);
                }
            }
            prop_assert_eq!(&*reports.lock().unwrap(), &want_reports, "reports at step {}", step);
            prop_assert_eq!(m.len(), lru.len());
        }
    }

    /// TinyLFU: whatever it evicts, the map holds at most `cap` entries, a fresh insert is
    /// readable at once, and every entry is either present with its last value or was
    /// reported leaving exactly once.
    #[test]
    fn bounded_tiny_lfu_accounts_for_every_entry(cap in 1usize..6, ops in prop::collection::vec(cache_op(), 0..120)) {
        let (m, reports) = bounded(cap, EvictionPolicy::TinyLfu);
        let mut model: HashMap<u8, u16> = HashMap::new();
        for (step, op) in ops.iter().enumerate() {
            match *op {
                CacheOp::Insert(k, v) => {
                    let got = m.insert(k, v, Duration::from_secs(3600));
                    prop_assert_eq!(got, model.insert(k, v), "step {}", step);
                    prop_assert_eq!(m.get(&k), Some(v), "fresh insert visible, step {}", step);
                }
                CacheOp::Get(k) => {
                    prop_assert_eq!(m.get(&k), model.get(&k).copied(), "step {}", step);
                }
                CacheOp::Remove(k) => {
                    prop_assert_eq!(m.remove(&k), model.remove(&k), "step {}", step);
                }
            }
            for (k, v, why) in reports.lock().unwrap().drain(..) {
                match why {
                    ExpiryReason::Evicted => {
                        prop_assert_eq!(model.remove(&k), Some(v), "evicted {} twice or wrongly", k);
                    }
                    ExpiryReason::Replaced | ExpiryReason::Removed => {}
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            prop_assert!(m.len() <= cap);
            prop_assert_eq!(m.len(), model.len(), "step {}", step);
            for k in model.keys() {
                prop_assert!(m.contains_key(k), "model key {} missing", k);
            }
        }
    }
}
