//! One shard of a [`TimedMap`](super::TimedMap): the entries, their deadlines and, for a
//! bounded map, the eviction policy. Everything here runs under the shard's lock and never
//! calls user code other than `Hash`/`Eq` of keys; what leaves the shard is handed back to the
//! caller, which drops it and runs the listener after unlocking.
//!
//! # Layout
//!
//! - `slots`: a slab of entries addressed by `u32` index, with a free list through vacant
//!   slots. `index`: a hash table of slot indices keyed by the entry's hash.
//! - `deadlines`: `(deadline, slot)` for every entry that can expire (entries that never
//!   expire are not in it). One item per entry: a refresh moves it, so there are never stale
//!   timers.
//! - `policy` (bounded maps only): every entry is on exactly one of three intrusive LRU lists
//!   threaded through the slots (`prev`/`next`), plus a frequency sketch.
//!
//! # Eviction policy (bounded maps): W-TinyLFU
//!
//! The policy of Caffeine (Java) and the admission half of moka, scaled to one shard:
//!
//! - New entries enter the **window** list (1 % of the capacity, at least one entry), so an
//!   insert is always visible to the next `get`.
//! - The window's least recently used entry moves on to **probation** (the main space's
//!   entry stage); a hit there promotes it to **protected** (80 % of the main space); protected
//!   overflow demotes its LRU entry back to probation.
//! - When the shard is over capacity, an entry that has already expired goes first. Otherwise
//!   the entry that just left the window (the *candidate*) is compared with probation's LRU
//!   entry (the *victim*) by their estimated access frequency, and the less frequent one is
//!   evicted. So a one-off key cannot push out a popular one: scans and long tails of rare
//!   keys stay out of the main space.
//! - Frequencies come from a count-min sketch of 4-bit counters (4 per key) that counts every
//!   `get` (hit or miss) and every insert of a new key, and halves all counters after 10 ×
//!   capacity increments, so that popularity ages.
//!
//! [`EvictionPolicy::Lru`](super::EvictionPolicy::Lru) keeps one list and evicts its LRU
//! entry; it is there for comparison and for workloads where recency is all that matters.

use core::borrow::Borrow;
use std::collections::BTreeSet;

use hashbrown::HashTable;

use super::sweeper::clock::NEVER;

/// "No slot".
const NIL: u32 = u32::MAX;

/// Which list a slot is on (bounded maps).
const WINDOW: u8 = 0;
const PROBATION: u8 = 1;
const PROTECTED: u8 = 2;

/// Why an entry left the shard; mapped to the public `ExpiryReason` by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gone {
    Expired,
    Evicted,
}

struct Live<K, V> {
    key: K,
    value: V,
    hash: u64,
    /// Clock nanoseconds, `NEVER` if the entry does not expire.
    deadline: u64,
    prev: u32,
    next: u32,
    list: u8,
}

enum Slot<K, V> {
    Live(Live<K, V>),
    /// Next vacant slot.
    Vacant(u32),
}

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
    len: usize,
}

const EMPTY_LIST: List = List {
    head: NIL,
    tail: NIL,
    len: 0,
};

struct Policy {
    capacity: usize,
    window_cap: usize,
    protected_cap: usize,
    lru_only: bool,
    lists: [List; 3],
    sketch: Sketch,
}

/// One shard's entries (see the module docs).
pub(crate) struct Store<K, V> {
    index: HashTable<u32>,
    slots: Vec<Slot<K, V>>,
    free: u32,
    deadlines: BTreeSet<(u64, u32)>,
    policy: Option<Policy>,
}

/// An entry that left the shard.
pub(crate) struct Removed<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) deadline: u64,
}

/// What an insert did.
pub(crate) enum Inserted<K, V> {
    /// The key was new.
    New,
    /// The key was present: its old value (and the now unused new key, to be dropped by the
    /// caller after unlocking). `deadline` is the old entry's deadline, to tell a replaced
    /// entry from one that had already expired.
    Replaced { old: V, old_deadline: u64, key: K },
}

