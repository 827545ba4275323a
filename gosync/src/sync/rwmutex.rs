//! [`RwMutex`]: Go's `sync.RWMutex` — a write-preferring reader/writer lock.

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use core::time::Duration;
use std::sync::Arc;

use crate::diag::{Access, Tracked};
use crate::primitive::UnsafeCell;

use super::mutex::clock_deadline;
use super::raw_rwmutex::{deadline_after, RawRwMutex};
use super::reader_bias::ReadToken;

mod async_forms;
pub use async_forms::{
    AsyncRwMutexReadGuard, AsyncRwMutexWriteGuard, RwMutexReadFuture, RwMutexWriteFuture,
};

/// A reader/writer mutual exclusion lock with Go's `sync.RWMutex` algorithm and guarantees.
///
/// Any number of readers ([`read`](Self::read)) or exactly one writer
/// ([`write`](Self::write)) hold the lock at a time. The protected value is reached only through
/// the guards, and dropping a guard unlocks.
///
/// # Guarantees
///
/// - **Write-preferring, as Go.** Once a writer has asked for the lock, every *new* reader
///   waits, even though the lock is only read-locked at that moment; the writer gets the lock
///   as soon as the readers that were already inside leave. Writers therefore never starve
///   under a continuous flood of readers. (One narrow exception, see "Reader slots": a reader
///   turning slots on at the moment a writer asks can let a few readers in through them; the
///   writer waits for those too, and they are bounded by the number of threads.)
/// - **Readers cannot starve either (bounded, as the Mutex).** A reader that has waited behind
///   writers for 1 ms or more stays counted, or is counted in by the unlock of the writer it
///   sleeps behind, so that writer lets it in *before* the next writer can enter, and the next
///   writer then waits for it (Go's rule, which Go applies to every waiting reader). A reader
///   that has waited less tries again when the writer leaves and may find the next writer
///   first; so may a due reader caught between its last check and going to sleep, once. A writer's
///   [`downgrade`](RwMutexWriteGuard::downgrade) lets in every reader waiting behind it.
///   See "Readers behind a writer" below for why.
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
///   and their `_until` forms (Go has no timed locks; see their docs for how a timed-out
///   attempt leaves the lock), [`readers`](Self::readers),
///   [`is_write_locked`](Self::is_write_locked), [`RwMutexWriteGuard::downgrade`], and the
///   guard tools Rust users know from parking_lot: `read_arc`/`write_arc`, mapped guards,
///   `unlocked`; and the async forms [`read_async`](Self::read_async) /
///   [`write_async`](Self::write_async), whose tasks wait in the same queues as threads.
/// - Blocked threads spin briefly before they park: parking an OS thread costs far more than
///   parking a goroutine.
/// - Readers that share a lock from several threads move to per-thread reader slots (see
///   "Reader slots"): Go's readers all update one counter, whose cache line then travels
///   between cores on every `RLock` and `RUnlock`.
/// - A blocked thread reader that has waited less than 1 ms does not hold its place behind
///   the writer (Go counts every blocked reader in, which a writer's unlock then admits); see
///   "Readers behind a writer". Async readers ([`read_async`](Self::read_async)) keep Go's
///   rule.
/// - No `RLocker`: a read guard is the Rust counterpart, and a [`Cond`](crate::Cond) waits
///   with it (Go's `sync.NewCond(rw.RLocker())`).
///
/// # Differences from `std::sync::RwLock` and `parking_lot::RwLock`
///
/// - std documents its priority policy as "dependent on the underlying operating system"; this
///   type has one policy everywhere: Go's.
/// - A writer's unlock releases the readers that were waiting for it in one batch, before any
///   other writer, so a write-heavy load cannot starve readers either.
/// - The price of that bookkeeping: more atomic read-modify-writes on shared cache lines than
///   a one-word lock. A writer that finds readers inside takes `w`, announces itself on the
///   count and sets the number of readers it waits for in `reader_wait`, which each of those
///   readers lowers again as it leaves; a reader that arrives behind a writer has counted
///   itself in before it sees the writer (Go's `RLock` is one add) and, unless it is due,
///   steps out again to wait (see "State layout and invariants" and "Readers behind a
///   writer"). parking_lot's readers leave its one word alone while a writer holds or waits
///   for it, but to mark that they sleep. Where writes come often between reads that do work,
///   and so usually find readers inside, such a mix runs slower than on parking_lot's lock.
/// - Both keep their readers in one shared word. Here a lock that sees readers from several
///   threads overlap switches to reader slots, as crossbeam's `ShardedLock` does always, and
///   switches back when writes are too frequent for them to pay ("Reader slots"); a lock only
///   one thread reads never allocates them.
/// - No poisoning (std poisons on panic); no upgradable reads (Go has none). A write guard
///   can [`downgrade`](RwMutexWriteGuard::downgrade) to a read guard, as with std and
///   parking_lot.
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
/// | `w` | writer lock: held by a writer from before its announcement until its unlock (Go's `w Mutex`); a fast writer (below) does not take it |
/// | `reader_count` low 32 bits (`i32`) | Go's `readerCount`: readers holding or queued for the lock; a writer subtracts `2^30`, so **negative ⇔ a writer is pending or holds the lock**; then `count + 2^30` = readers still inside (the writer waits for them) + readers queued behind the writer |
/// | `reader_count` high 32 bits | writer epoch: +1 at every writer announcement, so a reader knows *which* writer it queued behind |
/// | `reader_wait` | (epoch, Go's `readerWait`): readers the writer of that epoch still waits for; `i32::MIN` once that writer timed out |
///
/// Go's two semaphores are the `readers` and `drain` wait queues (below). The fields Go does
/// not have:
///
/// | field | meaning |
/// |---|---|
/// | `uncounted` | thread readers that stepped out of `reader_count` behind a writer (see below), from before they leave the count until they are back in it |
/// | `fast` | whether the writer holding the lock is a fast writer (its unlock then has no `w` to release) |
/// | `blocked_writers` | the holder of `w` while it waits for a fast writer to leave (0 or 1) |
/// | `downgraded` | a fast writer downgraded; the next holder of `w` lets the readers that stepped out behind it back in first |
/// | `bias` | the reader slots: whether they are on, the slots themselves (allocated the first time they are turned on), and the policy's counters (see "Reader slots") |
///
/// # Readers behind a writer
///
/// In Go, a reader that arrives while a writer is pending adds itself to `readerCount` and
/// sleeps; the writer's unlock then admits it, and the next writer must wait until it has run
/// and unlocked. Goroutines are woken in ~100 ns, so that wait is short. An OS thread that is
/// admitted while it sleeps may wait milliseconds for a CPU when threads outnumber cores, and
/// every writer after it waits as long, with every new reader queued behind that writer: the
/// lock runs at the scheduler's pace.
///
/// So a blocked thread reader here spins briefly while counted (if the writer leaves then, it
/// holds the lock), then *steps out*: it takes its `+1` back (the CAS a timed-out reader
/// uses), raises `uncounted`, and waits uncounted; when the writer leaves it tries again from
/// the start. A reader that has waited 1 ms (the Mutex's patience) is *due*: a due reader
/// stays counted and waits as in Go, and a writer's unlock counts in every due stepped-out
/// reader queued behind it before it lets the next writer in. A downgrade keeps `w` until every
/// stepped-out reader is back in the count, so all of them get in before the next writer.
///
/// Readers blocked behind a writer wait in a FIFO queue until the epoch they saw has ended (the
/// count is `>= 0` again or the epoch moved on); a writer's unlock wakes them all (counted ones
/// hold a read lock; stepped-out ones try again, or hold one if it counted them in). The writer
/// waiting for readers to drain waits in a second queue; the reader that takes the count to
/// zero wakes it. Both waits are conditions checked under their queue's lock (not counting
/// semaphores as in Go), so no wake-up can be lost and a timed-out waiter leaves no stale
/// permit behind. Blocked threads and async tasks wait in the same queues.
///
/// # Fast writers
///
/// Go's writer takes `w`, then announces itself on the count: four atomic read-modify-writes
/// per lock and unlock pair, where std and parking_lot need two (one word). Here a writer that
/// finds the lock completely free (no reader counted, nobody holding or queued on `w`)
/// announces itself with one CAS from a count of zero and holds the lock without `w`; its
/// unlock is one add (and wakes nobody when nobody queued behind it). So an uncontended write
/// takes two read-modify-writes, as in std.
///
/// Since a fast writer does not hold `w`, three things change:
///
/// - A writer that takes `w` may find a fast writer in the lock. Announcing itself on top of
///   it would put two writers' offsets in the count, so `announce` is a CAS that requires the
///   count to be `>= 0`; otherwise the writer (still holding `w`) waits in the `drain` queue
///   for the fast writer's unlock, which wakes it. Its look at `w` keeps a fast writer from
///   overtaking writers queued on `w`; one that looked just before a writer took `w` may still
///   get in first, once.
/// - The next epoch no longer waits for the releasing writer to be done with its wake-ups: a
///   fast writer may come in right after a release, and its readers may link before the
///   releasing writer has woken its own. So each queued reader records the epoch it waits
///   for, and a release wakes the counted readers of its own epoch only (they hold a read
///   lock), plus the stepped-out ones (they try again). A due stepped-out reader is counted in
///   on its behalf only by a CAS that finds no writer announced since (otherwise it tries
///   again like the others, and being due, stays counted behind the next writer).
/// - A fast writer's `downgrade` has no `w` to keep until the readers that stepped out behind
///   it are back in the count. It raises `downgraded` instead, and the next holder of `w`
///   waits for those readers to be back in before it announces itself, so they still get in
///   ahead of the next writer.
///
/// Go has no fast writer (its `Lock` always takes `w`); std and parking_lot have no `w`.
///
/// # Reader slots
///
/// When readers on several threads hold the lock at once, every `read` and every unlock
/// updates `reader_count`, and its cache line moves from core to core each time: readers that
/// never wait for each other still queue for that line. So a lock can take its readers off the
/// count: it allocates a block of reader slots, one cache line each, and while slots are
/// *on*, a reader adds one to its thread's slot
/// instead of to the count, and its guard records which slot to release. (The slot count is
/// the CPU count rounded up to a power of two, between 8 and 64; threads take slots in the
/// order they first read, wrapping around. Each slot is padded to 128 bytes on x86-64, so the
/// block is 1 KiB with 8 slots; a lock allocates it once, the first time it turns slots on,
/// and frees it when dropped.)
///
/// The protocol between slot readers and a writer:
///
/// - A reader raises its slot, then checks that slots are still on; if they are not, it backs
///   out and reads through the count (where it waits behind the writer).
/// - A writer announces itself on the count as in Go, turns slots off (from then on new
///   readers take the count and wait), waits for the counted readers inside, then turns slots
///   off once more and waits for every slot to be empty. The slot raise and the check, and
///   the turning off and the scan, are each ordered by sequential consistency, so either the
///   reader sees slots off or the writer sees its slot raised: never both inside. The last
///   slot reader out, seeing slots off and all slots empty, wakes the writer.
/// - Slots are turned on only by someone who keeps writers out while doing it: a reader
///   holding a read lock through the count (the writer drains those before its final look at
///   the slots), or a writer on its way out (its unlock, or a downgrade). A reader turning
///   them on that then finds a writer announced turns them off again.
///
/// The policy, since slots cost every writer a scan of all slots and readers a cache miss
/// after each write: a lock starts with slots off and unallocated. Readers going through the
/// count that find another reader inside, seen from alternating threads (a sample of them),
/// turn slots on; nested reads on one thread never do. Each writer then counts the slot
/// reads since the previous writer into a credit; while it lasts, slots go back on at its
/// unlock. When writes come too often for the credit (fewer than about 32 reads per write),
/// slots stay off until readers show sharing again, each time twice as much.
///
/// `read`, `try_read` and their guards (plain and mapped) use slots; `read_arc`, the timed
/// reads, `downgrade`, the async reads and the `lock_api` form always take the count (their
/// guards do not record a slot). [`readers`](Self::readers) counts both.
#[doc(alias = "RWMutex")]
pub struct RwMutex<T: ?Sized> {
    /// The lock itself (Go's algorithm, without the data) and its diagnostics record.
    raw: Tracked<RawRwMutex>,
    data: UnsafeCell<T>,
}

