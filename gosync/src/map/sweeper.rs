//! The one background thread that expires the entries of every [`TimedMap`](super::TimedMap).
//!
//! A process may create thousands of timed maps; giving each its own thread (as the first
//! version did) costs a stack and a scheduler entry per map even while nothing is due. Instead
//! each map registers the earliest deadline it holds with this shared sweeper, which sleeps
//! until the earliest deadline of all maps, asks that map to remove what has expired, and
//! takes the map's next deadline.
//!
//! # Protocol
//!
//! - `heap` holds wake-ups `(at, map)`; `map` is a [`Weak`] reference, so the sweeper never
//!   keeps a map alive: a map dropped meanwhile is skipped when its wake-up comes.
//! - Each map has a `scheduled` cell (nanoseconds on [`clock`]'s scale, `NEVER` = none)
//!   holding the time of its pending wake-up. It is written only under `state`'s lock, so it
//!   always equals the earliest `at` this map has in the heap, or `NEVER`.
//! - [`schedule`] pushes a wake-up only if it is earlier than `scheduled` (so a map has at most
//!   one live wake-up; later ones it pushed before are stale and recognised by
//!   `at != scheduled` when popped).
//! - When a wake-up is due the sweeper sets `scheduled = NEVER`, releases the lock, sweeps the
//!   map and schedules the next deadline the sweep reports. An insert racing with the sweep
//!   either lands in a shard before the sweep visits it (the sweep sees its deadline) or after
//!   (the shard lock orders it after the `NEVER` store, so its own `schedule` call sees `NEVER`
//!   and registers): no deadline is lost.
//! - Wake-ups are rounded up to the next millisecond, so a map that receives a steady stream
//!   of inserts is swept at most once per millisecond, and in that sweep only shards with
//!   something due are locked.

use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

/// The timed maps' clock: nanoseconds since a process-wide origin, so that a deadline fits an
/// `AtomicU64` and compares as an integer. `NEVER` (`u64::MAX`, about 584 years after the
/// origin) is the deadline of an entry that never expires.
pub(crate) mod clock {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// The deadline of an entry that never expires.
    pub(crate) const NEVER: u64 = u64::MAX;

    fn origin() -> Instant {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        *ORIGIN.get_or_init(Instant::now)
    }

    /// Now, in nanoseconds since the origin (always below `NEVER`).
    #[inline]
    pub(crate) fn now() -> u64 {
        let d = Instant::now().saturating_duration_since(origin());
        u64::try_from(d.as_nanos())
            .unwrap_or(NEVER - 1)
            .min(NEVER - 1)
    }

    /// The deadline `ttl` after `now`: `NEVER` for `None`, and for any time to live that
    /// reaches past the clock's range (`Duration::MAX` included), instead of overflowing.
    #[inline]
    pub(crate) fn deadline(now: u64, ttl: Option<Duration>) -> u64 {
        match ttl {
            None => NEVER,
            Some(ttl) => u64::try_from(ttl.as_nanos()).map_or(NEVER, |t| now.saturating_add(t)),
        }
    }
}

use clock::NEVER;

/// What the sweeper needs from a map.
pub(crate) trait Sweep: Send + Sync {
    /// The map's pending wake-up (see the module docs).
    fn scheduled(&self) -> &AtomicU64;
    /// Removes everything that expired by `now`, runs its callbacks, and returns the map's next
    /// deadline (`NEVER` if none).
    fn sweep(self: Arc<Self>, now: u64) -> u64;
}

struct Wake {
    at: u64,
    map: Weak<dyn Sweep>,
}

impl PartialEq for Wake {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at
    }
}
impl Eq for Wake {}
impl PartialOrd for Wake {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Wake {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest wake-up on top.
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        o.at.cmp(&self.at)
    }
}

struct Sweeper {
    state: Mutex<BinaryHeap<Wake>>,
    cv: Condvar,
}

/// The shared sweeper, started on first use. It runs for the rest of the process (parked
/// while no map has anything due), holding no map alive.
fn sweeper() -> &'static Sweeper {
    static SWEEPER: OnceLock<&'static Sweeper> = OnceLock::new();
    SWEEPER.get_or_init(|| {
        let s: &'static Sweeper = Box::leak(Box::new(Sweeper {
            state: Mutex::new(BinaryHeap::new()),
            cv: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("gosync-timedmap-sweeper".into())
            .spawn(move || run(s))
            .expect("gosync::TimedMap: could not spawn the shared sweeper thread");
        s
    })
}

/// Millisecond granularity of wake-ups (see the module docs).
const TICK: u64 = 1_000_000;

/// Makes sure `map` is swept at (or shortly after) `deadline`.
pub(crate) fn schedule(map: &Weak<dyn Sweep>, scheduled: &AtomicU64, deadline: u64) {
    if deadline == NEVER {
        return;
    }
    let at = deadline.saturating_add(TICK - 1) / TICK * TICK;
    // SeqCst: pairs with the sweeper's reset of `scheduled` (see the module docs); a stale
    // smaller value cannot be seen once our deadline is published.
    if at >= scheduled.load(Ordering::SeqCst) {
        return;
    }
    let s = sweeper();
    let mut heap = s.state.lock().unwrap_or_else(PoisonError::into_inner);
    if at >= scheduled.load(Ordering::Relaxed) {
        return;
    }
    scheduled.store(at, Ordering::Relaxed);
    let wake_sweeper = heap.peek().is_none_or(|w| at < w.at);
    if heap.len() >= 64 && heap.len().is_power_of_two() {
        // Drop the wake-ups of maps that no longer exist (each keeps a small allocation).
        heap.retain(|w| w.map.strong_count() > 0);
    }
    heap.push(Wake {
        at,
        map: map.clone(),
    });
    drop(heap);
    if wake_sweeper {
        s.cv.notify_one();
    }
}

fn run(s: &'static Sweeper) {
    let mut heap = s.state.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let now = clock::now();
        let due = match heap.peek() {
            None => {
                heap = s.cv.wait(heap).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            Some(w) if w.at > now => {
                let wait = Duration::from_nanos(w.at - now);
                heap =
                    s.cv.wait_timeout(heap, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                continue;
            }
            Some(_) => heap.pop().expect("peeked"),
        };
        let Some(map) = due.map.upgrade() else {
            continue; // dropped meanwhile
        };
        if map.scheduled().load(Ordering::Relaxed) != due.at {
            // Stale: an earlier wake-up of this map superseded this one and was handled.
            drop(heap);
            drop(map); // may be the last handle: the map's entries drop here, unlocked
            heap = s.state.lock().unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        // SeqCst: pairs with the maps' SeqCst publication of their shards' deadlines (see
        // `TimedMap`'s `publish_deadline`).
        map.scheduled().store(NEVER, Ordering::SeqCst);
        drop(heap);
        // The map catches panics of its own callbacks; this one is for the sweeper's sake
        // (a panicking `Eq` of a key), so that one bad map cannot stop every other.
        let next =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Arc::clone(&map).sweep(now)))
                .unwrap_or(NEVER);
        schedule(&due.map, map.scheduled(), next);
        drop(map);
        heap = s.state.lock().unwrap_or_else(PoisonError::into_inner);
    }
}
