//! Go's `src/sync/rwmutex_test.go`, ported (TestParallelReaders, TestRWMutex with the
//! TryLock table and HammerRWMutex, TestRLocker), plus the guarantees gosync adds on top:
//! write preference, and what a timed-out `try_read_for` / `try_write_for` leaves behind.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use gosync::RwMutex;

/// Long enough that a blocked thread would have made progress by then on a loaded machine;
/// used only to check that something did *not* happen.
const SETTLE: Duration = Duration::from_millis(50);
/// Generous bound for something that must happen.
const PATIENCE: Duration = Duration::from_secs(20);

fn recv<T>(rx: &Receiver<T>, what: &str) -> T {
    rx.recv_timeout(PATIENCE)
        .unwrap_or_else(|e| panic!("timed out waiting for {what}: {e:?}"))
}

fn assert_silent<T>(rx: &Receiver<T>, what: &str) {
    match rx.recv_timeout(SETTLE) {
        Err(RecvTimeoutError::Timeout) => {}
        Ok(_) => panic!("{what}"),
        Err(e) => panic!("channel error: {e:?}"),
    }
}

// --- TestParallelReaders --------------------------------------------------------------------

/// Every reader takes the read lock, reports, and keeps it until all of them hold it at once.
fn parallel_readers(num_readers: usize) {
    let m = Arc::new(RwMutex::new(()));
    let (locked_tx, locked_rx) = channel();
    let (done_tx, done_rx) = channel();
    let mut unlock_txs = Vec::new();
    for _ in 0..num_readers {
        let (unlock_tx, unlock_rx) = channel::<()>();
        unlock_txs.push(unlock_tx);
        let (m, locked_tx, done_tx) = (Arc::clone(&m), locked_tx.clone(), done_tx.clone());
        thread::spawn(move || {
            let g = m.read();
            locked_tx.send(()).unwrap();
            unlock_rx.recv().unwrap();
            drop(g);
            done_tx.send(()).unwrap();
        });
    }
    for _ in 0..num_readers {
        recv(&locked_rx, "a reader to lock");
    }
    assert_eq!(m.readers(), num_readers);
    for tx in &unlock_txs {
        tx.send(()).unwrap();
    }
    for _ in 0..num_readers {
        recv(&done_rx, "a reader to finish");
    }
    assert_eq!(m.readers(), 0);
    assert!(m.try_write().is_some());
}

#[test]
fn test_parallel_readers() {
    // Go runs (readers, GOMAXPROCS) = (1,4), (3,4), (4,2); threads are not bounded by a
    // GOMAXPROCS here, so the reader counts are what matters.
    parallel_readers(1);
    parallel_readers(3);
    parallel_readers(4);
}

// --- TestRWMutex: the TryLock table ---------------------------------------------------------

#[test]
fn test_rwmutex_try_lock_table() {
    let m = RwMutex::new(0);
    {
        let _w = m.write();
        assert!(
            m.try_write().is_none(),
            "TryLock succeeded with mutex locked"
        );
        assert!(
            m.try_read().is_none(),
            "TryRLock succeeded with mutex locked"
        );
    }
    {
        let _w = m.try_write().expect("TryLock failed with mutex unlocked");
    }
    let r1 = m.try_read().expect("TryRLock failed with mutex unlocked");
    let r2 = m.try_read().expect("TryRLock failed with mutex rlocked");
    assert!(
        m.try_write().is_none(),
        "TryLock succeeded with mutex rlocked"
    );
    drop(r1);
    drop(r2);
    // Now it is unlocked again.
    let mut w = m.write();
    *w += 1;
    drop(w);
    assert_eq!(*m.read(), 1);
}

// --- TestRWMutex: HammerRWMutex -------------------------------------------------------------

