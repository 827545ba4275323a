//! [`RawMutex`] and [`RawRwMutex`]: gosync's lock algorithms behind `lock_api` 0.4's traits, so
//! that `lock_api::Mutex<gosync::RawMutex, T>` works and crates written against `lock_api` get
//! Go's algorithms.

use core::fmt;
use core::time::Duration;
use std::time::Instant;

use super::mutex::clock_deadline;
use super::raw_mutex;
use super::raw_rwmutex;

/// Go's `sync.Mutex` algorithm without data, implementing [`lock_api::RawMutex`] and
/// [`lock_api::RawMutexTimed`]: plug it into `lock_api::Mutex` (or any code generic over
/// lock_api) to get the same lock as [`Mutex`](crate::Mutex).
///
/// [`Mutex`](crate::Mutex) is the same algorithm with a friendlier API (no extra type
/// parameter, observation methods, deadlock detection); use this type when a crate asks for a
/// `lock_api::RawMutex`.
///
/// Guards made by `lock_api` are not `Send` (`GuardNoSend`), like gosync's own. The deadlock
/// detector (feature `deadlock-detection`) does not see locks taken through `lock_api`: it
/// knows a lock by the record inside gosync's typed locks.
///
/// ```
/// let m: lock_api::Mutex<gosync::RawMutex, Vec<u32>> = lock_api::Mutex::new(Vec::new());
/// m.lock().push(1);
/// assert_eq!(m.try_lock_for(std::time::Duration::from_millis(1)).unwrap().len(), 1);
/// ```
pub struct RawMutex {
    raw: raw_mutex::RawMutex,
}

impl RawMutex {
    /// An unlocked mutex (the same as `<RawMutex as lock_api::RawMutex>::INIT`).
    pub const fn new() -> Self {
        RawMutex {
            raw: raw_mutex::RawMutex::new(),
        }
    }

    /// Whether the mutex is in starvation mode right now (a snapshot; see
    /// [`Mutex::is_starving`](crate::Mutex::is_starving)).
    pub fn is_starving(&self) -> bool {
        self.raw.is_starving()
    }

    /// How many threads wait for the lock right now (a snapshot).
    pub fn waiters(&self) -> usize {
        self.raw.waiters()
    }
}

impl Default for RawMutex {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RawMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.raw, f)
    }
}

// SAFETY: `lock`/`try_lock` give mutual exclusion (they return only once this caller holds the
// lock; a `try_lock` that returns `true` holds it), `unlock` releases it with Release ordering
// and acquisitions use Acquire, so a critical section happens before the next one.
unsafe impl lock_api::RawMutex for RawMutex {
    #[allow(clippy::declare_interior_mutable_const)] // lock_api's required initializer
    const INIT: Self = RawMutex::new();

    type GuardMarker = lock_api::GuardNoSend;

    #[inline]
    fn lock(&self) {
        self.raw.lock();
    }

    #[inline]
    fn try_lock(&self) -> bool {
        self.raw.try_lock()
    }

    #[inline]
    unsafe fn unlock(&self) {
        // SAFETY: lock_api's contract: the lock is held in the current context.
        unsafe { self.raw.unlock() }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }
}

// SAFETY: as for `RawMutex`: a timed acquire that returns `true` holds the lock.
unsafe impl lock_api::RawMutexTimed for RawMutex {
    type Duration = Duration;
    type Instant = Instant;

    #[inline]
    fn try_lock_for(&self, timeout: Duration) -> bool {
        self.raw.try_lock_for(timeout)
    }

    #[inline]
    fn try_lock_until(&self, deadline: Instant) -> bool {
        self.raw.try_lock_until(clock_deadline(deadline))
    }
}

