//! The guard tools Rust users expect from a lock crate: Arc guards, mapped guards, deadline
//! locks, `unlocked`, `downgrade`, `OnceValue` as a `LazyLock`.
#![cfg(not(loom))]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use gosync::{
    ArcMutexGuard, ArcRwMutexWriteGuard, Cond, MappedMutexGuard, MappedRwMutexReadGuard,
    MappedRwMutexWriteGuard, Mutex, MutexGuard, OnceValue, ReentrantMutex, RwMutex,
    RwMutexReadGuard, RwMutexWriteGuard,
};

/// Waits (yielding) until `cond` holds; panics after 10 s so a bug fails instead of hanging.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting: {what}"
        );
        thread::yield_now();
    }
}

// ---- Mutex ---------------------------------------------------------------------------------

#[test]
fn lock_arc_outlives_the_borrow_and_unlocks_on_drop() {
    let m = Arc::new(Mutex::new(vec![1]));
    let mut g: ArcMutexGuard<Vec<i32>> = m.lock_arc();
    g.push(2);
    assert!(Arc::ptr_eq(ArcMutexGuard::mutex(&g), &m));
    assert!(m.try_lock().is_none());
    assert!(m.try_lock_arc().is_none());
    // The guard keeps the mutex alive after every other handle is gone.
    let weak = Arc::downgrade(&m);
    drop(m);
    assert_eq!(*g, [1, 2]);
    let m = weak.upgrade().expect("the guard keeps the mutex alive");
    drop(g);
    assert!(!m.is_locked());
    assert_eq!(*m.try_lock_arc().unwrap(), [1, 2]);
}

#[test]
fn lock_arc_excludes_across_threads() {
    let m = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                for _ in 0..2_000 {
                    let mut g = m.lock_arc();
                    let v = *g;
                    thread::yield_now();
                    *g = v + 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(*m.lock(), 8_000);
}

#[test]
fn mapped_mutex_guards_hold_the_lock() {
    struct S {
        a: u32,
        b: Vec<u32>,
    }
    let m = Mutex::new(S { a: 1, b: vec![] });
    let mut a: MappedMutexGuard<u32> = MutexGuard::map(m.lock(), |s| &mut s.a);
    *a += 1;
    assert!(m.is_locked() && m.try_lock().is_none());
    drop(a);
    assert!(!m.is_locked());

    // try_map declining gives the guard back, still locked.
    let g = MutexGuard::try_map(m.lock(), |s| s.b.first_mut()).unwrap_err();
    assert!(m.is_locked());
    assert_eq!(g.a, 2);
    let mut g = g;
    g.b.push(7);
    // Mapping a mapped guard further, both ways.
    let b = MutexGuard::map(g, |s| &mut s.b);
    let b = MappedMutexGuard::try_map(b, |v| v.get_mut(5)).unwrap_err();
    let mut first = MappedMutexGuard::map(b, |v| &mut v[0]);
    *first = 8;
    assert!(m.try_lock().is_none());
    drop(first);
    assert_eq!(m.lock().b, [8]);
}

#[test]
fn map_closure_panic_unlocks() {
    let m = Mutex::new(1);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _ = MutexGuard::map(m.lock(), |_: &mut i32| -> &mut i32 { panic!("boom") });
    }));
    assert!(r.is_err());
    assert!(!m.is_locked(), "a panic inside map must release the lock");
    let r = catch_unwind(AssertUnwindSafe(|| {
        let g = MutexGuard::map(m.lock(), |x| x);
        let _ = MappedMutexGuard::map(g, |_: &mut i32| -> &mut i32 { panic!("boom") });
    }));
    assert!(r.is_err());
    assert!(!m.is_locked());
}

#[test]
fn unlocked_lets_others_in_and_relocks() {
    let m = Arc::new(Mutex::new(0));
    let mut g = m.lock();
    *g = 1;
    let seen = MutexGuard::unlocked(&mut g, || {
        let m2 = Arc::clone(&m);
        // Another thread can take the lock while we are inside `unlocked`.
        thread::spawn(move || {
            let mut g = m2.lock();
            let seen = *g;
            *g = 2;
            seen
        })
        .join()
        .unwrap()
    });
    assert_eq!(seen, 1);
    assert_eq!(*g, 2, "the guard sees the other thread's write");
    assert!(m.try_lock().is_none(), "relocked after unlocked");
    drop(g);
    assert!(!m.is_locked());
}

