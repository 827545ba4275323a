//! The async forms of [`RwMutex`]: [`RwMutex::read_async`] and [`RwMutex::write_async`].
//!
//! A task waits in the same queues as a blocked thread (the raw lock's async steps), so
//! threads and tasks share one lock, one writer preference and one FIFO order.
//!
//! The futures' states, and what dropping one in each state gives back:
//!
//! | future | state | on drop |
//! |---|---|---|
//! | read | not polled, or `Ready` returned | nothing |
//! | read | counted in behind a writer (maybe queued, maybe already let in) | its `+1` (or the read lock it was let in with) |
//! | write | waiting for the writer lock `w` | its place in `w`'s queue (or `w`, if it was handed over) |
//! | write | holds `w`, announced, waiting for readers | `w` and the announcement, as a timed-out `try_write_for` (or the write lock, if the last reader left meanwhile) |

use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::pin::Pin;
use core::task::{Context, Poll};

use super::RwMutex;
use crate::sync::raw_mutex::AsyncLock;
use crate::sync::raw_rwmutex::AsyncWait;

impl<T: ?Sized> RwMutex<T> {
    /// Locks for reading from an async task (Go's `RLock`, awaited): the same lock, queues and
    /// writer preference as [`read`](Self::read), so a task waits behind a pending writer as a
    /// thread does, and is let in by that writer's unlock together with the threads.
    ///
    /// The [`AsyncRwMutexReadGuard`] it returns is `Send` (when `T: Send + Sync`), so it may be
    /// held across `.await` on a multi-threaded runtime. Works with any executor: only the
    /// `Waker` it is polled with is used.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes takes it out of the queue and the reader count;
    /// if the writer it waited for had already let it in, the read lock is released. A writer
    /// waiting for readers is never left waiting for a dropped future.
    ///
    /// # When to use it
    ///
    /// When the read lock must be held across an `.await`, or a task must not block its
    /// executor thread while a writer holds the lock. For short sections without `.await`,
    /// [`read`](Self::read) is faster, even in async code. Compared with
    /// `tokio::sync::RwLock`: the same lock serves plain threads, the policy is Go's (new
    /// readers wait once a writer waits; a writer's unlock lets in every reader that queued
    /// behind it before the next writer) rather than one FIFO queue for both, and no tokio
    /// runtime is needed. The deadlock detector and the contention profiler do not see async
    /// acquisitions.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gosync::RwMutex;
    ///
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct T(std::thread::Thread);
    /// #     impl Wake for T { fn wake(self: Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(Arc::new(T(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// let config = Arc::new(RwMutex::new(String::from("v1")));
    /// let writer = {
    ///     let config = Arc::clone(&config);
    ///     std::thread::spawn(move || config.write().push_str("-patched"))
    /// };
    /// let len = block_on(async {
    ///     let c = config.read_async().await; // may be held across `.await`s
    ///     c.len()
    /// });
    /// assert!(len == 2 || len == 10);
    /// writer.join().unwrap();
    /// ```
    #[doc(alias = "RLock")]
    #[inline]
    pub fn read_async(&self) -> RwMutexReadFuture<'_, T> {
        RwMutexReadFuture {
            lock: self,
            wait: AsyncWait::new(),
            done: false,
        }
    }

    /// Locks for writing from an async task (Go's `Lock`, awaited): first the writer lock
    /// (the same [`Mutex`](crate::Mutex) queue blocked writers wait in, with its bounded
    /// waits), then the announcement — from which moment new readers wait — and the wait for
    /// the readers inside to leave, exactly as [`write`](Self::write).
    ///
    /// The [`AsyncRwMutexWriteGuard`] it returns is `Send` (when `T: Send + Sync`).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while it waits for the writer lock gives up its place (or the
    /// writer lock, if it was handed over). Dropping it while it waits for readers to leave
    /// withdraws the announcement as a timed-out [`try_write_for`](Self::try_write_for) does:
    /// the readers that queued behind it are let in and the next writer may announce itself.
    /// If the last reader had already left, the write lock it got is released.
    ///
    /// See [`read_async`](Self::read_async) for when to prefer it over the blocking form and
    /// over `tokio::sync::RwLock`.
    ///
    /// ```
    /// use gosync::RwMutex;
    ///
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::sync::Arc;
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct T(std::thread::Thread);
    /// #     impl Wake for T { fn wake(self: Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(Arc::new(T(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// let seen = RwMutex::new(Vec::new());
    /// block_on(async {
    ///     let mut w = seen.write_async().await;
    ///     w.push(1);
    /// });
    /// assert_eq!(*seen.read(), [1]);
    /// ```
    #[doc(alias = "Lock")]
    #[inline]
    pub fn write_async(&self) -> RwMutexWriteFuture<'_, T> {
        RwMutexWriteFuture {
            lock: self,
            writer: AsyncLock::new(),
            wait: AsyncWait::new(),
            phase: WritePhase::Writer,
        }
    }
}

