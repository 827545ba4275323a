//! The async forms of the waiting primitives: they share one FIFO queue with blocked threads,
//! work with any executor (the tests poll by hand where they need a precise interleaving, and
//! use tokio's multi-threaded runtime for stress), and lose nothing when a future is dropped at
//! any point: before its first poll, while queued, or after it was released and before it was
//! polled again.
#![cfg(not(loom))]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use gosync::{AsyncRwMutexWriteGuard, Cond, Mutex, OnceValue, RwMutex, TryOnce, WaitGroup};

/// A waker that counts its wake-ups.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A future polled by hand, with a counting waker.
struct Manual<F: Future> {
    fut: Pin<Box<F>>,
    wakes: Arc<CountingWaker>,
}

impl<F: Future> Manual<F> {
    fn new(fut: F) -> Self {
        Manual {
            fut: Box::pin(fut),
            wakes: Arc::default(),
        }
    }
    fn poll(&mut self) -> Poll<F::Output> {
        let waker = Waker::from(Arc::clone(&self.wakes));
        self.fut.as_mut().poll(&mut Context::from_waker(&waker))
    }
    fn woken(&self) -> usize {
        self.wakes.0.load(Ordering::SeqCst)
    }
}

/// Polls `f` until it completes, waiting for a wake-up after each `Pending`.
fn poll_to_end<F: Future>(f: &mut Manual<F>) -> F::Output {
    loop {
        let seen = f.woken();
        if let Poll::Ready(v) = f.poll() {
            return v;
        }
        wait_until("a wake-up", || f.woken() > seen);
    }
}

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

/// Joins `t`, failing (instead of hanging) if it does not finish within 10 s.
fn join<T>(t: thread::JoinHandle<T>) -> T {
    wait_until("the thread to finish", || t.is_finished());
    t.join().unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap()
}

// ---- WaitGroup -----------------------------------------------------------------------------

#[test]
fn wait_async_ready_at_once_when_zero() {
    let wg = WaitGroup::new();
    let mut f = Manual::new(wg.wait_async());
    assert!(f.poll().is_ready());
    assert_eq!(wg.waiters(), 0);
}

#[test]
fn wait_async_is_released_with_blocked_threads() {
    let wg = Arc::new(WaitGroup::new());
    wg.add(1);
    let mut task = Manual::new(wg.wait_async());
    assert!(task.poll().is_pending());
    let thread_waiter = {
        let wg = Arc::clone(&wg);
        thread::spawn(move || wg.wait())
    };
    wait_until("thread and task registered", || wg.waiters() == 2);
    assert_eq!(task.woken(), 0);
    wg.done();
    thread_waiter.join().unwrap();
    assert_eq!(task.woken(), 1, "the release wakes the task");
    assert!(task.poll().is_ready());
    assert_eq!(wg.waiters(), 0);
}

#[test]
fn wait_async_dropped_before_first_poll() {
    let wg = WaitGroup::new();
    wg.add(1);
    drop(wg.wait_async());
    assert_eq!(wg.waiters(), 0, "an unpolled future registers nothing");
    wg.done();
}

#[test]
fn wait_async_dropped_while_queued_leaves_the_others_waiting() {
    let wg = WaitGroup::new();
    wg.add(1);
    let mut a = Manual::new(wg.wait_async());
    let mut b = Manual::new(wg.wait_async());
    assert!(a.poll().is_pending() && b.poll().is_pending());
    assert_eq!(wg.waiters(), 2);
    drop(a);
    assert_eq!(wg.waiters(), 1, "the dropped future unregistered");
    assert_eq!(b.woken(), 0, "and released nobody");
    wg.done();
    assert_eq!(b.woken(), 1);
    assert!(b.poll().is_ready());
    // The group is usable for the next round.
    wg.add(1);
    let mut c = Manual::new(wg.wait_async());
    assert!(c.poll().is_pending());
    wg.done();
    assert!(c.poll().is_ready());
}

#[test]
fn wait_async_dropped_after_release_before_poll() {
    let wg = WaitGroup::new();
    wg.add(1);
    let mut a = Manual::new(wg.wait_async());
    let mut b = Manual::new(wg.wait_async());
    assert!(a.poll().is_pending() && b.poll().is_pending());
    wg.done();
    assert_eq!((a.woken(), b.woken()), (1, 1));
    drop(a); // released and never polled again
    assert!(b.poll().is_ready());
    assert_eq!(wg.waiters(), 0);
    // A new round right away is not a misuse for async waiters.
    wg.add(1);
    assert_eq!(wg.count(), 1);
    wg.done();
}

#[test]
fn wait_async_dropped_at_zero_finishes_the_release() {
    // The counter reaches zero with two registered waiters; one is dropped before the release
    // ran for it. Whatever the order, the other must be released.
    let wg = Arc::new(WaitGroup::new());
    for _ in 0..200 {
        wg.add(1);
        let mut a = Manual::new(wg.wait_async());
        let mut b = Manual::new(wg.wait_async());
        assert!(a.poll().is_pending() && b.poll().is_pending());
        let releaser = {
            let wg = Arc::clone(&wg);
            thread::spawn(move || wg.done())
        };
        drop(a);
        releaser.join().unwrap();
        wait_until("b released", || b.woken() > 0);
        assert!(b.poll().is_ready());
        assert_eq!(wg.waiters(), 0);
    }
}

