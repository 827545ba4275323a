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
/// Beyond Go's API: atomic read-modify-write with [`compute`](Self::compute),
/// [`update`](Self::update) and [`update_or_insert`](Self::update_or_insert) (closures run
/// outside any lock and may rerun under contention), [`retain`](Self::retain), references
/// without cloning through [`pin`](Self::pin) (`pin().get(k)`, `pin().iter()`),
/// [`reserve`](Self::reserve)/[`capacity`](Self::capacity), `Extend`, `FromIterator`,
/// `IntoIterator`, and serde (feature `serde`).
///
/// ```
/// use gosync::map::SyncMap;
///
/// let stock: SyncMap<&str, u32> = [("apple", 3), ("pear", 0)].into_iter().collect();
/// stock.update_or_insert("apple", |n| n + 2, 1); // 5
/// stock.update_or_insert("plum", |n| n + 2, 1); // new: 1
/// stock.retain(|_, n| *n > 0); // pear goes
/// let pinned = stock.pin();
/// let mut names: Vec<&str> = pinned.keys().copied().collect();
/// names.sort_unstable();
/// assert_eq!(names, ["apple", "plum"]);
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
/// the whole map into `dirty` after every promotion; Go replaced it in 1.24 because of its
/// adversarial workloads. The design above keeps its one strength — a hit load
/// touches no shared cache line for writing — and has neither weakness.
///
/// Trade-offs. Reads are lock-free and never write shared memory; they never wait for a
/// writer, not even while a shard grows, which is what keeps read-mostly `sync.Map` workloads
/// flat as cores are added. Writes allocate a node and retire the old one, which a
/// lock-and-overwrite map such as dashmap (or [`ShardedMap`](super::ShardedMap)) avoids: for
/// write-heavy workloads prefer those. To keep that cost down, writers allocate before taking
/// the shard lock and retire after releasing it, and retired nodes are handed to the collector
/// in batches of about 64 KiB per writing thread (each batch costs a `membarrier` system call,
/// an interrupt to every core running the process). A shard that grows flushes the batch, so
/// the outgrown table is freed at once. Memory: each entry is its own allocation (the node),
/// plus one pointer and one metadata byte per table slot, plus up to one reclamation batch
/// per writing thread. `cargo run --release -p gosync-bench -- map --go` measures all of this
/// against dashmap, papaya, scc, `RwLock<HashMap>` and Go's `sync.Map` (figures:
/// `docs/benchmarks.md`).
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
/// slow. The batch is sized to hold about 64 KiB of nodes per writing thread, between 128
/// and 2048 nodes.
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
        for s in 0..self.shards.len() {
            self.copy_shard(&guard, s, &mut batch);
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
    fn room_for_insert<'a>(
        &'a self,
        guard: &Guard<'_>,
        s: usize,
        counts: &mut Counts,
    ) -> (&'a Table<K, V>, bool) {
        self.make_room(guard, s, counts, 1)
    }

    /// The current table of shard `s`, rebuilt first unless `extra` more inserts fit without
    /// passing 3/4 occupancy. Caller holds the shard lock (`counts`). Also returns whether an
    /// old table was retired (see [`room_for_insert`](Self::room_for_insert)).
    fn make_room<'a>(
        &'a self,
        guard: &Guard<'_>,
        s: usize,
        counts: &mut Counts,
        extra: usize,
    ) -> (&'a Table<K, V>, bool) {
        let mut t = self.tables[s].load(Ordering::Relaxed);
        let mut retired = false;
        // SAFETY (for every deref of `t` below): we hold shard `s`'s lock, the only one that
        // replaces or retires this table, and we return it only for the lock's duration.
        // SAFETY: non-null `t` is the current table (see above).
        let needs_growth =
            t.is_null() || (counts.used + extra) * 4 > unsafe { (*t).capacity() } * 3;
        if needs_growth {
            let live = self.shards[s].len.load(Ordering::Relaxed);
            // Twice what is needed, so that a growing shard rebuilds O(log n) times.
            let capacity = ((live + extra) * 2).next_power_of_two().max(MIN_CAPACITY);
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
            let (table, grew) = self.room_for_insert(&guard, s, &mut counts);
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
        let (table, grew) = self.room_for_insert(&guard, s, &mut counts);
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

/// What a compute closure decided (see [`SyncMap::compute_raw`]).
enum Op<V> {
    /// Change nothing.
    Keep,
    /// Store this value.
    Put(V),
    /// Delete the entry.
    Delete,
}

/// # Atomic read-modify-write, retain, capacity
///
/// The closures of [`compute`](Self::compute), [`update`](Self::update) and
/// [`update_or_insert`](Self::update_or_insert) run **outside any lock**, so they may call the
/// map, and cannot deadlock. The price is that a closure may run more than once: it is given
/// the current value, and if another thread changes the entry before the result is published,
/// the result is discarded and the closure runs again on the new value (as papaya's `update`
/// and Java's `ConcurrentHashMap.compute` on contention). The operation as a whole is atomic:
/// no concurrent update is lost.
impl<K, V, S> SyncMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// Sets the entry of `key` to what `f` returns given its current value: `Some(v)` stores
    /// `v` (inserting if absent), `None` deletes it (or leaves it absent). Returns the value
    /// now stored.
    ///
    /// Atomic; `f` may run more than once (see above).
    ///
    /// ```
    /// use gosync::map::SyncMap;
    ///
    /// let hits = SyncMap::new();
    /// for _ in 0..3 {
    ///     hits.compute("/index", |n: Option<&u32>| Some(n.map_or(1, |n| n + 1)));
    /// }
    /// assert_eq!(hits.load("/index"), Some(3));
    /// // Delete when it reaches zero.
    /// hits.store("/tmp", 1);
    /// assert_eq!(hits.compute("/tmp", |n| n.map(|n| n - 1).filter(|&n| n > 0)), None);
    /// assert!(!hits.contains_key("/tmp"));
    /// ```
    #[doc(alias = "Compute")]
    pub fn compute<F>(&self, key: K, mut f: F) -> Option<V>
    where
        F: FnMut(Option<&V>) -> Option<V>,
        V: Clone,
    {
        self.compute_raw(
            None::<&K>,
            Some(key),
            |_| unreachable!("compute always owns its key"),
            |cur| match f(cur) {
                Some(v) => {
                    let out = v.clone();
                    (Op::Put(v), Some(out))
                }
                None if cur.is_some() => (Op::Delete, None),
                None => (Op::Keep, None),
            },
            drop,
        )
    }

    /// Replaces the value of `key` with `f(current)` if the key is present; never inserts.
    /// Returns the new value, or `None` if the key was absent.
    ///
    /// Atomic; `f` may run more than once (see above).
    ///
    /// ```
    /// use gosync::map::SyncMap;
    ///
    /// let m = SyncMap::new();
    /// m.store("a", 1);
    /// assert_eq!(m.update("a", |v| v * 10), Some(10));
    /// assert_eq!(m.update("b", |v| v * 10), None);
    /// ```
    pub fn update<Q, F>(&self, key: &Q, mut f: F) -> Option<V>
    where
        K: Borrow<Q> + Clone,
        Q: Hash + Eq + ?Sized,
        F: FnMut(&V) -> V,
        V: Clone,
    {
        self.compute_raw(
            Some(key),
            None,
            K::clone,
            |cur| match cur {
                None => (Op::Keep, None),
                Some(v) => {
                    let new = f(v);
                    let out = new.clone();
                    (Op::Put(new), Some(out))
                }
            },
            drop,
        )
    }

    /// Replaces the value of `key` with `f(current)`, or inserts `value` if the key is absent.
    /// Returns the value now stored.
    ///
    /// Atomic; `f` may run more than once (see above).
    ///
    /// ```
    /// use gosync::map::SyncMap;
    ///
    /// let words = SyncMap::new();
    /// for w in "a b a c a".split(' ') {
    ///     words.update_or_insert(w, |n| n + 1, 1);
    /// }
    /// assert_eq!(words.load("a"), Some(3));
    /// assert_eq!(words.load("c"), Some(1));
    /// ```
    pub fn update_or_insert<F>(&self, key: K, f: F, value: V) -> V
    where
        F: FnMut(&V) -> V,
        V: Clone,
    {
        self.update_or_insert_with(key, f, || value)
    }

    /// Like [`update_or_insert`](Self::update_or_insert), but builds the inserted value only
    /// if the key is absent (`make` runs at most once, outside any lock).
    ///
    /// ```
    /// use gosync::map::SyncMap;
    ///
    /// let lists: SyncMap<&str, Vec<u32>> = SyncMap::new();
    /// lists.update_or_insert_with("a", |l| [l.as_slice(), &[2]].concat(), || vec![1]);
    /// lists.update_or_insert_with("a", |l| [l.as_slice(), &[2]].concat(), || vec![1]);
    /// assert_eq!(lists.load("a"), Some(vec![1, 2]));
    /// ```
    pub fn update_or_insert_with<F, M>(&self, key: K, mut f: F, make: M) -> V
    where
        F: FnMut(&V) -> V,
        M: FnOnce() -> V,
        V: Clone,
    {
        // The value to insert survives a failed attempt: it comes back through `unused`.
        let stash: core::cell::Cell<Option<V>> = core::cell::Cell::new(None);
        let make = core::cell::Cell::new(Some(make));
        let inserting = core::cell::Cell::new(false);
        self.compute_raw(
            None::<&K>,
            Some(key),
            |_| unreachable!("update_or_insert always owns its key"),
            |cur| {
                let new = match cur {
                    Some(v) => {
                        inserting.set(false);
                        f(v)
                    }
                    None => {
                        inserting.set(true);
                        match stash.take() {
                            Some(v) => v,
                            None => (make.take().expect("`make` is called at most once"))(),
                        }
                    }
                };
                let out = new.clone();
                (Op::Put(new), out)
            },
            |v| {
                if inserting.get() {
                    stash.set(Some(v));
                }
            },
        )
    }

    /// The loop behind `compute` and friends: read the entry lock-free, let `f` decide,
    /// publish under the shard lock only if the entry is still the node `f` saw (pointer
    /// equality; no ABA, since that node cannot be freed while `guard` lives), else retry.
    ///
    /// The key is `borrowed` (then `clone_key` makes the key of a replacing node from the old
    /// one; such callers must never ask to insert) or `owned`. `unused` receives a value `f`
    /// produced that could not be published (before `f` runs again).
    fn compute_raw<Q, R>(
        &self,
        borrowed: Option<&Q>,
        mut owned: Option<K>,
        clone_key: impl Fn(&K) -> K,
        mut f: impl FnMut(Option<&V>) -> (Op<V>, R),
        mut unused: impl FnMut(V),
    ) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let key_ref = |owned: &Option<K>| -> u64 {
            match borrowed {
                Some(q) => self.hash(q),
                None => self.hash::<Q>(owned.as_ref().expect("a key").borrow()),
            }
        };
        let hash = key_ref(&owned);
        let s = shard_of(hash, self.shard_mask);
        let guard = self.collector.enter();
        loop {
            let seen: *const Node<K, V> = {
                let q: &Q = match borrowed {
                    Some(q) => q,
                    None => owned.as_ref().expect("a key").borrow(),
                };
                self.find_in(&guard, hash, q)
                    .map_or(core::ptr::null(), |n| n as *const _)
            };
            // SAFETY: found under `guard`, so allocated until it drops.
            let cur = unsafe { seen.as_ref() };
            let (op, r) = f(cur.map(|n| &n.value));
            let node = match op {
                Op::Keep => return r,
                Op::Delete if seen.is_null() => return r,
                Op::Delete => None,
                Op::Put(value) => {
                    let key = match owned.take() {
                        Some(k) => k,
                        None => clone_key(&cur.expect("a borrowed key only replaces").key),
                    };
                    Some(Box::new(Node { key, value }))
                }
            };
            let mut counts = lock(&self.shards[s]);
            let (table, grew) = if seen.is_null() {
                let (t, grew) = self.room_for_insert(&guard, s, &mut counts);
                (Some(t), grew)
            } else {
                // SAFETY: the current table (we hold the lock), or null after a `clear`.
                (
                    unsafe { self.tables[s].load(Ordering::Relaxed).as_ref() },
                    false,
                )
            };
            let located = table.map(|t| {
                let q: &Q = match (&node, borrowed) {
                    (Some(n), _) => n.key.borrow(),
                    (None, Some(q)) => q,
                    (None, None) => owned.as_ref().expect("a key").borrow(),
                };
                let slot = t.locate(hash, q);
                let current = match slot {
                    Slot::Found(i) => t.slots[i].load(Ordering::Relaxed).cast_const(),
                    Slot::Vacant { .. } => core::ptr::null(),
                };
                (t, slot, current)
            });
            match located {
                Some((t, slot, current)) if current == seen => {
                    let unlinked = match (slot, node) {
                        (Slot::Found(i), Some(n)) => Some(self.replace_at(t, i, n)),
                        (Slot::Found(i), None) => Some(self.remove_at(s, t, i)),
                        (vacant, Some(n)) => {
                            self.insert_at(s, &mut counts, t, vacant, hash, n);
                            None
                        }
                        (Slot::Vacant { .. }, None) => unreachable!("delete of an absent key"),
                    };
                    drop(counts);
                    if grew {
                        self.collector.flush();
                    }
                    if let Some(u) = unlinked {
                        // SAFETY: unlinked under the lock just now; retired once.
                        unsafe { guard.defer_retire_box(u.0) };
                    }
                    return r;
                }
                _ => {
                    // Someone changed the entry (or cleared the shard) since we read it.
                    drop(counts);
                    if grew {
                        self.collector.flush();
                    }
                    if let Some(n) = node {
                        let Node { key, value } = *n;
                        if borrowed.is_none() {
                            owned = Some(key);
                        }
                        unused(value);
                    }
                }
            }
        }
    }

    /// Lock-free lookup under the caller's guard.
    #[inline]
    fn find_in<'g, Q>(&'g self, guard: &'g Guard<'_>, hash: u64, key: &Q) -> Option<&'g Node<K, V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let t = guard.protect(&self.tables[shard_of(hash, self.shard_mask)]);
        // SAFETY: loaded under `guard`; tables are retired only after being unlinked.
        let table = unsafe { t.as_ref() }?;
        table.find(hash, key, guard)
    }

    /// Keeps only the entries for which `f` returns `true`.
    ///
    /// `f` runs outside any lock (it may call the map) and sees each key at most once, like
    /// [`range`](Self::range). An entry is deleted only if it still holds the value `f` judged:
    /// one that another thread replaced meanwhile is kept.
    ///
    /// ```
    /// use gosync::map::SyncMap;
    ///
    /// let m: SyncMap<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// m.retain(|_, v| v % 2 == 0);
    /// assert_eq!(m.len(), 5);
    /// ```
    #[doc(alias = "DeleteMatching")]
    pub fn retain<F>(&self, mut f: F)
    where
        F: FnMut(&K, &V) -> bool,
    {
        let guard = self.collector.enter();
        let mut batch: Vec<*const Node<K, V>> = Vec::new();
        let mut doomed: Vec<*const Node<K, V>> = Vec::new();
        let mut unlinked = Vec::new();
        for s in 0..self.shards.len() {
            self.copy_shard(&guard, s, &mut batch);
            doomed.clear();
            for &node in &batch {
                // SAFETY: loaded under `guard` (see `copy_shard`).
                let n = unsafe { &*node };
                if !f(&n.key, &n.value) {
                    doomed.push(node);
                }
            }
            if doomed.is_empty() {
                continue;
            }
            {
                let _counts = lock(&self.shards[s]);
                // SAFETY: the current table (we hold the lock), or null after a `clear`.
                if let Some(t) = unsafe { self.tables[s].load(Ordering::Relaxed).as_ref() } {
                    for &node in &doomed {
                        // SAFETY: protected by `guard`.
                        let key = unsafe { &(*node).key };
                        if let Slot::Found(i) = t.locate(self.hash(key), key) {
                            if t.slots[i].load(Ordering::Relaxed).cast_const() == node {
                                unlinked.push(self.remove_at(s, t, i));
                            }
                        }
                    }
                }
            }
            for u in unlinked.drain(..) {
                // SAFETY: unlinked under the lock above; retired once.
                unsafe { guard.defer_retire_box(u.0) };
            }
        }
    }

    /// Makes room for at least `additional` more entries before any shard grows, if keys
    /// spread evenly over the shards (they spread by hash, so a shard that receives more than
    /// its share may still grow).
    ///
    /// ```
    /// use gosync::map::SyncMap;
    ///
    /// let m: SyncMap<u32, u32> = SyncMap::new();
    /// m.reserve(10_000);
    /// assert!(m.capacity() >= 10_000);
    /// ```
    pub fn reserve(&self, additional: usize) {
        let n = self.shards.len();
        let per_shard = additional.div_ceil(n);
        if per_shard == 0 {
            return;
        }
        let guard = self.collector.enter();
        for s in 0..n {
            let grew = {
                let mut counts = lock(&self.shards[s]);
                self.make_room(&guard, s, &mut counts, per_shard).1
            };
            if grew {
                self.collector.flush();
            }
        }
    }
}

