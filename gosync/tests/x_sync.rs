//! gosync::x beyond Go's tests: FIFO order, cancellation of async waiters and leaders, panic
//! propagation, blocking and async callers sharing one primitive.
#![cfg(not(loom))] // loom builds run only the loom_* models

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use gosync::x::{AsyncErrGroup, CancelToken, ErrGroup, Semaphore, SingleFlight};

/// A waker that counts its wake-ups.
#[derive(Default)]
struct CountWaker(AtomicUsize);
impl Wake for CountWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>, w: &Arc<CountWaker>) -> Poll<F::Output> {
    let waker = Waker::from(w.clone());
    f.poll(&mut Context::from_waker(&waker))
}

/// Waits (bounded) until `cond` holds; panics with `what` if it never does.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------- Semaphore

#[test]
fn large_head_blocks_smaller_and_try_acquire() {
    let sem = Semaphore::new(2);
    let held = sem.acquire(1);
    let log = Mutex::new(Vec::new());
    thread::scope(|s| {
        s.spawn(|| {
            let p = sem.acquire(2);
            log.lock().unwrap().push("big");
            drop(p);
        });
        eventually("big request queued", || sem.waiters() == 1);
        // One permit is free, but a waiter is queued: no barging.
        assert_eq!(sem.available(), 1);
        assert!(
            sem.try_acquire(1).is_none(),
            "try_acquire must fail while anyone waits"
        );
        s.spawn(|| {
            let p = sem.acquire(1);
            log.lock().unwrap().push("small");
            drop(p);
        });
        eventually("small request queued", || sem.waiters() == 2);
        thread::sleep(Duration::from_millis(20));
        assert!(
            log.lock().unwrap().is_empty(),
            "the small request overtook the big one"
        );
        drop(held);
    });
    assert_eq!(*log.lock().unwrap(), ["big", "small"]);
    assert_eq!(sem.available(), 2);
}

#[test]
fn fifo_order_of_blocking_waiters() {
    let sem = Semaphore::new(1);
    let first = sem.acquire(1);
    let order = Mutex::new(Vec::new());
    thread::scope(|s| {
        for i in 0..6 {
            let (sem, order) = (&sem, &order);
            s.spawn(move || {
                let p = sem.acquire(1);
                order.lock().unwrap().push(i);
                drop(p);
            });
            eventually("waiter queued", || sem.waiters() == i + 1);
        }
        drop(first);
    });
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
}

#[test]
fn async_and_blocking_share_one_fifo_queue() {
    let sem = Arc::new(Semaphore::new(1));
    let held = sem.acquire_owned(1);
    let w = Arc::new(CountWaker::default());
    // Async waiter first.
    let mut fut = Box::pin(sem.acquire_async(1));
    assert!(poll_once(fut.as_mut(), &w).is_pending());
    assert_eq!(sem.waiters(), 1);
    // Then a blocking waiter.
    let (tx, rx) = mpsc::channel();
    let t = {
        let sem = sem.clone();
        thread::spawn(move || {
            let p = sem.acquire(1);
            tx.send(()).unwrap();
            drop(p);
        })
    };
    eventually("thread queued", || sem.waiters() == 2);
    drop(held);
    // The async waiter was first: it is woken and owns the permit; the thread still waits.
    eventually("async waiter woken", || w.0.load(Ordering::SeqCst) > 0);
    assert!(rx.recv_timeout(Duration::from_millis(30)).is_err());
    let permit = match poll_once(fut.as_mut(), &w) {
        Poll::Ready(p) => p,
        Poll::Pending => panic!("woken but not granted"),
    };
    drop(permit);
    rx.recv_timeout(Duration::from_secs(20))
        .expect("thread never got the permit");
    t.join().unwrap();
    drop(fut);
    assert_eq!(sem.available(), 1);
}

