//! Connection-pool behaviour with in-process managers (no servers needed). The tests
//! against real PostgreSQL, Redis and memcached servers are in `connpool_servers.rs`.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use gosync::connpool::{
    AsyncManager, AsyncPool, Config, Error, KeyedManager, KeyedPool, Manager, Pool,
};

/// Counts live connections; connections are ids; `fail` makes connect fail.
#[derive(Default)]
struct Counting {
    live: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    made: AtomicUsize,
    fail: AtomicBool,
    invalid: AtomicBool,
}

#[derive(Debug)]
struct Conn {
    id: usize,
    live: Arc<AtomicUsize>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Counting {
    fn make(&self) -> io::Result<Conn> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "password authentication failed for user \"x\"",
            ));
        }
        let n = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        Ok(Conn {
            id: self.made.fetch_add(1, Ordering::SeqCst),
            live: self.live.clone(),
        })
    }
    fn valid(&self) -> io::Result<()> {
        if self.invalid.load(Ordering::SeqCst) {
            Err(io::Error::other("ping failed"))
        } else {
            Ok(())
        }
    }
}

impl Manager for Counting {
    type Connection = Conn;
    type Error = io::Error;
    fn connect(&self) -> io::Result<Conn> {
        self.make()
    }
    fn is_valid(&self, _: &mut Conn) -> io::Result<()> {
        self.valid()
    }
    fn has_broken(&self, _: &mut Conn) -> bool {
        false
    }
}

impl AsyncManager for Counting {
    type Connection = Conn;
    type Error = io::Error;
    async fn connect(&self) -> io::Result<Conn> {
        self.make()
    }
    async fn is_valid(&self, _: &mut Conn) -> io::Result<()> {
        self.valid()
    }
    fn has_broken(&self, _: &mut Conn) -> bool {
        false
    }
}

fn cfg(max_open: usize, max_idle: usize) -> Config {
    Config {
        max_open,
        max_idle,
        wait_timeout: Some(Duration::from_secs(10)),
        ..Config::default()
    }
}

#[test]
fn defaults_follow_go() {
    let c = Config::default();
    assert_eq!(c.max_open, 0, "Go: 0 = unlimited");
    assert_eq!(c.max_idle, 2, "Go: defaultMaxIdleConns = 2");
    assert_eq!(c.max_lifetime, None);
    assert_eq!(c.max_idle_time, None);
}

#[test]
fn reuses_lifo_and_counts() {
    let pool = Pool::new(Counting::default(), cfg(4, 4));
    let a = pool.get().unwrap();
    let b = pool.get().unwrap();
    let (ia, ib) = (a.id, b.id);
    drop(a);
    drop(b);
    // LIFO: the most recently returned comes back first.
    assert_eq!(pool.get().unwrap().id, ib);
    let s = pool.stats();
    assert_eq!(
        (s.open, s.idle, s.in_use, s.connections_created),
        (2, 2, 0, 2)
    );
    let _ = ia;
}

#[test]
fn max_idle_closes_excess_and_counts() {
    let m = Counting::default();
    let live = m.live.clone();
    let pool = Pool::new(m, cfg(0, 2));
    let conns: Vec<_> = (0..5).map(|_| pool.get().unwrap()).collect();
    assert_eq!(live.load(Ordering::SeqCst), 5);
    drop(conns);
    let s = pool.stats();
    assert_eq!(s.idle, 2);
    assert_eq!(s.max_idle_closed, 3);
    assert_eq!(
        live.load(Ordering::SeqCst),
        2,
        "excess connections were really closed"
    );
    pool.set_max_idle(0);
    assert_eq!(live.load(Ordering::SeqCst), 0);
    assert_eq!(pool.stats().max_idle_closed, 5);
}

