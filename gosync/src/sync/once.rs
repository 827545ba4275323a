//! `Once` (Go's `sync.Once`), `TryOnce` (a Once that retries after a failure) and the state
//! machine both share with `OnceFunc`/`OnceValue`/`OnceValues`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::primitive::atomic::{AtomicU8, AtomicUsize, Ordering};
use crate::primitive::thread_id;

use super::wait_queue::{Kind, WaitQueue, Waiter};

// State machine of `RawOnce::state` (a `u8`):
//
// | value            | meaning                                                              |
// |------------------|----------------------------------------------------------------------|
// | `INCOMPLETE` (0) | nobody has finished the initializer (or, for `TryOnce`, every run so |
// |                  | far failed)                                                          |
// | `RUNNING`    (1) | one thread (`owner`) is running the initializer                     |
// | `RUNNING|QUEUED` | ... and at least one other thread or task may wait in `queue`        |
// | `DONE`       (4) | finished; never changes again. The fast path is one acquire load    |
// |                  | compared with this value.                                            |
// | `PANICKED`   (8) | finished by a panic, for the types that re-raise it (`OnceFunc`,     |
// |                  | `OnceValue`, `OnceValues`); final like `DONE`. `Once` stores `DONE`  |
// |                  | after a panic (Go's rule), `TryOnce` goes back to `INCOMPLETE`.      |
//
// INCOMPLETE → RUNNING (CAS by the thread that will run), RUNNING → RUNNING|QUEUED (CAS by a
// thread or task about to wait), RUNNING[|QUEUED] → DONE, PANICKED or INCOMPLETE (swap by the
// runner when it finishes or fails; it wakes every waiter in the queue if QUEUED was set).
// Woken waiters start over: they return on DONE/PANICKED and compete to run again on
// INCOMPLETE. A waiter links itself into the queue only after checking, under the queue lock,
// that the state is still RUNNING|QUEUED; the runner swaps the state before it takes that lock
// to wake the queue, so a waiter either sees the run ended or is in the queue when it wakes.
//
// The run may belong to an async task (`TryOnce::call_async`) that is suspended at an `.await`:
// then `owner` is 0, since other tasks on the same thread may wait for it without deadlock.
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
    /// Threads and tasks waiting for the running initializer (one FIFO for both).
    queue: WaitQueue,
}

/// Token handed to every waiter when a run ends.
const ENDED: usize = 1;

impl RawOnce {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self {
            state: AtomicU8::new(INCOMPLETE),
            owner: AtomicUsize::new(0),
            queue: WaitQueue::with_extra(()),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU8::new(INCOMPLETE),
            owner: AtomicUsize::new(0),
            queue: WaitQueue::with_extra(()),
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

    /// Links `node` into the queue if a run is still going on with `QUEUED` set (checked
    /// under the queue lock; see the state machine above). Returns whether it did.
    ///
    /// # Safety
    /// `node` is not linked, stays where it is, and is not dropped before it has been
    /// notified or withdrawn through this queue.
    unsafe fn link(&self, node: &Waiter, kind: Kind<'_>) -> bool {
        let mut q = self.queue.lock();
        if self.state.load(Ordering::Relaxed) != RUNNING | QUEUED {
            return false;
        }
        // SAFETY: forwarded contract.
        unsafe { q.push_back(node, kind) };
        true
    }

    /// Sets `QUEUED` on a running once. Returns the state seen if the run has ended meanwhile
    /// (`Err`), so the caller starts over.
    #[inline]
    fn mark_queued(&self, state: u8) -> Result<(), u8> {
        if state & QUEUED != 0 {
            return Ok(());
        }
        self.state
            .compare_exchange(
                RUNNING,
                RUNNING | QUEUED,
                Ordering::Relaxed,
                Ordering::Acquire,
            )
            .map(drop)
    }

    /// Takes the run if nobody has it (`INCOMPLETE` → `RUNNING`), recording `owner`.
    #[inline]
    fn try_take(&self, owner: usize) -> Result<RunGuard<'_>, u8> {
        self.state
            .compare_exchange(INCOMPLETE, RUNNING, Ordering::Acquire, Ordering::Acquire)?;
        self.owner.store(owner, Ordering::Relaxed);
        Ok(RunGuard {
            once: self,
            complete: false,
            panicked: false,
        })
    }

    /// Waits until the once is either done (returns `None`) or free to run, in which case this
    /// thread now owns the run and gets the guard that ends it (`Some`).
    ///
    /// `what` names the public method for the re-entrance panic.
    #[cold]
    #[track_caller]
    pub(crate) fn begin(&self, what: &'static str) -> Option<RunGuard<'_>> {
        let me = thread_id();
        let node = Waiter::new();
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            match state {
                DONE | PANICKED => return None,
                INCOMPLETE => match self.try_take(me) {
                    Ok(run) => return Some(run),
                    Err(actual) => state = actual,
                },
                _ => {
                    // RUNNING, maybe with QUEUED.
                    if self.owner.load(Ordering::Relaxed) == me {
                        reentered(what);
                    }
                    if let Err(actual) = self.mark_queued(state) {
                        state = actual;
                        continue;
                    }
                    // SAFETY: `node` lives in this frame; `queue.wait` returns only once it
                    // has been notified (there is no deadline, so it is never withdrawn).
                    if unsafe { self.link(&node, Kind::Thread) } {
                        self.queue.wait(&node, None, 0, |_| {});
                        node.reset_token();
                    }
                    state = self.state.load(Ordering::Acquire);
                }
            }
        }
    }

