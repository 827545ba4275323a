//! The writer lock of [`RwMutex`](super::RwMutex) (Go's `RWMutex.w`).

use crate::primitive::atomic::{AtomicU8, Ordering};
use crate::primitive::parking::{self, ParkResult, DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN};
use crate::primitive::{spin_loop, Instant};

const LOCKED: u8 = 1;
const PARKED: u8 = 2;

/// A plain parking lock: `LOCKED` = held, `PARKED` = someone may be parked on it.
pub(crate) struct WriterLock {
    state: AtomicU8,
}

impl WriterLock {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        WriterLock {
            state: AtomicU8::new(0),
        }
    }
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        WriterLock {
            state: AtomicU8::new(0),
        }
    }

    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & LOCKED != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                s | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(x) => s = x,
            }
        }
    }

    #[inline]
    pub(crate) fn lock(&self) {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(None);
        }
    }

    #[inline]
    pub(crate) fn try_lock_until(&self, deadline: Instant) -> bool {
        self.try_lock() || self.lock_slow(Some(deadline))
    }

    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>) -> bool {
        let mut spins = 0u32;
        loop {
            if self.try_lock() {
                return true;
            }
            let s = self.state.load(Ordering::Relaxed);
            if s & PARKED == 0 && spins < 6 {
                spins += 1;
                for _ in 0..(1u32 << spins) {
                    spin_loop();
                }
                continue;
            }
            if s & PARKED == 0
                && self
                    .state
                    .compare_exchange_weak(s, s | PARKED, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            let key = self as *const _ as usize;
            // SAFETY: the key is our own address; validate loads an atomic; timed_out only
            // clears a bit.
            let result = unsafe {
                parking::park(
                    key,
                    || self.state.load(Ordering::Relaxed) == LOCKED | PARKED,
                    || {},
                    |_, was_last| {
                        if was_last {
                            self.state.fetch_and(!PARKED, Ordering::Relaxed);
                        }
                    },
                    DEFAULT_PARK_TOKEN,
                    deadline,
                )
            };
            if let ParkResult::TimedOut = result {
                return false;
            }
            spins = 0;
        }
    }

    #[inline]
    pub(crate) fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let key = self as *const _ as usize;
        // SAFETY: the key is our own address; the callback only stores to an atomic.
        unsafe {
            parking::unpark_one(key, |res| {
                let s = if res.have_more_threads { PARKED } else { 0 };
                self.state.store(s, Ordering::Release);
                DEFAULT_UNPARK_TOKEN
            });
        }
    }
}
