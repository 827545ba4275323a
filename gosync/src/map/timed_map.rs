//! [`TimedMap`]: a concurrent map whose entries expire after a per-entry time to live.

use core::borrow::Borrow;
use core::fmt;
use core::hash::Hash;
use core::time::Duration;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::lock::{read, write, RwLock};
use crate::primitive::{now, Instant};

/// Why an entry left a [`TimedMap`]; passed to the expiry callback (ttlcache's
/// `EvictionReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpiryReason {
    /// Its time to live ran out.
    Expired,
    /// [`TimedMap::remove`] or [`TimedMap::clear`] removed it.
    Removed,
    /// [`TimedMap::insert`] replaced its value.
    Replaced,
}

type Callback<K, V> = Box<dyn Fn(&K, &V, ExpiryReason) + Send + Sync>;

struct Entry<V> {
    value: V,
    deadline: Instant,
    /// Tie-breaker in the expiry index, unique per insert/refresh.
    seq: u64,
}

/// Guarded by `Shared::state`. Invariant: `index` holds exactly one `(deadline, seq) → key` per
/// entry of `map`, with the entry's current `deadline` and `seq` (a refresh moves it; there are
/// never stale duplicates to skip).
struct State<K, V> {
    map: HashMap<K, Entry<V>>,
    index: BTreeMap<(Instant, u64), K>,
    seq: u64,
}

/// What the sweeper is asked to do, guarded by `Shared::wake`.
struct Wake {
    /// An earlier deadline that an insert published since the sweeper last looked.
    pending: Option<Instant>,
    stop: bool,
}

struct Shared<K, V> {
    state: RwLock<State<K, V>>,
    on_expiry: Option<Callback<K, V>>,
    wake: Mutex<Wake>,
    wake_cv: Condvar,
}

/// A concurrent map whose entries expire after a per-entry time to live (Go's `timedmap` /
/// `ttlcache`).
///
/// ```
/// use gosync::map::{ExpiryReason, TimedMap};
/// use std::time::Duration;
///
/// let m = TimedMap::with_callback(|k: &&str, v: &i32, why| println!("{k}={v} left: {why:?}"));
/// m.insert("session", 42, Duration::from_secs(60));
/// assert_eq!(m.get("session"), Some(42));
/// m.refresh("session", Duration::from_secs(120)); // extend
/// assert_eq!(m.remove("session"), Some(42)); // callback: Removed
/// ```
///
/// # Behaviour
///
/// - **Reads never take the write lock**: [`get`](Self::get) read-locks, and treats an entry
///   whose deadline has passed as absent even before the sweeper removes it. Reads do not
///   extend the TTL (use [`refresh`](Self::refresh)).
/// - **One sweeper thread per map**, started by the constructor and stopped (and joined) when
///   the map drops: nothing to forget to start or stop. It sleeps until the earliest deadline
///   (an insert with an earlier deadline wakes it), removes everything that expired under one
///   write lock, then runs the callbacks after releasing it.
/// - **Callbacks run outside every lock**, with the reason ([`ExpiryReason`]): `Expired` on
///   the sweeper thread, `Removed`/`Replaced` on the thread that called `remove`/`clear`/
///   `insert`. A callback may therefore call the map. A panic in a callback on the sweeper
///   thread is caught and the sweeper keeps going. Entries still present when the map drops get
///   no callback.
/// - **No duplicate timers**: the expiry index holds exactly one slot per entry; a refresh
///   moves it.
/// - [`len`](Self::len) is exact: entries whose deadline passed are not counted, swept or not.
///
/// Differences from Go's timedmap: reads take the read lock (timedmap's `get` takes the write
/// lock), callbacks run outside the lock (timedmap runs them under it), and the cleaner needs
/// no `StartCleaner`/`StopCleaner`.
///
/// # State layout
///
/// `state: RwLock<{ map: K → (value, deadline, seq), index: (deadline, seq) → K }>`;
/// `wake: Mutex<{ pending earliest deadline, stop }>` + a condvar for the sweeper.
/// Lock order: `state` is always released before `wake` is taken.
pub struct TimedMap<K, V> {
    shared: Arc<Shared<K, V>>,
    sweeper: Option<JoinHandle<()>>,
}

