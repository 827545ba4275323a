//! Go's `src/sync/mutex_test.go`, ported (the portable tests), plus the behaviour Go documents
//! for `sync.Mutex` that its tests do not cover (starvation mode, the exit rule, no poisoning)
//! and gosync's additions (`try_lock_for`, observation).
//!
//! Not ported: `TestSemaphore` (gosync exposes no semaphore), `TestMutexMisuse` (unlocking an
//! unlocked or foreign mutex cannot be written with gosync's guard API: see the `compile_fail`
//! example on `Mutex`).
#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync::{Mutex, MutexGuard};

/// Compile-time "does not implement": `<T as Probe<_>>::check()` is ambiguous (an error) when
/// `T` implements the auto trait, because then both impls apply.
trait NotSendProbe<A> {
    fn check() {}
}
impl<T: ?Sized> NotSendProbe<()> for T {}
impl<T: ?Sized + Send> NotSendProbe<u8> for T {}
macro_rules! assert_not_send {
    ($t:ty) => {
        <$t as NotSendProbe<_>>::check()
    };
}
trait NotSyncProbe<A> {
    fn check() {}
}
impl<T: ?Sized> NotSyncProbe<()> for T {}
impl<T: ?Sized + Sync> NotSyncProbe<u8> for T {}
macro_rules! assert_not_sync {
    ($t:ty) => {
        <$t as NotSyncProbe<_>>::check()
    };
}

/// Go's `HammerMutex`: every third iteration `TryLock`s (and unlocks if it got it), the others
/// `Lock`/`Unlock`. Here the lock guards a counter checked at the end.
fn hammer_mutex(m: &Mutex<u64>, loops: usize, done: &AtomicUsize) {
    for i in 0..loops {
        if i % 3 == 0 {
            if let Some(mut g) = m.try_lock() {
                *g += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        let mut g = m.lock();
        *g += 1;
        drop(g);
        done.fetch_add(1, Ordering::Relaxed);
    }
}

/// Go's `TestMutex`.
#[test]
fn test_mutex() {
    let m = Arc::new(Mutex::new(0u64));

    let g = m.lock();
    assert!(
        m.try_lock().is_none(),
        "TryLock succeeded with mutex locked"
    );
    drop(g);
    let g = m.try_lock();
    assert!(g.is_some(), "TryLock failed with mutex unlocked");
    drop(g);

    let done = Arc::new(AtomicUsize::new(0));
    let loops = if cfg!(debug_assertions) { 1000 } else { 10_000 };
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let (m, done) = (Arc::clone(&m), Arc::clone(&done));
            thread::spawn(move || hammer_mutex(&m, loops, &done))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // Every successful critical section incremented the counter exactly once.
    assert_eq!(*m.lock(), done.load(Ordering::Relaxed) as u64);
    assert!(!m.is_locked());
    assert_eq!(m.waiters(), 0);
    assert!(!m.is_starving());
}

/// Go's `TestMutexFairness`: one thread holds the lock almost all the time (100 µs at a time,
/// re-locking at once); another must still get it 10 times within 10 s. Starvation mode
/// guarantees this.
#[test]
fn test_mutex_fairness() {
    let mu = Arc::new(Mutex::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let hog = {
        let (mu, stop) = (Arc::clone(&mu), Arc::clone(&stop));
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _g = mu.lock();
                thread::sleep(Duration::from_micros(100));
            }
        })
    };
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let mu = Arc::clone(&mu);
        thread::spawn(move || {
            for _ in 0..10 {
                thread::sleep(Duration::from_micros(100));
                drop(mu.lock());
            }
            tx.send(()).unwrap();
        });
    }
    let res = rx.recv_timeout(Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    hog.join().unwrap();
    assert!(res.is_ok(), "can't acquire Mutex in 10 seconds");
}

