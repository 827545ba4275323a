//! `Mutex::stats` (feature `lock-stats`): the counters agree with what the test itself did and
//! measured. Run: `cargo test -p gosync --features lock-stats --test lock_stats`.
#![cfg(all(feature = "lock-stats", not(loom)))]

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use gosync::{Cond, Mutex};

fn block_on<F: Future>(f: F) -> F::Output {
    struct T(thread::Thread);
    impl Wake for T {
        fn wake(self: Arc<Self>) {
            self.0.unpark()
        }
    }
    let waker = Waker::from(Arc::new(T(thread::current())));
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) {
            return v;
        }
        thread::park();
    }
}

#[test]
fn every_successful_acquisition_counts_once_and_failures_not_at_all() {
    let m = Arc::new(Mutex::named("counted", 0));
    for _ in 0..3 {
        *m.lock() += 1;
    }
    drop(m.try_lock().expect("free"));
    drop(m.try_lock_for(Duration::from_millis(10)).expect("free"));
    drop(block_on(m.lock_async()));
    let s = m.stats();
    assert_eq!(s.name, Some("counted"));
    assert_eq!(s.acquisitions, 6);
    assert_eq!(
        (s.contended, s.total_wait, s.max_wait),
        (0, Duration::ZERO, Duration::ZERO)
    );
    assert_eq!((s.starvation_entries, s.handoffs), (0, 0));

    // Failed attempts, while another thread holds the lock, count nothing.
    let held = m.lock();
    let m2 = Arc::clone(&m);
    let failed = thread::spawn(move || {
        assert!(m2.try_lock().is_none());
        assert!(m2.try_lock_for(Duration::from_millis(5)).is_none());
    });
    failed.join().unwrap();
    drop(held);
    let s = m.stats();
    assert_eq!(s.acquisitions, 7);
    // The timed attempt waited and gave up: not an acquisition, not a contended one.
    assert_eq!(s.contended, 0);
    assert!(Mutex::new(()).stats().name.is_none());
}

#[test]
fn a_contended_wait_is_counted_and_timed() {
    let m = Arc::new(Mutex::new(()));
    let held = m.lock();
    let m2 = Arc::clone(&m);
    let waiter = thread::spawn(move || {
        let start = Instant::now();
        drop(m2.lock());
        start.elapsed()
    });
    // Let the waiter go to sleep on the lock, then release it.
    let start = Instant::now();
    while m.waiters() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the waiter never queued"
        );
        thread::yield_now();
    }
    thread::sleep(Duration::from_millis(30));
    drop(held);
    let measured = waiter.join().unwrap();
    let s = m.stats();
    assert_eq!(s.acquisitions, 2);
    assert_eq!(s.contended, 1);
    assert_eq!(s.max_wait, s.total_wait);
    // The lock's own timing lies inside the waiter's, and covers most of it.
    assert!(s.total_wait <= measured, "{s:?} vs {measured:?}");
    assert!(s.total_wait >= measured / 2, "{s:?} vs {measured:?}");
    assert!(s.total_wait >= Duration::from_millis(25), "{s:?}");
    let text = s.to_string();
    assert!(
        text.contains("2 acquisitions, 1 contended (50.0%)"),
        "{text}"
    );
}

#[test]
fn long_holds_under_contention_show_starvation_entries_and_handoffs() {
    let m = Arc::new(Mutex::named("hot", 0u32));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                for _ in 0..40 {
                    let mut g = m.lock();
                    // Held past the patience (1 ms): waiters become due, and the holder's
                    // immediate re-lock makes them lose the race unless the lock is handed over.
                    thread::sleep(Duration::from_millis(2));
                    *g += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = m.stats();
    assert_eq!(*m.lock(), 120);
    assert_eq!(s.acquisitions, 120);
    assert!(s.contended > 0 && s.contended <= s.acquisitions, "{s:?}");
    assert!(s.starvation_entries > 0, "{s:?}");
    assert!(s.handoffs > 0 && s.handoffs <= s.contended, "{s:?}");
    assert!(
        s.max_wait >= Duration::from_millis(1) && s.max_wait <= s.total_wait,
        "{s:?}"
    );
}

#[test]
fn a_cond_wait_relocks_through_the_counted_path() {
    let p = Arc::new((Mutex::new(false), Cond::new()));
    let p2 = Arc::clone(&p);
    let waiter = thread::spawn(move || {
        let mut g = p2.0.lock();
        p2.1.wait_while(&mut g, |ready| !*ready);
    });
    while p.1.waiters() == 0 {
        thread::yield_now();
    }
    *p.0.lock() = true;
    p.1.signal();
    waiter.join().unwrap();
    // The waiter's lock, the notifier's, the waiter's re-lock (the loop above only reads
    // `waiters()`).
    assert_eq!(p.0.stats().acquisitions, 3);
}

#[test]
fn waiters_moved_by_a_broadcast_count_their_relock() {
    let p = Arc::new((Mutex::new(0u32), Cond::new()));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let p = Arc::clone(&p);
            thread::spawn(move || {
                let mut g = p.0.lock();
                *g += 1;
                p.1.wait_while(&mut g, |n| *n < 100);
            })
        })
        .collect();
    // All three wait (they counted themselves in under the lock and released it).
    while p.1.waiters() < 3 || p.0.is_locked() {
        thread::yield_now();
    }
    {
        let mut g = p.0.lock();
        *g = 100;
        assert_eq!(p.1.broadcast(), 3);
        assert_eq!(p.0.waiters(), 3, "moved to the mutex");
    }
    for w in waiters {
        w.join().unwrap();
    }
    let s = p.0.stats();
    // 3 first locks, the broadcaster's, 3 relocks (plus the polling loop's, none: it only
    // reads). The relocks of moved waiters are contended ones.
    assert_eq!(s.acquisitions, 7);
    assert!(s.contended >= 3, "{s:?}");
}
