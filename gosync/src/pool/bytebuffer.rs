//! [`ByteBufferPool`]: a self-calibrating buffer pool (valyala/bytebufferpool, calibrated on
//! capacity).

use core::fmt;

use super::{Pool, PoolStats};
use crate::primitive::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Smallest size class: 64 bytes.
const MIN_BIT_SIZE: u32 = 6;
/// Size classes 64 B, 128 B, …, 32 MiB.
const STEPS: usize = 20;
/// Calibrate once any class has seen this many puts (bytebufferpool's value).
pub const DEFAULT_CALIBRATE_THRESHOLD: u64 = 42_000;
/// The maximum size covers this fraction of puts.
const MAX_PERCENTILE: f64 = 0.95;

/// A buffer pool that learns its sizes from use: the default capacity of new buffers and the
/// largest capacity worth keeping.
///
/// Every [`put`](Self::put) counts the buffer in a histogram of size classes (64 B … 32 MiB,
/// powers of two). When some class reaches the threshold (42 000 puts, as in bytebufferpool),
/// the pool recalibrates: the default size becomes the most frequent class, and the maximum size
/// the largest class among the most frequent ones that together cover 95% of puts. Buffers
/// above the maximum are dropped at `put`; new buffers are made with the default capacity.
///
/// # Differences from bytebufferpool
///
/// bytebufferpool counts `len(b)` at `Put`; callers who `Reset` first (or who write less than
/// they reserved) teach it that every buffer is 64 bytes, and it settles on 128-byte defaults for
/// 1–2 KB workloads (valyala/bytebufferpool#15). This pool counts the buffer's **capacity** —
/// the memory the workload actually needed — so clearing before `put` is harmless.
/// A known limit of capacity-based calibration: capacities only grow, so after a workload moves
/// to smaller buffers the default shrinks only once the old large buffers have aged out (two
/// [`cleanup`](Self::cleanup)s) and new observations dominate.
///
/// ```
/// use gosync::pool::ByteBufferPool;
///
/// let pool = ByteBufferPool::with_threshold(100);
/// for _ in 0..200 {
///     let mut b = pool.get();
///     b.resize(1500, 0);   // the workload needs ~1.5 KB
///     b.clear();           // cleared before put: harmless here
///     pool.put(b);
/// }
/// assert_eq!(pool.default_size(), 2048);
/// ```
#[doc(alias = "bytebufferpool")]
pub struct ByteBufferPool {
    pool: Pool<Vec<u8>>,
    calls: [AtomicU64; STEPS],
    calibrating: AtomicBool,
    default_size: AtomicUsize,
    max_size: AtomicUsize,
    threshold: u64,
    calibrations: AtomicU64,
    discarded: AtomicU64,
}

/// Statistics of a [`ByteBufferPool`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteBufferStats {
    /// The underlying [`Pool`]'s statistics.
    pub pool: PoolStats,
    /// Bytes of capacity held by idle buffers.
    pub retained: usize,
    /// Capacity given to new buffers (0 before the first calibration).
    pub default_size: usize,
    /// Largest capacity kept at `put` (0 = no limit yet).
    pub max_size: usize,
    /// Calibrations run so far.
    pub calibrations: u64,
    /// Buffers dropped at `put` for exceeding `max_size`.
    pub discarded: u64,
}

/// Size class of a capacity: class `i` holds capacities up to `64 << i`.
fn class(cap: usize) -> usize {
    let mut n = cap.saturating_sub(1) >> MIN_BIT_SIZE;
    let mut idx = 0;
    while n > 0 {
        n >>= 1;
        idx += 1;
    }
    idx.min(STEPS - 1)
}

impl ByteBufferPool {
    /// A pool with bytebufferpool's calibration threshold.
    pub fn new() -> Self {
        Self::with_threshold(DEFAULT_CALIBRATE_THRESHOLD)
    }