    /// The async form of [`begin`](Self::begin): `Ready(None)` once the once is final,
    /// `Ready(Some(run))` if the caller now owns the run, `Pending` while another run is going
    /// on (the task waits in `wait`'s node and is woken when it ends).
    ///
    /// `record_owner`: the run will happen synchronously inside this poll, on this thread
    /// (then a re-entrant call from the initializer is detected, as in `begin`). An async run
    /// that spans `.await`s records no owner.
    pub(crate) fn poll_begin(
        &self,
        wait: Pin<&mut OnceWait>,
        cx: &mut Context<'_>,
        record_owner: bool,
        what: &'static str,
    ) -> Poll<Option<RunGuard<'_>>> {
        // SAFETY: the node is never moved out of the pinned `OnceWait`.
        let wait = unsafe { wait.get_unchecked_mut() };
        if wait.linked {
            match self.queue.poll_wait(&wait.node, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(_) => {
                    wait.linked = false;
                    wait.node.reset_token();
                }
            }
        }
        let me = thread_id();
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            match state {
                DONE | PANICKED => return Poll::Ready(None),
                INCOMPLETE => match self.try_take(if record_owner { me } else { 0 }) {
                    Ok(run) => return Poll::Ready(Some(run)),
                    Err(actual) => state = actual,
                },
                _ => {
                    // The runner is on this thread and busy in its initializer: we are
                    // inside it.
                    if self.owner.load(Ordering::Relaxed) == me {
                        reentered(what);
                    }
                    if let Err(actual) = self.mark_queued(state) {
                        state = actual;
                        continue;
                    }
                    // SAFETY: the node is pinned in `wait`, whose drop withdraws it.
                    if unsafe { self.link(&wait.node, Kind::Task(cx.waker())) } {
                        wait.linked = true;
                        return Poll::Pending;
                    }
                    state = self.state.load(Ordering::Acquire);
                }
            }
        }
    }
}

/// An async waiter's place in a [`RawOnce`]'s queue. Pinned while linked; dropping it
/// withdraws it.
pub(crate) struct OnceWait<'a> {
    once: &'a RawOnce,
    node: Waiter,
    linked: bool,
}

impl<'a> OnceWait<'a> {
    pub(crate) fn new(once: &'a RawOnce) -> Self {
        OnceWait {
            once,
            node: Waiter::new(),
            linked: false,
        }
    }
}

impl Drop for OnceWait<'_> {
    fn drop(&mut self) {
        if self.linked {
            // A notification that got here first needs no passing on: every waiter is woken
            // when a run ends.
            let _ = self.once.queue.cancel(&self.node, |_| {});
        }
    }
}

/// Waits (asynchronously) until the once is final or the caller owns a run: the future form
/// of [`RawOnce::begin`].
pub(crate) struct Begin<'a> {
    pub(crate) wait: OnceWait<'a>,
    pub(crate) record_owner: bool,
    pub(crate) what: &'static str,
}

impl<'a> Future for Begin<'a> {
    type Output = Option<RunGuard<'a>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `wait` is structurally pinned; the other fields are plain values.
        let this = unsafe { self.get_unchecked_mut() };
        let once = this.wait.once;
        // SAFETY: `this.wait` is not moved while pinned.
        let wait = unsafe { Pin::new_unchecked(&mut this.wait) };
        once.poll_begin(wait, cx, this.record_owner, this.what)
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
            once.queue.lock().notify_all(ENDED);
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

    /// The async form of [`call_once`](Self::call_once): awaits `f()` unless an earlier call
    /// succeeded. Concurrent callers — tasks and threads alike — wait for the running attempt
    /// (tasks without blocking their thread); if it fails, one of them runs its own next.
    ///
    /// ```
    /// use gosync::TryOnce;
    ///
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::sync::Arc;
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
    /// static CONNECT: TryOnce = TryOnce::new();
    ///
    /// async fn connect(attempt: u32) -> Result<(), String> {
    ///     if attempt == 0 { Err("refused".into()) } else { Ok(()) }
    /// }
    ///
    /// block_on(async {
    ///     assert!(CONNECT.call_async(|| connect(0)).await.is_err()); // not done: retry later
    ///     assert!(CONNECT.call_async(|| connect(1)).await.is_ok());
    ///     assert!(CONNECT.is_done());
    /// });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while it waits removes it from the queue. Dropping it while its own
    /// `f` runs abandons that attempt: the `TryOnce` stays not done and the next waiter runs
    /// its function, exactly as after an `Err`.
    ///
    /// # Differences from `call_once`
    ///
    /// A re-entrant call (from inside the running `f`) is not detected: an async attempt may
    /// be suspended while other tasks on its thread wait for it, which is legitimate. A
    /// blocking `call_once` on a thread whose executor must run the attempt deadlocks.
    #[doc(alias = "Do")]
    pub async fn call_async<E, F, Fut>(&self, f: F) -> Result<(), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        if self.raw.is_done() {
            return Ok(());
        }
        let begin = Begin {
            wait: OnceWait::new(&self.raw),
            record_owner: false,
            what: "TryOnce::call_async",
        };
        match begin.await {
            None => Ok(()),
            Some(mut run) => {
                // Dropped with the future if it is cancelled here: the attempt is abandoned
                // (not done) and the waiters are woken.
                let result = f().await;
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
