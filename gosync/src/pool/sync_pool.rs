//! [`Pool`]: Go's `sync.Pool` — per-thread-slot caches with stealing and a victim generation.

use core::fmt;
use core::mem::{self, ManuallyDrop};
use core::ops::{Deref, DerefMut};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::primitive::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::primitive::{spin_loop, yield_now, UnsafeCell};

/// A set of temporary objects that may be individually saved and retrieved: Go's `sync.Pool`.
///
/// `get` hands out an idle object if there is one and otherwise calls the `new` function given at
/// construction; `put` offers an object back for reuse. Idle objects age out: every
/// [`cleanup`](Pool::cleanup) moves what was idle into a *victim* generation and drops the
/// previous victims, so an object nobody asks for survives one cycle and is dropped by the
/// second — Go's two-GC rule, with the cycle driven by you (or by a background thread, see
/// [`PoolBuilder::aging`]) instead of the garbage collector.
///
/// # Example
///
/// ```
/// use gosync::pool::Pool;
///
/// let pool = Pool::new(|| Vec::<u8>::with_capacity(1024));
/// let mut buf = pool.get();          // a fresh Vec from `new`
/// buf.extend_from_slice(b"hello");
/// buf.clear();
/// pool.put(buf);                     // back for reuse
///
/// {
///     let mut guard = pool.get_guard(); // the same Vec again, returned when the guard drops
///     guard.push(1);
/// }
/// assert_eq!(pool.stats().hits, 1);
///
/// pool.cleanup(); // idle -> victim
/// pool.cleanup(); // victim dropped
/// assert!(pool.try_get().is_none());
/// ```
///
/// # How it works
///
/// Go pins the goroutine to its P and gives every P a `poolLocal { private, shared }`; the
/// shared part is a lock-free single-producer deque that other Ps steal from. Rust threads
/// cannot be pinned, so the pool owns `shards` slots (a power of two, by default four per CPU,
/// at least 4 and at most 256); every thread gets a dense slot number the first time it touches
/// any pool, and uses shard `slot % shards` as its home. Each shard, padded to its own cache
/// lines, holds:
///
/// | field | meaning |
/// |---|---|
/// | `locked` | a try-lock. Nobody ever waits on it in `get`: a busy shard is skipped, exactly as Go's contract allows ("Get may choose to ignore the pool and treat it as empty"). |
/// | `private` | one object, taken first by `get` and filled first by `put` (Go's `private`). |
/// | `shared` | a deque: the home thread pushes and pops at the back (LIFO, warm caches); thieves take from the front (Go's `popTail`). |
/// | `victim` | what was idle at the last `cleanup`. |
/// | `len`, `victim_len` | object counts, written only under the lock, read without it so that thieves skip empty shards without touching the lock. |
/// | counters | statistics, written only under the lock (plain load + store, no read-modify-write) except `misses`. |
///
/// `get` looks in this order: home `private` → home `shared` (back) → the other shards'
/// `shared` (front), in slot order → the victims, home first → `new`. `put` fills the home
/// shard; if that shard is busy it tries the others once and only then waits for the home
/// shard. Invariant: an object is in at most one place (a slot, a deque, a victim list, or a
/// caller's hands), so no object is ever handed to two callers.
///
/// The uncontended cost of `get` or `put` is one compare-exchange and one store on a cache line
/// that no other thread writes. A lock-free deque (crossbeam-deque) was considered: its
/// `Worker` end belongs to one thread and is `!Sync`, so each (thread, pool) pair would need a
/// registered worker, and `cleanup` would need a way to reach objects held by idle threads;
/// crossbeam-queue's MPMC queues pay a CAS per operation on lines shared by every thread. The
/// per-shard try-lock gives the same "never wait" property for `get` with less machinery.
///
/// # Differences from Go
///
/// - Aging is explicit: [`cleanup`](Pool::cleanup) is Go's `poolCleanup` for this pool, or an
///   interval set with [`PoolBuilder::aging`]. There is no garbage collector to call it.
/// - `get` never returns "nil": it calls `new`. Use [`try_get`](Pool::try_get) for Go's
///   `Get` on a pool without `New`.
/// - Objects live in per-thread-slot shards, not per-P caches; a thread that moves between
///   CPUs keeps its shard.
/// - Use-after-put, the commonest `sync.Pool` bug in Go, cannot compile: `put` takes the object
///   by value, and [`Pooled`] returns it on drop.
/// - [`stats`](Pool::stats) reports hits, misses, steals, victim hits, drops and retained size.
///
/// # Differences from std
///
/// std has no object pool. Compared with the Rust pool crates, this one ages idle objects
/// away, keeps per-thread caches, and never blocks a `get`.
#[doc(alias = "sync.Pool")]
pub struct Pool<T: Send> {
    inner: Arc<Inner<T>>,
    #[cfg(not(loom))]
    aging: Option<aging::AgingThread>,
}

