//! Connection pools with Go's `database/sql` model: a true `max_open`, a separate
//! `max_idle`, lifetimes, `DBStats`-shaped statistics — blocking and async.
//!
//! # Which one should I use
//!
//! | you have | use |
//! |---|---|
//! | blocking clients (threads, `postgres`, `std::net`) | [`Pool`] with a [`Manager`] |
//! | async clients (`tokio-postgres`, `redis` async, any runtime) | [`AsyncPool`] with an [`AsyncManager`] |
//! | many servers (memcached ring, HTTP hosts), idle limit per server | [`KeyedPool`] with a [`KeyedManager`] |
//! | plain TCP | [`TcpManager`] (one address) or [`TcpDialer`] (keyed by address) |
//!
//! # Go → gosync
//!
//! | Go `database/sql` | gosync | default |
//! |---|---|---|
//! | `SetMaxOpenConns(n)` | [`Config::max_open`], [`Pool::set_max_open`] | `0` = unlimited (Go) |
//! | `SetMaxIdleConns(n)` | [`Config::max_idle`], [`Pool::set_max_idle`] | `2` (Go), `0` = keep none, clamped to `max_open` |
//! | `SetConnMaxLifetime(d)` | [`Config::max_lifetime`], [`Pool::set_max_lifetime`] | `None` = forever (Go) |
//! | `SetConnMaxIdleTime(d)` | [`Config::max_idle_time`], [`Pool::set_max_idle_time`] | `None` = forever (Go) |
//! | `ctx` deadline on `db.Conn(ctx)` | [`Config::wait_timeout`], [`Pool::get_timeout`] | 30 s (Go: none) |
//! | `driver.Validator` / `ErrBadConn` retry | [`Config::test_on_checkout`] + [`Manager::is_valid`] | `true` |
//! | `db.Stats()` → `DBStats` | [`Pool::stats`] → [`Stats`] | |
//! | `db.Close()` | [`Pool::close`] | |
//! | fatih/pool `PoolConn.Close()` / `MarkUnusable()` | drop of [`PooledConn`] / [`PooledConn::mark_unusable`] | |
//! | gomemcache `freeconn map[addr][]conn`, http `MaxIdleConnsPerHost` | [`KeyedPool`] | 2 per key |
//!
//! # What it does that r2d2, bb8 and deadpool do not
//!
//! - **A separate idle cap** (`max_idle`, Go's `MaxIdleConns`; sfackler/r2d2#19): a burst may
//!   open up to `max_open` connections without keeping them all afterwards.
//! - **Errors say what happened.** A failed connect is returned to the caller that tried
//!   it as [`Error::Connect`] at once (a wrong password is an auth error, not a 30 s
//!   timeout: sfackler/r2d2#51, djc/bb8#141); a wait that does time out carries the last
//!   connect error and the pool's occupancy in [`Error::Timeout`].
//! - **Cancellation-safe async checkout** (djc/bb8#59): dropping the `get()` future at any
//!   point — queued, granted-but-not-polled, dialling, validating — leaks no connection
//!   and no slot, and passes any wake-up it received to the next waiter.
//! - **Broken connections never come back**: [`Manager::has_broken`] runs on every return,
//!   [`PooledConn::mark_unusable`] forces a close, idle connections are validated on
//!   checkout, and a failed validation retries with another connection (Go's `ErrBadConn`
//!   retry) instead of handing the dead one out.
//! - **Go's statistics**: [`Stats`] has every `DBStats` field, including `max_idle_closed`
//!   and `wait_duration`.
//! - **Run-time setters** like Go's (`set_max_open`, `set_max_idle`, ...).
//! - **No runtime lock-in**: the async pool uses only `std::task::Waker`; its wait timeout
//!   uses one small timer thread shared by all pools, so it works on tokio, async-std,
//!   smol or a hand-written executor alike. No feature flag is needed.
//!
//! # Waiting, fairness and performance
//!
//! Idle connections are reused LIFO (as in Go). Waiters queue FIFO; a returned connection
//! goes back to the idle list and the first waiter is woken, but callers already running
//! may take it first, like Go's `sync.Mutex` in normal mode. Once the first waiter has
//! waited 1 ms the pool switches to handing connections to it directly (starvation mode),
//! so waits stay bounded. Go's `database/sql` always hands off (to a random waiter); the
//! hybrid keeps Go's fairness bound while saving a context switch per checkout under
//! contention. Connects, validation and closes never run under the pool's lock.
//!
//! # Example
//!
//! ```no_run
//! use gosync::connpool::{Config, Pool, TcpManager};
//! use std::io::Write;
//! use std::time::Duration;
//!
//! let pool = Pool::new(
//!     TcpManager::new("127.0.0.1:11211"),
//!     Config { max_open: 16, max_idle: 4, max_idle_time: Some(Duration::from_secs(60)), ..Config::default() },
//! );
//! let mut conn = pool.get()?;                // a `PooledConn<TcpManager>`, derefs to TcpStream
//! conn.write_all(b"version\r\n")?;
//! drop(conn);                                // back to the pool
//! println!("{:?}", pool.stats());            // open, in_use, idle, wait_count, ...
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod asynch;
mod blocking;
mod core;
mod keyed;
mod tcp;
mod timer;

