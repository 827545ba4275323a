//! [`TimedMap`]: a concurrent map whose entries expire after a per-entry time to live, with an
//! optional size bound.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::time::Duration;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use crossbeam_utils::CachePadded;

use super::sweeper::clock::{self, NEVER};
use super::sweeper::{self, Sweep};
use super::timed_store::{Gone, Inserted, Removed, Store};
use super::DefaultHashBuilder;

/// Why an entry left a [`TimedMap`]: the cause passed to the eviction listener (ttlcache's
/// `EvictionReason`, moka's `RemovalCause`).
#[doc(alias = "RemovalCause")]
#[doc(alias = "EvictionReason")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpiryReason {
    /// Its time to live ran out.
    Expired,
    /// [`TimedMap::remove`] or [`TimedMap::clear`] removed it.
    Removed,
    /// [`TimedMap::insert`] replaced its value.
    Replaced,
    /// The map was full ([`TimedMapBuilder::max_capacity`]) and the eviction policy chose it.
    Evicted,
}

/// Which entry a bounded [`TimedMap`] evicts when it is full.
///
/// ```
/// use gosync::map::{EvictionPolicy, TimedMap};
/// use std::time::Duration;
///
/// let recent: TimedMap<u32, u32> = TimedMap::builder()
///     .max_capacity(2)
///     .shards(1)
///     .eviction_policy(EvictionPolicy::Lru)
///     .build();
/// for k in [1, 2, 3] {
///     recent.insert(k, k, Duration::from_secs(60));
/// }
/// assert_eq!(recent.get(&1), None); // the least recently used went
/// assert_eq!(recent.eviction_policy(), EvictionPolicy::Lru);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EvictionPolicy {
    /// W-TinyLFU (Caffeine's policy; moka uses its TinyLFU admission): new entries pass through
    /// a small LRU window, then must be estimated more frequently used than the main space's
    /// least recently used entry to displace it. Resists scans and one-off keys; the better
    /// hit ratio on skewed (Zipf-like) access, which is most caches' access.
    #[default]
    TinyLfu,
    /// Least recently used. Cheaper per access (no frequency sketch); best when recent keys are
    /// the ones that come back.
    Lru,
}

type Listener<K, V, S> = Box<dyn Fn(&TimedMap<K, V, S>, &K, &V, ExpiryReason) + Send + Sync>;

/// One shard: its entries, and its earliest deadline readable without the lock (for the
/// sweeper, which skips shards with nothing due).
struct Shard<K, V> {
    store: Mutex<Store<K, V>>,
    /// `store.next_deadline()`, written under the lock after every change (SeqCst: see
    /// `Inner::schedule`).
    next_deadline: AtomicU64,
}

struct Inner<K, V, S> {
    shards: Box<[CachePadded<Shard<K, V>>]>,
    mask: usize,
    hasher: S,
    listener: Option<Listener<K, V, S>>,
    max_capacity: Option<usize>,
    policy: EvictionPolicy,
    /// This map's pending wake-up in the shared sweeper (see `sweeper`'s protocol).
    scheduled: AtomicU64,
    /// This map as the sweeper knows it (it never holds a strong reference).
    me: Weak<dyn Sweep>,
}

