//! Helpers shared by the loom models (`tests/loom_*.rs`): a scheduling point the threads of a
//! model race on, and an explorer that counts executions and the outcomes each one observed,
//! so that a model that stops exploring fails instead of passing vacuously.
//!
//! Loom 0.7 does not always branch on the first operations of a freshly spawned thread: a model
//! whose spawned thread only starts with plain loads, or whose main thread finishes its part
//! before yielding, can run in a single execution. Touching [`start`] at the top of each
//! thread gives loom a write/write race to branch on.
//!
//! A second way for a model to miss its point: gosync's primitives spin before they park, and
//! under loom every spin is a `yield_now` that hands the CPU to the other threads. A thread
//! that holds a lock and releases it at once therefore always beats a waiter that is still
//! spinning: the waiter never parks behind it, and a timed waiter never times out. Models that
//! need the waiter parked give the holder a bounded patience (it yields until the waiter shows
//! up or the patience runs out) and, where both outcomes matter, run once per patience value.
//!
//! Each model returns labels for the outcomes it observed and asserts with
//! [`Explored::assert_saw`] that the interesting ones occurred in some execution.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use loom::sync::atomic::{AtomicUsize, Ordering};

/// Keeps the panic messages in `expected` out of the test output (a model that catches the
/// same panic in thousands of executions would print it each time); any other panic is
/// reported as usual. The hook is process-wide and installed once.
pub fn quiet_panics(expected: &'static [&'static str]) {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    static QUIET: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    QUIET.lock().unwrap().extend_from_slice(expected);
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            let quiet = QUIET
                .lock()
                .is_ok_and(|q| msg.is_some_and(|m| q.contains(&m)));
            if !quiet {
                default(info);
            }
        }));
    });
}

/// The message of a caught panic (`&str` or `String` payloads).
pub fn panic_message(err: &(dyn std::any::Any + Send)) -> &str {
    err.downcast_ref::<&str>()
        .copied()
        .or_else(|| err.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<not a string>")
}

/// A loom cell that stands for the data a lock protects. A model opens a section on it right
/// after taking the lock and closes it right before releasing: loom then fails the model if
/// an exclusive section overlaps any other section ("currently writing to cell" / "currently
/// reading from cell"), or if two sections are not ordered by happens-before (a causality
/// violation). This is what checks the lock's exclusion, across the whole critical section
/// and whatever the guard does inside; the guards' own data accesses are momentary.
///
/// A section spans the scheduling points the model puts inside it (atomic loads such as
/// `waiters()`, `yield_now`), so an overlap has a chance to happen there.
#[derive(Debug)]
pub struct Guarded(loom::cell::UnsafeCell<u32>);

/// An exclusive section of a [`Guarded`] (see there); it writes the cell when it closes.
pub struct Exclusive(loom::cell::MutPtr<u32>);

/// A shared section of a [`Guarded`] (see there).
pub struct Shared(#[allow(dead_code)] loom::cell::ConstPtr<u32>);

impl Guarded {
    /// A fresh cell.
    pub fn new() -> Self {
        Self(loom::cell::UnsafeCell::new(0))
    }

    /// Opens an exclusive section (a write lock, a mutex). Close it by dropping it.
    pub fn exclusive(&self) -> Exclusive {
        Exclusive(self.0.get_mut())
    }

    /// Opens a shared section (a read lock). Close it by dropping it.
    pub fn shared(&self) -> Shared {
        Shared(self.0.get())
    }

    /// Number of exclusive sections closed so far (call when no section is open).
    pub fn writes(&self) -> u32 {
        // SAFETY: loom checks this read against every section.
        self.0.with(|p| unsafe { *p })
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        // SAFETY: the section's pointer; loom tracks it as a write for as long as it lives.
        unsafe { *self.0.deref() += 1 };
    }
}

/// A scheduling point shared by the threads of a model (see the module docs).
pub fn start(flag: &AtomicUsize) {
    flag.fetch_add(1, Ordering::SeqCst);
}

/// What [`explore`] saw: the number of executions and, per outcome label, the number of
/// executions that reported it.
#[derive(Debug, Default)]
pub struct Explored {
    /// Executions loom ran.
    pub runs: usize,
    seen: BTreeMap<&'static str, usize>,
}

impl Explored {
    /// Executions that reported `label`.
    pub fn count(&self, label: &str) -> usize {
        self.seen.get(label).copied().unwrap_or(0)
    }

    /// Adds the tallies of another exploration (of a variant of the same model).
    pub fn absorb(&mut self, other: Explored) {
        self.runs += other.runs;
        for (label, n) in other.seen {
            *self.seen.entry(label).or_default() += n;
        }
    }

    /// Prints the tallies (shown with `--nocapture`).
    pub fn print(self) -> Self {
        eprintln!("loom: {} executions; outcomes {:?}", self.runs, self.seen);
        self
    }

    /// Asserts that loom ran more than one execution and that every label was reported by at
    /// least one of them.
    #[track_caller]
    pub fn assert_saw(&self, labels: &[&str]) {
        assert!(self.runs > 1, "model did not explore: {self:?}");
        for label in labels {
            assert!(
                self.count(label) > 0,
                "no execution saw {label:?}: {self:?}"
            );
        }
    }
}

/// Runs `f` under loom with the default builder (see [`explore_with`]).
pub fn explore<F, L>(f: F) -> Explored
where
    F: Fn() -> L + Sync + Send + 'static,
    L: IntoIterator<Item = &'static str>,
{
    explore_with(loom::model::Builder::new(), f)
}

/// Runs `f` under `builder` and prints the tallies (see [`tally`]).
pub fn explore_with<F, L>(builder: loom::model::Builder, f: F) -> Explored
where
    F: Fn() -> L + Sync + Send + 'static,
    L: IntoIterator<Item = &'static str>,
{
    tally(builder, f).print()
}

/// Runs `f` under `builder`; every execution returns the labels of the outcomes it observed
/// (each counted once per execution; an empty label counts as none).
pub fn tally<F, L>(builder: loom::model::Builder, f: F) -> Explored
where
    F: Fn() -> L + Sync + Send + 'static,
    L: IntoIterator<Item = &'static str>,
{
    let tally = Arc::new(Mutex::new(Explored::default()));
    let t = Arc::clone(&tally);
    builder.check(move || {
        let mut labels: Vec<&'static str> = f().into_iter().collect();
        labels.retain(|l| !l.is_empty());
        labels.sort_unstable();
        labels.dedup();
        let mut t = t.lock().unwrap();
        t.runs += 1;
        for label in labels {
            *t.seen.entry(label).or_default() += 1;
        }
    });
    let explored = std::mem::take(&mut *tally.lock().unwrap());
    explored
}
