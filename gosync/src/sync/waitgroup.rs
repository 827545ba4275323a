//! `WaitGroup`: Go's `sync.WaitGroup` — wait for a collection of tasks to finish.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::diag::{Sleep, Sleeping};
use crate::primitive::atomic::{AtomicU64, Ordering};
use crate::primitive::{now, yield_now, Instant};

use super::wait_queue::{Kind, QueueGuard, WaitQueue, Waiter};

// State layout of `WaitGroup::state` (one `u64`, changed only by atomic read-modify-writes):
//
// | bits   | field      | meaning                                                             |
// |--------|------------|---------------------------------------------------------------------|
// | 63..32 | counter    | `i32`: tasks added and not yet done (Go's `v`). Never negative once |
// |        |            | an `add` returns: a call that drives it below 0 undoes itself and   |
// |        |            | panics.                                                             |
// | 31..24 | generation | `u8`, wrapping: bumped each time the counter reaches zero while     |
// |        |            | threads are waiting, i.e. once per release of the waiters. A thread |
// |        |            | that registered as a waiter in generation `g` has been released as  |
// |        |            | soon as the generation differs from `g`.                           |
// | 23..0  | waiters    | threads registered in `wait`/`wait_timeout` for this generation     |
// |        |            | (Go's `w`).                                                         |
//
// Go keeps counter and waiters in one word too and releases waiters through a counting
// semaphore; a released waiter that has not gone to sleep yet still finds the semaphore's
// count. The wait queue used here (threads and async tasks in one FIFO) has no count, so the
// generation plays that role: a waiter about to sleep checks (under the queue lock) that its
// generation is still current, and the releaser bumps the generation before it wakes the
// queue. A waiter is a blocked thread or a pending `wait_async` future; both register in the
// waiter count and link a node into the same queue, and a future dropped while waiting leaves
// exactly like a thread whose timeout passed.
//
// Transitions:
// - `add(d)`:      counter += d (one `fetch_add`). Counter 0 with waiters > 0 → release.
//                  A result below zero is undone at once (a second `fetch_add`), then panics.
// - release:       CAS {counter 0, gen g, waiters w>0} → {0, g+1, 0}, then wake every thread
//                  parked on the state's address. Done by the `add` that reached zero, or by a
//                  waiter of generation g that times out in the meantime (see below); whoever
//                  loses the CAS finds the generation moved on and stops.
// - `wait`:        counter 0 → return; else CAS waiters += 1 and park until the generation
//                  changes. A wake-up that finds the generation unchanged came from the
//                  release of an earlier round, arriving late: park again.
// - timeout:       (under the queue lock) generation moved on → released after all. Else,
//                  counter > 0 → waiters -= 1 (give up). Else the counter is zero and the
//                  `add` that took it there has not released us yet: finish the release
//                  ourselves, {0, g, w} → {0, g+1, 0}, and count as released. (Merely leaving,
//                  {0, g, w} → {0, g, w-1}, would let the next round start, `add` and `wait`
//                  in generation g while that `add` still holds a stale release of g.)
//
// A negative counter is never a real state, only the moment between an `add` too many and its
// undo. `wait`, timeouts and release never act on it: they yield until the undo is visible, so
// a caught misuse strands no waiter. An `add` whose result needs action (zero with waiters,
// or negative) and that started from a negative counter takes its step back, waits, and
// retries. An `add` that needs no action cannot tell that the value it left is off by the
// pending undo, so later calls may still act on that (see the docs' Panics section).

const COUNTER_SHIFT: u32 = 32;
const GEN_SHIFT: u32 = 24;
const GEN_ONE: u64 = 1 << GEN_SHIFT;
const GEN_MASK: u64 = 0xFF << GEN_SHIFT;
const WAITER_MASK: u64 = GEN_ONE - 1;

const NEGATIVE: &str = "sync: negative WaitGroup counter";
const REUSED: &str = "sync: WaitGroup is reused before previous Wait has returned";
const MISUSE: &str = "sync: WaitGroup misuse: Add called concurrently with Wait";

#[inline]
fn counter(state: u64) -> i32 {
    (state >> COUNTER_SHIFT) as u32 as i32
}

#[inline]
fn waiters(state: u64) -> u64 {
    state & WAITER_MASK
}

