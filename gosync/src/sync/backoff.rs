//! Bounded spinning before a thread parks (shared by `RwMutex` and `Cond`).

use crate::primitive::{spin_loop, yield_now};

/// Bounded spinning before parking: one pause instruction per call for the first rounds (the
/// caller looks at what it waits for after each one), then a few `yield_now`s (on a busy
/// machine the thread we wait for may need our CPU).
///
/// Polling after every pause rather than after doubling runs of them (1, 2, 4, 8: the same
/// 15 pauses in all) lets a waiter see the change it waits for within one pause instead of up
/// to eight: a reader behind a writer whose critical section is a few hundred nanoseconds
/// would otherwise notice the writer's unlock late, or step out just after it.
pub(crate) struct Backoff(u32);
impl Backoff {
    /// Pauses (each followed by a look) before the first yield. A pause lasts some tens of
    /// nanoseconds on current x86 CPUs.
    #[cfg(not(loom))]
    const SPIN_ROUNDS: u32 = 15;
    /// Under loom every pause is a yield, and each one a point where the model branches:
    /// one spin round and one yield round still cover both outcomes of a wait (the thread
    /// waited for moves on, or not yet and this one parks) with far fewer interleavings.
    #[cfg(loom)]
    const SPIN_ROUNDS: u32 = 1;
    #[cfg(not(loom))]
    const YIELD_ROUNDS: u32 = 3;
    #[cfg(loom)]
    const YIELD_ROUNDS: u32 = 1;
    #[inline]
    pub(crate) fn new() -> Self {
        Backoff(0)
    }
    /// Spins one pause (no yield); `false` once the spinning rounds are used up.
    #[inline]
    pub(crate) fn spin(&mut self) -> bool {
        if self.0 >= Self::SPIN_ROUNDS {
            return false;
        }
        spin_loop();
        self.0 += 1;
        true
    }

    /// Waits a little (spinning first, then yielding); `false` once it is time to park.
    #[inline]
    pub(crate) fn snooze(&mut self) -> bool {
        if self.spin() {
            return true;
        }
        if self.0 >= Self::SPIN_ROUNDS + Self::YIELD_ROUNDS {
            return false;
        }
        yield_now();
        self.0 += 1;
        true
    }
}
