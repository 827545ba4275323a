//! A FIFO wait queue whose waiters are parked threads **or** async tasks.
//!
//! Every blocking primitive needs a queue of waiters that an unlocker (or a signaller) can wake
//! in order, handing each woken waiter a small *token* ("you own the lock now", "compete for
//! it", ...). `parking_lot_core` provides that for threads only. This queue holds both kinds in
//! one FIFO, so a blocking `lock()` and an async `lock_async().await` on the same object are
//! served in the order they arrived.
//!
//! # Design
//!
//! - An intrusive, circular, doubly linked list of [`Waiter`] nodes, behind a small internal
//!   lock (the *queue lock*). A node lives on the waiting thread's stack, or inside the pinned
//!   future of an async waiter; nothing is allocated per wait.
//! - The owner of a queue works on it through a [`QueueGuard`] (the queue lock held): check its
//!   own state word, link a waiter at the back or the front, look at the front waiter, pop it
//!   with a token, move waiters to another queue. Each queue also stores a value `E` of the
//!   primitive's choosing, protected by the same lock (a `Mutex` keeps its fairness clock there).
//! - Notifying a waiter unlinks it and stores its token **while the queue lock is held**;
//!   the actual wake-up (`Thread::unpark` / `Waker::wake`) happens after the lock is released,
//!   when the guard drops. The notifier takes the thread handle or waker out of the node under
//!   the lock, so it never touches the node again after the token is visible: the waiter may
//!   return and free its node at once.
//!
//! # Invariants (all under the queue lock)
//!
//! - A node is *linked* iff its `prev`/`next` are `Some`; `len` counts linked nodes.
//! - A linked node's token is [`WAITING`]. A node's token becomes non-zero exactly once per
//!   link, when a notifier unlinks it; only the node's owner resets it (before relinking).
//! - A linked node has a wake handle (thread or waker); an unlinked node's handle is taken.
//! - A node is never dropped while linked: its owner unlinks it (timeout, cancelled future) or
//!   waits until a notifier has unlinked it.
//!
//! A waiter that sees a non-zero token (Acquire) sees everything the notifier did before it
//! stored the token (Release), e.g. the previous lock holder's writes on a handoff.

use core::marker::PhantomPinned;
use core::ptr::NonNull;
use core::task::{Context, Poll, Waker};

use crate::primitive::atomic::{AtomicUsize, Ordering};
use crate::primitive::{now, thread, Instant, QueueLock, QueueLockGuard, UnsafeCell};

/// Pause instructions per polling round of [`WaitQueue::wait`]'s spin phase (under loom each
/// is a yield, so one).
#[cfg(not(loom))]
const SPIN_PAUSES: u32 = 32;
#[cfg(loom)]
const SPIN_PAUSES: u32 = 1;

/// Token of a waiter that has not been notified.
pub(crate) const WAITING: usize = 0;

/// How a waiter is woken.
enum Handle {
    /// Taken by a notifier (or never set).
    None,
    /// A parked thread.
    Thread(thread::Thread),
    /// An async task.
    Task(Waker),
}

/// One waiter. Pinned while linked; see the module docs for who may touch which field.
pub(crate) struct Waiter {
    /// Previous node in the circular list; `None` when not linked. Queue lock.
    prev: UnsafeCell<Option<NonNull<Waiter>>>,
    /// Next node in the circular list; `None` when not linked. Queue lock.
    next: UnsafeCell<Option<NonNull<Waiter>>>,
    /// The thread or task to wake. Queue lock.
    handle: UnsafeCell<Handle>,
    /// When the waiter started waiting (its owner's choice of origin). Queue lock.
    since: UnsafeCell<Option<Instant>>,
    /// Moved here from another queue by [`QueueGuard::move_all_to`] (a `Cond`'s broadcast),
    /// not linked by its owner. Queue lock.
    moved: UnsafeCell<bool>,
    /// What the owner waits for, in the queue owner's terms (the `RwMutex`: the writer epoch a
    /// reader queued behind). Queue lock.
    tag: UnsafeCell<u64>,
    /// [`WAITING`], or the token a notifier handed over.
    token: AtomicUsize,
    _pin: PhantomPinned,
}

