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
use core::sync::atomic::AtomicU64;

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

/// The sampled waiting accumulated on one lock and not yet charged to an unlocker.
///
/// Only sampled waiters (one in `rate`) take part, each with weight `rate` (the rate when it
/// began to wait), so the totals estimate those of all waiters. `acc` is the integral over
/// time of the summed weights of the waiters present since the last charge: each unlock that
/// wakes a waiter or hands the lock over takes it (the waiting that this wake-up ends or
/// interrupts).
#[derive(Debug, Default)]
struct Pending {
    /// Sampled waiters now waiting.
    waiters: u64,
    /// Their summed weights.
    weight: u64,
    /// Summed weights of sampled waiters that left since the last charge (they waited
    /// during it, so they count as contentions of the next charge).
    left: u64,
    /// When the integrals were last brought up to date (profiler clock).
    since: u64,
    /// Weighted waiter-nanoseconds not yet charged.
    acc: u64,
    /// The same, unweighted (for the longest single delay).
    raw: u64,
}

impl Pending {
    fn advance(&mut self, now: u64) {
        let dt = now.saturating_sub(self.since);
        self.acc = self.acc.saturating_add(self.weight.saturating_mul(dt));
        self.raw = self.raw.saturating_add(self.waiters.saturating_mul(dt));
        self.since = self.since.max(now);
    }
}

const SHARDS: usize = 16;

/// Sampled waiters in flight, over all locks: a contended unlock looks at the table only if
/// this is non-zero.
static SAMPLED_WAITING: AtomicU64 = AtomicU64::new(0);

/// Per-lock pending waits, keyed by the lock's address, sharded. An entry exists only while
/// a lock has sampled waiters; only sampled waiters and the unlocker (one at a time per lock)
/// take a shard's lock.
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
    /// Profiler clock at the start; 0 = the wait is not profiled.
    start: u64,
    /// The weight with which the wait takes part in its lock's [`Pending`] (0: it does not).
    weight: u64,
}

impl WaitStart {
    /// A wait the profiler ignores.
    pub(crate) const NONE: WaitStart = WaitStart {
        start: 0,
        weight: 0,
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
    // The mutex profile samples waiters: one in `mutex`.
    let weight = if mutex != 0 && lock != 0 && (mutex == 1 || fastrand::u64(..mutex) == 0) {
        mutex
    } else {
        0
    };
    if weight == 0 && BLOCK_RATE.load(Ordering::Relaxed) == 0 {
        return WaitStart::NONE;
    }
    let start = now_ns();
    if weight != 0 {
        SAMPLED_WAITING.fetch_add(1, Ordering::Relaxed);
        let mut table = pending(lock);
        let p = table.entry(lock).or_insert_with(|| Pending {
            since: start,
            ..Pending::default()
        });
        p.advance(start);
        p.waiters += 1;
        p.weight += weight;
    }
    WaitStart { start, weight }
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
    if wait.weight != 0 {
        let mut table = pending(lock);
        if let Some(p) = table.get_mut(&lock) {
            p.advance(now);
            p.waiters = p.waiters.saturating_sub(1);
            p.weight = p.weight.saturating_sub(wait.weight);
            p.left = p.left.saturating_add(wait.weight);
            if p.waiters == 0 {
                // Waiting after the last unlock (the wake-up) is nobody's hold: dropped.
                table.remove(&lock);
            }
        }
        drop(table);
        SAMPLED_WAITING.fetch_sub(1, Ordering::Relaxed);
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

/// What one contended unlock is charged with, taken by [`contended_unlock`] before the
/// unlocker wakes anyone and recorded by [`Charge::record`] after, so that capturing the
/// unlocker's stack delays neither the wake-up nor a handoff.
#[must_use = "a charge is recorded only by `Charge::record`"]
#[derive(Debug)]
pub(crate) struct Charge(Option<Taken>);

#[derive(Debug)]
struct Taken {
    count: u64,
    delay: u64,
    raw: u64,
}

impl Charge {
    /// Records the charge (if any) at the calling thread's stack.
    #[inline]
    pub(crate) fn record(self) {
        if let Some(t) = self.0 {
            record_taken(t);
        }
    }
}

#[cold]
fn record_taken(t: Taken) {
    record(Kind::Mutex, capture(), t.count, t.delay, t.raw);
}

/// The calling thread unlocks `lock` and is about to wake a waiter or hand the lock over (the
/// raw lock's unlock slow path). Takes, for the mutex profile, the sampled waiting that
/// accumulated on the lock since the previous charge; the caller records it once it has woken
/// whom it wakes.
#[inline]
pub(crate) fn contended_unlock(lock: usize) -> Charge {
    contended_unlock_if(lock, || true)
}

/// [`contended_unlock`] if `wakes()` says the unlock wakes a waiter or hands the lock over;
/// `wakes` is called only while some lock has sampled waiters.
#[inline]
pub(crate) fn contended_unlock_if(lock: usize, wakes: impl FnOnce() -> bool) -> Charge {
    if SAMPLED_WAITING.load(Ordering::Relaxed) != 0 && wakes() {
        contended_unlock_on(lock)
    } else {
        Charge(None)
    }
}

#[cold]
fn contended_unlock_on(lock: usize) -> Charge {
    let now = now_ns();
    let (count, delay, raw) = {
        let mut table = pending(lock);
        let Some(p) = table.get_mut(&lock) else {
            return Charge(None);
        };
        p.advance(now);
        let count = p.weight.saturating_add(core::mem::take(&mut p.left));
        (
            count,
            core::mem::take(&mut p.acc),
            core::mem::take(&mut p.raw),
        )
    };
    if delay == 0 {
        return Charge(None);
    }
    Charge(Some(Taken { count, delay, raw }))
}