/// Go's `sync.RWMutex` algorithm without data (write-preferring; see
/// [`RwMutex`](crate::RwMutex)), implementing [`lock_api::RawRwLock`],
/// [`lock_api::RawRwLockTimed`] and [`lock_api::RawRwLockDowngrade`].
///
/// As with Go's `RWMutex`, a second shared lock on a thread that already holds one deadlocks
/// while a writer waits (the lock is not recursive for readers). `is_locked_exclusive` is true
/// from the moment a writer announces itself (from then on new readers wait) until it leaves.
/// Guards are not `Send`; the deadlock detector does not see locks taken through `lock_api`.
///
/// ```
/// use lock_api::RwLockWriteGuard;
///
/// let lock: lock_api::RwLock<gosync::RawRwMutex, u32> = lock_api::RwLock::new(1);
/// let mut w = lock.write();
/// *w += 1;
/// let r = RwLockWriteGuard::downgrade(w);
/// assert_eq!(*r, 2);
/// assert!(lock.try_read().is_some());
/// assert!(lock.try_write().is_none());
/// ```
pub struct RawRwMutex {
    raw: raw_rwmutex::RawRwMutex,
}

impl RawRwMutex {
    /// An unlocked lock (the same as `<RawRwMutex as lock_api::RawRwLock>::INIT`).
    pub const fn new() -> Self {
        RawRwMutex {
            raw: raw_rwmutex::RawRwMutex::new(),
        }
    }

    /// Readers holding the lock plus, while a writer is pending or active, readers queued
    /// behind it (a snapshot; see [`RwMutex::readers`](crate::RwMutex::readers)).
    pub fn readers(&self) -> usize {
        self.raw.readers()
    }
}

impl Default for RawRwMutex {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RawRwMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.raw, f)
    }
}

// SAFETY: a shared acquire returns only once no writer holds the lock and none can get it
// until the matching `unlock_shared`; an exclusive acquire returns only once no reader or
// writer holds it. Releases use Release ordering and acquisitions Acquire.
unsafe impl lock_api::RawRwLock for RawRwMutex {
    #[allow(clippy::declare_interior_mutable_const)] // lock_api's required initializer
    const INIT: Self = RawRwMutex::new();

    type GuardMarker = lock_api::GuardNoSend;

    #[inline]
    fn lock_shared(&self) {
        self.raw.read();
    }

    #[inline]
    fn try_lock_shared(&self) -> bool {
        self.raw.try_read()
    }

    #[inline]
    unsafe fn unlock_shared(&self) {
        // SAFETY: lock_api's contract: a shared lock is held in the current context.
        unsafe { self.raw.read_unlock() }
    }

    #[inline]
    fn lock_exclusive(&self) {
        self.raw.write();
    }

    #[inline]
    fn try_lock_exclusive(&self) -> bool {
        self.raw.try_write()
    }

    #[inline]
    unsafe fn unlock_exclusive(&self) {
        // SAFETY: lock_api's contract: the exclusive lock is held in the current context.
        unsafe { self.raw.write_unlock() }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.raw.is_write_locked() || self.raw.readers() > 0
    }

    #[inline]
    fn is_locked_exclusive(&self) -> bool {
        self.raw.is_write_locked()
    }
}

// SAFETY: as for `RawRwLock`: a timed acquire that returns `true` holds the lock.
unsafe impl lock_api::RawRwLockTimed for RawRwMutex {
    type Duration = Duration;
    type Instant = Instant;

    #[inline]
    fn try_lock_shared_for(&self, timeout: Duration) -> bool {
        self.raw
            .try_read_until(raw_rwmutex::deadline_after(timeout))
    }

    #[inline]
    fn try_lock_shared_until(&self, deadline: Instant) -> bool {
        self.raw.try_read_until(clock_deadline(deadline))
    }

    #[inline]
    fn try_lock_exclusive_for(&self, timeout: Duration) -> bool {
        self.raw
            .try_write_until(raw_rwmutex::deadline_after(timeout))
    }

    #[inline]
    fn try_lock_exclusive_until(&self, deadline: Instant) -> bool {
        self.raw.try_write_until(clock_deadline(deadline))
    }
}

// SAFETY: `downgrade` turns the exclusive lock into a shared one without a moment at which a
// writer could get in (see `RawRwMutex::downgrade` in the algorithm file).
unsafe impl lock_api::RawRwLockDowngrade for RawRwMutex {
    #[inline]
    unsafe fn downgrade(&self) {
        // SAFETY: lock_api's contract: the exclusive lock is held in the current context.
        unsafe { self.raw.downgrade() }
    }
}