/// Future returned by [`RwMutex::read_async`]; resolves to an [`AsyncRwMutexReadGuard`].
///
/// `Send` when `T: Send + Sync`; not `Unpin` (it holds its queue node in place while
/// waiting). Dropping it before it completes is safe at any point (see `read_async`'s cancel
/// safety).
#[must_use = "futures do nothing unless polled"]
pub struct RwMutexReadFuture<'a, T: ?Sized> {
    lock: &'a RwMutex<T>,
    /// Our place in the lock's reader queue and count.
    wait: AsyncWait,
    /// The guard has been handed out.
    done: bool,
}

impl<'a, T: ?Sized> Future for RwMutexReadFuture<'a, T> {
    type Output = AsyncRwMutexReadGuard<'a, T>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `wait` is structurally pinned (never moved out); the rest is plain data.
        let this = unsafe { self.get_unchecked_mut() };
        assert!(!this.done, "RwMutexReadFuture polled after completion");
        // SAFETY: `this.wait` is pinned inside the future, polled with this lock only, and the
        // drop below cancels it if the future gives up before `Ready`.
        match unsafe { this.lock.raw.poll_read_async(&this.wait, cx) } {
            Poll::Ready(()) => {
                this.done = true;
                Poll::Ready(AsyncRwMutexReadGuard {
                    lock: this.lock,
                    _marker: PhantomData,
                })
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: ?Sized> Drop for RwMutexReadFuture<'_, T> {
    fn drop(&mut self) {
        if !self.done {
            // A no-op if it was never polled.
            self.lock.raw.cancel_read_async(&self.wait);
        }
    }
}

impl<T: ?Sized> fmt::Debug for RwMutexReadFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwMutexReadFuture")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Where a [`RwMutexWriteFuture`] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WritePhase {
    /// Waiting for the writer lock `w` (or not polled yet).
    Writer,
    /// Holds `w`; announced (or about to be), waiting for the readers inside to leave.
    Drain,
    /// The guard has been handed out.
    Done,
}

/// Future returned by [`RwMutex::write_async`]; resolves to an [`AsyncRwMutexWriteGuard`].
///
/// `Send` when `T: Send + Sync`; not `Unpin`. Dropping it before it completes is safe at any
/// point (see `write_async`'s cancel safety).
#[must_use = "futures do nothing unless polled"]
pub struct RwMutexWriteFuture<'a, T: ?Sized> {
    lock: &'a RwMutex<T>,
    /// Our place in the writer lock's queue (first phase).
    writer: AsyncLock,
    /// Our wait for the readers to drain (second phase).
    wait: AsyncWait,
    phase: WritePhase,
}

impl<'a, T: ?Sized> Future for RwMutexWriteFuture<'a, T> {
    type Output = AsyncRwMutexWriteGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `writer` and `wait` are structurally pinned (never moved out).
        let this = unsafe { self.get_unchecked_mut() };
        let raw = &this.lock.raw;
        if this.phase == WritePhase::Writer {
            // SAFETY: `this.writer` stays where it is.
            let writer = unsafe { Pin::new_unchecked(&mut this.writer) };
            match raw.writer_lock().poll_lock(writer, cx) {
                Poll::Ready(()) => this.phase = WritePhase::Drain,
                Poll::Pending => return Poll::Pending,
            }
        }
        assert!(
            this.phase == WritePhase::Drain,
            "RwMutexWriteFuture polled after completion"
        );
        // SAFETY: we hold `writer_lock()` (phase `Drain`); `this.wait` is pinned, polled with
        // this lock only, and the drop below cancels it if the future gives up before `Ready`.
        match unsafe { raw.poll_write_async(&this.wait, cx) } {
            Poll::Ready(()) => {
                this.phase = WritePhase::Done;
                Poll::Ready(AsyncRwMutexWriteGuard {
                    lock: this.lock,
                    _marker: PhantomData,
                })
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: ?Sized> Drop for RwMutexWriteFuture<'_, T> {
    fn drop(&mut self) {
        let raw = &self.lock.raw;
        match self.phase {
            // A no-op if it never queued.
            WritePhase::Writer => raw.writer_lock().cancel_lock(&mut self.writer),
            // SAFETY: phase `Drain` means we hold `writer_lock()`; cancelling gives it back
            // (and the announcement, or the write lock if we got it meanwhile).
            WritePhase::Drain => unsafe { raw.cancel_write_async(&self.wait) },
            WritePhase::Done => {}
        }
    }
}

impl<T: ?Sized> fmt::Debug for RwMutexWriteFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwMutexWriteFuture")
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

/// Read access to an [`RwMutex`] locked by [`RwMutex::read_async`]; dropping it releases the
/// read lock (Go's `RUnlock`).
///
/// Unlike [`RwMutexReadGuard`](super::RwMutexReadGuard) it is `Send` (when `T: Send + Sync`,
/// like `tokio::sync::RwLockReadGuard`): a task may hold it across `.await` and resume on
/// another thread (Go's RWMutex has no owner thread, so releasing elsewhere is fine).
#[must_use = "if unused the RwMutex will immediately unlock"]
#[clippy::has_significant_drop]
pub struct AsyncRwMutexReadGuard<'a, T: ?Sized> {
    lock: &'a RwMutex<T>,
    /// `Send`/`Sync` follow `&T` (on top of `&RwMutex<T>`'s `T: Send + Sync`).
    _marker: PhantomData<&'a T>,
}

impl<'a, T: ?Sized> AsyncRwMutexReadGuard<'a, T> {
    /// The lock this guard holds.
    #[inline]
    pub fn rwmutex(s: &Self) -> &'a RwMutex<T> {
        s.lock
    }
}

