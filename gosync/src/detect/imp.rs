//! The detector's state and hooks (compiled only with feature `deadlock-detection`).
//!
//! Locks reach this module only through [`crate::diag::LockDiag`], which calls:
//!
//! ```text
//! lock():      before_lock (checks) · [before_blocking (publish) · block · wait_ended] · acquired (push)
//! try_lock():  acquired             push (only on success: no order edge into the lock)
//! unlock():    released             pop; the caller unlocks only if the lock was held
//! ```
//!
//! # State and what each step costs
//!
//! - **Per thread** ([`ThreadState`], one `thread_local!` with a constant initialiser and no
//!   destructor, so an access is a plain thread-pointer offset): the list of held locks in
//!   acquisition order (16 entries inline, a spill vector beyond that), and a direct-mapped
//!   cache of the order edges (`held → acquired`) this thread has already seen in the global
//!   graph. Acquiring with no lock held pushes one entry; releasing the newest lock pops it.
//!   Acquiring while holding others looks each pair up in the cache; only a pair the thread
//!   has never seen takes the global lock.
//! - **Per lock** ([`LockMeta`]): an id assigned at the first acquisition (never reused, so a
//!   cached edge can never be mistaken for one of another lock), and the exclusive owner (the
//!   [`ThreadRec`] of the holding thread; readers are not owners).
//! - **Per thread, shared** ([`ThreadRec`], allocated once per thread and recycled when it
//!   exits): the lock the thread is about to sleep on. A thread that must block publishes it;
//!   only if the lock's owner is itself about to sleep does it take the global lock and walk
//!   the wait-for chain.
//! - **Global** ([`Global`], one `std` mutex): the lock-order graph with the sites and thread
//!   of each edge's first sighting, and the names of live locks for reports. Touched when a
//!   thread sees an order for the first time, when a lock is first used or dropped, and when
//!   a wait-for chain has to be walked.
//!
//! The detector is a diagnostic layer outside the loom models; it uses `std`'s atomics, cells
//! and mutex directly.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::panic::Location;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex as StdMutex, MutexGuard as StdMutexGuard};

use super::{deliver, LockName, Report, ReportKind};
use crate::diag::Access;

/// The detector's record of one lock, embedded in its [`LockDiag`](crate::diag::LockDiag).
pub(crate) struct LockMeta {
    /// 0 until the lock is first acquired; then a unique id (ids are never reused).
    id: AtomicU64,
    /// The thread holding the lock exclusively, null when none (or only readers). Written by
    /// the holder only; read by threads walking a wait-for chain.
    owner: AtomicPtr<ThreadRec>,
    name: Option<&'static str>,
    created_at: &'static Location<'static>,
    type_name: &'static str,
}

// ---- per-thread state ------------------------------------------------------------------

/// Held-list entries kept inline; deeper nesting spills to a vector.
const INLINE: usize = 16;
/// Slots of the per-thread edge cache (a power of two).
const CACHE: usize = 64;

/// One held lock.
#[derive(Clone, Copy)]
struct Entry {
    id: u64,
    access: Access,
    /// Where the lock was acquired.
    site: &'static Location<'static>,
}

const NO_SITE: &Location<'static> = Location::caller();

/// What a thread keeps about itself. No destructor, constant initialiser: see the module docs.
struct ThreadState {
    /// Number of held locks.
    len: Cell<usize>,
    /// The first [`INLINE`] held locks, oldest first, as three parallel arrays (the order
    /// check scans the ids only); the rest are in `SPILL`.
    ids: [Cell<u64>; INLINE],
    accesses: [Cell<Access>; INLINE],
    sites: [Cell<&'static Location<'static>>; INLINE],
    /// `(from, to)` order edges known to be in the global graph; `(0, 0)` is empty.
    cache: [Cell<(u64, u64)>; CACHE],
    /// This thread's shared record, null until first needed.
    rec: Cell<*const ThreadRec>,
}

