//! [`Mutex`]: Go's `sync.Mutex` (barging with bounded waits) holding the data it protects.
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::Arc;

use super::raw_mutex::{AsyncLock, RawMutex};
use crate::diag::{Access, Tracked};
use crate::primitive::UnsafeCell;

/// A mutual-exclusion lock with Go's `sync.Mutex` algorithm: fast and barging in normal mode,
/// bounded waits through spaced-out FIFO handoffs.
///
/// Like `std::sync::Mutex`, it owns the data it protects; [`lock`](Self::lock) returns a
/// [`MutexGuard`] that derefs to the data and unlocks when dropped.
///
/// # Fairness: Go's normal mode, with bounded waits that do not convoy
///
/// - **Normal operation is Go's normal mode**: a thread that finds the lock free takes it, even
///   if others sleep (barging); a thread that finds it held spins briefly (multi-core only, and
///   only while fewer threads sleep in the queue than there are CPUs), yields its time slice a
///   few times while its wait is short, then sleeps in a FIFO queue. An
///   unlock wakes the front sleeper, which competes with running threads; if it loses it goes
///   back to the *front* of the queue.
/// - **Bounded waits through handoffs**: once the front sleeper has waited more than 1 ms (Go's
///   starvation threshold), the lock is handed to it directly at an unlock, ownership passing
///   without the lock ever being free. Handoffs are spaced out (at least 100 µs apart, more when
///   the machine makes them expensive), and a waiter that asked for one stays awake for it, so
///   the handoff costs no wake-up. Between handoffs the lock barges again.
///
/// So the lock barges between handoffs (it pays at most one handoff per interval, not one per
/// unlock), and a waiter's wait is bounded by the 1 ms threshold plus one handoff interval per
/// waiter ahead of it. That bound is the lock's part: a waiter (or
/// a holder) that has lost its CPU also waits for the OS to run it again, which no lock can
/// shorten; with more runnable threads than CPUs, the longest waits often include such a
/// scheduling delay.
///
/// [`is_starving`](Self::is_starving) is true while a handoff is requested and not yet done.
///
/// # Differences from Go
///
/// - The data lives inside the mutex and is reachable only through the guard: forgetting to
///   lock, unlocking twice, and unlocking a mutex you did not lock do not compile (Go's
///   `sync: unlock of unlocked mutex` is unreachable).
/// - Copying a mutex (a `go vet` warning in Go) is impossible: `Mutex` is not `Clone`/`Copy`.
/// - Extra: [`try_lock_for`](Self::try_lock_for) (a timed lock), and observation
///   ([`is_locked`](Self::is_locked), [`is_starving`](Self::is_starving),
///   [`waiters`](Self::waiters)).
/// - Go spins only while no other goroutine is waiting to run. A thread cannot see the
///   scheduler's run queue, so gosync reads the lock's own: it spins while more than one CPU is
///   available and fewer threads are queued than there are CPUs, and otherwise goes straight
///   to yielding (when threads outnumber the CPUs, a spinning contender keeps a CPU from the
///   holder or from threads with work to do). A spin round lasts a fixed time (about a
///   microsecond of pause instructions, measured once per process, and never fewer than 30)
///   rather than Go's fixed 30 pauses, whose length varies from CPU to CPU: the spinner reads
///   the lock once per round; reading it too often slows the holder down, too rarely leaves
///   the spinner idle while the lock is free.
/// - **No sticky starvation mode.** Go hands the lock from every unlocker to the front waiter
///   from the moment one waiter has waited 1 ms until a waiter is served in under 1 ms. That is
///   cheap for goroutines; for OS threads each handoff to a sleeping thread costs a wake-up with
///   the lock idle, and when threads outnumber cores every wait exceeds 1 ms, so the lock would
///   stay in that mode and run at the speed of the scheduler. gosync grants one handoff at a
///   time, spaced out, to a waiter that is awake for it; waits stay bounded (by the queue ahead
///   times the spacing, instead of Go's queue ahead times the hold time).
///
/// # Differences from `std::sync::Mutex`
///
/// - **No poisoning** (Go has none): if a thread panics while holding the lock, the guard's drop
///   unlocks it and the next `lock` succeeds normally. `lock` returns the guard, not a `Result`.
/// - Bounded waiting: std's futex mutex has no fairness mechanism at all; a thread can be
///   starved indefinitely under heavy contention. Here handoffs to the front waiter cap waits.
/// - `try_lock_for`, `is_locked`, `is_starving`, `waiters`.
/// - `new` is `const`, as in std.
///
/// # State layout
///
/// One `u32` state word, the time the front waiter becomes due for a handoff, the measured cost
/// of a handoff, and a FIFO wait queue (shared by blocked threads and async tasks):
///
/// | state bits | meaning |
/// |---|---|
/// | 0 `LOCKED` | held (clear only while a requested handoff is in flight) |
/// | 1 `WOKEN` | a spinner or woken waiter is competing; unlock must not wake another |
/// | 2 `STARVING` | a handoff is requested: the holder's unlock hands the lock to the front waiter |
/// | 3.. waiters | waiters in the queue |
///
/// Invariants: at most one thread owns `WOKEN`; `STARVING` is only set while the lock is held
/// and a waiter is queued; while it is set nobody but the front waiter can take the lock.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use gosync::Mutex;
///
/// let counter = Arc::new(Mutex::new(0));
/// let handles: Vec<_> = (0..10)
///     .map(|_| {
///         let counter = Arc::clone(&counter);
///         std::thread::spawn(move || *counter.lock() += 1)
///     })
///     .collect();
/// for h in handles {
///     h.join().unwrap();
/// }
/// assert_eq!(*counter.lock(), 10);
/// ```
///
/// Unlocking twice cannot be written: the only unlock is dropping the guard, and a guard
/// cannot be duplicated (dropping one twice is a use of a moved value):
///
/// ```compile_fail,E0277
/// let m = gosync::Mutex::new(0);
/// let g = m.lock();
/// let again: gosync::MutexGuard<'_, i32> = Clone::clone(&g); // error[E0277]: not Clone
/// ```
#[doc(alias = "sync.Mutex")]
pub struct Mutex<T: ?Sized> {
    /// The lock and its diagnostics record (empty unless a diagnostic is compiled in).
    raw: Tracked<RawMutex>,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex gives `&mut T` to one thread at a time, so moving or sharing it across
// threads needs exactly `T: Send` (same bounds as `std::sync::Mutex`).
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above: `&Mutex<T>` only yields `&mut T` under mutual exclusion.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Access to the data of a locked [`Mutex`]; dropping it unlocks.
///
/// Like `std::sync::MutexGuard` it is not `Send` (it must be dropped on the thread that
/// locked), and it is `Sync` when `T: Sync`.
#[must_use = "if unused the Mutex will immediately unlock"]
#[clippy::has_significant_drop]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// Not `Send`, like std's guard.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard only gives out `&T`, which is fine across threads when `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// Creates an unlocked mutex holding `value`. `const`, so it can initialise a `static`.
    #[cfg(not(loom))]
    #[inline]
    #[track_caller]
    pub const fn new(value: T) -> Self {
        Self::new_named(None, value)
    }

