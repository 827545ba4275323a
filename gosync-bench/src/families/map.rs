//! Family `map`: gosync's concurrent maps against Go's `sync.Map`, `RwLock<HashMap>`,
//! dashmap, papaya, scc and (for the expiring map) moka.
//!
//! Parts (`GOSYNC_BENCH_MAP_PARTS=ttl,zipf` runs only the named ones):
//! - `cpu`: single-thread operation costs in thread CPU time.
//! - `memory`: heap bytes in use (glibc `mallinfo2`) after inserting N u64 → u64 entries,
//!   divided by N.
//! - `go`: **Go's `map_bench_test.go` workloads**, one for one (keys and values are `u64`,
//!   where Go boxes `int`s in `any`). With `--go`, Go 1.19's own `go test -bench . sync`
//!   figures for `*sync.Map` fill the Go column. The Swap/CompareAndSwap/CompareAndDelete
//!   workloads come from Go tip; Go 1.19's `sync.Map` has no such methods, so they have no Go
//!   figure.
//! - `bustle`: **bustle-style mixes** (conc-map-bench's ReadHeavy, Exchange, RapidGrow), u64
//!   keys, u64 values, foldhash (gosync's default hasher) for every map, maps created with the
//!   bustle capacity. `RwMap` (the seed's map) keeps std's SipHash.
//! - `ttl`: `TimedMap` against moka's `sync::Cache` on a read-mostly mix, unbounded and with
//!   `max_capacity`.
//! - `zipf`: bounded caches replaying a Zipf(0.9) trace cache-aside: hit ratio (a metric) and
//!   throughput.
//! - `compute`: atomic updates of present keys, each thread on its own keys (`SyncMap::update`
//!   and `compute` vs papaya's `update`).
//! - `entry`: counting through `entry` on shared keys (`ShardedMap::entry` vs dashmap's).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use gosync::map::{EvictionPolicy, RwMap, ShardedMap, SyncMap, TimedMap, TimedMapBuilder};

use crate::harness::{run_parallel, Ctx, Impl, Sample};

const FAMILY: &str = "map";

/// The hasher every map in this family uses (gosync's default; the peers are given it too, so
/// that no map wins by its hash function).
type Fh = foldhash::fast::RandomState;
type Dash = dashmap::DashMap<u64, u64, Fh>;
type Papaya = papaya::HashMap<u64, u64, Fh>;
type Scc = scc::HashMap<u64, u64, Fh>;

// ---------------------------------------------------------------------------------------------
// The map interface of Go's benchmarks (`mapInterface`)
// ---------------------------------------------------------------------------------------------

/// Go's `mapInterface` over u64 keys and values.
trait GoMap: Send + Sync {
    fn load(&self, k: u64) -> Option<u64>;
    fn store(&self, k: u64, v: u64);
    fn load_or_store(&self, k: u64, v: u64) -> (u64, bool);
    fn load_and_delete(&self, k: u64) -> Option<u64>;
    fn delete(&self, k: u64);
    fn swap(&self, k: u64, v: u64) -> Option<u64>;
    fn compare_and_swap(&self, k: u64, old: u64, new: u64) -> bool;
    fn compare_and_delete(&self, k: u64, old: u64) -> bool;
    fn range(&self, f: &mut dyn FnMut(u64, u64) -> bool);
}

impl GoMap for SyncMap<u64, u64> {
    fn load(&self, k: u64) -> Option<u64> {
        SyncMap::load(self, &k)
    }
    fn store(&self, k: u64, v: u64) {
        SyncMap::store(self, k, v)
    }
    fn load_or_store(&self, k: u64, v: u64) -> (u64, bool) {
        SyncMap::load_or_store(self, k, v)
    }
    fn load_and_delete(&self, k: u64) -> Option<u64> {
        SyncMap::load_and_delete(self, &k)
    }
    fn delete(&self, k: u64) {
        SyncMap::delete(self, &k)
    }
    fn swap(&self, k: u64, v: u64) -> Option<u64> {
        SyncMap::swap(self, k, v)
    }
    fn compare_and_swap(&self, k: u64, old: u64, new: u64) -> bool {
        SyncMap::compare_and_swap(self, &k, &old, new)
    }
    fn compare_and_delete(&self, k: u64, old: u64) -> bool {
        SyncMap::compare_and_delete(self, &k, &old)
    }
    fn range(&self, f: &mut dyn FnMut(u64, u64) -> bool) {
        SyncMap::range(self, |k, v| f(*k, *v))
    }
}

/// Go's `RWMutexMap` reference: a map behind a reader-writer lock.
type RwLockMap = RwLock<HashMap<u64, u64, Fh>>;

impl GoMap for RwLockMap {
    fn load(&self, k: u64) -> Option<u64> {
        self.read().unwrap().get(&k).copied()
    }
    fn store(&self, k: u64, v: u64) {
        self.write().unwrap().insert(k, v);
    }
    fn load_or_store(&self, k: u64, v: u64) -> (u64, bool) {
        if let Some(&e) = self.read().unwrap().get(&k) {
            return (e, true);
        }
        let mut m = self.write().unwrap();
        match m.get(&k) {
            Some(&e) => (e, true),
            None => {
                m.insert(k, v);
                (v, false)
            }
        }
    }
    fn load_and_delete(&self, k: u64) -> Option<u64> {
        self.write().unwrap().remove(&k)
    }
    fn delete(&self, k: u64) {
        self.write().unwrap().remove(&k);
    }
    fn swap(&self, k: u64, v: u64) -> Option<u64> {
        self.write().unwrap().insert(k, v)
    }
    fn compare_and_swap(&self, k: u64, old: u64, new: u64) -> bool {
        let mut m = self.write().unwrap();
        match m.get_mut(&k) {
            Some(v) if *v == old => {
                *v = new;
                true
            }
            _ => false,
        }
    }
    fn compare_and_delete(&self, k: u64, old: u64) -> bool {
        let mut m = self.write().unwrap();
        if m.get(&k) == Some(&old) {
            m.remove(&k);
            true
        } else {
            false
        }
    }
    fn range(&self, f: &mut dyn FnMut(u64, u64) -> bool) {
        // Go's RWMutexMap.Range: copy the keys under the read lock, then Load each one.
        let keys: Vec<u64> = self.read().unwrap().keys().copied().collect();
        for k in keys {
            if let Some(v) = GoMap::load(self, k) {
                if !f(k, v) {
                    break;
                }
            }
        }
    }
}

