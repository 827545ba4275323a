//! # gosync — Go's concurrency toolkit, in Rust
//!
//! gosync brings the tools Go programmers reach for whenever goroutines share anything — the
//! `sync` package, the patterns built on it, and `golang.org/x/sync` — to Rust, with Go's
//! semantics and Rust's safety: where Go documents a pitfall, gosync makes it a compile error,
//! a clear panic, or a detector report.
//!
//! ## Go → gosync
//!
//! | Go | gosync |
//! |---|---|
//! | `sync.Mutex` | [`Mutex`] |
//! | reentrant lock (owner = goroutine id / token) | [`ReentrantMutex`], [`TokenMutex`] |
//! | `sync.RWMutex` | [`RwMutex`] |
//! | `sync.WaitGroup` | [`WaitGroup`] |
//! | `sync.Cond` | [`Cond`] |
//! | `sync.Once`, `OnceFunc`, `OnceValue(s)` | [`Once`], [`OnceFunc`], [`OnceValue`], [`OnceValues`], [`TryOnce`] |
//! | `sync.Map`, concurrent-map, RWMutex map, TTL map, tree map | [`map`] |
//! | `sync.Pool`, buffer pools | [`pool`] |
//! | `database/sql` pool, fatih/pool, gomemcache | [`connpool`] |
//! | ants, gammazero/workerpool | [`workerpool`] |
//! | `golang.org/x/sync` semaphore, singleflight, errgroup | [`x`] |
//! | go-deadlock / `go vet` | [`detect`] (feature `deadlock-detection`) |
//! | `runtime.SetMutexProfileFraction`, `go tool pprof -mutex` / `-block` | [`profile`] |
//!
//! Crates written against [`lock_api`](https://docs.rs/lock_api) get Go's algorithms through
//! [`RawMutex`] and [`RawRwMutex`]: `lock_api::Mutex<gosync::RawMutex, T>`.
//!
//! ## Feature flags
//!
//! - `deadlock-detection` (off): lock-order, recursion and wait-for-cycle reports. Zero cost
//!   when off.
//! - `serde` (off): `Serialize`/`Deserialize` for [`SyncMap`](map::SyncMap),
//!   [`ShardedMap`](map::ShardedMap), [`RwMap`](map::RwMap) and [`TreeMap`](map::TreeMap), as
//!   plain maps (`TimedMap` has none: its deadlines do not survive a process).
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub(crate) mod primitive;
/// Under `cfg(loom)` only: the fake clock's test hooks (`reset`, `advance`).
#[cfg(loom)]
#[doc(hidden)]
pub use primitive::loom_clock;

pub mod connpool;
pub mod detect;
pub(crate) mod diag;
pub mod map;
pub mod pitfalls;
pub mod pool;
pub mod profile;
pub mod sync;
#[cfg(not(loom))] // OS threads + crossbeam-deque: checked by tests and TSan, not loom
pub mod workerpool;
pub mod x;

#[doc(inline)]
pub use crate::sync::*;

/// The README's code blocks, compiled and run as doctests so that its examples cannot rot
/// (`cargo test -p gosync --doc readme`).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}
