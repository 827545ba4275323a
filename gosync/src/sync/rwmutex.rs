//! [`RwMutex`]: Go's `sync.RWMutex` — a write-preferring reader/writer lock.

use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::time::Duration;

use crate::primitive::UnsafeCell;

use super::raw_rwmutex::{deadline_after, RawRwMutex};

/// A reader/writer mutual exclusion lock with Go's `sync.RWMutex` algorithm and guarantees.
///
/// Any number of readers ([`read`](Self::read)) or exactly one writer
/// ([`write`](Self::write)) hold the lock at a time. The protected value is reached only through
/// the guards, and dropping a guard unlocks.
///
/// # Guarantees
///
/// - **Write-preferring, exactly as Go.** Once a writer has asked for the lock, every *new*
///   reader waits, even though the lock is only read-locked at that moment; the writer gets the
///   lock as soon as the readers that were already inside leave. Writers therefore never starve
///   under a continuous flood of readers.
/// - **Readers and writers alternate.** When a writer unlocks, it releases exactly the readers
///   that queued up during its write (all of them, at once) *before* the next writer can enter,
///   and that next writer then waits for those readers. Readers cannot starve either.
/// - **Writers queue on a gosync [`Mutex`](crate::Mutex) among themselves** (Go's `w`): one
///   writer at a time announces itself, and a writer that has waited more than 1 ms for the
///   writer lock is served in FIFO order (the Mutex's starvation mode).
/// - **Recursive read locking can deadlock** (as in Go): if a thread holding a read lock asks
///   for another one while a writer waits, the new read waits for the writer, which waits for
///   the first read. Calling [`write`](Self::write) while holding a read or write lock on the
///   same `RwMutex` deadlocks too. See the `rwmutex_reentrant` and `rwmutex_factorial`
///   examples.
/// - No poisoning (Go has none): a panic while a guard is alive just unlocks.
///
/// # Differences from Go
///
/// - The lock protects a value (`RwMutex<T>`); unlocking is dropping a guard, so Go's
///   `sync: RUnlock of unlocked RWMutex` / `sync: Unlock of unlocked RWMutex` cannot happen in
///   safe code, and the "copying a locked RWMutex" pitfall is a compile error (it is not `Copy`
///   or `Clone`; moving it while borrowed does not compile).
/// - Added: [`try_read_for`](Self::try_read_for) / [`try_write_for`](Self::try_write_for)
///   (Go has no timed locks; see their docs for how a timed-out attempt leaves the lock),
///   [`readers`](Self::readers), [`is_write_locked`](Self::is_write_locked).
/// - Blocked threads spin briefly before they park: parking an OS thread costs far more than
///   parking a goroutine. This changes no ordering guarantee.
/// - No `RLocker`: a read guard is the Rust counterpart.
///
/// # Differences from `std::sync::RwLock` and `parking_lot::RwLock`
///
/// - std documents its priority policy as "dependent on the underlying operating system"; this
///   type has one policy everywhere: Go's.
/// - A writer's unlock releases the readers that were waiting for it in one batch, before any
///   other writer, so a write-heavy load cannot starve readers either.
/// - No poisoning (std poisons on panic); no upgradable reads or downgrade (Go has neither).
///
/// # Example
///
/// ```
/// use gosync::RwMutex;
/// use std::sync::Arc;
///
/// let config = Arc::new(RwMutex::new(String::from("v1")));
/// let readers: Vec<_> = (0..4)
///     .map(|_| {
///         let config = Arc::clone(&config);
///         std::thread::spawn(move || config.read().len())
///     })
///     .collect();
/// config.write().push_str("-patched");
/// for r in readers {
///     let len = r.join().unwrap();
///     assert!(len == 2 || len == 10);
/// }
/// assert_eq!(*config.read(), "v1-patched");
/// ```
///
/// # State layout and invariants
///
/// Go's four fields (`w`, `readerCount`, `readerWait`, two semaphores) map to:
///
/// | field | meaning |
/// |---|---|
/// | `w` | writer lock: held from a writer's announcement until its unlock (Go's `w Mutex`) |
/// | `reader_count` low 32 bits (`i32`) | Go's `readerCount`: readers holding or queued for the lock; a writer subtracts `2^30`, so **negative ⇔ a writer is pending or holds the lock**; then `count + 2^30` = readers still inside (the writer waits for them) + readers queued behind the writer |
/// | `reader_count` high 32 bits | writer epoch: +1 at every writer announcement, so a reader knows *which* writer it queued behind |
/// | `reader_wait` | (epoch, Go's `readerWait`): readers the writer of that epoch still waits for; `i32::MIN` once that writer timed out |
///
/// Readers queue on the address of `reader_count` and wait until the epoch they saw has ended
/// (the count is `>= 0` again or the epoch moved on); a writer's unlock wakes them all. The
/// writer waiting for readers to drain queues on the address of `reader_wait`; the reader that
/// takes the count to zero wakes it. Both waits are conditions checked under the parking
/// queue's lock (not counting semaphores as in Go), so no wake-up can be lost and a timed-out
/// waiter leaves no stale permit behind.
#[doc(alias = "RWMutex")]
pub struct RwMutex<T: ?Sized> {
    /// The lock itself (Go's algorithm, without the data).
    raw: RawRwMutex,
    /// The deadlock detector's record of this lock (name, creation site, writer).
    #[cfg(feature = "deadlock-detection")]
    meta: crate::detect::LockMeta,
    data: UnsafeCell<T>,
}

