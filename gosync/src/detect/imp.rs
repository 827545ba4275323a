//! The detector's state and hooks (compiled only with feature `deadlock-detection`).
//!
//! Locks embed a [`LockMeta`] and call the hooks around their own state machine:
//!
//! ```text
//! lock():      before_lock(meta, access, site, writer_waiting)   // order, re-lock, recursive read
//!              [fast path acquires]            or
//!              before_block(meta) · park · after_block(meta)     // wait-for cycle, around sleeping
//!              acquired(meta, access, site)                      // push on the thread's held list
//! try_lock():  acquired(meta, access, site)  (only on success: no order edge into the lock)
//! unlock():    released(meta, access)
//! ```
//!
//! State:
//! - per thread, the list of held locks (`HELD`), in acquisition order;
//! - per lock, its lazily assigned id and its exclusive owner (a thread key, 0 = none);
//! - globally, behind one `std` mutex, the lock-order graph (edge `a → b`: some thread acquired
//!   `b` while holding `a`, with the sites) and the table of threads about to sleep on a lock.
//!
//! The detector is a diagnostic layer and is not part of the loom models, so it uses `std`'s
//! atomics and mutex directly rather than `crate::primitive`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex as StdMutex};

use super::{deliver, LockName, Report, ReportKind};

/// How a lock is being taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Exclusive and not reentrant (`Mutex`, `RwMutex::write`).
    Exclusive,
    /// Shared (`RwMutex::read`).
    Shared,
    /// Exclusive but reentrant for its owner (`ReentrantMutex`, `TokenMutex` with its token).
    Reentrant,
}

/// The detector's per-lock record, embedded in every lock when the feature is on.
pub(crate) struct LockMeta {
    /// 0 until the lock is first used; then a unique id (ids are never reused).
    id: AtomicU64,
    /// Thread key of the exclusive owner, 0 when none (readers are not tracked as owners).
    owner: AtomicUsize,
    name: Option<&'static str>,
    created_at: &'static Location<'static>,
    type_name: &'static str,
}

impl LockMeta {
    /// A record for a lock created at the caller's location.
    #[track_caller]
    #[allow(dead_code)] // used by the loom constructors and the tests
    pub(crate) const fn new(type_name: &'static str) -> Self {
        Self::with_name(type_name, None)
    }

    /// A record with an explicit name for reports.
    #[track_caller]
    pub(crate) const fn with_name(type_name: &'static str, name: Option<&'static str>) -> Self {
        LockMeta {
            id: AtomicU64::new(0),
            owner: AtomicUsize::new(0),
            name,
            created_at: Location::caller(),
            type_name,
        }
    }

    fn id(&self) -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = self.id.load(Ordering::Relaxed);
        if id != 0 {
            return id;
        }
        let new = NEXT.fetch_add(1, Ordering::Relaxed);
        match self
            .id
            .compare_exchange(0, new, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => new,
            Err(existing) => existing,
        }
    }

    fn lock_name(&self) -> LockName {
        LockName {
            name: self.name,
            created_at: self.created_at,
            type_name: self.type_name,
        }
    }
}

impl Drop for LockMeta {
    fn drop(&mut self) {
        let id = *self.id.get_mut();
        if id != 0 {
            let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
            g.edges.remove(&id);
            for targets in g.edges.values_mut() {
                targets.remove(&id);
            }
        }
    }
}

struct Held {
    id: u64,
    access: Access,
    name: LockName,
    site: &'static Location<'static>,
}

thread_local! {
    static HELD: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
}

/// A number unique to the calling thread while it lives (never 0).
fn thread_key() -> usize {
    thread_local!(static KEY: u8 = const { 0 });
    KEY.with(|k| k as *const u8 as usize)
}

fn thread_label() -> String {
    let t = std::thread::current();
    match t.name() {
        Some(n) => format!("'{n}'"),
        None => format!("{:?}", t.id()),
    }
}

/// An order edge `from → to` and where it was first seen.
struct Edge {
    from: LockName,
    to: LockName,
    from_site: &'static Location<'static>,
    to_site: &'static Location<'static>,
    thread: String,
}

/// A thread about to sleep on a lock.
struct Waiting {
    /// The lock. It outlives the entry: the sleeping thread borrows it until `after_block`,
    /// which removes the entry under the same mutex that readers hold.
    lock: *const LockMeta,
    name: LockName,
    thread: String,
}