impl<K, V> Store<K, V> {
    /// An empty shard; `capacity` bounds it (W-TinyLFU, or plain LRU if `lru_only`).
    pub(crate) fn new(capacity: Option<usize>, lru_only: bool) -> Self {
        let policy = capacity.map(|capacity| {
            let capacity = capacity.max(1);
            let window_cap = if lru_only {
                capacity
            } else {
                (capacity / 100).max(1)
            };
            Policy {
                capacity,
                window_cap,
                protected_cap: (capacity - window_cap.min(capacity)) * 4 / 5,
                lru_only,
                lists: [EMPTY_LIST; 3],
                sketch: Sketch::new(capacity),
            }
        });
        Store {
            index: HashTable::new(),
            slots: Vec::new(),
            free: NIL,
            deadlines: BTreeSet::new(),
            policy,
        }
    }

    /// Entries stored whose deadline has not passed at `now`.
    pub(crate) fn live(&self, now: u64) -> usize {
        self.index.len() - self.deadlines.range(..=(now, NIL)).count()
    }

    /// The earliest deadline in the shard (`NEVER` if none).
    pub(crate) fn next_deadline(&self) -> u64 {
        self.deadlines.first().map_or(NEVER, |&(d, _)| d)
    }

    #[inline]
    fn live_ref(&self, i: u32) -> &Live<K, V> {
        match &self.slots[i as usize] {
            Slot::Live(l) => l,
            Slot::Vacant(_) => unreachable!("TimedMap: slot {i} is linked but vacant"),
        }
    }

    #[inline]
    fn live_mut(&mut self, i: u32) -> &mut Live<K, V> {
        match &mut self.slots[i as usize] {
            Slot::Live(l) => l,
            Slot::Vacant(_) => unreachable!("TimedMap: slot {i} is linked but vacant"),
        }
    }