/// Waits for a collection of tasks to finish: Go's `sync.WaitGroup`.
///
/// The counter starts at zero. [`add`](Self::add) raises it by the number of tasks about to
/// start, each task calls [`done`](Self::done) when it finishes, and [`wait`](Self::wait)
/// blocks until the counter is back at zero. [`go`](Self::go) does all three steps for a
/// thread: it adds one, spawns the thread and calls `done` when the closure returns *or
/// panics*. A `WaitGroup` can be reused for a new round as soon as every `wait` of the
/// previous round has returned.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use gosync::WaitGroup;
///
/// let wg = Arc::new(WaitGroup::new());
/// let hits = Arc::new(AtomicUsize::new(0));
/// for _ in 0..4 {
///     let hits = Arc::clone(&hits);
///     wg.go(move || {
///         hits.fetch_add(1, Ordering::Relaxed);
///     });
/// }
/// wg.wait();
/// assert_eq!(hits.load(Ordering::Relaxed), 4);
/// assert_eq!(wg.count(), 0);
/// ```
///
/// With scoped threads no `Arc` is needed, and [`guard`](Self::guard) makes a forgotten
/// `done` impossible:
///
/// ```
/// use gosync::WaitGroup;
///
/// let wg = WaitGroup::new();
/// std::thread::scope(|s| {
///     for i in 0..3 {
///         let token = wg.guard(); // add(1) now, done() when `token` drops
///         s.spawn(move || {
///             let _token = token;
///             println!("task {i}");
///         });
///     }
///     wg.wait();
/// });
/// ```
///
/// # Panics (Go's exact messages)
///
/// - `sync: negative WaitGroup counter` — `add`/`done` would take the counter below zero
///   (too many `done`s). Unlike Go, the counter is restored before the panic, so the
///   `WaitGroup` stays usable if the panic is caught. Threads waiting at that moment never
///   act on the transient negative value (they wait for the restore), so none is stranded
///   by it. Other `add`/`done` calls that overlap the offending call may still act on it
///   (and panic in its place, or end the round early); that can only happen in a program
///   that already has a `done` too many.
/// - `sync: WaitGroup misuse: Add called concurrently with Wait` — a positive `add` raced the
///   release of the waiters of the previous round.
/// - `sync: WaitGroup is reused before previous Wait has returned` — a woken `wait` found that a
///   new round had already started.
///
/// # Differences from Go
///
/// - [`go`](Self::go) calls `done` even if the closure panics (Go 1.25's behaviour); the panic
///   stays in the returned [`JoinHandle`] instead of killing the process as an unrecovered
///   goroutine panic does in Go. Go 1.26 changed `wg.Go` to re-panic without `Done`, which
///   makes `Wait` hang forever if the process survives; gosync keeps 1.25's rule.
/// - Extras: [`wait_timeout`](Self::wait_timeout), [`count`](Self::count),
///   [`waiters`](Self::waiters), [`guard`](Self::guard).
/// - Copying a `WaitGroup` after first use (a `go vet` warning in Go) cannot compile: the type
///   is neither `Copy` nor `Clone`; share it by reference, scoped threads or `Arc`.
///
///   ```compile_fail,E0599
///   let wg = gosync::WaitGroup::new();
///   let copy = wg.clone(); // error: no method named `clone`
///   ```
/// - Up to 2²⁴ − 1 threads and tasks may wait at once (Go: 2³¹ − 1).
/// - [`wait_async`](Self::wait_async) waits from an async task, in the same queue as blocked
///   threads.
///
/// # State layout
///
/// One `AtomicU64`, as in Go: bits 63..32 the counter (`i32`), bits 23..0 the number of
/// threads and tasks waiting, and bits 31..24 a wrapping generation number that moves on each
/// time the counter reaches zero with waiters. Waiters sleep in one FIFO wait queue, threads
/// and tasks alike (no allocation per wait). `add` is one `fetch_add`; `wait` on a zero
/// counter is one load. A waiter is released as soon as the generation differs from the one it
/// registered in, which makes wake-ups impossible to lose even for a waiter that had not
/// gone to sleep yet when the last `done` ran.
///
/// # Differences from crossbeam's `WaitGroup`
///
/// crossbeam counts clones of a handle and is single-use; this one is Go's explicit counter,
/// reusable, and awaitable: a `u64` plus a wait queue shared by threads and tasks.
#[doc(alias = "sync.WaitGroup")]
pub struct WaitGroup {
    /// See the state layout above: counter (63..32), generation (31..24), waiters (23..0).
    state: AtomicU64,
    /// The registered waiters that have linked themselves in (threads and tasks). A release
    /// notifies all of them with [`RELEASED`].
    queue: WaitQueue,
}

