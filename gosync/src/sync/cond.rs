//! [`Cond`]: Go's `sync.Cond` — FIFO signalling, no spurious wake-ups.

use core::fmt;
use core::ops::DerefMut;
use core::time::Duration;

use crate::primitive::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::primitive::parking::{self, FilterOp, ParkResult, ParkToken, DEFAULT_UNPARK_TOKEN};
use crate::primitive::{now, Instant, UnsafeCell};

use super::backoff::Backoff;
use super::mutex::{guard_mutex, ArcMutexGuard, MutexGuard};
use super::raw_mutex::RawMutex;
use super::raw_rwmutex::RawRwMutex;
use super::rwmutex::{
    ArcRwMutexReadGuard, ArcRwMutexWriteGuard, RwMutexReadGuard, RwMutexWriteGuard,
};
use crate::diag::{Sleep, Sleeping};

/// `a` comes before `b` in ticket order (Go's `less`, wrap-around safe).
#[inline(always)]
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Crate-private: the sealed half of [`CondGuard`] and the locks it reaches. (Its items are
/// `pub` only to satisfy the sealed-trait pattern; the module itself is private, so the
/// crate-internal lock types they mention stay unreachable.)
#[allow(private_interfaces)]
mod sealed {
    use super::{Backoff, RawMutex, RawRwMutex};
    use crate::diag::{Access, Tracked};

    /// Keeps [`CondGuard`](super::CondGuard) closed to the crate's guards.
    pub trait Sealed {
        /// The lock this guard holds.
        fn cond_lock(&self) -> CondLock<'_>;
    }

    /// A lock a [`Cond`] can release while it waits and take back before it returns, reached
    /// through the guard passed to `wait` (crate-internal). Both go through the lock's
    /// diagnostics record, so the deadlock detector sees the lock given up and waited for
    /// again.
    #[derive(Clone, Copy)]
    pub enum CondLock<'a> {
        /// A [`Mutex`](crate::Mutex) (or the mutex behind an Arc guard).
        Mutex(&'a Tracked<RawMutex>),
        /// The read side of an [`RwMutex`](crate::RwMutex) (Go's `RLocker`).
        Read(&'a Tracked<RawRwMutex>),
        /// The write side of an [`RwMutex`](crate::RwMutex).
        Write(&'a Tracked<RawRwMutex>),
    }

    impl CondLock<'_> {
        /// The address that identifies the lock (what a `Cond` binds to): the raw lock's.
        #[inline]
        pub(super) fn addr(self) -> usize {
            match self {
                CondLock::Mutex(m) => &**m as *const RawMutex as usize,
                CondLock::Read(l) | CondLock::Write(l) => &**l as *const RawRwMutex as usize,
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
                CondLock::Read(l) => {
                    if l.diag().release(Access::Shared) {
                        // SAFETY: forwarded contract.
                        unsafe { l.read_unlock() }
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
                CondLock::Read(l) => l.diag().acquire(
                    Access::Shared,
                    || l.try_read(),
                    || l.read(),
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
        CondLock::Read(RwMutexReadGuard::rwmutex(self).raw())
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
        CondLock::Read(ArcRwMutexReadGuard::rwmutex(self).raw())
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

/// A condition variable with Go's `sync.Cond` semantics, for a gosync [`Mutex`](crate::Mutex)
/// or [`RwMutex`](crate::RwMutex).
///
/// Threads [`wait`](Self::wait) for a condition on data protected by a `Mutex`; others change
/// the data and call [`signal`](Self::signal) (wake one waiter) or
/// [`broadcast`](Self::broadcast) (wake all). `wait` releases the lock while it sleeps and takes
/// it back before it returns.
///
/// # Guarantees
///
/// - **FIFO.** Every `wait` takes a ticket while it still holds the mutex (Go's `notifyList`).
///   `signal` wakes the waiter with the oldest outstanding ticket — the longest waiter — even if
///   that thread has not gone to sleep yet.
/// - **`broadcast` wakes exactly the waiters that were waiting when it was called**; a thread
///   that starts waiting afterwards is not woken by it (and cannot steal its wake-up).
/// - **No spurious wake-ups** (Go: "Wait cannot return unless awoken by Broadcast or Signal").
///   `wait` returns only after a `signal` or `broadcast` chose it, or, for
///   [`wait_timeout`](Self::wait_timeout), after its timeout. Still, being woken does not mean
///   the condition holds (another thread may have taken the lock first and changed the data):
///   check it in a loop, or use [`wait_while`](Self::wait_while), which does that for you.
/// - `signal` and `broadcast` may be called with or without the mutex held, and say how many
///   waiters they woke.
///
/// # Differences from Go
///
/// - "Wait without holding the lock" (Go's `sync: unlock of unlocked mutex`) cannot compile:
///   `wait` takes the [`MutexGuard`].
/// - Go's `Cond.L` is fixed at construction. Here `Cond::new()` is `const` and the `Cond`
///   **belongs to the lock its waiters wait with**: while any thread waits on it, waiting with
///   a guard of another lock panics with a clear message. Once no thread waits, the next
///   `wait` may bring any lock — so a `(Mutex, Cond)` pair can be moved (into an `Arc`, a
///   `Vec`, out of a function) between uses: a Rust move is not Go's "copy after first use",
///   which cannot happen here (see below). gosync's [`Mutex`](crate::Mutex) and
///   [`RwMutex`](crate::RwMutex) are supported (any [`CondGuard`]); waiting with an
///   `RwMutex` read guard is Go's `sync.NewCond(rw.RLocker())`, and read and write guards of
///   the same `RwMutex` may share one `Cond`. std's locks are not supported.
/// - Added: [`wait_while`](Self::wait_while), [`wait_timeout`](Self::wait_timeout) (a waiter
///   that times out gives its place up; a `signal` never gets lost on it),
///   [`wait_timeout_while`](Self::wait_timeout_while), return values of
///   `signal`/`broadcast`, [`waiters`](Self::waiters).
/// - "Copying a Cond after first use" (Go's `sync.Cond is copied`) is impossible: `Cond` is not
///   `Clone`/`Copy`, and it cannot move while a thread waits on it.
///
/// # Differences from `std::sync::Condvar` and `parking_lot::Condvar`
///
/// - std allows spurious wake-ups and makes no ordering promise; parking_lot has no spurious
///   wake-ups but wakes in queue order, not in order of `wait` calls. Neither guarantees that
///   `notify_all` leaves later waiters alone in the presence of timeouts. (Like parking_lot,
///   and unlike std, which panics if a `Condvar` ever sees a second mutex, a `Cond` may serve
///   another lock once nobody waits on it.)
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
/// # State layout and invariants
///
/// | field | meaning (Go's `notifyList`) |
/// |---|---|
/// | `wait` | next ticket to hand out; incremented by `wait` while it holds the mutex |
/// | `notify` | next ticket to notify: tickets before it have been signalled (or cancelled); written only under the parking queue's lock |
/// | `cancelled` | tickets `>= notify` whose waiters timed out; `signal` skips them; only touched under the parking queue's lock |
/// | `binding` bits 23..0 | threads waiting: +1 by `wait` before it takes its ticket, −1 when a notifier claims the ticket or the waiter times out |
/// | `binding` bits 63..24 | fingerprint of the lock those threads wait with (its address / 4, low 40 bits); meaningful while the count is not 0 |
///
/// A waiter parks on the address of `notify` with its ticket as park token, after checking
/// (under the queue lock) that its ticket has not been notified yet. `signal` claims the oldest
/// ticket and unparks the thread holding it in the same queue-lock critical section, so a
/// waiter either sees its ticket notified before it sleeps or is found asleep; there is no
/// window for a lost or a spurious wake-up.
#[doc(alias = "sync.Cond")]
pub struct Cond {
    /// Go's `notifyList.wait`: the next ticket.
    wait: AtomicU32,
    /// Go's `notifyList.notify`: the next ticket to notify. Written under the queue lock.
    notify: AtomicU32,
    /// Tickets `>= notify` given up by timed-out waiters. Only accessed in parking callbacks,
    /// which run under the queue lock of `notify`'s address.
    cancelled: UnsafeCell<Vec<u32>>,
    /// `(lock fingerprint << 24) | threads inside wait`: see the state layout.
    binding: AtomicU64,
}

/// Bits of `Cond::binding` that count the threads inside `wait`.
const ACTIVE_MASK: u64 = (1 << 24) - 1;
/// Where the lock fingerprint starts in `Cond::binding`.
const FINGERPRINT_SHIFT: u32 = 24;

/// A 40-bit fingerprint of a lock's address. Two live locks with the same fingerprint would
/// have to lie a multiple of 4 TiB apart; the only effect would be a missed misuse report.
#[inline]
fn fingerprint(addr: usize) -> u64 {
    ((addr as u64) >> 2) & ((1 << (64 - FINGERPRINT_SHIFT)) - 1)
}

// SAFETY: `cancelled` is only accessed inside parking callbacks for this Cond's key, which the
// parking queue runs one at a time under its lock; everything else is atomic.
unsafe impl Send for Cond {}
// SAFETY: as above.
unsafe impl Sync for Cond {}

impl Cond {
    /// A new condition variable (it belongs to the lock its waiters bring).
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Cond {
            wait: AtomicU32::new(0),
            notify: AtomicU32::new(0),
            cancelled: UnsafeCell::new(Vec::new()),
            binding: AtomicU64::new(0),
        }
    }

    /// A new condition variable (it belongs to the lock its waiters bring).
    #[cfg(loom)]
    pub fn new() -> Self {
        Cond {
            wait: AtomicU32::new(0),
            notify: AtomicU32::new(0),
            cancelled: UnsafeCell::new(Vec::new()),
            binding: AtomicU64::new(0),
        }
    }

    #[inline]
    fn key(&self) -> usize {
        &self.notify as *const AtomicU32 as usize
    }

    /// A thread starts waiting with `lock` (held): counts it in, binding the `Cond` to `lock`
    /// if nobody else waits. Panics if others wait with another lock.
    ///
    /// Binding only while threads wait is what lets a `Cond` and its lock be moved between
    /// uses: a move needs exclusive access, so nobody waits when it happens. (A waiter counts
    /// until it is notified, not until it holds its lock again: one that is relocking cannot
    /// be confused by a rebinding, and missing a second lock in that instant only misses a
    /// misuse report.)
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
            // Relaxed: the count orders nothing; the lock the caller holds does.
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

    /// `n` waiters were notified or gave their ticket up: counts them out. Called under the
    /// queue lock, by the notifier (one read-modify-write per `signal`/`broadcast` instead of
    /// one per woken waiter) or by a waiter that timed out.
    #[inline]
    fn leave(&self, n: u64) {
        if n != 0 {
            let prev = self.binding.fetch_sub(n, Ordering::Relaxed);
            debug_assert!(prev & ACTIVE_MASK >= n);
        }
    }

    /// How many threads are waiting on this `Cond` right now (in [`wait`](Self::wait) or a
    /// timed or conditional form, not yet chosen by a `signal` or `broadcast` and not timed
    /// out). A thread counts from the moment it calls `wait`, before it releases its lock. A
    /// snapshot, for monitoring and tests.
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
    /// If other threads are waiting on this `Cond` with another lock.
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
    /// If other threads are waiting on this `Cond` with another lock.
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
    /// If other threads are waiting on this `Cond` with another lock.
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
    /// A waiter that times out gives up its ticket: a later `signal` skips it and wakes the next
    /// waiter, so no signal is lost. If a `signal` picks this waiter at the moment the timeout
    /// fires, the signal wins and `false` is returned.
    ///
    /// # Panics
    /// If other threads are waiting on this `Cond` with another lock.
    #[track_caller]
    pub fn wait_timeout<G: CondGuard>(&self, guard: &mut G, timeout: Duration) -> bool {
        self.wait_until(guard, now().checked_add(timeout))
    }

    #[track_caller]
    fn wait_until<G: CondGuard>(&self, guard: &mut G, deadline: Option<Instant>) -> bool {
        let raw = sealed::Sealed::cond_lock(guard);
        self.enter(raw);
        // Taken while the mutex is held: a notifier that locks the mutex after our unlock sees
        // the ticket (the unlock's Release orders it). Release: a notifier that reads the
        // ticket (Acquire, in `claim_one`/`broadcast`) and counts us out does so after our
        // `enter` counted us in, so the count never goes below zero.
        let ticket = self.wait.fetch_add(1, Ordering::Release);
        // SAFETY: the guard proves the lock is held; it stays borrowed (unusable) until we
        // re-lock below, so nobody touches the data through it meanwhile.
        unsafe { raw.unlock() };
        let sleeping = Sleeping::begins(Sleep::Cond);
        let mut gave_up = false;
        let not_notified = || !before(ticket, self.notify.load(Ordering::Relaxed));
        let give_up = |_, _| {
            // Still queued at the deadline, so no notifier chose our ticket (it would have
            // unparked us in the same critical section): give the ticket up.
            gave_up = true;
            self.leave(1);
            // SAFETY: timed-out callbacks run under the queue lock of `self.key()`.
            self.cancelled.with_mut(|c| unsafe { (*c).push(ticket) });
        };
        // SAFETY: the key is our own field's address; the callbacks only touch our atomics and
        // `cancelled`, which is guarded by this key's queue lock, and cannot panic (a push
        // can only abort on allocation failure).
        let result = unsafe {
            parking::park(
                self.key(),
                not_notified,
                || {},
                give_up,
                ParkToken(ticket as usize),
                deadline,
            )
        };
        debug_assert!(!matches!(result, ParkResult::TimedOut) || gave_up);
        drop(sleeping);
        raw.relock();
        // Acquire through the re-lock: whatever the notifier did under the lock is visible.
        gave_up
    }

    /// Takes the oldest outstanding ticket, skipping cancelled ones. Runs under the queue lock.
    /// `None` if no thread waits.
    fn claim_one(&self) -> Option<u32> {
        // Acquire: pairs with the ticket's Release (see `wait_until`).
        let wait = self.wait.load(Ordering::Acquire);
        let mut t = self.notify.load(Ordering::Relaxed);
        let found = self.cancelled.with_mut(|c| {
            // SAFETY: only called under the queue lock of `self.key()`.
            let cancelled = unsafe { &mut *c };
            while t != wait {
                match cancelled.iter().position(|&x| x == t) {
                    Some(i) => {
                        cancelled.swap_remove(i);
                        t = t.wrapping_add(1);
                    }
                    None => return true,
                }
            }
            false
        });
        if found {
            self.leave(1);
            self.notify.store(t.wrapping_add(1), Ordering::Release);
            Some(t)
        } else {
            self.notify.store(t, Ordering::Release);
            None
        }
    }

    /// Wakes the waiter that has waited longest (Go's `Signal`). Returns whether there was one.
    #[doc(alias = "Signal")]
    pub fn signal(&self) -> bool {
        // Fast path, as Go: no ticket outstanding.
        if self.wait.load(Ordering::Acquire) == self.notify.load(Ordering::Acquire) {
            return false;
        }
        let target = core::cell::Cell::new(None::<Option<u32>>);
        let claim = || {
            if target.get().is_none() {
                target.set(Some(self.claim_one()));
            }
            target.get().flatten()
        };
        let found = core::cell::Cell::new(false);
        // SAFETY: the key is our own field's address; the filter and callback only touch our
        // atomics and `cancelled` (guarded by this key's queue lock) and cannot panic.
        unsafe {
            parking::unpark_filter(
                self.key(),
                |token| {
                    if found.get() {
                        return FilterOp::Stop;
                    }
                    match claim() {
                        Some(t) if token.0 == t as usize => {
                            found.set(true);
                            FilterOp::Unpark
                        }
                        Some(_) => FilterOp::Skip,
                        None => FilterOp::Stop,
                    }
                },
                |_| {
                    // If the chosen waiter is not asleep yet, it sees `notify` past its ticket
                    // and does not sleep.
                    claim();
                    DEFAULT_UNPARK_TOKEN
                },
            );
        }
        target.get().flatten().is_some()
    }

    /// Wakes every thread waiting right now (Go's `Broadcast`); threads that start waiting
    /// later are not affected. Returns how many waiters were woken.
    #[doc(alias = "Broadcast")]
    pub fn broadcast(&self) -> usize {
        if self.wait.load(Ordering::Acquire) == self.notify.load(Ordering::Acquire) {
            return 0;
        }
        // `(first, end)` of the tickets to wake, read once under the queue lock.
        let range = core::cell::Cell::new(None::<(u32, u32)>);
        let woken = core::cell::Cell::new(0usize);
        let take_range = || match range.get() {
            Some(r) => r,
            None => {
                let first = self.notify.load(Ordering::Relaxed);
                // Acquire: pairs with the tickets' Release (see `wait_until`).
                let end = self.wait.load(Ordering::Acquire);
                let skipped = self.cancelled.with_mut(|c| {
                    // SAFETY: only called under the queue lock of `self.key()`; every
                    // cancelled ticket lies in `first..end`.
                    let cancelled = unsafe { &mut *c };
                    let n = cancelled.len();
                    cancelled.clear();
                    n
                });
                self.notify.store(end, Ordering::Release);
                woken.set(end.wrapping_sub(first) as usize - skipped);
                self.leave(woken.get() as u64);
                range.set(Some((first, end)));
                (first, end)
            }
        };
        // SAFETY: as in `signal`.
        unsafe {
            parking::unpark_filter(
                self.key(),
                |token| {
                    let (first, end) = take_range();
                    let t = token.0 as u32;
                    if t.wrapping_sub(first) < end.wrapping_sub(first) {
                        FilterOp::Unpark
                    } else {
                        FilterOp::Skip
                    }
                },
                |_| {
                    take_range();
                    DEFAULT_UNPARK_TOKEN
                },
            );
        }
        woken.get()
    }
}

impl Default for Cond {
    fn default() -> Self {
        Cond::new()
    }
}

impl fmt::Debug for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wait = self.wait.load(Ordering::Relaxed);
        let notify = self.notify.load(Ordering::Relaxed);
        f.debug_struct("Cond")
            .field("tickets_outstanding", &wait.wrapping_sub(notify))
            .finish_non_exhaustive()
    }
}
