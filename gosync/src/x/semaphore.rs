//! Weighted semaphore (Go's `golang.org/x/sync/semaphore.Weighted`): one FIFO queue for threads
//! and tasks, Go's head-of-line rule, and bounded barging so that contended threads do not run
//! at the speed of the scheduler.

use core::fmt;
use core::future::Future;
use core::marker::PhantomPinned;
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll, Waker};
use std::collections::VecDeque;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use crate::diag::{Sleep, Sleeping};
use crate::primitive::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::primitive::{
    multi_core, now, parking, spin_loop, Instant, Mutex, MutexGuard, UnsafeCell,
};

/// Bit 0 of [`Semaphore::state`]: the wait queue is not empty.
const QUEUED: usize = 1;
/// Bit 1 of [`Semaphore::state`]: the gate is open. The head of the queue is a thread that has
/// been woken to compete for the free permits, and acquirers that are not queued may take free
/// permits too. Only ever set together with `QUEUED`.
const OPEN: usize = 2;
/// Permits are stored above the two flag bits.
const ONE: usize = 4;
/// The largest size a semaphore can have (two bits of the word are flags).
const MAX_SIZE: usize = usize::MAX >> 2;

/// [`Node::state`]: asleep (or about to sleep) in the queue; nothing is pending for it.
const WAITING: usize = 0;
/// [`Node::state`]: the permits were handed to this waiter and it left the queue; it owns them.
const GRANTED: usize = 1;
/// [`Node::state`]: still at the head of the queue, woken to compete for the free permits.
const WOKEN: usize = 2;

/// How many times an acquirer polls the state before it queues (multi-core only).
const SPIN_LIMIT: u32 = 16;

/// Handoff threshold = this many measured wake-ups (see [`Semaphore::handoff_after`]).
const HANDOFF_WAKES: u64 = 16;
/// Lower bound of the handoff threshold.
const HANDOFF_MIN: Duration = Duration::from_micros(100);
/// Upper bound of the handoff threshold (Go's starvation threshold).
const HANDOFF_MAX: Duration = Duration::from_millis(1);
/// The wake-up cost assumed until one has been measured.
const WAKE_GUESS_NS: u64 = 20_000;