/// A concurrent map whose entries expire after a per-entry time to live, optionally bounded in
/// size (Go's `timedmap` / `ttlcache`; moka's `sync::Cache` for Rust users).
///
/// ```
/// use gosync::map::{ExpiryReason, TimedMap};
/// use std::time::Duration;
///
/// let m = TimedMap::with_callback(|k: &&str, v: &i32, why| println!("{k}={v} left: {why:?}"));
/// m.insert("session", 42, Duration::from_secs(60));
/// assert_eq!(m.get("session"), Some(42));
/// m.refresh("session", Duration::from_secs(120)); // extend
/// m.insert_with_ttl("config", 7, None); // never expires
/// assert_eq!(m.remove("session"), Some(42)); // callback: Removed
/// ```
///
/// A bounded cache, with an eviction listener:
///
/// ```
/// use gosync::map::{ExpiryReason, TimedMap};
/// use std::time::Duration;
///
/// let cache = TimedMap::builder()
///     .max_capacity(1_000)
///     .eviction_listener(|k: &u64, _v: &String, why| {
///         if why == ExpiryReason::Evicted {
///             println!("{k} evicted to make room");
///         }
///     })
///     .build();
/// for k in 0..5_000u64 {
///     cache.insert(k, format!("value {k}"), Duration::from_secs(300));
///     assert!(cache.contains_key(&k)); // a new entry is always there right after its insert
/// }
/// assert!(cache.len() <= 1_000);
/// ```
///
/// # Behaviour
///
/// - **Expiry**: an entry whose deadline has passed is absent for every read at once, whether
///   or not it has been removed yet. Reads do not extend the time to live
///   ([`refresh`](Self::refresh) does). A time to live of `None`
///   ([`insert_with_ttl`](Self::insert_with_ttl)), or one too long for the clock
///   (`Duration::MAX`, or anything past ~500 years), never expires.
/// - **One sweeper thread for all maps**: expired entries are removed by a single background
///   thread shared by every `TimedMap` of the process (started with the first one). It sleeps
///   until the earliest deadline of any map (an earlier insert wakes it), then removes what
///   has expired. It holds no map alive: a dropped map is simply skipped. Nothing to start or
///   stop.
/// - **Size bound** ([`TimedMapBuilder::max_capacity`]): the map never holds more entries.
///   When an insert would exceed it, an already expired entry is removed first, else the
///   [`EvictionPolicy`] picks one (`ExpiryReason::Evicted`). The bound is split evenly over the
///   map's shards (by key hash), so a map may evict before it holds exactly `max_capacity`
///   entries when keys spread unevenly. A newly inserted entry is never the one evicted by its
///   own insert.
/// - **Listener**: every entry that leaves the map is reported once with its cause
///   ([`ExpiryReason`]), outside every lock, so the listener may call the map. `Expired` is
///   reported on the sweeper thread, or on the thread whose call removed the entry: an
///   `insert`, `remove` or `clear` that meets an expired entry, an `insert` whose eviction
///   removes one, or [`remove_expired`](Self::remove_expired). `Removed`, `Replaced` and
///   `Evicted` are reported on the thread that called `remove`/`clear`/`insert`. Keep the
///   listener short: on the sweeper thread it delays other maps' expiry.
/// - **A panicking listener** is caught: the call that reported the entry completes normally,
///   the remaining entries are still reported, the sweeper keeps running and the map stays
///   usable. (The panic is printed by the panic hook as usual.)
/// - **Listener and the map's lifetime**: a listener that owns an `Arc` of its own map keeps
///   the map alive for ever (a reference cycle). To call the map from the listener, use
///   [`TimedMapBuilder::eviction_listener_with_map`], which passes the map in; or capture a
///   `Weak`.
/// - **Dropping the map** drops its entries without reporting them.
/// - [`len`](Self::len) is exact: entries whose deadline passed are not counted, swept or not.
///
/// # Differences from Go's timedmap and from moka
///
/// - timedmap runs a cleaner goroutine per map that scans the whole map under the write lock
///   each tick and runs callbacks under the lock; reads take the write lock. Here one sweeper
///   serves all maps and visits only what has expired, callbacks run unlocked, and reads
///   lock one shard.
/// - moka's `Cache` (also W-TinyLFU) may reject a new entry at admission, so a `get` right
///   after an `insert` can miss; here new entries always enter (the window) and compete for
///   the main space only when they leave the window. moka applies its bookkeeping in batches
///   and `entry_count` lags; here every call sees the map's exact state.
///
/// # State layout
///
/// `shards[i]`: a mutex over the shard's entries (a slab of slots with a hash index), its
/// deadline index `(deadline, slot)` (entries that never expire are not in it) and, when
/// bounded, the policy's three LRU lists and frequency sketch (see [`EvictionPolicy`]); plus
/// the shard's earliest deadline as an atomic. `scheduled`: this map's pending wake-up in the
/// shared sweeper.
pub struct TimedMap<K, V, S = DefaultHashBuilder> {
    inner: Arc<Inner<K, V, S>>,
}