// SAFETY: sharing the lock lets several threads read `&T` at once (needs `T: Sync`) and lets a
// writer on another thread get `&mut T` (needs `T: Send`) — the same bounds as `std::sync::RwLock`.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwMutex<T> {}

impl<T> RwMutex<T> {
    /// Creates an unlocked `RwMutex` holding `value` (Go's zero value is ready to use).
    #[cfg(not(loom))]
    #[track_caller]
    pub const fn new(value: T) -> Self {
        Self::new_named(None, value)
    }

    /// Creates an unlocked `RwMutex` holding `value`, with a name the deadlock detector uses in
    /// its reports (feature `deadlock-detection`; without it the name is ignored).
    #[cfg(not(loom))]
    #[track_caller]
    pub const fn named(name: &'static str, value: T) -> Self {
        Self::new_named(Some(name), value)
    }

    #[cfg(not(loom))]
    #[track_caller]
    const fn new_named(name: Option<&'static str>, value: T) -> Self {
        RwMutex {
            raw: Tracked::new(RawRwMutex::new(), "RwMutex", name),
            data: UnsafeCell::new(value),
        }
    }

    /// Creates an unlocked `RwMutex` holding `value`.
    #[cfg(loom)]
    pub fn new(value: T) -> Self {
        RwMutex {
            raw: Tracked::new(RawRwMutex::new(), "RwMutex", None),
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
    #[track_caller]
    pub fn read(&self) -> RwMutexReadGuard<'_, T> {
        RwMutexReadGuard::new(self, self.acquire_read())
    }

    /// Takes a read lock (through a reader slot when this lock has them on) and says how.
    #[inline]
    #[track_caller]
    fn acquire_read(&self) -> ReadToken {
        let token = Cell::new(ReadToken::COUNTED);
        self.raw.diag().acquire(
            Access::Shared,
            || self.raw.try_read_token().map(|t| token.set(t)).is_some(),
            || token.set(self.raw.read_token()),
            || self.raw.is_write_locked(),
        );
        token.get()
    }

    /// Takes a read lock through the reader count (never a slot).
    #[inline]
    #[track_caller]
    fn acquire_read_counted(&self) {
        self.raw.diag().acquire(
            Access::Shared,
            || self.raw.try_read(),
            || self.raw.read(),
            || self.raw.is_write_locked(),
        );
    }

    /// Locks for reading if that is possible without waiting (Go's `TryRLock`): fails while a
    /// writer holds the lock or waits for it.
    #[doc(alias = "TryRLock")]
    #[inline]
    #[track_caller]
    pub fn try_read(&self) -> Option<RwMutexReadGuard<'_, T>> {
        let token = self.raw.try_read_token();
        if self.raw.diag().tried(Access::Shared, token.is_some()) {
            token.map(|token| RwMutexReadGuard::new(self, token))
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
    #[track_caller]
    pub fn try_read_for(&self, timeout: Duration) -> Option<RwMutexReadGuard<'_, T>> {
        if self.raw.diag().tried_timed(Access::Shared, || {
            self.raw.try_read_until(deadline_after(timeout))
        }) {
            Some(RwMutexReadGuard::new(self, ReadToken::COUNTED))
        } else {
            None
        }
    }

    /// Locks for reading, giving up at `deadline` (parking_lot's name): like
    /// [`try_read_for`](Self::try_read_for) with the deadline given directly.
    #[track_caller]
    pub fn try_read_until(&self, deadline: std::time::Instant) -> Option<RwMutexReadGuard<'_, T>> {
        if self.raw.diag().tried_timed(Access::Shared, || {
            self.raw.try_read_until(clock_deadline(deadline))
        }) {
            Some(RwMutexReadGuard::new(self, ReadToken::COUNTED))
        } else {
            None
        }
    }

