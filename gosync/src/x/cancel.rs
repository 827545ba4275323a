//! [`CancelToken`]: the cancellation half of Go's `context.Context`, for threads and tasks.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::primitive::atomic::{AtomicBool, Ordering};
use crate::primitive::now;

/// A set of wakers with stable keys, so a future can update or withdraw its registration.
/// Keys stay valid after [`WakerSet::take_all`]; only [`WakerSet::remove`] frees them.
#[derive(Default)]
pub(crate) struct WakerSet {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl WakerSet {
    /// Registers (or refreshes) `waker` under `*key`, allocating a key on first use.
    pub(crate) fn register(&mut self, key: &mut Option<usize>, waker: &Waker) {
        match *key {
            Some(i) => match &mut self.slots[i] {
                Some(old) if old.will_wake(waker) => {}
                slot => *slot = Some(waker.clone()),
            },
            None => {
                let i = match self.free.pop() {
                    Some(i) => {
                        self.slots[i] = Some(waker.clone());
                        i
                    }
                    None => {
                        self.slots.push(Some(waker.clone()));
                        self.slots.len() - 1
                    }
                };
                *key = Some(i);
            }
        }
    }

    /// Withdraws the registration under `*key`, if any.
    pub(crate) fn remove(&mut self, key: &mut Option<usize>) {
        if let Some(i) = key.take() {
            self.slots[i] = None;
            self.free.push(i);
        }
    }

    /// Takes every registered waker (keys stay allocated).
    pub(crate) fn take_all(&mut self) -> Vec<Waker> {
        self.slots.iter_mut().filter_map(Option::take).collect()
    }
}

/// A cheap, clonable cancellation signal shared by a group of threads or tasks.
///
/// Every clone observes the same state. [`cancel`](Self::cancel) is idempotent and wakes every
/// thread blocked in [`wait`](Self::wait) / [`wait_timeout`](Self::wait_timeout) and every task
/// awaiting [`cancelled`](Self::cancelled). [`is_cancelled`](Self::is_cancelled) is a single
/// atomic load, cheap enough to poll in a loop.
///
/// This is the part of Go's `context.Context` that `errgroup.WithContext` uses (`ctx.Done()`,
/// `ctx.Err() != nil`); values and deadlines are left to ordinary Rust code. It works with any
/// async runtime.
///
/// # Example
///
/// ```
/// use gosync::x::CancelToken;
///
/// let token = CancelToken::new();
/// let t2 = token.clone();
/// let worker = std::thread::spawn(move || {
///     let mut rounds = 0;
///     while !t2.is_cancelled() {
///         rounds += 1;
///         t2.wait_timeout(std::time::Duration::from_millis(1));
///     }
///     rounds
/// });
/// token.cancel();
/// worker.join().unwrap();
/// assert!(token.is_cancelled());
/// ```
#[doc(alias = "Context")]
#[doc(alias = "Done")]
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<TokenInner>,
}

#[derive(Default)]
struct TokenInner {
    /// Set once, never cleared.
    cancelled: AtomicBool,
    /// Async waiters; also the mutex `cond` waits with.
    wakers: Mutex<WakerSet>,
    /// Blocking waiters.
    cond: Condvar,
}

impl TokenInner {
    fn lock(&self) -> MutexGuard<'_, WakerSet> {
        self.wakers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether [`cancel`](Self::cancel) has been called on any clone.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        // Acquire: whatever the canceller did before cancelling is visible to an observer.
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Cancels the token: from now on every clone reports cancelled, and all waiters wake.
    #[doc(alias = "CancelFunc")]
    pub fn cancel(&self) {
        if self.inner.cancelled.swap(true, Ordering::AcqRel) {
            return;
        }
        let wakers = {
            let mut set = self.inner.lock();
            self.inner.cond.notify_all();
            set.take_all()
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Blocks the thread until the token is cancelled.
    pub fn wait(&self) {
        let mut set = self.inner.lock();
        while !self.is_cancelled() {
            set = self
                .inner
                .cond
                .wait(set)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Blocks until the token is cancelled or `timeout` passes. Returns whether it is cancelled.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = now().checked_add(timeout);
        let mut set = self.inner.lock();
        while !self.is_cancelled() {
            let left = match deadline {
                Some(d) => match d.checked_duration_since(now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return false,
                },
                None => Duration::from_secs(3600),
            };
            set = self
                .inner
                .cond
                .wait_timeout(set, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// A future that completes when the token is cancelled (Go's `<-ctx.Done()`).
    ///
    /// Dropping it withdraws its registration, so it is fine to create one per `select!` round.
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled {
            token: self,
            key: None,
        }
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Future returned by [`CancelToken::cancelled`].
#[must_use = "futures do nothing unless polled"]
pub struct Cancelled<'a> {
    token: &'a CancelToken,
    key: Option<usize>,
}

impl Future for Cancelled<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.token.is_cancelled() {
            return Poll::Ready(());
        }
        let this = &mut *self;
        let mut set = this.token.inner.lock();
        // Re-check under the lock: cancel() sets the flag before taking the wakers.
        if this.token.is_cancelled() {
            set.remove(&mut this.key);
            return Poll::Ready(());
        }
        set.register(&mut this.key, cx.waker());
        Poll::Pending
    }
}

impl Drop for Cancelled<'_> {
    fn drop(&mut self) {
        if self.key.is_some() {
            self.token.inner.lock().remove(&mut self.key);
        }
    }
}

impl fmt::Debug for Cancelled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancelled")
            .field("cancelled", &self.token.is_cancelled())
            .finish()
    }
}
