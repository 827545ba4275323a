//! The untyped lock behind [`Mutex`](super::Mutex): Go's `sync.Mutex` algorithm on a state
//! word plus a semaphore built on address-keyed parking.
//!
//! # The algorithm (Go's, restated)
//!
//! The mutex has two modes.
//!
//! **Normal mode.** Waiters queue in FIFO order, but a waiter that is woken does not own the
//! lock: it competes with threads that are arriving right now, and those usually win because
//! they are already running. A woken waiter that loses is queued at the *front* of the queue
//! (LIFO re-queue), since it has already waited. A thread that finds the lock held may spin a
//! few rounds first (at most 4 rounds of 30 pause instructions, only on a multi-core machine,
//! only in normal mode); while spinning it sets the *woken* bit so that an unlocker does not
//! wake a sleeper needlessly.
//!
//! **Starvation mode.** When a waiter has waited more than 1 ms for the lock, it switches the
//! mutex to starvation mode. Then the unlocker hands ownership directly to the waiter at the
//! front of the queue; arriving threads neither try to take the lock nor spin, they queue at
//! the tail. The waiter that receives the lock switches back to normal mode if it is the last
//! waiter or if it waited less than 1 ms (the *exit rule*).
//!
//! Normal mode is much faster (a thread can take the lock many times in a row although others
//! wait); starvation mode bounds how long any waiter waits.
//!
//! # State layout
//!
//! `state: u32`
//!
//! | bits | name | meaning |
//! |---|---|---|
//! | 0 | `LOCKED` | the lock is held (in starvation mode it is clear during a handoff, see below) |
//! | 1 | `WOKEN` | a thread is awake and competing for the lock (a spinner or a woken waiter): unlockers must not wake another one |
//! | 2 | `STARVING` | starvation mode: unlock hands ownership to the front waiter |
//! | 3..32 | waiters | threads registered as waiting and not yet claimed by an unlocker |
//!
//! `sema: u32`: Go's `sema`, a counting semaphore. Each unit is a wake-up an unlocker has granted
//! and no waiter has consumed yet. In normal mode the unlocker takes one waiter off the count
//! (and sets `WOKEN`) before releasing a unit; in starvation mode it releases a unit without
//! touching the count, and the waiter that takes the unit owns the lock and fixes the state up
//! (sets `LOCKED`, takes itself off the count, maybe leaves starvation mode).
//!
//! `requeued: u32`: how many threads are parked on the *front* key (waiters that already waited
//! once). Changed only while that key's queue is locked, so it is exact there.
//!
//! Invariants:
//! - At most one thread owns `WOKEN` (it is set by an unlocker granting a wake-up, or by a
//!   spinner when it was clear, and cleared only by the thread that owns it).
//! - `STARVING` is set only while the lock is held and only with waiters; it is cleared by the
//!   waiter that receives the lock (exit rule) or by the last waiter leaving on a timeout.
//! - In starvation mode `LOCKED` clear means "ownership is being handed off", not "free".
//!
//! # Parking
//!
//! Waiters sleep on two `parking_lot_core` keys inside this struct: the *back* key (first-time
//! waiters, FIFO) and the *front* key (re-queued waiters). A release wakes the newest thread on
//! the front key if there is one, else the oldest on the back key, which is exactly the order of
//! Go's semaphore queue with its `lifo` flag.
//!
//! # Timeouts (not in Go)
//!
//! `try_lock_for` parks with a deadline. A waiter whose park times out either finds a wake-up
//! unit that an unlocker granted meanwhile (it takes it and behaves as a woken waiter, making
//! one last attempt) or takes itself off the waiter count (clearing `STARVING` if it was the last
//! waiter); it never leaves while a starvation handoff is in flight.
use core::time::Duration;

use crate::primitive::atomic::{fence, AtomicU32, Ordering};
use crate::primitive::parking::{
    self, FilterOp, ParkResult, UnparkResult, UnparkToken, DEFAULT_PARK_TOKEN,
};
use crate::primitive::{multi_core, now, spin_loop, yield_now, Instant};

