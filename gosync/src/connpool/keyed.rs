//! [`KeyedPool`]: one pool per key (server address, tenant, shard) with per-key limits —
//! gomemcache's `freeconn map[addr][]*conn` and net/http's `MaxIdleConnsPerHost` /
//! `MaxConnsPerHost`.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Config, Error, Manager, Pool, PooledConn, Stats};

/// Creates, checks and recognises broken connections for a [`KeyedPool`]: like
/// [`Manager`], with the key passed to every call.
pub trait KeyedManager<K>: Send + Sync + 'static {
    /// The connection type.
    type Connection: Send + 'static;
    /// The error `connect` and `is_valid` return.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Opens a new connection for `key`.
    fn connect(&self, key: &K) -> Result<Self::Connection, Self::Error>;
    /// Checks an idle connection before it is handed out.
    fn is_valid(&self, key: &K, conn: &mut Self::Connection) -> Result<(), Self::Error>;
    /// A cheap local check on return: `true` closes the connection.
    fn has_broken(&self, key: &K, conn: &mut Self::Connection) -> bool;
}

/// The [`Manager`] a [`KeyedPool`] gives each key's pool: the shared keyed manager plus
/// the key.
pub struct PerKey<K, M> {
    manager: Arc<M>,
    key: K,
}

impl<K, M> PerKey<K, M> {
    /// The key this pool serves.
    pub fn key(&self) -> &K {
        &self.key
    }
}

impl<K, M> Manager for PerKey<K, M>
where
    K: Send + Sync + 'static,
    M: KeyedManager<K>,
{
    type Connection = M::Connection;
    type Error = M::Error;
    fn connect(&self) -> Result<Self::Connection, Self::Error> {
        self.manager.connect(&self.key)
    }
    fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        self.manager.is_valid(&self.key, conn)
    }
    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        self.manager.has_broken(&self.key, conn)
    }
}

/// A connection checked out of a [`KeyedPool`] (a [`PooledConn`] of that key's pool).
pub type KeyedPooledConn<K, M> = PooledConn<PerKey<K, M>>;

type PoolMap<K, M> = HashMap<K, Pool<PerKey<K, M>>>;

/// A pool of pools, one per key, each with its own idle list and limits.
///
/// [`Config`] applies **per key**: `max_idle` is gomemcache's `MaxIdleConns` / net/http's
/// `MaxIdleConnsPerHost` (default 2, as both), `max_open` is `MaxConnsPerHost` (default
/// unlimited). Each key's pool is created on first use and behaves exactly like a
/// [`Pool`] (LIFO reuse, waiting, validation, lifetimes).
///
/// # Example
///
/// ```no_run
/// use gosync::connpool::{Config, KeyedPool, TcpDialer};
/// use std::io::Write;
///
/// let pool = KeyedPool::new(TcpDialer::new(), Config { max_idle: 4, ..Config::default() });
/// for server in ["10.0.0.1:11211", "10.0.0.2:11211"] {
///     let mut conn = pool.get(&server.to_string())?;
///     conn.write_all(b"version\r\n")?;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct KeyedPool<K, M>
where
    K: Send + Sync + 'static,
    M: KeyedManager<K>,
{
    manager: Arc<M>,
    config: Config,
    pools: Arc<Mutex<PoolMap<K, M>>>,
}

impl<K, M> Clone for KeyedPool<K, M>
where
    K: Send + Sync + 'static,
    M: KeyedManager<K>,
{
    fn clone(&self) -> Self {
        KeyedPool {
            manager: self.manager.clone(),
            config: self.config.clone(),
            pools: self.pools.clone(),
        }
    }
}

impl<K, M> fmt::Debug for KeyedPool<K, M>
where
    K: Send + Sync + 'static,
    M: KeyedManager<K>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedPool")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<K, M> KeyedPool<K, M>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    M: KeyedManager<K>,
{
    /// Creates a keyed pool; `config` applies to each key.
    pub fn new(manager: M, config: Config) -> Self {
        KeyedPool {
            manager: Arc::new(manager),
            config,
            pools: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, PoolMap<K, M>> {
        // Only map lookups and inserts run under this lock.
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pool for `key`, created on first use.
    pub fn pool(&self, key: &K) -> Pool<PerKey<K, M>> {
        let mut map = self.map();
        if let Some(p) = map.get(key) {
            return p.clone();
        }
        let p = Pool::new(
            PerKey {
                manager: self.manager.clone(),
                key: key.clone(),
            },
            self.config.clone(),
        );
        map.insert(key.clone(), p.clone());
        p
    }

    /// Checks out a connection for `key` (see [`Pool::get`]).
    pub fn get(&self, key: &K) -> Result<KeyedPooledConn<K, M>, Error<M::Error>> {
        self.pool(key).get()
    }

    /// Checks out a connection for `key`, waiting at most `timeout`.
    pub fn get_timeout(
        &self,
        key: &K,
        timeout: Duration,
    ) -> Result<KeyedPooledConn<K, M>, Error<M::Error>> {
        self.pool(key).get_timeout(timeout)
    }

    /// An idle connection for `key`, if there is one (gomemcache's `getFreeConn`).
    pub fn try_get(&self, key: &K) -> Option<KeyedPooledConn<K, M>> {
        let p = self.map().get(key)?.clone();
        p.try_get()
    }

    /// Statistics for `key`, if it has a pool.
    pub fn stats(&self, key: &K) -> Option<Stats> {
        self.map().get(key).map(Pool::stats)
    }

    /// The keys that have a pool.
    pub fn keys(&self) -> Vec<K> {
        self.map().keys().cloned().collect()
    }

    /// Statistics summed over all keys (`max_open` is the per-key limit).
    pub fn total_stats(&self) -> Stats {
        let pools: Vec<_> = self.map().values().cloned().collect();
        let mut t = Stats {
            max_open: self.config.max_open,
            ..Stats::default()
        };
        for s in pools.iter().map(Pool::stats) {
            t.open += s.open;
            t.in_use += s.in_use;
            t.idle += s.idle;
            t.wait_count += s.wait_count;
            t.wait_duration += s.wait_duration;
            t.max_idle_closed += s.max_idle_closed;
            t.max_idle_time_closed += s.max_idle_time_closed;
            t.max_lifetime_closed += s.max_lifetime_closed;
            t.broken_closed += s.broken_closed;
            t.invalid_closed += s.invalid_closed;
            t.connections_created += s.connections_created;
            t.connect_errors += s.connect_errors;
            t.timeouts += s.timeouts;
            t.waiting += s.waiting;
        }
        t
    }

    /// Closes and forgets `key`'s pool (e.g. a server left the ring). Connections still
    /// checked out close when returned.
    pub fn remove(&self, key: &K) {
        let p = self.map().remove(key);
        if let Some(p) = p {
            p.close();
        }
    }

    /// Closes every key's pool and forgets them (like net/http's `CloseIdleConnections`:
    /// idle connections close now, checked-out ones when returned). A later `get` starts
    /// a fresh pool for its key.
    pub fn close(&self) {
        let pools: Vec<_> = self.map().drain().map(|(_, p)| p).collect();
        for p in pools {
            p.close();
        }
    }
}
