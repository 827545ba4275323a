//! Loom models of the RwMutex reader/writer handshake: exclusion (a writer and a reader, two
//! writers and a reader), a writer draining readers, readers queued behind a writer, the
//! withdrawal of timed-out readers and writers (the fake clock makes deadlines pass), a thread
//! reader that stepped out of the count behind a writer and must still be woken, a
//! withdrawn writer followed at once by another, and the reader slots: a slot reader against a
//! writer, slots turned on while a writer waits, and a writer asleep on a slot reader.
//!
//! The models use only the public API (plus the loom-only `loom_enable_reader_slots`, which
//! turns reader slots on as sharing readers would), so they state the contract, not the
//! algorithm. Where a
//! model claims exclusion, [`Guarded`](support::Guarded) sections span the critical sections and
//! loom checks that a writer's never overlaps another.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gosync --test loom_rwmutex`
//!
//! Each model reports the outcomes it observed and asserts that every interesting one occurred
//! in some execution (see `support/loom.rs`): the reader before and after the writer, a writer
//! announced while a reader is inside, a timed waiter that timed out and one that got in, a
//! downgrade that lets a queued reader in while keeping the next writer out.
#![cfg(loom)]

#[path = "support/loom.rs"]
mod support;

use std::time::Duration;

use gosync::{loom_clock, RwMutex, RwMutexWriteGuard};
use loom::model::Builder;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use support::{explore, start, tally, Explored, Guarded};

/// The most times the lock holder of a timed model yields, waiting for the timed thread to
/// finish, before it releases the lock anyway; the timed models run once for every patience
/// from 0 to this.
///
/// The timed thread spins (yielding, under loom) before it parks, and each of its yields hands
/// the CPU to the holder. A holder that released at once (patience 0, what these models did
/// first) always beat it: the deadline never passed while it was parked, and no execution
/// timed out. A holder that outwaits the spinning (18 yields, `sync/backoff.rs`) always lets it
/// time out. Patiences near the spin length make the release race the timeout, so sweeping
/// them covers both outcomes and the race between them, with room for the spinning to grow.
const PATIENCE: usize = 32;

/// Turns the main thread of [`withdrawn_writer_then_another`] gives the writers to finish
/// spinning (`sync/backoff.rs`: 18 yields, the writer lock's spinning: fewer) and park.
const SETTLE: usize = 48;

/// Yields until `done` is set or `patience` runs out.
fn wait_a_little(done: &AtomicBool, patience: usize) {
    for _ in 0..patience {
        if done.load(Ordering::SeqCst) {
            return;
        }
        thread::yield_now();
    }
}

fn assert_clean<T>(m: &RwMutex<T>) {
    assert_eq!(m.readers(), 0, "readers left");
    assert!(!m.is_write_locked(), "writer left");
    assert!(m.try_write().is_some(), "lock not free");
}

/// A writer and a reader; a [`Guarded`] section spanning each critical section makes loom
/// check that they never overlap.
#[test]
fn writer_and_reader_exclude() {
    writer_and_reader(false);
}

/// Reader slots on: a reader that takes a slot and a writer that turns slots off exclude each
/// other (the reader raises its slot, then checks that slots are still on; the writer turns
/// them off, then waits for every slot to empty), and a reader that finds them turned off
/// backs out and waits through the count.
#[test]
fn slot_reader_and_writer_exclude() {
    writer_and_reader(true);
}

/// The body of the two models above, with reader slots on or off.
fn writer_and_reader(slots: bool) {
    let ex = explore(move || {
        loom_clock::reset();
        let m = Arc::new(RwMutex::new(0u32));
        if slots {
            m.loom_enable_reader_slots();
        }
        let data = Arc::new(Guarded::new());
        let flag = Arc::new(AtomicUsize::new(0));
        let w = {
            let (m, data, flag) = (Arc::clone(&m), Arc::clone(&data), Arc::clone(&flag));
            thread::spawn(move || {
                start(&flag);
                let mut g = m.write();
                let _section = data.exclusive();
                *g += 1;
                thread::yield_now();
            })
        };
        start(&flag);
        let seen = {
            let g = m.read();
            let _section = data.shared();
            thread::yield_now();
            *g
        };
        assert!(seen <= 1);
        w.join().unwrap();
        assert_eq!(*m.read(), 1);
        assert_clean(&m);
        [if seen == 1 {
            "read after the write"
        } else {
            "read before the write"
        }]
    });
    ex.assert_saw(&["read after the write", "read before the write"]);
}

