//! Weighted semaphore with strict FIFO order (Go's `golang.org/x/sync/semaphore.Weighted`).

use core::fmt;
use core::future::Future;
use core::marker::PhantomPinned;
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll, Waker};
use std::collections::VecDeque;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use crate::diag::{Sleep, Sleeping};
use crate::primitive::atomic::{AtomicUsize, Ordering};
use crate::primitive::{
    multi_core, now, parking, spin_loop, Instant, Mutex, MutexGuard, UnsafeCell,
};

/// Bit 0 of [`Semaphore::state`]: the wait queue is not empty.
const QUEUED: usize = 1;
/// Permits are stored above the flag bit.
const ONE: usize = 2;
/// The largest size a semaphore can have (one bit of the word is the `QUEUED` flag).
const MAX_SIZE: usize = usize::MAX >> 1;

/// [`Node::state`]: still in the queue (or popped, grant not yet published).
const WAITING: usize = 0;
/// [`Node::state`]: the permits were handed to this waiter; it owns them now.
const GRANTED: usize = 1;

/// How many times a blocking acquirer polls the state before it queues (multi-core only).
const SPIN_LIMIT: u32 = 16;

/// A weighted semaphore: a pool of `size` permits that callers take and give back in any
/// amount, served in strict arrival order.
///
/// This is Go's `semaphore.Weighted`: `acquire(n)` (Go's `Acquire`), [`try_acquire`],
/// [`acquire_timeout`] (Go's `Acquire` with a deadline context), [`release`] and, for async code,
/// [`acquire_async`]. Blocking threads and async tasks wait in **one** FIFO queue, so a mixed
/// program keeps the same order guarantees.
///
/// # Fairness
///
/// Waiters are served strictly in arrival order. A large request at the head of the queue
/// blocks smaller requests behind it, even when enough permits for the smaller ones are free —
/// that is what keeps large requests from starving (Go's `notifyWaiters` rule). For the same
/// reason [`try_acquire`] fails while anyone is queued, even when permits are free. When a
/// waiter gives up (a timeout expires, or an async acquire is dropped) while it is at the head,
/// the waiters behind it are re-examined at once, so nobody is stranded behind a departed
/// request.
///
/// A blocking [`acquire`] that finds no permits spins briefly (multi-core only) *before* it
/// joins the queue. It can only take permits while the queue is empty, so spinning never
/// overtakes a queued waiter; it only saves a sleep when permits come back quickly.
///
/// # Differences from Go
///
/// - Permits come back through a guard ([`SemaphorePermit`] / [`OwnedSemaphorePermit`]) when it
///   drops. Go's explicit `Release(n)` is [`release`]; pair it with [`SemaphorePermit::forget`].
/// - A request for more permits than the semaphore has can never succeed. Go blocks until the
///   context is cancelled; [`acquire`] and [`acquire_async`] panic with a clear message instead
///   (they could only hang), [`try_acquire`] returns `None`, and [`acquire_timeout`] returns
///   `None` at once. Such a request never blocks anyone else (as in Go).
/// - If a timeout fires just as the permits are granted, [`acquire_timeout`] keeps them and
///   returns `Some` (Go returns the permits and reports the context error).
/// - Over-release panics with Go's message `semaphore: released more than held`, and also
///   detects releasing more permits than the semaphore's size in total.
///
/// # Differences from `tokio::sync::Semaphore`
///
/// Same FIFO semantics for multi-permit requests, but it also blocks threads (sharing the queue
/// with tasks), works with any async runtime (it only uses `std::task::Waker`), and has no
/// `close()`; sizes are fixed as in Go.
///
/// # State and invariants
///
/// `state` is one word: `available << 1 | QUEUED`.
///
/// | bits | meaning |
/// |---|---|
/// | 0 (`QUEUED`) | the wait queue is non-empty; set and cleared only with the queue lock held |
/// | 1.. | permits available right now (not held by any guard, not granted to any waiter) |
///
/// - `available + held == size` at all times, where `held` counts permits owned by guards,
///   forgotten permits, and permits granted to a waiter that has not returned yet.
/// - While `QUEUED` is set, only a holder of the queue lock changes `state` (the lock-free fast
///   paths only act on a word without `QUEUED`), so the lock holder can read-modify-write it
///   with plain loads and stores.
/// - The queue is never left non-empty with its head satisfiable: every release and every
///   departure of a head waiter runs `grant`, which hands permits to the longest prefix of
///   waiters that fit and stops at the first that does not.
///
/// # Examples
///
/// ```
/// use gosync::x::Semaphore;
///
/// let sem = Semaphore::new(3);
/// let big = sem.acquire(2);
/// assert!(sem.try_acquire(2).is_none()); // only 1 left
/// let small = sem.try_acquire(1).unwrap();
/// drop((big, small));
/// assert_eq!(sem.available(), 3);
/// ```
///
/// [`acquire`]: Semaphore::acquire
/// [`try_acquire`]: Semaphore::try_acquire
/// [`acquire_timeout`]: Semaphore::acquire_timeout
/// [`acquire_async`]: Semaphore::acquire_async
/// [`release`]: Semaphore::release
#[doc(alias = "Weighted")]
#[doc(alias = "NewWeighted")]
pub struct Semaphore {
    /// `available << 1 | QUEUED`; see the type docs.
    state: AtomicUsize,
    /// Total permits; constant.
    size: usize,
    /// FIFO of waiters. Lock order: this lock is a leaf (no other lock is taken inside it).
    queue: Mutex<Queue>,
}