    #[inline]
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.index
            .find(hash, |&i| {
                let l = self.live_ref(i);
                l.hash == hash && l.key.borrow() == key
            })
            .copied()
    }

    /// Looks `key` up at `now`: the live value (the policy records the access), or `None` if
    /// absent or expired.
    #[inline]
    pub(crate) fn get<Q, R>(
        &mut self,
        hash: u64,
        key: &Q,
        now: impl FnOnce() -> u64,
        f: impl FnOnce(&V, u64) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if let Some(p) = &mut self.policy {
            if !p.lru_only {
                p.sketch.increment(hash);
            }
        }
        let i = self.find(hash, key)?;
        let l = self.live_ref(i);
        if l.deadline != NEVER && l.deadline <= now() {
            return None;
        }
        let r = f(&l.value, l.deadline);
        self.on_access(i);
        Some(r)
    }

    /// Looks `key` up without touching the policy (for `contains_key`, `ttl`).
    pub(crate) fn peek<Q>(&self, hash: u64, key: &Q) -> Option<(&V, u64)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let l = self.live_ref(self.find(hash, key)?);
        Some((&l.value, l.deadline))
    }

    /// Inserts or replaces. Entries the policy evicts to make room are pushed on `gone`.
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        deadline: u64,
        now: u64,
        gone: &mut Vec<(Removed<K, V>, Gone)>,
    ) -> Inserted<K, V>
    where
        K: Eq,
    {
        if let Some(i) = self.find(hash, &key) {
            let l = self.live_mut(i);
            let old = core::mem::replace(&mut l.value, value);
            let old_deadline = core::mem::replace(&mut l.deadline, deadline);
            self.move_deadline(i, old_deadline, deadline);
            self.on_access(i);
            return Inserted::Replaced {
                old,
                old_deadline,
                key,
            };
        }
        let i = self.alloc(Live {
            key,
            value,
            hash,
            deadline,
            prev: NIL,
            next: NIL,
            list: WINDOW,
        });
        let slots = &self.slots;
        self.index
            .insert_unique(hash, i, |&j| match &slots[j as usize] {
                Slot::Live(l) => l.hash,
                Slot::Vacant(_) => unreachable!("TimedMap: vacant slot in the index"),
            });
        if deadline != NEVER {
            self.deadlines.insert((deadline, i));
        }
        if self.policy.is_some() {
            self.admit(i, hash, now, gone);
        }
        Inserted::New
    }

    /// Removes `key` (expired or not).
    pub(crate) fn remove<Q>(&mut self, hash: u64, key: &Q) -> Option<Removed<K, V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let i = self.find(hash, key)?;
        Some(self.unlink(i))
    }

    /// Gives a live `key` a new deadline; `false` if absent or expired at `now`.
    pub(crate) fn refresh<Q>(&mut self, hash: u64, key: &Q, deadline: u64, now: u64) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let Some(i) = self.find(hash, key) else {
            return false;
        };
        let l = self.live_mut(i);
        if l.deadline != NEVER && l.deadline <= now {
            return false;
        }
        let old = core::mem::replace(&mut l.deadline, deadline);
        self.move_deadline(i, old, deadline);
        true
    }

    /// Removes every entry whose deadline is `<= now`.
    pub(crate) fn take_expired(&mut self, now: u64, gone: &mut Vec<(Removed<K, V>, Gone)>) {
        while let Some(&(d, i)) = self.deadlines.first() {
            if d > now {
                break;
            }
            gone.push((self.unlink(i), Gone::Expired));
        }
    }

    /// Removes every entry.
    pub(crate) fn drain(&mut self) -> Vec<Removed<K, V>> {
        let slots = core::mem::take(&mut self.slots);
        self.index.clear();
        self.deadlines.clear();
        self.free = NIL;
        if let Some(p) = &mut self.policy {
            p.lists = [EMPTY_LIST; 3];
        }
        slots
            .into_iter()
            .filter_map(|s| match s {
                Slot::Live(l) => Some(Removed {
                    key: l.key,
                    value: l.value,
                    deadline: l.deadline,
                }),
                Slot::Vacant(_) => None,
            })
            .collect()
    }

    /// Keeps the entries for which `keep` returns `true`; the others go to `gone`.
    pub(crate) fn retain(
        &mut self,
        mut keep: impl FnMut(&K, &mut V, u64) -> bool,
        gone: &mut Vec<Removed<K, V>>,
    ) {
        for i in 0..self.slots.len() as u32 {
            let drop_it = match &mut self.slots[i as usize] {
                Slot::Live(l) => !keep(&l.key, &mut l.value, l.deadline),
                Slot::Vacant(_) => false,
            };
            if drop_it {
                gone.push(self.unlink(i));
            }
        }
    }

    /// Calls `f` on every stored entry (expired ones included; `f` sees the deadline).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &V, u64)) {
        for s in &self.slots {
            if let Slot::Live(l) = s {
                f(&l.key, &l.value, l.deadline);
            }
        }
    }

    // -- slab ---------------------------------------------------------------------------------

    fn alloc(&mut self, live: Live<K, V>) -> u32 {
        if self.free != NIL {
            let i = self.free;
            let Slot::Vacant(next) = self.slots[i as usize] else {
                unreachable!("TimedMap: free list points at a live slot")
            };
            self.free = next;
            self.slots[i as usize] = Slot::Live(live);
            i
        } else {
            let i = u32::try_from(self.slots.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("gosync::TimedMap: more than 4 billion entries in one shard");
            self.slots.push(Slot::Live(live));
            i
        }
    }

    /// Takes slot `i` out of the index, the deadlines and the policy, and frees it.
    fn unlink(&mut self, i: u32) -> Removed<K, V> {
        let (hash, deadline) = {
            let l = self.live_ref(i);
            (l.hash, l.deadline)
        };
        match self.index.find_entry(hash, |&j| j == i) {
            Ok(e) => {
                e.remove();
            }
            Err(_) => unreachable!("TimedMap: live slot {i} missing from the index"),
        }
        if deadline != NEVER {
            self.deadlines.remove(&(deadline, i));
        }
        if self.policy.is_some() {
            self.detach(i);
        }
        let Slot::Live(l) =
            core::mem::replace(&mut self.slots[i as usize], Slot::Vacant(self.free))
        else {
            unreachable!()
        };
        self.free = i;
        Removed {
            key: l.key,
            value: l.value,
            deadline: l.deadline,
        }
    }

    fn move_deadline(&mut self, i: u32, old: u64, new: u64) {
        if old == new {
            return;
        }
        if old != NEVER {
            self.deadlines.remove(&(old, i));
        }
        if new != NEVER {
            self.deadlines.insert((new, i));
        }
    }

    // -- policy -------------------------------------------------------------------------------

    /// Removes slot `i` from its list.
    fn detach(&mut self, i: u32) {
        let (prev, next, list) = {
            let l = self.live_ref(i);
            (l.prev, l.next, l.list as usize)
        };
        if prev != NIL {
            self.live_mut(prev).next = next;
        }
        if next != NIL {
            self.live_mut(next).prev = prev;
        }
        let p = self.policy.as_mut().expect("bounded");
        let lst = &mut p.lists[list];
        if lst.head == i {
            lst.head = next;
        }
        if lst.tail == i {
            lst.tail = prev;
        }
        lst.len -= 1;
    }

    /// Puts slot `i` at the most recently used end of `list`.
    fn push_front(&mut self, i: u32, list: u8) {
        let head = self.policy.as_ref().expect("bounded").lists[list as usize].head;
        {
            let l = self.live_mut(i);
            l.prev = NIL;
            l.next = head;
            l.list = list;
        }
        if head != NIL {
            self.live_mut(head).prev = i;
        }
        let lst = &mut self.policy.as_mut().expect("bounded").lists[list as usize];
        lst.head = i;
        if lst.tail == NIL {
            lst.tail = i;
        }
        lst.len += 1;
    }

    /// A hit on slot `i`.
    #[inline]
    fn on_access(&mut self, i: u32) {
        let Some(p) = &self.policy else {
            return;
        };
        let (lru_only, protected_cap) = (p.lru_only, p.protected_cap);
        let list = self.live_ref(i).list;
        self.detach(i);
        if lru_only || list == WINDOW {
            self.push_front(i, list);
            return;
        }
        // Probation → protected; protected stays protected.
        self.push_front(i, PROTECTED);
        let p = self.policy.as_ref().expect("bounded");
        if p.lists[PROTECTED as usize].len > protected_cap {
            let demoted = p.lists[PROTECTED as usize].tail;
            self.detach(demoted);
            self.push_front(demoted, PROBATION);
        }
    }

    /// Places the new slot `i` and evicts whatever the capacity requires.
    fn admit(&mut self, i: u32, hash: u64, now: u64, gone: &mut Vec<(Removed<K, V>, Gone)>) {
        let p = self.policy.as_mut().expect("bounded");
        if !p.lru_only {
            p.sketch.increment(hash);
        }
        self.push_front(i, WINDOW);
        let p = self.policy.as_ref().expect("bounded");
        let (capacity, window_cap, lru_only) = (p.capacity, p.window_cap, p.lru_only);
        // The window's LRU entry becomes the candidate for the main space.
        let mut candidate = NIL;
        if !lru_only && p.lists[WINDOW as usize].len > window_cap {
            candidate = p.lists[WINDOW as usize].tail;
            self.detach(candidate);
            self.push_front(candidate, PROBATION);
        }
        while self.index.len() > capacity {
            // Something already expired goes first.
            if let Some(&(d, e)) = self.deadlines.first() {
                if d <= now {
                    if e == candidate {
                        candidate = NIL;
                    }
                    gone.push((self.unlink(e), Gone::Expired));
                    continue;
                }
            }
            let victim = self.pick_victim(candidate);
            if victim == candidate {
                candidate = NIL;
            }
            gone.push((self.unlink(victim), Gone::Evicted));
        }
    }

    /// The entry to evict when over capacity: W-TinyLFU's duel between the candidate that just
    /// left the window and probation's LRU entry, or plain LRU.
    fn pick_victim(&self, candidate: u32) -> u32 {
        let p = self.policy.as_ref().expect("bounded");
        let tail = |l: u8| p.lists[l as usize].tail;
        if p.lru_only {
            return tail(WINDOW);
        }
        // Probation's LRU end, skipping the candidate itself (it sits at the MRU end, so it is
        // the tail only when it is alone there).
        let mut victim = tail(PROBATION);
        if victim == candidate && victim != NIL {
            victim = self.live_ref(victim).prev;
        }
        if victim == NIL {
            victim = tail(PROTECTED);
        }
        if candidate == NIL {
            // Nothing left the window: the main space is over its share; evict its LRU entry,
            // or the window's if the main space is empty.
            return if victim != NIL { victim } else { tail(WINDOW) };
        }
        if victim == NIL {
            return candidate;
        }
        let fc = p.sketch.frequency(self.live_ref(candidate).hash);
        let fv = p.sketch.frequency(self.live_ref(victim).hash);
        if fc > fv {
            victim
        } else {
            candidate
        }
    }
}

