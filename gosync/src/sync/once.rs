//! `Once` (Go's `sync.Once`), `TryOnce` (a Once that retries after a failure) and the state
//! machine both share with `OnceFunc`/`OnceValue`/`OnceValues`.

use std::fmt;

use crate::primitive::atomic::{AtomicU8, AtomicUsize, Ordering};
use crate::primitive::parking::{self, DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN};
use crate::primitive::thread_id;

// State machine of `RawOnce::state` (a `u8`):
//
// | value            | meaning                                                              |
// |------------------|----------------------------------------------------------------------|
// | `INCOMPLETE` (0) | nobody has finished the initializer (or, for `TryOnce`, every run so |
// |                  | far failed)                                                          |
// | `RUNNING`    (1) | one thread (`owner`) is running the initializer                     |
// | `RUNNING|QUEUED` | ... and at least one other thread is parked on `state`'s address     |
// | `DONE`       (4) | finished; never changes again. The fast path is one acquire load    |
// |                  | compared with this value.                                            |
// | `PANICKED`   (8) | finished by a panic, for the types that re-raise it (`OnceFunc`,     |
// |                  | `OnceValue`, `OnceValues`); final like `DONE`. `Once` stores `DONE`  |
// |                  | after a panic (Go's rule), `TryOnce` goes back to `INCOMPLETE`.      |
//
// INCOMPLETE → RUNNING (CAS by the thread that will run), RUNNING → RUNNING|QUEUED (CAS by a
// thread about to park), RUNNING[|QUEUED] → DONE, PANICKED or INCOMPLETE (swap by the runner
// when it finishes or fails; it wakes every parked thread if QUEUED was set). Woken threads
// start over: they return on DONE/PANICKED and compete to run again on INCOMPLETE.
//
// `owner` holds `thread_id()` of the running thread while the state is RUNNING (0 otherwise).
// It is only read to detect the one thing that would otherwise deadlock: the runner calling
// into the same once from inside its initializer. A thread compares it with its own id, and
// a thread always sees its own latest write, so `Relaxed` is enough.
const INCOMPLETE: u8 = 0;
const RUNNING: u8 = 1;
const QUEUED: u8 = 2;
const DONE: u8 = 4;
const PANICKED: u8 = 8;

/// The state machine behind every once-type in this crate.
pub(crate) struct RawOnce {
    state: AtomicU8,
    owner: AtomicUsize,
}

impl RawOnce {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self {
            state: AtomicU8::new(INCOMPLETE),
            owner: AtomicUsize::new(0),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU8::new(INCOMPLETE),
            owner: AtomicUsize::new(0),
        }
    }

    /// The fast path: one acquire load. Acquire pairs with the runner's release of `DONE`, so
    /// everything the initializer wrote is visible once this returns `true`.
    #[inline(always)]
    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }

    /// Whether the once is final: `DONE` or `PANICKED`.
    #[inline]
    pub(crate) fn is_finished(&self) -> bool {
        self.state.load(Ordering::Acquire) & (DONE | PANICKED) != 0
    }

    #[inline]
    fn key(&self) -> usize {
        &self.state as *const AtomicU8 as usize
    }

    /// Waits until the once is either done (returns `None`) or free to run, in which case this
    /// thread now owns the run and gets the guard that ends it (`Some`).
    ///
    /// `what` names the public method for the re-entrance panic.
    #[cold]
    #[track_caller]
    pub(crate) fn begin(&self, what: &'static str) -> Option<RunGuard<'_>> {
        let me = thread_id();
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            match state {
                DONE | PANICKED => return None,
                INCOMPLETE => {
                    match self.state.compare_exchange_weak(
                        INCOMPLETE,
                        RUNNING,
                        Ordering::Acquire,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => {
                            self.owner.store(me, Ordering::Relaxed);
                            return Some(RunGuard {
                                once: self,
                                complete: false,
                                panicked: false,
                            });
                        }
                        Err(actual) => state = actual,
                    }
                }
                _ => {
                    // RUNNING, maybe with QUEUED.
                    if self.owner.load(Ordering::Relaxed) == me {
                        reentered(what);
                    }
                    if state & QUEUED == 0 {
                        if let Err(actual) = self.state.compare_exchange_weak(
                            RUNNING,
                            RUNNING | QUEUED,
                            Ordering::Relaxed,
                            Ordering::Acquire,
                        ) {
                            state = actual;
                            continue;
                        }
                    }
                    let validate = || self.state.load(Ordering::Relaxed) == RUNNING | QUEUED;
                    // SAFETY: the key is the address of our own state byte; the callbacks
                    // touch only an atomic and never park or panic.
                    unsafe {
                        parking::park(
                            self.key(),
                            validate,
                            || {},
                            |_, _| {},
                            DEFAULT_PARK_TOKEN,
                            None,
                        );
                    }
                    state = self.state.load(Ordering::Acquire);
                }
            }
        }
    }
}

