//! Go's `golang.org/x/sync` tests (semaphore, singleflight, errgroup), ported.
//!
//! Where Go's API differs (contexts, `DoChan`, sticky `Wait` errors) the test keeps what it
//! checks and says how it was adapted.
#![cfg(not(loom))] // loom builds run only the loom_* models

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use gosync::x::{ErrGroup, Semaphore, SingleFlight};

/// Small pseudo-random sleeps without a dependency (xorshift per thread).
fn jitter(seed: &mut u64, max_us: u64) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    Duration::from_micros(*seed % max_us)
}

// ---------------------------------------------------------------- semaphore_test.go

fn hammer_weighted(sem: &Semaphore, n: usize, loops: usize, seed: u64) {
    let mut seed = seed | 1;
    for _ in 0..loops {
        let p = sem.acquire(n);
        thread::sleep(jitter(&mut seed, 200));
        drop(p);
    }
}

#[test]
fn test_weighted() {
    let n = 4;
    let loops = 200 / n;
    let sem = Semaphore::new(n);
    thread::scope(|s| {
        for i in 0..n {
            let sem = &sem;
            s.spawn(move || hammer_weighted(sem, i, loops, i as u64 + 7));
        }
    });
    assert_eq!(sem.available(), n);
}

#[test]
#[should_panic(expected = "semaphore: released more than held")]
fn test_weighted_panic() {
    let w = Semaphore::new(1);
    w.release(1);
}

#[test]
fn test_weighted_try_acquire() {
    let sem = Semaphore::new(2);
    let mut tries = vec![];
    sem.acquire(1).forget();
    tries.push(sem.try_acquire(1).map(|p| p.forget()).is_some());
    tries.push(sem.try_acquire(1).map(|p| p.forget()).is_some());
    sem.release(2);
    tries.push(sem.try_acquire(1).map(|p| p.forget()).is_some());
    sem.acquire(1).forget();
    tries.push(sem.try_acquire(1).map(|p| p.forget()).is_some());
    assert_eq!(tries, [true, false, true, false]);
}

#[test]
fn test_weighted_acquire() {
    let sem = Semaphore::new(2);
    let try_acquire = |n| {
        sem.acquire_timeout(n, Duration::from_millis(10))
            .map(|p| p.forget())
            .is_some()
    };
    let mut tries = vec![];
    sem.acquire(1).forget();
    tries.push(try_acquire(1));
    tries.push(try_acquire(1));
    sem.release(2);
    tries.push(try_acquire(1));
    sem.acquire(1).forget();
    tries.push(try_acquire(1));
    assert_eq!(tries, [true, false, true, false]);
}

/// Go parks `Acquire(ctx, n+1)` until its context ends; here a request larger than the
/// semaphore fails at once. Either way it must not block the small requests.
#[test]
fn test_weighted_doesnt_block_if_too_big() {
    const N: usize = 2;
    let sem = Semaphore::new(N);
    let big = thread::scope(|s| {
        let big = s.spawn(|| sem.acquire_timeout(N + 1, Duration::from_secs(5)).is_some());
        let g: Result<(), String> = ErrGroup::scope(|g| {
            for _ in 0..N * 3 {
                g.go(|| {
                    let p = sem
                        .acquire_timeout(1, Duration::from_secs(10))
                        .ok_or_else(|| "blocked behind a too-big request".to_string())?;
                    thread::sleep(Duration::from_millis(1));
                    drop(p);
                    Ok(())
                });
            }
        });
        assert_eq!(
            g,
            Ok(()),
            "Semaphore::new({N}) failed to acquire 1 with acquire({}) pending",
            N + 1
        );
        big.join().unwrap()
    });
    assert!(!big);
    assert_eq!(sem.waiters(), 0);
}

