//! Groups of tasks that fail together (Go's `golang.org/x/sync/errgroup`).

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::any::Any;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Wake;
use std::thread::{self, JoinHandle, Scope};

use super::cancel::CancelToken;
use super::semaphore::{OwnedSemaphorePermit, Semaphore};
use crate::primitive::atomic::{AtomicBool, AtomicUsize, Ordering};

type Panic = Box<dyn Any + Send + 'static>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// State shared by [`ErrGroup`] and [`ScopedErrGroup`].
struct Shared<E> {
    /// The first error and the first panic; later ones are dropped.
    failure: Mutex<(Option<E>, Option<Panic>)>,
    token: CancelToken,
    /// `None` = no limit.
    limit: Mutex<Option<Arc<Semaphore>>>,
    /// Tasks started and not finished.
    active: AtomicUsize,
}

impl<E> Shared<E> {
    fn new() -> Self {
        Shared {
            failure: Mutex::new((None, None)),
            token: CancelToken::new(),
            limit: Mutex::new(None),
            active: AtomicUsize::new(0),
        }
    }

    fn record(&self, outcome: thread::Result<Result<(), E>>) {
        match outcome {
            Ok(Ok(())) => return,
            Ok(Err(e)) => {
                let mut f = lock(&self.failure);
                if f.0.is_none() {
                    f.0 = Some(e);
                }
            }
            Err(p) => {
                let mut f = lock(&self.failure);
                if f.1.is_none() {
                    f.1 = Some(p);
                }
            }
        }
        self.token.cancel();
    }

    /// Runs one task: catches its panic, records its failure, then frees its slot.
    fn run<F: FnOnce() -> Result<(), E>>(&self, f: F, permit: Option<OwnedSemaphorePermit>) {
        self.record(panic::catch_unwind(AssertUnwindSafe(f)));
        self.active.fetch_sub(1, Ordering::Release);
        drop(permit);
    }

    /// Blocks for a slot under the limit. `Ok(None)` when unlimited.
    fn slot(&self) -> Option<OwnedSemaphorePermit> {
        let sem = lock(&self.limit).clone()?;
        assert!(
            sem.size() > 0,
            "errgroup: go() with a limit of 0 would block forever; raise the limit or use try_go"
        );
        Some(sem.acquire_owned(1))
    }

    /// Takes a slot if one is free. `Err(())` when at the limit.
    fn try_slot(&self) -> Result<Option<OwnedSemaphorePermit>, ()> {
        match lock(&self.limit).clone() {
            None => Ok(None),
            Some(sem) => sem.try_acquire_owned(1).map(Some).ok_or(()),
        }
    }

    fn set_limit(&self, n: Option<usize>) {
        let active = self.active.load(Ordering::Acquire);
        if active != 0 {
            panic!(
                "errgroup: modify limit while {active} goroutines in the group are still active"
            );
        }
        *lock(&self.limit) = n.map(|n| Arc::new(Semaphore::new(n)));
    }

    /// After every task finished: cancels the token (as Go's `Wait` does) and reports.
    fn finish(&self) -> Result<(), E> {
        self.token.cancel();
        let (err, p) = {
            let mut f = lock(&self.failure);
            (f.0.take(), f.1.take())
        };
        if let Some(p) = p {
            panic::resume_unwind(p);
        }
        err.map_or(Ok(()), Err)
    }
}

/// A group of threads working on subtasks of one task: [`wait`](Self::wait) returns the first
/// error, and the group's [`CancelToken`] fires as soon as any task fails, so siblings can stop
/// early.
///
/// This is Go's `errgroup.Group` created with `WithContext`: [`go`](Self::go),
/// [`try_go`](Self::try_go), [`set_limit`](Self::set_limit), [`wait`](Self::wait) and a
/// cancellation signal ([`token`](Self::token)). `ErrGroup` is cheaply clonable; clones share
/// the group, so a task can start more tasks.
///
/// For tasks that borrow from the caller's stack use [`ErrGroup::scope`]; for futures use
/// [`AsyncErrGroup`].
///
/// # Differences from Go
///
/// - **Panics are propagated.** A panicking task is caught, cancels the token like an error,
///   and [`wait`](Self::wait) resumes the first panic after all tasks finished (a panic wins
///   over an error). Go's errgroup lets a panic crash the process.
/// - [`wait`](Self::wait) hands the first error out once (`E` need not be `Clone`); a later
///   `wait` reports only failures that happened after it.
/// - Limits are `set_limit(n)` / [`remove_limit`](Self::remove_limit) instead of a negative
///   number. `go` with a limit of 0 panics instead of blocking forever.
/// - The token is cancelled on the first failure and when `wait` returns (as in Go), and stays
///   cancelled.
///
/// # Example
///
/// ```
/// use gosync::x::ErrGroup;
///
/// let g = ErrGroup::new();
/// for i in 0..4 {
///     let token = g.token();
///     g.go(move || {
///         if i == 2 {
///             return Err(format!("task {i} failed"));
///         }
///         token.wait_timeout(std::time::Duration::from_millis(10)); // would stop early
///         Ok(())
///     });
/// }
/// assert_eq!(g.wait(), Err("task 2 failed".to_string()));
/// ```
#[doc(alias = "Group")]
#[doc(alias = "errgroup")]
pub struct ErrGroup<E> {
    shared: Arc<Shared<E>>,
    handles: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl<E> Clone for ErrGroup<E> {
    fn clone(&self) -> Self {
        ErrGroup {
            shared: Arc::clone(&self.shared),
            handles: Arc::clone(&self.handles),
        }
    }
}

impl<E> Default for ErrGroup<E> {
    fn default() -> Self {
        ErrGroup {
            shared: Arc::new(Shared::new()),
            handles: Arc::default(),
        }
    }
}

impl<E: Send + 'static> ErrGroup<E> {
    /// An empty group with no limit.
    #[doc(alias = "WithContext")]
    pub fn new() -> Self {
        Self::default()
    }