/// Token handed to every waiter by a release.
const RELEASED: usize = 1;

impl WaitGroup {
    /// A `WaitGroup` with counter zero.
    #[cfg(not(loom))]
    #[must_use]
    pub const fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
            queue: WaitQueue::with_extra(()),
        }
    }

    /// A `WaitGroup` with counter zero.
    #[cfg(loom)]
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
            queue: WaitQueue::with_extra(()),
        }
    }

    /// Adds `delta` (which may be negative) to the counter. When the counter reaches zero,
    /// every thread blocked in [`wait`](Self::wait) is released.
    ///
    /// As in Go, calls with a positive `delta` that start a round (counter zero) must happen
    /// before the `wait` they are meant to hold up — call `add` before spawning the task, not
    /// inside it.
    ///
    /// # Panics
    ///
    /// `sync: negative WaitGroup counter` if the counter would drop below zero (the counter
    /// is left as it was); `sync: WaitGroup misuse: Add called concurrently with Wait` if a
    /// positive `add` races the release of waiters; and if `delta` does not fit Go's 32-bit
    /// counter.
    #[doc(alias = "Add")]
    #[inline]
    #[track_caller]
    pub fn add(&self, delta: isize) {
        let Ok(delta32) = i32::try_from(delta) else {
            delta_out_of_range(delta)
        };
        let step = (i64::from(delta32) as u64) << COUNTER_SHIFT;
        // AcqRel: `done` publishes the task's writes (Release) and the add that reaches zero
        // must see every earlier `done` before it releases the waiters (Acquire).
        let new = self
            .state
            .fetch_add(step, Ordering::AcqRel)
            .wrapping_add(step);
        let v = counter(new);
        if v > 0 {
            if waiters(new) != 0 && delta32 > 0 && v == delta32 {
                // The counter went from zero to positive while threads are registered as
                // waiters: the previous round's release is still in progress.
                misuse();
            }
            return; // the common case: tasks remain
        }
        if v == 0 && waiters(new) == 0 {
            return; // round over, nobody to wake
        }
        self.add_slow(new, step, delta32);
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn add_slow(&self, new: u64, step: u64, delta: i32) {
        if counter(new.wrapping_sub(step)) < 0 {
            // We added to the transient negative counter of another thread's `add` too many,
            // before its undo: the value we got means nothing. Take our step back, wait for
            // the undo, and start again.
            self.state.fetch_sub(step, Ordering::AcqRel);
            self.settled(self.state.load(Ordering::Acquire));
            return self.add(delta as isize);
        }
        if counter(new) < 0 {
            // Undo our own step so a caught panic leaves a usable WaitGroup. Until this lands
            // the counter reads negative; every other path waits for it (see `settled`).
            self.state.fetch_sub(step, Ordering::AcqRel);
            panic!("{NEGATIVE}");
        }
        self.release(new);
    }

    /// The state, once no `add` too many is pending its undo (a negative counter is that
    /// moment, not a real state).
    #[inline]
    fn settled(&self, mut cur: u64) -> u64 {
        while counter(cur) < 0 {
            yield_now();
            cur = self.state.load(Ordering::Acquire);
        }
        cur
    }

    /// The counter reached zero with waiters registered in the generation of `cur`: start a
    /// new generation and wake every parked waiter — unless a waiter that timed out has done
    /// so already.
    #[cold]
    #[track_caller]
    fn release(&self, mut cur: u64) {
        let gen = cur & GEN_MASK;
        loop {
            cur = self.settled(cur);
            if cur & GEN_MASK != gen {
                return; // a timed-out waiter finished this release (and woke the others)
            }
            if counter(cur) != 0 {
                // A positive add between our add reaching zero and the release, while the
                // waiters of this generation are still registered.
                misuse();
            }
            // Waiters that time out while the counter is zero release instead of leaving,
            // so the generation cannot still be `gen` with nobody registered.
            debug_assert!(waiters(cur) != 0);
            let next = gen.wrapping_add(GEN_ONE) & GEN_MASK;
            // Release: a waiter that sees the new generation sees every task's writes.
            match self
                .state
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        self.wake_all();
    }

    /// Wakes every waiter in the queue. A waiter of a later generation woken by a late call
    /// goes back to waiting (see `wait_slow`).
    fn wake_all(&self) {
        self.queue.lock().notify_all(RELEASED);
    }

    /// Registers the caller as a waiter of the current generation, unless the counter is
    /// zero (`None`: nothing to wait for). Returns the generation.
    #[inline]
    fn register(&self) -> Option<u64> {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            cur = self.settled(cur);
            if counter(cur) == 0 {
                return None;
            }
            assert!(
                waiters(cur) < WAITER_MASK,
                "gosync: too many threads and tasks waiting in WaitGroup::wait (limit {WAITER_MASK})"
            );
            match self.state.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(cur & GEN_MASK),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Links `node` (registered in generation `gen`) into the queue, unless that generation
    /// has been released already (`false`). Checked under the queue lock: the releaser bumps
    /// the generation before it takes that lock to wake the queue, so either we see the new
    /// generation here or we are in the queue when it wakes it.
    ///
    /// # Safety
    /// `node` is not linked, stays where it is, and is not dropped until it has been notified
    /// or withdrawn through this queue (see `QueueGuard::push_back`).
    unsafe fn link(&self, node: &Waiter, gen: u64, kind: Kind<'_>) -> bool {
        let mut q = self.queue.lock();
        if self.state.load(Ordering::Acquire) & GEN_MASK != gen {
            return false;
        }
        // SAFETY: forwarded contract.
        unsafe { q.push_back(node, kind) };
        true
    }

    /// A registered waiter of generation `gen` leaves without having been released (timeout,
    /// dropped future). Called with the queue lock held and the node unlinked: gives up, or
    /// finishes a pending release, waking the others through `q`. Returns whether it counts
    /// as released.
    fn leave(&self, gen: u64, q: &mut QueueGuard<'_, ()>) -> bool {
        match self.time_out(gen) {
            Timeout::GaveUp => false,
            Timeout::Released => true,
            Timeout::ReleasedOthers => {
                q.notify_all(RELEASED);
                true
            }
        }
    }

    /// Decrements the counter by one: `add(-1)`.
    ///
    /// # Panics
    ///
    /// `sync: negative WaitGroup counter` if the counter is already zero.
    #[doc(alias = "Done")]
    #[inline]
    #[track_caller]
    pub fn done(&self) {
        self.add(-1);
    }

    /// Blocks until the counter is zero. Returns at once if it already is.
    ///
    /// # Panics
    ///
    /// `sync: WaitGroup is reused before previous Wait has returned` if, by the time this
    /// thread wakes up, another thread has already started the next round with `add`.
    #[doc(alias = "Wait")]
    #[inline]
    pub fn wait(&self) {
        // Acquire: returning here must make every task's writes visible.
        if counter(self.state.load(Ordering::Acquire)) == 0 {
            return;
        }
        self.wait_slow(None);
    }

    /// Like [`wait`](Self::wait), but gives up after `timeout`. Returns `true` if the counter
    /// reached zero, `false` on timeout. A timed-out caller unregisters itself, so the
    /// `WaitGroup` stays consistent.
    #[must_use = "false means the tasks have not finished"]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if counter(self.state.load(Ordering::Acquire)) == 0 {
            return true;
        }
        // A timeout too large to represent is the same as no timeout.
        let deadline = now().checked_add(timeout);
        self.wait_slow(deadline)
    }

    #[cold]
    #[inline(never)]
    fn wait_slow(&self, deadline: Option<Instant>) -> bool {
        let Some(gen) = self.register() else {
            return true;
        };
        let _sleeping = Sleeping::begins(Sleep::WaitGroup);
        let node = Waiter::new();
        loop {
            // SAFETY: `node` lives in this frame, and `queue.wait` below returns only once it
            // has been notified or withdrawn.
            if !unsafe { self.link(&node, gen, Kind::Thread) } {
                return self.released_check();
            }
            let mut released = false;
            let woken = self
                .queue
                .wait(&node, deadline, 0, |q| released = self.leave(gen, q));
            if woken.is_none() {
                return released;
            }
            node.reset_token();
            if self.settled(self.state.load(Ordering::Acquire)) & GEN_MASK == gen {
                // Woken by a release of an earlier round that came late: we are still
                // registered in the current one.
                continue;
            }
            return self.released_check();
        }
    }

    /// A thread's wait of the generation that just ended returns. Go's check: by now no new
    /// round may have begun, since a new `add` must wait until every `wait` of the previous
    /// round has returned.
    fn released_check(&self) -> bool {
        let s = self.settled(self.state.load(Ordering::Acquire));
        if counter(s) != 0 || waiters(s) != 0 {
            panic!("{REUSED}");
        }
        true
    }

    /// Waits asynchronously until the counter is zero (Go's `Wait`, for async tasks). Returns
    /// at once if it already is.
    ///
    /// The future waits in the same queue as threads blocked in [`wait`](Self::wait) and is
    /// released by the same `add`/`done`. It only uses the `Waker` it is polled with, so any
    /// executor works.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes unregisters it, as a [`wait_timeout`]
    /// that timed out would: the counter and the other waiters are unaffected (if the counter
    /// had already reached zero, the drop completes the release for the others).
    ///
    /// # Differences from [`wait`](Self::wait)
    ///
    /// Go's "reused before previous Wait has returned" check is not made for async waiters: a
    /// task may be polled long after its release, which is not a misuse.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gosync::WaitGroup;
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
    /// let wg = Arc::new(WaitGroup::new());
    /// for _ in 0..3 {
    ///     wg.go(|| std::thread::sleep(std::time::Duration::from_millis(1)));
    /// }
    /// block_on(wg.wait_async()); // `wg.wait_async().await` in an async fn
    /// assert_eq!(wg.count(), 0);
    /// ```
    ///
    /// [`wait_timeout`]: Self::wait_timeout
    #[doc(alias = "Wait")]
    pub fn wait_async(&self) -> WaitGroupWait<'_> {
        WaitGroupWait {
            wg: self,
            state: AsyncState::Idle,
            node: Waiter::new(),
        }
    }

    /// A waiter of generation `gen` reached its deadline or was dropped (under the queue
    /// lock, dequeued):
    /// give up, or — if the counter is already zero — finish the release in place of the
    /// `add` that took it there.
    fn time_out(&self, gen: u64) -> Timeout {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            cur = self.settled(cur);
            if cur & GEN_MASK != gen {
                return Timeout::Released;
            }
            let (next, outcome) = if counter(cur) == 0 {
                let others = if waiters(cur) > 1 {
                    Timeout::ReleasedOthers
                } else {
                    Timeout::Released
                };
                (gen.wrapping_add(GEN_ONE) & GEN_MASK, others)
            } else {
                (cur - 1, Timeout::GaveUp)
            };
            // AcqRel: a release seen or made here must show the tasks' writes (Acquire) and
            // the waiters we wake must see them too (Release).
            match self
                .state
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return outcome,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The current counter: tasks added and not yet done. A snapshot; it may change at once.
    #[must_use]
    pub fn count(&self) -> usize {
        counter(self.state.load(Ordering::Relaxed)).max(0) as usize
    }

    /// How many threads are blocked in [`wait`](Self::wait) or
    /// [`wait_timeout`](Self::wait_timeout), plus pending [`wait_async`](Self::wait_async)
    /// futures, right now. A snapshot.
    #[must_use]
    pub fn waiters(&self) -> usize {
        waiters(self.state.load(Ordering::Relaxed)) as usize
    }

    /// Adds one to the counter and returns a guard that calls [`done`](Self::done) when
    /// dropped — also when the task panics — so a `done` can be neither forgotten nor doubled.
    #[must_use = "dropping the guard at once calls done() at once"]
    #[track_caller]
    pub fn guard(&self) -> WaitGroupGuard<'_> {
        self.add(1);
        WaitGroupGuard { wg: self }
    }

    /// Go 1.25's `wg.Go(f)`: adds one to the counter, runs `f` on a new thread, and calls
    /// [`done`](Self::done) when `f` returns **or panics**, so [`wait`](Self::wait) never
    /// hangs on a panicking task. The panic itself is kept in the returned handle
    /// (`join()` gives `Err(payload)`); dropping the handle detaches the thread.
    ///
    /// # Panics
    ///
    /// If the thread cannot be spawned (the counter is restored first).
    #[doc(alias = "Go")]
    #[track_caller]
    pub fn go<F, T>(self: &Arc<Self>, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let guard = OwnedGuard::new(Arc::clone(self));
        match std::thread::Builder::new().spawn(move || {
            let _done = guard; // dropped after `f`, on return or unwind
            f()
        }) {
            Ok(handle) => handle,
            // The closure (and with it the guard, which calls done) was dropped already.
            Err(e) => panic!("gosync: WaitGroup::go could not spawn a thread: {e}"),
        }
    }
}