/// A counter written only by the holder of its shard's lock: load + store, no RMW.
#[derive(Default)]
struct Counter(AtomicU64);

impl Counter {
    #[inline(always)]
    fn bump(&self, by: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(by),
            Ordering::Relaxed,
        );
    }
    #[inline(always)]
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Byte (or weight) gauge written only by the lock holder.
#[derive(Default)]
struct Gauge(AtomicUsize);

impl Gauge {
    #[inline(always)]
    fn add(&self, by: usize) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(by),
            Ordering::Relaxed,
        );
    }
    #[inline(always)]
    fn sub(&self, by: usize) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_sub(by),
            Ordering::Relaxed,
        );
    }
    #[inline(always)]
    fn set(&self, v: usize) {
        self.0.store(v, Ordering::Relaxed);
    }
    #[inline(always)]
    fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

struct Local<T> {
    /// Taken first by `get`, filled first by `put`.
    private: Option<T>,
    /// Home thread at the back, thieves at the front.
    shared: VecDeque<T>,
    /// What was idle at the last `cleanup`; dropped by the next one.
    victim: Vec<T>,
}

struct Shard<T> {
    /// Try-lock guarding `local`; `true` while held. Acquire on lock, Release on unlock.
    locked: AtomicBool,
    /// `private.is_some() + shared.len()`; written under the lock, read anywhere as a hint.
    len: Gauge,
    /// `victim.len()`; written under the lock, read anywhere as a hint.
    victim_len: Gauge,
    /// Weight of `private` + `shared` (sum of the weigher, 0 without one).
    retained: Gauge,
    /// Weight of `victim`.
    retained_victim: Gauge,
    local: UnsafeCell<Local<T>>,
    puts: Counter,
    hits: Counter,
    steals: Counter,
    victim_hits: Counter,
    dropped: Counter,
    dropped_weight: Counter,
    /// The only counter updated without the lock (a relaxed `fetch_add` on the miss path).
    misses: AtomicU64,
}

// SAFETY: `local` is only touched while `locked` is held (acquire/release), so the shard hands
// `T` values between threads but never shares a `&T`: `T: Send` suffices for both.
unsafe impl<T: Send> Sync for Shard<T> {}
// SAFETY: as above; moving the shard moves owned `T`s.
unsafe impl<T: Send> Send for Shard<T> {}

impl<T> Shard<T> {
    fn new() -> Self {
        Shard {
            locked: AtomicBool::new(false),
            len: Gauge::default(),
            victim_len: Gauge::default(),
            retained: Gauge::default(),
            retained_victim: Gauge::default(),
            local: UnsafeCell::new(Local {
                private: None,
                shared: VecDeque::new(),
                victim: Vec::new(),
            }),
            puts: Counter::default(),
            hits: Counter::default(),
            steals: Counter::default(),
            victim_hits: Counter::default(),
            dropped: Counter::default(),
            dropped_weight: Counter::default(),
            misses: AtomicU64::new(0),
        }
    }

