//! [`Cond`]: Go's `sync.Cond` — FIFO signalling, no spurious wake-ups, for threads and tasks.

use core::fmt;
use core::future::Future;
use core::ops::DerefMut;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use crate::primitive::atomic::{AtomicU64, Ordering};
use crate::primitive::{now, Instant};

use super::backoff::Backoff;
use super::mutex::{guard_mutex, ArcMutexGuard, AsyncMutexGuard, MutexGuard, MutexLockFuture};
use super::raw_mutex::RawMutex;
use super::raw_mutex::{TOKEN_HANDOFF, TOKEN_WOKEN};
use super::raw_rwmutex::RawRwMutex;
use super::rwmutex::{
    ArcRwMutexReadGuard, ArcRwMutexWriteGuard, AsyncRwMutexReadGuard, AsyncRwMutexWriteGuard,
    RwMutex, RwMutexReadFuture, RwMutexReadGuard, RwMutexWriteFuture, RwMutexWriteGuard,
};
use super::wait_queue::{Kind, QueueGuard, WaitQueue, Waiter};
use crate::diag::{Site, Sleep, Sleeping};

/// Crate-private: the sealed half of [`CondGuard`] and the locks it reaches. (Its items are
/// `pub` only to satisfy the sealed-trait pattern; the module itself is private, so the
/// crate-internal lock types they mention stay unreachable.)
#[allow(private_interfaces)]
mod sealed {
    use super::{Backoff, RawMutex, RawRwMutex, Site, Waiter};
    use crate::diag::{Access, Tracked};
    use crate::sync::reader_bias::ReadToken;
    use core::cell::Cell;

    /// Keeps [`CondGuard`](super::CondGuard) closed to the crate's guards.
    pub trait Sealed {
        /// The lock this guard holds.
        fn cond_lock(&self) -> CondLock<'_>;
    }

    /// Keeps [`AsyncCondGuard`](super::AsyncCondGuard) closed to the crate's async guards.
    pub trait AsyncSealed: Sized {
        /// The future that takes the lock back (a `lock_async`/`read_async`/`write_async`).
        type Relock: core::future::Future<Output = Self>;
        /// The lock this guard holds.
        fn async_cond_lock(&self) -> CondLock<'_>;
        /// Releases the lock and returns the (not yet polled) future that takes it back.
        fn unlock_for_wait(self) -> Self::Relock;
    }

    /// A lock a [`Cond`] can release while it waits and take back before it returns, reached
    /// through the guard passed to `wait` (crate-internal). Both go through the lock's
    /// diagnostics record, so the deadlock detector sees the lock given up and waited for
    /// again.
    #[derive(Clone, Copy)]
    pub enum CondLock<'a> {
        /// A [`Mutex`](crate::Mutex) (or the mutex behind an Arc guard).
        Mutex(&'a Tracked<RawMutex>),
        /// The read side of an [`RwMutex`](crate::RwMutex) (Go's `RLocker`), with the guard's
        /// token when it has one (how the read lock was taken; without one: the count).
        Read(&'a Tracked<RawRwMutex>, Option<&'a Cell<ReadToken>>),
        /// The write side of an [`RwMutex`](crate::RwMutex).
        Write(&'a Tracked<RawRwMutex>),
    }

    impl<'a> CondLock<'a> {
        /// The address that identifies the lock (what a `Cond` binds to): the raw lock's.
        #[inline]
        pub(super) fn addr(self) -> usize {
            match self {
                CondLock::Mutex(m) => &**m as *const RawMutex as usize,
                CondLock::Read(l, _) | CondLock::Write(l) => &**l as *const RawRwMutex as usize,
            }
        }

        /// Releases the lock the guard holds (the guard stays borrowed by `wait`).
        ///
        /// # Safety
        /// The lock is held through the guard, which is not used until
        /// [`relock`](Self::relock).
        #[inline]
        pub(super) unsafe fn unlock(self) {
            // The raw unlock runs only if the diagnostics say this thread holds the lock (see
            // `crate::diag`).
            match self {
                CondLock::Mutex(m) => {
                    if m.diag().release(Access::Exclusive) {
                        // SAFETY: forwarded contract.
                        unsafe { m.unlock() }
                    }
                }
                CondLock::Read(l, token) => {
                    if l.diag().release(Access::Shared) {
                        let token = token.map_or(ReadToken::COUNTED, Cell::get);
                        // SAFETY: forwarded contract; the token says how the lock was taken.
                        unsafe { l.read_unlock_token(token) }
                    }
                }
                CondLock::Write(l) => {
                    if l.diag().release(Access::Exclusive) {
                        // SAFETY: forwarded contract.
                        unsafe { l.write_unlock() }
                    }
                }
            }
        }

        /// The mutex behind a [`CondLock::Mutex`]: the lock a `broadcast` may move its waiters
        /// to.
        #[inline]
        pub(super) fn mutex(self) -> Option<&'a RawMutex> {
            match self {
                CondLock::Mutex(m) => Some(&**m),
                CondLock::Read(..) | CondLock::Write(_) => None,
            }
        }

        /// Takes the lock back for a waiter that a `broadcast` moved into the mutex's queue
        /// and the mutex then woke with `token` (see `RawMutex::requeue_from`).
        ///
        /// The deadlock detector records the acquisition without its pre-wait checks: the
        /// waiter owns a wake-up (or the lock) already and must not unwind before it has
        /// finished, and this lock order was checked when the guard first took the lock.
        #[track_caller]
        pub(super) fn relock_requeued(self, node: &Waiter, token: usize) {
            let CondLock::Mutex(raw) = self else {
                unreachable!("only Mutex waiters are moved to their lock's queue");
            };
            raw.lock_requeued(node, token);
            raw.diag().acquired(Access::Exclusive, Site::caller());
        }

        /// Takes the lock back for the guard.
        #[track_caller]
        pub(super) fn relock(self) {
            match self {
                CondLock::Mutex(raw) => raw.diag().acquire(
                    Access::Exclusive,
                    || raw.try_lock(),
                    || {
                        // A notifier usually still holds the mutex when it wakes us (it
                        // signals under the lock and unlocks right after). Queueing on the
                        // mutex at once would cost a second sleep and wake-up; try for a
                        // short, bounded while first — unless others already queue on it (a
                        // broadcast's herd), where spinning would only take CPU from the
                        // holder.
                        let mut backoff = Backoff::new();
                        while !raw.try_lock() {
                            if raw.waiters() > 0 || !backoff.snooze() {
                                raw.lock();
                                break;
                            }
                        }
                    },
                    || false,
                ),
                // The RwMutex's own acquires spin briefly before they park.
                CondLock::Read(l, None) => l.diag().acquire(
                    Access::Shared,
                    || l.try_read(),
                    || l.read(),
                    || l.is_write_locked(),
                ),
                CondLock::Read(l, Some(cell)) => l.diag().acquire(
                    Access::Shared,
                    || l.try_read_token().map(|t| cell.set(t)).is_some(),
                    || cell.set(l.read_token()),
                    || l.is_write_locked(),
                ),
                CondLock::Write(l) => {
                    l.diag()
                        .acquire(Access::Exclusive, || l.try_write(), || l.write(), || false)
                }
            }
        }
    }
}
use sealed::CondLock;

