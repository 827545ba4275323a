//! [`WorkerPool`] (closures) and [`TaskHandle`].

use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::engine::{Accepted, Block, Core};
use super::{Options, PoolError, TaskError};
use crate::primitive::now;
use smallbox::space::S4;
use smallbox::{smallbox, SmallBox};

/// A queued closure. Closures of up to four words (plus a flag) are stored inline in the
/// queue slot, so submitting a small task allocates nothing; larger ones go to the heap.
pub(crate) struct Task(SmallBox<dyn FnMut() + Send + 'static, S4>);

impl Task {
    #[inline]
    pub(crate) fn new<F: FnOnce() + Send + 'static>(f: F) -> Self {
        // `FnOnce` cannot be called through an unsized inline box, so the closure sits in an
        // `Option` and is taken out by the one call `run` makes.
        let mut f = Some(f);
        Task(smallbox!(move || {
            if let Some(f) = f.take() {
                f()
            }
        }))
    }

    #[inline]
    pub(crate) fn run(mut self) {
        (self.0)()
    }
}

/// The methods every pool type shares (observation and lifecycle), generated for a type with a
/// `core: Arc<Core<_>>` field.
macro_rules! pool_common_methods {
    () => {
        /// Maximum number of workers; 0 = unbounded (ants `Cap()`).
        #[doc(alias = "Cap")]
        pub fn cap(&self) -> usize {
            self.core.cap()
        }
        /// Live worker threads, idle ones included (ants `Running()`). Shrinks as idle workers
        /// expire.
        #[doc(alias = "Running")]
        pub fn running(&self) -> usize {
            self.core.running()
        }
        /// Workers running a task right now. A snapshot: a worker that has just finished a
        /// task and not yet looked for the next one still counts.
        pub fn busy(&self) -> usize {
            self.core.busy()
        }
        /// How many more tasks could start right now without queueing or blocking:
        /// `cap - pending` (`usize::MAX` for an unbounded pool; ants' `Free()` returns -1
        /// there).
        #[doc(alias = "Free")]
        pub fn free(&self) -> usize {
            match self.core.cap() {
                0 => usize::MAX,
                cap => cap.saturating_sub(self.core.pending()),
            }
        }
        /// Submitters blocked waiting for room (ants `Waiting()`).
        #[doc(alias = "Waiting")]
        pub fn waiting(&self) -> usize {
            self.core.waiting()
        }
        /// Tasks waiting in the queue for a worker (gammazero `WaitingQueueSize()`).
        #[doc(alias = "WaitingQueueSize")]
        pub fn queued(&self) -> usize {
            self.core.queued()
        }
        /// Tasks accepted and not yet finished (queued + running).
        pub fn pending(&self) -> usize {
            self.core.pending()
        }
        /// A snapshot of the pool's counters.
        pub fn stats(&self) -> $crate::workerpool::PoolStats {
            self.core.stats()
        }
        /// Changes the capacity at run time (ants `Tune`). Growing wakes blocked submitters and
        /// starts workers for queued tasks; shrinking retires excess workers as they finish
        /// their current task. No effect on an unbounded pool or with `size == 0`.
        #[doc(alias = "Tune")]
        pub fn tune(&self, size: usize) {
            self.core.tune(size)
        }
        /// Stops starting tasks and returns once no task is running (gammazero `Pause`);
        /// submissions are still accepted and queue up. Called from one of the pool's own
        /// tasks, it waits for the other tasks only.
        #[doc(alias = "Pause")]
        pub fn pause(&self) {
            self.core.pause()
        }
        /// Lets a paused pool run tasks again.
        pub fn resume(&self) {
            self.core.resume()
        }
        /// Whether the pool is paused.
        pub fn is_paused(&self) -> bool {
            self.core.is_paused()
        }
        /// Closes the pool, discards the queued tasks and waits for the running ones to finish
        /// (gammazero `Stop`). Returns how many queued tasks this call discarded (also counted
        /// in [`stats`](Self::stats)`.dropped`); their handles report
        /// [`TaskError::Cancelled`](crate::workerpool::TaskError::Cancelled). Called from one
        /// of the pool's own tasks it does not wait (it cannot wait for itself).
        #[doc(alias = "Stop")]
        pub fn stop(&self) -> usize {
            let dropped = self.core.close($crate::workerpool::engine::STOPPING);
            self.core.join_workers(None);
            dropped
        }
        /// Closes the pool, runs every queued task, and waits until all are done and every
        /// worker has exited (gammazero `StopWait`). Resumes a paused pool.
        #[doc(alias = "StopWait")]
        pub fn stop_wait(&self) {
            self.core.close($crate::workerpool::engine::DRAINING);
            self.core.join_workers(None);
        }
        /// Closes the pool and discards queued tasks without waiting for running ones
        /// (ants `Release`).
        #[doc(alias = "Release")]
        pub fn release(&self) -> usize {
            self.core.close($crate::workerpool::engine::STOPPING)
        }
        /// Like [`stop`](Self::stop) but gives up waiting after `timeout`
        /// (ants `ReleaseTimeout`): `Err(PoolError::Timeout)` if workers are still running.
        #[doc(alias = "ReleaseTimeout")]
        pub fn release_timeout(
            &self,
            timeout: std::time::Duration,
        ) -> Result<(), $crate::workerpool::PoolError> {
            let deadline = $crate::primitive::now() + timeout;
            self.core.close($crate::workerpool::engine::STOPPING);
            if self.core.join_workers(Some(deadline)) {
                Ok(())
            } else {
                Err($crate::workerpool::PoolError::Timeout)
            }
        }
        /// Opens a closed pool again (ants `Reboot`).
        #[doc(alias = "Reboot")]
        pub fn reboot(&self) {
            self.core.reboot()
        }
        /// Whether the pool was stopped or released (ants `IsClosed`).
        #[doc(alias = "IsClosed")]
        pub fn is_closed(&self) -> bool {
            self.core.is_closed()
        }
        /// Blocks until every accepted task has finished (what ants#73 asked for).
        ///
        /// # Panics
        /// When called from one of the pool's own tasks (it would wait for itself forever).
        pub fn wait(&self) {
            self.core.wait(None);
        }
        /// Like [`wait`](Self::wait) with a timeout; true if every task finished.
        pub fn wait_timeout(&self, timeout: std::time::Duration) -> bool {
            self.core.wait(Some($crate::primitive::now() + timeout))
        }
    };
}
pub(crate) use pool_common_methods;

