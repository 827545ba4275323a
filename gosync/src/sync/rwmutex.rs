//! [`RwMutex`]: Go's `sync.RWMutex` — a write-preferring reader/writer lock.

use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::time::Duration;

use crate::primitive::atomic::{fence, AtomicU64, Ordering};
use crate::primitive::parking::{self, ParkResult, DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN};
use crate::primitive::{now, Instant, UnsafeCell};

use super::backoff::Backoff;
use super::raw_mutex::RawMutex;

/// Go's `rwmutexMaxReaders`: subtracting it from the reader count announces a writer.
const MAX_READERS: i32 = 1 << 30;

/// Added to `reader_count` by a writer announcing itself: the count drops by [`MAX_READERS`]
/// (going negative) and the epoch goes up by one. (`+2·2³²` because the count's low half
/// borrows one from the epoch when it goes negative.)
const ANNOUNCE: u64 = (2u64 << 32).wrapping_sub(MAX_READERS as u64);
/// Added to `reader_count` by a writer leaving (or giving up): the count rises by
/// [`MAX_READERS`] (back to `>= 0`), the epoch stays (the low half carries one into the epoch,
/// which the `-2³²` takes back).
const RELEASE: u64 = (MAX_READERS as u64).wrapping_sub(1u64 << 32);
/// `reader_wait` count of a writer that gave up waiting (timed out): departing readers of its
/// epoch must leave the word alone.
const CANCELLED: i32 = i32::MIN;

#[inline(always)]
fn count(word: u64) -> i32 {
    word as u32 as i32
}
#[inline(always)]
fn epoch(word: u64) -> u32 {
    (word >> 32) as u32
}
#[inline(always)]
fn pack(epoch: u32, count: i32) -> u64 {
    (u64::from(epoch) << 32) | u64::from(count as u32)
}

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
    /// Writer exclusion (Go's `w`).
    w: RawMutex,
    /// `(epoch << 32) | readerCount as u32`; see the type docs.
    reader_count: AtomicU64,
    /// `(epoch << 32) | readerWait as u32`; written by the writer of `epoch` before it
    /// announces itself, then only decremented by departing readers of that epoch.
    reader_wait: AtomicU64,
    /// The deadlock detector's record of this lock (name, creation site, writer).
    #[cfg(feature = "deadlock-detection")]
    meta: crate::detect::LockMeta,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out `&mut T` to one writer at a time and `&T` to readers; like
// `std::sync::RwLock`, sending the lock sends the `T`.
unsafe impl<T: ?Sized + Send> Send for RwMutex<T> {}
// SAFETY: sharing the lock lets several threads read `&T` at once (needs `T: Sync`) and lets a
// writer on another thread get `&mut T` (needs `T: Send`) — the same bounds as `std::sync::RwLock`.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwMutex<T> {}

