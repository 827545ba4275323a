//! [`SyncMap`]: Go's `sync.Map` with lock-free reads, per-shard writer locks and an O(1) `len`.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};

use crossbeam_utils::CachePadded;

use super::reclaim::{Collector, Guard};
use super::DefaultHashBuilder;
use crate::primitive::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

// The writers' lock. Its critical sections are a probe and a few pointer stores; no user code
// (other than `Hash`/`Eq`/`Clone` of keys and values) runs under it.
#[cfg(loom)]
use loom::sync::{Mutex as ShardLock, MutexGuard as ShardGuard};
#[cfg(not(loom))]
use std::sync::{Mutex as ShardLock, MutexGuard as ShardGuard};

/// `meta` byte of a slot that has never held a key in this table. Probes stop here.
const EMPTY: u8 = 0;
/// `meta` byte of a slot whose key was deleted. Probes continue past it; inserts may reuse it.
const TOMBSTONE: u8 = 1;

/// The `meta` byte of a live slot: the top bit set plus 7 bits of the hash, so that a probe
/// only follows a pointer when the tags match (a false match has probability 1/128).
#[inline]
fn tag(hash: u64) -> u8 {
    0x80 | (hash >> 57) as u8
}

/// Which shard a hash belongs to. Uses bits 40.. so that it is independent of the tag (bits
/// 57..64) and of the slot index (the low bits).
#[inline]
fn shard_of(hash: u64, shard_mask: usize) -> usize {
    (hash >> 40) as usize & shard_mask
}

/// A key and its value. Immutable once published: an update publishes a new node in the same
/// slot and retires the old one, so a reader that holds a node always sees a consistent pair.
struct Node<K, V> {
    key: K,
    value: V,
}

/// One shard's open-addressing table (linear probing).
///
/// Invariants:
/// - `meta[i]` is `EMPTY`, `TOMBSTONE` or `tag(hash(key))` of the node in `slots[i]`.
/// - A slot goes `EMPTY → live → TOMBSTONE → live → …`; it never becomes `EMPTY` again, so a key
///   that stays in the table is always reachable from its home slot without crossing `EMPTY`.
/// - At least one slot is `EMPTY` (the shard grows at 3/4 occupancy), so probes terminate.
/// - Only the holder of the shard's lock writes `meta`/`slots`. A live slot's pointer is stored
///   before its tag (both `Release`); a deleted slot's pointer is nulled before it becomes a
///   tombstone, and only then is the node retired.
/// - The table does not own its nodes: dropping a `Table` frees only the arrays.
struct Table<K, V> {
    mask: usize,
    meta: Box<[AtomicU8]>,
    slots: Box<[AtomicPtr<Node<K, V>>]>,
}

impl<K, V> Table<K, V> {
    fn new(capacity: usize) -> Box<Self> {
        debug_assert!(capacity.is_power_of_two());
        Box::new(Table {
            mask: capacity - 1,
            meta: (0..capacity).map(|_| AtomicU8::new(EMPTY)).collect(),
            slots: (0..capacity)
                .map(|_| AtomicPtr::new(core::ptr::null_mut()))
                .collect(),
        })
    }