// SAFETY: every field but `token` is only touched under the queue lock of the queue the node is
// linked in (or by its owner while it is not linked); `token` is atomic. The wake handle is
// `Send` (a `Thread` or a `Waker`).
unsafe impl Send for Waiter {}
// SAFETY: as above.
unsafe impl Sync for Waiter {}

impl Waiter {
    /// A waiter that is not linked anywhere.
    pub(crate) fn new() -> Self {
        Waiter {
            prev: UnsafeCell::new(None),
            next: UnsafeCell::new(None),
            handle: UnsafeCell::new(Handle::None),
            since: UnsafeCell::new(None),
            moved: UnsafeCell::new(false),
            tag: UnsafeCell::new(0),
            token: AtomicUsize::new(WAITING),
            _pin: PhantomPinned,
        }
    }

    /// The token handed over by a notifier, or [`WAITING`]. Acquire: see the module docs.
    #[inline]
    pub(crate) fn token(&self) -> usize {
        self.token.load(Ordering::Acquire)
    }

    /// Clears the token before the owner links the node again. Only the owner calls this,
    /// while the node is not linked.
    #[inline]
    pub(crate) fn reset_token(&self) {
        self.token.store(WAITING, Ordering::Relaxed);
    }

    /// The `since` a notifier left in this node (e.g. when it handed over). Only the node's
    /// owner calls this, after it has seen a non-zero token: the node is unlinked then, and
    /// the notifier's write is visible through the token's Release/Acquire.
    #[inline]
    pub(crate) fn since_after_notify(&self) -> Option<Instant> {
        // SAFETY: unlinked and notified: no one else touches the node any more.
        self.since.with(|p| unsafe { *p })
    }

    #[inline]
    fn is_linked_locked(&self) -> bool {
        // SAFETY: queue lock held by the caller (or the node is private to its owner).
        self.next.with(|p| unsafe { (*p).is_some() })
    }
}

/// The queue: a lock around the list and the owner's value `E`.
pub(crate) struct WaitQueue<E = ()> {
    inner: QueueLock<Inner<E>>,
}

struct Inner<E> {
    /// The oldest node (front); its `prev` is the newest (back).
    head: Option<NonNull<Waiter>>,
    len: usize,
    extra: E,
}

// SAFETY: the list's nodes are only reached under the lock; see `Waiter`.
unsafe impl<E: Send> Send for Inner<E> {}

impl<E> WaitQueue<E> {
    /// An empty queue holding `extra`.
    #[cfg(not(loom))]
    pub(crate) const fn with_extra(extra: E) -> Self {
        WaitQueue {
            inner: QueueLock::new(Inner {
                head: None,
                len: 0,
                extra,
            }),
        }
    }

    /// An empty queue holding `extra`.
    #[cfg(loom)]
    pub(crate) fn with_extra(extra: E) -> Self {
        WaitQueue {
            inner: QueueLock::new(Inner {
                head: None,
                len: 0,
                extra,
            }),
        }
    }