impl GoMap for Dash {
    fn load(&self, k: u64) -> Option<u64> {
        self.get(&k).map(|r| *r)
    }
    fn store(&self, k: u64, v: u64) {
        self.insert(k, v);
    }
    fn load_or_store(&self, k: u64, v: u64) -> (u64, bool) {
        if let Some(r) = self.get(&k) {
            return (*r, true);
        }
        match self.entry(k) {
            dashmap::Entry::Occupied(e) => (*e.get(), true),
            dashmap::Entry::Vacant(e) => {
                e.insert(v);
                (v, false)
            }
        }
    }
    fn load_and_delete(&self, k: u64) -> Option<u64> {
        self.remove(&k).map(|(_, v)| v)
    }
    fn delete(&self, k: u64) {
        self.remove(&k);
    }
    fn swap(&self, k: u64, v: u64) -> Option<u64> {
        self.insert(k, v)
    }
    fn compare_and_swap(&self, k: u64, old: u64, new: u64) -> bool {
        match self.get_mut(&k) {
            Some(mut r) if *r == old => {
                *r = new;
                true
            }
            _ => false,
        }
    }
    fn compare_and_delete(&self, k: u64, old: u64) -> bool {
        self.remove_if(&k, |_, v| *v == old).is_some()
    }
    fn range(&self, f: &mut dyn FnMut(u64, u64) -> bool) {
        for r in self.iter() {
            if !f(*r.key(), *r.value()) {
                break;
            }
        }
    }
}