/// Times out (hangs) if a large acquire starves; returning is success.
#[test]
fn test_large_acquire_doesnt_starve() {
    let n = 4;
    let sem = Semaphore::new(n);
    let running = AtomicBool::new(true);
    thread::scope(|s| {
        for _ in 0..n {
            sem.acquire(1).forget();
            s.spawn(|| {
                while running.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(1));
                    sem.release(1);
                    sem.acquire(1).forget();
                }
                sem.release(1);
            });
        }
        let all = sem.acquire(n);
        running.store(false, Ordering::Relaxed);
        drop(all);
    });
    assert_eq!(sem.available(), n);
}

#[test]
fn test_alloc_cancel_doesnt_starve() {
    let sem = Arc::new(Semaphore::new(10));
    // Hold 1 "read lock".
    let read = sem.acquire(1);
    let writer = {
        let sem = sem.clone();
        // A "write lock" request that gives up after 300 ms.
        thread::spawn(move || {
            sem.acquire_timeout(10, Duration::from_millis(300))
                .is_some()
        })
    };
    // Long enough for the write request to be queued.
    while sem.waiters() == 0 {
        thread::sleep(Duration::from_millis(1));
    }
    let (tx, rx) = mpsc::channel();
    {
        let sem = sem.clone();
        // Queued behind the write request; must be let through when it gives up.
        thread::spawn(move || {
            let p = sem.acquire(1);
            drop(p);
            tx.send(()).unwrap();
        });
    }
    rx.recv_timeout(Duration::from_secs(20))
        .expect("reader starved behind a cancelled writer");
    assert!(
        !writer.join().unwrap(),
        "the write request cannot succeed while a read is held"
    );
    drop(read);
    assert_eq!(sem.available(), 10);
}

// ---------------------------------------------------------------- singleflight_test.go

#[test]
fn test_do() {
    let g = SingleFlight::new();
    let (v, _) = g.run("key", || "bar".to_string());
    assert_eq!(v, "bar");
}

#[test]
fn test_do_err() {
    let g = SingleFlight::<&str, Result<String, String>>::new();
    let (v, _) = g.run("key", || Err("Some error".to_string()));
    assert_eq!(v, Err("Some error".to_string()));
}

#[test]
fn test_do_dup_suppress() {
    let g = SingleFlight::<&str, String>::new();
    let calls = AtomicI32::new(0);
    let (tx, rx) = std::sync::mpsc::sync_channel::<String>(1);
    let rx = std::sync::Mutex::new(rx);
    const N: usize = 10;
    let first_started = Barrier::new(2);
    let all_entering = Barrier::new(N + 1);
    let f = || {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            first_started.wait();
        }
        let v = rx.lock().unwrap().recv().unwrap();
        tx.send(v.clone()).unwrap(); // pump for any later call
        thread::sleep(Duration::from_millis(10)); // let more threads enter run
        v
    };
    thread::scope(|s| {
        let mut hs = vec![];
        for _ in 0..N {
            hs.push(s.spawn(|| {
                all_entering.wait();
                g.run("key", f).0
            }));
        }
        all_entering.wait();
        first_started.wait();
        // At least one thread is in f now and all have reached the line before run.
        tx.send("bar".to_string()).unwrap();
        for h in hs {
            assert_eq!(h.join().unwrap(), "bar");
        }
    });
    let got = calls.load(Ordering::SeqCst);
    assert!(
        got > 0 && (got as usize) < N,
        "number of calls = {got}; want over 0 and less than {N}"
    );
}