    /// Takes the queue lock.
    #[inline]
    pub(crate) fn lock(&self) -> QueueGuard<'_, E> {
        QueueGuard {
            inner: Some(self.inner.lock()),
            wakes: Wakes::None,
        }
    }

    /// Blocks the calling thread until `w` is notified, or until `deadline` passes.
    ///
    /// `w` must have been linked into this queue by the caller, from this thread, with
    /// [`QueueGuard::push_back`]/[`push_front`](QueueGuard::push_front) and `Kind::Thread`.
    /// With `spin > 0` the thread first polls its token that many rounds (pause instructions,
    /// then yields) before it sleeps: for a waiter that expects its notification soon.
    /// Returns the token, or `None` on a timeout; then `w` has been unlinked and `on_timeout`
    /// has run under the queue lock (to fix the owner's state). A notification that races the
    /// timeout wins: its token is returned.
    pub(crate) fn wait(
        &self,
        w: &Waiter,
        deadline: Option<Instant>,
        spin: u32,
        on_timeout: impl FnOnce(&mut QueueGuard<'_, E>),
    ) -> Option<usize> {
        for i in 0..spin {
            let token = w.token();
            if token != WAITING {
                return Some(token);
            }
            if i < spin / 2 {
                for _ in 0..SPIN_PAUSES {
                    crate::primitive::spin_loop();
                }
            } else {
                crate::primitive::yield_now();
            }
        }
        loop {
            let token = w.token();
            if token != WAITING {
                return Some(token);
            }
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = now();
                    if now >= deadline {
                        let mut q = self.lock();
                        // Under the lock the token is final: either still linked (ours to
                        // remove) or notified.
                        let token = w.token();
                        if token != WAITING {
                            return Some(token);
                        }
                        // SAFETY: `w` is linked into this queue (token still WAITING).
                        unsafe { q.unlink(NonNull::from(w)) };
                        on_timeout(&mut q);
                        return None;
                    }
                    thread::park_timeout(deadline.saturating_duration_since(now));
                }
            }
        }
    }

    /// Polls an async waiter: `Ready(token)` once notified; otherwise stores the task's waker
    /// (if the node is still linked) and returns `Pending`.
    pub(crate) fn poll_wait(&self, w: &Waiter, cx: &mut Context<'_>) -> Poll<usize> {
        let token = w.token();
        if token != WAITING {
            return Poll::Ready(token);
        }
        let _q = self.lock();
        let token = w.token();
        if token != WAITING {
            return Poll::Ready(token);
        }
        // SAFETY: queue lock held; `w` is linked (token WAITING), so its handle is ours to set.
        w.handle.with_mut(|h| unsafe {
            match &mut *h {
                Handle::Task(old) if old.will_wake(cx.waker()) => {}
                h => *h = Handle::Task(cx.waker().clone()),
            }
        });
        Poll::Pending
    }

    /// Withdraws `w` (an async waiter being dropped, or a thread giving up). Returns `None` if
    /// it was still linked: it has been unlinked and `on_removed` ran under the queue lock.
    /// Returns `Some(token)` if a notifier got there first: the caller now holds whatever the
    /// token grants and must pass it on.
    pub(crate) fn cancel(
        &self,
        w: &Waiter,
        on_removed: impl FnOnce(&mut QueueGuard<'_, E>),
    ) -> Option<usize> {
        let mut q = self.lock();
        let token = w.token();
        if token != WAITING {
            return Some(token);
        }
        if !w.is_linked_locked() {
            // Never linked (e.g. a future dropped before its first poll queued it).
            return None;
        }
        // SAFETY: linked into this queue (token WAITING, links set).
        unsafe { q.unlink(NonNull::from(w)) };
        on_removed(&mut q);
        None
    }
}

impl<E: Default> Default for WaitQueue<E> {
    fn default() -> Self {
        Self::with_extra(E::default())
    }
}

/// What kind of waiter is being linked.
pub(crate) enum Kind<'a> {
    /// The calling thread, which will block in [`WaitQueue::wait`].
    Thread,
    /// An async task, woken through this waker.
    Task(&'a Waker),
}

/// Wake-ups collected under the queue lock, delivered when the guard drops.
enum Wakes {
    None,
    One(Handle),
    Many(Vec<Handle>),
}

impl Wakes {
    fn push(&mut self, h: Handle) {
        match core::mem::replace(self, Wakes::None) {
            Wakes::None => *self = Wakes::One(h),
            Wakes::One(first) => *self = Wakes::Many(vec![first, h]),
            Wakes::Many(mut v) => {
                v.push(h);
                *self = Wakes::Many(v);
            }
        }
    }
}