impl Default for WaitGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.load(Ordering::Relaxed);
        f.debug_struct("WaitGroup")
            .field("count", &counter(s))
            .field("waiters", &waiters(s))
            .finish()
    }
}

/// Where a [`WaitGroupWait`] future is.
enum AsyncState {
    /// Not polled yet (or between a late wake-up and re-linking).
    Idle,
    /// Registered in this generation and linked into the queue.
    Linked(u64),
    /// Released; the future has completed.
    Done,
}

/// Future returned by [`WaitGroup::wait_async`]: completes when the counter is zero.
///
/// `Send` and `Sync`; not `Unpin` (it holds its queue node in place while waiting).
#[must_use = "futures do nothing unless polled"]
pub struct WaitGroupWait<'a> {
    wg: &'a WaitGroup,
    state: AsyncState,
    /// Our node in the wait queue while `Linked`.
    node: Waiter,
}

impl Future for WaitGroupWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `node` is never moved out of the pinned future; the other fields are plain.
        let this = unsafe { self.get_unchecked_mut() };
        let wg = this.wg;
        loop {
            let gen = match this.state {
                AsyncState::Done => return Poll::Ready(()),
                AsyncState::Idle => match wg.register() {
                    None => {
                        this.state = AsyncState::Done;
                        return Poll::Ready(());
                    }
                    Some(gen) => gen,
                },
                AsyncState::Linked(gen) => match wg.queue.poll_wait(&this.node, cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(_) => {
                        this.node.reset_token();
                        if wg.settled(wg.state.load(Ordering::Acquire)) & GEN_MASK != gen {
                            this.state = AsyncState::Done;
                            return Poll::Ready(());
                        }
                        // A late wake-up from an earlier round: still registered, link again.
                        gen
                    }
                },
            };
            // SAFETY: the node is pinned inside this future, and `Drop` withdraws it from the
            // queue unless it was notified.
            if unsafe { wg.link(&this.node, gen, Kind::Task(cx.waker())) } {
                this.state = AsyncState::Linked(gen);
                return Poll::Pending;
            }
            this.state = AsyncState::Done;
        }
    }
}