#[test]
fn wait_async_stress_with_cancellations() {
    let rt = runtime();
    rt.block_on(async {
        let wg = Arc::new(WaitGroup::new());
        for round in 0..200u64 {
            let workers = 4;
            wg.add(workers);
            let mut waiters = Vec::new();
            for i in 0..8u64 {
                let wg = Arc::clone(&wg);
                waiters.push(tokio::spawn(async move {
                    if (i + round) % 3 == 0 {
                        // Some waiters give up early: a dropped future mid-wait.
                        let _ =
                            tokio::time::timeout(Duration::from_micros(50), wg.wait_async()).await;
                    } else {
                        wg.wait_async().await;
                        assert_eq!(wg.count(), 0, "released before the last done");
                    }
                }));
            }
            for _ in 0..workers {
                let wg = Arc::clone(&wg);
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    wg.done();
                });
            }
            for w in waiters {
                tokio::time::timeout(Duration::from_secs(10), w)
                    .await
                    .expect("a waiter hung")
                    .unwrap();
            }
            assert_eq!(wg.waiters(), 0);
        }
    });
}

// ---- TryOnce / OnceValue -------------------------------------------------------------------

#[test]
fn try_once_async_runs_one_attempt_at_a_time() {
    let rt = runtime();
    let once = Arc::new(TryOnce::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicBool::new(false));
    rt.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (once, runs, running) =
                    (Arc::clone(&once), Arc::clone(&runs), Arc::clone(&running));
                tokio::spawn(async move {
                    once.call_async(|| async move {
                        assert!(
                            !running.swap(true, Ordering::SeqCst),
                            "two attempts at once"
                        );
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        running.store(false, Ordering::SeqCst);
                        let n = runs.fetch_add(1, Ordering::SeqCst);
                        // The first three attempts fail.
                        if n < 3 {
                            Err(i)
                        } else {
                            Ok(())
                        }
                    })
                    .await
                })
            })
            .collect();
        let mut errs = 0;
        for t in tasks {
            if t.await.unwrap().is_err() {
                errs += 1;
            }
        }
        assert_eq!(errs, 3, "each failed attempt fails only its own caller");
    });
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    assert!(once.is_done());
}

#[test]
fn try_once_async_runner_dropped_mid_attempt_lets_a_waiter_run() {
    let once = TryOnce::new();
    let (ran_task, ran_thread) = (AtomicBool::new(false), AtomicBool::new(false));
    // The runner's attempt waits on a future that never completes.
    let mut runner = Manual::new(once.call_async(std::future::pending::<Result<(), ()>>));
    assert!(runner.poll().is_pending());
    let mut waiter = Manual::new(once.call_async(|| async {
        ran_task.store(true, Ordering::SeqCst);
        Ok::<(), ()>(())
    }));
    assert!(waiter.poll().is_pending(), "waits for the running attempt");
    thread::scope(|s| {
        // A blocked thread waits for the same attempt.
        let t = s.spawn(|| {
            once.call_once(|| {
                ran_thread.store(true, Ordering::SeqCst);
                Ok::<(), ()>(())
            })
        });
        drop(runner); // cancelled mid-attempt: not done, every waiter woken
        assert_eq!(poll_to_end(&mut waiter), Ok(()));
        assert_eq!(t.join().unwrap(), Ok(()));
    });
    assert!(once.is_done());
    assert!(
        ran_task.load(Ordering::SeqCst) ^ ran_thread.load(Ordering::SeqCst),
        "exactly one of the waiters ran its function"
    );
}

#[test]
fn try_once_async_waiter_dropped_after_wake_loses_nothing() {
    let once = TryOnce::new();
    let (fail, go) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let attempt = {
        let (fail, go) = (Arc::clone(&fail), Arc::clone(&go));
        move || {
            std::future::poll_fn(move |_| {
                if go.load(Ordering::SeqCst) {
                    Poll::Ready(if fail.load(Ordering::SeqCst) {
                        Err(())
                    } else {
                        Ok(())
                    })
                } else {
                    Poll::Pending
                }
            })
        }
    };
    let mut runner = Manual::new(once.call_async(attempt));
    assert!(runner.poll().is_pending());
    let mut a = Manual::new(once.call_async(|| async { Ok::<(), ()>(()) }));
    let mut b = Manual::new(once.call_async(|| async { Ok::<(), ()>(()) }));
    assert!(a.poll().is_pending() && b.poll().is_pending());
    fail.store(true, Ordering::SeqCst);
    go.store(true, Ordering::SeqCst);
    assert_eq!(runner.poll(), Poll::Ready(Err(())));
    assert_eq!(
        (a.woken(), b.woken()),
        (1, 1),
        "a failed attempt wakes every waiter"
    );
    drop(a); // woken, never polled: b must still get its turn
    assert_eq!(b.poll(), Poll::Ready(Ok(())));
    assert!(once.is_done());
}

