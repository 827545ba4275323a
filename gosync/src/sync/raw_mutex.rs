//! The untyped lock behind [`Mutex`](super::Mutex): Go's `sync.Mutex` (barging normal mode,
//! bounded waits through direct handoff) retuned for OS threads, on a FIFO wait queue that
//! blocked threads and async tasks share.
//!
//! # The algorithm
//!
//! **Normal operation is Go's normal mode.** A thread that finds the lock free takes it, even
//! when others sleep (barging): the thread that is already running is the cheapest owner. A
//! thread that finds it held spins a little (multi-core only, and only while fewer waiters are
//! queued than there are CPUs: [`oversubscribed`]), then yields its time slice a few
//! times (the holder may be waiting for a CPU), then links itself into the wait queue and
//! sleeps. An unlock wakes the front waiter, which does *not* own the lock: it competes with
//! running threads, and if it loses it goes back to the *front* of the queue, since it has
//! already waited. While one thread is awake and competing (a spinner, or a woken waiter) the
//! `WOKEN` bit is set and unlocks wake nobody else.
//!
//! **Bounded waits come from rate-limited handoffs, not from a mode.** Go's starvation mode
//! hands the lock from every unlocker to the front waiter as soon as one waiter has waited
//! 1 ms, and stays in that mode until a waiter is served in under 1 ms. A goroutine handoff
//! costs ~100 ns; handing a lock to a sleeping OS thread costs a wake-up (several µs, much more
//! when threads outnumber cores), during which nobody runs under the lock. When threads
//! outnumber cores every wait exceeds 1 ms, so Go's rule would keep the lock in that mode for
//! good and run it at the speed of the scheduler (a convoy). Here handoffs are granted one at a
//! time, on a clock:
//!
//! - The front waiter becomes *due* when it has waited longer than the *patience* since it
//!   first queued **and** the last handoff is more than the *handoff interval* ago. The queue
//!   lock keeps that moment up to date in `fair_at`.
//! - A due front waiter is handed the lock directly: by the unlocker that was going to wake it,
//!   by the woken front waiter itself when it loses the race (as in Go: it sets `STARVING`
//!   while the lock is held, and the holder's unlock hands over), or — checked against the
//!   clock every few unlocks — by a holder whose unlocks wake nobody because a woken thread has
//!   not run yet (without this, a woken thread that waits for a CPU would stall the queue).
//! - A handoff passes ownership with the lock still taken (`LOCKED` or `STARVING`), so no
//!   running thread can take it meanwhile; `STARVING` ends with that handoff (no exit rule).
//!
//! So a waiter at position *k* of the queue waits about `patience + (k - 1) · interval` plus
//! hold times, while at most one wake-up per interval is paid with the lock idle. Go bounds a
//! wait by the queue ahead of it (its handoffs cost next to nothing); parking_lot bounds
//! nothing (its fair unlocks go to the front of a queue that a woken-and-lost waiter rejoins at
//! the back).
//!
//! # State layout
//!
//! `state: u32`
//!
//! | bits | name | meaning |
//! |---|---|---|
//! | 0 | `LOCKED` | the lock is held (by a thread, or by a waiter it was handed to that has not run yet) |
//! | 1 | `WOKEN` | a thread is awake and competing (a spinner or a woken waiter): unlocks wake nobody |
//! | 2 | `STARVING` | a handoff is requested: the holder's unlock hands the lock to the front waiter |
//! | 3..32 | waiters | waiters linked in the queue |
//!
//! `fair_at: u64`: when the current front waiter becomes due (nanoseconds on the crate clock;
//! `NEVER` with no waiter). Written under the queue lock; read without it by unlockers, for
//! whom a stale value only means an extra or a later check under the lock.
//!
//! Invariants:
//! - The waiter count equals the queue's length: both change together under the queue lock.
//! - `STARVING` is set (under the queue lock) only while the lock is held and a waiter is
//!   queued. The holder's unlock then clears `LOCKED` but nobody takes the lock while
//!   `STARVING` is set; the handoff (under the queue lock) clears `STARVING` and sets `LOCKED`
//!   for the receiver in one step. If the last waiter leaves on a timeout first, it clears
//!   `STARVING` and the lock is free.
//! - At most one thread owns `WOKEN`: it is set by an unlocker that wakes a waiter (on the
//!   waiter's behalf) or by a spinner when it was clear, and cleared only by its owner (when it
//!   takes the lock, queues, or gives up on a timeout).
//! - A thread queues only while the lock is held, and gives up `WOKEN` in the same atomic step
//!   that counts it as a waiter: whoever holds the lock will unlock and wake someone.
//!
//! # Tokens
//!
//! A waiter is woken with [`TOKEN_WOKEN`] (it owns `WOKEN` and must compete) or
//! [`TOKEN_HANDOFF`] (it owns the lock; the notifier already took it off the count); a waiter
//! moved from a `Cond` may also be woken with [`TOKEN_MOVED_WAKE`] (see below).
//!
//! # Waiters moved from a `Cond` (not in Go)
//!
//! A [`Cond`](crate::Cond) broadcast made while the mutex is held moves its waiting threads
//! into this queue ([`RawMutex::requeue_from`]) instead of waking them: counted as waiters in
//! the same step, as a queueing thread is. An unlock that wakes a moved waiter hands it
//! [`TOKEN_MOVED_WAKE`], not `TOKEN_WOKEN`, and leaves `WOKEN` clear: the moved waiter
//! competes as a newcomer (it spins, then queues again at the front), and the next unlock may
//! wake the next moved waiter before this one has run. A broadcast's batch is thus woken one
//! per unlock, overlapping their wake-ups, where the `WOKEN` rule would wake one per lock
//! handover. Moved waiters have no deadline and are never tasks.
//!
//! # Async waiters (not in Go)
//!
//! An async task waits in the same queue, with the same tokens ([`RawMutex::poll_lock`]): a
//! task is a waiter whose wake-up goes through its `Waker` instead of a thread unpark. It does
//! not spin (its thread belongs to the executor). A task woken with `TOKEN_WOKEN` owns `WOKEN`
//! until its next poll, where it takes the lock or queues again at the front. A lock future
//! dropped while queued leaves like a timed-out waiter; one dropped after it was notified and
//! before it was polled passes on what it was given: the lock (unlocks it) or `WOKEN` (hands it
//! back, as a timed-out woken thread does) ([`RawMutex::cancel_lock`]).
//!
//! # Timeouts (not in Go)
//!
//! A timed waiter whose deadline passes while it is queued unlinks itself under the queue lock
//! (taking itself off the count, and clearing `STARVING` if it was the last waiter). If it was
//! notified first, the notification wins: with a handoff it owns the lock; woken, it makes one
//! last attempt and, failing, hands back `WOKEN`.
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use crate::diag;
use crate::primitive::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::primitive::{multi_core, nanos, now, spin_loop, yield_now, Instant};

