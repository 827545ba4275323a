//! [`TreeMap`]: a concurrent ordered map (the seed's "treemap").

use core::borrow::Borrow;
use core::fmt;
use core::ops::{Bound, RangeBounds};
use std::collections::btree_map::{self, BTreeMap};

use super::lock::{read, write, RwLock};

/// A concurrent ordered map: a `BTreeMap` behind a read-write lock, with the ordered queries of
/// Go's `emirpasic/gods` treemap (`Floor`, `Ceiling`, `Min`, `Max`) made safe to share.
///
/// ```
/// use gosync::map::TreeMap;
///
/// let m = TreeMap::new();
/// for k in [10, 20, 30] {
///     m.insert(k, k * 100);
/// }
/// assert_eq!(m.first(), Some((10, 1000)));
/// assert_eq!(m.floor(&25), Some((20, 2000)));
/// assert_eq!(m.ceiling(&25), Some((30, 3000)));
/// assert_eq!(m.range(15..), vec![(20, 2000), (30, 3000)]);
/// ```
///
/// Every query returns owned copies (`K: Clone, V: Clone`), so no lock outlives a call, and
/// [`range`](Self::range) returns the matching entries as a `Vec` taken under one read lock
/// (a consistent snapshot of that range); [`iter`](Self::iter) does the same for the whole
/// map. [`entry`](Self::entry) and [`retain`](Self::retain) run their closure under the write
/// lock; it must not call the map. gods' treemap is not thread-safe at all; this one is.
///
/// A `BTreeMap` has no spare capacity to reserve, so `TreeMap` has no `reserve`/`capacity`.
pub struct TreeMap<K, V> {
    pub(super) inner: RwLock<BTreeMap<K, V>>,
}

fn cloned<K: Clone, V: Clone>((k, v): (&K, &V)) -> (K, V) {
    (k.clone(), v.clone())
}

impl<K: Ord, V> TreeMap<K, V> {
    /// An empty map.
    pub const fn new() -> Self {
        TreeMap {
            inner: RwLock::new(BTreeMap::new()),
        }
    }

    /// Inserts `key → value`, returning the previous value (gods: `Put`).
    #[doc(alias = "Put")]
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        write(&self.inner).insert(key, value)
    }

    /// The value for `key`.
    #[doc(alias = "Get")]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
        V: Clone,
    {
        read(&self.inner).get(key).cloned()
    }

    /// Removes `key`, returning its value.
    #[doc(alias = "Remove")]
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        write(&self.inner).remove(key)
    }

    /// The entries whose keys fall in `range`, in order, read under one lock.
    pub fn range<R>(&self, range: R) -> Vec<(K, V)>
    where
        R: RangeBounds<K>,
        K: Clone,
        V: Clone,
    {
        read(&self.inner).range(range).map(cloned).collect()
    }

    /// The smallest entry (gods: `Min`).
    #[doc(alias = "Min")]
    pub fn first(&self) -> Option<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        read(&self.inner).iter().next().map(cloned)
    }

    /// The largest entry (gods: `Max`).
    #[doc(alias = "Max")]
    pub fn last(&self) -> Option<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        read(&self.inner).iter().next_back().map(cloned)
    }

    /// The largest entry with key `<= key` (gods: `Floor`).
    #[doc(alias = "Floor")]
    pub fn floor<Q>(&self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q> + Clone,
        Q: Ord + ?Sized,
        V: Clone,
    {
        read(&self.inner)
            .range::<Q, _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()
            .map(cloned)
    }

    /// The smallest entry with key `>= key` (gods: `Ceiling`).
    #[doc(alias = "Ceiling")]
    pub fn ceiling<Q>(&self, key: &Q) -> Option<(K, V)>
    where
        K: Borrow<Q> + Clone,
        Q: Ord + ?Sized,
        V: Clone,
    {
        read(&self.inner)
            .range::<Q, _>((Bound::Included(key), Bound::Unbounded))
            .next()
            .map(cloned)
    }

    /// Number of entries (gods: `Size`).
    #[doc(alias = "Size")]
    pub fn len(&self) -> usize {
        read(&self.inner).len()
    }

    /// Whether the map is empty (gods: `Empty`).
    #[doc(alias = "Empty")]
    pub fn is_empty(&self) -> bool {
        read(&self.inner).is_empty()
    }

    /// Removes every entry (dropped after the lock is released).
    pub fn clear(&self) {
        let old = core::mem::take(&mut *write(&self.inner));
        drop(old);
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        read(&self.inner).contains_key(key)
    }

    /// Runs `f` on the entry of `key` (std's [`btree_map::Entry`]) under the write lock: an
    /// atomic insert-or-modify. Returns what `f` returns. `f` must not call this map.
    ///
    /// ```
    /// use gosync::map::TreeMap;
    ///
    /// let m = TreeMap::new();
    /// for w in ["b", "a", "b"] {
    ///     m.entry(w, |e| *e.or_insert(0) += 1);
    /// }
    /// assert_eq!(m.first(), Some(("a", 1)));
    /// assert_eq!(m.get("b"), Some(2));
    /// ```
    pub fn entry<R, F>(&self, key: K, f: F) -> R
    where
        F: FnOnce(btree_map::Entry<'_, K, V>) -> R,
    {
        f(write(&self.inner).entry(key))
    }

    /// Keeps only the entries for which `f` returns `true` (`f` may modify the value), under
    /// the write lock (`BTreeMap::retain`, which also drops the removed entries there). `f`
    /// must not call this map, nor may the removed values' `Drop`.
    ///
    /// ```
    /// use gosync::map::TreeMap;
    ///
    /// let m: TreeMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// m.retain(|k, _| k % 3 == 0);
    /// assert_eq!(m.range(..), vec![(0, 0), (3, 3), (6, 6), (9, 9)]);
    /// ```
    pub fn retain<F>(&self, mut f: F)
    where
        F: FnMut(&K, &mut V) -> bool,
    {
        write(&self.inner).retain(|k, v| f(k, v));
    }

    /// An iterator over a copy of the entries in key order, taken under the read lock (a
    /// consistent snapshot), which is released before the first item: the map may be used
    /// freely while iterating.
    ///
    /// ```
    /// use gosync::map::TreeMap;
    ///
    /// let m: TreeMap<u32, char> = [(2, 'b'), (1, 'a')].into_iter().collect();
    /// assert_eq!(m.iter().collect::<Vec<_>>(), [(1, 'a'), (2, 'b')]);
    /// ```
    pub fn iter(&self) -> std::vec::IntoIter<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        self.range(..).into_iter()
    }

    /// The map's contents, by value.
    pub fn into_inner(self) -> BTreeMap<K, V> {
        self.inner
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<K: Ord, V> IntoIterator for TreeMap<K, V> {
    type Item = (K, V);
    type IntoIter = btree_map::IntoIter<K, V>;
    /// Takes the entries out, in key order.
    fn into_iter(self) -> Self::IntoIter {
        self.into_inner().into_iter()
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for TreeMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        TreeMap {
            inner: RwLock::new(iter.into_iter().collect()),
        }
    }
}

impl<K: Ord, V> Extend<(K, V)> for TreeMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        self.inner
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(iter);
    }
}

impl<K: Ord, V> Extend<(K, V)> for &TreeMap<K, V> {
    /// Inserts each pair, taking the write lock once per pair (other threads interleave).
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            drop(self.insert(k, v));
        }
    }
}

impl<K: Ord, V> Default for TreeMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for TreeMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(read(&self.inner).iter()).finish()
    }
}