#[test]
fn unlocked_relocks_when_the_closure_panics() {
    let m = Mutex::new(5);
    let mut g = m.lock();
    let r = catch_unwind(AssertUnwindSafe(|| {
        MutexGuard::unlocked(&mut g, || panic!("inside unlocked"))
    }));
    assert!(r.is_err());
    assert!(m.is_locked(), "the guard holds the lock again");
    *g += 1;
    drop(g); // a second unlock here would panic "unlock of unlocked mutex"
    assert_eq!(*m.lock(), 6);

    let m = Arc::new(Mutex::new(0));
    let mut g = m.lock_arc();
    ArcMutexGuard::unlocked(&mut g, || assert!(m.try_lock().is_some()));
    assert!(m.try_lock().is_none());
}

#[test]
fn try_lock_until_times_out_then_succeeds() {
    let m = Arc::new(Mutex::new(0));
    let g = m.lock();
    let start = Instant::now();
    assert!(m
        .try_lock_until(start + Duration::from_millis(20))
        .is_none());
    assert!(start.elapsed() >= Duration::from_millis(20));
    // A deadline in the past is one attempt.
    assert!(m.try_lock_until(start).is_none());
    assert_eq!(m.waiters(), 0, "timed-out waiters leave the queue");
    // A waiter with a far deadline gets the lock when it is released.
    let m2 = Arc::clone(&m);
    let t = thread::spawn(move || {
        m2.try_lock_until(Instant::now() + Duration::from_secs(30))
            .map(|mut g| {
                *g += 1;
            })
            .is_some()
    });
    wait_until("the waiter to queue", || m.waiters() == 1);
    drop(g);
    assert!(t.join().unwrap());
    assert_eq!(*m.lock(), 1);
}

// ---- RwMutex -------------------------------------------------------------------------------

#[test]
fn rw_arc_guards() {
    let l = Arc::new(RwMutex::new(String::from("a")));
    let r1 = l.read_arc();
    let r2 = l.try_read_arc().unwrap();
    assert!(l.try_write_arc().is_none());
    assert_eq!((r1.as_str(), r2.as_str()), ("a", "a"));
    drop((r1, r2));
    let mut w = l.write_arc();
    w.push('b');
    assert!(l.try_read_arc().is_none());
    assert!(Arc::ptr_eq(ArcRwMutexWriteGuard::rwmutex(&w), &l));
    let r = ArcRwMutexWriteGuard::downgrade(w);
    assert_eq!(*r, "ab");
    assert!(l.try_read().is_some());
    assert!(l.try_write().is_none());
    drop(r);
    assert!(l.try_write().is_some());
}

#[test]
fn rw_mapped_guards() {
    let l = RwMutex::new((1u32, vec![10u32, 20]));
    let r: MappedRwMutexReadGuard<u32> = RwMutexReadGuard::map(l.read(), |p| &p.1[1]);
    assert_eq!(*r, 20);
    assert!(l.try_read().is_some());
    assert!(l.try_write().is_none());
    let r = MappedRwMutexReadGuard::try_map(r, |_| None::<&u8>).unwrap_err();
    let r = MappedRwMutexReadGuard::map(r, |x| x);
    drop(r);
    assert!(l.try_write().is_some());
    assert!(RwMutexReadGuard::try_map(l.read(), |p| p.1.get(9)).is_err());

    let mut w: MappedRwMutexWriteGuard<Vec<u32>> = RwMutexWriteGuard::map(l.write(), |p| &mut p.1);
    w.push(30);
    assert!(l.try_read().is_none());
    let mut last = MappedRwMutexWriteGuard::try_map(w, |v| v.last_mut()).unwrap();
    *last += 1;
    drop(last);
    assert_eq!(l.read().1, [10, 20, 31]);
    let w = RwMutexWriteGuard::try_map(l.write(), |p| p.1.get_mut(9)).unwrap_err();
    assert_eq!(w.0, 1);
}