    /// The group's cancellation signal: cancelled when a task fails or `wait` returns.
    pub fn token(&self) -> CancelToken {
        self.shared.token.clone()
    }

    /// Limits the number of tasks running at once to `n`; [`go`](Self::go) then blocks until a
    /// slot is free.
    ///
    /// # Panics
    ///
    /// `errgroup: modify limit while N goroutines in the group are still active` (Go's message)
    /// if tasks are running.
    #[doc(alias = "SetLimit")]
    pub fn set_limit(&self, n: usize) {
        self.shared.set_limit(Some(n));
    }

    /// Removes the limit (Go's `SetLimit(-1)`). Panics like [`set_limit`](Self::set_limit).
    pub fn remove_limit(&self) {
        self.shared.set_limit(None);
    }

    /// Runs `f` on a new thread, first blocking until the limit allows another task.
    ///
    /// # Panics
    ///
    /// If the limit is 0 (the call could only block forever).
    #[doc(alias = "Go")]
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let permit = self.shared.slot();
        self.spawn(f, permit);
    }

    /// Runs `f` on a new thread only if the limit allows it right now; returns whether it did.
    #[doc(alias = "TryGo")]
    pub fn try_go<F>(&self, f: F) -> bool
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        match self.shared.try_slot() {
            Ok(permit) => {
                self.spawn(f, permit);
                true
            }
            Err(()) => false,
        }
    }

    fn spawn<F>(&self, f: F, permit: Option<OwnedSemaphorePermit>)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        self.shared.active.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::clone(&self.shared);
        let h = thread::Builder::new()
            .name("gosync-errgroup".into())
            .spawn(move || shared.run(f, permit))
            .expect("errgroup: failed to spawn a thread");
        lock(&self.handles).push(h);
    }

    /// Blocks until every task started so far (including tasks started by tasks) has
    /// finished, cancels the token, and returns the first error.
    ///
    /// # Panics
    ///
    /// Resumes the first panic of a task, if any task panicked.
    #[doc(alias = "Wait")]
    pub fn wait(&self) -> Result<(), E> {
        loop {
            let hs = core::mem::take(&mut *lock(&self.handles));
            if hs.is_empty() {
                break;
            }
            for h in hs {
                // Tasks catch their own panics; a join error cannot carry a task's panic.
                let _ = h.join();
            }
        }
        self.shared.finish()
    }
}

impl<E: Send> ErrGroup<E> {
    /// Runs `f` with a group whose tasks may borrow from the caller's stack (built on
    /// [`std::thread::scope`]); returns after every task finished, with `f`'s result or the
    /// first error.
    ///
    /// # Panics
    ///
    /// Resumes the first panic of a task, or of `f` itself (after cancelling the token and
    /// joining every task).
    ///
    /// ```
    /// use gosync::x::ErrGroup;
    ///
    /// let inputs = vec![1, 2, 3];
    /// let mut outputs = vec![0; 3];
    /// let res: Result<(), String> = ErrGroup::scope(|g| {
    ///     for (i, out) in inputs.iter().zip(outputs.iter_mut()) {
    ///         g.go(move || {
    ///             *out = i * 10;
    ///             Ok(())
    ///         });
    ///     }
    /// });
    /// assert!(res.is_ok());
    /// assert_eq!(outputs, [10, 20, 30]);
    /// ```
    pub fn scope<'env, R, F>(f: F) -> Result<R, E>
    where
        F: for<'scope> FnOnce(ScopedErrGroup<'scope, 'env, E>) -> R,
    {
        let shared = Arc::new(Shared::new());
        let body = thread::scope(|s| {
            let g = ScopedErrGroup {
                scope: s,
                shared: Arc::clone(&shared),
            };
            let r = panic::catch_unwind(AssertUnwindSafe(|| f(g)));
            if r.is_err() {
                shared.token.cancel();
            }
            r
        });
        let res = shared.finish();
        match body {
            Err(p) => panic::resume_unwind(p),
            Ok(r) => res.map(|()| r),
        }
    }
}