#[test]
fn once_value_async_and_threads_share_one_run() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let v = Arc::new(OnceValue::new(|| {
        CALLS.fetch_add(1, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(5));
        42u64
    }));
    let rt = runtime();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let v = Arc::clone(&v);
            thread::spawn(move || *v.get())
        })
        .collect();
    let sum: u64 = rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let v = Arc::clone(&v);
                tokio::spawn(async move { *v.get_or_init_async().await })
            })
            .collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.await.unwrap();
        }
        sum
    });
    let sum = sum + threads.into_iter().map(|t| t.join().unwrap()).sum::<u64>();
    assert_eq!(sum, 11 * 42);
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
}

#[test]
fn once_value_async_waiter_cancelled_and_panic_repeated() {
    let v = OnceValue::new(|| -> u32 { panic!("no config") });
    let mut f = Manual::new(v.get_or_init_async());
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.poll())).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"no config"));
    let mut again = Manual::new(v.get_or_init_async());
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| again.poll())).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"no config"));

    // A waiter dropped while another thread computes leaves the queue.
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let started_tx = std::sync::Mutex::new(started_tx);
    let go_rx = std::sync::Mutex::new(go_rx);
    let slow = OnceValue::new(|| {
        started_tx.lock().unwrap().send(()).unwrap();
        go_rx.lock().unwrap().recv().unwrap();
        1u8
    });
    thread::scope(|s| {
        let t = s.spawn(|| *slow.get());
        started_rx.recv().unwrap();
        let mut w = Manual::new(slow.get_or_init_async());
        assert!(w.poll().is_pending(), "the run is going on");
        drop(w);
        let mut w2 = Manual::new(slow.get_or_init_async());
        assert!(w2.poll().is_pending());
        go_tx.send(()).unwrap();
        assert_eq!(t.join().unwrap(), 1);
        assert_eq!(w2.woken(), 1, "the remaining waiter is woken");
        assert_eq!(w2.poll(), Poll::Ready(&1));
    });
}

// ---- Mutex::lock_async ---------------------------------------------------------------------

/// The mutex's observable state is back to idle.
fn assert_idle<T>(m: &Mutex<T>) {
    assert!(!m.is_locked(), "still locked");
    assert_eq!(m.waiters(), 0, "waiters left");
    assert!(!m.is_woken(), "WOKEN left set");
    assert!(!m.is_starving(), "handoff request left set");
}

#[test]
fn lock_async_uncontended_and_exclusive_with_threads() {
    let m = Mutex::new(0);
    let mut f = Manual::new(m.lock_async());
    let Poll::Ready(mut g) = f.poll() else {
        panic!("a free mutex is taken at the first poll");
    };
    *g += 1;
    assert!(m.try_lock().is_none());
    drop(g);
    drop(f);
    assert_idle(&m);
}

#[test]
fn lock_async_stress_tasks_and_threads() {
    let rt = runtime();
    let m = Arc::new(Mutex::new(0u64));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                for _ in 0..2_000 {
                    let mut g = m.lock();
                    let v = *g;
                    thread::yield_now();
                    *g = v + 1;
                }
            })
        })
        .collect();
    rt.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let m = Arc::clone(&m);
                tokio::spawn(async move {
                    for n in 0..200 {
                        let mut g = m.lock_async().await;
                        let v = *g;
                        // Held across an await: the guard is Send, the task may move.
                        tokio::task::yield_now().await;
                        *g = v + 1;
                        drop(g);
                        if (n + i) % 7 == 0 {
                            // Some acquisitions are abandoned mid-wait.
                            let _ = tokio::time::timeout(Duration::from_micros(20), async {
                                let mut g = m.lock_async().await;
                                tokio::task::yield_now().await;
                                *g += 1;
                            })
                            .await;
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("a task hung")
                .unwrap();
        }
    });
    for t in threads {
        join(t);
    }
    let total = *m.lock();
    // 4000 + 3200 plain increments, plus however many abandoned-path increments completed.
    assert!(total >= 7_200, "{total}");
    assert_idle(&m);
}

#[test]
fn blocking_and_async_waiters_are_served_in_queue_order() {
    for _ in 0..20 {
        let m = Arc::new(Mutex::new(Vec::<&str>::new()));
        let held = m.lock();
        let t1 = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.lock().push("thread 1"))
        };
        wait_until("thread 1 queued", || m.waiters() == 1);
        let mut task = Manual::new(m.lock_async());
        assert!(task.poll().is_pending());
        assert_eq!(m.waiters(), 2);
        let t2 = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.lock().push("thread 2"))
        };
        wait_until("thread 2 queued", || m.waiters() == 3);
        drop(held);
        let mut g = poll_to_end(&mut task);
        g.push("task");
        drop(g);
        join(t1);
        join(t2);
        assert_eq!(*m.lock(), ["thread 1", "task", "thread 2"]);
        assert_idle(&m);
    }
}

#[test]
fn lock_async_dropped_before_first_poll() {
    let m = Mutex::new(());
    let g = m.lock();
    drop(m.lock_async());
    assert_eq!(m.waiters(), 0);
    drop(g);
    assert_idle(&m);
}

