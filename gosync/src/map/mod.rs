//! Concurrent maps: Go's `sync.Map` and the other ways Go code shares a map.
//!
//! None of them hands out a lock guard, so no call can deadlock another, and none runs a user
//! callback while holding a lock unless its docs say so (the `entry` and `retain` closures of
//! the lock-based maps, and `upsert`/`remove_if`, do: they must not call the same map).
//! [`SyncMap::pin`] lends references without a lock: it only delays memory reclamation.
//!
//! # The API Rust users expect
//!
//! | | [`SyncMap`] | [`ShardedMap`] | [`RwMap`] | [`TreeMap`] | [`TimedMap`] |
//! |---|---|---|---|---|---|
//! | insert-or-modify in one step | [`compute`](SyncMap::compute), [`update`](SyncMap::update), [`update_or_insert`](SyncMap::update_or_insert) (closure outside the lock, may rerun) | [`entry`](ShardedMap::entry) (closure under the shard lock) | [`entry`](RwMap::entry) | [`entry`](TreeMap::entry) | – |
//! | `retain` | ✓ (closure outside the lock) | ✓ | ✓ | ✓ | ✓ |
//! | iteration | [`pin().iter()`](Pinned::iter): references, each key at most once | [`iter`](ShardedMap::iter): copies, a shard at a time | [`iter`](RwMap::iter): a copy | [`iter`](TreeMap::iter): a copy, in order | – |
//! | `reserve`, `capacity` | ✓ | ✓ | ✓ | (a B-tree has none) | [`max_capacity`](TimedMapBuilder::max_capacity) |
//! | hasher parameter | ✓ | ✓ | ✓ | (ordered) | ✓ |
//! | `Extend`, `FromIterator`, `IntoIterator` | ✓ | ✓ | ✓ | ✓ | – |
//! | serde (feature `serde`) | ✓ | ✓ | ✓ | ✓ | – |
//! | size bound, eviction listener with cause | – | – | – | – | ✓ |
//!
//! # Which one should I use?
//!
//! | map | use it when | reads | writes | `len` |
//! |---|---|---|---|---|
//! | [`SyncMap`] | the default: caches, registries, anything Go puts in `sync.Map` | lock-free | per-shard lock | O(shards) exact |
//! | [`ShardedMap`] | you want orcaman/concurrent-map's API (`upsert`, `remove_if`, `pop`) | shard read lock | shard write lock | O(shards) |
//! | [`RwMap`] | small maps, few threads, simplest possible code (the seed's `map + RWMutex`) | read lock | write lock | O(1) |
//! | [`TimedMap`] | entries expire after a per-entry TTL; a size-bounded cache (W-TinyLFU); eviction listener | shard lock | shard lock | O(shards) |
//! | [`TreeMap`] | you need order: `range`, `first`, `last`, `floor`, `ceiling` | read lock | write lock | O(1) |
//!
//! # Why Go's built-in map needs one of these, and why Rust already knows
//!
//! Go lets several goroutines write one `map` and kills the process at run time when it
//! notices (`fatal error: concurrent map writes`). In Rust the unsynchronised program does not
//! compile, because writing a `HashMap` needs `&mut` and two threads cannot both hold one:
//!
//! ```compile_fail,E0499
//! use std::collections::HashMap;
//!
//! let mut m = HashMap::new();
//! std::thread::scope(|s| {
//!     s.spawn(|| m.insert(1, 1)); // error[E0499]: `m` borrowed as mutable more than once
//!     s.spawn(|| m.insert(2, 2));
//! });
//! ```
//!
//! Share one of the maps below instead (`cargo run --example map_concurrent_write`).
//!
//! `cargo run --release -p gosync-bench -- map` measures these maps side by side with Go's
//! `sync.Map`, dashmap, papaya, scc and moka; the figures are in `docs/benchmarks.md`.

/// The hasher [`SyncMap`] and [`ShardedMap`] use unless given another: foldhash (the default
/// of `hashbrown`), randomly seeded per map like Go's runtime map hash, and several times
/// faster than std's SipHash for small keys. It is not designed to resist deliberate collision
/// attacks (HashDoS) as SipHash is: for maps keyed by untrusted input, build the map with
/// `with_hasher(std::collections::hash_map::RandomState::new())`.
pub type DefaultHashBuilder = foldhash::fast::RandomState;

mod reclaim;
#[cfg(feature = "serde")]
mod serde_impls;
mod sync_map;

pub use sync_map::{IntoIter as SyncMapIntoIter, Iter as SyncMapIter, Pinned, SyncMap};
mod lock;
mod rw_map;
mod sharded;
#[cfg(not(loom))]
mod sweeper;
#[cfg(not(loom))]
mod timed_map;
#[cfg(not(loom))]
mod timed_store;
mod tree_map;

pub use rw_map::RwMap;
pub use sharded::{Entry, OccupiedEntry, ShardedIter, ShardedMap, VacantEntry};
#[cfg(not(loom))]
pub use timed_map::{EvictionPolicy, ExpiryReason, TimedMap, TimedMapBuilder};
pub use tree_map::TreeMap;