impl<E> fmt::Debug for ErrGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrGroup")
            .field("active", &self.shared.active.load(Ordering::Relaxed))
            .field("cancelled", &self.shared.token.is_cancelled())
            .finish()
    }
}

/// The group handed to the closure of [`ErrGroup::scope`]; clonable, so tasks can start tasks.
pub struct ScopedErrGroup<'scope, 'env: 'scope, E> {
    scope: &'scope Scope<'scope, 'env>,
    shared: Arc<Shared<E>>,
}

impl<E> Clone for ScopedErrGroup<'_, '_, E> {
    fn clone(&self) -> Self {
        ScopedErrGroup {
            scope: self.scope,
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<'scope, E: Send + 'scope> ScopedErrGroup<'scope, '_, E> {
    /// The group's cancellation signal.
    pub fn token(&self) -> &CancelToken {
        &self.shared.token
    }

    /// See [`ErrGroup::set_limit`].
    pub fn set_limit(&self, n: usize) {
        self.shared.set_limit(Some(n));
    }

    /// See [`ErrGroup::go`]; the task may borrow anything that outlives the scope.
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'scope,
    {
        let permit = self.shared.slot();
        self.spawn(f, permit);
    }

    /// See [`ErrGroup::try_go`].
    pub fn try_go<F>(&self, f: F) -> bool
    where
        F: FnOnce() -> Result<(), E> + Send + 'scope,
    {
        match self.shared.try_slot() {
            Ok(permit) => {
                self.spawn(f, permit);
                true
            }
            Err(()) => false,
        }
    }

    fn spawn<F>(&self, f: F, permit: Option<OwnedSemaphorePermit>)
    where
        F: FnOnce() -> Result<(), E> + Send + 'scope,
    {
        self.shared.active.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::clone(&self.shared);
        self.scope.spawn(move || shared.run(f, permit));
    }
}

impl<E> fmt::Debug for ScopedErrGroup<'_, '_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedErrGroup")
            .field("active", &self.shared.active.load(Ordering::Relaxed))
            .finish()
    }
}

type Task<'a, E> = Pin<Box<dyn Future<Output = Result<(), E>> + Send + 'a>>;

/// An error group for futures, runtime-agnostic: it collects futures with [`go`](Self::go) and
/// drives them concurrently inside the one future returned by [`wait`](Self::wait) (like
/// `join_all`, polling only the futures that were woken). No spawner is involved, so it works
/// on any executor and the futures may borrow (`'a`). For parallelism across threads, spawn
/// on your runtime inside the futures and await the handles.
///
/// On the first error or panic the token is cancelled, **the remaining futures are dropped**
/// (Rust's cancellation: they stop at their current `.await`), and `wait` returns the error or
/// resumes the panic. With [`set_limit`](Self::set_limit), at most `n` futures are in progress
/// at once; the others start, in order, as earlier ones finish.
///
/// ```
/// use gosync::x::AsyncErrGroup;
///
/// let mut g = AsyncErrGroup::new();
/// for i in 0..3u32 {
///     g.go(async move { if i == 1 { Err(i) } else { Ok(()) } });
/// }
/// # let res = futures_lite_block_on(g.wait());
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     use std::task::{Context, Poll, Wake, Waker};
/// #     struct W(std::thread::Thread);
/// #     impl Wake for W { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
/// #     let waker = Waker::from(std::sync::Arc::new(W(std::thread::current())));
/// #     let mut cx = Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } std::thread::park(); }
/// # }
/// assert_eq!(res, Err(1));
/// ```
pub struct AsyncErrGroup<'a, E> {
    tasks: Vec<Task<'a, E>>,
    limit: Option<usize>,
    token: CancelToken,
}

impl<E> Default for AsyncErrGroup<'_, E> {
    fn default() -> Self {
        AsyncErrGroup {
            tasks: Vec::new(),
            limit: None,
            token: CancelToken::new(),
        }
    }
}