#[test]
fn lock_async_dropped_while_queued() {
    let m = Arc::new(Mutex::new(0));
    let held = m.lock();
    let mut task = Manual::new(m.lock_async());
    assert!(task.poll().is_pending());
    let t = {
        let m = Arc::clone(&m);
        thread::spawn(move || *m.lock() += 1)
    };
    wait_until("thread queued behind the task", || m.waiters() == 2);
    drop(task);
    assert_eq!(m.waiters(), 1, "the dropped future left the queue");
    drop(held);
    join(t);
    assert_eq!(*m.lock(), 1);
    assert_idle(&m);
}

#[test]
fn lock_async_dropped_after_wake_before_poll_passes_it_on() {
    let m = Arc::new(Mutex::new(0));
    let held = m.lock();
    let mut task = Manual::new(m.lock_async());
    assert!(task.poll().is_pending());
    let t = {
        let m = Arc::clone(&m);
        thread::spawn(move || *m.lock() += 1)
    };
    wait_until("thread queued behind the task", || m.waiters() == 2);
    drop(held); // notifies the task, not the thread
    assert_eq!(task.woken(), 1);
    // Woken to compete (it owns WOKEN), or — if it had waited past the patience when the
    // thread queued — handed the lock.
    assert!(m.is_woken() || m.is_locked());
    drop(task); // never polled again: what it was given must be passed on to the thread
    join(t);
    assert_eq!(*m.lock(), 1);
    assert_idle(&m);
}

#[test]
fn lock_async_dropped_after_handoff_before_poll_unlocks() {
    let m = Arc::new(Mutex::new(0));
    let held = m.lock();
    let mut task = Manual::new(m.lock_async());
    assert!(task.poll().is_pending());
    // Wait long enough to be due for a handoff (the patience is 1 ms).
    thread::sleep(Duration::from_millis(3));
    drop(held); // wakes the task
                // The holder barges back in before the task runs; the task loses and, being due, asks
                // for the lock to be handed over at the next unlock.
    let held = m.try_lock().expect("free while the woken task has not run");
    assert!(task.poll().is_pending());
    assert!(m.is_starving(), "a due waiter that lost requests a handoff");
    let woken = task.woken();
    drop(held); // hands the lock to the task
    assert_eq!(task.woken(), woken + 1);
    assert!(m.is_locked(), "owned by the task now");
    let t = {
        let m = Arc::clone(&m);
        thread::spawn(move || *m.lock() += 1)
    };
    drop(task); // dropped with the lock handed to it: must unlock
    join(t);
    assert_eq!(*m.lock(), 1);
    assert_idle(&m);
}

// ---- RwMutex::read_async / write_async -----------------------------------------------------

/// The lock's observable state is back to idle: no reader counted, no writer announced, and
/// the write lock is free.
fn assert_rw_idle<T>(l: &RwMutex<T>) {
    assert_eq!(l.readers(), 0, "readers left counted");
    assert!(!l.is_write_locked(), "a writer left announced");
    drop(l.try_write().expect("the write lock is free"));
}

#[test]
fn read_async_shares_and_write_async_excludes() {
    let l = RwMutex::new(1);
    let mut r1 = Manual::new(l.read_async());
    let mut r2 = Manual::new(l.read_async());
    let (Poll::Ready(g1), Poll::Ready(g2)) = (r1.poll(), r2.poll()) else {
        panic!("a free lock is read-locked at the first poll, twice");
    };
    assert_eq!(*g1 + *g2, 2);
    assert_eq!(l.readers(), 2);
    let mut w = Manual::new(l.write_async());
    assert!(w.poll().is_pending(), "readers inside: the writer waits");
    assert!(
        l.is_write_locked(),
        "announced: new readers wait from now on"
    );
    assert!(l.try_read().is_none());
    drop(g1);
    assert_eq!(w.woken(), 0, "one reader is still inside");
    drop(g2);
    assert_eq!(w.woken(), 1, "the last reader out wakes the writer");
    let Poll::Ready(mut g) = w.poll() else {
        panic!("drained: the writer holds the lock");
    };
    *g = 5;
    assert!(l.try_read().is_none());
    drop(g);
    drop((r1, r2, w));
    assert_eq!(*l.read(), 5);
    assert_rw_idle(&l);
}

#[test]
fn async_reader_behind_a_writer_gets_in_before_the_next_writer() {
    // Go's alternation, across threads and tasks: the readers that queued behind a writer
    // are let in by its unlock before the writer waiting after it.
    for _ in 0..10 {
        let l = Arc::new(RwMutex::new(Vec::<&str>::new()));
        let first = l.write();
        let mut reader = Manual::new(l.read_async());
        assert!(reader.poll().is_pending());
        assert_eq!(l.readers(), 1, "counted in behind the writer");
        let second = {
            let l = Arc::clone(&l);
            thread::spawn(move || l.write().push("second writer"))
        };
        // The second writer waits for the writer lock; give it time to queue there.
        thread::sleep(Duration::from_millis(5));
        drop(first);
        assert!(reader.woken() >= 1, "the writer's unlock wakes the task");
        let g = poll_to_end(&mut reader);
        assert!(g.is_empty(), "the task read before the second writer wrote");
        // The second writer announces itself and waits for the task's read lock.
        wait_until("the second writer announced", || l.is_write_locked());
        thread::sleep(Duration::from_millis(5));
        assert!(
            !second.is_finished(),
            "a writer got in past a reader holding the lock"
        );
        drop(g);
        join(second);
        drop(reader);
        assert_eq!(*l.read(), ["second writer"]);
        assert_rw_idle(&l);
    }
}