thread_local! {
    static STATE: ThreadState = const {
        ThreadState {
            len: Cell::new(0),
            ids: [const { Cell::new(0) }; INLINE],
            accesses: [const { Cell::new(Access::Exclusive) }; INLINE],
            sites: [const { Cell::new(NO_SITE) }; INLINE],
            cache: [const { Cell::new((0, 0)) }; CACHE],
            rec: Cell::new(ptr::null()),
        }
    };
    /// Held locks beyond the first [`INLINE`]; `SPILL[i]` is entry `INLINE + i`.
    static SPILL: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    /// Hands this thread's [`ThreadRec`] back for reuse when the thread exits.
    static REC_GUARD: RecGuard = const { RecGuard };
}

impl ThreadState {
    #[inline]
    fn id(&self, i: usize) -> u64 {
        if i < INLINE {
            self.ids[i].get()
        } else {
            SPILL.with(|s| s.borrow()[i - INLINE].id)
        }
    }

    #[inline]
    fn get(&self, i: usize) -> Entry {
        if i < INLINE {
            Entry {
                id: self.ids[i].get(),
                access: self.accesses[i].get(),
                site: self.sites[i].get(),
            }
        } else {
            SPILL.with(|s| s.borrow()[i - INLINE])
        }
    }

    #[inline]
    fn set(&self, i: usize, e: Entry) {
        if i < INLINE {
            self.ids[i].set(e.id);
            self.accesses[i].set(e.access);
            self.sites[i].set(e.site);
        } else {
            SPILL.with(|s| s.borrow_mut()[i - INLINE] = e);
        }
    }

    #[inline]
    fn push(&self, e: Entry) {
        let n = self.len.get();
        if n < INLINE {
            self.ids[n].set(e.id);
            self.accesses[n].set(e.access);
            self.sites[n].set(e.site);
        } else {
            Self::spill(n, e);
        }
        self.len.set(n + 1);
    }

    #[cold]
    #[inline(never)]
    fn spill(n: usize, e: Entry) {
        SPILL.with(|s| {
            let mut s = s.borrow_mut();
            s.truncate(n - INLINE);
            s.push(e);
        });
    }

    /// Removes the newest entry for `id`; `false` if the thread holds no such lock.
    #[inline]
    fn remove(&self, id: u64) -> bool {
        let n = self.len.get();
        if n != 0 && n <= INLINE && self.ids[n - 1].get() == id {
            self.len.set(n - 1);
            return true;
        }
        self.remove_slow(id)
    }

    #[cold]
    fn remove_slow(&self, id: u64) -> bool {
        let n = self.len.get();
        let Some(pos) = (0..n).rev().find(|&i| self.id(i) == id) else {
            return false;
        };
        for i in pos..n - 1 {
            self.set(i, self.get(i + 1));
        }
        self.len.set(n - 1);
        true
    }

    #[inline]
    fn slot(from: u64, to: u64) -> usize {
        let h = (from.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ to).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        (h >> (64 - CACHE.trailing_zeros())) as usize
    }

    #[inline]
    fn knows(&self, from: u64, to: u64) -> bool {
        self.cache[Self::slot(from, to)].get() == (from, to)
    }

    #[inline]
    fn learn(&self, from: u64, to: u64) {
        self.cache[Self::slot(from, to)].set((from, to));
    }
}

/// The calling thread's shared record.
#[inline]
fn my_rec() -> &'static ThreadRec {
    let r = STATE.with(|st| st.rec.get());
    if r.is_null() {
        return new_rec();
    }
    // SAFETY: records are never freed (see `ThreadRec`).
    unsafe { &*r }
}

#[cold]
#[inline(never)]
fn new_rec() -> &'static ThreadRec {
    let rec: &'static ThreadRec = lock(&FREE_RECS)
        .pop()
        .unwrap_or_else(|| Box::leak(Box::new(ThreadRec::default())));
    *lock(&rec.thread) = Some(std::thread::current());
    STATE.with(|st| st.rec.set(rec));
    // Registers the destructor that recycles the record. If the thread is already past that
    // point (a lock taken by another thread-local's destructor), the record is kept.
    let _ = REC_GUARD.try_with(|_| ());
    rec
}