/// Dropping the head async waiter lets the smaller waiters behind it proceed (Go's rule for a
/// cancelled head).
#[test]
fn dropped_head_future_unblocks_next() {
    let sem = Semaphore::new(3);
    let held = sem.acquire(1);
    let w = Arc::new(CountWaker::default());
    let mut big = Box::pin(sem.acquire_async(3));
    let mut small = Box::pin(sem.acquire_async(2));
    assert!(poll_once(big.as_mut(), &w).is_pending());
    assert!(poll_once(small.as_mut(), &w).is_pending());
    assert_eq!(sem.waiters(), 2);
    drop(big);
    assert_eq!(
        sem.waiters(),
        0,
        "the small waiter should have been granted"
    );
    assert!(w.0.load(Ordering::SeqCst) >= 1);
    let p = match poll_once(small.as_mut(), &w) {
        Poll::Ready(p) => p,
        Poll::Pending => panic!("not granted"),
    };
    assert_eq!(p.count(), 2);
    drop((p, held));
    assert_eq!(sem.available(), 3);
}

/// A future dropped after it was granted (but before it was polled again) gives the permits
/// back instead of leaking them.
#[test]
fn dropped_granted_future_returns_permits() {
    let sem = Semaphore::new(2);
    let held = sem.acquire(2);
    let w = Arc::new(CountWaker::default());
    let mut fut = Box::pin(sem.acquire_async(2));
    assert!(poll_once(fut.as_mut(), &w).is_pending());
    drop(held); // grants to `fut`
    assert_eq!(sem.available(), 0);
    drop(fut);
    assert_eq!(sem.available(), 2);
    assert!(sem.try_acquire(2).is_some());
}

/// A dropped waiter in the middle of the queue is removed without disturbing the order.
#[test]
fn dropped_middle_future_keeps_order() {
    let sem = Semaphore::new(1);
    let held = sem.acquire(1);
    let w = Arc::new(CountWaker::default());
    let mut a = Box::pin(sem.acquire_async(1));
    let mut b = Box::pin(sem.acquire_async(1));
    let mut c = Box::pin(sem.acquire_async(1));
    for f in [&mut a, &mut b, &mut c] {
        assert!(poll_once(f.as_mut(), &w).is_pending());
    }
    drop(b);
    assert_eq!(sem.waiters(), 2);
    drop(held);
    let pa = match poll_once(a.as_mut(), &w) {
        Poll::Ready(p) => p,
        Poll::Pending => panic!("a first"),
    };
    assert!(poll_once(c.as_mut(), &w).is_pending());
    drop(pa);
    assert!(poll_once(c.as_mut(), &w).is_ready());
}

#[test]
fn timeout_of_head_waiter_unblocks_next() {
    let sem = Semaphore::new(4);
    let held = sem.acquire(1);
    thread::scope(|s| {
        let big = s.spawn(|| sem.acquire_timeout(4, Duration::from_millis(100)).is_some());
        eventually("big queued", || sem.waiters() == 1);
        let small = s.spawn(|| sem.acquire(3).count());
        eventually("small queued", || sem.waiters() == 2);
        assert!(!big.join().unwrap());
        assert_eq!(small.join().unwrap(), 3);
    });
    drop(held);
    assert_eq!(sem.available(), 4);
}

/// Go's head-of-line rule under load: a request for all 5 permits is served even though
/// requests for 1 permit keep arriving from threads that release and ask again at once (with
/// barging for small requests, a weighted head must still close the gate to them). Six small
/// requesters holding their permit for a moment keep the 5 permits nearly always in use, so
/// the weight-5 request is served only if it holds its place at the head of the queue.
#[test]
fn weighted_request_is_served_while_small_ones_keep_arriving() {
    /// Stops the small requesters when dropped, also while a failed check unwinds: otherwise
    /// the scope would wait for them forever and a failure would hang instead of failing.
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let sem = Semaphore::new(5);
    let stop = AtomicBool::new(false);
    let small_rounds = AtomicUsize::new(0);
    let served = thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    // Timed, so that a semaphore that strands its waiters fails the test
                    // instead of hanging it.
                    let Some(p) = sem.acquire_timeout(1, Duration::from_secs(1)) else {
                        continue;
                    };
                    let held = std::time::Instant::now();
                    while held.elapsed() < Duration::from_micros(20) {
                        std::hint::spin_loop();
                    }
                    drop(p);
                    small_rounds.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let _stop = StopOnDrop(&stop);
        eventually("small requests running", || {
            small_rounds.load(Ordering::Relaxed) > 1000
        });
        let mut served = 0;
        while served < 20 {
            let Some(big) = sem.acquire_timeout(5, Duration::from_secs(10)) else {
                break;
            };
            drop(big);
            served += 1;
        }
        served
    });
    assert_eq!(
        served, 20,
        "the weight-5 request was starved by weight-1 requests (waited 10 s)"
    );
    assert_eq!(sem.available(), 5);
    assert_eq!(sem.waiters(), 0);
}