    /// Takes the lock if it is free; never waits.
    #[inline(always)]
    fn try_lock(&self) -> Option<ShardGuard<'_, T>> {
        // Acquire: see every write the previous holder made to `local`. A failed attempt
        // writes nothing (a compare-exchange, not a swap).
        if self
            .locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            None
        } else {
            Some(ShardGuard { shard: self })
        }
    }

    /// Takes the lock, spinning then yielding while another thread holds it. Critical sections
    /// are a few loads and stores (or a `cleanup` move), so waits are short.
    #[cold]
    fn lock(&self) -> ShardGuard<'_, T> {
        let mut spins = 0u32;
        loop {
            if !self.locked.load(Ordering::Relaxed) {
                if let Some(g) = self.try_lock() {
                    return g;
                }
            }
            if spins < 64 {
                spins += 1;
                spin_loop();
            } else {
                yield_now();
            }
        }
    }
}

/// Holding this means holding the shard's lock; dropping it releases the lock.
struct ShardGuard<'a, T> {
    shard: &'a Shard<T>,
}

impl<T> ShardGuard<'_, T> {
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce(&mut Local<T>) -> R) -> R {
        // SAFETY: the guard proves we hold `locked`, so no other reference to `local` exists.
        self.shard.local.with_mut(|p| f(unsafe { &mut *p }))
    }
}

impl<T> Drop for ShardGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        // Release: publish our writes to `local` to the next holder.
        self.shard.locked.store(false, Ordering::Release);
    }
}

type NewFn<T> = Box<dyn Fn() -> T + Send + Sync>;

struct Inner<T> {
    shards: Box<[CachePadded<Shard<T>>]>,
    /// `shards.len() - 1`; the length is a power of two.
    mask: usize,
    new: NewFn<T>,
    weigh: Option<fn(&T) -> usize>,
    /// Objects for which this returns false are dropped at a cleanup instead of becoming victims.
    survives: Option<fn(&T) -> bool>,
    /// Sum of `victim_len` over all shards (a hint that lets a miss skip the victim scan).
    /// Every increase for a shard happens under that shard's lock before any decrease of the
    /// same objects, so it never underflows.
    victim_items: AtomicUsize,
    cycles: AtomicU64,
}

#[cfg(not(loom))]
std::thread_local! {
    // The calling thread's dense slot number (assigned on first use, never reused).
    // A `const` thread-local without a destructor: one TLS load, no lazy-init registration.
    static SLOT: core::cell::Cell<usize> = const { core::cell::Cell::new(usize::MAX) };
}

#[cfg(not(loom))]
#[inline(always)]
fn thread_slot() -> usize {
    use core::cell::Cell;
    let s = SLOT.with(Cell::get);
    if s != usize::MAX {
        s
    } else {
        assign_slot()
    }
}

#[cfg(not(loom))]
#[cold]
fn assign_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let s = NEXT.fetch_add(1, Ordering::Relaxed) & (usize::MAX >> 1);
    SLOT.with(|c| c.set(s));
    s
}

#[cfg(loom)]
fn thread_slot() -> usize {
    crate::primitive::thread_id() >> 3
}

impl<T> Inner<T> {
    fn new(
        new: NewFn<T>,
        shards: usize,
        weigh: Option<fn(&T) -> usize>,
        survives: Option<fn(&T) -> bool>,
    ) -> Self {
        let n = shards.clamp(1, 1 << 16).next_power_of_two();
        Inner {
            shards: (0..n).map(|_| CachePadded::new(Shard::new())).collect(),
            mask: n - 1,
            new,
            weigh,
            survives,
            victim_items: AtomicUsize::new(0),
            cycles: AtomicU64::new(0),
        }
    }

    #[inline(always)]
    fn weight(&self, x: &T) -> usize {
        match self.weigh {
            Some(w) => w(x),
            None => 0,
        }
    }

    /// The calling thread's home shard and its index.
    #[inline(always)]
    fn home(&self) -> (usize, &Shard<T>) {
        let home = thread_slot() & self.mask;
        // SAFETY: `mask == shards.len() - 1` and the length is a power of two, so
        // `home <= mask` is in bounds.
        (home, unsafe { self.shards.get_unchecked(home) })
    }

