//! The read-biased fast path of [`RwMutex`](super::RwMutex): per-thread reader slots that a
//! writer revokes. See "Reader slots" in the `RwMutex` docs for the protocol and its
//! invariants; [`RawRwMutex`](super::raw_rwmutex::RawRwMutex) drives it.

use crossbeam_utils::CachePadded;

use crate::primitive::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
use crate::primitive::{available_cpus, dekker_fence, thread_index};

/// How a read lock was taken, so that its release undoes exactly that: through Go's reader
/// count ([`COUNTED`](Self::COUNTED)) or through one of the reader slots (its 1-based index).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct ReadToken(usize);

impl ReadToken {
    /// A read lock held in Go's reader count.
    pub(crate) const COUNTED: ReadToken = ReadToken(0);
}

/// A thread looks at the lock's sharing record only once in this many of the overlaps it sees
/// (a thread-local countdown), so that counting them does not itself contend.
#[cfg_attr(loom, allow(dead_code))] // under loom every overlap is looked at
const SAMPLE: u32 = 16;
/// Sampled overlaps, each from a thread other than the previous one, after which a lock turns
/// reader slots on (readers from one thread alone, nested or not, never do).
#[cfg(not(loom))]
const SHARING_TO_BIAS: u32 = 2;
/// Under loom the models turn slots on themselves (`RwMutex::loom_enable_reader_slots`).
#[cfg(loom)]
const SHARING_TO_BIAS: u32 = u32::MAX;
/// The most sampled overlaps a lock waits for before it tries slots again after they did not
/// pay.
const MAX_SHARING_TO_BIAS: u32 = 1024;
/// Slot reads per write for the slots to pay: each write costs a scan of every slot and two
/// changes of `on` (a cache miss for every slot reader after it); each slot read saves a round
/// trip of the shared reader count between cores.
const SLOT_READS_PER_WRITE: i32 = 32;
/// The credit a run of slots starts with, and the most it keeps: writers add the slot reads
/// since the previous write minus [`SLOT_READS_PER_WRITE`], and turn slots off for good (until
/// readers show sharing again, twice as much as the time before) once it goes negative. The
/// start lets a few writes that come close together pass.
const START_CREDIT: i32 = 64;
/// The most credit a run of slots keeps, so that a run that paid for long still ends soon
/// after writes become frequent.
const MAX_CREDIT: i32 = 256;

/// One reader slot, alone on its cache line: the read locks held through it (low 32 bits) and
/// the read locks ever taken through it (high 32 bits, wrapping), raised together by one add.
type Slot = CachePadded<AtomicU64>;
/// What entering adds to a slot: one holder, one entry.
const ENTRY: u64 = (1 << 32) + 1;

/// The read locks held through a slot, from its word.
#[inline(always)]
fn holders(word: u64) -> u64 {
    word & 0xffff_ffff
}
/// The read locks ever taken through a slot (wrapping), from its word.
#[inline(always)]
fn entries(word: u64) -> u32 {
    (word >> 32) as u32
}

/// Slots per lock: the CPU count rounded up to a power of two, between 8 and 64 (2 under
/// loom). Threads take them by [`thread_index`], wrapping around.
fn slot_count() -> usize {
    if cfg!(loom) {
        2
    } else {
        available_cpus().next_power_of_two().clamp(8, 64)
    }
}

/// Whether this overlap is one the calling thread looks at (one in [`SAMPLE`]).
#[cfg(not(loom))]
fn sampled() -> bool {
    use core::cell::Cell;
    std::thread_local!(static COUNTDOWN: Cell<u32> = const { Cell::new(SAMPLE) });
    COUNTDOWN.with(|c| {
        let left = c.get() - 1;
        if left == 0 {
            c.set(SAMPLE);
            true
        } else {
            c.set(left);
            false
        }
    })
}
#[cfg(loom)]
fn sampled() -> bool {
    true
}

/// What [`ReaderBias::try_enter`] did.
pub(crate) enum Enter {
    /// The caller holds a read lock through a slot.
    Held(ReadToken),
    /// Slots are off: take the read lock through the count.
    Off,
    /// A writer turned slots off while the caller was entering; it backed out of its slot,
    /// found every slot empty, and must wake the writer (which may wait for that slot), then
    /// take the count.
    BackedOut,
}

