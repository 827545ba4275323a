//! [`ShardedMap`]: orcaman/concurrent-map's design — a fixed set of independently locked shards.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use std::collections::HashMap;

use crossbeam_utils::CachePadded;
use hashbrown::HashTable;

use super::lock::{read, write, RwLock};
use super::DefaultHashBuilder;

/// A concurrent map split into `N` shards, each a hash table behind its own read-write lock:
/// the design of Go's `orcaman/concurrent-map`.
///
/// ```
/// use gosync::map::ShardedMap;
///
/// let m = ShardedMap::new();
/// m.set("apples", 3);
/// assert!(!m.set_if_absent("apples", 5));
/// m.upsert("apples", 2, |old, new| old.map_or(new, |o| o + new)); // atomic read-modify-write
/// assert_eq!(m.get("apples"), Some(5));
/// assert!(m.remove_if("apples", |v| *v == 5));
/// assert!(m.is_empty());
/// ```
///
/// # Differences from Go's concurrent-map
///
/// - The shard count is a power of two (default 32, like `SHARD_COUNT`), chosen per map with
///   [`with_shards`](Self::with_shards) instead of a mutable global; shards are cache-padded.
/// - Keys hash once (with [`DefaultHashBuilder`] unless you pass a hasher) and the same hash picks the shard and
///   the slot; Go's version hashes strings with FNV-1 for the shard only.
/// - [`upsert`](Self::upsert) and [`remove_if`](Self::remove_if) run their closure under the
///   shard's write lock, exactly as Go's `Upsert`/`RemoveCb` do: the closure must not call this
///   map (a re-entrant call on the same shard would deadlock). Every other method, including
///   [`for_each`](Self::for_each), runs user code outside any lock: `for_each` copies a shard,
///   releases it, then calls `f`.
/// - [`count`](Self::count) read-locks each shard in turn (O(shards)), as Go's `Count` does.
///
/// Prefer [`SyncMap`](super::SyncMap) unless you need this API: its reads take no lock.
///
/// # State layout
///
/// `shards[i]`: a `RwLock<HashTable<(K, V)>>` holding exactly the keys whose hash has
/// `(hash >> 40) & (shards - 1) == i`. `hasher` is shared by all shards.
pub struct ShardedMap<K, V, S = DefaultHashBuilder> {
    shards: Box<[CachePadded<Shard<K, V>>]>,
    mask: usize,
    hasher: S,
}

/// One shard: a hash table of `(key, value)` addressed by the map's hash.
type Shard<K, V> = RwLock<HashTable<(K, V)>>;

/// Default shard count (orcaman's `SHARD_COUNT`).
const DEFAULT_SHARDS: usize = 32;

impl<K: Hash + Eq, V> ShardedMap<K, V, DefaultHashBuilder> {
    /// An empty map with 32 shards.
    pub fn new() -> Self {
        Self::with_shards(DEFAULT_SHARDS)
    }

    /// An empty map with `n` shards (rounded up to a power of two, at least 1).
    pub fn with_shards(n: usize) -> Self {
        Self::with_shards_and_hasher(n, DefaultHashBuilder::default())
    }
}

impl<K: Hash + Eq, V> Default for ShardedMap<K, V, DefaultHashBuilder> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> ShardedMap<K, V, S> {
    /// An empty map with `n` shards (rounded up to a power of two) hashing with `hasher`.
    pub fn with_shards_and_hasher(n: usize, hasher: S) -> Self {
        let n = n.max(1).next_power_of_two();
        ShardedMap {
            shards: (0..n)
                .map(|_| CachePadded::new(RwLock::new(HashTable::new())))
                .collect(),
            mask: n - 1,
            hasher,
        }
    }

    #[inline]
    fn locate<Q: Hash + ?Sized>(&self, key: &Q) -> (u64, &Shard<K, V>) {
        let hash = self.hasher.hash_one(key);
        (hash, &self.shards[(hash >> 40) as usize & self.mask])
    }

