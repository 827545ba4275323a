//! The loom side of [`crate::primitive`]: parking, the clock and thread identity, built from
//! loom's model-checked primitives so that loom sees every wait and wake-up.
//!
//! - `parking`: the `parking_lot_core` subset gosync uses (`park` with validate / before_sleep /
//!   timed_out / token / timeout, `unpark_one`, `unpark_all`, `unpark_filter`,
//!   `unpark_requeue`), over one global FIFO list protected by a spin lock on a loom atomic (the analogue of
//!   parking_lot_core's bucket lock: callbacks run while it is held).
//! - Timeouts: loom has no time. A timed `park` times out when the fake clock is at or past its
//!   deadline: checked before it sleeps, and again whenever [`loom_clock::advance`] wakes it
//!   (advance wakes every timed sleeper whose deadline it passed). So a timeout can race an
//!   unpark in either order, as with a real clock.
//! - `Instant`/`now()`: a deterministic fake clock that starts at 0 in every model execution
//!   that calls [`loom_clock::reset`] and moves only when a test calls [`loom_clock::advance`].
//! - `thread_id()`: the address of a loom thread-local (unique among live loom threads).
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;
use std::cell::Cell;

use loom::cell::{MutPtr, UnsafeCell};
use loom::sync::atomic::{AtomicUsize, Ordering};

/// The lock of the parking queue below and of `sync::wait_queue`'s queues. Taking and
/// releasing it are single steps for loom: the flag is a std atomic, which loom does not
/// schedule around, and each attempt to take it and each release first make one loom
/// read-modify-write of `order`. That step is where loom may switch threads, and it orders
/// the critical sections for loom's happens-before tracking; since it comes *before* the flag
/// is tested, loom sees two threads competing for the lock and explores both orders. A thread
/// that finds the lock held sleeps (loom `park`) until the holder releases it.
///
/// Not a loom `Mutex`, for three reasons. Loom 0.7's `Thread::unpark` makes a thread that is
/// blocked in a loom `Mutex::lock` runnable while the mutex is still held (loom then panics
/// with "expected to be able to acquire lock"), and `wake` unparks waiters while holding the
/// queue lock. A loom `Mutex` wraps a std mutex that a guard dropped during unwinding poisons
/// for the rest of the execution, while gosync parks and unparks from drop code that also
/// runs when a panic unwinds (`Once` wakes its waiters after a panicking `f`). And taking a
/// loom `Mutex` by spinning on `try_lock` with yields makes executions exceed loom's branch
/// limit: loom prefers the threads that yielded least, so spinners can starve a holder that
/// yielded more.
pub(crate) struct SpinLock<T> {
    held: std::sync::atomic::AtomicBool,
    /// Threads sleeping until `held` is cleared (a wake-up may be spurious).
    sleepers: std::sync::Mutex<Vec<loom::thread::Thread>>,
    /// Touched once by each attempt to take the lock and by each release: loom's view of it.
    order: AtomicUsize,
    data: UnsafeCell<T>,
}

// SAFETY: `data` is only reached through a guard, and one guard exists at a time.
unsafe impl<T: Send> Sync for SpinLock<T> {}

pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
    /// Loom tracks the access for as long as the guard lives.
    data: Option<MutPtr<T>>,
}

impl<T> SpinLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            held: std::sync::atomic::AtomicBool::new(false),
            sleepers: std::sync::Mutex::new(Vec::new()),
            order: AtomicUsize::new(0),
            data: UnsafeCell::new(value),
        }
    }

    fn sleepers(&self) -> std::sync::MutexGuard<'_, Vec<loom::thread::Thread>> {
        // Loom runs one thread at a time: this std mutex is never contended, only
        // possibly poisoned by an unwinding thread, which changes nothing here.
        self.sleepers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        loop {
            // The scheduling point, before the flag is tested. A read-modify-write reads the
            // previous holder's release (made before it cleared the flag): when the flag is
            // clear below, we are ordered after that release.
            self.order.fetch_add(1, Ordering::SeqCst);
            if !self.held.swap(true, std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            self.sleepers().push(loom::thread::current());
            loom::thread::park();
        }
        SpinGuard {
            lock: self,
            data: Some(self.data.get_mut()),
        }
    }
}

impl<T> core::ops::Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold the lock.
        unsafe { self.data.as_ref().unwrap().deref() }
    }
}

impl<T> core::ops::DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: we hold the lock.
        unsafe { self.data.as_ref().unwrap().deref() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.data = None; // end the access before the lock is free
        let lock = self.lock;
        lock.order.fetch_add(1, Ordering::SeqCst);
        lock.held.store(false, std::sync::atomic::Ordering::SeqCst);
        for t in lock.sleepers().drain(..) {
            t.unpark();
        }
    }
}