/// A lock's reader slots and whether readers may use them (see the `RwMutex` docs, "Reader
/// slots").
///
/// Invariants:
/// - `on` is set only while its setter excludes writers from the data: a reader holding a read
///   lock *through the count* (a writer drains those before it looks at the slots), or the
///   writer itself on its way out. The writer clears it when it announces itself (so new
///   readers queue behind it), and again once the counted readers have drained, before it
///   waits for the slots to empty: that second clear is what exclusion rests on. A reader
///   that sets it and then finds a writer announced clears it too (a preference only).
/// - A reader holds a read lock through slot `i` exactly when it raised slot `i` and then saw
///   `on` set (both SeqCst). A writer clears `on` (SeqCst) and then waits for every slot to
///   read zero: one of the two sees the other, so no slot reader and writer ever overlap.
/// - `slots` goes from null to a block once and stays until the lock is dropped.
///
/// Policy: a lock starts with slots off and unallocated. Counted readers that find another
/// counted reader inside, from a thread other than the last one seen doing so, count towards
/// `need` (sampled, see [`SAMPLE`]); reaching it turns slots on. Each writer that turns slots
/// off counts the slot reads since the previous one into a credit (see [`START_CREDIT`]);
/// while the credit lasts its unlock turns them back on, and once it runs out they stay off
/// until readers show sharing again, `need` doubling each time (up to
/// [`MAX_SHARING_TO_BIAS`]; back to [`SHARING_TO_BIAS`] once a run's credit reaches
/// [`MAX_CREDIT`]).
pub(crate) struct ReaderBias {
    /// Whether readers may take slots.
    on: AtomicBool,
    /// Whether a reader may hold a slot: set before `on` is set, cleared by a writer that
    /// found every slot empty with `on` off. While it is clear, writers skip the scan (its
    /// cache misses are most of what an unused block costs them).
    dirty: AtomicBool,
    /// Null, or the slots in one heap block: element 0 holds the index mask (the slot count
    /// minus one), elements `1..=count` are the slots. Allocated the first time the lock turns
    /// slots on, freed with the lock.
    slots: AtomicPtr<Slot>,
    /// The thread index (+1) of the last reader seen overlapping another counted reader.
    last_sharer: AtomicUsize,
    /// Overlaps seen from a thread other than the previous one since slots were last off.
    sharing: AtomicU32,
    /// Overlaps that turn slots on.
    need: AtomicU32,
    /// Whether the last writer found that slots pay (its unlock turns them back on). Written
    /// and read by writers only (by the writer holding the lock).
    keep: AtomicBool,
    /// The current run of slots' credit (writers only); see [`START_CREDIT`].
    credit: AtomicI32,
    /// The slots' total entries when the last writer judged them (writers only).
    entries_seen: AtomicU32,
    /// A writer turned slots off and has yet to judge them at its scan (writers only).
    judge_due: AtomicBool,
}