fn deliver(h: Handle) {
    match h {
        Handle::None => {}
        Handle::Thread(t) => t.unpark(),
        Handle::Task(w) => w.wake(),
    }
}

/// The queue lock, held. Notifications made through it are delivered when it drops, after the
/// lock is released.
pub(crate) struct QueueGuard<'a, E> {
    inner: Option<QueueLockGuard<'a, Inner<E>>>,
    wakes: Wakes,
}

impl<E> Drop for QueueGuard<'_, E> {
    fn drop(&mut self) {
        drop(self.inner.take());
        match core::mem::replace(&mut self.wakes, Wakes::None) {
            Wakes::None => {}
            Wakes::One(h) => deliver(h),
            Wakes::Many(v) => v.into_iter().for_each(deliver),
        }
    }
}

impl<E> QueueGuard<'_, E> {
    #[inline]
    fn inner(&self) -> &Inner<E> {
        self.inner.as_ref().expect("queue guard used after drop")
    }
    #[inline]
    fn inner_mut(&mut self) -> &mut Inner<E> {
        self.inner.as_mut().expect("queue guard used after drop")
    }

    /// Linked waiters.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.inner().len
    }

    /// Whether no waiter is linked.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.inner().len == 0
    }

    /// The owner's value.
    #[inline]
    pub(crate) fn extra(&mut self) -> &mut E {
        &mut self.inner_mut().extra
    }

    /// Links `w` at the back (newest).
    ///
    /// # Safety
    /// `w` is not linked anywhere, stays at its address, and is not dropped until it has been
    /// notified (token non-zero) or withdrawn ([`WaitQueue::wait`]'s timeout or
    /// [`WaitQueue::cancel`]) through this same queue.
    pub(crate) unsafe fn push_back(&mut self, w: &Waiter, kind: Kind<'_>) {
        // SAFETY: forwarded contract.
        unsafe { self.link(w, kind, false) }
    }

    /// Links `w` at the front (it will be the next one notified).
    ///
    /// # Safety
    /// As for [`push_back`](Self::push_back).
    pub(crate) unsafe fn push_front(&mut self, w: &Waiter, kind: Kind<'_>) {
        // SAFETY: forwarded contract.
        unsafe { self.link(w, kind, true) }
    }

    unsafe fn link(&mut self, w: &Waiter, kind: Kind<'_>, front: bool) {
        debug_assert!(!w.is_linked_locked(), "waiter linked twice");
        debug_assert_eq!(w.token.load(Ordering::Relaxed), WAITING);
        let handle = match kind {
            Kind::Thread => Handle::Thread(thread::current()),
            Kind::Task(waker) => Handle::Task(waker.clone()),
        };
        // SAFETY: queue lock held; `w` is not linked, so no one else touches its fields.
        w.handle.with_mut(|h| unsafe { *h = handle });
        // SAFETY: as above.
        w.moved.with_mut(|m| unsafe { *m = false });
        let node = NonNull::from(w);
        let inner = self.inner_mut();
        match inner.head {
            None => {
                // SAFETY: as above; a single node points at itself.
                unsafe { set_links(node, node, node) };
                inner.head = Some(node);
            }
            Some(head) => {
                // SAFETY: `head` is linked in this queue (lock held), so its `prev` is set.
                let tail = unsafe { prev_of(head) };
                // SAFETY: `tail`, `head` and `node` are valid under the lock.
                unsafe {
                    set_links(node, tail, head);
                    set_next(tail, node);
                    set_prev(head, node);
                }
                if front {
                    inner.head = Some(node);
                }
            }
        }
        inner.len += 1;
    }

    /// Unlinks `node`.
    ///
    /// # Safety
    /// `node` is linked in this queue.
    unsafe fn unlink(&mut self, node: NonNull<Waiter>) {
        let inner = self.inner_mut();
        // SAFETY: linked in this queue, lock held.
        let (prev, next) = unsafe { (prev_of(node), next_of(node)) };
        if next == node {
            inner.head = None;
        } else {
            // SAFETY: neighbours are linked in this queue.
            unsafe {
                set_next(prev, next);
                set_prev(next, prev);
            }
            if inner.head == Some(node) {
                inner.head = Some(next);
            }
        }
        // SAFETY: `node` is valid; clearing its links marks it unlinked.
        unsafe {
            let w = node.as_ref();
            w.prev.with_mut(|p| *p = None);
            w.next.with_mut(|p| *p = None);
        }
        inner.len -= 1;
    }

    /// The front (oldest) waiter, if any: for reading its [`since`](Self::since) and
    /// [`tag`](Self::tag).
    #[inline]
    pub(crate) fn front(&self) -> Option<NonNull<Waiter>> {
        self.inner().head
    }

    /// Whether `node` was moved into this queue by [`move_all_to`](Self::move_all_to) and
    /// has not been linked by its owner since.
    ///
    /// # Safety
    /// `node` is linked in this queue.
    #[inline]
    pub(crate) unsafe fn was_moved(&self, node: NonNull<Waiter>) -> bool {
        // SAFETY: lock held; plain read.
        unsafe { node.as_ref().moved.with(|m| *m) }
    }

    /// When `node` started waiting, as recorded by [`set_since`](Self::set_since).
    ///
    /// # Safety
    /// `node` is linked in this queue.
    #[inline]
    pub(crate) unsafe fn since(&self, node: NonNull<Waiter>) -> Option<Instant> {
        // SAFETY: lock held (or node private); plain read.
        unsafe { node.as_ref().since.with(|p| *p) }
    }

    /// What `node` waits for, as recorded by [`set_tag`](Self::set_tag) (0 if never set).
    ///
    /// # Safety
    /// `node` is linked in this queue.
    #[inline]
    pub(crate) unsafe fn tag(&self, node: NonNull<Waiter>) -> u64 {
        // SAFETY: lock held; plain read.
        unsafe { node.as_ref().tag.with(|p| *p) }
    }

    /// Records what `w` waits for (its owner calls this before linking it).
    #[inline]
    pub(crate) fn set_tag(&mut self, w: &Waiter, tag: u64) {
        // SAFETY: queue lock held; the owner is the only other party and it is the caller.
        w.tag.with_mut(|p| unsafe { *p = tag });
    }

    /// Records when `w` started waiting (its owner calls this before linking it).
    #[inline]
    pub(crate) fn set_since(&mut self, w: &Waiter, since: Option<Instant>) {
        // SAFETY: queue lock held; the owner is the only other party and it is the caller.
        w.since.with_mut(|p| unsafe { *p = since });
    }

    /// Records a time in a linked node, for its owner to read after it is notified (see
    /// [`Waiter::since_after_notify`]).
    ///
    /// # Safety
    /// `node` is linked in this queue.
    #[inline]
    pub(crate) unsafe fn set_since_of(&mut self, node: NonNull<Waiter>, since: Option<Instant>) {
        // SAFETY: linked in this queue and the lock is held.
        unsafe { node.as_ref().since.with_mut(|p| *p = since) };
    }

    /// Unlinks `node` and hands it `token` (non-zero); its wake-up is delivered when this guard
    /// drops.
    ///
    /// # Safety
    /// `node` is linked in this queue.
    pub(crate) unsafe fn notify(&mut self, node: NonNull<Waiter>, token: usize) {
        debug_assert_ne!(token, WAITING);
        // SAFETY: forwarded contract.
        unsafe { self.unlink(node) };
        // SAFETY: `node` is valid until its token is visible; take the handle first.
        let handle = unsafe {
            node.as_ref()
                .handle
                .with_mut(|h| core::mem::replace(&mut *h, Handle::None))
        };
        // Release: publishes what the notifier did before (e.g. a lock handoff). After this
        // store the node may be freed by its owner: do not touch it again.
        // SAFETY: still valid at this point.
        unsafe { node.as_ref().token.store(token, Ordering::Release) };
        self.wakes.push(handle);
    }

    /// Notifies the front waiter with `token`; returns whether there was one.
    pub(crate) fn notify_front(&mut self, token: usize) -> bool {
        match self.front() {
            Some(node) => {
                // SAFETY: the front node is linked in this queue.
                unsafe { self.notify(node, token) };
                true
            }
            None => false,
        }
    }

    /// Notifies, front to back, every waiter for which `pick` returns a token (the others
    /// stay linked, in order); returns how many were notified. `pick` sees the queue (for
    /// [`since`](Self::since)) and a linked node.
    pub(crate) fn notify_where(
        &mut self,
        mut pick: impl FnMut(&Self, NonNull<Waiter>) -> Option<usize>,
    ) -> usize {
        let mut left = self.inner().len;
        let mut node = self.front();
        let mut n = 0;
        while left > 0 {
            let Some(cur) = node else { break };
            // SAFETY: `cur` is linked in this queue (lock held); read its successor before
            // `notify` unlinks it. Only `left` nodes are visited, so the walk ends before it
            // could wrap around to a node already seen.
            let next = unsafe { next_of(cur) };
            left -= 1;
            if let Some(token) = pick(self, cur) {
                // SAFETY: `cur` is still linked here.
                unsafe { self.notify(cur, token) };
                n += 1;
            }
            node = Some(next);
        }
        n
    }

    /// Notifies every waiter, front to back, with `token`; returns how many.
    pub(crate) fn notify_all(&mut self, token: usize) -> usize {
        let mut n = 0;
        while self.notify_front(token) {
            n += 1;
        }
        n
    }

    /// Moves every waiter of this queue, in order, to the back of `to` (a requeue: they keep
    /// waiting, now for `to`'s owner, with their tokens still [`WAITING`]), recording `since`
    /// in each. Returns how many.
    pub(crate) fn move_all_to<E2>(
        &mut self,
        to: &mut QueueGuard<'_, E2>,
        since: Option<Instant>,
    ) -> usize {
        let mut n = 0;
        while let Some(node) = self.front() {
            // SAFETY: linked here; relinked in `to` at once, with its handle moved along. Both
            // queue locks are held, so nobody else reads the node's `since` meanwhile.
            unsafe {
                self.unlink(node);
                node.as_ref().since.with_mut(|p| *p = since);
                node.as_ref().moved.with_mut(|m| *m = true);
                to.relink_back(node);
            }
            n += 1;
        }
        n
    }

    /// Links a node that was just unlinked from another queue, keeping its wake handle.
    unsafe fn relink_back(&mut self, node: NonNull<Waiter>) {
        let inner = self.inner_mut();
        match inner.head {
            None => {
                // SAFETY: lock held; a single node points at itself.
                unsafe { set_links(node, node, node) };
                inner.head = Some(node);
            }
            Some(head) => {
                // SAFETY: linked nodes of this queue; lock held.
                unsafe {
                    let tail = prev_of(head);
                    set_links(node, tail, head);
                    set_next(tail, node);
                    set_prev(head, node);
                }
            }
        }
        inner.len += 1;
    }
}