/// What other threads may look at: the lock this thread is about to sleep on, and the thread
/// (for reports). Allocated once per thread, recycled (never freed) when the thread exits, so
/// a pointer to it is always valid.
#[derive(Default)]
struct ThreadRec {
    /// The lock this thread is about to sleep on, null when none. Written only by its thread,
    /// with `SeqCst` (see [`LockMeta::publish_wait`]).
    waiting_on: AtomicPtr<LockMeta>,
    thread: StdMutex<Option<std::thread::Thread>>,
}

impl ThreadRec {
    fn label(&self) -> String {
        match lock(&self.thread).as_ref() {
            Some(t) => label_of(t),
            None => "(exited)".to_string(),
        }
    }
}

/// Records of exited threads, for reuse.
static FREE_RECS: StdMutex<Vec<&'static ThreadRec>> = StdMutex::new(Vec::new());

struct RecGuard;

impl Drop for RecGuard {
    fn drop(&mut self) {
        let r = STATE.with(|st| st.rec.replace(ptr::null()));
        if !r.is_null() {
            // SAFETY: records are never freed.
            let rec = unsafe { &*r };
            *lock(&rec.thread) = None;
            lock(&FREE_RECS).push(rec);
        }
    }
}

fn label_of(t: &std::thread::Thread) -> String {
    match t.name() {
        Some(n) => format!("'{n}'"),
        None => format!("{:?}", t.id()),
    }
}

fn thread_label() -> String {
    label_of(&std::thread::current())
}

/// Locks a `std` mutex of the detector, ignoring poisoning (a report handler may panic).
fn lock<T>(m: &StdMutex<T>) -> StdMutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---- global state ----------------------------------------------------------------------

/// An order edge `from → to`: some thread acquired `to` while holding `from`.
struct Edge {
    from_site: &'static Location<'static>,
    to_site: &'static Location<'static>,
    thread: String,
}

#[derive(Default)]
struct Global {
    /// `edges[from][to]`.
    edges: HashMap<u64, HashMap<u64, Edge>>,
    /// `incoming[to]`: every `from` with an edge `from → to`.
    incoming: HashMap<u64, HashSet<u64>>,
    /// Names of the locks that have an id and are alive.
    names: HashMap<u64, LockName>,
    next_id: u64,
}

static GLOBAL: LazyLock<StdMutex<Global>> = LazyLock::new(Default::default);

impl Global {
    fn has_edge(&self, from: u64, to: u64) -> bool {
        self.edges.get(&from).is_some_and(|t| t.contains_key(&to))
    }

    fn add_edge(&mut self, from: u64, to: u64, edge: Edge) {
        self.edges.entry(from).or_default().insert(to, edge);
        self.incoming.entry(to).or_default().insert(from);
    }

    fn forget(&mut self, id: u64) {
        self.names.remove(&id);
        if let Some(out) = self.edges.remove(&id) {
            for to in out.keys() {
                if let Some(set) = self.incoming.get_mut(to) {
                    set.remove(&id);
                }
            }
        }
        if let Some(inc) = self.incoming.remove(&id) {
            for from in inc {
                if let Some(m) = self.edges.get_mut(&from) {
                    m.remove(&id);
                }
            }
        }
    }

    fn name(&self, id: u64) -> LockName {
        self.names.get(&id).cloned().unwrap_or(LockName {
            name: Some("<dropped lock>"),
            created_at: NO_SITE,
            type_name: "lock",
        })
    }

    /// A path of edges from `from` to `to`, if one exists (depth-first search).
    fn path(&self, from: u64, to: u64) -> Option<Vec<(u64, u64)>> {
        let mut stack: Vec<(u64, Vec<(u64, u64)>)> = vec![(from, Vec::new())];
        let mut seen = HashSet::new();
        while let Some((node, path)) = stack.pop() {
            if node == to {
                return Some(path);
            }
            if !seen.insert(node) {
                continue;
            }
            if let Some(targets) = self.edges.get(&node) {
                for next in targets.keys() {
                    let mut p = path.clone();
                    p.push((node, *next));
                    stack.push((*next, p));
                }
            }
        }
        None
    }
}