/// A pool of worker threads running closures: ants' `Pool` and gammazero's `WorkerPool` in one.
///
/// `WorkerPool::new(cap)` starts no thread; workers are started on demand up to `cap` (0 =
/// unbounded), park when idle, and exit after [`Options::expiry_duration`] idle. With the
/// default [`Options`] there is no waiting queue: when `cap` tasks run, `submit` blocks until
/// one finishes (ants). `Options::new().queue_capacity(usize::MAX)` gives gammazero's
/// never-blocking unbounded queue; anything in between bounds the queue.
///
/// # Panics in tasks
/// Caught; the worker keeps running. `submit`ted tasks' panics go to
/// [`Options::panic_handler`] (default: one line on stderr); `spawn`ed tasks' panics go to
/// their [`TaskHandle`] (or the handler if the handle was dropped).
///
/// # Nested submission
/// A task that calls `submit`/`spawn` on its own pool while the pool is full runs the new task
/// inline (in the submitting thread) instead of blocking — blocking could deadlock when every
/// worker does it. `submit_wait` from a task always runs inline. `try_submit` still returns
/// `Overloaded`, and a `nonblocking` pool still rejects.
///
/// # Dropping
/// Dropping the pool closes it: queued tasks still run, then the workers exit (no thread
/// outlives the work). Use [`stop_wait`](Self::stop_wait) to wait for that.
///
/// # Example
/// ```
/// use gosync::workerpool::{Options, WorkerPool};
///
/// let pool = WorkerPool::with_options(2, Options::new().nonblocking(true));
/// let h = pool.spawn(|| "hello".len()).unwrap();
/// assert_eq!(h.join().unwrap(), 5);
/// let err = pool.spawn(|| panic!("boom")).unwrap().join().unwrap_err();
/// assert_eq!(err.panic_message(), Some("boom"));
/// assert_eq!(pool.stop(), 0); // nothing was queued
/// assert!(pool.submit(|| {}).is_err()); // closed
/// ```
#[doc(alias = "ants.Pool")]
pub struct WorkerPool {
    pub(crate) core: Arc<Core<Task>>,
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("stats", &self.core.stats())
            .finish()
    }
}

impl WorkerPool {
    /// A pool of at most `cap` workers (0 = unbounded) with default [`Options`].
    #[doc(alias = "NewPool")]
    pub fn new(cap: usize) -> Self {
        Self::with_options(cap, Options::default())
    }

    /// A pool of at most `cap` workers (0 = unbounded).
    ///
    /// # Panics
    /// If `opts.prealloc` is set with `cap == 0`.
    pub fn with_options(cap: usize, opts: Options) -> Self {
        WorkerPool {
            core: Core::new(cap, opts, Box::new(|task: Task| task.run())),
        }
    }

    pub(crate) fn submit_task(
        &self,
        task: Task,
        block: Block,
    ) -> Result<Accepted, (PoolError, Task)> {
        self.core.submit(task, block)
    }