impl Drop for WaitGroupWait<'_> {
    fn drop(&mut self) {
        if let AsyncState::Linked(gen) = self.state {
            let wg = self.wg;
            if wg
                .queue
                .cancel(&self.node, |q| {
                    wg.leave(gen, q);
                })
                .is_some()
                && wg.settled(wg.state.load(Ordering::Acquire)) & GEN_MASK == gen
            {
                // Notified by a late release of an earlier round, and still registered in
                // this one: leave it now (the queue lock is not needed for that).
                if let Timeout::ReleasedOthers = wg.time_out(gen) {
                    wg.wake_all();
                }
            }
        }
    }
}

impl fmt::Debug for WaitGroupWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroupWait")
            .field("wg", self.wg)
            .field("done", &matches!(self.state, AsyncState::Done))
            .finish()
    }
}

/// What a waiter whose deadline passed found (see `WaitGroup::time_out`).
#[derive(Clone, Copy)]
enum Timeout {
    /// Still waiting for tasks: unregistered, `wait_timeout` returns `false`.
    GaveUp,
    /// The counter had reached zero: released (by the releasing `add` or by us).
    Released,
    /// Released by us, and other waiters of the generation are still parked: wake them.
    ReleasedOthers,
}

#[cold]
#[inline(never)]
#[track_caller]
fn misuse() -> ! {
    panic!("{MISUSE}")
}