    /// [`read`](Self::read) through an `Arc`: the guard keeps the lock alive instead of
    /// borrowing it, so it has no lifetime (parking_lot's `read_arc`). It always takes the
    /// reader count, never a reader slot (see "Reader slots" in the type docs).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gosync::RwMutex;
    ///
    /// let config = Arc::new(RwMutex::new(String::from("v1")));
    /// let snapshot = config.read_arc(); // no borrow of `config`
    /// let config2 = Arc::clone(&config);
    /// drop(config);
    /// assert_eq!(*snapshot, "v1");
    /// drop(snapshot);
    /// assert!(config2.try_write().is_some());
    /// ```
    #[doc(alias = "RLock")]
    #[inline]
    #[track_caller]
    pub fn read_arc(self: &Arc<Self>) -> ArcRwMutexReadGuard<T> {
        // Counted, not through a reader slot: an `Arc` guard has no room to say which.
        self.acquire_read_counted();
        ArcRwMutexReadGuard {
            lock: Arc::clone(self),
            _not_send: PhantomData,
        }
    }

    /// [`try_read`](Self::try_read) through an `Arc` (see [`read_arc`](Self::read_arc)).
    #[doc(alias = "TryRLock")]
    #[inline]
    #[track_caller]
    pub fn try_read_arc(self: &Arc<Self>) -> Option<ArcRwMutexReadGuard<T>> {
        // Counted, as `read_arc`.
        if !self.raw.diag().tried(Access::Shared, self.raw.try_read()) {
            return None;
        }
        Some(ArcRwMutexReadGuard {
            lock: Arc::clone(self),
            _not_send: PhantomData,
        })
    }