impl<K, V, S> SyncMap<K, V, S> {
    /// How many entries the map holds before a shard has to grow, if keys spread evenly over
    /// the shards: for each shard, the room left below 3/4 occupancy plus its entries.
    /// Locks each shard in turn.
    pub fn capacity(&self) -> usize {
        let guard = self.collector.enter();
        let mut total = 0;
        for (s, shard) in self.shards.iter().enumerate() {
            let counts = lock(shard);
            let t = guard.protect(&self.tables[s]);
            // SAFETY: loaded under `guard` (and we hold the lock: it is current).
            if let Some(t) = unsafe { t.as_ref() } {
                let live = shard.len.load(Ordering::Relaxed);
                total += (t.capacity() * 3 / 4).saturating_sub(counts.used - live);
            }
        }
        total
    }

    /// Copies shard `s`'s node pointers (loaded through `guard`, under the shard lock, so each
    /// key once) into `batch`.
    fn copy_shard(&self, guard: &Guard<'_>, s: usize, batch: &mut Vec<*const Node<K, V>>) {
        batch.clear();
        let _counts = lock(&self.shards[s]);
        let t = guard.protect(&self.tables[s]);
        // SAFETY: we hold the shard lock, so the table is current and not retired.
        if let Some(t) = unsafe { t.as_ref() } {
            for slot in t.slots.iter() {
                let node = guard.protect(slot);
                if !node.is_null() {
                    batch.push(node);
                }
            }
        }
    }