#[cold]
#[inline(never)]
#[track_caller]
fn delta_out_of_range(delta: isize) -> ! {
    panic!(
        "gosync: WaitGroup::add({delta}) is outside the counter's range (a Go WaitGroup \
         counter is 32-bit); add in smaller steps"
    )
}

/// Calls [`WaitGroup::done`] when dropped. Made by [`WaitGroup::guard`].
#[must_use = "dropping the guard at once calls done() at once"]
#[clippy::has_significant_drop]
pub struct WaitGroupGuard<'a> {
    wg: &'a WaitGroup,
}

impl Drop for WaitGroupGuard<'_> {
    fn drop(&mut self) {
        self.wg.done();
    }
}

impl fmt::Debug for WaitGroupGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroupGuard")
            .field("wg", self.wg)
            .finish()
    }
}

/// The `'static` guard `go` moves into its thread.
struct OwnedGuard(Arc<WaitGroup>);

impl OwnedGuard {
    #[track_caller]
    fn new(wg: Arc<WaitGroup>) -> Self {
        wg.add(1);
        Self(wg)
    }
}

impl Drop for OwnedGuard {
    fn drop(&mut self) {
        self.0.done();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn layout_helpers() {
        let s = (5u64 << COUNTER_SHIFT) | (3 << GEN_SHIFT) | 7;
        assert_eq!(counter(s), 5);
        assert_eq!(waiters(s), 7);
        assert_eq!((s & GEN_MASK) >> GEN_SHIFT, 3);
        assert_eq!(counter(u64::MAX << COUNTER_SHIFT), -1);
    }

    fn panic_message(f: impl FnOnce()) -> String {
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_err();
        err.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| err.downcast_ref::<String>().cloned())
            .unwrap()
    }