impl GoMap for Papaya {
    fn load(&self, k: u64) -> Option<u64> {
        self.pin().get(&k).copied()
    }
    fn store(&self, k: u64, v: u64) {
        self.pin().insert(k, v);
    }
    fn load_or_store(&self, k: u64, v: u64) -> (u64, bool) {
        match self.pin().try_insert(k, v) {
            Ok(_) => (v, false),
            Err(e) => (*e.current, true),
        }
    }
    fn load_and_delete(&self, k: u64) -> Option<u64> {
        self.pin().remove(&k).copied()
    }
    fn delete(&self, k: u64) {
        self.pin().remove(&k);
    }
    fn swap(&self, k: u64, v: u64) -> Option<u64> {
        self.pin().insert(k, v).copied()
    }
    fn compare_and_swap(&self, k: u64, old: u64, new: u64) -> bool {
        let m = self.pin();
        let r = m.compute(k, |e| match e {
            Some((_, v)) if *v == old => papaya::Operation::Insert(new),
            _ => papaya::Operation::Abort(()),
        });
        matches!(r, papaya::Compute::Updated { .. })
    }
    fn compare_and_delete(&self, k: u64, old: u64) -> bool {
        matches!(self.pin().remove_if(&k, |_, v| *v == old), Ok(Some(_)))
    }
    fn range(&self, f: &mut dyn FnMut(u64, u64) -> bool) {
        for (k, v) in self.pin().iter() {
            if !f(*k, *v) {
                break;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Go's workloads (map_bench_test.go)
// ---------------------------------------------------------------------------------------------

/// One of Go's workloads: an optional setup and the per-iteration body. `i` runs from
/// `tid * iters` upward on each thread, as Go's `id*b.N` start does.
struct GoBench {
    name: &'static str,
    /// Go's benchmark name (for the Go column), when Go 1.19 has it.
    go_name: Option<&'static str>,
    setup: fn(&dyn GoMap),
    body: fn(&dyn GoMap, u64, &mut BodyState),
}

/// Per-thread scratch state (AdversarialAlloc's counters).
#[derive(Default)]
struct BodyState {
    stores: u64,
    loads_since_store: u64,
}

const HITS: u64 = 1023;
const MISSES: u64 = 1;

fn no_setup(_: &dyn GoMap) {}

/// Go: LoadOrStore 0..hits-1, then "prime" with 2*hits loads.
fn setup_hits(m: &dyn GoMap, hits: u64) {
    for i in 0..hits {
        m.load_or_store(i, i);
    }
    for i in 0..hits * 2 {
        m.load(i % hits);
    }
}

fn go_benches() -> Vec<GoBench> {
    vec![
        GoBench {
            name: "LoadMostlyHits",
            go_name: Some("BenchmarkLoadMostlyHits"),
            setup: |m| setup_hits(m, HITS),
            body: |m, i, _| {
                std::hint::black_box(m.load(i % (HITS + MISSES)));
            },
        },
        GoBench {
            name: "LoadMostlyMisses",
            go_name: Some("BenchmarkLoadMostlyMisses"),
            setup: |m| setup_hits(m, MISSES),
            body: |m, i, _| {
                std::hint::black_box(m.load(i % (HITS + MISSES)));
            },
        },
        GoBench {
            name: "LoadOrStoreBalanced",
            go_name: Some("BenchmarkLoadOrStoreBalanced"),
            setup: |m| setup_hits(m, 128),
            body: |m, i, _| {
                let j = i % 256;
                if j < 128 {
                    let (_, loaded) = m.load_or_store(j, i);
                    assert!(loaded, "LoadOrStoreBalanced: {j} should be loaded");
                } else {
                    let (_, loaded) = m.load_or_store(i, i);
                    assert!(!loaded, "LoadOrStoreBalanced: {i} should be stored");
                }
            },
        },
        GoBench {
            name: "LoadOrStoreUnique",
            go_name: Some("BenchmarkLoadOrStoreUnique"),
            setup: no_setup,
            body: |m, i, _| {
                std::hint::black_box(m.load_or_store(i, i));
            },
        },
        GoBench {
            name: "LoadOrStoreCollision",
            go_name: Some("BenchmarkLoadOrStoreCollision"),
            setup: |m| {
                m.load_or_store(0, 0);
            },
            body: |m, _, _| {
                std::hint::black_box(m.load_or_store(0, 0));
            },
        },
        GoBench {
            name: "LoadAndDeleteBalanced",
            go_name: Some("BenchmarkLoadAndDeleteBalanced"),
            setup: |m| setup_hits(m, 128),
            body: |m, i, _| {
                let j = i % 256;
                std::hint::black_box(if j < 128 {
                    m.load_and_delete(j)
                } else {
                    m.load_and_delete(i)
                });
            },
        },
        GoBench {
            name: "LoadAndDeleteUnique",
            go_name: Some("BenchmarkLoadAndDeleteUnique"),
            setup: no_setup,
            body: |m, i, _| {
                std::hint::black_box(m.load_and_delete(i));
            },
        },
        GoBench {
            name: "LoadAndDeleteCollision",
            go_name: Some("BenchmarkLoadAndDeleteCollision"),
            setup: |m| {
                m.load_or_store(0, 0);
            },
            body: |m, _, _| {
                std::hint::black_box(m.load_and_delete(0));
            },
        },
        GoBench {
            name: "Range",
            go_name: Some("BenchmarkRange"),
            setup: |m| {
                for i in 0..1024 {
                    m.store(i, i);
                }
            },
            body: |m, _, _| {
                m.range(&mut |k, v| {
                    std::hint::black_box((k, v));
                    true
                });
            },
        },
        GoBench {
            name: "AdversarialAlloc",
            go_name: Some("BenchmarkAdversarialAlloc"),
            setup: no_setup,
            body: |m, i, st| {
                st.loads_since_store += 1;
                if st.loads_since_store > st.stores {
                    m.load_or_store(i, st.stores);
                    st.loads_since_store = 0;
                    st.stores += 1;
                }
                std::hint::black_box(m.load(i));
            },
        },
        GoBench {
            name: "AdversarialDelete",
            go_name: Some("BenchmarkAdversarialDelete"),
            setup: |m| {
                for i in 0..1024 {
                    m.store(i, i);
                }
            },
            body: |m, i, _| {
                std::hint::black_box(m.load(i));
                if i % 1024 == 0 {
                    // Delete the first key Range offers, then add a new one.
                    let mut first = None;
                    m.range(&mut |k, _| {
                        first = Some(k);
                        false
                    });
                    if let Some(k) = first {
                        m.delete(k);
                    }
                    m.store(i, i);
                }
            },
        },
        GoBench {
            name: "DeleteCollision",
            go_name: Some("BenchmarkDeleteCollision"),
            setup: |m| {
                m.load_or_store(0, 0);
            },
            body: |m, _, _| m.delete(0),
        },
        GoBench {
            name: "SwapCollision",
            go_name: None,
            setup: |m| {
                m.load_or_store(0, 0);
            },
            body: |m, _, _| {
                std::hint::black_box(m.swap(0, 0));
            },
        },
        GoBench {
            name: "SwapMostlyHits",
            go_name: None,
            setup: |m| setup_hits(m, HITS),
            body: |m, i, _| {
                let v = i % (HITS + MISSES);
                if v < HITS {
                    std::hint::black_box(m.swap(v, v));
                } else {
                    m.swap(i, i);
                    m.delete(i);
                }
            },
        },
        GoBench {
            name: "CompareAndSwapCollision",
            go_name: None,
            setup: |m| {
                m.load_or_store(0, 0);
            },
            body: |m, _, _| {
                if m.compare_and_swap(0, 0, 42) {
                    m.compare_and_swap(0, 42, 0);
                }
            },
        },
        GoBench {
            name: "CompareAndSwapMostlyHits",
            go_name: None,
            setup: |m| setup_hits(m, HITS),
            body: |m, i, _| {
                let mut v = i;
                if i % (HITS + MISSES) < HITS {
                    v = i % (HITS + MISSES);
                }
                std::hint::black_box(m.compare_and_swap(v, v, v));
            },
        },
        GoBench {
            name: "CompareAndDeleteMostlyHits",
            go_name: None,
            setup: |m| setup_hits(m, HITS),
            body: |m, i, _| {
                let mut v = i;
                if i % (HITS + MISSES) < HITS {
                    v = i % (HITS + MISSES);
                }
                if m.compare_and_delete(v, v) {
                    m.store(v, v);
                }
            },
        },
    ]
}

/// Runs one Go workload on a fresh map built by `make`: setup, then `iters` iterations in
/// parallel (only the parallel part is timed, as after Go's `b.ResetTimer`).
fn run_go<M: GoMap + 'static>(make: fn() -> M, b: &GoBench, threads: usize, iters: u64) -> Sample {
    let m = make();
    (b.setup)(&m);
    let body = b.body;
    run_parallel(threads, iters, |tid, it| {
        let mut st = BodyState::default();
        let mut i = tid as u64 * iters;
        while it.next() {
            body(&m, i, &mut st);
            i += 1;
        }
    })
    .into()
}

fn go_part(ctx: &mut Ctx) {
    let threads = ctx.threads();
    let benches = go_benches();
    // Go 1.19's `go test -bench` over its own map_bench_test.go; `*sync.Map` rows only.
    let rows = crate::go::bench_std(
        ctx,
        "sync",
        "^Benchmark(LoadMostly|LoadOrStore|LoadAndDelete|Range|Adversarial|DeleteCollision)/sync\\.Map$",
        &threads,
    );
    for row in &rows {
        if let Some((name, which)) = row.name.split_once('/') {
            if which == "*sync.Map" {
                if let Some(b) = benches.iter().find(|b| b.go_name == Some(name)) {
                    ctx.add_go(FAMILY, b.name, row.cpu, row.ns_per_op);
                }
            }
        }
    }
    for b in &benches {
        for &t in &threads {
            let mut impls = vec![
                Impl::new("gosync SyncMap", |n| {
                    run_go(SyncMap::<u64, u64>::new, b, t, n)
                }),
                Impl::new("RwLock<HashMap>", |n| run_go(RwLockMap::default, b, t, n)),
            ];
            if !ctx.quick() || b.name == "LoadMostlyHits" {
                impls.push(Impl::new("dashmap", |n| {
                    run_go(|| Dash::with_hasher(Fh::default()), b, t, n)
                }));
                impls.push(Impl::new("papaya", |n| {
                    run_go(|| Papaya::with_hasher(Fh::default()), b, t, n)
                }));
            }
            ctx.compare(FAMILY, b.name, t, impls);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// bustle-style mixes
// ---------------------------------------------------------------------------------------------

/// conc-map-bench's operation mix, in percent.
#[derive(Clone, Copy)]
struct Mix {
    name: &'static str,
    read: u64,
    insert: u64,
    remove: u64,
    update: u64,
    prefill: f64,
}

const MIXES: [Mix; 3] = [
    Mix {
        name: "ReadHeavy",
        read: 98,
        insert: 1,
        remove: 1,
        update: 0,
        prefill: 0.75,
    },
    Mix {
        name: "Exchange",
        read: 10,
        insert: 40,
        remove: 40,
        update: 10,
        prefill: 0.75,
    },
    Mix {
        name: "RapidGrow",
        read: 5,
        insert: 80,
        remove: 5,
        update: 10,
        prefill: 0.0,
    },
];

/// bustle's `CollectionHandle`, one call per operation.
trait BustleMap: Send + Sync {
    fn get(&self, k: u64) -> bool;
    fn insert(&self, k: u64, v: u64) -> bool;
    fn remove(&self, k: u64) -> bool;
    fn update(&self, k: u64, v: u64) -> bool;
}

impl BustleMap for SyncMap<u64, u64> {
    fn get(&self, k: u64) -> bool {
        self.contains_key(&k)
    }
    fn insert(&self, k: u64, v: u64) -> bool {
        !self.load_or_store(k, v).1
    }
    fn remove(&self, k: u64) -> bool {
        self.load_and_delete(&k).is_some()
    }
    fn update(&self, k: u64, v: u64) -> bool {
        self.swap(k, v).is_some()
    }
}

impl BustleMap for ShardedMap<u64, u64> {
    fn get(&self, k: u64) -> bool {
        self.has(&k)
    }
    fn insert(&self, k: u64, v: u64) -> bool {
        self.set_if_absent(k, v)
    }
    fn remove(&self, k: u64) -> bool {
        ShardedMap::remove(self, &k)
    }
    fn update(&self, k: u64, v: u64) -> bool {
        self.set(k, v).is_some()
    }
}

impl BustleMap for RwMap<u64, u64> {
    fn get(&self, k: u64) -> bool {
        RwMap::get(self, &k).is_some()
    }
    fn insert(&self, k: u64, v: u64) -> bool {
        self.set(k, v).is_none()
    }
    fn remove(&self, k: u64) -> bool {
        self.delete(&k).is_some()
    }
    fn update(&self, k: u64, v: u64) -> bool {
        self.set(k, v).is_some()
    }
}

impl BustleMap for RwLockMap {
    fn get(&self, k: u64) -> bool {
        self.read().unwrap().contains_key(&k)
    }
    fn insert(&self, k: u64, v: u64) -> bool {
        self.write().unwrap().insert(k, v).is_none()
    }
    fn remove(&self, k: u64) -> bool {
        self.write().unwrap().remove(&k).is_some()
    }
    fn update(&self, k: u64, v: u64) -> bool {
        self.write().unwrap().get_mut(&k).map(|x| *x = v).is_some()
    }
}

impl BustleMap for Dash {
    fn get(&self, k: u64) -> bool {
        self.get(&k).is_some()
    }
    fn insert(&self, k: u64, v: u64) -> bool {
        dashmap::DashMap::insert(self, k, v).is_none()
    }
    fn remove(&self, k: u64) -> bool {
        dashmap::DashMap::remove(self, &k).is_some()
    }
    fn update(&self, k: u64, v: u64) -> bool {
        self.get_mut(&k).map(|mut x| *x = v).is_some()
    }
}

impl BustleMap for Papaya {
    fn get(&self, k: u64) -> bool {
        self.pin().get(&k).is_some()
    }
    fn insert(&self, k: u64, v: u64) -> bool {
        self.pin().insert(k, v).is_none()
    }
    fn remove(&self, k: u64) -> bool {
        self.pin().remove(&k).is_some()
    }
    fn update(&self, k: u64, v: u64) -> bool {
        self.pin().update(k, move |_| v).is_some()
    }
}

impl BustleMap for Scc {
    fn get(&self, k: u64) -> bool {
        self.read(&k, |_, _| ()).is_some()
    }
    fn insert(&self, k: u64, v: u64) -> bool {
        scc::HashMap::insert(self, k, v).is_ok()
    }
    fn remove(&self, k: u64) -> bool {
        scc::HashMap::remove(self, &k).is_some()
    }
    fn update(&self, k: u64, v: u64) -> bool {
        scc::HashMap::update(self, &k, |_, x| *x = v).is_some()
    }
}

/// A bijective scramble, so that thread `t`'s `i`-th key is a distinct pseudo-random u64.
#[inline]
fn key_of(t: u64, i: u64) -> u64 {
    let mut z = (t << 40 | i).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs `iters` operations of `mix` on a fresh map of capacity `cap`, prefilled to
/// `mix.prefill`. Each thread owns a window `lo..hi` of its live keys: inserts add key `hi`,
/// removes take key `lo`, reads and updates pick a random live key (so reads hit, as in
/// bustle). Only the operations are timed.
fn run_mix<M: BustleMap>(
    make: impl Fn(usize) -> M,
    mix: Mix,
    cap: usize,
    threads: usize,
    iters: u64,
) -> Sample {
    assert_eq!(
        mix.read + mix.insert + mix.remove + mix.update,
        100,
        "mix must sum to 100"
    );
    let m = make(cap);
    let per_thread_prefill = (cap as f64 * mix.prefill) as u64 / threads as u64;
    let windows: Vec<(AtomicU64, AtomicU64)> = (0..threads)
        .map(|t| {
            for i in 0..per_thread_prefill {
                m.insert(key_of(t as u64, i), i);
            }
            (AtomicU64::new(0), AtomicU64::new(per_thread_prefill))
        })
        .collect();
    let elapsed = run_parallel(threads, iters, |tid, it| {
        let t = tid as u64;
        let (mut lo, mut hi) = (
            windows[tid].0.load(Ordering::Relaxed),
            windows[tid].1.load(Ordering::Relaxed),
        );
        let mut rng = key_of(t + 1000, 7) | 1;
        while it.next() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let dice = rng % 100;
            let live = hi - lo;
            if dice < mix.read && live > 0 {
                std::hint::black_box(m.get(key_of(t, lo + (rng >> 32) % live)));
            } else if dice < mix.read + mix.insert || live == 0 {
                m.insert(key_of(t, hi), hi);
                hi += 1;
            } else if dice < mix.read + mix.insert + mix.remove {
                m.remove(key_of(t, lo));
                lo += 1;
            } else {
                m.update(key_of(t, lo + (rng >> 32) % live), rng);
            }
        }
    });
    drop(m); // not timed: run_parallel returned already
    elapsed.into()
}

fn bustle_part(ctx: &mut Ctx) {
    let cap_log2 = if ctx.quick() { 14 } else { 17 };
    let cap = 1usize << cap_log2;
    ctx.note(format!(
        "map bustle mixes: initial_capacity = 2^{cap_log2} ({cap}); prefill 0.75/0.75/0.0; \
         u64 keys and values; foldhash for every map (RwMap: std SipHash); each thread owns \
         its keys (reads hit); papaya pinned per operation, as in papaya's own conc-map-bench \
         adapter; mixes read/insert/remove/update = 98/1/1/0, 10/40/40/10, 5/80/5/10"
    ));
    for mix in MIXES {
        for &t in &ctx.threads() {
            let impls = vec![
                Impl::new("gosync SyncMap", move |n| {
                    run_mix(SyncMap::<u64, u64>::with_capacity, mix, cap, t, n)
                }),
                Impl::new("gosync ShardedMap", move |n| {
                    run_mix(|_| ShardedMap::<u64, u64>::new(), mix, cap, t, n)
                }),
                Impl::new("gosync RwMap", move |n| {
                    run_mix(|_| RwMap::<u64, u64>::new(), mix, cap, t, n)
                }),
                Impl::new("RwLock<HashMap>", move |n| {
                    run_mix(
                        |c| RwLock::new(HashMap::with_capacity_and_hasher(c, Fh::default())),
                        mix,
                        cap,
                        t,
                        n,
                    )
                }),
                Impl::new("dashmap", move |n| {
                    run_mix(
                        |c| Dash::with_capacity_and_hasher(c, Fh::default()),
                        mix,
                        cap,
                        t,
                        n,
                    )
                }),
                Impl::new("papaya", move |n| {
                    run_mix(
                        |c| Papaya::with_capacity_and_hasher(c, Fh::default()),
                        mix,
                        cap,
                        t,
                        n,
                    )
                }),
                Impl::new("scc", move |n| {
                    run_mix(
                        |c| Scc::with_capacity_and_hasher(c, Fh::default()),
                        mix,
                        cap,
                        t,
                        n,
                    )
                }),
            ];
            ctx.compare(FAMILY, mix.name, t, impls);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TimedMap vs moka
// ---------------------------------------------------------------------------------------------

/// moka's sync cache, given the family's hasher like every other peer.
type Moka = moka::sync::Cache<u64, u64, Fh>;

trait TtlCache: Send + Sync {
    fn get(&self, k: u64) -> bool;
    fn insert(&self, k: u64, v: u64);
}

impl TtlCache for TimedMap<u64, u64> {
    fn get(&self, k: u64) -> bool {
        TimedMap::get(self, &k).is_some()
    }
    fn insert(&self, k: u64, v: u64) {
        TimedMap::insert(self, k, v, Duration::from_secs(600));
    }
}

impl TtlCache for Moka {
    fn get(&self, k: u64) -> bool {
        moka::sync::Cache::get(self, &k).is_some()
    }
    fn insert(&self, k: u64, v: u64) {
        moka::sync::Cache::insert(self, k, v)
    }
}

/// 90% get / 10% insert over 4096 keys, every insert with a 10-minute TTL (nothing expires
/// during the run, so both maps do the same work).
fn run_ttl<C: TtlCache>(c: &C, threads: usize, iters: u64) -> Sample {
    run_parallel(threads, iters, |tid, it| {
        let mut rng = key_of(tid as u64 + 77, 3) | 1;
        while it.next() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let k = (rng >> 20) % 4096;
            if rng.is_multiple_of(10) {
                c.insert(k, rng);
            } else {
                std::hint::black_box(c.get(k));
            }
        }
    })
    .into()
}

fn moka_ttl(max_capacity: Option<u64>) -> Moka {
    let b = moka::sync::Cache::builder().time_to_live(Duration::from_secs(600));
    match max_capacity {
        Some(n) => b.max_capacity(n).build_with_hasher(Fh::default()),
        None => b.build_with_hasher(Fh::default()),
    }
}

fn timed_map(max_capacity: Option<usize>, policy: EvictionPolicy) -> TimedMap<u64, u64> {
    let b = TimedMapBuilder::new().eviction_policy(policy);
    match max_capacity {
        Some(n) => b.max_capacity(n).build(),
        None => b.build(),
    }
}

/// Capacity of the bounded TTL maps: half the mix's 4096 keys, so inserts evict.
const TTL_BOUND: usize = 2048;

fn ttl_part(ctx: &mut Ctx) {
    ctx.note(format!(
        "map TTL: 90% get / 10% insert over 4096 u64 keys, TTL 600 s per insert; moka::sync::Cache \
         with time_to_live(600 s); TtlReadMostly unbounded, TtlReadMostlyBounded with \
         max_capacity {TTL_BOUND} for both; foldhash for both"
    ));
    for &t in &ctx.threads() {
        let timed = timed_map(None, EvictionPolicy::TinyLfu);
        let moka = moka_ttl(None);
        for k in 0..4096 {
            TtlCache::insert(&timed, k, k);
            TtlCache::insert(&moka, k, k);
        }
        ctx.compare(
            FAMILY,
            "TtlReadMostly",
            t,
            vec![
                Impl::new("gosync TimedMap", |n| run_ttl(&timed, t, n)),
                Impl::new("moka", |n| run_ttl(&moka, t, n)),
            ],
        );
    }
    for &t in &ctx.threads() {
        let lfu = timed_map(Some(TTL_BOUND), EvictionPolicy::TinyLfu);
        let lru = timed_map(Some(TTL_BOUND), EvictionPolicy::Lru);
        let moka = moka_ttl(Some(TTL_BOUND as u64));
        for k in 0..4096 {
            TtlCache::insert(&lfu, k, k);
            TtlCache::insert(&lru, k, k);
            TtlCache::insert(&moka, k, k);
        }
        moka.run_pending_tasks();
        ctx.compare(
            FAMILY,
            "TtlReadMostlyBounded",
            t,
            vec![
                Impl::new("gosync TimedMap", |n| run_ttl(&lfu, t, n)),
                Impl::new("gosync TimedMap (LRU)", |n| run_ttl(&lru, t, n)),
                Impl::new("moka", |n| run_ttl(&moka, t, n)),
            ],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bounded caches on a Zipf trace: hit ratio and throughput
// ---------------------------------------------------------------------------------------------

/// Zipf(`s`) over `n` ranks: a cumulative table sampled by binary search.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|r| {
                acc += 1.0 / (r as f64).powf(s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    /// The rank (0 = most popular) for a uniform `u` in [0, 1).
    fn rank(&self, u: f64) -> usize {
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }

    /// `len` accesses, as keys (ranks scrambled so that popular keys spread over shards).
    fn trace(&self, len: usize, seed: u64) -> Vec<u64> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                key_of(5, self.rank(u) as u64)
            })
            .collect()
    }
}

/// Replays `trace` cache-aside (get; on a miss, insert) and returns the hits.
fn replay<C: TtlCache>(c: &C, trace: &[u64]) -> usize {
    trace
        .iter()
        .filter(|&&k| {
            let hit = c.get(k);
            if !hit {
                c.insert(k, k);
            }
            hit
        })
        .count()
}

const ZIPF_KEYS: usize = 100_000;
const ZIPF_ACCESSES: usize = 1_000_000;
const ZIPF_CAPACITY: usize = 10_000;

fn zipf_part(ctx: &mut Ctx) {
    ctx.note(format!(
        "map Zipf: Zipf(0.9) trace of {ZIPF_ACCESSES} accesses over {ZIPF_KEYS} keys, replayed \
         cache-aside (get; insert on a miss) into a cache of {ZIPF_CAPACITY} entries, TTL 600 s; \
         hit ratio from one single-threaded replay of the whole trace; ZipfCacheAside \
         throughput: each thread replays its own trace of the same distribution into one \
         shared cache"
    ));
    let zipf = Zipf::new(ZIPF_KEYS, 0.9);
    let trace = zipf.trace(ZIPF_ACCESSES, 42);
    let hit_ratio = |hits: usize| 100.0 * hits as f64 / ZIPF_ACCESSES as f64;
    let lfu = timed_map(Some(ZIPF_CAPACITY), EvictionPolicy::TinyLfu);
    let r = hit_ratio(replay(&lfu, &trace));
    ctx.metric(FAMILY, "zipf0.9-hit%", "gosync TimedMap", r, "%");
    let lru = timed_map(Some(ZIPF_CAPACITY), EvictionPolicy::Lru);
    let r = hit_ratio(replay(&lru, &trace));
    ctx.metric(FAMILY, "zipf0.9-hit%", "gosync TimedMap (LRU)", r, "%");
    let moka = moka_ttl(Some(ZIPF_CAPACITY as u64));
    let r = hit_ratio(replay(&moka, &trace));
    ctx.metric(FAMILY, "zipf0.9-hit%", "moka", r, "%");
    drop((lfu, lru, moka));

    let traces: Vec<Vec<u64>> = (0..8)
        .map(|t| zipf.trace(ZIPF_ACCESSES / 4, 1000 + t))
        .collect();
    for &t in &ctx.threads() {
        let lfu = timed_map(Some(ZIPF_CAPACITY), EvictionPolicy::TinyLfu);
        let lru = timed_map(Some(ZIPF_CAPACITY), EvictionPolicy::Lru);
        let moka = moka_ttl(Some(ZIPF_CAPACITY as u64));
        ctx.compare(
            FAMILY,
            "ZipfCacheAside",
            t,
            vec![
                Impl::new("gosync TimedMap", |n| run_zipf(&lfu, &traces, t, n)),
                Impl::new("gosync TimedMap (LRU)", |n| run_zipf(&lru, &traces, t, n)),
                Impl::new("moka", |n| run_zipf(&moka, &traces, t, n)),
            ],
        );
    }
}

/// `threads` threads replay their own traces cache-aside into `c`, `iters` accesses in all.
fn run_zipf<C: TtlCache>(c: &C, traces: &[Vec<u64>], threads: usize, iters: u64) -> Sample {
    run_parallel(threads, iters, |tid, it| {
        let tr = &traces[tid % traces.len()];
        let mut i = 0;
        while it.next() {
            let k = tr[i];
            i = if i + 1 == tr.len() { 0 } else { i + 1 };
            if !c.get(k) {
                c.insert(k, k);
            }
        }
    })
    .into()
}

// ---------------------------------------------------------------------------------------------
// Atomic read-modify-write: SyncMap compute/update vs papaya; ShardedMap entry vs dashmap
// ---------------------------------------------------------------------------------------------

/// Keys each thread owns in `UpdateDisjoint`.
const OWN_KEYS: u64 = 1024;

/// Each thread increments the counters of its own `OWN_KEYS` keys in turn through `incr`.
fn run_disjoint(incr: &(dyn Fn(u64) + Sync), threads: usize, iters: u64) -> Sample {
    run_parallel(threads, iters, |tid, it| {
        let mut i = 0;
        while it.next() {
            incr(key_of(tid as u64, i % OWN_KEYS));
            i += 1;
        }
    })
    .into()
}

fn compute_part(ctx: &mut Ctx) {
    ctx.note(format!(
        "map UpdateDisjoint: each thread increments its own {OWN_KEYS} u64 counters in turn \
         (present keys, no contention on a key): SyncMap::update / SyncMap::compute vs \
         papaya's update (pinned per operation), dashmap get_mut, RwLock<HashMap> get_mut"
    ));
    for &t in &ctx.threads() {
        let keys = || (0..t as u64).flat_map(|tid| (0..OWN_KEYS).map(move |i| key_of(tid, i)));
        let sync = SyncMap::<u64, u64>::new();
        let pap = Papaya::with_hasher(Fh::default());
        let dash = Dash::with_hasher(Fh::default());
        let rw = RwLockMap::default();
        for k in keys() {
            sync.store(k, 0);
            pap.pin().insert(k, 0);
            dash.insert(k, 0);
            rw.write().unwrap().insert(k, 0);
        }
        ctx.compare(
            FAMILY,
            "UpdateDisjoint",
            t,
            vec![
                Impl::new("gosync SyncMap update", |n| {
                    run_disjoint(&|k| sink(sync.update(&k, |v| v + 1)), t, n)
                }),
                Impl::new("gosync SyncMap compute", |n| {
                    run_disjoint(&|k| sink(sync.compute(k, |v| v.map(|v| v + 1))), t, n)
                }),
                Impl::new("papaya update", |n| {
                    run_disjoint(&|k| sink(pap.pin().update(k, |v| v + 1).copied()), t, n)
                }),
                Impl::new("dashmap get_mut", |n| {
                    run_disjoint(
                        &|k| {
                            if let Some(mut v) = dash.get_mut(&k) {
                                *v += 1;
                            }
                        },
                        t,
                        n,
                    )
                }),
                Impl::new("RwLock<HashMap>", |n| {
                    run_disjoint(
                        &|k| {
                            if let Some(v) = rw.write().unwrap().get_mut(&k) {
                                *v += 1;
                            }
                        },
                        t,
                        n,
                    )
                }),
            ],
        );
    }
}

/// Keys of `EntryIncrement`, shared by all threads.
const ENTRY_KEYS: u64 = 4096;

/// Counts random keys (uniform over `ENTRY_KEYS`, shared by all threads) through `incr`.
fn run_counting(incr: &(dyn Fn(u64) + Sync), threads: usize, iters: u64) -> Sample {
    run_parallel(threads, iters, |tid, it| {
        let mut rng = key_of(tid as u64 + 500, 1) | 1;
        while it.next() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            incr(key_of(0, (rng >> 20) % ENTRY_KEYS));
        }
    })
    .into()
}

fn entry_part(ctx: &mut Ctx) {
    ctx.note(format!(
        "map EntryIncrement: every operation is `*entry(k).or_insert(0) += 1` on a key drawn \
         uniformly from {ENTRY_KEYS} keys shared by all threads, starting from an empty map \
         (each map with its default shard count; foldhash)"
    ));
    for &t in &ctx.threads() {
        let sharded = ShardedMap::<u64, u64>::with_shards_and_hasher(32, Fh::default());
        let dash = Dash::with_hasher(Fh::default());
        let rw = gosync::map::RwMap::<u64, u64, Fh>::with_hasher(Fh::default());
        let std_rw = RwLockMap::default();
        ctx.compare(
            FAMILY,
            "EntryIncrement",
            t,
            vec![
                Impl::new("gosync ShardedMap entry", |n| {
                    run_counting(&|k| sharded.entry(k, |e| *e.or_insert(0) += 1), t, n)
                }),
                Impl::new("dashmap entry", |n| {
                    run_counting(&|k| *dash.entry(k).or_insert(0) += 1, t, n)
                }),
                Impl::new("gosync RwMap entry", |n| {
                    run_counting(&|k| rw.entry(k, |e| *e.or_insert(0) += 1), t, n)
                }),
                Impl::new("RwLock<HashMap> entry", |n| {
                    run_counting(
                        &|k| *std_rw.write().unwrap().entry(k).or_insert(0) += 1,
                        t,
                        n,
                    )
                }),
            ],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Memory per entry
// ---------------------------------------------------------------------------------------------

/// Heap bytes in use according to glibc (small chunks + mmapped chunks), all arenas.
fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let mi = unsafe { libc::mallinfo2() };
    mi.uordblks + mi.hblkhd
}

fn bytes_per_entry<M>(n: u64, make: impl FnOnce() -> M, insert: impl Fn(&M, u64)) -> f64 {
    let before = heap_in_use();
    let m = make();
    for i in 0..n {
        insert(&m, key_of(9, i));
    }
    let after = heap_in_use();
    drop(m);
    (after.saturating_sub(before)) as f64 / n as f64
}

fn memory_part(ctx: &mut Ctx) {
    let n: u64 = if ctx.quick() { 100_000 } else { 1_000_000 };
    ctx.note(format!(
        "map memory: heap bytes in use (glibc mallinfo2) after inserting {n} u64 -> u64 entries \
         into an empty map on one thread, divided by {n}; includes allocator overhead"
    ));
    let name = format!("bytes/entry@{n}");
    let figures = [
        (
            "gosync SyncMap",
            bytes_per_entry(n, SyncMap::<u64, u64>::new, |m, k| m.store(k, k)),
        ),
        (
            "gosync ShardedMap",
            bytes_per_entry(n, ShardedMap::<u64, u64>::new, |m, k| {
                m.set(k, k);
            }),
        ),
        (
            "dashmap",
            bytes_per_entry(
                n,
                || Dash::with_hasher(Fh::default()),
                |m, k| {
                    m.insert(k, k);
                },
            ),
        ),
        (
            "papaya",
            bytes_per_entry(
                n,
                || Papaya::with_hasher(Fh::default()),
                |m, k| {
                    m.pin().insert(k, k);
                },
            ),
        ),
        (
            "scc",
            bytes_per_entry(
                n,
                || Scc::with_hasher(Fh::default()),
                |m, k| {
                    let _ = m.insert(k, k);
                },
            ),
        ),
        (
            "std HashMap",
            bytes_per_entry(
                n,
                || RwLock::new(HashMap::<u64, u64, Fh>::default()),
                |m, k| {
                    m.write().unwrap().insert(k, k);
                },
            ),
        ),
    ];
    for (imp, bytes) in figures {
        ctx.metric(FAMILY, &name, imp, bytes, "bytes");
    }
}

// ---------------------------------------------------------------------------------------------
// Single-thread operation costs in thread CPU time
// ---------------------------------------------------------------------------------------------

/// This thread's CPU time. Unlike wall time it does not count time the thread spent
/// descheduled, so these figures stay meaningful on a loaded machine.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Best-of-`rounds` CPU ns per call of `op(i)` for `i` in `0..n`.
fn cpu_ns_per_op(n: u64, rounds: usize, mut op: impl FnMut(u64)) -> f64 {
    (0..rounds)
        .map(|_| {
            let t = thread_cpu_time();
            for i in 0..n {
                op(i);
            }
            (thread_cpu_time() - t).as_nanos() as f64 / n as f64
        })
        .fold(f64::MAX, f64::min)
}

/// Keeps a result alive for the optimiser.
fn sink(x: Option<u64>) {
    std::hint::black_box(x);
}

/// The four basic operations on one thread, 1024 keys, as CPU time per operation.
fn cpu_part(ctx: &mut Ctx) {
    const KEYS: u64 = 1024;
    let (n, rounds) = if ctx.quick() {
        (200_000, 5)
    } else {
        (2_000_000, 7)
    };
    ctx.note(format!(
        "map cpu-time: one thread, {KEYS} u64 keys, thread CPU time per operation (best of \
         {rounds} x {n} calls), robust to other processes; hit = load of a present key, miss = \
         absent key, overwrite = swap/insert of a present key, churn = insert + remove of a new key"
    ));
    let sync = SyncMap::<u64, u64>::new();
    let dash = Dash::with_hasher(Fh::default());
    let pap = Papaya::with_hasher(Fh::default());
    let rw = RwLockMap::default();
    for k in 0..KEYS {
        sync.store(k, k);
        dash.insert(k, k);
        pap.pin().insert(k, k);
        rw.write().unwrap().insert(k, k);
    }
    let rows: [(&str, [f64; 4]); 4] = [
        (
            "gosync SyncMap",
            [
                cpu_ns_per_op(n, rounds, |i| sink(sync.load(&(i % KEYS)))),
                cpu_ns_per_op(n, rounds, |i| sink(sync.load(&(i + KEYS)))),
                cpu_ns_per_op(n, rounds, |i| sink(sync.swap(i % KEYS, i))),
                cpu_ns_per_op(n, rounds, |i| {
                    sync.store(i + KEYS, i);
                    sync.delete(&(i + KEYS));
                }),
            ],
        ),
        (
            "dashmap",
            [
                cpu_ns_per_op(n, rounds, |i| sink(dash.get(&(i % KEYS)).map(|r| *r))),
                cpu_ns_per_op(n, rounds, |i| sink(dash.get(&(i + KEYS)).map(|r| *r))),
                cpu_ns_per_op(n, rounds, |i| sink(dash.insert(i % KEYS, i))),
                cpu_ns_per_op(n, rounds, |i| {
                    dash.insert(i + KEYS, i);
                    dash.remove(&(i + KEYS));
                }),
            ],
        ),
        (
            "papaya",
            [
                cpu_ns_per_op(n, rounds, |i| sink(pap.pin().get(&(i % KEYS)).copied())),
                cpu_ns_per_op(n, rounds, |i| sink(pap.pin().get(&(i + KEYS)).copied())),
                cpu_ns_per_op(n, rounds, |i| sink(pap.pin().insert(i % KEYS, i).copied())),
                cpu_ns_per_op(n, rounds, |i| {
                    pap.pin().insert(i + KEYS, i);
                    pap.pin().remove(&(i + KEYS));
                }),
            ],
        ),
        (
            "RwLock<HashMap>",
            [
                cpu_ns_per_op(n, rounds, |i| {
                    sink(rw.read().unwrap().get(&(i % KEYS)).copied())
                }),
                cpu_ns_per_op(n, rounds, |i| {
                    sink(rw.read().unwrap().get(&(i + KEYS)).copied())
                }),
                cpu_ns_per_op(n, rounds, |i| sink(rw.write().unwrap().insert(i % KEYS, i))),
                cpu_ns_per_op(n, rounds, |i| {
                    let mut g = rw.write().unwrap();
                    g.insert(i + KEYS, i);
                    g.remove(&(i + KEYS));
                }),
            ],
        ),
    ];
    for (imp, figures) in rows {
        for (op, ns) in ["hit", "miss", "overwrite", "churn"].iter().zip(figures) {
            ctx.metric(FAMILY, &format!("cpu-ns/{op}"), imp, ns, "ns");
        }
    }
}

/// A part of the family; `GOSYNC_BENCH_MAP_PARTS=ttl,zipf` runs only some.
type Part = (&'static str, fn(&mut Ctx));

/// The parts of the family, in order.
const PARTS: [Part; 8] = [
    ("cpu", cpu_part),
    ("memory", memory_part),
    ("go", go_part),
    ("bustle", bustle_part),
    ("ttl", ttl_part),
    ("zipf", zipf_part),
    ("compute", compute_part),
    ("entry", entry_part),
];

/// Family entry point.
pub fn run(ctx: &mut Ctx) {
    let only = std::env::var("GOSYNC_BENCH_MAP_PARTS").ok();
    for (name, part) in PARTS {
        if only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|p| p.trim() == name))
        {
            part(ctx);
        }
    }
}
