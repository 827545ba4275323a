//! Go's portable `sync.Pool` tests (`src/sync/pool_test.go`), ported, plus the pool's own
//! guarantees: aging over two cleanups, exclusive hand-out under concurrency, statistics.
//!
//! Go's "GC" is this crate's `Pool::cleanup`.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use gosync::pool::{Pool, Pooled};

/// TestPool: private slot first, then the shared deque; the victim generation keeps objects
/// alive across one cycle and the second drops them.
#[test]
fn pool() {
    let p: Pool<&'static str> = Pool::new(|| unreachable!("New is not used by this test"));
    assert_eq!(p.try_get(), None, "empty pool must return nothing");
    p.put("a");
    p.put("b");
    assert_eq!(p.try_get(), Some("a"), "want a (the private slot)");
    assert_eq!(p.try_get(), Some("b"), "want b (the shared deque)");
    assert_eq!(p.try_get(), None, "want nothing");

    // Put in a large number of objects so they spill into stealable space.
    for _ in 0..100 {
        p.put("c");
    }
    // After one cycle, the victim cache keeps them alive.
    p.cleanup();
    assert_eq!(p.try_get(), Some("c"), "want c after one cleanup");
    // A second cycle drops the victim cache.
    p.cleanup();
    assert_eq!(p.try_get(), None, "want nothing after the second cleanup");
}

/// TestPoolNew: New is called on an empty pool, and a put object is preferred.
#[test]
fn pool_new() {
    let i = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&i);
    let p = Pool::new(move || c.fetch_add(1, Ordering::SeqCst) + 1);
    assert_eq!(p.get(), 1);
    assert_eq!(p.get(), 2);
    p.put(42);
    assert_eq!(p.get(), 42);
    assert_eq!(p.get(), 3);
}

struct Tracked(Arc<AtomicUsize>);
impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// TestPoolGC / TestPoolRelease (`testPool(drain)`): every one of 100 objects is released
/// after cleanups, whether or not they were taken back out first.
fn test_pool(drain: bool) {
    let dropped = Arc::new(AtomicUsize::new(0));
    let p: Pool<Tracked> = Pool::new(|| unreachable!());
    const N: usize = 100;
    for _ in 0..N {
        p.put(Tracked(Arc::clone(&dropped)));
    }
    if drain {
        for _ in 0..N {
            drop(p.try_get().expect("a put object"));
        }
    }
    p.cleanup();
    p.cleanup();
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        N,
        "only {} out of {N} objects were released",
        dropped.load(Ordering::SeqCst)
    );
    assert_eq!(p.idle(), 0);
}

#[test]
fn pool_gc() {
    test_pool(false);
}

#[test]
fn pool_release() {
    test_pool(true);
}

