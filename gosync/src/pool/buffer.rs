//! [`BufferPool`]: byte buffers that never pin oversized allocations (Go issue 23199).

use core::fmt;
use core::ops::{Deref, DerefMut};
use std::time::Duration;

use super::{Pool, PoolStats};
use crate::primitive::atomic::{AtomicU64, Ordering};

/// A pooled byte buffer: a `Vec<u8>` plus the utilization history the pool's retention rule
/// needs. Dereferences to `Vec<u8>`; implements [`std::io::Write`] and [`fmt::Write`].
#[derive(Default, Clone, PartialEq, Eq)]
pub struct Buffer {
    buf: Vec<u8>,
    /// Consecutive under-utilized uses (see [`BufferPool`]).
    strikes: u8,
}

impl Buffer {
    /// Wraps a `Vec` (no strikes).
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Buffer { buf, strikes: 0 }
    }

    /// Unwraps the `Vec`.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// Consecutive uses so far in which less than the required fraction of the capacity was
    /// filled.
    pub fn strikes(&self) -> u8 {
        self.strikes
    }
}

impl From<Vec<u8>> for Buffer {
    fn from(v: Vec<u8>) -> Self {
        Buffer::from_vec(v)
    }
}

impl Deref for Buffer {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.buf
    }
}

impl DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("len", &self.buf.len())
            .field("capacity", &self.buf.capacity())
            .field("strikes", &self.strikes)
            .finish()
    }
}

impl std::io::Write for Buffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl fmt::Write for Buffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.buf.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Settings of a [`BufferPool`]. `BufferConfig::default()` is encoding/json v2's rule with
/// `fmt`'s 64 KiB hard cap.
#[derive(Debug, Clone)]
pub struct BufferConfig {
    /// Capacity of a buffer made by the pool when none is idle. Default 0 (grows on demand).
    pub initial_capacity: usize,
    /// Buffers with at most this capacity are always kept. Default 4 KiB.
    pub small_capacity: usize,
    /// Buffers with more than this capacity are never kept (`fmt`'s and `log`'s rule).
    /// Default 64 KiB.
    pub max_capacity: usize,
    /// A use counts as well utilized when `len * util_denominator >= capacity`. Default 4 (a
    /// quarter of the capacity).
    pub util_denominator: usize,
    /// Under-utilized uses tolerated in a row; the next one discards the buffer. Default 4,
    /// which bounds the worst-case utilization at 25% / (1 + 4) = 5%.
    pub max_strikes: u8,
    /// Run a cleanup cycle on this interval on a background thread. Default: none.
    pub aging: Option<Duration>,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            initial_capacity: 0,
            small_capacity: 4 << 10,
            max_capacity: 64 << 10,
            util_denominator: 4,
            max_strikes: 4,
            aging: None,
        }
    }
}

/// What [`BufferPool::put`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Kept for reuse.
    Kept,
    /// Dropped: capacity above [`BufferConfig::max_capacity`].
    Oversized,
    /// Dropped: too many under-utilized uses in a row.
    Underused,
}

/// A pool of byte buffers with a retention rule that never keeps an oversized buffer.
///
/// The classic Go buffer pool (`sync.Pool` of `bytes.Buffer`, `Reset` then `Put`) keeps every
/// buffer however large it grew, so one 10 MiB response pins 10 MiB per pooled buffer for as long
/// as the pool is in use (golang/go#23199). This pool applies, on every [`put`](Self::put):
///
/// 1. capacity ≤ `small_capacity` (4 KiB): keep;
/// 2. capacity > `max_capacity` (64 KiB): drop (the `fmt`/`log` rule);
/// 3. otherwise encoding/json v2's rule: if at least a quarter of the capacity was used
///    (`len ≥ cap/4` at `put`), keep and reset the strikes; else count a strike and drop the
///    buffer at the fifth under-utilized use in a row.
///
/// Utilization is read from `len()` at `put`, so return the buffer with its contents: the pool
/// clears it.
///
/// Kept buffers go to one of two [`Pool`]s: *small* (capacity ≤ `small_capacity`) and *large*.
/// [`get`](Self::get) takes a small buffer first and a large one only when no small one is idle,
/// so after a burst of large buffers an ordinary workload keeps using small ones and the large
/// ones sit idle and age out over two [`cleanup`](Self::cleanup)s instead of being recycled for
/// small jobs (the "memory waste" trap). A large buffer whose last use was under-utilized (it
/// carries a strike) is dropped at the next cleanup instead of lingering as a victim. [`get_with_capacity`](Self::get_with_capacity) asks for
/// a large one on purpose. [`stats`](Self::stats) reports the retained bytes (the sum of idle
/// capacities).
///
/// ```
/// use gosync::pool::BufferPool;
/// use std::io::Write;
///
/// let pool = BufferPool::new();
/// let mut b = pool.get();
/// write!(b, "hello {}", 42).unwrap();
/// assert_eq!(&b[..], b"hello 42");
/// pool.put(b);
///
/// let mut big = pool.get();
/// big.resize(1 << 20, 0);     // a 1 MiB one-off
/// pool.put(big);              // dropped, not pinned
/// assert_eq!(pool.stats().discarded_oversized, 1);
/// ```
#[doc(alias = "bytes.Buffer")]
pub struct BufferPool {
    small: Pool<Buffer>,
    large: Pool<Buffer>,
    cfg: BufferConfig,
    oversized: AtomicU64,
    underused: AtomicU64,
}