/// A weighted semaphore: a pool of `size` permits that callers take and give back in any
/// amount. Queued callers are served in arrival order; a large request is never starved by
/// small ones.
///
/// This is Go's `semaphore.Weighted`: `acquire(n)` (Go's `Acquire`), [`try_acquire`],
/// [`acquire_timeout`] (Go's `Acquire` with a deadline context), [`release`] and, for async code,
/// [`acquire_async`]. Blocking threads and async tasks wait in **one** FIFO queue, so a mixed
/// program keeps the same order guarantees.
///
/// # Fairness
///
/// - **FIFO among waiters.** Queued callers are served strictly in arrival order; a caller
///   that gives up (a timeout, a dropped future) leaves without disturbing the others.
/// - **Head-of-line rule (Go's).** Permits that the head of the queue is still collecting are
///   never taken by anyone else: a request for 5 permits at the head blocks requests for 1
///   behind it (and arriving ones) until 5 are free. When a waiter gives up while at the head,
///   the waiters behind it are re-examined at once, so nobody is stranded behind a departed
///   request.
/// - **Bounded barging.** When a permit is free and the head is a blocked thread asking for
///   one permit that has been at the head for less than the *handoff threshold*, the releaser does
///   not hand the permits over: it wakes the head and opens the gate, and until the head has
///   run, callers that are already running may take the free permits (a caller that finds the
///   permits gone spins briefly, then queues at the tail). A head that has waited at the head
///   longer than the threshold gets the permits handed to it directly, so its wait is bounded
///   by the threshold plus the time its thread needs to get a CPU; a caller behind `k` others
///   waits about `k` thresholds at most.
/// - [`try_acquire`] succeeds only while the queue is empty or the gate is open.
/// - Async waiters are always handed their permits directly (waking a task is cheap), and the
///   gate never opens while the head is a task.
///
/// # Why not Go's algorithm
///
/// Go serves `Weighted` strictly FIFO: a release hands the permits to the head waiter, and an
/// arriving caller queues whenever anyone waits. For goroutines that costs a goroutine switch.
/// For OS threads every contended acquire then waits for a sleeping thread to be woken
/// (microseconds, and a whole scheduler round when threads outnumber cores), and the
/// semaphore runs at the speed of the scheduler. gosync borrows the idea of Go's `Mutex`
/// instead: waiters compete with running threads (the running ones usually win, which keeps
/// the CPUs busy) until fairness demands a handoff. Two things differ from Go's mutex:
///
/// - The debt is measured from the moment a waiter became the **head** of the queue, not from
///   when it started waiting. Under oversubscription every waiter has queued for longer than
///   any fixed threshold, so Go's rule would hand off on every release (a convoy); measured
///   from the head, handoffs happen at most once per threshold, and the bound on a waiter's
///   wait is still proportional to its place in the queue.
/// - The threshold is derived from the wake-up cost the semaphore measures (a handoff leaves the
///   permits idle while the granted thread wakes up): it is 16 measured wake-ups, clamped to
///   100 µs..1 ms, so that handoffs cost a small, fixed share of the throughput on any machine.
///   (`Mutex` spaces its handoffs the same way, by their measured cost.)
/// - Only a thread that asks for **one** permit can be overtaken. A weighted head, and any
///   async task at the head, is served strictly as in Go: the gate stays closed, the permits
///   collect for it, and it is handed them as soon as they suffice.
///
/// # Differences from Go
///
/// - Bounded barging (above) where Go is strictly FIFO; `try_acquire` can succeed while threads
///   are queued (only while the gate is open).
/// - Permits come back through a guard ([`SemaphorePermit`] / [`OwnedSemaphorePermit`]) when it
///   drops. Go's explicit `Release(n)` is [`release`]; pair it with [`SemaphorePermit::forget`].
/// - A request for more permits than the semaphore has can never succeed. Go blocks until the
///   context is cancelled; [`acquire`] and [`acquire_async`] panic with a clear message instead
///   (they could only hang), [`try_acquire`] returns `None`, and [`acquire_timeout`] returns
///   `None` at once. Such a request never blocks anyone else (as in Go).
/// - If a timeout fires just as the permits are granted, [`acquire_timeout`] keeps them and
///   returns `Some` (Go returns the permits and reports the context error).
/// - Over-release panics with Go's message `semaphore: released more than held`, and also
///   detects releasing more permits than the semaphore's size in total.
///
/// # Differences from `tokio::sync::Semaphore`
///
/// Same FIFO semantics for multi-permit requests, but it also blocks threads (sharing the queue
/// with tasks), works with any async runtime (it only uses `std::task::Waker`), and has no
/// `close()`; sizes are fixed as in Go.
///
/// # State and invariants
///
/// `state` is one word: `available << 2 | OPEN | QUEUED`.
///
/// | bits | meaning |
/// |---|---|
/// | 0 (`QUEUED`) | the wait queue is non-empty; set and cleared only with the queue lock held |
/// | 1 (`OPEN`) | the gate is open: the head is a thread woken to compete; set and cleared only with the queue lock held |
/// | 2.. | permits available right now (not held by any guard, not granted to any waiter) |
///
/// The three modes of the word:
///
/// | mode | who may take permits | who may return permits |
/// |---|---|---|
/// | queue empty (`QUEUED` clear) | anyone, lock-free | anyone, lock-free |
/// | gate closed (`QUEUED`, no `OPEN`) | the queue-lock holder only, for the head | the queue-lock holder only (a releaser takes the lock) |
/// | gate open (`QUEUED` and `OPEN`) | anyone, lock-free (the woken head under the lock) | anyone, lock-free, waking nobody |
///
/// - `available + held == size` at all times, where `held` counts permits owned by guards,
///   forgotten permits, and permits handed to a waiter that has not returned yet.
/// - `OPEN` is set exactly when the queue's head is a thread with its `woken` mark set; the
///   mark means a wake-up is pending for that thread or it is awake. A woken head looks at the
///   permits under the queue lock before it sleeps again, and clears `OPEN` in the same
///   compare-and-swap that confirms the permits do not suffice, so a release that slips in
///   lock-free is never missed.
/// - When the queue lock is released with the gate closed, the head does not fit in the
///   available permits: every release and every departure of a head runs `dispatch`, which
///   either hands permits to the longest satisfiable prefix (handoff), wakes the head and opens
///   the gate (compete), or closes the gate (the head does not fit).
/// - A node is written by a waker only while it is alive: a thread leaves only after it saw
///   `GRANTED`, after it saw `WOKEN` (then its entry is its own again), or after it removed its
///   own entry while no wake-up was pending for it.
///
/// # Examples
///
/// ```
/// use gosync::x::Semaphore;
///
/// let sem = Semaphore::new(3);
/// let big = sem.acquire(2);
/// assert!(sem.try_acquire(2).is_none()); // only 1 left
/// let small = sem.try_acquire(1).unwrap();
/// drop((big, small));
/// assert_eq!(sem.available(), 3);
/// ```
///
/// [`acquire`]: Semaphore::acquire
/// [`try_acquire`]: Semaphore::try_acquire
/// [`acquire_timeout`]: Semaphore::acquire_timeout
/// [`acquire_async`]: Semaphore::acquire_async
/// [`release`]: Semaphore::release
#[doc(alias = "Weighted")]
#[doc(alias = "NewWeighted")]
pub struct Semaphore {
    /// `available << 2 | OPEN | QUEUED`; see the type docs.
    state: AtomicUsize,
    /// Total permits; constant.
    size: usize,
    /// FIFO of waiters. Lock order: this lock is a leaf (no other lock is taken inside it).
    queue: Mutex<Queue>,
    /// Moving average of the measured wake-up cost of a blocked thread, in nanoseconds (the time
    /// from the waker's unpark to the woken thread running). A plain estimate: updated with
    /// relaxed loads and stores, a lost update only delays the average.
    wake_ns: AtomicU64,
    /// Origin of the timestamps wakers leave in [`Node::woken_at`].
    epoch: Instant,
    /// While the gate is open: when the head's debt falls due (nanoseconds since `epoch`).
    /// Written under the queue lock when the gate opens; read lock-free by releasers (a stale
    /// value only sends a releaser to the lock, which decides with the exact value).
    due_at: AtomicU64,
}

