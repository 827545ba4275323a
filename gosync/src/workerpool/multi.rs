//! [`MultiPool`]: several pools behind one handle (ants' `MultiPool`).

use std::time::Duration;

use super::engine::Block;
use super::pool::{task_with_handle, Task, TaskHandle, WorkerPool};
use super::{Options, PoolError, PoolStats};
use crate::primitive::atomic::{AtomicUsize, Ordering};

/// How a [`MultiPool`] picks the pool for the next task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadBalancing {
    /// Cycle through the pools (ants `RoundRobin`). When the chosen pool is full, the task is
    /// retried once on the least-loaded pool, as ants does.
    RoundRobin,
    /// The pool with the fewest pending tasks, queued + running (ants `LeastTasks`, which
    /// counts running workers only).
    LeastTasks,
}

/// Several independent [`WorkerPool`]s behind one handle, to spread submission contention
/// (ants' `MultiPool`). Each pool has its own queue, workers and counters; the aggregate
/// observers sum them.
///
/// Nested submission is detected per pool: a task submitting to its *own* full pool runs the
/// new task inline. A task of pool A blocking on a full pool B whose tasks block on A is a
/// cross-pool cycle that is not detected; use `try_submit` or a bounded `submit_timeout`
/// where tasks submit across pools.
///
/// # Example
/// ```
/// use gosync::workerpool::{LoadBalancing, MultiPool, Options};
/// let mp = MultiPool::with_options(2, 2, LoadBalancing::LeastTasks, Options::new().queue_capacity(64));
/// let hs: Vec<_> = (0..8).map(|i| mp.spawn(move || i * 2).unwrap()).collect();
/// let sum: i32 = hs.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, 56);
/// assert_eq!(mp.cap(), 4);
/// ```
#[doc(alias = "NewMultiPool")]
#[derive(Debug)]
pub struct MultiPool {
    pools: Vec<WorkerPool>,
    lb: LoadBalancing,
    next: AtomicUsize,
}

impl MultiPool {
    /// `pools` pools of `size_per_pool` workers each, default [`Options`].
    ///
    /// # Panics
    /// If `pools == 0`.
    pub fn new(pools: usize, size_per_pool: usize, lb: LoadBalancing) -> Self {
        Self::with_options(pools, size_per_pool, lb, Options::default())
    }

    /// `pools` pools of `size_per_pool` workers each (0 = unbounded), all with `opts`.
    ///
    /// # Panics
    /// If `pools == 0` (ants `ErrInvalidMultiPoolSize`).
    pub fn with_options(
        pools: usize,
        size_per_pool: usize,
        lb: LoadBalancing,
        opts: Options,
    ) -> Self {
        assert!(
            pools > 0,
            "gosync::workerpool::MultiPool needs at least one pool"
        );
        MultiPool {
            pools: (0..pools)
                .map(|_| WorkerPool::with_options(size_per_pool, opts.clone()))
                .collect(),
            lb,
            next: AtomicUsize::new(0),
        }
    }

    fn least_loaded(&self) -> usize {
        (0..self.pools.len())
            .min_by_key(|&i| self.pools[i].pending())
            .unwrap_or(0)
    }

    fn pick(&self) -> usize {
        match self.lb {
            LoadBalancing::RoundRobin => {
                self.next.fetch_add(1, Ordering::Relaxed) % self.pools.len()
            }
            LoadBalancing::LeastTasks => self.least_loaded(),
        }
    }

    fn submit_task(&self, task: Task, block: Block) -> Result<(), PoolError> {
        let i = self.pick();
        // First try without blocking so a full pool can hand over to a less loaded one.
        match self.pools[i].submit_task(task, Block::No) {
            Ok(_) => Ok(()),
            Err((PoolError::Overloaded, task)) => {
                let j = self.least_loaded();
                self.pools[j]
                    .submit_task(task, block)
                    .map(drop)
                    .map_err(|(e, _)| e)
            }
            Err((e, _)) => Err(e),
        }
    }