use super::wait_queue::{Kind, QueueGuard, WaitQueue, Waiter};

/// Event counters for tuning (`RUSTFLAGS="--cfg gosync_stats"` only).
#[cfg(gosync_stats)]
#[allow(missing_docs)]
pub mod stats {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    pub static C: [AtomicU64; 10] = [const { AtomicU64::new(0) }; 10];
    pub const NAMES: [&str; 10] = [
        "lock_slow",
        "yield",
        "enqueue",
        "requested",
        "wake",
        "handoff",
        "serve_due",
        "unlock_slow",
        "clock",
        "park",
    ];
    pub fn bump(i: usize) {
        C[i].fetch_add(1, Relaxed);
    }
    pub fn take() -> Vec<(&'static str, u64)> {
        NAMES
            .iter()
            .zip(C.iter())
            .map(|(n, c)| (*n, c.swap(0, Relaxed)))
            .collect()
    }
}
macro_rules! stat {
    ($i:expr) => {
        #[cfg(gosync_stats)]
        stats::bump($i);
    };
}

/// Bit 0: the lock is held.
pub(crate) const LOCKED: u32 = 1;
/// Bit 1: a thread is awake and competing; unlockers must not wake another one.
pub(crate) const WOKEN: u32 = 1 << 1;
/// Bit 2: a handoff to the front waiter is requested.
pub(crate) const STARVING: u32 = 1 << 2;
/// The waiter count lives in the bits above this shift.
pub(crate) const WAITER_SHIFT: u32 = 3;
const WAITER: u32 = 1 << WAITER_SHIFT;

/// `fair_at` when no waiter is queued.
const NEVER: u64 = u64::MAX;

/// A waiter becomes due for a handoff after waiting this long (Go's `starvationThresholdNs`).
pub(crate) const PATIENCE: Duration = Duration::from_millis(1);
/// At most one handoff per this interval; normal (barging) mode runs in between.
pub(crate) const HANDOFF_INTERVAL: Duration = Duration::from_micros(100);

/// Spin rounds of pause instructions per wake cycle (Go's `active_spin`). A round lasts about
/// a microsecond ([`spin_round_pauses`](crate::primitive::spin_round_pauses)), where Go's
/// `active_spin_cnt` counts 30 pauses whatever they cost.
const ACTIVE_SPIN: u32 = 4;
/// Handoffs are spaced by at least this many times their measured cost.
const HANDOFF_SPACING: u64 = 10;
/// Upper bound of the handoff spacing.
pub(crate) const MAX_HANDOFF_INTERVAL: Duration = Duration::from_millis(2);
/// Whether the lock's queue shows more contenders than spinning can serve: at least as
/// many waiters queued as there are CPUs. Go spins only while no other goroutine is waiting
/// to run; a thread cannot see the scheduler's run queue, and the lock's own queue stands in
/// for it. When it is this long, threads outnumber the CPUs, the holder may itself be waiting
/// for one, and a contender's spin would only keep a CPU from it: the contender yields
/// instead (the yield rounds follow as usual).
#[inline]
fn oversubscribed(state: u32) -> bool {
    (state >> WAITER_SHIFT) as usize >= crate::primitive::available_cpus()
}

/// Rounds of `yield_now` after the spin rounds, before queueing.
#[cfg(not(loom))]
const YIELD_ROUNDS: u32 = 6;
/// Under loom every spin round is already a yield: one more keeps the models small.
#[cfg(loom)]
const YIELD_ROUNDS: u32 = 1;
/// Rounds a waiter that requested a handoff polls for it before it sleeps.
#[cfg(not(loom))]
const HANDOFF_SPIN: u32 = 64;
/// None under loom: there a poll is a yield, and loom does not switch to a thread that yielded
/// while another one can run, so a polling waiter would never see its deadline pass before the
/// holder's handoff (the race `loom_mutex::starvation_handoff_races_timeout` must explore).
/// A poll that sees the token returns exactly what the sleeping path returns.
#[cfg(loom)]
const HANDOFF_SPIN: u32 = 0;