/// A reader is inside when a writer announces itself; the writer waits for it (the last reader
/// out wakes the writer) and a second reader queues behind the writer.
#[test]
fn writer_drains_readers_and_queues_new_ones() {
    let ex = explore(|| {
        loom_clock::reset();
        let m = Arc::new(RwMutex::new(0u32));
        let r = m.read();
        let m2 = Arc::clone(&m);
        let w = thread::spawn(move || *m2.write() = 7);
        let m3 = Arc::clone(&m);
        let late = thread::spawn(move || *m3.read());
        assert_eq!(*r, 0);
        let announced = m.is_write_locked();
        drop(r);
        w.join().unwrap();
        let v = late.join().unwrap();
        assert!(v == 0 || v == 7);
        assert_clean(&m);
        [
            if announced {
                "writer announced while a reader was inside"
            } else {
                ""
            },
            if v == 7 {
                "late reader after the writer"
            } else {
                ""
            },
        ]
    });
    ex.assert_saw(&[
        "writer announced while a reader was inside",
        "late reader after the writer",
    ]);
}

/// A reader times out behind a writer (or gets in if the writer leaves first): either way the
/// lock ends clean and no phantom reader is left for the writer's unlock. Both outcomes must
/// occur (see [`PATIENCE`]).
#[test]
fn timed_reader_withdraws() {
    let mut ex = Explored::default();
    for patience in 0..=PATIENCE {
        ex.absorb(tally(Builder::new(), move || {
            loom_clock::reset();
            let m = Arc::new(RwMutex::new(0u32));
            let g = m.write();
            let done = Arc::new(AtomicBool::new(false));
            let r = {
                let (m, done) = (Arc::clone(&m), Arc::clone(&done));
                thread::spawn(move || {
                    let got = m.try_read_for(Duration::from_millis(1)).map(|g| *g);
                    done.store(true, Ordering::SeqCst);
                    got
                })
            };
            // Move the clock only once the reader has taken its deadline and queued: otherwise
            // its deadline lies past the advanced clock and it can never time out.
            while m.readers() == 0 {
                thread::yield_now();
            }
            loom_clock::advance(Duration::from_millis(5));
            wait_a_little(&done, patience);
            drop(g);
            let got = r.join().unwrap();
            assert!(got.is_none() || got == Some(0));
            assert_clean(&m);
            [if got.is_none() { "timed out" } else { "got in" }]
        }));
    }
    ex.print().assert_saw(&["timed out", "got in"]);
}

/// A writer times out while a reader is inside: it withdraws (cancelling its epoch), or the
/// reader leaves first and the writer gets the lock. The lock ends clean either way. Both
/// outcomes must occur (see [`PATIENCE`]).
#[test]
fn timed_writer_withdraws() {
    let mut ex = Explored::default();
    for patience in 0..=PATIENCE {
        ex.absorb(tally(Builder::new(), move || {
            loom_clock::reset();
            let m = Arc::new(RwMutex::new(0u32));
            let r = m.read();
            let done = Arc::new(AtomicBool::new(false));
            let w = {
                let (m, done) = (Arc::clone(&m), Arc::clone(&done));
                thread::spawn(move || {
                    let got = m
                        .try_write_for(Duration::from_millis(1))
                        .map(|mut g| *g += 1)
                        .is_some();
                    done.store(true, Ordering::SeqCst);
                    got
                })
            };
            // Move the clock only once the writer has taken its deadline and announced itself.
            while !m.is_write_locked() {
                thread::yield_now();
            }
            loom_clock::advance(Duration::from_millis(5));
            wait_a_little(&done, patience);
            drop(r);
            let got = w.join().unwrap();
            assert_eq!(*m.read(), u32::from(got));
            assert_clean(&m);
            [if got { "got the lock" } else { "timed out" }]
        }));
    }
    ex.print().assert_saw(&["timed out", "got the lock"]);
}

/// A writer downgrades to a read lock while a reader and a second writer wait behind it. The
/// reader may get in at once (it shares the lock with the downgraded guard); the second writer
/// must not get in before the downgraded guard is gone, and everything ends clean.
#[test]
fn downgrade_admits_readers_not_writers() {
    let ex = explore(|| {
        loom_clock::reset();
        let m = Arc::new(RwMutex::new(0u32));
        // Set while the downgraded read guard is alive.
        let shared = Arc::new(AtomicBool::new(false));
        let mut w = m.write();
        let reader = {
            let (m, shared) = (Arc::clone(&m), Arc::clone(&shared));
            thread::spawn(move || {
                let g = m.read();
                (*g, shared.load(Ordering::SeqCst))
            })
        };
        let writer = {
            let m = Arc::clone(&m);
            thread::spawn(move || *m.write() = 2)
        };
        *w = 1;
        let r = RwMutexWriteGuard::downgrade(w);
        shared.store(true, Ordering::SeqCst);
        thread::yield_now();
        // No writer can have got in while we hold the downgraded guard.
        assert_eq!(*r, 1);
        shared.store(false, Ordering::SeqCst);
        drop(r);
        let (seen, alongside) = reader.join().unwrap();
        writer.join().unwrap();
        assert!(seen == 1 || seen == 2, "reader saw {seen}");
        assert_eq!(*m.read(), 2);
        assert_clean(&m);
        [
            if alongside {
                "reader shared the lock with the downgraded guard"
            } else {
                ""
            },
            if seen == 2 {
                "reader after the second writer"
            } else {
                ""
            },
        ]
    });
    ex.assert_saw(&[
        "reader shared the lock with the downgraded guard",
        "reader after the second writer",
    ]);
}