/// TestPoolStress: 10 threads each `Put(v); v = Get()`; only values that were put come back.
#[test]
fn pool_stress() {
    const P: usize = 10;
    let n: usize = if cfg!(debug_assertions) {
        10_000
    } else {
        1_000_000
    };
    let p: Arc<Pool<u32>> = Arc::new(Pool::new(|| u32::MAX));
    let handles: Vec<_> = (0..P)
        .map(|_| {
            let p = Arc::clone(&p);
            thread::spawn(move || {
                let mut v = 0u32;
                for _ in 0..n {
                    p.put(v);
                    v = p.try_get().unwrap_or(0);
                    assert_eq!(v, 0, "expect 0 or nothing, got {v}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// An idle object survives one cleanup and is dropped by the second.
#[test]
fn idle_objects_age_out_over_two_cleanups() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let p: Pool<Tracked> = Pool::new(|| unreachable!());
    for _ in 0..10 {
        p.put(Tracked(Arc::clone(&dropped)));
    }
    assert_eq!(p.stats().idle, 10);
    p.cleanup();
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        0,
        "one cleanup must not drop"
    );
    let s = p.stats();
    assert_eq!((s.idle, s.idle_victim), (0, 10));
    p.cleanup();
    assert_eq!(dropped.load(Ordering::SeqCst), 10, "two cleanups must drop");
    let s = p.stats();
    assert_eq!((s.idle, s.idle_victim, s.dropped, s.cycles), (0, 0, 10, 2));
}

/// An object taken from the victim generation and put back is fresh again: it survives the
/// next cleanup.
#[test]
fn victim_hit_renews_the_object() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let p: Pool<Tracked> = Pool::new(|| unreachable!());
    p.put(Tracked(Arc::clone(&dropped)));
    p.cleanup();
    let x = p.try_get().expect("from the victim generation");
    assert_eq!(p.stats().victim_hits, 1);
    p.put(x);
    p.cleanup();
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    assert!(p.try_get().is_some());
}

/// Objects held by another thread's shard are stolen, oldest first.
#[test]
fn get_steals_from_other_shards() {
    let p: Arc<Pool<usize>> = Arc::new(Pool::builder(|| usize::MAX).shards(1024).build());
    let q = Arc::clone(&p);
    thread::spawn(move || {
        for i in 0..10 {
            q.put(i);
        }
    })
    .join()
    .unwrap();
    let got: Vec<usize> = (0..10).map(|_| p.try_get().expect("stolen")).collect();
    // Private slot holds 0; the deque 1..9 and thieves take its front first.
    assert_eq!(got, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 0]);
    let s = p.stats();
    assert_eq!((s.hits, s.steals, s.misses), (0, 10, 0));
    assert_eq!(p.try_get(), None);
    assert_eq!(p.stats().misses, 1);
}

/// Four threads get, use and put objects while a fifth runs cleanups: no object is ever in two
/// users' hands at once, and every object made is eventually either idle or dropped exactly once.
#[test]
fn no_object_handed_to_two_users() {
    struct Obj {
        busy: AtomicBool,
        live: Arc<AtomicUsize>,
    }
    impl Drop for Obj {
        fn drop(&mut self) {
            assert!(!self.busy.load(Ordering::SeqCst), "dropped while in use");
            self.live.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let live = Arc::new(AtomicUsize::new(0));
    let made = Arc::new(AtomicUsize::new(0));
    let (l, m) = (Arc::clone(&live), Arc::clone(&made));
    let p = Arc::new(
        Pool::builder(move || {
            l.fetch_add(1, Ordering::SeqCst);
            m.fetch_add(1, Ordering::SeqCst);
            Obj {
                busy: AtomicBool::new(false),
                live: Arc::clone(&l),
            }
        })
        .shards(2) // fewer shards than threads: forces sharing and stealing
        .build(),
    );
    let iters = if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    };
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(5));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (p, start) = (Arc::clone(&p), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                let mut held = Vec::new();
                for i in 0..iters {
                    // Hold 1..=3 objects at once so the private slot and the deque both work.
                    let k = 1 + (i + t) % 3;
                    for _ in 0..k {
                        let o = p.get();
                        assert!(
                            !o.busy.swap(true, Ordering::SeqCst),
                            "object handed to two users"
                        );
                        held.push(o);
                    }
                    for o in held.drain(..) {
                        o.busy.store(false, Ordering::SeqCst);
                        if i % 7 == 0 {
                            let g: Pooled<'_, Obj> = p.get_guard();
                            assert!(!g.busy.load(Ordering::SeqCst));
                        }
                        p.put(o);
                    }
                }
            })
        })
        .collect();
    let cleaner = {
        let (p, stop, start) = (Arc::clone(&p), Arc::clone(&stop), Arc::clone(&start));
        thread::spawn(move || {
            start.wait();
            while !stop.load(Ordering::SeqCst) {
                p.cleanup();
                thread::yield_now();
            }
        })
    };
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    cleaner.join().unwrap();
    let s = p.stats();
    assert_eq!(live.load(Ordering::SeqCst), s.idle + s.idle_victim);
    assert_eq!(
        made.load(Ordering::SeqCst) as u64,
        s.dropped + (s.idle + s.idle_victim) as u64
    );
    p.clear();
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

/// `Pooled` returns its object on drop; `Pooled::take` keeps it.
#[test]
fn guard_returns_or_takes() {
    let p = Pool::new(|| vec![0u8; 4]);
    {
        let mut g = p.get_guard();
        g[0] = 7;
    }
    assert_eq!(p.idle(), 1);
    let g = p.get_guard();
    assert_eq!(g[0], 7);
    let v = Pooled::take(g);
    assert_eq!(v, vec![7, 0, 0, 0]);
    assert_eq!(p.idle(), 0);
}

/// Statistics count hits, misses and retained weight.
#[test]
fn stats_track_retained_weight() {
    let p: Pool<Vec<u8>> = Pool::builder(Vec::new).weigher(|v| v.capacity()).build();
    let a = p.get();
    assert_eq!(p.stats().misses, 1);
    drop(a);
    p.put(Vec::with_capacity(1000));
    p.put(Vec::with_capacity(24));
    assert_eq!(p.stats().retained, 1024);
    let v = p.get();
    assert_eq!(p.stats().retained, 1024 - v.capacity());
    assert_eq!(p.stats().hits, 1);
    p.put(v);
    p.cleanup();
    assert_eq!(p.stats().retained, 1024, "victims still count as retained");
    p.cleanup();
    let s = p.stats();
    assert_eq!((s.retained, s.dropped_weight), (0, 1024));
}

/// The aging thread runs cleanups by itself and stops when the pool drops.
#[test]
fn automatic_aging() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let p: Pool<Tracked> = Pool::with_aging(|| unreachable!(), Duration::from_millis(5));
    p.put(Tracked(Arc::clone(&dropped)));
    let deadline = Instant::now() + Duration::from_secs(20);
    while dropped.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "aging thread never dropped the idle object"
        );
        thread::sleep(Duration::from_millis(5));
    }
    assert!(p.stats().cycles >= 2);
    drop(p); // joins the aging thread; must not hang
}