/// The wait queue. Entries are ordered by `seq` (strictly increasing), so a departing waiter
/// finds itself by binary search.
struct Queue {
    entries: VecDeque<Entry>,
    next_seq: u64,
    /// When the current head became the head; kept only for heads that can be overtaken (see
    /// `head_changed`), meaningless otherwise.
    head_since: Instant,
}

impl Queue {
    /// Called whenever a new entry becomes the head: starts its clock if it is one that can be
    /// overtaken (a thread asking for one permit; nobody reads the clock of other heads).
    fn head_changed(&mut self) {
        if let Some(h) = self.entries.front() {
            if h.thread && h.need == 1 {
                self.head_since = now();
            }
        }
    }
}

/// One queued request. `node` points to the waiter's [`Node`], which lives on the blocked
/// thread's stack or inside the pinned [`Acquire`] future; it stays valid while the entry is in
/// the queue because both remove their entry (under the lock) before the node goes away.
struct Entry {
    seq: u64,
    need: usize,
    node: NonNull<Node>,
    thread: bool,
    /// Threads only: a compete wake-up was issued and the thread has not gone back to sleep
    /// since. Set by `dispatch`, cleared by the thread; only ever set on the head.
    woken: bool,
}

// SAFETY: `Entry` is only reached through the queue mutex; the node it points to is shared
// through atomics and fields guarded by that same mutex (see `Node`).
unsafe impl Send for Entry {}

/// A waiter's rendezvous with the threads that grant it permits or wake it.
struct Node {
    /// `WAITING` → `GRANTED` (final) or `WAITING` → `WOKEN` → `WAITING` ...; see the constants.
    /// Threads: `GRANTED`/`WOKEN` are written by the waker inside the unpark callback, `WAITING`
    /// by the thread itself under the queue lock. Tasks: `GRANTED` under the queue lock.
    state: AtomicUsize,
    /// Threads only: the waker's clock (nanoseconds since [`Semaphore::epoch`]) when it woke the
    /// thread; written before `state`, read after it.
    woken_at: AtomicU64,
    /// Async waiters only: the task to wake. Read and written only with the queue lock held.
    waker: UnsafeCell<Option<Waker>>,
}

impl Node {
    fn new() -> Self {
        Node {
            state: AtomicUsize::new(WAITING),
            woken_at: AtomicU64::new(0),
            waker: UnsafeCell::new(None),
        }
    }
    /// # Safety
    /// The caller holds the queue lock of the semaphore this node waits on.
    unsafe fn take_waker(&self) -> Option<Waker> {
        // SAFETY: `waker` is only accessed under the queue lock (caller's contract).
        self.waker.with_mut(|w| unsafe { (*w).take() })
    }
    /// # Safety
    /// As for `take_waker`.
    unsafe fn set_waker(&self, waker: &Waker) {
        // SAFETY: `waker` is only accessed under the queue lock (caller's contract).
        self.waker.with_mut(|w| unsafe {
            match &mut *w {
                Some(old) if old.will_wake(waker) => {}
                slot => *slot = Some(waker.clone()),
            }
        })
    }
    #[inline]
    fn granted(&self) -> bool {
        // Acquire: pairs with the granter's Release store, so the permits' history is visible.
        self.state.load(Ordering::Acquire) == GRANTED
    }
}

/// Wake-ups collected under the queue lock and delivered after it is released.
enum Wake {
    Task(Waker),
    /// Parking key (the node's address) of a blocked thread, and the state to give it
    /// (`GRANTED` or `WOKEN`).
    Thread(usize, usize),
}

/// At most this many wake-ups are collected per lock hold; more are delivered in rounds.
const WAKE_BATCH: usize = 16;

struct WakeList {
    items: [Option<Wake>; WAKE_BATCH],
    len: usize,
}

impl WakeList {
    fn new() -> Self {
        WakeList {
            items: Default::default(),
            len: 0,
        }
    }
    fn is_full(&self) -> bool {
        self.len == WAKE_BATCH
    }
    fn push(&mut self, w: Wake) {
        self.items[self.len] = Some(w);
        self.len += 1;
    }
    /// Delivers the wake-ups; `clock` stamps thread wake-ups (see [`Node::woken_at`]).
    fn deliver(&mut self, clock: impl Fn() -> u64) {
        for slot in &mut self.items[..self.len] {
            match slot.take() {
                Some(Wake::Task(w)) => w.wake(),
                Some(Wake::Thread(key, to)) => {
                    let at = clock();
                    // SAFETY: `key` is the address of a node whose thread cannot return (or
                    // reuse the node) before it observes `to`, which is stored inside this
                    // callback while the parking bucket is locked (type docs: a node is written
                    // by a waker only while it is alive); the callback does not panic or park.
                    unsafe {
                        parking::unpark_one(key, |_| {
                            // SAFETY: the node is alive until its thread sees `to` (above).
                            let node = &*(key as *const Node);
                            node.woken_at.store(at, Ordering::Relaxed);
                            // Release: publishes the permits' history (and `woken_at`).
                            node.state.store(to, Ordering::Release);
                            parking::DEFAULT_UNPARK_TOKEN
                        });
                    }
                }
                None => {}
            }
        }
        self.len = 0;
    }
}

