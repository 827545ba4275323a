//! A runtime-agnostic timer for async wait timeouts.
//!
//! One thread, started on first use and shared by every async pool, keeps the pending
//! deadlines in a `BTreeMap` and calls `Waker::wake` when one passes. This keeps
//! [`AsyncPool`](super::AsyncPool) free of any executor: the waker is all it needs, so the
//! same pool works on tokio, async-std, smol or `futures::executor`. The cost is one
//! sleeping thread per process, and only once an async checkout has actually had to wait
//! with a timeout.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::task::Waker;
use std::time::Instant;

struct Timer {
    entries: Mutex<Entries>,
    changed: Condvar,
}

struct Entries {
    map: BTreeMap<(Instant, u64), Waker>,
    next_id: u64,
}

/// A registered deadline; dropping it cancels the registration.
pub(crate) struct TimerEntry {
    key: (Instant, u64),
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        std::thread::Builder::new()
            .name("gosync-connpool-timer".into())
            .spawn(run)
            .expect("gosync connpool: could not start the wait-timeout timer thread");
        Timer {
            entries: Mutex::new(Entries {
                map: BTreeMap::new(),
                next_id: 0,
            }),
            changed: Condvar::new(),
        }
    })
}

fn lock(t: &Timer) -> std::sync::MutexGuard<'_, Entries> {
    // Only map operations run under this lock; wakers are called outside it.
    t.entries.lock().unwrap_or_else(|e| e.into_inner())
}

fn run() {
    let t = timer();
    let mut due = Vec::new();
    let mut g = lock(t);
    loop {
        let now = Instant::now();
        while let Some(entry) = g.map.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        if !due.is_empty() {
            drop(g);
            for w in due.drain(..) {
                w.wake();
            }
            g = lock(t);
            continue;
        }
        g = match g.map.keys().next() {
            Some(&(at, _)) => {
                let wait = at.saturating_duration_since(now);
                t.changed
                    .wait_timeout(g, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => t.changed.wait(g).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

impl TimerEntry {
    /// Wakes `waker` at `at` unless the entry is dropped first.
    pub(crate) fn new(at: Instant, waker: &Waker) -> Self {
        let t = timer();
        let mut g = lock(t);
        g.next_id += 1;
        let key = (at, g.next_id);
        let earliest = g.map.keys().next().is_none_or(|k| key < *k);
        g.map.insert(key, waker.clone());
        drop(g);
        if earliest {
            t.changed.notify_one();
        }
        TimerEntry { key }
    }

    /// Replaces the waker if the task's waker changed.
    pub(crate) fn refresh(&self, waker: &Waker) {
        let mut g = lock(timer());
        if let Some(w) = g.map.get_mut(&self.key) {
            if !w.will_wake(waker) {
                *w = waker.clone();
            }
        }
    }
}

impl Drop for TimerEntry {
    fn drop(&mut self) {
        lock(timer()).map.remove(&self.key);
    }
}