#[test]
fn read_async_dropped_before_first_poll_and_while_queued() {
    let l = Arc::new(RwMutex::new(0));
    let w = l.write();
    drop(l.read_async());
    assert_eq!(l.readers(), 0);
    let mut r = Manual::new(l.read_async());
    assert!(r.poll().is_pending());
    let t = {
        let l = Arc::clone(&l);
        thread::spawn(move || *l.read())
    };
    wait_until("the thread queued behind the writer too", || {
        l.readers() == 2
    });
    drop(r);
    assert_eq!(
        l.readers(),
        1,
        "the dropped future took itself out of the count"
    );
    drop(w);
    assert_eq!(join(t), 0);
    assert_rw_idle(&l);
}

#[test]
fn read_async_dropped_after_the_writer_let_it_in_releases_the_read_lock() {
    let l = RwMutex::new(0);
    let w = l.write();
    let mut r = Manual::new(l.read_async());
    assert!(r.poll().is_pending());
    drop(w); // lets the task in: it holds a read lock it has not seen yet
    assert_eq!(r.woken(), 1);
    assert!(
        l.try_write().is_none(),
        "the released task holds a read lock"
    );
    drop(r); // never polled again: the read lock must be given back
    assert_rw_idle(&l);
}

#[test]
fn write_async_dropped_while_waiting_for_the_writer_lock() {
    let l = Arc::new(RwMutex::new(0));
    let held = l.write();
    drop(l.write_async());
    let mut w = Manual::new(l.write_async());
    assert!(w.poll().is_pending());
    let t = {
        let l = Arc::clone(&l);
        thread::spawn(move || *l.write() += 1)
    };
    thread::sleep(Duration::from_millis(5));
    drop(w); // leaves the writer lock's queue; the thread is next
    drop(held);
    join(t);
    assert_eq!(*l.read(), 1);
    assert_rw_idle(&l);
}

#[test]
fn write_async_dropped_while_draining_lets_the_queued_readers_in() {
    let l = Arc::new(RwMutex::new(0));
    let inside = l.read();
    let mut w = Manual::new(l.write_async());
    assert!(w.poll().is_pending());
    assert!(l.is_write_locked());
    let reader = {
        let l = Arc::clone(&l);
        thread::spawn(move || *l.read())
    };
    wait_until("a reader queued behind the announced writer", || {
        l.readers() == 2
    });
    drop(w); // withdraws the announcement: the queued reader gets in
    assert_eq!(join(reader), 0);
    assert!(!l.is_write_locked());
    drop(inside);
    assert_rw_idle(&l);
}

#[test]
fn write_async_dropped_after_the_last_reader_left_releases_the_write_lock() {
    let l = RwMutex::new(0);
    let inside = l.read();
    let mut w = Manual::new(l.write_async());
    assert!(w.poll().is_pending());
    drop(inside); // the writer now holds the lock, unpolled
    assert_eq!(w.woken(), 1);
    assert!(l.try_read().is_none());
    drop(w);
    assert_rw_idle(&l);
}

#[test]
fn write_async_handed_the_writer_lock_then_dropped_passes_it_on() {
    // A writer that has waited long enough is handed the writer lock (the Mutex's
    // starvation handoff); dropping the future then must release it.
    let l = Arc::new(RwMutex::new(0));
    let held = l.write();
    let mut w = Manual::new(l.write_async());
    assert!(w.poll().is_pending());
    thread::sleep(Duration::from_millis(3));
    drop(held);
    let t = {
        let l = Arc::clone(&l);
        thread::spawn(move || *l.write() += 1)
    };
    thread::sleep(Duration::from_millis(2));
    drop(w);
    join(t);
    assert_eq!(*l.read(), 1);
    assert_rw_idle(&l);
}

#[test]
fn async_write_guard_downgrades_without_a_gap() {
    let l = Arc::new(RwMutex::new(0));
    let mut w = Manual::new(l.write_async());
    let Poll::Ready(mut g) = w.poll() else {
        panic!("a free lock is taken at the first poll");
    };
    *g = 7;
    let writer = {
        let l = Arc::clone(&l);
        thread::spawn(move || *l.write() += 1)
    };
    thread::sleep(Duration::from_millis(2));
    let r = AsyncRwMutexWriteGuard::downgrade(g);
    assert_eq!(*r, 7, "no writer got in between");
    drop(r);
    join(writer);
    drop(w);
    assert_eq!(*l.read(), 8);
    assert_rw_idle(&l);
}

/// Counts who is inside an `RwMutex` in the stress test: readers count up, a writer down by
/// [`Inside::WRITER`]; entering checks the count and the returned token leaves on drop (also
/// when a future is cancelled while holding the lock).
struct Inside(std::sync::atomic::AtomicIsize);

impl Inside {
    const WRITER: isize = 1 << 20;