/// Settings for a [`TimedMap`]: `TimedMap::builder().max_capacity(n).build()`.
pub struct TimedMapBuilder<K, V, S = DefaultHashBuilder> {
    hasher: S,
    max_capacity: Option<usize>,
    policy: EvictionPolicy,
    listener: Option<Listener<K, V, S>>,
    shards: Option<usize>,
}

impl<K, V> TimedMapBuilder<K, V, DefaultHashBuilder> {
    /// Defaults: unbounded, no listener, the default hasher.
    pub fn new() -> Self {
        Self::with_hasher(DefaultHashBuilder::default())
    }
}

impl<K, V> Default for TimedMapBuilder<K, V, DefaultHashBuilder> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S> TimedMapBuilder<K, V, S> {
    /// Defaults, hashing keys with `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        TimedMapBuilder {
            hasher,
            max_capacity: None,
            policy: EvictionPolicy::default(),
            listener: None,
            shards: None,
        }
    }

    /// Bounds the map to `n` entries (see the map's *Size bound*). Default: unbounded.
    ///
    /// # Panics
    ///
    /// In [`build`](Self::build), if `n` is zero.
    pub fn max_capacity(mut self, n: usize) -> Self {
        self.max_capacity = Some(n);
        self
    }

    /// Which entry a full map evicts. Default: [`EvictionPolicy::TinyLfu`].
    pub fn eviction_policy(mut self, policy: EvictionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Calls `listener(key, value, cause)` for every entry that leaves the map (see the map's
    /// *Listener*). Replaces any listener set before.
    pub fn eviction_listener<F>(mut self, listener: F) -> Self
    where
        F: Fn(&K, &V, ExpiryReason) + Send + Sync + 'static,
    {
        self.listener = Some(Box::new(move |_, k, v, why| listener(k, v, why)));
        self
    }

    /// Like [`eviction_listener`](Self::eviction_listener), and passes the map itself, so that
    /// the listener can use it without owning a handle to it (which would keep the map alive
    /// for ever).
    ///
    /// ```
    /// use gosync::map::{ExpiryReason, TimedMap};
    /// use std::time::Duration;
    ///
    /// // Move whatever expires from "hot" to "cold" storage, both in the same map.
    /// let m = TimedMap::builder()
    ///     .eviction_listener_with_map(|map: &TimedMap<String, u32>, k: &String, v: &u32, why| {
    ///         if why == ExpiryReason::Expired && !k.starts_with("cold:") {
    ///             map.insert(format!("cold:{k}"), *v, Duration::from_secs(3600));
    ///         }
    ///     })
    ///     .build();
    /// m.insert("a".into(), 1, Duration::ZERO);
    /// m.remove_expired();
    /// assert_eq!(m.get("cold:a"), Some(1));
    /// ```
    pub fn eviction_listener_with_map<F>(mut self, listener: F) -> Self
    where
        F: Fn(&TimedMap<K, V, S>, &K, &V, ExpiryReason) + Send + Sync + 'static,
    {
        self.listener = Some(Box::new(listener));
        self
    }

    /// Number of shards (rounded up to a power of two). Default: 4 × CPUs (at least 16), and
    /// for a bounded map no more than one per 32 entries of capacity.
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n.max(1).next_power_of_two());
        self
    }

    /// Builds the map.
    ///
    /// # Panics
    ///
    /// If `max_capacity` is zero.
    pub fn build(self) -> TimedMap<K, V, S>
    where
        K: Hash + Eq + Send + Sync + 'static,
        V: Send + Sync + 'static,
        S: BuildHasher + Send + Sync + 'static,
    {
        if let Some(cap) = self.max_capacity {
            assert!(cap > 0, "gosync::TimedMap: max_capacity must be at least 1");
        }
        let n = self.shards.unwrap_or_else(|| {
            let by_cpu = (crate::primitive::available_cpus() * 4)
                .next_power_of_two()
                .clamp(16, 256);
            match self.max_capacity {
                Some(cap) => by_cpu.min(prev_power_of_two(cap / 32).max(1)),
                None => by_cpu,
            }
        });
        let lru_only = self.policy == EvictionPolicy::Lru;
        let shards = (0..n)
            .map(|i| {
                // The bound split exactly: the first `cap % n` shards take one more.
                let cap = self.max_capacity.map(|c| c / n + usize::from(i < c % n));
                CachePadded::new(Shard {
                    store: Mutex::new(Store::new(cap, lru_only)),
                    next_deadline: AtomicU64::new(NEVER),
                })
            })
            .collect();
        let inner = Arc::new_cyclic(|me: &Weak<Inner<K, V, S>>| Inner {
            shards,
            mask: n - 1,
            hasher: self.hasher,
            listener: self.listener,
            max_capacity: self.max_capacity,
            policy: self.policy,
            scheduled: AtomicU64::new(NEVER),
            me: me.clone(),
        });
        TimedMap { inner }
    }
}

