//! Go's `sync.Map` tests, ported: the quick-check model test (`TestMapMatchesRWMutex`, made
//! stronger as go-sync.md §12 suggests), `TestConcurrentRange`, `TestMapRangeNestedCall`,
//! `TestIssue40999`, `TestCompareAndSwap_NonExistingKey`, `TestConcurrentClear`, and
//! HashTrieMap's concurrent CAS/CompareAndDelete checks. The same model test runs against
//! `ShardedMap`, `RwMap` and `TreeMap` with the operations each one has.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use gosync::map::{RwMap, ShardedMap, SyncMap, TreeMap};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// The model test
// ---------------------------------------------------------------------------------------------

/// Keys: strings of length 0..=2 over "abcd" (21 keys), so operations collide often, like Go's
/// 0..3-letter keys but dense enough for 50 calls to hit the same key repeatedly.
fn key() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-d]{0,2}").unwrap()
}

/// The expected value of a compare-and-swap: usually one that was stored before (so the CAS
/// can succeed), sometimes an arbitrary one.
#[derive(Debug, Clone)]
enum Old {
    Stored(usize),
    Any(u8),
}

#[derive(Debug, Clone)]
enum Op {
    Load(String),
    Store(String, u8),
    LoadOrStore(String, u8),
    LoadOrStoreWith(String, u8),
    LoadAndDelete(String),
    Delete(String),
    Swap(String, u8),
    CompareAndSwap(String, Old, u8),
    CompareAndDelete(String, Old),
    Clear,
    Len,
    /// Range that stops after this many visits (at least one).
    RangeStop(usize),
    /// Range whose callback mutates the key it visits: deletes it if `v % 3 == 0`, else
    /// stores `v + 100` (wrapping). The outcome is the same in any visit order, provided each
    /// key is visited exactly once.
    RangeMutate,
}

fn old() -> impl Strategy<Value = Old> {
    prop_oneof![3 => any::<usize>().prop_map(Old::Stored), 1 => any::<u8>().prop_map(Old::Any)]
}

fn op() -> impl Strategy<Value = Op> {
    let v = 0u8..6;
    prop_oneof![
        3 => key().prop_map(Op::Load),
        3 => (key(), v.clone()).prop_map(|(k, v)| Op::Store(k, v)),
        2 => (key(), v.clone()).prop_map(|(k, v)| Op::LoadOrStore(k, v)),
        1 => (key(), v.clone()).prop_map(|(k, v)| Op::LoadOrStoreWith(k, v)),
        2 => key().prop_map(Op::LoadAndDelete),
        2 => key().prop_map(Op::Delete),
        2 => (key(), v.clone()).prop_map(|(k, v)| Op::Swap(k, v)),
        3 => (key(), old(), v.clone()).prop_map(|(k, o, v)| Op::CompareAndSwap(k, o, v)),
        2 => (key(), old()).prop_map(|(k, o)| Op::CompareAndDelete(k, o)),
        1 => Just(Op::Clear),
        1 => Just(Op::Len),
        1 => (1usize..6).prop_map(Op::RangeStop),
        1 => Just(Op::RangeMutate),
    ]
}

/// What an operation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Unit,
    Value(Option<u8>),
    Loaded(u8, bool),
    Flag(bool),
    Count(usize),
}

fn pick(o: &Old, history: &[u8]) -> u8 {
    match *o {
        Old::Stored(i) if !history.is_empty() => history[i % history.len()],
        Old::Stored(_) => 0,
        Old::Any(v) => v,
    }
}

fn mutate(v: u8) -> Option<u8> {
    (!v.is_multiple_of(3)).then(|| v.wrapping_add(100))
}