loom::lazy_static! {
    /// Threads in [`park_until`], with their deadlines.
    static ref TIMED_SLEEPERS: SpinLock<Vec<(usize, crate::primitive::thread::Thread, Instant)>> =
        SpinLock::new(Vec::new());
    /// Bumped by every `loom_clock::advance`, read by every sleeper that wakes up.
    static ref TICK: AtomicUsize = AtomicUsize::new(0);
}

/// Parks the calling thread until it is unparked or, on the fake clock, `deadline` passes
/// (`loom_clock::advance` wakes it). May return spuriously, like `std::thread::park_timeout`.
/// Sleeps on the same per-thread parker as `primitive::thread::park`, so the unparks of the
/// wait queues reach it.
pub(crate) fn park_until(deadline: Instant) {
    if now() >= deadline {
        return;
    }
    let me = thread_id();
    TIMED_SLEEPERS
        .lock()
        .push((me, crate::primitive::thread::current(), deadline));
    crate::primitive::thread::park();
    TICK.load(Ordering::SeqCst);
    TIMED_SLEEPERS.lock().retain(|(id, _, _)| *id != me);
}

/// Wakes the threads in [`park_until`] whose deadline has passed.
///
/// Loom does not see the fake clock, so nothing tells it that a woken sleeper's next steps
/// depend on the advance: it would run them only after the advancing thread's next steps. A
/// store to [`struct@TICK`] after the wake-ups, read by the sleeper when it wakes, is that
/// dependency: loom then also explores the sleeper running first.
fn wake_expired_sleepers() {
    let t = now();
    for (_, thread, deadline) in TIMED_SLEEPERS.lock().iter() {
        if t >= *deadline {
            thread.unpark();
        }
    }
    TICK.fetch_add(1, Ordering::SeqCst);
}

/// The `parking_lot_core` API, modelled with loom primitives.
pub(crate) mod parking {
    use super::{now, Instant};
    use super::{SpinGuard, SpinLock};
    use loom::sync::Arc;

    /// Token a parked thread leaves for unparkers (`parking_lot_core::ParkToken`).
    #[derive(Copy, Clone, Debug, Eq, PartialEq, Hash)]
    pub(crate) struct ParkToken(pub usize);
    /// Token an unparker hands to the woken thread (`parking_lot_core::UnparkToken`).
    #[derive(Copy, Clone, Debug, Eq, PartialEq, Hash)]
    pub(crate) struct UnparkToken(pub usize);
    /// The default park token.
    pub(crate) const DEFAULT_PARK_TOKEN: ParkToken = ParkToken(0);
    /// The default unpark token.
    pub(crate) const DEFAULT_UNPARK_TOKEN: UnparkToken = UnparkToken(0);

    /// Result of [`park`].
    #[derive(Copy, Clone, Debug, Eq, PartialEq)]
    pub(crate) enum ParkResult {
        /// Woken by an unpark call, with its token.
        Unparked(UnparkToken),
        /// `validate` returned false.
        Invalid,
        /// The deadline had passed.
        TimedOut,
    }

    impl ParkResult {
        /// Whether the thread was unparked.
        pub(crate) fn is_unparked(self) -> bool {
            matches!(self, ParkResult::Unparked(_))
        }
    }

    /// What an unpark call did (`parking_lot_core::UnparkResult`).
    #[derive(Copy, Clone, Default, Debug, Eq, PartialEq)]
    pub(crate) struct UnparkResult {
        /// Threads unparked.
        pub unparked_threads: usize,
        /// Threads moved to another key.
        pub requeued_threads: usize,
        /// Whether threads remain on the key after this call.
        pub have_more_threads: bool,
        /// Always false under loom (parking_lot_core's random fairness timer).
        pub be_fair: bool,
    }

    /// Operation chosen by the `validate` callback of [`unpark_requeue`].
    #[derive(Copy, Clone, Debug, Eq, PartialEq)]
    pub(crate) enum RequeueOp {
        /// Do nothing.
        Abort,
        /// Unpark one thread, requeue the rest.
        UnparkOneRequeueRest,
        /// Requeue all threads.
        RequeueAll,
        /// Unpark one thread, leave the rest.
        UnparkOne,
        /// Requeue one thread, leave the rest.
        RequeueOne,
    }

    /// Decision of the filter of [`unpark_filter`].
    #[derive(Copy, Clone, Debug, Eq, PartialEq)]
    pub(crate) enum FilterOp {
        /// Unpark this thread.
        Unpark,
        /// Leave it parked.
        Skip,
        /// Stop scanning.
        Stop,
    }

    /// One parked thread.
    struct Waiter {
        key: usize,
        token: ParkToken,
        thread: loom::thread::Thread,
        /// Set (under the queue lock) when unparked.
        slot: Arc<SpinLock<Option<UnparkToken>>>,
        /// When a timed waiter gives up (`loom_clock::advance` wakes it to check).
        deadline: Option<Instant>,
    }