    /// Creates an unlocked mutex holding `value`, with a name the deadlock detector uses in
    /// its reports (feature `deadlock-detection`; without it the name is ignored).
    #[cfg(not(loom))]
    #[inline]
    #[track_caller]
    pub const fn named(name: &'static str, value: T) -> Self {
        Self::new_named(Some(name), value)
    }

    #[cfg(not(loom))]
    #[inline]
    #[track_caller]
    const fn new_named(name: Option<&'static str>, value: T) -> Self {
        Self {
            raw: Tracked::new(RawMutex::new(), "Mutex", name),
            data: UnsafeCell::new(value),
        }
    }

    /// Creates an unlocked mutex holding `value`.
    #[cfg(loom)]
    pub fn new(value: T) -> Self {
        Self {
            raw: Tracked::new(RawMutex::new(), "Mutex", None),
            data: UnsafeCell::new(value),
        }
    }

    /// Creates an unlocked mutex holding `value` (the name is for the deadlock detector).
    #[cfg(loom)]
    pub fn named(_name: &'static str, value: T) -> Self {
        Self::new(value)
    }

    /// Consumes the mutex and returns the data (no locking needed: we own it).
    #[inline]
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Acquires the lock, blocking the current thread until it is available (Go's `Lock`).
    ///
    /// Locking a mutex the current thread already holds deadlocks (as in Go and std); use
    /// [`ReentrantMutex`](crate::ReentrantMutex) if you need re-entry.
    ///
    /// With feature `deadlock-detection`, re-locking a held mutex and taking locks in an order
    /// that contradicts an earlier one are reported before the thread blocks (see
    /// [`detect`](crate::detect)).
    #[doc(alias = "Lock")]
    #[inline]
    #[track_caller]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.diag().acquire(
            Access::Exclusive,
            || self.raw.try_lock(),
            || self.raw.lock(),
            || false,
        );
        // SAFETY: we just acquired the lock.
        unsafe { self.guard() }
    }

    /// Acquires the lock if it is free right now (Go's `TryLock`).
    ///
    /// Fails if the lock is held or a handoff to a waiter is pending (ownership is reserved for it),
    /// even if it is momentarily unlocked. As in Go, correct uses are rare: prefer `lock`.
    #[doc(alias = "TryLock")]
    #[inline]
    #[track_caller]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        if self
            .raw
            .diag()
            .tried(Access::Exclusive, self.raw.try_lock())
        {
            // SAFETY: we just acquired the lock.
            Some(unsafe { self.guard() })
        } else {
            None
        }
    }

    /// Acquires the lock, waiting at most `timeout` (not in Go). The waiter takes part in the
    /// FIFO queue (and receives handoffs) while it waits.
    ///
    /// For the deadlock detector this is a `try_lock`: it records no lock-order edge.
    #[inline]
    #[track_caller]
    pub fn try_lock_for(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        if self
            .raw
            .diag()
            .tried_timed(Access::Exclusive, || self.raw.try_lock_for(timeout))
        {
            // SAFETY: we just acquired the lock.
            Some(unsafe { self.guard() })
        } else {
            None
        }
    }

    /// Acquires the lock, waiting until `deadline` at the latest (not in Go; parking_lot's
    /// name). Like [`try_lock_for`](Self::try_lock_for), the waiter takes part in the queue and
    /// its fairness rules while it waits; a deadline in the past makes one attempt.
    ///
    /// For the deadlock detector this is a `try_lock`: it records no lock-order edge.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use gosync::Mutex;
    ///
    /// let m = Mutex::new(1);
    /// let held = m.lock();
    /// assert!(m.try_lock_until(Instant::now() + Duration::from_millis(5)).is_none());
    /// drop(held);
    /// assert_eq!(*m.try_lock_until(Instant::now()).unwrap(), 1);
    /// ```
    #[inline]
    #[track_caller]
    pub fn try_lock_until(&self, deadline: std::time::Instant) -> Option<MutexGuard<'_, T>> {
        if self.raw.diag().tried_timed(Access::Exclusive, || {
            self.raw.try_lock_until(clock_deadline(deadline))
        }) {
            // SAFETY: we just acquired the lock.
            Some(unsafe { self.guard() })
        } else {
            None
        }
    }

    /// [`lock`](Self::lock) through an `Arc`: the guard keeps the mutex alive instead of
    /// borrowing it, so it can be stored in a struct or returned from a function without a
    /// lifetime (parking_lot's `lock_arc`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gosync::{ArcMutexGuard, Mutex};
    ///
    /// struct Session {
    ///     log: ArcMutexGuard<Vec<String>>,
    /// }
    ///
    /// let shared = Arc::new(Mutex::new(Vec::new()));
    /// let mut s = Session { log: shared.lock_arc() };
    /// s.log.push("opened".to_string());
    /// drop(s);
    /// assert_eq!(shared.lock().len(), 1);
    /// ```
    #[doc(alias = "Lock")]
    #[inline]
    #[track_caller]
    pub fn lock_arc(self: &Arc<Self>) -> ArcMutexGuard<T> {
        core::mem::forget(self.lock());
        ArcMutexGuard {
            mutex: Arc::clone(self),
            _not_send: PhantomData,
        }
    }

    /// Acquires the lock from an async task (Go's `Lock`, awaited): the same lock, queue and
    /// fairness as [`lock`](Self::lock), so threads and tasks that wait for one `Mutex` are
    /// served in one arrival order, and bounded waits hold for both.
    ///
    /// The [`AsyncMutexGuard`] it returns is `Send` (when `T: Send`), so it may be held across
    /// `.await` on a multi-threaded runtime. Works with any executor: only the `Waker` it is
    /// polled with is used.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes gives up its place in the queue. If the lock
    /// (or a wake-up) was handed to it after its last poll, it is passed on: nothing is lost
    /// and no other waiter is stranded.
    ///
    /// # When to use it
    ///
    /// Use it when the lock must be held across an `.await`, or when a task must not block its
    /// executor thread while waiting. For short critical sections without `.await`,
    /// [`lock`](Self::lock) is faster even in async code (the advice tokio gives for std's
    /// mutex). Compared with `tokio::sync::Mutex`: the same mutex is usable from plain threads,
    /// waiting is not strict FIFO but bounded (running tasks may barge, as in Go), and no tokio
    /// runtime is needed. The deadlock detector (feature `deadlock-detection`) does not track
    /// async acquisitions: it reasons about threads.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gosync::Mutex;
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
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let from_thread = {
    ///     let log = Arc::clone(&log);
    ///     std::thread::spawn(move || log.lock().push("thread"))
    /// };
    /// block_on(async {
    ///     let mut g = log.lock_async().await; // `g` may live across `.await`s
    ///     g.push("task");
    /// });
    /// from_thread.join().unwrap();
    /// assert_eq!(log.lock().len(), 2);
    /// ```
    #[doc(alias = "Lock")]
    #[inline]
    pub fn lock_async(&self) -> MutexLockFuture<'_, T> {
        MutexLockFuture {
            mutex: self,
            wait: AsyncLock::new(),
            done: false,
        }
    }

    /// [`try_lock`](Self::try_lock) through an `Arc` (see [`lock_arc`](Self::lock_arc)).
    #[doc(alias = "TryLock")]
    #[inline]
    #[track_caller]
    pub fn try_lock_arc(self: &Arc<Self>) -> Option<ArcMutexGuard<T>> {
        core::mem::forget(self.try_lock()?);
        Some(ArcMutexGuard {
            mutex: Arc::clone(self),
            _not_send: PhantomData,
        })
    }

    /// Mutable access without locking: `&mut self` proves no one else can hold the lock.
    #[inline]
    pub fn get_mut(&mut self) -> &mut T {
        // SAFETY: `&mut self` excludes every other access.
        self.data.with_mut(|p| unsafe { &mut *p })
    }

    /// Whether the mutex is held right now (a snapshot; also true while ownership is being
    /// handed to a waiter).
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// Whether a handoff to the front waiter is requested right now: the lock's form of Go's
    /// starvation mode (a snapshot).
    #[inline]
    pub fn is_starving(&self) -> bool {
        self.raw.is_starving()
    }

    /// How many threads wait for the lock right now (a snapshot; a thread that has been woken
    /// and is competing again is not counted).
    #[inline]
    pub fn waiters(&self) -> usize {
        self.raw.waiters()
    }

    /// Whether a spinning or freshly woken thread is competing for the lock right now (Go's
    /// `mutexWoken` bit; a snapshot, for monitoring).
    #[inline]
    pub fn is_woken(&self) -> bool {
        self.raw.is_woken()
    }

    /// This mutex's statistics since it was created (feature `lock-stats`): acquisitions,
    /// contended acquisitions, total and longest wait, starvation entries and handoffs, with
    /// the name given to [`named`](Self::named). Go has nothing like it per lock (its mutex
    /// profile is per call site: see [`profile`](crate::profile)); std and parking_lot neither.
    ///
    /// ```
    /// # #[cfg(feature = "lock-stats")] {
    /// use std::sync::Arc;
    /// use gosync::Mutex;
    ///
    /// let orders = Arc::new(Mutex::named("orders", 0u64));
    /// let workers: Vec<_> = (0..4)
    ///     .map(|_| {
    ///         let orders = Arc::clone(&orders);
    ///         std::thread::spawn(move || {
    ///             for _ in 0..1000 {
    ///                 *orders.lock() += 1;
    ///             }
    ///         })
    ///     })
    ///     .collect();
    /// workers.into_iter().for_each(|w| w.join().unwrap());
    /// let stats = orders.stats();
    /// assert_eq!(stats.acquisitions, 4000);
    /// assert!(stats.contended <= stats.acquisitions);
    /// println!("{stats}");
    /// # }
    /// ```
    #[cfg(feature = "lock-stats")]
    #[must_use]
    pub fn stats(&self) -> crate::LockStats {
        self.raw.stats(self.raw.name())
    }

    /// The lock and its diagnostics record. Crate-internal: `Cond` releases and re-takes it
    /// through them while a guard stays borrowed by the caller.
    #[inline]
    pub(crate) fn raw(&self) -> &Tracked<RawMutex> {
        &self.raw
    }

    /// What a guard needs to release this lock, without the data type.
    #[inline]
    fn lock_ref(&self) -> LockRef<'_> {
        LockRef { raw: &self.raw }
    }

    /// Re-acquires the lock for a guard that gave it up in `unlocked` (the guard keeps
    /// standing for the acquisition, so nothing new is built).
    #[inline]
    #[track_caller]
    fn relock(&self) {
        core::mem::forget(self.lock());
    }

    /// Builds a guard.
    ///
    /// # Safety
    /// The lock must be held by the caller, who hands its release to the guard.
    #[inline]
    unsafe fn guard(&self) -> MutexGuard<'_, T> {
        MutexGuard {
            mutex: self,
            _not_send: PhantomData,
        }
    }
}