impl<K, V> TimedMap<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// An empty map without an expiry callback.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// An empty map that calls `on_expiry(key, value, reason)` whenever an entry leaves it.
    pub fn with_callback<F>(on_expiry: F) -> Self
    where
        F: Fn(&K, &V, ExpiryReason) + Send + Sync + 'static,
    {
        Self::build(Some(Box::new(on_expiry)))
    }

    fn build(on_expiry: Option<Callback<K, V>>) -> Self {
        let shared = Arc::new(Shared {
            state: RwLock::new(State {
                map: HashMap::new(),
                index: BTreeMap::new(),
                seq: 0,
            }),
            on_expiry,
            wake: Mutex::new(Wake {
                pending: None,
                stop: false,
            }),
            wake_cv: Condvar::new(),
        });
        let for_thread = Arc::clone(&shared);
        let sweeper = std::thread::Builder::new()
            .name("gosync-timedmap-sweeper".into())
            .spawn(move || sweep(&for_thread))
            .expect("gosync::TimedMap: could not spawn the sweeper thread");
        TimedMap {
            shared,
            sweeper: Some(sweeper),
        }
    }
}

impl<K, V> Default for TimedMap<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

/// The sweeper thread's loop.
fn sweep<K: Hash + Eq, V>(shared: &Shared<K, V>) {
    loop {
        let expired = {
            let mut st = write(&shared.state);
            take_expired(&mut st, now())
        };
        if let Some(cb) = &shared.on_expiry {
            for (k, v) in &expired {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    cb(k, v, ExpiryReason::Expired)
                }));
                drop(r); // a panicking callback must not stop expiry for everyone else
            }
        }
        drop(expired);
        let next = read(&shared.state).index.keys().next().map(|&(d, _)| d);
        let mut w = shared.wake.lock().unwrap_or_else(PoisonError::into_inner);
        if w.stop {
            return;
        }
        let target = match (next, w.pending.take()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match target {
            None => {
                drop(
                    shared
                        .wake_cv
                        .wait(w)
                        .unwrap_or_else(PoisonError::into_inner),
                );
            }
            Some(t) => {
                let wait = t.saturating_duration_since(now());
                if !wait.is_zero() {
                    drop(
                        shared
                            .wake_cv
                            .wait_timeout(w, wait)
                            .unwrap_or_else(PoisonError::into_inner),
                    );
                }
            }
        }
    }
}

/// Removes every entry whose deadline is `<= at`.
fn take_expired<K: Hash + Eq, V>(st: &mut State<K, V>, at: Instant) -> Vec<(K, V)> {
    let mut out = Vec::new();
    while let Some(entry) = st.index.first_entry() {
        if entry.key().0 > at {
            break;
        }
        let key = entry.remove();
        if let Some(e) = st.map.remove(&key) {
            out.push((key, e.value));
        }
    }
    out
}

impl<K: Hash + Eq, V> TimedMap<K, V> {
    fn notify(&self, reason: ExpiryReason, gone: &[(K, V)]) {
        if let Some(cb) = &self.shared.on_expiry {
            for (k, v) in gone {
                cb(k, v, reason);
            }
        }
    }

    /// Inserts `key → value`, expiring `ttl` from now. Returns the previous value if it had not
    /// expired (the callback then gets it with [`ExpiryReason::Replaced`]).
    #[doc(alias = "Set")]
    pub fn insert(&self, key: K, value: V, ttl: Duration) -> Option<V>
    where
        K: Clone,
    {
        let t = now();
        let deadline = t + ttl;
        let (previous, earliest) = {
            let mut st = write(&self.shared.state);
            st.seq += 1;
            let seq = st.seq;
            st.index.insert((deadline, seq), key.clone());
            let previous = st
                .map
                .insert(
                    key.clone(),
                    Entry {
                        value,
                        deadline,
                        seq,
                    },
                )
                .inspect(|old| {
                    st.index.remove(&(old.deadline, old.seq));
                });
            let earliest = st.index.keys().next() == Some(&(deadline, seq));
            (previous, earliest)
        };
        if earliest {
            let mut w = self
                .shared
                .wake
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if w.pending.map_or(true, |p| deadline < p) {
                w.pending = Some(deadline);
                self.shared.wake_cv.notify_one();
            }
        }
        let previous = previous?;
        let reason = if previous.deadline <= t {
            ExpiryReason::Expired
        } else {
            ExpiryReason::Replaced
        };
        let gone = [(key, previous.value)];
        self.notify(reason, &gone);
        let [(_, old)] = gone;
        (reason == ExpiryReason::Replaced).then_some(old)
    }

