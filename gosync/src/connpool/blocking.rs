//! The blocking pool: [`Manager`], [`Pool`], [`PooledConn`].

use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::core::{CloseReason, Conn, Core, Got, OpenSlot, Poll, Wake};
use super::{ensure_cleaner, Config, Error, Stats};
use crate::diag::{Sleep, Sleeping};

/// Creates, checks and recognises broken connections for a blocking [`Pool`]
/// (r2d2's `ManageConnection`; Go's `driver.Connector` + `driver.Validator`).
///
/// All three methods run outside the pool's lock, on the calling thread.
pub trait Manager: Send + Sync + 'static {
    /// The connection type.
    type Connection: Send + 'static;
    /// The error `connect` and `is_valid` return. Kept unchanged in [`Error::Connect`].
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens a new connection. Bound its duration yourself (a connect timeout): the pool
    /// counts a dial in progress against `max_open`.
    fn connect(&self) -> Result<Self::Connection, Self::Error>;

    /// Checks an idle connection before it is handed out (when
    /// [`Config::test_on_checkout`] is on), e.g. with a ping. An error closes it and the
    /// pool tries another.
    fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error>;

    /// A cheap, local check run on every return: `true` closes the connection instead of
    /// keeping it (e.g. the client saw the socket close). Must not block.
    fn has_broken(&self, conn: &mut Self::Connection) -> bool;
}

pub(crate) struct Shared<M: Manager> {
    pub(crate) core: Core<M::Connection>,
    pub(crate) manager: M,
}

impl<M: Manager> Drop for Shared<M> {
    fn drop(&mut self) {
        self.core.wake_cleaner();
    }
}

fn core_of<M: Manager>(s: &Shared<M>) -> &Core<M::Connection> {
    &s.core
}

/// A blocking connection pool with Go's `database/sql` model (see the [module
/// docs](super)). Cloning is cheap and shares the pool.
///
/// # Example
///
/// ```
/// use gosync::connpool::{Config, Manager, Pool};
///
/// struct Numbers;
/// impl Manager for Numbers {
///     type Connection = u32;
///     type Error = std::io::Error;
///     fn connect(&self) -> Result<u32, std::io::Error> { Ok(7) }
///     fn is_valid(&self, _: &mut u32) -> Result<(), std::io::Error> { Ok(()) }
///     fn has_broken(&self, _: &mut u32) -> bool { false }
/// }
///
/// let pool = Pool::new(Numbers, Config { max_open: 2, ..Config::default() });
/// let a = pool.get().unwrap();
/// let b = pool.get().unwrap();
/// assert_eq!(*a + *b, 14);
/// assert!(pool.try_get().is_none()); // both in use, and max_open is 2
/// drop(a);
/// assert!(pool.try_get().is_some());
/// assert_eq!(pool.stats().open, 2);
/// ```
pub struct Pool<M: Manager> {
    shared: Arc<Shared<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            shared: self.shared.clone(),
        }
    }
}

impl<M: Manager> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl<M: Manager> Pool<M> {
    /// Creates a pool. No connection is opened until the first `get()` (Go's `sql.Open`
    /// does not dial either).
    pub fn new(manager: M, config: Config) -> Self {
        let pool = Pool {
            shared: Arc::new(Shared {
                core: Core::new(&config),
                manager,
            }),
        };
        ensure_cleaner(&pool.shared, core_of::<M>);
        pool
    }

    /// The manager.
    pub fn manager(&self) -> &M {
        &self.shared.manager
    }

    /// Checks out a connection, waiting up to [`Config::wait_timeout`].
    ///
    /// Returns an idle connection (validated if `test_on_checkout`), or dials a new one if
    /// fewer than `max_open` are open, or waits for one to be returned.
    #[doc(alias = "Conn")]
    pub fn get(&self) -> Result<PooledConn<M>, Error<M::Error>> {
        self.get_inner(None)
    }

    /// Like [`get`](Self::get) with an explicit wait limit (Go's `db.Conn(ctx)` with a
    /// deadline).
    pub fn get_timeout(&self, timeout: Duration) -> Result<PooledConn<M>, Error<M::Error>> {
        self.get_inner(Some(Some(timeout)))
    }

    /// An idle connection if one is available right now; never dials and never waits.
    /// Validates it if `test_on_checkout` is on.
    pub fn try_get(&self) -> Option<PooledConn<M>> {
        let s = &*self.shared;
        loop {
            let c = s.core.try_acquire_idle().ok()??;
            if let Some(c) = self.checked(c) {
                return Some(c);
            }
        }
    }

    /// `timeout`: `None` = the pool's `wait_timeout`; `Some(limit)` = an explicit limit.
    fn get_inner(
        &self,
        timeout: Option<Option<Duration>>,
    ) -> Result<PooledConn<M>, Error<M::Error>> {
        let s = &*self.shared;
        // The deadline starts with the first wait, so the fast path reads no clock.
        let mut deadline: Option<(Instant, Option<Instant>)> = None;
        loop {
            let got = match s.core.try_acquire()? {
                Some(g) => g,
                None => {
                    let (since, end) = *deadline.get_or_insert_with(|| {
                        let now = Instant::now();
                        // `None` = the configured default, read only when waiting.
                        let limit = timeout.unwrap_or_else(|| s.core.wait_timeout());
                        (now, limit.and_then(|t| now.checked_add(t)))
                    });
                    self.wait(since, end)?
                }
            };
            match got {
                Got::Conn(c) => {
                    if let Some(c) = self.checked(c) {
                        return Ok(c);
                    }
                }
                Got::Open => return self.open(),
            }
        }
    }