    #[inline]
    fn rehasher(&self) -> impl Fn(&(K, V)) -> u64 + '_ {
        move |(k, _)| self.hasher.hash_one(k)
    }

    /// Sets `key` to `value` (Go: `Set`), returning the previous value.
    #[doc(alias = "Set")]
    pub fn set(&self, key: K, value: V) -> Option<V> {
        let (hash, shard) = self.locate(&key);
        let mut t = write(shard);
        match t.find_mut(hash, |(k, _)| *k == key) {
            Some((_, v)) => {
                let old = core::mem::replace(v, value);
                drop(t); // the unused `key` is dropped by our caller's frame, after this
                Some(old)
            }
            None => {
                t.insert_unique(hash, (key, value), self.rehasher());
                None
            }
        }
    }

    /// The value for `key` (Go: `Get`).
    #[doc(alias = "Get")]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let (hash, shard) = self.locate(key);
        let t = read(shard);
        t.find(hash, |(k, _)| k.borrow() == key)
            .map(|(_, v)| v.clone())
    }

    /// Whether `key` is present (Go: `Has`).
    #[doc(alias = "Has")]
    pub fn has<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (hash, shard) = self.locate(key);
        let found = read(shard).find(hash, |(k, _)| k.borrow() == key).is_some();
        found
    }

    /// Removes `key`; `true` if it was present (Go: `Remove`).
    #[doc(alias = "Remove")]
    pub fn remove<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.pop(key).is_some()
    }

    /// Removes `key` and returns its value (Go: `Pop`).
    #[doc(alias = "Pop")]
    pub fn pop<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (hash, shard) = self.locate(key);
        let mut t = write(shard);
        let entry = t.find_entry(hash, |(k, _)| k.borrow() == key).ok()?;
        let (k, v) = entry.remove().0;
        drop(t);
        drop(k); // after the lock: a key's `Drop` may use this map
        Some(v)
    }

    /// Stores `value` only if `key` is absent; `true` if it stored (Go: `SetIfAbsent`).
    #[doc(alias = "SetIfAbsent")]
    pub fn set_if_absent(&self, key: K, value: V) -> bool {
        let (hash, shard) = self.locate(&key);
        let mut t = write(shard);
        if t.find(hash, |(k, _)| *k == key).is_some() {
            drop(t); // before `key` and `value` are dropped
            return false;
        }
        t.insert_unique(hash, (key, value), self.rehasher());
        true
    }

    /// Atomically replaces the value of `key` with `f(current, value)` (Go: `Upsert`), where
    /// `current` is `None` if the key is absent. Returns a clone of the stored value.
    ///
    /// `f` runs under the shard's write lock: it must not call this map.
    #[doc(alias = "Upsert")]
    pub fn upsert<F>(&self, key: K, value: V, f: F) -> V
    where
        F: FnOnce(Option<&V>, V) -> V,
        V: Clone,
    {
        let (hash, shard) = self.locate(&key);
        let mut t = write(shard);
        match t.find_mut(hash, |(k, _)| *k == key) {
            Some((_, v)) => {
                let new = f(Some(v), value);
                let old = core::mem::replace(v, new);
                let out = v.clone();
                drop(t);
                drop(old); // after the lock: a value's `Drop` may use this map
                out
            }
            None => {
                let v = f(None, value);
                t.insert_unique(hash, (key, v.clone()), self.rehasher());
                v
            }
        }
    }

    /// Removes `key` if `f(value)` returns `true` (Go: `RemoveCb`); returns whether it removed.
    ///
    /// `f` runs under the shard's write lock: it must not call this map.
    #[doc(alias = "RemoveCb")]
    pub fn remove_if<Q, F>(&self, key: &Q, f: F) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        F: FnOnce(&V) -> bool,
    {
        let (hash, shard) = self.locate(key);
        let mut t = write(shard);
        let removed = match t.find_entry(hash, |(k, _)| k.borrow() == key) {
            Ok(entry) if f(&entry.get().1) => Some(entry.remove().0),
            _ => None,
        };
        drop(t);
        removed.is_some() // dropped after the lock: its `Drop` may use this map
    }

    /// Number of entries (Go: `Count`); read-locks each shard in turn.
    #[doc(alias = "Count")]
    pub fn count(&self) -> usize {
        self.shards.iter().map(|s| read(s).len()).sum()
    }

    /// Whether the map is empty (Go: `IsEmpty`).
    #[doc(alias = "IsEmpty")]
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| read(s).is_empty())
    }

    /// All keys (Go: `Keys`); each shard is copied under its read lock.
    #[doc(alias = "Keys")]
    pub fn keys(&self) -> Vec<K>
    where
        K: Clone,
    {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            out.extend(read(s).iter().map(|(k, _)| k.clone()));
        }
        out
    }

    /// A copy of the contents (Go: `Items`), consistent per shard.
    #[doc(alias = "Items")]
    pub fn snapshot(&self) -> HashMap<K, V>
    where
        K: Clone,
        V: Clone,
    {
        let mut out = HashMap::with_capacity(self.count());
        for s in self.shards.iter() {
            out.extend(read(s).iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }

    /// Calls `f` on every entry (Go: `IterCb`). Each shard is copied under its read lock and `f`
    /// runs after the lock is released, so `f` may call any method of this map.
    #[doc(alias = "IterCb")]
    pub fn for_each<F>(&self, mut f: F)
    where
        F: FnMut(&K, &V),
        K: Clone,
        V: Clone,
    {
        let mut batch = Vec::new();
        for s in self.shards.iter() {
            batch.clear();
            batch.extend(read(s).iter().map(|(k, v)| (k.clone(), v.clone())));
            for (k, v) in &batch {
                f(k, v);
            }
        }
    }

    /// Removes every entry (shard by shard; Go's `Clear` is not atomic either).
    #[doc(alias = "Clear")]
    pub fn clear(&self) {
        for s in self.shards.iter() {
            let old = core::mem::take(&mut *write(s));
            drop(old); // outside the lock: V's destructors may be slow or call back in.
        }
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for ShardedMap<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for s in self.shards.iter() {
            for (k, v) in read(s).iter() {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}