/// The mutex a guard belongs to. Crate-internal: `Cond::wait` unlocks and re-locks it while
/// the caller's guard stays borrowed, so the guard remains valid afterwards.
#[inline]
#[allow(dead_code)] // used by Cond
pub(crate) fn guard_mutex<'a, T: ?Sized>(guard: &MutexGuard<'a, T>) -> &'a Mutex<T> {
    guard.mutex
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.field("starving", &self.is_starving())
            .field("waiters", &self.waiters())
            .finish()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held; shared access through `&self`.
        self.mutex.data.with(|p| unsafe { &*p })
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held; exclusive access through `&mut self`.
        self.mutex.data.with_mut(|p| unsafe { &mut *p })
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds the lock and gives up its access here.
        unsafe { self.mutex.lock_ref().unlock() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// The deadline on the crate's clock for a deadline given on the system clock. (Under loom the
/// crate runs on a fake clock: the remaining time is carried over to it.)
#[inline]
pub(crate) fn clock_deadline(deadline: std::time::Instant) -> Option<crate::primitive::Instant> {
    #[cfg(not(loom))]
    {
        Some(deadline)
    }
    #[cfg(loom)]
    {
        crate::primitive::now()
            .checked_add(deadline.saturating_duration_since(std::time::Instant::now()))
    }
}

/// What releasing a [`Mutex`] takes, without its data type: the lock and its diagnostics
/// record. Every guard type releases through [`LockRef::unlock`].
#[derive(Clone, Copy)]
struct LockRef<'a> {
    raw: &'a Tracked<RawMutex>,
}