/// The wait queue. Entries are ordered by `seq` (strictly increasing), so a departing waiter
/// finds itself by binary search.
struct Queue {
    entries: VecDeque<Entry>,
    next_seq: u64,
}

/// One queued request. `node` points to the waiter's [`Node`], which lives on the blocked
/// thread's stack or inside the pinned [`Acquire`] future; it stays valid while the entry is in
/// the queue because both remove their entry (under the lock) before the node goes away.
struct Entry {
    seq: u64,
    need: usize,
    node: NonNull<Node>,
    thread: bool,
}

// SAFETY: `Entry` is only reached through the queue mutex; the node it points to is shared
// through atomics and fields guarded by that same mutex (see `Node`).
unsafe impl Send for Entry {}

/// A waiter's rendezvous with the thread that grants it permits.
struct Node {
    /// `WAITING` → `GRANTED`, written once by the granter.
    state: AtomicUsize,
    /// Async waiters only: the task to wake. Read and written only with the queue lock held.
    waker: UnsafeCell<Option<Waker>>,
}

impl Node {
    fn new() -> Self {
        Node {
            state: AtomicUsize::new(WAITING),
            waker: UnsafeCell::new(None),
        }
    }
    /// # Safety
    /// The caller holds the queue lock of the semaphore this node waits on.
    unsafe fn take_waker(&self) -> Option<Waker> {
        // SAFETY: `waker` is only accessed under the queue lock (caller's contract).
        self.waker.with_mut(|w| unsafe { (*w).take() })
    }
    /// # Safety
    /// As for `take_waker`.
    unsafe fn set_waker(&self, waker: &Waker) {
        // SAFETY: `waker` is only accessed under the queue lock (caller's contract).
        self.waker.with_mut(|w| unsafe {
            match &mut *w {
                Some(old) if old.will_wake(waker) => {}
                slot => *slot = Some(waker.clone()),
            }
        })
    }
    #[inline]
    fn granted(&self) -> bool {
        // Acquire: pairs with the granter's Release store, so the permits' history is visible.
        self.state.load(Ordering::Acquire) == GRANTED
    }
}

/// Wake-ups collected under the queue lock and delivered after it is released.
enum Wake {
    Task(Waker),
    /// Parking key (the node's address) of a blocked thread.
    Thread(usize),
}

/// At most this many wake-ups are collected per lock hold; more are delivered in rounds.
const WAKE_BATCH: usize = 16;

struct WakeList {
    items: [Option<Wake>; WAKE_BATCH],
    len: usize,
}

impl WakeList {
    fn new() -> Self {
        WakeList {
            items: Default::default(),
            len: 0,
        }
    }
    fn is_full(&self) -> bool {
        self.len == WAKE_BATCH
    }
    fn push(&mut self, w: Wake) {
        self.items[self.len] = Some(w);
        self.len += 1;
    }
    fn deliver(&mut self) {
        for slot in &mut self.items[..self.len] {
            match slot.take() {
                Some(Wake::Task(w)) => w.wake(),
                Some(Wake::Thread(key)) => {
                    // SAFETY: `key` is the address of a node whose thread cannot return before it
                    // observes GRANTED, which is stored inside this callback while the parking
                    // bucket is locked; the callback does not panic or park.
                    unsafe {
                        parking::unpark_one(key, |_| {
                            // SAFETY: the node is alive until its thread sees GRANTED (above).
                            (*(key as *const Node))
                                .state
                                .store(GRANTED, Ordering::Release);
                            parking::DEFAULT_UNPARK_TOKEN
                        });
                    }
                }
                None => {}
            }
        }
        self.len = 0;
    }
}

