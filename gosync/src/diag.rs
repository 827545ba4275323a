//! The diagnostics seam: the one place where lock and wait code calls the diagnostics (the
//! deadlock detector, [`detect`](crate::detect), feature `deadlock-detection`).
//!
//! # The points
//!
//! Every lock keeps its raw lock inside a [`Tracked`] (the raw lock plus its [`LockDiag`]
//! record; guards keep one pointer to it) and routes each acquisition and release through the
//! record. A blocking acquisition ([`LockDiag::acquire`]) passes these named points, in order:
//!
//! ```text
//! lock():          acquire(access, try_now, block, writer_waiting)
//!                    before_lock(access, site, writer_waiting) -> Checked   checks, nothing held yet
//!                    try_now() ── taken: skip to acquired
//!                    before_blocking(access, &Checked) -> Wait             the wait begins (Wait::start)
//!                    block()                                               the raw lock's own wait
//!                    wait_ended(access, Wait) -> Duration                   the wait's length
//!                    acquired(access, site)                                the lock is held
//! try_lock():      tried(access, acquired)               held if it succeeded; never a wait
//! try_lock_for():  tried_timed(access, attempt)          a timed wait: no order check, no cycle
//! unlock():        if release(access) { raw unlock }      called by the unlocking thread
//! downgrade():     downgrade()                            exclusive → shared, in place
//! ```
//!
//! Waits that are not lock acquisitions (a `Cond` wait, a `WaitGroup` wait) are bracketed by
//! [`Sleeping::begins`] and the drop of the returned [`Sleeping`] (which knows its start time).
//! A `Cond` wait also releases its lock through `release` and re-takes it through `acquire`,
//! so the detector sees the lock given up and waited for again.
//!
//! # Cost when off
//!
//! With every diagnostic off ([`ON`] is `false`), `LockDiag` is an empty struct, `acquire`
//! runs `block` (the raw lock, fast path included) and nothing else, `tried` returns its
//! argument, `release` is `true`, `Sleeping` is empty: the locks compile to exactly the code
//! they had without the seam, and the lock files carry no `cfg` of their own.
//!
//! # Contended points (always compiled)
//!
//! The contention profiler ([`profile`](crate::profile)) is switched on and off at run time,
//! so it cannot sit in the points above (they bracket the fast path and compile to nothing
//! when off). The raw locks call three more points, from their slow paths only, which the
//! uncontended lock and unlock never reach:
//!
//! ```text
//! raw lock, slow path:    let w = contended_wait(lock) ... contended_wait_ended(lock, w)
//! raw unlock, slow path:  let c = contended_unlock(lock) ... wake ... c.record()
//! ```
//!
//! `lock` is the raw lock's address (it pairs a lock's waits with its unlocks). A
//! [`Sleeping`] wait (`Cond`, `WaitGroup`) is also a profiled wait. With both profile rates
//! at 0 each point reads two atomics and returns.
//!
//! `release` returns whether the calling thread holds the lock. It is always `true` except
//! after a report raised (as a panic) while a guard re-took its lock (`Cond::wait`, a guard's
//! `unlocked`): the guard then unwinds without holding the lock, and its drop must not unlock
//! what another thread holds.

use core::ops::Deref;
use core::time::Duration;

#[cfg(all(feature = "deadlock-detection", not(loom)))]
use crate::detect::LockMeta;
#[cfg(all(feature = "deadlock-detection", not(loom)))]
use core::panic::Location;

/// Whether any diagnostic is compiled in. When `false`, every point below is a pass-through.
pub(crate) const ON: bool = cfg!(all(feature = "deadlock-detection", not(loom)));

/// How a lock is being taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Exclusive and not reentrant (`Mutex`, `RwMutex::write`).
    Exclusive,
    /// Shared (`RwMutex::read`).
    Shared,
    /// Exclusive, reentrant for its owner (`ReentrantMutex`; only its outermost lock and
    /// unlock come here).
    Reentrant,
}