impl LockRef<'_> {
    /// Releases the lock.
    ///
    /// # Safety
    /// The caller holds the lock (through a guard) and gives up its access to the data.
    #[inline]
    unsafe fn unlock(self) {
        if self.raw.diag().release(Access::Exclusive) {
            // SAFETY: forwarded contract.
            unsafe { self.raw.unlock() }
        }
    }
}

/// Re-locks a mutex when dropped: `unlocked` uses it so that the guard holds the lock again
/// when `f` returns *or panics* (the guard's own drop then unlocks it normally).
struct Relock<'a, T: ?Sized>(&'a Mutex<T>);

impl<T: ?Sized> Drop for Relock<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.0.relock();
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (parking_lot's `MutexGuard::mutex`).
    #[inline]
    pub fn mutex(s: &Self) -> &'a Mutex<T> {
        s.mutex
    }

    /// Narrows the guard to a part of the data, keeping the lock held (parking_lot's
    /// `MutexGuard::map`, std's unstable `MutexGuard::map`). An associated function
    /// (`MutexGuard::map(guard, f)`) so it cannot clash with a method of `T`.
    ///
    /// The mapped guard cannot be used with [`Cond`](crate::Cond) or
    /// [`unlocked`](Self::unlocked): `f` may have picked data that is only valid while the
    /// lock stays held.
    ///
    /// ```
    /// use gosync::{Mutex, MutexGuard};
    ///
    /// struct Server { name: String, hits: u64 }
    /// let m = Mutex::new(Server { name: "a".into(), hits: 0 });
    /// let mut hits = MutexGuard::map(m.lock(), |s| &mut s.hits);
    /// *hits += 1;
    /// drop(hits);
    /// assert_eq!(m.lock().hits, 1);
    /// ```
    #[inline]
    pub fn map<U: ?Sized>(s: Self, f: impl FnOnce(&mut T) -> &mut U) -> MappedMutexGuard<'a, U> {
        let mutex = s.mutex;
        // SAFETY: the guard holds the lock; `f` gets the only reference to the data.
        let data = NonNull::from(f(unsafe { &mut *mutex.data.with_mut(|p| p) }));
        // The mapped guard takes over the lock (it releases it through `lock_ref`).
        core::mem::forget(s);
        MappedMutexGuard {
            lock: mutex.lock_ref(),
            data,
            _marker: PhantomData,
        }
    }

    /// Like [`map`](Self::map), but `f` may decline (return `None`); then the original guard
    /// comes back in `Err`, still holding the lock.
    ///
    /// ```
    /// use gosync::{Mutex, MutexGuard};
    ///
    /// let m = Mutex::new(vec![1, 2, 3]);
    /// let first = MutexGuard::try_map(m.lock(), |v| v.first_mut()).ok().unwrap();
    /// assert_eq!(*first, 1);
    /// drop(first);
    /// let empty = Mutex::new(Vec::<i32>::new());
    /// let back = MutexGuard::try_map(empty.lock(), |v| v.first_mut()).unwrap_err();
    /// assert!(back.is_empty());
    /// ```
    #[inline]
    #[allow(clippy::result_large_err)] // the guard is two words
    pub fn try_map<U: ?Sized>(
        s: Self,
        f: impl FnOnce(&mut T) -> Option<&mut U>,
    ) -> Result<MappedMutexGuard<'a, U>, Self> {
        let mutex = s.mutex;
        // SAFETY: the guard holds the lock; `f` gets the only reference to the data.
        match f(unsafe { &mut *mutex.data.with_mut(|p| p) }) {
            Some(data) => {
                let data = NonNull::from(data);
                core::mem::forget(s);
                Ok(MappedMutexGuard {
                    lock: mutex.lock_ref(),
                    data,
                    _marker: PhantomData,
                })
            }
            None => Err(s),
        }
    }

    /// Runs `f` with the lock released, then locks again (parking_lot's `unlocked`): for slow
    /// work in the middle of a critical section that does not need the data, so that others
    /// can use the lock meanwhile. The guard is valid again when `unlocked` returns — also if
    /// `f` panics (the lock is re-taken while unwinding, and the guard's drop releases it).
    ///
    /// Anything read through the guard before may have changed when it returns.
    ///
    /// ```
    /// use gosync::{Mutex, MutexGuard};
    ///
    /// let queue = Mutex::new(vec![3, 2, 1]);
    /// let mut g = queue.lock();
    /// while let Some(job) = g.pop() {
    ///     // Do the job without holding the lock.
    ///     MutexGuard::unlocked(&mut g, || std::thread::sleep(std::time::Duration::from_micros(job)));
    /// }
    /// ```
    #[track_caller]
    pub fn unlocked<R>(s: &mut Self, f: impl FnOnce() -> R) -> R {
        // SAFETY: the guard holds the lock; `s` stays borrowed (unusable) until `_relock`
        // has taken the lock again.
        unsafe { s.mutex.lock_ref().unlock() };
        let _relock = Relock(s.mutex);
        f()
    }
}