    /// Enters the map's reclamation scope and returns a handle that lends references into the
    /// map, without cloning: [`Pinned::get`] and [`Pinned::iter`] (the guard-scoped iterator).
    ///
    /// While any `Pinned` of a thread is alive, memory that other threads retire (replaced or
    /// deleted entries, outgrown tables) is not freed, so do not keep one for long. It is not
    /// `Send`: it belongs to the thread that made it. Unlike dashmap's guards it holds no
    /// lock, so nothing can deadlock on it: writes (by this thread or others) proceed while it
    /// is alive, and the references it lent stay valid (they show the value at the time they
    /// were read).
    ///
    /// ```
    /// use gosync::map::SyncMap;
    ///
    /// let m = SyncMap::new();
    /// m.store("a", vec![1, 2, 3]);
    /// let p = m.pin();
    /// let v: &Vec<i32> = p.get("a").unwrap(); // no clone
    /// m.delete("a"); // fine: `v` stays valid while `p` lives
    /// assert_eq!(v.len(), 3);
    /// ```
    pub fn pin(&self) -> Pinned<'_, K, V, S> {
        Pinned {
            map: self,
            guard: self.collector.enter(),
        }
    }
}

/// A [`SyncMap`] pinned by the current thread: lends `&K`/`&V` that stay valid while it lives.
/// Made by [`SyncMap::pin`].
///
/// It marks the thread that made it as a reader, so it cannot move to another thread:
///
/// ```compile_fail,E0277
/// let m = gosync::map::SyncMap::<u32, u32>::new();
/// let p = m.pin();
/// std::thread::scope(|s| {
///     s.spawn(move || p.len()); // error: `Pinned` is not `Send`
/// });
/// ```
pub struct Pinned<'m, K, V, S = DefaultHashBuilder> {
    map: &'m SyncMap<K, V, S>,
    guard: Guard<'m>,
}