fn global() -> StdMutexGuard<'static, Global> {
    lock(&GLOBAL)
}

// ---- the hooks ---------------------------------------------------------------------------

impl LockMeta {
    /// A record for a lock of type `type_name` created at `created_at`.
    pub(crate) const fn new(
        type_name: &'static str,
        name: Option<&'static str>,
        created_at: &'static Location<'static>,
    ) -> Self {
        LockMeta {
            id: AtomicU64::new(0),
            owner: AtomicPtr::new(ptr::null_mut()),
            name,
            created_at,
            type_name,
        }
    }

    #[inline]
    fn id(&self) -> u64 {
        let id = self.id.load(Ordering::Relaxed);
        if id != 0 {
            return id;
        }
        self.assign_id()
    }

    /// First use: an id, and the name registered for reports (under the global lock, so the
    /// name exists before any other thread can see the id).
    #[cold]
    fn assign_id(&self) -> u64 {
        let mut g = global();
        let id = self.id.load(Ordering::Relaxed);
        if id != 0 {
            return id;
        }
        g.next_id += 1;
        let id = g.next_id;
        g.names.insert(id, self.lock_name());
        self.id.store(id, Ordering::Relaxed);
        id
    }

    fn lock_name(&self) -> LockName {
        LockName {
            name: self.name,
            created_at: self.created_at,
            type_name: self.type_name,
        }
    }

    /// A blocking acquisition starts ([`LockDiag::before_lock`](crate::diag::LockDiag::before_lock)):
    /// checks it if the thread holds other locks. Returns whether it does.
    ///
    /// A small inline fast path (no lock held: no check) around out-of-line, non-generic
    /// slow parts.
    #[inline]
    pub(crate) fn before_lock(
        &self,
        access: Access,
        site: &'static Location<'static>,
        writer_waiting: impl FnOnce() -> bool,
    ) -> bool {
        let id = self.id();
        let holding = STATE.with(|st| st.len.get()) != 0;
        if holding {
            let mut writer_waiting = Some(writer_waiting);
            self.check(id, access, site, &mut || {
                writer_waiting.take().is_some_and(|f| f())
            });
        }
        holding
    }

    /// The thread is about to block for this lock
    /// ([`LockDiag::before_blocking`](crate::diag::LockDiag::before_blocking)). Holding
    /// nothing, it cannot be part of a wait-for cycle (no thread waits for a lock it owns),
    /// so it need not say what it waits for. Returns whether it published its wait.
    #[inline]
    pub(crate) fn before_blocking(&self, holding: bool) -> bool {
        if holding {
            self.publish_wait();
        }
        holding
    }

    /// The wait ended with the lock taken: withdraw what [`before_blocking`] published.
    #[inline]
    pub(crate) fn wait_ended(&self, published: bool) {
        if published {
            my_rec()
                .waiting_on
                .store(ptr::null_mut(), Ordering::Release);
        }
    }

    /// The calling thread took the lock (`try_lock`, a timed lock, or the end of `acquire`).
    #[inline]
    pub(crate) fn acquired(&self, access: Access, site: &'static Location<'static>) {
        let id = self.id();
        let rec = STATE.with(|st| {
            st.push(Entry { id, access, site });
            st.rec.get()
        });
        if access != Access::Shared {
            let rec = if rec.is_null() { new_rec() } else { rec };
            self.owner.store(rec as *mut ThreadRec, Ordering::Relaxed);
        }
    }

    /// The calling thread releases the lock; `false` if it does not hold it.
    #[inline]
    pub(crate) fn released(&self, access: Access) -> bool {
        let id = self.id.load(Ordering::Relaxed);
        if !STATE.with(|st| st.remove(id)) {
            return false;
        }
        if access != Access::Shared {
            self.owner.store(ptr::null_mut(), Ordering::Relaxed);
        }
        true
    }

