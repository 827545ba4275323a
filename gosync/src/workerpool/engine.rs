//! The worker/queue state machine shared by [`WorkerPool`](super::WorkerPool) and
//! [`PoolWithFunc`](super::PoolWithFunc).
//!
//! # State
//!
//! | field | meaning / invariant |
//! |---|---|
//! | `queue` | accepted jobs not yet taken by a worker (lock-free FIFO, `crossbeam_deque::Injector`) |
//! | `pending` | jobs accepted and not yet finished or dropped: `queued + executing + in flight`. A submitter *reserves* a unit here before it pushes; `pending <= cap + queue_capacity` whenever `cap != 0` (inline runs excepted) |
//! | `workers` | live worker threads (counted before the thread starts, uncounted when it decides to exit) |
//! | `searching` | workers looking for a job (spinning, or just unparked with the `HANDOFF` token); a submitter wakes nobody while `queue.len() <= searching` |
//! | `idle` | workers that announced they are about to park / are parked on the `idle` key |
//! | `awake` | workers not parked (running a job or searching); a worker is counted here whenever it checks `paused`, so `pause()` waits for `awake` to reach 0 |
//! | `blocked` | submitters parked on the `pending` key waiting for room (ants' `Waiting()`) |
//! | `state` | `OPEN` → (`DRAINING` \| `STOPPING`) → `OPEN` again only through `reboot` |
//!
//! # Transitions of one worker
//!
//! ```text
//!  spawn ──► SEARCHING ──pop ok──► BUSY ──job done──► (pop again) ──empty──► SEARCHING
//!               │  ▲
//!     spin done │  │ unparked (HANDOFF: already counted) / queue non-empty
//!               ▼  │
//!              IDLE (parked, timeout = expiry_duration) ──timed out──► EXIT (unless prealloc)
//!  SEARCHING/BUSY ──paused seen at the loop top──► PAUSED (parked until resume/close)
//!  any state ──(state != OPEN and pending == 0) or (workers > cap after tune)──► EXIT
//! ```
//!
//! # Why no job is ever stranded
//!
//! A submitter does `push; fence(SeqCst); read searching/idle/workers`. A worker that stops
//! searching does `idle += 1; searching -= 1; fence(SeqCst); re-check the queue` and parks only if
//! the queue is still empty (re-checked again inside `park`'s validate, under the parking
//! bucket lock that `unpark_one` also takes). By the SC-fence rule, either the submitter sees
//! the worker still searching/idle (and relies on it or wakes it), or the worker sees the job.
//! A worker that leaves (expiry, tune down) does `workers -= 1; fence; re-check the queue` and
//! calls [`Core::notify`] if it is non-empty, which is the same pattern against a submitter that
//! saw `workers == cap` and so did not spawn. A searcher that finds a job and was the last
//! searcher calls `notify` when the queue is still non-empty.
//!
//! # Who pays for wake-ups
//!
//! `notify` wakes an idle worker only when the queue holds more jobs than there are
//! searchers; the waker counts the woken worker in `searching` itself (under the parking
//! bucket lock, token `HANDOFF`), so the next submit does not wake a second worker for the
//! same job. A stream of tiny jobs is thus left to the one searcher that is already awake
//! (no system call per submit), while a burst of long jobs wakes one worker per queued job
//! straight from the submitter. A searcher spins and then yields for a few microseconds
//! (crossbeam's `Backoff`) before it parks, so workers stay awake while tasks keep coming and
//! park soon after they stop.
//!
//! Blocked submitters, `wait()` callers, `pause()` callers and `stop()` callers use the same
//! announce-then-validate pattern on their own parking key (the address of the counter they
//! wait on).

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_deque::{Injector, Steal};
use crossbeam_utils::{Backoff, CachePadded};

use super::{Options, PanicHandler, PoolError, PoolStats};
use crate::diag::{Sleep, Sleeping};
use crate::primitive::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use crate::primitive::{now, parking, Instant};

pub(crate) const OPEN: u8 = 0;
/// `stop_wait` / drop: no new jobs; queued ones run; workers leave when `pending == 0`.
pub(crate) const DRAINING: u8 = 1;
/// `stop` / `release_timeout`: no new jobs; queued ones are dropped; running ones finish.
pub(crate) const STOPPING: u8 = 2;

