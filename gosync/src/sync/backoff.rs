//! Bounded spinning before a thread parks (shared by `RwMutex` and `Cond`).

use crate::primitive::{spin_loop, yield_now};

/// Bounded spinning before parking: `2^i` pause instructions for the first rounds, then a few
/// `yield_now`s (on a busy machine the thread we wait for may need our CPU).
pub(crate) struct Backoff(u32);
impl Backoff {
    #[cfg(not(loom))]
    const SPIN_ROUNDS: u32 = 4;
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
    /// Spins a little (no yield); `false` once the spinning rounds are used up.
    #[inline]
    pub(crate) fn spin(&mut self) -> bool {
        if self.0 >= Self::SPIN_ROUNDS {
            return false;
        }
        for _ in 0..(1u32 << self.0) {
            spin_loop();
        }
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
