//! Go 1.21's `OnceFunc`, `OnceValue` and `OnceValues`: a function that runs at most once,
//! remembers its result — or its panic — and hands it to every caller.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use super::once::{Begin, OnceWait, RawOnce, RunGuard};
use crate::primitive::UnsafeCell;

/// What `f` left behind. Written only by the thread that owns the run (state `RUNNING`), read
/// only after the state is `DONE`, never changed again after that.
enum Slot<T, F> {
    /// Not run yet: the function, waiting.
    Pending(F),
    /// Taken out by the running thread (and, if the initializer was interrupted in a way
    /// that bypassed both outcomes, left so — cannot happen with unwinding panics).
    Running,
    /// `f` returned this.
    Ready(T),
    /// `f` panicked with this payload.
    Panicked(PanicPayload),
}

/// A copy of a panic payload that can be raised again and again. Go re-panics with the very
/// same value; Rust payloads cannot be cloned, so string payloads (what `panic!` makes) are
/// kept with their exact type and text and anything else is reported by description.
#[derive(Clone)]
enum PanicPayload {
    Static(&'static str),
    Owned(String),
    Other,
}

impl PanicPayload {
    fn of(payload: &(dyn Any + Send)) -> Self {
        if let Some(s) = payload.downcast_ref::<&'static str>() {
            Self::Static(s)
        } else if let Some(s) = payload.downcast_ref::<String>() {
            Self::Owned(s.clone())
        } else {
            Self::Other
        }
    }

    #[cold]
    #[track_caller]
    fn raise(&self) -> ! {
        match self {
            Self::Static(s) => panic::panic_any(*s),
            Self::Owned(s) => panic::panic_any(s.clone()),
            Self::Other => panic::panic_any(String::from(
                "gosync: the once-function panicked earlier (with a payload that is not a string)",
            )),
        }
    }
}

/// The engine of `OnceValue`; `OnceFunc` and `OnceValues` are thin views of it.
struct OnceCore<T, F> {
    raw: RawOnce,
    slot: UnsafeCell<Slot<T, F>>,
}

// SAFETY: `slot` is written only by the single thread that owns the run (guaranteed by
// `RawOnce`), which may be any thread (so `F: Send`, and `T: Send` because the value is
// created there and dropped wherever the owner drops it); after `DONE` it is only read, from
// any thread (so `T: Sync`).
unsafe impl<T: Send + Sync, F: Send> Sync for OnceCore<T, F> {}

impl<T, F: FnOnce() -> T> OnceCore<T, F> {
    #[cfg(not(loom))]
    const fn new(f: F) -> Self {
        Self {
            raw: RawOnce::new(),
            slot: UnsafeCell::new(Slot::Pending(f)),
        }
    }

    #[cfg(loom)]
    fn new(f: F) -> Self {
        Self {
            raw: RawOnce::new(),
            slot: UnsafeCell::new(Slot::Pending(f)),
        }
    }

    #[inline]
    #[track_caller]
    fn get(&self, what: &'static str) -> &T {
        if self.raw.is_done() {
            // SAFETY: `DONE` (acquire) is stored only after `Slot::Ready` was written, and the
            // slot never changes after that.
            return unsafe { self.ready_unchecked() };
        }
        self.get_slow(what)
    }