/// A guard a [`Cond`] can wait with: the lock it holds is released while the thread waits and
/// held again when `wait` returns.
///
/// Implemented for [`MutexGuard`], [`ArcMutexGuard`], and the read and write guards of
/// [`RwMutex`](crate::RwMutex) (plain and `Arc`). Waiting with a read guard is Go's
/// `sync.NewCond(rw.RLocker())`. Mapped guards are not accepted: their data may only be valid
/// while the lock stays held. Sealed: it cannot be implemented outside gosync.
pub trait CondGuard: sealed::Sealed {}

impl<T: ?Sized> sealed::Sealed for MutexGuard<'_, T> {
    #[inline]
    fn cond_lock(&self) -> CondLock<'_> {
        CondLock::Mutex(guard_mutex(self).raw())
    }
}
impl<T: ?Sized> CondGuard for MutexGuard<'_, T> {}

impl<T: ?Sized> sealed::Sealed for ArcMutexGuard<T> {
    #[inline]
    fn cond_lock(&self) -> CondLock<'_> {
        CondLock::Mutex(ArcMutexGuard::mutex(self).raw())
    }
}
impl<T: ?Sized> CondGuard for ArcMutexGuard<T> {}

impl<T: ?Sized> sealed::Sealed for RwMutexReadGuard<'_, T> {
    #[inline]
    fn cond_lock(&self) -> CondLock<'_> {
        CondLock::Read(
            RwMutexReadGuard::rwmutex(self).raw(),
            Some(RwMutexReadGuard::cond_token(self)),
        )
    }
}
impl<T: ?Sized> CondGuard for RwMutexReadGuard<'_, T> {}

impl<T: ?Sized> sealed::Sealed for RwMutexWriteGuard<'_, T> {
    #[inline]
    fn cond_lock(&self) -> CondLock<'_> {
        CondLock::Write(RwMutexWriteGuard::rwmutex(self).raw())
    }
}
impl<T: ?Sized> CondGuard for RwMutexWriteGuard<'_, T> {}

impl<T: ?Sized> sealed::Sealed for ArcRwMutexReadGuard<T> {
    #[inline]
    fn cond_lock(&self) -> CondLock<'_> {
        CondLock::Read(ArcRwMutexReadGuard::rwmutex(self).raw(), None)
    }
}
impl<T: ?Sized> CondGuard for ArcRwMutexReadGuard<T> {}

impl<T: ?Sized> sealed::Sealed for ArcRwMutexWriteGuard<T> {
    #[inline]
    fn cond_lock(&self) -> CondLock<'_> {
        CondLock::Write(ArcRwMutexWriteGuard::rwmutex(self).raw())
    }
}
impl<T: ?Sized> CondGuard for ArcRwMutexWriteGuard<T> {}

/// An async guard a [`Cond`] can wait with ([`Cond::wait_async`]): the lock it holds is
/// released while the task waits and taken back, through the lock's own async acquire, before
/// the wait completes.
///
/// Implemented for [`AsyncMutexGuard`] and the async read and write guards of
/// [`RwMutex`](crate::RwMutex). Sealed: it cannot be implemented outside gosync.
pub trait AsyncCondGuard: sealed::AsyncSealed {}