    #[inline]
    fn try_get(&self) -> Option<T> {
        let (home, shard) = self.home();
        if let Some(g) = shard.try_lock() {
            let x = g.with(|l| l.private.take().or_else(|| l.shared.pop_back()));
            if let Some(x) = x {
                shard.len.sub(1);
                shard.hits.bump(1);
                if self.weigh.is_some() {
                    shard.retained.sub(self.weight(&x));
                }
                drop(g);
                return Some(x);
            }
        }
        self.get_slow(home)
    }

    #[cold]
    fn get_slow(&self, home: usize) -> Option<T> {
        // Steal from the other shards, oldest object first (Go's popTail).
        for i in 1..=self.mask {
            let shard = &self.shards[(home + i) & self.mask];
            if shard.len.get() == 0 {
                continue;
            }
            if let Some(g) = shard.try_lock() {
                // A thread that stopped using the pool may have left its private object behind;
                // take it too, or it would wait for a cleanup.
                let x = g.with(|l| l.shared.pop_front().or_else(|| l.private.take()));
                if let Some(x) = x {
                    shard.len.sub(1);
                    shard.steals.bump(1);
                    shard.retained.sub(self.weight(&x));
                    return Some(x);
                }
            }
        }
        // Then the victims, home shard first.
        if self.victim_items.load(Ordering::Relaxed) > 0 {
            for i in 0..=self.mask {
                let shard = &self.shards[(home + i) & self.mask];
                if shard.victim_len.get() == 0 {
                    continue;
                }
                if let Some(g) = shard.try_lock() {
                    if let Some(x) = g.with(|l| l.victim.pop()) {
                        shard.victim_len.sub(1);
                        shard.victim_hits.bump(1);
                        shard.retained_victim.sub(self.weight(&x));
                        self.victim_items.fetch_sub(1, Ordering::Relaxed);
                        return Some(x);
                    }
                }
            }
        }
        self.shards[home].misses.fetch_add(1, Ordering::Relaxed);
        None
    }

    #[inline]
    fn put(&self, x: T) {
        let (home, shard) = self.home();
        match shard.try_lock() {
            Some(g) => {
                let w = self.weight(&x);
                Self::push(&g, shard, x, w)
            }
            None => self.put_slow(home, x),
        }
    }

    #[inline(always)]
    fn push(g: &ShardGuard<'_, T>, shard: &Shard<T>, x: T, w: usize) {
        g.with(|l| {
            if l.private.is_none() {
                l.private = Some(x);
            } else {
                l.shared.push_back(x);
            }
        });
        shard.len.add(1);
        shard.puts.bump(1);
        if w != 0 {
            shard.retained.add(w);
        }
    }

    #[cold]
    fn put_slow(&self, home: usize, x: T) {
        let w = self.weight(&x);
        for i in 1..=self.mask {
            let shard = &self.shards[(home + i) & self.mask];
            if let Some(g) = shard.try_lock() {
                Self::push(&g, shard, x, w);
                return;
            }
        }
        let shard = &self.shards[home];
        let g = shard.lock();
        Self::push(&g, shard, x, w);
    }

