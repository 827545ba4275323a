//! Recording: the hooks the contended paths call, sampling, and the per-stack aggregates.
//!
//! Everything here runs only on contended paths (a thread about to wait, a wait that ended,
//! an unlock that found waiters), and returns after two relaxed loads when both rates are 0.
//! The profiler's own state is guarded by `std::sync::Mutex`es (never by gosync's locks,
//! which would profile themselves).

use core::sync::atomic::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use super::{Kind, BLOCK_RATE, MUTEX_RATE};

/// Deepest stack recorded (frames beyond it are cut, as Go cuts at 32/64).
const MAX_DEPTH: usize = 64;

/// Aggregated samples of one stack in one profile.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Entry {
    /// Estimated number of events (sampled events times their weight).
    pub(crate) count: u64,
    /// Estimated total delay in nanoseconds (sampled delays times their weight).
    pub(crate) delay: u64,
    /// The longest single sampled delay, in nanoseconds (not weighted).
    pub(crate) max: u64,
}

/// The samples: (profile, stack of return addresses, innermost first) → aggregate.
static SAMPLES: Mutex<BTreeMap<(Kind, Vec<usize>), Entry>> = Mutex::new(BTreeMap::new());

fn samples() -> MutexGuard<'static, BTreeMap<(Kind, Vec<usize>), Entry>> {
    // A panic while this is held cannot leave an aggregate half-updated in a way that matters.
    SAMPLES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Discards every recorded sample of both profiles (the rates are unchanged). Not in Go.
pub fn reset() {
    samples().clear();
}

/// A copy of one profile's aggregates.
pub(crate) fn snapshot(kind: Kind) -> Vec<(Vec<usize>, Entry)> {
    samples()
        .iter()
        .filter(|((k, _), _)| *k == kind)
        .map(|((_, stack), e)| (stack.clone(), *e))
        .collect()
}

/// Nanoseconds since the profiler's epoch (its first use), at least 1.
fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    (epoch.elapsed().as_nanos() as u64).max(1)
}

/// The calling thread's stack as return addresses, innermost first (resolved at report time).
fn capture() -> Vec<usize> {
    let mut stack = Vec::with_capacity(32);
    backtrace::trace(|frame| {
        let ip = frame.ip() as usize;
        if ip != 0 {
            stack.push(ip);
        }
        stack.len() < MAX_DEPTH
    });
    stack
}

fn record(kind: Kind, stack: Vec<usize>, count: u64, delay: u64, raw_delay: u64) {
    let mut samples = samples();
    let e = samples.entry((kind, stack)).or_default();
    e.count = e.count.saturating_add(count);
    e.delay = e.delay.saturating_add(delay);
    e.max = e.max.max(raw_delay);
}

/// The waiting accumulated on one lock and not yet charged to an unlocker.
///
/// `acc` is the integral of the number of waiters over time since the last charge: each
/// contended unlock takes it (the waiting that happened while that holder held the lock).
#[derive(Debug, Default)]
struct Pending {
    /// Threads now waiting that joined while the mutex profile was on.
    waiters: u64,
    /// When `acc` was last brought up to date (profiler clock).
    since: u64,
    /// Waiter-nanoseconds not yet charged.
    acc: u64,
}

impl Pending {
    fn advance(&mut self, now: u64) {
        let dt = now.saturating_sub(self.since);
        self.acc = self.acc.saturating_add(self.waiters.saturating_mul(dt));
        self.since = self.since.max(now);
    }
}

const SHARDS: usize = 16;

/// Per-lock pending waits, keyed by the lock's address, sharded to keep the profiler's own
/// lock uncontended. An entry exists only while a lock has profiled waiters.
fn pending(lock: usize) -> MutexGuard<'static, HashMap<usize, Pending>> {
    static TABLE: OnceLock<[Mutex<HashMap<usize, Pending>>; SHARDS]> = OnceLock::new();
    let table = TABLE.get_or_init(|| core::array::from_fn(|_| Mutex::new(HashMap::new())));
    // Locks are at least word-aligned: drop the low bits before picking a shard.
    table[(lock >> 4) % SHARDS]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// A wait in progress, from [`wait_begins`] to [`wait_ended`].