/// Token: woken, owns `WOKEN`, must compete for the lock.
pub(crate) const TOKEN_WOKEN: usize = 1;
/// Token: the lock was handed over; the receiver owns it.
pub(crate) const TOKEN_HANDOFF: usize = 2;
/// Token: a waiter moved here by a `Cond` broadcast was woken; it does not own `WOKEN` and
/// competes as a newcomer (so the next unlock may wake the next moved waiter at once).
pub(crate) const TOKEN_MOVED_WAKE: usize = 3;

/// What the queue lock protects besides the list.
pub(crate) struct Fairness {
    /// When the last handoff happened.
    last_handoff: Option<Instant>,
}

/// Go's mutex algorithm, retuned for threads, without the data. See the module docs.
///
/// Crate-internal: [`Cond`](crate::Cond) releases and re-acquires the lock behind a
/// `MutexGuard` through [`RawMutex::unlock`] / [`RawMutex::lock`].
pub(crate) struct RawMutex {
    /// `LOCKED | WOKEN | STARVING | waiters << 3`, see the module docs.
    state: AtomicU32,
    /// What a handoff has been costing: the time from the grant to the receiver running
    /// (nanoseconds, a moving average). Spaces the handoffs out.
    handoff_cost: AtomicU32,
    /// When the front waiter becomes due for a handoff (crate-clock nanoseconds, or `NEVER`).
    fair_at: AtomicU64,
    /// The sleeping waiters, FIFO (woken-and-lost waiters rejoin at the front).
    queue: WaitQueue<Fairness>,
    /// Per-lock statistics (feature `lock-stats`).
    #[cfg(feature = "lock-stats")]
    stats: super::lock_stats::LockCounters,
}