impl Semaphore {
    /// A semaphore with `size` permits, all available.
    ///
    /// # Panics
    ///
    /// If `size` exceeds `usize::MAX >> 1` (one bit of the state word is a flag).
    #[doc(alias = "NewWeighted")]
    pub fn new(size: usize) -> Self {
        assert!(
            size <= MAX_SIZE,
            "semaphore: size {size} is larger than the maximum {MAX_SIZE}"
        );
        Semaphore {
            state: AtomicUsize::new(size * ONE),
            size,
            queue: Mutex::new(Queue {
                entries: VecDeque::new(),
                next_seq: 0,
            }),
        }
    }

    /// Total number of permits.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Permits available right now (a snapshot).
    pub fn available(&self) -> usize {
        self.state.load(Ordering::Relaxed) / ONE
    }

    /// Number of queued waiters (a snapshot; takes the queue lock).
    pub fn waiters(&self) -> usize {
        self.lock_queue().entries.len()
    }

    /// Takes `n` permits, blocking the thread until they are granted in FIFO order.
    ///
    /// # Panics
    ///
    /// If `n > size()`: such a request can never be granted (Go would block forever).
    #[doc(alias = "Acquire")]
    pub fn acquire(&self, n: usize) -> SemaphorePermit<'_> {
        if !self.try_take(n) {
            self.check_fits(n);
            let granted = self.acquire_blocking(n, None);
            debug_assert!(granted);
        }
        SemaphorePermit { sem: self, n }
    }

    /// Like [`acquire`](Self::acquire), but gives up after `timeout` and returns `None`.
    ///
    /// Returns `None` at once if `n > size()`. A waiter that gives up while at the head of the
    /// queue lets the waiters behind it proceed if the permits now suffice for them.
    #[doc(alias = "Acquire")]
    pub fn acquire_timeout(&self, n: usize, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        if self.try_take(n) {
            return Some(SemaphorePermit { sem: self, n });
        }
        if n > self.size || timeout.is_zero() {
            return None;
        }
        let deadline = now().checked_add(timeout);
        self.acquire_blocking(n, deadline)
            .then(|| SemaphorePermit { sem: self, n })
    }

    /// Takes `n` permits if they are available **and nobody is queued**; never blocks.
    #[doc(alias = "TryAcquire")]
    pub fn try_acquire(&self, n: usize) -> Option<SemaphorePermit<'_>> {
        self.try_take(n).then(|| SemaphorePermit { sem: self, n })
    }

    /// Takes `n` permits asynchronously. The future is cancellation-safe: dropping it before it
    /// completes removes its place in the queue (and, if it was first, lets the next waiters
    /// proceed); permits granted to a dropped future are given back.
    ///
    /// Works with any executor: it only uses the `Waker` it is polled with.
    ///
    /// # Panics
    ///
    /// When polled, if `n > size()` (the request could never be granted).
    pub fn acquire_async(&self, n: usize) -> Acquire<'_> {
        Acquire {
            sem: self,
            wait: AsyncWait::new(n),
        }
    }

    /// [`acquire`](Self::acquire) through an `Arc`, returning a permit that owns its handle
    /// (for moving into threads and tasks).
    pub fn acquire_owned(self: &Arc<Self>, n: usize) -> OwnedSemaphorePermit {
        self.acquire(n).forget();
        OwnedSemaphorePermit {
            sem: Arc::clone(self),
            n,
        }
    }

    /// [`try_acquire`](Self::try_acquire) returning an owned permit.
    pub fn try_acquire_owned(self: &Arc<Self>, n: usize) -> Option<OwnedSemaphorePermit> {
        self.try_take(n).then(|| OwnedSemaphorePermit {
            sem: Arc::clone(self),
            n,
        })
    }

    /// [`acquire_async`](Self::acquire_async) returning an owned permit.
    pub fn acquire_owned_async(self: Arc<Self>, n: usize) -> AcquireOwned {
        AcquireOwned {
            sem: Some(self),
            wait: AsyncWait::new(n),
        }
    }

    /// Returns `n` permits to the semaphore and hands them to queued waiters in FIFO order.
    ///
    /// Use it for permits whose guard was [`forget`](SemaphorePermit::forget)-ed.
    ///
    /// # Panics
    ///
    /// `semaphore: released more than held` if the semaphore would have more than `size()`
    /// permits available afterwards.
    #[doc(alias = "Release")]
    pub fn release(&self, n: usize) {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & QUEUED != 0 {
                return self.release_slow(n);
            }
            let avail = state / ONE;
            if n > self.size - avail {
                over_release();
            }
            // Release: publishes the critical section to the next acquirer.
            match self.state.compare_exchange_weak(
                state,
                state + n * ONE,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(s) => state = s,
            }
        }
    }

    /// Lock-free fast path shared by every acquire: succeeds only when nobody is queued.
    #[inline]
    fn try_take(&self, n: usize) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & QUEUED != 0 || state / ONE < n {
                return false;
            }
            // Acquire: pairs with the Release of whoever returned these permits.
            match self.state.compare_exchange_weak(
                state,
                state - n * ONE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(s) => state = s,
            }
        }
    }

    fn check_fits(&self, n: usize) {
        if n > self.size {
            panic!(
                "semaphore: acquire of {n} permits can never succeed on a semaphore of size {}",
                self.size
            );
        }
    }

    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while the lock is held except allocation failure; the queue stays
        // consistent either way, so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Under the queue lock: takes `n` permits if nobody is queued, else queues `node` and
    /// sets `QUEUED`. Returns `Ok(())` if taken, `Err(seq)` if queued.
    fn take_or_enqueue(
        &self,
        q: &mut Queue,
        n: usize,
        node: NonNull<Node>,
        thread: bool,
    ) -> Result<(), u64> {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let (new, queued) = if state & QUEUED == 0 && state / ONE >= n {
                (state - n * ONE, false)
            } else {
                (state | QUEUED, true)
            };
            // Acquire for the take; the flag store needs no ordering beyond the lock.
            match self
                .state
                .compare_exchange_weak(state, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) if !queued => return Ok(()),
                Ok(_) => break,
                Err(s) => state = s,
            }
        }
        let seq = q.next_seq;
        q.next_seq += 1;
        q.entries.push_back(Entry {
            seq,
            need: n,
            node,
            thread,
        });
        Err(seq)
    }

    /// Under the queue lock with `QUEUED` set (or about to be re-derived): hands available
    /// permits to the longest satisfiable prefix of the queue, stops at the first waiter that
    /// does not fit, and rewrites `state`. Async nodes are marked GRANTED here (the lock keeps
    /// them alive); threads are collected and marked when they are unparked.
    /// Returns true if it stopped only because `wakes` is full.
    fn grant(&self, q: &mut Queue, wakes: &mut WakeList) -> bool {
        // With QUEUED set nobody but the lock holder changes the state (type docs).
        let mut avail = self.state.load(Ordering::Relaxed) / ONE;
        let mut full = false;
        while let Some(head) = q.entries.front() {
            if head.need > avail {
                break;
            }
            if wakes.is_full() {
                full = true;
                break;
            }
            let e = q.entries.pop_front().expect("front exists");
            avail -= e.need;
            if e.thread {
                wakes.push(Wake::Thread(e.node.as_ptr() as usize));
            } else {
                // SAFETY: the node is alive while its entry was queued and we hold the lock
                // (its owner removes the entry under this lock before the node goes away).
                let node = unsafe { e.node.as_ref() };
                // SAFETY: the queue lock is held.
                let waker = unsafe { node.take_waker() };
                node.state.store(GRANTED, Ordering::Release);
                if let Some(w) = waker {
                    wakes.push(Wake::Task(w));
                }
            }
        }
        let flag = if q.entries.is_empty() { 0 } else { QUEUED };
        // Release: a fast-path acquirer that sees QUEUED cleared also sees the permits' history.
        self.state.store((avail * ONE) | flag, Ordering::Release);
        full
    }

    /// Runs `grant` to completion, delivering wake-ups outside the lock in batches.
    fn grant_all<'a>(&'a self, mut q: MutexGuard<'a, Queue>) {
        let mut wakes = WakeList::new();
        loop {
            let more = self.grant(&mut q, &mut wakes);
            drop(q);
            wakes.deliver();
            if !more {
                return;
            }
            q = self.lock_queue();
            if self.state.load(Ordering::Relaxed) & QUEUED == 0 {
                return;
            }
        }
    }

    #[cold]
    fn release_slow(&self, n: usize) {
        let q = self.lock_queue();
        let state = self.state.load(Ordering::Relaxed);
        if state & QUEUED == 0 {
            // The queue emptied meanwhile; fast paths own the word again.
            drop(q);
            return self.release(n);
        }
        if n > self.size - state / ONE {
            drop(q);
            over_release();
        }
        self.state.store(state + n * ONE, Ordering::Relaxed);
        self.grant_all(q);
    }

    /// Removes the entry `seq` if it is still queued. Returns true if removed (the waiter did
    /// not get permits), false if it was already granted.
    fn dequeue(&self, seq: u64) -> bool {
        let mut q = self.lock_queue();
        let Ok(idx) = q.entries.binary_search_by_key(&seq, |e| e.seq) else {
            return false;
        };
        q.entries.remove(idx);
        if idx == 0 {
            // The head left: the next waiters may fit now (Go's notifyWaiters on cancel).
            // grant() also clears QUEUED if the queue is now empty.
            self.grant_all(q);
        }
        true
    }

    /// Slow path of the blocking acquires. Returns true if `n` permits were taken.
    #[cold]
    fn acquire_blocking(&self, n: usize, deadline: Option<Instant>) -> bool {
        // (Loom models skip the spin: it only multiplies the interleavings.)
        if cfg!(not(loom)) && multi_core() {
            for _ in 0..SPIN_LIMIT {
                let state = self.state.load(Ordering::Relaxed);
                if state & QUEUED != 0 {
                    break;
                }
                if state / ONE >= n && self.try_take(n) {
                    return true;
                }
                spin_loop();
            }
        }
        let node = Node::new();
        let ptr = NonNull::from(&node);
        let seq = match self.take_or_enqueue(&mut self.lock_queue(), n, ptr, true) {
            Ok(()) => return true,
            Err(seq) => seq,
        };
        let key = ptr.as_ptr() as usize;
        let mut deadline = deadline;
        let _sleeping = Sleeping::begins(Sleep::Semaphore);
        loop {
            // SAFETY: `key` is the address of our own node, unique while we wait; the validate
            // callback only reads an atomic and does not panic.
            let res = unsafe {
                parking::park(
                    key,
                    || node.state.load(Ordering::Relaxed) == WAITING,
                    || {},
                    |_, _| {},
                    parking::DEFAULT_PARK_TOKEN,
                    deadline,
                )
            };
            if node.granted() {
                return true;
            }
            if let parking::ParkResult::TimedOut = res {
                if self.dequeue(seq) {
                    return false;
                }
                // Already popped by a granter that is about to unpark us: the permits are ours.
                // Wait for the hand-off without a deadline (it is imminent).
                deadline = None;
            }
        }
    }
}