/// A raw lock and its diagnostics record. Derefs to the raw lock.
pub(crate) struct Tracked<R> {
    raw: R,
    diag: LockDiag,
    /// The lock's name, for its statistics (feature `lock-stats`).
    #[cfg(feature = "lock-stats")]
    name: Option<&'static str>,
}

impl<R> Tracked<R> {
    /// `raw` with the record of a lock of type `type_name` created at the caller's location.
    #[inline]
    #[track_caller]
    pub(crate) const fn new(raw: R, type_name: &'static str, name: Option<&'static str>) -> Self {
        Tracked {
            raw,
            diag: LockDiag::new(type_name, name),
            #[cfg(feature = "lock-stats")]
            name,
        }
    }

    /// The name given at construction (feature `lock-stats`).
    #[cfg(feature = "lock-stats")]
    #[inline]
    pub(crate) fn name(&self) -> Option<&'static str> {
        self.name
    }

    /// The lock's diagnostics record.
    #[inline(always)]
    pub(crate) fn diag(&self) -> &LockDiag {
        &self.diag
    }
}

impl<R> Deref for Tracked<R> {
    type Target = R;
    #[inline(always)]
    fn deref(&self) -> &R {
        &self.raw
    }
}

/// The diagnostics record of one lock. Empty unless a diagnostic is compiled in.
pub(crate) struct LockDiag {
    #[cfg(all(feature = "deadlock-detection", not(loom)))]
    meta: LockMeta,
}

/// What [`LockDiag::before_lock`] found, handed to [`LockDiag::before_blocking`].
pub(crate) struct Checked {
    /// The thread held other locks (so its wait can be part of a wait-for cycle).
    #[cfg(all(feature = "deadlock-detection", not(loom)))]
    holding: bool,
}

/// A wait for a lock in progress: from [`LockDiag::before_blocking`] to
/// [`LockDiag::wait_ended`].
pub(crate) struct Wait {
    /// When the wait began.
    #[cfg_attr(not(all(feature = "deadlock-detection", not(loom))), allow(dead_code))]
    pub(crate) start: std::time::Instant,
    /// The detector published this thread's wait (it must withdraw it).
    #[cfg(all(feature = "deadlock-detection", not(loom)))]
    published: bool,
}

impl LockDiag {
    /// The record of a lock of type `type_name`, created at the caller's location, with an
    /// optional name for reports.
    #[inline]
    #[track_caller]
    #[allow(unused_variables)]
    pub(crate) const fn new(type_name: &'static str, name: Option<&'static str>) -> Self {
        LockDiag {
            #[cfg(all(feature = "deadlock-detection", not(loom)))]
            meta: LockMeta::new(type_name, name, Location::caller()),
        }
    }

    /// A blocking acquisition: `try_now` takes the lock if that needs no waiting, `block`
    /// takes it however long that takes. `writer_waiting` tells (for a shared acquisition)
    /// whether a writer waits, which makes a recursive read a deadlock.
    ///
    /// Reports (re-lock, recursive read, lock order, wait-for cycle) are delivered before the
    /// thread blocks; the default handler panics, and then the lock is not taken.
    #[inline(always)]
    #[track_caller]
    pub(crate) fn acquire(
        &self,
        access: Access,
        try_now: impl FnOnce() -> bool,
        block: impl FnOnce(),
        writer_waiting: impl FnOnce() -> bool,
    ) {
        if !ON {
            block();
            return;
        }
        let site = Site::caller();
        let checked = self.before_lock(access, site, writer_waiting);
        if !try_now() {
            let wait = self.before_blocking(access, &checked);
            block();
            self.wait_ended(access, wait);
        }
        self.acquired(access, site);
    }