impl<T: ?Sized> Deref for AsyncRwMutexReadGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: a read lock is held for the guard's lifetime, so no `&mut T` exists.
        self.lock.data.with(|p| unsafe { &*p })
    }
}

impl<T: ?Sized> Drop for AsyncRwMutexReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds a read lock and gives it up here. (Async acquisitions are
        // not recorded by the deadlock detector, so the raw unlock is the whole release.)
        unsafe { self.lock.raw.read_unlock() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for AsyncRwMutexReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for AsyncRwMutexReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// Write access to an [`RwMutex`] locked by [`RwMutex::write_async`]; dropping it releases the
/// write lock (Go's `Unlock`) and lets in the readers that queued during the write.
///
/// `Send` and `Sync` when `T: Send + Sync` (like `tokio::sync::RwLockWriteGuard`).
#[must_use = "if unused the RwMutex will immediately unlock"]
#[clippy::has_significant_drop]
pub struct AsyncRwMutexWriteGuard<'a, T: ?Sized> {
    lock: &'a RwMutex<T>,
    /// `Send`/`Sync` follow `&mut T` (on top of `&RwMutex<T>`'s `T: Send + Sync`).
    _marker: PhantomData<&'a mut T>,
}

impl<'a, T: ?Sized> AsyncRwMutexWriteGuard<'a, T> {
    /// The lock this guard holds.
    #[inline]
    pub fn rwmutex(s: &Self) -> &'a RwMutex<T> {
        s.lock
    }

    /// Turns the write lock into a read lock with no moment in between at which another
    /// writer could get in, as [`RwMutexWriteGuard::downgrade`](super::RwMutexWriteGuard::downgrade).
    ///
    /// ```
    /// use gosync::{AsyncRwMutexWriteGuard, RwMutex};
    ///
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::sync::Arc;
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct T(std::thread::Thread);
    /// #     impl Wake for T { fn wake(self: Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(Arc::new(T(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// let cache = RwMutex::new(0);
    /// block_on(async {
    ///     let mut w = cache.write_async().await;
    ///     *w = 42;
    ///     let r = AsyncRwMutexWriteGuard::downgrade(w);
    ///     assert!(cache.try_read().is_some()); // other readers get in
    ///     assert!(cache.try_write().is_none()); // writers still wait
    ///     assert_eq!(*r, 42);
    /// });
    /// ```
    #[inline]
    pub fn downgrade(s: Self) -> AsyncRwMutexReadGuard<'a, T> {
        let lock = s.lock;
        core::mem::forget(s);
        // SAFETY: `s` held the write lock; the read guard below takes over the read lock.
        unsafe { lock.raw.downgrade() };
        AsyncRwMutexReadGuard {
            lock,
            _marker: PhantomData,
        }
    }
}

impl<T: ?Sized> Deref for AsyncRwMutexWriteGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the write lock is held for the guard's lifetime.
        self.lock.data.with(|p| unsafe { &*p })
    }
}

impl<T: ?Sized> DerefMut for AsyncRwMutexWriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write lock is held and `&mut self` makes this the only reference.
        self.lock.data.with_mut(|p| unsafe { &mut *p })
    }
}

impl<T: ?Sized> Drop for AsyncRwMutexWriteGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds the write lock and gives it up here (not recorded by the
        // deadlock detector, as for the read guard).
        unsafe { self.lock.raw.write_unlock() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for AsyncRwMutexWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for AsyncRwMutexWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
