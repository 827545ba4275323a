//! The untyped lock behind [`RwMutex`](super::RwMutex): Go's `sync.RWMutex` algorithm on a
//! writer mutex, a reader count and a reader-wait word. See `RwMutex`'s docs for the
//! guarantees and the state layout.

use core::cell::Cell;
use core::task::{Context, Poll};
use core::time::Duration;

use crate::diag;
use crate::primitive::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
use crate::primitive::{dekker_fence, now, yield_now, Instant};

use super::backoff::Backoff;
use super::raw_mutex::{RawMutex, PATIENCE};
use super::reader_bias::{Enter, ReadToken, ReaderBias};
use super::wait_queue::{Kind, WaitQueue, Waiter};

/// Go's `rwmutexMaxReaders`: subtracting it from the reader count announces a writer.
const MAX_READERS: i32 = 1 << 30;

/// Added to `reader_count` by a writer announcing itself: the count drops by [`MAX_READERS`]
/// (going negative) and the epoch goes up by one. (`+2·2³²` because the count's low half
/// borrows one from the epoch when it goes negative.)
const ANNOUNCE: u64 = (2u64 << 32).wrapping_sub(MAX_READERS as u64);
/// Added to `reader_count` by a writer leaving (or giving up): the count rises by
/// [`MAX_READERS`] (back to `>= 0`), the epoch stays (the low half carries one into the epoch,
/// which the `-2³²` takes back).
const RELEASE: u64 = (MAX_READERS as u64).wrapping_sub(1u64 << 32);
/// `reader_wait` count of a writer that gave up waiting (timed out): departing readers of its
/// epoch must leave the word alone.
const CANCELLED: i32 = i32::MIN;

/// Token of a reader queued behind a writer: that writer has left and the reader holds a read
/// lock (it was counted in all along).
const TOKEN_RELEASED: usize = 1;
/// Token of a reader that stepped out of the count behind a writer and has waited
/// [`PATIENCE`]: the writer's unlock counted it back in, so it holds a read lock. (A
/// stepped-out reader woken with [`TOKEN_RELEASED`] tries again.)
const TOKEN_ADMITTED: usize = 2;
/// Token of the writer waiting for readers to drain: the last reader it waited for has left
/// (the writer re-checks `reader_wait` before it trusts it).
const TOKEN_DRAINED: usize = 1;

#[inline(always)]
fn count(word: u64) -> i32 {
    word as u32 as i32
}
#[inline(always)]
fn epoch(word: u64) -> u32 {
    (word >> 32) as u32
}
#[inline(always)]
fn pack(epoch: u32, count: i32) -> u64 {
    (u64::from(epoch) << 32) | u64::from(count as u32)
}

/// Go's `sync.RWMutex` without the data. The typed [`RwMutex`](super::RwMutex) documents the
/// algorithm, its guarantees and the state layout.
pub(crate) struct RawRwMutex {
    /// Writer exclusion (Go's `w`).
    w: RawMutex,
    /// `(epoch << 32) | readerCount as u32`; see the type docs.
    reader_count: AtomicU64,
    /// `(epoch << 32) | readerWait as u32`; written by the writer of `epoch` before it
    /// announces itself, then only decremented by departing readers of that epoch.
    reader_wait: AtomicU64,
    /// Readers that stepped out of the count behind a writer: raised before a reader leaves the
    /// count, lowered once it is back in it (or gave up). A writer's unlock wakes the reader
    /// queue when this is non-zero, even if nobody is counted; a downgrade waits for it to
    /// reach zero before it lets the next writer in.
    uncounted: AtomicU32,
    /// Readers (threads and tasks) waiting for the writer of the epoch they saw to leave
    /// (Go's `readerSem`). Each node's tag is the epoch it waits for: a writer's release
    /// wakes the counted readers of its own epoch (the next writer's may have linked already:
    /// a fast writer needs no `w`) and every stepped-out one (woken, they try again).
    readers: WaitQueue,
    /// The writer (holder of `w`) waiting for the readers inside to leave (Go's `writerSem`),
    /// counted ones and then those in reader slots.
    drain: WaitQueue,
    /// The reader slots (the read-biased fast path) and whether they are on.
    bias: ReaderBias,
    /// Whether the write lock is held by a *fast* writer: one that found the lock completely
    /// free and took it with one CAS on `reader_count`, without `w` (see "Fast writers" in the
    /// `RwMutex` docs). Written only by the writer holding the lock (set after it took it,
    /// cleared before it releases it), so its unlock reads its own value: Relaxed.
    fast: AtomicBool,
    /// Writers (holders of `w`, so at most one) waiting in `drain` for a fast writer to leave
    /// before they can announce themselves. Raised before the waiter's last look at the
    /// count; a writer's release reads it after the count (both SeqCst), so one of the two
    /// sees the other.
    blocked_writers: AtomicU32,
    /// Set by a fast writer's downgrade, cleared by the next holder of `w` once the readers
    /// that stepped out behind that writer are back in the count: the next writer lets them
    /// in first, as a downgrade through `w` does by keeping `w` until then.
    downgraded: AtomicBool,
}

/// The deadline `timeout` from now, or `None` when it is too far away to represent.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    now().checked_add(timeout)
}

