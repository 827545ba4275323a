//! Worker pools: a bounded set of worker threads fed by a queue — the feature set of Go's
//! [ants](https://github.com/panjf2000/ants) and
//! [gammazero/workerpool](https://github.com/gammazero/workerpool) with Rust's safety.
//!
//! # Which one should I use
//!
//! - [`WorkerPool`]: run closures. `submit` (fire and forget), `spawn` (get a [`TaskHandle`]
//!   whose `join` returns the result or the panic), `submit_wait` (run and wait).
//! - [`PoolWithFunc`]: one function, many arguments (ants' `PoolWithFunc`); no boxing per task.
//! - [`MultiPool`]: several pools behind one handle, round-robin or least-loaded, to spread
//!   contention on a very busy pool (ants' `MultiPool`).
//!
//! # Go → gosync
//!
//! | ants / gammazero | gosync |
//! |---|---|
//! | `ants.NewPool(size, opts...)`, size ≤ 0 = unlimited | [`WorkerPool::with_options(cap, opts)`](WorkerPool::with_options), `cap == 0` = unlimited |
//! | `WithExpiryDuration` (1 s), `WithDisablePurge` | [`Options::expiry_duration`], [`Options::disable_purge`] |
//! | `WithPreAlloc` | [`Options::prealloc`] (all workers started up front, never expire) |
//! | `WithNonblocking` | [`Options::nonblocking`] |
//! | `WithMaxBlockingTasks` | [`Options::max_blocking_tasks`] |
//! | `WithPanicHandler` | [`Options::panic_handler`] |
//! | gammazero's unbounded waiting queue | [`Options::queue_capacity`] = `usize::MAX` |
//! | `Submit(task) error` | [`WorkerPool::submit`] → `Result<(), PoolError>` |
//! | gammazero `SubmitWait` | [`WorkerPool::submit_wait`] |
//! | `Running()`, `Free()`, `Waiting()`, `Cap()`, `Tune(n)` | [`running`](WorkerPool::running), [`free`](WorkerPool::free), [`waiting`](WorkerPool::waiting), [`cap`](WorkerPool::cap), [`tune`](WorkerPool::tune) |
//! | gammazero `WaitingQueueSize()` | [`WorkerPool::queued`] |
//! | gammazero `Pause(ctx)` | [`WorkerPool::pause`] / [`WorkerPool::resume`] |
//! | gammazero `Stop()` / `StopWait()` | [`WorkerPool::stop`] / [`WorkerPool::stop_wait`] |
//! | `Release()`, `ReleaseTimeout(d)`, `Reboot()`, `IsClosed()` | [`release`](WorkerPool::release), [`release_timeout`](WorkerPool::release_timeout), [`reboot`](WorkerPool::reboot), [`is_closed`](WorkerPool::is_closed) |
//! | (refused in ants#73) | [`WorkerPool::wait`]: wait for every submitted task |
//! | `ErrPoolClosed`, `ErrPoolOverload`, `ErrTimeout` | [`PoolError::Closed`], [`PoolError::Overloaded`], [`PoolError::Timeout`] |
//!
//! # What it fixes
//!
//! - **Panics are never swallowed silently and never kill a worker.** A panicking task is
//!   caught; the [`Options::panic_handler`] gets the payload, or (default) one line goes to
//!   stderr in addition to Rust's panic hook. A `spawn`ed task's panic goes to its
//!   [`TaskHandle::join`] instead. Compare rayon's `spawn`, which aborts the process.
//! - **A task submitting to its own full pool does not deadlock** (ants#197): the pool knows
//!   which pool the current thread works for, and when the blocking submit would wait for room
//!   that only its own workers can make, the new task **runs inline in the submitting task**
//!   ("caller runs") and `submit` returns `Ok`. [`WorkerPool::submit_wait`] from inside the pool
//!   always runs inline (it would block a worker anyway). [`WorkerPool::wait`] from inside
//!   panics with a clear message instead of hanging. (Only a task's *own* pool is detected: a
//!   cycle across two full pools still blocks; use `try_submit`/`submit_timeout` there.)
//! - **`wait()` for all submitted tasks**, which ants refused (ants#73).
//! - **No leaked threads**: dropping the last handle lets queued tasks finish, then every worker
//!   exits; idle workers expire after `expiry_duration` without a scavenger thread or a ticker.
//! - **Errors say why**: closed, overloaded (nonblocking / too many blocked submitters), timeout.
//!
//! # Differences from Go
//!
//! - Workers are OS threads, so the default capacity should be small (tens, not ants' 50 000).
//! - Tasks wait in a queue of [`Options::queue_capacity`] slots when every worker is busy;
//!   `0` (the default) is ants' behaviour (submit blocks until a worker is free),
//!   `usize::MAX` is gammazero's (submit never blocks).
//! - [`WorkerPool::free`] counts room for tasks that would start at once (`cap - pending`),
//!   not ants' `cap - running` (which is 0 as soon as `cap` idle workers exist); it is `usize::MAX` for an unbounded pool (ants returns -1).
//!
//! # Example
//!
//! ```
//! use gosync::workerpool::{Options, WorkerPool};
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//!
//! let pool = WorkerPool::with_options(4, Options::new().queue_capacity(usize::MAX));
//! let sum = Arc::new(AtomicUsize::new(0));
//! for i in 1..=100 {
//!     let sum = Arc::clone(&sum);
//!     pool.submit(move || {
//!         sum.fetch_add(i, Ordering::Relaxed);
//!     })
//!     .unwrap();
//! }
//! pool.wait();
//! assert_eq!(sum.load(Ordering::Relaxed), 5050);
//!
//! let h = pool.spawn(|| 6 * 7).unwrap();
//! assert_eq!(h.join().unwrap(), 42);
//! pool.stop_wait();
//! ```
//!
//! # Implementation
//!
//! One lock-free FIFO (`crossbeam_deque::Injector`) holds queued tasks; a handful of atomic
//! counters track reservations, workers, searchers and sleepers; idle workers park on
//! `parking_lot_core` queues (through the crate's `primitive` seam). Submitting costs one
//! CAS and one push (a closure of up to four words is stored inline in the queue slot; a
//! larger one costs one allocation); a wake-up system call is paid only when no worker is
//! awake. Workers that run out of work spin and yield for a few microseconds before they
//! park, so a steady stream of tasks needs no wake-ups at all. The state machine and its invariants are documented in the source of `engine.rs`.
//! The module is compiled out under `cfg(loom)`: it runs real OS threads and is checked by
//! its tests and ThreadSanitizer instead.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

