//! Per-lock statistics (feature `lock-stats`): what a [`Mutex`](crate::Mutex) has been through
//! since it was created, read with [`Mutex::stats`](crate::Mutex::stats).
//!
//! The counters live in the lock. Each has one kind of writer at a time, so it is updated
//! with a plain load and store, no read-modify-write: the acquisition counters only by the
//! thread that holds the lock (successive holders are ordered by the lock itself), the
//! starvation and handoff counters only under the lock's queue lock. Leaving them on costs a
//! load and a store on a cache line the acquiring thread owns already. Without the feature
//! the counters, and every instruction that updates them, are compiled out.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use core::time::Duration;

/// A snapshot of a lock's statistics ([`Mutex::stats`](crate::Mutex::stats)): counts since
/// the lock was created. Feature `lock-stats`.
///
/// Go has no per-lock counters (its mutex profile is per call site); the seed's notes read
/// `sync.Mutex`'s state through `unsafe` to answer the same question ("is this lock the
/// bottleneck?"). The counters are read one by one, not as one atomic snapshot: taken while
/// threads use the lock, one may be a few events ahead of another.
///
/// ```
/// # #[cfg(feature = "lock-stats")] {
/// use gosync::Mutex;
///
/// static CACHE: Mutex<Vec<u32>> = Mutex::named("cache", Vec::new());
/// CACHE.lock().push(1);
/// let s = CACHE.stats();
/// assert_eq!(s.name, Some("cache"));
/// assert_eq!(s.acquisitions, 1);
/// assert_eq!(s.contended, 0);
/// println!("{s}"); // cache: 1 acquisitions, 0 contended (0.0%), ...
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockStats {
    /// The name given with [`Mutex::named`](crate::Mutex::named), if any.
    pub name: Option<&'static str>,
    /// Successful acquisitions: `lock`, a successful `try_lock` or timed lock, `lock_async`,
    /// and the re-lock inside a [`Cond`](crate::Cond) wait.
    pub acquisitions: u64,
    /// Acquisitions that had to wait (they went past the lock's first attempt and its
    /// barging retry into the slow path: spinning, yielding or sleeping).
    pub contended: u64,
    /// Time spent waiting by the contended acquisitions (blocking ones; an async
    /// `lock_async` counts as contended but its wait is not timed).
    pub total_wait: Duration,
    /// The longest single wait among them.
    pub max_wait: Duration,
    /// Times a handoff was requested because the front waiter had waited past the patience
    /// (the counterpart of Go's entries into starvation mode).
    pub starvation_entries: u64,
    /// Times the lock was handed directly to a waiter (Go's starvation-mode handoff).
    pub handoffs: u64,
}

impl fmt::Display for LockStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = if self.acquisitions == 0 {
            0.0
        } else {
            100.0 * self.contended as f64 / self.acquisitions as f64
        };
        write!(
            f,
            "{}: {} acquisitions, {} contended ({pct:.1}%), waited {:?} in total, {:?} at most, \
             {} starvation entries, {} handoffs",
            self.name.unwrap_or("(unnamed lock)"),
            self.acquisitions,
            self.contended,
            self.total_wait,
            self.max_wait,
            self.starvation_entries,
            self.handoffs
        )
    }
}

/// Adds `n` to a counter that only one thread writes at a time (see the module docs).
#[inline(always)]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// The counters inside a lock. Every method but `snapshot` is called either by the lock's
/// holder (`acquired`, `contended`) or under its queue lock (`starvation_entry`, `handoff`).
pub(crate) struct LockCounters {
    acquisitions: AtomicU64,
    contended: AtomicU64,
    wait_ns: AtomicU64,
    max_wait_ns: AtomicU64,
    starvation_entries: AtomicU64,
    handoffs: AtomicU64,
}

impl LockCounters {
    /// All zero.
    pub(crate) const fn new() -> Self {
        LockCounters {
            acquisitions: AtomicU64::new(0),
            contended: AtomicU64::new(0),
            wait_ns: AtomicU64::new(0),
            max_wait_ns: AtomicU64::new(0),
            starvation_entries: AtomicU64::new(0),
            handoffs: AtomicU64::new(0),
        }
    }

    /// One acquisition.
    #[inline(always)]
    pub(crate) fn acquired(&self) {
        bump(&self.acquisitions, 1);
    }

    /// One acquisition that waited `waited` (`None`: not timed).
    #[inline]
    pub(crate) fn contended(&self, waited: Option<Duration>) {
        bump(&self.contended, 1);
        if let Some(waited) = waited {
            let ns = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
            bump(&self.wait_ns, ns);
            if ns > self.max_wait_ns.load(Relaxed) {
                self.max_wait_ns.store(ns, Relaxed);
            }
        }
    }

    /// A handoff was requested.
    #[inline]
    pub(crate) fn starvation_entry(&self) {
        bump(&self.starvation_entries, 1);
    }

    /// The lock was handed to a waiter.
    #[inline]
    pub(crate) fn handoff(&self) {
        bump(&self.handoffs, 1);
    }

    /// The current counts, named `name`.
    pub(crate) fn snapshot(&self, name: Option<&'static str>) -> LockStats {
        LockStats {
            name,
            acquisitions: self.acquisitions.load(Relaxed),
            contended: self.contended.load(Relaxed),
            total_wait: Duration::from_nanos(self.wait_ns.load(Relaxed)),
            max_wait: Duration::from_nanos(self.max_wait_ns.load(Relaxed)),
            starvation_entries: self.starvation_entries.load(Relaxed),
            handoffs: self.handoffs.load(Relaxed),
        }
    }
}