// SAFETY: sharing the lock lets several threads read `&T` at once (needs `T: Sync`) and lets a
// writer on another thread get `&mut T` (needs `T: Send`) — the same bounds as `std::sync::RwLock`.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwMutex<T> {}

impl<T> RwMutex<T> {
    /// Creates an unlocked `RwMutex` holding `value` (Go's zero value is ready to use).
    #[cfg(not(loom))]
    #[cfg_attr(feature = "deadlock-detection", track_caller)]
    pub const fn new(value: T) -> Self {
        Self::new_named(None, value)
    }

    /// Creates an unlocked `RwMutex` holding `value`, with a name the deadlock detector uses in
    /// its reports (feature `deadlock-detection`; without it the name is ignored).
    #[cfg(not(loom))]
    #[cfg_attr(feature = "deadlock-detection", track_caller)]
    pub const fn named(name: &'static str, value: T) -> Self {
        Self::new_named(Some(name), value)
    }

    #[cfg(not(loom))]
    #[cfg_attr(feature = "deadlock-detection", track_caller)]
    #[cfg_attr(not(feature = "deadlock-detection"), allow(unused_variables))]
    const fn new_named(name: Option<&'static str>, value: T) -> Self {
        RwMutex {
            raw: RawRwMutex::new(),
            #[cfg(feature = "deadlock-detection")]
            meta: crate::detect::LockMeta::with_name("RwMutex", name),
            data: UnsafeCell::new(value),
        }
    }

    /// Creates an unlocked `RwMutex` holding `value`.
    #[cfg(loom)]
    pub fn new(value: T) -> Self {
        RwMutex {
            raw: RawRwMutex::new(),
            #[cfg(feature = "deadlock-detection")]
            meta: crate::detect::LockMeta::new("RwMutex"),
            data: UnsafeCell::new(value),
        }
    }

    /// Creates an unlocked `RwMutex` holding `value` (the name is for the deadlock detector).
    #[cfg(loom)]
    pub fn named(_name: &'static str, value: T) -> Self {
        Self::new(value)
    }

