//! gosync's primitives across processes and hosts, on etcd.
//!
//! When one process is not enough, the locks of `gosync` stop at the process boundary. This
//! crate gives the same shapes to processes on many hosts that share an etcd cluster, with the
//! algorithms of Go's `clientv3/concurrency` package and its recipes:
//!
//! | Go (`clientv3/concurrency`, recipes) | gosync-dist |
//! |---|---|
//! | `Session` | [`Session`]: a lease kept alive in the background, `lost()` |
//! | `Mutex` (`Lock`, `TryLock`, `Unlock`, `IsOwner`) | [`Mutex`], [`MutexGuard`] with a [`FencingToken`] |
//! | recipe `RWMutex` | [`RwMutex`] |
//! | `Election` (`Campaign`, `Proclaim`, `Resign`, `Leader`, `Observe`) | [`Election`] |
//! | (none) | [`Semaphore`]: N holders, weighted |
//! | recipe `DoubleBarrier` | [`Barrier`] (`enter` / `leave` with a count) |
//!
//! # Example
//! ```no_run
//! use gosync_dist::{Mutex, Session, SessionOptions};
//!
//! # fn main() -> gosync_dist::Result<()> {
//! let session = Session::blocking_connect(SessionOptions::new(["127.0.0.1:2379"]))?;
//! let mutex = Mutex::new(&session, "locks/report")?;
//! let guard = mutex.blocking_lock()?;          // waits for the other processes
//! println!("my fencing token: {}", guard.token());
//! guard.blocking_unlock()?;                    // or drop it
//! # Ok(()) }
//! ```
//!
//! # Sessions, leases and what "held" means
//! Every key a primitive writes is attached to its [`Session`]'s lease. A process that dies or
//! is cut off loses everything it held one TTL after its last renewal, and the others go on.
//! A distributed lock can therefore end without an unlock: [`MutexGuard::lost`] (and
//! [`Session::is_lost`], exact against [`Session::valid_until`]) says so no later than the
//! cluster acts on it. Between that check and a write, a pause can still strike: protect
//! writes with the [`FencingToken`] (the resource refuses tokens older than the newest it
//! saw) or with [`MutexGuard::owner_compare`] inside an etcd transaction.
//!
//! # Async and blocking forms
//! Every operation is an `async fn` usable from any tokio runtime, and has a `blocking_*`
//! twin for plain threads. The blocking forms run the async form on the calling thread with
//! the `block_on` of one small process-wide tokio runtime (one worker thread named
//! `gosync-dist`), which also drives the background work (lease keep-alive, acquisitions,
//! unlocks of dropped guards) of sessions opened from plain threads. A blocking method called
//! inside an async runtime panics with a message saying to use the async form.
//!
//! # Bad input fails, it does not hang
//! Empty endpoint list, malformed endpoint, TTL zero, empty name: [`Error::InvalidArgument`].
//! No endpoint answering within the connect timeout: [`Error::Unreachable`]. A lock taken on
//! an ended session: [`Error::SessionLost`]. Names of two primitives that overlap (`a` and
//! `a/b`): [`Error::OverlappingName`] as soon as one sees the other's keys. Unlocking after
//! the lease ended: [`Error::LockLost`], and no key of another holder is touched. A cluster
//! that stops answering: requests are retried until the session's lease runs out, then
//! `SessionLost`: no wait is longer than one TTL past the cluster's last answer.
//!
//! # Backends
//! [`DistMutex`] and [`DistGuard`] are the backend-neutral boundary (see [`backend`]); etcd is
//! the one backend today.
//!
//! # Building
//! The etcd client compiles etcd's protobuf definitions with `protoc` at build time. Inside
//! this workspace a `protoc` shipped in a crate is used (see `scripts/protoc`); as a
//! dependency elsewhere, install `protoc` (Debian: `protobuf-compiler`) or set `PROTOC`.
#![deny(missing_docs)]

pub mod backend;
mod barrier;
mod election;
mod error;
mod guard;
mod mutex;
mod queue;
mod rt;
mod rwmutex;
mod semaphore;
mod session;

pub use backend::{DistGuard, DistMutex, FencingToken};
pub use barrier::{Barrier, Entered};
pub use election::{Election, LeaderInfo, Leadership, Observer};
pub use error::{Error, Result};
pub use mutex::{Mutex, MutexGuard};
pub use rwmutex::{ReadGuard, RwMutex, WriteGuard};
pub use semaphore::{Permit, Semaphore};
pub use session::{LostReason, Session, SessionOptions};

/// The etcd client crate this one is built on (for [`Session::with_client`] and fenced
/// transactions).
pub use etcd_client;