impl ReaderBias {
    /// Slots off and not allocated.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        ReaderBias {
            on: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            slots: AtomicPtr::new(core::ptr::null_mut()),
            last_sharer: AtomicUsize::new(0),
            sharing: AtomicU32::new(0),
            need: AtomicU32::new(SHARING_TO_BIAS),
            keep: AtomicBool::new(true),
            credit: AtomicI32::new(START_CREDIT),
            entries_seen: AtomicU32::new(0),
            judge_due: AtomicBool::new(false),
        }
    }

    /// Slots off and not allocated.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        ReaderBias {
            on: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            slots: AtomicPtr::new(core::ptr::null_mut()),
            last_sharer: AtomicUsize::new(0),
            sharing: AtomicU32::new(0),
            need: AtomicU32::new(SHARING_TO_BIAS),
            keep: AtomicBool::new(true),
            credit: AtomicI32::new(START_CREDIT),
            entries_seen: AtomicU32::new(0),
            judge_due: AtomicBool::new(false),
        }
    }

    /// Slot `index` (0 is the mask) of the block at `base`.
    ///
    /// # Safety
    /// `base` is this lock's non-null block and `index <= mask + 1`.
    #[inline(always)]
    unsafe fn slot<'a>(base: *mut Slot, index: usize) -> &'a AtomicU64 {
        // SAFETY: the block holds `mask + 2` slots and lives as long as the lock.
        unsafe { &*base.add(index) }
    }

    /// The fast path of a read: raise this thread's slot and check that slots are still on.
    #[inline]
    pub(crate) fn try_enter(&self) -> Enter {
        if !self.on.load(Ordering::Relaxed) {
            return Enter::Off;
        }
        // Acquire: pairs with the block's installation.
        let base = self.slots.load(Ordering::Acquire);
        if base.is_null() {
            return Enter::Off;
        }
        // SAFETY: element 0 of a non-null block holds the mask.
        let mask = unsafe { Self::slot(base, 0) }.load(Ordering::Relaxed) as usize;
        let index = 1 + (thread_index() & mask);
        // SAFETY: `index <= mask + 1`.
        let slot = unsafe { Self::slot(base, index) };
        // SeqCst, then SeqCst: against the writer's clear of `on` and its scan (type docs).
        // The load also acquires the last writer's critical section (its Release set `on`).
        slot.fetch_add(ENTRY, Ordering::SeqCst);
        dekker_fence();
        if self.on.load(Ordering::SeqCst) {
            return Enter::Held(ReadToken(index));
        }
        slot.fetch_sub(1, Ordering::SeqCst);
        dekker_fence();
        if self.empty(base) {
            Enter::BackedOut
        } else {
            // A holder is still inside: the writer waits for it, and it wakes the writer.
            Enter::Off
        }
    }

    /// Releases a read lock taken through a slot. Returns whether the caller must wake a
    /// writer that may wait for the slots: slots are off and the caller found them all empty
    /// (of the last holders to leave, at least one finds that: decrements and scans are
    /// SeqCst).
    ///
    /// # Safety
    /// `token` came from [`try_enter`](Self::try_enter) on this lock and is released once.
    #[inline]
    pub(crate) unsafe fn leave(&self, token: ReadToken) -> bool {
        debug_assert_ne!(token, ReadToken::COUNTED);
        // Acquire: the block's contents were written by the reader that installed it.
        let base = self.slots.load(Ordering::Acquire);
        // SAFETY: a slot token implies the block exists; its index is in range.
        let slot = unsafe { Self::slot(base, token.0) };
        // Release: our reads happen before the writer's Acquire scan. SeqCst: against the
        // writer's clear of `on` (it sees our slot at zero, or we see `on` cleared and wake it).
        slot.fetch_sub(1, Ordering::SeqCst);
        dekker_fence();
        !self.on.load(Ordering::SeqCst) && self.empty(base)
    }

    /// The writer, right after announcing itself: turns slots off, so that new readers take
    /// the count and wait behind it. A no-op when they are off. The slots are judged (the
    /// policy in the type docs) at the writer's next scan, in [`revoke`](Self::revoke).
    #[inline]
    pub(crate) fn turn_off(&self) {
        if self.on.load(Ordering::Relaxed) {
            self.on.store(false, Ordering::SeqCst);
            // Writers only, by the one holding the lock: Relaxed.
            self.judge_due.store(true, Ordering::Relaxed);
        }
    }

    /// The writer, once no counted reader is left: turns slots off (again, if a counted
    /// reader turned them on meanwhile) and reports whether no reader holds one. Called again
    /// while it waits.
    #[inline]
    pub(crate) fn revoke(&self) -> bool {
        // Acquire: the block's contents were written by the reader that installed it.
        let base = self.slots.load(Ordering::Acquire);
        if base.is_null() {
            return true;
        }
        // Relaxed loads: whoever set `on` (and `dirty`) happens-before this writer (type
        // docs), so a stale `false` cannot be read here.
        self.turn_off();
        if !self.dirty.load(Ordering::Relaxed) {
            // Slots were found empty with `on` off, and nobody has turned them on since.
            return true;
        }
        dekker_fence();
        let (held, entered) = self.scan(base);
        if self.judge_due.load(Ordering::Relaxed) {
            self.judge_due.store(false, Ordering::Relaxed);
            self.judge(entered);
        }
        if held != 0 {
            return false;
        }
        self.dirty.store(false, Ordering::Relaxed);
        true
    }

    /// Did the slots pay since the last writer turned them off? `entered` is the slots' total
    /// entries now. Sets `keep` (whether this writer's unlock turns them back on) and moves
    /// the credit and `need` (the policy in the type docs). Writers only, under the writer
    /// lock: Relaxed.
    fn judge(&self, entered: u32) {
        let reads = entered.wrapping_sub(self.entries_seen.load(Ordering::Relaxed));
        self.entries_seen.store(entered, Ordering::Relaxed);
        let gain = (reads.min(MAX_CREDIT as u32) as i32) - SLOT_READS_PER_WRITE;
        let credit = (self.credit.load(Ordering::Relaxed) + gain).min(MAX_CREDIT);
        let pays = credit >= 0;
        self.keep.store(pays, Ordering::Relaxed);
        if pays {
            self.credit.store(credit, Ordering::Relaxed);
            if credit == MAX_CREDIT {
                // Clearly paying: the next time, turn them on as soon as a new lock would.
                self.need.store(SHARING_TO_BIAS, Ordering::Relaxed);
            }
        } else {
            // The next run starts afresh, once readers have shown more sharing.
            self.credit.store(START_CREDIT, Ordering::Relaxed);
            let need = self.need.load(Ordering::Relaxed);
            self.need.store(
                need.saturating_mul(2).min(MAX_SHARING_TO_BIAS),
                Ordering::Relaxed,
            );
        }
    }

    /// Read locks held through the slots of the block at `base`, and the slots' total entries
    /// (wrapping). SeqCst loads: see [`revoke`](Self::revoke); Acquire: the holders' reads
    /// happen before our write.
    fn scan(&self, base: *mut Slot) -> (u64, u32) {
        // SAFETY: element 0 of a non-null block holds the mask.
        let mask = unsafe { Self::slot(base, 0) }.load(Ordering::Relaxed) as usize;
        (1..=mask + 1).fold((0, 0), |(held, entered), i| {
            // SAFETY: every index is in `1..=mask + 1`.
            let word = unsafe { Self::slot(base, i) }.load(Ordering::SeqCst);
            (held + holders(word), entered.wrapping_add(entries(word)))
        })
    }

    /// Whether no read lock is held through the slots of the block at `base`.
    fn empty(&self, base: *mut Slot) -> bool {
        self.scan(base).0 == 0
    }

    /// Whether readers may take slots now (a snapshot).
    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Read locks held through the slots (a snapshot; backing-out readers count briefly).
    pub(crate) fn holders(&self) -> usize {
        let base = self.slots.load(Ordering::Acquire);
        if base.is_null() {
            0
        } else {
            self.scan(base).0 as usize
        }
    }

    /// A writer leaves (unlock, downgrade or withdrawal): turn slots back on if this lock
    /// uses them. Release: the next slot reader sees the writer's critical section.
    #[inline]
    pub(crate) fn restore(&self) {
        if self.keep.load(Ordering::Relaxed) && !self.slots.load(Ordering::Relaxed).is_null() {
            self.dirty.store(true, Ordering::Relaxed);
            self.on.store(true, Ordering::Release);
        }
    }

    /// A counted reader found another counted reader inside. Returns whether that has
    /// happened across threads often enough for slots to be turned on (see the policy in the
    /// type docs); the caller then calls [`enable`](Self::enable).
    #[inline]
    pub(crate) fn note_sharing(&self) -> bool {
        !self.on.load(Ordering::Relaxed) && self.note_sharing_slow()
    }

    #[cold]
    fn note_sharing_slow(&self) -> bool {
        if !sampled() {
            return false;
        }
        let me = thread_index() + 1;
        if self.last_sharer.load(Ordering::Relaxed) == me {
            return false;
        }
        self.last_sharer.store(me, Ordering::Relaxed);
        let seen = self
            .sharing
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if seen < self.need.load(Ordering::Relaxed) {
            return false;
        }
        self.sharing.store(0, Ordering::Relaxed);
        true
    }

    /// Allocates the slots (once) and turns them on. The caller holds a read lock through
    /// the count, and then checks whether a writer announced itself meanwhile (it turns them
    /// off again with [`withdraw`](Self::withdraw) if so: only a preference, see the type
    /// docs).
    #[cold]
    pub(crate) fn enable(&self) {
        if self.slots.load(Ordering::Acquire).is_null() {
            let count = slot_count();
            let block: Box<[Slot]> = (0..=count)
                .map(|i| {
                    CachePadded::new(AtomicU64::new(if i == 0 { count as u64 - 1 } else { 0 }))
                })
                .collect();
            let fresh = Box::into_raw(block) as *mut Slot;
            if self
                .slots
                .compare_exchange(
                    core::ptr::null_mut(),
                    fresh,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
            {
                // Another reader installed its block first.
                // SAFETY: `fresh` came from `Box::into_raw` above and was never shared.
                drop(unsafe {
                    Box::from_raw(core::ptr::slice_from_raw_parts_mut(fresh, count + 1))
                });
            }
        }
        self.dirty.store(true, Ordering::Relaxed);
        // SeqCst: against the announcing writer (the caller's check that follows).
        self.on.store(true, Ordering::SeqCst);
        dekker_fence();
    }

    /// A reader that just turned slots on found a writer announced: turn them off again, so
    /// that new readers wait behind that writer. (The writer waits for any reader that took a
    /// slot in between, as it looks at the slots again once the counted readers have left.)
    #[cold]
    pub(crate) fn withdraw(&self) {
        self.on.store(false, Ordering::SeqCst);
        dekker_fence();
    }
}

impl Drop for ReaderBias {
    fn drop(&mut self) {
        let base = self.slots.load(Ordering::Relaxed);
        if !base.is_null() {
            // SAFETY: `&mut self`: no reader can hold a slot. The block came from
            // `Box::into_raw` of `mask + 2` slots.
            unsafe {
                let count = Self::slot(base, 0).load(Ordering::Relaxed) as usize + 1;
                drop(Box::from_raw(core::ptr::slice_from_raw_parts_mut(
                    base,
                    count + 1,
                )));
            }
        }
    }
}