    fn read(&self) -> InsideToken<'_> {
        let prev = self.0.fetch_add(1, Ordering::SeqCst);
        assert!(prev >= 0, "a reader got in while a writer held the lock");
        InsideToken(&self.0, 1)
    }

    fn write(&self) -> InsideToken<'_> {
        let prev = self.0.fetch_sub(Self::WRITER, Ordering::SeqCst);
        assert_eq!(prev, 0, "a writer got in while the lock was held");
        InsideToken(&self.0, -Self::WRITER)
    }
}

struct InsideToken<'a>(&'a std::sync::atomic::AtomicIsize, isize);

impl Drop for InsideToken<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::SeqCst);
    }
}

#[test]
fn rwmutex_async_stress_tasks_and_threads() {
    let rt = runtime();
    let l = Arc::new(RwMutex::new(0u64));
    let inside = Arc::new(Inside(std::sync::atomic::AtomicIsize::new(0)));
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let (l, inside) = (Arc::clone(&l), Arc::clone(&inside));
            thread::spawn(move || {
                for n in 0..1_000u32 {
                    if (n + i) % 4 == 0 {
                        let mut g = l.write();
                        let _token = inside.write();
                        *g += 1;
                        thread::yield_now();
                    } else {
                        let g = l.read();
                        let _token = inside.read();
                        let _ = *g;
                    }
                }
            })
        })
        .collect();
    let written = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        let tasks: Vec<_> = (0..16u32)
            .map(|i| {
                let (l, inside, written) =
                    (Arc::clone(&l), Arc::clone(&inside), Arc::clone(&written));
                tokio::spawn(async move {
                    for n in 0..200u32 {
                        if (n + i) % 5 == 0 {
                            let mut g = l.write_async().await;
                            let _token = inside.write();
                            *g += 1;
                            // Held across an await: the guard is Send, the task may move.
                            tokio::task::yield_now().await;
                        } else {
                            let g = l.read_async().await;
                            let _token = inside.read();
                            tokio::task::yield_now().await;
                            let _ = *g;
                        }
                        if (n + i) % 7 == 0 {
                            // Some acquisitions are abandoned mid-wait (or while held).
                            let (l, inside, written) = (&l, &inside, &written);
                            let _ = tokio::time::timeout(Duration::from_micros(20), async move {
                                if n % 2 == 0 {
                                    let mut g = l.write_async().await;
                                    let _token = inside.write();
                                    *g += 1;
                                    written.fetch_add(1, Ordering::SeqCst);
                                } else {
                                    let g = l.read_async().await;
                                    let _token = inside.read();
                                    tokio::task::yield_now().await;
                                    let _ = *g;
                                }
                            })
                            .await;
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("a task hung")
                .unwrap();
        }
    });
    for t in threads {
        join(t);
    }
    // 2 × 250 thread writes + 16 × 40 task writes + the abandoned-path writes that completed.
    let expected = 500 + 640 + written.load(Ordering::SeqCst) as u64;
    assert_eq!(*l.read(), expected);
    assert_rw_idle(&l);
}

// ---- Cond ----------------------------------------------------------------------------------

/// A mutex and its `Cond`, shared by threads and tasks.
type Shared<T> = Arc<(Mutex<T>, Cond)>;

fn cond_shared<T>(v: T) -> Shared<T> {
    Arc::new((Mutex::new(v), Cond::new()))
}

/// A thread that waits once on the `Cond` (under the lock) and then records `name`.
fn cond_thread_waiter(s: &Shared<Vec<&'static str>>, name: &'static str) -> thread::JoinHandle<()> {
    let s = Arc::clone(s);
    thread::spawn(move || {
        let (m, c) = &*s;
        let mut g = m.lock();
        c.wait(&mut g);
        g.push(name);
    })
}

/// Waits until `n` waiters wait on the `Cond` and none holds the mutex (a waiter counts itself
/// in before it queues and releases the lock; once the lock is free, it has queued).
fn cond_waiting<T>(s: &Shared<T>, n: usize) {
    let (m, c) = &**s;
    wait_until("the waiters to queue", || {
        c.waiters() == n && !m.is_locked()
    });
}

/// A task (polled by hand) that waits once on the `Cond` and then records `name`.
async fn cond_task_waiter(s: &Shared<Vec<&'static str>>, name: &'static str) {
    let (m, c) = &**s;
    let g = m.lock_async().await;
    let mut g = c.wait_async(g).await;
    g.push(name);
}

/// A task waits on the `Cond` (it will record "dropped" if it ever returns), then a thread
/// (recording "thread"); returns once both are queued, the task first.
fn task_then_thread<'a>(
    s: &'a Shared<Vec<&'static str>>,
) -> (
    Manual<impl Future<Output = ()> + 'a>,
    thread::JoinHandle<()>,
) {
    let mut task = Manual::new(cond_task_waiter(s, "dropped"));
    assert!(task.poll().is_pending());
    let t = cond_thread_waiter(s, "thread");
    cond_waiting(s, 2);
    (task, t)
}

#[test]
fn cond_threads_and_tasks_are_signalled_in_wait_order() {
    for _ in 0..10 {
        let s = cond_shared(Vec::new());
        let (m, c) = &*s;
        let t1 = cond_thread_waiter(&s, "thread 1");
        cond_waiting(&s, 1);
        let mut task = Manual::new(cond_task_waiter(&s, "task"));
        assert!(task.poll().is_pending());
        assert_eq!(c.waiters(), 2);
        assert!(m.try_lock().is_some(), "the waiting task released the lock");
        let t2 = cond_thread_waiter(&s, "thread 2");
        cond_waiting(&s, 3);

        assert!(c.signal());
        join(t1);
        assert_eq!(task.woken(), 0, "the second signal is the task's");
        assert!(task.poll().is_pending());
        assert!(c.signal());
        poll_to_end(&mut task);
        assert!(c.signal());
        join(t2);
        assert!(!c.signal());
        assert_eq!(*m.lock(), ["thread 1", "task", "thread 2"]);
        assert_eq!(c.waiters(), 0);
        assert_idle(m);
    }
}

#[test]
fn cond_broadcast_wakes_the_waiting_threads_and_tasks_only() {
    let s = cond_shared(Vec::new());
    let (m, c) = &*s;
    let mut task = Manual::new(cond_task_waiter(&s, "task"));
    assert!(task.poll().is_pending());
    let t = cond_thread_waiter(&s, "thread");
    cond_waiting(&s, 2);
    assert_eq!(c.broadcast(), 2);
    // A task that starts waiting after the broadcast is not woken by it.
    let mut late = Manual::new(cond_task_waiter(&s, "late"));
    assert!(late.poll().is_pending());
    poll_to_end(&mut task);
    join(t);
    assert_eq!(c.waiters(), 1);
    assert_eq!(late.woken(), 0);
    assert!(late.poll().is_pending());
    assert!(c.signal());
    poll_to_end(&mut late);
    let mut order = m.lock().clone();
    order[..2].sort_unstable();
    assert_eq!(order, ["task", "thread", "late"]);
    assert_idle(m);
}

#[test]
fn cond_wait_async_dropped_before_first_poll_releases_the_lock() {
    let s = cond_shared(0);
    let (m, c) = &*s;
    let g = poll_to_end(&mut Manual::new(m.lock_async()));
    drop(c.wait_async(g));
    assert_eq!(c.waiters(), 0);
    assert!(!c.signal());
    assert_idle(m);
}

#[test]
fn cond_wait_async_dropped_while_queued_leaves_the_queue() {
    let s = cond_shared(Vec::new());
    let (m, c) = &*s;
    let (task, t) = task_then_thread(&s);
    drop(task);
    assert_eq!(c.waiters(), 1, "the dropped future left the queue");
    // The next signal is the thread's, not lost on the dropped task.
    assert!(c.signal());
    join(t);
    assert!(!c.signal());
    assert_eq!(*m.lock(), ["thread"]);
    assert_idle(m);
}

#[test]
fn cond_wait_async_signalled_then_dropped_passes_the_signal_on() {
    let s = cond_shared(Vec::new());
    let (m, c) = &*s;
    let (task, t) = task_then_thread(&s);
    assert!(c.signal()); // chooses the task, the older waiter
    assert_eq!(task.woken(), 1);
    assert_eq!(c.waiters(), 1);
    drop(task); // never polled again: the signal goes to the thread
    join(t);
    assert_eq!(c.waiters(), 0);
    assert_eq!(*m.lock(), ["thread"]);
    assert_idle(m);
}

#[test]
fn cond_wait_async_woken_then_dropped_while_relocking_passes_the_signal_on() {
    let s = cond_shared(Vec::new());
    let (m, c) = &*s;
    let (mut task, t) = task_then_thread(&s);
    let held = m.lock();
    assert!(c.signal());
    // Woken; now queued for the mutex, which this thread holds.
    assert!(task.poll().is_pending());
    assert_eq!(m.waiters(), 1);
    drop(task);
    assert_eq!(m.waiters(), 0, "the relock left the mutex's queue");
    drop(held);
    join(t);
    assert_eq!(*m.lock(), ["thread"]);
    assert_idle(m);
}

#[test]
fn cond_wait_async_broadcast_then_dropped_wakes_nobody_else() {
    let s = cond_shared(Vec::new());
    let (m, c) = &*s;
    let mut task = Manual::new(cond_task_waiter(&s, "dropped"));
    assert!(task.poll().is_pending());
    assert_eq!(c.broadcast(), 1);
    let t = cond_thread_waiter(&s, "late");
    cond_waiting(&s, 1);
    drop(task);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(c.waiters(), 1, "a broadcast's wake-up is not passed on");
    assert!(!t.is_finished());
    assert!(c.signal());
    join(t);
    assert_eq!(*m.lock(), ["late"]);
    assert_idle(m);
}

#[test]
fn cond_wait_async_with_rwmutex_guards() {
    let l = Arc::new(RwMutex::new(0u32));
    let c = Arc::new(Cond::new());
    // A writer task waits until a thread publishes a value.
    let mut writer = Manual::new({
        let (l, c) = (Arc::clone(&l), Arc::clone(&c));
        async move {
            let g = l.write_async().await;
            let mut g = c.wait_while_async(g, |v| *v == 0).await;
            *g += 1;
        }
    });
    assert!(writer.poll().is_pending());
    // A reader task waits too (Go's RLocker); neither holds the lock while waiting.
    let mut reader = Manual::new({
        let (l, c) = (Arc::clone(&l), Arc::clone(&c));
        async move {
            let mut g = l.read_async().await;
            while *g < 2 {
                g = c.wait_async(g).await;
            }
            *g
        }
    });
    assert!(reader.poll().is_pending());
    assert_eq!(c.waiters(), 2);
    *l.try_write().expect("the waiting tasks released the lock") = 1;
    assert!(c.signal()); // the writer, the older waiter
    poll_to_end(&mut writer);
    assert_eq!(*l.read(), 2);
    assert!(c.signal());
    assert_eq!(poll_to_end(&mut reader), 2);
    assert_rw_idle(&l);
}

#[test]
fn cond_wait_async_with_a_second_lock_panics_and_releases_it() {
    let s = cond_shared(Vec::new());
    let (m, c) = &*s;
    let mut task = Manual::new(cond_task_waiter(&s, "task"));
    assert!(task.poll().is_pending());
    let other = Mutex::new(());
    let mut wrong = Manual::new(async {
        let g = other.lock_async().await;
        let _g = c.wait_async(g).await;
    });
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wrong.poll()))
        .expect_err("a second lock must panic");
    let msg = err
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| err.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("");
    assert!(msg.contains("second Mutex/RwMutex"), "{msg}");
    drop(wrong);
    assert_idle(&other);
    assert_eq!(c.waiters(), 1);
    assert!(c.signal());
    poll_to_end(&mut task);
    assert_idle(m);
}

