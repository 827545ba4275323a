//! Mutex and Session against a real single-member etcd: mutual exclusion with no lost update,
//! fencing, lost sessions, cancellation and timeouts that leave no key, bad input, one watch
//! per waiter, and a holder killed with SIGKILL.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gosync_dist::etcd_client::{Compare, CompareOp, Txn, TxnOp};
use gosync_dist::{Error, LostReason, Mutex, Session, SessionOptions};
use support::etcd::{free_port, Etcd};

fn opts(etcd: &Etcd) -> SessionOptions {
    SessionOptions::new(etcd.endpoints())
        .ttl(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(20))
}

async fn session(etcd: &Etcd) -> Session {
    Session::connect(opts(etcd)).await.expect("connect to etcd")
}

/// Polls `cond` every 20 ms until it holds; fails after `limit` (a bound, not a pace).
async fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_clients_200_increments_no_lost_update_tokens_increase() {
    let Some(etcd) = Etcd::start() else { return };
    const CLIENTS: usize = 8;
    const ROUNDS: usize = 200;
    let counter = "test/counter";
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let s = session(&etcd).await;
        tasks.push(tokio::spawn(async move {
            let m = Mutex::new(&s, "test/counter-lock").unwrap();
            let mut seen = Vec::with_capacity(ROUNDS);
            let mut kv = s.client().kv_client();
            for _ in 0..ROUNDS {
                let g = m.lock().await.expect("lock");
                let cur = kv.get(counter, None).await.unwrap();
                let n: u64 = cur
                    .kvs()
                    .first()
                    .map_or(0, |kv| kv.value_str().unwrap().parse().unwrap());
                // The write is fenced: it only applies while this guard holds the lock.
                let txn = Txn::new().when([g.owner_compare()]).and_then([TxnOp::put(
                    counter,
                    (n + 1).to_string(),
                    None,
                )]);
                let r = kv.txn(txn).await.unwrap();
                assert!(r.succeeded(), "fenced write refused while holding the lock");
                seen.push((n, g.token().get()));
                g.unlock().await.expect("unlock");
            }
            s.close().await.unwrap();
            seen
        }));
    }
    let mut history = Vec::new();
    for t in tasks {
        history.extend(t.await.unwrap());
    }
    // No lost update: every value 0..1600 was read exactly once.
    history.sort();
    let values: Vec<u64> = history.iter().map(|h| h.0).collect();
    assert_eq!(values, (0..(CLIENTS * ROUNDS) as u64).collect::<Vec<_>>());
    // Tokens strictly increase in acquisition order (the order of the values read).
    for w in history.windows(2) {
        assert!(
            w[1].1 > w[0].1,
            "token went backwards: value {} had token {}, value {} had token {}",
            w[0].0,
            w[0].1,
            w[1].0,
            w[1].1
        );
    }
    assert!(etcd.keys("test/counter-lock/").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_token_write_is_rejected_and_unlock_of_lost_lock_reports_it() {
    let Some(etcd) = Etcd::start() else { return };
    let a = session(&etcd).await;
    let b = session(&etcd).await;
    let ma = Mutex::new(&a, "fence/lock").unwrap();
    let mb = Mutex::new(&b, "fence/lock").unwrap();
    let ga = ma.lock().await.unwrap();
    let token_a = ga.token();

    // A token register: a write carries its token and is applied only if no newer token
    // was seen (tokens are zero-padded so etcd's byte comparison is numeric).
    let fenced_write = |token: u64, data: &'static str| {
        let t = format!("{token:020}");
        Txn::new()
            .when([Compare::value("fence/token", CompareOp::Less, t.clone())])
            .and_then([
                TxnOp::put("fence/token", t, None),
                TxnOp::put("fence/data", data, None),
            ])
    };
    let mut kv = a.client().kv_client();
    kv.put("fence/token", format!("{:020}", 0), None)
        .await
        .unwrap();
    assert!(kv
        .txn(fenced_write(token_a.get(), "a1"))
        .await
        .unwrap()
        .succeeded());

    // A's lease is revoked behind its back (as if it expired during a pause).
    let mut admin = b.client().clone();
    admin.lease_revoke(a.lease_id()).await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(30), ga.lost())
        .await
        .expect("lost() fires after the lease is revoked");
    assert!(matches!(reason, LostReason::Revoked | LostReason::Expired));
    assert!(ga.is_lost());

    // B gets the lock with a newer token and writes.
    let gb = mb
        .lock_timeout(Duration::from_secs(30))
        .await
        .expect("B gets the lock A lost");
    assert!(gb.token() > token_a, "tokens must grow");
    assert!(kv
        .txn(fenced_write(gb.token().get(), "b1"))
        .await
        .unwrap()
        .succeeded());

    // A, not knowing, writes with its stale token: refused by the register and by the
    // ownership compare.
    assert!(!kv
        .txn(fenced_write(token_a.get(), "a2"))
        .await
        .unwrap()
        .succeeded());
    let owner_write =
        Txn::new()
            .when([ga.owner_compare()])
            .and_then([TxnOp::put("fence/data", "a3", None)]);
    assert!(!kv.txn(owner_write).await.unwrap().succeeded());
    let data = kv.get("fence/data", None).await.unwrap();
    assert_eq!(data.kvs()[0].value(), b"b1");

    // A's unlock reports the loss and does not touch B's key.
    match ga.unlock().await {
        Err(Error::LockLost { token }) => assert_eq!(token, token_a.get()),
        other => panic!("expected LockLost, got {other:?}"),
    }
    assert_eq!(etcd.keys("fence/lock/"), vec![gb.key().to_string()]);

    // A new lock on the lost session fails at once instead of hanging.
    assert!(matches!(ma.lock().await, Err(Error::SessionLost)));
    gb.unlock().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_timed_out_and_refused_acquisitions_leave_no_key() {
    let Some(etcd) = Etcd::start() else { return };
    let holder = session(&etcd).await;
    let other = session(&etcd).await;
    let mh = Mutex::new(&holder, "cancel/lock").unwrap();
    let mo = Mutex::new(&other, "cancel/lock").unwrap();
    let g = mh.lock().await.unwrap();
    let only_holder = vec![g.key().to_string()];

    // try_lock: refused, its key is gone when it returns.
    assert!(mo.try_lock().await.unwrap().is_none());
    assert_eq!(etcd.keys("cancel/lock/"), only_holder);

    // lock_timeout: times out, its key is gone when it returns.
    match mo.lock_timeout(Duration::from_millis(300)).await {
        Err(Error::Timeout(_)) => {}
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(etcd.keys("cancel/lock/"), only_holder);

    // A lock future dropped while waiting (select!/timeout around it): the waiter key is
    // removed in the background.
    let mo2 = mo.clone();
    let waiting = tokio::spawn(async move { mo2.lock().await });
    eventually(Duration::from_secs(30), "the waiter queued", || {
        etcd.keys("cancel/lock/").len() == 2
    })
    .await;
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    eventually(
        Duration::from_secs(30),
        "the cancelled waiter's key is deleted",
        || etcd.keys("cancel/lock/") == only_holder,
    )
    .await;

    // The queue still works: the other session gets the lock after the holder.
    let next = tokio::spawn(async move { mo.lock().await.map(|g| g.token()) });
    let t = g.token();
    g.unlock().await.unwrap();
    let t2 = next.await.unwrap().unwrap();
    assert!(t2 > t);
    eventually(
        Duration::from_secs(30),
        "the dropped guard is released",
        || etcd.keys("cancel/lock/").is_empty(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_waiter_opens_one_watch_and_the_queue_is_fifo() {
    let Some(etcd) = Etcd::start() else { return };
    const WAITERS: usize = 5;
    let holder = session(&etcd).await;
    let g = Mutex::new(&holder, "herd/lock")
        .unwrap()
        .lock()
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut sessions = Vec::new();
    for i in 0..WAITERS {
        let s = session(&etcd).await;
        sessions.push(s.clone());
        let tx = tx.clone();
        tokio::spawn(async move {
            let m = Mutex::new(&s, "herd/lock").unwrap();
            let g = m.lock().await.unwrap();
            tx.send((i, g.token())).unwrap();
            g.unlock().await.unwrap();
        });
        // Queue the waiters in a known order.
        eventually(Duration::from_secs(30), "waiter queued", || {
            etcd.keys("herd/lock/").len() == i + 2
        })
        .await;
    }
    g.unlock().await.unwrap();
    let mut order = Vec::new();
    for _ in 0..WAITERS {
        order.push(rx.recv().await.unwrap());
    }
    assert_eq!(
        order.iter().map(|o| o.0).collect::<Vec<_>>(),
        (0..WAITERS).collect::<Vec<_>>(),
        "waiters are served in queue order"
    );
    for (i, s) in sessions.iter().enumerate() {
        assert_eq!(
            s.watches_opened(),
            1,
            "waiter {i} opened {} watches: each waiter watches only its predecessor, once",
            s.watches_opened()
        );
    }
}

/// A session that locks and unlocks in turn writes one key name again and again (etcd keeps
/// every deleted key in its index until a compaction, and each read of the prefix steps over
/// them), while acquisitions in progress at the same time have names of their own; and a
/// waiter whose predecessor's name comes back (released and locked again by the same
/// session before the waiter's watch was registered) is not fooled by the new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_key_names_are_reused_and_waiters_tell_their_generations_apart() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let Some(etcd) = Etcd::start() else { return };
    let (sa, sb) = (session(&etcd).await, session(&etcd).await);
    let a = Mutex::new(&sa, "reuse/lock").unwrap();

    let g = a.lock().await.unwrap();
    let first = g.key().to_string();
    g.unlock().await.unwrap();
    let g = a.lock().await.unwrap();
    assert_eq!(g.key(), first, "a released name is used again");
    let (a2, key_tx) = (a.clone(), tokio::sync::oneshot::channel());
    let second = tokio::spawn(async move {
        let g = a2.lock().await.unwrap();
        let _ = key_tx.0.send(g.key().to_string());
        g.unlock().await.unwrap();
    });
    eventually(Duration::from_secs(30), "second acquisition queued", || {
        etcd.keys("reuse/lock/").len() == 2
    })
    .await;
    g.unlock().await.unwrap();
    let other = key_tx.1.await.unwrap();
    assert_ne!(other, first, "two acquisitions at once have two names");
    second.await.unwrap();

    // `a` locks and unlocks as fast as it can; `b`, on another session, queues behind `a`'s
    // key again and again. When `a` releases and locks again before `b`'s watch exists, the
    // key `b` waits for has been deleted and created again under the same name: a waiter
    // that took the new key for its predecessor would wait for a key queued behind its own,
    // which waits for it.
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let looper = {
        let (a, stop, cycles) = (a.clone(), stop.clone(), cycles.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                a.lock().await.unwrap().unlock().await.unwrap();
                cycles.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let b = Mutex::new(&sb, "reuse/lock").unwrap();
    for i in 0..40 {
        let g = b
            .lock_timeout(Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("acquisition {i} behind a reused name: {e}"));
        g.unlock().await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    looper.await.unwrap();
    assert!(
        cycles.load(Ordering::Relaxed) > 0,
        "the other session kept locking"
    );
    assert!(etcd.keys("reuse/lock/").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_fails_with_a_clear_error_never_a_hang() {
    // Empty endpoint list, zero TTL, malformed endpoint: no server needed.
    let e = Session::connect(SessionOptions::new(Vec::<String>::new()))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(e.to_string().contains("endpoint"), "{e}");
    let e = Session::connect(SessionOptions::new(["127.0.0.1:1"]).ttl(Duration::ZERO))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(e.to_string().contains("TTL"), "{e}");
    let e = Session::connect(SessionOptions::new(["http://[bad"]))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");

    // Nobody listens there: fails after the connect timeout, not later.
    let dead = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let e = Session::connect(
        SessionOptions::new([dead.as_str()]).connect_timeout(Duration::from_millis(500)),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains(&dead), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the connect timeout was not honoured: {:?}",
        started.elapsed()
    );

    let Some(etcd) = Etcd::start() else { return };
    let s = session(&etcd).await;
    assert!(matches!(
        Mutex::new(&s, "").unwrap_err(),
        Error::InvalidArgument(_)
    ));

    // Overlapping names: "ov/a" is held, "ov" sees its key and says so (and leaves no key).
    let inner = Mutex::new(&s, "ov/a").unwrap().lock().await.unwrap();
    let outer = Mutex::new(&s, "ov").unwrap();
    match outer.lock_timeout(Duration::from_secs(30)).await {
        Err(Error::OverlappingName { prefix, found }) => {
            assert_eq!(prefix, "ov/");
            assert_eq!(found, inner.key());
        }
        other => panic!("expected OverlappingName, got {other:?}"),
    }
    assert_eq!(etcd.keys("ov/"), vec![inner.key().to_string()]);
    inner.unlock().await.unwrap();

    // A closed session refuses new locks at once.
    s.close().await.unwrap();
    assert!(s.is_lost());
    assert_eq!(s.lost().await, LostReason::Closed);
    assert!(matches!(
        Mutex::new(&s, "closed").unwrap().lock().await,
        Err(Error::SessionLost)
    ));
}

#[test]
fn blocking_forms_from_plain_threads() {
    let Some(etcd) = Etcd::start() else { return };
    let total = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let o = opts(&etcd);
            let total = total.clone();
            std::thread::spawn(move || {
                let s = Session::blocking_connect(o).unwrap();
                let m = Mutex::new(&s, "blocking/lock").unwrap();
                for _ in 0..20 {
                    let g = m.blocking_lock().unwrap();
                    // Not atomic on purpose: only the lock makes this read-modify-write safe.
                    let v = total.load(std::sync::atomic::Ordering::Relaxed);
                    std::thread::yield_now();
                    total.store(v + 1, std::sync::atomic::Ordering::Relaxed);
                    g.blocking_unlock().unwrap();
                }
                s.blocking_close().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(total.load(std::sync::atomic::Ordering::Relaxed), 60);
    assert!(etcd.keys("blocking/").is_empty());
}

#[tokio::test]
#[should_panic(expected = "use the async form")]
async fn blocking_form_inside_a_runtime_panics_with_advice() {
    let _ = Session::blocking_connect(SessionOptions::new(["127.0.0.1:1"]));
}

/// The child process of `sigkill_holder_frees_the_lock_after_its_ttl`: takes the lock,
/// says so on stdout, and waits to be killed.
#[test]
#[ignore = "run as a child process by sigkill_holder_frees_the_lock_after_its_ttl"]
fn child_lock_holder() {
    let endpoint = std::env::var("GOSYNC_DIST_CHILD_ENDPOINT").expect("endpoint");
    let s = Session::blocking_connect(
        SessionOptions::new([endpoint])
            .ttl(Duration::from_secs(2))
            .connect_timeout(Duration::from_secs(20)),
    )
    .unwrap();
    let g = Mutex::new(&s, "kill/lock")
        .unwrap()
        .blocking_lock()
        .unwrap();
    println!("LOCKED {}", g.token());
    std::thread::sleep(Duration::from_secs(600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_holder_frees_the_lock_after_its_ttl() {
    let Some(etcd) = Etcd::start() else { return };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_lock_holder",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GOSYNC_DIST_CHILD_ENDPOINT", etcd.endpoint())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
            // libtest prints "test child_lock_holder ... " on the same line.
            .find_map(|l| l.split_once("LOCKED ").map(|(_, t)| t.trim().to_string()))
    })
    .await
    .unwrap()
    .expect("the child reports its lock");
    let child_token: u64 = line.parse().unwrap();

    let s = session(&etcd).await;
    let m = Mutex::new(&s, "kill/lock").unwrap();
    assert!(m.try_lock().await.unwrap().is_none(), "the child holds it");
    child.kill().unwrap();
    child.wait().unwrap();
    let g = m
        .lock_timeout(Duration::from_secs(60))
        .await
        .expect("the lock is free once the dead holder's lease expires");
    assert!(g.token().get() > child_token);
    assert_eq!(etcd.keys("kill/lock/"), vec![g.key().to_string()]);
    g.unlock().await.unwrap();
}