    #[inline]
    fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Lock-free lookup. The node stays valid while `guard` lives.
    #[inline]
    fn find<'g, Q>(&'g self, hash: u64, key: &Q, guard: &'g Guard<'_>) -> Option<&'g Node<K, V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let want = tag(hash);
        let mut i = hash as usize & self.mask;
        loop {
            // Acquire: pairs with the writer's Release store of the tag, which follows the
            // store of the slot pointer.
            // SAFETY: `i <= mask` and both arrays have `mask + 1` elements.
            let (meta, slot) = unsafe { (self.meta.get_unchecked(i), self.slots.get_unchecked(i)) };
            let m = meta.load(Ordering::Acquire);
            if m == EMPTY {
                return None;
            }
            if m == want {
                let node = guard.protect(slot);
                if !node.is_null() {
                    // SAFETY: the pointer was loaded from the table while `guard` is active, so
                    // the node is either still linked or was retired after we entered; either
                    // way seize keeps it allocated until `guard` drops.
                    let node = unsafe { &*node };
                    if node.key.borrow() == key {
                        return Some(node);
                    }
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Lookup by the lock holder: where the key is, or where it would be inserted.
    fn locate<Q>(&self, hash: u64, key: &Q) -> Slot
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let want = tag(hash);
        let mut i = hash as usize & self.mask;
        let mut first_tombstone = None;
        loop {
            // Relaxed: the shard lock orders us after every earlier writer.
            match self.meta[i].load(Ordering::Relaxed) {
                EMPTY => {
                    return match first_tombstone {
                        Some(t) => Slot::Vacant {
                            index: t,
                            reuses_tombstone: true,
                        },
                        None => Slot::Vacant {
                            index: i,
                            reuses_tombstone: false,
                        },
                    }
                }
                TOMBSTONE => {
                    first_tombstone.get_or_insert(i);
                }
                m if m == want => {
                    let node = self.slots[i].load(Ordering::Relaxed);
                    // SAFETY: live slots hold valid nodes; we hold the lock, so nobody can
                    // unlink (let alone free) this one while we look at it.
                    if unsafe { (*node).key.borrow() } == key {
                        return Slot::Found(i);
                    }
                }
                _ => {}
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// Result of [`Table::locate`].
enum Slot {
    Found(usize),
    Vacant {
        index: usize,
        reuses_tombstone: bool,
    },
}

/// Writer-side bookkeeping of one shard, protected by the shard lock.
#[derive(Default)]
struct Counts {
    /// Slots that are not `EMPTY` (live + tombstones) in the current table.
    used: usize,
}

/// One shard's writer lock and live-entry count, on its own cache line so that writers of
/// different shards do not disturb each other (readers never touch it).
struct ShardState {
    lock: ShardLock<Counts>,
    /// Live entries. Written only by the lock holder; read by `len` without the lock.
    len: AtomicUsize,
}

/// Go's `sync.Map`: a concurrent map whose reads never lock, never block, and never write shared
/// memory.
///
/// ```
/// use gosync::map::SyncMap;
///
/// let m = SyncMap::new();
/// m.store("a", 1);
/// assert_eq!(m.load("a"), Some(1));
/// assert_eq!(m.load_or_store("a", 2), (1, true)); // already there: loaded
/// assert!(m.compare_and_swap("a", &1, 3));
/// assert_eq!(m.swap("a", 4), Some(3));
/// m.range(|k, v| {
///     println!("{k} = {v}");
///     true // keep going
/// });
/// assert_eq!(m.len(), 1);
/// assert_eq!(m.load_and_delete("a"), Some(4));
/// assert!(m.is_empty());
/// ```
///
/// # When to use it
///
/// Everywhere Go code would use `sync.Map`, and more: unlike Go's original design, new keys,
/// deletes and churn are cheap too (see *Design* below). For an ordered map use
/// [`TreeMap`](super::TreeMap); for per-entry expiry [`TimedMap`](super::TimedMap).
///
/// # Semantics (as Go documents them)
///
/// - Every operation is linearizable. A write *synchronizes with* any read that observes it.
/// - [`range`](Self::range) visits each key at most once, is not a snapshot (a value may
///   reflect any mapping during the call), and `f` may call any method on the map, including
///   deleting the key it is looking at.
/// - `compare_and_swap` / `compare_and_delete` compare with `V: PartialEq` (Go panics at run
///   time for incomparable values; here it is a compile error).
///
/// # Differences from Go
///
/// - Values are returned by clone (`V: Clone`), because no reference can outlive a concurrent
///   delete without a guard, and this map hands out no guards (so nothing can deadlock). Store
///   `Arc<T>` for large values.
/// - [`len`](Self::len) exists (Go has none) and costs one relaxed load per shard.
/// - [`load_or_store_with`](Self::load_or_store_with) builds the value only when the key is
///   absent; the closure runs outside any lock.
/// - `compare_and_swap` needs `K: Clone` (a swap publishes a new immutable node).
/// - Range order is by hash, not Go's randomized order.
///
/// # Design (and why)
///
/// The map is split into `shards` (a power of two, 4 × CPUs, at least 16). Each shard has an
/// open-addressing table (linear probing, one `meta` byte per slot holding 7 hash bits, as in
/// Swiss tables) whose slots point to immutable `Node { key, value }` boxes:
///
/// - **Reads** enter the map's [`seize`] collector (a thread-local counter), load the shard's
///   table pointer, scan `meta` bytes and compare the key of a matching node. No lock, no
///   shared write, no retry loop.
/// - **Writes** take only their shard's mutex, publish a new node (or a tombstone) with a
///   release store, and retire the replaced node to the collector, which frees it once no
///   reader that could have seen it is still inside the map.
/// - **Growth** happens per shard under its lock: a new table with the same node pointers is
///   published and the old array retired; readers on the old table still find valid nodes.
///   Tombstones are dropped at the same time, so delete-heavy churn does not degrade probes.
/// - **`len`** is one counter per shard, maintained under the shard lock (on a cache line the
///   writer already owns), summed on demand: exact when no write is in flight.
/// - **`range`** copies one shard's node pointers under its lock (so no key is seen twice even
///   if it is deleted and re-inserted meanwhile), releases the lock and then calls `f`, so `f`
///   may call the map.
///
/// Why not Go's original read/dirty design (`read` map + `dirty` map + miss counter +
/// `expunged`)? It makes the first store of every new key take one global mutex, and copies
/// the whole map into `dirty` after every promotion; Go replaced it in 1.24 because it loses
/// 67–78 % on the adversarial workloads. The design above keeps its one strength — a hit load
/// touches no shared cache line for writing — and has neither weakness.
///
/// Measured trade-offs (`cargo run --release -p gosync-bench -- map --go`, 2-core AMD EPYC,
/// medians of 7 interleaved rounds; the README has the full tables). Ratios are the best
/// peer's time divided by `SyncMap`'s, so above 1 `SyncMap` is faster:
///
/// | workload (1 / 2 / 4 / 8 threads) | best of dashmap, papaya, `RwLock<HashMap>` | Go 1.19 `sync.Map` |
/// |---|---|---|
/// | `LoadMostlyHits` | 0.45 / 1.13 / 1.14 / 1.15 | 2.6 / 4.1 / 4.6 / 5.7 |
/// | `LoadMostlyMisses` | 0.80 / 1.09 / 1.13 / 1.12 | 3.2 / 3.3 / 4.1 / 5.9 |
/// | `LoadOrStoreCollision` | 0.51 / 4.12 / 2.83 / 2.25 | 1.2 / 1.9 / 2.4 / 2.3 |
/// | `SwapMostlyHits` | 0.15 / 0.40 / 0.35 / 0.45 | (no `Swap` in 1.19) |
/// | bustle Exchange (10 % reads) | 0.25 / 0.39 / 0.30 / 0.36 (scc) | – |
///
/// Reads cost about what papaya's do (the other lock-free map measured) and beat Go's
/// `sync.Map` 2.6–5.7×. Writes allocate a node and retire the old one, which a lock-and-overwrite
/// map such as dashmap (or [`ShardedMap`](super::ShardedMap)) avoids, so for write-heavy
/// workloads prefer those; papaya pays the same cost and more (up to 4.2× `SyncMap`'s on the
/// write mixes). To keep that cost down, writers allocate before taking the shard lock and
/// retire after releasing it, and retired nodes are handed to the collector in batches of
/// about 64 KiB per thread (each batch costs a `membarrier` system call, an interrupt to every
/// core running the process): with two writer threads this took an overwrite from 161 to
/// 53–98 ns (two runs). What the lock-free read buys is that readers never write shared
/// memory and never wait for a writer, not even while a shard grows — the property that keeps
/// read-mostly `sync.Map` workloads flat as cores are added (a 2-core machine cannot show
/// that part).
/// A shard that grows flushes the batch, so the outgrown table is freed at once.
/// Memory: 51 bytes per `u64 → u64` entry at a million entries (papaya 70, dashmap 36),
/// because each entry is its own allocation, plus up to one reclamation batch per writing
/// thread.
///
/// # State layout
///
/// - `tables[s]`: atomic pointer to shard `s`'s table (null until the first insert, and
///   after `clear`). Only the shard's lock holder swaps it.
/// - `shards[s]`: the lock (guarding `Counts::used`) and the live count `len`, cache-padded.
/// - `collector`: frees retired nodes and tables once no reader can hold them.
#[doc(alias = "Map")]
#[doc(alias = "sync.Map")]
pub struct SyncMap<K, V, S = DefaultHashBuilder> {
    /// Read-mostly: written only when a shard's table is replaced (growth, `clear`).
    tables: Box<[AtomicPtr<Table<K, V>>]>,
    shards: Box<[CachePadded<ShardState>]>,
    shard_mask: usize,
    hasher: S,
    /// Declared last: dropped after `Drop::drop` has freed the live tables, it frees what was
    /// retired.
    collector: Collector,
}

// SAFETY: the map owns its keys and values (in boxed nodes). Sending the map sends them, so
// K and V must be Send. Sharing it lets other threads read `&K`/`&V` (Sync) and drop nodes
// that another thread created (Send).
unsafe impl<K: Send, V: Send, S: Send> Send for SyncMap<K, V, S> {}
// SAFETY: see above.
unsafe impl<K: Send + Sync, V: Send + Sync, S: Sync> Sync for SyncMap<K, V, S> {}

impl<K, V> SyncMap<K, V, DefaultHashBuilder> {
    /// An empty map with the default hasher (foldhash, seeded per map, like Go's runtime map
    /// hash; see [`DefaultHashBuilder`]).
    pub fn new() -> Self {
        Self::with_hasher(DefaultHashBuilder::default())
    }

    /// An empty map with room for `capacity` entries before any shard grows (roughly: keys
    /// spread unevenly over shards).
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_capacity_and_hasher(capacity, DefaultHashBuilder::default())
    }

    /// An empty map with `shards` shards (rounded up to a power of two, at least 1).
    ///
    /// More shards let more writers run in parallel; reads do not depend on it.
    pub fn with_shards(shards: usize) -> Self {
        Self::with_shards_and_hasher(shards, DefaultHashBuilder::default())
    }
}

impl<K, V> Default for SyncMap<K, V, DefaultHashBuilder> {
    fn default() -> Self {
        Self::new()
    }
}

/// 4 × CPUs, a power of two between 16 and 256 (the CPU count is read once per process).
fn default_shards() -> usize {
    (crate::primitive::available_cpus() * 4)
        .next_power_of_two()
        .clamp(16, 256)
}

/// How many retired nodes a thread collects before handing them to the collector as one
/// batch. Each batch costs a process-wide barrier (a `membarrier` system call, which
/// interrupts every core running the process), so small batches make concurrent writes
/// slow: with two writer threads on 2 cores, overwrites cost 199 ns at 128 per batch, 59 ns at
/// 1024 and 46 ns at 4096 (one run each). The batch is sized to hold about 64 KiB of nodes
/// per writing thread, between 128 and 2048 nodes.
fn retire_batch<T>() -> usize {
    (64 * 1024 / core::mem::size_of::<T>().max(1)).clamp(128, 2048)
}

/// Smallest table a shard allocates (tiny under loom, so that models reach growth quickly).
#[cfg(not(loom))]
const MIN_CAPACITY: usize = 16;
#[cfg(loom)]
const MIN_CAPACITY: usize = 4;

impl<K, V, S> SyncMap<K, V, S> {
    /// An empty map that hashes keys with `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        Self::with_shards_and_hasher(default_shards(), hasher)
    }

    /// An empty map with room for about `capacity` entries, hashing with `hasher`.
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        let m = Self::with_hasher(hasher);
        if capacity > 0 {
            let per_shard = capacity / m.shards.len() + 1;
            // Grown at 3/4 occupancy: leave room for the shard's share plus some imbalance.
            let slots = (per_shard * 3 / 2 + 1)
                .next_power_of_two()
                .max(MIN_CAPACITY);
            for t in m.tables.iter() {
                t.store(Box::into_raw(Table::new(slots)), Ordering::Release);
            }
        }
        m
    }

    /// An empty map with `shards` shards (rounded up to a power of two) and `hasher`.
    pub fn with_shards_and_hasher(shards: usize, hasher: S) -> Self {
        let n = shards.max(1).next_power_of_two();
        SyncMap {
            tables: (0..n)
                .map(|_| AtomicPtr::new(core::ptr::null_mut()))
                .collect(),
            shards: (0..n)
                .map(|_| {
                    CachePadded::new(ShardState {
                        lock: ShardLock::new(Counts::default()),
                        len: AtomicUsize::new(0),
                    })
                })
                .collect(),
            shard_mask: n - 1,
            hasher,
            collector: Collector::new(retire_batch::<Node<K, V>>()),
        }
    }

    /// The number of entries. Exact when no write is in flight; during concurrent writes it is
    /// some value the map had (per shard) during the call. Costs one relaxed load per shard.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.len.load(Ordering::Relaxed))
            .sum()
    }

    /// Whether [`len`](Self::len) is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of shards (a power of two).
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Removes every entry. Other threads' operations that overlap the call may see the map
    /// partly cleared (shard by shard), as with Go's `Clear` racing with stores.
    #[doc(alias = "Clear")]
    pub fn clear(&self) {
        let guard = self.collector.enter();
        for (s, shard) in self.shards.iter().enumerate() {
            let mut counts = lock(shard);
            let old = self.tables[s].swap(core::ptr::null_mut(), Ordering::AcqRel);
            shard.len.store(0, Ordering::Relaxed);
            counts.used = 0;
            drop(counts);
            if !old.is_null() {
                // SAFETY: `old` was this shard's table; it is unlinked now and only we retire
                // it (and its nodes, which only it referenced).
                unsafe { self.retire_table_and_nodes(&guard, old) };
            }
        }
    }

    /// Retires a table that is no longer reachable, together with every node it points to.
    ///
    /// # Safety
    /// `table` is unlinked, and its nodes are referenced by no other table.
    unsafe fn retire_table_and_nodes(&self, guard: &Guard<'_>, table: *mut Table<K, V>) {
        // SAFETY: the table stays allocated until we retire it below.
        let t = unsafe { &*table };
        for slot in t.slots.iter() {
            let node = slot.load(Ordering::Relaxed);
            if !node.is_null() {
                // SAFETY: the node was linked only from this unlinked table.
                unsafe { guard.defer_retire_box(node) };
            }
        }
        // SAFETY: unlinked, retired once; we do not touch it after this.
        unsafe { guard.defer_retire_box(table) };
    }

    /// Calls `f` on every entry until it returns `false`.
    ///
    /// Go's guarantees: each key is visited at most once; the values are those of some moment
    /// during the call (no snapshot); `f` may call any method on this map (no lock is held
    /// while `f` runs). Keys stored after `range` started may or may not be visited.
    #[doc(alias = "Range")]
    pub fn range<F>(&self, mut f: F)
    where
        F: FnMut(&K, &V) -> bool,
    {
        let guard = self.collector.enter();
        let mut batch: Vec<*const Node<K, V>> = Vec::new();
        for (s, shard) in self.shards.iter().enumerate() {
            batch.clear();
            {
                let _counts = lock(shard);
                let t = guard.protect(&self.tables[s]);
                if !t.is_null() {
                    // SAFETY: we hold the shard lock, so the table is current and not retired.
                    let t = unsafe { &*t };
                    for slot in t.slots.iter() {
                        let node = guard.protect(slot);
                        if !node.is_null() {
                            batch.push(node);
                        }
                    }
                }
            }
            for &node in &batch {
                // SAFETY: loaded through `guard` while linked (under the shard lock), so it
                // stays allocated until `guard` drops, even if `f` deletes it: every retire
                // goes through a guard's deferred path, which never frees what a live guard
                // of any thread (this one included) may hold.
                let node = unsafe { &*node };
                if !f(&node.key, &node.value) {
                    return;
                }
            }
        }
        drop(guard);
    }
}

/// Locks a shard, ignoring poison: every critical section leaves the table consistent at each
/// step, so a panic in a user `Hash`/`Eq`/`Clone` cannot break an invariant.
#[inline]
fn lock(shard: &ShardState) -> ShardGuard<'_, Counts> {
    #[cfg(not(loom))]
    {
        shard
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    #[cfg(loom)]
    {
        shard.lock.lock().unwrap()
    }
}

impl<K, V, S> SyncMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    #[inline]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Lock-free lookup; `f` sees the value while it is protected.
    #[inline]
    fn read<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.read_hashed(self.hash(key), key, f)
    }

    #[inline]
    fn read_hashed<Q, R>(&self, hash: u64, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let guard = self.collector.enter();
        let t = guard.protect(&self.tables[shard_of(hash, self.shard_mask)]);
        if t.is_null() {
            return None;
        }
        // SAFETY: loaded under `guard`; tables are retired only after being unlinked.
        let table = unsafe { &*t };
        table.find(hash, key, &guard).map(|node| f(&node.value))
    }

    /// Returns the value stored for `key`, if any.
    #[doc(alias = "Load")]
    #[inline]
    pub fn load<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.read(key, V::clone)
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.read(key, |_| ()).is_some()
    }

    /// The current table of shard `s`, grown if one more insert would pass 3/4 occupancy.
    /// Caller holds the shard lock (`counts`).
    ///
    /// Also returns whether an old table was retired; the caller then calls
    /// [`Collector::flush`] once it has released the lock, so that the outgrown array is
    /// freed promptly instead of waiting in this thread's batch behind up to
    /// [`retire_batch`] nodes.
    fn reserve<'a>(
        &'a self,
        guard: &Guard<'_>,
        s: usize,
        counts: &mut Counts,
    ) -> (&'a Table<K, V>, bool) {
        let mut t = self.tables[s].load(Ordering::Relaxed);
        let mut retired = false;
        // SAFETY (for every deref of `t` below): we hold shard `s`'s lock, the only one that
        // replaces or retires this table, and we return it only for the lock's duration.
        // SAFETY: non-null `t` is the current table (see above).
        let needs_growth = t.is_null() || (counts.used + 1) * 4 > unsafe { (*t).capacity() } * 3;
        if needs_growth {
            let live = self.shards[s].len.load(Ordering::Relaxed);
            let capacity = ((live + 1) * 2).next_power_of_two().max(MIN_CAPACITY);
            let fresh = Table::new(capacity);
            if !t.is_null() {
                // SAFETY: see above.
                let old = unsafe { &*t };
                for slot in old.slots.iter() {
                    let node = slot.load(Ordering::Relaxed);
                    if node.is_null() {
                        continue;
                    }
                    // SAFETY: live node of the current table; we hold the lock.
                    let hash = self.hash(unsafe { &(*node).key });
                    let mut i = hash as usize & fresh.mask;
                    while fresh.meta[i].load(Ordering::Relaxed) != EMPTY {
                        i = (i + 1) & fresh.mask;
                    }
                    // Relaxed: the whole table is published by the Release store below.
                    fresh.slots[i].store(node, Ordering::Relaxed);
                    fresh.meta[i].store(tag(hash), Ordering::Relaxed);
                }
            }
            counts.used = live;
            let fresh = Box::into_raw(fresh);
            // Release: readers that load the new table see its filled slots.
            self.tables[s].store(fresh, Ordering::Release);
            if !t.is_null() {
                // SAFETY: unlinked just now; its nodes live on in `fresh`, so only the array
                // is retired.
                unsafe { guard.defer_retire_box(t) };
                retired = true;
            }
            t = fresh;
        }
        // SAFETY: see above.
        (unsafe { &*t }, retired)
    }

    /// Publishes `node` in a vacant slot. Caller holds the lock.
    fn insert_at(
        &self,
        s: usize,
        counts: &mut Counts,
        table: &Table<K, V>,
        slot: Slot,
        hash: u64,
        node: Box<Node<K, V>>,
    ) {
        let Slot::Vacant {
            index,
            reuses_tombstone,
        } = slot
        else {
            unreachable!("insert_at needs a vacant slot")
        };
        // Pointer first, tag second (both Release): a reader that sees the tag sees the node.
        table.slots[index].store(Box::into_raw(node), Ordering::Release);
        table.meta[index].store(tag(hash), Ordering::Release);
        if !reuses_tombstone {
            counts.used += 1;
        }
        let len = &self.shards[s].len;
        len.store(len.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Puts `node` into live slot `index` and returns the node it replaced, now unlinked.
    /// Caller holds the lock.
    fn replace_at(
        &self,
        table: &Table<K, V>,
        index: usize,
        node: Box<Node<K, V>>,
    ) -> Unlinked<K, V> {
        // A load and a store rather than a swap: we hold the lock, so no other writer can
        // change the slot in between, and readers only need the Release store.
        let prev = table.slots[index].load(Ordering::Relaxed);
        table.slots[index].store(Box::into_raw(node), Ordering::Release);
        Unlinked(prev)
    }

    /// Deletes live slot `index` and returns its node, now unlinked. Caller holds the lock.
    fn remove_at(&self, s: usize, table: &Table<K, V>, index: usize) -> Unlinked<K, V> {
        // Load + store instead of a swap: the lock excludes other writers (see `replace_at`).
        let prev = table.slots[index].load(Ordering::Relaxed);
        table.slots[index].store(core::ptr::null_mut(), Ordering::Release);
        table.meta[index].store(TOMBSTONE, Ordering::Release);
        let len = &self.shards[s].len;
        len.store(len.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
        Unlinked(prev)
    }

    /// Hands an unlinked node to the collector, then lets `f` look at its value. Called
    /// after the shard lock is released: retiring may run a process-wide barrier or free a
    /// batch of nodes, which must not stall the shard's other writers.
    ///
    /// Retiring first means a panic in `f` (a user `Clone`) cannot leak the node; reading it
    /// afterwards is sound because the deferred retire keeps it until `guard` drops.
    fn retire<R>(&self, guard: &Guard<'_>, node: Unlinked<K, V>, f: impl FnOnce(&V) -> R) -> R {
        let ptr = node.0;
        // SAFETY: unlinked, retired exactly once (`Unlinked` is consumed).
        unsafe { guard.defer_retire_box(ptr) };
        // SAFETY: retired through `guard`, so it stays allocated until `guard` drops.
        f(unsafe { &(*ptr).value })
    }

    /// Store or overwrite; `old` sees the replaced value.
    fn put<R>(&self, key: K, value: V, old: impl FnOnce(&V) -> R) -> Option<R> {
        let hash = self.hash(&key);
        let s = shard_of(hash, self.shard_mask);
        // Allocate before locking: the critical section is only the probe and the stores.
        let node = Box::new(Node { key, value });
        let guard = self.collector.enter();
        let (replaced, grew) = {
            let mut counts = lock(&self.shards[s]);
            let (table, grew) = self.reserve(&guard, s, &mut counts);
            let replaced = match table.locate(hash, &node.key) {
                Slot::Found(i) => Some(self.replace_at(table, i, node)),
                vacant => {
                    self.insert_at(s, &mut counts, table, vacant, hash, node);
                    None
                }
            };
            (replaced, grew)
        };
        if grew {
            self.collector.flush();
        }
        replaced.map(|prev| self.retire(&guard, prev, old))
    }

    /// Sets the value for `key`.
    #[doc(alias = "Store")]
    pub fn store(&self, key: K, value: V) {
        self.put(key, value, |_| ());
    }

    /// Stores `value` and returns the previous value, if any.
    #[doc(alias = "Swap")]
    pub fn swap(&self, key: K, value: V) -> Option<V>
    where
        V: Clone,
    {
        self.put(key, value, V::clone)
    }

    /// Returns the existing value for `key` (`true`: loaded), or stores `value` and returns it
    /// (`false`: stored).
    #[doc(alias = "LoadOrStore")]
    pub fn load_or_store(&self, key: K, value: V) -> (V, bool)
    where
        V: Clone,
    {
        self.load_or_store_with(key, || value)
    }

    /// Like [`load_or_store`](Self::load_or_store), but builds the value only if the key is
    /// absent. `make` runs at most once, outside any lock (so it may use the map); if another
    /// thread stores the key meanwhile, that value is returned and `make`'s is dropped.
    pub fn load_or_store_with<F>(&self, key: K, make: F) -> (V, bool)
    where
        V: Clone,
        F: FnOnce() -> V,
    {
        let hash = self.hash(&key);
        if let Some(v) = self.read_hashed(hash, &key, V::clone) {
            return (v, true);
        }
        let value = make();
        let s = shard_of(hash, self.shard_mask);
        let node = Box::new(Node { key, value });
        let guard = self.collector.enter();
        let mut counts = lock(&self.shards[s]);
        let (table, grew) = self.reserve(&guard, s, &mut counts);
        let out = match table.locate(hash, &node.key) {
            Slot::Found(i) => {
                // SAFETY: live slot of the current table; we hold the lock.
                let v = unsafe { (*table.slots[i].load(Ordering::Relaxed)).value.clone() };
                drop(counts);
                drop(node); // never published
                (v, true)
            }
            vacant => {
                let out = node.value.clone();
                self.insert_at(s, &mut counts, table, vacant, hash, node);
                drop(counts);
                (out, false)
            }
        };
        if grew {
            self.collector.flush();
        }
        out
    }

    /// Locks `key`'s shard if the key is present and its value passes `precheck` (both seen
    /// lock-free), and runs `f` on its slot; `f` may unlink the node, which is retired (after
    /// `then` looked at its value) once the lock is released. An absent key or a rejected value
    /// costs no lock (a lock-free read is a valid linearization point for "no change").
    fn with_existing<Q, R>(
        &self,
        key: &Q,
        precheck: impl FnOnce(&V) -> bool,
        f: impl FnOnce(usize, &Table<K, V>, usize) -> Option<Unlinked<K, V>>,
        then: impl FnOnce(&V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let s = shard_of(hash, self.shard_mask);
        // Lock-free first: an absent key (or a value `precheck` rejects) costs no lock.
        if !self.read_hashed(hash, key, precheck)? {
            return None;
        }
        let guard = self.collector.enter();
        let unlinked = {
            let _counts = lock(&self.shards[s]);
            let t = self.tables[s].load(Ordering::Relaxed);
            if t.is_null() {
                return None;
            }
            // SAFETY: we hold the shard lock, so the table is current.
            let table = unsafe { &*t };
            match table.locate(hash, key) {
                Slot::Found(i) => f(s, table, i)?,
                Slot::Vacant { .. } => return None,
            }
        };
        Some(self.retire(&guard, unlinked, then))
    }

    /// Deletes `key` and returns its value, if it was present.
    #[doc(alias = "LoadAndDelete")]
    pub fn load_and_delete<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.with_existing(
            key,
            |_| true,
            |s, t, i| Some(self.remove_at(s, t, i)),
            V::clone,
        )
    }

    /// Deletes `key`, if present.
    #[doc(alias = "Delete")]
    pub fn delete<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.with_existing(
            key,
            |_| true,
            |s, t, i| Some(self.remove_at(s, t, i)),
            |_| (),
        );
    }

    /// Replaces the value for `key` with `new` if it is present and equal to `old`.
    /// Never inserts.
    #[doc(alias = "CompareAndSwap")]
    pub fn compare_and_swap<Q>(&self, key: &Q, old: &V, new: V) -> bool
    where
        K: Borrow<Q> + Clone,
        Q: Hash + Eq + ?Sized,
        V: PartialEq,
    {
        self.with_existing(
            key,
            |v| v == old,
            |_, t, i| {
                // SAFETY: live slot of the current table; we hold the lock.
                let node = unsafe { &*t.slots[i].load(Ordering::Relaxed) };
                if node.value != *old {
                    return None;
                }
                let fresh = Box::new(Node {
                    key: node.key.clone(),
                    value: new,
                });
                Some(self.replace_at(t, i, fresh))
            },
            |_| (),
        )
        .is_some()
    }

    /// Deletes `key` if its value equals `old`.
    #[doc(alias = "CompareAndDelete")]
    pub fn compare_and_delete<Q>(&self, key: &Q, old: &V) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: PartialEq,
    {
        self.with_existing(
            key,
            |v| v == old,
            |s, t, i| {
                // SAFETY: live slot of the current table; we hold the lock.
                let node = unsafe { &*t.slots[i].load(Ordering::Relaxed) };
                if node.value != *old {
                    return None;
                }
                Some(self.remove_at(s, t, i))
            },
            |_| (),
        )
        .is_some()
    }
}

/// A node just unlinked from its table by the lock holder: no new reader can reach it, and
/// it must be passed to [`SyncMap::retire`] exactly once (after the lock is released).
#[must_use = "an unlinked node must be retired, or it leaks"]
struct Unlinked<K, V>(*mut Node<K, V>);

impl<K, V, S> Drop for SyncMap<K, V, S> {
    fn drop(&mut self) {
        for t in self.tables.iter() {
            let t = t.load(Ordering::Relaxed);
            if t.is_null() {
                continue;
            }
            // SAFETY: `&mut self`: no reader or writer is left; the live table owns its nodes
            // (retired ones are freed by the collector, dropped after this).
            let table = unsafe { Box::from_raw(t) };
            for slot in table.slots.iter() {
                let node = slot.load(Ordering::Relaxed);
                if !node.is_null() {
                    // SAFETY: linked nodes are owned by the map and freed exactly once here.
                    drop(unsafe { Box::from_raw(node) });
                }
            }
        }
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for SyncMap<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        self.range(|k, v| {
            m.entry(k, v);
            true
        });
        m.finish()
    }
}

impl<K, V, S> FromIterator<(K, V)> for SyncMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher + Default,
{
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let m = Self::with_hasher(S::default());
        for (k, v) in iter {
            m.store(k, v);
        }
        m
    }
}