mod engine;
mod func;
mod multi;
mod pool;

pub use func::PoolWithFunc;
pub use multi::{LoadBalancing, MultiPool};
pub use pool::{TaskHandle, WorkerPool};

/// A panic handler: receives the payload of a task's panic (ants' `PanicHandler func(any)`).
pub type PanicHandler = Arc<dyn Fn(Box<dyn Any + Send>) + Send + Sync>;

/// Pool options, named after ants' `Options`. Build with [`Options::new`] and the builder
/// methods, or fill the public fields.
#[derive(Clone)]
#[non_exhaustive]
pub struct Options {
    /// How long a worker may stay idle before it exits (ants `ExpiryDuration`, default 1 s;
    /// `Duration::ZERO` means the default).
    pub expiry_duration: Duration,
    /// Workers never expire (ants `DisablePurge`).
    pub disable_purge: bool,
    /// Start all `cap` workers at construction; they never expire (ants `PreAlloc`; ants'
    /// preallocated workers do expire). Needs `cap > 0`.
    pub prealloc: bool,
    /// `submit` never blocks: when the pool is full it returns [`PoolError::Overloaded`]
    /// (ants `Nonblocking`).
    pub nonblocking: bool,
    /// At most this many submitters may block waiting for room; the next one gets
    /// [`PoolError::Overloaded`]. 0 = no limit (ants `MaxBlockingTasks`).
    pub max_blocking_tasks: usize,
    /// How many tasks may wait in the queue when all `cap` workers are busy. 0 (default) is
    /// ants' behaviour (a submitter waits for a free worker); `usize::MAX` is
    /// gammazero/workerpool's unbounded queue (submit never blocks).
    pub queue_capacity: usize,
    /// Called with the payload of every task panic (ants `PanicHandler`). `None` (default):
    /// a line is written to stderr. The worker survives either way.
    pub panic_handler: Option<PanicHandler>,
    /// Worker thread name (default `gosync-worker`).
    pub thread_name: Option<String>,
    /// Worker thread stack size in bytes (default: the platform's).
    pub stack_size: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            expiry_duration: Options::DEFAULT_EXPIRY,
            disable_purge: false,
            prealloc: false,
            nonblocking: false,
            max_blocking_tasks: 0,
            queue_capacity: 0,
            panic_handler: None,
            thread_name: None,
            stack_size: None,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("expiry_duration", &self.expiry_duration)
            .field("disable_purge", &self.disable_purge)
            .field("prealloc", &self.prealloc)
            .field("nonblocking", &self.nonblocking)
            .field("max_blocking_tasks", &self.max_blocking_tasks)
            .field("queue_capacity", &self.queue_capacity)
            .field("panic_handler", &self.panic_handler.is_some())
            .field("thread_name", &self.thread_name)
            .field("stack_size", &self.stack_size)
            .finish()
    }
}

impl Options {
    /// ants' `DefaultCleanIntervalTime`: 1 s.
    pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(1);