    /// Point 1: a blocking acquisition starts (nothing taken yet). The detector checks
    /// re-locks, recursive reads and the lock order here.
    #[inline(always)]
    #[allow(unused_variables)]
    pub(crate) fn before_lock(
        &self,
        access: Access,
        site: Site,
        writer_waiting: impl FnOnce() -> bool,
    ) -> Checked {
        Checked {
            #[cfg(all(feature = "deadlock-detection", not(loom)))]
            holding: self.meta.before_lock(access, site.0, writer_waiting),
        }
    }

    /// Point 2: the lock is not free; the thread is about to block for it. The returned
    /// [`Wait`] carries the wait's start time. The detector publishes what the thread waits
    /// for and reports a wait-for cycle here.
    #[inline]
    #[allow(unused_variables)]
    pub(crate) fn before_blocking(&self, access: Access, checked: &Checked) -> Wait {
        Wait {
            start: std::time::Instant::now(),
            #[cfg(all(feature = "deadlock-detection", not(loom)))]
            published: self.meta.before_blocking(checked.holding),
        }
    }

    /// Point 3: the wait begun at [`before_blocking`](Self::before_blocking) ended with the
    /// lock taken; returns how long it took.
    #[inline]
    #[allow(unused_variables)]
    pub(crate) fn wait_ended(&self, access: Access, wait: Wait) -> Duration {
        #[cfg(all(feature = "deadlock-detection", not(loom)))]
        self.meta.wait_ended(wait.published);
        wait.start.elapsed()
    }

    /// Point 4: the calling thread holds the lock (after `acquire`, or a successful `tried` /
    /// `tried_timed`).
    #[inline(always)]
    #[allow(unused_variables)]
    pub(crate) fn acquired(&self, access: Access, site: Site) {
        #[cfg(all(feature = "deadlock-detection", not(loom)))]
        self.meta.acquired(access, site.0);
    }

    /// The outcome of a non-blocking attempt (`try_lock`): `acquired` says whether it took
    /// the lock, and is returned. The lock is then held, but no order edge leads into it (it
    /// never waited).
    #[inline(always)]
    #[track_caller]
    pub(crate) fn tried(&self, access: Access, acquired: bool) -> bool {
        if ON && acquired {
            self.acquired(access, Site::caller());
        }
        acquired
    }

    /// A timed attempt (`try_lock_for`): runs `attempt`, which waits at most until its
    /// deadline, and returns its outcome. For the detector it is like [`tried`](Self::tried):
    /// a timed wait ends by itself, so it is neither checked for order nor part of a cycle.
    #[inline(always)]
    #[track_caller]
    pub(crate) fn tried_timed(&self, access: Access, attempt: impl FnOnce() -> bool) -> bool {
        let acquired = attempt();
        if ON && acquired {
            self.acquired(access, Site::caller());
        }
        acquired
    }

    /// Point 5: the calling thread is about to release the lock (it is the unlocker). Returns
    /// whether it holds it (see the module docs); the caller unlocks only then.
    #[inline(always)]
    #[must_use]
    #[allow(unused_variables)]
    pub(crate) fn release(&self, access: Access) -> bool {
        #[cfg(all(feature = "deadlock-detection", not(loom)))]
        return self.meta.released(access);
        #[cfg(not(all(feature = "deadlock-detection", not(loom))))]
        true
    }

    /// The calling thread's write lock became a read lock (`RwMutexWriteGuard::downgrade`).
    #[inline(always)]
    pub(crate) fn downgrade(&self) {
        #[cfg(all(feature = "deadlock-detection", not(loom)))]
        self.meta.downgraded();
    }
}

/// Where a lock was taken (the caller of `lock`, for reports). Empty when off.
#[derive(Clone, Copy)]
pub(crate) struct Site(
    #[cfg(all(feature = "deadlock-detection", not(loom)))] &'static Location<'static>,
);

