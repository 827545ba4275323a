//! [`ShardedMap`]: orcaman/concurrent-map's design — a fixed set of independently locked shards.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use std::collections::HashMap;

use crossbeam_utils::CachePadded;
use hashbrown::hash_table;
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
/// Beyond Go's API: [`entry`](Self::entry) (dashmap's insert-or-modify, closure-scoped),
/// [`retain`](Self::retain), [`iter`](Self::iter), [`reserve`](Self::reserve)/
/// [`capacity`](Self::capacity), `Extend`, `FromIterator`, `IntoIterator`, serde (feature
/// `serde`).
///
/// # State layout
///
/// `shards[i]`: a `RwLock<HashTable<(K, V)>>` holding exactly the keys whose hash has
/// `(hash >> 40) & (shards - 1) == i`. `hasher` is shared by all shards.
pub struct ShardedMap<K, V, S = DefaultHashBuilder> {
    pub(super) shards: Box<[CachePadded<Shard<K, V>>]>,
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

    /// An empty map with room for `capacity` entries (spread over the shards).
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_hasher(capacity, DefaultHashBuilder::default())
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

/// # Rust-style API: entry, retain, iteration, capacity
impl<K: Hash + Eq, V, S: BuildHasher> ShardedMap<K, V, S> {
    /// An empty map with room for `capacity` entries (spread over the shards) hashing with
    /// `hasher`.
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        let m = Self::with_shards_and_hasher(DEFAULT_SHARDS, hasher);
        m.reserve(capacity);
        m
    }

    /// Number of entries (the same as [`count`](Self::count)).
    pub fn len(&self) -> usize {
        self.count()
    }

    /// Runs `f` on the entry of `key`, under the shard's write lock: the insert-or-modify in
    /// one step that dashmap's `entry` gives, without handing out a guard (so it cannot be
    /// held across another call or an `.await`). Returns what `f` returns.
    ///
    /// `f` runs under the shard's write lock: it must not call this map. What it takes out of
    /// the entry (`OccupiedEntry::remove`, `insert`) is its to drop.
    ///
    /// ```
    /// use gosync::map::ShardedMap;
    ///
    /// let counts = ShardedMap::new();
    /// for w in "a b a c a".split(' ') {
    ///     counts.entry(w, |e| *e.or_insert(0) += 1);
    /// }
    /// assert_eq!(counts.get("a"), Some(3));
    /// // Remove an entry that falls to zero, in the same step.
    /// let left = counts.entry("c", |e| match e {
    ///     gosync::map::Entry::Occupied(mut o) => {
    ///         *o.get_mut() -= 1;
    ///         if *o.get() == 0 {
    ///             o.remove();
    ///         }
    ///         true
    ///     }
    ///     gosync::map::Entry::Vacant(_) => false,
    /// });
    /// assert!(left && !counts.has("c"));
    /// ```
    pub fn entry<R, F>(&self, key: K, f: F) -> R
    where
        F: FnOnce(Entry<'_, K, V>) -> R,
    {
        let (hash, shard) = self.locate(&key);
        let mut t = write(shard);
        let e = match t.entry(hash, |(k, _)| *k == key, self.rehasher()) {
            hash_table::Entry::Occupied(entry) => Entry::Occupied(OccupiedEntry { entry }),
            hash_table::Entry::Vacant(entry) => Entry::Vacant(VacantEntry { entry, key }),
        };
        f(e)
    }

    /// Keeps only the entries for which `f` returns `true` (`f` may also modify the value).
    /// Shard by shard, each under its write lock: `f` must not call this map. The removed
    /// entries are dropped after the shard is unlocked.
    ///
    /// ```
    /// use gosync::map::ShardedMap;
    ///
    /// let m: ShardedMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// m.retain(|_, v| {
    ///     *v *= 10;
    ///     *v < 50
    /// });
    /// assert_eq!(m.len(), 5);
    /// assert_eq!(m.get(&4), Some(40));
    /// ```
    pub fn retain<F>(&self, mut f: F)
    where
        F: FnMut(&K, &mut V) -> bool,
    {
        let mut removed = Vec::new();
        for s in self.shards.iter() {
            removed.extend(write(s).extract_if(|(k, v)| !f(k, v)));
            removed.clear(); // after the lock: a Drop may use this map
        }
    }

    /// Room for at least `additional` more entries before any shard grows, if keys spread
    /// evenly over the shards.
    ///
    /// ```
    /// use gosync::map::ShardedMap;
    ///
    /// let m: ShardedMap<u32, u32> = ShardedMap::new();
    /// m.reserve(1_000);
    /// assert!(m.capacity() >= 1_000);
    /// let all: Vec<(u32, u32)> = ShardedMap::with_capacity(10).into_iter().collect();
    /// assert!(all.is_empty());
    /// ```
    pub fn reserve(&self, additional: usize) {
        let per_shard = additional.div_ceil(self.shards.len());
        for s in self.shards.iter() {
            write(s).reserve(per_shard, self.rehasher());
        }
    }

    /// Entries the map holds before any shard grows (the sum over shards).
    pub fn capacity(&self) -> usize {
        self.shards.iter().map(|s| read(s).capacity()).sum()
    }

    /// An iterator over copies of the entries, one shard at a time: each shard is copied under
    /// its read lock, which is released before the copies are yielded, so the map may be used
    /// freely while iterating (each shard is a consistent snapshot; the whole is not).
    ///
    /// ```
    /// use gosync::map::ShardedMap;
    ///
    /// let m: ShardedMap<&str, u32> = [("a", 1), ("b", 2)].into_iter().collect();
    /// let mut total = 0;
    /// for (k, v) in m.iter() {
    ///     total += v;
    ///     m.remove(k); // no lock is held here
    /// }
    /// assert_eq!(total, 3);
    /// assert!(m.is_empty());
    /// ```
    pub fn iter(&self) -> ShardedIter<'_, K, V, S>
    where
        K: Clone,
        V: Clone,
    {
        ShardedIter {
            map: self,
            shard: 0,
            batch: Vec::new().into_iter(),
        }
    }
}

/// Iterator over copies of a [`ShardedMap`]'s entries; see [`ShardedMap::iter`].
pub struct ShardedIter<'a, K, V, S = DefaultHashBuilder> {
    map: &'a ShardedMap<K, V, S>,
    shard: usize,
    batch: std::vec::IntoIter<(K, V)>,
}