    /// The calling thread's exclusive hold became a shared one.
    pub(crate) fn downgraded(&self) {
        let id = self.id.load(Ordering::Relaxed);
        STATE.with(|st| {
            if let Some(i) = (0..st.len.get()).rev().find(|&i| st.id(i) == id) {
                let mut e = st.get(i);
                e.access = Access::Shared;
                st.set(i, e);
            }
        });
        self.owner.store(ptr::null_mut(), Ordering::Relaxed);
    }

    /// Checks an acquisition while the thread holds other locks: the same lock again
    /// (re-lock, recursive read), then the order against every held lock.
    #[inline(never)]
    fn check(
        &self,
        id: u64,
        access: Access,
        site: &'static Location<'static>,
        writer_waiting: &mut dyn FnMut() -> bool,
    ) {
        STATE.with(|st| self.check_in(st, id, access, site, writer_waiting));
    }

    fn check_in(
        &self,
        st: &ThreadState,
        id: u64,
        access: Access,
        site: &'static Location<'static>,
        writer_waiting: &mut dyn FnMut() -> bool,
    ) {
        let n = st.len.get();
        let mut unknown = false;
        for i in (0..n).rev() {
            let held = st.id(i);
            if held == id {
                let prev = st.get(i);
                if let Some(r) = self.same_lock_report(prev, access, site, writer_waiting) {
                    deliver(r);
                }
                return;
            }
            unknown |= !st.knows(held, id);
        }
        if unknown {
            self.check_order(st, id, site);
        }
    }