/// The same hog, measured: every wait of the victim is bounded (loosely: well under a second,
/// where a lock without a fairness mechanism can starve it for much longer), and the mutex is
/// seen in starvation mode while the victim waits behind the hog.
#[test]
fn bounded_wait_under_a_hog() {
    let mu = Arc::new(Mutex::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let saw_starving = Arc::new(AtomicBool::new(false));
    let hog = {
        let (mu, stop, saw) = (
            Arc::clone(&mu),
            Arc::clone(&stop),
            Arc::clone(&saw_starving),
        );
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _g = mu.lock();
                thread::sleep(Duration::from_micros(100));
                // A victim that lost the race after waiting > 1 ms switches the mode while
                // we hold the lock; our unlock then hands the lock over.
                if mu.is_starving() {
                    saw.store(true, Ordering::Relaxed);
                }
            }
        })
    };
    let mut max_wait = Duration::ZERO;
    for i in 0..200 {
        thread::sleep(Duration::from_micros(100));
        let t = Instant::now();
        let g = mu.lock();
        max_wait = max_wait.max(t.elapsed());
        drop(g);
        if i >= 20 && saw_starving.load(Ordering::Relaxed) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    hog.join().unwrap();
    assert!(
        max_wait < Duration::from_secs(1),
        "victim waited {max_wait:?} behind a hog"
    );
    // A victim that waits more than 1 ms and then loses to the hog must switch the mode; if it
    // never waited that long, there was nothing to switch for.
    assert!(
        saw_starving.load(Ordering::Relaxed) || max_wait < Duration::from_millis(2),
        "the mutex never entered starvation mode although a waiter waited {max_wait:?} \
         behind a hog"
    );
    assert!(
        !mu.is_starving(),
        "starvation mode must end when the waiters are gone"
    );
}

/// `TryLock` in Go "fails in starvation mode": while a waiter is being handed the lock or waits
/// in starvation mode, a try_lock from outside never wins.
#[test]
fn try_lock_fails_while_held_by_another_thread() {
    let m = Arc::new(Mutex::new(1));
    let g = m.lock();
    let m2 = Arc::clone(&m);
    let got = thread::spawn(move || m2.try_lock().map(|g| *g))
        .join()
        .unwrap();
    assert_eq!(got, None);
    drop(g);
    let m2 = Arc::clone(&m);
    let got = thread::spawn(move || m2.try_lock().map(|g| *g))
        .join()
        .unwrap();
    assert_eq!(got, Some(1));
}

/// Go has no poisoning: a panic while holding the lock just unlocks it.
#[test]
fn panic_while_locked_unlocks_without_poisoning() {
    let m = Arc::new(Mutex::new(vec![1]));
    let m2 = Arc::clone(&m);
    let r = thread::spawn(move || {
        let mut g = m2.lock();
        g.push(2);
        panic!("boom while holding the lock");
    })
    .join();
    assert!(r.is_err());
    assert!(!m.is_locked());
    assert_eq!(*m.lock(), vec![1, 2]);
}