#[cold]
#[track_caller]
fn over_release() -> ! {
    panic!("semaphore: released more than held")
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.load(Ordering::Relaxed);
        f.debug_struct("Semaphore")
            .field("size", &self.size)
            .field("available", &(state / ONE))
            .field("queued", &(state & QUEUED != 0))
            .finish()
    }
}

/// Permits taken from a [`Semaphore`]; dropping the guard gives them back.
#[must_use = "dropping the permit releases it at once"]
#[clippy::has_significant_drop]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    n: usize,
}

impl SemaphorePermit<'_> {
    /// How many permits this guard holds.
    pub fn count(&self) -> usize {
        self.n
    }
    /// Keeps the permits taken without releasing them; give them back later with
    /// [`Semaphore::release`] (Go's manual `Release`).
    pub fn forget(self) {
        core::mem::forget(self)
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.n != 0 {
            self.sem.release(self.n);
        }
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("count", &self.n)
            .finish()
    }
}

/// Permits taken from an `Arc<Semaphore>`; dropping the guard gives them back.
#[must_use = "dropping the permit releases it at once"]
#[clippy::has_significant_drop]
pub struct OwnedSemaphorePermit {
    sem: Arc<Semaphore>,
    n: usize,
}

impl OwnedSemaphorePermit {
    /// How many permits this guard holds.
    pub fn count(&self) -> usize {
        self.n
    }
    /// The semaphore the permits came from.
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.sem
    }
    /// Keeps the permits taken without releasing them (see [`Semaphore::release`]).
    pub fn forget(mut self) {
        self.n = 0;
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        if self.n != 0 {
            self.sem.release(self.n);
        }
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("count", &self.n)
            .finish()
    }
}