    /// Locks for writing (Go's `Lock`). Waits for other writers, then announces itself — from
    /// that moment new readers wait — and waits for the readers already inside to leave.
    #[doc(alias = "Lock")]
    #[inline]
    #[track_caller]
    pub fn write(&self) -> RwMutexWriteGuard<'_, T> {
        self.raw.diag().acquire(
            Access::Exclusive,
            || self.raw.try_write(),
            || self.raw.write(),
            || false,
        );
        RwMutexWriteGuard::new(self)
    }

    /// Locks for writing if the lock is completely free (Go's `TryLock`).
    #[doc(alias = "TryLock")]
    #[inline]
    #[track_caller]
    pub fn try_write(&self) -> Option<RwMutexWriteGuard<'_, T>> {
        if self
            .raw
            .diag()
            .tried(Access::Exclusive, self.raw.try_write())
        {
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
    #[track_caller]
    pub fn try_write_for(&self, timeout: Duration) -> Option<RwMutexWriteGuard<'_, T>> {
        if self.raw.diag().tried_timed(Access::Exclusive, || {
            self.raw.try_write_until(deadline_after(timeout))
        }) {
            Some(RwMutexWriteGuard::new(self))
        } else {
            None
        }
    }

    /// Locks for writing, giving up at `deadline` (parking_lot's name): like
    /// [`try_write_for`](Self::try_write_for) with the deadline given directly.
    #[track_caller]
    pub fn try_write_until(
        &self,
        deadline: std::time::Instant,
    ) -> Option<RwMutexWriteGuard<'_, T>> {
        if self.raw.diag().tried_timed(Access::Exclusive, || {
            self.raw.try_write_until(clock_deadline(deadline))
        }) {
            Some(RwMutexWriteGuard::new(self))
        } else {
            None
        }
    }

    /// [`write`](Self::write) through an `Arc`: the guard keeps the lock alive instead of
    /// borrowing it, so it has no lifetime (parking_lot's `write_arc`).
    #[doc(alias = "Lock")]
    #[inline]
    #[track_caller]
    pub fn write_arc(self: &Arc<Self>) -> ArcRwMutexWriteGuard<T> {
        core::mem::forget(self.write());
        ArcRwMutexWriteGuard {
            lock: Arc::clone(self),
            _not_send: PhantomData,
        }
    }

    /// [`try_write`](Self::try_write) through an `Arc` (see [`write_arc`](Self::write_arc)).
    #[doc(alias = "TryLock")]
    #[inline]
    #[track_caller]
    pub fn try_write_arc(self: &Arc<Self>) -> Option<ArcRwMutexWriteGuard<T>> {
        core::mem::forget(self.try_write()?);
        Some(ArcRwMutexWriteGuard {
            lock: Arc::clone(self),
            _not_send: PhantomData,
        })
    }

    /// Go's `readerCount` without the writer offset, plus the readers in reader slots: readers
    /// holding the lock plus, while a writer is pending or active, readers queued behind it. A
    /// snapshot, for monitoring (a reader backing out of a slot may show for a moment).
    pub fn readers(&self) -> usize {
        self.raw.readers()
    }

    /// Whether a writer holds the lock **or has announced itself and waits for readers to
    /// leave** (from that moment new readers wait). A snapshot, for monitoring.
    pub fn is_write_locked(&self) -> bool {
        self.raw.is_write_locked()
    }

    /// Loom models only: turns reader slots on now, as readers sharing the lock from several
    /// threads would after a while (see "Reader slots"), from inside a read lock taken through
    /// the count.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn loom_enable_reader_slots(&self) {
        self.raw.enable_reader_slots();
    }

    /// Mutable access without locking: `&mut self` proves no guard exists.
    pub fn get_mut(&mut self) -> &mut T {
        // SAFETY: `&mut self` is exclusive, so no guard can hand out another reference.
        self.data.with_mut(|p| unsafe { &mut *p })
    }

    /// The lock and its diagnostics record. Crate-internal: `Cond` releases and re-takes it
    /// through them while a guard stays borrowed by the caller.
    #[inline]
    pub(crate) fn raw(&self) -> &Tracked<RawRwMutex> {
        &self.raw
    }

    /// What a guard needs to release this lock, without the data type.
    #[inline]
    fn lock_ref(&self) -> RwLockRef<'_> {
        RwLockRef { raw: &self.raw }
    }

    /// The data pointer (valid to dereference while a guard is alive).
    #[inline]
    fn data_ptr(&self) -> *mut T {
        self.data.with_mut(|p| p)
    }
}

/// What releasing an [`RwMutex`] takes, without its data type: the lock and its diagnostics
/// record. Every guard type releases through it.
#[derive(Clone, Copy)]
struct RwLockRef<'a> {
    raw: &'a Tracked<RawRwMutex>,
}

