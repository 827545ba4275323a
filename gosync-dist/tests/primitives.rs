//! Semaphore, RwMutex, Election and Barrier against a real single-member etcd.

mod support;

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gosync_dist::{Barrier, Election, Error, Permit, RwMutex, Semaphore, Session, SessionOptions};
use support::etcd::Etcd;

async fn session(etcd: &Etcd) -> Session {
    Session::connect(
        SessionOptions::new(etcd.endpoints())
            .ttl(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(20)),
    )
    .await
    .expect("connect to etcd")
}

/// Records a level (units held, readers, leaders) and its maximum.
#[derive(Default)]
struct Level {
    now: AtomicI64,
    max: AtomicI64,
}

impl Level {
    fn add(&self, n: i64) -> i64 {
        let v = self.now.fetch_add(n, Ordering::SeqCst) + n;
        self.max.fetch_max(v, Ordering::SeqCst);
        v
    }

    /// Holds `permit` (`w` units of a semaphore of `capacity`) for `d`, asserting meanwhile
    /// that the units held never exceed the capacity, then releases it.
    async fn hold_permit(&self, permit: Permit, w: u64, capacity: u64, d: Duration) {
        let held = self.add(w as i64);
        assert!(held <= capacity as i64, "{held} units held");
        tokio::time::sleep(d).await;
        self.add(-(w as i64));
        permit.release().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_never_exceeds_its_capacity_and_admits_in_order() {
    let Some(etcd) = Etcd::start() else { return };
    const CAPACITY: u64 = 3;
    let level = Arc::new(Level::default());
    let mut tasks = Vec::new();
    for i in 0..6u64 {
        let s = session(&etcd).await;
        let level = level.clone();
        tasks.push(tokio::spawn(async move {
            let sem = Semaphore::new(&s, "sem/pool", CAPACITY).unwrap();
            for round in 0..10u64 {
                let w = 1 + (i + round) % CAPACITY;
                let p = sem.acquire(w).await.unwrap();
                let d = Duration::from_millis(3);
                level.hold_permit(p, w, CAPACITY, d).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let max = level.max.load(Ordering::SeqCst);
    assert!(max <= CAPACITY as i64);
    assert!(max > 1, "units were never held concurrently (max {max})");
    assert!(etcd.keys("sem/pool/").is_empty());

    // Bad input.
    let s = session(&etcd).await;
    assert!(matches!(
        Semaphore::new(&s, "sem/zero", 0),
        Err(Error::InvalidArgument(_))
    ));
    let sem = Semaphore::new(&s, "sem/pool", CAPACITY).unwrap();
    let e = sem.acquire(CAPACITY + 1).await.unwrap_err();
    assert!(e.to_string().contains("capacity"), "{e}");
    // A handle with another capacity sees the mismatch instead of miscounting.
    let held = sem.acquire(2).await.unwrap();
    let other = Semaphore::new(&s, "sem/pool", 5).unwrap();
    let e = other.try_acquire(1).await.unwrap_err();
    assert!(e.to_string().contains("same capacity"), "{e}");
    // FIFO: with 2 of 3 held, a waiting 2 blocks a later 1 (no barging past the head).
    let s2 = session(&etcd).await;
    let sem2 = Semaphore::new(&s2, "sem/pool", CAPACITY).unwrap();
    let big = tokio::spawn(async move { sem2.acquire(2).await.map(|p| p.token()) });
    let deadline = Instant::now() + Duration::from_secs(30);
    while etcd.keys("sem/pool/").len() < 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(sem.try_acquire(1).await.unwrap().is_none());
    held.release().await.unwrap();
    big.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rwmutex_readers_share_writers_exclude() {
    let Some(etcd) = Etcd::start() else { return };
    let readers = Arc::new(Level::default());
    let writers = Arc::new(Level::default());
    let mut tasks = Vec::new();
    for i in 0..5 {
        let s = session(&etcd).await;
        let (readers, writers) = (readers.clone(), writers.clone());
        tasks.push(tokio::spawn(async move {
            let rw = RwMutex::new(&s, "rw/lock").unwrap();
            for round in 0..8 {
                if (i + round) % 3 == 0 {
                    let g = rw.write().await.unwrap();
                    assert_eq!(writers.add(1), 1, "two writers");
                    assert_eq!(readers.now.load(Ordering::SeqCst), 0, "reader during write");
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    writers.add(-1);
                    g.unlock().await.unwrap();
                } else {
                    let g = rw.read().await.unwrap();
                    readers.add(1);
                    assert_eq!(writers.now.load(Ordering::SeqCst), 0, "writer during read");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    readers.add(-1);
                    g.unlock().await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        readers.max.load(Ordering::SeqCst) > 1,
        "readers never shared"
    );
    assert!(etcd.keys("rw/lock/").is_empty());

    // A waiting writer blocks later readers (arrival order, no writer starvation).
    let s = session(&etcd).await;
    let rw = RwMutex::new(&s, "rw/order").unwrap();
    let r1 = rw.read().await.unwrap();
    let s2 = session(&etcd).await;
    let w = tokio::spawn(async move { RwMutex::new(&s2, "rw/order").unwrap().write().await });
    let deadline = Instant::now() + Duration::from_secs(30);
    while etcd.keys("rw/order/").len() < 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rw.try_read().await.unwrap().is_none());
    assert!(rw.try_write().await.unwrap().is_none());
    r1.unlock().await.unwrap();
    w.await.unwrap().unwrap().unlock().await.unwrap();
    assert!(rw.try_read().await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_one_leader_at_a_time_resign_hands_over_observe_sees_all() {
    let Some(etcd) = Etcd::start() else { return };
    let watcher = session(&etcd).await;
    let election = Election::new(&watcher, "elect/main").unwrap();
    let mut observer = election.observe();
    // The first item is the current state: no leader.
    assert_eq!(observer.next().await.unwrap().unwrap(), None);

    const CAMPAIGNERS: usize = 5;
    let leaders = Arc::new(Level::default());
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..CAMPAIGNERS {
        let s = session(&etcd).await;
        let (leaders, order) = (leaders.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let e = Election::new(&s, "elect/main").unwrap();
            let l = e.campaign(format!("c{i}")).await.unwrap();
            assert_eq!(leaders.add(1), 1, "two leaders at once");
            let current = e.leader().await.unwrap().expect("a leader");
            assert_eq!(current.key, l.key());
            l.proclaim(format!("c{i}-proclaimed")).await.unwrap();
            order.lock().unwrap().push(l.token().get());
            tokio::time::sleep(Duration::from_millis(5)).await;
            leaders.add(-1);
            l.resign().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(leaders.max.load(Ordering::SeqCst), 1);
    let order = order.lock().unwrap().clone();
    assert_eq!(order.len(), CAMPAIGNERS);

    // The observer saw, in order: each leader with its campaign value, then its proclaimed
    // value, and "no leader" at the end.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let item = tokio::time::timeout_at(deadline.into(), observer.next())
            .await
            .expect("observer items")
            .unwrap()
            .unwrap();
        let done = item.is_none() && seen.len() >= 2 * CAMPAIGNERS;
        seen.push(item);
        if done {
            break;
        }
    }
    let leader_tokens: Vec<u64> =
        seen.iter()
            .flatten()
            .map(|l| l.token)
            .fold(Vec::new(), |mut v, t| {
                if v.last() != Some(&t) {
                    v.push(t);
                }
                v
            });
    assert_eq!(leader_tokens, order, "observe saw every leader in order");
    for l in seen.iter().flatten() {
        let v = String::from_utf8(l.value.clone()).unwrap();
        assert!(v.starts_with('c'), "{v}");
    }
    assert!(seen
        .iter()
        .flatten()
        .any(|l| l.value.ends_with(b"-proclaimed")));

    // A resigned leader cannot proclaim; nothing is left.
    let s = session(&etcd).await;
    let e = Election::new(&s, "elect/main").unwrap();
    let l = e.campaign("x").await.unwrap();
    let mut admin = s.client().clone();
    admin.delete(l.key(), None).await.unwrap();
    assert!(matches!(l.proclaim("y").await, Err(Error::NotLeader)));
    drop(l);
    assert!(e.leader().await.unwrap().is_none());
}

/// The observer is also a `futures_core::Stream`, and has a blocking form for plain threads;
/// both see the same changes, in order, and end with the session's loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_observer_as_a_stream_and_from_a_thread() {
    use std::pin::Pin;
    let Some(etcd) = Etcd::start() else { return };
    let watcher = session(&etcd).await;
    let election = Election::new(&watcher, "elect/stream").unwrap();
    let mut stream = election.observe();
    let mut from_thread = election.observe();
    /// The next item, read through `Stream::poll_next`.
    async fn poll_item(
        o: &mut gosync_dist::Observer,
    ) -> Option<gosync_dist::Result<Option<gosync_dist::LeaderInfo>>> {
        let item =
            std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *o), cx));
        tokio::time::timeout(Duration::from_secs(20), item)
            .await
            .expect("an observer item")
    }
    let thread = std::thread::spawn(move || {
        let mut seen = Vec::new();
        while let Some(item) = from_thread.blocking_next() {
            match item {
                Ok(state) => seen.push(state.map(|l| l.token)),
                Err(e) => {
                    assert!(matches!(e, Error::SessionLost), "{e}");
                    break;
                }
            }
        }
        seen
    });
    assert_eq!(
        poll_item(&mut stream).await.unwrap().unwrap(),
        None,
        "first the current state"
    );

    let s = session(&etcd).await;
    let e = Election::new(&s, "elect/stream").unwrap();
    let first = e.campaign("a").await.unwrap();
    let first_token = first.token().get();
    let seen = poll_item(&mut stream)
        .await
        .unwrap()
        .unwrap()
        .expect("a leader");
    assert_eq!(
        (seen.token, seen.value.as_slice()),
        (first_token, &b"a"[..])
    );
    first.resign().await.unwrap();
    assert_eq!(
        poll_item(&mut stream).await.unwrap().unwrap(),
        None,
        "no leader after the resign"
    );
    let second = e.campaign("b").await.unwrap();
    let second_token = second.token().get();
    assert!(second_token > first_token);
    let seen = poll_item(&mut stream)
        .await
        .unwrap()
        .unwrap()
        .expect("the next leader");
    assert_eq!(seen.token, second_token);

    // Ending the watcher's session ends both observations with `SessionLost`.
    watcher.close().await.unwrap();
    assert!(matches!(
        poll_item(&mut stream).await,
        Some(Err(Error::SessionLost)) | None
    ));
    let thread_saw = tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();
    assert_eq!(
        thread_saw,
        [None, Some(first_token), None, Some(second_token)],
        "the thread saw the same changes"
    );
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_enters_and_leaves_together() {
    let Some(etcd) = Etcd::start() else { return };
    const N: usize = 3;
    let entered = Arc::new(AtomicUsize::new(0));
    let left = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..N {
        let s = session(&etcd).await;
        let (entered, left) = (entered.clone(), left.clone());
        tasks.push(tokio::spawn(async move {
            // Stagger the arrivals so that early ones really wait.
            tokio::time::sleep(Duration::from_millis(50 * i as u64)).await;
            let b = Barrier::new(&s, "barrier/b", N).unwrap();
            entered.fetch_add(1, Ordering::SeqCst);
            let inside = b.enter().await.unwrap();
            assert_eq!(
                entered.load(Ordering::SeqCst),
                N,
                "entered before all arrived"
            );
            tokio::time::sleep(Duration::from_millis(50 * (N - i) as u64)).await;
            left.fetch_add(1, Ordering::SeqCst);
            inside.leave().await.unwrap();
            assert_eq!(left.load(Ordering::SeqCst), N, "left before all left");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(etcd.keys("barrier/b/").is_empty(), "the barrier cleans up");
    let s = session(&etcd).await;
    assert!(matches!(
        Barrier::new(&s, "barrier/zero", 0),
        Err(Error::InvalidArgument(_))
    ));
}

/// Polls `cond` every 20 ms until it holds; fails after `limit` (a bound, not a pace).
async fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One hold of a semaphore through a session of its own, kept until the test lets it go.
struct Holder {
    session: Session,
    release: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Queues acquisitions of `weights` on the semaphore `name` in this order, each through its
/// own session (index 0 holds at once, the others wait), then runs `steps`: each releases
/// some holds and expects exactly some waiters to be admitted. After every step the first
/// waiter not yet admitted (the head) has been woken, and every waiter behind it has never
/// received a watch event: a release wakes only the waiters it concerns. Returns the watch
/// events each session received.
async fn semaphore_queue_wakes_only_whom_it_concerns(
    etcd: &Etcd,
    name: &str,
    capacity: u64,
    weights: &[u64],
    steps: &[(&[usize], &[usize])],
) -> Vec<u64> {
    let prefix = format!("{name}/");
    let (admitted_tx, mut admitted_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut holds = Vec::new();
    for (i, &w) in weights.iter().enumerate() {
        let s = session(etcd).await;
        let sem = Semaphore::new(&s, name, capacity).unwrap();
        let (release, go) = tokio::sync::oneshot::channel::<()>();
        let admitted = admitted_tx.clone();
        tokio::spawn(async move {
            let p = sem.acquire(w).await.unwrap();
            admitted.send(i).unwrap();
            let _ = go.await;
            p.release().await.unwrap();
        });
        holds.push(Holder {
            session: s,
            release: Some(release),
        });
        // Queue the acquisitions in a known order.
        eventually(Duration::from_secs(30), "acquisition queued", || {
            etcd.keys(&prefix).len() == i + 1
        })
        .await;
    }
    assert_eq!(admitted_rx.recv().await, Some(0), "the first holds at once");
    let events =
        |holds: &[Holder]| -> Vec<u64> { holds.iter().map(|h| h.session.watch_events()).collect() };
    assert!(
        events(&holds).iter().all(|&e| e == 0),
        "nothing released yet, yet waiters were woken: {:?}",
        events(&holds)
    );
    let mut done = vec![false; weights.len()];
    done[0] = true;
    for (step, (release, expect)) in steps.iter().enumerate() {
        let before = events(&holds);
        for &r in *release {
            let _ = holds[r].release.take().expect("held").send(());
        }
        let mut got = Vec::new();
        for _ in 0..expect.len() {
            let i = tokio::time::timeout(Duration::from_secs(30), admitted_rx.recv())
                .await
                .expect("admission within 30 s")
                .unwrap();
            got.push(i);
            done[i] = true;
        }
        got.sort_unstable();
        assert_eq!(got, *expect, "step {step}: admitted");
        let Some(head) = done.iter().position(|d| !d) else {
            continue;
        };
        eventually(Duration::from_secs(30), "the new head is woken", || {
            holds[head].session.watch_events() > before[head]
        })
        .await;
        // Whatever else this release would wake has had the time to arrive.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = events(&holds);
        eprintln!("{name}: after step {step}: watch events per session {now:?}");
        assert!(
            now[head + 1..].iter().all(|&e| e == 0),
            "step {step}: waiters behind the head (waiter {head}) were woken: watch events \
             per session {now:?}"
        );
        assert!(
            admitted_rx.try_recv().is_err(),
            "step {step}: admitted more than expected"
        );
    }
    for h in &mut holds {
        if let Some(r) = h.release.take() {
            let _ = r.send(());
        }
    }
    eventually(Duration::from_secs(30), "every hold released", || {
        etcd.keys(&prefix).is_empty()
    })
    .await;
    let total = events(&holds);
    eprintln!("{name}: watch events per session {total:?}");
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_release_wakes_one_waiter_not_the_herd() {
    let Some(etcd) = Etcd::start() else { return };
    // Capacity 1: a holder and six waiters, admitted one at a time in queue order.
    const WAITERS: usize = 6;
    let steps: Vec<([usize; 1], [usize; 1])> = (0..WAITERS).map(|i| ([i], [i + 1])).collect();
    let steps: Vec<(&[usize], &[usize])> = steps.iter().map(|(r, a)| (&r[..], &a[..])).collect();
    let events = semaphore_queue_wakes_only_whom_it_concerns(
        &etcd,
        "herd/sem",
        1,
        &[1; WAITERS + 1],
        &steps,
    )
    .await;
    // Each waiter is woken when its predecessor is admitted and when it is released: O(N)
    // in all, where waking every waiter on every release would be O(N²).
    assert_eq!(events[0], 0, "the first holder never waited");
    for (i, &e) in events.iter().enumerate().skip(1) {
        assert!(e <= 2, "waiter {i} was woken {e} times: {events:?}");
    }

    // Weighted, capacity 3: one release can admit several waiters, and a large one at the
    // head holds back the small ones behind it.
    let weights = [3, 2, 1, 3, 1, 1, 1];
    let steps: [(&[usize], &[usize]); 3] = [(&[0], &[1, 2]), (&[1, 2], &[3]), (&[3], &[4, 5, 6])];
    let events =
        semaphore_queue_wakes_only_whom_it_concerns(&etcd, "herd/weighted", 3, &weights, &steps)
            .await;
    // A waiter is woken by its predecessor's admission, then as the head by the releases
    // ahead of it: a few times each, not once per release.
    let total: u64 = events.iter().sum();
    assert!(
        total <= 2 * (weights.len() as u64 - 1),
        "{total} wake-ups for {} waiters: {events:?}",
        weights.len() - 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_waiter_cancelled_in_the_queue_leaves_no_gap_and_no_key() {
    let Some(etcd) = Etcd::start() else { return };
    const WAITERS: usize = 4;
    // Waiter 2 (behind the head), then waiter 1 (the head) gives up while waiting.
    for cancelled in [2usize, 1] {
        let name = format!("sem/cancel{cancelled}");
        let prefix = format!("{name}/");
        let holder = session(&etcd).await;
        let permit = Semaphore::new(&holder, &name, 1)
            .unwrap()
            .acquire(1)
            .await
            .unwrap();
        let (admitted_tx, mut admitted_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut timed_out = None;
        for i in 1..=WAITERS {
            let s = session(&etcd).await;
            let sem = Semaphore::new(&s, &name, 1).unwrap();
            if i == cancelled {
                timed_out = Some(tokio::spawn(async move {
                    sem.acquire_timeout(1, Duration::from_secs(3)).await
                }));
            } else {
                let admitted = admitted_tx.clone();
                tokio::spawn(async move {
                    let p = sem.acquire(1).await.unwrap();
                    admitted.send(i).unwrap();
                    p.release().await.unwrap();
                    drop(s);
                });
            }
            eventually(Duration::from_secs(30), "waiter queued", || {
                etcd.keys(&prefix).len() == i + 1
            })
            .await;
        }
        match timed_out.unwrap().await.unwrap() {
            Err(Error::Timeout(_)) => {}
            other => panic!("expected Timeout, got {other:?}"),
        }
        assert_eq!(
            etcd.keys(&prefix).len(),
            WAITERS,
            "the timed-out waiter's key is gone when it returns"
        );
        permit.release().await.unwrap();
        let mut order = Vec::new();
        for _ in 1..WAITERS {
            let i = tokio::time::timeout(Duration::from_secs(30), admitted_rx.recv())
                .await
                .expect("admission within 30 s")
                .unwrap();
            order.push(i);
        }
        let expect: Vec<usize> = (1..=WAITERS).filter(|&i| i != cancelled).collect();
        assert_eq!(order, expect, "the others are admitted in queue order");
        eventually(Duration::from_secs(30), "no key left behind", || {
            etcd.keys(&prefix).is_empty()
        })
        .await;
    }
}

/// Waiters that give up at every place in the queue (head, behind it, just admitted) while
/// others wait without a limit: nobody is stranded, the capacity holds, nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_waiters_giving_up_anywhere_in_the_queue_strand_nobody() {
    let Some(etcd) = Etcd::start() else { return };
    const CAPACITY: u64 = 2;
    let level = Arc::new(Level::default());
    let (gave_up, admitted) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::new();
    for i in 0..6u64 {
        let s = session(&etcd).await;
        let (level, gave_up, admitted) = (level.clone(), gave_up.clone(), admitted.clone());
        tasks.push(tokio::spawn(async move {
            let sem = Semaphore::new(&s, "sem/giving-up", CAPACITY).unwrap();
            for round in 0..12u64 {
                let w = 1 + (i + round) % CAPACITY;
                // Every other client gives up after a few milliseconds, in turn.
                let p = if (i + round) % 2 == 0 {
                    let limit = Duration::from_millis(2 + (i * 5 + round * 3) % 15);
                    match sem.acquire_timeout(w, limit).await {
                        Ok(p) => p,
                        Err(Error::Timeout(_)) => {
                            gave_up.fetch_add(1, Ordering::SeqCst);
                            continue;
                        }
                        Err(e) => panic!("{e}"),
                    }
                } else {
                    sem.acquire(w).await.unwrap()
                };
                admitted.fetch_add(1, Ordering::SeqCst);
                let d = Duration::from_millis(2);
                level.hold_permit(p, w, CAPACITY, d).await;
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("a waiter was stranded")
            .unwrap();
    }
    eprintln!(
        "admitted {}, gave up {}",
        admitted.load(Ordering::SeqCst),
        gave_up.load(Ordering::SeqCst)
    );
    assert!(level.max.load(Ordering::SeqCst) <= CAPACITY as i64);
    eventually(Duration::from_secs(30), "no key left behind", || {
        etcd.keys("sem/giving-up/").is_empty()
    })
    .await;
}