pub use self::asynch::{AsyncManager, AsyncPool, AsyncPooledConn};
pub use self::blocking::{Manager, Pool, PooledConn};
pub use self::keyed::{KeyedManager, KeyedPool, KeyedPooledConn, PerKey};
pub use self::tcp::{TcpDialer, TcpManager};

use std::fmt;
use std::time::Duration;

/// Pool configuration, with Go's knob names and (mostly) Go's defaults.
///
/// Build it with struct-update syntax:
/// `Config { max_open: 10, ..Config::default() }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Most connections open at once, counting those being dialled (Go's
    /// `SetMaxOpenConns`). `0` = unlimited (Go's default).
    #[doc(alias = "SetMaxOpenConns")]
    pub max_open: usize,
    /// Most idle connections kept (Go's `SetMaxIdleConns`). Default `2`, as in Go; `0`
    /// keeps none. Clamped to `max_open` when that is set. Excess returned connections are
    /// closed and counted in [`Stats::max_idle_closed`].
    #[doc(alias = "SetMaxIdleConns")]
    pub max_idle: usize,
    /// Close connections this old (Go's `SetConnMaxLifetime`); checked on checkout, on
    /// return and by the cleaner. `None` = forever.
    #[doc(alias = "SetConnMaxLifetime")]
    pub max_lifetime: Option<Duration>,
    /// Close connections idle this long (Go's `SetConnMaxIdleTime`); checked on checkout
    /// and by the cleaner. `None` = forever.
    #[doc(alias = "SetConnMaxIdleTime")]
    pub max_idle_time: Option<Duration>,
    /// How long `get()` waits for a connection when `max_open` are in use. `None` waits
    /// forever (Go's behaviour without a context deadline). Default 30 s, like r2d2 and
    /// bb8: an unbounded wait is the usual cause of "stuck" services.
    pub wait_timeout: Option<Duration>,
    /// Validate idle connections with [`Manager::is_valid`] before handing them out
    /// (default `true`, as r2d2 and bb8). A connection that fails is closed and another is
    /// tried. Fresh connections are not validated.
    pub test_on_checkout: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_open: 0,
            max_idle: 2,
            max_lifetime: None,
            max_idle_time: None,
            wait_timeout: Some(Duration::from_secs(30)),
            test_on_checkout: true,
        }
    }
}