/// Producers (threads and tasks) hand items to consumers (threads and tasks) through one
/// `Cond`, one `signal` per item, while tasks that give up after a short wait come and go. A
/// lost signal leaves an item behind with every consumer asleep, which the deadline catches.
#[test]
fn cond_stress_threads_tasks_and_cancellations() {
    #[derive(Default)]
    struct Queue {
        items: Vec<u64>,
        done: bool,
        taken: u64,
        sum: u64,
    }
    const PER_PRODUCER: u64 = 500;
    const PRODUCERS: u64 = 4;
    let s = cond_shared(Queue::default());
    let consume_one = |q: &mut Queue| {
        if let Some(x) = q.items.pop() {
            q.taken += 1;
            q.sum += x;
        }
    };
    let thread_consumers: Vec<_> = (0..2)
        .map(|_| {
            let s = Arc::clone(&s);
            thread::spawn(move || {
                let (m, c) = &*s;
                let mut g = m.lock();
                loop {
                    c.wait_while(&mut g, |q| q.items.is_empty() && !q.done);
                    if g.items.is_empty() {
                        break;
                    }
                    consume_one(&mut g);
                }
            })
        })
        .collect();
    let thread_producers: Vec<_> = (0..2)
        .map(|p| {
            let s = Arc::clone(&s);
            thread::spawn(move || {
                for i in 0..PER_PRODUCER {
                    s.0.lock().items.push(p * PER_PRODUCER + i);
                    s.1.signal();
                }
            })
        })
        .collect();
    let rt = runtime();
    rt.block_on(async {
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    let (m, c) = &*s;
                    let mut g = m.lock_async().await;
                    loop {
                        g = c
                            .wait_while_async(g, |q| q.items.is_empty() && !q.done)
                            .await;
                        if g.items.is_empty() {
                            break;
                        }
                        consume_one(&mut g);
                    }
                })
            })
            .collect();
        let quitters: Vec<_> = (0..4u64)
            .map(|i| {
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    let (m, c) = &*s;
                    for n in 0..200u64 {
                        let wait = async {
                            let g = m.lock_async().await;
                            let mut g = c.wait_async(g).await;
                            // Woken: take an item if there is one, as any consumer would.
                            consume_one(&mut g);
                        };
                        let micros = 1 + (i * 7 + n * 13) % 50;
                        let _ = tokio::time::timeout(Duration::from_micros(micros), wait).await;
                    }
                })
            })
            .collect();
        let producers: Vec<_> = (2..PRODUCERS)
            .map(|p| {
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    for i in 0..PER_PRODUCER {
                        s.0.lock_async().await.items.push(p * PER_PRODUCER + i);
                        s.1.signal();
                        if i % 16 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for t in producers.into_iter().chain(quitters) {
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("a task hung")
                .unwrap();
        }
        for t in thread_producers {
            join(t);
        }
        let total = PRODUCERS * PER_PRODUCER;
        let deadline = Instant::now() + Duration::from_secs(20);
        while s.0.lock().taken != total {
            assert!(
                Instant::now() < deadline,
                "items left with every consumer asleep: a signal was lost ({} of {total} taken)",
                s.0.lock().taken
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        s.0.lock().done = true;
        s.1.broadcast();
        for t in consumers {
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("a consumer hung")
                .unwrap();
        }
        let q = s.0.lock();
        assert_eq!(q.sum, (0..total).sum::<u64>());
        assert!(q.items.is_empty());
    });
    for t in thread_consumers {
        join(t);
    }
    assert_eq!(s.1.waiters(), 0);
    assert_idle(&s.0);
}