    /// Submits a task. When the pool is full it blocks until there is room, unless the pool is
    /// `nonblocking` or `max_blocking_tasks` submitters already wait (then
    /// [`PoolError::Overloaded`]). [`PoolError::Closed`] after `stop`/`release`. From one of the
    /// pool's own tasks, a full pool runs the task inline instead of blocking.
    #[doc(alias = "Submit")]
    pub fn submit<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), PoolError> {
        self.core
            .submit(Task::new(f), Block::Forever)
            .map(drop)
            .map_err(|(e, _)| e)
    }

    /// Submits without ever blocking: [`PoolError::Overloaded`] when the pool is full.
    pub fn try_submit<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), PoolError> {
        self.core
            .submit(Task::new(f), Block::No)
            .map(drop)
            .map_err(|(e, _)| e)
    }

    /// Submits, blocking at most `timeout` for room ([`PoolError::Timeout`] after that).
    pub fn submit_timeout<F: FnOnce() + Send + 'static>(
        &self,
        f: F,
        timeout: Duration,
    ) -> Result<(), PoolError> {
        self.core
            .submit(Task::new(f), Block::Until(now() + timeout))
            .map(drop)
            .map_err(|(e, _)| e)
    }

    /// Submits a task and waits for it to finish (gammazero `SubmitWait`). Its panic comes
    /// back as [`TaskError::Panicked`]. From one of the pool's own tasks it runs the task
    /// inline (waiting for another worker could deadlock).
    #[doc(alias = "SubmitWait")]
    pub fn submit_wait<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), TaskError> {
        let (handle, task) = task_with_handle(f);
        if self.core.is_current() {
            self.core.run_inline(task);
        } else if let Err((e, _)) = self.core.submit(task, Block::Forever) {
            return Err(TaskError::Rejected(e));
        }
        handle.join()
    }

    /// Submits a task whose result (or panic) is collected with [`TaskHandle::join`].
    /// Blocks like [`submit`](Self::submit) when the pool is full.
    pub fn spawn<T, F>(&self, f: F) -> Result<TaskHandle<T>, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (handle, task) = task_with_handle(f);
        self.core
            .submit(task, Block::Forever)
            .map(|_| handle)
            .map_err(|(e, _)| e)
    }

    pool_common_methods!();
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.core.close(super::engine::DRAINING);
    }
}

// ----- TaskHandle ---------------------------------------------------------------------------

struct Slot<T> {
    result: Mutex<Option<Result<T, TaskError>>>,
    done: Condvar,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, Option<Result<T, TaskError>>> {
        // Nothing panics while holding this lock; recover anyway rather than propagate.
        self.result.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending side: completes the slot, or marks it cancelled when dropped unrun.
struct Completer<T> {
    slot: Option<Arc<Slot<T>>>,
}

impl<T> Completer<T> {
    fn complete(mut self, r: Result<T, TaskError>) {
        if let Some(slot) = self.slot.take() {
            *slot.lock() = Some(r);
            slot.done.notify_all();
        }
    }
    fn handle_alive(&self) -> bool {
        self.slot.as_ref().is_some_and(|s| Arc::strong_count(s) > 1)
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            *slot.lock() = Some(Err(TaskError::Cancelled));
            slot.done.notify_all();
        }
    }
}

/// Wraps `f` so its result or panic lands in the returned handle.
pub(crate) fn task_with_handle<T, F>(f: F) -> (TaskHandle<T>, Task)
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let slot = Arc::new(Slot {
        result: Mutex::new(None),
        done: Condvar::new(),
    });
    let completer = Completer {
        slot: Some(Arc::clone(&slot)),
    };
    let task = Task::new(move || match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => completer.complete(Ok(v)),
        Err(p) if completer.handle_alive() => completer.complete(Err(TaskError::Panicked(p))),
        Err(p) => {
            // Nobody will join: let the pool's panic handler report it.
            drop(completer);
            resume_unwind(p)
        }
    });
    (TaskHandle { slot }, task)
}

/// The result of a task started with [`WorkerPool::spawn`].
///
/// Dropping the handle detaches the task (it still runs; a panic then goes to the pool's
/// panic handler).
#[must_use = "dropping a TaskHandle detaches the task; call join() to get its result"]
pub struct TaskHandle<T> {
    slot: Arc<Slot<T>>,
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> TaskHandle<T> {
    /// Waits for the task: its value, [`TaskError::Panicked`] with the payload, or
    /// [`TaskError::Cancelled`] if the pool dropped it unrun.
    pub fn join(self) -> Result<T, TaskError> {
        let mut g = self.slot.lock();
        loop {
            if let Some(r) = g.take() {
                return r;
            }
            g = self.slot.done.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Like [`join`](Self::join) but gives the handle back if the task has not finished
    /// within `timeout`.
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, TaskError>, Self> {
        let deadline = now() + timeout;
        {
            let mut g = self.slot.lock();
            loop {
                if let Some(r) = g.take() {
                    return Ok(r);
                }
                let left = deadline.saturating_duration_since(now());
                if left.is_zero() {
                    break;
                }
                g = self
                    .slot
                    .done
                    .wait_timeout(g, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        Err(self)
    }

    /// Whether the task has finished (or was cancelled).
    pub fn is_finished(&self) -> bool {
        self.slot.lock().is_some()
    }
}
