//! `Serialize`/`Deserialize` for the maps (feature `serde`): each serializes as a plain map
//! (a JSON object, for example) and deserializes from one.
//!
//! Serializing a map that other threads are changing gives one consistent view per unit of
//! locking: [`SyncMap`] what one `pin().iter()` sees (each key at most once), [`ShardedMap`]
//! all shards read-locked together (a snapshot), [`RwMap`] and [`TreeMap`] their read lock (a
//! snapshot).

use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::lock::read;
use super::{RwMap, ShardedMap, SyncMap, TreeMap};

impl<K: Serialize, V: Serialize, S> Serialize for SyncMap<K, V, S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let pinned = self.pin();
        // Collected first, so that the length given to the serializer is exact.
        let entries: Vec<(&K, &V)> = pinned.iter().collect();
        serializer.collect_map(entries)
    }
}

impl<K: Serialize, V: Serialize, S> Serialize for ShardedMap<K, V, S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        // Shards are read-locked in order; writers hold at most one shard, so this cannot
        // deadlock with them.
        let guards: Vec<_> = self.shards.iter().map(|s| read(s)).collect();
        serializer.collect_map(guards.iter().flat_map(|t| t.iter().map(|(k, v)| (k, v))))
    }
}

impl<K: Serialize, V: Serialize, S> Serialize for RwMap<K, V, S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        serializer.collect_map(self.inner.read().iter())
    }
}

impl<K: Serialize, V: Serialize> Serialize for TreeMap<K, V> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        serializer.collect_map(read(&self.inner).iter())
    }
}

/// Deserializes a map by inserting each entry into `M`.
struct InsertVisitor<M, K, V> {
    make: fn(usize) -> M,
    insert: fn(&M, K, V),
    _kv: PhantomData<fn() -> (K, V)>,
}

impl<'de, M, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for InsertVisitor<M, K, V> {
    type Value = M;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<M, A::Error> {
        // Capped: the hint comes from the input.
        let m = (self.make)(access.size_hint().unwrap_or(0).min(4096));
        while let Some((k, v)) = access.next_entry()? {
            (self.insert)(&m, k, v);
        }
        Ok(m)
    }
}

impl<'de, K, V, S> Deserialize<'de> for SyncMap<K, V, S>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
    S: BuildHasher + Default,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(InsertVisitor {
            make: |n| SyncMap::with_capacity_and_hasher(n, S::default()),
            insert: |m: &Self, k, v| m.store(k, v),
            _kv: PhantomData,
        })
    }
}

impl<'de, K, V, S> Deserialize<'de> for ShardedMap<K, V, S>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
    S: BuildHasher + Default,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(InsertVisitor {
            make: |n| ShardedMap::with_capacity_and_hasher(n, S::default()),
            insert: |m: &Self, k, v| drop(m.set(k, v)),
            _kv: PhantomData,
        })
    }
}

impl<'de, K, V, S> Deserialize<'de> for RwMap<K, V, S>
where
    K: Deserialize<'de> + Hash + Eq,
    V: Deserialize<'de>,
    S: BuildHasher + Default,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(InsertVisitor {
            make: |n| RwMap::with_capacity_and_hasher(n, S::default()),
            insert: |m: &Self, k, v| drop(m.set(k, v)),
            _kv: PhantomData,
        })
    }
}

impl<'de, K, V> Deserialize<'de> for TreeMap<K, V>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(InsertVisitor {
            make: |_| TreeMap::new(),
            insert: |m: &Self, k, v| drop(m.insert(k, v)),
            _kv: PhantomData,
        })
    }
}