#[derive(Debug)]
pub(crate) struct WaitStart {
    /// Profiler clock at the start; 0 = neither profile was on.
    start: u64,
    /// The wait was added to its lock's [`Pending`] (the mutex profile was on).
    counted: bool,
}

impl WaitStart {
    /// A wait the profiler ignores.
    pub(crate) const NONE: WaitStart = WaitStart {
        start: 0,
        counted: false,
    };
}

/// A thread is about to wait. `lock` is the address of the lock it waits for (its holder's
/// unlock is charged for the wait in the mutex profile), or 0 for a wait that no unlock ends
/// (a `Cond` or `WaitGroup` wait: block profile only).
#[inline]
pub(crate) fn wait_begins(lock: usize) -> WaitStart {
    let mutex = MUTEX_RATE.load(Ordering::Relaxed);
    if mutex == 0 && BLOCK_RATE.load(Ordering::Relaxed) == 0 {
        return WaitStart::NONE;
    }
    wait_begins_on(lock, mutex)
}

#[cold]
fn wait_begins_on(lock: usize, mutex: u64) -> WaitStart {
    let start = now_ns();
    let counted = mutex != 0 && lock != 0;
    if counted {
        let mut table = pending(lock);
        let p = table.entry(lock).or_insert_with(|| Pending {
            since: start,
            ..Pending::default()
        });
        p.advance(start);
        p.waiters += 1;
    }
    WaitStart { start, counted }
}

/// The wait begun by [`wait_begins`] ended (lock taken, woken, or timed out). Records a block
/// profile event for the calling (waiting) thread if the block profile samples it.
#[inline]
pub(crate) fn wait_ended(lock: usize, wait: WaitStart) {
    if wait.start != 0 {
        wait_ended_on(lock, wait);
    }
}

#[cold]
fn wait_ended_on(lock: usize, wait: WaitStart) {
    let now = now_ns();
    if wait.counted {
        let mut table = pending(lock);
        if let Some(p) = table.get_mut(&lock) {
            p.advance(now);
            p.waiters = p.waiters.saturating_sub(1);
            if p.waiters == 0 {
                // Waiting after the last unlock (the wake-up) is nobody's hold: dropped.
                table.remove(&lock);
            }
        }
    }
    let rate = BLOCK_RATE.load(Ordering::Relaxed);
    let delay = now.saturating_sub(wait.start);
    if rate == 0 || delay == 0 {
        return;
    }
    // Go's rule: waits of at least `rate` ns always, shorter ones with probability delay/rate
    // (weighted by rate/delay so the estimate stays unbiased).
    let (count, weighted) = if delay >= rate {
        (1, delay)
    } else if fastrand::u64(..rate) < delay {
        ((rate / delay).max(1), rate)
    } else {
        return;
    };
    record(Kind::Block, capture(), count, weighted, delay);
}

/// The calling thread unlocks `lock` and found waiters (the raw lock's unlock slow path).
/// Charges it, in the mutex profile, with the waiting that accumulated on the lock since the
/// previous charge.
#[inline]
pub(crate) fn contended_unlock(lock: usize) {
    let rate = MUTEX_RATE.load(Ordering::Relaxed);
    if rate != 0 {
        contended_unlock_on(lock, rate);
    }
}

#[cold]
fn contended_unlock_on(lock: usize, rate: u64) {
    let now = now_ns();
    let delay = {
        let mut table = pending(lock);
        let Some(p) = table.get_mut(&lock) else {
            return;
        };
        p.advance(now);
        core::mem::take(&mut p.acc)
    };
    if delay == 0 || (rate > 1 && fastrand::u64(..rate) != 0) {
        return;
    }
    record(
        Kind::Mutex,
        capture(),
        rate,
        delay.saturating_mul(rate),
        delay,
    );
}