impl RawRwMutex {
    /// An unlocked lock.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        RawRwMutex {
            w: RawMutex::new(),
            reader_count: AtomicU64::new(0),
            reader_wait: AtomicU64::new(0),
            uncounted: AtomicU32::new(0),
            readers: WaitQueue::with_extra(()),
            drain: WaitQueue::with_extra(()),
            bias: ReaderBias::new(),
            fast: AtomicBool::new(false),
            blocked_writers: AtomicU32::new(0),
            downgraded: AtomicBool::new(false),
        }
    }

    /// An unlocked lock.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        RawRwMutex {
            w: RawMutex::new(),
            reader_count: AtomicU64::new(0),
            reader_wait: AtomicU64::new(0),
            uncounted: AtomicU32::new(0),
            readers: WaitQueue::with_extra(()),
            drain: WaitQueue::with_extra(()),
            bias: ReaderBias::new(),
            fast: AtomicBool::new(false),
            blocked_writers: AtomicU32::new(0),
            downgraded: AtomicBool::new(false),
        }
    }

    // ---- readers ------------------------------------------------------------------------

    /// Takes a read lock, waiting while a writer holds the lock or waits for it (Go's `RLock`).
    #[inline]
    pub(crate) fn read(&self) {
        // Acquire: pairs with the Release of the last writer's unlock.
        let prev = self.reader_count.fetch_add(1, Ordering::Acquire);
        if count(prev) < 0 {
            // A writer is pending or active: wait for its epoch to end.
            let acquired = self.read_slow(epoch(prev), None);
            debug_assert!(acquired);
        }
    }

    /// Takes a read lock as [`read`](Self::read) does, through a reader slot when slots are
    /// on; the token says how, for [`read_unlock_token`](Self::read_unlock_token).
    #[inline]
    pub(crate) fn read_token(&self) -> ReadToken {
        if let Some(token) = self.try_slot() {
            return token;
        }
        // Acquire: pairs with the Release of the last writer's unlock.
        let prev = self.reader_count.fetch_add(1, Ordering::Acquire);
        if count(prev) < 0 {
            let acquired = self.read_slow(epoch(prev), None);
            debug_assert!(acquired);
        } else if count(prev) > 0 && self.bias.note_sharing() {
            // Other threads' counted readers keep being inside with us: use reader slots.
            self.enable_slots();
        }
        ReadToken::COUNTED
    }

    /// Turns reader slots on, from inside a counted read lock; if a writer announced itself
    /// meanwhile, turns them off again so that new readers wait behind it (SeqCst, against
    /// its announcement and its turning them off).
    #[cold]
    fn enable_slots(&self) {
        self.bias.enable();
        if count(self.reader_count.load(Ordering::SeqCst)) < 0 {
            self.bias.withdraw();
        }
    }

    /// [`try_read`](Self::try_read) through a reader slot when slots are on; the token says
    /// how the lock was taken.
    #[inline]
    pub(crate) fn try_read_token(&self) -> Option<ReadToken> {
        self.try_slot()
            .or_else(|| self.try_read().then_some(ReadToken::COUNTED))
    }

    /// A read lock through this thread's reader slot, if slots are on (waking the writer if
    /// this reader backed out of its slot last).
    #[inline]
    fn try_slot(&self) -> Option<ReadToken> {
        match self.bias.try_enter() {
            Enter::Held(token) => Some(token),
            Enter::Off => None,
            Enter::BackedOut => {
                self.wake_revoker();
                None
            }
        }
    }

    /// Releases a read lock taken by [`read_token`](Self::read_token) or
    /// [`try_read_token`](Self::try_read_token) (or a counted one, with
    /// [`ReadToken::COUNTED`]).
    ///
    /// # Safety
    /// The caller holds that read lock and gives it up.
    #[inline]
    pub(crate) unsafe fn read_unlock_token(&self, token: ReadToken) {
        if token == ReadToken::COUNTED {
            // SAFETY: forwarded contract.
            unsafe { self.read_unlock() };
            return;
        }
        // SAFETY: forwarded contract: `token` names the slot we hold.
        let slots_off = unsafe { self.bias.leave(token) };
        if slots_off {
            // A writer may wait for the slots, and they are empty now.
            self.wake_revoker();
        }
    }

    /// A reader left (or backed out of) its slot while slots were off and found them all
    /// empty: wake the writer if it sleeps waiting for that (it checks again; a writer still
    /// draining counted readers just checks again too).
    #[cold]
    fn wake_revoker(&self) {
        self.drain.lock().notify_front(TOKEN_DRAINED);
    }

    /// Takes a read lock if no writer holds or waits for the lock (Go's `TryRLock`).
    #[inline]
    pub(crate) fn try_read(&self) -> bool {
        let mut cur = self.reader_count.load(Ordering::Relaxed);
        loop {
            if count(cur) < 0 {
                return false;
            }
            match self.reader_count.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Takes a read lock, giving up at `deadline` (`None`: never). Returns whether it did.
    pub(crate) fn try_read_until(&self, deadline: Option<Instant>) -> bool {
        let prev = self.reader_count.fetch_add(1, Ordering::Acquire);
        count(prev) >= 0 || self.read_slow(epoch(prev), deadline)
    }

    /// Whether a reader that counted itself in during epoch `e` still waits: the writer of that
    /// epoch is pending or active. Acquire: once it returns `false` the reader holds the lock
    /// and must see the writer's critical section (pairs with the Release of its unlock).
    #[inline]
    fn read_blocked(&self, e: u32) -> bool {
        let word = self.reader_count.load(Ordering::Acquire);
        epoch(word) == e && count(word) < 0
    }

    /// The reader counted itself in while the writer of `epoch` was pending or active: wait
    /// until that writer has left. Returns `false` if it timed out (and then it has taken
    /// itself out of the count again).
    #[cold]
    #[inline(never)]
    fn read_slow(&self, e: u32, deadline: Option<Instant>) -> bool {
        let wait = diag::contended_wait(self);
        let acquired = self.read_wait(e, deadline);
        diag::contended_wait_ended(self, wait);
        acquired
    }

    /// [`read_slow`](Self::read_slow) without the diagnostics seam's contended points.
    ///
    /// The reader is counted in behind the writer of epoch `e`. It spins a little (if the
    /// writer leaves meanwhile it holds the lock). Then, unless it is *due* (it has waited
    /// [`PATIENCE`] since it first found a writer in its way), it steps out of the count and
    /// waits uncounted for that writer to leave, then tries again from the start. A due reader
    /// stays counted and waits as in Go: the writer's unlock lets it in, before any other
    /// writer. See the `RwMutex` docs ("Readers behind a writer") for why.
    fn read_wait(&self, mut e: u32, deadline: Option<Instant>) -> bool {
        let mut since: Option<Instant> = None;
        loop {
            // Counted in, spin only: a reader that is counted while it does not run (yielded
            // or parked) makes the next writer wait for the scheduler.
            let mut backoff = Backoff::new();
            loop {
                if !self.read_blocked(e) {
                    return true;
                }
                if !backoff.spin() {
                    break;
                }
            }
            let t = now();
            let first = *since.get_or_insert(t);
            if t.saturating_duration_since(first) >= PATIENCE {
                return self.read_wait_counted(e, deadline);
            }
            // Step out. `uncounted` covers us from before we leave the count until after we
            // are back in it (see `downgrade`). SeqCst: see `wait_epoch_end`.
            self.uncounted.fetch_add(1, Ordering::SeqCst);
            if self.read_cancel(e) {
                // The writer left before we could step out: it let us in.
                self.uncounted.fetch_sub(1, Ordering::Release);
                return true;
            }
            // Uncounted: yield a few times, then park, until that writer has left.
            let mut backoff = Backoff::new();
            let mut ended = false;
            while backoff.snooze() {
                if !self.read_blocked(e) {
                    ended = true;
                    break;
                }
            }
            if !ended {
                match self.wait_epoch_end(e, first, deadline) {
                    Some(TOKEN_ADMITTED) => {
                        // Due when the writer left: it counted us in.
                        self.uncounted.fetch_sub(1, Ordering::Release);
                        return true;
                    }
                    Some(_) => {}
                    None => {
                        // Timed out, and not counted: nothing to undo.
                        self.uncounted.fetch_sub(1, Ordering::Release);
                        return false;
                    }
                }
            }
            // Acquire: pairs with the Release of the last writer's unlock.
            let prev = self.reader_count.fetch_add(1, Ordering::Acquire);
            // Release: a downgrading writer that sees this sees our `+1` first.
            self.uncounted.fetch_sub(1, Ordering::Release);
            if count(prev) >= 0 {
                return true;
            }
            e = epoch(prev);
        }
    }

    /// A due reader, counted in behind the writer of epoch `e`, waits for that writer's unlock,
    /// which lets it in (Go's `RLock` wait). Returns `false` if it timed out (and then it has
    /// taken itself out of the count again).
    fn read_wait_counted(&self, e: u32, deadline: Option<Instant>) -> bool {
        let node = Waiter::new();
        {
            let mut q = self.readers.lock();
            // Checked under the queue lock: the writer's release changes the count before it
            // takes this lock to wake its readers, so either we see it gone or it sees us
            // linked (with its epoch as our tag).
            if !self.read_blocked(e) {
                return true;
            }
            // The writer whose release wakes us, if it has not already.
            q.set_tag(&node, u64::from(e));
            // SAFETY: `node` stays on this stack until `wait` returns, which is after it was
            // notified or unlinked itself.
            unsafe { q.push_back(&node, Kind::Thread) };
        }
        match self.readers.wait(&node, deadline, 0, |_| {}) {
            // The token's Acquire pairs with the writer's Release after its unlock.
            Some(_) => true,
            None => self.read_cancel(e),
        }
    }

    /// A reader that stepped out of the count (and raised `uncounted`) at `first` waits until
    /// the writer of epoch `e` has left. Returns the token it was woken with
    /// ([`TOKEN_ADMITTED`]: it holds a read lock; otherwise: try again; `Some(0)` when the
    /// writer had already left), or `None` if `deadline` passed first.
    fn wait_epoch_end(&self, e: u32, first: Instant, deadline: Option<Instant>) -> Option<usize> {
        let node = Waiter::new();
        {
            let mut q = self.readers.lock();
            // The caller raised `uncounted` (SeqCst) before this SeqCst load; the writer
            // releases (SeqCst) before it reads `uncounted` (`release`): either we see the
            // writer gone, or it sees us and wakes the queue.
            dekker_fence();
            let word = self.reader_count.load(Ordering::SeqCst);
            if epoch(word) != e || count(word) >= 0 {
                return Some(0);
            }
            // `since` marks the node as stepped out (counted readers link without one) and
            // tells the writer's unlock whether we are due.
            q.set_since(&node, Some(first));
            q.set_tag(&node, u64::from(e));
            // SAFETY: `node` stays on this stack until `wait` returns, which is after it was
            // notified or unlinked itself.
            unsafe { q.push_back(&node, Kind::Thread) };
        }
        self.readers.wait(&node, deadline, 0, |_| {})
    }

    /// A reader timed out behind the writer of `epoch_seen`: take our `+1` back if that writer
    /// is still there, in one CAS with the check; otherwise the writer already let us in.
    #[cold]
    fn read_cancel(&self, epoch_seen: u32) -> bool {
        let mut cur = self.reader_count.load(Ordering::Acquire);
        loop {
            if epoch(cur) != epoch_seen || count(cur) >= 0 {
                // The writer left (and counted us as a reader): we hold a read lock.
                return true;
            }
            // `count < 0` and we are part of it, so `cur - 1` cannot borrow from the epoch.
            match self.reader_count.compare_exchange_weak(
                cur,
                cur - 1,
                Ordering::Relaxed,
                Ordering::Acquire,
            ) {
                Ok(_) => return false,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Releases one read lock (Go's `RUnlock`).
    ///
    /// # Safety
    /// The caller holds a read lock and gives it up.
    #[inline]
    pub(crate) unsafe fn read_unlock(&self) {
        // Release: our reads of the data happen before a writer's Acquire.
        let prev = self.reader_count.fetch_sub(1, Ordering::Release);
        if count(prev) <= 0 {
            self.read_unlock_slow(prev);
            // Not a tail call: the contention profiler sees the unlocking caller's frame.
            core::sync::atomic::compiler_fence(Ordering::SeqCst);
        }
    }

    /// Go's `rUnlockSlow`: a writer of `epoch(prev)` waits for the readers that were inside when
    /// it announced itself; we are one of them.
    #[cold]
    fn read_unlock_slow(&self, prev: u64) {
        let c = count(prev);
        if c == 0 || c == -MAX_READERS {
            // Unreachable through guards; Go's fatal error.
            panic!("sync: RUnlock of unlocked RWMutex");
        }
        // Pairs with the writer's AcqRel announcement: its store of `reader_wait` is visible.
        fence(Ordering::Acquire);
        let e = epoch(prev);
        let mut cur = self.reader_wait.load(Ordering::Relaxed);
        loop {
            if epoch(cur) != e || count(cur) == CANCELLED {
                // That writer timed out and reopened the lock: nobody waits for us.
                return;
            }
            let left = count(cur) - 1;
            match self.reader_wait.compare_exchange_weak(
                cur,
                pack(e, left),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if left == 0 {
                        // Last reader out: wake the writer (it waited for us).
                        let charge = diag::contended_unlock(self);
                        self.wake_drained(e);
                        charge.record();
                    }
                    return;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// The last reader the writer of epoch `e` waited for has left: wake that writer if it
    /// sleeps. Under the queue lock, `reader_wait` still reads `(e, 0)` exactly while that
    /// writer has not moved on (a later writer stores its own epoch before it can queue), so
    /// a late notifier never wakes the wrong writer.
    #[cold]
    fn wake_drained(&self, e: u32) {
        let mut q = self.drain.lock();
        if self.reader_wait.load(Ordering::Relaxed) == pack(e, 0) {
            q.notify_front(TOKEN_DRAINED);
        }
    }

    // ---- writers ------------------------------------------------------------------------

    /// Takes the write lock (Go's `Lock`): as a fast writer if the lock is completely free;
    /// otherwise waits for other writers, then announces itself — from that moment new
    /// readers wait — and waits for the readers already inside to leave.
    #[inline]
    pub(crate) fn write(&self) {
        if self.fast_worth_trying() && self.try_write_fast() {
            return;
        }
        self.w.lock();
        let acquired = self.announce_and_drain(None);
        debug_assert!(acquired);
    }

    /// Takes the write lock if the lock is completely free (Go's `TryLock`), as a fast writer.
    #[inline]
    pub(crate) fn try_write(&self) -> bool {
        self.try_write_fast()
    }

    /// Whether a blocking writer should try [`try_write_fast`](Self::try_write_fast) first:
    /// not while reader slots are on, where a reader in a slot (which the count does not
    /// show) would make it announce itself only to withdraw.
    #[inline(always)]
    fn fast_worth_trying(&self) -> bool {
        !self.bias.is_on()
    }

    /// A fast writer: if no reader is counted and nobody holds or waits for `w`, announces
    /// itself with one CAS from a count of zero (so no counted reader is inside) and holds
    /// the lock without taking `w`. Then turns reader slots off; if a reader holds one, it
    /// withdraws and returns `false`.
    ///
    /// The look at `w` is only a hint (a writer may take `w` right after it): it keeps fast
    /// writers from overtaking writers queued on `w`. A writer that takes `w` while a fast
    /// writer holds the lock waits for it before announcing itself (`announce` sees the
    /// negative count).
    #[inline]
    fn try_write_fast(&self) -> bool {
        let cur = self.reader_count.load(Ordering::Relaxed);
        if count(cur) != 0 || self.w.state() != 0 {
            return false;
        }
        // SeqCst: Acquire pairs with the Release of the last writer's and readers' unlocks,
        // and as in `announce`, against a reader turning slots on.
        if self
            .reader_count
            .compare_exchange(
                cur,
                cur.wrapping_add(ANNOUNCE),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return false;
        }
        dekker_fence();
        // The count was zero: no counted reader to wait for (and none of this epoch will
        // ever leave through `read_unlock_slow`, so `reader_wait` is not used). Slot readers
        // may be inside.
        self.bias.turn_off();
        if self.bias.revoke() {
            self.fast.store(true, Ordering::Relaxed);
            return true;
        }
        // A reader holds a slot: withdraw, as an unlock does.
        self.bias.restore();
        self.release(0, "sync: Unlock of unlocked RWMutex");
        false
    }

    /// Takes the write lock, giving up at `deadline` (`None`: never); the deadline covers both
    /// phases (other writers, then the readers inside). Returns whether it did.
    pub(crate) fn try_write_until(&self, deadline: Option<Instant>) -> bool {
        let Some(deadline) = deadline else {
            self.write();
            return true;
        };
        if self.fast_worth_trying() && self.try_write_fast() {
            return true;
        }
        let timeout = deadline.saturating_duration_since(now());
        self.w.try_lock_for(timeout) && self.announce_and_drain(Some(deadline))
    }

    /// The writer holds `w`: waits for a fast writer to leave if one holds the lock, announces
    /// itself to readers and waits for the readers inside to leave. On a timeout, withdraws
    /// (see `RwMutex::try_write_for`; `w` is released too) and returns `false`.
    #[inline]
    fn announce_and_drain(&self, deadline: Option<Instant>) -> bool {
        let e = loop {
            // Acquire: if a fast writer downgraded before this, its `downgraded` is visible.
            let cur = self.reader_count.load(Ordering::Acquire);
            let waited = if count(cur) < 0 {
                self.wait_fast_writer(deadline)
            } else if self.downgraded.load(Ordering::Relaxed) {
                self.wait_stepped_out(deadline)
            } else if let Some(e) = self.announce(cur) {
                break e;
            } else {
                // The count moved: look again.
                true
            };
            if !waited {
                // SAFETY: we hold `w` and have not announced ourselves.
                unsafe { self.w.unlock() };
                return false;
            }
        };
        self.write_ready(e) || self.drain_slow(e, deadline)
    }

    /// The holder of `w`, after a fast writer's downgrade: yields until the readers that
    /// stepped out behind that writer are back in the count (they need no lock to do so, only
    /// a CPU), then clears `downgraded`. Returns `false` if `deadline` passed first. Returns at
    /// once, leaving `downgraded` set, if a fast writer holds the lock again.
    #[cold]
    fn wait_stepped_out(&self, deadline: Option<Instant>) -> bool {
        let mut backoff = Backoff::new();
        // Acquire: pairs with the Release of their `uncounted` decrements.
        while self.uncounted.load(Ordering::Acquire) != 0 {
            if count(self.reader_count.load(Ordering::Relaxed)) < 0 {
                return true;
            }
            if deadline.is_some_and(|d| now() >= d) {
                return false;
            }
            if !backoff.snooze() {
                yield_now();
            }
        }
        self.downgraded.store(false, Ordering::Relaxed);
        true
    }

    /// The writer holds `w` and saw the count at `cur` (no writer in): announce itself (from
    /// now on new counted readers wait) and count the readers inside that it must wait for.
    /// Returns the writer's epoch (see [`write_ready`](Self::write_ready)), or `None`,
    /// changing nothing, if the count has moved since `cur` (a reader came or left, or a
    /// fast writer came in): the caller looks again.
    #[inline]
    fn announce(&self, cur: u64) -> Option<u32> {
        debug_assert!(count(cur) >= 0);
        // Exact when the CAS below succeeds: only writers change the epoch, and none did.
        let e = epoch(cur).wrapping_add(1);
        // Published by the announcement below; departing readers of epoch `e` see it. (If
        // the CAS fails, nobody reads it: no reader of epoch `e` is inside yet.)
        self.reader_wait.store(pack(e, 0), Ordering::Relaxed);
        // SeqCst: Acquire pairs with departing readers' Release, Release publishes the store,
        // and against a reader turning slots on (`enable_slots`). A CAS, not an add, so that
        // it never lands on a fast writer's announcement.
        let prev = self
            .reader_count
            .compare_exchange_weak(
                cur,
                cur.wrapping_add(ANNOUNCE),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .ok()?;
        // New readers take the count from here on, and wait.
        dekker_fence();
        self.bias.turn_off();
        let active = count(prev);
        if active == 0 {
            return Some(e);
        }
        // Add the readers we wait for; some may have left already (count went negative).
        let mut cur = self.reader_wait.load(Ordering::Relaxed);
        loop {
            debug_assert_eq!(epoch(cur), e);
            let left = count(cur) + active;
            match self.reader_wait.compare_exchange_weak(
                cur,
                pack(e, left),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(e),
                Err(actual) => cur = actual,
            }
        }
    }

    /// The holder of `w` found a fast writer holding the lock: waits until the count shows no
    /// writer (yielding a little, then asleep in `drain`, where that writer's release wakes
    /// it). Returns `false` if `deadline` passed first.
    #[cold]
    #[inline(never)]
    fn wait_fast_writer(&self, deadline: Option<Instant>) -> bool {
        let wait = diag::contended_wait(self);
        let gone = self.wait_fast_writer_inner(deadline);
        diag::contended_wait_ended(self, wait);
        gone
    }

    /// [`wait_fast_writer`](Self::wait_fast_writer) without the diagnostics seam.
    fn wait_fast_writer_inner(&self, deadline: Option<Instant>) -> bool {
        // Acquire: pairs with the Release of that writer's unlock (we announce next, and the
        // announcement's CAS re-reads the count anyway).
        let writer_gone = || count(self.reader_count.load(Ordering::Acquire)) >= 0;
        let mut backoff = Backoff::new();
        while backoff.snooze() {
            if writer_gone() {
                return true;
            }
        }
        // SeqCst: raised before our last look at the count (below); the fast writer's release
        // changes the count before it reads this (`release`). One of us sees the other.
        self.blocked_writers.fetch_add(1, Ordering::SeqCst);
        let node = Waiter::new();
        let gone = loop {
            {
                let mut q = self.drain.lock();
                dekker_fence();
                // Under the queue lock: the release wakes us under it, after its change.
                if count(self.reader_count.load(Ordering::SeqCst)) >= 0 {
                    break true;
                }
                // SAFETY: `node` stays on this stack until `wait` returns, which is after it
                // was notified or unlinked itself.
                unsafe { q.push_back(&node, Kind::Thread) };
            }
            match self.drain.wait(&node, deadline, 0, |_| {}) {
                // Check again (the wake-up may be a late one meant for a drain).
                Some(_) => node.reset_token(),
                None => break false,
            }
        };
        self.blocked_writers.fetch_sub(1, Ordering::Relaxed);
        gone
    }

    /// Whether the readers the writer of epoch `e` waits for have all left. Acquire: pairs
    /// with the Release of every departing reader's decrement (a release sequence ending in
    /// the last one's).
    #[inline]
    fn drained(&self, e: u32) -> bool {
        self.reader_wait.load(Ordering::Acquire) == pack(e, 0)
    }

    /// Whether the writer of epoch `e` holds the lock: the counted readers it waits for have
    /// left, and then (only then: see `ReaderBias`) it has turned reader slots off and none is
    /// held.
    #[inline]
    fn write_ready(&self, e: u32) -> bool {
        self.drained(e) && self.bias.revoke()
    }

    #[cold]
    #[inline(never)]
    fn drain_slow(&self, e: u32, deadline: Option<Instant>) -> bool {
        let wait = diag::contended_wait(self);
        let acquired = self.drain_wait(e, deadline);
        diag::contended_wait_ended(self, wait);
        acquired
    }

    /// [`drain_slow`](Self::drain_slow) without the diagnostics seam's contended points.
    #[inline]
    fn drain_wait(&self, e: u32, deadline: Option<Instant>) -> bool {
        let mut backoff = Backoff::new();
        loop {
            if self.write_ready(e) {
                return true;
            }
            if !backoff.snooze() {
                break;
            }
        }
        let node = Waiter::new();
        loop {
            {
                let mut q = self.drain.lock();
                // Under the queue lock: the last counted reader, and a slot reader leaving while
                // slots are off, notify under it after their decrement.
                if self.write_ready(e) {
                    return true;
                }
                // SAFETY: `node` stays on this stack until `wait` returns, which is after it
                // was notified or unlinked itself.
                unsafe { q.push_back(&node, Kind::Thread) };
            }
            match self.drain.wait(&node, deadline, 0, |_| {}) {
                // Check again under the lock (and relink if it was not for us).
                Some(_) => node.reset_token(),
                None => return self.write_cancel(e),
            }
        }
    }

    /// The writer of epoch `e` timed out while readers were still inside. Either the last
    /// reader got there first (then we own the lock if no reader slot is held either, and
    /// otherwise withdraw), or we mark the epoch cancelled in the same CAS so that no departing
    /// reader counts towards it any more, reopen the lock to readers, and pass on `w`.
    #[cold]
    fn write_cancel(&self, e: u32) -> bool {
        let mut cur = self.reader_wait.load(Ordering::Acquire);
        loop {
            debug_assert_eq!(epoch(cur), e);
            if count(cur) == 0 {
                if self.bias.revoke() {
                    return true;
                }
                // Counted readers gone, a slot still held: withdraw.
                // SAFETY: we hold `w` and have announced ourselves; withdrawing is an unlock.
                unsafe { self.write_unlock() };
                return false;
            }
            match self.reader_wait.compare_exchange_weak(
                cur,
                pack(e, CANCELLED),
                Ordering::Relaxed,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        // SAFETY: we hold `w` and have announced ourselves; withdrawing is an unlock.
        unsafe { self.write_unlock() };
        false
    }

    /// Go's `Unlock` (also the second half of a cancelled timed write): reopen the lock to
    /// readers, wake those that queued behind us, then let the next writer in (a writer that
    /// took the lock through `w` releases `w` last).
    ///
    /// # Safety
    /// The caller holds the write lock (or is a writer withdrawing) and gives it up.
    #[inline]
    pub(crate) unsafe fn write_unlock(&self) {
        let fast = self.take_fast();
        // Slot readers may enter from here: our critical section is over.
        self.bias.restore();
        self.release(0, "sync: Unlock of unlocked RWMutex");
        if !fast {
            // SAFETY: `w` is held from a writer's announcement until here (its guard's drop
            // or its withdrawal), by the writer we act for.
            unsafe { self.w.unlock() };
        }
    }

    /// Whether the writer holding the lock is a fast writer (and from now on, none is).
    #[inline(always)]
    fn take_fast(&self) -> bool {
        let fast = self.fast.load(Ordering::Relaxed);
        if fast {
            // Published to the next writer by our release.
            self.fast.store(false, Ordering::Relaxed);
        }
        fast
    }

    /// Turns the write lock into a read lock without a gap in which another writer could get
    /// in (std's and parking_lot's `downgrade`; Go has none). The readers that queued behind
    /// this writer are let in at once, as by an unlock; the next writer then announces itself
    /// and waits for them and for us, as for any readers inside.
    ///
    /// One atomic change does the write unlock's `RELEASE` and our own reader `+1` together,
    /// so no state exists in which the lock is free: a writer arriving after it sees
    /// `count > 0` (it must wait for us), a reader arriving after it gets in.
    ///
    /// # Safety
    /// The caller holds the write lock; it holds a read lock afterwards.
    #[inline]
    pub(crate) unsafe fn downgrade(&self) {
        let fast = self.take_fast();
        if fast {
            // No `w` to keep until the readers that stepped out behind us are back in: the
            // next holder of `w` waits for them instead. Published by our release.
            self.downgraded.store(true, Ordering::Relaxed);
        }
        // Slot readers may enter from here, as after an unlock.
        self.bias.restore();
        self.release(1, "sync: downgrade of an RWMutex that is not write-locked");
        if fast {
            return;
        }
        // The readers that stepped out behind us must get in before the next writer, as the
        // counted ones did above: hold `w` until each is back in the count (they need no lock
        // to do so, only a CPU; and no fast writer can come in while we read). Acquire: pairs
        // with their Release after their `+1`.
        let mut backoff = Backoff::new();
        while self.uncounted.load(Ordering::Acquire) != 0 {
            if !backoff.snooze() {
                yield_now();
            }
        }
        // SAFETY: held since this writer's announcement (see `write_unlock`).
        unsafe { self.w.unlock() };
    }

    /// A writer leaves, and with `plus` = 1 holds a read lock (a downgrade): reopens the lock
    /// to readers (one add), then wakes the readers waiting for it and a writer blocked behind
    /// a fast writer. Panics with `misuse` if no writer holds the lock (unreachable through
    /// guards).
    ///
    /// The next writer may announce itself as soon as the add is done (a fast writer needs no
    /// `w`), before this writer has woken its readers. So the wake-up picks by epoch: counted
    /// readers linked behind this writer's epoch hold a read lock (they were counted in all
    /// along), counted readers of a later epoch stay asleep, and readers that stepped out are
    /// woken to try again, or counted in on their behalf if they are due and no writer has
    /// announced itself since (see [`admit`](Self::admit)).
    #[inline]
    fn release(&self, plus: u64, misuse: &'static str) {
        if count(self.reader_count.load(Ordering::Relaxed)) >= 0 {
            panic!("{misuse}");
        }
        // Release: our writes happen before the next reader's and writer's Acquire. SeqCst:
        // before our SeqCst loads of `uncounted` and `blocked_writers` (see there).
        let prev = self
            .reader_count
            .fetch_add(RELEASE.wrapping_add(plus), Ordering::SeqCst);
        // Checked above, by the only thread that may release: cannot fail through guards.
        assert!(count(prev) < 0, "{misuse}");
        dekker_fence();
        if count(prev) != -MAX_READERS || self.uncounted.load(Ordering::SeqCst) != 0 {
            self.wake_readers(epoch(prev));
        }
        if self.blocked_writers.load(Ordering::SeqCst) != 0 {
            self.wake_blocked_writer();
        }
    }

    /// Wakes the readers queued behind the writer of epoch `e`, which just left (see
    /// [`release`](Self::release)).
    #[cold]
    #[inline(never)]
    fn wake_readers(&self, e: u32) {
        // Readers queued behind this writer: it made them wait (charged once they are woken).
        let charge = diag::contended_unlock(self);
        let mut q = self.readers.lock();
        let mut t = None;
        q.notify_where(|q, node| {
            // SAFETY: `notify_where` hands us nodes linked in this queue.
            let (since, tag) = unsafe { (q.since(node), q.tag(node)) };
            match since {
                // Counted in behind us all along: it holds a read lock now. Counted behind a
                // later writer: not ours to wake.
                None => (tag == u64::from(e)).then_some(TOKEN_RELEASED),
                Some(first) => {
                    let t = *t.get_or_insert_with(now);
                    if t.saturating_duration_since(first) >= PATIENCE && self.admit(e) {
                        Some(TOKEN_ADMITTED)
                    } else {
                        // Stepped out: it tries again.
                        Some(TOKEN_RELEASED)
                    }
                }
            }
        });
        drop(q);
        charge.record();
    }

    /// Counts a due stepped-out reader in on its behalf, if no writer has announced itself
    /// since the writer of epoch `e` left (the count is `>= 0` and the epoch still `e`);
    /// returns whether it did. (The reader learns it from its token, whose Release/Acquire
    /// also orders the writer's critical section before its read: Relaxed here.)
    fn admit(&self, e: u32) -> bool {
        let mut cur = self.reader_count.load(Ordering::Relaxed);
        loop {
            if epoch(cur) != e || count(cur) < 0 {
                return false;
            }
            match self.reader_count.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Wakes the writer blocked behind a fast writer (it looks at the count again).
    #[cold]
    fn wake_blocked_writer(&self) {
        let mut q = self.drain.lock();
        q.notify_front(TOKEN_DRAINED);
    }

    // ---- async waiters -------------------------------------------------------------------
    //
    // A future holds an `AsyncWait` (pinned inside it) and drives the same state machine as a
    // blocked thread, one poll at a time, linking its node into the same FIFO queues with its
    // waker: threads and tasks are served in one order.

    /// Polls an async read (Go's `RLock` as a future): `Ready` once the read lock is held.
    ///
    /// # Safety
    /// `w` is used with this lock only, stays at its address from the first poll until this
    /// returns `Ready` or [`cancel_read_async`](Self::cancel_read_async) has run, and the
    /// caller calls `cancel_read_async` if it gives up before `Ready`.
    pub(crate) unsafe fn poll_read_async(&self, w: &AsyncWait, cx: &mut Context<'_>) -> Poll<()> {
        let e = match w.epoch.get() {
            Some(e) => e,
            None => {
                let prev = self.reader_count.fetch_add(1, Ordering::Acquire);
                if count(prev) >= 0 {
                    return Poll::Ready(());
                }
                w.epoch.set(Some(epoch(prev)));
                epoch(prev)
            }
        };
        if w.linked.get() {
            // Notified means released: the writer counted us in before it left.
            return match self.readers.poll_wait(&w.node, cx) {
                Poll::Ready(_) => {
                    w.finish();
                    Poll::Ready(())
                }
                Poll::Pending => Poll::Pending,
            };
        }
        let mut q = self.readers.lock();
        if !self.read_blocked(e) {
            w.finish();
            return Poll::Ready(());
        }
        // The writer whose release wakes us (see `wake_readers`).
        q.set_tag(&w.node, u64::from(e));
        // SAFETY: the caller keeps `w` in place until it is notified or cancelled.
        unsafe { q.push_back(&w.node, Kind::Task(cx.waker())) };
        w.linked.set(true);
        Poll::Pending
    }

    /// Gives up an async read that has not returned `Ready` (its future is dropped): takes it
    /// out of the queue and the count, or, if the writer let it in meanwhile, releases the
    /// read lock it got. A no-op after `Ready` or before the first poll.
    pub(crate) fn cancel_read_async(&self, w: &AsyncWait) {
        let Some(e) = w.epoch.get() else {
            return;
        };
        let was_linked = w.linked.get();
        w.finish();
        let holds = if was_linked && self.readers.cancel(&w.node, |_| {}).is_some() {
            true
        } else {
            self.read_cancel(e)
        };
        if holds {
            // SAFETY: we hold a read lock nobody else knows of.
            unsafe { self.read_unlock() };
        }
    }

    /// The lock writers take among themselves (Go's `w`). An async writer acquires it first
    /// (a `RawMutex` async lock), then polls [`poll_write_async`](Self::poll_write_async).
    pub(crate) fn writer_lock(&self) -> &RawMutex {
        &self.w
    }

    /// Polls an async write whose writer already holds [`writer_lock`](Self::writer_lock):
    /// the first poll announces the writer (new readers wait from then on; if a fast writer
    /// holds the lock, it first waits in `drain` for that writer to leave), later polls wait
    /// for the readers inside to leave. `Ready` once the write lock is held.
    ///
    /// # Safety
    /// The caller holds `writer_lock()` for this write, and `w` is as for
    /// [`poll_read_async`](Self::poll_read_async); if it gives up before `Ready` it calls
    /// [`cancel_write_async`](Self::cancel_write_async) (which also releases `writer_lock()`).
    pub(crate) unsafe fn poll_write_async(&self, w: &AsyncWait, cx: &mut Context<'_>) -> Poll<()> {
        let e = match w.epoch.get() {
            Some(e) => e,
            None => loop {
                if w.linked.get() {
                    // Blocked behind a fast writer.
                    match self.drain.poll_wait(&w.node, cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(_) => {
                            w.linked.set(false);
                            w.node.reset_token();
                            self.blocked_writers.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                }
                // Acquire: as in `announce_and_drain`.
                let cur = self.reader_count.load(Ordering::Acquire);
                if count(cur) >= 0 {
                    if self.downgraded.load(Ordering::Relaxed) {
                        // After a fast writer's downgrade (see `wait_stepped_out`): the
                        // readers that stepped out behind it get in first. They need only a
                        // CPU; yield to the executor meanwhile.
                        if self.uncounted.load(Ordering::Acquire) != 0 {
                            cx.waker().wake_by_ref();
                            return Poll::Pending;
                        }
                        self.downgraded.store(false, Ordering::Relaxed);
                    }
                    match self.announce(cur) {
                        Some(e) => {
                            if self.write_ready(e) {
                                return Poll::Ready(());
                            }
                            w.epoch.set(Some(e));
                            break e;
                        }
                        // The count moved: look again.
                        None => continue,
                    }
                }
                // A fast writer holds the lock: wait for its release to wake us (as
                // `wait_fast_writer` does).
                self.blocked_writers.fetch_add(1, Ordering::SeqCst);
                let mut q = self.drain.lock();
                dekker_fence();
                if count(self.reader_count.load(Ordering::SeqCst)) >= 0 {
                    drop(q);
                    self.blocked_writers.fetch_sub(1, Ordering::Relaxed);
                    continue;
                }
                // SAFETY: the caller keeps `w` in place until it is notified or cancelled.
                unsafe { q.push_back(&w.node, Kind::Task(cx.waker())) };
                w.linked.set(true);
                return Poll::Pending;
            },
        };
        if w.linked.get() {
            match self.drain.poll_wait(&w.node, cx) {
                Poll::Pending => return Poll::Pending,
                // Check again under the lock (and relink if it was not for us).
                Poll::Ready(_) => {
                    w.linked.set(false);
                    w.node.reset_token();
                }
            }
        }
        let mut q = self.drain.lock();
        if self.write_ready(e) {
            w.finish();
            return Poll::Ready(());
        }
        // SAFETY: the caller keeps `w` in place until it is notified or cancelled.
        unsafe { q.push_back(&w.node, Kind::Task(cx.waker())) };
        w.linked.set(true);
        Poll::Pending
    }

    /// Gives up an async write that has not returned `Ready`, releasing `writer_lock()`: as a
    /// timed-out `try_write_for` (the readers inside stop counting, those queued behind it are
    /// let in). If the last reader left meanwhile, the write lock it got is released.
    ///
    /// # Safety
    /// The caller holds `writer_lock()` for this write. Before the first poll this only
    /// releases `writer_lock()`.
    pub(crate) unsafe fn cancel_write_async(&self, w: &AsyncWait) {
        let Some(e) = w.epoch.get() else {
            // Not announced (or already done): only `w` to give back, and the wait behind a
            // fast writer, if any, to leave.
            if w.linked.get() {
                w.finish();
                // A notification that got there first needs no answer: it only said "look
                // again", and nobody else waits for that writer but us.
                let _ = self.drain.cancel(&w.node, |_| {});
                self.blocked_writers.fetch_sub(1, Ordering::Relaxed);
            }
            // SAFETY: the caller holds `w`.
            unsafe { self.w.unlock() };
            return;
        };
        let was_linked = w.linked.get();
        w.finish();
        if was_linked {
            // Linked or notified, the count decides (a notification may be a late one).
            let _ = self.drain.cancel(&w.node, |_| {});
        }
        let holds = self.write_cancel(e);
        if holds {
            // SAFETY: we hold the write lock nobody else knows of.
            unsafe { self.write_unlock() };
        }
    }

    // ---- observation --------------------------------------------------------------------

    /// Go's `readerCount` without the writer offset, plus the readers that stepped out of it:
    /// readers holding the lock plus, while a writer is pending or active, readers waiting
    /// behind it. A snapshot.
    pub(crate) fn readers(&self) -> usize {
        let c = count(self.reader_count.load(Ordering::Relaxed));
        let counted = if c >= 0 { c } else { c + MAX_READERS };
        counted as usize + self.uncounted.load(Ordering::Relaxed) as usize + self.bias.holders()
    }

    /// Whether a writer holds the lock or has announced itself. A snapshot.
    pub(crate) fn is_write_locked(&self) -> bool {
        count(self.reader_count.load(Ordering::Relaxed)) < 0
    }

    /// Whether readers take reader slots now. A snapshot.
    pub(crate) fn reader_slots_on(&self) -> bool {
        self.bias.is_on()
    }

    /// Turns reader slots on as a reader that found sharing does: from inside a counted read
    /// lock (waits for a writer like any reader). For tests and loom models, which would
    /// otherwise need many overlapping reads from several threads.
    #[cfg(any(test, loom))]
    pub(crate) fn enable_reader_slots(&self) {
        self.read();
        self.enable_slots();
        // SAFETY: the read lock taken above.
        unsafe { self.read_unlock() };
    }
}

/// An async reader's or writer's wait on a [`RawRwMutex`]: its queue node and where it stands.
/// Lives pinned inside the future that polls it (see [`RawRwMutex::poll_read_async`]).
pub(crate) struct AsyncWait {
    node: Waiter,
    /// The writer epoch this waiter is counted behind (a reader) or drains (a writer); `None`
    /// before the first poll and once it is done.
    epoch: Cell<Option<u32>>,
    /// Whether `node` is linked in one of the lock's queues.
    linked: Cell<bool>,
}

impl AsyncWait {
    /// A wait that has not started.
    pub(crate) fn new() -> Self {
        AsyncWait {
            node: Waiter::new(),
            epoch: Cell::new(None),
            linked: Cell::new(false),
        }
    }

    fn finish(&self) {
        self.epoch.set(None);
        self.linked.set(false);
    }
}

impl core::fmt::Debug for RawRwMutex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawRwMutex")
            .field("readers", &self.readers())
            .field("write_locked", &self.is_write_locked())
            .field("reader_slots", &self.reader_slots_on())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    /// A waker that counts its wake-ups.
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (Arc::clone(&c), Waker::from(c))
    }

    #[test]
    fn async_reader_queues_behind_a_writer_and_is_released_by_its_unlock() {
        let l = RawRwMutex::new();
        let (woken, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        l.write();
        let r = Box::pin(AsyncWait::new());
        // SAFETY: `r` is pinned in a box and polled to `Ready` below.
        assert!(unsafe { l.poll_read_async(&r, &mut cx) }.is_pending());
        // SAFETY: the same pinned `r`.
        assert!(unsafe { l.poll_read_async(&r, &mut cx) }.is_pending());
        assert_eq!(l.readers(), 1);
        // SAFETY: held since `write` above.
        unsafe { l.write_unlock() };
        assert_eq!(woken.0.load(SeqCst), 1);
        // SAFETY: the same pinned `r`.
        assert!(unsafe { l.poll_read_async(&r, &mut cx) }.is_ready());
        assert!(!l.try_write(), "the released reader holds a read lock");
        // SAFETY: the read lock taken by the future above.
        unsafe { l.read_unlock() };
        assert!(l.try_write());
    }

    #[test]
    fn cancelled_async_reader_leaves_no_reader_behind() {
        let l = RawRwMutex::new();
        let (_, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        l.write();
        let r = Box::pin(AsyncWait::new());
        // SAFETY: pinned; cancelled below.
        assert!(unsafe { l.poll_read_async(&r, &mut cx) }.is_pending());
        l.cancel_read_async(&r);
        assert_eq!(l.readers(), 0);
        // SAFETY: held since `write` above.
        unsafe { l.write_unlock() };
        assert!(l.try_write());
        // SAFETY: taken just above.
        unsafe { l.write_unlock() };
        // Cancelled after the writer let it in: the read lock it got is given back.
        l.write();
        let r = Box::pin(AsyncWait::new());
        // SAFETY: pinned; cancelled below.
        assert!(unsafe { l.poll_read_async(&r, &mut cx) }.is_pending());
        // SAFETY: held since `write` above.
        unsafe { l.write_unlock() };
        l.cancel_read_async(&r);
        assert!(l.try_write());
    }

    #[test]
    fn async_writer_drains_readers_and_cancels_cleanly() {
        let l = RawRwMutex::new();
        let (woken, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        l.read();
        assert!(l.writer_lock().try_lock());
        let w = Box::pin(AsyncWait::new());
        // SAFETY: pinned; we hold `writer_lock()`.
        assert!(unsafe { l.poll_write_async(&w, &mut cx) }.is_pending());
        assert!(!l.try_read(), "an announced writer keeps new readers out");
        // SAFETY: the read lock taken above.
        unsafe { l.read_unlock() };
        assert_eq!(woken.0.load(SeqCst), 1);
        // SAFETY: the same pinned `w`, still holding `writer_lock()`.
        assert!(unsafe { l.poll_write_async(&w, &mut cx) }.is_ready());
        // SAFETY: the write lock taken by the future.
        unsafe { l.write_unlock() };

        // Cancelled while draining: readers are let in again, `w` is free.
        l.read();
        assert!(l.writer_lock().try_lock());
        let w = Box::pin(AsyncWait::new());
        // SAFETY: pinned; we hold `writer_lock()`.
        assert!(unsafe { l.poll_write_async(&w, &mut cx) }.is_pending());
        // SAFETY: as above.
        unsafe { l.cancel_write_async(&w) };
        assert!(l.try_read());
        // SAFETY: two read locks taken above.
        unsafe {
            l.read_unlock();
            l.read_unlock();
        }
        assert!(l.try_write());
    }

    /// Waits (yielding) until `cond` holds; panics after 10 s.
    fn wait_until(what: &str, cond: impl Fn() -> bool) {
        let start = std::time::Instant::now();
        while !cond() {
            assert!(start.elapsed().as_secs() < 10, "timed out waiting: {what}");
            std::thread::yield_now();
        }
    }

    /// The reader parked behind a writer: linked in the reader queue.
    fn parked_readers(l: &RawRwMutex) -> usize {
        l.readers.lock().len()
    }

    #[test]
    fn blocked_thread_reader_waits_out_of_the_count_and_retries() {
        let l = Arc::new(RawRwMutex::new());
        l.write();
        let reader = {
            let l = Arc::clone(&l);
            std::thread::spawn(move || {
                l.read();
                // SAFETY: taken just above.
                unsafe { l.read_unlock() };
            })
        };
        wait_until("the reader parked", || parked_readers(&l) == 1);
        // Not due yet: it stepped out, so the next writer would not wait for it.
        assert_eq!(count(l.reader_count.load(SeqCst)), -MAX_READERS);
        assert_eq!(l.uncounted.load(SeqCst), 1);
        assert_eq!(l.readers(), 1, "readers() still shows it waiting");
        // SAFETY: held since `write` above.
        unsafe { l.write_unlock() };
        reader.join().unwrap();
        assert_eq!(l.uncounted.load(SeqCst), 0);
        assert_eq!(l.readers(), 0);
        assert!(l.try_write());
    }

    #[test]
    fn due_reader_is_counted_in_by_the_writers_unlock() {
        let l = Arc::new(RawRwMutex::new());
        let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
        l.write();
        let reader = {
            let (l, release) = (Arc::clone(&l), Arc::clone(&release));
            std::thread::spawn(move || {
                l.read();
                wait_until("released by the test", || release.load(SeqCst));
                // SAFETY: taken just above.
                unsafe { l.read_unlock() };
            })
        };
        wait_until("the reader parked", || parked_readers(&l) == 1);
        std::thread::sleep(PATIENCE * 3);
        // SAFETY: held since `write` above.
        unsafe { l.write_unlock() };
        // Counted in by the unlock itself (the reader holds the lock from then on, and keeps
        // it until released): a writer arriving now has to wait for it. Without the admission
        // the count would stay 0 until the woken reader ran and tried again.
        assert_eq!(count(l.reader_count.load(SeqCst)), 1);
        assert!(!l.try_write(), "a writer got in past a due reader");
        release.store(true, SeqCst);
        reader.join().unwrap();
        assert_eq!(l.readers(), 0);
        assert!(l.try_write());
    }

    /// A lock whose reader slots are on.
    fn with_slots() -> RawRwMutex {
        let l = RawRwMutex::new();
        l.enable_reader_slots();
        assert!(l.reader_slots_on());
        l
    }

    #[test]
    fn slot_reader_excludes_writers_and_is_counted() {
        let l = with_slots();
        let token = l.read_token();
        assert_ne!(
            token,
            ReadToken::COUNTED,
            "slots are on: the read takes one"
        );
        assert_eq!(l.readers(), 1);
        assert!(!l.try_write(), "a writer got in past a slot reader");
        assert!(
            l.reader_slots_on(),
            "a failed try_write turns slots back on"
        );
        // SAFETY: taken just above.
        unsafe { l.read_unlock_token(token) };
        assert_eq!(l.readers(), 0);
        assert!(l.try_write());
        assert!(!l.reader_slots_on(), "a writer turned slots off");
        assert_eq!(l.try_read_token(), None);
        // SAFETY: taken just above.
        unsafe { l.write_unlock() };
        assert!(
            l.reader_slots_on(),
            "the writer's unlock turns slots back on"
        );
    }

    #[test]
    fn writer_sleeping_on_a_slot_reader_is_woken_by_its_unlock() {
        let l = Arc::new(with_slots());
        let token = l.read_token();
        assert_ne!(token, ReadToken::COUNTED);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let writer = {
            let l = Arc::clone(&l);
            std::thread::spawn(move || {
                l.write();
                done_tx.send(()).unwrap();
                // SAFETY: taken just above.
                unsafe { l.write_unlock() };
            })
        };
        wait_until("the writer parked", || l.drain.lock().len() == 1);
        assert!(
            done_rx.try_recv().is_err(),
            "the writer got in past a slot reader"
        );
        // SAFETY: taken above.
        unsafe { l.read_unlock_token(token) };
        done_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the slot reader's unlock did not wake the writer");
        writer.join().unwrap();
    }

    /// Takes and releases `n` read locks on a fresh thread while the caller holds one through
    /// the count, so that each of them finds another reader inside.
    fn overlapping_reads(l: &RawRwMutex, n: usize) {
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..n {
                    let token = l.read_token();
                    // SAFETY: taken just above.
                    unsafe { l.read_unlock_token(token) };
                }
            });
        });
    }

    #[test]
    fn readers_sharing_across_threads_turn_slots_on_and_one_thread_does_not() {
        let l = RawRwMutex::new();
        l.read();
        // Nested reads on one thread: never sharing.
        for _ in 0..1000 {
            let token = l.read_token();
            // SAFETY: taken just above.
            unsafe { l.read_unlock_token(token) };
        }
        assert!(
            !l.reader_slots_on(),
            "one thread's nested reads turned slots on"
        );
        // Overlaps from other threads: on after a few.
        for _ in 0..8 {
            overlapping_reads(&l, 64);
        }
        assert!(
            l.reader_slots_on(),
            "sharing across threads did not turn slots on"
        );
        // SAFETY: taken above.
        unsafe { l.read_unlock() };
        let token = l.read_token();
        assert_ne!(token, ReadToken::COUNTED);
        // SAFETY: taken just above.
        unsafe { l.read_unlock_token(token) };
    }

    #[test]
    fn writers_turn_slots_off_when_few_reads_come_between_them() {
        let l = with_slots();
        let mut writes = 0;
        while l.reader_slots_on() {
            assert!(writes < 10, "slots stayed on with no reads between writes");
            l.write();
            // SAFETY: taken just above.
            unsafe { l.write_unlock() };
            writes += 1;
        }
        assert!(
            writes > 1,
            "the first write after turning slots on should not judge them"
        );
        // Many reads per write keep them on.
        let l = with_slots();
        for _ in 0..20 {
            for _ in 0..100 {
                let token = l.read_token();
                assert_ne!(token, ReadToken::COUNTED);
                // SAFETY: taken just above.
                unsafe { l.read_unlock_token(token) };
            }
            l.write();
            // SAFETY: taken just above.
            unsafe { l.write_unlock() };
            assert!(l.reader_slots_on(), "slots that pay were turned off");
        }
    }

    #[test]
    fn timed_writer_withdraws_from_a_slot_reader() {
        let l = with_slots();
        let token = l.read_token();
        assert_ne!(token, ReadToken::COUNTED);
        let deadline = now() + Duration::from_millis(20);
        assert!(
            !l.try_write_until(Some(deadline)),
            "a timed writer got in past a slot reader"
        );
        assert!(
            !l.is_write_locked(),
            "the withdrawn writer left itself announced"
        );
        assert!(l.reader_slots_on(), "the withdrawn writer left slots off");
        // Readers get in again; the writer lock is free.
        let second = l.read_token();
        // SAFETY: both taken above.
        unsafe {
            l.read_unlock_token(second);
            l.read_unlock_token(token);
        }
        assert!(l.try_write());
    }

    #[test]
    fn constants_move_count_and_epoch_as_documented() {
        let w = pack(7, 3);
        let announced = w.wrapping_add(ANNOUNCE);
        assert_eq!(epoch(announced), 8);
        assert_eq!(count(announced), 3 - MAX_READERS);
        let released = (announced + 2).wrapping_add(RELEASE);
        assert_eq!(epoch(released), 8);
        assert_eq!(count(released), 5);
        // A downgrade: the writer leaves and counts itself in as a reader, in one add.
        let downgraded = (announced + 2).wrapping_add(RELEASE.wrapping_add(1));
        assert_eq!(epoch(downgraded), 8);
        assert_eq!(count(downgraded), 6);
        // Epoch wrap-around keeps the count intact.
        let w = pack(u32::MAX, 0).wrapping_add(ANNOUNCE);
        assert_eq!((epoch(w), count(w)), (0, -MAX_READERS));
        let w = w.wrapping_add(RELEASE);
        assert_eq!((epoch(w), count(w)), (0, 0));
    }

    /// A writer that found the lock free holds it without `w`: the next writer can take `w`
    /// (and queue behind it) without waiting for the fast writer's unlock.
    #[test]
    fn writer_on_a_free_lock_is_fast_and_leaves_w_alone() {
        let l = RawRwMutex::new();
        l.write();
        assert!(l.fast.load(SeqCst), "took the lock through `w`");
        assert_eq!(l.w.state(), 0);
        assert_eq!(count(l.reader_count.load(SeqCst)), -MAX_READERS);
        assert!(!l.try_write() && !l.try_read());
        // SAFETY: held since `write` above.
        unsafe { l.write_unlock() };
        assert!(!l.fast.load(SeqCst));
        assert_eq!(count(l.reader_count.load(SeqCst)), 0);
        // A writer queued on `w` keeps fast writers out: they would overtake it.
        l.w.lock();
        assert!(!l.try_write(), "a fast writer overtook the holder of `w`");
        // SAFETY: taken just above.
        unsafe { l.w.unlock() };
        assert!(l.try_write());
    }

    /// A writer that takes `w` while a fast writer holds the lock waits for it without
    /// announcing itself on top of it (one writer's offset in the count, never two), asleep in
    /// `drain`; the fast writer's unlock wakes it and it gets the lock.
    #[test]
    fn writer_behind_a_fast_writer_sleeps_until_its_unlock() {
        let l = Arc::new(RawRwMutex::new());
        l.write();
        let got = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (l, got) = (Arc::clone(&l), Arc::clone(&got));
            std::thread::spawn(move || {
                l.write();
                got.store(true, SeqCst);
                // SAFETY: taken just above.
                unsafe { l.write_unlock() };
            })
        };
        wait_until("the second writer sleeps", || l.drain.lock().len() == 1);
        assert_eq!(l.blocked_writers.load(SeqCst), 1);
        assert!(
            l.w.is_locked(),
            "the second writer holds `w` while it waits"
        );
        assert_eq!(count(l.reader_count.load(SeqCst)), -MAX_READERS);
        assert!(!got.load(SeqCst));
        // SAFETY: held since `write` above.
        unsafe { l.write_unlock() };
        wait_until("the second writer got the lock", || got.load(SeqCst));
        writer.join().unwrap();
        assert_eq!(l.blocked_writers.load(SeqCst), 0);
        assert_eq!(l.w.state(), 0);
        assert!(l.try_write());
    }

    /// A timed writer behind a fast writer gives up at its deadline and leaves nothing behind:
    /// `w` free, no blocked writer, the fast writer's lock intact.
    #[test]
    fn timed_writer_behind_a_fast_writer_gives_up_cleanly() {
        let l = Arc::new(RawRwMutex::new());
        l.write();
        let timed = {
            let l = Arc::clone(&l);
            std::thread::spawn(move || l.try_write_until(Some(now() + Duration::from_millis(50))))
        };
        assert!(!timed.join().unwrap());
        assert_eq!(l.w.state(), 0, "the timed writer kept `w`");
        assert_eq!(l.blocked_writers.load(SeqCst), 0);
        assert!(l.drain.lock().is_empty());
        assert_eq!(count(l.reader_count.load(SeqCst)), -MAX_READERS);
        // SAFETY: held since `write` above.
        unsafe { l.write_unlock() };
        assert!(l.try_write());
    }

    /// An async writer holding `w` behind a fast writer: pending (linked in `drain`) until the
    /// fast writer's unlock wakes it, then it announces itself and holds the lock; cancelled
    /// instead, it unlinks and gives `w` back.
    #[test]
    fn async_writer_behind_a_fast_writer() {
        let l = RawRwMutex::new();
        let (woken, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        l.write();
        assert!(l.writer_lock().try_lock());
        let w = Box::pin(AsyncWait::new());
        // SAFETY: pinned; we hold `writer_lock()`; polled to `Ready` below.
        assert!(unsafe { l.poll_write_async(&w, &mut cx) }.is_pending());
        assert_eq!(l.blocked_writers.load(SeqCst), 1);
        assert_eq!(count(l.reader_count.load(SeqCst)), -MAX_READERS);
        // SAFETY: held since `write` above (the fast writer).
        unsafe { l.write_unlock() };
        assert_eq!(woken.0.load(SeqCst), 1);
        // SAFETY: the same pinned `w`.
        assert!(unsafe { l.poll_write_async(&w, &mut cx) }.is_ready());
        assert_eq!(l.blocked_writers.load(SeqCst), 0);
        assert!(!l.fast.load(SeqCst) && l.w.is_locked());
        // SAFETY: the write lock taken by the future (through `w`).
        unsafe { l.write_unlock() };
        assert_eq!(l.w.state(), 0);

        l.write();
        assert!(l.writer_lock().try_lock());
        let w = Box::pin(AsyncWait::new());
        // SAFETY: pinned; we hold `writer_lock()`; cancelled below.
        assert!(unsafe { l.poll_write_async(&w, &mut cx) }.is_pending());
        // SAFETY: we hold `writer_lock()` for this write.
        unsafe { l.cancel_write_async(&w) };
        assert_eq!(l.blocked_writers.load(SeqCst), 0);
        assert!(l.drain.lock().is_empty());
        assert_eq!(l.w.state(), 0);
        // SAFETY: held since `write` above (the fast writer).
        unsafe { l.write_unlock() };
        assert!(l.try_write());
    }
}
