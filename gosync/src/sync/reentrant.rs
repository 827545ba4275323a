//! Re-entrant locks, the two approaches from the Go notes: [`ReentrantMutex`] (the owner is the
//! current thread, Go's "goroutine id" approach) and [`TokenMutex`] (the owner is a token the
//! caller passes, Go's "token" approach).
use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use core::time::Duration;

use super::mutex::clock_deadline;
use super::raw_mutex::RawMutex;
use crate::diag::{Access, Tracked};
use crate::primitive::atomic::{AtomicUsize, Ordering};
use crate::primitive::{thread_id, UnsafeCell};

/// A mutex the owning thread may lock again without deadlocking; each `lock` needs its own
/// unlock (guard drop). Other threads wait as for [`Mutex`](crate::Mutex) — the outer lock *is*
/// gosync's Go-style mutex, with its starvation mode.
///
/// Go has no re-entrant lock (on purpose: "a mutex is not re-entrant"); Go code that needs one
/// builds it from `sync.Mutex`, a goroutine id and a recursion count. This is that design, with
/// the thread as the owner.
///
/// The guard gives `&T` only (two guards of the same thread may be alive at once); put a
/// `Cell`/`RefCell` inside for mutation, as with `parking_lot::ReentrantMutex`.
///
/// # State layout
///
/// - `raw`: the [`Mutex`](crate::Mutex) algorithm, held while the recursion count is non-zero.
/// - `owner`: id of the owning thread, 0 when unowned. Written only by the thread holding `raw`.
/// - `count`: recursion depth; read and written only by the owner.
///
/// # Differences from std / parking_lot
///
/// std has no public re-entrant mutex. Like `parking_lot::ReentrantMutex` it is `Sync` for
/// `T: Send`, its guard is not `Send`, and it does not poison.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use gosync::ReentrantMutex;
///
/// let m = ReentrantMutex::new(RefCell::new(Vec::new()));
/// let outer = m.lock();
/// outer.borrow_mut().push(1);
/// {
///     let inner = m.lock(); // same thread: no deadlock
///     inner.borrow_mut().push(2);
///     assert!(m.is_owned_by_current_thread());
/// }
/// drop(outer);
/// assert!(!m.is_owned_by_current_thread());
/// assert_eq!(*m.lock().borrow(), [1, 2]);
/// ```
pub struct ReentrantMutex<T: ?Sized> {
    /// The lock and its diagnostics record (which sees the outermost lock and unlock only:
    /// re-entry never blocks).
    raw: Tracked<RawMutex>,
    owner: AtomicUsize,
    count: UnsafeCell<usize>,
    data: T,
}

// SAFETY: `&T` is only ever handed to the owning thread (guards are not `Send`), so sharing the
// mutex between threads needs `T: Send` (ownership of `T` effectively moves to the owner).
unsafe impl<T: ?Sized + Send> Sync for ReentrantMutex<T> {}
// SAFETY: moving the mutex moves `T`.
unsafe impl<T: ?Sized + Send> Send for ReentrantMutex<T> {}

/// Shared access to the data of a [`ReentrantMutex`] held by the current thread; dropping the
/// last guard of the thread unlocks it.
#[must_use = "if unused the ReentrantMutex will immediately unlock"]
#[clippy::has_significant_drop]
pub struct ReentrantMutexGuard<'a, T: ?Sized> {
    mutex: &'a ReentrantMutex<T>,
    /// Not `Send`: the guard belongs to the owning thread.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T`, fine for `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for ReentrantMutexGuard<'_, T> {}

impl<T> ReentrantMutex<T> {
    /// Creates an unlocked re-entrant mutex.
    #[cfg(not(loom))]
    #[track_caller]
    pub const fn new(value: T) -> Self {
        Self {
            raw: Tracked::new(RawMutex::new(), "ReentrantMutex", None),
            owner: AtomicUsize::new(0),
            count: UnsafeCell::new(0),
            data: value,
        }
    }

