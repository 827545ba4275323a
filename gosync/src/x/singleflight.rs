//! Duplicate-call suppression (Go's `golang.org/x/sync/singleflight.Group`).

use core::fmt;
use core::future::Future;
use core::hash::Hash;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::any::Any;
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::cancel::WakerSet;
use crate::diag::{Sleep, Sleeping};

/// Collapses concurrent calls for the same key into one execution whose result every caller
/// shares — the fix for cache stampedes.
///
/// [`run`](Self::run) is Go's `Do`: the first caller for a key (the *leader*) runs `f`; callers
/// that arrive while it runs wait and receive a clone of its result. The returned `bool` is Go's
/// `shared`: whether the value was given to more than one caller. Once the call completes, the
/// key is free again and the next `run` executes `f` anew (nothing is cached; put a cache in
/// front for that). [`forget`](Self::forget) makes the next caller start a fresh execution
/// without waiting for the running one. Errors are values: use `V = Result<T, E>` with
/// `E: Clone` (for example `Arc<MyError>`).
///
/// Blocking callers ([`run`](Self::run)) and async callers ([`run_async`](Self::run_async)) of
/// the same key share one execution.
///
/// # Panics
///
/// If `f` panics, the panic reaches **every** caller waiting for that execution: the leader
/// resumes the original panic, and each waiter panics with the same message (as Go re-panics
/// in every waiter). The key is freed, so a later call runs `f` again.
///
/// # Cancellation of the leader (async)
///
/// Go cannot cancel a goroutine, so its leader always finishes. In Rust, the future of an async
/// leader can be dropped (a timeout, a `select!`, a closed connection). Here **a waiter takes
/// over**: the execution is marked vacant, every waiter is woken, and the first one to run runs
/// its *own* `f` as the new leader; the others keep waiting for it. Nobody fails and nobody is
/// stranded. When no waiter is left, the key is simply freed.
///
/// Why take-over rather than letting the work continue detached: continuing would need the
/// leader's future to be `'static + Send` and either a spawner (tying the library to one
/// runtime) or waiters polling someone else's future. With take-over the work always runs
/// inside a caller that still wants the result, `f` may borrow from that caller, and no runtime
/// is needed. The cost is that the leader's partial work is redone.
///
/// # Differences from Go
///
/// - `V: Clone` instead of `interface{}`; no separate `error` (make `V` a `Result`).
/// - No `DoChan`: use [`run_async`](Self::run_async) (it can be raced with a timeout, and a
///   dropped waiter just leaves).
/// - Waiters' panics carry the leader's message but not its payload type or backtrace.
///
/// # State
///
/// A `Mutex<HashMap<K, Arc<Call>>>` of in-flight calls. Each `Call` has its own mutex holding
/// the outcome (`Running`, `Vacant` after an async leader was dropped, `Done(v)`, `Panicked`),
/// the number of callers waiting for it (the leader's `shared` is `waiting > 0`), a condvar
/// for blocking waiters and a waker set for async ones. Lock order: the map, then a call.
/// Invariant: a call is in the map until its outcome is final (or it is forgotten, or it went
/// vacant with no waiter); a completing leader removes only its own call (pointer equality), so
/// [`forget`](Self::forget) followed by a new call is never undone (golang/go#31420).
///
/// # Example
///
/// ```
/// use gosync::x::SingleFlight;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let group = Arc::new(SingleFlight::<String, u64>::new());
/// let computed = Arc::new(AtomicUsize::new(0));
/// let readers: Vec<_> = (0..8)
///     .map(|_| {
///         let (group, computed) = (group.clone(), computed.clone());
///         std::thread::spawn(move || {
///             group.run("answer".to_string(), || {
///                 computed.fetch_add(1, Ordering::SeqCst);
///                 std::thread::sleep(std::time::Duration::from_millis(50));
///                 42
///             })
///         })
///     })
///     .collect();
/// for r in readers {
///     assert_eq!(r.join().unwrap().0, 42);
/// }
/// assert!(computed.load(Ordering::SeqCst) < 8); // usually exactly 1
/// ```
#[doc(alias = "Group")]
#[doc(alias = "singleflight")]
pub struct SingleFlight<K, V> {
    calls: Mutex<HashMap<K, Arc<Call<V>>>>,
}

struct Call<V> {
    state: Mutex<CallState<V>>,
    cond: Condvar,
}

struct CallState<V> {
    outcome: Outcome<V>,
    /// Callers currently waiting for the outcome (Go's `dups`, minus async waiters that left).
    waiting: usize,
    /// Async waiters.
    wakers: WakerSet,
}

enum Outcome<V> {
    Running,
    /// The async leader was dropped; the next waiter to look takes over.
    Vacant,
    /// Finished; `None` when no waiter was left to read the value.
    Done(Option<V>),
    Panicked(Arc<str>),
}

