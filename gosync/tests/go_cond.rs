//! Go's `src/sync/cond_test.go`, ported (TestCondSignal, TestCondSignalGenerations,
//! TestCondBroadcast, TestRace, TestCondSignalStealing), plus what gosync adds: one lock at a
//! time (and a binding that survives moves), `wait_while`, and timed waits that never swallow
//! a signal.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync::{Cond, Mutex};

const SETTLE: Duration = Duration::from_millis(50);
const PATIENCE: Duration = Duration::from_secs(20);

fn recv<T>(rx: &Receiver<T>, what: &str) -> T {
    rx.recv_timeout(PATIENCE)
        .unwrap_or_else(|e| panic!("timed out waiting for {what}: {e:?}"))
}

fn assert_empty<T>(rx: &Receiver<T>, what: &str) {
    if rx.try_recv().is_ok() {
        panic!("{what}");
    }
}

fn assert_silent<T>(rx: &Receiver<T>, what: &str) {
    match rx.recv_timeout(SETTLE) {
        Err(RecvTimeoutError::Timeout) => {}
        Ok(_) => panic!("{what}"),
        Err(e) => panic!("channel error: {e:?}"),
    }
}

type Shared<T> = Arc<(Mutex<T>, Cond)>;

fn shared<T>(v: T) -> Shared<T> {
    Arc::new((Mutex::new(v), Cond::new()))
}

#[test]
fn test_cond_signal() {
    let mc = shared(());
    let mut n = 2;
    let (running_tx, running_rx) = channel();
    let (awake_tx, awake_rx) = channel();
    for _ in 0..n {
        let (mc, running_tx, awake_tx) = (Arc::clone(&mc), running_tx.clone(), awake_tx.clone());
        thread::spawn(move || {
            let (m, c) = &*mc;
            let mut g = m.lock();
            running_tx.send(()).unwrap();
            c.wait(&mut g);
            awake_tx.send(()).unwrap();
            drop(g);
        });
    }
    for _ in 0..n {
        recv(&running_rx, "everyone to run");
    }
    let (m, c) = &*mc;
    while n > 0 {
        assert_empty(&awake_rx, "goroutine not asleep");
        {
            // Each waiter sent `running` while holding the lock and releases it only inside
            // `wait`, after taking its ticket: holding the lock now, all `n` provably wait.
            let _g = m.lock();
            assert_eq!(c.waiters(), n, "waiters before the signal");
            assert!(c.signal(), "signal found no waiter");
            // Exactly one chosen, whatever the scheduler does (the silence check below can
            // only see a second wake-up that happens within its window).
            assert_eq!(c.waiters(), n - 1, "a signal chose more than one waiter");
        }
        recv(&awake_rx, "a woken waiter"); // would hang if nobody woke up
        assert_silent(&awake_rx, "too many goroutines awake");
        n -= 1;
    }
    assert!(!c.signal(), "signal with nobody waiting");
}

#[test]
fn test_cond_signal_generations() {
    let mc = shared(());
    let n = 100;
    let (running_tx, running_rx) = channel();
    let (awake_tx, awake_rx) = channel();
    for i in 0..n {
        {
            let (mc, running_tx, awake_tx) =
                (Arc::clone(&mc), running_tx.clone(), awake_tx.clone());
            thread::spawn(move || {
                let (m, c) = &*mc;
                let mut g = m.lock();
                running_tx.send(()).unwrap();
                c.wait(&mut g);
                awake_tx.send(i).unwrap();
                drop(g);
            });
        }
        if i > 0 {
            let a = recv(&awake_rx, "a woken waiter");
            assert_eq!(a, i - 1, "wrong goroutine woke up: want {}, got {a}", i - 1);
        }
        recv(&running_rx, "the new waiter to run");
        let (m, c) = &*mc;
        let _g = m.lock();
        c.signal();
    }
    assert_eq!(recv(&awake_rx, "the last waiter"), n - 1);
}