/// What a blocked thread found when it went to leave the queue after its deadline.
enum Leave {
    /// Its entry is gone: it was removed.
    Left,
    /// A granter already popped it: the permits are on their way.
    Granted,
    /// A compete wake-up is on its way; the node must stay alive until it arrives.
    WakePending,
}

/// One open-gate release in [`CLOCK_EVERY`] (per thread) reads the clock to see whether the
/// woken head's debt is due: a clock read costs about as much as the rest of the release, and
/// the bound only stretches by a few operations.
#[cfg(not(loom))]
#[inline]
fn clock_turn() -> bool {
    std::thread_local!(static COUNT: core::cell::Cell<u32> = const { core::cell::Cell::new(0) });
    COUNT.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n % CLOCK_EVERY == 0
    })
}
/// Under loom every open-gate release checks (the models are small).
#[cfg(loom)]
fn clock_turn() -> bool {
    true
}

/// See [`clock_turn`].
#[cfg(not(loom))]
const CLOCK_EVERY: u32 = 16;

/// Whether an acquirer that is not queued may take free permits: the queue is empty or the gate
/// is open.
#[inline]
fn may_take(state: usize) -> bool {
    // OPEN is only ever set together with QUEUED.
    state & (QUEUED | OPEN) != QUEUED
}

impl Semaphore {
    /// A semaphore with `size` permits, all available.
    ///
    /// # Panics
    ///
    /// If `size` exceeds `usize::MAX >> 2` (two bits of the state word are flags).
    #[doc(alias = "NewWeighted")]
    pub fn new(size: usize) -> Self {
        assert!(
            size <= MAX_SIZE,
            "semaphore: size {size} is larger than the maximum {MAX_SIZE}"
        );
        let epoch = now();
        Semaphore {
            state: AtomicUsize::new(size * ONE),
            size,
            queue: Mutex::new(Queue {
                entries: VecDeque::new(),
                next_seq: 0,
                head_since: epoch,
            }),
            wake_ns: AtomicU64::new(WAKE_GUESS_NS),
            epoch,
            due_at: AtomicU64::new(0),
        }
    }

    /// Total number of permits.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Permits available right now (a snapshot).
    pub fn available(&self) -> usize {
        self.state.load(Ordering::Relaxed) / ONE
    }

    /// Number of queued waiters (a snapshot; takes the queue lock).
    pub fn waiters(&self) -> usize {
        self.lock_queue().entries.len()
    }

