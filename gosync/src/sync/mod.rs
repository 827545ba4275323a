//! Go's `sync` package: locks, WaitGroup, Cond and the Once family.
//!
//! Everything here is re-exported at the crate root (`gosync::Mutex`, ...).

// -- Mutex family: Mutex, ReentrantMutex, TokenMutex --------------------------------------
#[cfg(feature = "lock-stats")]
mod lock_stats;
mod mutex;
#[cfg(not(gosync_stats))]
pub(crate) mod raw_mutex;
#[cfg(gosync_stats)]
#[doc(hidden)]
pub mod raw_mutex;
mod reentrant;
#[cfg(feature = "lock-stats")]
pub use lock_stats::LockStats;

#[allow(unused_imports)] // crate-internal hook for Cond
pub(crate) use mutex::guard_mutex;
pub use mutex::{
    ArcMutexGuard, AsyncMutexGuard, MappedMutexGuard, Mutex, MutexGuard, MutexLockFuture,
};
pub use reentrant::{ReentrantMutex, ReentrantMutexGuard, TokenMutex, TokenMutexGuard};

// -- RwMutex and Cond -------------------------------------------------------------------
mod backoff;
mod cond;
pub(crate) mod raw_rwmutex;
mod reader_bias;
mod rwmutex;
pub use cond::{AsyncCondGuard, Cond, CondGuard, CondWaitFuture};
pub use rwmutex::{
    ArcRwMutexReadGuard, ArcRwMutexWriteGuard, AsyncRwMutexReadGuard, AsyncRwMutexWriteGuard,
    MappedRwMutexReadGuard, MappedRwMutexWriteGuard, RwMutex, RwMutexReadFuture, RwMutexReadGuard,
    RwMutexWriteFuture, RwMutexWriteGuard,
};

// -- lock_api: the raw algorithms for `lock_api::Mutex` / `lock_api::RwLock` ---------------
#[cfg(not(loom))] // lock_api needs `const INIT`; loom's atomics are not const
mod lock_api_impls;
#[cfg(not(loom))]
pub use lock_api_impls::{RawMutex, RawRwMutex};

// -- WaitGroup and the Once family --------------------------------------------------------
mod once;
mod once_func;
pub(crate) mod wait_queue;
mod waitgroup;
pub use once::{Once, TryOnce};
pub use once_func::{OnceFunc, OnceValue, OnceValues};
pub use waitgroup::{WaitGroup, WaitGroupGuard, WaitGroupWait};

// -- end of sync ------------------------------------------------------------------------