impl RwLockRef<'_> {
    /// Releases a read lock taken as `token` says.
    ///
    /// # Safety
    /// The caller holds that read lock (through a guard) and gives it up.
    #[inline]
    unsafe fn read_unlock(self, token: ReadToken) {
        if self.raw.diag().release(Access::Shared) {
            // SAFETY: forwarded contract.
            unsafe { self.raw.read_unlock_token(token) };
        }
    }

    /// Releases the write lock.
    ///
    /// # Safety
    /// The caller holds the write lock (through a guard) and gives it up.
    #[inline]
    unsafe fn write_unlock(self) {
        if self.raw.diag().release(Access::Exclusive) {
            // SAFETY: forwarded contract.
            unsafe { self.raw.write_unlock() };
        }
    }

    /// Turns the write lock into a read lock.
    ///
    /// # Safety
    /// The caller holds the write lock (through a guard) and hands it to a read guard.
    #[inline]
    unsafe fn downgrade(self) {
        // SAFETY: forwarded contract.
        unsafe { self.raw.downgrade() };
        self.raw.diag().downgrade();
    }

    /// Takes a read lock again after `unlocked` (the guard stands for it) and says how.
    #[inline]
    #[track_caller]
    fn relock_read<T: ?Sized>(lock: &RwMutex<T>) -> ReadToken {
        lock.acquire_read()
    }

    /// Takes a read lock through the count again after an `Arc` guard's `unlocked`.
    #[inline]
    #[track_caller]
    fn relock_read_counted<T: ?Sized>(lock: &RwMutex<T>) {
        lock.acquire_read_counted();
    }

    /// Takes the write lock again after `unlocked` (the guard stands for it).
    #[inline]
    #[track_caller]
    fn relock_write<T: ?Sized>(lock: &RwMutex<T>) {
        core::mem::forget(lock.write());
    }
}

/// Re-takes a lock when dropped, so that a guard passed to `unlocked` holds its lock again
/// when the closure returns or panics.
struct Relock<'a, T: ?Sized> {
    lock: &'a RwMutex<T>,
    mode: RelockMode<'a>,
}

/// What [`Relock`] takes back.
enum RelockMode<'a> {
    /// The write lock.
    Write,
    /// A read lock through the count (an `Arc` guard's).
    ReadCounted,
    /// A read lock, as [`RwMutex::read`] takes it; the guard's token records how.
    Read(&'a Cell<ReadToken>),
}