/// golang/go#31420: after `forget`, a new call starts, and the first call's completion does
/// not remove the second from the group.
#[test]
fn test_forget() {
    let g = Arc::new(SingleFlight::<&str, i32>::new());
    let (first_started_tx, first_started) = mpsc::channel();
    let (unblock_first, unblock_first_rx) = mpsc::channel::<()>();
    let first = {
        let g = g.clone();
        thread::spawn(move || {
            g.run("key", || {
                first_started_tx.send(()).unwrap();
                unblock_first_rx.recv().unwrap();
                1
            })
        })
    };
    first_started.recv().unwrap();
    g.forget(&"key");

    let (second_started_tx, second_started) = mpsc::channel();
    let (unblock_second, unblock_second_rx) = mpsc::channel::<()>();
    let second = {
        let g = g.clone();
        thread::spawn(move || {
            g.run("key", || {
                second_started_tx.send(()).unwrap();
                unblock_second_rx.recv().unwrap();
                2
            })
        })
    };
    second_started.recv().unwrap();

    unblock_first.send(()).unwrap();
    assert_eq!(first.join().unwrap().0, 1);

    let third = {
        let g = g.clone();
        thread::spawn(move || g.run("key", || 3))
    };
    while g.waiters(&"key") == 0 {
        thread::sleep(Duration::from_millis(1));
    }
    unblock_second.send(()).unwrap();
    assert_eq!(second.join().unwrap().0, 2);
    let (v, shared) = third.join().unwrap();
    assert_eq!(
        v, 2,
        "the third call should receive the result of the second"
    );
    assert!(shared);
}

/// golang/go#41133: every caller sees the panic, and nothing hangs.
#[test]
fn test_panic_do() {
    let g = SingleFlight::<&str, ()>::new();
    const N: usize = 5;
    let panics = AtomicUsize::new(0);
    let in_f = Barrier::new(N);
    let entered = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..N {
            s.spawn(|| {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    entered.fetch_add(1, Ordering::SeqCst);
                    g.run("key", || {
                        // Give the others time to join (bounded; they may also lead later).
                        let t0 = std::time::Instant::now();
                        while g.waiters(&"key") < N - 1 && t0.elapsed() < Duration::from_secs(5) {
                            thread::sleep(Duration::from_millis(1));
                        }
                        panic!("invalid memory address or nil pointer dereference")
                    })
                }));
                if let Err(p) = r {
                    let msg = p
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| p.downcast_ref::<&str>().copied())
                        .unwrap_or("");
                    assert!(
                        msg.contains("nil pointer dereference"),
                        "unexpected panic {msg:?}"
                    );
                    panics.fetch_add(1, Ordering::SeqCst);
                }
                let _ = &in_f;
            });
        }
    });
    assert_eq!(panics.load(Ordering::SeqCst), N, "expect {N} panics");
    assert_eq!(g.in_flight(), 0);
}

/// Go's TestPanicDoSharedByDoChan: a waiter that joined a panicking call panics with the
/// leader's message and never runs its own function.
#[test]
fn test_panic_do_shared() {
    let g = Arc::new(SingleFlight::<&str, ()>::new());
    let (blocked_tx, blocked) = mpsc::channel();
    let (unblock, unblock_rx) = mpsc::channel::<()>();
    let leader = {
        let g = g.clone();
        thread::spawn(move || {
            g.run("", || {
                blocked_tx.send(()).unwrap();
                unblock_rx.recv().unwrap();
                panic!("Panicking in Do")
            })
        })
    };
    blocked.recv().unwrap();
    let waiter = {
        let g = g.clone();
        thread::spawn(move || g.run("", || panic!("unexpectedly executed callback")))
    };
    while g.waiters(&"") == 0 {
        thread::sleep(Duration::from_millis(1));
    }
    unblock.send(()).unwrap();
    assert!(leader.join().is_err());
    let p = waiter.join().expect_err("the waiter must panic too");
    assert_eq!(
        p.downcast_ref::<String>().map(String::as_str),
        Some("Panicking in Do")
    );
}

// ---------------------------------------------------------------- errgroup_test.go