/// Go's `HammerRWMutex`: a reader adds 1 to `activity` and requires `1 <= n < 10000`; a writer
/// adds 10000 and requires exactly 10000. Both spin 100 times inside.
fn hammer(num_readers: usize, iterations: usize) {
    let m = Arc::new(RwMutex::new(()));
    let activity = Arc::new(AtomicI32::new(0));
    let mut handles = Vec::new();
    let writer = |m: Arc<RwMutex<()>>, activity: Arc<AtomicI32>| {
        thread::spawn(move || {
            for _ in 0..iterations {
                let _g = m.write();
                let n = activity.fetch_add(10000, Ordering::SeqCst) + 10000;
                assert_eq!(n, 10000, "wlock({n})");
                for _ in 0..100 {
                    std::hint::spin_loop();
                }
                activity.fetch_sub(10000, Ordering::SeqCst);
            }
        })
    };
    handles.push(writer(Arc::clone(&m), Arc::clone(&activity)));
    for _ in 0..num_readers / 2 {
        let (m, activity) = (Arc::clone(&m), Arc::clone(&activity));
        handles.push(thread::spawn(move || reader(&m, &activity, iterations)));
    }
    handles.push(writer(Arc::clone(&m), Arc::clone(&activity)));
    for _ in num_readers / 2..num_readers {
        let (m, activity) = (Arc::clone(&m), Arc::clone(&activity));
        handles.push(thread::spawn(move || reader(&m, &activity, iterations)));
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(activity.load(Ordering::SeqCst), 0);
    assert_eq!(m.readers(), 0);
    assert!(!m.is_write_locked());
}

fn reader(m: &RwMutex<()>, activity: &AtomicI32, iterations: usize) {
    for _ in 0..iterations {
        let _g = m.read();
        let n = activity.fetch_add(1, Ordering::SeqCst) + 1;
        assert!((1..10000).contains(&n), "rlock({n})");
        for _ in 0..100 {
            std::hint::spin_loop();
        }
        activity.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Go uses 1000 iterations (5 with -short); debug builds get fewer.
fn hammer_iterations() -> usize {
    if cfg!(debug_assertions) {
        200
    } else {
        1000
    }
}

#[test]
fn test_rwmutex_hammer() {
    // Go's (GOMAXPROCS, readers) combos; here only the reader counts change the schedule.
    for readers in [1, 3, 10, 5] {
        hammer(readers, hammer_iterations());
    }
}

// --- TestRLocker ----------------------------------------------------------------------------

/// Go's test holds two read locks from one goroutine, blocks in `Lock` on the same goroutine and
/// lets the main goroutine release the read locks. Guards stay on their thread here, so the
/// reader and the writer are two threads steered by the test; the checks are the same.
#[test]
fn test_rlocker() {
    let wl = Arc::new(RwMutex::new(()));
    for _ in 0..10 {
        let (cmd_tx, cmd_rx) = channel::<()>();
        let (rlocked_tx, rlocked_rx) = channel::<()>();
        let reader = {
            let wl = Arc::clone(&wl);
            thread::spawn(move || {
                let r1 = wl.read();
                let r2 = wl.read();
                rlocked_tx.send(()).unwrap();
                cmd_rx.recv().unwrap();
                drop(r1);
                rlocked_tx.send(()).unwrap();
                cmd_rx.recv().unwrap();
                drop(r2);
            })
        };
        recv(&rlocked_rx, "the reader to take two read locks");
        let (wlocked_tx, wlocked_rx) = channel::<()>();
        let (wunlock_tx, wunlock_rx) = channel::<()>();
        let writer = {
            let wl = Arc::clone(&wl);
            thread::spawn(move || {
                let g = wl.write();
                wlocked_tx.send(()).unwrap();
                wunlock_rx.recv().unwrap();
                drop(g);
            })
        };
        cmd_tx.send(()).unwrap(); // release one read lock
        recv(&rlocked_rx, "the reader to release one read lock");
        assert_silent(&wlocked_rx, "RLocker() didn't read-lock it");
        cmd_tx.send(()).unwrap(); // release the second
        recv(&wlocked_rx, "the writer to get the lock");
        // A new read lock must wait for the writer.
        let (rl_tx, rl_rx) = channel::<()>();
        let late_reader = {
            let wl = Arc::clone(&wl);
            thread::spawn(move || {
                let _g = wl.read();
                rl_tx.send(()).unwrap();
            })
        };
        assert_silent(&rl_rx, "RLocker() didn't respect the write lock");
        wunlock_tx.send(()).unwrap();
        recv(&rl_rx, "the late reader after the writer left");
        reader.join().unwrap();
        writer.join().unwrap();
        late_reader.join().unwrap();
    }
}

// --- gosync's own guarantees ----------------------------------------------------------------

/// Once a writer waits, a new reader waits too (even though the lock is only read-locked),
/// and the writer gets the lock before that reader.
#[test]
fn write_preferring_new_readers_queue_behind_a_waiting_writer() {
    let m = Arc::new(RwMutex::new(Vec::<&'static str>::new()));
    let r1 = m.read();
    let writer = {
        let m = Arc::clone(&m);
        thread::spawn(move || m.write().push("writer"))
    };
    let start = Instant::now();
    while !m.is_write_locked() {
        assert!(
            start.elapsed() < PATIENCE,
            "the writer never announced itself"
        );
        thread::yield_now();
    }
    assert!(
        m.try_read().is_none(),
        "a reader got in past a waiting writer"
    );
    let (tx, rx) = channel();
    let late = {
        let m = Arc::clone(&m);
        thread::spawn(move || {
            let g = m.read();
            tx.send(g.clone()).unwrap();
        })
    };
    assert_silent(&rx, "a new reader got in while a writer waited");
    drop(r1);
    let seen = recv(&rx, "the late reader");
    assert_eq!(
        seen,
        vec!["writer"],
        "the writer must go before the reader queued behind it"
    );
    writer.join().unwrap();
    late.join().unwrap();
}

/// The readers that queued during a write get in before the next writer.
#[test]
fn readers_queued_during_a_write_go_before_the_next_writer() {
    let m = Arc::new(RwMutex::new(0u32));
    let w1 = m.write();
    let (tx, rx) = channel();
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (m, tx) = (Arc::clone(&m), tx.clone());
        readers.push(thread::spawn(move || {
            let g = m.read();
            tx.send(*g).unwrap();
            // Hold on a little so that the second writer surely waits for us.
            thread::sleep(Duration::from_millis(20));
        }));
    }
    let start = Instant::now();
    while m.readers() < 3 {
        assert!(start.elapsed() < PATIENCE, "readers never queued");
        thread::yield_now();
    }
    // A second writer queues on the writer lock behind w1.
    let w2 = {
        let m = Arc::clone(&m);
        thread::spawn(move || *m.write() = 2)
    };
    thread::sleep(SETTLE);
    let mut w1 = w1;
    *w1 = 1;
    drop(w1);
    for _ in 0..3 {
        assert_eq!(
            recv(&rx, "a queued reader"),
            1,
            "second writer overtook queued readers"
        );
    }
    w2.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(*m.read(), 2);
}

#[test]
fn try_read_for_times_out_and_leaves_no_trace() {
    let m = Arc::new(RwMutex::new(5));
    let w = m.write();
    let m2 = Arc::clone(&m);
    let t = thread::spawn(move || {
        let start = Instant::now();
        let r = m2.try_read_for(Duration::from_millis(30));
        (r.is_none(), start.elapsed())
    });
    let (timed_out, waited) = t.join().unwrap();
    assert!(timed_out, "got a read lock while write-locked");
    assert!(waited >= Duration::from_millis(30));
    assert_eq!(m.readers(), 0, "the timed-out reader is still counted");
    drop(w);
    // The writer's unlock must not have left anything for a phantom reader: a writer can
    // get in at once, and readers work.
    assert!(m.try_write().is_some());
    assert_eq!(*m.try_read_for(Duration::from_secs(1)).unwrap(), 5);
    assert!(m.try_write_for(Duration::from_millis(1)).is_some());
}

#[test]
fn try_read_for_succeeds_when_the_writer_leaves_in_time() {
    let m = Arc::new(RwMutex::new(0));
    let mut w = m.write();
    let m2 = Arc::clone(&m);
    let t = thread::spawn(move || m2.try_read_for(PATIENCE).map(|g| *g));
    thread::sleep(SETTLE);
    *w = 7;
    drop(w);
    assert_eq!(t.join().unwrap(), Some(7));
}

/// A writer that times out while a reader is still inside withdraws: the readers that queued
/// behind it get in at once, although the first reader still holds its lock.
#[test]
fn try_write_for_times_out_and_releases_readers_queued_behind_it() {
    let m = Arc::new(RwMutex::new(0));
    let r1 = m.read();
    let (w_tx, w_rx) = channel();
    let writer = {
        let m = Arc::clone(&m);
        thread::spawn(move || {
            let r = m.try_write_for(Duration::from_millis(300)).is_some();
            w_tx.send(r).unwrap();
        })
    };
    let start = Instant::now();
    while !m.is_write_locked() {
        assert!(
            start.elapsed() < PATIENCE,
            "the writer never announced itself"
        );
        thread::yield_now();
    }
    let (r_tx, r_rx) = channel();
    let late = {
        let m = Arc::clone(&m);
        thread::spawn(move || {
            let g = m.read();
            r_tx.send(*g).unwrap();
        })
    };
    assert!(
        !recv(&w_rx, "the writer to time out"),
        "writer got in past a reader"
    );
    assert_eq!(
        recv(&r_rx, "the reader queued behind the withdrawn writer"),
        0
    );
    assert!(!m.is_write_locked());
    drop(r1);
    writer.join().unwrap();
    late.join().unwrap();
    // Nothing stale: writers and readers still work, and the count is clean.
    assert_eq!(m.readers(), 0);
    *m.write() = 9;
    assert_eq!(*m.read(), 9);
    assert!(m.try_write_for(Duration::from_millis(1)).is_some());
}

#[test]
fn try_write_for_waits_for_another_writer_then_times_out() {
    let m = Arc::new(RwMutex::new(()));
    let w = m.write();
    let m2 = Arc::clone(&m);
    let got = thread::spawn(move || m2.try_write_for(Duration::from_millis(20)).is_some());
    assert!(!got.join().unwrap());
    drop(w);
    assert!(m.try_write().is_some());
}

/// Hammer with timed operations mixed in, so that withdrawals race with unlocks, departing
/// readers and other writers. The invariants are Go's hammer invariants.
#[test]
fn hammer_with_timeouts() {
    let m = Arc::new(RwMutex::new(()));
    let activity = Arc::new(AtomicI32::new(0));
    // Counts withdrawals; about a hundred per run in practice, so the cancel paths are hot.
    let timeouts = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let iterations = hammer_iterations();
    let threads = 6;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|id| {
            let (m, activity, timeouts, barrier, stop) = (
                Arc::clone(&m),
                Arc::clone(&activity),
                Arc::clone(&timeouts),
                Arc::clone(&barrier),
                Arc::clone(&stop),
            );
            thread::spawn(move || {
                barrier.wait();
                for i in 0..iterations {
                    let short = Duration::from_micros(((i * 37 + id * 11) % 60) as u64);
                    let spin = |k: usize| {
                        for _ in 0..k {
                            std::hint::spin_loop();
                        }
                    };
                    match (id + i) % 4 {
                        0 if id % 2 == 0 => match m.try_write_for(short) {
                            Some(_g) => {
                                let n = activity.fetch_add(10000, Ordering::SeqCst) + 10000;
                                assert_eq!(n, 10000, "wlock({n})");
                                spin(200);
                                activity.fetch_sub(10000, Ordering::SeqCst);
                            }
                            None => {
                                timeouts.fetch_add(1, Ordering::Relaxed);
                            }
                        },
                        0 => {
                            let _g = m.write();
                            let n = activity.fetch_add(10000, Ordering::SeqCst) + 10000;
                            assert_eq!(n, 10000, "wlock({n})");
                            spin(200);
                            activity.fetch_sub(10000, Ordering::SeqCst);
                        }
                        1 => match m.try_read_for(short) {
                            Some(_g) => {
                                let n = activity.fetch_add(1, Ordering::SeqCst) + 1;
                                assert!((1..10000).contains(&n), "rlock({n})");
                                spin(3000);
                                activity.fetch_sub(1, Ordering::SeqCst);
                            }
                            None => {
                                timeouts.fetch_add(1, Ordering::Relaxed);
                            }
                        },
                        _ => {
                            let _g = m.read();
                            let n = activity.fetch_add(1, Ordering::SeqCst) + 1;
                            assert!((1..10000).contains(&n), "rlock({n})");
                            spin(3000);
                            activity.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
            })
        })
        .collect();
    for h in handles {
        if let Err(e) = h.join() {
            stop.store(true, Ordering::Relaxed);
            std::panic::resume_unwind(e);
        }
    }
    assert_eq!(activity.load(Ordering::SeqCst), 0);
    assert_eq!(m.readers(), 0);
    assert!(!m.is_write_locked());
    assert!(m.try_write().is_some(), "lock left in a bad state");
}

#[test]
fn get_mut_into_inner_debug_default() {
    let mut m = RwMutex::new(vec![1]);
    m.get_mut().push(2);
    assert_eq!(format!("{m:?}"), "RwMutex { data: [1, 2], .. }");
    {
        let _w = m.write();
        assert_eq!(format!("{m:?}"), "RwMutex { data: <write-locked>, .. }");
    }
    assert_eq!(m.into_inner(), vec![1, 2]);
    let d: RwMutex<u8> = RwMutex::default();
    assert_eq!(*d.read(), 0);
    let s: &RwMutex<[u8]> = &RwMutex::new([1u8, 2, 3]);
    assert_eq!(s.read().len(), 3);
}

#[test]
fn send_sync_like_std() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<RwMutex<Vec<u8>>>();
    send_sync::<Arc<RwMutex<String>>>();
    fn sync_only<T: Sync>() {}
    sync_only::<gosync::RwMutexReadGuard<'static, u8>>();
    sync_only::<gosync::RwMutexWriteGuard<'static, u8>>();
}

#[test]
fn panic_in_a_guard_unlocks_without_poisoning() {
    let m = Arc::new(RwMutex::new(1));
    let m2 = Arc::clone(&m);
    let r = thread::spawn(move || {
        let mut g = m2.write();
        *g = 2;
        panic!("boom");
    })
    .join();
    assert!(r.is_err());
    assert_eq!(*m.read(), 2);
    assert!(m.try_write().is_some());
}
