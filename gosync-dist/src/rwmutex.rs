//! [`RwMutex`]: many readers or one writer across processes.

use std::fmt;
use std::time::Duration;

use crate::error::Result;
use crate::guard::held_guard;
use crate::queue::{self, Rule, Shape, Wait};
use crate::session::Session;

/// A readers-writer lock shared by processes (etcd's `recipes.RWMutex`).
///
/// # Algorithm
/// Readers write keys `name/r/<id>`, writers `name/w/<id>`, all ordered by create
/// revision. A reader holds once no older *writer* key exists: it watches the newest older
/// writer. A writer holds once no older key of either kind exists: it watches the newest
/// older key. Arrival order is kept: once a writer waits, readers that come after it wait
/// behind it (like Go's `sync.RWMutex`), so writers are not starved.
///
/// Each hold's fencing token is its key's create revision. Cancellation, timeouts and lost
/// sessions behave as for [`Mutex`](crate::Mutex).
#[doc(alias = "RWMutex")]
#[derive(Clone)]
pub struct RwMutex {
    session: Session,
    prefix: String,
}

impl fmt::Debug for RwMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwMutex")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RwMutex {
    /// A readers-writer lock named `name` (keys under `name/r/` and `name/w/`).
    pub fn new(session: &Session, name: impl AsRef<str>) -> Result<RwMutex> {
        Ok(RwMutex {
            session: session.clone(),
            prefix: queue::prefix_of(name.as_ref(), "rwmutex")?,
        })
    }

    async fn take_read(&self, wait: Wait) -> Result<Option<ReadGuard>> {
        let (key, slot) = self.session.queue_key(&format!("{}r/", self.prefix));
        let writers = format!("{}w/", self.prefix);
        let rule = Rule::Fifo {
            range: writers.clone(),
            shape: Shape::Flat(writers),
        };
        let held = queue::acquire(&self.session, key, Some(slot), Vec::new(), rule, wait).await?;
        Ok(held.map(ReadGuard::from_held))
    }

    async fn take_write(&self, wait: Wait) -> Result<Option<WriteGuard>> {
        let (key, slot) = self.session.queue_key(&format!("{}w/", self.prefix));
        let rule = Rule::Fifo {
            range: self.prefix.clone(),
            shape: Shape::ReadWrite(self.prefix.clone()),
        };
        let held = queue::acquire(&self.session, key, Some(slot), Vec::new(), rule, wait).await?;
        Ok(held.map(WriteGuard::from_held))
    }

    /// Waits for shared access.
    #[doc(alias = "RLock")]
    pub async fn read(&self) -> Result<ReadGuard> {
        Ok(self.take_read(Wait::Forever).await?.expect("waited"))
    }

    /// Shared access if no writer holds or waits now; `Ok(None)` otherwise.
    #[doc(alias = "TryRLock")]
    pub async fn try_read(&self) -> Result<Option<ReadGuard>> {
        self.take_read(Wait::Not).await
    }

    /// Waits at most `timeout` for shared access.
    pub async fn read_timeout(&self, timeout: Duration) -> Result<ReadGuard> {
        Ok(self.take_read(Wait::For(timeout)).await?.expect("waited"))
    }

    /// Waits for exclusive access.
    #[doc(alias = "Lock")]
    pub async fn write(&self) -> Result<WriteGuard> {
        Ok(self.take_write(Wait::Forever).await?.expect("waited"))
    }

    /// Exclusive access if nobody holds or waits now; `Ok(None)` otherwise.
    #[doc(alias = "TryLock")]
    pub async fn try_write(&self) -> Result<Option<WriteGuard>> {
        self.take_write(Wait::Not).await
    }

    /// Waits at most `timeout` for exclusive access.
    pub async fn write_timeout(&self, timeout: Duration) -> Result<WriteGuard> {
        Ok(self.take_write(Wait::For(timeout)).await?.expect("waited"))
    }

    /// Blocking [`read`](RwMutex::read).
    pub fn blocking_read(&self) -> Result<ReadGuard> {
        queue::blocking(self.read())
    }

    /// Blocking [`write`](RwMutex::write).
    pub fn blocking_write(&self) -> Result<WriteGuard> {
        queue::blocking(self.write())
    }
}

held_guard!(
    /// Shared access to an [`RwMutex`]; dropping it releases in the background.
    #[must_use = "dropping the guard releases it at once"]
    ReadGuard,
    unlock,
    blocking_unlock,
    "RUnlock"
);

held_guard!(
    /// Exclusive access to an [`RwMutex`]; dropping it releases in the background.
    #[must_use = "dropping the guard releases it at once"]
    WriteGuard,
    unlock,
    blocking_unlock,
    "Unlock"
);
