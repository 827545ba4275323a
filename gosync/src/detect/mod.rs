//! The deadlock and misuse detector (feature `deadlock-detection`).
//!
//! Go ships a race detector and `go vet`, and documents the traps neither catches: taking two
//! locks in opposite orders on two goroutines, locking a `Mutex` the goroutine already holds,
//! taking a read lock recursively while a writer waits (the `RWMutex` factorial example), and
//! calling `Once.Do` from its own function. Rust's type system removes data races and copied
//! locks; this module catches what remains, **before** it hangs anything.
//!
//! # What it reports
//!
//! | rule | when | [`ReportKind`] |
//! |---|---|---|
//! | lock-order inversion | a thread acquires B while holding A, and some thread earlier acquired A while holding B (directly or through a chain), even if the two runs never overlapped | [`LockOrderInversion`](ReportKind::LockOrderInversion) |
//! | re-lock | a thread blocks on a non-reentrant lock (or a read lock on an `RwMutex` it write-holds) that it already holds | [`Relock`](ReportKind::Relock) |
//! | recursive read | a thread read-locks an `RwMutex` it already read-holds while a writer waits: the writer waits for the first read, the second read waits for the writer | [`RecursiveRead`](ReportKind::RecursiveRead) |
//! | wait-for cycle | a thread is about to sleep on a lock whose owner sleeps on a lock whose owner ... is this thread | [`Deadlock`](ReportKind::Deadlock) |
//!
//! Every report names the locks (by [`Mutex::named`](crate::Mutex::named) name, else by the
//! source location that created them) and the places they were acquired (the callers of
//! `lock`/`read`/`write`, through `#[track_caller]`).
//!
//! `try_lock` and friends never block, so they never add an order edge *into* the lock they
//! take; a lock taken with `try_lock` is still held, and locks acquired while holding it are
//! ordered after it. Edges touching a lock are forgotten when the lock is dropped.
//!
//! # What happens on a report
//!
//! The report goes to the handler ([`set_handler`]); the default handler panics in the thread
//! that would block, with the report as the message, so the program stops at the faulty call
//! instead of hanging. A handler that returns lets the operation go on (it may then hang).
//!
//! # Cost
//!
//! Off (the default), the detector does not exist: locks have no extra field and their code
//! is the same as without it. On, every lock carries a small record, and:
//!
//! - acquiring while the thread holds no other lock pushes one entry on a thread-local list
//!   (no allocation up to 16 held locks); releasing pops it;
//! - acquiring while holding others looks each `held → acquired` pair up in a thread-local
//!   cache; only an order this thread has never seen takes the detector's global lock (and
//!   searches the order graph for the opposite order);
//! - a thread that must wait for a lock publishes what it waits for; only when the lock's
//!   owner is itself waiting is the wait-for chain walked (under the global lock).
//!
//! `gosync-bench detect` (run by `scripts/bench-detect.sh`) measures these costs against the
//! plain build and against tracing-mutex.
//!
//! # Coverage
//!
//! `Mutex`, `RwMutex` (read and write), `ReentrantMutex` (its outermost lock and unlock;
//! re-entry can never block) and the lock of a [`Cond`](crate::Cond) wait (a `Mutex` or
//! either side of an `RwMutex`), which the wait releases and re-takes through the detector
//! like any unlock and lock. Not covered: locks taken
//! through the `lock_api` types ([`RawMutex`](crate::RawMutex)), and
//! [`TokenMutex`](crate::TokenMutex), whose owner is a token that may move between threads
//! while the detector reasons about threads.
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "deadlock-detection")] {
//! use std::sync::{Arc, Mutex as StdMutex};
//! let reports = Arc::new(StdMutex::new(Vec::new()));
//! let sink = reports.clone();
//! gosync::detect::set_handler(move |r| sink.lock().unwrap().push(r.kind()));
//! // ... lock things in inconsistent orders; `reports` collects what the detector saw.
//! gosync::detect::reset_handler();
//! # }
//! ```

use std::fmt;
use std::panic::Location;

#[cfg(all(feature = "deadlock-detection", not(loom)))]
mod imp;
#[cfg(all(feature = "deadlock-detection", not(loom)))]
pub(crate) use imp::LockMeta;

/// Which rule a [`Report`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReportKind {
    /// Two locks taken in opposite orders (possibly through a chain of locks).
    LockOrderInversion,
    /// A thread blocks on a non-reentrant lock it already holds.
    Relock,
    /// A read lock taken recursively while a writer waits (Go's `RWMutex` factorial trap).
    RecursiveRead,
    /// Threads asleep on each other's locks in a cycle.
    Deadlock,
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReportKind::LockOrderInversion => "lock-order inversion",
            ReportKind::Relock => "re-lock of a held lock",
            ReportKind::RecursiveRead => "recursive read lock while a writer waits",
            ReportKind::Deadlock => "deadlock (wait-for cycle)",
        })
    }
}

/// A lock as a report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockName {
    /// The name given with `named`, if any.
    pub name: Option<&'static str>,
    /// Where the lock was created.
    pub created_at: &'static Location<'static>,
    /// The lock's type (`Mutex`, `RwMutex`, ...).
    pub type_name: &'static str,
}

impl fmt::Display for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name {
            Some(n) => write!(
                f,
                "{} \"{}\" (created at {})",
                self.type_name, n, self.created_at
            ),
            None => write!(f, "{} created at {}", self.type_name, self.created_at),
        }
    }
}

/// What the detector found: the rule, the locks involved, and a message a person can act on.
#[derive(Debug, Clone)]
pub struct Report {
    kind: ReportKind,
    locks: Vec<LockName>,
    message: String,
}

impl Report {
    #[cfg_attr(not(all(feature = "deadlock-detection", not(loom))), allow(dead_code))]
    pub(crate) fn new(kind: ReportKind, locks: Vec<LockName>, message: String) -> Self {
        Report {
            kind,
            locks,
            message,
        }
    }
    /// The rule that fired.
    pub fn kind(&self) -> ReportKind {
        self.kind
    }
    /// The locks involved, the one being acquired first.
    pub fn locks(&self) -> &[LockName] {
        &self.locks
    }
    /// The full, multi-line explanation.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gosync: {}: {}", self.kind, self.message)
    }
}

type Handler = Box<dyn Fn(&Report) + Send + Sync + 'static>;
static HANDLER: std::sync::RwLock<Option<Handler>> = std::sync::RwLock::new(None);

/// Sends every report to `handler` instead of panicking. The handler runs in the thread that
/// triggered the report, with no detector lock held; it may panic (that is what the default
/// handler does) or return, in which case the lock operation goes on.
pub fn set_handler(handler: impl Fn(&Report) + Send + Sync + 'static) {
    *HANDLER.write().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(handler));
}

/// Restores the default handler: panic with the report as the message.
pub fn reset_handler() {
    *HANDLER.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Whether this build has the detector (feature `deadlock-detection`).
pub const fn is_enabled() -> bool {
    cfg!(all(feature = "deadlock-detection", not(loom)))
}

/// Delivers a report to the handler (default: panic).
#[cfg_attr(not(all(feature = "deadlock-detection", not(loom))), allow(dead_code))]
#[track_caller]
pub(crate) fn deliver(report: Report) {
    let guard = HANDLER.read().unwrap_or_else(|e| e.into_inner());
    match guard.as_ref() {
        Some(h) => h(&report),
        None => {
            drop(guard);
            panic!("{report}");
        }
    }
}