/// The reference: a `Mutex<HashMap>` (Go's `RWMutexMap` oracle).
fn apply_reference(ops: &[Op]) -> (Vec<Out>, HashMap<String, u8>) {
    let m: Mutex<HashMap<String, u8>> = Mutex::new(HashMap::new());
    let mut history = Vec::new();
    let mut out = Vec::new();
    for op in ops {
        let mut g = m.lock().unwrap();
        out.push(match op {
            Op::Load(k) => Out::Value(g.get(k).copied()),
            Op::Store(k, v) => {
                history.push(*v);
                g.insert(k.clone(), *v);
                Out::Unit
            }
            Op::LoadOrStore(k, v) | Op::LoadOrStoreWith(k, v) => match g.get(k) {
                Some(&e) => Out::Loaded(e, true),
                None => {
                    history.push(*v);
                    g.insert(k.clone(), *v);
                    Out::Loaded(*v, false)
                }
            },
            Op::LoadAndDelete(k) => Out::Value(g.remove(k)),
            Op::Delete(k) => {
                g.remove(k);
                Out::Unit
            }
            Op::Swap(k, v) => {
                history.push(*v);
                Out::Value(g.insert(k.clone(), *v))
            }
            Op::CompareAndSwap(k, o, v) => {
                let o = pick(o, &history);
                let hit = g.get(k) == Some(&o);
                if hit {
                    history.push(*v);
                    g.insert(k.clone(), *v);
                }
                Out::Flag(hit)
            }
            Op::CompareAndDelete(k, o) => {
                let o = pick(o, &history);
                let hit = g.get(k) == Some(&o);
                if hit {
                    g.remove(k);
                }
                Out::Flag(hit)
            }
            Op::Clear => {
                g.clear();
                Out::Unit
            }
            Op::Len => Out::Count(g.len()),
            Op::RangeStop(n) => Out::Count((*n).min(g.len())),
            Op::RangeMutate => {
                let snapshot: Vec<(String, u8)> = g.iter().map(|(k, v)| (k.clone(), *v)).collect();
                for (k, v) in snapshot {
                    match mutate(v) {
                        // (not added to `history`: visit order differs between the maps)
                        Some(nv) => {
                            g.insert(k, nv);
                        }
                        None => {
                            g.remove(&k);
                        }
                    }
                }
                Out::Unit
            }
        });
    }
    let fin = m.into_inner().unwrap();
    (out, fin)
}

fn apply_sync_map(m: &SyncMap<String, u8>, ops: &[Op]) -> (Vec<Out>, HashMap<String, u8>) {
    let mut history = Vec::new();
    let mut out = Vec::new();
    for op in ops {
        out.push(match op {
            Op::Load(k) => Out::Value(m.load(k.as_str())),
            Op::Store(k, v) => {
                history.push(*v);
                m.store(k.clone(), *v);
                Out::Unit
            }
            Op::LoadOrStore(k, v) => {
                let (got, loaded) = m.load_or_store(k.clone(), *v);
                if !loaded {
                    history.push(*v);
                }
                Out::Loaded(got, loaded)
            }
            Op::LoadOrStoreWith(k, v) => {
                let mut called = false;
                let (got, loaded) = m.load_or_store_with(k.clone(), || {
                    called = true;
                    *v
                });
                assert_eq!(
                    called, !loaded,
                    "load_or_store_with must build the value iff it stores"
                );
                if !loaded {
                    history.push(*v);
                }
                Out::Loaded(got, loaded)
            }
            Op::LoadAndDelete(k) => Out::Value(m.load_and_delete(k.as_str())),
            Op::Delete(k) => {
                m.delete(k.as_str());
                Out::Unit
            }
            Op::Swap(k, v) => {
                history.push(*v);
                Out::Value(m.swap(k.clone(), *v))
            }
            Op::CompareAndSwap(k, o, v) => {
                let o = pick(o, &history);
                let hit = m.compare_and_swap(k.as_str(), &o, *v);
                if hit {
                    history.push(*v);
                }
                Out::Flag(hit)
            }
            Op::CompareAndDelete(k, o) => {
                let o = pick(o, &history);
                Out::Flag(m.compare_and_delete(k.as_str(), &o))
            }
            Op::Clear => {
                m.clear();
                Out::Unit
            }
            Op::Len => Out::Count(m.len()),
            Op::RangeStop(n) => {
                let mut seen = 0;
                m.range(|_, _| {
                    seen += 1;
                    seen < *n
                });
                Out::Count(seen)
            }
            Op::RangeMutate => {
                m.range(|k, v| {
                    match mutate(*v) {
                        Some(nv) => m.store(k.clone(), nv),
                        None => m.delete(k.as_str()),
                    }
                    true
                });
                Out::Unit
            }
        });
    }
    let mut fin = HashMap::new();
    m.range(|k, v| {
        assert!(
            fin.insert(k.clone(), *v).is_none(),
            "range visited {k:?} twice"
        );
        true
    });
    assert_eq!(m.len(), fin.len(), "len() disagrees with range");
    (out, fin)
}