    /// # Safety
    ///
    /// The state must be `DONE` (observed with acquire ordering or set by this thread).
    #[inline(always)]
    unsafe fn ready_unchecked(&self) -> &T {
        // SAFETY: per the contract the slot is final and read-only from now on.
        match unsafe { &*self.slot.with(|p| p) } {
            Slot::Ready(v) => v,
            // `DONE` implies `Ready` (a panic ends in `PANICKED`, and `run_owned` marks the run
            // complete only once the slot holds its outcome). Checked all the same: a broken
            // invariant is a panic here, not undefined behaviour, for the cost of one compare.
            _ => unreachable!("once-function done without result"),
        }
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn get_slow(&self, what: &'static str) -> &T {
        self.run(what);
        // SAFETY: the run is over (by us or another thread; `begin` returned with acquire
        // ordering), so the slot is final and read-only.
        match unsafe { &*self.slot.with(|p| p) } {
            Slot::Ready(v) => v,
            Slot::Panicked(p) => p.raise(),
            Slot::Pending(_) | Slot::Running => unreachable!("once-function done without result"),
        }
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn run(&self, what: &'static str) {
        if let Some(run) = self.raw.begin(what) {
            self.run_owned(run);
        }
    }

    /// The value, computing it on the first call; waits asynchronously while another thread
    /// or task computes it.
    async fn get_async(&self, what: &'static str) -> &T {
        if !self.raw.is_done() {
            let begin = Begin {
                wait: OnceWait::new(&self.raw),
                // `f` runs inside this poll, on this thread.
                record_owner: true,
                what,
            };
            if let Some(run) = begin.await {
                self.run_owned(run);
            }
        }
        // SAFETY: the run is over (by us or another thread/task, observed with acquire
        // ordering in `begin`), so the slot is final and read-only.
        match unsafe { &*self.slot.with(|p| p) } {
            Slot::Ready(v) => v,
            Slot::Panicked(p) => p.raise(),
            Slot::Pending(_) | Slot::Running => unreachable!("once-function done without result"),
        }
    }

    /// Runs `f` for the run this thread owns.
    #[track_caller]
    fn run_owned(&self, mut run: RunGuard<'_>) {
        // SAFETY: we own the run (state RUNNING, only we write the slot).
        let f = match unsafe {
            self.slot
                .with_mut(|p| std::mem::replace(&mut *p, Slot::Running))
        } {
            Slot::Pending(f) => f,
            _ => unreachable!("once-function run twice"),
        };
        // `f` is consumed (and with it everything it captured) whatever happens: Go 1.25 drops
        // the function after the first call even if it panicked.
        let outcome = panic::catch_unwind(AssertUnwindSafe(f));
        let (slot, payload) = match outcome {
            Ok(v) => (Slot::Ready(v), None),
            Err(payload) => (Slot::Panicked(PanicPayload::of(&*payload)), Some(payload)),
        };
        // SAFETY: still the owner of the run.
        unsafe { self.slot.with_mut(|p| *p = slot) };
        // Only now, with the outcome in the slot, is the run complete (Go: a panic counts as
        // done; every later call re-panics). Any panic before this point would have left the
        // run incomplete, never `DONE` over a slot without a value.
        run.complete = true;
        run.panicked = payload.is_some();
        drop(run); // DONE, wake the waiters: they will re-panic from the slot
        if let Some(payload) = payload {
            // The first caller gets the original panic, with the original payload.
            panic::resume_unwind(payload);
        }
    }

    fn is_done(&self) -> bool {
        self.raw.is_finished()
    }

    fn fmt_with(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result
    where
        T: fmt::Debug,
    {
        let mut d = f.debug_struct(name);
        if self.raw.is_finished() {
            // SAFETY: final state, the slot is read-only from now on.
            match unsafe { &*self.slot.with(|p| p) } {
                Slot::Ready(v) => d.field("value", v),
                _ => d.field("value", &format_args!("<panicked>")),
            };
        } else {
            d.field("value", &format_args!("<not yet run>"));
        }
        d.finish()
    }
}

/// A function that runs at most once: Go 1.21's `sync.OnceFunc`.
///
/// [`call`](Self::call) runs `f` the first time and does nothing afterwards. If `f` panicked,
/// **every** call panics with the same message (unlike [`Once`](crate::Once), which
/// swallows the panic for later callers). `f` is dropped after its one run.
///
/// ```
/// use gosync::OnceFunc;
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// static CALLS: AtomicU32 = AtomicU32::new(0);
/// let setup = OnceFunc::new(|| {
///     CALLS.fetch_add(1, Ordering::Relaxed);
/// });
/// setup.call();
/// setup.call();
/// assert_eq!(CALLS.load(Ordering::Relaxed), 1);
/// ```
///
/// With a plain function the type is nameable and `new` is `const`, so it can be a `static`:
/// `static SETUP: OnceFunc = OnceFunc::new(setup_logging);`.
///
/// # Differences from Go
///
/// Go returns a closure; here it is a value with a `call` method. Panic payloads that are
/// strings are re-raised with the same type and text; other payload types reach the first
/// caller intact and later callers as a descriptive `String`. Calling it from inside `f`
/// panics (Go deadlocks).
#[doc(alias = "sync.OnceFunc")]
pub struct OnceFunc<F = fn()> {
    core: OnceCore<(), F>,
}

impl<F: FnOnce()> OnceFunc<F> {
    /// Wraps `f`; nothing runs until the first [`call`](Self::call).
    #[cfg(not(loom))]
    #[must_use]
    pub const fn new(f: F) -> Self {
        Self {
            core: OnceCore::new(f),
        }
    }

    /// Wraps `f`; nothing runs until the first [`call`](Self::call).
    #[cfg(loom)]
    #[must_use]
    pub fn new(f: F) -> Self {
        Self {
            core: OnceCore::new(f),
        }
    }

    /// Runs `f` if it has not run; otherwise waits for the run to finish. Re-panics with `f`'s
    /// panic message if `f` panicked.
    #[inline]
    #[track_caller]
    pub fn call(&self) {
        self.core.get("OnceFunc::call");
    }

    /// Whether `f` has run (returned or panicked).
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.core.is_done()
    }
}

impl<F> fmt::Debug for OnceFunc<F>
where
    F: FnOnce(),
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt_with("OnceFunc", f)
    }
}

