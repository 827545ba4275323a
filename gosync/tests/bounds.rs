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
    let m: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
    is_send_val(&m.lock_async());
    is_send::<AsyncMutexGuard<'static, Vec<u8>>>();
    is_sync::<AsyncMutexGuard<'static, Vec<u8>>>();
    let l: &'static RwMutex<Vec<u8>> = Box::leak(Box::new(RwMutex::new(Vec::new())));
    is_send_val(&l.read_async());
    is_send_val(&l.write_async());
    is_send::<AsyncRwMutexReadGuard<'static, Vec<u8>>>();
    is_sync::<AsyncRwMutexReadGuard<'static, Vec<u8>>>();
    is_send::<AsyncRwMutexWriteGuard<'static, Vec<u8>>>();
    is_sync::<AsyncRwMutexWriteGuard<'static, Vec<u8>>>();
    is_send::<CondWaitFuture<'static, AsyncMutexGuard<'static, Vec<u8>>>>();
    is_send::<CondWaitFuture<'static, AsyncRwMutexReadGuard<'static, Vec<u8>>>>();
    is_send::<CondWaitFuture<'static, AsyncRwMutexWriteGuard<'static, Vec<u8>>>>();
};
// `wait_while_async` is an `async fn`: its future is `Send` as well.
#[allow(dead_code)]
fn cond_wait_while_async_is_send(c: &'static Cond, g: AsyncMutexGuard<'static, Vec<u8>>) {
    is_send_val(&c.wait_while_async(g, |v| v.is_empty()));
}
// A wait on non-`Send` data is not.
assert_not_impl!(CondWaitFuture<'static, AsyncMutexGuard<'static, Rc<u8>>>: Send);
// An async guard hands out `&mut T` wherever it goes: not `Send` for non-`Send` data, not
// `Sync` for non-`Sync` data.
assert_not_impl!(AsyncMutexGuard<'static, std::rc::Rc<u8>>: Send);
assert_not_impl!(AsyncMutexGuard<'static, Cell<u8>>: Sync);
// The async RwMutex guards share `&T` among readers: neither `Send` nor `Sync` unless `T` is
// `Send + Sync` (what sharing the `RwMutex` itself needs).
assert_not_impl!(AsyncRwMutexReadGuard<'static, Cell<u8>>: Send);
assert_not_impl!(AsyncRwMutexReadGuard<'static, Cell<u8>>: Sync);
assert_not_impl!(AsyncRwMutexWriteGuard<'static, Cell<u8>>: Send);
assert_not_impl!(AsyncRwMutexWriteGuard<'static, std::rc::Rc<u8>>: Sync);

// The rest of the guards: a guard of non-`Sync` data is not `Sync` (sharing the guard shares
// `&T`); the twins with `u8` above are `Sync`, so these fail only because of the payload.
assert_not_impl!(RwMutexReadGuard<'static, Cell<u8>>: Sync);
assert_not_impl!(RwMutexWriteGuard<'static, Cell<u8>>: Sync);
assert_not_impl!(ReentrantMutexGuard<'static, Cell<u8>>: Sync);
assert_not_impl!(lock_api::RwLockWriteGuard<'static, RawRwMutex, u8>: Send);

// Guards whose owner may move between threads are `Send`: a TokenMutex's owner is a token,
// not a thread, and its guard hands out `&T` wherever it goes (so `T: Sync` is needed).
// WaitGroup's `go()` guard and the semaphore permits release from any thread.
const _: fn() = || {
    is_send::<TokenMutexGuard<'static, u8>>();
    is_sync::<TokenMutexGuard<'static, u8>>();
    is_send::<WaitGroupGuard<'static>>();
    is_sync::<WaitGroupGuard<'static>>();
    is_send::<x::SemaphorePermit<'static>>();
    is_sync::<x::SemaphorePermit<'static>>();
    is_send::<x::OwnedSemaphorePermit>();
    is_sync::<x::OwnedSemaphorePermit>();
};
assert_not_impl!(TokenMutexGuard<'static, Cell<u8>>: Send);

// The remaining lock bounds, each next to a twin that holds: `Send` needs `T: Send`
// (std's Mutex/RwLock), ReentrantMutex and TokenMutex share `&T` between the owner's threads
// (`Sync` needs `T: Sync`), a OnceValue is read from many threads.
const _: fn() = || {
    is_send::<Mutex<Cell<u8>>>();
    is_send::<RwMutex<Cell<u8>>>();
    is_send::<ReentrantMutex<Cell<u8>>>();
    is_send::<TokenMutex<Cell<u8>>>();
    is_sync::<TokenMutex<u8>>();
    is_sync::<ReentrantMutex<u8>>();
    is_send::<Cond>();
    is_sync::<Cond>();
    is_send::<WaitGroup>();
    is_sync::<WaitGroup>();
    is_send::<Once>();
    is_sync::<Once>();
    is_send::<TryOnce>();
    is_sync::<TryOnce>();
    is_send::<x::Semaphore>();
    is_sync::<x::Semaphore>();
};
assert_not_impl!(Mutex<Rc<u8>>: Send);
assert_not_impl!(RwMutex<Rc<u8>>: Send);
assert_not_impl!(ReentrantMutex<Rc<u8>>: Send);
assert_not_impl!(TokenMutex<Rc<u8>>: Send);
assert_not_impl!(TokenMutex<Cell<u8>>: Sync);
assert_not_impl!(OnceValue<Cell<u8>>: Sync);

// Maps follow their contents.
const _: fn() = || {
    use gosync::map::{RwMap, ShardedMap, SyncMap, TimedMap, TreeMap};
    is_send::<SyncMap<u8, u8>>();
    is_sync::<SyncMap<u8, u8>>();
    is_send::<ShardedMap<u8, u8>>();
    is_sync::<ShardedMap<u8, u8>>();
    is_send::<RwMap<u8, u8>>();
    is_sync::<RwMap<u8, u8>>();
    is_send::<TimedMap<u8, u8>>();
    is_sync::<TimedMap<u8, u8>>();
    is_send::<TreeMap<u8, u8>>();
    is_sync::<TreeMap<u8, u8>>();
};
assert_not_impl!(gosync::map::SyncMap<u8, Rc<u8>>: Send);
assert_not_impl!(gosync::map::SyncMap<u8, Rc<u8>>: Sync);
assert_not_impl!(gosync::map::ShardedMap<u8, Rc<u8>>: Send);
assert_not_impl!(gosync::map::ShardedMap<u8, Rc<u8>>: Sync);
