//! [`Mutex`]: mutual exclusion across processes, with a fencing token.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use etcd_client::{Compare, CompareOp};

use crate::backend::{DistGuard, DistMutex, FencingToken};
use crate::error::Result;
use crate::queue::{self, Held, Rule, Shape, Wait};
use crate::session::{LostReason, Session};

/// A lock shared by every process that uses the same name on the same etcd cluster
/// (Go: `concurrency.Mutex`).
///
/// # Algorithm
/// Each acquisition writes its own key `name/<lease>_<n>` attached to the session's lease
/// (`n` is free in the session: a session that locks and unlocks in turn uses one name);
/// the keys queue in the order of their create revision and the oldest holds the lock. A
/// waiter watches only the key right before its own (its predecessor) and asks again when
/// that key is deleted, so an unlock wakes one waiter: no thundering herd, one watch per
/// waiter at a time. An uncontended `lock` and an `unlock` are one round trip each.
///
/// The holder's key's create revision is its [fencing token](FencingToken): it grows with
/// every acquisition, in acquisition order. [`MutexGuard::owner_compare`] gives the etcd
/// comparison that makes a write conditional on still holding the lock, in the same
/// transaction.
///
/// # Cancellation, timeouts, failures
/// - Dropping a `lock` future (e.g. in a `select!`) or a timed-out [`lock_timeout`] deletes
///   the waiter key: nothing is left behind in the queue (the acquisition runs in a task
///   that cleans up after the request that created the key has returned).
/// - A holder that dies releases the lock when its lease expires (one TTL after its last
///   renewal). A holder cut off from the cluster learns it from [`MutexGuard::lost`] no
///   later than that.
/// - A failover of the etcd cluster (leader election) is retried transparently.
///
/// # Differences from Go
/// - Each acquisition has its own key, so two `lock` calls through one session (or two
///   `Mutex` values with the same name) exclude each other; in Go they share the session's
///   key and both "hold" the lock. Keys are still ordered by create revision under
///   `name/`, so Go clients using the same name queue fairly with these.
/// - A waiter watches its predecessor's key from the current revision and then reads it
///   once; Go watches from the revision of its earlier read. etcd serves a watch that starts
///   behind the store only from a catch-up loop that runs every 100 ms, so under contention
///   Go's handovers wait for that loop and these do not.
/// - A session uses the name of a key it has deleted again (`name/<lease>_<n>`, one name for
///   a session that locks and unlocks in turn): etcd keeps deleted keys in its index until a
///   compaction, and a new name per acquisition would make every read of the queue slower.
/// - The lock is a guard: [`unlock`](MutexGuard::unlock) reports errors, dropping the guard
///   unlocks in the background.
/// - A waiter whose lease expired while it waited gets [`Error::SessionLost`](crate::Error)
///   instead of the lock (Go 3.4 returned success).
///
/// # Example
/// ```no_run
/// # async fn demo() -> gosync_dist::Result<()> {
/// use gosync_dist::{Mutex, Session, SessionOptions};
///
/// let session = Session::connect(SessionOptions::new(["127.0.0.1:2379"])).await?;
/// let mutex = Mutex::new(&session, "locks/invoices")?;
/// let guard = mutex.lock().await?;
/// println!("holding with fencing token {}", guard.token());
/// guard.unlock().await?;
/// # Ok(()) }
/// ```
///
/// [`lock_timeout`]: Mutex::lock_timeout
#[doc(alias = "concurrency.Mutex")]
#[doc(alias = "NewMutex")]
#[derive(Clone)]
pub struct Mutex {
    session: Session,
    prefix: String,
}

impl fmt::Debug for Mutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Mutex {
    /// A mutex named `name` (its keys live under `name/`). Fails on an empty name. Names
    /// must not overlap: with `locks/a` in use, do not use `locks/a/b` (such a clash is
    /// reported as [`Error::OverlappingName`](crate::Error::OverlappingName) when seen).
    pub fn new(session: &Session, name: impl AsRef<str>) -> Result<Mutex> {
        Ok(Mutex {
            session: session.clone(),
            prefix: queue::prefix_of(name.as_ref(), "mutex")?,
        })
    }