    /// Takes `n` permits, blocking the thread until it gets them (see the type docs for the
    /// order in which waiters are served).
    ///
    /// # Panics
    ///
    /// If `n > size()`: such a request can never be granted (Go would block forever).
    #[doc(alias = "Acquire")]
    pub fn acquire(&self, n: usize) -> SemaphorePermit<'_> {
        if !self.try_take(n) {
            self.check_fits(n);
            let granted = self.acquire_blocking(n, None);
            debug_assert!(granted);
        }
        SemaphorePermit { sem: self, n }
    }

    /// Like [`acquire`](Self::acquire), but gives up after `timeout` and returns `None`.
    ///
    /// Returns `None` at once if `n > size()`. A waiter that gives up while at the head of the
    /// queue lets the waiters behind it proceed if the permits now suffice for them.
    #[doc(alias = "Acquire")]
    pub fn acquire_timeout(&self, n: usize, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        if self.try_take(n) {
            return Some(SemaphorePermit { sem: self, n });
        }
        if n > self.size || timeout.is_zero() {
            return None;
        }
        let deadline = now().checked_add(timeout);
        self.acquire_blocking(n, deadline)
            .then(|| SemaphorePermit { sem: self, n })
    }

    /// Takes `n` permits if they are available and no queued waiter is entitled to them;
    /// never blocks.
    ///
    /// That is: the queue is empty, or its head is a thread that was woken to compete for the
    /// free permits and has not run yet (see the type docs). Like Go's `TryAcquire`, it never
    /// takes permits that the head of the queue is still collecting.
    #[doc(alias = "TryAcquire")]
    pub fn try_acquire(&self, n: usize) -> Option<SemaphorePermit<'_>> {
        self.try_take(n).then(|| SemaphorePermit { sem: self, n })
    }

    /// Takes `n` permits asynchronously. The future is cancellation-safe: dropping it before it
    /// completes removes its place in the queue (and, if it was first, lets the next waiters
    /// proceed); permits granted to a dropped future are given back.
    ///
    /// Works with any executor: it only uses the `Waker` it is polled with.
    ///
    /// # Panics
    ///
    /// When polled, if `n > size()` (the request could never be granted).
    pub fn acquire_async(&self, n: usize) -> Acquire<'_> {
        Acquire {
            sem: self,
            wait: AsyncWait::new(n),
        }
    }

    /// [`acquire`](Self::acquire) through an `Arc`, returning a permit that owns its handle
    /// (for moving into threads and tasks).
    pub fn acquire_owned(self: &Arc<Self>, n: usize) -> OwnedSemaphorePermit {
        self.acquire(n).forget();
        OwnedSemaphorePermit {
            sem: Arc::clone(self),
            n,
        }
    }

    /// [`try_acquire`](Self::try_acquire) returning an owned permit.
    pub fn try_acquire_owned(self: &Arc<Self>, n: usize) -> Option<OwnedSemaphorePermit> {
        self.try_take(n).then(|| OwnedSemaphorePermit {
            sem: Arc::clone(self),
            n,
        })
    }

    /// [`acquire_async`](Self::acquire_async) returning an owned permit.
    pub fn acquire_owned_async(self: Arc<Self>, n: usize) -> AcquireOwned {
        AcquireOwned {
            sem: Some(self),
            wait: AsyncWait::new(n),
        }
    }

    /// Returns `n` permits to the semaphore; queued waiters get them in FIFO order.
    ///
    /// Use it for permits whose guard was [`forget`](SemaphorePermit::forget)-ed.
    ///
    /// # Panics
    ///
    /// `semaphore: released more than held` if the semaphore would have more than `size()`
    /// permits available afterwards.
    #[doc(alias = "Release")]
    #[inline]
    pub fn release(&self, n: usize) {
        let state = self.state.load(Ordering::Relaxed);
        // Nobody queued: give the permits back lock-free (Release: publishes the critical
        // section to the next acquirer). Everything else, over-release included, goes on below.
        if state & QUEUED == 0
            && n <= self.size - state / ONE
            && self
                .state
                .compare_exchange_weak(state, state + n * ONE, Ordering::Release, Ordering::Relaxed)
                .is_ok()
        {
            return;
        }
        self.release_contended(n);
    }

    /// [`release`](Self::release) with waiters queued (or a lost race, or an over-release).
    #[inline(never)]
    fn release_contended(&self, n: usize) {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if !may_take(state) {
                return self.release_slow(n);
            }
            if state & OPEN != 0
                && clock_turn()
                && self.clock_ns() >= self.due_at.load(Ordering::Relaxed)
            {
                // The woken head's debt is due: close the gate (under the lock).
                return self.release_slow(n);
            }
            let avail = state / ONE;
            if n > self.size - avail {
                over_release();
            }
            // Release: publishes the critical section to the next acquirer.
            match self.state.compare_exchange_weak(
                state,
                state + n * ONE,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(s) => state = s,
            }
        }
    }

    /// Lock-free fast path shared by every acquire: succeeds only while the queue is empty or
    /// the gate is open.
    #[inline]
    fn try_take(&self, n: usize) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if !may_take(state) || state / ONE < n {
                return false;
            }
            // Acquire: pairs with the Release of whoever returned these permits.
            match self.state.compare_exchange_weak(
                state,
                state - n * ONE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(s) => state = s,
            }
        }
    }

    fn check_fits(&self, n: usize) {
        if n > self.size {
            panic!(
                "semaphore: acquire of {n} permits can never succeed on a semaphore of size {}",
                self.size
            );
        }
    }

    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while the lock is held except allocation failure; the queue stays
        // consistent either way, so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The semaphore's clock in nanoseconds (for wake-up timestamps).
    fn clock_ns(&self) -> u64 {
        u64::try_from(now().saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Folds one measured wake-up (stamped `woken_at` by the waker) into the average.
    fn record_wake(&self, woken_at: u64) {
        let sample = self.clock_ns().saturating_sub(woken_at);
        let avg = self.wake_ns.load(Ordering::Relaxed);
        // A moving average over ~16 wake-ups of samples capped at 4× the average: the typical
        // cost, not the rare wake-up that waited for a scheduler tick (those are the ones the
        // gate closing is there to cut short).
        let sample = sample.min(avg.saturating_mul(4).max(1_000));
        self.wake_ns
            .store(avg - avg / 16 + sample / 16, Ordering::Relaxed);
    }

    /// How long a thread may stay at the head of the queue while others overtake it before the
    /// permits are handed to it directly: [`HANDOFF_WAKES`] measured wake-ups, clamped to
    /// [`HANDOFF_MIN`]..[`HANDOFF_MAX`]. A handoff leaves the permits idle for about one
    /// wake-up, so at most one handoff per threshold costs at most 1/`HANDOFF_WAKES` of the
    /// throughput.
    fn handoff_after(&self) -> Duration {
        let ns = self
            .wake_ns
            .load(Ordering::Relaxed)
            .saturating_mul(HANDOFF_WAKES);
        Duration::from_nanos(ns).clamp(HANDOFF_MIN, HANDOFF_MAX)
    }

    /// Under the queue lock: whether the head has been the head for longer than the handoff
    /// threshold (then it may no longer be overtaken).
    fn debt_due(&self, q: &Queue) -> bool {
        now().saturating_duration_since(q.head_since) >= self.handoff_after()
    }

    /// Under the queue lock: takes `n` permits if an arriving acquirer may (queue empty or gate
    /// open), else queues `node` at the tail and sets `QUEUED`. Returns `Ok(())` if taken,
    /// `Err(seq)` if queued.
    fn take_or_enqueue(
        &self,
        q: &mut Queue,
        n: usize,
        node: NonNull<Node>,
        thread: bool,
    ) -> Result<(), u64> {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let (new, queued) = if may_take(state) && state / ONE >= n {
                (state - n * ONE, false)
            } else {
                (state | QUEUED, true)
            };
            // Acquire for the take; the flag needs no ordering beyond the lock.
            match self
                .state
                .compare_exchange_weak(state, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) if !queued => return Ok(()),
                Ok(_) => break,
                Err(s) => state = s,
            }
        }
        let seq = q.next_seq;
        q.next_seq += 1;
        q.entries.push_back(Entry {
            seq,
            need: n,
            node,
            thread,
            woken: false,
        });
        if q.entries.len() == 1 {
            q.head_changed();
        }
        Err(seq)
    }

    /// Under the queue lock, after permits came back with the gate closed or after the head
    /// left: decides what the (new) head gets. Repeats until one of:
    /// - the queue is empty: clears `QUEUED` and `OPEN`;
    /// - the head is already woken: nothing to do (it will look at the permits itself);
    /// - the head does not fit: closes the gate;
    /// - the head is a thread that became the head less than [`handoff_after`] ago: marks it
    ///   woken, opens the gate and collects a compete wake-up;
    /// - otherwise (a task, or a thread that waited too long): hands it its permits (handoff),
    ///   collects its wake-up and looks at the next head.
    ///
    /// Returns true if it stopped only because `wakes` is full.
    ///
    /// [`handoff_after`]: Self::handoff_after
    fn dispatch(&self, q: &mut Queue, wakes: &mut WakeList) -> bool {
        // With the gate open, lock-free acquirers and releasers change the permits meanwhile:
        // every change of the word here is a compare-and-swap.
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let Some(head) = q.entries.front() else {
                // Release: a fast-path acquirer that sees QUEUED cleared also sees the permits'
                // history (the lock covered it until now).
                self.state.fetch_and(!(QUEUED | OPEN), Ordering::Release);
                return false;
            };
            let (need, thread, node) = (head.need, head.thread, head.node);
            if head.woken {
                return false;
            }
            if state / ONE < need {
                if state & OPEN == 0 {
                    return false;
                }
                match self.state.compare_exchange_weak(
                    state,
                    state & !OPEN,
                    Ordering::Relaxed,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return false,
                    Err(s) => {
                        state = s;
                        continue;
                    }
                }
            }
            if wakes.is_full() {
                return true;
            }
            if thread && need == 1 && !self.debt_due(q) {
                // Compete: wake the head and let running threads race it for the permits.
                q.entries.front_mut().expect("front exists").woken = true;
                let due = q.head_since.saturating_duration_since(self.epoch) + self.handoff_after();
                self.due_at.store(
                    u64::try_from(due.as_nanos()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
                wakes.push(Wake::Thread(node.as_ptr() as usize, WOKEN));
                self.state.fetch_or(OPEN, Ordering::Relaxed);
                return false;
            }
            // Handoff. AcqRel: acquires the history of permits returned lock-free while the
            // gate was open; the node's Release store passes it on to the waiter.
            if let Err(s) = self.state.compare_exchange_weak(
                state,
                state - need * ONE,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                state = s;
                continue;
            }
            state -= need * ONE;
            let e = q.entries.pop_front().expect("front exists");
            q.head_changed();
            if e.thread {
                wakes.push(Wake::Thread(e.node.as_ptr() as usize, GRANTED));
            } else {
                // SAFETY: the node is alive while its entry was queued and we hold the lock
                // (its owner removes the entry under this lock before the node goes away).
                let node = unsafe { e.node.as_ref() };
                // SAFETY: the queue lock is held.
                let waker = unsafe { node.take_waker() };
                node.state.store(GRANTED, Ordering::Release);
                if let Some(w) = waker {
                    wakes.push(Wake::Task(w));
                }
            }
        }
    }

    /// Runs `dispatch` to completion, delivering wake-ups outside the lock in batches.
    fn dispatch_all<'a>(&'a self, mut q: MutexGuard<'a, Queue>) {
        let mut wakes = WakeList::new();
        loop {
            let more = self.dispatch(&mut q, &mut wakes);
            drop(q);
            wakes.deliver(|| self.clock_ns());
            if !more {
                return;
            }
            q = self.lock_queue();
        }
    }

    #[cold]
    fn release_slow(&self, n: usize) {
        let q = self.lock_queue();
        // The flags only change under the lock, so the mode seen here holds until we drop it.
        let mut state = self.state.load(Ordering::Relaxed);
        // With the gate open, the head is woken: if its debt is due, close the gate so that the
        // permits wait for it (the running threads then queue and leave it their CPU).
        let close = state & OPEN != 0 && self.debt_due(&q);
        loop {
            if n > self.size - state / ONE {
                drop(q);
                over_release();
            }
            let new = state + n * ONE;
            let new = if close { new & !OPEN } else { new };
            // Release: publishes the critical section (the permits may be taken lock-free).
            match self
                .state
                .compare_exchange_weak(state, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(s) => state = s,
            }
        }
        if !may_take(state) {
            // Gate closed: the head may fit now.
            self.dispatch_all(q);
        }
    }

    /// Removes the entry `seq` if it is still queued and no wake-up is pending for it.
    fn leave(&self, seq: u64) -> Leave {
        let mut q = self.lock_queue();
        let Ok(idx) = q.entries.binary_search_by_key(&seq, |e| e.seq) else {
            return Leave::Granted;
        };
        if q.entries[idx].woken {
            return Leave::WakePending;
        }
        q.entries.remove(idx);
        if idx == 0 {
            // The head left: the next waiters may fit now (Go's notifyWaiters on cancel).
            q.head_changed();
            self.dispatch_all(q);
        }
        Leave::Left
    }

    /// A woken head competes for its `n` permits (under the queue lock). If it gets them it
    /// leaves the queue and the next head is dispatched. If not, it either goes back to sleep
    /// at the head (closing the gate, so that the next release wakes it again or hands it the
    /// permits) or, if `give_up`, leaves the queue. Returns true if it got the permits.
    fn compete(&self, node: &Node, seq: u64, n: usize, give_up: bool) -> bool {
        let mut q = self.lock_queue();
        let head = q.entries.front_mut().expect("a woken waiter is the head");
        debug_assert!(head.seq == seq && head.woken);
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state / ONE >= n {
                // Acquire: pairs with the Release of whoever returned these permits.
                match self.state.compare_exchange_weak(
                    state,
                    state - n * ONE,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        q.entries.pop_front();
                        q.head_changed();
                        self.dispatch_all(q);
                        return true;
                    }
                    Err(s) => state = s,
                }
                continue;
            }
            if give_up {
                q.entries.pop_front();
                q.head_changed();
                self.dispatch_all(q);
                return false;
            }
            // Close the gate in the same step that confirms the permits do not suffice: a
            // release that lands after this goes through the lock and wakes us again.
            match self.state.compare_exchange_weak(
                state,
                state & !OPEN,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let head = q.entries.front_mut().expect("still the head");
                    head.woken = false;
                    node.state.store(WAITING, Ordering::Relaxed);
                    return false;
                }
                Err(s) => state = s,
            }
        }
    }

    /// Slow path of the blocking acquires. Returns true if `n` permits were taken.
    #[cold]
    fn acquire_blocking(&self, n: usize, deadline: Option<Instant>) -> bool {
        // (Loom models skip the spin: it only multiplies the interleavings.)
        if cfg!(not(loom)) && multi_core() {
            for _ in 0..SPIN_LIMIT {
                let state = self.state.load(Ordering::Relaxed);
                if !may_take(state) {
                    break;
                }
                if state / ONE >= n && self.try_take(n) {
                    return true;
                }
                spin_loop();
            }
        }
        let node = Node::new();
        let ptr = NonNull::from(&node);
        let seq = match self.take_or_enqueue(&mut self.lock_queue(), n, ptr, true) {
            Ok(()) => return true,
            Err(seq) => seq,
        };
        let key = ptr.as_ptr() as usize;
        let _sleeping = Sleeping::begins(Sleep::Semaphore);
        // Set once the deadline has passed: the next time the thread is free to go, it goes.
        let mut expired = false;
        loop {
            // SAFETY: `key` is the address of our own node, unique while we wait; the validate
            // callback only reads an atomic and does not panic.
            let res = unsafe {
                parking::park(
                    key,
                    || node.state.load(Ordering::Relaxed) == WAITING,
                    || {},
                    |_, _| {},
                    parking::DEFAULT_PARK_TOKEN,
                    if expired { None } else { deadline },
                )
            };
            // Acquire: pairs with the waker's Release store (permits' history, `woken_at`).
            let state = node.state.load(Ordering::Acquire);
            if state != WAITING && res.is_unparked() {
                self.record_wake(node.woken_at.load(Ordering::Relaxed));
            }
            match state {
                GRANTED => return true,
                WOKEN => {
                    let give_up = expired || deadline.is_some_and(|d| now() >= d);
                    if self.compete(&node, seq, n, give_up) {
                        return true;
                    }
                    if give_up {
                        return false;
                    }
                }
                _ => {
                    if let parking::ParkResult::TimedOut = res {
                        match self.leave(seq) {
                            Leave::Left => return false,
                            // The wake-up is imminent: wait for it without a deadline.
                            Leave::Granted | Leave::WakePending => expired = true,
                        }
                    }
                }
            }
        }
    }
}