    loom::lazy_static! {
        /// Every parked thread, in arrival order.
        static ref QUEUE: SpinLock<Vec<Waiter>> = SpinLock::new(Vec::new());
    }

    fn lock<T>(m: &SpinLock<T>) -> SpinGuard<'_, T> {
        m.lock()
    }

    fn wake(w: Waiter, token: UnparkToken) {
        *lock(&w.slot) = Some(token);
        w.thread.unpark();
    }

    /// Parks the current thread on `key` (see `parking_lot_core::park`).
    ///
    /// # Safety
    /// Same contract as `parking_lot_core::park` (callbacks must not panic or park).
    pub(crate) unsafe fn park(
        key: usize,
        validate: impl FnOnce() -> bool,
        before_sleep: impl FnOnce(),
        timed_out: impl FnOnce(usize, bool),
        park_token: ParkToken,
        timeout: Option<Instant>,
    ) -> ParkResult {
        let slot = Arc::new(SpinLock::new(None));
        {
            let mut q = lock(&QUEUE);
            if !validate() {
                return ParkResult::Invalid;
            }
            q.push(Waiter {
                key,
                token: park_token,
                thread: loom::thread::current(),
                slot: slot.clone(),
                deadline: timeout,
            });
        }
        before_sleep();
        let mut timed_out = Some(timed_out);
        loop {
            if let Some(token) = *lock(&slot) {
                return ParkResult::Unparked(token);
            }
            // Checked before the first sleep and after every wake-up: `advance` wakes the
            // timed sleepers whose deadline it passed, so a timeout can fire while asleep and
            // race an unpark, as with the real clock.
            if timeout.is_some_and(|deadline| now() >= deadline) {
                let mut q = lock(&QUEUE);
                let me = Arc::as_ptr(&slot);
                if let Some(i) = q.iter().position(|w| Arc::as_ptr(&w.slot) == me) {
                    let w = q.remove(i);
                    let last = !q.iter().any(|o| o.key == w.key);
                    if let Some(f) = timed_out.take() {
                        f(w.key, last);
                    }
                    return ParkResult::TimedOut;
                }
                // Unparked before we could time out: the token is in the slot.
                continue;
            }
            loom::thread::park();
        }
    }

    /// Wakes every timed sleeper whose deadline is at or before `now()`, so that it times
    /// out (called by `loom_clock::advance`).
    pub(crate) fn wake_expired() {
        let q = lock(&QUEUE);
        let t = now();
        for w in q.iter() {
            if w.deadline.is_some_and(|d| t >= d) {
                w.thread.unpark();
            }
        }
    }

    /// Unparks the oldest thread parked on `key` (see `parking_lot_core::unpark_one`).
    ///
    /// # Safety
    /// Same contract as `parking_lot_core::unpark_one`.
    pub(crate) unsafe fn unpark_one(
        key: usize,
        callback: impl FnOnce(UnparkResult) -> UnparkToken,
    ) -> UnparkResult {
        let mut q = lock(&QUEUE);
        let mut result = UnparkResult::default();
        match q.iter().position(|w| w.key == key) {
            Some(i) => {
                let w = q.remove(i);
                result.unparked_threads = 1;
                result.have_more_threads = q.iter().any(|o| o.key == key);
                let token = callback(result);
                wake(w, token);
            }
            None => {
                callback(result);
            }
        }
        result
    }

    /// Unparks every thread parked on `key`; returns how many.
    ///
    /// # Safety
    /// Same contract as `parking_lot_core::unpark_all`.
    pub(crate) unsafe fn unpark_all(key: usize, token: UnparkToken) -> usize {
        let mut q = lock(&QUEUE);
        let mut n = 0;
        let mut i = 0;
        while i < q.len() {
            if q[i].key == key {
                wake(q.remove(i), token);
                n += 1;
            } else {
                i += 1;
            }
        }
        n
    }

    /// Unparks the threads on `key` that `filter` selects, in queue order.
    ///
    /// # Safety
    /// Same contract as `parking_lot_core::unpark_filter`.
    pub(crate) unsafe fn unpark_filter(
        key: usize,
        mut filter: impl FnMut(ParkToken) -> FilterOp,
        callback: impl FnOnce(UnparkResult) -> UnparkToken,
    ) -> UnparkResult {
        let mut q = lock(&QUEUE);
        let mut chosen = Vec::new();
        let mut i = 0;
        let mut result = UnparkResult::default();
        while i < q.len() {
            if q[i].key != key {
                i += 1;
                continue;
            }
            match filter(q[i].token) {
                FilterOp::Unpark => chosen.push(q.remove(i)),
                FilterOp::Skip => {
                    result.have_more_threads = true;
                    i += 1;
                }
                FilterOp::Stop => {
                    result.have_more_threads = true;
                    break;
                }
            }
        }
        result.unparked_threads = chosen.len();
        let token = callback(result);
        for w in chosen {
            wake(w, token);
        }
        result
    }

    /// Unparks and/or moves threads from `key_from` to `key_to` as `validate` decides.
    ///
    /// # Safety
    /// Same contract as `parking_lot_core::unpark_requeue`.
    pub(crate) unsafe fn unpark_requeue(
        key_from: usize,
        key_to: usize,
        validate: impl FnOnce() -> RequeueOp,
        callback: impl FnOnce(RequeueOp, UnparkResult) -> UnparkToken,
    ) -> UnparkResult {
        let mut q = lock(&QUEUE);
        let mut result = UnparkResult::default();
        let op = validate();
        if op == RequeueOp::Abort {
            return result;
        }
        let mut woken = None;
        let mut i = 0;
        while i < q.len() {
            if q[i].key != key_from {
                i += 1;
                continue;
            }
            let unpark_this = woken.is_none()
                && matches!(op, RequeueOp::UnparkOneRequeueRest | RequeueOp::UnparkOne);
            if unpark_this {
                woken = Some(q.remove(i));
                result.unparked_threads = 1;
                continue;
            }
            let requeue_this = match op {
                RequeueOp::UnparkOneRequeueRest | RequeueOp::RequeueAll => true,
                RequeueOp::RequeueOne => result.requeued_threads == 0,
                _ => false,
            };
            if requeue_this {
                q[i].key = key_to;
                result.requeued_threads += 1;
            } else {
                result.have_more_threads = true;
            }
            i += 1;
        }
        let token = callback(op, result);
        if let Some(w) = woken {
            wake(w, token);
        }
        result
    }
}