impl RawMutex {
    /// An unlocked mutex.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self {
            state: AtomicU32::new(0),
            handoff_cost: AtomicU32::new(0),
            fair_at: AtomicU64::new(NEVER),
            queue: WaitQueue::with_extra(Fairness { last_handoff: None }),
            #[cfg(feature = "lock-stats")]
            stats: super::lock_stats::LockCounters::new(),
        }
    }
    /// An unlocked mutex.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU32::new(0),
            handoff_cost: AtomicU32::new(0),
            fair_at: AtomicU64::new(NEVER),
            queue: WaitQueue::with_extra(Fairness { last_handoff: None }),
            #[cfg(feature = "lock-stats")]
            stats: super::lock_stats::LockCounters::new(),
        }
    }

    // ---- entry points (the only places that acquire or release) -------------------------

    /// Acquires the lock, blocking as long as needed.
    #[inline]
    pub(crate) fn lock(&self) {
        if let Err(old) =
            self.state
                .compare_exchange_weak(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
        {
            self.lock_contended(old);
        }
        #[cfg(feature = "lock-stats")]
        self.stats.acquired();
    }

    /// The lock was not plainly free: take it if it is free with waiters or a woken thread
    /// around (barging, as in Go), else go to the slow path.
    #[inline]
    fn lock_contended(&self, old: u32) {
        if old & (LOCKED | STARVING) == 0
            && self
                .state
                .compare_exchange_weak(old, old | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return;
        }
        self.lock_slow(None);
    }

    /// Tries to acquire the lock without blocking (Go's `TryLock`): fails if the lock is held
    /// (or being handed to a waiter), may barge past sleeping waiters otherwise.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let old = self.state.load(Ordering::Relaxed);
        if old & (LOCKED | STARVING) != 0 {
            return false;
        }
        let acquired = self
            .state
            .compare_exchange(old, old | LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        #[cfg(feature = "lock-stats")]
        if acquired {
            self.stats.acquired();
        }
        acquired
    }

    /// Acquires the lock, giving up after `timeout`. Returns whether the lock was acquired.
    #[inline]
    pub(crate) fn try_lock_for(&self, timeout: Duration) -> bool {
        if self
            .state
            .compare_exchange_weak(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            #[cfg(feature = "lock-stats")]
            self.stats.acquired();
            return true;
        }
        // A deadline too far away to represent means "no deadline".
        self.lock_slow_timed(now().checked_add(timeout))
    }

    /// Acquires the lock, giving up at `deadline` (`None`: never). Returns whether the lock
    /// was acquired. The same slow path as `try_lock_for`, with the deadline given directly
    /// (for `try_lock_until` and lock_api's `RawMutexTimed`); a deadline in the past makes one
    /// attempt.
    #[inline]
    pub(crate) fn try_lock_until(&self, deadline: Option<Instant>) -> bool {
        if self
            .state
            .compare_exchange_weak(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            #[cfg(feature = "lock-stats")]
            self.stats.acquired();
            return true;
        }
        self.lock_slow_timed(deadline)
    }

    /// Releases the lock.
    ///
    /// # Safety
    /// The lock must be held (by anyone: like Go's, the lock has no owner thread), and the caller
    /// must give up its access to the protected data. Unlocking an unlocked mutex panics with
    /// Go's message `sync: unlock of unlocked mutex`.
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        // Release: publishes the critical section to the next owner.
        let new = self
            .state
            .fetch_sub(LOCKED, Ordering::Release)
            .wrapping_sub(LOCKED);
        if new != 0 {
            self.unlock_slow(new);
            // Not a tail call: the caller's frame stays on the stack, so the contention
            // profiler sees who unlocked. (Emits no instruction; the fast path is unchanged.)
            core::sync::atomic::compiler_fence(Ordering::SeqCst);
        }
    }

    // ---- observation ------------------------------------------------------------------

    /// This lock's statistics (feature `lock-stats`), under `name`.
    #[cfg(feature = "lock-stats")]
    pub(crate) fn stats(&self, name: Option<&'static str>) -> super::lock_stats::LockStats {
        self.stats.snapshot(name)
    }

    /// The raw state word (for monitoring and tests; a snapshot).
    #[inline]
    pub(crate) fn state(&self) -> u32 {
        self.state.load(Ordering::Relaxed)
    }

    /// Whether the lock is held (or being handed to a waiter).
    #[inline]
    pub(crate) fn is_locked(&self) -> bool {
        self.state() & (LOCKED | STARVING) != 0
    }

    /// Whether a handoff to the front waiter is requested.
    #[inline]
    pub(crate) fn is_starving(&self) -> bool {
        self.state() & STARVING != 0
    }

    /// Waiters linked in the queue.
    #[inline]
    pub(crate) fn waiters(&self) -> usize {
        (self.state() >> WAITER_SHIFT) as usize
    }

    /// Whether a thread is awake and competing (spinner or woken waiter).
    #[inline]
    pub(crate) fn is_woken(&self) -> bool {
        self.state() & WOKEN != 0
    }

    // ---- lock slow path -----------------------------------------------------------------

    /// The contended path: [`lock_wait`](Self::lock_wait) between the diagnostics seam's
    /// contended points (the contention profiler sees the wait).
    #[cold]
    #[inline(never)]
    fn lock_slow(&self, deadline: Option<Instant>) -> bool {
        #[cfg(feature = "lock-stats")]
        let started = now();
        let wait = diag::contended_wait(self);
        let acquired = self.lock_wait(deadline);
        diag::contended_wait_ended(self, wait);
        #[cfg(feature = "lock-stats")]
        if acquired {
            self.stats
                .contended(Some(now().saturating_duration_since(started)));
        }
        acquired
    }

    /// [`lock_slow`](Self::lock_slow) for the timed entry points, which count their own
    /// acquisition (`lock` counts it once for both of its paths).
    #[inline]
    fn lock_slow_timed(&self, deadline: Option<Instant>) -> bool {
        let acquired = self.lock_slow(deadline);
        #[cfg(feature = "lock-stats")]
        if acquired {
            self.stats.acquired();
        }
        acquired
    }

    /// Go's `lockSlow`, plus a deadline. Returns whether the lock was acquired.
    #[inline]
    fn lock_wait(&self, deadline: Option<Instant>) -> bool {
        stat!(0);
        self.lock_wait_from(deadline, None, None, false)
    }

    /// The loop of [`lock_wait`](Self::lock_wait), entered fresh (`queued_node` `None`, not
    /// awake) or by a waiter that was moved into this queue by [`requeue_from`] and woken
    /// (`queued_node` is its node; `awoke` says whether it was woken with `TOKEN_WOKEN` and
    /// owns `WOKEN`, or with `TOKEN_MOVED_WAKE` and does not).
    ///
    /// [`requeue_from`]: Self::requeue_from
    #[inline]
    fn lock_wait_from(
        &self,
        deadline: Option<Instant>,
        queued_node: Option<&Waiter>,
        // When we started to wait: at the first yield, or when we first queued.
        mut since: Option<Instant>,
        // Whether we own WOKEN.
        mut awoke: bool,
    ) -> bool {
        // Created when we first queue (most slow paths succeed while spinning).
        let mut node_slot: Option<Waiter> = None;
        // Whether our node has been in the queue before (it goes back in at the front).
        let mut queued = queued_node.is_some();
        loop {
            if self.spin(&mut awoke, &mut since) {
                return true;
            }
            if deadline.is_some_and(|d| now() >= d) {
                // Out of time while awake: do not queue (again).
                return awoke && self.give_up_wake();
            }
            // Queue up (or take the lock if it came free meanwhile); gives up WOKEN.
            let requeue = queued;
            queued = true;
            let node = match queued_node {
                Some(node) => node,
                None => &*node_slot.get_or_insert_with(Waiter::new),
            };
            let spin = match self.enqueue(node, &mut since, awoke, requeue, Kind::Thread) {
                Enqueued::Acquired => return true,
                // We asked for the lock to be handed to us at the holder's next unlock: stay
                // awake for it a while, so the handoff costs no wake-up.
                Enqueued::Requested => HANDOFF_SPIN,
                Enqueued::Queued => 0,
            };
            match self
                .queue
                .wait(node, deadline, spin, |q| self.leave_queue(q))
            {
                None => return false,
                Some(TOKEN_HANDOFF) => {
                    self.record_handoff_cost(node);
                    return true;
                }
                Some(_) => {
                    // TOKEN_WOKEN: we own WOKEN; compete again.
                    awoke = true;
                    node.reset_token();
                }
            }
        }
    }

    /// Takes the lock if it is free; otherwise spins, then yields, while that is worth it.
    /// Returns whether it took the lock (then `WOKEN`, if we owned it, is cleared).
    #[inline]
    fn spin(&self, awoke: &mut bool, since: &mut Option<Instant>) -> bool {
        let mut iter = 0u32;
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            if old & (LOCKED | STARVING) == 0 {
                let new = if *awoke {
                    (old | LOCKED) & !WOKEN
                } else {
                    old | LOCKED
                };
                match self.state.compare_exchange_weak(
                    old,
                    new,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(current) => {
                        old = current;
                        continue;
                    }
                }
            }
            // Spin, then yield, while our own wait is short; a long wait queues (where handoffs
            // serve it). A pending handoff (STARVING) is waited out like a held lock: parking
            // behind it would pile every arriving thread into the queue while the receiver
            // wakes up.
            if iter >= ACTIVE_SPIN + YIELD_ROUNDS || !multi_core() {
                return false;
            }
            if iter >= ACTIVE_SPIN {
                let t = now();
                if t.saturating_duration_since(*since.get_or_insert(t)) > PATIENCE {
                    return false;
                }
            }
            // Tell unlockers not to wake a sleeper: we are awake and will take the lock.
            if !*awoke
                && old & WOKEN == 0
                && old >> WAITER_SHIFT != 0
                && self
                    .state
                    .compare_exchange_weak(old, old | WOKEN, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                *awoke = true;
            }
            if iter < ACTIVE_SPIN && !oversubscribed(old) {
                for _ in 0..crate::primitive::spin_round_pauses() {
                    spin_loop();
                }
            } else {
                stat!(1);
                yield_now();
            }
            iter += 1;
            old = self.state.load(Ordering::Relaxed);
        }
    }

    /// Links `node` into the queue (at the front if it has queued before), counting it as a
    /// waiter and giving up `WOKEN` in the same step; or takes the lock if it is free now. If
    /// the front waiter is due, requests a handoff (`STARVING`) in that same step.
    fn enqueue(
        &self,
        node: &Waiter,
        since: &mut Option<Instant>,
        awoke: bool,
        requeue: bool,
        kind: Kind<'_>,
    ) -> Enqueued {
        let mut q = self.queue.lock();
        let now = now();
        let since = *since.get_or_insert(now);
        // The front after we link: us (requeue, or an empty queue) or the current front.
        let front_since = match q.front() {
            // SAFETY: `front` is linked in this queue.
            Some(front) if !requeue => unsafe { q.since(front) }.unwrap_or(since),
            _ => since,
        };
        let due = nanos(now) >= self.due_time(&mut q, front_since);
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            if old & (LOCKED | STARVING) == 0 {
                let new = if awoke {
                    (old | LOCKED) & !WOKEN
                } else {
                    old | LOCKED
                };
                match self.state.compare_exchange_weak(
                    old,
                    new,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Enqueued::Acquired,
                    Err(current) => {
                        old = current;
                        continue;
                    }
                }
            }
            let mut new = old + WAITER;
            if awoke {
                if old & WOKEN == 0 {
                    inconsistent();
                }
                new &= !WOKEN;
            }
            // The lock is held here (LOCKED, or a handoff in flight).
            if due {
                new |= STARVING;
            }
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    #[cfg(feature = "lock-stats")]
                    if new & !old & STARVING != 0 {
                        self.stats.starvation_entry();
                    }
                    break;
                }
                Err(current) => old = current,
            }
        }
        q.set_since(node, Some(since));
        // SAFETY: `node` lives on this thread's stack until `wait` returns, which is after it
        // has been notified or has unlinked itself (or, for a task, in its pinned future until
        // `poll_lock` saw the notification or `cancel_lock` withdrew it).
        unsafe {
            if requeue {
                q.push_front(node, kind);
            } else {
                q.push_back(node, kind);
            }
        }
        self.update_fair_at(&mut q);
        stat!(2);
        if due && requeue {
            stat!(3);
        }
        if due && requeue {
            Enqueued::Requested
        } else {
            Enqueued::Queued
        }
    }

    /// A timed-out waiter has been unlinked (queue lock held): take it off the count, and end a
    /// requested handoff if nobody is left to receive it.
    fn leave_queue(&self, q: &mut QueueGuard<'_, Fairness>) {
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            if old >> WAITER_SHIFT == 0 {
                inconsistent();
            }
            let mut new = old - WAITER;
            if q.is_empty() {
                new &= !STARVING;
            }
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(current) => old = current,
            }
        }
        self.update_fair_at(q);
    }

    /// A woken thread whose deadline has passed: take the lock if it is free, else hand back
    /// `WOKEN` (in the same CAS, so an unlock in between cannot be missed) and fail.
    fn give_up_wake(&self) -> bool {
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            if old & WOKEN == 0 {
                inconsistent();
            }
            let (new, acquired) = if old & (LOCKED | STARVING) == 0 {
                ((old | LOCKED) & !WOKEN, true)
            } else {
                (old & !WOKEN, false)
            };
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return acquired,
                Err(current) => old = current,
            }
        }
    }

    // ---- Cond's requeue -------------------------------------------------------------------

    /// `Cond::broadcast` (the `Cond`'s queue lock held, `from`): moves every waiter of `from`
    /// to the back of this mutex's queue, as sleeping lock waiters, instead of waking them all
    /// to fight for the lock. Only if the lock is held (or being handed over) right now: its
    /// unlock then wakes them one at a time, as any waiters. Returns how many moved: all of
    /// them, or 0 if the lock is free (the caller wakes them instead).
    ///
    /// Every node of `from` must be a thread blocked in `WaitQueue::wait` on `from` without a
    /// deadline (so it never unlinks itself from `from`), that hands the token it receives to
    /// [`lock_requeued`](Self::lock_requeued), and that waits with this mutex.
    pub(crate) fn requeue_from<E>(&self, from: &mut QueueGuard<'_, E>) -> usize {
        let n = from.len();
        let Some(add) = u32::try_from(n).ok().and_then(|n| n.checked_mul(WAITER)) else {
            return 0;
        };
        if add == 0 {
            return 0;
        }
        let mut q = self.queue.lock();
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            // A free lock has nobody to wake the moved waiters: the caller wakes them.
            if old & (LOCKED | STARVING) == 0 {
                return 0;
            }
            let Some(new) = old.checked_add(add) else {
                return 0;
            };
            // Counted in while the lock is held, as `enqueue` counts a waiter in: the holder's
            // unlock sees them. The count and the queue change together under the queue lock.
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(current) => old = current,
            }
        }
        let moved = from.move_all_to(&mut q, Some(now()));
        debug_assert_eq!(moved, n);
        self.update_fair_at(&mut q);
        n
    }

    /// A waiter moved here by [`requeue_from`](Self::requeue_from) was notified with `token`
    /// (its node, `node`, is no longer linked): finish acquiring the lock. With a handoff it
    /// owns the lock; woken, it owns `WOKEN` and competes as any woken waiter (profiled as a
    /// contended wait).
    pub(crate) fn lock_requeued(&self, node: &Waiter, token: usize) {
        if token == TOKEN_HANDOFF {
            self.record_handoff_cost(node);
            #[cfg(feature = "lock-stats")]
            self.count_moved_acquired();
            return;
        }
        debug_assert!(token == TOKEN_WOKEN || token == TOKEN_MOVED_WAKE);
        let wait = diag::contended_wait(self);
        // Its patience counts from when it moved here.
        let since = node.since_after_notify();
        node.reset_token();
        let awoke = token == TOKEN_WOKEN;
        let acquired = self.lock_wait_from(None, Some(node), since, awoke);
        debug_assert!(acquired);
        diag::contended_wait_ended(self, wait);
        #[cfg(feature = "lock-stats")]
        self.count_moved_acquired();
    }

    /// A moved waiter holds the lock now: one contended acquisition (feature `lock-stats`;
    /// its wait began as a `Cond` wait, so it is not timed).
    #[cfg(feature = "lock-stats")]
    fn count_moved_acquired(&self) {
        self.stats.acquired();
        self.stats.contended(None);
    }

    // ---- async acquire ------------------------------------------------------------------

    /// Polls an async acquire (see the module docs): `Ready(())` once the caller holds the
    /// lock. `w` must be polled with this same mutex each time; when the future that owns it
    /// is dropped before completing, it must call [`cancel_lock`](Self::cancel_lock).
    pub(crate) fn poll_lock(&self, w: Pin<&mut AsyncLock>, cx: &mut Context<'_>) -> Poll<()> {
        let poll = self.poll_lock_inner(w, cx);
        #[cfg(feature = "lock-stats")]
        if let Poll::Ready(()) = poll {
            self.stats.acquired();
        }
        poll
    }

    #[inline]
    fn poll_lock_inner(&self, w: Pin<&mut AsyncLock>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the node is never moved out of the pinned `AsyncLock`.
        let w = unsafe { w.get_unchecked_mut() };
        let mut awoke = false;
        if w.linked {
            match self.queue.poll_wait(&w.node, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(TOKEN_HANDOFF) => {
                    w.linked = false;
                    self.record_handoff_cost(&w.node);
                    #[cfg(feature = "lock-stats")]
                    self.stats.contended(None);
                    return Poll::Ready(());
                }
                Poll::Ready(_) => {
                    // TOKEN_WOKEN: we own WOKEN; compete, or queue again at the front.
                    w.linked = false;
                    w.node.reset_token();
                    awoke = true;
                }
            }
        }
        if self.take_if_free(awoke) {
            #[cfg(feature = "lock-stats")]
            if w.queued {
                self.stats.contended(None);
            }
            return Poll::Ready(());
        }
        let requeue = w.queued;
        match self.enqueue(
            &w.node,
            &mut w.since,
            awoke,
            requeue,
            Kind::Task(cx.waker()),
        ) {
            Enqueued::Acquired => {
                #[cfg(feature = "lock-stats")]
                if requeue {
                    self.stats.contended(None);
                }
                Poll::Ready(())
            }
            Enqueued::Queued | Enqueued::Requested => {
                w.linked = true;
                w.queued = true;
                Poll::Pending
            }
        }
    }

    /// Withdraws an async acquire whose future is dropped before it completed. Whatever was
    /// given to it after its last poll is passed on: a handed-over lock is unlocked, a wake-up
    /// (`WOKEN`) is handed back.
    pub(crate) fn cancel_lock(&self, w: &mut AsyncLock) {
        if !w.linked {
            return;
        }
        w.linked = false;
        match self.queue.cancel(&w.node, |q| self.leave_queue(q)) {
            None => {}
            // SAFETY: the handoff made us the owner; we give the lock up unused.
            Some(TOKEN_HANDOFF) => unsafe { self.unlock() },
            // The lock was free: taking it with WOKEN's hand-back is the one step that cannot
            // miss an unlock; unlocking wakes the next waiter.
            // SAFETY: `give_up_wake` returned true: we just took the lock.
            Some(_) if self.give_up_wake() => unsafe { self.unlock() },
            Some(_) => {}
        }
    }

    /// Takes the lock if it is free (clearing `WOKEN` if we own it). No spinning.
    #[inline]
    fn take_if_free(&self, awoke: bool) -> bool {
        let mut old = self.state.load(Ordering::Relaxed);
        while old & (LOCKED | STARVING) == 0 {
            let new = if awoke {
                (old | LOCKED) & !WOKEN
            } else {
                old | LOCKED
            };
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(current) => old = current,
            }
        }
        false
    }

    // ---- unlock slow path ---------------------------------------------------------------

    /// Go's `unlockSlow`: `new` is the state right after clearing `LOCKED`.
    #[cold]
    #[inline(never)]
    fn unlock_slow(&self, new: u32) {
        stat!(7);
        if new.wrapping_add(LOCKED) & LOCKED == 0 {
            panic!("sync: unlock of unlocked mutex");
        }
        // Waiters or a woken thread. The mutex profile charges the unlock that hands the lock
        // over or wakes a waiter (as Go charges the unlocker that readies one) with the
        // waiting since the previous charge: taken before the wake-up, recorded after it, so
        // that the stack capture delays nobody. An unlock that finds someone already awake
        // is not charged (the lock's next waking unlock is).
        let charge = diag::contended_unlock_if(self, || {
            let old = self.state.load(Ordering::Relaxed);
            new & STARVING != 0
                || (old >> WAITER_SHIFT != 0 && old & (LOCKED | WOKEN | STARVING) == 0)
        });
        self.pass_on(new);
        charge.record();
    }

    /// The rest of [`unlock_slow`](Self::unlock_slow): hand the lock over (starvation mode)
    /// or wake a waiter to compete for it, as Go's `unlockSlow` does.
    #[inline(always)]
    fn pass_on(&self, new: u32) {
        if new & STARVING != 0 && self.handoff() {
            return;
        }
        let old = self.state.load(Ordering::Relaxed);
        if old >> WAITER_SHIFT == 0 || old & STARVING != 0 {
            return;
        }
        if old & (LOCKED | WOKEN) == 0 {
            self.wake_one();
        } else if clock_check_due() && {
            stat!(8);
            nanos(now()) >= self.fair_at.load(Ordering::Relaxed)
        } {
            // Someone is awake (or took the lock again), so Go would stop here. But a woken
            // thread that waits for a CPU must not stall the queue: now and then, check the
            // clock and serve a due front waiter anyway.
            self.serve_due();
        }
    }

    /// The holder unlocked while a handoff was requested: pass the lock to the front waiter
    /// (`LOCKED` is clear and `STARVING` set, so nobody else takes it meanwhile). Returns
    /// `false` if the request vanished first (its last waiter left on a timeout; the lock is
    /// then simply free).
    fn handoff(&self) -> bool {
        let mut q = self.queue.lock();
        // Under the queue lock neither the count nor STARVING can change.
        if self.state.load(Ordering::Relaxed) & STARVING == 0 {
            return false;
        }
        let Some(front) = q.front() else {
            inconsistent();
        };
        // LOCKED for the receiver, which is no longer a waiter; the request is served. The
        // receiver synchronises with us through its token (stored with Release).
        self.state.fetch_add(
            LOCKED.wrapping_sub(WAITER).wrapping_sub(STARVING),
            Ordering::Relaxed,
        );
        self.hand_to(&mut q, front);
        true
    }

    /// After an unlock that found waiters and nobody awake: wake the front waiter to compete
    /// (Go's normal mode). If it is due and loses, it asks for a handoff and stays awake for
    /// it, so the handoff costs no wake-up.
    fn wake_one(&self) {
        let mut q = self.queue.lock();
        let Some(front) = q.front() else {
            return;
        };
        // SAFETY: `front` is linked in this queue.
        let moved = unsafe { q.was_moved(front) };
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            // Someone else is awake now, a handoff is requested, or the lock was taken again
            // (as in Go: whoever took it wakes someone when it unlocks).
            if old >> WAITER_SHIFT == 0 || old & (LOCKED | WOKEN | STARVING) != 0 {
                return;
            }
            // The front waiter owns WOKEN until it takes the lock or queues again. A moved
            // waiter does not: the next unlock wakes the next one (a broadcast's batch is
            // woken one per unlock, not one per lock handover).
            let new = if moved {
                old - WAITER
            } else {
                (old - WAITER) | WOKEN
            };
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(current) => old = current,
            }
        }
        stat!(4);
        // SAFETY: `front` is linked in this queue.
        unsafe { q.notify(front, if moved { TOKEN_MOVED_WAKE } else { TOKEN_WOKEN }) };
        self.update_fair_at(&mut q);
    }

    /// A due front waiter found by the clock check: hand it the lock if it is free, or request
    /// the handoff from whoever holds it. `WOKEN` is left to its owner.
    #[cold]
    fn serve_due(&self) {
        stat!(6);
        let mut q = self.queue.lock();
        let Some(front) = q.front() else {
            return;
        };
        if nanos(now()) < self.fair_at.load(Ordering::Relaxed) {
            return;
        }
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            if old & STARVING != 0 {
                return;
            }
            let new = if old & LOCKED == 0 {
                (old | LOCKED) - WAITER
            } else {
                old | STARVING
            };
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => {
                    // A due waiter served by the clock: a starvation entry either way.
                    #[cfg(feature = "lock-stats")]
                    self.stats.starvation_entry();
                    if old & LOCKED == 0 {
                        self.hand_to(&mut q, front);
                    }
                    return;
                }
                Err(current) => old = current,
            }
        }
    }

    /// Hands the lock to `front` (the state already counts it as the owner, not a waiter).
    fn hand_to(&self, q: &mut QueueGuard<'_, Fairness>, front: core::ptr::NonNull<Waiter>) {
        stat!(5);
        #[cfg(feature = "lock-stats")]
        self.stats.handoff();
        let now = now();
        q.extra().last_handoff = Some(now);
        // The receiver measures the handoff's cost from this moment.
        // SAFETY: `front` is linked in this queue.
        unsafe { q.set_since_of(front, Some(now)) };
        // SAFETY: `front` is linked in this queue.
        unsafe { q.notify(front, TOKEN_HANDOFF) };
        self.update_fair_at(q);
    }

    // ---- fairness clock -----------------------------------------------------------------

    /// When a front waiter that started waiting at `front_since` becomes due (queue lock held).
    fn due_time(&self, q: &mut QueueGuard<'_, Fairness>, front_since: Instant) -> u64 {
        let waited = nanos(front_since).saturating_add(PATIENCE.as_nanos() as u64);
        let spaced = q
            .extra()
            .last_handoff
            .map_or(0, |t| nanos(t).saturating_add(self.handoff_interval()));
        waited.max(spaced)
    }

    /// The minimum time between two handoffs: `HANDOFF_SPACING` times what a handoff has been
    /// costing, so that the lock is idle for handoffs at most `1 / HANDOFF_SPACING` of the
    /// time, within `[HANDOFF_INTERVAL, MAX_HANDOFF_INTERVAL]`.
    fn handoff_interval(&self) -> u64 {
        let cost = u64::from(self.handoff_cost.load(Ordering::Relaxed));
        (cost * HANDOFF_SPACING).clamp(
            HANDOFF_INTERVAL.as_nanos() as u64,
            MAX_HANDOFF_INTERVAL.as_nanos() as u64,
        )
    }

    /// The receiver of a handoff reports how long it took to get going.
    fn record_handoff_cost(&self, node: &Waiter) {
        let Some(granted) = node.since_after_notify() else {
            return;
        };
        let took =
            u32::try_from(now().saturating_duration_since(granted).as_nanos()).unwrap_or(u32::MAX);
        let old = self.handoff_cost.load(Ordering::Relaxed);
        // A moving average over about 4 handoffs (receivers are serialised by the lock).
        let new = old - old / 4 + took / 4;
        self.handoff_cost.store(new, Ordering::Relaxed);
    }

    /// Recomputes `fair_at` for the current front (queue lock held).
    fn update_fair_at(&self, q: &mut QueueGuard<'_, Fairness>) {
        let at = match q.front() {
            // SAFETY: `front` is linked in this queue.
            Some(front) => match unsafe { q.since(front) } {
                Some(since) => self.due_time(q, since),
                None => NEVER,
            },
            None => NEVER,
        };
        self.fair_at.store(at, Ordering::Relaxed);
    }
}