    /// Creates an unlocked re-entrant mutex.
    #[cfg(loom)]
    pub fn new(value: T) -> Self {
        Self {
            raw: Tracked::new(RawMutex::new(), "ReentrantMutex", None),
            owner: AtomicUsize::new(0),
            count: UnsafeCell::new(0),
            data: value,
        }
    }

    /// Consumes the mutex and returns the data.
    pub fn into_inner(self) -> T {
        self.data
    }
}

impl<T: ?Sized> ReentrantMutex<T> {
    /// Acquires the lock; re-enters at once if the current thread already holds it.
    ///
    /// # Panics
    /// If the recursion count would overflow `usize`.
    #[doc(alias = "Lock")]
    #[track_caller]
    pub fn lock(&self) -> ReentrantMutexGuard<'_, T> {
        let me = thread_id();
        if !self.reenter(me) {
            self.raw.diag().acquire(
                Access::Reentrant,
                || self.raw.try_lock(),
                || self.raw.lock(),
                || false,
            );
            self.take(me);
        }
        ReentrantMutexGuard {
            mutex: self,
            _not_send: PhantomData,
        }
    }

    /// Acquires the lock if it is free or already held by the current thread.
    #[doc(alias = "TryLock")]
    #[track_caller]
    pub fn try_lock(&self) -> Option<ReentrantMutexGuard<'_, T>> {
        self.try_lock_with(|raw| raw.diag().tried(Access::Reentrant, raw.try_lock()))
    }

    /// Acquires the lock, waiting at most `timeout` for another thread to release it;
    /// re-enters at once if the current thread already holds it (parking_lot's name).
    ///
    /// ```
    /// use std::time::Duration;
    /// use gosync::ReentrantMutex;
    ///
    /// let m = ReentrantMutex::new(());
    /// let outer = m.lock();
    /// // The owner re-enters without waiting.
    /// assert!(m.try_lock_for(Duration::from_secs(1)).is_some());
    /// std::thread::scope(|s| {
    ///     // Another thread times out while `outer` is held.
    ///     s.spawn(|| assert!(m.try_lock_for(Duration::from_millis(5)).is_none()));
    /// });
    /// drop(outer);
    /// ```
    ///
    /// For the deadlock detector this is a `try_lock`: it records no lock-order edge.
    #[track_caller]
    pub fn try_lock_for(&self, timeout: Duration) -> Option<ReentrantMutexGuard<'_, T>> {
        self.try_lock_with(|raw| {
            raw.diag()
                .tried_timed(Access::Reentrant, || raw.try_lock_for(timeout))
        })
    }

    /// Like [`try_lock_for`](Self::try_lock_for), with the deadline given directly.
    #[track_caller]
    pub fn try_lock_until(
        &self,
        deadline: std::time::Instant,
    ) -> Option<ReentrantMutexGuard<'_, T>> {
        self.try_lock_with(|raw| {
            raw.diag().tried_timed(Access::Reentrant, || {
                raw.try_lock_until(clock_deadline(deadline))
            })
        })
    }

    /// Re-enters, or takes the raw lock with `acquire` (which returns whether it did).
    #[inline]
    #[track_caller]
    fn try_lock_with(
        &self,
        acquire: impl FnOnce(&Tracked<RawMutex>) -> bool,
    ) -> Option<ReentrantMutexGuard<'_, T>> {
        let me = thread_id();
        if !self.reenter(me) {
            if !acquire(&self.raw) {
                return None;
            }
            self.take(me);
        }
        Some(ReentrantMutexGuard {
            mutex: self,
            _not_send: PhantomData,
        })
    }

    /// Whether the current thread holds the lock.
    pub fn is_owned_by_current_thread(&self) -> bool {
        // Only the current thread can have stored its own id; a stale value is another id or 0.
        self.owner.load(Ordering::Relaxed) == thread_id()
    }

    /// Whether any thread holds the lock (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// Mutable access without locking: `&mut self` proves no one else holds it.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.data
    }

    /// If the current thread owns the lock, bumps the recursion count.
    #[inline]
    fn reenter(&self, me: usize) -> bool {
        if self.owner.load(Ordering::Relaxed) != me {
            return false;
        }
        // SAFETY: we are the owner: only we touch `count` until we release.
        self.count.with_mut(|c| unsafe {
            *c = (*c)
                .checked_add(1)
                .expect("ReentrantMutex lock count overflowed");
        });
        true
    }

    /// Records ownership right after acquiring `raw`.
    #[inline]
    fn take(&self, me: usize) {
        self.owner.store(me, Ordering::Relaxed);
        // SAFETY: we hold `raw`, which orders us after the previous owner's last access.
        self.count.with_mut(|c| unsafe { *c = 1 });
    }
}