impl<T: ?Sized> Drop for Relock<'_, T> {
    #[inline]
    fn drop(&mut self) {
        match self.mode {
            RelockMode::Write => RwLockRef::relock_write(self.lock),
            RelockMode::ReadCounted => RwLockRef::relock_read_counted(self.lock),
            RelockMode::Read(token) => token.set(RwLockRef::relock_read(self.lock)),
        }
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
    /// How the read lock was taken (the count or a reader slot). Changed only where the guard
    /// is borrowed mutably (`unlocked`, a `Cond` wait), never through a shared borrow.
    token: Cell<ReadToken>,
    /// Not `Send`, like std's guards: unlocking stays on the locking thread.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard only shares `&T`; `token` is never changed through `&Self`.
unsafe impl<T: ?Sized + Sync> Sync for RwMutexReadGuard<'_, T> {}

impl<'a, T: ?Sized> RwMutexReadGuard<'a, T> {
    #[inline]
    fn new(lock: &'a RwMutex<T>, token: ReadToken) -> Self {
        RwMutexReadGuard {
            lock,
            token: Cell::new(token),
            _not_send: PhantomData,
        }
    }

    /// The guard's token, for a [`Cond`](crate::Cond) waiting with this guard: it releases
    /// the lock and takes it back, and records how in the token. `Cond::wait` borrows the
    /// guard mutably for all of it, so no other borrow sees the change.
    #[inline]
    pub(crate) fn cond_token(s: &Self) -> &Cell<ReadToken> {
        &s.token
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
        // SAFETY: the guard holds the read lock its token describes and gives it up here.
        unsafe { self.lock.lock_ref().read_unlock(self.token.get()) };
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
    fn new(lock: &'a RwMutex<T>) -> Self {
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
        // SAFETY: the guard holds the write lock and gives it up here.
        unsafe { self.lock.lock_ref().write_unlock() };
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

impl<'a, T: ?Sized> RwMutexReadGuard<'a, T> {
    /// The lock this guard holds.
    #[inline]
    pub fn rwmutex(s: &Self) -> &'a RwMutex<T> {
        s.lock
    }

    /// Narrows the guard to a part of the data, keeping the read lock held (parking_lot's
    /// `RwLockReadGuard::map`). An associated function, so it cannot clash with a method of
    /// `T`.
    ///
    /// ```
    /// use gosync::{RwMutex, RwMutexReadGuard};
    ///
    /// let users = RwMutex::new(vec![String::from("ann"), String::from("bob")]);
    /// let first = RwMutexReadGuard::map(users.read(), |v| v[0].as_str());
    /// assert_eq!(&*first, "ann");
    /// ```
    #[inline]
    pub fn map<U: ?Sized>(s: Self, f: impl FnOnce(&T) -> &U) -> MappedRwMutexReadGuard<'a, U> {
        let lock = s.lock;
        // SAFETY: the guard holds a read lock, so no `&mut T` exists.
        let data = NonNull::from(f(unsafe { &*lock.data_ptr() }));
        let token = s.token.get();
        core::mem::forget(s);
        MappedRwMutexReadGuard {
            lock: lock.lock_ref(),
            token,
            data,
            _marker: PhantomData,
        }
    }

    /// Like [`map`](Self::map), but `f` may decline; then the original guard comes back in
    /// `Err`, still holding the read lock.
    #[inline]
    #[allow(clippy::result_large_err)] // the guard is two words
    pub fn try_map<U: ?Sized>(
        s: Self,
        f: impl FnOnce(&T) -> Option<&U>,
    ) -> Result<MappedRwMutexReadGuard<'a, U>, Self> {
        let lock = s.lock;
        // SAFETY: the guard holds a read lock, so no `&mut T` exists.
        match f(unsafe { &*lock.data_ptr() }) {
            Some(data) => {
                let data = NonNull::from(data);
                let token = s.token.get();
                core::mem::forget(s);
                Ok(MappedRwMutexReadGuard {
                    lock: lock.lock_ref(),
                    token,
                    data,
                    _marker: PhantomData,
                })
            }
            None => Err(s),
        }
    }

    /// Runs `f` with the read lock released, then takes it again (parking_lot's `unlocked`);
    /// also when `f` panics. Anything read before may have changed when it returns.
    #[track_caller]
    pub fn unlocked<R>(s: &mut Self, f: impl FnOnce() -> R) -> R {
        // SAFETY: the guard holds a read lock; `s` stays borrowed until `_relock` re-took it.
        unsafe { s.lock.lock_ref().read_unlock(s.token.get()) };
        let _relock = Relock {
            lock: s.lock,
            mode: RelockMode::Read(&s.token),
        };
        f()
    }
}

impl<'a, T: ?Sized> RwMutexWriteGuard<'a, T> {
    /// The lock this guard holds.
    #[inline]
    pub fn rwmutex(s: &Self) -> &'a RwMutex<T> {
        s.lock
    }

    /// Turns the write lock into a read lock, with no moment in between at which another
    /// writer could get in (std's and parking_lot's `downgrade`; Go has none). Readers that
    /// queued behind this writer get in at once; the next writer waits for them and for the
    /// returned guard.
    ///
    /// ```
    /// use gosync::{RwMutex, RwMutexWriteGuard};
    ///
    /// let cache = RwMutex::new(Vec::new());
    /// let mut w = cache.write();
    /// w.push(42); // fill it...
    /// let r = RwMutexWriteGuard::downgrade(w); // ...then keep reading what we wrote
    /// assert!(cache.try_read().is_some()); // other readers get in
    /// assert!(cache.try_write().is_none()); // writers still wait
    /// assert_eq!(r[0], 42);
    /// ```
    #[inline]
    #[track_caller]
    pub fn downgrade(s: Self) -> RwMutexReadGuard<'a, T> {
        let lock = s.lock;
        core::mem::forget(s);
        // SAFETY: `s` held the write lock; the read guard below takes over the read lock.
        unsafe { lock.lock_ref().downgrade() };
        RwMutexReadGuard::new(lock, ReadToken::COUNTED)
    }

    /// Narrows the guard to a part of the data, keeping the write lock held (parking_lot's
    /// `RwLockWriteGuard::map`).
    ///
    /// ```
    /// use gosync::{RwMutex, RwMutexWriteGuard};
    ///
    /// let pair = RwMutex::new((0, String::new()));
    /// let mut name = RwMutexWriteGuard::map(pair.write(), |p| &mut p.1);
    /// name.push_str("gosync");
    /// drop(name);
    /// assert_eq!(pair.read().1, "gosync");
    /// ```
    #[inline]
    pub fn map<U: ?Sized>(
        s: Self,
        f: impl FnOnce(&mut T) -> &mut U,
    ) -> MappedRwMutexWriteGuard<'a, U> {
        let lock = s.lock;
        // SAFETY: the guard holds the write lock; `f` gets the only reference to the data.
        let data = NonNull::from(f(unsafe { &mut *lock.data_ptr() }));
        core::mem::forget(s);
        MappedRwMutexWriteGuard {
            lock: lock.lock_ref(),
            data,
            _marker: PhantomData,
        }
    }

    /// Like [`map`](Self::map), but `f` may decline; then the original guard comes back in
    /// `Err`, still holding the write lock.
    #[inline]
    #[allow(clippy::result_large_err)] // the guard is two words
    pub fn try_map<U: ?Sized>(
        s: Self,
        f: impl FnOnce(&mut T) -> Option<&mut U>,
    ) -> Result<MappedRwMutexWriteGuard<'a, U>, Self> {
        let lock = s.lock;
        // SAFETY: the guard holds the write lock; `f` gets the only reference to the data.
        match f(unsafe { &mut *lock.data_ptr() }) {
            Some(data) => {
                let data = NonNull::from(data);
                core::mem::forget(s);
                Ok(MappedRwMutexWriteGuard {
                    lock: lock.lock_ref(),
                    data,
                    _marker: PhantomData,
                })
            }
            None => Err(s),
        }
    }

    /// Runs `f` with the write lock released, then takes it again (parking_lot's
    /// `unlocked`); also when `f` panics. Anything read before may have changed when it
    /// returns.
    #[track_caller]
    pub fn unlocked<R>(s: &mut Self, f: impl FnOnce() -> R) -> R {
        // SAFETY: the guard holds the write lock; `s` stays borrowed until `_relock` re-took
        // it.
        unsafe { s.lock.lock_ref().write_unlock() };
        let _relock = Relock {
            lock: s.lock,
            mode: RelockMode::Write,
        };
        f()
    }
}

/// A read guard narrowed to a part of the data by [`RwMutexReadGuard::map`]; dropping it
/// releases the read lock. Not `Send`; `Sync` when `U: Sync`.
#[must_use = "if unused the RwMutex will immediately unlock"]
#[clippy::has_significant_drop]
pub struct MappedRwMutexReadGuard<'a, U: ?Sized> {
    lock: RwLockRef<'a>,
    /// How the read lock was taken (from the guard it was mapped from).
    token: ReadToken,
    /// Points into the locked data; valid while the read lock is held.
    data: NonNull<U>,
    /// Behaves like `&'a U` (and is not `Send`: `NonNull` is neither `Send` nor `Sync`).
    _marker: PhantomData<&'a U>,
}

// SAFETY: sharing the guard only shares `&U`.
unsafe impl<U: ?Sized + Sync> Sync for MappedRwMutexReadGuard<'_, U> {}