proptest! {
    // Go runs 100 quick-check trials; each case here runs the sequence on two maps.
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Go's `TestMapMatchesRWMutex`: same results and same final contents as the reference.
    #[test]
    fn sync_map_matches_mutex_hashmap(ops in prop::collection::vec(op(), 0..50)) {
        let expected = apply_reference(&ops);
        // Default shards, and one shard (so every key shares a table and probe chains collide).
        let got = apply_sync_map(&SyncMap::new(), &ops);
        prop_assert_eq!(&got, &expected);
        let got = apply_sync_map(&SyncMap::with_shards(1), &ops);
        prop_assert_eq!(&got, &expected);
    }

}

proptest! {
    // Long cases: fewer of them.
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Long sequences over many keys: exercises growth, tombstone reuse and rebuilds.
    #[test]
    fn sync_map_matches_through_growth(ops in prop::collection::vec(
        prop_oneof![
            4 => (0u16..300, any::<u8>()).prop_map(|(k, v)| Op::Store(k.to_string(), v)),
            2 => (0u16..300).prop_map(|k| Op::Delete(k.to_string())),
            2 => (0u16..300).prop_map(|k| Op::Load(k.to_string())),
            1 => Just(Op::Len),
        ], 0..1500)) {
        let expected = apply_reference(&ops);
        let got = apply_sync_map(&SyncMap::with_shards(2), &ops);
        prop_assert_eq!(got, expected);
    }
}

/// The subset of operations every locked map has, for the same model test.
#[derive(Debug, Clone)]
enum BasicOp {
    Get(String),
    Set(String, u8),
    Remove(String),
    Len,
    Clear,
}

fn basic_op() -> impl Strategy<Value = BasicOp> {
    prop_oneof![
        3 => key().prop_map(BasicOp::Get),
        3 => (key(), any::<u8>()).prop_map(|(k, v)| BasicOp::Set(k, v)),
        2 => key().prop_map(BasicOp::Remove),
        1 => Just(BasicOp::Len),
        1 => Just(BasicOp::Clear),
    ]
}