impl<'m, K, V, S> Pinned<'m, K, V, S> {
    /// An iterator over the entries, seeing each key at most once, like Go's `Range` (and
    /// without its callback): not a snapshot; keys inserted or deleted meanwhile may or may not
    /// be seen; the map may be used freely while iterating. Each shard's entries are listed
    /// under its lock (briefly), then yielded without it.
    ///
    /// ```
    /// use gosync::map::SyncMap;
    ///
    /// let m: SyncMap<u32, u32> = (0..4).map(|i| (i, i * i)).collect();
    /// let mut squares: Vec<u32> = m.pin().iter().map(|(_, v)| *v).collect();
    /// squares.sort_unstable();
    /// assert_eq!(squares, [0, 1, 4, 9]);
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V, S> {
        Iter {
            map: self.map,
            guard: &self.guard,
            shard: 0,
            batch: Vec::new(),
            pos: 0,
        }
    }

    /// The keys, as [`iter`](Self::iter) sees them.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// The values, as [`iter`](Self::iter) sees them.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// The map's [`len`](SyncMap::len).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The map's [`is_empty`](SyncMap::is_empty).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl<'m, K, V, S> Pinned<'m, K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// The value of `key`, by reference (no clone), valid while this `Pinned` lives.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_key_value(key).map(|(_, v)| v)
    }

    /// The stored key and value of `key`, by reference.
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let n = self.map.find_in(&self.guard, self.map.hash(key), key)?;
        Some((&n.key, &n.value))
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }
}

