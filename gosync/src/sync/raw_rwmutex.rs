//! The untyped lock behind [`RwMutex`](super::RwMutex): Go's `sync.RWMutex` algorithm on a
//! writer mutex, a reader count and a reader-wait word. See `RwMutex`'s docs for the
//! guarantees and the state layout.

use core::time::Duration;

use crate::diag;
use crate::primitive::atomic::{fence, AtomicU64, Ordering};
use crate::primitive::parking::{self, ParkResult, DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN};
use crate::primitive::{now, Instant};

use super::backoff::Backoff;
use super::raw_mutex::RawMutex;

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
        }
    }

    /// An unlocked lock.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        RawRwMutex {
            w: RawMutex::new(),
            reader_count: AtomicU64::new(0),
            reader_wait: AtomicU64::new(0),
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

    /// The reader counted itself in while the writer of `epoch` was pending or active: wait
    /// until that writer has left. Returns `false` if it timed out (and then it has taken
    /// itself out of the count again).
    #[cold]
    #[inline(never)]
    fn read_slow(&self, epoch_seen: u32, deadline: Option<Instant>) -> bool {
        let wait = diag::contended_wait(self);
        let acquired = self.read_wait(epoch_seen, deadline);
        diag::contended_wait_ended(self, wait);
        acquired
    }

    /// [`read_slow`](Self::read_slow) without the diagnostics seam's contended points.
    #[inline]
    fn read_wait(&self, epoch_seen: u32, deadline: Option<Instant>) -> bool {
        let blocked = |word: u64| epoch(word) == epoch_seen && count(word) < 0;
        let mut backoff = Backoff::new();
        loop {
            // Acquire: pairs with the writer's Release when it left.
            if !blocked(self.reader_count.load(Ordering::Acquire)) {
                return true;
            }
            if backoff.snooze() {
                continue;
            }
            let key = &self.reader_count as *const _ as usize;
            // SAFETY: the key is the address of our own field; validate only loads an atomic
            // and cannot panic; the callbacks are no-ops.
            let result = unsafe {
                parking::park(
                    key,
                    || blocked(self.reader_count.load(Ordering::Relaxed)),
                    || {},
                    |_, _| {},
                    DEFAULT_PARK_TOKEN,
                    deadline,
                )
            };
            if let ParkResult::TimedOut = result {
                return self.read_cancel(epoch_seen);
            }
        }
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
                        diag::contended_unlock(self);
                        let key = &self.reader_wait as *const _ as usize;
                        // SAFETY: the key is the address of our own field; the callback is
                        // a constant.
                        unsafe {
                            parking::unpark_one(key, |_| DEFAULT_UNPARK_TOKEN);
                        }
                    }
                    return;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    // ---- writers ------------------------------------------------------------------------

    /// Takes the write lock (Go's `Lock`): waits for other writers, then announces itself —
    /// from that moment new readers wait — and waits for the readers already inside to leave.
    #[inline]
    pub(crate) fn write(&self) {
        self.w.lock();
        let acquired = self.announce_and_drain(None);
        debug_assert!(acquired);
    }

    /// Takes the write lock if the lock is completely free (Go's `TryLock`).
    #[inline]
    pub(crate) fn try_write(&self) -> bool {
        if !self.w.try_lock() {
            return false;
        }
        let cur = self.reader_count.load(Ordering::Relaxed);
        if count(cur) == 0
            && self
                .reader_count
                .compare_exchange(
                    cur,
                    cur.wrapping_add(ANNOUNCE),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return true;
        }
        // SAFETY: we took `w` just above and give it back.
        unsafe { self.w.unlock() };
        false
    }

    /// Takes the write lock, giving up at `deadline` (`None`: never); the deadline covers both
    /// phases (other writers, then the readers inside). Returns whether it did.
    pub(crate) fn try_write_until(&self, deadline: Option<Instant>) -> bool {
        let Some(deadline) = deadline else {
            self.write();
            return true;
        };
        let timeout = deadline.saturating_duration_since(now());
        self.w.try_lock_for(timeout) && self.announce_and_drain(Some(deadline))
    }

    /// The writer holds `w`: announce itself to readers and wait for the readers inside to
    /// leave. On a timeout, withdraw (see `RwMutex::try_write_for`) and return
    /// `false`.
    #[inline]
    fn announce_and_drain(&self, deadline: Option<Instant>) -> bool {
        // Only the holder of `w` changes the epoch, so this load is exact.
        let e = epoch(self.reader_count.load(Ordering::Relaxed)).wrapping_add(1);
        // Published by the AcqRel announcement below; departing readers of epoch `e` see it.
        self.reader_wait.store(pack(e, 0), Ordering::Relaxed);
        // AcqRel: Acquire pairs with departing readers' Release, Release publishes the store.
        let prev = self.reader_count.fetch_add(ANNOUNCE, Ordering::AcqRel);
        let active = count(prev);
        debug_assert!(active >= 0, "a second writer announced itself");
        if active == 0 {
            return true;
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
                Ok(_) if left == 0 => return true,
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        self.drain_slow(e, deadline)
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
        let done = pack(e, 0);
        let mut backoff = Backoff::new();
        loop {
            // Acquire: pairs with the last reader's Release.
            if self.reader_wait.load(Ordering::Acquire) == done {
                return true;
            }
            if backoff.snooze() {
                continue;
            }
            let key = &self.reader_wait as *const _ as usize;
            // SAFETY: the key is the address of our own field; validate only loads an atomic.
            let result = unsafe {
                parking::park(
                    key,
                    || self.reader_wait.load(Ordering::Relaxed) != done,
                    || {},
                    |_, _| {},
                    DEFAULT_PARK_TOKEN,
                    deadline,
                )
            };
            if let ParkResult::TimedOut = result {
                return self.write_cancel(e);
            }
        }
    }

    /// The writer of epoch `e` timed out while readers were still inside. Either the last
    /// reader got there first (then we own the lock), or we mark the epoch cancelled in the same
    /// CAS so that no departing reader counts towards it any more, reopen the lock to readers,
    /// and pass on `w`.
    #[cold]
    fn write_cancel(&self, e: u32) -> bool {
        let mut cur = self.reader_wait.load(Ordering::Acquire);
        loop {
            debug_assert_eq!(epoch(cur), e);
            if count(cur) == 0 {
                return true;
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
    /// readers, wake those that queued behind us, then let the next writer in.
    ///
    /// # Safety
    /// The caller holds the write lock (or is a writer withdrawing) and gives it up.
    #[inline]
    pub(crate) unsafe fn write_unlock(&self) {
        // Release: our writes happen before the next reader's Acquire.
        let prev = self.reader_count.fetch_add(RELEASE, Ordering::Release);
        if count(prev) >= 0 {
            // Unreachable through guards; Go's fatal error.
            panic!("sync: Unlock of unlocked RWMutex");
        }
        if count(prev) != -MAX_READERS {
            self.wake_readers();
        }
        // SAFETY: `w` is held from a writer's announcement until here (its guard's drop or
        // its withdrawal), by the writer we act for.
        unsafe { self.w.unlock() };
    }

    /// Turns the write lock into a read lock without a gap in which another writer could get
    /// in (std's and parking_lot's `downgrade`; Go has none). The readers that queued behind
    /// this writer are let in at once, as by an unlock; the next writer (waiting on `w`) then
    /// announces itself and waits for them and for us, as for any readers inside.
    ///
    /// One atomic add does the write unlock's `RELEASE` and our own reader `+1` together, so
    /// no state exists in which the lock is free: a writer arriving after it sees `count > 0`
    /// (it must wait for us), a reader arriving after it gets in.
    ///
    /// # Safety
    /// The caller holds the write lock; it holds a read lock afterwards.
    #[inline]
    pub(crate) unsafe fn downgrade(&self) {
        // Release: our writes happen before the Acquire of the readers we let in.
        let prev = self
            .reader_count
            .fetch_add(RELEASE.wrapping_add(1), Ordering::Release);
        if count(prev) >= 0 {
            // Unreachable through guards.
            panic!("sync: downgrade of an RWMutex that is not write-locked");
        }
        if count(prev) != -MAX_READERS {
            self.wake_readers();
        }
        // SAFETY: held since this writer's announcement (see `write_unlock`).
        unsafe { self.w.unlock() };
    }

    #[cold]
    fn wake_readers(&self) {
        // Readers queued behind this writer: it made them wait.
        diag::contended_unlock(self);
        let key = &self.reader_count as *const _ as usize;
        // SAFETY: the key is the address of our own field. Every thread parked on it queued
        // behind the epoch that just ended (a new epoch needs `w`, which we still hold).
        unsafe {
            parking::unpark_all(key, DEFAULT_UNPARK_TOKEN);
        }
    }

    // ---- observation --------------------------------------------------------------------

    /// Go's `readerCount` without the writer offset: readers holding the lock plus, while a
    /// writer is pending or active, readers queued behind it. A snapshot.
    pub(crate) fn readers(&self) -> usize {
        let c = count(self.reader_count.load(Ordering::Relaxed));
        if c >= 0 {
            c as usize
        } else {
            (c + MAX_READERS) as usize
        }
    }

    /// Whether a writer holds the lock or has announced itself. A snapshot.
    pub(crate) fn is_write_locked(&self) -> bool {
        count(self.reader_count.load(Ordering::Relaxed)) < 0
    }
}

impl core::fmt::Debug for RawRwMutex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawRwMutex")
            .field("readers", &self.readers())
            .field("write_locked", &self.is_write_locked())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

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
}