/// Statistics of a [`BufferPool`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BufferStats {
    /// Statistics of the pool of small buffers (`retained` in bytes of capacity).
    pub small: PoolStats,
    /// Statistics of the pool of large buffers (`retained` in bytes of capacity).
    pub large: PoolStats,
    /// Bytes of capacity held by idle buffers (both generations).
    pub retained: usize,
    /// Buffers dropped at `put` for exceeding `max_capacity`.
    pub discarded_oversized: u64,
    /// Buffers dropped at `put` after too many under-utilized uses.
    pub discarded_underused: u64,
}

impl BufferPool {
    /// A pool with [`BufferConfig::default`].
    pub fn new() -> Self {
        Self::with_config(BufferConfig::default())
    }

    /// A pool with the given settings.
    ///
    /// # Panics
    ///
    /// If `util_denominator` is zero or `small_capacity > max_capacity`.
    pub fn with_config(cfg: BufferConfig) -> Self {
        assert!(
            cfg.util_denominator > 0,
            "gosync::pool::BufferPool: util_denominator must be at least 1"
        );
        assert!(
            cfg.small_capacity <= cfg.max_capacity,
            "gosync::pool::BufferPool: small_capacity ({}) must not exceed max_capacity ({})",
            cfg.small_capacity,
            cfg.max_capacity
        );
        let make = |initial: usize| {
            #[allow(unused_mut)] // only mutated outside loom builds
            let mut b = Pool::builder(move || Buffer::from_vec(Vec::with_capacity(initial)))
                .weigher(|b: &Buffer| b.capacity())
                // A buffer whose last use was under-utilized does not survive a cycle.
                .survives_cleanup(|b: &Buffer| b.strikes == 0);
            #[cfg(not(loom))]
            if let Some(d) = cfg.aging {
                b = b.aging(d);
            }
            b.build()
        };
        // Both generations make new buffers the same way, though `get` never asks them to (it
        // calls `fresh` once neither has an idle buffer).
        BufferPool {
            small: make(cfg.initial_capacity),
            large: make(cfg.initial_capacity),
            cfg,
            oversized: AtomicU64::new(0),
            underused: AtomicU64::new(0),
        }
    }

    /// An empty buffer: an idle small one, else an idle large one, else a new one with
    /// `initial_capacity`.
    #[inline]
    pub fn get(&self) -> Buffer {
        match self.small.try_get() {
            Some(b) => b,
            None => match self.large.try_get() {
                Some(b) => b,
                None => self.fresh(),
            },
        }
    }

    /// A new buffer with `initial_capacity`.
    #[cold]
    fn fresh(&self) -> Buffer {
        Buffer::from_vec(Vec::with_capacity(self.cfg.initial_capacity))
    }

    /// An empty buffer with `capacity() >= n`: requests above `small_capacity` try the large
    /// buffers first.
    pub fn get_with_capacity(&self, n: usize) -> Buffer {
        let mut b = if n > self.cfg.small_capacity {
            match self.large.try_get() {
                Some(b) => b,
                None => self.get(),
            }
        } else {
            self.get()
        };
        b.reserve(n);
        b
    }

    /// Returns a buffer, applying the retention rule (see the type docs); says what happened.
    #[inline]
    pub fn put(&self, mut b: Buffer) -> Retention {
        let verdict = self.judge(&mut b);
        match verdict {
            Retention::Kept => {
                b.clear();
                if b.capacity() <= self.cfg.small_capacity {
                    self.small.put(b);
                } else {
                    self.large.put(b);
                }
            }
            Retention::Oversized => {
                self.oversized.fetch_add(1, Ordering::Relaxed);
            }
            Retention::Underused => {
                self.underused.fetch_add(1, Ordering::Relaxed);
            }
        }
        verdict
    }

    /// Returns a plain `Vec` (no strike history).
    pub fn put_vec(&self, v: Vec<u8>) -> Retention {
        self.put(Buffer::from_vec(v))
    }

    fn judge(&self, b: &mut Buffer) -> Retention {
        let cap = b.capacity();
        if cap <= self.cfg.small_capacity {
            b.strikes = 0;
            Retention::Kept
        } else if cap > self.cfg.max_capacity {
            Retention::Oversized
        } else if b.len().saturating_mul(self.cfg.util_denominator) >= cap {
            b.strikes = 0;
            Retention::Kept
        } else if b.strikes >= self.cfg.max_strikes {
            Retention::Underused
        } else {
            b.strikes += 1;
            Retention::Kept
        }
    }

    /// One aging cycle of both underlying [`Pool`]s.
    pub fn cleanup(&self) {
        self.small.cleanup();
        self.large.cleanup();
    }

    /// Statistics, including retained bytes.
    pub fn stats(&self) -> BufferStats {
        let small = self.small.stats();
        let large = self.large.stats();
        BufferStats {
            small,
            large,
            retained: small.retained + large.retained,
            discarded_oversized: self.oversized.load(Ordering::Relaxed),
            discarded_underused: self.underused.load(Ordering::Relaxed),
        }
    }

    /// The settings.
    pub fn config(&self) -> &BufferConfig {
        &self.cfg
    }
}

impl Default for BufferPool {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("config", &self.cfg)
            .field("stats", &self.stats())
            .finish()
    }
}