impl fmt::Debug for RawOnce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.state.load(Ordering::Acquire) {
            DONE => "done",
            PANICKED => "panicked",
            INCOMPLETE => "incomplete",
            _ => "running",
        };
        f.write_str(s)
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn reentered(what: &'static str) -> ! {
    panic!(
        "gosync: {what} called from inside its own initializer on the same thread; this can \
         never finish (Go's sync.Once deadlocks here). Do not call the same once from the \
         function it runs, directly or indirectly"
    )
}

/// Owns one run of the initializer. Dropping it ends the run: `DONE` if `complete` was set
/// (before the initializer was called, for Go's "a panic counts as done"; after it returned
/// successfully, for retrying types) — `PANICKED` instead if `panicked` is set too —
/// `INCOMPLETE` otherwise; then it wakes parked threads.
#[clippy::has_significant_drop]
pub(crate) struct RunGuard<'a> {
    once: &'a RawOnce,
    pub(crate) complete: bool,
    pub(crate) panicked: bool,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        let once = self.once;
        once.owner.store(0, Ordering::Relaxed);
        let next = match (self.complete, self.panicked) {
            (false, _) => INCOMPLETE,
            (true, false) => DONE,
            (true, true) => PANICKED,
        };
        // Release: publishes the initializer's writes to every thread that loads DONE.
        let prev = once.state.swap(next, Ordering::Release);
        if prev & QUEUED != 0 {
            // SAFETY: the key is the address of our own state byte; no callbacks.
            unsafe {
                parking::unpark_all(once.key(), DEFAULT_UNPARK_TOKEN);
            }
        }
    }
}

/// Runs a function exactly once: Go's `sync.Once`.
///
/// The first [`call_once`](Self::call_once) runs its function; every other call — concurrent
/// or later — waits until that run has finished and then returns without running its own.
///
/// ```
/// use gosync::Once;
///
/// static INIT: Once = Once::new();
/// static mut CONFIG: u32 = 0;
///
/// fn config() -> u32 {
///     // SAFETY: written only inside call_once, read only after it returned.
///     INIT.call_once(|| unsafe { CONFIG = 42 });
///     unsafe { CONFIG }
/// }
/// assert_eq!(config(), 42);
/// assert!(INIT.is_done());
/// ```
///
/// To initialise a value, [`OnceValue`](crate::OnceValue) (or `std::sync::OnceLock`) is the
/// safer shape.
///
/// # Go's rules, kept
///
/// - If `f` panics, the panic reaches the caller of that `call_once` and the `Once` counts as
///   done: later calls return without running anything. (Use [`TryOnce`] to retry instead.)
/// - A concurrent caller never returns before the running `f` has finished.
///
/// # Differences from Go
///
/// - Calling `call_once` on the same `Once` from inside its own `f` panics with a message that
///   names the problem; Go deadlocks. (A cycle through *another* thread is not detected.)
/// - [`is_done`](Self::is_done) answers "has it run?", which Go's `Once` cannot (the seed's
///   `extend_once`).
///
/// # Differences from `std::sync::Once`
///
/// std poisons the `Once` when `f` panics, and every later `call_once` panics; here a panic
/// counts as done, as in Go. std deadlocks on re-entrance; this one panics.
///
/// # State layout
///
/// One byte: `INCOMPLETE` 0 → `RUNNING` 1 (plus bit `QUEUED` 2 while other threads sleep on
/// it) → `DONE` 4, plus the running thread's id (for the re-entrance check). The fast path is
/// a single acquire load compared with `DONE`.
#[doc(alias = "sync.Once")]
pub struct Once {
    raw: RawOnce,
}