std::thread_local! {
    /// Nanoseconds on the fake clock. Loom runs all model threads of one test on the test's OS
    /// thread, so this is shared by the model's threads and private to the test.
    static CLOCK: Cell<u64> = const { Cell::new(0) };
}

/// Test hooks for the fake clock (only under `cfg(loom)`).
pub mod loom_clock {
    use super::CLOCK;
    use core::time::Duration;

    /// Sets the fake clock back to 0. Call it at the start of every model execution.
    pub fn reset() {
        CLOCK.with(|c| c.set(0));
    }

    /// Moves the fake clock forward by `d`, and wakes the timed waiters whose deadline has
    /// passed (each then times out unless an unpark reaches it first).
    pub fn advance(d: Duration) {
        CLOCK.with(|c| c.set(c.get().saturating_add(d.as_nanos() as u64)));
        super::parking::wake_expired();
        super::wake_expired_sleepers();
    }
}

/// A point on the fake clock (nanoseconds since the last reset), with the parts of
/// `std::time::Instant`'s API gosync uses.
#[derive(Copy, Clone, Debug, Eq, PartialEq, Ord, PartialOrd, Hash)]
pub(crate) struct Instant(u64);

impl Instant {
    /// The current fake time.
    pub(crate) fn now() -> Self {
        now()
    }
    /// `self - earlier`, or zero.
    pub(crate) fn saturating_duration_since(&self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
    /// `self - earlier`, or zero (std panics on negative in old versions; we saturate).
    pub(crate) fn duration_since(&self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
    /// Time since `self` on the fake clock.
    pub(crate) fn elapsed(&self) -> Duration {
        now().saturating_duration_since(*self)
    }
    /// `self + d`, or `None` on overflow.
    pub(crate) fn checked_add(&self, d: Duration) -> Option<Instant> {
        u64::try_from(d.as_nanos())
            .ok()
            .and_then(|n| self.0.checked_add(n))
            .map(Instant)
    }
    /// `self - d`, or `None` before the clock's origin.
    pub(crate) fn checked_sub(&self, d: Duration) -> Option<Instant> {
        u64::try_from(d.as_nanos())
            .ok()
            .and_then(|n| self.0.checked_sub(n))
            .map(Instant)
    }
    /// `self - earlier`, or `None` if `earlier` is later.
    pub(crate) fn checked_duration_since(&self, earlier: Instant) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_nanos)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.checked_add(d)
            .expect("overflow when adding duration to instant")
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        self.checked_sub(d)
            .expect("overflow when subtracting duration from instant")
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// `at` as nanoseconds since the fake clock's origin.
pub(crate) fn nanos(at: Instant) -> u64 {
    at.0
}

/// The current time on the fake clock.
pub(crate) fn now() -> Instant {
    Instant(CLOCK.with(Cell::get))
}

/// A non-zero number unique to the calling loom thread while it lives.
pub(crate) fn thread_id() -> usize {
    loom::thread_local!(static ID: u8 = 0);
    ID.with(|x| x as *const u8 as usize)
}