/// An async acquire's place in a [`RawMutex`]'s queue: lives (pinned) inside the lock
/// future. See [`RawMutex::poll_lock`] and [`RawMutex::cancel_lock`].
pub(crate) struct AsyncLock {
    node: Waiter,
    /// Linked in the queue, waiting for a token.
    linked: bool,
    /// Has queued before (goes back in at the front, as a woken thread does).
    queued: bool,
    /// When it first queued (its place in the fairness clock).
    since: Option<Instant>,
}

impl AsyncLock {
    /// A waiter that has not queued.
    #[inline]
    pub(crate) fn new() -> Self {
        AsyncLock {
            node: Waiter::new(),
            linked: false,
            queued: false,
            since: None,
        }
    }
}

/// Result of [`RawMutex::enqueue`].
enum Enqueued {
    /// The lock came free; we took it instead of queueing.
    Acquired,
    /// Linked into the queue; sleep.
    Queued,
    /// Linked at the front with a handoff requested: it comes at the holder's unlock.
    Requested,
}

/// Whether this unlock should look at the clock (one unlock in sixteen per thread: reading the
/// clock costs more than the rest of a contended unlock).
#[cfg(not(loom))]
#[inline]
fn clock_check_due() -> bool {
    std::thread_local!(static TICK: core::cell::Cell<u8> = const { core::cell::Cell::new(0) });
    TICK.with(|t| {
        let v = t.get().wrapping_add(1);
        t.set(v);
        v % 16 == 0
    })
}
#[cfg(loom)]
fn clock_check_due() -> bool {
    true
}

impl core::fmt::Debug for RawMutex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.state();
        f.debug_struct("RawMutex")
            .field("locked", &(s & LOCKED != 0))
            .field("woken", &(s & WOKEN != 0))
            .field("starving", &(s & STARVING != 0))
            .field("waiters", &(s >> WAITER_SHIFT))
            .finish()
    }
}

#[cold]
#[inline(never)]
fn inconsistent() -> ! {
    panic!("sync: inconsistent mutex state")
}