// ---- raw link access (queue lock held by every caller) -----------------------------------

unsafe fn prev_of(n: NonNull<Waiter>) -> NonNull<Waiter> {
    // SAFETY: caller holds the queue lock and `n` is linked.
    unsafe {
        n.as_ref()
            .prev
            .with(|p| (*p).expect("linked node without prev"))
    }
}
unsafe fn next_of(n: NonNull<Waiter>) -> NonNull<Waiter> {
    // SAFETY: as above.
    unsafe {
        n.as_ref()
            .next
            .with(|p| (*p).expect("linked node without next"))
    }
}
unsafe fn set_prev(n: NonNull<Waiter>, to: NonNull<Waiter>) {
    // SAFETY: caller holds the queue lock.
    unsafe { n.as_ref().prev.with_mut(|p| *p = Some(to)) }
}
unsafe fn set_next(n: NonNull<Waiter>, to: NonNull<Waiter>) {
    // SAFETY: caller holds the queue lock.
    unsafe { n.as_ref().next.with_mut(|p| *p = Some(to)) }
}
unsafe fn set_links(n: NonNull<Waiter>, prev: NonNull<Waiter>, next: NonNull<Waiter>) {
    // SAFETY: caller holds the queue lock.
    unsafe {
        set_prev(n, prev);
        set_next(n, next);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn fifo_order_front_and_back() {
        let q: WaitQueue = WaitQueue::default();
        let (a, b, c) = (Waiter::new(), Waiter::new(), Waiter::new());
        {
            let mut g = q.lock();
            // SAFETY: the nodes outlive the queue operations below and are notified before
            // they drop.
            unsafe {
                g.push_back(&a, Kind::Thread);
                g.push_back(&b, Kind::Thread);
                g.push_front(&c, Kind::Thread);
            }
            assert_eq!(g.len(), 3);
            assert!(g.notify_front(7)); // c
            assert!(g.notify_front(8)); // a
            assert!(g.notify_front(9)); // b
            assert!(!g.notify_front(1));
            assert!(g.is_empty());
        }
        assert_eq!((c.token(), a.token(), b.token()), (7, 8, 9));
    }

    #[test]
    fn timed_wait_unlinks_and_runs_the_callback() {
        let q: WaitQueue<u32> = WaitQueue::with_extra(0);
        let w = Waiter::new();
        // SAFETY: `wait` below withdraws the node before it drops.
        unsafe { q.lock().push_back(&w, Kind::Thread) };
        let got = q.wait(&w, Some(now() + Duration::from_millis(5)), 0, |g| {
            *g.extra() += 1
        });
        assert_eq!(got, None);
        let mut g = q.lock();
        assert!(g.is_empty());
        assert_eq!(*g.extra(), 1);
    }

    #[test]
    fn a_notified_thread_wakes_with_its_token() {
        let q = Arc::new(WaitQueue::<()>::default());
        let linked = Arc::new(std::sync::Barrier::new(2));
        let t = {
            let (q, linked) = (Arc::clone(&q), Arc::clone(&linked));
            std::thread::spawn(move || {
                let w = Waiter::new();
                // SAFETY: we block in `wait` until notified.
                unsafe { q.lock().push_back(&w, Kind::Thread) };
                linked.wait();
                q.wait(&w, None, 0, |_| unreachable!())
            })
        };
        linked.wait();
        while !q.lock().notify_front(42) {
            std::thread::yield_now();
        }
        assert_eq!(t.join().unwrap(), Some(42));
    }

    #[test]
    fn move_all_keeps_order_and_handles() {
        let from: WaitQueue = WaitQueue::default();
        let to: WaitQueue = WaitQueue::default();
        let ws: Vec<Waiter> = (0..3).map(|_| Waiter::new()).collect();
        let mut f = from.lock();
        let mut t = to.lock();
        for w in &ws {
            // SAFETY: notified below before the nodes drop.
            unsafe { f.push_back(w, Kind::Thread) };
        }
        assert_eq!(f.move_all_to(&mut t, None), 3);
        assert!(f.is_empty());
        assert_eq!(t.len(), 3);
        for i in 1..=3 {
            assert!(t.notify_front(i));
        }
        drop((f, t));
        let tokens: Vec<usize> = ws.iter().map(Waiter::token).collect();
        assert_eq!(tokens, vec![1, 2, 3]);
    }
}
