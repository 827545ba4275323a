//! Contention profiles: where threads waited for gosync's locks, and who made them wait.
//!
//! The Rust counterpart of Go's `runtime.SetMutexProfileFraction` /
//! `runtime.SetBlockProfileRate` and `go tool pprof -mutex` / `-block`:
//!
//! - The **mutex profile** ([`Kind::Mutex`], [`set_mutex_rate`]) charges the time threads spent
//!   waiting for a lock to the stack of the thread that *held* it, recorded when it unlocks (as
//!   Go does since 1.8): it answers "which critical section makes the others wait?".
//! - The **block profile** ([`Kind::Block`], [`set_block_rate`]) charges each wait to the
//!   stack of the *waiting* thread: "where do my threads sit blocked?".
//!
//! Both are off until a rate is set. Sampled events are aggregated per stack (contentions,
//! total delay, longest single delay); stacks are captured as bare addresses and resolved to
//! function names only when a report is written. [`write_pprof`] writes a gzipped pprof
//! protobuf that `go tool pprof`, `pprof -http` and speedscope read; [`top`] is a plain-text
//! summary.
//!
//! ```no_run
//! use gosync::profile::{self, Kind};
//!
//! profile::set_mutex_rate(100); // Go's common setting: one contention in 100
//! // ... run the workload ...
//! let mut file = std::fs::File::create("mutex.pb.gz").unwrap();
//! profile::write_pprof(&mut file, Kind::Mutex).unwrap();
//! println!("{}", profile::top(10));
//! // then: go tool pprof -top mutex.pb.gz
//! ```
//!
//! # Per-lock counters
//!
//! The profiles are per call site. For the totals of one lock — acquisitions, contended
//! acquisitions, total and longest wait, starvation entries, handoffs — enable the
//! `lock-stats` feature and read `Mutex::stats()` (a [`Mutex`](crate::Mutex) made with
//! `Mutex::named` carries its name into them). Those counters are exact, not sampled, and
//! cost a load and a store per acquisition, so they are a compile-time choice: without the
//! feature no lock path changes.
//!
//! # Cost
//!
//! Only the contended paths (a thread about to block, an unlock that finds waiters) consult
//! the profiler; the uncontended lock and unlock paths do not change. With both rates at 0
//! a contended path reads two atomics. With a rate set, a sampled wait and an unlock that wakes
//! a waiter or hands the lock over while sampled waiters are present also update a small
//! per-lock record, and each such unlock captures its stack (a few microseconds) after the
//! wake-up, so the capture never delays it. Other contended unlocks read an atomic or two.
//!
//! # Sampling (as in Go)
//!
//! - Mutex rate `n`: 0 = off, 1 = every wait, `n` = on average one waiting thread in `n`,
//!   chosen at random when it begins to wait. An unlock that wakes a waiter (or hands the
//!   lock to one) is charged with the waiting of the sampled waiters since the previous
//!   charge, multiplied by `n` (as Go's `runtime/pprof` scales), so counts and delays
//!   estimate the totals. `contentions` counts (waiter, charge) pairs: a thread that waited
//!   through three waking unlocks counts once at each of the three sites. An unlock that finds
//!   a waiter already awake (a [`Mutex`](crate::Mutex) wakes one waiter at a time) wakes
//!   nobody and is not charged; the waiting during its hold goes to the next waking unlock.
//! - Block rate `n` (nanoseconds): 0 = off, 1 = every blocking event; otherwise waits of at
//!   least `n` ns are all recorded and a shorter wait of `d` ns with probability `d / n`,
//!   weighted by `n / d` so that counts and delays stay unbiased estimates.
//!
//! # Coverage
//!
//! [`covered`] lists what is recorded. Both profiles: [`Mutex`](crate::Mutex) and the locks
//! on its raw lock ([`ReentrantMutex`](crate::ReentrantMutex), [`TokenMutex`](crate::TokenMutex),
//! `lock_api::Mutex<gosync::RawMutex, _>`), [`RwMutex`](crate::RwMutex) (readers waiting for a
//! writer are charged to the writer's unlock, a writer waiting for readers to the last
//! reader's unlock, writers waiting for each other as on a `Mutex`). Block profile only (a
//! signal, not an unlock, ends these waits, as for Go's channels and `sync.Cond`):
//! [`Cond`](crate::Cond) and [`WaitGroup`](crate::WaitGroup) waits, blocking
//! [`Semaphore`](crate::x::Semaphore) acquires (once queued), [`SingleFlight`](crate::x::SingleFlight)
//! callers waiting for the running call, blocking connection-pool checkouts and worker-pool
//! submitters waiting for room.
//!
//! **Not profiled**: the async forms (`lock_async`, `wait_async`, `acquire_async`, ...), the
//! short spin of a `Semaphore` acquire before it queues, `Once` waits, and the async
//! connection pool.
//!
//! # Differences from Go
//!
//! - Go charges each woken waiter's whole wait to the unlocker that wakes it. Here each waking
//!   unlock is charged with the waiting of all sampled waiters since the previous waking
//!   unlock: the same total, split by which unlock ended each stretch of waiting rather than
//!   by which waiter it woke.
//! - Values are wall-clock nanoseconds (Go measures CPU ticks and converts).
//! - [`reset`] clears the recorded samples (Go's profiles only grow).