impl<'a, E: 'a> AsyncErrGroup<'a, E> {
    /// An empty group with no limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// The group's cancellation signal (cancelled on the first failure and when `wait` ends).
    pub fn token(&self) -> CancelToken {
        self.token.clone()
    }

    /// At most `n` futures in progress at once (`n == 0` is treated as 1: the futures run one
    /// after another, since a group that can run nothing would never finish).
    pub fn set_limit(&mut self, n: usize) {
        self.limit = Some(n.max(1));
    }

    /// Adds a future to the group. It starts when [`wait`](Self::wait) is polled.
    pub fn go<F>(&mut self, fut: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'a,
    {
        self.tasks.push(Box::pin(fut));
    }

    /// Adds a future only if fewer than the limit are already added (nothing finishes before
    /// `wait`, so this caps the group's size). Returns whether it was added.
    pub fn try_go<F>(&mut self, fut: F) -> bool
    where
        F: Future<Output = Result<(), E>> + Send + 'a,
    {
        if self.limit.is_some_and(|l| self.tasks.len() >= l) {
            return false;
        }
        self.go(fut);
        true
    }

    /// Drives every future to completion; resolves to the first error.
    ///
    /// # Panics
    ///
    /// Resumes the first panic of a future (after dropping the others).
    pub fn wait(self) -> AsyncWaitAll<'a, E> {
        let limit = self.limit.unwrap_or(usize::MAX);
        AsyncWaitAll {
            pending: self.tasks.into(),
            running: Vec::new(),
            limit,
            ready: Arc::new(ReadyQueue::default()),
            token: self.token,
            live: 0,
        }
    }
}

impl<E> fmt::Debug for AsyncErrGroup<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncErrGroup")
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

/// Which running slots were woken, and the waker of the task driving the group.
#[derive(Default)]
struct ReadyQueue {
    ready: Mutex<(Vec<usize>, Option<Waker>)>,
}

/// Waker of one slot: marks the slot ready and wakes the driver.
struct SlotWaker {
    idx: usize,
    queued: AtomicBool,
    queue: Arc<ReadyQueue>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let driver = {
            let mut r = lock(&self.queue.ready);
            r.0.push(self.idx);
            r.1.clone()
        };
        if let Some(w) = driver {
            w.wake();
        }
    }
}

struct Slot<'a, E> {
    task: Option<Task<'a, E>>,
    waker: Arc<SlotWaker>,
}

/// Future returned by [`AsyncErrGroup::wait`].
#[must_use = "futures do nothing unless polled"]
pub struct AsyncWaitAll<'a, E> {
    pending: VecDeque<Task<'a, E>>,
    running: Vec<Slot<'a, E>>,
    limit: usize,
    ready: Arc<ReadyQueue>,
    token: CancelToken,
    /// Slots holding a task.
    live: usize,
}

impl<'a, E> AsyncWaitAll<'a, E> {
    /// Puts the next pending task into a free slot (or a new one) and marks it ready.
    fn start_next(&mut self, free: Option<usize>) {
        let Some(task) = self.pending.pop_front() else {
            return;
        };
        let idx = match free {
            Some(i) => {
                self.running[i].task = Some(task);
                i
            }
            None => {
                let idx = self.running.len();
                let waker = Arc::new(SlotWaker {
                    idx,
                    queued: AtomicBool::new(false),
                    queue: Arc::clone(&self.ready),
                });
                self.running.push(Slot {
                    task: Some(task),
                    waker,
                });
                idx
            }
        };
        self.live += 1;
        self.running[idx].waker.wake_by_ref();
    }

    fn fail(&mut self) {
        self.token.cancel();
        self.pending.clear();
        self.running.clear();
        self.live = 0;
    }
}

impl<E> Future for AsyncWaitAll<'_, E> {
    type Output = Result<(), E>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        let this = self.get_mut();
        if this.running.is_empty() {
            while this.live < this.limit && !this.pending.is_empty() {
                this.start_next(None);
            }
        }
        loop {
            let ready = {
                let mut r = lock(&this.ready.ready);
                match &r.1 {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => r.1 = Some(cx.waker().clone()),
                }
                core::mem::take(&mut r.0)
            };
            if ready.is_empty() {
                break;
            }
            for idx in ready {
                let slot = &mut this.running[idx];
                slot.waker.queued.store(false, Ordering::Release);
                let Some(task) = slot.task.as_mut() else {
                    continue;
                };
                let waker = Waker::from(Arc::clone(&slot.waker));
                let mut tcx = Context::from_waker(&waker);
                match panic::catch_unwind(AssertUnwindSafe(|| task.as_mut().poll(&mut tcx))) {
                    Ok(Poll::Pending) => {}
                    Ok(Poll::Ready(Ok(()))) => {
                        slot.task = None;
                        this.live -= 1;
                        this.start_next(Some(idx));
                    }
                    Ok(Poll::Ready(Err(e))) => {
                        this.fail();
                        return Poll::Ready(Err(e));
                    }
                    Err(p) => {
                        this.fail();
                        panic::resume_unwind(p);
                    }
                }
            }
        }
        if this.live == 0 && this.pending.is_empty() {
            this.token.cancel();
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }
}

impl<E> fmt::Debug for AsyncWaitAll<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncWaitAll")
            .field("running", &self.live)
            .field("pending", &self.pending.len())
            .finish()
    }
}