fn deadline_after(timeout: Duration) -> Option<Instant> {
    now().checked_add(timeout)
}

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
            w: RawMutex::new(),
            reader_count: AtomicU64::new(0),
            reader_wait: AtomicU64::new(0),
            #[cfg(feature = "deadlock-detection")]
            meta: crate::detect::LockMeta::with_name("RwMutex", name),
            data: UnsafeCell::new(value),
        }
    }

    /// Creates an unlocked `RwMutex` holding `value`.
    #[cfg(loom)]
    pub fn new(value: T) -> Self {
        RwMutex {
            w: RawMutex::new(),
            reader_count: AtomicU64::new(0),
            reader_wait: AtomicU64::new(0),
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
        #[cfg(feature = "deadlock-detection")]
        crate::detect::before_lock(
            &self.meta,
            crate::detect::Access::Shared,
            core::panic::Location::caller(),
            || count(self.reader_count.load(Ordering::Relaxed)) < 0,
        );
        // Acquire: pairs with the Release of the last writer's unlock.
        let prev = self.reader_count.fetch_add(1, Ordering::Acquire);
        if count(prev) < 0 {
            // A writer is pending or active: wait for its epoch to end.
            #[cfg(feature = "deadlock-detection")]
            crate::detect::before_block(&self.meta);
            let acquired = self.read_slow(epoch(prev), None);
            debug_assert!(acquired);
            #[cfg(feature = "deadlock-detection")]
            crate::detect::after_block(&self.meta);
        }
        RwMutexReadGuard::new(self)
    }

    /// Locks for reading if that is possible without waiting (Go's `TryRLock`): fails while a
    /// writer holds the lock or waits for it.
    #[doc(alias = "TryRLock")]
    #[inline]
    #[cfg_attr(feature = "deadlock-detection", track_caller)]
    pub fn try_read(&self) -> Option<RwMutexReadGuard<'_, T>> {
        let mut cur = self.reader_count.load(Ordering::Relaxed);
        loop {
            if count(cur) < 0 {
                return None;
            }
            match self.reader_count.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(RwMutexReadGuard::new(self)),
                Err(actual) => cur = actual,
            }
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
        let Some(deadline) = deadline_after(timeout) else {
            return Some(self.read());
        };
        let prev = self.reader_count.fetch_add(1, Ordering::Acquire);
        if count(prev) < 0 && !self.read_slow(epoch(prev), Some(deadline)) {
            return None;
        }
        Some(RwMutexReadGuard::new(self))
    }

    /// The reader counted itself in while the writer of `epoch` was pending or active: wait
    /// until that writer has left. Returns `false` if it timed out (and then it has taken
    /// itself out of the count again).
    #[cold]
    fn read_slow(&self, epoch_seen: u32, deadline: Option<Instant>) -> bool {
        let blocked = |word: u64| epoch(word) == epoch_seen && count(word) < 0;
        let mut backoff = Backoff::new();
        loop {
            // Acquire: pairs with the writer's Release when it left.
            if !blocked(self.reader_count.load(Ordering::Acquire)) {
                return true;
            }
            if backoff.snooze() {
                continue;
            }
            let key = &self.reader_count as *const _ as usize;
            // SAFETY: the key is the address of our own field; validate only loads an atomic
            // and cannot panic; the callbacks are no-ops.
            let result = unsafe {
                parking::park(
                    key,
                    || blocked(self.reader_count.load(Ordering::Relaxed)),
                    || {},
                    |_, _| {},
                    DEFAULT_PARK_TOKEN,
                    deadline,
                )
            };
            if let ParkResult::TimedOut = result {
                return self.read_cancel(epoch_seen);
            }
        }
    }

    /// A reader timed out behind the writer of `epoch_seen`: take our `+1` back if that writer
    /// is still there, in one CAS with the check; otherwise the writer already let us in.
    #[cold]
    fn read_cancel(&self, epoch_seen: u32) -> bool {
        let mut cur = self.reader_count.load(Ordering::Acquire);
        loop {
            if epoch(cur) != epoch_seen || count(cur) >= 0 {
                // The writer left (and counted us as a reader): we hold a read lock.
                return true;
            }
            // `count < 0` and we are part of it, so `cur - 1` cannot borrow from the epoch.
            match self.reader_count.compare_exchange_weak(
                cur,
                cur - 1,
                Ordering::Relaxed,
                Ordering::Acquire,
            ) {
                Ok(_) => return false,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Releases one read lock (the guard's drop).
    #[inline]
    fn read_unlock(&self) {
        // Release: our reads of the data happen before a writer's Acquire.
        let prev = self.reader_count.fetch_sub(1, Ordering::Release);
        if count(prev) <= 0 {
            self.read_unlock_slow(prev);
        }
    }

    /// Go's `rUnlockSlow`: a writer of `epoch(prev)` waits for the readers that were inside when
    /// it announced itself; we are one of them.
    #[cold]
    fn read_unlock_slow(&self, prev: u64) {
        let c = count(prev);
        if c == 0 || c == -MAX_READERS {
            // Unreachable through guards; Go's fatal error.
            panic!("sync: RUnlock of unlocked RWMutex");
        }
        // Pairs with the writer's AcqRel announcement: its store of `reader_wait` is visible.
        fence(Ordering::Acquire);
        let e = epoch(prev);
        let mut cur = self.reader_wait.load(Ordering::Relaxed);
        loop {
            if epoch(cur) != e || count(cur) == CANCELLED {
                // That writer timed out and reopened the lock: nobody waits for us.
                return;
            }
            let left = count(cur) - 1;
            match self.reader_wait.compare_exchange_weak(
                cur,
                pack(e, left),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if left == 0 {
                        // Last reader out: wake the writer.
                        let key = &self.reader_wait as *const _ as usize;
                        // SAFETY: the key is the address of our own field; the callback is
                        // a constant.
                        unsafe {
                            parking::unpark_one(key, |_| DEFAULT_UNPARK_TOKEN);
                        }
                    }
                    return;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// Locks for writing (Go's `Lock`). Waits for other writers, then announces itself — from
    /// that moment new readers wait — and waits for the readers already inside to leave.
    #[doc(alias = "Lock")]
    #[inline]
    #[cfg_attr(feature = "deadlock-detection", track_caller)]
    pub fn write(&self) -> RwMutexWriteGuard<'_, T> {
        #[cfg(not(feature = "deadlock-detection"))]
        self.w.lock();
        #[cfg(feature = "deadlock-detection")]
        {
            use crate::detect::{after_block, before_block, before_lock, Access};
            before_lock(
                &self.meta,
                Access::Exclusive,
                core::panic::Location::caller(),
                || false,
            );
            if !self.w.try_lock() {
                before_block(&self.meta);
                self.w.lock();
                after_block(&self.meta);
            }
        }
        let acquired = self.announce_and_drain(None);
        debug_assert!(acquired);
        RwMutexWriteGuard::new(self)
    }

    /// Locks for writing if the lock is completely free (Go's `TryLock`).
    #[doc(alias = "TryLock")]
    #[inline]
    #[cfg_attr(feature = "deadlock-detection", track_caller)]
    pub fn try_write(&self) -> Option<RwMutexWriteGuard<'_, T>> {
        if !self.w.try_lock() {
            return None;
        }
        let cur = self.reader_count.load(Ordering::Relaxed);
        if count(cur) == 0
            && self
                .reader_count
                .compare_exchange(
                    cur,
                    cur.wrapping_add(ANNOUNCE),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(RwMutexWriteGuard::new(self));
        }
        // SAFETY: we took `w` just above and give it back.
        unsafe { self.w.unlock() };
        None
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
        let Some(deadline) = deadline_after(timeout) else {
            return Some(self.write());
        };
        if !self.w.try_lock_for(timeout) {
            return None;
        }
        if self.announce_and_drain(Some(deadline)) {
            Some(RwMutexWriteGuard::new(self))
        } else {
            None
        }
    }

    /// The writer holds `w`: announce itself to readers and wait for the readers inside to
    /// leave. On a timeout, withdraw (see [`try_write_for`](Self::try_write_for)) and return
    /// `false`.
    #[inline]
    fn announce_and_drain(&self, deadline: Option<Instant>) -> bool {
        // Only the holder of `w` changes the epoch, so this load is exact.
        let e = epoch(self.reader_count.load(Ordering::Relaxed)).wrapping_add(1);
        // Published by the AcqRel announcement below; departing readers of epoch `e` see it.
        self.reader_wait.store(pack(e, 0), Ordering::Relaxed);
        // AcqRel: Acquire pairs with departing readers' Release, Release publishes the store.
        let prev = self.reader_count.fetch_add(ANNOUNCE, Ordering::AcqRel);
        let active = count(prev);
        debug_assert!(active >= 0, "a second writer announced itself");
        if active == 0 {
            return true;
        }
        // Add the readers we wait for; some may have left already (count went negative).
        let mut cur = self.reader_wait.load(Ordering::Relaxed);
        loop {
            debug_assert_eq!(epoch(cur), e);
            let left = count(cur) + active;
            match self.reader_wait.compare_exchange_weak(
                cur,
                pack(e, left),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) if left == 0 => return true,
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        self.drain_slow(e, deadline)
    }

    #[cold]
    fn drain_slow(&self, e: u32, deadline: Option<Instant>) -> bool {
        let done = pack(e, 0);
        let mut backoff = Backoff::new();
        loop {
            // Acquire: pairs with the last reader's Release.
            if self.reader_wait.load(Ordering::Acquire) == done {
                return true;
            }
            if backoff.snooze() {
                continue;
            }
            let key = &self.reader_wait as *const _ as usize;
            // SAFETY: the key is the address of our own field; validate only loads an atomic.
            let result = unsafe {
                parking::park(
                    key,
                    || self.reader_wait.load(Ordering::Relaxed) != done,
                    || {},
                    |_, _| {},
                    DEFAULT_PARK_TOKEN,
                    deadline,
                )
            };
            if let ParkResult::TimedOut = result {
                return self.write_cancel(e);
            }
        }
    }

    /// The writer of epoch `e` timed out while readers were still inside. Either the last
    /// reader got there first (then we own the lock), or we mark the epoch cancelled in the same
    /// CAS so that no departing reader counts towards it any more, reopen the lock to readers,
    /// and pass on `w`.
    #[cold]
    fn write_cancel(&self, e: u32) -> bool {
        let mut cur = self.reader_wait.load(Ordering::Acquire);
        loop {
            debug_assert_eq!(epoch(cur), e);
            if count(cur) == 0 {
                return true;
            }
            match self.reader_wait.compare_exchange_weak(
                cur,
                pack(e, CANCELLED),
                Ordering::Relaxed,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        self.release_readers_and_writer();
        false
    }

    /// Go's `Unlock` (also the second half of a cancelled `try_write_for`): reopen the lock to
    /// readers, wake those that queued behind us, then let the next writer in.
    #[inline]
    fn release_readers_and_writer(&self) {
        // Release: our writes happen before the next reader's Acquire.
        let prev = self.reader_count.fetch_add(RELEASE, Ordering::Release);
        if count(prev) >= 0 {
            // Unreachable through guards; Go's fatal error.
            panic!("sync: Unlock of unlocked RWMutex");
        }
        if count(prev) != -MAX_READERS {
            self.wake_readers();
        }
        // SAFETY: `w` is held from a writer's announcement until here (its guard's drop or
        // its withdrawal), by the writer we act for.
        unsafe { self.w.unlock() };
    }

    #[cold]
    fn wake_readers(&self) {
        let key = &self.reader_count as *const _ as usize;
        // SAFETY: the key is the address of our own field. Every thread parked on it queued
        // behind the epoch that just ended (a new epoch needs `w`, which we still hold).
        unsafe {
            parking::unpark_all(key, DEFAULT_UNPARK_TOKEN);
        }
    }

    /// Go's `readerCount` without the writer offset: readers holding the lock plus, while a
    /// writer is pending or active, readers queued behind it. A snapshot, for monitoring.
    pub fn readers(&self) -> usize {
        let c = count(self.reader_count.load(Ordering::Relaxed));
        if c >= 0 {
            c as usize
        } else {
            (c + MAX_READERS) as usize
        }
    }

    /// Whether a writer holds the lock **or has announced itself and waits for readers to
    /// leave** (from that moment new readers wait). A snapshot, for monitoring.
    pub fn is_write_locked(&self) -> bool {
        count(self.reader_count.load(Ordering::Relaxed)) < 0
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
        self.lock.read_unlock();
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
        self.lock.release_readers_and_writer();
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn constants_move_count_and_epoch_as_documented() {
        let w = pack(7, 3);
        let announced = w.wrapping_add(ANNOUNCE);
        assert_eq!(epoch(announced), 8);
        assert_eq!(count(announced), 3 - MAX_READERS);
        let released = (announced + 2).wrapping_add(RELEASE);
        assert_eq!(epoch(released), 8);
        assert_eq!(count(released), 5);
        // Epoch wrap-around keeps the count intact.
        let w = pack(u32::MAX, 0).wrapping_add(ANNOUNCE);
        assert_eq!((epoch(w), count(w)), (0, -MAX_READERS));
        let w = w.wrapping_add(RELEASE);
        assert_eq!((epoch(w), count(w)), (0, 0));
    }
}
