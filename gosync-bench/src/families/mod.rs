//! Benchmark families. Each family is one module with `pub fn run(ctx: &mut Ctx)`, registered
//! in [`FAMILIES`] in the order the full run goes through them.

use crate::harness::Ctx;

// -- family modules ---------------------------------------------------------------------
pub mod asyncs;
pub mod cond;
pub mod connpool;
pub mod detect;
pub mod dist;
pub mod map;
pub mod mutex;
pub mod pool;
pub mod profile;
pub mod rwmutex;
pub mod workerpool;
pub mod x;

pub mod once;
pub mod waitgroup;
// -- end of family modules --------------------------------------------------------------

/// A family's entry point.
pub type Entry = fn(&mut Ctx);

/// Every family: `(name, entry, one-line description)`.
pub const FAMILIES: &[(&str, Entry, &str)] = &[
    // -- registered families --------------------------------------------------------------
    (
        "mutex",
        mutex::run,
        "Mutex vs std/parking_lot Mutex, spinlock, Go: Uncontended, Mutex, Slack, Work, Spin, NoSpin, fairness waits",
    ),
    (
        "cond",
        cond::run,
        "Cond vs std/parking_lot Condvar, Go: BenchmarkCond1..32 (broadcast barrier)",
    ),
    (
        "rwmutex",
        rwmutex::run,
        "RwMutex vs std/parking_lot RwLock, ShardedLock, Go: RWMutexWrite100/10, Work, writer wait",
    ),
    (
        "pool",
        pool::run,
        "sync.Pool and buffer pools vs lockfree-object-pool, object-pool, opool, alloc, Go",
    ),
    (
        "x",
        x::run,
        "x/sync: Semaphore (async vs tokio, blocking vs Mutex+Condvar), SingleFlight stampede",
    ),
    (
        "async",
        asyncs::run,
        "Mutex::lock_async and RwMutex::read_async/write_async vs tokio's Mutex and RwLock, 1..8 tasks",
    ),
    (
        "waitgroup",
        waitgroup::run,
        "WaitGroup: Go's add/done/wait benchmarks vs crossbeam and Go",
    ),
    (
        "once",
        once::run,
        "Once family fast paths vs std Once/OnceLock/LazyLock, once_cell and Go",
    ),
    (
        "workerpool",
        workerpool::run,
        "worker pools: 1M tiny tasks and 10 µs sleeping tasks, throughput and peak memory",
    ),
    (
        "map",
        map::run,
        "SyncMap, ShardedMap, RwMap, TimedMap vs Go's sync.Map, RwLock<HashMap>, dashmap, papaya, scc, moka",
    ),
    (
        "connpool",
        connpool::run,
        "connection pool checkout+checkin vs r2d2 (blocking), bb8 and deadpool (async); trivial and loopback TCP; 1..64 clients",
    ),
    (
        "detect",
        detect::run,
        "deadlock detector cost: gosync Mutex/RwMutex (this build) vs tracing-mutex and parking_lot",
    ),
    (
        "profile",
        profile::run,
        "contention profiler cost: contended gosync Mutex with the profiler off, at mutex rate 100 and at rate 1",
    ),
    (
        "dist",
        dist::run,
        "etcd Mutex (gosync-dist) vs etcd's Lock RPC and Go's concurrency.Mutex: lock+unlock, 1/4/16 clients (at least 20 operations per client in every run: the steady state, not the start), watches per acquisition",
    ),
    // -- end of registered families -------------------------------------------------------
];