#[cold]
#[track_caller]
fn over_release() -> ! {
    panic!("semaphore: released more than held")
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.load(Ordering::Relaxed);
        f.debug_struct("Semaphore")
            .field("size", &self.size)
            .field("available", &(state / ONE))
            .field("queued", &(state & QUEUED != 0))
            .field("open", &(state & OPEN != 0))
            .finish()
    }
}

/// Permits taken from a [`Semaphore`]; dropping the guard gives them back.
#[must_use = "dropping the permit releases it at once"]
#[clippy::has_significant_drop]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    n: usize,
}

impl SemaphorePermit<'_> {
    /// How many permits this guard holds.
    pub fn count(&self) -> usize {
        self.n
    }
    /// Keeps the permits taken without releasing them; give them back later with
    /// [`Semaphore::release`] (Go's manual `Release`).
    pub fn forget(self) {
        core::mem::forget(self)
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.n != 0 {
            self.sem.release(self.n);
        }
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("count", &self.n)
            .finish()
    }
}

/// Permits taken from an `Arc<Semaphore>`; dropping the guard gives them back.
#[must_use = "dropping the permit releases it at once"]
#[clippy::has_significant_drop]
pub struct OwnedSemaphorePermit {
    sem: Arc<Semaphore>,
    n: usize,
}