/// The waiting half shared by [`Acquire`] and [`AcquireOwned`]. Contains the intrusive node, so
/// it must not move once queued (the futures are `!Unpin`).
struct AsyncWait {
    n: usize,
    /// `Some(seq)` while our node is (or may still be) in the queue.
    seq: Option<u64>,
    node: Node,
    _pin: PhantomPinned,
}

impl AsyncWait {
    fn new(n: usize) -> Self {
        AsyncWait {
            n,
            seq: None,
            node: Node::new(),
            _pin: PhantomPinned,
        }
    }

    /// Polls for the permits. `Ready(())` means `n` permits now belong to the caller.
    fn poll(self: Pin<&mut Self>, sem: &Semaphore, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: we never move out of `this`; the node stays where it is.
        let this = unsafe { self.get_unchecked_mut() };
        match this.seq {
            None => {
                if sem.try_take(this.n) {
                    return Poll::Ready(());
                }
                sem.check_fits(this.n);
                let ptr = NonNull::from(&this.node);
                let mut q = sem.lock_queue();
                match sem.take_or_enqueue(&mut q, this.n, ptr, false) {
                    Ok(()) => Poll::Ready(()),
                    Err(seq) => {
                        // SAFETY: the queue lock `q` is held.
                        unsafe { this.node.set_waker(cx.waker()) };
                        drop(q);
                        this.seq = Some(seq);
                        Poll::Pending
                    }
                }
            }
            Some(_) => {
                if this.node.granted() {
                    this.seq = None;
                    return Poll::Ready(());
                }
                let _q = sem.lock_queue();
                if this.node.granted() {
                    this.seq = None;
                    return Poll::Ready(());
                }
                // SAFETY: the queue lock `_q` is held.
                unsafe { this.node.set_waker(cx.waker()) };
                Poll::Pending
            }
        }
    }