#[test]
fn max_open_is_never_exceeded_under_contention() {
    let m = Counting::default();
    let peak = m.peak.clone();
    let pool = Pool::new(m, cfg(3, 3));
    let in_use = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (pool, in_use, max_seen) = (pool.clone(), in_use.clone(), max_seen.clone());
            thread::spawn(move || {
                for _ in 0..200 {
                    let c = pool.get().unwrap();
                    let n = in_use.fetch_add(1, Ordering::SeqCst) + 1;
                    max_seen.fetch_max(n, Ordering::SeqCst);
                    thread::yield_now();
                    in_use.fetch_sub(1, Ordering::SeqCst);
                    drop(c);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(max_seen.load(Ordering::SeqCst) <= 3);
    assert!(peak.load(Ordering::SeqCst) <= 3);
    let s = pool.stats();
    assert_eq!(s.open, 3);
    assert_eq!(s.in_use, 0);
    assert!(
        s.wait_count > 0,
        "16 clients on 3 connections must have waited"
    );
    assert_eq!(s.waiting, 0);
}

#[test]
fn try_get_never_dials_or_waits() {
    let pool = Pool::new(Counting::default(), cfg(1, 1));
    assert!(
        pool.try_get().is_none(),
        "empty pool: try_get does not dial"
    );
    let c = pool.get().unwrap();
    assert!(pool.try_get().is_none());
    drop(c);
    assert!(pool.try_get().is_some());
}

#[test]
fn connect_error_is_returned_at_once_not_as_timeout() {
    let m = Counting::default();
    m.fail.store(true, Ordering::SeqCst);
    let pool = Pool::new(m, cfg(2, 2));
    let start = Instant::now();
    let err = pool.get().unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    match &err {
        Error::Connect(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied),
        other => panic!("expected a connect error, got {other}"),
    }
    assert!(
        err.to_string().contains("password authentication failed"),
        "{err}"
    );
    let s = pool.stats();
    assert_eq!(
        (s.open, s.connect_errors),
        (0, 1),
        "the failed dial freed its slot"
    );
}

#[test]
fn timeout_carries_last_connect_error_and_occupancy() {
    let m = Counting::default();
    let pool = Pool::new(m, cfg(1, 1));
    let held = pool.get().unwrap();
    pool.manager().fail.store(true, Ordering::SeqCst);
    pool.set_max_open(2);
    assert!(pool.get().is_err()); // a failing dial in the free slot
    pool.set_max_open(1);
    let err = pool.get_timeout(Duration::from_millis(50)).unwrap_err();
    match &err {
        Error::Timeout {
            last_connect_error,
            open,
            max_open,
            ..
        } => {
            assert_eq!((*open, *max_open), (1, 1));
            assert!(last_connect_error.as_deref().unwrap().contains("password"));
        }
        other => panic!("expected a timeout, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("timed out") && text.contains("last connect error: password"),
        "{text}"
    );
    assert_eq!(pool.stats().timeouts, 1);
    drop(held);
}

#[test]
fn invalid_idle_connections_are_replaced_not_handed_out() {
    let pool = Pool::new(Counting::default(), cfg(2, 2));
    let first = pool.get().unwrap().id;
    pool.manager().invalid.store(true, Ordering::SeqCst);
    let c = pool.get().unwrap();
    assert_ne!(
        c.id, first,
        "the idle connection failed validation and was closed"
    );
    assert_eq!(pool.stats().invalid_closed, 1);
}

#[test]
fn mark_unusable_closes_instead_of_returning() {
    let m = Counting::default();
    let live = m.live.clone();
    let pool = Pool::new(m, cfg(2, 2));
    let mut c = pool.get().unwrap();
    c.mark_unusable();
    drop(c);
    assert_eq!(live.load(Ordering::SeqCst), 0);
    let s = pool.stats();
    assert_eq!((s.open, s.broken_closed), (0, 1));
}

#[test]
fn lowering_max_open_closes_excess_on_return() {
    let pool = Pool::new(Counting::default(), cfg(4, 4));
    let conns: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
    pool.set_max_open(2);
    assert_eq!(pool.stats().max_open, 2);
    drop(conns);
    let s = pool.stats();
    assert_eq!(
        s.open, 2,
        "connections over the lowered limit are closed as returned"
    );
    assert!(s.idle <= 2);
}

#[test]
fn lifetime_and_idle_time_expire() {
    let m = Counting::default();
    let live = m.live.clone();
    let pool = Pool::new(
        m,
        Config {
            max_idle_time: Some(Duration::from_millis(100)),
            ..cfg(4, 4)
        },
    );
    drop(pool.get().unwrap());
    assert_eq!(pool.stats().idle, 1);
    thread::sleep(Duration::from_millis(150));
    // Checkout closes the expired idle connection lazily and dials a new one.
    let c = pool.get().unwrap();
    assert_eq!(pool.stats().max_idle_time_closed, 1);
    drop(c);
    // The cleaner (1 s tick, Go's floor) closes it without any checkout.
    let deadline = Instant::now() + Duration::from_secs(10);
    while live.load(Ordering::SeqCst) != 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "the cleaner closed the idle connection"
    );
    assert_eq!(pool.stats().max_idle_time_closed, 2);

    pool.set_max_idle_time(None);
    pool.set_max_lifetime(Some(Duration::from_millis(50)));
    let c = pool.get().unwrap();
    thread::sleep(Duration::from_millis(80));
    drop(c); // expired: closed on return
    let s = pool.stats();
    assert_eq!((s.max_lifetime_closed, s.idle), (1, 0));
}

#[test]
fn close_fails_waiters_and_later_gets() {
    let pool = Pool::new(Counting::default(), cfg(1, 1));
    let held = pool.get().unwrap();
    let p2 = pool.clone();
    let waiter = thread::spawn(move || p2.get().map(|_| ()));
    while pool.stats().waiting == 0 {
        thread::sleep(Duration::from_millis(1));
    }
    pool.close();
    assert!(matches!(waiter.join().unwrap(), Err(Error::Closed)));
    assert!(matches!(pool.get(), Err(Error::Closed)));
    drop(held);
    assert_eq!(pool.stats().open, 0, "returned after close: closed");
}

#[test]
fn starving_waiter_gets_a_connection() {
    // One thread hammers get/drop; a second must still get through (handoff after 1 ms).
    let pool = Pool::new(Counting::default(), cfg(1, 1));
    let stop = Arc::new(AtomicBool::new(false));
    let (p, s) = (pool.clone(), stop.clone());
    let hammer = thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            drop(p.get().unwrap());
        }
    });
    for _ in 0..20 {
        drop(
            pool.get_timeout(Duration::from_secs(10))
                .expect("a waiter is not starved"),
        );
    }
    stop.store(true, Ordering::Relaxed);
    hammer.join().unwrap();
}