impl OwnedSemaphorePermit {
    /// How many permits this guard holds.
    pub fn count(&self) -> usize {
        self.n
    }
    /// The semaphore the permits came from.
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.sem
    }
    /// Keeps the permits taken without releasing them (see [`Semaphore::release`]).
    pub fn forget(mut self) {
        self.n = 0;
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        if self.n != 0 {
            self.sem.release(self.n);
        }
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("count", &self.n)
            .finish()
    }
}

/// The waiting half shared by [`Acquire`] and [`AcquireOwned`]. Contains the intrusive node, so
/// it must not move once queued (the futures are `!Unpin`).
struct AsyncWait {
    n: usize,
    /// `Some(seq)` while our node is (or may still be) in the queue.
    seq: Option<u64>,
    node: Node,
    _pin: PhantomPinned,
}

impl AsyncWait {
    fn new(n: usize) -> Self {
        AsyncWait {
            n,
            seq: None,
            node: Node::new(),
            _pin: PhantomPinned,
        }
    }

    /// Polls for the permits. `Ready(())` means `n` permits now belong to the caller.
    fn poll(self: Pin<&mut Self>, sem: &Semaphore, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: we never move out of `this`; the node stays where it is.
        let this = unsafe { self.get_unchecked_mut() };
        match this.seq {
            None => {
                if sem.try_take(this.n) {
                    return Poll::Ready(());
                }
                sem.check_fits(this.n);
                let ptr = NonNull::from(&this.node);
                let mut q = sem.lock_queue();
                match sem.take_or_enqueue(&mut q, this.n, ptr, false) {
                    Ok(()) => Poll::Ready(()),
                    Err(seq) => {
                        // SAFETY: the queue lock `q` is held.
                        unsafe { this.node.set_waker(cx.waker()) };
                        drop(q);
                        this.seq = Some(seq);
                        Poll::Pending
                    }
                }
            }
            Some(_) => {
                if this.node.granted() {
                    this.seq = None;
                    return Poll::Ready(());
                }
                let _q = sem.lock_queue();
                if this.node.granted() {
                    this.seq = None;
                    return Poll::Ready(());
                }
                // SAFETY: the queue lock `_q` is held.
                unsafe { this.node.set_waker(cx.waker()) };
                Poll::Pending
            }
        }
    }