/// A value computed at most once, on first use: Go 1.21's `sync.OnceValue`.
///
/// [`get`](Self::get) runs `f` the first time and returns a reference to its result from then
/// on. If `f` panicked, **every** call panics with the same message. `f` is dropped after its
/// one run.
///
/// ```
/// use gosync::OnceValue;
///
/// fn load_config() -> String {
///     "debug=true".to_string()
/// }
/// static CONFIG: OnceValue<String> = OnceValue::new(load_config);
///
/// assert_eq!(CONFIG.get(), "debug=true");
/// assert!(CONFIG.is_done());
/// ```
///
/// It is also Rust's `LazyLock`: it derefs to the value (computing it on first use), and
/// [`OnceValue::force`] is `LazyLock::force`.
///
/// ```
/// use std::collections::HashMap;
/// use gosync::OnceValue;
///
/// static PORTS: OnceValue<HashMap<&str, u16>> =
///     OnceValue::new(|| HashMap::from([("http", 80), ("https", 443)]));
///
/// assert_eq!(PORTS["https"], 443); // `Deref`, like `LazyLock`
/// assert_eq!(OnceValue::force(&PORTS).len(), 2);
/// ```
///
/// # Differences from `std::sync::LazyLock`
///
/// `LazyLock` poisons on panic (later calls panic with a generic "poisoned" message); this one
/// re-raises `f`'s own message, as Go does. Re-entrant `get` from inside `f` panics with a
/// clear message (std deadlocks or panics depending on version).
#[doc(alias = "sync.OnceValue")]
#[doc(alias = "LazyLock")]
pub struct OnceValue<T, F = fn() -> T> {
    core: OnceCore<T, F>,
}

impl<T, F: FnOnce() -> T> OnceValue<T, F> {
    /// Wraps `f`; nothing runs until the first [`get`](Self::get).
    #[cfg(not(loom))]
    #[must_use]
    pub const fn new(f: F) -> Self {
        Self {
            core: OnceCore::new(f),
        }
    }

    /// Wraps `f`; nothing runs until the first [`get`](Self::get).
    #[cfg(loom)]
    #[must_use]
    pub fn new(f: F) -> Self {
        Self {
            core: OnceCore::new(f),
        }
    }

    /// The value, computing it on the first call. Re-panics with `f`'s panic message if `f`
    /// panicked.
    #[inline]
    #[track_caller]
    pub fn get(&self) -> &T {
        self.core.get("OnceValue::get")
    }