impl<K: Clone, V: Clone, S> Iterator for ShardedIter<'_, K, V, S> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        loop {
            if let Some(kv) = self.batch.next() {
                return Some(kv);
            }
            let s = self.map.shards.get(self.shard)?;
            self.shard += 1;
            let copy: Vec<(K, V)> = read(s).iter().cloned().collect();
            self.batch = copy.into_iter();
        }
    }
}

/// The entry of a key in a [`ShardedMap`], lent to the closure of
/// [`ShardedMap::entry`] (like `std::collections::hash_map::Entry`).
pub enum Entry<'a, K, V> {
    /// The key is present.
    Occupied(OccupiedEntry<'a, K, V>),
    /// The key is absent.
    Vacant(VacantEntry<'a, K, V>),
}

/// A present key's entry.
pub struct OccupiedEntry<'a, K, V> {
    entry: hash_table::OccupiedEntry<'a, (K, V)>,
}

/// An absent key's entry.
pub struct VacantEntry<'a, K, V> {
    entry: hash_table::VacantEntry<'a, (K, V)>,
    key: K,
}

impl<'a, K, V> Entry<'a, K, V> {
    /// The key.
    pub fn key(&self) -> &K {
        match self {
            Entry::Occupied(o) => o.key(),
            Entry::Vacant(v) => v.key(),
        }
    }

    /// The value, inserting `default` if absent.
    pub fn or_insert(self, default: V) -> &'a mut V {
        match self {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(default),
        }
    }

    /// The value, inserting `make()` if absent.
    pub fn or_insert_with<F: FnOnce() -> V>(self, make: F) -> &'a mut V {
        match self {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(make()),
        }
    }

    /// The value, inserting `make(&key)` if absent.
    pub fn or_insert_with_key<F: FnOnce(&K) -> V>(self, make: F) -> &'a mut V {
        match self {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let value = make(&v.key);
                v.insert(value)
            }
        }
    }

    /// The value, inserting `V::default()` if absent.
    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }

    /// Runs `f` on the value if present.
    pub fn and_modify<F: FnOnce(&mut V)>(mut self, f: F) -> Self {
        if let Entry::Occupied(o) = &mut self {
            f(o.get_mut());
        }
        self
    }
}

impl<'a, K, V> OccupiedEntry<'a, K, V> {
    /// The stored key.
    pub fn key(&self) -> &K {
        &self.entry.get().0
    }
    /// The value.
    pub fn get(&self) -> &V {
        &self.entry.get().1
    }
    /// The value, mutably.
    pub fn get_mut(&mut self) -> &mut V {
        &mut self.entry.get_mut().1
    }
    /// The value, mutably, for the rest of the closure.
    pub fn into_mut(self) -> &'a mut V {
        &mut self.entry.into_mut().1
    }
    /// Replaces the value, returning the old one.
    pub fn insert(&mut self, value: V) -> V {
        core::mem::replace(self.get_mut(), value)
    }
    /// Removes the entry, returning its value.
    pub fn remove(self) -> V {
        self.remove_entry().1
    }
    /// Removes the entry, returning its key and value.
    pub fn remove_entry(self) -> (K, V) {
        self.entry.remove().0
    }
}

impl<'a, K, V> VacantEntry<'a, K, V> {
    /// The key that would be inserted.
    pub fn key(&self) -> &K {
        &self.key
    }
    /// Takes the key back.
    pub fn into_key(self) -> K {
        self.key
    }
    /// Inserts `value`, returning it mutably.
    pub fn insert(self, value: V) -> &'a mut V {
        &mut self.entry.insert((self.key, value)).into_mut().1
    }
}

impl<K, V, S> IntoIterator for ShardedMap<K, V, S> {
    type Item = (K, V);
    type IntoIter =
        core::iter::Flatten<std::vec::IntoIter<hashbrown::hash_table::IntoIter<(K, V)>>>;

    /// Takes the entries out of the map.
    fn into_iter(self) -> Self::IntoIter {
        let tables: Vec<_> = self
            .shards
            .into_vec()
            .into_iter()
            .map(|s| {
                CachePadded::into_inner(s)
                    .into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .into_iter()
            })
            .collect();
        tables.into_iter().flatten()
    }
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> FromIterator<(K, V)> for ShardedMap<K, V, S> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let m = Self::with_shards_and_hasher(DEFAULT_SHARDS, S::default());
        (&m).extend(iter);
        m
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Extend<(K, V)> for ShardedMap<K, V, S> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        (&*self).extend(iter);
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Extend<(K, V)> for &ShardedMap<K, V, S> {
    /// Sets each pair (as [`set`](ShardedMap::set)); works on a shared map.
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            drop(self.set(k, v));
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