    /// A pool that calibrates once some size class has seen `threshold` puts.
    ///
    /// # Panics
    ///
    /// If `threshold` is zero.
    pub fn with_threshold(threshold: u64) -> Self {
        assert!(
            threshold > 0,
            "gosync::pool::ByteBufferPool: the calibration threshold must be at least 1"
        );
        ByteBufferPool {
            pool: Pool::builder(Vec::new)
                .weigher(|v: &Vec<u8>| v.capacity())
                .build(),
            calls: core::array::from_fn(|_| AtomicU64::new(0)),
            calibrating: AtomicBool::new(false),
            default_size: AtomicUsize::new(0),
            max_size: AtomicUsize::new(0),
            threshold,
            calibrations: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
        }
    }

    /// An empty buffer: an idle one, or a new one with the calibrated default capacity.
    #[inline]
    pub fn get(&self) -> Vec<u8> {
        match self.pool.try_get() {
            Some(v) => v,
            None => Vec::with_capacity(self.default_size.load(Ordering::Relaxed)),
        }
    }

    /// Returns a buffer: counts its capacity, calibrates if due, keeps it unless it exceeds the
    /// calibrated maximum. Returns whether it was kept.
    #[inline]
    pub fn put(&self, mut buf: Vec<u8>) -> bool {
        let cap = buf.capacity();
        let c = class(cap);
        if self.calls[c].fetch_add(1, Ordering::Relaxed) + 1 > self.threshold {
            self.calibrate();
        }
        let max = self.max_size.load(Ordering::Relaxed);
        if max == 0 || cap <= max {
            buf.clear();
            self.pool.put(buf);
            true
        } else {
            self.discarded.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    #[cold]
    fn calibrate(&self) {
        // One calibration at a time; concurrent callers just go on.
        if self.calibrating.swap(true, Ordering::Acquire) {
            return;
        }
        let mut counts: Vec<(u64, usize)> = self
            .calls
            .iter()
            .enumerate()
            .map(|(i, c)| (c.swap(0, Ordering::Relaxed), (1usize << MIN_BIT_SIZE) << i))
            .collect();
        let total: u64 = counts.iter().map(|c| c.0).sum();
        // Most frequent first; ties go to the smaller size (stable sort keeps index order).
        counts.sort_by_key(|c| core::cmp::Reverse(c.0));
        let default_size = counts[0].1;
        let limit = (total as f64 * MAX_PERCENTILE) as u64;
        let mut sum = 0u64;
        let mut max_size = 0usize;
        for &(n, size) in &counts {
            if sum > limit || n == 0 {
                break;
            }
            sum += n;
            max_size = max_size.max(size);
        }
        self.default_size.store(default_size, Ordering::Relaxed);
        self.max_size.store(max_size, Ordering::Relaxed);
        self.calibrations.fetch_add(1, Ordering::Relaxed);
        self.calibrating.store(false, Ordering::Release);
    }

    /// Capacity given to new buffers (0 before the first calibration).
    pub fn default_size(&self) -> usize {
        self.default_size.load(Ordering::Relaxed)
    }

    /// Largest capacity kept at `put` (0 before the first calibration: no limit).
    pub fn max_size(&self) -> usize {
        self.max_size.load(Ordering::Relaxed)
    }

    /// One aging cycle of the underlying [`Pool`].
    pub fn cleanup(&self) {
        self.pool.cleanup()
    }

    /// Statistics, including retained bytes.
    pub fn stats(&self) -> ByteBufferStats {
        let pool = self.pool.stats();
        ByteBufferStats {
            pool,
            retained: pool.retained,
            default_size: self.default_size(),
            max_size: self.max_size(),
            calibrations: self.calibrations.load(Ordering::Relaxed),
            discarded: self.discarded.load(Ordering::Relaxed),
        }
    }
}

impl Default for ByteBufferPool {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ByteBufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteBufferPool")
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::class;

    #[test]
    fn classes() {
        assert_eq!(class(0), 0);
        assert_eq!(class(64), 0);
        assert_eq!(class(65), 1);
        assert_eq!(class(128), 1);
        assert_eq!(class(1500), 5);
        assert_eq!(class(2048), 5);
        assert_eq!(class(usize::MAX), 19);
    }
}