mod proto;
mod record;
mod report;

use core::sync::atomic::{AtomicU64, Ordering};

pub use record::reset;
pub use report::{sites, top, write_pprof, Site};

pub(crate) use record::{
    contended_unlock, contended_unlock_if, wait_begins, wait_ended, Charge, WaitStart,
};

/// Which profile: Go's `-mutex` (the holders that made others wait) or `-block` (the waiters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Delay charged to the stack that held the lock and unlocked it (Go's mutex profile).
    #[doc(alias = "mutex")]
    Mutex,
    /// Delay charged to the stack that waited (Go's block profile).
    #[doc(alias = "block")]
    Block,
}

/// One in `MUTEX_RATE` contentions is sampled (0 = off).
static MUTEX_RATE: AtomicU64 = AtomicU64::new(0);
/// Block profile rate in nanoseconds (0 = off).
static BLOCK_RATE: AtomicU64 = AtomicU64::new(0);

/// Sets the mutex profile's sampling rate and returns the previous one (Go's
/// `runtime.SetMutexProfileFraction`): 0 turns it off, 1 samples every waiting thread, `n`
/// on average one in `n`. Safe to call at any time, also while threads contend.
#[doc(alias = "SetMutexProfileFraction")]
pub fn set_mutex_rate(n: u64) -> u64 {
    MUTEX_RATE.swap(n, Ordering::Relaxed)
}

/// Sets the block profile's rate in nanoseconds (Go's `runtime.SetBlockProfileRate`): 0 turns
/// it off, 1 records every blocking event, `n` records on average one event per `n`
/// nanoseconds spent blocked. Returns the previous rate. Safe to call at any time.
#[doc(alias = "SetBlockProfileRate")]
pub fn set_block_rate(n: u64) -> u64 {
    BLOCK_RATE.swap(n, Ordering::Relaxed)
}

/// The current mutex profile rate (0 = off).
pub fn mutex_rate() -> u64 {
    MUTEX_RATE.load(Ordering::Relaxed)
}

/// The current block profile rate in nanoseconds (0 = off).
pub fn block_rate() -> u64 {
    BLOCK_RATE.load(Ordering::Relaxed)
}

/// The primitives whose waits this build records (Go names in parentheses where they differ).
pub fn covered() -> &'static [&'static str] {
    COVERED
}

/// See [`covered`].
const COVERED: &[&str] = &[
    "Mutex (sync.Mutex): mutex + block",
    "ReentrantMutex, TokenMutex, RawMutex: mutex + block",
    "RwMutex (sync.RWMutex): mutex + block",
    "Cond (sync.Cond): block",
    "WaitGroup (sync.WaitGroup): block",
    "x::Semaphore (semaphore.Weighted): block",
    "x::SingleFlight (singleflight.Group): block",
    "connpool::Pool checkout: block",
    "workerpool submit: block",
];