fn prev_power_of_two(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

impl<K, V> TimedMap<K, V, DefaultHashBuilder>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// An empty, unbounded map without a listener.
    pub fn new() -> Self {
        TimedMapBuilder::new().build()
    }

    /// An empty, unbounded map that calls `on_expiry(key, value, reason)` whenever an entry
    /// leaves it (the same as `builder().eviction_listener(on_expiry).build()`).
    pub fn with_callback<F>(on_expiry: F) -> Self
    where
        F: Fn(&K, &V, ExpiryReason) + Send + Sync + 'static,
    {
        TimedMapBuilder::new().eviction_listener(on_expiry).build()
    }

    /// Settings: size bound, eviction policy, listener, hasher.
    pub fn builder() -> TimedMapBuilder<K, V, DefaultHashBuilder> {
        TimedMapBuilder::new()
    }
}

impl<K, V> Default for TimedMap<K, V, DefaultHashBuilder>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V, S> TimedMap<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
{
    /// An empty, unbounded map hashing keys with `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        TimedMapBuilder::with_hasher(hasher).build()
    }
}

/// Locks a shard, ignoring poison: the store's invariants hold between any two user calls
/// (only `Eq` of keys runs under the lock, before anything is modified).
#[inline]
fn lock<K, V>(shard: &Shard<K, V>) -> MutexGuard<'_, Store<K, V>> {
    shard.store.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K, V, S> TimedMap<K, V, S> {
    /// The size bound, if the map has one.
    pub fn max_capacity(&self) -> Option<usize> {
        self.inner.max_capacity
    }

    /// The eviction policy a bounded map uses.
    pub fn eviction_policy(&self) -> EvictionPolicy {
        self.inner.policy
    }

    /// Reports one entry to the listener, catching a panic (see *A panicking listener*).
    fn report(&self, key: &K, value: &V, why: ExpiryReason) {
        if let Some(l) = &self.inner.listener {
            let r =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l(self, key, value, why)));
            drop(r); // the panic hook has printed it; the map goes on
        }
    }

    /// Reports entries that the policy or the clock removed.
    fn report_gone(&self, gone: Vec<(Removed<K, V>, Gone)>) {
        for (r, g) in &gone {
            let why = match g {
                Gone::Expired => ExpiryReason::Expired,
                Gone::Evicted => ExpiryReason::Evicted,
            };
            self.report(&r.key, &r.value, why);
        }
    }
}