impl<T: ?Sized> Drop for ReentrantMutexGuard<'_, T> {
    fn drop(&mut self) {
        let m = self.mutex;
        // SAFETY: this thread owns the lock (the guard is not Send), so only it touches `count`.
        let left = m.count.with_mut(|c| unsafe {
            *c -= 1;
            *c
        });
        if left == 0 {
            m.owner.store(0, Ordering::Relaxed);
            if m.raw.diag().release(Access::Reentrant) {
                // SAFETY: we hold `raw` and stop using the data.
                unsafe { m.raw.unlock() }
            }
        }
    }
}

impl<T: ?Sized> Deref for ReentrantMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.mutex.data
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for ReentrantMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(g) => f
                .debug_struct("ReentrantMutex")
                .field("data", &&*g)
                .finish(),
            None => f
                .debug_struct("ReentrantMutex")
                .field("data", &"<locked>")
                .finish(),
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for ReentrantMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: Default> Default for ReentrantMutex<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

/// A mutex owned by a *token* rather than a thread: `lock(token)` with the token that holds it
/// re-enters at once, any other token waits. Each `lock` needs its own unlock (guard drop).
///
/// This is the second approach of the Go notes (Go has no goroutine id API, so callers pass a
/// token). It fits where a logical owner — a request, a transaction, a task — moves between
/// threads: the guard is `Send` (when `T: Sync`), and the lock can be released on another
/// thread than the one that took it, as with Go's mutex.
///
/// Waiting uses gosync's Go-style [`Mutex`](crate::Mutex) algorithm (with starvation mode).
///
/// # State layout
///
/// - `raw`: the Go mutex, held while `count > 0`.
/// - `meta`: a second raw mutex that protects `(owner, count)` (held only for a few
///   instructions), so that a token re-entering and the last guard of that token leaving can't
///   interleave wrongly.
///
/// # Examples
///
/// ```
/// use gosync::TokenMutex;
///
/// let m = TokenMutex::new(5);
/// let a = m.lock(1);
/// let again = m.try_lock(1); // same token: re-enters
/// assert!(again.is_some());
/// assert!(m.try_lock(2).is_none()); // another token waits
/// drop((a, again));
/// assert_eq!(*m.try_lock(2).unwrap(), 5);
/// ```
///
/// The deadlock detector (feature `deadlock-detection`) does not track `TokenMutex`. It
/// reasons about threads (a thread's held locks, a lock's owning thread), and a `TokenMutex`
/// has neither: its guard may be dropped on another thread than the one that locked, and a
/// thread that waits for another token's lock is not stuck on itself (any thread may release
/// that token's guards). A lock-order or wait-for rule over tokens would need the caller to
/// say which token each thread acts for at every moment.
pub struct TokenMutex<T: ?Sized> {
    raw: RawMutex,
    meta: RawMutex,
    /// `(owner token, recursion count)`; accessed only while `meta` is held.
    held: UnsafeCell<(u64, usize)>,
    data: T,
}