/// `waiters()` counts sleeping lockers; they all get the lock after the holder unlocks.
#[test]
fn waiters_are_counted_and_all_served() {
    let m = Arc::new(Mutex::new(0));
    let g = m.lock();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let m = Arc::clone(&m);
            thread::spawn(move || *m.lock() += 1)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while m.waiters() < 3 {
        assert!(
            Instant::now() < deadline,
            "waiters stuck at {}",
            m.waiters()
        );
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(m.waiters(), 3);
    assert!(m.is_locked());
    drop(g);
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(*m.lock(), 3);
    assert_eq!(m.waiters(), 0);
}

/// `try_lock_for` gives up after the timeout while another thread holds the lock, leaving the
/// state clean, and succeeds when the holder lets go in time.
#[test]
fn try_lock_for_times_out_and_succeeds() {
    let m = Arc::new(Mutex::new(0));
    let g = m.lock();
    let m2 = Arc::clone(&m);
    let r = thread::spawn(move || {
        let t = Instant::now();
        let got = m2.try_lock_for(Duration::from_millis(30)).is_some();
        (got, t.elapsed())
    })
    .join()
    .unwrap();
    assert!(!r.0, "try_lock_for acquired a mutex held by another thread");
    assert!(
        r.1 >= Duration::from_millis(30),
        "gave up early after {:?}",
        r.1
    );
    assert_eq!(
        m.waiters(),
        0,
        "a timed-out waiter must leave the waiter count"
    );

    let m2 = Arc::clone(&m);
    let h = thread::spawn(move || {
        m2.try_lock_for(Duration::from_secs(30))
            .map(|mut g| *g += 1)
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while m.waiters() == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    drop(g);
    assert_eq!(h.join().unwrap(), Some(()));
    assert_eq!(*m.lock(), 1);
    assert!(m.try_lock_for(Duration::ZERO).is_some());
}

/// Timed lockers that give up, mixed with blocking lockers and a slow holder (so starvation
/// mode comes and goes): no update is lost, no one is left waiting, the state ends clean.
#[test]
fn try_lock_for_mixed_with_lock_keeps_state_consistent() {
    let m = Arc::new(Mutex::new(0u64));
    let acquired = Arc::new(AtomicUsize::new(0));
    let rounds = if cfg!(debug_assertions) { 200 } else { 2000 };
    let handles: Vec<_> = (0..6)
        .map(|t| {
            let (m, acquired) = (Arc::clone(&m), Arc::clone(&acquired));
            thread::spawn(move || {
                for i in 0..rounds {
                    let guard: Option<MutexGuard<'_, u64>> = if t % 2 == 0 {
                        m.try_lock_for(Duration::from_micros(50 + (i % 7) * 100))
                    } else {
                        Some(m.lock())
                    };
                    if let Some(mut g) = guard {
                        *g += 1;
                        acquired.fetch_add(1, Ordering::Relaxed);
                        if i % 16 == 0 {
                            thread::sleep(Duration::from_micros(1500));
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(*m.lock(), acquired.load(Ordering::Relaxed) as u64);
    assert_eq!(m.waiters(), 0);
    assert!(!m.is_starving());
    assert!(!m.is_locked());
}

/// `get_mut`, `into_inner`, `Default`, `Debug`, unsized data, `static` (const `new`).
#[test]
fn ownership_api() {
    static GLOBAL: Mutex<Vec<u8>> = Mutex::new(Vec::new());
    GLOBAL.lock().push(7);
    assert_eq!(*GLOBAL.lock(), [7]);

    let mut m = Mutex::new(String::from("a"));
    m.get_mut().push('b');
    assert_eq!(
        format!("{m:?}"),
        r#"Mutex { data: "ab", starving: false, waiters: 0 }"#
    );
    let g = m.lock();
    assert_eq!(
        format!("{m:?}"),
        r#"Mutex { data: <locked>, starving: false, waiters: 0 }"#
    );
    drop(g);
    assert_eq!(m.into_inner(), "ab");

    let d: Mutex<u32> = Mutex::default();
    assert_eq!(*d.lock(), 0);

    let boxed: Box<Mutex<[u32]>> = Box::new(Mutex::new([1, 2, 3]));
    boxed.lock()[1] = 5;
    assert_eq!(&*boxed.lock(), &[1, 5, 3]);
}

/// `Send`/`Sync` exactly like `std::sync::Mutex` (compile-time).
#[test]
fn send_sync_like_std() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Mutex<u32>>();
    sync::<Mutex<u32>>();
    // `Cell` is Send but not Sync: the mutex makes it Sync, like std.
    sync::<Mutex<std::cell::Cell<u32>>>();
    sync::<MutexGuard<'static, u32>>();
    // Negative bounds: these lines stop compiling if the type becomes Send (resp. Sync).
    assert_not_send!(MutexGuard<'static, u32>);
    assert_not_send!(Mutex<std::rc::Rc<u32>>);
    assert_not_sync!(Mutex<std::rc::Rc<u32>>);
    assert_not_sync!(MutexGuard<'static, std::cell::Cell<u32>>);
}