    /// The value, computing it on the first call, for async code: while another thread or
    /// task computes it, the task waits without blocking its thread (in the same queue as
    /// threads blocked in [`get`](Self::get)). If this call computes it, `f` runs right here,
    /// inside the poll. Re-panics with `f`'s panic message if `f` panicked.
    ///
    /// ```
    /// use gosync::OnceValue;
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
    /// static TABLE: OnceValue<Vec<u64>> = OnceValue::new(|| (0..1000).map(|i| i * i).collect());
    ///
    /// let len = block_on(async { TABLE.get_or_init_async().await.len() });
    /// assert_eq!(len, 1000);
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future while it waits removes it from the queue; nothing else changes.
    pub async fn get_or_init_async(&self) -> &T {
        if self.core.raw.is_done() {
            // SAFETY: `DONE` observed with acquire ordering.
            return unsafe { self.core.ready_unchecked() };
        }
        self.core.get_async("OnceValue::get_or_init_async").await
    }

    /// The value, computing it on the first call: `LazyLock::force`, as an associated
    /// function so that it cannot clash with a method of `T` reached through `Deref`.
    #[inline]
    #[track_caller]
    pub fn force(this: &Self) -> &T {
        this.core.get("OnceValue::force")
    }

    /// Whether `f` has run (returned or panicked).
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.core.is_done()
    }
}

/// Computes the value on first use and derefs to it, like `LazyLock` (the same as
/// [`get`](OnceValue::get); re-panics with `f`'s message if `f` panicked).
impl<T, F: FnOnce() -> T> std::ops::Deref for OnceValue<T, F> {
    type Target = T;
    #[inline]
    #[track_caller]
    fn deref(&self) -> &T {
        self.core.get("OnceValue::deref")
    }
}

impl<T: fmt::Debug, F: FnOnce() -> T> fmt::Debug for OnceValue<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt_with("OnceValue", f)
    }
}

/// A pair of results computed at most once: Go 1.21's `sync.OnceValues`, in Rust's shape —
/// `f` returns a `Result` and [`get`](Self::get) hands out `Result<&T, &E>`.
///
/// The result, `Ok` or `Err`, is cached: an error is not retried (that is Go's semantics; use
/// [`TryOnce`](crate::TryOnce) to retry). A panic in `f` re-panics on every call.
///
/// ```
/// use gosync::OnceValues;
///
/// let port = OnceValues::new(|| "8080".parse::<u16>());
/// assert_eq!(port.get(), Ok(&8080));
///
/// let bad = OnceValues::new(|| "eighty".parse::<u16>());
/// assert!(bad.get().is_err());
/// assert!(bad.get().is_err()); // cached, not re-run
/// ```
#[doc(alias = "sync.OnceValues")]
pub struct OnceValues<T, E, F = fn() -> Result<T, E>> {
    core: OnceCore<Result<T, E>, F>,
}

impl<T, E, F: FnOnce() -> Result<T, E>> OnceValues<T, E, F> {
    /// Wraps `f`; nothing runs until the first [`get`](Self::get).
    #[cfg(not(loom))]
    #[must_use]
    pub const fn new(f: F) -> Self {
        Self {
            core: OnceCore::new(f),
        }
    }

    /// Wraps `f`; nothing runs until the first [`get`](Self::get).
    #[cfg(loom)]
    #[must_use]
    pub fn new(f: F) -> Self {
        Self {
            core: OnceCore::new(f),
        }
    }

    /// The result, computing it on the first call. Re-panics with `f`'s panic message if `f`
    /// panicked.
    #[inline]
    #[track_caller]
    pub fn get(&self) -> Result<&T, &E> {
        self.core.get("OnceValues::get").as_ref()
    }

    /// Whether `f` has run (returned or panicked).
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.core.is_done()
    }
}

impl<T: fmt::Debug, E: fmt::Debug, F: FnOnce() -> Result<T, E>> fmt::Debug for OnceValues<T, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt_with("OnceValues", f)
    }
}