#[test]
fn keyed_pool_keeps_idle_per_key() {
    struct K;
    impl KeyedManager<u8> for K {
        type Connection = u8;
        type Error = io::Error;
        fn connect(&self, key: &u8) -> io::Result<u8> {
            Ok(*key)
        }
        fn is_valid(&self, _: &u8, _: &mut u8) -> io::Result<()> {
            Ok(())
        }
        fn has_broken(&self, _: &u8, _: &mut u8) -> bool {
            false
        }
    }
    let pool = KeyedPool::new(
        K,
        Config {
            max_idle: 2,
            ..Config::default()
        },
    );
    for key in [1u8, 2] {
        let conns: Vec<_> = (0..5).map(|_| pool.get(&key).unwrap()).collect();
        assert!(conns.iter().all(|c| **c == key));
    }
    for key in [1u8, 2] {
        let s = pool.stats(&key).unwrap();
        assert_eq!((s.idle, s.max_idle_closed), (2, 3));
    }
    assert_eq!(pool.total_stats().idle, 4);
    assert!(pool.try_get(&3).is_none());
    pool.remove(&1);
    assert!(pool.stats(&1).is_none());
}

// ---- async, driven by a hand-written executor (no runtime dependency) ----

struct Flag(AtomicBool);
impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn poll_once<F: Future>(f: std::pin::Pin<&mut F>, flag: &Arc<Flag>) -> Poll<F::Output> {
    let waker = Waker::from(flag.clone());
    f.poll(&mut Context::from_waker(&waker))
}

fn block_on<F: Future>(f: F) -> F::Output {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = poll_once(f.as_mut(), &flag) {
            return v;
        }
        while !flag.0.swap(false, Ordering::SeqCst) {
            thread::sleep(Duration::from_micros(200));
        }
    }
}