/// Pool statistics: every field of Go's `sql.DBStats`, plus a few counters from bb8.
#[doc(alias = "DBStats")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// `MaxOpenConnections`: the configured limit (`0` = unlimited).
    pub max_open: usize,
    /// `OpenConnections`: in use + idle + being dialled.
    pub open: usize,
    /// `InUse`: checked out (or being dialled).
    pub in_use: usize,
    /// `Idle`: waiting in the pool.
    pub idle: usize,
    /// `WaitCount`: checkouts that had to wait.
    pub wait_count: u64,
    /// `WaitDuration`: total time spent waiting.
    pub wait_duration: Duration,
    /// `MaxIdleClosed`: closed because the idle list was full (`max_idle`).
    pub max_idle_closed: u64,
    /// `MaxIdleTimeClosed`: closed by `max_idle_time`.
    pub max_idle_time_closed: u64,
    /// `MaxLifetimeClosed`: closed by `max_lifetime`.
    pub max_lifetime_closed: u64,
    /// Closed on return because they were broken or marked unusable.
    pub broken_closed: u64,
    /// Closed because validation on checkout failed.
    pub invalid_closed: u64,
    /// Connections successfully opened.
    pub connections_created: u64,
    /// Failed connect attempts.
    pub connect_errors: u64,
    /// Checkouts that gave up waiting.
    pub timeouts: u64,
    /// Callers waiting right now.
    pub waiting: usize,
}

/// Why a checkout failed.
#[derive(Debug)]
pub enum Error<E> {
    /// Dialling a new connection failed; the manager's error, unchanged (an authentication
    /// failure stays an authentication failure).
    Connect(E),
    /// No connection became free within the wait timeout.
    Timeout {
        /// How long the caller waited.
        waited: Duration,
        /// The most recent connect error since the last successful connect, if any: when
        /// the pool is full of failing dials, this is the real cause.
        last_connect_error: Option<String>,
        /// Connections open (in use or being dialled) when the wait ended.
        open: usize,
        /// The `max_open` limit at that time.
        max_open: usize,
    },
    /// The pool was closed.
    Closed,
}

impl<E> Error<E> {
    /// The manager's error, if this is a connect failure.
    pub fn connect_error(&self) -> Option<&E> {
        match self {
            Error::Connect(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the wait timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }
}

/// `e` and its sources, `": "`-separated: client crates often put the server's message
/// (e.g. PostgreSQL's `password authentication failed`) only in a source.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// The message includes the manager error's whole source chain, so that the first line
/// a user sees names the real cause.
impl<E: std::error::Error + 'static> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect(e) => write!(f, "connection pool: connect failed: {}", error_chain(e)),
            Error::Timeout {
                waited,
                last_connect_error,
                open,
                max_open,
            } => {
                write!(
                    f,
                    "connection pool: timed out after {waited:?} waiting for a connection \
                     ({open} of max_open {max_open} open and in use)"
                )?;
                match last_connect_error {
                    Some(e) => write!(f, "; last connect error: {e}"),
                    None => write!(f, "; raise max_open or return connections sooner"),
                }
            }
            Error::Closed => f.write_str("connection pool: the pool is closed"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect(e) => Some(e),
            _ => None,
        }
    }
}

impl<E> From<core::Fail> for Error<E> {
    fn from(f: core::Fail) -> Self {
        match f {
            core::Fail::Closed => Error::Closed,
            core::Fail::Timeout {
                waited,
                last_connect_error,
                open,
                max_open,
            } => Error::Timeout {
                waited,
                last_connect_error,
                open,
                max_open,
            },
        }
    }
}

/// Starts the cleaner thread for `shared` if a time limit is set and none runs.
///
/// The thread holds only a `Weak` reference, ticks at Go's interval (the shorter limit,
/// at least 1 s) and exits when the pool is closed, dropped, or has no limits left.
pub(crate) fn ensure_cleaner<S, C>(shared: &std::sync::Arc<S>, core: fn(&S) -> &core::Core<C>)
where
    S: Send + Sync + 'static,
    C: 'static,
{
    if !core(shared).claim_cleaner() {
        return;
    }
    let weak = std::sync::Arc::downgrade(shared);
    let spawned = std::thread::Builder::new()
        .name("gosync-connpool-cleaner".into())
        .spawn(move || {
            if let Some(s) = weak.upgrade() {
                core(&s).set_cleaner_thread(std::thread::current());
            }
            loop {
                let next = match weak.upgrade() {
                    Some(s) => core(&s).clean(),
                    None => return,
                };
                match next {
                    Some(d) => std::thread::park_timeout(d),
                    None => return,
                }
            }
        });
    if spawned.is_err() {
        // Could not start a thread: expiry still happens lazily on checkout and return.
        core(shared).clean();
    }
}