/// Timed acquires whose deadlines race releases, hand-offs and wake-ups: whatever wins each
/// race, no permit is lost or doubled (the holders never exceed the size, and every permit is
/// back at the end with an empty queue).
#[test]
fn timeouts_racing_grants_lose_no_permit() {
    const SIZE: usize = 3;
    let sem = Semaphore::new(SIZE);
    let in_use = AtomicUsize::new(0);
    let served = AtomicUsize::new(0);
    thread::scope(|s| {
        for t in 0..6u64 {
            let (sem, in_use, served) = (&sem, &in_use, &served);
            s.spawn(move || {
                let mut seed = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for _ in 0..3000 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let n = 1 + (seed % 2) as usize;
                    let timeout = Duration::from_micros(seed % 40);
                    if let Some(p) = sem.acquire_timeout(n, timeout) {
                        let before = in_use.fetch_add(n, Ordering::SeqCst);
                        assert!(before + n <= SIZE, "{} permits held", before + n);
                        std::hint::spin_loop();
                        in_use.fetch_sub(n, Ordering::SeqCst);
                        drop(p);
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert!(served.load(Ordering::Relaxed) > 0);
    assert_eq!(sem.available(), SIZE, "a permit was lost");
    assert_eq!(sem.waiters(), 0);
}

/// Async acquires dropped by short tokio timeouts while releases grant them permits, mixed with
/// blocking threads in the same queue: a future dropped after its permits were granted gives
/// them back, so none is lost.
#[test]
fn dropped_futures_racing_grants_lose_no_permit() {
    const SIZE: usize = 2;
    let sem = Arc::new(Semaphore::new(SIZE));
    let in_use = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (sem, in_use, stop) = (sem.clone(), in_use.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let p = sem.acquire(1);
                    assert!(in_use.fetch_add(1, Ordering::SeqCst) < SIZE);
                    in_use.fetch_sub(1, Ordering::SeqCst);
                    drop(p);
                }
            })
        })
        .collect();
    rt().block_on(async {
        let tasks: Vec<_> = (0..8u64)
            .map(|t| {
                let (sem, in_use) = (sem.clone(), in_use.clone());
                tokio::spawn(async move {
                    for i in 0..400u64 {
                        let n = 1 + ((t + i) % 2) as usize;
                        let wait = Duration::from_micros((t * 7 + i * 13) % 50);
                        if let Ok(p) = tokio::time::timeout(wait, sem.acquire_async(n)).await {
                            let before = in_use.fetch_add(n, Ordering::SeqCst);
                            assert!(before + n <= SIZE, "{} permits held", before + n);
                            tokio::task::yield_now().await;
                            in_use.fetch_sub(n, Ordering::SeqCst);
                            drop(p);
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(sem.available(), SIZE, "a permit was lost");
    assert_eq!(sem.waiters(), 0);
}

#[test]
fn tokio_timeout_cancels_async_acquire() {
    rt().block_on(async {
        let sem = Arc::new(Semaphore::new(2));
        let held = sem.acquire(1);
        let r = tokio::time::timeout(Duration::from_millis(20), sem.acquire_async(2)).await;
        assert!(r.is_err());
        assert_eq!(sem.waiters(), 0);
        drop(held);
        let p = sem.acquire_async(2).await;
        assert_eq!(p.count(), 2);
    });
}

#[test]
#[should_panic(expected = "can never succeed")]
fn acquire_more_than_size_panics() {
    let sem = Semaphore::new(2);
    let _ = sem.acquire(3);
}

#[test]
fn acquire_more_than_size_timeout_and_try_fail_fast() {
    let sem = Semaphore::new(2);
    assert!(sem.try_acquire(3).is_none());
    let t0 = std::time::Instant::now();
    assert!(sem.acquire_timeout(3, Duration::from_secs(30)).is_none());
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[test]
#[should_panic(expected = "semaphore: released more than held")]
fn over_release_after_permit_panics() {
    let sem = Semaphore::new(2);
    let p = sem.acquire(1);
    sem.release(2);
    drop(p);
}

#[test]
#[should_panic(expected = "semaphore: released more than held")]
fn over_release_while_queued_panics() {
    let sem = Arc::new(Semaphore::new(1));
    let p = sem.acquire(1);
    let w = Arc::new(CountWaker::default());
    let mut fut = Box::pin(sem.acquire_async(1));
    assert!(poll_once(fut.as_mut(), &w).is_pending());
    p.forget();
    sem.release(1); // grants to `fut`
    sem.release(1); // nothing is held any more
}

/// Threads and tasks with mixed weights never hold more than `size` permits at once, and
/// every permit comes back.
#[test]
fn mixed_stress_respects_capacity() {
    const SIZE: usize = 5;
    let sem = Arc::new(Semaphore::new(SIZE));
    let inside = Arc::new(AtomicUsize::new(0));
    let check = |inside: &AtomicUsize, n: usize| {
        let now = inside.fetch_add(n, Ordering::SeqCst) + n;
        assert!(now <= SIZE, "{now} permits held at once");
        std::hint::spin_loop();
        inside.fetch_sub(n, Ordering::SeqCst);
    };
    let rt = rt();
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let (sem, inside) = (sem.clone(), inside.clone());
            rt.spawn(async move {
                for k in 0..200 {
                    let n = 1 + (i + k) % SIZE;
                    if k % 7 == 0 {
                        // Sometimes give up (cancellation) while waiting.
                        let _ =
                            tokio::time::timeout(Duration::from_micros(50), sem.acquire_async(n))
                                .await;
                        continue;
                    }
                    let p = sem.acquire_async(n).await;
                    check(&inside, n);
                    drop(p);
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    thread::scope(|s| {
        for i in 0..3 {
            let (sem, inside) = (&sem, &inside);
            s.spawn(move || {
                for k in 0..200 {
                    let n = 1 + (i * 3 + k) % SIZE;
                    if k % 5 == 0 {
                        if let Some(p) = sem.acquire_timeout(n, Duration::from_micros(100)) {
                            check(inside, n);
                            drop(p);
                        }
                        continue;
                    }
                    let p = sem.acquire(n);
                    check(inside, n);
                    drop(p);
                }
            });
        }
    });
    rt.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(sem.available(), SIZE);
    assert_eq!(sem.waiters(), 0);
}

// ---------------------------------------------------------------- SingleFlight

#[test]
fn stampede_of_1000_async_callers_computes_once() {
    let rt = rt();
    let group = Arc::new(SingleFlight::<&'static str, u64>::new());
    let computed = Arc::new(AtomicUsize::new(0));
    let n = 1000;
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (group, computed) = (group.clone(), computed.clone());
            rt.spawn(async move {
                group
                    .run_async("hot", || async {
                        computed.fetch_add(1, Ordering::SeqCst);
                        // Stay in flight until everybody joined (bounded).
                        let t0 = std::time::Instant::now();
                        while group.waiters(&"hot") < n - 1
                            && t0.elapsed() < Duration::from_secs(20)
                        {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        42
                    })
                    .await
            })
        })
        .collect();
    let results = rt.block_on(async {
        let mut v = Vec::new();
        for t in tasks {
            v.push(t.await.unwrap());
        }
        v
    });
    assert_eq!(computed.load(Ordering::SeqCst), 1);
    assert!(results.iter().all(|&(v, shared)| v == 42 && shared));
    assert_eq!(group.in_flight(), 0);
}

/// The async leader is cancelled: one waiter takes over, all waiters get the value, nobody
/// fails.
#[test]
fn cancelled_async_leader_is_replaced_by_a_waiter() {
    let rt = rt();
    let group = Arc::new(SingleFlight::<u32, u32>::new());
    let started = Arc::new(AtomicUsize::new(0));
    let (g, s) = (group.clone(), started.clone());
    let leader = rt.spawn(async move {
        g.run_async(7, || async move {
            s.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<u32>().await
        })
        .await
    });
    eventually("leader started", || started.load(Ordering::SeqCst) == 1);
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let (g, s) = (group.clone(), started.clone());
            rt.spawn(async move {
                g.run_async(7, || async move {
                    s.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    99
                })
                .await
            })
        })
        .collect();
    eventually("waiters joined", || group.waiters(&7) == 5);
    leader.abort();
    let results = rt.block_on(async {
        assert!(leader.await.unwrap_err().is_cancelled());
        let mut v = Vec::new();
        for w in waiters {
            v.push(w.await.expect("a waiter failed"));
        }
        v
    });
    assert_eq!(
        started.load(Ordering::SeqCst),
        2,
        "exactly one waiter took over"
    );
    assert_eq!(results.iter().filter(|r| r.0 == 99).count(), 5);
    assert_eq!(
        results.iter().filter(|r| r.1).count(),
        5,
        "all five shared one execution"
    );
    assert_eq!(group.in_flight(), 0);
}

/// A blocking waiter takes over from a cancelled async leader.
#[test]
fn blocking_waiter_takes_over_from_async_leader() {
    let group = Arc::new(SingleFlight::<u8, &'static str>::new());
    let w = Arc::new(CountWaker::default());
    let mut leader = Box::pin(group.run_async(1, std::future::pending));
    assert!(poll_once(leader.as_mut(), &w).is_pending());
    let t = {
        let group = group.clone();
        thread::spawn(move || group.run(1, || "from the thread"))
    };
    eventually("thread joined", || group.waiters(&1) == 1);
    drop(leader);
    assert_eq!(t.join().unwrap(), ("from the thread", false));
    assert_eq!(group.in_flight(), 0);
}

#[test]
fn dropped_leader_without_waiters_frees_the_key() {
    let group = SingleFlight::<u8, u8>::new();
    let w = Arc::new(CountWaker::default());
    let mut leader = Box::pin(group.run_async(1, std::future::pending));
    assert!(poll_once(leader.as_mut(), &w).is_pending());
    assert_eq!(group.in_flight(), 1);
    drop(leader);
    assert_eq!(group.in_flight(), 0);
    assert_eq!(group.run(1, || 5), (5, false));
}

#[test]
fn dropped_async_waiter_leaves_quietly() {
    let group = Arc::new(SingleFlight::<u8, u8>::new());
    let (tx, rx) = mpsc::channel::<()>();
    let leader = {
        let group = group.clone();
        thread::spawn(move || {
            group.run(1, || {
                rx.recv().unwrap();
                8
            })
        })
    };
    eventually("leader running", || group.in_flight() == 1);
    let w = Arc::new(CountWaker::default());
    let mut waiter = Box::pin(group.run_async(1, || async { 0 }));
    assert!(poll_once(waiter.as_mut(), &w).is_pending());
    assert_eq!(group.waiters(&1), 1);
    drop(waiter);
    assert_eq!(group.waiters(&1), 0);
    tx.send(()).unwrap();
    assert_eq!(leader.join().unwrap(), (8, false));
}

#[test]
fn panic_reaches_async_waiters() {
    let rt = rt();
    let group = Arc::new(SingleFlight::<u8, u8>::new());
    let go = Arc::new(AtomicBool::new(false));
    let (g, flag) = (group.clone(), go.clone());
    let leader = rt.spawn(async move {
        g.run_async(3, || async move {
            while !flag.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            panic!("exploded in the leader")
        })
        .await
    });
    // The leader must own the key before the waiters start, or a waiter could lead instead.
    eventually("leader in flight", || group.in_flight() == 1);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let g = group.clone();
            rt.spawn(async move { g.run_async(3, || async { unreachable!() }).await })
        })
        .collect();
    eventually("waiters joined", || group.waiters(&3) == 3);
    go.store(true, Ordering::SeqCst);
    rt.block_on(async {
        let e = leader.await.unwrap_err();
        assert!(e.is_panic());
        for w in waiters {
            let p = w.await.unwrap_err().into_panic();
            assert_eq!(
                p.downcast_ref::<String>().map(String::as_str),
                Some("exploded in the leader")
            );
        }
    });
    assert_eq!(group.in_flight(), 0);
    assert_eq!(
        group.run(3, || 1),
        (1, false),
        "the key is usable after a panic"
    );
}

// ---------------------------------------------------------------- ErrGroup

#[test]
fn errgroup_first_error_cancels_siblings() {
    let g = ErrGroup::new();
    let stopped_early = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let (token, stopped) = (g.token(), stopped_early.clone());
        g.go(move || {
            // Would take 20 s unless cancelled.
            if token.wait_timeout(Duration::from_secs(20)) {
                stopped.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        });
    }
    g.go(|| Err("boom"));
    assert_eq!(g.wait(), Err("boom"));
    assert_eq!(stopped_early.load(Ordering::SeqCst), 3);
}

#[test]
fn errgroup_panic_is_reraised_from_wait() {
    let g = ErrGroup::<String>::new();
    let token = g.token();
    g.go(|| panic!("task blew up"));
    let t2 = token.clone();
    g.go(move || {
        t2.wait();
        Err("sibling saw the cancellation".into())
    });
    let p = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.wait())).unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"task blew up"));
    assert!(token.is_cancelled());
}

#[test]
fn errgroup_tasks_can_spawn_tasks() {
    let g = ErrGroup::<()>::new();
    let count = Arc::new(AtomicUsize::new(0));
    let (g2, c) = (g.clone(), count.clone());
    g.go(move || {
        for _ in 0..4 {
            let c = c.clone();
            g2.go(move || {
                thread::sleep(Duration::from_millis(5));
                c.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
        }
        Ok(())
    });
    g.wait().unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 4);
}

#[test]
#[should_panic(expected = "limit of 0")]
fn errgroup_go_with_zero_limit_panics() {
    let g = ErrGroup::<()>::new();
    g.set_limit(0);
    g.go(|| Ok(()));
}

#[test]
fn scoped_errgroup_borrows_and_reports_first_error() {
    let data = [3, 1, 4, 1, 5, 9, 2, 6];
    let sums = Mutex::new(0);
    let res = ErrGroup::scope(|g| {
        g.set_limit(2);
        for chunk in data.chunks(2) {
            let sums = &sums;
            g.go(move || {
                if chunk.contains(&9) {
                    return Err(format!("bad chunk {chunk:?}"));
                }
                *sums.lock().unwrap() += chunk.iter().sum::<i32>();
                Ok(())
            });
        }
        "body result"
    });
    assert_eq!(res, Err("bad chunk [5, 9]".to_string()));
    assert_eq!(*sums.lock().unwrap(), 3 + 1 + 4 + 1 + 2 + 6);

    let ok: Result<&str, String> = ErrGroup::scope(|g| {
        g.go(|| Ok(()));
        "body result"
    });
    assert_eq!(ok, Ok("body result"));
}

#[test]
fn scoped_errgroup_panic_propagates_and_cancels() {
    let saw_cancel = AtomicBool::new(false);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Result<(), ()> = ErrGroup::scope(|g| {
            let token = g.token().clone();
            g.go(|| panic!("scoped task panicked"));
            let saw_cancel = &saw_cancel;
            g.go(move || {
                if token.wait_timeout(Duration::from_secs(20)) {
                    saw_cancel.store(true, Ordering::SeqCst);
                }
                Ok(())
            });
        });
    }));
    assert_eq!(
        r.unwrap_err().downcast_ref::<&str>(),
        Some(&"scoped task panicked")
    );
    assert!(saw_cancel.load(Ordering::SeqCst));
}

/// A future that records that it was dropped.
struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn async_errgroup_error_drops_the_rest() {
    rt().block_on(async {
        let dropped = Arc::new(AtomicBool::new(false));
        let mut g = AsyncErrGroup::new();
        let token = g.token();
        let flag = DropFlag(dropped.clone());
        g.go(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
            Ok(())
        });
        g.go(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Err("failed")
        });
        assert_eq!(g.wait().await, Err("failed"));
        assert!(
            dropped.load(Ordering::SeqCst),
            "the pending future was not dropped"
        );
        assert!(token.is_cancelled());
    });
}

#[test]
fn async_errgroup_limit_and_borrowing() {
    rt().block_on(async {
        let active = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let mut g = AsyncErrGroup::<()>::new();
        g.set_limit(3);
        for _ in 0..12 {
            g.go(async {
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                active.fetch_sub(1, Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
        }
        g.wait().await.unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 12);
        assert!(
            peak.load(Ordering::SeqCst) <= 3,
            "peak {}",
            peak.load(Ordering::SeqCst)
        );
        assert!(peak.load(Ordering::SeqCst) >= 2, "futures did not overlap");
    });
}

#[test]
fn async_errgroup_panic_is_reraised() {
    let r = std::panic::catch_unwind(|| {
        rt().block_on(async {
            let mut g = AsyncErrGroup::<()>::new();
            g.go(async { panic!("async task panicked") });
            let _ = g.wait().await;
        })
    });
    assert_eq!(
        r.unwrap_err().downcast_ref::<&str>(),
        Some(&"async task panicked")
    );
}

#[test]
fn async_errgroup_try_go_respects_limit() {
    let mut g = AsyncErrGroup::<()>::new();
    g.set_limit(2);
    assert!(g.try_go(async { Ok(()) }));
    assert!(g.try_go(async { Ok(()) }));
    assert!(!g.try_go(async { Ok(()) }));
}

#[test]
fn cancel_token_future_wakes_and_deregisters() {
    let token = CancelToken::new();
    let w = Arc::new(CountWaker::default());
    // Futures created and dropped repeatedly (a select! loop) do not accumulate.
    for _ in 0..100 {
        let mut f = Box::pin(token.cancelled());
        assert!(poll_once(f.as_mut(), &w).is_pending());
    }
    let mut f = Box::pin(token.cancelled());
    assert!(poll_once(f.as_mut(), &w).is_pending());
    let t2 = token.clone();
    thread::spawn(move || t2.cancel()).join().unwrap();
    assert_eq!(
        w.0.load(Ordering::SeqCst),
        1,
        "exactly the live future was woken"
    );
    assert!(poll_once(f.as_mut(), &w).is_ready());
    assert!(token.wait_timeout(Duration::ZERO));
}

// ---------------------------------------------------------------- auto traits

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>(_: &T) {}

#[test]
fn types_and_futures_are_send() {
    assert_send_sync::<Semaphore>();
    assert_send_sync::<SingleFlight<String, Arc<str>>>();
    assert_send_sync::<ErrGroup<String>>();
    assert_send_sync::<CancelToken>();
    assert_send_sync::<gosync::x::OwnedSemaphorePermit>();
    let sem = Arc::new(Semaphore::new(1));
    assert_send(&sem.acquire_async(1));
    assert_send(&sem.clone().acquire_owned_async(1));
    let group = SingleFlight::<u8, u8>::new();
    assert_send(&group.run_async(1, || async { 1 }));
    let mut g = AsyncErrGroup::<()>::new();
    g.go(async { Ok(()) });
    assert_send(&g.wait());
    let token = CancelToken::new();
    assert_send(&token.cancelled());
}