impl<'a, T: ?Sized> sealed::AsyncSealed for AsyncMutexGuard<'a, T> {
    type Relock = MutexLockFuture<'a, T>;
    #[inline]
    fn async_cond_lock(&self) -> CondLock<'_> {
        CondLock::Mutex(AsyncMutexGuard::mutex(self).raw())
    }
    #[inline]
    fn unlock_for_wait(self) -> Self::Relock {
        let mutex = AsyncMutexGuard::mutex(&self);
        drop(self);
        mutex.lock_async()
    }
}
impl<T: ?Sized> AsyncCondGuard for AsyncMutexGuard<'_, T> {}

impl<'a, T: ?Sized> sealed::AsyncSealed for AsyncRwMutexReadGuard<'a, T> {
    type Relock = RwMutexReadFuture<'a, T>;
    #[inline]
    fn async_cond_lock(&self) -> CondLock<'_> {
        CondLock::Read(AsyncRwMutexReadGuard::rwmutex(self).raw(), None)
    }
    #[inline]
    fn unlock_for_wait(self) -> Self::Relock {
        let lock: &'a RwMutex<T> = AsyncRwMutexReadGuard::rwmutex(&self);
        drop(self);
        lock.read_async()
    }
}
impl<T: ?Sized> AsyncCondGuard for AsyncRwMutexReadGuard<'_, T> {}

impl<'a, T: ?Sized> sealed::AsyncSealed for AsyncRwMutexWriteGuard<'a, T> {
    type Relock = RwMutexWriteFuture<'a, T>;
    #[inline]
    fn async_cond_lock(&self) -> CondLock<'_> {
        CondLock::Write(AsyncRwMutexWriteGuard::rwmutex(self).raw())
    }
    #[inline]
    fn unlock_for_wait(self) -> Self::Relock {
        let lock: &'a RwMutex<T> = AsyncRwMutexWriteGuard::rwmutex(&self);
        drop(self);
        lock.write_async()
    }
}
impl<T: ?Sized> AsyncCondGuard for AsyncRwMutexWriteGuard<'_, T> {}