impl Site {
    /// The location of the caller (through `#[track_caller]` frames).
    #[inline(always)]
    #[track_caller]
    pub(crate) fn caller() -> Site {
        Site(
            #[cfg(all(feature = "deadlock-detection", not(loom)))]
            Location::caller(),
        )
    }
}

/// What a thread waits for outside a lock acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sleep {
    /// [`Cond::wait`](crate::Cond::wait) (and its timed forms), between releasing the lock
    /// and being woken.
    Cond,
    /// [`WaitGroup::wait`](crate::WaitGroup::wait) (and `wait_timeout`), from registering as
    /// a waiter to being released or timing out.
    WaitGroup,
    /// A blocking [`Semaphore`](crate::x::Semaphore) acquire, from queueing to being granted
    /// or timing out.
    Semaphore,
    /// A [`SingleFlight`](crate::x::SingleFlight) caller waiting for the running execution.
    SingleFlight,
    /// A blocking connection-pool checkout waiting for a connection.
    PoolCheckout,
    /// A worker-pool submitter waiting for room in the queue.
    #[cfg(not(loom))]
    PoolSubmit,
}

/// A wait that is not a lock acquisition, in progress: begins with [`Sleeping::begins`],
/// ends when dropped. Holds only the profiler's start time when every diagnostic is off.
pub(crate) struct Sleeping {
    #[cfg(all(feature = "deadlock-detection", not(loom)))]
    #[allow(dead_code)]
    kind: Sleep,
    /// The block profile's record of this wait.
    profiled: crate::profile::WaitStart,
}

impl Sleeping {
    /// The calling thread begins a wait of `kind`.
    #[inline(always)]
    #[allow(unused_variables)]
    pub(crate) fn begins(kind: Sleep) -> Sleeping {
        Sleeping {
            #[cfg(all(feature = "deadlock-detection", not(loom)))]
            kind,
            // No lock's unlock ends this wait: block profile only.
            profiled: crate::profile::wait_begins(0),
        }
    }
}

impl Drop for Sleeping {
    /// The wait ended (woken, timed out, or unwinding).
    #[inline(always)]
    fn drop(&mut self) {
        let profiled = core::mem::replace(&mut self.profiled, crate::profile::WaitStart::NONE);
        crate::profile::wait_ended(0, profiled);
    }
}

/// A raw lock's contended wait in progress (see the module docs): from [`contended_wait`]
/// to [`contended_wait_ended`].
#[must_use]
pub(crate) struct ContendedWait(crate::profile::WaitStart);

/// Contended point: the calling thread is about to wait for the raw lock at `lock` (its slow
/// path).
#[inline]
pub(crate) fn contended_wait<L>(lock: &L) -> ContendedWait {
    ContendedWait(crate::profile::wait_begins(lock as *const L as usize))
}

/// Contended point: the wait begun by [`contended_wait`] ended (lock taken or timed out).
#[inline]
pub(crate) fn contended_wait_ended<L>(lock: &L, wait: ContendedWait) {
    crate::profile::wait_ended(lock as *const L as usize, wait.0);
}

/// Contended point: the calling thread unlocks the raw lock at `lock` and is about to wake a
/// waiter or hand the lock over: it made them wait. Call it before waking anyone (the woken
/// waiter settles its own accounts when it runs) and record the charge after the wake-up,
/// so that the profiler's stack capture does not delay it.
#[inline]
pub(crate) fn contended_unlock<L>(lock: &L) -> crate::profile::Charge {
    crate::profile::contended_unlock(lock as *const L as usize)
}

/// [`contended_unlock`] for an unlock that may wake nobody: `wakes` (asked only while the
/// profiler has sampled waiters) says whether it is about to wake a waiter or hand over.
#[inline]
pub(crate) fn contended_unlock_if<L>(
    lock: &L,
    wakes: impl FnOnce() -> bool,
) -> crate::profile::Charge {
    crate::profile::contended_unlock_if(lock as *const L as usize, wakes)
}