std::thread_local! {
    /// Address of the `Core` whose worker this thread is (0 if none). Used to detect a task
    /// submitting to, waiting on or stopping its own pool.
    static CURRENT_POOL: Cell<usize> = const { Cell::new(0) };
}

/// How long a submitter may block when the pool is full.
#[derive(Clone, Copy)]
pub(crate) enum Block {
    No,
    Forever,
    Until(Instant),
}

/// What happened to an accepted job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepted {
    Queued,
    /// The pool was full and the submitter is one of its own tasks: the job ran in the
    /// submitting thread instead of deadlocking.
    RanInline,
}

pub(crate) struct Core<J> {
    queue: Injector<J>,
    runner: Box<dyn Fn(J) + Send + Sync>,

    // Settings fixed at construction.
    expiry: Option<Duration>,
    prealloc: bool,
    nonblocking: bool,
    max_blocking: usize,
    queue_capacity: usize,
    panic_handler: Option<PanicHandler>,
    thread_name: String,
    stack_size: Option<usize>,

    state: AtomicU8,
    paused: AtomicBool,
    cap: AtomicUsize,
    pending: CachePadded<AtomicUsize>,
    awake: AtomicUsize,
    workers: AtomicUsize,
    searching: AtomicUsize,
    idle: AtomicUsize,
    blocked: AtomicUsize,
    waiters: AtomicUsize,
    pausers: AtomicUsize,
    stoppers: AtomicUsize,

    // Statistics (monotonic counters).
    submitted: CachePadded<AtomicU64>,
    rejected: AtomicU64,
    dropped: AtomicU64,
    panicked: AtomicU64,
    inline: AtomicU64,
    spawned: AtomicU64,
    expired: AtomicU64,
    peak_workers: AtomicUsize,
}

/// Parks the calling thread on `key` while `validate` holds (checked under the bucket lock).
fn park_on(
    key: usize,
    validate: impl FnOnce() -> bool,
    deadline: Option<Instant>,
) -> parking::ParkResult {
    // SAFETY: `key` is the address of a counter inside a live `Core` and is used as a parking
    // key only by this module; `validate` only loads atomics (never panics or parks); the
    // callbacks are empty.
    unsafe {
        parking::park(
            key,
            validate,
            || {},
            |_, _| {},
            parking::DEFAULT_PARK_TOKEN,
            deadline,
        )
    }
}

fn timed_out(r: parking::ParkResult) -> bool {
    matches!(r, parking::ParkResult::TimedOut)
}

/// Token telling an unparked worker that its waker already counted it in `searching`.
const HANDOFF: parking::UnparkToken = parking::UnparkToken(1);

fn wake_one(key: usize) -> bool {
    // SAFETY: see `park_on`; the callback only returns a token.
    unsafe { parking::unpark_one(key, |_| parking::DEFAULT_UNPARK_TOKEN).unparked_threads > 0 }
}

fn wake_all(key: usize) -> usize {
    // SAFETY: see `park_on`.
    unsafe { parking::unpark_all(key, parking::DEFAULT_UNPARK_TOKEN) }
}

fn key<T>(field: &T) -> usize {
    field as *const T as usize
}

/// The message of a panic payload, if it is a string.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}