/// A condition variable with Go's `sync.Cond` semantics, for a gosync [`Mutex`](crate::Mutex)
/// or [`RwMutex`](crate::RwMutex), waited on by threads and async tasks alike.
///
/// Threads [`wait`](Self::wait) for a condition on data protected by a `Mutex`; others change
/// the data and call [`signal`](Self::signal) (wake one waiter) or
/// [`broadcast`](Self::broadcast) (wake all). `wait` releases the lock while it sleeps and takes
/// it back before it returns. Async tasks do the same with [`wait_async`](Self::wait_async) and
/// the guard of [`Mutex::lock_async`](crate::Mutex::lock_async); threads and tasks may wait on
/// one `Cond` together.
///
/// # Guarantees
///
/// - **FIFO.** Every wait joins the queue while it still holds the lock (Go's `notifyList`
///   ticket). `signal` wakes the waiter that called `wait` first — the longest waiter — thread
///   or task.
/// - **`broadcast` wakes exactly the waiters that were waiting when it was called**; a waiter
///   that starts waiting afterwards is not woken by it (and cannot steal its wake-up).
/// - **No spurious wake-ups** (Go: "Wait cannot return unless awoken by Broadcast or Signal").
///   `wait` returns only after a `signal` or `broadcast` chose it, or, for
///   [`wait_timeout`](Self::wait_timeout), after its timeout. Still, being woken does not mean
///   the condition holds (another thread may have taken the lock first and changed the data):
///   check it in a loop, or use [`wait_while`](Self::wait_while), which does that for you.
/// - **No lost signal.** A waiter that gives up — a timed-out `wait_timeout`, a dropped
///   `wait_async` future — leaves the queue; if a `signal` chose it first and it never
///   returned, the signal passes on to the next waiter.
/// - `signal` and `broadcast` may be called with or without the mutex held, and say how many
///   waiters they woke.
///
/// # Differences from Go
///
/// - "Wait without holding the lock" (Go's `sync: unlock of unlocked mutex`) cannot compile:
///   `wait` takes the [`MutexGuard`].
/// - Go's `Cond.L` is fixed at construction. Here `Cond::new()` is `const` and the `Cond`
///   **belongs to the lock its waiters wait with**: while anyone waits on it, waiting with
///   a guard of another lock panics with a clear message. Once nobody waits, the next
///   `wait` may bring any lock — so a `(Mutex, Cond)` pair can be moved (into an `Arc`, a
///   `Vec`, out of a function) between uses: a Rust move is not Go's "copy after first use",
///   which cannot happen here (see below). gosync's [`Mutex`](crate::Mutex) and
///   [`RwMutex`](crate::RwMutex) are supported (any [`CondGuard`] or [`AsyncCondGuard`]);
///   waiting with an `RwMutex` read guard is Go's `sync.NewCond(rw.RLocker())`, and read and
///   write guards of the same `RwMutex` may share one `Cond`. std's locks are not supported.
/// - Added: [`wait_while`](Self::wait_while), [`wait_timeout`](Self::wait_timeout) (a waiter
///   that times out gives its place up; a `signal` never gets lost on it),
///   [`wait_timeout_while`](Self::wait_timeout_while), the async forms
///   [`wait_async`](Self::wait_async) and [`wait_while_async`](Self::wait_while_async),
///   return values of `signal`/`broadcast`, [`waiters`](Self::waiters).
/// - "Copying a Cond after first use" (Go's `sync.Cond is copied`) is impossible: `Cond` is not
///   `Clone`/`Copy`, and it cannot move while anyone waits on it.
///
/// # Differences from `std::sync::Condvar`, `parking_lot::Condvar` and tokio
///
/// - std allows spurious wake-ups and makes no ordering promise; parking_lot has no spurious
///   wake-ups but wakes in queue order, not in order of `wait` calls. Neither guarantees that
///   `notify_all` leaves later waiters alone in the presence of timeouts. (Like parking_lot,
///   and unlike std, which panics if a `Condvar` ever sees a second mutex, a `Cond` may serve
///   another lock once nobody waits on it.)
/// - tokio has no condition variable (its `Notify` stores a permit instead and is not tied to
///   a lock); here the same `Cond` serves threads and tasks.
/// - No poisoning.
///
/// # Example: the referee waits for ten athletes (from the seed)
///
/// ```
/// use gosync::{Cond, Mutex};
/// use std::sync::Arc;
///
/// let ready = Arc::new((Mutex::new(0), Cond::new()));
/// for _ in 0..10 {
///     let ready = Arc::clone(&ready);
///     std::thread::spawn(move || {
///         let (count, cond) = &*ready;
///         *count.lock() += 1;
///         cond.broadcast();
///     });
/// }
/// let (count, cond) = &*ready;
/// let mut guard = count.lock();
/// cond.wait_while(&mut guard, |n| *n != 10);
/// assert_eq!(*guard, 10);
/// ```
///
/// # State and invariants
///
/// - `queue`: the waiters, threads and tasks, oldest first. A waiter links itself at the back
///   **while it still holds its lock**, then releases the lock. So a notifier that takes the
///   lock after a waiter released it finds that waiter queued, and queue order is the order of
///   `wait` calls.
/// - A notifier unlinks the waiters it wakes and hands each a token — `SIGNALLED` or
///   `BROADCAST` — under the queue lock. A waiter is therefore either still linked (it may
///   withdraw: timeout, dropped future) or holds a token (it was chosen), never both and never
///   neither: no lost or spurious wake-up. A withdrawing waiter that finds `SIGNALLED` and will
///   not return passes a signal on; `BROADCAST` is not passed on (everyone queued was woken).
/// - **Broadcast moves, it does not wake** (as parking_lot's `notify_all`), when every queued
///   waiter is a thread waiting with the same `Mutex` and no timeout (`Movable::pinned` is 0)
///   and that mutex is held: the waiters move, in order, to the back of the mutex's queue and
///   count as its waiters; they are chosen (counted out of `binding`) but sleep on. Each
///   later unlock of the mutex wakes the next of them, without the mutex's "woken" bit, so a
///   batch is woken one per unlock rather than all at once to fight for the lock (most of
///   them only to sleep again on it). A moved waiter receives the mutex's tokens and finishes
///   its acquisition as a newcomer (`RawMutex::lock_requeued`). Timed waiters, tasks and
///   `RwMutex` waiters are never moved (a timed waiter must be able to unlink itself from
///   *this* queue); with any of them queued, or the mutex free, `broadcast` wakes everyone.
/// - `binding` bits 23..0 count the waiters not yet chosen: +1 by a waiter before it links
///   itself, −1 (under the queue lock) when a notifier chooses it or it withdraws. So the count
///   is the queue's length plus the waiters about to link; `signal` and `broadcast` return
///   early on 0 without the queue lock.
/// - `binding` bits 63..24: fingerprint of the lock those waiters wait with (its address / 4,
///   low 40 bits); meaningful while the count is not 0.
#[doc(alias = "sync.Cond")]
pub struct Cond {
    /// The waiters, threads and tasks, in the order they started waiting.
    queue: WaitQueue<Movable>,
    /// `(lock fingerprint << 24) | waiters not yet chosen`: see the invariants.
    binding: AtomicU64,
}

/// Token of a waiter chosen by [`Cond::signal`]: if it gives its wake-up up unused, it passes
/// a signal on.
const SIGNALLED: usize = 16;
/// Token of a waiter woken by [`Cond::broadcast`].
const BROADCAST: usize = 17;
// A waiter moved to its mutex's queue receives that mutex's tokens instead.
const _: () = assert!(
    SIGNALLED != TOKEN_WOKEN
        && SIGNALLED != TOKEN_HANDOFF
        && BROADCAST != TOKEN_WOKEN
        && BROADCAST != TOKEN_HANDOFF
);

/// What the `Cond`'s queue lock guards besides the list: whether `broadcast` may move the
/// queued waiters to their mutex's queue (see the invariants).
struct Movable {
    /// Queued waiters that may not be moved: timed waiters (they unlink themselves from this
    /// queue on a timeout), tasks, `RwMutex` waiters, and waiters whose mutex differs from
    /// `mutex`. Such a waiter's node carries a `since` (plain waiters' carry none).
    pinned: usize,
    /// The mutex of the plain waiters queued (set by the first one to queue into an empty
    /// queue). Valid while one of them is queued: it waits with a guard of that mutex.
    mutex: *const RawMutex,
}