/// Runs `ops` with `get`, `set` (returns previous), `remove` (returns value), `len`, `clear`
/// and compares with a `Mutex<HashMap>`.
fn check_basic(
    ops: &[BasicOp],
    get: &dyn Fn(&str) -> Option<u8>,
    set: &dyn Fn(String, u8) -> Option<u8>,
    remove: &dyn Fn(&str) -> Option<u8>,
    len: &dyn Fn() -> usize,
    clear: &dyn Fn(),
) -> Result<BTreeMap<String, u8>, TestCaseError> {
    let reference = Mutex::new(HashMap::new());
    for op in ops {
        let mut r = reference.lock().unwrap();
        match op {
            BasicOp::Get(k) => prop_assert_eq!(get(k), r.get(k).copied()),
            BasicOp::Set(k, v) => prop_assert_eq!(set(k.clone(), *v), r.insert(k.clone(), *v)),
            BasicOp::Remove(k) => prop_assert_eq!(remove(k), r.remove(k)),
            BasicOp::Len => prop_assert_eq!(len(), r.len()),
            BasicOp::Clear => {
                clear();
                r.clear();
            }
        }
    }
    Ok(reference.into_inner().unwrap().into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn sharded_map_matches_mutex_hashmap(ops in prop::collection::vec(basic_op(), 0..60)) {
        let m = ShardedMap::with_shards(4);
        let fin = check_basic(&ops, &|k| m.get(k), &|k, v| m.set(k, v), &|k| m.pop(k),
            &|| m.count(), &|| m.clear())?;
        let got: BTreeMap<_, _> = m.snapshot().into_iter().collect();
        prop_assert_eq!(&got, &fin);
        let mut seen = BTreeMap::new();
        m.for_each(|k, v| { seen.insert(k.clone(), *v); });
        prop_assert_eq!(&seen, &fin);
        prop_assert_eq!(m.is_empty(), fin.is_empty());
        let mut keys = m.keys();
        keys.sort();
        prop_assert_eq!(keys, fin.keys().cloned().collect::<Vec<_>>());
    }

    #[test]
    fn rw_map_matches_mutex_hashmap(ops in prop::collection::vec(basic_op(), 0..60)) {
        let m = RwMap::new();
        let fin = check_basic(&ops, &|k| m.get(k), &|k, v| m.set(k, v), &|k| m.delete(k),
            &|| m.len(), &|| m.clear())?;
        let mut seen = BTreeMap::new();
        m.for_each(|k, v| { seen.insert(k.clone(), *v); true });
        prop_assert_eq!(seen, fin);
    }

    #[test]
    fn tree_map_matches_btreemap(ops in prop::collection::vec(basic_op(), 0..60), probe in key()) {
        let m = TreeMap::new();
        let fin = check_basic(&ops, &|k| m.get(k), &|k, v| m.insert(k, v), &|k| m.remove(k),
            &|| m.len(), &|| m.clear())?;
        let all: Vec<(String, u8)> = fin.iter().map(|(k, v)| (k.clone(), *v)).collect();
        prop_assert_eq!(m.range::<std::ops::RangeFull>(..), all.clone());
        prop_assert_eq!(m.first(), all.first().cloned());
        prop_assert_eq!(m.last(), all.last().cloned());
        let floor = fin.range(..=probe.clone()).next_back().map(|(k, v)| (k.clone(), *v));
        prop_assert_eq!(m.floor(probe.as_str()), floor);
        let ceil = fin.range(probe.clone()..).next().map(|(k, v)| (k.clone(), *v));
        prop_assert_eq!(m.ceiling(probe.as_str()), ceil);
        let from: Vec<_> = fin.range(probe.clone()..).map(|(k, v)| (k.clone(), *v)).collect();
        prop_assert_eq!(m.range(probe.clone()..), from);
    }
}

#[test]
fn sharded_map_compound_operations() {
    let m = ShardedMap::new();
    assert!(m.set_if_absent("a", 1));
    assert!(!m.set_if_absent("a", 2));
    assert_eq!(
        m.upsert("a", 10, |old, new| old.copied().unwrap_or(0) + new),
        11
    );
    assert_eq!(
        m.upsert("b", 5, |old, new| old.copied().unwrap_or(0) + new),
        5
    );
    assert!(!m.remove_if("a", |v| *v == 1));
    assert!(m.remove_if("a", |v| *v == 11));
    assert!(m.has("b") && !m.has("a"));
    assert!(m.remove("b"));
    assert!(!m.remove("b"));
    assert!(m.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Concurrency tests from map_test.go and hashtriemap_test.go
// ---------------------------------------------------------------------------------------------

/// Debug builds run fewer rounds; the assertions are the same.
const fn rounds(release: usize, debug: usize) -> usize {
    if cfg!(debug_assertions) {
        debug
    } else {
        release
    }
}

/// Go's `TestConcurrentRange`: writers keep every value a multiple of its key; each Range must
/// see every key exactly once with such a value.
#[test]
fn concurrent_range() {
    const N: u64 = 1024;
    let m = Arc::new(SyncMap::new());
    for n in 1..=N {
        m.store(n, n);
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (1..=4u64)
        .map(|g| {
            let (m, stop) = (Arc::clone(&m), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut rng = g.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    for n in 1..N {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        if rng % N == 0 {
                            m.store(n, n * i * g);
                        } else {
                            let v = m.load(&n).expect("key vanished");
                            assert_eq!(v % n, 0);
                        }
                    }
                }
            })
        })
        .collect();
    for _ in 0..rounds(256, 16) {
        let mut seen = HashSet::new();
        m.range(|&k, &v| {
            assert_eq!(v % k, 0, "value {v} for key {k} is not a multiple of it");
            assert!(seen.insert(k), "range visited {k} twice");
            true
        });
        assert_eq!(seen.len(), N as usize);
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
}

/// Go's `TestMapRangeNestedCall` (issue 46399): Range inside Range, with every kind of call
/// from the inner callback, and deletes from the outer one.
#[test]
fn range_nested_call() {
    let m: SyncMap<i32, &str> = SyncMap::new();
    for (i, v) in ["hello", "world", "Go"].into_iter().enumerate() {
        m.store(i as i32, v);
    }
    m.range(|&key, &value| {
        m.range(|&k, &v| {
            // We should be able to load the key offered in the Range callback, because there
            // are no concurrent Delete involved in this tested map.
            assert_eq!(m.load(&k), Some(v), "nested range: load({k})");
            // The key 42 must not be in the map yet; it stores then deletes it.
            assert_eq!(m.load_or_store(42, "dummy"), ("dummy", false));
            m.store(42, "sync.Map");
            assert_eq!(m.load_and_delete(&42), Some("sync.Map"));
            true
        });
        // Remove key from the map, which is being ranged over.
        m.delete(&key);
        let _ = value;
        true
    });
    let mut left = 0;
    m.range(|_, _| {
        left += 1;
        true
    });
    assert_eq!(left, 0);
    assert!(m.is_empty());
}

/// Go's `TestCompareAndSwap_NonExistingKey`: CAS never inserts.
#[test]
fn compare_and_swap_non_existing_key() {
    let m: SyncMap<&str, i32> = SyncMap::new();
    assert!(!m.compare_and_swap("k", &0, 42));
    assert!(!m.compare_and_delete("k", &0));
    assert_eq!(m.load("k"), None);
    assert_eq!(m.len(), 0);
}

/// Key type that counts its drops.
#[derive(Debug)]
struct Counted(u64, Arc<AtomicUsize>);
impl PartialEq for Counted {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Counted {}
impl std::hash::Hash for Counted {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.hash(h)
    }
}
impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted(self.0, Arc::clone(&self.1))
    }
}
impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::Relaxed);
    }
}