impl<V> Call<V> {
    fn new() -> Arc<Self> {
        Arc::new(Call {
            state: Mutex::new(CallState {
                outcome: Outcome::Running,
                waiting: 0,
                wakers: WakerSet::default(),
            }),
            cond: Condvar::new(),
        })
    }
    fn lock(&self) -> MutexGuard<'_, CallState<V>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
    /// Wakes every blocking and async waiter (with the state lock held by the caller).
    fn wake_all(&self, st: &mut CallState<V>) {
        self.cond.notify_all();
        for w in st.wakers.take_all() {
            w.wake();
        }
    }
}

/// What a caller found when it looked at a call's outcome.
enum Seen<V> {
    Value(V),
    /// Become the leader.
    TakeOver,
    Wait,
}

impl<V: Clone> CallState<V> {
    /// Looks at the outcome as a waiter; on anything but `Wait` the caller stops waiting.
    fn look(&mut self) -> Seen<V> {
        match &self.outcome {
            Outcome::Running => Seen::Wait,
            Outcome::Vacant => {
                self.outcome = Outcome::Running;
                self.waiting -= 1;
                Seen::TakeOver
            }
            Outcome::Done(v) => {
                let v = v
                    .clone()
                    .expect("a waiting caller means the value was kept");
                self.waiting -= 1;
                Seen::Value(v)
            }
            Outcome::Panicked(msg) => {
                let msg = msg.to_string();
                self.waiting -= 1;
                panic::panic_any(msg)
            }
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> Arc<str> {
    if let Some(s) = payload.downcast_ref::<&str>() {
        Arc::from(*s)
    } else if let Some(s) = payload.downcast_ref::<String>() {
        Arc::from(s.as_str())
    } else {
        Arc::from("singleflight: the function panicked with a non-string payload")
    }
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        SingleFlight {
            calls: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, V> SingleFlight<K, V> {
    /// An empty group.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<K: Hash + Eq + Clone, V: Clone> SingleFlight<K, V> {
    fn map(&self) -> MutexGuard<'_, HashMap<K, Arc<Call<V>>>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of keys with an execution in flight.
    pub fn in_flight(&self) -> usize {
        self.map().len()
    }

    /// Number of callers waiting for the execution in flight for `key` (not counting its
    /// leader); 0 when none is in flight.
    pub fn waiters(&self, key: &K) -> usize {
        let map = self.map();
        map.get(key).map_or(0, |c| c.lock().waiting)
    }

    /// Joins the call for `key`, or creates it. Returns the call and whether we lead it.
    fn join(&self, key: &K) -> (Arc<Call<V>>, bool) {
        let mut map = self.map();
        if let Some(call) = map.get(key) {
            let call = Arc::clone(call);
            let mut st = call.lock();
            if let Outcome::Vacant = st.outcome {
                st.outcome = Outcome::Running;
                drop(st);
                return (call, true);
            }
            st.waiting += 1;
            drop(st);
            return (call, false);
        }
        let call = Call::new();
        map.insert(key.clone(), Arc::clone(&call));
        (call, true)
    }

    /// Publishes the leader's outcome, frees the key and returns the leader's result.
    fn complete(&self, key: &K, call: &Arc<Call<V>>, res: std::thread::Result<V>) -> (V, bool) {
        self.remove_if_current(key, call);
        let mut st = call.lock();
        // Every caller still waiting receives this value (blocking waiters never leave).
        let shared = st.waiting > 0;
        match res {
            Ok(v) => {
                let kept = (st.waiting > 0).then(|| v.clone());
                st.outcome = Outcome::Done(kept);
                call.wake_all(&mut st);
                (v, shared)
            }
            Err(payload) => {
                st.outcome = Outcome::Panicked(panic_message(&*payload));
                call.wake_all(&mut st);
                drop(st);
                panic::resume_unwind(payload)
            }
        }
    }

    fn remove_if_current(&self, key: &K, call: &Arc<Call<V>>) {
        let mut map = self.map();
        if map.get(key).is_some_and(|c| Arc::ptr_eq(c, call)) {
            map.remove(key);
        }
    }

    /// The async leader was dropped: hand the call to a waiter, or free the key.
    fn abandon(&self, key: &K, call: &Arc<Call<V>>) {
        let mut map = self.map();
        let mut st = call.lock();
        if st.waiting == 0 {
            if map.get(key).is_some_and(|c| Arc::ptr_eq(c, call)) {
                map.remove(key);
            }
            st.outcome = Outcome::Done(None);
        } else {
            st.outcome = Outcome::Vacant;
            call.wake_all(&mut st);
        }
    }

    /// An async waiter was dropped: stop counting it; free a vacant call nobody waits for.
    fn leave(&self, key: &K, call: &Arc<Call<V>>, waker_key: &mut Option<usize>) {
        let mut map = self.map();
        let mut st = call.lock();
        st.wakers.remove(waker_key);
        st.waiting -= 1;
        if st.waiting == 0 && matches!(st.outcome, Outcome::Vacant) {
            if map.get(key).is_some_and(|c| Arc::ptr_eq(c, call)) {
                map.remove(key);
            }
            st.outcome = Outcome::Done(None);
        }
    }

    /// Runs `f` for `key` unless an execution for `key` is already in flight, in which case it
    /// waits for that execution and returns a clone of its result. The `bool` tells whether
    /// the value was shared with other callers.
    ///
    /// # Panics
    ///
    /// If the execution it waited for panicked (see the type docs).
    #[doc(alias = "Do")]
    pub fn run<F: FnOnce() -> V>(&self, key: K, f: F) -> (V, bool) {
        let (call, lead) = self.join(&key);
        if !lead {
            let mut st = call.lock();
            loop {
                match st.look() {
                    Seen::Value(v) => return (v, true),
                    Seen::TakeOver => break,
                    Seen::Wait => {
                        let _sleeping = Sleeping::begins(Sleep::SingleFlight);
                        st = call.cond.wait(st).unwrap_or_else(PoisonError::into_inner);
                    }
                }
            }
        }
        let res = panic::catch_unwind(AssertUnwindSafe(f));
        self.complete(&key, &call, res)
    }

    /// The async form of [`run`](Self::run): `f` makes the future to run if this caller leads.
    ///
    /// Cancellation-safe: dropping a waiting caller just leaves; dropping the leading caller
    /// hands the execution to one of the waiters, which runs its own `f` (see the type docs).
    /// Runtime-agnostic.
    pub async fn run_async<F, Fut>(&self, key: K, f: F) -> (V, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let (call, lead) = self.join(&key);
        if !lead {
            let waited = WaitCall {
                group: self,
                key: &key,
                call: &call,
                waker_key: None,
                done: false,
            };
            if let Some(v) = waited.await {
                return (v, true);
            }
        }
        let mut guard = LeadGuard {
            group: self,
            key: &key,
            call: &call,
            armed: true,
        };
        let res = CatchUnwind {
            f: Some(f),
            fut: None,
        }
        .await;
        guard.armed = false;
        self.complete(&key, &call, res)
    }

    /// Makes the next call for `key` start a new execution instead of joining the one in
    /// flight. Callers already waiting still receive the old execution's result.
    #[doc(alias = "Forget")]
    pub fn forget(&self, key: &K) {
        self.map().remove(key);
    }
}

impl<K, V> fmt::Debug for SingleFlight<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.calls.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("SingleFlight")
            .field("in_flight", &n)
            .finish()
    }
}

/// Drop guard of an async leader: if dropped while armed, the call is abandoned.
struct LeadGuard<'a, K: Hash + Eq + Clone, V: Clone> {
    group: &'a SingleFlight<K, V>,
    key: &'a K,
    call: &'a Arc<Call<V>>,
    armed: bool,
}

impl<K: Hash + Eq + Clone, V: Clone> Drop for LeadGuard<'_, K, V> {
    fn drop(&mut self) {
        if self.armed {
            self.group.abandon(self.key, self.call);
        }
    }
}

/// An async waiter. Resolves to `Some(value)`, or `None` when this caller must take over.
struct WaitCall<'a, K: Hash + Eq + Clone, V: Clone> {
    group: &'a SingleFlight<K, V>,
    key: &'a K,
    call: &'a Arc<Call<V>>,
    waker_key: Option<usize>,
    /// No longer counted as waiting.
    done: bool,
}

