//! [`RwMap`]: the seed's "map + RWMutex", the simplest thread-safe map.

use core::borrow::Borrow;
use core::fmt;
use core::hash::Hash;
use std::collections::HashMap;

use super::lock::{read, write, RwLock};

/// A `HashMap` behind one read-write lock: the seed's `RWMap` (Go's blog recipe for sharing a
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
/// calling `Set` from inside `Each` deadlocks). Lock poisoning is ignored, as Go has none.
pub struct RwMap<K, V> {
    inner: RwLock<HashMap<K, V>>,
}

impl<K: Hash + Eq, V> RwMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        RwMap {
            inner: RwLock::new(HashMap::new()),
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
        read(&self.inner).get(key).cloned()
    }

    /// Sets `key` to `value` (Go: `Set`), returning the previous value.
    #[doc(alias = "Set")]
    pub fn set(&self, key: K, value: V) -> Option<V> {
        write(&self.inner).insert(key, value)
    }

    /// Removes `key` (Go: `Delete`), returning its value.
    #[doc(alias = "Delete")]
    pub fn delete<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        write(&self.inner).remove(key)
    }

    /// Number of entries (Go: `Len`).
    #[doc(alias = "Len")]
    pub fn len(&self) -> usize {
        read(&self.inner).len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        read(&self.inner).is_empty()
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
        let copy: Vec<(K, V)> = read(&self.inner)
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
        let old = core::mem::take(&mut *write(&self.inner));
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
        f.debug_map().entries(read(&self.inner).iter()).finish()
    }
}