// SAFETY: `mutex` is only dereferenced under the queue lock while a waiter that borrows the
// mutex is queued (see `broadcast`); `RawMutex` is `Sync`.
unsafe impl Send for Movable {}

/// Bits of `Cond::binding` that count the waiters.
const ACTIVE_MASK: u64 = (1 << 24) - 1;
/// Where the lock fingerprint starts in `Cond::binding`.
const FINGERPRINT_SHIFT: u32 = 24;

/// A 40-bit fingerprint of a lock's address. Two live locks with the same fingerprint would
/// have to lie a multiple of 4 TiB apart; the only effect would be a missed misuse report.
#[inline]
fn fingerprint(addr: usize) -> u64 {
    ((addr as u64) >> 2) & ((1 << (64 - FINGERPRINT_SHIFT)) - 1)
}

/// Dropped only by unwinding (it is forgotten otherwise): a panic while a thread's queue node
/// is linked. Panicking again aborts the process, since the node lives on the unwinding
/// stack.
struct AbortIfUnwinding;

impl Drop for AbortIfUnwinding {
    fn drop(&mut self) {
        panic!("gosync::Cond: a waiting thread unwound while queued; aborting");
    }
}

impl Cond {
    /// A new condition variable (it belongs to the lock its waiters bring).
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Cond {
            queue: WaitQueue::with_extra(Movable {
                pinned: 0,
                mutex: core::ptr::null(),
            }),
            binding: AtomicU64::new(0),
        }
    }

    /// A new condition variable (it belongs to the lock its waiters bring).
    #[cfg(loom)]
    pub fn new() -> Self {
        Cond {
            queue: WaitQueue::with_extra(Movable {
                pinned: 0,
                mutex: core::ptr::null(),
            }),
            binding: AtomicU64::new(0),
        }
    }

    /// A waiter starts waiting with `lock` (held): counts it in, binding the `Cond` to `lock`
    /// if nobody else waits. Panics if others wait with another lock.
    ///
    /// Binding only while someone waits is what lets a `Cond` and its lock be moved between
    /// uses: a move needs exclusive access, so nobody waits when it happens. (A waiter counts
    /// until it is chosen, not until it holds its lock again: one that is relocking cannot be
    /// confused by a rebinding, and missing a second lock in that instant only misses a misuse
    /// report.)
    #[inline]
    #[track_caller]
    fn enter(&self, lock: CondLock<'_>) {
        let fp = fingerprint(lock.addr());
        let mut cur = self.binding.load(Ordering::Relaxed);
        loop {
            let active = cur & ACTIVE_MASK;
            if active != 0 && cur >> FINGERPRINT_SHIFT != fp {
                panic!(
                    "gosync::Cond used with a second Mutex/RwMutex: threads are waiting on \
                     this Cond with another lock (Go's Cond.L is one lock); use one Cond per lock"
                );
            }
            assert!(
                active < ACTIVE_MASK,
                "gosync: too many threads waiting on one Cond (limit {ACTIVE_MASK})"
            );
            let next = (fp << FINGERPRINT_SHIFT) | (active + 1);
            // Relaxed: the count orders nothing by itself. A notifier that takes the lock after
            // the waiter released it sees the count through the lock's Release/Acquire.
            match self.binding.compare_exchange_weak(
                cur,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }

    /// `n` waiters were chosen or withdrew: counts them out. Called under the queue lock.
    #[inline]
    fn leave(&self, n: u64) {
        if n != 0 {
            let prev = self.binding.fetch_sub(n, Ordering::Relaxed);
            debug_assert!(prev & ACTIVE_MASK >= n);
        }
    }

    /// Links `waiter` at the back of the queue. The caller holds the lock it waits with.
    /// `movable` is that lock for an untimed thread waiting with a `Mutex`, which a
    /// `broadcast` may move to the mutex's queue; `None` for any other waiter. Returns
    /// whether the waiter is movable: then it must hand a mutex token it receives to
    /// `CondLock::relock_requeued`.
    ///
    /// # Safety
    /// `waiter` is not linked, stays where it is and is not dropped until it has been chosen
    /// (token set) or withdrawn ([`withdraw`](Self::withdraw) or `WaitQueue::wait`'s timeout;
    /// a movable waiter never withdraws).
    #[inline]
    unsafe fn link(&self, waiter: &Waiter, kind: Kind<'_>, movable: Option<&RawMutex>) -> bool {
        let mut q = self.queue.lock();
        let empty = q.is_empty();
        let extra = q.extra();
        let movable = match movable {
            Some(m) if empty || core::ptr::eq(extra.mutex, m) => {
                extra.mutex = m;
                true
            }
            _ => {
                extra.pinned += 1;
                false
            }
        };
        // The mark `signal` reads to keep `pinned` exact.
        q.set_since(waiter, (!movable).then(now));
        // SAFETY: forwarded contract.
        unsafe { q.push_back(waiter, kind) };
        movable
    }

    /// A waiter leaves before it was woken or before it returned: unlinks it if still linked;
    /// if a `signal` had chosen it, passes the signal on.
    fn withdraw(&self, waiter: &Waiter) {
        let removed = |q: &mut QueueGuard<'_, Movable>| {
            // Only pinned waiters withdraw.
            q.extra().pinned -= 1;
            self.leave(1);
        };
        if let Some(SIGNALLED) = self.queue.cancel(waiter, removed) {
            self.signal();
        }
    }

    /// How many waiters, threads and tasks, are waiting on this `Cond` right now (in
    /// [`wait`](Self::wait), a timed or conditional form, or a polled
    /// [`wait_async`](Self::wait_async) future; not yet chosen by a `signal` or `broadcast`,
    /// not timed out or dropped). A waiter counts from the moment it starts waiting, before it
    /// releases its lock. A snapshot, for monitoring and tests.
    #[must_use]
    pub fn waiters(&self) -> usize {
        (self.binding.load(Ordering::Relaxed) & ACTIVE_MASK) as usize
    }

    /// Blocks until woken by [`signal`](Self::signal) or [`broadcast`](Self::broadcast)
    /// (Go's `Wait`): releases the mutex, sleeps, and re-locks before returning.
    ///
    /// Never returns spuriously; being woken still does not mean the condition holds — loop,
    /// or use [`wait_while`](Self::wait_while).
    ///
    /// # Panics
    /// If others are waiting on this `Cond` with another lock.
    #[doc(alias = "Wait")]
    #[track_caller]
    pub fn wait<G: CondGuard>(&self, guard: &mut G) {
        let timed_out = self.wait_until(guard, None);
        debug_assert!(!timed_out);
    }

    /// Waits while `condition` returns `true` (the "woken is not the condition holding" pitfall,
    /// handled): checks it under the lock, waits, checks again after every wake-up.
    ///
    /// Takes a guard that gives `&mut` access (a [`MutexGuard`] or an `RwMutex` write guard);
    /// with an `RwMutex` read guard, loop over [`wait`](Self::wait).
    ///
    /// # Panics
    /// If others are waiting on this `Cond` with another lock.
    #[track_caller]
    pub fn wait_while<G: CondGuard + DerefMut>(
        &self,
        guard: &mut G,
        mut condition: impl FnMut(&mut G::Target) -> bool,
    ) {
        while condition(&mut **guard) {
            self.wait(guard);
        }
    }

    /// Waits while `condition` returns `true`, for at most `timeout` in total (std's
    /// `Condvar::wait_timeout_while`). Returns `true` if the condition no longer holds — the
    /// wait succeeded — and `false` if the timeout passed while it still held. The condition is
    /// checked under the lock before the first wait, after every wake-up, and once more after
    /// the timeout.
    ///
    /// Note the sense of the result: `true` means success here, while
    /// [`wait_timeout`](Self::wait_timeout) returns `true` when it timed out.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use gosync::{Cond, Mutex};
    ///
    /// let state = Arc::new((Mutex::new(false), Cond::new()));
    /// let s2 = Arc::clone(&state);
    /// std::thread::spawn(move || {
    ///     *s2.0.lock() = true;
    ///     s2.1.signal();
    /// });
    /// let (ready, cond) = &*state;
    /// let mut g = ready.lock();
    /// assert!(cond.wait_timeout_while(&mut g, Duration::from_secs(10), |ready| !*ready));
    /// assert!(*g);
    /// // Nothing will set it back: this one times out.
    /// assert!(!cond.wait_timeout_while(&mut g, Duration::from_millis(5), |ready| *ready));
    /// ```
    ///
    /// # Panics
    /// If others are waiting on this `Cond` with another lock.
    #[track_caller]
    pub fn wait_timeout_while<G: CondGuard + DerefMut>(
        &self,
        guard: &mut G,
        timeout: Duration,
        mut condition: impl FnMut(&mut G::Target) -> bool,
    ) -> bool {
        let deadline = now().checked_add(timeout);
        while condition(&mut **guard) {
            if let Some(deadline) = deadline {
                if now() >= deadline {
                    return false;
                }
            }
            self.wait_until(guard, deadline);
        }
        true
    }

    /// Like [`wait`](Self::wait), but gives up after `timeout`. Returns `true` if it timed out
    /// (the mutex is re-locked either way).
    ///
    /// A waiter that times out gives up its place: a later `signal` skips it and wakes the next
    /// waiter, so no signal is lost. If a `signal` picks this waiter at the moment the timeout
    /// fires, the signal wins and `false` is returned.
    ///
    /// # Panics
    /// If others are waiting on this `Cond` with another lock.
    #[track_caller]
    pub fn wait_timeout<G: CondGuard>(&self, guard: &mut G, timeout: Duration) -> bool {
        self.wait_until(guard, now().checked_add(timeout))
    }

    #[track_caller]
    fn wait_until<G: CondGuard>(&self, guard: &mut G, deadline: Option<Instant>) -> bool {
        let raw = sealed::Sealed::cond_lock(guard);
        self.enter(raw);
        let waiter = Waiter::new();
        let movable = if deadline.is_none() {
            raw.mutex()
        } else {
            None
        };
        // Between linking and the end of `queue.wait` nothing may unwind: the node may have
        // been moved to the mutex's queue, where only a notification takes it out. The
        // backstop turns a bug there into an abort instead of a dangling node.
        let backstop = AbortIfUnwinding;
        // SAFETY: `waiter` stays on this frame and is not dropped before `queue.wait` below
        // returns (chosen, or withdrawn on timeout); nothing unwinds before (see `backstop`).
        let movable = unsafe { self.link(&waiter, Kind::Thread, movable) };
        // Released only now, with this thread queued: a notifier that takes the lock after this
        // finds it in the queue.
        // SAFETY: the guard proves the lock is held; it stays borrowed (unusable) until we
        // re-lock below, so nobody touches the data through it meanwhile.
        unsafe { raw.unlock() };
        let sleeping = Sleeping::begins(Sleep::Cond);
        let token = self.queue.wait(&waiter, deadline, 0, |q| {
            // Only timed waiters time out; they are pinned.
            q.extra().pinned -= 1;
            self.leave(1);
        });
        drop(sleeping);
        // Acquire through the re-lock: whatever the notifier did under the lock is visible.
        match token {
            Some(SIGNALLED | BROADCAST) | None => {
                core::mem::forget(backstop);
                raw.relock();
            }
            Some(mutex_token) => {
                // Moved to the mutex's queue by a broadcast, and woken by the mutex.
                debug_assert!(movable);
                raw.relock_requeued(&waiter, mutex_token);
                core::mem::forget(backstop);
            }
        }
        token.is_none()
    }

    /// Waits from an async task until woken by [`signal`](Self::signal) or
    /// [`broadcast`](Self::broadcast) (Go's `Wait`, awaited): takes the guard of an async
    /// acquire, releases its lock while the task waits, and resolves to the guard with the
    /// lock taken back.
    ///
    /// The same queue as [`wait`](Self::wait): threads and tasks waiting on one `Cond` are
    /// woken in the order they started waiting. The wait starts at the first poll (the lock
    /// stays held until then); never resolves spuriously. Works with any executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future is safe at any point; the lock is then not held (the guard went
    /// into the future). Dropped before it was woken, it leaves the queue; dropped after a
    /// `signal` chose it but before it resolved, it passes the signal on to the next waiter,
    /// so no signal is lost.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gosync::{Cond, Mutex};
    ///
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct T(std::thread::Thread);
    /// #     impl Wake for T { fn wake(self: Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(Arc::new(T(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// let state = Arc::new((Mutex::new(false), Cond::new()));
    /// let producer = {
    ///     let state = Arc::clone(&state);
    ///     std::thread::spawn(move || {
    ///         *state.0.lock() = true; // a plain thread, a blocking lock
    ///         state.1.signal();
    ///     })
    /// };
    /// block_on(async {
    ///     let (ready, cond) = &*state;
    ///     let mut g = ready.lock_async().await;
    ///     while !*g {
    ///         g = cond.wait_async(g).await;
    ///     }
    /// });
    /// producer.join().unwrap();
    /// ```
    ///
    /// # Panics
    /// When first polled, if others are waiting on this `Cond` with another lock.
    #[doc(alias = "Wait")]
    pub fn wait_async<G: AsyncCondGuard>(&self, guard: G) -> CondWaitFuture<'_, G> {
        CondWaitFuture {
            cond: self,
            guard: Some(guard),
            relock: None,
            waiter: Waiter::new(),
            stage: Stage::Start,
        }
    }

    /// Waits from an async task while `condition` returns `true`: checks it under the lock,
    /// waits with [`wait_async`](Self::wait_async), checks again after every wake-up, and
    /// resolves to the guard once it returns `false`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gosync::{Cond, Mutex};
    ///
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct T(std::thread::Thread);
    /// #     impl Wake for T { fn wake(self: Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(Arc::new(T(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// let jobs = Arc::new((Mutex::new(Vec::new()), Cond::new()));
    /// let producer = {
    ///     let jobs = Arc::clone(&jobs);
    ///     std::thread::spawn(move || {
    ///         jobs.0.lock().push("job");
    ///         jobs.1.signal();
    ///     })
    /// };
    /// let job = block_on(async {
    ///     let (queue, cond) = &*jobs;
    ///     let mut g = cond.wait_while_async(queue.lock_async().await, |q| q.is_empty()).await;
    ///     g.pop().unwrap()
    /// });
    /// assert_eq!(job, "job");
    /// producer.join().unwrap();
    /// ```
    ///
    /// # Panics
    /// If others are waiting on this `Cond` with another lock.
    pub async fn wait_while_async<G: AsyncCondGuard + DerefMut>(
        &self,
        mut guard: G,
        mut condition: impl FnMut(&mut G::Target) -> bool,
    ) -> G {
        while condition(&mut *guard) {
            guard = self.wait_async(guard).await;
        }
        guard
    }

    /// Wakes the waiter that has waited longest (Go's `Signal`). Returns whether there was one.
    #[doc(alias = "Signal")]
    pub fn signal(&self) -> bool {
        // Fast path, as Go: nobody waiting.
        if self.waiters() == 0 {
            return false;
        }
        let mut q = self.queue.lock();
        let Some(front) = q.front() else {
            return false;
        };
        // SAFETY: `front` is linked in this queue.
        if unsafe { q.since(front) }.is_some() {
            q.extra().pinned -= 1;
        }
        // SAFETY: as above.
        unsafe { q.notify(front, SIGNALLED) };
        self.leave(1);
        true
        // The wake-up is delivered as `q` drops, after the queue lock is released.
    }

    /// Wakes every waiter waiting right now (Go's `Broadcast`); waiters that start waiting
    /// later are not affected. Returns how many waiters were woken.
    #[doc(alias = "Broadcast")]
    pub fn broadcast(&self) -> usize {
        if self.waiters() == 0 {
            return 0;
        }
        let mut q = self.queue.lock();
        let mut woken = 0;
        if q.extra().pinned == 0 && !q.is_empty() {
            // Every queued waiter is a plain thread waiting with `mutex`. If that lock is held,
            // move them to its queue: its unlocks wake them one at a time, instead of all at
            // once to fight for the lock (and most to sleep again on it).
            // SAFETY: the queued waiters borrow the mutex (through the guards they wait with)
            // until they have been woken, which needs this queue lock: it is alive.
            let mutex = unsafe { &*q.extra().mutex };
            woken = mutex.requeue_from(&mut q);
        }
        if woken == 0 {
            woken = q.notify_all(BROADCAST);
            q.extra().pinned = 0;
        }
        self.leave(woken as u64);
        woken
    }
}