impl Once {
    /// A `Once` that has not run.
    #[cfg(not(loom))]
    #[must_use]
    pub const fn new() -> Self {
        Self {
            raw: RawOnce::new(),
        }
    }

    /// A `Once` that has not run.
    #[cfg(loom)]
    #[must_use]
    pub fn new() -> Self {
        Self {
            raw: RawOnce::new(),
        }
    }

    /// Runs `f` if no call has run yet; otherwise waits for the running call to finish and
    /// returns. Go's `Once.Do`.
    ///
    /// # Panics
    ///
    /// Propagates a panic of `f` (the `Once` is then done). Panics if called from inside its
    /// own `f`.
    #[doc(alias = "Do")]
    #[inline]
    #[track_caller]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if self.raw.is_done() {
            return;
        }
        self.call_slow(f);
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn call_slow<F: FnOnce()>(&self, f: F) {
        if let Some(mut run) = self.raw.begin("Once::call_once") {
            // Go: "if f panics, Do considers it to have returned".
            run.complete = true;
            f();
        }
    }

    /// Whether a `call_once` has finished (normally or by panicking). When this returns `true`,
    /// everything the function wrote is visible to the caller.
    #[must_use]
    #[inline]
    pub fn is_done(&self) -> bool {
        self.raw.is_done()
    }
}

impl Default for Once {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once").field("state", &self.raw).finish()
    }
}

/// A `Once` whose function may fail: after an `Err` (or a panic) it is not done, and the next
/// call tries again. The seed's "rewrite once".
///
/// Go's `sync.Once` counts a failed initialisation as done, so a connection that failed to
/// open stays failed forever. `TryOnce` only counts a run that returned `Ok(())`:
///
/// ```
/// use gosync::TryOnce;
///
/// let once = TryOnce::new();
/// assert_eq!(once.call_once(|| Err::<(), _>("network down")), Err("network down"));
/// assert!(!once.is_done());
/// assert_eq!(once.call_once(|| Ok::<(), &str>(())), Ok(()));
/// assert!(once.is_done());
/// // Done: later functions are not run.
/// assert_eq!(once.call_once(|| Err::<(), _>("not called")), Ok(()));
/// ```
///
/// Concurrent callers wait for the running attempt. If it succeeds they return `Ok(())`
/// without running their own function; if it fails one of them runs next. Exactly one
/// function ever returns `Ok` inside a `TryOnce`.
///
/// A panic in the function propagates to its caller and, unlike [`Once`], leaves the
/// `TryOnce` not done. Re-entrant calls panic as with [`Once`].
pub struct TryOnce {
    raw: RawOnce,
}

impl TryOnce {
    /// A `TryOnce` that has not succeeded yet.
    #[cfg(not(loom))]
    #[must_use]
    pub const fn new() -> Self {
        Self {
            raw: RawOnce::new(),
        }
    }

    /// A `TryOnce` that has not succeeded yet.
    #[cfg(loom)]
    #[must_use]
    pub fn new() -> Self {
        Self {
            raw: RawOnce::new(),
        }
    }

    /// Runs `f` unless an earlier call succeeded. Returns `Ok(())` if the `TryOnce` is done
    /// after this call (by this `f` or an earlier one) and `f`'s error if `f` ran and failed.
    #[doc(alias = "Do")]
    #[inline]
    #[track_caller]
    pub fn call_once<E, F: FnOnce() -> Result<(), E>>(&self, f: F) -> Result<(), E> {
        if self.raw.is_done() {
            return Ok(());
        }
        self.call_slow(f)
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn call_slow<E, F: FnOnce() -> Result<(), E>>(&self, f: F) -> Result<(), E> {
        match self.raw.begin("TryOnce::call_once") {
            None => Ok(()),
            Some(mut run) => {
                let result = f();
                run.complete = result.is_ok();
                result
            }
        }
    }

    /// Whether a call has succeeded.
    #[must_use]
    #[inline]
    pub fn is_done(&self) -> bool {
        self.raw.is_done()
    }
}

impl Default for TryOnce {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TryOnce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryOnce").field("state", &self.raw).finish()
    }
}