    /// One aging cycle (Go's `poolCleanup` for this pool).
    fn cleanup(&self) {
        for shard in self.shards.iter() {
            let g = shard.lock();
            let (old, mut culled) = g.with(|l| {
                let mut v: Vec<T> = mem::take(&mut l.shared).into();
                if let Some(p) = l.private.take() {
                    v.push(p);
                }
                let mut culled = Vec::new();
                if let Some(keep) = self.survives {
                    let mut i = 0;
                    while i < v.len() {
                        if keep(&v[i]) {
                            i += 1;
                        } else {
                            culled.push(v.swap_remove(i));
                        }
                    }
                }
                (mem::replace(&mut l.victim, v), culled)
            });
            let culled_weight: usize = culled.iter().map(|x| self.weight(x)).sum();
            let moved = shard.len.get() - culled.len();
            let old_len = shard.victim_len.get();
            // Add before subtracting: the total never dips below what other threads may still
            // decrement for objects they saw under this shard's lock.
            self.victim_items.fetch_add(moved, Ordering::Relaxed);
            self.victim_items.fetch_sub(old_len, Ordering::Relaxed);
            shard.victim_len.set(moved);
            shard.len.set(0);
            shard.dropped.bump((old.len() + culled.len()) as u64);
            shard
                .dropped_weight
                .bump((shard.retained_victim.get() + culled_weight) as u64);
            shard
                .retained_victim
                .set(shard.retained.get() - culled_weight);
            shard.retained.set(0);
            drop(g);
            // Objects are dropped outside the lock: their destructors may be slow or re-enter.
            drop(old);
            culled.clear();
        }
        self.cycles.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops every idle object now (both generations).
    fn clear(&self) {
        self.cleanup();
        self.cleanup();
    }

    fn stats(&self) -> PoolStats {
        let mut s = PoolStats {
            cycles: self.cycles.load(Ordering::Relaxed),
            shards: self.shards.len(),
            ..PoolStats::default()
        };
        for sh in self.shards.iter() {
            s.puts += sh.puts.get();
            s.hits += sh.hits.get();
            s.steals += sh.steals.get();
            s.victim_hits += sh.victim_hits.get();
            s.misses += sh.misses.load(Ordering::Relaxed);
            s.dropped += sh.dropped.get();
            s.dropped_weight += sh.dropped_weight.get();
            s.idle += sh.len.get();
            s.idle_victim += sh.victim_len.get();
            s.retained += sh.retained.get() + sh.retained_victim.get();
        }
        s
    }
}

/// Counters and gauges of a [`Pool`], summed over its shards.
///
/// Counters are cumulative since the pool was created; `idle`, `idle_victim` and `retained` are
/// the current state. Values are read without stopping other threads, so under concurrent use
/// they are a recent snapshot, not an atomic one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Objects offered back with `put` (or by a dropped [`Pooled`]).
    pub puts: u64,
    /// Gets served from the caller's own shard (its private slot or its deque).
    pub hits: u64,
    /// Gets served from another shard's deque.
    pub steals: u64,
    /// Gets served from the victim generation (objects that survived one cleanup).
    pub victim_hits: u64,
    /// Gets that found nothing (for `get`, the number of `new` calls).
    pub misses: u64,
    /// Idle objects dropped by aging (victims still unused at the next cleanup).
    pub dropped: u64,
    /// Total weight (see [`PoolBuilder::weigher`]) of the objects counted in `dropped`.
    pub dropped_weight: u64,
    /// Idle objects in the current generation.
    pub idle: usize,
    /// Idle objects in the victim generation.
    pub idle_victim: usize,
    /// Total weight of all idle objects, both generations (bytes, for the buffer pools).
    pub retained: usize,
    /// Cleanup cycles run so far.
    pub cycles: u64,
    /// Number of shards.
    pub shards: usize,
}

/// Builder for a [`Pool`] with a shard count, a weigher or automatic aging.
///
/// ```
/// use std::time::Duration;
/// use gosync::pool::Pool;
///
/// let pool: Pool<Vec<u8>> = Pool::builder(Vec::new)
///     .weigher(|v| v.capacity())
///     .aging(Duration::from_secs(30))
///     .build();
/// pool.put(Vec::with_capacity(100));
/// assert!(pool.stats().retained >= 100);
/// ```
#[must_use = "call build() to get the pool"]
pub struct PoolBuilder<T: Send> {
    new: NewFn<T>,
    shards: Option<usize>,
    weigh: Option<fn(&T) -> usize>,
    survives: Option<fn(&T) -> bool>,
    aging: Option<Duration>,
}

