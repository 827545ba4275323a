//! [`BoundedPool`]: at most N idle objects (oxtoacart/bpool's leaky pool).

use core::fmt;
use core::mem::{self, ManuallyDrop};
use core::ops::{Deref, DerefMut};

use crossbeam_queue::ArrayQueue;

use crate::primitive::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A pool that keeps at most `capacity` idle objects; a `put` beyond that drops the object.
///
/// This is Effective Go's "leaky buffer" and oxtoacart/bpool's channel-backed pools: memory held
/// by idle objects is bounded by count, whatever the traffic. `get` never blocks: with nothing
/// idle it calls `new`. The idle objects sit in a bounded lock-free queue
/// (`crossbeam_queue::ArrayQueue`), which is exactly a buffered channel used non-blockingly.
///
/// Unlike [`Pool`](super::Pool), idle objects do not age: a bounded pool is for when you want a
/// fixed reserve (bpool's "keep the number of elements").
///
/// ```
/// use gosync::pool::BoundedPool;
///
/// let pool = BoundedPool::new(2, || vec![0u8; 16]).weigher(|v| v.capacity());
/// for _ in 0..3 {
///     pool.put(vec![0u8; 16]);
/// }
/// assert_eq!(pool.idle(), 2);            // the third put was dropped
/// assert_eq!(pool.stats().dropped, 1);
/// assert_eq!(pool.stats().retained, 32);
/// ```
#[doc(alias = "bpool")]
pub struct BoundedPool<T> {
    queue: ArrayQueue<T>,
    new: Box<dyn Fn() -> T + Send + Sync>,
    weigh: Option<fn(&T) -> usize>,
    retained: AtomicUsize,
    hits: AtomicU64,
    misses: AtomicU64,
    dropped: AtomicU64,
}

/// Statistics of a [`BoundedPool`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BoundedStats {
    /// Gets served from an idle object.
    pub hits: u64,
    /// Gets that found nothing idle.
    pub misses: u64,
    /// Puts dropped because the pool was full.
    pub dropped: u64,
    /// Idle objects now.
    pub idle: usize,
    /// Total weight of the idle objects (0 without a weigher).
    pub retained: usize,
    /// The most idle objects the pool keeps.
    pub capacity: usize,
}

impl<T: Send> BoundedPool<T> {
    /// A pool keeping at most `capacity` idle objects; `new` makes one when none is idle.
    ///
    /// # Panics
    ///
    /// If `capacity` is zero.
    pub fn new(capacity: usize, new: impl Fn() -> T + Send + Sync + 'static) -> Self {
        assert!(
            capacity > 0,
            "gosync::pool::BoundedPool: capacity must be at least 1"
        );
        BoundedPool {
            queue: ArrayQueue::new(capacity),
            new: Box::new(new),
            weigh: None,
            retained: AtomicUsize::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Sets a weigher (for example `Vec::capacity`) so that [`BoundedStats::retained`] reports
    /// the idle bytes.
    pub fn weigher(mut self, weigh: fn(&T) -> usize) -> Self {
        self.weigh = Some(weigh);
        self
    }

    /// An idle object if there is one.
    #[inline]
    pub fn try_get(&self) -> Option<T> {
        match self.queue.pop() {
            Some(x) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                if let Some(w) = self.weigh {
                    self.retained.fetch_sub(w(&x), Ordering::Relaxed);
                }
                Some(x)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// An idle object, or a new one.
    #[inline]
    pub fn get(&self) -> T {
        self.try_get().unwrap_or_else(|| (self.new)())
    }

    /// Like [`get`](Self::get), returned to the pool when the guard drops.
    pub fn get_guard(&self) -> BoundedGuard<'_, T> {
        BoundedGuard {
            pool: self,
            value: ManuallyDrop::new(self.get()),
        }
    }

    /// Keeps `x` if fewer than `capacity` objects are idle, otherwise drops it. Returns whether
    /// it was kept.
    #[inline]
    pub fn put(&self, x: T) -> bool {
        // Count the weight before the object becomes visible to `try_get`, so `retained` never
        // goes below zero.
        let w = self.weigh.map_or(0, |f| f(&x));
        if w != 0 {
            self.retained.fetch_add(w, Ordering::Relaxed);
        }
        match self.queue.push(x) {
            Ok(()) => true,
            Err(x) => {
                if w != 0 {
                    self.retained.fetch_sub(w, Ordering::Relaxed);
                }
                self.dropped.fetch_add(1, Ordering::Relaxed);
                drop(x);
                false
            }
        }
    }

    /// Idle objects now.
    pub fn idle(&self) -> usize {
        self.queue.len()
    }

    /// The most idle objects the pool keeps.
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// Statistics.
    pub fn stats(&self) -> BoundedStats {
        BoundedStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            idle: self.queue.len(),
            retained: self.retained.load(Ordering::Relaxed),
            capacity: self.queue.capacity(),
        }
    }
}

impl<T> fmt::Debug for BoundedPool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedPool")
            .field("idle", &self.queue.len())
            .field("capacity", &self.queue.capacity())
            .finish_non_exhaustive()
    }
}

/// An object borrowed from a [`BoundedPool`]; offered back when the guard drops.
#[must_use = "dropping the guard returns the object to the pool at once"]
#[clippy::has_significant_drop]
pub struct BoundedGuard<'a, T: Send> {
    pool: &'a BoundedPool<T>,
    value: ManuallyDrop<T>,
}

impl<T: Send> BoundedGuard<'_, T> {
    /// Keeps the object: it will not go back to the pool.
    pub fn take(mut this: Self) -> T {
        // SAFETY: `value` is initialized and never used again: `this` is forgotten right after.
        let v = unsafe { ManuallyDrop::take(&mut this.value) };
        mem::forget(this);
        v
    }
}

impl<T: Send> Deref for BoundedGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Send> DerefMut for BoundedGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: Send> Drop for BoundedGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: `value` is initialized (only `take` moves it out, and it forgets the guard).
        let v = unsafe { ManuallyDrop::take(&mut self.value) };
        self.pool.put(v);
    }
}