impl<J: Send + 'static> Core<J> {
    pub(crate) fn new(
        cap: usize,
        opts: Options,
        runner: Box<dyn Fn(J) + Send + Sync>,
    ) -> Arc<Self> {
        assert!(
            !(opts.prealloc && cap == 0),
            "gosync::workerpool: `prealloc` needs a bounded capacity (cap > 0); \
             an unbounded pool cannot start all of its workers up front"
        );
        let expiry = if opts.disable_purge {
            None
        } else if opts.expiry_duration.is_zero() {
            Some(Options::DEFAULT_EXPIRY)
        } else {
            Some(opts.expiry_duration)
        };
        let core = Arc::new(Core {
            queue: Injector::new(),
            runner,
            expiry,
            prealloc: opts.prealloc,
            nonblocking: opts.nonblocking,
            max_blocking: opts.max_blocking_tasks,
            queue_capacity: opts.queue_capacity,
            panic_handler: opts.panic_handler,
            thread_name: opts
                .thread_name
                .unwrap_or_else(|| "gosync-worker".to_string()),
            stack_size: opts.stack_size,
            state: AtomicU8::new(OPEN),
            paused: AtomicBool::new(false),
            cap: AtomicUsize::new(cap),
            pending: CachePadded::new(AtomicUsize::new(0)),
            awake: AtomicUsize::new(0),
            workers: AtomicUsize::new(0),
            searching: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            blocked: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            pausers: AtomicUsize::new(0),
            stoppers: AtomicUsize::new(0),
            submitted: CachePadded::new(AtomicU64::new(0)),
            rejected: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            inline: AtomicU64::new(0),
            spawned: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            peak_workers: AtomicUsize::new(0),
        });
        if core.prealloc {
            for _ in 0..cap {
                core.maybe_spawn();
            }
        }
        core
    }

    fn addr(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as *const () as usize
    }

    /// Whether the calling thread is one of this pool's workers.
    pub(crate) fn is_current(self: &Arc<Self>) -> bool {
        CURRENT_POOL.with(|c| c.get()) == self.addr()
    }

    fn limit(&self) -> Option<usize> {
        match self.cap.load(Ordering::Relaxed) {
            0 => None,
            cap => Some(cap.saturating_add(self.queue_capacity)),
        }
    }

    fn is_full(&self) -> bool {
        self.limit()
            .is_some_and(|l| self.pending.load(Ordering::SeqCst) >= l)
    }

    /// Reserves room for one job in `pending`.
    fn try_reserve(&self) -> bool {
        let limit = match self.limit() {
            Some(l) if l != usize::MAX => l,
            // Unbounded workers or queue: nothing to check, just count.
            _ => {
                self.pending.fetch_add(1, Ordering::SeqCst);
                return true;
            }
        };
        let mut p = self.pending.load(Ordering::Relaxed);
        loop {
            if p >= limit {
                return false;
            }
            // SeqCst: pairs with the state check that follows (see `submit`).
            match self
                .pending
                .compare_exchange_weak(p, p + 1, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => p = now,
            }
        }
    }

    /// One unit of `pending` is gone (job finished, dropped, or reservation undone).
    fn finish_one(&self) {
        let prev = self.pending.fetch_sub(1, Ordering::SeqCst);
        // SeqCst load after the SeqCst RMW: pairs with a submitter's `blocked += 1` followed by
        // its validate reading `pending`.
        if self.blocked.load(Ordering::SeqCst) > 0 {
            wake_one(key(&*self.pending));
        }
        if prev == 1 {
            if self.waiters.load(Ordering::SeqCst) > 0 {
                wake_all(key(&self.waiters));
            }
            if self.state.load(Ordering::SeqCst) != OPEN {
                wake_all(key(&self.idle));
            }
        }
    }

    pub(crate) fn submit(
        self: &Arc<Self>,
        job: J,
        block: Block,
    ) -> Result<Accepted, (PoolError, J)> {
        loop {
            if self.try_reserve() {
                // Reserve first, then check the state: a closer stores the state and then reads
                // `pending`, so either it sees this reservation or this sees the new state.
                if self.state.load(Ordering::SeqCst) != OPEN {
                    self.finish_one();
                    return Err((PoolError::Closed, job));
                }
                self.submitted.fetch_add(1, Ordering::Relaxed);
                self.queue.push(job);
                self.notify();
                return Ok(Accepted::Queued);
            }
            if self.state.load(Ordering::SeqCst) != OPEN {
                return Err((PoolError::Closed, job));
            }
            if matches!(block, Block::No) || self.nonblocking {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Err((PoolError::Overloaded, job));
            }
            if self.is_current() {
                // A task blocking on room in its own pool can deadlock (every worker doing the
                // same waits forever, ants#197). Run the job here instead ("caller runs").
                self.run_inline(job);
                return Ok(Accepted::RanInline);
            }
            let n = self.blocked.fetch_add(1, Ordering::SeqCst);
            if self.max_blocking != 0 && n >= self.max_blocking {
                self.blocked.fetch_sub(1, Ordering::SeqCst);
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Err((PoolError::Overloaded, job));
            }
            let deadline = match block {
                Block::Until(d) => Some(d),
                _ => None,
            };
            let sleeping = Sleeping::begins(Sleep::PoolSubmit);
            let timed_out = timed_out(park_on(
                key(&*self.pending),
                || self.is_full() && self.state.load(Ordering::SeqCst) == OPEN,
                deadline,
            ));
            drop(sleeping);
            self.blocked.fetch_sub(1, Ordering::SeqCst);
            if timed_out && self.is_full() {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Err((PoolError::Timeout, job));
            }
        }
    }

    /// Runs a job in the calling thread, counted like a queued one.
    pub(crate) fn run_inline(self: &Arc<Self>, job: J) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.submitted.fetch_add(1, Ordering::Relaxed);
        self.inline.fetch_add(1, Ordering::Relaxed);
        self.execute(job);
        self.finish_one();
    }

    /// Makes sure some worker will look at the queue after a push.
    fn notify(self: &Arc<Self>) {
        // SeqCst fence between the push and the reads: the store-buffer pattern against a
        // worker's `idle += 1; searching -= 1; fence; queue.is_empty()`.
        fence(Ordering::SeqCst);
        if self.paused.load(Ordering::Relaxed) {
            return;
        }
        // Searchers (spinning, or woken and on their way) will take the job; wake more only
        // when the queue outgrows them, so a burst of long tasks fans out at once while a
        // stream of tiny ones is left to the searcher that is already awake.
        let searching = self.searching.load(Ordering::Relaxed);
        if searching > 0 && self.queue.len() <= searching {
            return;
        }
        if self.idle.load(Ordering::Relaxed) > 0 && self.wake_worker() {
            return;
        }
        self.maybe_spawn();
    }

    /// Unparks one idle worker, counting it in `searching` on its behalf (under the parking
    /// bucket lock, before it runs) so the next submitter does not wake another for the same
    /// job.
    fn wake_worker(&self) -> bool {
        // SAFETY: see `park_on`; the callback only does an atomic add (no panic, no park).
        unsafe {
            parking::unpark_one(key(&self.idle), |r| {
                if r.unparked_threads > 0 {
                    self.searching.fetch_add(1, Ordering::SeqCst);
                    HANDOFF
                } else {
                    parking::DEFAULT_UNPARK_TOKEN
                }
            })
        }
        .unparked_threads
            > 0
    }

    /// Starts one more worker if the capacity allows. The new worker counts as searching.
    fn maybe_spawn(self: &Arc<Self>) -> bool {
        let mut w = self.workers.load(Ordering::SeqCst);
        loop {
            let cap = self.cap.load(Ordering::Relaxed);
            if cap != 0 && w >= cap {
                return false;
            }
            match self
                .workers
                .compare_exchange_weak(w, w + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break,
                Err(now) => w = now,
            }
        }
        self.peak_workers.fetch_max(w + 1, Ordering::Relaxed);
        self.awake.fetch_add(1, Ordering::SeqCst);
        self.searching.fetch_add(1, Ordering::SeqCst);
        let core = Arc::clone(self);
        let mut builder = std::thread::Builder::new().name(self.thread_name.clone());
        if let Some(size) = self.stack_size {
            builder = builder.stack_size(size);
        }
        match builder.spawn(move || core.worker_main()) {
            Ok(_) => {
                self.spawned.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.searching.fetch_sub(1, Ordering::SeqCst);
                self.awake.fetch_sub(1, Ordering::SeqCst);
                self.workers.fetch_sub(1, Ordering::SeqCst);
                eprintln!(
                    "gosync::workerpool: could not start a worker thread ({e}); \
                     queued tasks wait for an existing worker"
                );
                false
            }
        }
    }

    fn pop(&self) -> Option<J> {
        loop {
            match self.queue.steal() {
                Steal::Success(j) => return Some(j),
                Steal::Empty => return None,
                Steal::Retry => {}
            }
        }
    }

    fn execute(self: &Arc<Self>, job: J) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| (self.runner)(job))) {
            self.panicked.fetch_add(1, Ordering::Relaxed);
            self.report_panic(payload);
        }
    }

    fn report_panic(&self, payload: Box<dyn Any + Send>) {
        match &self.panic_handler {
            Some(h) => {
                let h = Arc::clone(h);
                if catch_unwind(AssertUnwindSafe(move || h(payload))).is_err() {
                    eprintln!("gosync::workerpool: the panic handler itself panicked; ignored");
                }
            }
            None => eprintln!(
                "gosync::workerpool: a task panicked: {}; the worker keeps running \
                 (set Options::panic_handler to handle task panics)",
                panic_message(&*payload)
            ),
        }
    }

    fn too_many_workers(&self) -> bool {
        let cap = self.cap.load(Ordering::Relaxed);
        cap != 0 && self.workers.load(Ordering::Relaxed) > cap
    }

    /// Leaves if the pool has more workers than its capacity (after `tune` down).
    fn try_retire(&self) -> bool {
        let mut w = self.workers.load(Ordering::SeqCst);
        loop {
            let cap = self.cap.load(Ordering::Relaxed);
            if cap == 0 || w <= cap {
                return false;
            }
            match self
                .workers
                .compare_exchange_weak(w, w - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(now) => w = now,
            }
        }
    }

    /// A closed pool with nothing pending: its workers must leave.
    fn finished(&self) -> bool {
        self.state.load(Ordering::SeqCst) != OPEN && self.pending.load(Ordering::SeqCst) == 0
    }

    fn should_sleep(&self) -> bool {
        self.queue.is_empty()
            && !self.paused.load(Ordering::SeqCst)
            && !self.finished()
            && !self.too_many_workers()
    }

    fn worker_main(self: Arc<Self>) {
        CURRENT_POOL.with(|c| c.set(self.addr()));
        let mut searching = true; // counted (with `awake`) by `maybe_spawn`
        let mut counted = true; // still counted in `workers`
        loop {
            if self.too_many_workers() && self.try_retire() {
                counted = false;
                break;
            }
            let state = self.state.load(Ordering::SeqCst);
            if state == STOPPING {
                while let Some(job) = self.pop() {
                    drop(job);
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    self.finish_one();
                }
            }
            // This worker is counted in `awake` here. `pause()` stores `paused` and then waits
            // for `awake` to drop, so either it waits for this worker or this load sees the
            // flag: no job starts after `pause()` returns.
            if self.paused.load(Ordering::SeqCst) {
                // Paused workers are neither searching nor idle; `resume` wakes them.
                if searching {
                    searching = false;
                    self.stop_searching();
                }
                self.fall_asleep();
                self.pause_park();
                self.awake.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            if let Some(job) = self.pop() {
                if searching {
                    searching = false;
                    self.stop_searching();
                }
                if state == STOPPING {
                    drop(job);
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.execute(job);
                }
                self.finish_one();
                continue;
            }
            if !searching {
                searching = true;
                self.searching.fetch_add(1, Ordering::SeqCst);
            }
            if state != OPEN && self.pending.load(Ordering::SeqCst) == 0 {
                break;
            }
            // Spin (then yield) a little before parking, so a stream of tiny tasks finds its
            // searchers awake and submitters need no wake-up system call. Every searcher
            // spins: letting only one spin made each submit that found the others parked pay
            // a futex wake (measured: 2-4x slower tiny tasks at 4-8 workers on 2 cores).
            let backoff = Backoff::new();
            while self.queue.is_empty()
                && !backoff.is_completed()
                && !self.paused.load(Ordering::Relaxed)
                && self.state.load(Ordering::Relaxed) == state
            {
                backoff.snooze();
            }
            if !self.queue.is_empty() || self.state.load(Ordering::Relaxed) != state {
                continue;
            }
            // Go idle.
            self.idle.fetch_add(1, Ordering::SeqCst);
            // (`searching` stays true in this frame: it is counted again below before any
            // exit.)
            self.searching.fetch_sub(1, Ordering::SeqCst);
            self.fall_asleep();
            fence(Ordering::SeqCst);
            let r = if self.should_sleep() {
                let deadline = self.expiry.map(|d| now() + d);
                park_on(key(&self.idle), || self.should_sleep(), deadline)
            } else {
                parking::ParkResult::Invalid
            };
            self.awake.fetch_add(1, Ordering::SeqCst);
            self.idle.fetch_sub(1, Ordering::SeqCst);
            searching = true;
            if r != parking::ParkResult::Unparked(HANDOFF) {
                self.searching.fetch_add(1, Ordering::SeqCst);
            }
            if timed_out(r) && self.should_sleep() && self.try_expire() {
                counted = false;
                break;
            }
        }
        if searching {
            self.searching.fetch_sub(1, Ordering::SeqCst);
        }
        self.fall_asleep();
        if counted {
            self.workers.fetch_sub(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        // A job pushed by a submitter that saw this worker as searching, or saw `workers`
        // before the decrement, must still find a worker.
        if !self.queue.is_empty() && self.state.load(Ordering::SeqCst) != STOPPING {
            self.notify();
        }
        if self.workers.load(Ordering::SeqCst) == 0 && self.stoppers.load(Ordering::SeqCst) > 0 {
            wake_all(key(&self.workers));
        }
        CURRENT_POOL.with(|c| c.set(0));
    }

    fn stop_searching(self: &Arc<Self>) {
        if self.searching.fetch_sub(1, Ordering::SeqCst) == 1 && !self.queue.is_empty() {
            // The last searcher took a job and more are queued: fan out.
            self.notify();
        }
    }

    /// This worker is about to park (idle or paused) or exit.
    fn fall_asleep(&self) {
        self.awake.fetch_sub(1, Ordering::SeqCst);
        // A `pause()` caller waits for `awake` to reach 0 (or 1 when it is a task itself).
        if self.pausers.load(Ordering::SeqCst) > 0 {
            wake_all(key(&self.awake));
        }
    }

    /// An idle worker whose park timed out: leave, unless it is a preallocated core worker.
    fn try_expire(&self) -> bool {
        if self.prealloc && !self.too_many_workers() {
            return false;
        }
        self.workers.fetch_sub(1, Ordering::SeqCst);
        self.expired.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn pause_park(&self) {
        park_on(
            key(&self.paused),
            || self.paused.load(Ordering::SeqCst) && self.state.load(Ordering::SeqCst) == OPEN,
            None,
        );
    }

    // ----- control -------------------------------------------------------------------------

    pub(crate) fn pause(self: &Arc<Self>) {
        self.paused.store(true, Ordering::SeqCst);
        // A task pausing its own pool waits for the others, not for itself.
        let own = usize::from(self.is_current());
        self.pausers.fetch_add(1, Ordering::SeqCst);
        while self.awake.load(Ordering::SeqCst) > own && self.paused.load(Ordering::SeqCst) {
            park_on(
                key(&self.awake),
                || self.awake.load(Ordering::SeqCst) > own && self.paused.load(Ordering::SeqCst),
                Some(now() + Duration::from_millis(50)),
            );
        }
        self.pausers.fetch_sub(1, Ordering::SeqCst);
    }

    pub(crate) fn resume(self: &Arc<Self>) {
        self.paused.store(false, Ordering::SeqCst);
        wake_all(key(&self.paused));
        wake_all(key(&self.awake));
        if !self.queue.is_empty() {
            // Paused workers may have expired meanwhile; make sure someone runs the queue.
            fence(Ordering::SeqCst);
            if self.searching.load(Ordering::SeqCst) == 0 && !self.wake_worker() {
                self.maybe_spawn();
            }
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Moves to `target` (DRAINING or STOPPING), wakes everybody who must notice, and for
    /// STOPPING drops the queued jobs. Returns how many jobs this call dropped.
    pub(crate) fn close(self: &Arc<Self>, target: u8) -> usize {
        let mut cur = self.state.load(Ordering::SeqCst);
        loop {
            // STOPPING wins over DRAINING; DRAINING never downgrades STOPPING.
            if cur == target || cur == STOPPING {
                break;
            }
            match self
                .state
                .compare_exchange(cur, target, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        self.paused.store(false, Ordering::SeqCst);
        wake_all(key(&self.paused));
        wake_all(key(&self.awake));
        wake_all(key(&*self.pending));
        let mut dropped = 0;
        if self.state.load(Ordering::SeqCst) == STOPPING {
            while let Some(job) = self.pop() {
                drop(job);
                dropped += 1;
                self.dropped.fetch_add(1, Ordering::Relaxed);
                self.finish_one();
            }
        }
        wake_all(key(&self.idle));
        // Queued jobs with every worker gone (expired while paused): start one to drain them.
        fence(Ordering::SeqCst);
        if !self.queue.is_empty() && self.workers.load(Ordering::SeqCst) == 0 {
            self.maybe_spawn();
        }
        dropped
    }

    /// Waits until every worker has exited. Returns false on timeout. A worker of this pool
    /// cannot wait for itself: from inside, this returns `true` without waiting.
    pub(crate) fn join_workers(self: &Arc<Self>, deadline: Option<Instant>) -> bool {
        if self.is_current() {
            return true;
        }
        self.stoppers.fetch_add(1, Ordering::SeqCst);
        let mut done = true;
        while self.workers.load(Ordering::SeqCst) > 0 {
            if deadline.is_some_and(|d| now() >= d) {
                done = false;
                break;
            }
            // Bounded naps so a missed wake-up can only delay, never hang.
            let nap = now() + Duration::from_millis(20);
            let until = deadline.map_or(nap, |d| d.min(nap));
            park_on(
                key(&self.workers),
                || self.workers.load(Ordering::SeqCst) > 0,
                Some(until),
            );
        }
        self.stoppers.fetch_sub(1, Ordering::SeqCst);
        done
    }

    pub(crate) fn reboot(self: &Arc<Self>) {
        self.state.store(OPEN, Ordering::SeqCst);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::SeqCst) != OPEN
    }

    /// Waits until every accepted job has finished (or was dropped). False on timeout.
    pub(crate) fn wait(self: &Arc<Self>, deadline: Option<Instant>) -> bool {
        assert!(
            !self.is_current(),
            "gosync::workerpool: wait() called from one of the pool's own tasks would wait \
             for itself forever; wait on a TaskHandle or a WaitGroup instead"
        );
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut done = true;
        while self.pending.load(Ordering::SeqCst) > 0 {
            if deadline.is_some_and(|d| now() >= d) {
                done = false;
                break;
            }
            park_on(
                key(&self.waiters),
                || self.pending.load(Ordering::SeqCst) > 0,
                deadline,
            );
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        done
    }

    pub(crate) fn tune(self: &Arc<Self>, size: usize) {
        let old = self.cap.load(Ordering::SeqCst);
        if old == 0 || size == 0 || old == size {
            return;
        }
        self.cap.store(size, Ordering::SeqCst);
        if size > old {
            wake_all(key(&*self.pending));
            // Queued jobs may now get extra workers.
            let mut extra = size - old;
            while extra > 0 && self.queue.len() > self.idle.load(Ordering::SeqCst) {
                if !self.maybe_spawn() {
                    break;
                }
                extra -= 1;
            }
        } else {
            // Let idle excess workers notice they must leave.
            wake_all(key(&self.idle));
        }
    }

    // ----- observation ---------------------------------------------------------------------

    pub(crate) fn cap(&self) -> usize {
        self.cap.load(Ordering::Relaxed)
    }
    pub(crate) fn running(&self) -> usize {
        self.workers.load(Ordering::SeqCst)
    }
    pub(crate) fn busy(&self) -> usize {
        // Awake workers that are not searching run a job (racy snapshot; clamped).
        self.awake
            .load(Ordering::SeqCst)
            .saturating_sub(self.searching.load(Ordering::SeqCst))
            .min(self.workers.load(Ordering::SeqCst))
    }
    pub(crate) fn waiting(&self) -> usize {
        self.blocked.load(Ordering::SeqCst)
    }
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let submitted = self.submitted.load(Ordering::Relaxed);
        let dropped = self.dropped.load(Ordering::Relaxed);
        let pending = self.pending.load(Ordering::SeqCst) as u64;
        PoolStats {
            cap: self.cap(),
            workers: self.running(),
            busy: self.busy(),
            idle: self.idle.load(Ordering::SeqCst),
            queued: self.queued(),
            waiting: self.waiting(),
            submitted,
            completed: submitted.saturating_sub(pending).saturating_sub(dropped),
            rejected: self.rejected.load(Ordering::Relaxed),
            dropped,
            panicked: self.panicked.load(Ordering::Relaxed),
            ran_inline: self.inline.load(Ordering::Relaxed),
            workers_started: self.spawned.load(Ordering::Relaxed),
            workers_expired: self.expired.load(Ordering::Relaxed),
            peak_workers: self.peak_workers.load(Ordering::Relaxed),
            paused: self.is_paused(),
            closed: self.is_closed(),
        }
    }
}
