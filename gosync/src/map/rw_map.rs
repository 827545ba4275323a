//! [`RwMap`]: the seed's "map + RWMutex", the simplest thread-safe map.

use core::borrow::Borrow;
use core::fmt;
use core::hash::Hash;
use std::collections::HashMap;

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
/// Differences from the seed's Go version: [`for_each`](Self::for_each) copies the entries
/// under the read lock and calls `f` after releasing it, so `f` may write to the map (in Go,
/// calling `Set` from inside `Each` deadlocks). Like Go's RWMutex, the lock is
/// write-preferring and has no poisoning.
pub struct RwMap<K, V> {
    inner: RwMutex<HashMap<K, V>>,
}

impl<K: Hash + Eq, V> RwMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        RwMap {
            inner: RwMutex::new(HashMap::new()),
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

    /// Number of entries (Go: `Len`).
    #[doc(alias = "Len")]
    pub fn len(&self) -> usize {
        self.inner.read().len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.read().is_empty()
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
        let copy: Vec<(K, V)> = self
            .inner
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in &copy {
            if !f(k, v) {
                break;
            }
        }
    }

    /// Removes every entry.
    pub fn clear(&self) {
        let old = core::mem::take(&mut *self.inner.write());
        drop(old);
    }
}

impl<K: Hash + Eq, V> Default for RwMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for RwMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.inner.read().iter()).finish()
    }
}
