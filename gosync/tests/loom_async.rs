//! Loom models of the async waits racing their wake-ups: a future dropped while the release or
//! the end of a run is delivered to it must lose nothing (no stranded waiter, no leaked
//! registration), and a task and a thread waiting on one object are both served. For the
//! mutex: a lock future dropped while an unlock wakes it, or hands it the lock, must pass on
//! what it was given. For the RwMutex: a read future dropped while the writer it waits for
//! leaves, and a write future dropped while the last reader leaves, give back what they got;
//! a fast writer's unlock wakes the readers queued behind it and not those of the writer
//! after it.
//! For the Cond: a wait future dropped while a signal chooses it passes the signal on.
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_async`
#![cfg(loom)]

#[path = "support/loom.rs"]
mod support;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use std::time::Duration;

use gosync::{loom_clock, Cond, Mutex, RwMutex, TryOnce, WaitGroup};
use support::{explore, explore_with};

/// A waker that records that it was called.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A future polled by hand inside the model.
struct Task<F: Future> {
    fut: Pin<Box<F>>,
    flag: std::sync::Arc<Flag>,
}

impl<F: Future> Task<F> {
    fn new(fut: F) -> Self {
        Task {
            fut: Box::pin(fut),
            flag: std::sync::Arc::default(),
        }
    }
    fn poll(&mut self) -> Poll<F::Output> {
        self.flag.0.store(false, Ordering::SeqCst);
        let waker = Waker::from(std::sync::Arc::clone(&self.flag));
        self.fut.as_mut().poll(&mut Context::from_waker(&waker))
    }
    fn woken(&self) -> bool {
        self.flag.0.load(Ordering::SeqCst)
    }
}

/// A waiting future is dropped while the last `done` releases it: either way the group ends
/// with no waiter registered and is usable for a new round.
#[test]
fn wait_async_dropped_while_released() {
    let ex = explore(|| {
        loom_clock::reset();
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let mut task = Task::new(wg.wait_async());
        assert!(task.poll().is_pending());
        let worker = {
            let wg = Arc::clone(&wg);
            thread::spawn(move || wg.done())
        };
        let released_first = task.woken();
        drop(task);
        // Whether or not the release has happened, the dropped future is no longer counted.
        assert_eq!(wg.waiters(), 0, "a dropped future stays registered");
        worker.join().unwrap();
        assert_eq!(wg.waiters(), 0);
        assert_eq!(wg.count(), 0);
        // A new round works.
        wg.add(1);
        wg.done();
        [if released_first {
            "released, then dropped before its poll"
        } else {
            "dropped while still queued"
        }]
    });
    ex.assert_saw(&[
        "released, then dropped before its poll",
        "dropped while still queued",
    ]);
}

/// A task and a blocked thread wait; the task is dropped while the last `done` runs. The
/// thread must be released whatever the interleaving (the drop may even finish the release).
#[test]
fn wait_async_drop_never_strands_a_thread() {
    let ex = explore(|| {
        loom_clock::reset();
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let mut task = Task::new(wg.wait_async());
        assert!(task.poll().is_pending());
        let waiter = {
            let wg = Arc::clone(&wg);
            thread::spawn(move || wg.wait())
        };
        let worker = {
            let wg = Arc::clone(&wg);
            thread::spawn(move || {
                let registered = wg.waiters();
                wg.done();
                registered
            })
        };
        drop(task);
        waiter.join().unwrap();
        let registered = worker.join().unwrap();
        assert_eq!(wg.waiters(), 0);
        [if registered == 2 {
            "done saw the task and the thread registered"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["done saw the task and the thread registered"]);
}

/// The task running a `TryOnce` attempt is dropped mid-attempt while a blocked thread waits
/// for it: the thread must then run its own attempt, and exactly one attempt succeeds.
#[test]
fn try_once_attempt_dropped_while_a_thread_waits() {
    let ex = explore(|| {
        loom_clock::reset();
        let once = Arc::new(TryOnce::new());
        let mut runner = Task::new({
            let once = Arc::clone(&once);
            async move {
                once.call_async(std::future::pending::<Result<(), ()>>)
                    .await
            }
        });
        assert!(runner.poll().is_pending());
        let thread_ran = Arc::new(AtomicUsize::new(0));
        let waiter = {
            let (once, thread_ran) = (Arc::clone(&once), Arc::clone(&thread_ran));
            thread::spawn(move || {
                once.call_once(|| {
                    thread_ran.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), ()>(())
                })
            })
        };
        drop(runner);
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert!(once.is_done());
        assert_eq!(thread_ran.load(Ordering::SeqCst), 1);
        [""]
    });
    assert!(ex.runs > 1, "model did not explore: {ex:?}");
}

/// A task waits for a thread's `TryOnce` attempt, which fails; the task is dropped while the
/// failure is delivered. Nothing is left queued, and a later call runs.
#[test]
fn try_once_waiter_dropped_while_woken() {
    let ex = explore(|| {
        loom_clock::reset();
        let once = Arc::new(TryOnce::new());
        let started = Arc::new(AtomicBool::new(false));
        let go = Arc::new(AtomicBool::new(false));
        let runner = {
            let (once, started, go) = (Arc::clone(&once), Arc::clone(&started), Arc::clone(&go));
            thread::spawn(move || {
                once.call_once(|| {
                    started.store(true, Ordering::SeqCst);
                    while !go.load(Ordering::SeqCst) {
                        thread::yield_now();
                    }
                    Err::<(), ()>(())
                })
            })
        };
        while !started.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        let mut task = Task::new({
            let once = Arc::clone(&once);
            async move { once.call_async(|| async { Ok::<(), ()>(()) }).await }
        });
        let first = task.poll();
        go.store(true, Ordering::SeqCst);
        let woken = task.woken();
        drop(task);
        assert_eq!(runner.join().unwrap(), Err(()));
        assert!(!once.is_done(), "the task never ran its attempt");
        // Nobody is left waiting; the next call runs.
        assert_eq!(once.call_once(|| Ok::<(), ()>(())), Ok(()));
        [if first.is_pending() && woken {
            "woken by the failure, dropped before its poll"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["woken by the failure, dropped before its poll"]);
}

/// The mutex is idle: not held, nobody queued or awake, no handoff pending.
fn assert_idle<T>(m: &Mutex<T>) {
    assert!(!m.is_locked(), "still locked");
    assert_eq!(m.waiters(), 0, "waiters left");
    assert!(!m.is_woken(), "WOKEN left set");
    assert!(!m.is_starving(), "handoff request left set");
}

/// Yields until `cond` holds or `patience` runs out.
fn yield_until(patience: usize, cond: impl Fn() -> bool) -> bool {
    for _ in 0..patience {
        if cond() {
            return true;
        }
        thread::yield_now();
    }
    cond()
}

/// A thread holds the mutex while a task queues behind it; the holder unlocks (waking the
/// task) while the task's future is dropped. Whatever the order, the wake-up is not lost: the
/// main thread can lock afterwards and the mutex ends idle.
#[test]
fn lock_async_dropped_while_woken() {
    let ex = explore(|| {
        loom_clock::reset();
        let m = Arc::new(Mutex::new(0u32));
        let locked = Arc::new(AtomicBool::new(false));
        let holder = {
            let (m, locked) = (Arc::clone(&m), Arc::clone(&locked));
            thread::spawn(move || {
                let mut g = m.lock();
                locked.store(true, Ordering::SeqCst);
                // Give the task a chance to queue behind us.
                yield_until(4, || m.waiters() == 1);
                *g += 1;
            })
        };
        while !locked.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        let mut task = Task::new(m.lock_async());
        let first = task.poll();
        let queued = first.is_pending();
        drop(first);
        let notified = task.woken();
        drop(task);
        holder.join().unwrap();
        *m.lock() += 1;
        assert_eq!(*m.lock(), 2);
        assert_idle(&m);
        [
            if queued && notified {
                "task woken, then dropped before its poll"
            } else {
                ""
            },
            if queued && !notified {
                "task dropped while queued"
            } else {
                ""
            },
        ]
    });
    ex.assert_saw(&[
        "task woken, then dropped before its poll",
        "task dropped while queued",
    ]);
}

/// A task has waited past the patience when a thread queues behind it, which requests a
/// handoff to the task; the holder's unlock hands it the lock while the task's future is
/// dropped. The lock must go on to the thread, and the mutex end idle.
#[test]
fn lock_async_dropped_while_handed_the_lock() {
    let mut builder = loom::model::Builder::new();
    // The late locker spins and yields before it queues; each yield is a branch.
    builder.max_branches = 20_000;
    let ex = explore_with(builder, || {
        loom_clock::reset();
        let m = Arc::new(Mutex::new(0u32));
        let held = Arc::new(AtomicUsize::new(0));
        let holder = {
            let (m, held) = (Arc::clone(&m), Arc::clone(&held));
            thread::spawn(move || {
                let g = m.lock();
                held.store(1, Ordering::SeqCst);
                // Unlock once the task and the thread are both queued (or give up waiting).
                yield_until(6, || held.load(Ordering::SeqCst) == 2);
                drop(g);
            })
        };
        while held.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        let mut task = Task::new(m.lock_async());
        if task.poll().is_ready() {
            // The holder already left (it gave up waiting): nothing to race.
            held.store(2, Ordering::SeqCst);
            holder.join().unwrap();
            return [""];
        }
        loom_clock::advance(Duration::from_millis(2));
        let late = {
            let m = Arc::clone(&m);
            thread::spawn(move || *m.lock() += 1)
        };
        yield_until(4, || m.waiters() == 2);
        let requested = m.is_starving();
        held.store(2, Ordering::SeqCst);
        let handed = requested && yield_until(2, || m.waiters() == 1 && !m.is_starving());
        drop(task);
        holder.join().unwrap();
        late.join().unwrap();
        assert_eq!(*m.lock(), 1);
        assert_idle(&m);
        [if handed {
            "task handed the lock, then dropped before its poll"
        } else if requested {
            "handoff requested for the task"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["handoff requested for the task"]);
}

/// The RwMutex is idle: no reader counted, no writer announced, the write lock free.
fn assert_rw_idle<T>(l: &RwMutex<T>) {
    assert_eq!(l.readers(), 0, "readers left counted");
    assert!(!l.is_write_locked(), "a writer left announced");
    drop(l.try_write().expect("the write lock is free"));
}

/// A thread holds the write lock while a task's read future counts itself in behind it; the
/// writer unlocks (letting the task in) while the future is dropped. Whichever comes first,
/// the task's reader slot is given back: the lock ends idle.
#[test]
fn read_async_dropped_while_the_writer_leaves() {
    let ex = explore(|| {
        let l = Arc::new(RwMutex::new(0u32));
        let locked = Arc::new(AtomicBool::new(false));
        let writer = {
            let (l, locked) = (Arc::clone(&l), Arc::clone(&locked));
            thread::spawn(move || {
                let mut g = l.write();
                locked.store(true, Ordering::SeqCst);
                // Give the task a chance to count itself in behind us.
                yield_until(4, || l.readers() == 1);
                *g += 1;
            })
        };
        while !locked.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        let mut task = Task::new(l.read_async());
        let first = task.poll();
        let queued = first.is_pending();
        drop(first);
        let let_in = task.woken();
        drop(task);
        writer.join().unwrap();
        assert_eq!(*l.read(), 1);
        assert_rw_idle(&l);
        [
            if queued && let_in {
                "task let in, then dropped before its poll"
            } else {
                ""
            },
            if queued && !let_in {
                "task dropped while waiting for the writer"
            } else {
                ""
            },
        ]
    });
    ex.assert_saw(&[
        "task let in, then dropped before its poll",
        "task dropped while waiting for the writer",
    ]);
}

/// A thread holds a read lock while a task's write future announces itself and waits for it;
/// the reader leaves (handing the task the write lock) while the future is dropped. Either the
/// announcement is withdrawn or the write lock given back: the lock ends idle.
#[test]
fn write_async_dropped_while_the_last_reader_leaves() {
    let ex = explore(|| {
        let l = Arc::new(RwMutex::new(0u32));
        let locked = Arc::new(AtomicBool::new(false));
        let reader = {
            let (l, locked) = (Arc::clone(&l), Arc::clone(&locked));
            thread::spawn(move || {
                let g = l.read();
                locked.store(true, Ordering::SeqCst);
                // Give the task a chance to announce itself.
                yield_until(4, || l.is_write_locked());
                assert_eq!(*g, 0);
            })
        };
        while !locked.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        let mut task = Task::new(l.write_async());
        let first = task.poll();
        let draining = first.is_pending();
        drop(first);
        let drained = task.woken();
        drop(task);
        reader.join().unwrap();
        *l.write() += 1;
        assert_rw_idle(&l);
        [
            if draining && drained {
                "task handed the write lock, then dropped before its poll"
            } else {
                ""
            },
            if draining && !drained {
                "task dropped while readers were inside"
            } else {
                ""
            },
        ]
    });
    ex.assert_saw(&[
        "task handed the write lock, then dropped before its poll",
        "task dropped while readers were inside",
    ]);
}

/// A fast writer (it found the lock free and took it without the writer lock) holds the lock
/// with a task's reader counted in behind it. A second writer takes the writer lock and waits
/// for the fast writer; a second task reader, on another thread, counts itself in behind
/// whichever writer holds the lock when it polls. The fast writer's unlock lets in the reader
/// queued behind it and wakes the blocked writer, which then waits for that reader. A reader
/// counted in behind the second writer must not be woken by the first one's unlock, even when
/// it links before that unlock wakes anyone (each queued reader carries the epoch it waits
/// for): [`Guarded`](support::Guarded) sections make loom check that no reader overlaps the
/// second writer.
#[test]
fn fast_writer_wakes_only_the_readers_queued_behind_it() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.unwrap_or(2).min(2));
    let ex = explore_with(builder, || {
        loom_clock::reset();
        let l = Arc::new((RwMutex::new(0u32), support::Guarded::new()));
        let g = l.0.write();
        let mut first = Task::new(l.0.read_async());
        assert!(first.poll().is_pending(), "a reader got past the writer");
        let writer = {
            let l = Arc::clone(&l);
            thread::spawn(move || {
                let (m, data) = &*l;
                let mut g = m.write();
                let _section = data.exclusive();
                *g += 1;
                // A scheduling point inside the section.
                m.readers()
            })
        };
        let second = {
            let l = Arc::clone(&l);
            thread::spawn(move || {
                let (m, data) = &*l;
                let mut task = Task::new(m.read_async());
                loop {
                    match task.poll() {
                        Poll::Ready(g) => {
                            let _section = data.shared();
                            return *g;
                        }
                        Poll::Pending => {
                            while !task.woken() {
                                thread::yield_now();
                            }
                        }
                    }
                }
            })
        };
        drop(g);
        let seen_first = loop {
            if let Poll::Ready(g) = first.poll() {
                let _section = l.1.shared();
                break *g;
            }
            while !first.woken() {
                thread::yield_now();
            }
        };
        assert_eq!(
            seen_first, 0,
            "the first reader came in after the second writer"
        );
        let queued = writer.join().unwrap();
        let seen_second = second.join().unwrap();
        assert_eq!(*l.0.read(), 1);
        assert_rw_idle(&l.0);
        [
            if seen_second == 1 {
                "second reader after the second writer"
            } else {
                "second reader before the second writer"
            },
            if queued > 0 {
                "a reader queued behind the second writer"
            } else {
                ""
            },
        ]
    });
    ex.assert_saw(&[
        "second reader after the second writer",
        "second reader before the second writer",
        "a reader queued behind the second writer",
    ]);
}

/// A task waits on a `Cond`, then a thread waits behind it; a signaller sets the flag and
/// signals while the task's future is dropped. The signal goes to the oldest waiter still
/// queued — the task, if the drop has not happened yet — and a dropped task passes it on, so
/// the thread always wakes.
#[test]
fn cond_wait_async_dropped_while_signalled() {
    let ex = explore(|| {
        loom_clock::reset();
        let mc = Arc::new((Mutex::new(false), Cond::new()));
        let mut task = Task::new({
            let mc = Arc::clone(&mc);
            async move {
                let (m, c) = &*mc;
                let g = m.lock_async().await;
                let _g = c.wait_async(g).await;
            }
        });
        assert!(task.poll().is_pending(), "the task waits on the Cond");
        let waiter = {
            let mc = Arc::clone(&mc);
            thread::spawn(move || {
                let (m, c) = &*mc;
                let mut ready = m.lock();
                let waited = !*ready;
                c.wait_while(&mut ready, |r| !*r);
                waited
            })
        };
        let signaller = {
            let mc = Arc::clone(&mc);
            thread::spawn(move || {
                let (m, c) = &*mc;
                *m.lock() = true;
                c.signal()
            })
        };
        let chosen_before_drop = task.woken();
        drop(task);
        let waited = waiter.join().unwrap();
        let found = signaller.join().unwrap();
        let (m, c) = &*mc;
        assert_eq!(c.waiters(), 0);
        assert!(!c.signal());
        assert_idle(m);
        [
            if chosen_before_drop && waited {
                "task chosen, dropped, signal passed to the thread"
            } else {
                ""
            },
            if !chosen_before_drop && found && waited {
                "task dropped first, the thread signalled"
            } else {
                ""
            },
        ]
    });
    ex.assert_saw(&[
        "task chosen, dropped, signal passed to the thread",
        "task dropped first, the thread signalled",
    ]);
}