    /// Validates `c` if configured; closes it and returns `None` if it fails.
    fn checked(&self, mut c: Conn<M::Connection>) -> Option<PooledConn<M>> {
        let s = &*self.shared;
        if s.core.test_on_checkout && s.manager.is_valid(&mut c.conn).is_err() {
            s.core.discard(c.conn, CloseReason::Invalid);
            return None;
        }
        Some(self.wrap(c))
    }

    fn open(&self) -> Result<PooledConn<M>, Error<M::Error>> {
        let s = &*self.shared;
        let mut slot = OpenSlot {
            core: &s.core,
            error: None,
        };
        match s.manager.connect() {
            Ok(conn) => {
                slot.done();
                Ok(self.wrap(Conn {
                    conn,
                    created: Instant::now(),
                    returned: None,
                }))
            }
            Err(e) => {
                slot.error = Some(super::error_chain(&e));
                drop(slot);
                Err(Error::Connect(e))
            }
        }
    }

    fn wait(
        &self,
        since: Instant,
        deadline: Option<Instant>,
    ) -> Result<Got<M::Connection>, Error<M::Error>> {
        let core = &self.shared.core;
        let id = match core.acquire_or_enqueue(since, Wake::Thread(std::thread::current()))? {
            Ok(g) => return Ok(g),
            Err(id) => id,
        };
        let _sleeping = Sleeping::begins(Sleep::PoolCheckout);
        loop {
            match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(core.cancel(id, since, true).into());
                    }
                    std::thread::park_timeout(d - now);
                }
                None => std::thread::park(),
            }
            if let Poll::Ready(g) = core.poll_waiter(id, since, None)? {
                return Ok(g);
            }
        }
    }

    fn wrap(&self, c: Conn<M::Connection>) -> PooledConn<M> {
        PooledConn {
            conn: ManuallyDrop::new(c),
            pool: self.shared.clone(),
            unusable: false,
        }
    }

    /// Statistics, shaped like Go's `DBStats`.
    #[doc(alias = "Stats")]
    pub fn stats(&self) -> Stats {
        self.shared.core.stats()
    }

    /// Go's `SetMaxOpenConns`: `0` = unlimited. Lowers `max_idle` to match. Connections
    /// over a lowered limit are closed as they are returned.
    #[doc(alias = "SetMaxOpenConns")]
    pub fn set_max_open(&self, n: usize) {
        self.shared.core.set_max_open(n);
    }

    /// Go's `SetMaxIdleConns`: `0` = keep none; clamped to `max_open`. Excess idle
    /// connections are closed now.
    #[doc(alias = "SetMaxIdleConns")]
    pub fn set_max_idle(&self, n: usize) {
        self.shared.core.set_max_idle(n);
    }

    /// Go's `SetConnMaxLifetime` (`None` = forever).
    #[doc(alias = "SetConnMaxLifetime")]
    pub fn set_max_lifetime(&self, d: Option<Duration>) {
        self.shared.core.set_max_lifetime(d);
        ensure_cleaner(&self.shared, core_of::<M>);
    }

    /// Go's `SetConnMaxIdleTime` (`None` = forever).
    #[doc(alias = "SetConnMaxIdleTime")]
    pub fn set_max_idle_time(&self, d: Option<Duration>) {
        self.shared.core.set_max_idle_time(d);
        ensure_cleaner(&self.shared, core_of::<M>);
    }

    /// Sets the default wait limit of [`get`](Self::get) (`None` = wait forever).
    pub fn set_wait_timeout(&self, d: Option<Duration>) {
        self.shared.core.set_wait_timeout(d);
    }

    /// Go's `db.Close()`: closes idle connections now and checked-out ones when they are
    /// returned; waiting and later `get()` calls fail with [`Error::Closed`].
    pub fn close(&self) {
        self.shared.core.close();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.core.is_closed()
    }
}

/// A checked-out connection. Derefs to the connection; dropping it returns it to the pool
/// (or closes it if it is broken, marked unusable, expired, or the pool is full or closed).
#[must_use = "dropping a pooled connection returns it to the pool at once"]
#[clippy::has_significant_drop]
pub struct PooledConn<M: Manager> {
    conn: ManuallyDrop<Conn<M::Connection>>,
    pool: Arc<Shared<M>>,
    unusable: bool,
}

impl<M: Manager> PooledConn<M> {
    /// Marks the connection as unusable: it is closed instead of returned (fatih/pool's
    /// `MarkUnusable`; Go's `driver.ErrBadConn`).
    #[doc(alias = "MarkUnusable")]
    pub fn mark_unusable(&mut self) {
        self.unusable = true;
    }

    /// When the underlying connection was opened.
    pub fn created_at(&self) -> Instant {
        self.conn.created
    }
}

impl<M: Manager> Deref for PooledConn<M> {
    type Target = M::Connection;
    fn deref(&self) -> &M::Connection {
        &self.conn.conn
    }
}

impl<M: Manager> DerefMut for PooledConn<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self.conn.conn
    }
}

/// Shows the connection's type and age, not its contents (connections rarely implement
/// `Debug`, and this keeps `unwrap_err()` on checkout results available).
impl<M: Manager> fmt::Debug for PooledConn<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConn")
            .field("conn", &std::any::type_name::<M::Connection>())
            .field("age", &self.conn.created.elapsed())
            .field("unusable", &self.unusable)
            .finish()
    }
}

impl<M: Manager> Drop for PooledConn<M> {
    fn drop(&mut self) {
        // SAFETY: `conn` is taken exactly once, here, and never used again.
        let mut c = unsafe { ManuallyDrop::take(&mut self.conn) };
        let broken =
            self.unusable || std::thread::panicking() || self.pool.manager.has_broken(&mut c.conn);
        self.pool.core.release(c, broken);
    }
}
