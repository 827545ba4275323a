//! Compile-time checks of `Send`/`Sync` for the locks, their guards and futures: the blocking
//! guards stay `!Send` (they must be dropped on the locking thread, as std's), the locks are
//! `Send`/`Sync` exactly as std's. Everything here is checked when the target compiles: a
//! wrong bound is a build error of `cargo test`.
#![cfg(not(loom))]
#![allow(dead_code)]

use std::cell::Cell;
use std::rc::Rc;

use gosync::*;

fn is_send<T: ?Sized + Send>() {}
fn is_sync<T: ?Sized + Sync>() {}

/// Fails to compile if `$t: $tr` (two blanket impls become ambiguous only when the bound
/// holds).
macro_rules! assert_not_impl {
    ($t:ty: $tr:path) => {
        const _: fn() = || {
            trait Probe<M> {
                fn probe() {}
            }
            impl<T: ?Sized> Probe<()> for T {}
            struct Holds;
            impl<T: ?Sized + $tr> Probe<Holds> for T {}
            let _probe = <$t as Probe<_>>::probe;
        };
    };
}

// Locks: like std (Mutex: Send + Sync for T: Send; RwMutex: Sync needs T: Send + Sync).
const _: fn() = || {
    is_send::<Mutex<Cell<u8>>>();
    is_sync::<Mutex<Cell<u8>>>();
    is_send::<RwMutex<Vec<u8>>>();
    is_sync::<RwMutex<Vec<u8>>>();
    is_sync::<ReentrantMutex<Cell<u8>>>();
    is_send::<RawMutex>();
    is_sync::<RawMutex>();
    is_send::<RawRwMutex>();
    is_sync::<RawRwMutex>();
    is_sync::<OnceValue<Vec<u8>>>();
};
assert_not_impl!(Mutex<Rc<u8>>: Sync);
assert_not_impl!(RwMutex<Cell<u8>>: Sync);

// Guards: Sync when the data is, never Send.
const _: fn() = || {
    is_sync::<MutexGuard<'static, u8>>();
    is_sync::<MappedMutexGuard<'static, u8>>();
    is_sync::<ArcMutexGuard<u8>>();
    is_sync::<RwMutexReadGuard<'static, u8>>();
    is_sync::<RwMutexWriteGuard<'static, u8>>();
    is_sync::<MappedRwMutexReadGuard<'static, u8>>();
    is_sync::<MappedRwMutexWriteGuard<'static, u8>>();
    is_sync::<ArcRwMutexReadGuard<u8>>();
    is_sync::<ArcRwMutexWriteGuard<u8>>();
    is_sync::<ReentrantMutexGuard<'static, u8>>();
};
assert_not_impl!(MutexGuard<'static, u8>: Send);
assert_not_impl!(MappedMutexGuard<'static, u8>: Send);
assert_not_impl!(ArcMutexGuard<u8>: Send);
assert_not_impl!(RwMutexReadGuard<'static, u8>: Send);
assert_not_impl!(RwMutexWriteGuard<'static, u8>: Send);
assert_not_impl!(MappedRwMutexReadGuard<'static, u8>: Send);
assert_not_impl!(MappedRwMutexWriteGuard<'static, u8>: Send);
assert_not_impl!(ArcRwMutexReadGuard<u8>: Send);
assert_not_impl!(ArcRwMutexWriteGuard<u8>: Send);
assert_not_impl!(ReentrantMutexGuard<'static, u8>: Send);
assert_not_impl!(lock_api::MutexGuard<'static, RawMutex, u8>: Send);
assert_not_impl!(lock_api::RwLockReadGuard<'static, RawRwMutex, u8>: Send);
// Guards of data that is not `Sync` are not `Sync`.
assert_not_impl!(MutexGuard<'static, Cell<u8>>: Sync);
assert_not_impl!(MappedMutexGuard<'static, Cell<u8>>: Sync);
assert_not_impl!(ArcMutexGuard<Cell<u8>>: Sync);
assert_not_impl!(MappedRwMutexReadGuard<'static, Cell<u8>>: Sync);
assert_not_impl!(MappedRwMutexWriteGuard<'static, Cell<u8>>: Sync);

// Futures of the async forms: `Send` (they can be spawned on a multi-threaded runtime).
fn is_send_val<T: Send>(_: &T) {}
const _: fn() = || {
    is_send::<WaitGroupWait<'static>>();
    is_sync::<WaitGroupWait<'static>>();
    let once: &'static TryOnce = Box::leak(Box::new(TryOnce::new()));
    is_send_val(&once.call_async(|| async { Ok::<(), ()>(()) }));
    let v: &'static OnceValue<Vec<u8>> =
        Box::leak(Box::new(OnceValue::new(Vec::new as fn() -> Vec<u8>)));
    is_send_val(&v.get_or_init_async());
};