    #[cold]
    fn same_lock_report(
        &self,
        prev: Entry,
        access: Access,
        site: &'static Location<'static>,
        writer_waiting: &mut dyn FnMut() -> bool,
    ) -> Option<Report> {
        let lock = self.lock_name();
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

    /// Some `held → self` pair is not in this thread's cache: consult the global graph, add
    /// the new edges, or report the first inversion.
    #[cold]
    #[inline(never)]
    fn check_order(&self, st: &ThreadState, id: u64, site: &'static Location<'static>) {
        let report = {
            let mut g = global();
            let mut report = None;
            for i in 0..st.len.get() {
                let h = st.get(i);
                if st.knows(h.id, id) {
                    continue;
                }
                if g.has_edge(h.id, id) {
                    st.learn(h.id, id);
                    continue;
                }
                if let Some(path) = g.path(id, h.id) {
                    report = Some(self.inversion_report(&g, h, site, &path));
                    break;
                }
                g.add_edge(
                    h.id,
                    id,
                    Edge {
                        from_site: h.site,
                        to_site: site,
                        thread: thread_label(),
                    },
                );
                st.learn(h.id, id);
            }
            report
        };
        if let Some(r) = report {
            deliver(r);
        }
    }

    fn inversion_report(
        &self,
        g: &Global,
        held: Entry,
        site: &'static Location<'static>,
        path: &[(u64, u64)],
    ) -> Report {
        let to = self.lock_name();
        let first = g.name(held.id);
        let mut seen = String::new();
        for &(from, next) in path {
            let e = &g.edges[&from][&next];
            seen.push_str(&format!(
                "\n  thread {} acquired {} at {} while holding {} (acquired at {})",
                e.thread,
                g.name(next),
                e.to_site,
                g.name(from),
                e.from_site
            ));
        }
        let (start, end) = (path[0].0, path[path.len() - 1].1);
        Report::new(
            ReportKind::LockOrderInversion,
            vec![to.clone(), first.clone()],
            format!(
                "thread {} acquires {to} at {site} while holding {first} (acquired at {}), \
                 but the opposite order was seen before:{seen}\n\
                 Two threads taking these locks in these two orders can deadlock. \
                 Take them in one global order everywhere (for example always {} before {}).",
                thread_label(),
                held.site,
                short(&g.name(start)),
                short(&g.name(end)),
            ),
        )
    }

    /// The acquisition must wait: publish what this thread sleeps on and report a wait-for
    /// cycle (withdrawn again by [`wait_ended`](Self::wait_ended)).
    #[cold]
    #[inline(never)]
    fn publish_wait(&self) {
        let me = my_rec();
        // SeqCst, paired with the SeqCst load of the owner's `waiting_on` in `cycle`: of two
        // threads that start sleeping on each other's locks at the same moment, at least one
        // sees the other's store and finds the cycle.
        me.waiting_on
            .store(self as *const LockMeta as *mut _, Ordering::SeqCst);
        if let Some(report) = self.cycle(me) {
            me.waiting_on.store(ptr::null_mut(), Ordering::SeqCst);
            deliver(report);
            // The handler returned: go on waiting (this may hang, as the report says).
            me.waiting_on
                .store(self as *const LockMeta as *mut _, Ordering::SeqCst);
        }
    }

    /// A wait-for cycle through this lock back to `me`: the lock's owner sleeps on a lock
    /// whose owner sleeps on ... a lock `me` holds.
    fn cycle(&self, me: &'static ThreadRec) -> Option<Report> {
        // Without the global lock first: a cycle needs the owner to be asleep on a lock too.
        let owner = self.owner.load(Ordering::Relaxed);
        if owner.is_null() {
            return None;
        }
        if !ptr::eq(owner, me) {
            // SAFETY: records are never freed.
            let owner = unsafe { &*owner };
            if owner.waiting_on.load(Ordering::SeqCst).is_null() {
                return None;
            }
        }
        // Walk under the global lock: a lock found in some thread's `waiting_on` cannot be
        // dropped meanwhile, because dropping a lock that has an id takes the global lock,
        // and its waiter withdraws (clears `waiting_on`) before it can release the borrow.
        let _g = global();
        let mut chain: Vec<String> = Vec::new();
        let mut cur: &LockMeta = self;
        for _ in 0..1024 {
            let owner = cur.owner.load(Ordering::Relaxed);
            if owner.is_null() {
                return None;
            }
            if ptr::eq(owner, me) {
                let mut msg = format!(
                    "thread {} is about to wait for {}, but:",
                    thread_label(),
                    self.lock_name()
                );
                for c in &chain {
                    msg.push_str("\n  ");
                    msg.push_str(c);
                }
                msg.push_str(&format!(
                    "\n  and that lock is held by thread {} itself.\nNone of these threads can proceed. Take the locks in one global order.",
                    thread_label()
                ));
                return Some(Report::new(
                    ReportKind::Deadlock,
                    vec![self.lock_name()],
                    msg,
                ));
            }
            // SAFETY: records are never freed.
            let rec = unsafe { &*owner };
            let next = rec.waiting_on.load(Ordering::SeqCst);
            if next.is_null() {
                return None;
            }
            // SAFETY: `next` was published by a thread sleeping on it, and cannot be dropped
            // while we hold the global lock (see above).
            let next = unsafe { &*next };
            chain.push(format!(
                "{} is held by thread {}, which is waiting for {}",
                cur.lock_name(),
                rec.label(),
                next.lock_name()
            ));
            cur = next;
        }
        None
    }
}

impl Drop for LockMeta {
    fn drop(&mut self) {
        let id = *self.id.get_mut();
        if id != 0 {
            global().forget(id);
        }
    }
}

fn short(l: &LockName) -> String {
    match l.name {
        Some(n) => format!("\"{n}\""),
        None => format!("the {} created at {}", l.type_name, l.created_at),
    }
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

    #[track_caller]
    fn meta() -> LockMeta {
        LockMeta::new("Mutex", None, Location::caller())
    }

    /// A blocking acquisition of a free lock (the seam's `acquire` without the wait).
    fn lock(m: &LockMeta) {
        m.before_lock(Access::Exclusive, Location::caller(), || false);
        m.acquired(Access::Exclusive, Location::caller());
    }

    /// A wait for `m` by a thread that holds locks; `wait` stands for the lock's own wait.
    fn block_on(m: &LockMeta, wait: impl FnOnce()) {
        let published = m.before_blocking(true);
        wait();
        m.wait_ended(published);
    }
    fn unlock(m: &LockMeta) {
        assert!(m.released(Access::Exclusive));
    }

    #[test]
    fn rules_fire_and_only_when_they_should() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // Consistent order: no report.
        let (a, b, c) = (meta(), meta(), meta());
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
        // Re-lock of a held lock (the handler returns; the "lock" then succeeds at once).
        let r = with_reports(|| {
            lock(&a);
            lock(&a);
            unlock(&a);
            unlock(&a);
        });
        assert_eq!(r, vec![ReportKind::Relock]);
        // Re-lock after release is fine.
        let r = with_reports(|| {
            lock(&a);
            unlock(&a);
            lock(&a);
            unlock(&a);
        });
        assert!(r.is_empty(), "{r:?}");
        // Recursive read: only with a writer waiting.
        let rw = LockMeta::new("RwMutex", None, Location::caller());
        let read = |writer: bool| {
            rw.before_lock(Access::Shared, Location::caller(), || writer);
            rw.acquired(Access::Shared, Location::caller());
        };
        let r = with_reports(|| {
            read(false);
            read(false);
            read(true);
            for _ in 0..3 {
                assert!(rw.released(Access::Shared));
            }
        });
        assert_eq!(r, vec![ReportKind::RecursiveRead]);
        // Releasing a lock the thread does not hold says so (the guard then does not unlock).
        assert!(!a.released(Access::Exclusive));
        // Dropping a lock forgets its edges.
        let (d, e) = (meta(), meta());
        with_reports(|| {
            lock(&d);
            lock(&e);
            unlock(&e);
            unlock(&d);
        });
        let (d_id, e_id) = (d.id(), e.id());
        assert!(global().has_edge(d_id, e_id));
        drop(e);
        let g = global();
        assert!(!g.has_edge(d_id, e_id));
        assert!(!g.names.contains_key(&e_id));
        drop(g);
        super::super::reset_handler();
    }