/// Bit 0: the lock is held.
pub(crate) const LOCKED: u32 = 1;
/// Bit 1: a thread is awake and competing; unlockers must not wake another one.
pub(crate) const WOKEN: u32 = 1 << 1;
/// Bit 2: starvation mode (direct handoff).
pub(crate) const STARVING: u32 = 1 << 2;
/// The waiter count lives in the bits above this shift.
pub(crate) const WAITER_SHIFT: u32 = 3;
const WAITER: u32 = 1 << WAITER_SHIFT;

/// A waiter that waited longer than this switches the mutex to starvation mode (Go: 1e6 ns).
pub(crate) const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);
/// Spin rounds per wake cycle (Go's `active_spin`).
const ACTIVE_SPIN: u32 = 4;
/// Pause instructions per spin round (Go's `active_spin_cnt`).
#[cfg(not(loom))]
const ACTIVE_SPIN_CNT: u32 = 30;
#[cfg(loom)]
const ACTIVE_SPIN_CNT: u32 = 1;

/// Unpark token: the semaphore unit was transferred to the woken thread (starvation handoff).
const TOKEN_HANDOFF: UnparkToken = UnparkToken(1);
/// Unpark token: woken, the thread must take a unit itself.
const TOKEN_NORMAL: UnparkToken = UnparkToken(0);

/// Go's mutex algorithm without the data. See the module docs for the state layout.
///
/// Crate-internal: [`Cond`](crate::Cond) releases and re-acquires the lock behind a
/// `MutexGuard` through [`RawMutex::unlock`] / [`RawMutex::lock`]. Any deadlock-detection hook
/// belongs in those three entry points (`lock`, `try_lock`/`try_lock_for`, `unlock`) only.
pub(crate) struct RawMutex {
    /// `LOCKED | WOKEN | STARVING | waiters << 3`, see the module docs.
    state: AtomicU32,
    /// Go's `sema`: granted and not yet consumed wake-ups (or, in starvation mode, handoffs).
    sema: AtomicU32,
    /// Threads parked on the front key; modified only under that key's queue lock.
    requeued: AtomicU32,
}

/// Outcome of a semaphore acquire with a deadline.
enum Sema {
    /// A unit was taken.
    Acquired,
    /// The deadline passed before a unit could be taken.
    TimedOut,
}