impl<'a, U: ?Sized> MappedRwMutexReadGuard<'a, U> {
    /// Narrows the guard further (see [`RwMutexReadGuard::map`]).
    #[inline]
    pub fn map<V: ?Sized>(s: Self, f: impl FnOnce(&U) -> &V) -> MappedRwMutexReadGuard<'a, V> {
        // SAFETY: the read lock is held.
        let data = NonNull::from(f(unsafe { s.data.as_ref() }));
        let s = ManuallyDrop::new(s);
        MappedRwMutexReadGuard {
            lock: s.lock,
            token: s.token,
            data,
            _marker: PhantomData,
        }
    }

    /// Narrows the guard further if `f` returns `Some`; otherwise gives it back.
    #[inline]
    #[allow(clippy::result_large_err)] // the guard is three words
    pub fn try_map<V: ?Sized>(
        s: Self,
        f: impl FnOnce(&U) -> Option<&V>,
    ) -> Result<MappedRwMutexReadGuard<'a, V>, Self> {
        // SAFETY: the read lock is held.
        match f(unsafe { s.data.as_ref() }) {
            Some(data) => {
                let data = NonNull::from(data);
                let s = ManuallyDrop::new(s);
                Ok(MappedRwMutexReadGuard {
                    lock: s.lock,
                    token: s.token,
                    data,
                    _marker: PhantomData,
                })
            }
            None => Err(s),
        }
    }
}

impl<U: ?Sized> Deref for MappedRwMutexReadGuard<'_, U> {
    type Target = U;
    #[inline]
    fn deref(&self) -> &U {
        // SAFETY: the read lock is held for the guard's lifetime.
        unsafe { self.data.as_ref() }
    }
}

impl<U: ?Sized> Drop for MappedRwMutexReadGuard<'_, U> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds the read lock its token describes and gives it up here.
        unsafe { self.lock.read_unlock(self.token) };
    }
}

impl<U: ?Sized + fmt::Debug> fmt::Debug for MappedRwMutexReadGuard<'_, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<U: ?Sized + fmt::Display> fmt::Display for MappedRwMutexReadGuard<'_, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A write guard narrowed to a part of the data by [`RwMutexWriteGuard::map`]; dropping it
/// releases the write lock. Not `Send`; `Sync` when `U: Sync`.
#[must_use = "if unused the RwMutex will immediately unlock"]
#[clippy::has_significant_drop]
pub struct MappedRwMutexWriteGuard<'a, U: ?Sized> {
    lock: RwLockRef<'a>,
    /// Points into the locked data; valid while the write lock is held.
    data: NonNull<U>,
    /// Behaves like `&'a mut U` (and is not `Send`).
    _marker: PhantomData<&'a mut U>,
}

// SAFETY: sharing the guard only shares `&U`.
unsafe impl<U: ?Sized + Sync> Sync for MappedRwMutexWriteGuard<'_, U> {}

impl<'a, U: ?Sized> MappedRwMutexWriteGuard<'a, U> {
    /// Narrows the guard further (see [`RwMutexWriteGuard::map`]).
    #[inline]
    pub fn map<V: ?Sized>(
        s: Self,
        f: impl FnOnce(&mut U) -> &mut V,
    ) -> MappedRwMutexWriteGuard<'a, V> {
        // SAFETY: the write lock is held; `f` gets the only reference.
        let data = NonNull::from(f(unsafe { &mut *s.data.as_ptr() }));
        let s = ManuallyDrop::new(s);
        MappedRwMutexWriteGuard {
            lock: s.lock,
            data,
            _marker: PhantomData,
        }
    }

    /// Narrows the guard further if `f` returns `Some`; otherwise gives it back.
    #[inline]
    #[allow(clippy::result_large_err)] // the guard is three words
    pub fn try_map<V: ?Sized>(
        s: Self,
        f: impl FnOnce(&mut U) -> Option<&mut V>,
    ) -> Result<MappedRwMutexWriteGuard<'a, V>, Self> {
        // SAFETY: the write lock is held; `f` gets the only reference.
        match f(unsafe { &mut *s.data.as_ptr() }) {
            Some(data) => {
                let data = NonNull::from(data);
                let s = ManuallyDrop::new(s);
                Ok(MappedRwMutexWriteGuard {
                    lock: s.lock,
                    data,
                    _marker: PhantomData,
                })
            }
            None => Err(s),
        }
    }
}

impl<U: ?Sized> Deref for MappedRwMutexWriteGuard<'_, U> {
    type Target = U;
    #[inline]
    fn deref(&self) -> &U {
        // SAFETY: the write lock is held for the guard's lifetime.
        unsafe { self.data.as_ref() }
    }
}

impl<U: ?Sized> DerefMut for MappedRwMutexWriteGuard<'_, U> {
    #[inline]
    fn deref_mut(&mut self) -> &mut U {
        // SAFETY: the write lock is held and `&mut self` makes this the only reference.
        unsafe { self.data.as_mut() }
    }
}

impl<U: ?Sized> Drop for MappedRwMutexWriteGuard<'_, U> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds the write lock and gives it up here.
        unsafe { self.lock.write_unlock() };
    }
}

impl<U: ?Sized + fmt::Debug> fmt::Debug for MappedRwMutexWriteGuard<'_, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<U: ?Sized + fmt::Display> fmt::Display for MappedRwMutexWriteGuard<'_, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A read guard that owns an `Arc` of its lock instead of borrowing it (made by
/// [`RwMutex::read_arc`]); dropping it releases the read lock. Not `Send`; `Sync` when
/// `T: Send + Sync`.
#[must_use = "if unused the RwMutex will immediately unlock"]
#[clippy::has_significant_drop]
pub struct ArcRwMutexReadGuard<T: ?Sized> {
    lock: Arc<RwMutex<T>>,
    /// Not `Send`, like std's guards.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T` and `&Arc<RwMutex<T>>` (needs `T: Send + Sync`).
unsafe impl<T: ?Sized + Send + Sync> Sync for ArcRwMutexReadGuard<T> {}

impl<T: ?Sized> ArcRwMutexReadGuard<T> {
    /// The lock this guard holds.
    #[inline]
    pub fn rwmutex(s: &Self) -> &Arc<RwMutex<T>> {
        &s.lock
    }

    /// Runs `f` with the read lock released, then takes it again (see
    /// [`RwMutexReadGuard::unlocked`]).
    #[track_caller]
    pub fn unlocked<R>(s: &mut Self, f: impl FnOnce() -> R) -> R {
        // SAFETY: the guard holds a read lock; `s` stays borrowed until `_relock` re-took it.
        unsafe { s.lock.lock_ref().read_unlock(ReadToken::COUNTED) };
        let _relock = Relock {
            lock: &*s.lock,
            mode: RelockMode::ReadCounted,
        };
        f()
    }
}

impl<T: ?Sized> Deref for ArcRwMutexReadGuard<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: a read lock is held for the guard's lifetime.
        unsafe { &*self.lock.data_ptr() }
    }
}