#[test]
fn rw_unlocked_read_and_write() {
    let l = RwMutex::new(0);
    let mut w = l.write();
    RwMutexWriteGuard::unlocked(&mut w, || {
        *l.write() = 3;
    });
    assert_eq!(*w, 3);
    assert!(l.try_read().is_none());
    drop(w);
    let mut r = l.read();
    RwMutexReadGuard::unlocked(&mut r, || {
        *l.try_write().expect("no reader left inside unlocked") = 4;
    });
    assert_eq!(*r, 4);
    assert!(l.try_write().is_none());
    let r2 = catch_unwind(AssertUnwindSafe(|| {
        RwMutexReadGuard::unlocked(&mut r, || panic!("x"))
    }));
    assert!(r2.is_err());
    assert_eq!(l.readers(), 1, "the guard holds its read lock again");
    drop(r);
    assert_eq!(l.readers(), 0);
}

#[test]
fn downgrade_lets_queued_readers_in_and_keeps_writers_out() {
    for _ in 0..20 {
        let l = Arc::new(RwMutex::new(0));
        let w = l.write();
        // A reader queues behind the writer.
        let reader = {
            let l = Arc::clone(&l);
            thread::spawn(move || *l.read())
        };
        wait_until("the reader to queue", || l.readers() == 1);
        // A second writer waits for the writer lock.
        let wrote = Arc::new(AtomicBool::new(false));
        let writer = {
            let (l, wrote) = (Arc::clone(&l), Arc::clone(&wrote));
            thread::spawn(move || {
                *l.write() = 2;
                wrote.store(true, Ordering::SeqCst);
            })
        };
        let mut w = w;
        *w = 1;
        let r = RwMutexWriteGuard::downgrade(w);
        // The queued reader gets in while we still hold our read lock, and sees our write.
        assert_eq!(reader.join().unwrap(), 1);
        assert_eq!(*r, 1);
        assert!(
            !wrote.load(Ordering::SeqCst),
            "a writer got in under a downgraded guard"
        );
        drop(r);
        writer.join().unwrap();
        assert_eq!(*l.read(), 2);
    }
}

#[test]
fn rw_deadline_locks() {
    let l = RwMutex::new(0);
    let w = l.write();
    let start = Instant::now();
    assert!(l
        .try_read_until(start + Duration::from_millis(10))
        .is_none());
    assert!(l
        .try_write_until(start + Duration::from_millis(10))
        .is_none());
    assert!(start.elapsed() >= Duration::from_millis(10));
    drop(w);
    assert_eq!(l.readers(), 0, "a timed-out reader leaves no count behind");
    let r = l.try_read_until(Instant::now()).unwrap();
    assert!(l
        .try_write_until(Instant::now() + Duration::from_millis(5))
        .is_none());
    drop(r);
    assert!(l.try_write_until(Instant::now()).is_some());
}

// ---- ReentrantMutex ------------------------------------------------------------------------

#[test]
fn reentrant_timed_locks() {
    let m = Arc::new(ReentrantMutex::new(AtomicUsize::new(0)));
    let outer = m.lock();
    let inner = m
        .try_lock_until(Instant::now())
        .expect("the owner re-enters at once");
    inner.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel();
    let t = {
        let m = Arc::clone(&m);
        thread::spawn(move || {
            let timed_out = m.try_lock_for(Duration::from_millis(10)).is_none();
            tx.send(timed_out).unwrap();
            // Then wait for real; the owner releases below.
            let g = m.try_lock_for(Duration::from_secs(30)).expect("released");
            g.fetch_add(1, Ordering::Relaxed);
        })
    };
    assert!(
        rx.recv().unwrap(),
        "another thread must time out while the lock is held"
    );
    drop(inner);
    assert!(m.is_owned_by_current_thread());
    drop(outer);
    t.join().unwrap();
    assert_eq!(m.lock().load(Ordering::Relaxed), 2);
}

// ---- OnceValue as LazyLock -----------------------------------------------------------------

#[test]
fn once_value_derefs_and_forces_once() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    fn make() -> Vec<u32> {
        CALLS.fetch_add(1, Ordering::SeqCst);
        vec![1, 2, 3]
    }
    static V: OnceValue<Vec<u32>> = OnceValue::new(make);
    let n = thread::scope(|s| {
        let hs: Vec<_> = (0..4).map(|_| s.spawn(|| V.len())).collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
    });
    assert_eq!(n, 12);
    assert_eq!(OnceValue::force(&V), &[1, 2, 3]);
    assert_eq!(V[1], 2);
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
}

#[test]
fn once_value_deref_repanics_with_the_message() {
    let v: OnceValue<u32, _> = OnceValue::new(|| -> u32 { panic!("config missing") });
    for _ in 0..2 {
        let err = catch_unwind(AssertUnwindSafe(|| *v + 1)).unwrap_err();
        assert_eq!(err.downcast_ref::<&str>(), Some(&"config missing"));
    }
}