// SAFETY: `Waiting::lock` is only dereferenced under `GLOBAL`'s mutex while the entry exists,
// and the entry exists only while its thread borrows the lock (see `Waiting::lock`).
unsafe impl Send for Waiting {}

#[derive(Default)]
struct Global {
    edges: HashMap<u64, HashMap<u64, Edge>>,
    waits: HashMap<usize, Waiting>,
}

static GLOBAL: LazyLock<StdMutex<Global>> = LazyLock::new(Default::default);

impl Global {
    /// A path of edges from `from` to `to`, if one exists (depth-first search).
    fn path(&self, from: u64, to: u64) -> Option<Vec<&Edge>> {
        let mut stack: Vec<(u64, Vec<&Edge>)> = vec![(from, Vec::new())];
        let mut seen = std::collections::HashSet::new();
        while let Some((node, path)) = stack.pop() {
            if node == to {
                return Some(path);
            }
            if !seen.insert(node) {
                continue;
            }
            if let Some(targets) = self.edges.get(&node) {
                for (next, edge) in targets {
                    let mut p = path.clone();
                    p.push(edge);
                    stack.push((*next, p));
                }
            }
        }
        None
    }
}

/// Checks an acquisition that may block: re-lock, recursive read, and the lock order against
/// every lock the thread holds (recording new order edges). Reports go to the handler.
#[track_caller]
pub(crate) fn before_lock(
    meta: &LockMeta,
    access: Access,
    site: &'static Location<'static>,
    writer_waiting: impl FnOnce() -> bool,
) {
    let id = meta.id();
    let report = HELD.with(|held| {
        let held = held.borrow();
        if held.is_empty() {
            return None;
        }
        if let Some(prev) = held.iter().rev().find(|h| h.id == id) {
            return same_lock_report(meta, prev, access, site, writer_waiting);
        }
        order_report(meta, id, access, site, &held)
    });
    if let Some(r) = report {
        deliver(r);
    }
}

fn same_lock_report(
    meta: &LockMeta,
    prev: &Held,
    access: Access,
    site: &'static Location<'static>,
    writer_waiting: impl FnOnce() -> bool,
) -> Option<Report> {
    let lock = meta.lock_name();
    match (access, prev.access) {
        (Access::Reentrant, _) => None,
        (Access::Shared, Access::Shared) => {
            if !writer_waiting() {
                return None;
            }
            Some(Report::new(
                ReportKind::RecursiveRead,
                vec![lock.clone()],
                format!(
                    "thread {} read-locks {lock} again at {site} while it still holds the read lock taken at {}, and a writer is waiting. \
                     The writer waits for the first read lock to be released; the new read waits behind the writer (writers are preferred, as in Go), \
                     so neither can proceed. Release the outer read lock before calling code that locks again, or pass the guarded data down instead of re-locking.",
                    thread_label(),
                    prev.site
                ),
            ))
        }
        _ => Some(Report::new(
            ReportKind::Relock,
            vec![lock.clone()],
            format!(
                "thread {} locks {lock} at {site}, but it already holds it (acquired at {}). {} is not reentrant: this would block forever. \
                 Release the guard first, pass the guarded data to the code that needs it, or use ReentrantMutex.",
                thread_label(),
                prev.site,
                lock.type_name
            ),
        )),
    }
}

fn order_report(
    meta: &LockMeta,
    id: u64,
    _access: Access,
    site: &'static Location<'static>,
    held: &[Held],
) -> Option<Report> {
    let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let to = meta.lock_name();
    for h in held {
        if h.id == id || g.edges.get(&h.id).is_some_and(|t| t.contains_key(&id)) {
            continue;
        }
        if let Some(path) = g.path(id, h.id) {
            let mut seen = String::new();
            for e in &path {
                seen.push_str(&format!(
                    "\n  thread {} acquired {} at {} while holding {} (acquired at {})",
                    e.thread, e.to, e.to_site, e.from, e.from_site
                ));
            }
            let first = &h.name;
            return Some(Report::new(
                ReportKind::LockOrderInversion,
                vec![to.clone(), first.clone()],
                format!(
                    "thread {} acquires {to} at {site} while holding {first} (acquired at {}), \
                     but the opposite order was seen before:{seen}\n\
                     Two threads taking these locks in these two orders can deadlock. \
                     Take them in one global order everywhere (for example always {} before {}).",
                    thread_label(),
                    h.site,
                    short(&path[0].from),
                    short(&path[path.len() - 1].to),
                ),
            ));
        }
        g.edges.entry(h.id).or_default().insert(
            id,
            Edge {
                from: h.name.clone(),
                to: to.clone(),
                from_site: h.site,
                to_site: site,
                thread: thread_label(),
            },
        );
    }
    None
}