impl<T: ?Sized> Drop for ArcRwMutexReadGuard<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds a read lock, taken through the count, and gives it up here.
        unsafe { self.lock.lock_ref().read_unlock(ReadToken::COUNTED) };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for ArcRwMutexReadGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A write guard that owns an `Arc` of its lock instead of borrowing it (made by
/// [`RwMutex::write_arc`]); dropping it releases the write lock. Not `Send`; `Sync` when
/// `T: Send + Sync`.
#[must_use = "if unused the RwMutex will immediately unlock"]
#[clippy::has_significant_drop]
pub struct ArcRwMutexWriteGuard<T: ?Sized> {
    lock: Arc<RwMutex<T>>,
    /// Not `Send`, like std's guards.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T` and `&Arc<RwMutex<T>>` (needs `T: Send + Sync`).
unsafe impl<T: ?Sized + Send + Sync> Sync for ArcRwMutexWriteGuard<T> {}

impl<T: ?Sized> ArcRwMutexWriteGuard<T> {
    /// The lock this guard holds.
    #[inline]
    pub fn rwmutex(s: &Self) -> &Arc<RwMutex<T>> {
        &s.lock
    }

    /// Turns the write lock into a read lock atomically (see [`RwMutexWriteGuard::downgrade`]).
    #[inline]
    #[track_caller]
    pub fn downgrade(s: Self) -> ArcRwMutexReadGuard<T> {
        let s = ManuallyDrop::new(s);
        // SAFETY: `s` is never used or dropped again; its `Arc` moves to the read guard.
        let lock = unsafe { core::ptr::read(&s.lock) };
        // SAFETY: `s` held the write lock; the read guard below takes over the read lock.
        unsafe { lock.lock_ref().downgrade() };
        ArcRwMutexReadGuard {
            lock,
            _not_send: PhantomData,
        }
    }

    /// Runs `f` with the write lock released, then takes it again (see
    /// [`RwMutexWriteGuard::unlocked`]).
    #[track_caller]
    pub fn unlocked<R>(s: &mut Self, f: impl FnOnce() -> R) -> R {
        // SAFETY: the guard holds the write lock; `s` stays borrowed until `_relock` re-took
        // it.
        unsafe { s.lock.lock_ref().write_unlock() };
        let _relock = Relock {
            lock: &*s.lock,
            mode: RelockMode::Write,
        };
        f()
    }
}

impl<T: ?Sized> Deref for ArcRwMutexWriteGuard<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the write lock is held for the guard's lifetime.
        unsafe { &*self.lock.data_ptr() }
    }
}

impl<T: ?Sized> DerefMut for ArcRwMutexWriteGuard<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write lock is held and `&mut self` makes this the only reference.
        unsafe { &mut *self.lock.data_ptr() }
    }
}

impl<T: ?Sized> Drop for ArcRwMutexWriteGuard<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds the write lock and gives it up here.
        unsafe { self.lock.lock_ref().write_unlock() };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for ArcRwMutexWriteGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::Cond;

    /// An `RwMutex` whose reader slots are on.
    fn with_slots<T>(value: T) -> RwMutex<T> {
        let m = RwMutex::new(value);
        m.raw.enable_reader_slots();
        m
    }

    fn holds_slot<T: ?Sized>(g: &RwMutexReadGuard<'_, T>) -> bool {
        g.token.get() != ReadToken::COUNTED
    }

    #[test]
    fn read_guards_release_the_slot_they_took() {
        let m = with_slots(vec![1, 2]);
        let g = m.read();
        assert!(holds_slot(&g));
        let first = RwMutexReadGuard::map(g, |v| &v[0]);
        assert!(
            m.try_write().is_none(),
            "a writer got in past a mapped slot guard"
        );
        drop(first);
        assert!(m.try_write().is_some());
        let g = m.try_read().unwrap();
        assert!(holds_slot(&g));
        drop(g);
        let mut g = m.read();
        RwMutexReadGuard::unlocked(&mut g, || {
            assert!(m.try_write().is_some(), "unlocked did not release the slot")
        });
        assert!(
            m.try_write().is_none(),
            "unlocked did not take the lock back"
        );
        drop(g);
        assert_eq!(m.readers(), 0);
        assert!(m.try_write().is_some());
    }

    #[test]
    fn cond_wait_with_a_slot_guard_releases_it_and_takes_the_lock_back() {
        let m = with_slots(0);
        let c = Cond::new();
        let mut g = m.read();
        assert!(holds_slot(&g));
        std::thread::scope(|s| {
            // Gets in only while the wait below has released the read lock.
            let writer = s.spawn(|| *m.write() += 1);
            // Nobody signals: the wait ends by its timeout.
            assert!(c.wait_timeout(&mut g, Duration::from_millis(300)));
            writer.join().unwrap();
        });
        assert_eq!(*g, 1);
        assert!(
            m.try_write().is_none(),
            "the wait did not take the lock back"
        );
        drop(g);
        assert_eq!(m.readers(), 0);
        assert!(m.try_write().is_some());
    }
}