impl<K, V, S> TimedMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    #[inline]
    fn shard_for<Q: Hash + ?Sized>(&self, key: &Q) -> (u64, &Shard<K, V>) {
        let hash = self.inner.hasher.hash_one(key);
        (
            hash,
            &self.inner.shards[(hash >> 40) as usize & self.inner.mask],
        )
    }

    /// Publishes shard's new earliest deadline (if it changed) and makes sure the sweeper
    /// wakes for it. Called with the shard's lock held (`st`); the sweeper call happens after.
    #[inline]
    fn publish_deadline(&self, shard: &Shard<K, V>, st: &Store<K, V>) -> Option<u64> {
        let next = st.next_deadline();
        // Relaxed for the comparison: only this lock's holders write it.
        let before = shard.next_deadline.load(Ordering::Relaxed);
        if next == before {
            return None;
        }
        // SeqCst, paired with the sweeper's SeqCst store of `scheduled` and load of this
        // value: either the sweep in progress sees this deadline, or our `schedule` call sees
        // the sweep's reset of `scheduled` (a store-buffer pattern; weaker orders could let
        // both miss).
        shard.next_deadline.store(next, Ordering::SeqCst);
        (next < before).then_some(next)
    }

    fn schedule(&self, deadline: Option<u64>) {
        if let Some(d) = deadline {
            sweeper::schedule(&self.inner.me, &self.inner.scheduled, d);
        }
    }

    /// Inserts `key → value`, expiring `ttl` from now. Returns the previous value if it had not
    /// expired (the listener then gets it with [`ExpiryReason::Replaced`]; an expired one is
    /// reported as `Expired`). A `ttl` too long for the clock (`Duration::MAX`) never expires.
    ///
    /// In a bounded map this may evict another entry (see *Size bound*).
    #[doc(alias = "Set")]
    pub fn insert(&self, key: K, value: V, ttl: Duration) -> Option<V> {
        self.insert_with_ttl(key, value, Some(ttl))
    }

    /// Inserts `key → value` with a time to live; `None` never expires. Otherwise as
    /// [`insert`](Self::insert).
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Option<Duration>) -> Option<V> {
        let (hash, shard) = self.shard_for(&key);
        let now = clock::now();
        let deadline = clock::deadline(now, ttl);
        let mut gone = Vec::new();
        let (done, wake) = {
            let mut st = lock(shard);
            let done = st.insert(hash, key, value, deadline, now, &mut gone);
            (done, self.publish_deadline(shard, &st))
        };
        self.schedule(wake);
        let out = match done {
            Inserted::New => None,
            Inserted::Replaced {
                old,
                old_deadline,
                key,
            } => {
                if old_deadline <= now {
                    self.report(&key, &old, ExpiryReason::Expired);
                    None
                } else {
                    self.report(&key, &old, ExpiryReason::Replaced);
                    Some(old)
                }
            }
        };
        self.report_gone(gone);
        out
    }

    /// The value for `key`, if present and not expired. In a bounded map this counts as a use
    /// of the entry for the eviction policy.
    #[doc(alias = "GetValue")]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let (hash, shard) = self.shard_for(key);
        let mut st = lock(shard);
        st.get(hash, key, clock::now, |v, _| v.clone())
    }

    /// Whether `key` is present and not expired (not a use for the eviction policy).
    #[doc(alias = "Contains")]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.ttl(key).is_some()
    }

    /// Time left before `key` expires: `Some(Duration::MAX)` if it never does, `None` if it is
    /// absent or expired.
    #[doc(alias = "GetExpires")]
    pub fn ttl<Q>(&self, key: &Q) -> Option<Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (hash, shard) = self.shard_for(key);
        let st = lock(shard);
        let (_, deadline) = st.peek(hash, key)?;
        if deadline == NEVER {
            return Some(Duration::MAX);
        }
        let now = clock::now();
        (deadline > now).then(|| Duration::from_nanos(deadline - now))
    }

    /// Removes `key`, returning its value if it had not expired (the listener then gets
    /// [`ExpiryReason::Removed`]; an expired entry is reported as `Expired`).
    #[doc(alias = "Remove")]
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (hash, shard) = self.shard_for(key);
        let removed = {
            let mut st = lock(shard);
            let r = st.remove(hash, key)?;
            self.publish_deadline(shard, &st);
            r
        };
        if removed.deadline <= clock::now() {
            self.report(&removed.key, &removed.value, ExpiryReason::Expired);
            None
        } else {
            self.report(&removed.key, &removed.value, ExpiryReason::Removed);
            Some(removed.value)
        }
    }

    /// Gives `key` a new time to live from now; `false` if it is absent or already expired.
    #[doc(alias = "Refresh")]
    pub fn refresh<Q>(&self, key: &Q, ttl: Duration) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.refresh_with_ttl(key, Some(ttl))
    }

    /// Like [`refresh`](Self::refresh); `None` makes the entry never expire.
    pub fn refresh_with_ttl<Q>(&self, key: &Q, ttl: Option<Duration>) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (hash, shard) = self.shard_for(key);
        let now = clock::now();
        let (done, wake) = {
            let mut st = lock(shard);
            let done = st.refresh(hash, key, clock::deadline(now, ttl), now);
            (done, self.publish_deadline(shard, &st))
        };
        self.schedule(wake);
        done
    }

    /// Number of entries that have not expired (locks each shard in turn).
    #[doc(alias = "Size")]
    pub fn len(&self) -> usize {
        let now = clock::now();
        self.inner.shards.iter().map(|s| lock(s).live(now)).sum()
    }

    /// Whether [`len`](Self::len) is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry; the listener gets each one with [`ExpiryReason::Removed`] (or
    /// `Expired` if its deadline had passed). Shard by shard, like Go's `Clear`.
    #[doc(alias = "Flush")]
    pub fn clear(&self) {
        for shard in self.inner.shards.iter() {
            let old = {
                let mut st = lock(shard);
                let old = st.drain();
                self.publish_deadline(shard, &st);
                old
            };
            let now = clock::now();
            for r in &old {
                let why = if r.deadline <= now {
                    ExpiryReason::Expired
                } else {
                    ExpiryReason::Removed
                };
                self.report(&r.key, &r.value, why);
            }
        }
    }

    /// Removes every expired entry now, on the calling thread (the sweeper would have done so
    /// shortly), reporting each as `Expired`. Returns how many it removed.
    pub fn remove_expired(&self) -> usize {
        self.sweep_now(clock::now())
    }

    /// Sweeps the shards that have something due at `now`; returns how many entries left.
    fn sweep_now(&self, now: u64) -> usize {
        let mut n = 0;
        for shard in self.inner.shards.iter() {
            // SeqCst: see `publish_deadline`.
            if shard.next_deadline.load(Ordering::SeqCst) > now {
                continue;
            }
            let mut gone = Vec::new();
            {
                let mut st = lock(shard);
                st.take_expired(now, &mut gone);
                self.publish_deadline(shard, &st);
            }
            n += gone.len();
            self.report_gone(gone);
        }
        n
    }

    /// Keeps only the entries for which `keep(key, value)` returns `true`; the others leave
    /// with [`ExpiryReason::Removed`]. Expired entries are not shown to `keep` and leave too
    /// (as `Expired`). `keep` runs under the shard's lock: it must not call this map.
    ///
    /// ```
    /// use gosync::map::TimedMap;
    /// use std::time::Duration;
    ///
    /// let m = TimedMap::new();
    /// for k in 0..10 {
    ///     m.insert(k, k * k, Duration::from_secs(60));
    /// }
    /// m.retain(|_, v| *v > 20);
    /// assert_eq!(m.len(), 5);
    /// ```
    pub fn retain<F>(&self, mut keep: F)
    where
        F: FnMut(&K, &mut V) -> bool,
    {
        for shard in self.inner.shards.iter() {
            let now = clock::now();
            let mut gone = Vec::new();
            {
                let mut st = lock(shard);
                st.retain(
                    |k, v, deadline| (deadline == NEVER || deadline > now) && keep(k, v),
                    &mut gone,
                );
                self.publish_deadline(shard, &st);
            }
            for r in &gone {
                let why = if r.deadline <= now {
                    ExpiryReason::Expired
                } else {
                    ExpiryReason::Removed
                };
                self.report(&r.key, &r.value, why);
            }
        }
    }
}

impl<K, V, S> Sweep for Inner<K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
{
    fn scheduled(&self) -> &AtomicU64 {
        &self.scheduled
    }

    fn sweep(self: Arc<Self>, now: u64) -> u64 {
        let map = TimedMap { inner: self };
        map.sweep_now(now);
        map.inner
            .shards
            .iter()
            // SeqCst: see `publish_deadline`.
            .map(|s| s.next_deadline.load(Ordering::SeqCst))
            .min()
            .unwrap_or(NEVER)
    }
}

impl<K, V, S> fmt::Debug for TimedMap<K, V, S>
where
    K: fmt::Debug,
    V: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = clock::now();
        let mut m = f.debug_map();
        for shard in self.inner.shards.iter() {
            lock(shard).for_each(|k, v, deadline| {
                if deadline > now {
                    m.entry(k, v);
                }
            });
        }
        m.finish()
    }
}