    /// Consumes the lock and returns the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwMutex<T> {
    /// Locks for reading, waiting while a writer holds the lock **or waits for it**.
    ///
    /// Waiting for a pending writer is what makes the lock write-preferring; it also means
    /// that taking a second read lock on the same thread while a writer waits deadlocks
    /// (as in Go).
    ///
    /// With feature `deadlock-detection` that case (the seed's recursive factorial) is reported
    /// instead, as are lock-order inversions (see [`detect`](crate::detect)).
    #[doc(alias = "RLock")]
    #[inline]
    #[cfg_attr(feature = "deadlock-detection", track_caller)]
    pub fn read(&self) -> RwMutexReadGuard<'_, T> {
        #[cfg(not(feature = "deadlock-detection"))]
        self.raw.read();
        #[cfg(feature = "deadlock-detection")]
        {
            use crate::detect::{after_block, before_block, before_lock, Access};
            before_lock(
                &self.meta,
                Access::Shared,
                core::panic::Location::caller(),
                || self.raw.is_write_locked(),
            );
            if !self.raw.try_read() {
                before_block(&self.meta);
                self.raw.read();
                after_block(&self.meta);
            }
        }
        RwMutexReadGuard::new(self)
    }

    /// Locks for reading if that is possible without waiting (Go's `TryRLock`): fails while a
    /// writer holds the lock or waits for it.
    #[doc(alias = "TryRLock")]
    #[inline]
    #[cfg_attr(feature = "deadlock-detection", track_caller)]
    pub fn try_read(&self) -> Option<RwMutexReadGuard<'_, T>> {
        if self.raw.try_read() {
            Some(RwMutexReadGuard::new(self))
        } else {
            None
        }
    }

    /// Locks for reading, giving up after `timeout`.
    ///
    /// A reader that times out behind a writer takes itself out of the queue atomically: the
    /// writer's unlock then neither counts nor wakes it. If the writer leaves at the very moment
    /// the timeout fires, the read lock is taken and returned (a success at the deadline is
    /// still a success). Go has no timed locks.
    #[cfg_attr(feature = "deadlock-detection", track_caller)]
    pub fn try_read_for(&self, timeout: Duration) -> Option<RwMutexReadGuard<'_, T>> {
        if self.raw.try_read_until(deadline_after(timeout)) {
            Some(RwMutexReadGuard::new(self))
        } else {
            None
        }
    }

    /// Locks for writing (Go's `Lock`). Waits for other writers, then announces itself — from
    /// that moment new readers wait — and waits for the readers already inside to leave.
    #[doc(alias = "Lock")]
    #[inline]
    #[cfg_attr(feature = "deadlock-detection", track_caller)]
    pub fn write(&self) -> RwMutexWriteGuard<'_, T> {
        #[cfg(not(feature = "deadlock-detection"))]
        self.raw.write();
        #[cfg(feature = "deadlock-detection")]
        {
            use crate::detect::{after_block, before_block, before_lock, Access};
            before_lock(
                &self.meta,
                Access::Exclusive,
                core::panic::Location::caller(),
                || false,
            );
            if !self.raw.try_write() {
                before_block(&self.meta);
                self.raw.write();
                after_block(&self.meta);
            }
        }
        RwMutexWriteGuard::new(self)
    }

    /// Locks for writing if the lock is completely free (Go's `TryLock`).
    #[doc(alias = "TryLock")]
    #[inline]
    #[cfg_attr(feature = "deadlock-detection", track_caller)]
    pub fn try_write(&self) -> Option<RwMutexWriteGuard<'_, T>> {
        if self.raw.try_write() {
            Some(RwMutexWriteGuard::new(self))
        } else {
            None
        }
    }

    /// Locks for writing, giving up after `timeout`.
    ///
    /// The timeout covers both phases: waiting for other writers, and — after this writer has
    /// announced itself and new readers have started to queue behind it — waiting for the
    /// readers already inside to leave. If it fires in the second phase, the writer withdraws
    /// atomically: the readers still inside stop counting towards it, the readers that queued
    /// behind it are released at once (as by an unlock), and the writer lock is passed on. If
    /// the last reader leaves at the very moment the timeout fires, the write lock is taken and
    /// returned. Go has no timed locks.
    #[cfg_attr(feature = "deadlock-detection", track_caller)]
    pub fn try_write_for(&self, timeout: Duration) -> Option<RwMutexWriteGuard<'_, T>> {
        if self.raw.try_write_until(deadline_after(timeout)) {
            Some(RwMutexWriteGuard::new(self))
        } else {
            None
        }
    }

    /// Go's `readerCount` without the writer offset: readers holding the lock plus, while a
    /// writer is pending or active, readers queued behind it. A snapshot, for monitoring.
    pub fn readers(&self) -> usize {
        self.raw.readers()
    }

    /// Whether a writer holds the lock **or has announced itself and waits for readers to
    /// leave** (from that moment new readers wait). A snapshot, for monitoring.
    pub fn is_write_locked(&self) -> bool {
        self.raw.is_write_locked()
    }

    /// Mutable access without locking: `&mut self` proves no guard exists.
    pub fn get_mut(&mut self) -> &mut T {
        // SAFETY: `&mut self` is exclusive, so no guard can hand out another reference.
        self.data.with_mut(|p| unsafe { &mut *p })
    }
}

