//! `gosync::RawMutex` / `gosync::RawRwMutex` behind lock_api's typed locks: the same algorithms
//! for crates that are generic over `lock_api`.
#![cfg(not(loom))]

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use lock_api::{RawMutex as _, RawRwLock as _, RwLockWriteGuard};

type Mutex<T> = lock_api::Mutex<gosync::RawMutex, T>;
type RwLock<T> = lock_api::RwLock<gosync::RawRwMutex, T>;

#[test]
fn lock_api_mutex_excludes() {
    let m = Arc::new(Mutex::new(0u64));
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                for _ in 0..5_000 {
                    let mut g = m.lock();
                    let v = *g;
                    if v % 64 == 0 {
                        thread::yield_now();
                    }
                    *g = v + 1;
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(*m.lock(), 20_000);
    assert!(!m.is_locked());
}

#[test]
fn lock_api_mutex_try_and_timed() {
    static M: Mutex<u8> = Mutex::const_new(gosync::RawMutex::INIT, 1);
    let g = M.lock();
    assert!(M.is_locked());
    assert!(M.try_lock().is_none());
    let start = Instant::now();
    assert!(M.try_lock_for(Duration::from_millis(10)).is_none());
    assert!(M
        .try_lock_until(Instant::now() + Duration::from_millis(5))
        .is_none());
    assert!(start.elapsed() >= Duration::from_millis(15));
    // The raw lock's own observation methods see the same lock.
    // SAFETY: only reads the raw lock's state; nothing is unlocked through it.
    assert_eq!(unsafe { M.raw() }.waiters(), 0);
    drop(g);
    assert_eq!(*M.try_lock_for(Duration::from_millis(10)).unwrap(), 1);
}

#[test]
fn lock_api_rwlock_readers_writers_downgrade() {
    let l = Arc::new(RwLock::new(Vec::<u32>::new()));
    let r1 = l.read();
    let r2 = l.try_read().unwrap();
    assert!(l.is_locked() && !l.is_locked_exclusive());
    assert!(l.try_write().is_none());
    assert!(l.try_write_for(Duration::from_millis(5)).is_none());
    drop((r1, r2));
    assert!(!l.is_locked());

    let mut w = l.write();
    w.push(1);
    assert!(l.is_locked_exclusive());
    assert!(l.try_read_for(Duration::from_millis(5)).is_none());
    assert!(l.try_read_until(Instant::now()).is_none());
    let r = RwLockWriteGuard::downgrade(w);
    assert!(!l.is_locked_exclusive());
    assert_eq!(l.try_read().unwrap().len(), 1);
    assert!(l
        .try_write_until(Instant::now() + Duration::from_millis(5))
        .is_none());
    drop(r);

    let hs: Vec<_> = (0..4)
        .map(|i| {
            let l = Arc::clone(&l);
            thread::spawn(move || {
                for n in 0..1_000 {
                    if (n + i) % 4 == 0 {
                        l.write().push(n);
                    } else {
                        // Readers exclude writers: the length cannot change under a read guard.
                        let g = l.read();
                        let before = g.len();
                        thread::yield_now();
                        assert_eq!(g.len(), before);
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(l.read().len(), 1 + 4 * 250);
}

#[test]
fn raw_locks_are_plain_values() {
    let raw = gosync::RawMutex::new();
    raw.lock();
    assert!(raw.is_locked());
    assert!(!raw.try_lock());
    // SAFETY: locked just above by this thread.
    unsafe { raw.unlock() };
    assert!(raw.try_lock());
    // SAFETY: as above.
    unsafe { raw.unlock() };

    let rw = gosync::RawRwMutex::default();
    rw.lock_shared();
    rw.lock_shared();
    assert_eq!(rw.readers(), 2);
    // SAFETY: two shared locks held by this thread.
    unsafe {
        rw.unlock_shared();
        rw.unlock_shared();
    }
    assert!(!rw.is_locked());
    assert!(format!("{rw:?}").contains("RawRwMutex"));
}
