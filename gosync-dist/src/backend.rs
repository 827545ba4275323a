//! The backend-neutral boundary: what code that only needs "a lock across processes with a
//! fencing token" depends on.
//!
//! Write such code against [`DistMutex`] and [`DistGuard`] instead of [`crate::Mutex`]: a
//! later backend (PostgreSQL advisory locks, for instance, with a sequence for the token and
//! the connection as the session) implements the same two traits, and the code does not
//! change.
//!
//! ```no_run
//! use gosync_dist::{DistGuard, DistMutex};
//!
//! /// Runs `job` under the lock, on whatever backend `lock` comes from.
//! async fn exclusively<M: DistMutex>(lock: &M, job: impl FnOnce(u64)) -> gosync_dist::Result<()> {
//!     let guard = lock.lock().await?;
//!     job(guard.token().get());
//!     guard.unlock().await
//! }
//! ```

use std::future::Future;
use std::time::Duration;

use crate::error::Result;

/// A fencing token: a number that grows with every acquisition of the same lock, in
/// acquisition order. A resource that remembers the largest token it has seen and refuses
/// smaller ones cannot be corrupted by a holder that lost the lock without knowing (a long
/// pause, an expired lease): its token is smaller than its successor's.
///
/// With etcd it is the create revision of the holder's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(u64);

impl FencingToken {
    /// Wraps a token value.
    pub const fn new(v: u64) -> Self {
        FencingToken(v)
    }
    /// The token's value.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for FencingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A mutual-exclusion lock shared by processes (see the module docs).
pub trait DistMutex: Send + Sync {
    /// What an acquisition returns; releasing it unlocks.
    type Guard: DistGuard;
    /// Waits until the lock is held.
    fn lock(&self) -> impl Future<Output = Result<Self::Guard>> + Send;
    /// Takes the lock if it is free now; `Ok(None)` if another holder has it.
    fn try_lock(&self) -> impl Future<Output = Result<Option<Self::Guard>>> + Send;
    /// Waits at most `timeout`; [`crate::Error::Timeout`] after that, with nothing left behind.
    fn lock_timeout(&self, timeout: Duration) -> impl Future<Output = Result<Self::Guard>> + Send;
}

/// A held distributed lock.
pub trait DistGuard: Send {
    /// The fencing token of this hold.
    fn token(&self) -> FencingToken;
    /// Whether the hold may have ended without an unlock (the backend's session is gone).
    fn is_lost(&self) -> bool;
    /// Resolves when the hold may have ended without an unlock.
    fn lost(&self) -> impl Future<Output = ()> + Send + 'static;
    /// Releases the lock and reports whether it was still held ([`crate::Error::LockLost`]).
    fn unlock(self) -> impl Future<Output = Result<()>> + Send;
}