/// A count-min sketch of 4-bit counters: 16 counters per `u64`, 4 counters per key (one per
/// row, each row a different hash of the key), a key's frequency being the smallest of its
/// four. After `sample` increments every counter is halved.
struct Sketch {
    table: Box<[u64]>,
    mask: usize,
    additions: usize,
    sample: usize,
}

impl Sketch {
    fn new(capacity: usize) -> Self {
        let words = capacity.next_power_of_two().max(8);
        Sketch {
            table: vec![0; words].into_boxed_slice(),
            mask: words - 1,
            additions: 0,
            sample: capacity.saturating_mul(10).max(16),
        }
    }

    /// The word and the counter's bit offset for row `row`.
    #[inline]
    fn slot(&self, hash: u64, row: usize) -> (usize, u32) {
        const SEEDS: [u64; 4] = [
            0x97cb_3127_e1a3_5a3b,
            0xb492_b66f_be98_f273,
            0x9ae1_6a3b_2f90_404f,
            0xcbf2_9ce4_8422_2325,
        ];
        let mut h = hash.wrapping_add(SEEDS[row]).wrapping_mul(SEEDS[row]);
        h ^= h >> 32;
        let word = h as usize & self.mask;
        // 16 counters per word; each row uses its own quarter of them.
        let counter = ((h >> 40) as u32 & 3) + (row as u32) * 4;
        (word, counter * 4)
    }

    #[inline]
    fn increment(&mut self, hash: u64) {
        let mut added = false;
        for row in 0..4 {
            let (w, off) = self.slot(hash, row);
            let word = &mut self.table[w];
            if (*word >> off) & 0xf < 15 {
                *word += 1 << off;
                added = true;
            }
        }
        if added {
            self.additions += 1;
            if self.additions >= self.sample {
                self.age();
            }
        }
    }

    fn frequency(&self, hash: u64) -> u64 {
        (0..4)
            .map(|row| {
                let (w, off) = self.slot(hash, row);
                (self.table[w] >> off) & 0xf
            })
            .min()
            .unwrap_or(0)
    }

    /// Halves every counter.
    fn age(&mut self) {
        for w in self.table.iter_mut() {
            *w = (*w >> 1) & 0x7777_7777_7777_7777;
        }
        self.additions /= 2;
    }
}