/// Go's `Wait` keeps returning the first error; here `wait` hands it out once. The port runs
/// each case's tasks, then checks the first `wait` returns the first error.
#[test]
fn test_zero_group() {
    let cases: Vec<Vec<Option<&str>>> = vec![
        vec![],
        vec![None],
        vec![Some("errgroup_test: 1")],
        vec![Some("errgroup_test: 1"), None],
        vec![Some("errgroup_test: 1"), None, Some("errgroup_test: 2")],
    ];
    for errs in cases {
        let g = ErrGroup::new();
        let mut first = None;
        for (i, e) in errs.iter().copied().enumerate() {
            g.go(move || e.map_or(Ok(()), Err));
            if first.is_none() {
                first = e;
            }
            let got = g.wait().err();
            // Only the wait right after the first error sees it.
            let want = if errs[..i].iter().any(Option::is_some) {
                e
            } else {
                first
            };
            assert_eq!(got, want, "after {:?}", &errs[..=i]);
        }
    }
}

#[test]
fn test_with_context() {
    let doom = "group_test: doomed";
    let cases: Vec<(Vec<Option<&str>>, Option<&str>)> = vec![
        (vec![], None),
        (vec![None], None),
        (vec![Some(doom)], Some(doom)),
        (vec![Some(doom), None], Some(doom)),
    ];
    for (errs, want) in cases {
        let g = ErrGroup::new();
        let token = g.token();
        for e in errs.iter().copied() {
            g.go(move || e.map_or(Ok(()), Err));
        }
        assert_eq!(g.wait().err(), want, "for {errs:?}");
        assert!(
            token.is_cancelled(),
            "token not cancelled after wait for {errs:?}"
        );
    }
}

#[test]
fn test_try_go() {
    let g = ErrGroup::<()>::new();
    let n = 42;
    g.set_limit(42);
    let (tx, rx) = mpsc::sync_channel::<()>(0);
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let fn_ = |tx: mpsc::SyncSender<()>| move || tx.send(()).map_err(|_| ());
    for i in 0..n {
        assert!(
            g.try_go(fn_(tx.clone())),
            "try_go should succeed but failed at call {i}"
        );
    }
    assert!(
        !g.try_go(fn_(tx.clone())),
        "try_go is expected to fail but succeeded"
    );
    let drain = |k: usize| {
        let rx = rx.clone();
        thread::spawn(move || {
            for _ in 0..k {
                rx.lock().unwrap().recv().unwrap();
            }
        })
    };
    let d = drain(n);
    g.wait().unwrap();
    d.join().unwrap();

    assert!(
        g.try_go(fn_(tx.clone())),
        "try_go should succeed after all tasks finished"
    );
    let d = drain(1);
    g.wait().unwrap();
    d.join().unwrap();

    // Switch limit.
    g.set_limit(1);
    assert!(g.try_go(fn_(tx.clone())));
    assert!(!g.try_go(fn_(tx.clone())));
    let d = drain(1);
    g.wait().unwrap();
    d.join().unwrap();

    // Block all calls.
    g.set_limit(0);
    for _ in 0..1 << 10 {
        assert!(
            !g.try_go(fn_(tx.clone())),
            "try_go should fail with a limit of 0"
        );
    }
    g.wait().unwrap();
}

#[test]
fn test_go_limit() {
    const LIMIT: i32 = 10;
    let g = ErrGroup::new();
    g.set_limit(LIMIT as usize);
    let active = Arc::new(AtomicI32::new(0));
    for _ in 0..=200 {
        let active = active.clone();
        g.go(move || {
            let n = active.fetch_add(1, Ordering::SeqCst) + 1;
            if n > LIMIT {
                return Err(format!("saw {n} active tasks; want <= {LIMIT}"));
            }
            thread::sleep(Duration::from_micros(1));
            active.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        });
    }
    g.wait().unwrap();
}

#[test]
#[should_panic(
    expected = "errgroup: modify limit while 1 goroutines in the group are still active"
)]
fn test_set_limit_while_active_panics() {
    let g = ErrGroup::<()>::new();
    let (tx, rx) = mpsc::channel::<()>();
    g.go(move || {
        let _ = rx.recv();
        Ok(())
    });
    let _unblock_on_unwind = tx;
    g.set_limit(2);
}