    /// The defaults (ants' defaults; no waiting queue).
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets [`Options::expiry_duration`].
    #[doc(alias = "WithExpiryDuration")]
    pub fn expiry_duration(mut self, d: Duration) -> Self {
        self.expiry_duration = d;
        self
    }
    /// Sets [`Options::disable_purge`].
    #[doc(alias = "WithDisablePurge")]
    pub fn disable_purge(mut self, yes: bool) -> Self {
        self.disable_purge = yes;
        self
    }
    /// Sets [`Options::prealloc`].
    #[doc(alias = "WithPreAlloc")]
    pub fn prealloc(mut self, yes: bool) -> Self {
        self.prealloc = yes;
        self
    }
    /// Sets [`Options::nonblocking`].
    #[doc(alias = "WithNonblocking")]
    pub fn nonblocking(mut self, yes: bool) -> Self {
        self.nonblocking = yes;
        self
    }
    /// Sets [`Options::max_blocking_tasks`].
    #[doc(alias = "WithMaxBlockingTasks")]
    pub fn max_blocking_tasks(mut self, n: usize) -> Self {
        self.max_blocking_tasks = n;
        self
    }
    /// Sets [`Options::queue_capacity`] (`usize::MAX` = unbounded).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n;
        self
    }
    /// Sets [`Options::panic_handler`].
    #[doc(alias = "WithPanicHandler")]
    pub fn panic_handler(
        mut self,
        h: impl Fn(Box<dyn Any + Send>) + Send + Sync + 'static,
    ) -> Self {
        self.panic_handler = Some(Arc::new(h));
        self
    }
    /// Sets [`Options::thread_name`].
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = Some(name.into());
        self
    }
    /// Sets [`Options::stack_size`].
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }
}

/// Why a task was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError {
    /// The pool was stopped / released (ants `ErrPoolClosed`, gammazero `ErrStopped`).
    #[doc(alias = "ErrPoolClosed")]
    Closed,
    /// The pool is full and `nonblocking` is set, `max_blocking_tasks` submitters already wait,
    /// or a `try_` method was used (ants `ErrPoolOverload`).
    #[doc(alias = "ErrPoolOverload")]
    Overloaded,
    /// A deadline passed: `submit_timeout` found no room, or `release_timeout` saw workers
    /// still running (ants `ErrTimeout`).
    #[doc(alias = "ErrTimeout")]
    Timeout,
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PoolError::Closed => "worker pool is closed: it was stopped or released",
            PoolError::Overloaded => {
                "worker pool is overloaded: every worker is busy, the queue is full, and the \
                 pool is nonblocking or too many submitters already wait"
            }
            PoolError::Timeout => "worker pool operation timed out",
        })
    }
}

impl std::error::Error for PoolError {}

/// Why a spawned task produced no value.
#[non_exhaustive]
pub enum TaskError {
    /// The pool did not accept the task (only from [`WorkerPool::submit_wait`]).
    Rejected(PoolError),
    /// The task panicked; the payload is kept (re-raise it with `std::panic::resume_unwind`).
    Panicked(Box<dyn Any + Send>),
    /// The task was dropped before it ran ([`WorkerPool::stop`] discards queued tasks).
    Cancelled,
}

impl TaskError {
    /// The panic message, if the task panicked with a string.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            TaskError::Panicked(p) => Some(engine::panic_message(&**p)),
            _ => None,
        }
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Rejected(e) => f.debug_tuple("Rejected").field(e).finish(),
            TaskError::Panicked(p) => f
                .debug_tuple("Panicked")
                .field(&engine::panic_message(&**p))
                .finish(),
            TaskError::Cancelled => f.write_str("Cancelled"),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Rejected(e) => write!(f, "task rejected: {e}"),
            TaskError::Panicked(p) => write!(f, "task panicked: {}", engine::panic_message(&**p)),
            TaskError::Cancelled => {
                f.write_str("task cancelled: the pool was stopped before it ran")
            }
        }
    }
}

impl std::error::Error for TaskError {}

/// A snapshot of a pool's counters (each read separately; consistent only when quiet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolStats {
    /// Maximum number of workers (0 = unbounded).
    pub cap: usize,
    /// Live worker threads (ants `Running()`).
    pub workers: usize,
    /// Workers running a task now.
    pub busy: usize,
    /// Workers parked waiting for a task.
    pub idle: usize,
    /// Tasks waiting in the queue.
    pub queued: usize,
    /// Submitters blocked waiting for room (ants `Waiting()`).
    pub waiting: usize,
    /// Tasks accepted since creation.
    pub submitted: u64,
    /// Accepted tasks that ran to the end or panicked.
    pub completed: u64,
    /// Submissions refused as overloaded or timed out.
    pub rejected: u64,
    /// Queued tasks discarded by `stop`/`release`.
    pub dropped: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// Tasks run inline because a task submitted to its own full pool.
    pub ran_inline: u64,
    /// Worker threads started since creation.
    pub workers_started: u64,
    /// Worker threads that exited after `expiry_duration` idle.
    pub workers_expired: u64,
    /// Highest number of live workers seen.
    pub peak_workers: usize,
    /// Whether the pool is paused.
    pub paused: bool,
    /// Whether the pool is stopped/released.
    pub closed: bool,
}