    /// Called when the future is dropped: leaves the queue, or gives back permits that were
    /// granted after the last poll.
    fn cancel(&mut self, sem: &Semaphore) {
        if let Some(seq) = self.seq.take() {
            // dequeue() holds the lock while removing, so no granter can touch the node after.
            if !sem.dequeue(seq) {
                // Granted (node marked under the lock before dequeue could look): give back.
                sem.release(self.n);
            }
        }
    }
}

/// Future returned by [`Semaphore::acquire_async`].
#[must_use = "futures do nothing unless polled"]
pub struct Acquire<'a> {
    sem: &'a Semaphore,
    wait: AsyncWait,
}

impl<'a> Future for Acquire<'a> {
    type Output = SemaphorePermit<'a>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `wait` is structurally pinned; `sem` is a plain reference.
        let this = unsafe { self.get_unchecked_mut() };
        let sem = this.sem;
        // SAFETY: `this.wait` is never moved while pinned (we only re-pin it in place).
        let wait = unsafe { Pin::new_unchecked(&mut this.wait) };
        wait.poll(sem, cx).map(|()| SemaphorePermit {
            sem,
            n: this.wait.n,
        })
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        self.wait.cancel(self.sem);
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire").field("n", &self.wait.n).finish()
    }
}

/// Future returned by [`Semaphore::acquire_owned_async`].
#[must_use = "futures do nothing unless polled"]
pub struct AcquireOwned {
    /// `None` once the permit has been handed out.
    sem: Option<Arc<Semaphore>>,
    wait: AsyncWait,
}

impl Future for AcquireOwned {
    type Output = OwnedSemaphorePermit;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `wait` is structurally pinned; `sem` is never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let sem = this
            .sem
            .as_ref()
            .expect("AcquireOwned polled after completion");
        // SAFETY: `this.wait` is never moved while pinned.
        let wait = unsafe { Pin::new_unchecked(&mut this.wait) };
        match wait.poll(sem, cx) {
            Poll::Ready(()) => {
                let sem = this.sem.take().expect("checked above");
                Poll::Ready(OwnedSemaphorePermit {
                    sem,
                    n: this.wait.n,
                })
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for AcquireOwned {
    fn drop(&mut self) {
        if let Some(sem) = &self.sem {
            self.wait.cancel(sem);
        }
    }
}

impl fmt::Debug for AcquireOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireOwned")
            .field("n", &self.wait.n)
            .finish()
    }
}