impl RawMutex {
    /// An unlocked mutex.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self {
            state: AtomicU32::new(0),
            sema: AtomicU32::new(0),
            requeued: AtomicU32::new(0),
        }
    }
    /// An unlocked mutex.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU32::new(0),
            sema: AtomicU32::new(0),
            requeued: AtomicU32::new(0),
        }
    }

    // ---- entry points (the only places that acquire or release) -------------------------

    /// Acquires the lock, blocking as long as needed.
    ///
    /// Deadlock-detection hook point for "acquire" (and "about to block" in `lock_slow`).
    #[inline]
    pub(crate) fn lock(&self) {
        if self
            .state
            .compare_exchange_weak(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(None);
        }
    }

    /// Tries to acquire the lock without blocking (Go's `TryLock`): fails if the lock is held
    /// or in starvation mode, may barge past sleeping waiters otherwise.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let old = self.state.load(Ordering::Relaxed);
        if old & (LOCKED | STARVING) != 0 {
            return false;
        }
        self.state
            .compare_exchange(old, old | LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Acquires the lock, giving up after `timeout`. Returns whether the lock was acquired.
    #[inline]
    pub(crate) fn try_lock_for(&self, timeout: Duration) -> bool {
        if self
            .state
            .compare_exchange_weak(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return true;
        }
        // A deadline too far away to represent means "no deadline".
        self.lock_slow(now().checked_add(timeout))
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
            return true;
        }
        self.lock_slow(deadline)
    }

    /// Releases the lock.
    ///
    /// # Safety
    /// The lock must be held (by anyone: like Go's, the lock has no owner thread), and the caller
    /// must give up its access to the protected data. Unlocking an unlocked mutex panics with
    /// Go's message `sync: unlock of unlocked mutex` (the state is then corrupt).
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        // Release: publishes the critical section to the next owner.
        let new = self
            .state
            .fetch_sub(LOCKED, Ordering::Release)
            .wrapping_sub(LOCKED);
        if new != 0 {
            self.unlock_slow(new);
        }
    }

    // ---- observation ------------------------------------------------------------------

    /// The raw state word (for monitoring and tests; a snapshot).
    #[inline]
    pub(crate) fn state(&self) -> u32 {
        self.state.load(Ordering::Relaxed)
    }

    /// Whether the lock is held (or being handed off in starvation mode).
    #[inline]
    pub(crate) fn is_locked(&self) -> bool {
        self.state() & (LOCKED | STARVING) != 0
    }

    /// Whether the mutex is in starvation mode.
    #[inline]
    pub(crate) fn is_starving(&self) -> bool {
        self.state() & STARVING != 0
    }

    /// Registered waiters not yet claimed by an unlocker.
    #[inline]
    pub(crate) fn waiters(&self) -> usize {
        (self.state() >> WAITER_SHIFT) as usize
    }

    /// Whether a thread is awake and competing (spinner or woken waiter).
    #[inline]
    pub(crate) fn is_woken(&self) -> bool {
        self.state() & WOKEN != 0
    }

    // ---- slow paths ---------------------------------------------------------------------

    /// Go's `lockSlow`, plus an optional deadline. Returns whether the lock was acquired.
    #[cold]
    #[inline(never)]
    fn lock_slow(&self, deadline: Option<Instant>) -> bool {
        let mut wait_start: Option<Instant> = None;
        let mut starving = false;
        let mut awoke = false;
        // Set once the deadline passed while we hold a granted wake-up: one last try, then leave.
        let mut expired = false;
        let mut iter = 0u32;
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            // Spin only in normal mode while the lock is held: in starvation mode ownership goes
            // to the waiters anyway.
            if !expired && old & (LOCKED | STARVING) == LOCKED && can_spin(iter) {
                // Tell unlockers not to wake a sleeper: we will take the lock.
                if !awoke
                    && old & WOKEN == 0
                    && old >> WAITER_SHIFT != 0
                    && self
                        .state
                        .compare_exchange_weak(
                            old,
                            old | WOKEN,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                {
                    awoke = true;
                }
                do_spin();
                iter += 1;
                old = self.state.load(Ordering::Relaxed);
                continue;
            }
            if expired {
                return self.give_up_wake(old);
            }
            let mut new = old;
            // Never try to take a starving mutex: arriving threads queue.
            if old & STARVING == 0 {
                new |= LOCKED;
            }
            if old & (LOCKED | STARVING) != 0 {
                new += WAITER;
            }
            // Switch to starvation mode, but only while the lock is held: unlock expects a
            // starving mutex to have waiters.
            if starving && old & LOCKED != 0 {
                new |= STARVING;
            }
            if awoke {
                // We own WOKEN and must clear it.
                if new & WOKEN == 0 {
                    inconsistent();
                }
                new &= !WOKEN;
            }
            if let Err(current) =
                self.state
                    .compare_exchange_weak(old, new, Ordering::Acquire, Ordering::Relaxed)
            {
                old = current;
                continue;
            }
            if old & (LOCKED | STARVING) == 0 {
                return true; // took the lock with the CAS
            }
            // Registered as a waiter. A thread that already waited queues at the front.
            let lifo = wait_start.is_some();
            let start = *wait_start.get_or_insert_with(now);
            if let Sema::TimedOut = self.semacquire(lifo, deadline) {
                if !self.leave_after_timeout() {
                    return false;
                }
                // A wake-up was granted to us after all: behave as woken, but only once more.
                expired = true;
            }
            starving = starving || now().saturating_duration_since(start) > STARVATION_THRESHOLD;
            old = self.state.load(Ordering::Acquire);
            if old & STARVING != 0 {
                // Ownership was handed to us; the state is inconsistent until we fix it:
                // LOCKED is clear and we are still counted as a waiter.
                if old & (LOCKED | WOKEN) != 0 || old >> WAITER_SHIFT == 0 {
                    inconsistent();
                }
                let mut delta = LOCKED.wrapping_sub(WAITER);
                // Exit rule: leave starvation mode if we waited < 1 ms or are the last waiter.
                // (Staying in it when we are the last would let the next lock/unlock pair
                // hand off to nobody.)
                if !starving || old >> WAITER_SHIFT == 1 {
                    delta = delta.wrapping_sub(STARVING);
                }
                self.state.fetch_add(delta, Ordering::Acquire);
                return true;
            }
            awoke = true;
            iter = 0;
        }
    }

    /// A woken thread whose deadline has passed: take the lock if it is free, else hand back
    /// `WOKEN` (in the same CAS, so an unlock in between cannot be missed) and fail.
    fn give_up_wake(&self, mut old: u32) -> bool {
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

    /// After a timed-out park: returns `true` if we took a granted wake-up unit (we are now a
    /// woken waiter, or the handoff owner in starvation mode), `false` if we took ourselves
    /// off the waiter count.
    fn leave_after_timeout(&self) -> bool {
        loop {
            if self.cansemacquire() {
                return true;
            }
            let old = self.state.load(Ordering::Relaxed);
            // A starvation handoff is in flight (or a granted unit is about to appear): it may
            // be meant for us, so we cannot leave now. The releaser is mid-way; wait for it.
            if (old & STARVING != 0 && old & LOCKED == 0) || old >> WAITER_SHIFT == 0 {
                yield_now();
                continue;
            }
            let mut new = old - WAITER;
            if new >> WAITER_SHIFT == 0 {
                // Last waiter gone: a starving mutex must have waiters.
                new &= !STARVING;
            }
            if self
                .state
                .compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                return false;
            }
        }
    }

    /// Go's `unlockSlow`: `new` is the state right after clearing `LOCKED`.
    #[cold]
    #[inline(never)]
    fn unlock_slow(&self, new: u32) {
        if new.wrapping_add(LOCKED) & LOCKED == 0 {
            panic!("sync: unlock of unlocked mutex");
        }
        if new & STARVING != 0 {
            // Starvation mode: hand ownership to the front waiter. LOCKED stays clear; the
            // receiver sets it. Arriving threads see STARVING and queue.
            self.semrelease(true);
            // Go's semrelease then yields so the new owner runs at once on this CPU
            // (`goyield`); the closest a thread can do is give up its time slice.
            yield_now();
            return;
        }
        let mut old = new;
        loop {
            // Nobody to wake, or someone is already awake / took the lock / started starving.
            if old >> WAITER_SHIFT == 0 || old & (LOCKED | WOKEN | STARVING) != 0 {
                return;
            }
            // Claim the right to wake one waiter.
            let new = (old - WAITER) | WOKEN;
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.semrelease(false);
                    return;
                }
                Err(current) => old = current,
            }
        }
    }

    // ---- the semaphore (Go's runtime_SemacquireMutex / runtime_Semrelease) ----------------

    /// Key of the back queue (first-time waiters).
    #[inline]
    fn key_back(&self) -> usize {
        &self.sema as *const AtomicU32 as usize
    }

    /// Key of the front queue (waiters that already waited once).
    #[inline]
    fn key_front(&self) -> usize {
        &self.requeued as *const AtomicU32 as usize
    }

    /// Takes one unit if there is one.
    #[inline]
    fn cansemacquire(&self) -> bool {
        let mut v = self.sema.load(Ordering::Relaxed);
        while v != 0 {
            // Acquire: pairs with the Release in `semrelease`.
            match self
                .sema
                .compare_exchange_weak(v, v - 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(current) => v = current,
            }
        }
        false
    }

    /// Sleeps until a unit is taken (or the deadline passes). `lifo` queues at the front.
    fn semacquire(&self, lifo: bool, deadline: Option<Instant>) -> Sema {
        loop {
            if self.cansemacquire() {
                return Sema::Acquired;
            }
            let key = if lifo {
                self.key_front()
            } else {
                self.key_back()
            };
            let validate = || {
                if lifo {
                    self.requeued.fetch_add(1, Ordering::Relaxed);
                    // Pairs with the fence in `semrelease`: either we see its unit or it sees
                    // our `requeued` increment (it skips the front queue when that is 0).
                    fence(Ordering::SeqCst);
                }
                if self.sema.load(Ordering::Relaxed) != 0 {
                    if lifo {
                        self.requeued.fetch_sub(1, Ordering::Relaxed);
                    }
                    return false;
                }
                true
            };
            let timed_out = |_key: usize, _was_last: bool| {
                if lifo {
                    self.requeued.fetch_sub(1, Ordering::Relaxed);
                }
            };
            // SAFETY: `key` is the address of a field of `self`, which outlives the call; the
            // callbacks only touch atomics (no panics, no parking).
            let result = unsafe {
                parking::park(
                    key,
                    validate,
                    || {},
                    timed_out,
                    DEFAULT_PARK_TOKEN,
                    deadline,
                )
            };
            match result {
                ParkResult::Unparked(TOKEN_HANDOFF) => return Sema::Acquired,
                ParkResult::Unparked(_) | ParkResult::Invalid => {}
                ParkResult::TimedOut => return Sema::TimedOut,
            }
        }
    }

    /// Adds a unit and wakes the front waiter. With `handoff`, the unit goes straight to the
    /// woken thread (no one else can take it), as in Go's starvation mode.
    fn semrelease(&self, handoff: bool) {
        self.sema.fetch_add(1, Ordering::Release);
        // Pairs with the fence in `semacquire`'s validate for the front queue.
        fence(Ordering::SeqCst);
        let token = |result: &UnparkResult| {
            if handoff && result.unparked_threads != 0 && self.cansemacquire() {
                TOKEN_HANDOFF
            } else {
                TOKEN_NORMAL
            }
        };
        if self.requeued.load(Ordering::Relaxed) != 0 {
            // Wake the newest thread on the front queue (Go pushes re-queued waiters at the
            // head). `requeued` is exact while the queue is locked, i.e. inside the filter.
            let mut seen = 0u32;
            let mut count = 0u32;
            let filter = |_| {
                if seen == 0 {
                    count = self.requeued.load(Ordering::Relaxed);
                }
                seen += 1;
                if seen >= count {
                    FilterOp::Unpark
                } else {
                    FilterOp::Skip
                }
            };
            let callback = |result: UnparkResult| {
                if result.unparked_threads != 0 {
                    self.requeued.fetch_sub(1, Ordering::Relaxed);
                }
                token(&result)
            };
            // SAFETY: the key is a field of `self`; callbacks only touch atomics.
            let result = unsafe { parking::unpark_filter(self.key_front(), filter, callback) };
            if result.unparked_threads != 0 {
                return;
            }
        }
        // SAFETY: as above.
        unsafe { parking::unpark_one(self.key_back(), |result| token(&result)) };
    }
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

/// Go's `runtime_canSpin`, minus what only Go's scheduler knows (idle Ps, local run queue).
#[inline]
fn can_spin(iter: u32) -> bool {
    iter < ACTIVE_SPIN && multi_core()
}

/// Go's `runtime_doSpin`: `procyield(30)`.
#[inline]
fn do_spin() {
    for _ in 0..ACTIVE_SPIN_CNT {
        spin_loop();
    }
}

#[cold]
#[inline(never)]
fn inconsistent() -> ! {
    panic!("sync: inconsistent mutex state")
}
