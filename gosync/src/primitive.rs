//! The one place gosync takes its atomics, cells, parking, clock and thread identity from.
//!
//! Every primitive in the crate imports these names from here and never from `std` or
//! `parking_lot_core` directly, so that `RUSTFLAGS="--cfg loom"` can swap the whole lot for
//! [loom](https://docs.rs/loom)'s model-checked versions:
//!
//! | name | normal build | `cfg(loom)` |
//! |---|---|---|
//! | `atomic::*` | `core::sync::atomic` | `loom::sync::atomic` |
//! | `UnsafeCell` | wrapper over `core::cell::UnsafeCell` with loom's `with`/`with_mut` API | `loom::cell::UnsafeCell` |
//! | `parking::*` | `parking_lot_core` (address-keyed wait queues, handoff tokens, timeouts) | a loom-visible queue with the same API (timeouts fire when the fake clock passes them) |
//! | `Instant`, `now()` | `std::time::Instant` | a deterministic clock that only moves when a test calls `advance` |
//! | `thread_id()` | address of a thread-local | address of a loom thread-local |
//! | `spin_loop()`, `yield_now()` | `core::hint::spin_loop`, `std::thread::yield_now` | `loom::thread::yield_now` |
//!
//! Keep this module small: it is the seam, not a place for logic.
#![allow(dead_code, unused_imports)]

#[cfg(not(loom))]
pub(crate) mod atomic {
    pub(crate) use core::sync::atomic::{
        fence, AtomicBool, AtomicI32, AtomicI64, AtomicIsize, AtomicPtr, AtomicU32, AtomicU64,
        AtomicU8, AtomicUsize, Ordering,
    };
}
#[cfg(loom)]
pub(crate) mod atomic {
    pub(crate) use loom::sync::atomic::{
        fence, AtomicBool, AtomicI32, AtomicI64, AtomicIsize, AtomicPtr, AtomicU32, AtomicU64,
        AtomicU8, AtomicUsize, Ordering,
    };
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `core::cell::UnsafeCell` with loom's closure-based API, so code compiles unchanged under loom.
#[cfg(not(loom))]
#[derive(Debug, Default)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T: ?Sized>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    #[inline]
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }
    #[inline]
    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

#[cfg(not(loom))]
impl<T: ?Sized> UnsafeCell<T> {
    /// Runs `f` with a shared raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }
    /// Runs `f` with a mutable raw pointer to the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
    /// The raw pointer itself (normal build only; guards use it to hand out `&T`/`&mut T`).
    #[inline(always)]
    pub(crate) fn get(&self) -> *mut T {
        self.0.get()
    }
    /// Safe exclusive access through `&mut self`.
    #[inline(always)]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }
}

/// Address-keyed parking with the `parking_lot_core` API (`park`, `unpark_one`, `unpark_all`,
/// `unpark_filter`, `unpark_requeue`, tokens). All functions are `unsafe`: the key must be an
/// address owned by the calling primitive, and callbacks must not panic or park.
#[cfg(not(loom))]
pub(crate) mod parking {
    pub(crate) use parking_lot_core::{
        park, unpark_all, unpark_filter, unpark_one, unpark_requeue, FilterOp, ParkResult,
        ParkToken, RequeueOp, UnparkResult, UnparkToken, DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN,
    };
}

/// Parking the calling thread and waking a parked one (`std::thread`'s parker; loom's under
/// loom, where a timed park waits until it is unparked).
#[cfg(not(loom))]
pub(crate) mod thread {
    pub(crate) use std::thread::{current, park, park_timeout, Thread};
}

/// Under loom: each thread parks on its own `loom::sync::Notify` (one stored permit, like a
/// thread's park token). Loom 0.7's `Thread::unpark` makes a thread runnable in whatever
/// blocking operation it is in at that moment, so an unpark that arrives after the waiter saw
/// its token and moved on (to a `join`, a loom `Mutex::lock`) trips loom's assertions; a
/// `Notify` only ever wakes a wait on itself. Loom has no time: a timed park yields instead,
/// and callers check their deadline against the fake clock between yields.
#[cfg(loom)]
pub(crate) mod thread {
    use loom::sync::{Arc, Notify};

    /// A handle that can wake the thread it was taken on (see the module docs).
    #[derive(Clone, Debug)]
    pub(crate) struct Thread(Arc<Notify>);

    impl Thread {
        pub(crate) fn unpark(&self) {
            self.0.notify();
        }
    }

    loom::thread_local!(static PARKER: Arc<Notify> = Arc::new(Notify::new()));

    pub(crate) fn current() -> Thread {
        PARKER.with(|n| Thread(Arc::clone(n)))
    }
    pub(crate) fn park() {
        PARKER.with(|n| n.wait());
    }
    /// Sleeps until unparked or until the fake clock passes `timeout` from now
    /// (`loom_clock::advance` wakes timed sleepers).
    pub(crate) fn park_timeout(timeout: core::time::Duration) {
        super::loom_impl::park_until(super::loom_impl::now() + timeout)
    }
}

/// The lock of a wait queue (`sync::wait_queue`): a short critical section, never held across
/// a park. std's futex mutex here; under loom a lock built for loom's scheduler (see
/// `primitive_loom::SpinLock`).
#[cfg(not(loom))]
pub(crate) struct QueueLock<T>(std::sync::Mutex<T>);