impl<K: Hash + Eq + Clone, V: Clone> Future for WaitCall<'_, K, V> {
    type Output = Option<V>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<V>> {
        let this = &mut *self;
        let mut st = this.call.lock();
        let seen = match panic::catch_unwind(AssertUnwindSafe(|| st.look())) {
            Ok(seen) => seen,
            Err(payload) => {
                // look() already stopped counting us.
                this.done = true;
                st.wakers.remove(&mut this.waker_key);
                drop(st);
                panic::resume_unwind(payload)
            }
        };
        match seen {
            Seen::Wait => {
                st.wakers.register(&mut this.waker_key, cx.waker());
                Poll::Pending
            }
            Seen::Value(v) => {
                this.done = true;
                st.wakers.remove(&mut this.waker_key);
                Poll::Ready(Some(v))
            }
            Seen::TakeOver => {
                this.done = true;
                st.wakers.remove(&mut this.waker_key);
                Poll::Ready(None)
            }
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Drop for WaitCall<'_, K, V> {
    fn drop(&mut self) {
        if !self.done {
            self.group.leave(self.key, self.call, &mut self.waker_key);
        }
    }
}

/// Makes and polls the leader's future, turning a panic into an `Err` for every caller.
struct CatchUnwind<F, Fut> {
    f: Option<F>,
    fut: Option<Fut>,
}

impl<F: FnOnce() -> Fut, Fut: Future> Future for CatchUnwind<F, Fut> {
    type Output = std::thread::Result<Fut::Output>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `fut` is structurally pinned (never moved once created); `f` is not pinned
        // and is only taken out, never referenced while pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let res = panic::catch_unwind(AssertUnwindSafe(|| {
            if let Some(f) = this.f.take() {
                this.fut = Some(f());
            }
            let fut = this
                .fut
                .as_mut()
                .expect("CatchUnwind polled after completion");
            // SAFETY: `fut` lives inside the pinned `self` and is never moved.
            unsafe { Pin::new_unchecked(fut) }.poll(cx)
        }));
        match res {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}