    /// The value for `key`, if present and not expired. Takes only the read lock.
    #[doc(alias = "GetValue")]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let t = now();
        let st = read(&self.shared.state);
        st.map
            .get(key)
            .filter(|e| e.deadline > t)
            .map(|e| e.value.clone())
    }

    /// Whether `key` is present and not expired.
    #[doc(alias = "Contains")]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let t = now();
        let st = read(&self.shared.state);
        st.map.get(key).is_some_and(|e| e.deadline > t)
    }

    /// Time left before `key` expires.
    #[doc(alias = "GetExpires")]
    pub fn ttl<Q>(&self, key: &Q) -> Option<Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let t = now();
        let st = read(&self.shared.state);
        st.map
            .get(key)
            .filter(|e| e.deadline > t)
            .map(|e| e.deadline - t)
    }

    /// Removes `key`, returning its value if it had not expired (the callback then gets
    /// [`ExpiryReason::Removed`]).
    #[doc(alias = "Remove")]
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let t = now();
        let (k, e) = {
            let mut st = write(&self.shared.state);
            let (k, e) = st.map.remove_entry(key)?;
            st.index.remove(&(e.deadline, e.seq));
            (k, e)
        };
        let reason = if e.deadline <= t {
            ExpiryReason::Expired
        } else {
            ExpiryReason::Removed
        };
        let gone = [(k, e.value)];
        self.notify(reason, &gone);
        let [(_, v)] = gone;
        (reason == ExpiryReason::Removed).then_some(v)
    }

    /// Gives `key` a new time to live from now; `false` if it is absent or already expired.
    #[doc(alias = "Refresh")]
    pub fn refresh<Q>(&self, key: &Q, ttl: Duration) -> bool
    where
        K: Borrow<Q> + Clone,
        Q: Hash + Eq + ?Sized,
    {
        let t = now();
        let deadline = t + ttl;
        let earliest = {
            let mut st = write(&self.shared.state);
            st.seq += 1;
            let seq = st.seq;
            let Some(e) = st.map.get_mut(key) else {
                return false;
            };
            if e.deadline <= t {
                return false;
            }
            let old = (e.deadline, e.seq);
            e.deadline = deadline;
            e.seq = seq;
            let k = st.index.remove(&old).expect("TimedMap index out of sync");
            st.index.insert((deadline, seq), k);
            st.index.keys().next() == Some(&(deadline, seq))
        };
        if earliest {
            let mut w = self
                .shared
                .wake
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if w.pending.map_or(true, |p| deadline < p) {
                w.pending = Some(deadline);
                self.shared.wake_cv.notify_one();
            }
        }
        true
    }

    /// Number of entries that have not expired.
    #[doc(alias = "Size")]
    pub fn len(&self) -> usize {
        let t = now();
        let st = read(&self.shared.state);
        let expired = st.index.range(..(t, u64::MAX)).count();
        st.map.len() - expired
    }

    /// Whether [`len`](Self::len) is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry; the callback gets each one with [`ExpiryReason::Removed`] (or
    /// `Expired` if its deadline had passed).
    #[doc(alias = "Flush")]
    pub fn clear(&self) {
        let t = now();
        let old = {
            let mut st = write(&self.shared.state);
            st.index.clear();
            core::mem::take(&mut st.map)
        };
        if let Some(cb) = &self.shared.on_expiry {
            for (k, e) in &old {
                let reason = if e.deadline <= t {
                    ExpiryReason::Expired
                } else {
                    ExpiryReason::Removed
                };
                cb(k, &e.value, reason);
            }
        }
    }
}

impl<K, V> Drop for TimedMap<K, V> {
    fn drop(&mut self) {
        {
            let mut w = self
                .shared
                .wake
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            w.stop = true;
            self.shared.wake_cv.notify_all();
        }
        if let Some(h) = self.sweeper.take() {
            // If the last handle drops inside a callback on the sweeper itself, it exits on its
            // own at the next loop turn; joining would wait for ourselves.
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for TimedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = read(&self.shared.state);
        f.debug_map()
            .entries(st.map.iter().map(|(k, e)| (k, &e.value)))
            .finish()
    }
}