// SAFETY: guards with the same token may live on several threads at once, each handing out
// `&T`; so sharing needs `T: Sync`, and the owner may change threads, so `T: Send`.
unsafe impl<T: ?Sized + Send + Sync> Sync for TokenMutex<T> {}
// SAFETY: moving the mutex moves `T`.
unsafe impl<T: ?Sized + Send> Send for TokenMutex<T> {}

/// Shared access to the data of a [`TokenMutex`]; dropping the token's last guard unlocks.
#[must_use = "if unused the TokenMutex will immediately unlock"]
#[clippy::has_significant_drop]
pub struct TokenMutexGuard<'a, T: ?Sized> {
    mutex: &'a TokenMutex<T>,
}

impl<T> TokenMutex<T> {
    /// Creates an unlocked token mutex.
    #[cfg(not(loom))]
    pub const fn new(value: T) -> Self {
        Self {
            raw: RawMutex::new(),
            meta: RawMutex::new(),
            held: UnsafeCell::new((0, 0)),
            data: value,
        }
    }

    /// Creates an unlocked token mutex.
    #[cfg(loom)]
    pub fn new(value: T) -> Self {
        Self {
            raw: RawMutex::new(),
            meta: RawMutex::new(),
            held: UnsafeCell::new((0, 0)),
            data: value,
        }
    }

    /// Consumes the mutex and returns the data.
    pub fn into_inner(self) -> T {
        self.data
    }
}

impl<T: ?Sized> TokenMutex<T> {
    /// Acquires the lock for `token`: re-enters at once if `token` holds it, else waits until
    /// every guard of the current owner is gone.
    ///
    /// # Panics
    /// If the recursion count would overflow `usize`.
    #[doc(alias = "Lock")]
    pub fn lock(&self, token: u64) -> TokenMutexGuard<'_, T> {
        if !self.reenter(token) {
            self.raw.lock();
            self.take(token);
        }
        TokenMutexGuard { mutex: self }
    }

    /// Acquires the lock for `token` if it is free or already held by `token`.
    #[doc(alias = "TryLock")]
    pub fn try_lock(&self, token: u64) -> Option<TokenMutexGuard<'_, T>> {
        if !self.reenter(token) {
            if !self.raw.try_lock() {
                return None;
            }
            self.take(token);
        }
        Some(TokenMutexGuard { mutex: self })
    }

    /// The token holding the lock, if any (a snapshot).
    pub fn owner(&self) -> Option<u64> {
        self.with_held(|&mut (owner, count)| (count > 0).then_some(owner))
    }

    /// Whether the lock is held (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// Mutable access without locking: `&mut self` proves no one else holds it.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.data
    }

    /// Runs `f` on `(owner, count)` under `meta`.
    #[inline]
    fn with_held<R>(&self, f: impl FnOnce(&mut (u64, usize)) -> R) -> R {
        self.meta.lock();
        // SAFETY: `meta` is held, so we have exclusive access to `held`.
        let r = self.held.with_mut(|p| f(unsafe { &mut *p }));
        // SAFETY: we locked `meta` above.
        unsafe { self.meta.unlock() };
        r
    }

    #[inline]
    fn reenter(&self, token: u64) -> bool {
        self.with_held(|(owner, count)| {
            if *count > 0 && *owner == token {
                *count = count
                    .checked_add(1)
                    .expect("TokenMutex lock count overflowed");
                true
            } else {
                false
            }
        })
    }

    #[inline]
    fn take(&self, token: u64) {
        self.with_held(|held| *held = (token, 1));
    }
}

impl<T: ?Sized> Drop for TokenMutexGuard<'_, T> {
    fn drop(&mut self) {
        let m = self.mutex;
        let left = m.with_held(|(_, count)| {
            *count -= 1;
            *count
        });
        if left == 0 {
            // SAFETY: the token's last guard held `raw`; count 0 means no guard uses the data.
            unsafe { m.raw.unlock() }
        }
    }
}

impl<T: ?Sized> Deref for TokenMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.mutex.data
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for TokenMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenMutex")
            .field("owner", &self.owner())
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for TokenMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: Default> Default for TokenMutex<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}
