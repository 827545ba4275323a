//! Object and buffer pools: Go's `sync.Pool` and the buffer pools built on its lessons.
//!
//! # Which one should I use?
//!
//! | you want | use | Go counterpart |
//! |---|---|---|
//! | reuse of any temporary object, per-thread fast, idle objects age out | [`Pool`] | `sync.Pool` |
//! | byte buffers of varying size that must never pin a huge allocation | [`BufferPool`] | `sync.Pool` + `fmt`'s 64 KiB cap, encoding/json v2's utilization rule |
//! | byte buffers for requests of known, widely varying sizes | [`BucketPool`] | vitess `bucketpool`, net/http's 2K/4K pools |
//! | byte buffers whose typical size you don't know in advance | [`ByteBufferPool`] | valyala/bytebufferpool |
//! | a fixed reserve: at most N idle objects, whatever the traffic | [`BoundedPool`] | oxtoacart/bpool, Effective Go's leaky buffer |
//!
//! A pool is for objects that are cheap to drop and costly to make. It is not for connections:
//! a [`Pool`] may drop any idle object at the next cleanup without telling anyone (Go's
//! contract); use [`crate::connpool`] for those.
//!
//! # Aging without a garbage collector
//!
//! Go empties its pools over two garbage collections. Rust has no collector, so every pool here
//! that ages does it in explicit *cycles*: [`Pool::cleanup`] (or an interval set with
//! [`PoolBuilder::aging`], run by a background thread that stops when the pool drops). One cycle
//! moves idle objects to a victim generation; the next drops what was not taken back.
//!
//! # Observability
//!
//! Every pool reports statistics: hits, misses, steals, victim hits, objects dropped by aging
//! and the bytes (or weight) retained by idle objects — see [`PoolStats`], [`BufferStats`],
//! [`BucketStats`], [`ByteBufferStats`], [`BoundedStats`].

mod bounded;
mod bucket;
mod buffer;
mod bytebuffer;
mod sync_pool;

pub use bounded::{BoundedGuard, BoundedPool, BoundedStats};
pub use bucket::{BucketPool, BucketStats};
pub use buffer::{Buffer, BufferConfig, BufferPool, BufferStats, Retention};
pub use bytebuffer::{ByteBufferPool, ByteBufferStats, DEFAULT_CALIBRATE_THRESHOLD};
pub use sync_pool::{Pool, PoolBuilder, PoolStats, Pooled};
