//! Deferred freeing for the lock-free read path of [`SyncMap`](super::SyncMap).
//!
//! Readers walk a shard's table without taking any lock, so a writer that unlinks a node (or
//! replaces a whole table) must not free it while a reader may still hold the pointer. This
//! module is the one place that decides *when* such memory is freed:
//!
//! - normal build: the [`seize`] collector (the one papaya uses). A reader marks itself active
//!   with [`Collector::enter`]; anything retired after that stays allocated until the reader's
//!   [`Guard`] drops. On Linux, entering costs a thread-local counter and a compiler fence
//!   (seize pairs it with `membarrier` on the rare reclaiming side).
//! - `cfg(loom)`: retired memory is kept until the collector drops. Loom then checks the
//!   publication protocol (which loads see which stores) without modelling seize's internals,
//!   which use `std` atomics loom cannot see.
//!
//! Only boxes are retired, and only through a [`Guard`] (`Guard::defer_retire_box`): what a
//! thread retires is never freed while any guard that thread holds is alive. So a reader that
//! holds a guard (a `range`, an iterator) may keep using a node even after its own callback
//! deleted it; that follows from the contract, not from an implementation detail of seize.

use crate::primitive::atomic::{AtomicPtr, Ordering};

#[cfg(not(loom))]
mod imp {
    use super::{AtomicPtr, Ordering};
    use seize::Guard as _;

    /// One collector per map.
    pub(crate) struct Collector(seize::Collector);

    /// Marks the current thread active: nothing retired after `enter` is freed before the guard
    /// drops.
    pub(crate) struct Guard<'a>(seize::LocalGuard<'a>);

    impl Collector {
        /// A collector that reclaims in batches of `batch` retired objects per thread.
        pub(crate) fn new(batch: usize) -> Self {
            Self(seize::Collector::new().batch_size(batch))
        }

        #[inline]
        pub(crate) fn enter(&self) -> Guard<'_> {
            Guard(self.0.enter())
        }

        /// Starts reclaiming this thread's batch of retired objects now instead of when it is
        /// full. Costs one process-wide barrier; meant for rare events (a table outgrown).
        pub(crate) fn flush(&self) {
            self.0.enter().flush();
        }
    }

    impl Guard<'_> {
        /// Loads a pointer that stays valid while this guard lives (if it was reachable when
        /// loaded).
        #[inline]
        pub(crate) fn protect<T>(&self, ptr: &AtomicPtr<T>) -> *mut T {
            // seize strengthens the order itself (SeqCst, a plain load on x86-64).
            self.0.protect(ptr, Ordering::Acquire)
        }

        /// Frees `ptr` (a `Box::into_raw` pointer) once no thread can hold it: not before this
        /// guard (and every other guard that could have loaded it) has dropped. Until then the
        /// caller may still read it.
        ///
        /// # Safety
        /// `ptr` came from `Box::into_raw`, is no longer reachable by new readers (it was
        /// unlinked before this call), and is retired exactly once.
        #[inline]
        pub(crate) unsafe fn defer_retire_box<T>(&self, ptr: *mut T) {
            // SAFETY: forwarded from the caller: a boxed, unlinked pointer retired once.
            // `defer_retire` (unlike `Collector::retire`) promises not to reclaim before this
            // guard drops.
            unsafe { self.0.defer_retire(ptr, seize::reclaim::boxed::<T>) }
        }
    }
}

#[cfg(loom)]
mod imp {
    use super::{AtomicPtr, Ordering};

    type Garbage = (*mut (), unsafe fn(*mut ()));

    /// Under loom: keep everything until the collector drops.
    pub(crate) struct Collector(std::sync::Mutex<Vec<Garbage>>);

    pub(crate) struct Guard<'a>(&'a Collector);

    // SAFETY: the raw pointers are owned boxes whose contents are Send + Sync where the map is.
    unsafe impl Send for Collector {}
    // SAFETY: as above; the vector is behind a mutex.
    unsafe impl Sync for Collector {}

    unsafe fn drop_box<T>(ptr: *mut ()) {
        // SAFETY: `ptr` was a `Box<T>` passed to `retire_box::<T>`.
        drop(unsafe { Box::from_raw(ptr.cast::<T>()) });
    }

    impl Collector {
        pub(crate) fn new(_batch: usize) -> Self {
            Self(std::sync::Mutex::new(Vec::new()))
        }
        pub(crate) fn enter(&self) -> Guard<'_> {
            Guard(self)
        }
        pub(crate) fn flush(&self) {}
    }

    impl Drop for Collector {
        fn drop(&mut self) {
            for (ptr, free) in self.0.get_mut().unwrap().drain(..) {
                // SAFETY: each pointer was retired once and nobody can reach it any more.
                unsafe { free(ptr) }
            }
        }
    }

    impl Guard<'_> {
        pub(crate) fn protect<T>(&self, ptr: &AtomicPtr<T>) -> *mut T {
            ptr.load(Ordering::Acquire)
        }
        pub(crate) unsafe fn defer_retire_box<T>(&self, ptr: *mut T) {
            (self.0)
                .0
                .lock()
                .unwrap()
                .push((ptr.cast::<()>(), drop_box::<T> as unsafe fn(*mut ())));
        }
    }
}

pub(crate) use imp::{Collector, Guard};