    /// Submits to the pool chosen by the [`LoadBalancing`] strategy; blocks when full (see
    /// [`WorkerPool::submit`]).
    #[doc(alias = "Submit")]
    pub fn submit<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), PoolError> {
        self.submit_task(Task::new(f), Block::Forever)
    }

    /// Never blocks: [`PoolError::Overloaded`] when the chosen pools are full.
    pub fn try_submit<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), PoolError> {
        self.submit_task(Task::new(f), Block::No)
    }

    /// Submits, blocking at most `timeout` for room ([`PoolError::Timeout`] after that).
    pub fn submit_timeout<F: FnOnce() + Send + 'static>(
        &self,
        f: F,
        timeout: Duration,
    ) -> Result<(), PoolError> {
        self.submit_task(
            Task::new(f),
            Block::Until(crate::primitive::now() + timeout),
        )
    }

    /// Submits a task whose result is collected with [`TaskHandle::join`].
    pub fn spawn<T, F>(&self, f: F) -> Result<TaskHandle<T>, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (handle, task) = task_with_handle(f);
        self.submit_task(task, Block::Forever).map(|_| handle)
    }

    /// The pools, for per-pool observation (ants `RunningByIndex`, `FreeByIndex`).
    pub fn pools(&self) -> &[WorkerPool] {
        &self.pools
    }
    /// Total capacity.
    pub fn cap(&self) -> usize {
        self.pools.iter().map(WorkerPool::cap).sum()
    }
    /// Live workers over all pools.
    pub fn running(&self) -> usize {
        self.pools.iter().map(WorkerPool::running).sum()
    }
    /// Free capacity over all pools (`usize::MAX` if any pool is unbounded).
    pub fn free(&self) -> usize {
        self.pools
            .iter()
            .map(WorkerPool::free)
            .fold(0usize, usize::saturating_add)
    }
    /// Blocked submitters over all pools.
    pub fn waiting(&self) -> usize {
        self.pools.iter().map(WorkerPool::waiting).sum()
    }
    /// Queued tasks over all pools.
    pub fn queued(&self) -> usize {
        self.pools.iter().map(WorkerPool::queued).sum()
    }
    /// Per-pool statistics.
    pub fn stats(&self) -> Vec<PoolStats> {
        self.pools.iter().map(WorkerPool::stats).collect()
    }
    /// Tunes every pool to `size_per_pool` (ants `MultiPool.Tune`).
    pub fn tune(&self, size_per_pool: usize) {
        self.pools.iter().for_each(|p| p.tune(size_per_pool))
    }
    /// Waits for every task in every pool.
    pub fn wait(&self) {
        self.pools.iter().for_each(WorkerPool::wait)
    }
    /// [`WorkerPool::stop`] on every pool; returns the total number of discarded tasks.
    pub fn stop(&self) -> usize {
        let dropped = self.pools.iter().map(WorkerPool::release).sum();
        self.pools.iter().for_each(|p| {
            p.stop();
        });
        dropped
    }
    /// [`WorkerPool::stop_wait`] on every pool.
    pub fn stop_wait(&self) {
        self.pools.iter().for_each(WorkerPool::stop_wait)
    }
    /// Stops every pool, waiting at most `timeout` in total (ants `MultiPool.ReleaseTimeout`).
    pub fn release_timeout(&self, timeout: Duration) -> Result<(), PoolError> {
        let deadline = crate::primitive::now() + timeout;
        for p in &self.pools {
            p.release();
        }
        for p in &self.pools {
            let left = deadline.saturating_duration_since(crate::primitive::now());
            p.release_timeout(left)?;
        }
        Ok(())
    }
    /// Reopens every pool (ants `Reboot`).
    pub fn reboot(&self) {
        self.pools.iter().for_each(WorkerPool::reboot)
    }
    /// Whether the pools are closed.
    pub fn is_closed(&self) -> bool {
        self.pools.iter().all(WorkerPool::is_closed)
    }
}