#[test]
fn async_dropped_waiter_leaks_nothing_and_passes_the_wakeup_on() {
    let pool = AsyncPool::new(Counting::default(), cfg(1, 1));
    let held = block_on(pool.get()).unwrap();
    let held_id = held.id;

    // Two queued waiters.
    let f1 = Arc::new(Flag(AtomicBool::new(false)));
    let f2 = Arc::new(Flag(AtomicBool::new(false)));
    let mut g1 = Box::pin(pool.get());
    let mut g2 = Box::pin(pool.get());
    assert!(poll_once(g1.as_mut(), &f1).is_pending());
    assert!(poll_once(g2.as_mut(), &f2).is_pending());
    assert_eq!(pool.stats().waiting, 2);

    // Return the connection: the first waiter is woken (granted), but dropped before it
    // is polled again. The grant must reach the second waiter.
    drop(held);
    assert!(f1.0.load(Ordering::SeqCst), "first waiter woken");
    drop(g1);
    assert!(f2.0.load(Ordering::SeqCst), "the wake-up was passed on");
    match poll_once(g2.as_mut(), &f2) {
        Poll::Ready(Ok(c)) => assert_eq!(c.id, held_id),
        _ => panic!("second waiter should have the connection"),
    }
    let s = pool.stats();
    assert_eq!((s.open, s.waiting, s.idle), (1, 0, 1));
}

#[test]
fn async_cancel_storm_leaks_nothing() {
    let m = Counting::default();
    let live = m.live.clone();
    let pool = AsyncPool::new(m, cfg(2, 2));
    let a = block_on(pool.get()).unwrap();
    let b = block_on(pool.get()).unwrap();
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let mut futs: Vec<_> = (0..50).map(|_| Box::pin(pool.get())).collect();
    for f in &mut futs {
        assert!(poll_once(f.as_mut(), &flag).is_pending());
    }
    drop(a);
    // Drop every other future, some after being granted.
    let mut kept = Vec::new();
    for (i, f) in futs.into_iter().enumerate() {
        if i % 2 == 0 {
            drop(f);
        } else {
            kept.push(f);
        }
    }
    drop(b);
    // The kept ones all eventually get a connection, one after another.
    for f in kept {
        let c = block_on(f).unwrap();
        drop(c);
    }
    let s = pool.stats();
    assert_eq!((s.waiting, s.in_use), (0, 0));
    assert!(s.open <= 2);
    assert_eq!(live.load(Ordering::SeqCst), s.open);
}

#[test]
fn async_timeout_without_a_runtime() {
    let pool = AsyncPool::new(Counting::default(), cfg(1, 1));
    let held = block_on(pool.get()).unwrap();
    let start = Instant::now();
    let err = block_on(pool.get_timeout(Duration::from_millis(100))).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(pool.stats().waiting, 0);
    drop(held);
}

/// A manager whose connect is slow, to cancel during the dial.
struct SlowConnect(Arc<Mutex<usize>>);
impl AsyncManager for SlowConnect {
    type Connection = ();
    type Error = io::Error;
    fn connect(&self) -> impl Future<Output = io::Result<()>> + Send {
        *self.0.lock().unwrap() += 1;
        std::future::pending()
    }
    async fn is_valid(&self, _: &mut ()) -> io::Result<()> {
        Ok(())
    }
    fn has_broken(&self, _: &mut ()) -> bool {
        false
    }
}

#[test]
fn async_cancel_during_connect_frees_the_slot() {
    let dials = Arc::new(Mutex::new(0));
    let pool = AsyncPool::new(SlowConnect(dials.clone()), cfg(1, 1));
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let mut f = Box::pin(pool.get());
    assert!(poll_once(f.as_mut(), &flag).is_pending());
    assert_eq!(
        pool.stats().open,
        1,
        "a dial in progress counts against max_open"
    );
    drop(f);
    assert_eq!(pool.stats().open, 0, "the cancelled dial freed its slot");
    assert_eq!(*dials.lock().unwrap(), 1);
}
