//! [`RwMap`]: the seed's "map + RWMutex", the simplest thread-safe map.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use std::collections::hash_map::{self, HashMap, RandomState};

use crate::sync::RwMutex;

/// A `HashMap` behind one [`RwMutex`] (gosync's Go-algorithm RWMutex): the seed's `RWMap` (Go's blog recipe for sharing a
/// built-in map between goroutines).
///
/// ```
/// use gosync::map::RwMap;
///
/// let m = RwMap::new();
/// m.set(1, "one");
/// assert_eq!(m.get(&1), Some("one"));
/// m.delete(&1);
/// assert_eq!(m.len(), 0);
/// ```
///
/// Fastest when uncontended (one table, one lock); it slows down as threads are added, because
/// every reader writes the lock's shared counter. Use [`SyncMap`](super::SyncMap) when many
/// threads read at once.
///
/// Differences from the seed's Go version: [`for_each`](Self::for_each) and
/// [`iter`](Self::iter) copy the entries under the read lock and hand them out after
/// releasing it, so the caller may write to the map meanwhile (in Go, calling `Set` from
/// inside `Each` deadlocks). Like Go's RWMutex, the lock is write-preferring and has no
/// poisoning. [`entry`](Self::entry) and [`retain`](Self::retain) run their closure under the
/// write lock; it must not call the map.
///
/// The hasher is std's `RandomState` (SipHash, like a plain `HashMap`) unless you pass
/// another with [`with_hasher`](Self::with_hasher).
pub struct RwMap<K, V, S = RandomState> {
    pub(super) inner: RwMutex<HashMap<K, V, S>>,
}

impl<K: Hash + Eq, V> RwMap<K, V, RandomState> {
    /// An empty map.
    pub fn new() -> Self {
        Self::with_hasher(RandomState::new())
    }

    /// An empty map with room for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_hasher(capacity, RandomState::new())
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> RwMap<K, V, S> {
    /// An empty map hashing with `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        RwMap {
            inner: RwMutex::new(HashMap::with_hasher(hasher)),
        }
    }

    /// An empty map with room for `capacity` entries, hashing with `hasher`.
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        RwMap {
            inner: RwMutex::new(HashMap::with_capacity_and_hasher(capacity, hasher)),
        }
    }

    /// The value for `key` (Go: `Get`), under the read lock.
    #[doc(alias = "Get")]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.inner.read().get(key).cloned()
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.read().contains_key(key)
    }

    /// Sets `key` to `value` (Go: `Set`), returning the previous value.
    #[doc(alias = "Set")]
    pub fn set(&self, key: K, value: V) -> Option<V> {
        self.inner.write().insert(key, value)
    }

    /// Removes `key` (Go: `Delete`), returning its value.
    #[doc(alias = "Delete")]
    pub fn delete<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.write().remove(key)
    }

    /// Runs `f` on the entry of `key` (std's [`hash_map::Entry`]) under the write lock: an
    /// atomic insert-or-modify. Returns what `f` returns. `f` must not call this map.
    ///
    /// ```
    /// use gosync::map::RwMap;
    ///
    /// let m = RwMap::new();
    /// for w in ["a", "b", "a"] {
    ///     m.entry(w, |e| *e.or_insert(0) += 1);
    /// }
    /// assert_eq!(m.get("a"), Some(2));
    /// ```
    pub fn entry<R, F>(&self, key: K, f: F) -> R
    where
        F: FnOnce(hash_map::Entry<'_, K, V>) -> R,
    {
        f(self.inner.write().entry(key))
    }

    /// Keeps only the entries for which `f` returns `true` (`f` may modify the value), under
    /// the write lock (`HashMap::retain`, which also drops the removed entries there). `f`
    /// must not call this map, nor may the removed values' `Drop`.
    ///
    /// ```
    /// use gosync::map::RwMap;
    ///
    /// let m: RwMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// m.retain(|_, v| *v >= 5);
    /// assert_eq!(m.len(), 5);
    /// ```
    pub fn retain<F>(&self, mut f: F)
    where
        F: FnMut(&K, &mut V) -> bool,
    {
        self.inner.write().retain(|k, v| f(k, v));
    }

    /// Room for at least `additional` more entries without reallocating.
    ///
    /// ```
    /// use gosync::map::RwMap;
    ///
    /// let m: RwMap<u32, u32> = RwMap::new();
    /// m.reserve(100);
    /// assert!(m.capacity() >= 100);
    /// ```
    pub fn reserve(&self, additional: usize) {
        self.inner.write().reserve(additional);
    }
}

impl<K, V, S> RwMap<K, V, S> {
    /// Number of entries (Go: `Len`).
    #[doc(alias = "Len")]
    pub fn len(&self) -> usize {
        self.inner.read().len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.read().is_empty()
    }

    /// Entries the map holds without reallocating.
    pub fn capacity(&self) -> usize {
        self.inner.read().capacity()
    }

    /// Calls `f` on every entry until it returns `false` (Go: `Each`). The entries are copied
    /// under the read lock and `f` runs after it is released.
    #[doc(alias = "Each")]
    pub fn for_each<F>(&self, mut f: F)
    where
        F: FnMut(&K, &V) -> bool,
        K: Clone,
        V: Clone,
    {
        for (k, v) in &self.snapshot_vec() {
            if !f(k, v) {
                break;
            }
        }
    }

    /// An iterator over a copy of the entries, taken under the read lock (a consistent
    /// snapshot), which is released before the first item: the map may be used freely while
    /// iterating.
    ///
    /// ```
    /// use gosync::map::RwMap;
    ///
    /// let m: RwMap<u32, u32> = (1..=3).map(|i| (i, i)).collect();
    /// let sum: u32 = m.iter().map(|(_, v)| v).sum();
    /// assert_eq!(sum, 6);
    /// ```
    pub fn iter(&self) -> std::vec::IntoIter<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        self.snapshot_vec().into_iter()
    }

    fn snapshot_vec(&self) -> Vec<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        self.inner
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Removes every entry (dropped after the lock is released).
    pub fn clear(&self) {
        let old: Vec<(K, V)> = self.inner.write().drain().collect();
        drop(old);
    }

    /// The map's contents, by value.
    pub fn into_inner(self) -> HashMap<K, V, S> {
        self.inner.into_inner()
    }
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> Default for RwMap<K, V, S> {
    fn default() -> Self {
        Self::with_hasher(S::default())
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for RwMap<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.inner.read().iter()).finish()
    }
}

impl<K, V, S> IntoIterator for RwMap<K, V, S> {
    type Item = (K, V);
    type IntoIter = hash_map::IntoIter<K, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_inner().into_iter()
    }
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> FromIterator<(K, V)> for RwMap<K, V, S> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        RwMap {
            inner: RwMutex::new(iter.into_iter().collect()),
        }
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Extend<(K, V)> for RwMap<K, V, S> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        self.inner.get_mut().extend(iter);
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Extend<(K, V)> for &RwMap<K, V, S> {
    /// Inserts each pair, taking the write lock once per pair (other threads interleave).
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            drop(self.set(k, v));
        }
    }
}
