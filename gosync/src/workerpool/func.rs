//! [`PoolWithFunc`]: one function, many arguments (ants' `PoolWithFunc`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::engine::{Block, Core};
use super::pool::pool_common_methods;
use super::{Options, PoolError};
use crate::primitive::now;

/// A worker pool that runs one function on each submitted argument (ants'
/// `PoolWithFunc` / `PoolWithFuncGeneric[T]`).
///
/// Arguments are queued as they are — no closure is boxed per task, so this is the cheapest
/// way to feed many small jobs of one kind. Everything else (capacity, [`Options`], panics,
/// nested submission, pause, stop, wait) behaves as in [`WorkerPool`](super::WorkerPool).
///
/// # Example
/// ```
/// use gosync::workerpool::{Options, PoolWithFunc};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let total = Arc::new(AtomicU64::new(0));
/// let t = Arc::clone(&total);
/// let pool = PoolWithFunc::with_options(3, Options::new().queue_capacity(usize::MAX), move |n: u64| {
///     t.fetch_add(n * n, Ordering::Relaxed);
/// });
/// for n in 1..=10 {
///     pool.invoke(n).unwrap();
/// }
/// pool.wait();
/// assert_eq!(total.load(Ordering::Relaxed), 385);
/// ```
#[doc(alias = "NewPoolWithFunc")]
pub struct PoolWithFunc<A: Send + 'static> {
    core: Arc<Core<A>>,
}

impl<A: Send + 'static> fmt::Debug for PoolWithFunc<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolWithFunc")
            .field("stats", &self.core.stats())
            .finish()
    }
}

impl<A: Send + 'static> PoolWithFunc<A> {
    /// A pool of at most `cap` workers (0 = unbounded) running `f`, default [`Options`].
    pub fn new(cap: usize, f: impl Fn(A) + Send + Sync + 'static) -> Self {
        Self::with_options(cap, Options::default(), f)
    }

    /// A pool of at most `cap` workers (0 = unbounded) running `f`.
    ///
    /// # Panics
    /// If `opts.prealloc` is set with `cap == 0`.
    pub fn with_options(cap: usize, opts: Options, f: impl Fn(A) + Send + Sync + 'static) -> Self {
        PoolWithFunc {
            core: Core::new(cap, opts, Box::new(f)),
        }
    }

    /// Queues `arg` for the function (ants `Invoke`); blocks when full like
    /// [`WorkerPool::submit`](super::WorkerPool::submit).
    #[doc(alias = "Invoke")]
    pub fn invoke(&self, arg: A) -> Result<(), PoolError> {
        self.core
            .submit(arg, Block::Forever)
            .map(drop)
            .map_err(|(e, _)| e)
    }

    /// Never blocks; on failure the argument comes back with the reason.
    pub fn try_invoke(&self, arg: A) -> Result<(), (PoolError, A)> {
        self.core.submit(arg, Block::No).map(drop)
    }

    /// Blocks at most `timeout` for room; on failure the argument comes back with the reason.
    pub fn invoke_timeout(&self, arg: A, timeout: Duration) -> Result<(), (PoolError, A)> {
        self.core
            .submit(arg, Block::Until(now() + timeout))
            .map(drop)
    }

    pool_common_methods!();
}

impl<A: Send + 'static> Drop for PoolWithFunc<A> {
    fn drop(&mut self) {
        self.core.close(super::engine::DRAINING);
    }
}