impl<'g, 'm, K, V, S> IntoIterator for &'g Pinned<'m, K, V, S> {
    type Item = (&'g K, &'g V);
    type IntoIter = Iter<'g, K, V, S>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for Pinned<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Iterator over a [`Pinned`] map's entries; see [`Pinned::iter`].
pub struct Iter<'g, K, V, S = DefaultHashBuilder> {
    map: &'g SyncMap<K, V, S>,
    guard: &'g Guard<'g>,
    /// Next shard to list.
    shard: usize,
    /// The current shard's nodes, loaded through `guard`.
    batch: Vec<*const Node<K, V>>,
    pos: usize,
}

impl<'g, K, V, S> Iterator for Iter<'g, K, V, S> {
    type Item = (&'g K, &'g V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(&node) = self.batch.get(self.pos) {
                self.pos += 1;
                // SAFETY: loaded through `guard` while linked, so allocated while it lives
                // ('g), whatever happens to the entry meanwhile.
                let n: &'g Node<K, V> = unsafe { &*node };
                return Some((&n.key, &n.value));
            }
            if self.shard == self.map.shards.len() {
                return None;
            }
            self.map.copy_shard(self.guard, self.shard, &mut self.batch);
            self.shard += 1;
            self.pos = 0;
        }
    }
}