/// A [`MutexGuard`] narrowed to a part of the data by [`MutexGuard::map`] or
/// [`MutexGuard::try_map`]; dropping it unlocks the mutex.
///
/// Not `Send` (like [`MutexGuard`]); `Sync` when `U: Sync`.
#[must_use = "if unused the Mutex will immediately unlock"]
#[clippy::has_significant_drop]
pub struct MappedMutexGuard<'a, U: ?Sized> {
    lock: LockRef<'a>,
    /// Points into the locked data; valid while the lock is held.
    data: NonNull<U>,
    /// Behaves like `&'a mut U` (and is not `Send`: `NonNull` is neither `Send` nor `Sync`).
    _marker: PhantomData<&'a mut U>,
}

// SAFETY: sharing the guard only gives out `&U`.
unsafe impl<U: ?Sized + Sync> Sync for MappedMutexGuard<'_, U> {}

impl<'a, U: ?Sized> MappedMutexGuard<'a, U> {
    /// Narrows the guard further (see [`MutexGuard::map`]).
    #[inline]
    pub fn map<V: ?Sized>(s: Self, f: impl FnOnce(&mut U) -> &mut V) -> MappedMutexGuard<'a, V> {
        // SAFETY: the guard holds the lock; `f` gets the only reference to the data.
        let data = NonNull::from(f(unsafe { &mut *s.data.as_ptr() }));
        // Taken over by the new guard (if `f` panicked, `s` unlocked on the way out).
        let s = ManuallyDrop::new(s);
        MappedMutexGuard {
            lock: s.lock,
            data,
            _marker: PhantomData,
        }
    }

    /// Narrows the guard further if `f` returns `Some`; otherwise gives it back (see
    /// [`MutexGuard::try_map`]).
    #[inline]
    #[allow(clippy::result_large_err)] // the guard is three words
    pub fn try_map<V: ?Sized>(
        s: Self,
        f: impl FnOnce(&mut U) -> Option<&mut V>,
    ) -> Result<MappedMutexGuard<'a, V>, Self> {
        // SAFETY: the guard holds the lock; `f` gets the only reference to the data.
        match f(unsafe { &mut *s.data.as_ptr() }) {
            Some(data) => {
                let data = NonNull::from(data);
                let s = ManuallyDrop::new(s);
                Ok(MappedMutexGuard {
                    lock: s.lock,
                    data,
                    _marker: PhantomData,
                })
            }
            None => Err(s),
        }
    }
}