#[cfg(not(loom))]
impl<T> QueueLock<T> {
    /// An unlocked lock holding `value`.
    pub(crate) const fn new(value: T) -> Self {
        QueueLock(std::sync::Mutex::new(value))
    }
    /// Takes the lock (nothing panics while it is held, so poisoning is ignored).
    #[inline]
    pub(crate) fn lock(&self) -> QueueLockGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The guard of a [`QueueLock`].
#[cfg(not(loom))]
pub(crate) type QueueLockGuard<'a, T> = std::sync::MutexGuard<'a, T>;

/// A plain blocking mutex for short internal critical sections (wait queues).
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Under loom: loom's mutex, so models see the lock.
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

/// Monotonic clock. Under loom this is a deterministic fake clock (see `loom_clock`).
#[cfg(not(loom))]
pub(crate) use std::time::Instant;

/// The current time on the crate's clock.
#[cfg(not(loom))]
#[inline]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// `at` as nanoseconds since a fixed origin of the crate's clock (for storing times in
/// atomics). Saturates far beyond any run time.
#[cfg(not(loom))]
#[inline]
pub(crate) fn nanos(at: Instant) -> u64 {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(origin).as_nanos()).unwrap_or(u64::MAX)
}

/// One spin-wait hint.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn spin_loop() {
    core::hint::spin_loop()
}
#[cfg(loom)]
pub(crate) fn spin_loop() {
    loom::thread::yield_now()
}

/// Yields the thread's time slice.
#[cfg(not(loom))]
#[inline]
pub(crate) fn yield_now() {
    std::thread::yield_now()
}
#[cfg(loom)]
pub(crate) fn yield_now() {
    loom::thread::yield_now()
}

/// A non-zero number unique to the calling thread for as long as the thread lives.
#[cfg(not(loom))]
#[inline]
pub(crate) fn thread_id() -> usize {
    std::thread_local!(static ID: u8 = const { 0 });
    ID.with(|x| x as *const u8 as usize)
}

/// A small number for the calling thread, handed out in the order threads first ask (0, 1,
/// 2, ...), so that threads spread evenly over an array indexed by it modulo its length.
/// Not reused when a thread exits. Under loom: the thread id (loom threads live in one model
/// execution, and which slot they use does not matter there).
#[cfg(not(loom))]
#[inline]
pub(crate) fn thread_index() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::thread_local!(static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed));
    INDEX.with(|i| *i)
}
#[cfg(loom)]
pub(crate) fn thread_index() -> usize {
    thread_id() >> 3
}

/// Marks a point where an argument rests on the single total order of SeqCst accesses: most
/// often between a SeqCst write of one atomic and a SeqCst read of another, done crosswise by
/// two threads that must not both read the old values (Dekker's pattern). The language's
/// memory model already guarantees that order for SeqCst accesses, so this is nothing in a
/// normal build. Loom models SeqCst accesses as acquire/release only (it would report
/// outcomes the order rules out) but does model SeqCst fences, so under loom this is one.
#[inline(always)]
pub(crate) fn dekker_fence() {
    #[cfg(loom)]
    loom::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

/// `std::thread::available_parallelism()` (1 if it cannot tell), computed once per process.
///
/// The standard function reads the cgroup CPU quota files on every call (several system calls),
/// and the maps and pools call this each time one is built.
pub(crate) fn available_cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Whether more than one CPU is available (Go only spins on multi-core machines). Cached.
#[cfg(not(loom))]
pub(crate) fn multi_core() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static CACHE: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 single, 2 multi
    match CACHE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let multi = std::thread::available_parallelism().map_or(1, |n| n.get()) > 1;
            CACHE.store(if multi { 2 } else { 1 }, Ordering::Relaxed);
            multi
        }
    }
}
#[cfg(loom)]
pub(crate) fn multi_core() -> bool {
    true
}

/// How long one spin round of a contended lock lasts, in pause instructions
/// ([`spin_round_pauses`]).
#[cfg(not(loom))]
const SPIN_ROUND: std::time::Duration = std::time::Duration::from_micros(1);

/// Pause instructions per spin round of a contended lock: as many as last [`SPIN_ROUND`],
/// measured once per process (a pause lasts from a few cycles to well over a hundred,
/// depending on the CPU), and never fewer than Go's 30.
///
/// A spinner reads the lock's state once per round. Rounds much shorter than this keep
/// pulling the lock's cache line away from the holder, which slows the holder down exactly
/// when threads queue up behind it; much longer ones leave the spinner idle after the lock
/// came free, which costs throughput when critical sections are short and the work between
/// them is not.
#[cfg(not(loom))]
pub(crate) fn spin_round_pauses() -> u32 {
    static PAUSES: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PAUSES.get_or_init(|| {
        const SAMPLE: u32 = 64;
        // The fastest of a few samples: one that lost its CPU midway would count too few.
        let per_pause = (0..3)
            .map(|_| {
                let t = std::time::Instant::now();
                for _ in 0..SAMPLE {
                    std::hint::spin_loop();
                }
                t.elapsed().as_nanos() / u128::from(SAMPLE)
            })
            .min()
            .unwrap_or(0)
            .max(1);
        (SPIN_ROUND.as_nanos() / per_pause).clamp(30, 2000) as u32
    })
}
/// Under loom every pause is a yield: one per round keeps the models small.
#[cfg(loom)]
pub(crate) fn spin_round_pauses() -> u32 {
    1
}

// The loom side of `parking`, `Instant`/`now` and `thread_id` lives in `primitive_loom.rs`
// (written together with the first loom models).
#[cfg(loom)]
#[path = "primitive_loom.rs"]
mod loom_impl;
/// Test hooks for the fake clock used under loom (`reset`, `advance`).
#[cfg(loom)]
pub use loom_impl::loom_clock;
#[cfg(loom)]
pub(crate) use loom_impl::{
    nanos, now, parking, thread_id, Instant, SpinGuard as QueueLockGuard, SpinLock as QueueLock,
};