/// Go's `TestIssue40999`: deleted keys are released (there: collected by the GC; here: dropped
/// exactly once each, and all of them by the time the map drops).
#[test]
fn deleted_keys_are_dropped() {
    let drops = Arc::new(AtomicUsize::new(0));
    let values = Arc::new(());
    let m = SyncMap::new();
    const N: u64 = 5000;
    for i in 0..N {
        m.store(Counted(i, Arc::clone(&drops)), Arc::clone(&values));
        m.delete(&Counted(i, Arc::clone(&drops)));
    }
    assert_eq!(m.len(), 0);
    // The probe keys passed to `delete` were dropped right away.
    assert!(drops.load(Ordering::Relaxed) >= N as usize);
    drop(m);
    assert_eq!(
        drops.load(Ordering::Relaxed),
        2 * N as usize,
        "every stored key dropped once"
    );
    assert_eq!(Arc::strong_count(&values), 1, "every value dropped");
}

/// Replaced and cleared entries are freed too (each exactly once).
#[test]
fn replaced_and_cleared_values_are_dropped() {
    let v = Arc::new(());
    let m = SyncMap::new();
    for i in 0..2000u32 {
        m.store(i % 100, Arc::clone(&v));
        if i % 7 == 0 {
            m.compare_and_swap(&(i % 100), &Arc::clone(&v), Arc::clone(&v));
        }
        if i % 500 == 0 {
            m.clear();
        }
    }
    assert!(m.len() <= 100);
    drop(m);
    assert_eq!(Arc::strong_count(&v), 1);
}