impl<U: ?Sized> Deref for MappedMutexGuard<'_, U> {
    type Target = U;
    #[inline]
    fn deref(&self) -> &U {
        // SAFETY: the lock is held for the guard's lifetime; shared access through `&self`.
        unsafe { self.data.as_ref() }
    }
}

impl<U: ?Sized> DerefMut for MappedMutexGuard<'_, U> {
    #[inline]
    fn deref_mut(&mut self) -> &mut U {
        // SAFETY: the lock is held; exclusive access through `&mut self`.
        unsafe { self.data.as_mut() }
    }
}

impl<U: ?Sized> Drop for MappedMutexGuard<'_, U> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds the lock and gives up its access here.
        unsafe { self.lock.unlock() }
    }
}

impl<U: ?Sized + fmt::Debug> fmt::Debug for MappedMutexGuard<'_, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<U: ?Sized + fmt::Display> fmt::Display for MappedMutexGuard<'_, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A [`MutexGuard`] that owns an `Arc` of its mutex instead of borrowing it, so it has no
/// lifetime (made by [`Mutex::lock_arc`] and [`Mutex::try_lock_arc`]); dropping it unlocks.
///
/// Not `Send` (like [`MutexGuard`]); `Sync` when `T: Send + Sync`.
#[must_use = "if unused the Mutex will immediately unlock"]
#[clippy::has_significant_drop]
pub struct ArcMutexGuard<T: ?Sized> {
    mutex: Arc<Mutex<T>>,
    /// Not `Send`, like std's guard.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard gives out `&T` and `&Arc<Mutex<T>>` (which another thread could
// clone, so `Mutex<T>` must be `Send + Sync`, i.e. `T: Send`).
unsafe impl<T: ?Sized + Send + Sync> Sync for ArcMutexGuard<T> {}

impl<T: ?Sized> ArcMutexGuard<T> {
    /// The mutex this guard locks.
    #[inline]
    pub fn mutex(s: &Self) -> &Arc<Mutex<T>> {
        &s.mutex
    }

