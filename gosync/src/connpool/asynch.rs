//! The async pool: [`AsyncManager`], [`AsyncPool`], [`AsyncPooledConn`].
//!
//! Runtime-agnostic: waiting uses only the task's `Waker`, and wait timeouts use the
//! crate's own timer thread (see `timer.rs`), so no executor is assumed.

use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll as TaskPoll};
use std::time::{Duration, Instant};

use super::core::{CloseReason, Conn, Core, Fail, Got, OpenSlot, Poll, Wake};
use super::timer::TimerEntry;
use super::{ensure_cleaner, Config, Error, Stats};

/// Creates, checks and recognises broken connections for an [`AsyncPool`] (bb8's
/// `ManageConnection`). `connect` and `is_valid` may be written as `async fn`; their
/// futures must be `Send`.
pub trait AsyncManager: Send + Sync + 'static {
    /// The connection type.
    type Connection: Send + 'static;
    /// The error `connect` and `is_valid` return. Kept unchanged in [`Error::Connect`].
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens a new connection. A dial in progress counts against `max_open`; if the
    /// `get()` future is dropped meanwhile, the slot is freed.
    fn connect(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;

    /// Checks an idle connection before it is handed out (when
    /// [`Config::test_on_checkout`] is on). An error closes it and the pool tries another.
    /// If the `get()` future is dropped during the check, the connection is closed (its
    /// protocol state is unknown).
    fn is_valid(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// A cheap, local check run on every return: `true` closes the connection.
    fn has_broken(&self, conn: &mut Self::Connection) -> bool;
}

pub(crate) struct AsyncShared<M: AsyncManager> {
    core: Core<M::Connection>,
    manager: M,
}

impl<M: AsyncManager> Drop for AsyncShared<M> {
    fn drop(&mut self) {
        self.core.wake_cleaner();
    }
}

fn core_of<M: AsyncManager>(s: &AsyncShared<M>) -> &Core<M::Connection> {
    &s.core
}

/// An async connection pool with Go's `database/sql` model (see the [module docs](super)).
/// Cloning is cheap and shares the pool. Works on any executor.
///
/// # Cancellation
///
/// The future returned by [`get`](Self::get) may be dropped at any `.await` point (a
/// `select!`, a runtime timeout, an aborted task) without leaking anything: a queued
/// waiter leaves the queue, a connection or wake-up already granted to it goes to the next
/// waiter, a dial in progress frees its slot, and a connection being validated is closed.
///
/// # Example
///
/// ```
/// use gosync::connpool::{AsyncManager, AsyncPool, Config};
///
/// struct Numbers;
/// impl AsyncManager for Numbers {
///     type Connection = u32;
///     type Error = std::io::Error;
///     async fn connect(&self) -> Result<u32, std::io::Error> { Ok(7) }
///     async fn is_valid(&self, _: &mut u32) -> Result<(), std::io::Error> { Ok(()) }
///     fn has_broken(&self, _: &mut u32) -> bool { false }
/// }
///
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     struct Noop;
/// #     impl std::task::Wake for Noop { fn wake(self: std::sync::Arc<Self>) {} }
/// #     let waker = std::task::Waker::from(std::sync::Arc::new(Noop));
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// let pool = AsyncPool::new(Numbers, Config { max_open: 1, ..Config::default() });
/// block_on(async {
///     let conn = pool.get().await.unwrap();
///     assert_eq!(*conn, 7);
/// });
/// assert_eq!(pool.stats().idle, 1);
/// ```
pub struct AsyncPool<M: AsyncManager> {
    shared: Arc<AsyncShared<M>>,
}

impl<M: AsyncManager> Clone for AsyncPool<M> {
    fn clone(&self) -> Self {
        AsyncPool {
            shared: self.shared.clone(),
        }
    }
}

impl<M: AsyncManager> fmt::Debug for AsyncPool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPool")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Closes a connection whose validation did not finish (the future was dropped).
struct Validating<'a, C> {
    core: &'a Core<C>,
    conn: Option<Conn<C>>,
}

impl<C> Drop for Validating<'_, C> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.core.discard(c.conn, CloseReason::Broken);
        }
    }
}