#[test]
fn test_cond_broadcast() {
    // Go: 200 goroutines × 200 rounds; OS threads in a debug build get fewer.
    let n = if cfg!(debug_assertions) { 64 } else { 200 };
    let mc = shared(false); // `exit`
    let (running_tx, running_rx) = channel();
    let (awake_tx, awake_rx) = channel();
    let handles: Vec<_> = (0..n)
        .map(|g| {
            let (mc, running_tx, awake_tx) =
                (Arc::clone(&mc), running_tx.clone(), awake_tx.clone());
            thread::spawn(move || {
                let (m, c) = &*mc;
                let mut exit = m.lock();
                while !*exit {
                    running_tx.send(g).unwrap();
                    c.wait(&mut exit);
                    awake_tx.send(g).unwrap();
                }
            })
        })
        .collect();
    let (m, c) = &*mc;
    for round in 0..n {
        for _ in 0..n {
            recv(&running_rx, "all waiters to run"); // would hang unless n are running
        }
        if round == n - 1 {
            *m.lock() = true;
        }
        assert_empty(&awake_rx, "goroutine not asleep");
        {
            let _g = m.lock();
            assert_eq!(c.broadcast(), n, "broadcast woke the wrong number");
        }
        let mut seen = vec![false; n];
        for _ in 0..n {
            let g = recv(&awake_rx, "a woken waiter");
            assert!(!seen[g], "goroutine woke up twice");
            seen[g] = true;
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    assert!(running_rx.try_recv().is_err(), "goroutine did not exit");
    assert_eq!(c.broadcast(), 0);
}

#[test]
fn test_race() {
    let mc = shared(0);
    let (done_tx, done_rx) = channel();
    {
        let (mc, done_tx) = (Arc::clone(&mc), done_tx.clone());
        thread::spawn(move || {
            let (m, c) = &*mc;
            let mut x = m.lock();
            *x = 1;
            c.wait(&mut x);
            assert_eq!(*x, 2, "want 2");
            *x = 3;
            c.signal();
            drop(x);
            done_tx.send(()).unwrap();
        });
    }
    {
        let (mc, done_tx) = (Arc::clone(&mc), done_tx.clone());
        thread::spawn(move || {
            let (m, c) = &*mc;
            let mut x = m.lock();
            loop {
                if *x == 1 {
                    *x = 2;
                    c.signal();
                    break;
                }
                drop(x);
                thread::yield_now();
                x = m.lock();
            }
            drop(x);
            done_tx.send(()).unwrap();
        });
    }
    {
        let (mc, done_tx) = (Arc::clone(&mc), done_tx.clone());
        thread::spawn(move || {
            let (m, c) = &*mc;
            let mut x = m.lock();
            loop {
                if *x == 2 {
                    c.wait(&mut x);
                    assert_eq!(*x, 3, "want 3");
                    break;
                }
                if *x == 3 {
                    break;
                }
                drop(x);
                thread::yield_now();
                x = m.lock();
            }
            drop(x);
            done_tx.send(()).unwrap();
        });
    }
    for _ in 0..3 {
        recv(&done_rx, "all three goroutines");
    }
}

#[test]
fn test_cond_signal_stealing() {
    let iterations = if cfg!(debug_assertions) { 200 } else { 1000 };
    for _ in 0..iterations {
        let mc = shared(false); // `done`
        let (ch_tx, ch_rx) = channel();
        {
            let (mc, ch_tx) = (Arc::clone(&mc), ch_tx.clone());
            thread::spawn(move || {
                let (m, c) = &*mc;
                let mut g = m.lock();
                ch_tx.send(()).unwrap();
                c.wait(&mut g);
                drop(g);
                ch_tx.send(()).unwrap();
            });
        }
        recv(&ch_rx, "the first waiter");
        drop(mc.0.lock()); // the waiter is inside wait() now
        let broadcaster = {
            let mc = Arc::clone(&mc);
            thread::spawn(move || {
                mc.1.broadcast();
            })
        };
        let late = {
            let mc = Arc::clone(&mc);
            thread::spawn(move || {
                let (m, c) = &*mc;
                let mut done = m.lock();
                while !*done {
                    c.wait(&mut done);
                }
            })
        };
        // The first waiter must get the broadcast; the late one must not steal it.
        ch_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("first waiter didn't get broadcast");
        *mc.0.lock() = true;
        mc.1.broadcast();
        broadcaster.join().unwrap();
        late.join().unwrap();
    }
}

// --- gosync's own guarantees ----------------------------------------------------------------

#[test]
fn no_spurious_wakeups_and_signal_counts() {
    let mc = shared(0);
    let (tx, rx) = channel();
    let waiter = {
        let mc = Arc::clone(&mc);
        thread::spawn(move || {
            let (m, c) = &*mc;
            let mut g = m.lock();
            *g = 1;
            c.wait(&mut g);
            tx.send(*g).unwrap();
        })
    };
    let (m, c) = &*mc;
    while *m.lock() != 1 {
        thread::yield_now();
    }
    assert_silent(&rx, "wait returned without a signal");
    assert!(format!("{c:?}").contains("waiters: 1"));
    {
        let mut g = m.lock();
        *g = 2;
        assert!(c.signal());
    }
    assert_eq!(recv(&rx, "the signalled waiter"), 2);
    waiter.join().unwrap();
    assert!(!c.signal());
    assert_eq!(c.broadcast(), 0);
}

#[test]
fn wait_while_checks_the_condition_under_the_lock() {
    let mc = shared(0u32);
    let producers: Vec<_> = (0..10)
        .map(|_| {
            let mc = Arc::clone(&mc);
            thread::spawn(move || {
                let (m, c) = &*mc;
                *m.lock() += 1;
                c.broadcast();
            })
        })
        .collect();
    let (m, c) = &*mc;
    let mut g = m.lock();
    c.wait_while(&mut g, |n| *n < 10);
    assert_eq!(*g, 10);
    drop(g);
    for p in producers {
        p.join().unwrap();
    }
}

#[test]
fn wait_timeout_times_out_and_relocks() {
    let m = Mutex::new(5);
    let c = Cond::new();
    let mut g = m.lock();
    let start = Instant::now();
    assert!(c.wait_timeout(&mut g, Duration::from_millis(30)));
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert!(m.is_locked(), "the guard must hold the lock again");
    *g += 1;
    drop(g);
    assert_eq!(*m.lock(), 6);
    // The cancelled ticket is not a waiter any more.
    assert!(!c.signal());
    assert_eq!(c.broadcast(), 0);
}

/// A waiter that timed out gave up its ticket: the next signal goes to the next waiter
/// instead of being lost on the departed one.
#[test]
fn signal_skips_a_timed_out_waiter() {
    let mc = shared(());
    let (m, c) = &*mc;
    let (order_tx, order_rx) = channel();
    let timed = {
        let (mc, order_tx) = (Arc::clone(&mc), order_tx.clone());
        thread::spawn(move || {
            let (m, c) = &*mc;
            let mut g = m.lock();
            order_tx.send("timed").unwrap();
            c.wait_timeout(&mut g, Duration::from_millis(100))
        })
    };
    recv(&order_rx, "the timed waiter");
    drop(m.lock()); // it holds ticket 0 and is inside wait_timeout
    let (woke_tx, woke_rx) = channel();
    let patient = {
        let (mc, order_tx) = (Arc::clone(&mc), order_tx.clone());
        thread::spawn(move || {
            let (m, c) = &*mc;
            let mut g = m.lock();
            order_tx.send("patient").unwrap();
            c.wait(&mut g);
            woke_tx.send(()).unwrap();
        })
    };
    recv(&order_rx, "the patient waiter");
    drop(m.lock());
    assert!(
        timed.join().unwrap(),
        "the timed waiter was woken without a signal"
    );
    assert!(c.signal(), "the signal found no waiter");
    recv(&woke_rx, "the patient waiter to get the signal");
    patient.join().unwrap();
}

/// Signals, broadcasts and timed waits all racing. Every waiter that returns "not timed out"
/// must have been chosen by exactly one `signal` (that returned `true`) or counted by one
/// `broadcast`, and every such choice must reach a waiter: a signal lost on a waiter that timed
/// out, or a spurious wake-up, breaks the equality.
#[test]
fn timed_waits_never_swallow_wakeups() {
    let threads = 6;
    let rounds = if cfg!(debug_assertions) { 150 } else { 600 };
    let mc = shared(());
    let woken = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|id| {
            let (mc, woken) = (Arc::clone(&mc), Arc::clone(&woken));
            thread::spawn(move || {
                let (m, c) = &*mc;
                for i in 0..rounds {
                    let mut g = m.lock();
                    let timeout = if (i + id) % 3 == 0 {
                        Duration::from_micros(50 + (i % 7) as u64 * 30)
                    } else {
                        Duration::from_millis(2)
                    };
                    if !c.wait_timeout(&mut g, timeout) {
                        woken.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let (m, c) = &*mc;
    let mut chosen = 0usize;
    let mut calls = 0usize;
    let start = Instant::now();
    while handles.iter().any(|h| !h.is_finished()) {
        assert!(start.elapsed() < PATIENCE * 3, "waiters stuck");
        calls += 1;
        // Sometimes under the lock, sometimes not (Go allows both).
        let g = calls.is_multiple_of(2).then(|| m.lock());
        if calls.is_multiple_of(13) {
            chosen += c.broadcast();
        } else if c.signal() {
            chosen += 1;
        }
        drop(g);
        thread::yield_now();
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(woken.load(Ordering::Relaxed), chosen);
    assert!(chosen > 0, "the test never woke anyone");
    assert!(!c.signal(), "a cancelled ticket still counts as a waiter");
}

/// A `(Mutex, Cond)` pair, as users keep them.
struct Pair {
    m: Mutex<u32>,
    c: Cond,
}

/// Waits on the pair once (nobody signals: it times out).
fn use_pair(p: &Pair) {
    let mut g = p.m.lock();
    *g += 1;
    assert!(p.c.wait_timeout(&mut g, Duration::from_millis(1)));
}

/// A Rust move is not Go's "copy after first use": a pair used once, then moved (into an
/// `Arc`, a `Vec`, out of a function), keeps working, also with a thread that signals.
#[test]
fn binding_survives_moves() {
    fn built_and_used() -> Pair {
        let p = Pair {
            m: Mutex::new(0),
            c: Cond::new(),
        };
        use_pair(&p);
        p // moved out
    }
    let p = built_and_used();
    use_pair(&p);
    let mut v = vec![p]; // moved into a Vec
    use_pair(&v[0]);
    v.push(Pair {
        m: Mutex::new(0),
        c: Cond::new(),
    }); // may reallocate: moves the first pair again
    use_pair(&v[0]);
    let p = Arc::new(v.swap_remove(0)); // moved into an Arc
    use_pair(&p);
    let p2 = Arc::clone(&p);
    let signaller = thread::spawn(move || {
        *p2.m.lock() += 100;
        p2.c.broadcast();
    });
    let mut g = p.m.lock();
    p.c.wait_while(&mut g, |n| *n < 100);
    assert_eq!(*g, 105);
    drop(g);
    signaller.join().unwrap();
}

/// Go's `Cond.L` is one lock: while a thread waits with one mutex, waiting with another panics
/// (and leaves the waiter undisturbed). Once nobody waits, another mutex may be used.
#[test]
fn a_second_mutex_while_one_waits_panics() {
    let p = Arc::new(Pair {
        m: Mutex::new(0),
        c: Cond::new(),
    });
    let p2 = Arc::clone(&p);
    let waiter = thread::spawn(move || {
        let mut g = p2.m.lock();
        p2.c.wait_while(&mut g, |n| *n == 0);
    });
    // Provably waiting (counted in by `wait`), not merely "given 50 ms".
    let deadline = Instant::now() + PATIENCE;
    while p.c.waiters() == 0 {
        assert!(Instant::now() < deadline, "the waiter never waited");
        thread::yield_now();
    }
    let other = Mutex::new(());
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.c.wait_timeout(&mut other.lock(), Duration::from_millis(1));
    }))
    .expect_err("a second mutex while one waits must panic");
    let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("Cond used with a second Mutex"), "{msg}");
    assert_eq!(p.c.waiters(), 1, "the failed wait must not count itself in");
    *p.m.lock() = 1; // `wait` released the mutex, so the waiter holds its ticket
    assert!(p.c.signal());
    waiter.join().unwrap();
    assert_eq!(p.c.waiters(), 0);
    // Nobody waits any more: another mutex may use the Cond now.
    assert!(p
        .c
        .wait_timeout(&mut other.lock(), Duration::from_millis(1)));
}

#[test]
fn cond_is_const_send_sync() {
    static C: Cond = Cond::new();
    static M: Mutex<u8> = Mutex::new(0);
    assert!(!C.signal());
    let mut g = M.lock();
    assert!(C.wait_timeout(&mut g, Duration::from_millis(1)));
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Cond>();
}

/// Starts `n` threads that each wait once on the `Cond` (in order: each is queued before the
/// next starts) and record their index after they re-took the lock. The waiters at the
/// indexes in `timed` use `wait_timeout` (with a long timeout).
fn queued_waiters(
    p: &Shared<Vec<usize>>,
    n: usize,
    timed: &[usize],
) -> Vec<thread::JoinHandle<()>> {
    let already = p.1.waiters();
    (0..n)
        .map(|i| {
            let p2 = Arc::clone(p);
            let timed = timed.contains(&i);
            let t = thread::spawn(move || {
                let mut g = p2.0.lock();
                if timed {
                    assert!(!p2.1.wait_timeout(&mut g, Duration::from_secs(60)));
                } else {
                    p2.1.wait(&mut g);
                }
                g.push(i);
            });
            // Queued once it counts and has released the lock.
            let start = Instant::now();
            while p.1.waiters() != already + i + 1 || p.0.is_locked() {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "waiter {i} never queued"
                );
                thread::yield_now();
            }
            t
        })
        .collect()
}

#[test]
fn broadcast_under_the_lock_moves_waiters_to_the_mutex_in_order() {
    for _ in 0..5 {
        let p = shared(Vec::new());
        let threads = queued_waiters(&p, 4, &[]);
        let (m, c) = &*p;
        let g = m.lock();
        assert_eq!(c.broadcast(), 4);
        // Moved, not woken: they wait for the mutex now, and unlocks wake them in order.
        assert_eq!(c.waiters(), 0);
        assert_eq!(m.waiters(), 4);
        drop(g);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*m.lock(), [0, 1, 2, 3]);
        assert_eq!(m.waiters(), 0);
        assert!(!m.is_locked() && !m.is_woken());
    }
}

#[test]
fn broadcast_without_the_lock_or_with_a_timed_waiter_wakes_everyone() {
    // The mutex is free: nobody would unlock it to wake moved waiters.
    let p = shared(Vec::new());
    let threads = queued_waiters(&p, 3, &[]);
    assert_eq!(p.1.broadcast(), 3);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(p.0.lock().len(), 3);

    // A timed waiter unlinks itself from the Cond's queue on a timeout: nobody is moved.
    let p = shared(Vec::new());
    let threads = queued_waiters(&p, 3, &[1]);
    let g = p.0.lock();
    assert_eq!(p.1.broadcast(), 3);
    assert_eq!(p.1.waiters(), 0);
    drop(g);
    for t in threads {
        t.join().unwrap();
    }
    let mut got = p.0.lock().clone();
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2]);
    // Once the timed waiter is gone, moving works again.
    let threads = queued_waiters(&p, 2, &[]);
    let g = p.0.lock();
    assert_eq!(p.1.broadcast(), 2);
    assert_eq!(p.0.waiters(), 2);
    drop(g);
    for t in threads {
        t.join().unwrap();
    }
}

/// Moved waiters are woken one per unlock (a moved waiter does not own the mutex's "woken"
/// bit, so the next unlock may wake the next one before the first has run): a newcomer's
/// lock and unlock in between must neither strand a moved waiter nor count one twice.
#[test]
fn moved_waiters_and_a_newcomer_all_get_the_lock() {
    for _ in 0..20 {
        let p = shared(Vec::new());
        let threads = queued_waiters(&p, 2, &[]);
        let (m, c) = &*p;
        let g = m.lock();
        assert_eq!(c.broadcast(), 2);
        assert_eq!(m.waiters(), 2);
        drop(g); // wakes the first moved waiter
        m.lock().push(99);
        for t in threads {
            t.join().unwrap();
        }
        let mut got = m.lock().clone();
        got.sort_unstable();
        assert_eq!(got, [0, 1, 99]);
        assert_eq!(m.waiters(), 0);
        assert!(!m.is_locked());
    }
}