/// hashtriemap's `CompareAndSwap/ConcurrentSharedKeys` + `TestConcurrentCache`: many threads
/// increment shared counters with CAS loops; no update is lost, and CAS/CompareAndDelete
/// never both succeed on the same (key, value).
#[test]
fn concurrent_compare_and_swap_loses_no_update() {
    let m = Arc::new(SyncMap::new());
    const KEYS: u64 = 8;
    let per_thread = rounds(2000, 300);
    for k in 0..KEYS {
        m.store(k, 0u64);
    }
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let k = (i as u64 + t) % KEYS;
                    loop {
                        let cur = m.load(&k).unwrap();
                        if m.compare_and_swap(&k, &cur, cur + 1) {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut total = 0;
    m.range(|_, v| {
        total += v;
        true
    });
    assert_eq!(total, 4 * per_thread as u64);
    assert_eq!(m.len(), KEYS as usize);

    // Claim each (key, value) once: exactly one of CAS-away or CompareAndDelete wins per round.
    let wins = Arc::new(AtomicUsize::new(0));
    let claimers: Vec<_> = (0..4)
        .map(|t| {
            let (m, wins) = (Arc::clone(&m), Arc::clone(&wins));
            std::thread::spawn(move || {
                for k in 0..KEYS {
                    let v = m.load(&k);
                    if let Some(v) = v {
                        let won = if t % 2 == 0 {
                            m.compare_and_delete(&k, &v)
                        } else {
                            m.compare_and_swap(&k, &v, u64::MAX)
                        };
                        if won {
                            wins.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for c in claimers {
        c.join().unwrap();
    }
    // Each key starts with one value; a CAS to u64::MAX leaves another claimable value that
    // claimers may take in turn, but a deleted key can never be claimed again.
    assert!(wins.load(Ordering::Relaxed) >= KEYS as usize);
    let mut left = 0;
    m.range(|_, v| {
        assert_eq!(*v, u64::MAX);
        left += 1;
        true
    });
    assert_eq!(left, m.len());
}

/// Disjoint writers growing and shrinking their own keys: `len` is exact afterwards, and every
/// key left holds its writer's last value.
#[test]
fn concurrent_disjoint_writers_len_exact() {
    let m = Arc::new(SyncMap::with_shards(4));
    let n = rounds(20_000, 3000) as u64;
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                for i in 0..n {
                    let k = t * 1_000_000 + i;
                    m.store(k, i);
                    if i % 3 == 0 {
                        assert_eq!(m.load_and_delete(&k), Some(i));
                    }
                    if i % 5 == 0 {
                        assert_eq!(m.load_or_store(k, 7).1, i % 3 != 0);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut expected = 0;
    for i in 0..n {
        if i % 3 != 0 || i % 5 == 0 {
            expected += 1;
        }
    }
    assert_eq!(m.len(), 4 * expected);
    let mut counted = 0;
    m.range(|k, v| {
        let i = k % 1_000_000;
        let want = if i % 3 == 0 { 7 } else { i };
        assert_eq!(*v, want);
        counted += 1;
        true
    });
    assert_eq!(counted, m.len());
}

/// Go tip's `TestConcurrentClear`: stores, loads and clears race; a final Clear leaves nothing.
#[test]
fn concurrent_clear() {
    let m = Arc::new(SyncMap::new());
    let threads: Vec<_> = (0..6u64)
        .map(|t| {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                for i in 0..rounds(2000, 300) as u64 {
                    match t % 3 {
                        0 => m.store(i % 64, i),
                        1 => drop(m.load(&(i % 64))),
                        _ => {
                            if i % 50 == 0 {
                                m.clear()
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    m.clear();
    assert_eq!(m.len(), 0);
    m.range(|k, _| panic!("key {k} survived clear"));
}

/// Readers never see a torn or stale-after-delete value while a writer churns through
/// growth and tombstone rebuilds.
#[test]
fn readers_during_growth_and_churn() {
    let m = Arc::new(SyncMap::with_shards(1));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Keys 0..100 are permanent; the reader must always find them with value == key * 3.
    for k in 0..100u64 {
        m.store(k, k * 3);
    }
    let reader = {
        let (m, stop) = (Arc::clone(&m), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) || reads < 1000 {
                for k in 0..100u64 {
                    assert_eq!(m.load(&k), Some(k * 3), "permanent key {k} lost");
                    reads += 1;
                }
            }
        })
    };
    for round in 0..rounds(40, 8) as u64 {
        for k in 1000..3000u64 {
            m.store(k + round, k);
        }
        for k in 1000..3000u64 {
            m.delete(&(k + round));
        }
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert_eq!(m.len(), 100);
}

/// No call hands out a guard, so the map is `Send + Sync` and usable from any thread.
#[test]
fn maps_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SyncMap<String, Vec<u8>>>();
    check::<ShardedMap<String, Vec<u8>>>();
    check::<RwMap<String, Vec<u8>>>();
    check::<TreeMap<String, Vec<u8>>>();
    check::<gosync::map::TimedMap<String, Vec<u8>>>();
}