/// Two writers and a reader: the writers exclude each other and the reader, across their whole
/// critical sections ([`Guarded`]); every update lands; the lock ends clean.
#[test]
fn two_writers_and_a_reader() {
    let mut builder = Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.unwrap_or(2).min(2));
    let ex = support::explore_with(builder, || {
        loom_clock::reset();
        let m = Arc::new((RwMutex::new(Vec::new()), Guarded::new()));
        let writer = |me: char| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let (m, data) = &*m;
                let mut g = m.write();
                let _section = data.exclusive();
                g.push(me);
                // A scheduling point inside the section: the other writer or the reader may
                // try to come in here.
                m.readers()
            })
        };
        let a = writer('a');
        let b = writer('b');
        let (mx, data) = &*m;
        let seen = {
            let g = mx.read();
            let _section = data.shared();
            g.len()
        };
        let queued = [a.join().unwrap(), b.join().unwrap()];
        assert_eq!(data.writes(), 2);
        let v = mx.read().clone();
        assert_eq!(v.len(), 2);
        assert!(v.contains(&'a') && v.contains(&'b'));
        assert_clean(mx);
        [
            if v[0] == 'b' {
                "second writer first"
            } else {
                ""
            },
            if seen == 1 {
                "reader between the writers"
            } else {
                ""
            },
            if queued.iter().any(|&r| r > 0) {
                "reader queued behind a writer"
            } else {
                ""
            },
        ]
    });
    ex.assert_saw(&[
        "second writer first",
        "reader between the writers",
        "reader queued behind a writer",
    ]);
}

/// A writer withdraws (times out) while readers are inside, and a second writer announces
/// itself at once: a reader that was counted by the first writer and leaves during the
/// handover must not count towards the second (the `reader_wait` epoch check), or the second
/// writer would enter while the other reader is still inside.
///
/// The main thread holds two read locks; W1 (`try_write_for`, 1 ms) announces itself, then W2
/// (`write`) queues for the writer lock. The clock passes W1's deadline, and the main
/// thread drops one read lock, racing W1's withdrawal and W2's announcement; it keeps the other
/// read lock until W1 is gone and W2 has had time to try to enter. [`Guarded`] sections make
/// loom check that W2 never overlaps that reader.
#[test]
fn withdrawn_writer_then_another() {
    let ex = explore(|| {
        loom_clock::reset();
        let m = Arc::new((RwMutex::new(0u32), Guarded::new()));
        let (mx, data) = &*m;
        let r1 = mx.read();
        let r2 = mx.read();
        let inside = data.shared();
        let w1 = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let (mx, data) = &*m;
                let mut g = mx.try_write_for(Duration::from_millis(1))?;
                let _section = data.exclusive();
                *g += 1;
                Some(())
            })
        };
        // W1 has taken its deadline and the writer lock once it has announced itself.
        while !mx.is_write_locked() {
            thread::yield_now();
        }
        let w2 = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let (mx, data) = &*m;
                let mut g = mx.write();
                let _section = data.exclusive();
                *g += 10;
            })
        };
        // Let both writers finish spinning and go to sleep (each of our yields gives them a
        // turn): W1 then wakes only for its timeout, with no spinning left, so its withdrawal
        // can fall between the two steps of our read unlock below.
        for _ in 0..SETTLE {
            thread::yield_now();
        }
        loom_clock::advance(Duration::from_millis(5));
        drop(r1);
        // W1 cannot get in while `r2` is held: it times out.
        assert!(
            w1.join().unwrap().is_none(),
            "a writer entered past a reader"
        );
        let w2_announced = mx.is_write_locked();
        // Give W2 turns to (wrongly) enter while `r2` is still held.
        for _ in 0..2 {
            thread::yield_now();
        }
        drop(inside);
        drop(r2);
        w2.join().unwrap();
        assert_eq!(data.writes(), 1);
        assert_eq!(*mx.read(), 10);
        assert_clean(mx);
        [if w2_announced {
            "second writer announced while a reader was inside"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["second writer announced while a reader was inside"]);
}