impl<T: Send + 'static> PoolBuilder<T> {
    /// Sets the number of shards (rounded up to a power of two). Default: four per CPU, at
    /// least 4, at most 256.
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// Sets a function that gives the weight of an idle object (for example its capacity in
    /// bytes); [`PoolStats::retained`] reports the total.
    pub fn weigher(mut self, weigh: fn(&T) -> usize) -> Self {
        self.weigh = Some(weigh);
        self
    }

    /// Sets a test applied at every cleanup to each idle object of the current generation:
    /// objects for which it returns `false` are dropped at once instead of moving to the victim
    /// generation (they age out in one cycle instead of two). [`BufferPool`](super::BufferPool)
    /// uses it to drop large buffers whose last use was under-utilized.
    pub fn survives_cleanup(mut self, keep: fn(&T) -> bool) -> Self {
        self.survives = Some(keep);
        self
    }

    /// Runs [`Pool::cleanup`] every `interval` on a background thread named `gosync-pool-aging`.
    /// The thread holds only a weak reference and stops (and is joined) when the pool drops.
    ///
    /// # Panics
    ///
    /// If `interval` is zero.
    #[cfg(not(loom))]
    pub fn aging(mut self, interval: Duration) -> Self {
        assert!(
            !interval.is_zero(),
            "gosync::pool: the aging interval must be greater than zero"
        );
        self.aging = Some(interval);
        self
    }

    /// Builds the pool (and starts the aging thread if one was asked for).
    pub fn build(self) -> Pool<T> {
        let shards = self.shards.unwrap_or_else(default_shards);
        let inner = Arc::new(Inner::new(self.new, shards, self.weigh, self.survives));
        #[cfg(not(loom))]
        let aging = self
            .aging
            .map(|d| aging::AgingThread::start(Arc::downgrade(&inner), d));
        #[cfg(loom)]
        let _ = self.aging;
        Pool {
            inner,
            #[cfg(not(loom))]
            aging,
        }
    }
}

fn default_shards() -> usize {
    #[cfg(loom)]
    {
        2
    }
    #[cfg(not(loom))]
    {
        // The CPU count is read once per process (see `available_cpus`).
        (crate::primitive::available_cpus() * 4).clamp(4, 256)
    }
}

impl<T: Send> Pool<T> {
    /// Creates a pool whose `get` calls `new` when no idle object is available (Go's `New`).
    pub fn new(new: impl Fn() -> T + Send + Sync + 'static) -> Self
    where
        T: 'static,
    {
        Self::builder(new).build()
    }

    /// Creates a pool that runs [`cleanup`](Pool::cleanup) every `interval` on a background
    /// thread (see [`PoolBuilder::aging`]).
    #[cfg(not(loom))]
    pub fn with_aging(new: impl Fn() -> T + Send + Sync + 'static, interval: Duration) -> Self
    where
        T: 'static,
    {
        Self::builder(new).aging(interval).build()
    }

    /// Starts a [`PoolBuilder`].
    pub fn builder(new: impl Fn() -> T + Send + Sync + 'static) -> PoolBuilder<T>
    where
        T: 'static,
    {
        PoolBuilder {
            new: Box::new(new),
            shards: None,
            weigh: None,
            survives: None,
            aging: None,
        }
    }

    /// Takes an idle object, or calls `new` if there is none (Go's `Get`).
    ///
    /// Never waits for another thread: a shard another thread is using right now is skipped.
    #[doc(alias = "Get")]
    #[inline]
    pub fn get(&self) -> T {
        match self.inner.try_get() {
            Some(x) => x,
            None => (self.inner.new)(),
        }
    }

    /// Takes an idle object if there is one; never calls `new` (Go's `Get` on a pool without
    /// `New`, which returns nil).
    #[inline]
    pub fn try_get(&self) -> Option<T> {
        self.inner.try_get()
    }

    /// Offers `x` for reuse (Go's `Put`). The pool may drop it at any later cleanup.
    #[doc(alias = "Put")]
    #[inline]
    pub fn put(&self, x: T) {
        self.inner.put(x)
    }

    /// Like [`get`](Pool::get), but the object goes back to the pool when the guard drops.
    /// [`Pooled::take`] keeps it instead.
    #[inline]
    pub fn get_guard(&self) -> Pooled<'_, T> {
        Pooled {
            pool: self,
            value: ManuallyDrop::new(self.get()),
        }
    }

    /// Runs one aging cycle: every idle object moves to the victim generation and the previous
    /// victims are dropped (Go runs this at the start of every GC). An object that is not taken
    /// again is therefore dropped by the second cleanup after it was put.
    ///
    /// Dropping happens on the calling thread, one shard at a time, outside the shard's lock.
    #[doc(alias = "poolCleanup")]
    pub fn cleanup(&self) {
        self.inner.cleanup()
    }

    /// Drops every idle object now (two cleanups).
    pub fn clear(&self) {
        self.inner.clear()
    }

    /// Counters and gauges; see [`PoolStats`].
    pub fn stats(&self) -> PoolStats {
        self.inner.stats()
    }

    /// Idle objects in both generations (a snapshot).
    pub fn idle(&self) -> usize {
        let s = self.stats();
        s.idle + s.idle_victim
    }
}

impl<T: Send + Default + 'static> Default for Pool<T> {
    /// A pool whose `new` is `T::default`.
    fn default() -> Self {
        Pool::new(T::default)
    }
}

impl<T: Send> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<T: Send> Drop for Pool<T> {
    fn drop(&mut self) {
        #[cfg(not(loom))]
        drop(self.aging.take());
    }
}

/// An object borrowed from a [`Pool`]; it goes back to the pool when the guard drops.
///
/// Dereferences to `T`. [`Pooled::take`] keeps the object instead of returning it.
#[must_use = "dropping the guard returns the object to the pool at once"]
#[clippy::has_significant_drop]
pub struct Pooled<'a, T: Send> {
    pool: &'a Pool<T>,
    value: ManuallyDrop<T>,
}