// ---- Cond: wait_timeout_while, RwMutex guards ---------------------------------------------

#[test]
fn cond_wait_timeout_while() {
    let pair = Arc::new((Mutex::new(0u32), Cond::new()));
    let (m, c) = &*pair;
    let mut g = m.lock();
    // The condition is checked first: no wait at all when it does not hold.
    assert!(c.wait_timeout_while(&mut g, Duration::ZERO, |n| *n > 0));
    // Nobody changes it: times out, condition still holding, lock held again.
    let start = Instant::now();
    assert!(!c.wait_timeout_while(&mut g, Duration::from_millis(10), |n| *n == 0));
    assert!(start.elapsed() >= Duration::from_millis(10));
    assert!(m.try_lock().is_none());
    // Several signals that do not yet satisfy it, then one that does.
    let p2 = Arc::clone(&pair);
    let t = thread::spawn(move || {
        for _ in 0..3 {
            *p2.0.lock() += 1;
            p2.1.signal();
        }
    });
    assert!(c.wait_timeout_while(&mut g, Duration::from_secs(30), |n| *n < 3));
    assert_eq!(*g, 3);
    drop(g);
    t.join().unwrap();
}

#[test]
fn cond_with_rwmutex_read_guards_is_go_rlocker() {
    let state = Arc::new((RwMutex::new(false), Cond::new()));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let state = Arc::clone(&state);
            thread::spawn(move || {
                let (l, c) = &*state;
                let mut g = l.read();
                while !*g {
                    c.wait(&mut g);
                }
                // Woken and holding a read lock again.
                assert!(l.try_write().is_none());
            })
        })
        .collect();
    let (l, c) = &*state;
    // Once every reader waits, none holds the lock: the writer gets in.
    wait_until("four readers waiting", || {
        format!("{c:?}").contains("waiters: 4")
    });
    *l.write() = true;
    assert_eq!(c.broadcast(), 4);
    for r in readers {
        r.join().unwrap();
    }
}

#[test]
fn cond_with_rwmutex_write_and_arc_guards() {
    let l = Arc::new(RwMutex::new(0u32));
    let c = Arc::new(Cond::new());
    let t = {
        let (l, c) = (Arc::clone(&l), Arc::clone(&c));
        thread::spawn(move || {
            let mut g = l.write_arc();
            c.wait_while(&mut g, |n| *n == 0);
            *g += 10;
            c.signal();
        })
    };
    wait_until("the waiter to park", || {
        format!("{c:?}").contains("waiters: 1")
    });
    {
        // A read guard of the same RwMutex may share the Cond.
        let mut w = l.write();
        *w = 1;
        c.signal();
        // Wait with the downgraded read guard for the waiter's write and signal.
        let mut r = RwMutexWriteGuard::downgrade(w);
        while *r != 11 {
            c.wait(&mut r);
        }
    }
    t.join().unwrap();
    assert_eq!(*l.read(), 11);

    let m = Arc::new(Mutex::new(false));
    let c = Cond::new();
    let mut g = m.lock_arc();
    assert!(
        c.wait_timeout(&mut g, Duration::from_millis(1)),
        "nobody signals: timed out"
    );
}

#[test]
fn cond_binds_to_one_lock() {
    let c = Arc::new(Cond::new());
    let a = Arc::new(RwMutex::new(false));
    let b = Mutex::new(());
    assert!(c.wait_timeout(&mut a.write(), Duration::ZERO));
    assert!(
        c.wait_timeout(&mut a.read(), Duration::ZERO),
        "both sides of one RwMutex"
    );
    // While a thread waits with `a`, waiting with `b` panics.
    let waiter = {
        let (c, a) = (Arc::clone(&c), Arc::clone(&a));
        thread::spawn(move || {
            let mut g = a.write();
            c.wait_while(&mut g, |done| !*done);
        })
    };
    while c.waiters() == 0 {
        thread::yield_now();
    }
    let err = catch_unwind(AssertUnwindSafe(|| {
        c.wait_timeout(&mut b.lock(), Duration::ZERO);
    }))
    .unwrap_err();
    let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("second Mutex/RwMutex"), "{msg}");
    *a.write() = true;
    c.signal();
    waiter.join().unwrap();
}