    /// The session this mutex acquires with.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The key prefix (`name/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn rule(&self) -> Rule {
        Rule::Fifo {
            range: self.prefix.clone(),
            shape: Shape::Flat(self.prefix.clone()),
        }
    }

    async fn acquire(&self, wait: Wait) -> Result<Option<MutexGuard>> {
        let (key, slot) = self.session.queue_key(&self.prefix);
        let rule = self.rule();
        let held = queue::acquire(&self.session, key, Some(slot), Vec::new(), rule, wait).await?;
        Ok(held.map(|held| MutexGuard { held: Some(held) }))
    }

    /// Waits until the lock is held. Fails with `SessionLost` if the session ends first.
    #[doc(alias = "Lock")]
    pub async fn lock(&self) -> Result<MutexGuard> {
        Ok(self
            .acquire(Wait::Forever)
            .await?
            .expect("a waiting acquisition returns a guard"))
    }

    /// Takes the lock if nobody holds it or waits for it now; `Ok(None)` otherwise (the
    /// attempt's key is deleted before returning).
    #[doc(alias = "TryLock")]
    pub async fn try_lock(&self) -> Result<Option<MutexGuard>> {
        self.acquire(Wait::Not).await
    }

    /// Waits at most `timeout`, then fails with [`Error::Timeout`](crate::Error::Timeout);
    /// the waiter key is deleted before the error is returned.
    pub async fn lock_timeout(&self, timeout: Duration) -> Result<MutexGuard> {
        Ok(self
            .acquire(Wait::For(timeout))
            .await?
            .expect("a waiting acquisition returns a guard"))
    }

    /// Blocking [`lock`](Mutex::lock) (see the crate docs on blocking forms).
    pub fn blocking_lock(&self) -> Result<MutexGuard> {
        queue::blocking(self.lock())
    }

    /// Blocking [`try_lock`](Mutex::try_lock).
    pub fn blocking_try_lock(&self) -> Result<Option<MutexGuard>> {
        queue::blocking(self.try_lock())
    }

    /// Blocking [`lock_timeout`](Mutex::lock_timeout).
    pub fn blocking_lock_timeout(&self, timeout: Duration) -> Result<MutexGuard> {
        queue::blocking(self.lock_timeout(timeout))
    }
}

/// A held [`Mutex`]. Dropping it unlocks in the background (best effort);
/// [`unlock`](MutexGuard::unlock) unlocks and reports the outcome.
#[must_use = "dropping the guard unlocks the mutex at once"]
pub struct MutexGuard {
    /// `None` once unlocked.
    held: Option<Held>,
}

impl fmt::Debug for MutexGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexGuard")
            .field("key", &self.key())
            .field("token", &self.token())
            .finish()
    }
}

impl MutexGuard {
    fn held(&self) -> &Held {
        self.held.as_ref().expect("guard is held until consumed")
    }

    /// The fencing token of this hold (the key's create revision).
    pub fn token(&self) -> FencingToken {
        FencingToken::new(self.held().rev as u64)
    }

    /// The holder's key.
    #[doc(alias = "Key")]
    pub fn key(&self) -> &str {
        &self.held().key
    }

    /// The session the lock was taken with.
    pub fn session(&self) -> &Session {
        &self.held().session
    }

    /// The etcd comparison "this guard still holds the lock" (Go: `IsOwner`): put it in the
    /// `when` of a transaction to make a write conditional on holding the lock.
    #[doc(alias = "IsOwner")]
    pub fn owner_compare(&self) -> Compare {
        let h = self.held();
        Compare::create_revision(h.key.as_str(), CompareOp::Equal, h.rev)
    }

    /// Resolves when the session ends (the lock may then be held by another process).
    pub fn lost(&self) -> impl Future<Output = LostReason> + Send + 'static {
        self.held().session.lost()
    }

    /// Whether the session has ended or its lease may have expired (exact, see
    /// [`Session::is_lost`]).
    pub fn is_lost(&self) -> bool {
        self.held().session.is_lost()
    }

    /// Unlocks. Fails with [`Error::LockLost`](crate::Error::LockLost) if the lease ended
    /// while the lock was held (nothing of another holder is deleted then).
    #[doc(alias = "Unlock")]
    pub async fn unlock(mut self) -> Result<()> {
        let held = self.held.take().expect("guard is held until consumed");
        queue::release(&held).await
    }

    /// Blocking [`unlock`](MutexGuard::unlock).
    pub fn blocking_unlock(self) -> Result<()> {
        queue::blocking(self.unlock())
    }
}

impl Drop for MutexGuard {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            queue::release_in_background(held);
        }
    }
}

impl DistMutex for Mutex {
    type Guard = MutexGuard;
    fn lock(&self) -> impl Future<Output = Result<MutexGuard>> + Send {
        Mutex::lock(self)
    }
    fn try_lock(&self) -> impl Future<Output = Result<Option<MutexGuard>>> + Send {
        Mutex::try_lock(self)
    }
    fn lock_timeout(&self, timeout: Duration) -> impl Future<Output = Result<MutexGuard>> + Send {
        Mutex::lock_timeout(self, timeout)
    }
}

impl DistGuard for MutexGuard {
    fn token(&self) -> FencingToken {
        MutexGuard::token(self)
    }
    fn is_lost(&self) -> bool {
        MutexGuard::is_lost(self)
    }
    fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let l = MutexGuard::lost(self);
        async move {
            l.await;
        }
    }
    fn unlock(self) -> impl Future<Output = Result<()>> + Send {
        MutexGuard::unlock(self)
    }
}