    /// Runs `f` with the lock released, then locks again (see [`MutexGuard::unlocked`]).
    #[track_caller]
    pub fn unlocked<R>(s: &mut Self, f: impl FnOnce() -> R) -> R {
        // SAFETY: the guard holds the lock; `s` stays borrowed until `_relock` re-took it.
        unsafe { s.mutex.lock_ref().unlock() };
        let _relock = Relock(&*s.mutex);
        f()
    }
}

impl<T: ?Sized> Deref for ArcMutexGuard<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held; shared access through `&self`.
        self.mutex.data.with(|p| unsafe { &*p })
    }
}

impl<T: ?Sized> DerefMut for ArcMutexGuard<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held; exclusive access through `&mut self`.
        self.mutex.data.with_mut(|p| unsafe { &mut *p })
    }
}

impl<T: ?Sized> Drop for ArcMutexGuard<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds the lock and gives up its access here.
        unsafe { self.mutex.lock_ref().unlock() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for ArcMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for ArcMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// Future returned by [`Mutex::lock_async`]; resolves to an [`AsyncMutexGuard`].
///
/// `Send` when `T: Send`; not `Unpin` (it holds its queue node in place while waiting).
/// Dropping it before it completes is safe at any point (see `lock_async`'s cancel safety).
#[must_use = "futures do nothing unless polled"]
pub struct MutexLockFuture<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// Our place in the mutex's queue.
    wait: AsyncLock,
    /// The guard has been handed out.
    done: bool,
}