impl<T: Default> Default for RwMutex<T> {
    fn default() -> Self {
        RwMutex::new(T::default())
    }
}

impl<T> From<T> for RwMutex<T> {
    fn from(value: T) -> Self {
        RwMutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwMutex");
        match self.try_read() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<write-locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// Read access to an [`RwMutex`]; dropping it releases the read lock (Go's `RUnlock`).
#[must_use = "if unused the RwMutex will immediately unlock"]
#[clippy::has_significant_drop]
pub struct RwMutexReadGuard<'a, T: ?Sized> {
    lock: &'a RwMutex<T>,
    /// Not `Send`, like std's guards: unlocking stays on the locking thread.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard only shares `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwMutexReadGuard<'_, T> {}

impl<'a, T: ?Sized> RwMutexReadGuard<'a, T> {
    #[inline]
    #[cfg_attr(feature = "deadlock-detection", track_caller)]
    fn new(lock: &'a RwMutex<T>) -> Self {
        #[cfg(feature = "deadlock-detection")]
        crate::detect::acquired(
            &lock.meta,
            crate::detect::Access::Shared,
            core::panic::Location::caller(),
        );
        RwMutexReadGuard {
            lock,
            _not_send: PhantomData,
        }
    }
}

impl<T: ?Sized> Deref for RwMutexReadGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: a read lock is held for the guard's lifetime, so no `&mut T` exists.
        self.lock.data.with(|p| unsafe { &*p })
    }
}

impl<T: ?Sized> Drop for RwMutexReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        #[cfg(feature = "deadlock-detection")]
        crate::detect::released(&self.lock.meta, crate::detect::Access::Shared);
        // SAFETY: the guard holds a read lock and gives it up here.
        unsafe { self.lock.raw.read_unlock() };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwMutexReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwMutexReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// Write access to an [`RwMutex`]; dropping it releases the write lock (Go's `Unlock`) and
/// releases the readers that queued during the write before any other writer.
#[must_use = "if unused the RwMutex will immediately unlock"]
#[clippy::has_significant_drop]
pub struct RwMutexWriteGuard<'a, T: ?Sized> {
    lock: &'a RwMutex<T>,
    /// Not `Send`, like std's guards.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard only shares `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwMutexWriteGuard<'_, T> {}

impl<'a, T: ?Sized> RwMutexWriteGuard<'a, T> {
    #[inline]
    #[cfg_attr(feature = "deadlock-detection", track_caller)]
    fn new(lock: &'a RwMutex<T>) -> Self {
        #[cfg(feature = "deadlock-detection")]
        crate::detect::acquired(
            &lock.meta,
            crate::detect::Access::Exclusive,
            core::panic::Location::caller(),
        );
        RwMutexWriteGuard {
            lock,
            _not_send: PhantomData,
        }
    }
}

impl<T: ?Sized> Deref for RwMutexWriteGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the write lock is held for the guard's lifetime.
        self.lock.data.with(|p| unsafe { &*p })
    }
}

impl<T: ?Sized> DerefMut for RwMutexWriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write lock is held and `&mut self` makes this the only reference.
        self.lock.data.with_mut(|p| unsafe { &mut *p })
    }
}

impl<T: ?Sized> Drop for RwMutexWriteGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        #[cfg(feature = "deadlock-detection")]
        crate::detect::released(&self.lock.meta, crate::detect::Access::Exclusive);
        // SAFETY: the guard holds the write lock and gives it up here.
        unsafe { self.lock.raw.write_unlock() };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwMutexWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwMutexWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
