//! Concurrent maps: [`SyncMap`](crate::map) (Go's `sync.Map`), a sharded map, an
//! RWMutex-guarded map, an expiring map and an ordered map.
//!
//! None of them hands out a guard, so no call can deadlock another.