    /// Called when the future is dropped: leaves the queue, or gives back permits that were
    /// granted after the last poll.
    fn cancel(&mut self, sem: &Semaphore) {
        if let Some(seq) = self.seq.take() {
            // leave() holds the lock while removing, so no granter can touch the node after.
            match sem.leave(seq) {
                Leave::Left => {}
                // Granted (node marked under the lock before leave could look): give back.
                Leave::Granted => sem.release(self.n),
                Leave::WakePending => unreachable!("tasks are never woken to compete"),
            }
        }
    }
}

/// Future returned by [`Semaphore::acquire_async`].
#[must_use = "futures do nothing unless polled"]
pub struct Acquire<'a> {
    sem: &'a Semaphore,
    wait: AsyncWait,
}

impl<'a> Future for Acquire<'a> {
    type Output = SemaphorePermit<'a>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `wait` is structurally pinned; `sem` is a plain reference.
        let this = unsafe { self.get_unchecked_mut() };
        let sem = this.sem;
        // SAFETY: `this.wait` is never moved while pinned (we only re-pin it in place).
        let wait = unsafe { Pin::new_unchecked(&mut this.wait) };
        wait.poll(sem, cx).map(|()| SemaphorePermit {
            sem,
            n: this.wait.n,
        })
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        self.wait.cancel(self.sem);
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire").field("n", &self.wait.n).finish()
    }
}

/// Future returned by [`Semaphore::acquire_owned_async`].
#[must_use = "futures do nothing unless polled"]
pub struct AcquireOwned {
    /// `None` once the permit has been handed out.
    sem: Option<Arc<Semaphore>>,
    wait: AsyncWait,
}

impl Future for AcquireOwned {
    type Output = OwnedSemaphorePermit;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `wait` is structurally pinned; `sem` is never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let sem = this
            .sem
            .as_ref()
            .expect("AcquireOwned polled after completion");
        // SAFETY: `this.wait` is never moved while pinned.
        let wait = unsafe { Pin::new_unchecked(&mut this.wait) };
        match wait.poll(sem, cx) {
            Poll::Ready(()) => {
                let sem = this.sem.take().expect("checked above");
                Poll::Ready(OwnedSemaphorePermit {
                    sem,
                    n: this.wait.n,
                })
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for AcquireOwned {
    fn drop(&mut self) {
        if let Some(sem) = &self.sem {
            self.wait.cancel(sem);
        }
    }
}

impl fmt::Debug for AcquireOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireOwned")
            .field("n", &self.wait.n)
            .finish()
    }
}