/// A thread reader blocked behind a writer steps out of the reader count and parks (the
/// writer holds on long enough for it to finish spinning); the writer's unlock must still wake
/// it, although no reader is counted behind the writer. A due reader (the clock moved past
/// the patience while it waited) is counted back in by that unlock instead. The reader gets in
/// either way and sees the write; the lock ends clean.
#[test]
fn stepped_out_reader_is_woken_by_the_writer() {
    for due in [false, true] {
        let ex = explore(move || {
            loom_clock::reset();
            let m = Arc::new(RwMutex::new(0u32));
            let mut w = m.write();
            let reader = {
                let m = Arc::clone(&m);
                thread::spawn(move || *m.read())
            };
            // Let the reader spin, step out and park.
            for _ in 0..SETTLE {
                thread::yield_now();
            }
            let waiting = m.readers() == 1;
            if due {
                loom_clock::advance(Duration::from_millis(2));
            }
            *w = 1;
            drop(w);
            assert_eq!(
                reader.join().unwrap(),
                1,
                "the reader got in before the write"
            );
            assert_clean(&m);
            [if waiting {
                "reader waiting behind the writer at its unlock"
            } else {
                ""
            }]
        });
        ex.assert_saw(&["reader waiting behind the writer at its unlock"]);
    }
}

/// A reader inside through the count turns reader slots on while a writer announces itself
/// (and a second reader arrives): the writer only looks at the slots once the counted readers
/// have left, so it sees them on, turns them off and waits for the second reader if that one
/// took a slot.
#[test]
fn slots_turned_on_while_a_writer_waits() {
    let ex = explore(|| {
        loom_clock::reset();
        let m = Arc::new(RwMutex::new(0u32));
        let data = Arc::new(Guarded::new());
        let w = {
            let (m, data) = (Arc::clone(&m), Arc::clone(&data));
            thread::spawn(move || {
                let mut g = m.write();
                let _section = data.exclusive();
                *g += 1;
            })
        };
        let r = {
            let (m, data) = (Arc::clone(&m), Arc::clone(&data));
            thread::spawn(move || {
                let g = m.read();
                let _section = data.shared();
                *g
            })
        };
        m.loom_enable_reader_slots();
        w.join().unwrap();
        let seen = r.join().unwrap();
        assert_clean(&m);
        [if seen == 1 {
            "second read after the write"
        } else {
            "second read before the write"
        }]
    });
    ex.assert_saw(&[
        "second read after the write",
        "second read before the write",
    ]);
}

/// A writer that finds a reader in a slot outwaits its spinning and sleeps; the reader's
/// unlock, which finds slots off and every slot empty, must wake it.
#[test]
fn writer_asleep_on_a_slot_reader_is_woken() {
    let ex = explore(|| {
        loom_clock::reset();
        let m = Arc::new(RwMutex::new(0u32));
        m.loom_enable_reader_slots();
        let r = m.read();
        let w = {
            let m = Arc::clone(&m);
            thread::spawn(move || *m.write() += 1)
        };
        for _ in 0..SETTLE {
            thread::yield_now();
        }
        let announced = m.is_write_locked();
        drop(r);
        w.join().unwrap();
        assert_eq!(*m.read(), 1);
        assert_clean(&m);
        [if announced {
            "writer waited for the slot reader"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["writer waited for the slot reader"]);
}

/// A writer that takes the writer lock while a fast writer (one that found the lock free and
/// took it without the writer lock) holds the lock outwaits its spinning and sleeps; the fast
/// writer's unlock must wake it, and it must not have announced itself on top of the fast
/// writer (two writers inside: [`Guarded`] sections make loom check they never overlap).
#[test]
fn writer_asleep_behind_a_fast_writer_is_woken() {
    let ex = explore(|| {
        loom_clock::reset();
        let m = Arc::new((RwMutex::new(0u32), Guarded::new()));
        let mut g = m.0.write();
        let w = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let (m, data) = &*m;
                let mut g = m.write();
                let _section = data.exclusive();
                *g += 1;
            })
        };
        let slept = {
            let _section = m.1.exclusive();
            for _ in 0..SETTLE {
                thread::yield_now();
            }
            *g += 1;
            // The second writer waits for us holding the writer lock, without announcing.
            m.0.readers() == 0 && !m.0.try_read().is_some()
        };
        drop(g);
        w.join().unwrap();
        assert_eq!(*m.0.read(), 2);
        assert_clean(&m.0);
        [if slept {
            "second writer waited behind the fast writer"
        } else {
            ""
        }]
    });
    ex.assert_saw(&["second writer waited behind the fast writer"]);
}