impl<T: Send> Pooled<'_, T> {
    /// Keeps the object: it will not go back to the pool.
    pub fn take(mut this: Self) -> T {
        // SAFETY: `value` is initialized and is never used again: we forget `this` right after.
        let v = unsafe { ManuallyDrop::take(&mut this.value) };
        mem::forget(this);
        v
    }
}

impl<T: Send> Deref for Pooled<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Send> DerefMut for Pooled<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: Send + fmt::Debug> fmt::Debug for Pooled<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}

impl<T: Send> Drop for Pooled<'_, T> {
    fn drop(&mut self) {
        // SAFETY: `value` is initialized (only `take` moves it out, and `take` forgets `self`)
        // and is not used after this.
        let v = unsafe { ManuallyDrop::take(&mut self.value) };
        self.pool.put(v);
    }
}

#[cfg(not(loom))]
mod aging {
    //! The optional background thread that runs `cleanup` on an interval.
    use super::Inner;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Weak};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    /// Lifecycle: started by `PoolBuilder::build`, told to stop and joined when the pool drops.
    /// The thread holds a `Weak`, so it never keeps the pool's objects alive; it upgrades only
    /// for the duration of one cleanup.
    pub(super) struct AgingThread {
        stop: Arc<AtomicBool>,
        handle: Option<JoinHandle<()>>,
    }

    impl AgingThread {
        pub(super) fn start<T: Send + 'static>(pool: Weak<Inner<T>>, every: Duration) -> Self {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&stop);
            let handle = std::thread::Builder::new()
                .name("gosync-pool-aging".into())
                .spawn(move || {
                    let mut next = Instant::now() + every;
                    loop {
                        // Acquire pairs with the Release store in `drop`.
                        if flag.load(Ordering::Acquire) {
                            return;
                        }
                        let now = Instant::now();
                        if now < next {
                            std::thread::park_timeout(next - now);
                            continue;
                        }
                        match pool.upgrade() {
                            Some(p) => p.cleanup(),
                            None => return,
                        }
                        next += every;
                        if next < Instant::now() {
                            next = Instant::now() + every;
                        }
                    }
                })
                .expect("gosync::pool: could not spawn the aging thread");
            AgingThread {
                stop,
                handle: Some(handle),
            }
        }
    }

    impl Drop for AgingThread {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Release);
            if let Some(h) = self.handle.take() {
                h.thread().unpark();
                if h.thread().id() != std::thread::current().id() {
                    let _ = h.join();
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn send_sync() {
        fn assert_send_sync<X: Send + Sync>() {}
        assert_send_sync::<Pool<Vec<u8>>>();
        assert_send_sync::<Pool<std::cell::Cell<u8>>>();
    }
}