impl<'a, T: ?Sized> Future for MutexLockFuture<'a, T> {
    type Output = AsyncMutexGuard<'a, T>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `wait` is structurally pinned (never moved out); the rest is plain data.
        let this = unsafe { self.get_unchecked_mut() };
        assert!(!this.done, "MutexLockFuture polled after completion");
        let mutex = this.mutex;
        // SAFETY: `this.wait` stays where it is.
        let wait = unsafe { Pin::new_unchecked(&mut this.wait) };
        match mutex.raw.poll_lock(wait, cx) {
            Poll::Ready(()) => {
                this.done = true;
                Poll::Ready(AsyncMutexGuard {
                    mutex,
                    _marker: PhantomData,
                })
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: ?Sized> Drop for MutexLockFuture<'_, T> {
    fn drop(&mut self) {
        if !self.done {
            self.mutex.raw.cancel_lock(&mut self.wait);
        }
    }
}

impl<T: ?Sized> fmt::Debug for MutexLockFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexLockFuture")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Access to the data of a [`Mutex`] locked by [`Mutex::lock_async`]; dropping it unlocks.
///
/// Unlike [`MutexGuard`] it is `Send` when `T: Send` (like `tokio::sync::MutexGuard`): a task
/// may hold it across `.await` and resume on another thread (Go's mutex has no owner thread,
/// so unlocking elsewhere is fine). `Sync` when `T: Send + Sync`.
#[must_use = "if unused the Mutex will immediately unlock"]
#[clippy::has_significant_drop]
pub struct AsyncMutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// `Send`/`Sync` follow `&mut T` (on top of `&Mutex<T>`'s `T: Send`).
    _marker: PhantomData<&'a mut T>,
}

impl<'a, T: ?Sized> AsyncMutexGuard<'a, T> {
    /// The mutex this guard locks.
    #[inline]
    pub fn mutex(s: &Self) -> &'a Mutex<T> {
        s.mutex
    }
}

impl<T: ?Sized> Deref for AsyncMutexGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held; shared access through `&self`.
        self.mutex.data.with(|p| unsafe { &*p })
    }
}

impl<T: ?Sized> DerefMut for AsyncMutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held; exclusive access through `&mut self`.
        self.mutex.data.with_mut(|p| unsafe { &mut *p })
    }
}

impl<T: ?Sized> Drop for AsyncMutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds the lock and gives up its access here. (Async acquisitions
        // are not recorded by the deadlock detector, so the raw unlock is the whole release.)
        unsafe { self.mutex.raw.unlock() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for AsyncMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for AsyncMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
