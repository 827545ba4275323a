//! The read-write lock behind the locked maps, and poison-free helpers.
//!
//! The maps never leave an invariant half-updated across a user callback, so a panic while a
//! lock is held cannot corrupt them; poisoning (which Go does not have) is ignored.

pub(crate) use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

#[inline]
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[inline]
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
