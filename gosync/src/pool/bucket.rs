//! [`BucketPool`]: power-of-two tiers of byte buffers (vitess `bucketpool`).

use core::fmt;

use super::{Pool, PoolStats};
use crate::primitive::atomic::{AtomicU64, Ordering};

/// Byte buffers in power-of-two tiers from `min` to `max`, so that a small request never gets
/// (and pins) a big buffer — the "memory waste" trap of a single buffer pool.
///
/// Tiers are `min, 2·min, 4·min, …` and a last tier of exactly `max`. Each tier is a [`Pool`].
///
/// - [`get(size)`](Self::get) takes from the smallest tier whose size is ≥ `size` and returns
///   an empty `Vec` with `capacity() ≥ size`. Requests above `max` are plain allocations.
/// - [`put(buf)`](Self::put) files the buffer under the largest tier whose size is ≤ its
///   capacity (rounding **down**, so every buffer in a tier can serve every request routed to
///   it). Buffers smaller than `min` or larger than `max` are dropped.
///
/// # Differences from vitess
///
/// vitess looks the tier up by rounding the capacity *up*, so a foreign buffer of, say, 3000
/// bytes could land in the 4096 tier and a later `Get(4096)` would slice past its capacity.
/// Rounding down makes that impossible; buffers above `max` are dropped instead of pinned.
/// Buffers come back empty (`len() == 0`) rather than as `[:size]` slices of old contents.
///
/// ```
/// use gosync::pool::BucketPool;
///
/// let pool = BucketPool::new(512, 64 << 10);
/// let b = pool.get(1000);               // from the 1024 tier
/// assert!(b.capacity() >= 1000);
/// pool.put(b);
/// assert_eq!(pool.stats().retained, 1024);
/// ```
#[doc(alias = "bucketpool")]
pub struct BucketPool {
    min: usize,
    max: usize,
    /// (tier size, pool); sizes strictly increasing, last = `max`.
    tiers: Vec<(usize, Pool<Vec<u8>>)>,
    unpooled: AtomicU64,
    discarded: AtomicU64,
}

/// Statistics of a [`BucketPool`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketStats {
    /// Per tier: (tier size in bytes, that tier's pool statistics).
    pub tiers: Vec<(usize, PoolStats)>,
    /// Bytes of capacity held by idle buffers in all tiers.
    pub retained: usize,
    /// `get` requests larger than `max` (served by a plain allocation).
    pub unpooled_gets: u64,
    /// Buffers dropped at `put` because their capacity was below `min` or above `max`.
    pub discarded: u64,
}

fn floor_log2(x: usize) -> u32 {
    usize::BITS - 1 - x.leading_zeros()
}

impl BucketPool {
    /// Tiers from `min` to `max` (see the type docs).
    ///
    /// # Panics
    ///
    /// If `min` is zero or `max < min`.
    pub fn new(min: usize, max: usize) -> Self {
        assert!(
            min > 0,
            "gosync::pool::BucketPool: min size must be at least 1"
        );
        assert!(
            max >= min,
            "gosync::pool::BucketPool: max size ({max}) must be at least min size ({min})"
        );
        let mut sizes = Vec::new();
        let mut s = min;
        while s < max {
            sizes.push(s);
            s = match s.checked_mul(2) {
                Some(n) => n,
                None => break,
            };
        }
        sizes.push(max);
        let tiers = sizes
            .into_iter()
            .map(|size| {
                let pool = Pool::builder(move || Vec::with_capacity(size))
                    .weigher(|v: &Vec<u8>| v.capacity())
                    .build();
                (size, pool)
            })
            .collect();
        BucketPool {
            min,
            max,
            tiers,
            unpooled: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
        }
    }

    /// Sizes of the tiers, smallest first.
    pub fn tier_sizes(&self) -> Vec<usize> {
        self.tiers.iter().map(|(s, _)| *s).collect()
    }

    /// The tier serving a request of `size` bytes (`None` above `max`).
    fn tier_for_get(&self, size: usize) -> Option<usize> {
        if size > self.max {
            return None;
        }
        if size <= self.min {
            return Some(0);
        }
        // Smallest i with min << i >= size.
        let q = size.div_ceil(self.min);
        let i = (usize::BITS - (q - 1).leading_zeros()) as usize;
        Some(i.min(self.tiers.len() - 1))
    }

    /// The tier a buffer of capacity `cap` belongs to (`None` outside `[min, max]`).
    fn tier_for_put(&self, cap: usize) -> Option<usize> {
        if cap < self.min || cap > self.max {
            return None;
        }
        let last = self.tiers.len() - 1;
        let mut i = (floor_log2(cap / self.min) as usize).min(last);
        while i < last && self.tiers[i + 1].0 <= cap {
            i += 1;
        }
        while self.tiers[i].0 > cap {
            i -= 1;
        }
        Some(i)
    }

    /// An empty buffer with `capacity() >= size`.
    #[inline]
    pub fn get(&self, size: usize) -> Vec<u8> {
        match self.tier_for_get(size) {
            Some(i) => self.tiers[i].1.get(),
            None => {
                self.unpooled.fetch_add(1, Ordering::Relaxed);
                Vec::with_capacity(size)
            }
        }
    }

    /// Returns a buffer to the tier its capacity rounds down to (cleared first), or drops it.
    /// Returns whether it was kept.
    #[inline]
    pub fn put(&self, mut buf: Vec<u8>) -> bool {
        match self.tier_for_put(buf.capacity()) {
            Some(i) => {
                buf.clear();
                self.tiers[i].1.put(buf);
                true
            }
            None => {
                self.discarded.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// One aging cycle in every tier.
    pub fn cleanup(&self) {
        for (_, p) in &self.tiers {
            p.cleanup();
        }
    }

    /// Statistics, including retained bytes.
    pub fn stats(&self) -> BucketStats {
        let tiers: Vec<(usize, PoolStats)> =
            self.tiers.iter().map(|(s, p)| (*s, p.stats())).collect();
        BucketStats {
            retained: tiers.iter().map(|(_, s)| s.retained).sum(),
            tiers,
            unpooled_gets: self.unpooled.load(Ordering::Relaxed),
            discarded: self.discarded.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for BucketPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BucketPool")
            .field("tiers", &self.tier_sizes())
            .field("retained", &self.stats().retained)
            .finish()
    }
}