/// Owning iterator over a [`SyncMap`]'s entries (`map.into_iter()`).
pub struct IntoIter<K, V> {
    inner: std::vec::IntoIter<(K, V)>,
}

impl<K, V> Iterator for IntoIter<K, V> {
    type Item = (K, V);
    fn next(&mut self) -> Option<(K, V)> {
        self.inner.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<K, V> ExactSizeIterator for IntoIter<K, V> {}

impl<K, V, S> IntoIterator for SyncMap<K, V, S> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    /// Takes the entries out of the map (in hash order).
    fn into_iter(self) -> IntoIter<K, V> {
        let mut out = Vec::with_capacity(self.len());
        for t in self.tables.iter() {
            let t = t.swap(core::ptr::null_mut(), Ordering::Relaxed);
            if t.is_null() {
                continue;
            }
            // SAFETY: we own the map (no reader or writer is left); the live table owns its
            // nodes, which we take out exactly once (the table is unlinked above, so `Drop`
            // will not see them).
            let table = unsafe { Box::from_raw(t) };
            for slot in table.slots.iter() {
                let node = slot.load(Ordering::Relaxed);
                if !node.is_null() {
                    // SAFETY: as above.
                    let n = unsafe { Box::from_raw(node) };
                    out.push((n.key, n.value));
                }
            }
        }
        IntoIter {
            inner: out.into_iter(),
        }
    }
}

impl<K, V, S> Extend<(K, V)> for SyncMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        (&*self).extend(iter);
    }
}

/// Stores each pair (as [`store`](SyncMap::store)); works on a shared map.
///
/// ```
/// use gosync::map::SyncMap;
///
/// let m = SyncMap::new();
/// let mut shared = &m;
/// shared.extend([(1, "one"), (2, "two")]);
/// let mut all: Vec<_> = m.into_iter().collect(); // owned entries
/// all.sort_unstable();
/// assert_eq!(all, [(1, "one"), (2, "two")]);
/// ```
impl<K, V, S> Extend<(K, V)> for &SyncMap<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.store(k, v);
        }
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
