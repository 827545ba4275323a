//! [`TreeMap`]: a concurrent ordered map (the seed's "treemap").

use core::borrow::Borrow;
use core::fmt;
use core::ops::{Bound, RangeBounds};
use std::collections::BTreeMap;

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
/// (a consistent snapshot of that range). gods' treemap is not thread-safe at all; this one is.
pub struct TreeMap<K, V> {
    inner: RwLock<BTreeMap<K, V>>,
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

    /// Removes every entry.
    pub fn clear(&self) {
        let old = core::mem::take(&mut *write(&self.inner));
        drop(old);
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