impl Default for Cond {
    fn default() -> Self {
        Cond::new()
    }
}

impl fmt::Debug for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cond")
            .field("waiters", &self.waiters())
            .finish_non_exhaustive()
    }
}

/// Where a [`CondWaitFuture`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Not polled yet: the guard, and its lock, are still held.
    Start,
    /// Queued on the `Cond`, lock released, not yet seen woken.
    Queued,
    /// Woken with this token; taking the lock back.
    Relocking(usize),
    /// Resolved.
    Done,
}

/// Future returned by [`Cond::wait_async`]; resolves to the guard, its lock held again.
///
/// `Send` when the guard is. Not `Unpin` (it holds its queue node in place while waiting).
/// Dropping it before it completes is safe at any point (see `wait_async`'s cancel safety).
#[must_use = "futures do nothing unless polled"]
pub struct CondWaitFuture<'a, G: AsyncCondGuard> {
    cond: &'a Cond,
    /// The guard until the first poll.
    guard: Option<G>,
    /// From the first poll: the acquire that takes the lock back (structurally pinned).
    relock: Option<G::Relock>,
    /// Our place in the `Cond`'s queue (structurally pinned).
    waiter: Waiter,
    stage: Stage,
}

impl<G: AsyncCondGuard> Future for CondWaitFuture<'_, G> {
    type Output = G;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<G> {
        // SAFETY: `waiter` and `relock` are structurally pinned: never moved out, only
        // replaced in place (`relock` is set once, while empty, and cleared once done).
        let this = unsafe { self.get_unchecked_mut() };
        loop {
            match this.stage {
                Stage::Start => {
                    let guard = this
                        .guard
                        .as_ref()
                        .expect("CondWaitFuture without its guard");
                    // May panic (a second lock): the guard stays in the future and its drop
                    // releases the lock.
                    this.cond.enter(guard.async_cond_lock());
                    // SAFETY: the node is pinned in this future, whose drop withdraws it while
                    // the stage is `Queued`.
                    // (A task is never moved to its lock's queue.)
                    unsafe { this.cond.link(&this.waiter, Kind::Task(cx.waker()), None) };
                    this.stage = Stage::Queued;
                    let guard = this.guard.take().expect("CondWaitFuture without its guard");
                    // Released only now, with the task queued.
                    this.relock = Some(guard.unlock_for_wait());
                    // The waker is registered: a notification from now on wakes the task.
                    return Poll::Pending;
                }
                Stage::Queued => match this.cond.queue.poll_wait(&this.waiter, cx) {
                    Poll::Ready(token) => this.stage = Stage::Relocking(token),
                    Poll::Pending => return Poll::Pending,
                },
                Stage::Relocking(_) => {
                    let relock = this.relock.as_mut().expect("CondWaitFuture without relock");
                    // SAFETY: `relock` is structurally pinned (see above).
                    match unsafe { Pin::new_unchecked(relock) }.poll(cx) {
                        Poll::Ready(guard) => {
                            this.stage = Stage::Done;
                            this.relock = None;
                            return Poll::Ready(guard);
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Stage::Done => panic!("CondWaitFuture polled after completion"),
            }
        }
    }
}

impl<G: AsyncCondGuard> Drop for CondWaitFuture<'_, G> {
    fn drop(&mut self) {
        match self.stage {
            // Not yet seen woken: leave the queue, or pass on a signal that just chose us.
            Stage::Queued => self.cond.withdraw(&self.waiter),
            // Chosen by a signal that never reached the caller: pass it on. (The relock future,
            // dropped after this, gives up its own place in the lock's queue.)
            Stage::Relocking(SIGNALLED) => {
                self.cond.signal();
            }
            _ => {}
        }
    }
}

impl<G: AsyncCondGuard> fmt::Debug for CondWaitFuture<'_, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CondWaitFuture")
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}