    #[test]
    fn deep_nesting_spills_and_unwinds_in_any_order() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let locks: Vec<LockMeta> = (0..INLINE + 8).map(|_| meta()).collect();
        let r = with_reports(|| {
            for _ in 0..2 {
                for m in &locks {
                    lock(m);
                }
                assert_eq!(STATE.with(|s| s.len.get()), INLINE + 8);
                // Release out of order: every other one first.
                for m in locks.iter().step_by(2) {
                    unlock(m);
                }
                for m in locks.iter().skip(1).step_by(2).rev() {
                    unlock(m);
                }
                assert_eq!(STATE.with(|s| s.len.get()), 0);
            }
        });
        assert!(r.is_empty(), "{r:?}");
        // The order was recorded between every pair, the spilled ones included.
        let r = with_reports(|| {
            lock(&locks[INLINE + 7]);
            lock(&locks[0]);
            unlock(&locks[0]);
            unlock(&locks[INLINE + 7]);
        });
        assert_eq!(r, vec![ReportKind::LockOrderInversion]);
        super::super::reset_handler();
    }

    #[test]
    fn wait_for_cycle_is_reported() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // This thread owns `a` and is about to wait for `b`, whose owner (another thread) is
        // asleep on `a`.
        let a = Arc::new(meta());
        let b = Arc::new(meta());
        let (tx, rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (a2, b2) = (a.clone(), b.clone());
        let other = std::thread::spawn(move || {
            b2.acquired(Access::Exclusive, Location::caller());
            // Sleeps "on a" until told to go: `block` stands for the lock's wait.
            block_on(&a2, || {
                tx.send(()).unwrap();
                release_rx.recv().unwrap();
            });
            assert!(b2.released(Access::Exclusive));
        });
        a.acquired(Access::Exclusive, Location::caller());
        rx.recv().unwrap();
        let r = with_reports(|| block_on(&b, || {}));
        assert_eq!(r, vec![ReportKind::Deadlock]);
        super::super::reset_handler();
        // Without a handler the report is a panic whose message explains the cycle.
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| block_on(&b, || {})))
            .expect_err("the default handler panics on a deadlock");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            msg.contains("deadlock") && msg.contains("is held by thread"),
            "{msg}"
        );
        // The panicking report withdrew this thread's wait.
        assert!(my_rec().waiting_on.load(Ordering::SeqCst).is_null());
        assert!(a.released(Access::Exclusive));
        release_tx.send(()).unwrap();
        other.join().unwrap();
    }
}
