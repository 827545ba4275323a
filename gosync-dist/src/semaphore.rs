//! [`Semaphore`]: at most N units held across processes, weighted, FIFO.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::guard::held_guard;
use crate::queue::{self, Rule, Wait};
use crate::session::Session;

/// A weighted semaphore shared by processes: acquisitions of `weight` units are granted in
/// the order they were made while the units held stay within `capacity` (the distributed
/// form of `golang.org/x/sync/semaphore`; etcd's Go package has none).
///
/// # Algorithm
/// Each acquisition writes a key `name/<lease>_<n>` whose value is `weight/capacity`. An
/// acquisition holds once the weights of all older keys plus its own fit in the capacity:
/// FIFO, so a large request at the head is not starved by small ones behind it (like Go's
/// x/sync semaphore). Safety: the newest holder counted every older key when it was
/// admitted, and older keys only disappear, so the holders' weights never exceed the
/// capacity.
///
/// The weight ahead of a key includes the weight ahead of the key before it, so no key
/// holds while the key before it waits: the holders are always the oldest keys, and a
/// release wakes one waiter, not every waiter. The oldest waiter (the head) watches the
/// name's keys and subtracts the weight of each older key deleted, so it asks the cluster
/// again only when it may fit. Every other waiter watches only the key right before its own
/// (like a [`Mutex`](crate::Mutex) waiter): a waiter admitted after waiting writes its key
/// once (same value, same lease), which wakes the waiter behind it, now the head; a waiter
/// that gives up deletes its key, which wakes the waiter behind it too. Invariant: each
/// waiter watches the one change that can let it move on (the releases ahead of the head,
/// the admission or departure of any other waiter's predecessor), and none is missed, since
/// a key that holds goes on holding until it is released. When one release makes room for
/// several waiters, they are admitted one after another, each woken by the one before it.
/// [`Session::watch_events`](crate::Session::watch_events) counts the wake-ups.
///
/// Every process must use the same capacity for a name; a mismatch is reported as
/// [`Error::InvalidArgument`] when seen. Cancellation, timeouts and lost sessions behave as
/// for [`Mutex`](crate::Mutex).
#[doc(alias = "semaphore.Weighted")]
#[derive(Clone)]
pub struct Semaphore {
    session: Session,
    prefix: String,
    capacity: u64,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("prefix", &self.prefix)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Semaphore {
    /// A semaphore named `name` with `capacity` units. Fails on an empty name or a zero
    /// capacity.
    #[doc(alias = "NewWeighted")]
    pub fn new(session: &Session, name: impl AsRef<str>, capacity: u64) -> Result<Semaphore> {
        if capacity == 0 {
            return Err(Error::InvalidArgument(
                "semaphore capacity is zero: nothing could ever be acquired".into(),
            ));
        }
        Ok(Semaphore {
            session: session.clone(),
            prefix: queue::prefix_of(name.as_ref(), "semaphore")?,
            capacity,
        })
    }

    /// The capacity.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    async fn take(&self, weight: u64, wait: Wait) -> Result<Option<Permit>> {
        if weight == 0 || weight > self.capacity {
            return Err(Error::InvalidArgument(format!(
                "cannot acquire {weight} units of a semaphore of capacity {}: the weight must \
                 be between 1 and the capacity (a larger one would wait for ever)",
                self.capacity
            )));
        }
        let (key, slot) = self.session.queue_key(&self.prefix);
        let rule = Rule::Weighted {
            range: self.prefix.clone(),
            capacity: self.capacity,
            weight,
        };
        let value = format!("{weight}/{}", self.capacity).into_bytes();
        let held = queue::acquire(&self.session, key, Some(slot), value, rule, wait).await?;
        Ok(held.map(Permit::from_held))
    }

    /// Waits until `weight` units are held.
    #[doc(alias = "Acquire")]
    pub async fn acquire(&self, weight: u64) -> Result<Permit> {
        Ok(self
            .take(weight, Wait::Forever)
            .await?
            .expect("a waiting acquisition returns a permit"))
    }

    /// Takes `weight` units if they are free now and nobody waits before; `Ok(None)`
    /// otherwise.
    #[doc(alias = "TryAcquire")]
    pub async fn try_acquire(&self, weight: u64) -> Result<Option<Permit>> {
        self.take(weight, Wait::Not).await
    }

    /// Waits at most `timeout`, then fails with [`Error::Timeout`] (nothing left behind).
    pub async fn acquire_timeout(&self, weight: u64, timeout: Duration) -> Result<Permit> {
        Ok(self
            .take(weight, Wait::For(timeout))
            .await?
            .expect("a waiting acquisition returns a permit"))
    }

    /// Blocking [`acquire`](Semaphore::acquire).
    pub fn blocking_acquire(&self, weight: u64) -> Result<Permit> {
        queue::blocking(self.acquire(weight))
    }

    /// Blocking [`try_acquire`](Semaphore::try_acquire).
    pub fn blocking_try_acquire(&self, weight: u64) -> Result<Option<Permit>> {
        queue::blocking(self.try_acquire(weight))
    }
}

held_guard!(
    /// Units of a [`Semaphore`] held; dropping it releases them in the background.
    #[must_use = "dropping the permit releases it at once"]
    Permit,
    release,
    blocking_release,
    "Release"
);