    #[test]
    fn add_from_zero_during_release_is_misuse() {
        // Counter zero with a registered waiter: the window between the last done and the
        // release. A positive add here is Go's "Add called concurrently with Wait".
        let wg = WaitGroup::new();
        wg.state.store(1, Ordering::Relaxed);
        assert_eq!(panic_message(|| wg.add(1)), MISUSE);
        // A negative add in the same window is just a negative counter.
        wg.state.store(1, Ordering::Relaxed);
        assert_eq!(panic_message(|| wg.done()), NEGATIVE);
        assert_eq!(wg.state.load(Ordering::Relaxed), 1, "negative add undone");
    }

    #[test]
    fn counter_changed_before_release_is_misuse() {
        let wg = WaitGroup::new();
        let s = (1 << COUNTER_SHIFT) | 2; // someone re-added before the releaser's CAS
        wg.state.store(s, Ordering::Relaxed);
        assert_eq!(panic_message(|| wg.release(s)), MISUSE);
    }

    #[test]
    fn release_already_finished_by_a_timed_out_waiter_is_a_no_op() {
        let wg = WaitGroup::new();
        let next_round = (1 << COUNTER_SHIFT) | GEN_ONE | 1; // gen 1: counter 1, one waiter
        wg.state.store(next_round, Ordering::Relaxed);
        wg.release(1); // stale view of gen 0 with one waiter
        assert_eq!(wg.state.load(Ordering::Relaxed), next_round);
    }

    #[test]
    fn timeout_on_a_zero_counter_finishes_the_release() {
        let wg = WaitGroup::new();
        wg.state.store(2, Ordering::Relaxed); // counter 0, gen 0, two waiters
        assert!(matches!(wg.time_out(0), Timeout::ReleasedOthers));
        assert_eq!(wg.state.load(Ordering::Relaxed), GEN_ONE);
        wg.state.store(1, Ordering::Relaxed); // the last waiter
        assert!(matches!(wg.time_out(0), Timeout::Released));
        assert_eq!(wg.state.load(Ordering::Relaxed), GEN_ONE);
        // Already released: nothing to change.
        assert!(matches!(wg.time_out(GEN_MASK), Timeout::Released));
        assert_eq!(wg.state.load(Ordering::Relaxed), GEN_ONE);
    }

    #[test]
    fn timeout_with_tasks_left_gives_up() {
        let wg = WaitGroup::new();
        wg.state.store((3 << COUNTER_SHIFT) | 2, Ordering::Relaxed);
        assert!(matches!(wg.time_out(0), Timeout::GaveUp));
        assert_eq!(wg.state.load(Ordering::Relaxed), (3 << COUNTER_SHIFT) | 1);
    }

    #[test]
    fn generation_wraps_without_touching_counter() {
        let wg = WaitGroup::new();
        wg.state.store(GEN_MASK | 1, Ordering::Relaxed); // gen 255, one waiter, counter 0
        wg.release(GEN_MASK | 1);
        assert_eq!(wg.state.load(Ordering::Relaxed), 0);
    }
}