impl<M: AsyncManager> AsyncPool<M> {
    /// Creates a pool. No connection is opened until the first `get()`.
    pub fn new(manager: M, config: Config) -> Self {
        let pool = AsyncPool {
            shared: Arc::new(AsyncShared {
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

    /// Checks out a connection, waiting up to [`Config::wait_timeout`]. Cancellation-safe.
    pub async fn get(&self) -> Result<AsyncPooledConn<M>, Error<M::Error>> {
        self.get_inner(None).await
    }

    /// Like [`get`](Self::get) with an explicit wait limit.
    pub async fn get_timeout(
        &self,
        timeout: Duration,
    ) -> Result<AsyncPooledConn<M>, Error<M::Error>> {
        self.get_inner(Some(Some(timeout))).await
    }

    /// An idle connection if one is available right now; never dials and never waits
    /// (validation, if on, is awaited).
    pub async fn try_get(&self) -> Option<AsyncPooledConn<M>> {
        loop {
            let c = self.shared.core.try_acquire_idle().ok()??;
            if let Some(c) = self.checked(c).await {
                return Some(c);
            }
        }
    }

    /// `timeout`: `None` = the pool's `wait_timeout`; `Some(limit)` = an explicit limit.
    async fn get_inner(
        &self,
        timeout: Option<Option<Duration>>,
    ) -> Result<AsyncPooledConn<M>, Error<M::Error>> {
        let s = &*self.shared;
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
                    Wait {
                        core: &s.core,
                        since,
                        deadline: end,
                        id: None,
                        timer: None,
                        done: false,
                    }
                    .await?
                }
            };
            match got {
                Got::Conn(c) => {
                    if let Some(c) = self.checked(c).await {
                        return Ok(c);
                    }
                }
                Got::Open => {
                    let mut slot = OpenSlot {
                        core: &s.core,
                        error: None,
                    };
                    return match s.manager.connect().await {
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
                    };
                }
            }
        }
    }

    async fn checked(&self, c: Conn<M::Connection>) -> Option<AsyncPooledConn<M>> {
        let s = &*self.shared;
        if !s.core.test_on_checkout {
            return Some(self.wrap(c));
        }
        let mut guard = Validating {
            core: &s.core,
            conn: Some(c),
        };
        let conn = &mut guard.conn.as_mut().expect("set above").conn;
        let ok = s.manager.is_valid(conn).await.is_ok();
        let c = guard.conn.take().expect("set above");
        if ok {
            Some(self.wrap(c))
        } else {
            s.core.discard(c.conn, CloseReason::Invalid);
            None
        }
    }

    fn wrap(&self, c: Conn<M::Connection>) -> AsyncPooledConn<M> {
        AsyncPooledConn {
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

    /// Go's `SetMaxOpenConns` (see [`Pool::set_max_open`](super::Pool::set_max_open)).
    #[doc(alias = "SetMaxOpenConns")]
    pub fn set_max_open(&self, n: usize) {
        self.shared.core.set_max_open(n);
    }

    /// Go's `SetMaxIdleConns` (see [`Pool::set_max_idle`](super::Pool::set_max_idle)).
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

    /// Go's `db.Close()`: closes idle connections now and checked-out ones when returned;
    /// waiting and later `get()` calls fail with [`Error::Closed`].
    pub fn close(&self) {
        self.shared.core.close();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.core.is_closed()
    }
}

/// Waits in the pool's queue. Dropping it before completion gives back whatever it was
/// granted (see [`Core::cancel`]).
struct Wait<'a, C> {
    core: &'a Core<C>,
    since: Instant,
    deadline: Option<Instant>,
    id: Option<u64>,
    timer: Option<TimerEntry>,
    done: bool,
}

impl<C> Future for Wait<'_, C> {
    type Output = Result<Got<C>, Fail>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> TaskPoll<Self::Output> {
        let this = self.get_mut();
        let polled = match this.id {
            None => match this
                .core
                .acquire_or_enqueue(this.since, Wake::Task(cx.waker().clone()))
            {
                Ok(Ok(g)) => Ok(Poll::Ready(g)),
                Ok(Err(id)) => {
                    this.id = Some(id);
                    Ok(Poll::Pending)
                }
                Err(f) => Err(f),
            },
            Some(id) => this.core.poll_waiter(id, this.since, Some(cx.waker())),
        };
        match polled {
            Ok(Poll::Ready(g)) => {
                this.done = true;
                return TaskPoll::Ready(Ok(g));
            }
            Err(f) => {
                this.done = true;
                return TaskPoll::Ready(Err(f));
            }
            Ok(Poll::Pending) => {}
        }
        if let (Some(d), Some(id)) = (this.deadline, this.id) {
            if Instant::now() >= d {
                this.done = true;
                return TaskPoll::Ready(Err(this.core.cancel(id, this.since, true)));
            }
            match &this.timer {
                Some(t) => t.refresh(cx.waker()),
                None => this.timer = Some(TimerEntry::new(d, cx.waker())),
            }
        }
        TaskPoll::Pending
    }
}

impl<C> Drop for Wait<'_, C> {
    fn drop(&mut self) {
        if let (false, Some(id)) = (self.done, self.id) {
            self.core.cancel(id, self.since, false);
        }
    }
}

/// A checked-out connection from an [`AsyncPool`]. Derefs to the connection; dropping it
/// returns it to the pool (or closes it if broken, unusable, expired, or over a limit).
#[must_use = "dropping a pooled connection returns it to the pool at once"]
#[clippy::has_significant_drop]
pub struct AsyncPooledConn<M: AsyncManager> {
    conn: ManuallyDrop<Conn<M::Connection>>,
    pool: Arc<AsyncShared<M>>,
    unusable: bool,
}

impl<M: AsyncManager> AsyncPooledConn<M> {
    /// Marks the connection as unusable: it is closed instead of returned.
    #[doc(alias = "MarkUnusable")]
    pub fn mark_unusable(&mut self) {
        self.unusable = true;
    }

    /// When the underlying connection was opened.
    pub fn created_at(&self) -> Instant {
        self.conn.created
    }
}

impl<M: AsyncManager> Deref for AsyncPooledConn<M> {
    type Target = M::Connection;
    fn deref(&self) -> &M::Connection {
        &self.conn.conn
    }
}

impl<M: AsyncManager> DerefMut for AsyncPooledConn<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self.conn.conn
    }
}

/// Shows the connection's type and age, not its contents (connections rarely implement
/// `Debug`, and this keeps `unwrap_err()` on checkout results available).
impl<M: AsyncManager> fmt::Debug for AsyncPooledConn<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPooledConn")
            .field("conn", &std::any::type_name::<M::Connection>())
            .field("age", &self.conn.created.elapsed())
            .field("unusable", &self.unusable)
            .finish()
    }
}

impl<M: AsyncManager> Drop for AsyncPooledConn<M> {
    fn drop(&mut self) {
        // SAFETY: `conn` is taken exactly once, here, and never used again.
        let mut c = unsafe { ManuallyDrop::take(&mut self.conn) };
        let broken =
            self.unusable || std::thread::panicking() || self.pool.manager.has_broken(&mut c.conn);
        self.pool.core.release(c, broken);
    }
}