fn short(l: &LockName) -> String {
    match l.name {
        Some(n) => format!("\"{n}\""),
        None => format!("the {} created at {}", l.type_name, l.created_at),
    }
}

/// Records that the calling thread now holds the lock.
pub(crate) fn acquired(meta: &LockMeta, access: Access, site: &'static Location<'static>) {
    let id = meta.id();
    if access != Access::Shared {
        meta.owner.store(thread_key(), Ordering::Relaxed);
    }
    HELD.with(|held| {
        held.borrow_mut().push(Held {
            id,
            access,
            name: meta.lock_name(),
            site,
        });
    });
}

/// Records that the calling thread released the lock (the most recent acquisition of it).
pub(crate) fn released(meta: &LockMeta, access: Access) {
    let id = meta.id();
    let still_held = HELD.with(|held| {
        let mut held = held.borrow_mut();
        if let Some(pos) = held.iter().rposition(|h| h.id == id) {
            held.remove(pos);
        }
        held.iter().any(|h| h.id == id)
    });
    if access != Access::Shared && !still_held {
        let _ = meta
            .owner
            .compare_exchange(thread_key(), 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// Called just before the thread sleeps on `meta`: registers the wait and reports a wait-for
/// cycle (the lock's owner sleeps on a lock whose owner ... is this thread).
#[track_caller]
pub(crate) fn before_block(meta: &LockMeta) {
    let me = thread_key();
    let report = {
        let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
        g.waits.insert(
            me,
            Waiting {
                lock: meta as *const LockMeta,
                name: meta.lock_name(),
                thread: thread_label(),
            },
        );
        let mut chain: Vec<String> = Vec::new();
        let mut cur: *const LockMeta = meta;
        let mut found = false;
        for _ in 0..=g.waits.len() {
            // SAFETY: `cur` is either `meta` (borrowed by this call) or the lock of a `waits`
            // entry, which stays valid while the entry exists and we hold `GLOBAL`.
            let lock = unsafe { &*cur };
            let owner = lock.owner.load(Ordering::Relaxed);
            if owner == 0 {
                break;
            }
            if owner == me {
                found = true;
                break;
            }
            match g.waits.get(&owner) {
                Some(w) => {
                    chain.push(format!(
                        "{} is held by thread {}, which is waiting for {}",
                        lock.lock_name(),
                        w.thread,
                        w.name
                    ));
                    cur = w.lock;
                }
                None => break,
            }
        }
        if found {
            g.waits.remove(&me);
            let mut msg = format!(
                "thread {} is about to wait for {}, but:",
                thread_label(),
                meta.lock_name()
            );
            for c in &chain {
                msg.push_str("\n  ");
                msg.push_str(c);
            }
            msg.push_str(&format!(
                "\n  and that lock is held by thread {} itself.\nNone of these threads can proceed. Take the locks in one global order.",
                thread_label()
            ));
            Some(Report::new(
                ReportKind::Deadlock,
                vec![meta.lock_name()],
                msg,
            ))
        } else {
            None
        }
    };
    if let Some(r) = report {
        deliver(r);
    }
}

/// Called when the thread wakes up (or gives up waiting) after [`before_block`].
pub(crate) fn after_block(_meta: &LockMeta) {
    let me = thread_key();
    GLOBAL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .waits
        .remove(&me);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The handler is global: tests that set it run one at a time.
    static SERIAL: StdMutex<()> = StdMutex::new(());

    /// Collects reports for the current thread's test instead of panicking.
    fn with_reports(f: impl FnOnce()) -> Vec<ReportKind> {
        let got = Arc::new(StdMutex::new(Vec::new()));
        let me = std::thread::current().id();
        let sink = got.clone();
        super::super::set_handler(move |r| {
            if std::thread::current().id() == me {
                sink.lock().unwrap().push(r.kind());
            }
        });
        f();
        let v = got.lock().unwrap().clone();
        v
    }

    fn lock(m: &LockMeta) {
        before_lock(m, Access::Exclusive, Location::caller(), || false);
        acquired(m, Access::Exclusive, Location::caller());
    }
    fn unlock(m: &LockMeta) {
        released(m, Access::Exclusive);
    }

    #[test]
    fn rules_fire_and_only_when_they_should() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // Consistent order: no report.
        let (a, b, c) = (
            LockMeta::new("Mutex"),
            LockMeta::new("Mutex"),
            LockMeta::new("Mutex"),
        );
        let r = with_reports(|| {
            for _ in 0..3 {
                lock(&a);
                lock(&b);
                unlock(&b);
                unlock(&a);
            }
        });
        assert!(r.is_empty(), "{r:?}");
        // Opposite order: inversion.
        let r = with_reports(|| {
            lock(&b);
            lock(&a);
            unlock(&a);
            unlock(&b);
        });
        assert_eq!(r, vec![ReportKind::LockOrderInversion]);
        // Through a chain: a→b seen, b→c, then c→a is an inversion.
        let r = with_reports(|| {
            lock(&b);
            lock(&c);
            unlock(&c);
            unlock(&b);
            lock(&c);
            lock(&a);
            unlock(&a);
            unlock(&c);
        });
        assert_eq!(r, vec![ReportKind::LockOrderInversion]);
        // Re-lock of a held lock.
        let r = with_reports(|| {
            lock(&a);
            before_lock(&a, Access::Exclusive, Location::caller(), || false);
            unlock(&a);
        });
        assert_eq!(r, vec![ReportKind::Relock]);
        // Re-lock after release is fine; reentrant access is fine.
        let r = with_reports(|| {
            lock(&a);
            unlock(&a);
            lock(&a);
            before_lock(&a, Access::Reentrant, Location::caller(), || false);
            unlock(&a);
        });
        assert!(r.is_empty(), "{r:?}");
        // Recursive read: only with a writer waiting.
        let rw = LockMeta::new("RwMutex");
        let r = with_reports(|| {
            before_lock(&rw, Access::Shared, Location::caller(), || false);
            acquired(&rw, Access::Shared, Location::caller());
            before_lock(&rw, Access::Shared, Location::caller(), || false);
            before_lock(&rw, Access::Shared, Location::caller(), || true);
            released(&rw, Access::Shared);
        });
        assert_eq!(r, vec![ReportKind::RecursiveRead]);
        // Dropping a lock forgets its edges: a fresh pair in the reverse order is not reported.
        let (d, e) = (LockMeta::new("Mutex"), LockMeta::new("Mutex"));
        with_reports(|| {
            lock(&d);
            lock(&e);
            unlock(&e);
            unlock(&d);
        });
        let (d_id, e_id) = (d.id(), e.id());
        drop(e);
        let g = GLOBAL.lock().unwrap();
        assert!(!g.edges.get(&d_id).is_some_and(|t| t.contains_key(&e_id)));
        drop(g);
        super::super::reset_handler();
    }

    #[test]
    fn wait_for_cycle_is_reported() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // Simulate: this thread owns `a` and is about to wait for `b`, whose owner (another
        // thread) is registered as waiting for `a`.
        let a = Arc::new(LockMeta::new("Mutex"));
        let b = Arc::new(LockMeta::new("Mutex"));
        let (tx, rx) = std::sync::mpsc::channel();
        let (a2, b2) = (a.clone(), b.clone());
        let other = std::thread::spawn(move || {
            acquired(&b2, Access::Exclusive, Location::caller());
            // Register as about to sleep on `a` (owned by the main thread below).
            let me = thread_key();
            GLOBAL.lock().unwrap().waits.insert(
                me,
                Waiting {
                    lock: &*a2 as *const LockMeta,
                    name: a2.lock_name(),
                    thread: thread_label(),
                },
            );
            tx.send(()).unwrap();
            std::thread::park();
            after_block(&a2);
            released(&b2, Access::Exclusive);
        });
        acquired(&a, Access::Exclusive, Location::caller());
        rx.recv().unwrap();
        let r = with_reports(|| before_block(&b));
        assert_eq!(r, vec![ReportKind::Deadlock]);
        after_block(&b);
        super::super::reset_handler();
        // Without a handler the report is a panic whose message explains the cycle.
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| before_block(&b)))
            .expect_err("the default handler panics on a deadlock");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            msg.contains("deadlock") && msg.contains("is held by thread"),
            "{msg}"
        );
        released(&a, Access::Exclusive);
        other.thread().unpark();
        other.join().unwrap();
    }
}
