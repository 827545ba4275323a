//! TimedMap: expiry, callbacks with their reasons, refresh, and the sweeper's lifecycle.
//! Timing assertions are one-sided with generous limits (the machine is small and noisy).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gosync::map::{EvictionPolicy, ExpiryReason, TimedMap};

type Events = Arc<Mutex<Vec<(String, u32, ExpiryReason)>>>;

fn recording_map() -> (TimedMap<String, u32>, Events) {
    let events: Events = Arc::default();
    let sink = Arc::clone(&events);
    let m = TimedMap::with_callback(move |k: &String, v: &u32, why| {
        sink.lock().unwrap().push((k.clone(), *v, why));
    });
    (m, events)
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn entries_expire_and_the_sweeper_reports_them() {
    let (m, events) = recording_map();
    m.insert("short".into(), 1, Duration::from_millis(30));
    m.insert("long".into(), 2, Duration::from_secs(3600));
    assert_eq!(m.get("short"), Some(1));
    wait_until("expiry callback", || !events.lock().unwrap().is_empty());
    assert_eq!(
        events.lock().unwrap().as_slice(),
        &[("short".to_string(), 1, ExpiryReason::Expired)]
    );
    assert_eq!(m.get("short"), None);
    assert_eq!(m.get("long"), Some(2));
    assert_eq!(m.len(), 1);
}

#[test]
fn expired_entries_are_invisible_before_the_sweep() {
    let m = TimedMap::new();
    m.insert(1, "x", Duration::ZERO);
    // Deadline == insert time: already expired for every read, swept or not.
    assert_eq!(m.get(&1), None);
    assert!(!m.contains_key(&1));
    assert_eq!(m.len(), 0);
    assert!(!m.refresh(&1, Duration::from_secs(1)));
}

#[test]
fn remove_and_replace_report_their_reasons() {
    let (m, events) = recording_map();
    assert_eq!(m.insert("k".into(), 1, Duration::from_secs(60)), None);
    assert_eq!(m.insert("k".into(), 2, Duration::from_secs(60)), Some(1));
    assert_eq!(m.remove("k"), Some(2));
    assert_eq!(m.remove("k"), None);
    m.insert("a".into(), 3, Duration::from_secs(60));
    m.clear();
    assert_eq!(
        events.lock().unwrap().as_slice(),
        &[
            ("k".to_string(), 1, ExpiryReason::Replaced),
            ("k".to_string(), 2, ExpiryReason::Removed),
            ("a".to_string(), 3, ExpiryReason::Removed),
        ]
    );
    assert!(m.is_empty());
}

#[test]
fn refresh_extends_the_deadline_without_duplicate_expiry() {
    let (m, events) = recording_map();
    m.insert("k".into(), 1, Duration::from_millis(40));
    for _ in 0..5 {
        assert!(m.refresh("k", Duration::from_secs(3600)));
    }
    let ttl = m.ttl("k").unwrap();
    assert!(
        ttl > Duration::from_secs(3000),
        "ttl after refresh: {ttl:?}"
    );
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(m.get("k"), Some(1));
    assert!(events.lock().unwrap().is_empty());
    // Shortening works too, and the entry expires exactly once.
    assert!(m.refresh("k", Duration::from_millis(10)));
    wait_until("expiry after shortening", || {
        !events.lock().unwrap().is_empty()
    });
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(events.lock().unwrap().len(), 1);
}

#[test]
fn an_earlier_deadline_wakes_the_sleeping_sweeper() {
    let (m, events) = recording_map();
    m.insert("late".into(), 1, Duration::from_secs(3600));
    std::thread::sleep(Duration::from_millis(20)); // the sweeper now sleeps for an hour
    m.insert("soon".into(), 2, Duration::from_millis(20));
    wait_until("early expiry", || !events.lock().unwrap().is_empty());
    assert_eq!(events.lock().unwrap()[0].0, "soon");
}

#[test]
fn callbacks_may_call_the_map() {
    let (tx, rx) = mpsc::channel();
    let m = Arc::new_cyclic(|weak: &std::sync::Weak<TimedMap<u32, u32>>| {
        let weak = weak.clone();
        let tx = Mutex::new(tx);
        TimedMap::with_callback(move |k: &u32, _v: &u32, why| {
            if let Some(m) = weak.upgrade() {
                // No lock is held here, so this cannot deadlock.
                let n = m.len();
                tx.lock().unwrap().send((*k, why, n)).unwrap();
            }
        })
    });
    m.insert(1, 1, Duration::from_millis(10));
    m.insert(2, 2, Duration::from_secs(3600));
    let (k, why, _) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("no callback");
    assert_eq!((k, why), (1, ExpiryReason::Expired));
    m.remove(&2);
    let (k, why, n) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("no callback");
    assert_eq!((k, why, n), (2, ExpiryReason::Removed, 0));
}

#[test]
fn dropping_the_map_stops_the_sweeper_and_frees_everything() {
    let value = Arc::new(());
    let m = TimedMap::new();
    for i in 0..100 {
        m.insert(i, Arc::clone(&value), Duration::from_secs(3600));
    }
    drop(m); // joins the sweeper, which owned a handle to the shared state
    assert_eq!(Arc::strong_count(&value), 1);
}

#[test]
fn concurrent_readers_and_writers() {
    let m = Arc::new(TimedMap::new());
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                for i in 0..2000u32 {
                    let k = (t * 7 + i) % 64;
                    match i % 4 {
                        0 => drop(m.insert(k, i, Duration::from_millis(u64::from(i % 50)))),
                        1 => drop(m.remove(&k)),
                        2 => drop(m.refresh(&k, Duration::from_millis(5))),
                        _ => drop(m.get(&k)),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    wait_until("everything expired", || m.is_empty());
}

#[test]
fn duration_max_means_never_expires() {
    let m = TimedMap::new();
    // Far beyond what the clock can represent: saturates to "never expires", no panic.
    assert_eq!(m.insert(1, "forever", Duration::MAX), None);
    assert_eq!(m.get(&1), Some("forever"));
    assert_eq!(m.ttl(&1), Some(Duration::MAX));
    m.insert(2, "soon", Duration::from_secs(60));
    assert!(m.refresh(&2, Duration::MAX));
    assert_eq!(m.ttl(&2), Some(Duration::MAX));
    assert_eq!(m.len(), 2);
    // And back to a finite time to live.
    assert!(m.refresh(&2, Duration::from_millis(1)));
    wait_until("the refreshed entry to expire", || m.get(&2).is_none());
    assert_eq!(m.get(&1), Some("forever"));
}

#[test]
fn none_means_never_expires() {
    let m = TimedMap::new();
    assert_eq!(m.insert_with_ttl(1, 10, None), None);
    assert_eq!(m.insert_with_ttl(2, 20, Some(Duration::ZERO)), None);
    assert_eq!(m.get(&1), Some(10));
    assert_eq!(m.get(&2), None, "a zero time to live is already expired");
    assert_eq!(m.ttl(&1), Some(Duration::MAX));
    m.insert(3, 30, Duration::from_millis(1));
    assert!(m.refresh_with_ttl(&3, None), "refresh to never expire");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(m.get(&3), Some(30));
    assert_eq!(m.len(), 2);
}

#[test]
fn a_panicking_callback_does_not_break_the_caller_or_the_map() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&calls);
    let m = TimedMap::with_callback(move |k: &u32, _v: &u32, why| {
        sink.lock().unwrap().push((*k, why));
        panic!("listener bug on key {k}");
    });
    // Every operation that reports an entry completes normally despite the listener's panic.
    m.insert(1, 1, Duration::from_secs(60));
    assert_eq!(m.insert(1, 2, Duration::from_secs(60)), Some(1)); // Replaced
    assert_eq!(m.remove(&1), Some(2)); // Removed
    m.insert(2, 2, Duration::from_secs(60));
    m.insert(3, 3, Duration::from_secs(60));
    m.clear(); // two Removed: both reported even though the first one panics
    assert_eq!(calls.lock().unwrap().len(), 4);
    // The map is still usable, and the sweeper still expires entries after panics.
    m.insert(4, 4, Duration::from_millis(5));
    m.insert(5, 5, Duration::from_millis(10));
    wait_until("both expiries reported", || {
        calls.lock().unwrap().len() == 6
    });
    let got: Vec<_> = calls.lock().unwrap()[4..].to_vec();
    assert_eq!(
        got,
        [(4, ExpiryReason::Expired), (5, ExpiryReason::Expired)]
    );
    m.insert(6, 6, Duration::from_secs(60));
    assert_eq!(m.get(&6), Some(6));
    assert_eq!(m.len(), 1);
}

/// Names of this process's threads (Linux truncates them to 15 bytes).
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
                .map(|s| s.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn many_maps_share_one_sweeper_thread() {
    let maps: Vec<TimedMap<u32, u32>> = (0..200).map(|_| TimedMap::new()).collect();
    for (i, m) in maps.iter().enumerate() {
        m.insert(1, 1, Duration::from_secs(3600 + i as u64));
        m.insert(2, 2, Duration::from_millis(5));
    }
    wait_until("every map's short entry to expire", || {
        maps.iter().all(|m| m.get(&2).is_none())
    });
    let sweepers = thread_names()
        .iter()
        .filter(|n| n.starts_with("gosync-timedmap"))
        .count();
    assert_eq!(sweepers, 1, "threads: {:?}", thread_names());
    wait_until("the sweeper to remove every expired entry", || {
        maps.iter().all(|m| m.len() == 1)
    });
}

#[test]
fn expiry_is_reported_on_the_sweeper_thread() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let m = TimedMap::with_callback(move |_k: &u32, _v: &u32, why| {
        let name = std::thread::current().name().map(str::to_string);
        tx.lock().unwrap().send((why, name)).unwrap();
    });
    m.insert(1, 1, Duration::from_millis(5));
    let (why, name) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(why, ExpiryReason::Expired);
    assert_eq!(name.as_deref(), Some("gosync-timedmap-sweeper"));
    // An insert over an expired, not yet swept entry reports it on the caller's thread.
    m.insert(2, 2, Duration::ZERO);
    m.insert(2, 3, Duration::from_secs(60));
    let (why, name) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(why, ExpiryReason::Expired);
    assert_eq!(name, std::thread::current().name().map(str::to_string));
}

#[test]
fn a_listener_that_uses_the_map_does_not_keep_it_alive() {
    let value = Arc::new(());
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let m = TimedMap::builder()
        .eviction_listener_with_map(move |map: &TimedMap<u32, Arc<()>>, k, _v, why| {
            // The listener may call the map it is told about (no lock is held).
            tx.lock().unwrap().send((*k, why, map.len())).unwrap();
        })
        .build();
    m.insert(1, Arc::clone(&value), Duration::from_millis(5));
    m.insert(2, Arc::clone(&value), Duration::from_secs(3600));
    let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got, (1, ExpiryReason::Expired, 1));
    assert_eq!(m.remove(&2).map(|_| ()), Some(()));
    assert_eq!(rx.recv().unwrap(), (2, ExpiryReason::Removed, 0));
    m.insert(3, Arc::clone(&value), Duration::from_secs(3600));
    drop(m);
    // The shared sweeper thread may hold the map for a moment (it upgrades its weak handle
    // to handle a wake-up), so the last handle may drop there; with a cycle through the
    // listener it would never drop.
    let start = std::time::Instant::now();
    while Arc::strong_count(&value) != 1 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the map was not freed ({} handles to the value left)",
            Arc::strong_count(&value)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn bounded_map_never_exceeds_its_capacity_and_reports_evictions() {
    for policy in [EvictionPolicy::TinyLfu, EvictionPolicy::Lru] {
        let evicted = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&evicted);
        let m = TimedMap::builder()
            .max_capacity(50)
            .eviction_policy(policy)
            .eviction_listener(move |k: &u32, v: &u32, why| {
                assert_eq!(why, ExpiryReason::Evicted);
                assert_eq!(k, v);
                sink.lock().unwrap().push(*k);
            })
            .build();
        for k in 0..500u32 {
            m.insert(k, k, Duration::from_secs(3600));
            assert_eq!(m.get(&k), Some(k), "{policy:?}: a fresh insert is visible");
            assert!(m.len() <= 50, "{policy:?}: len {} > 50", m.len());
        }
        let evicted = evicted.lock().unwrap().clone();
        assert_eq!(
            evicted.len() + m.len(),
            500,
            "{policy:?}: every key accounted once"
        );
        let mut unique = evicted.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), evicted.len(), "{policy:?}: reported twice");
        for k in evicted {
            assert_eq!(m.get(&k), None, "{policy:?}: evicted {k} still present");
        }
    }
}

#[test]
fn lru_evicts_the_least_recently_used() {
    let m = TimedMap::builder()
        .max_capacity(3)
        .shards(1)
        .eviction_policy(EvictionPolicy::Lru)
        .build();
    for k in ["a", "b", "c"] {
        m.insert(k, 0, Duration::from_secs(60));
    }
    assert_eq!(m.get("a"), Some(0)); // b is now the least recently used
    m.insert("d", 0, Duration::from_secs(60));
    assert_eq!(m.get("b"), None);
    for k in ["a", "c", "d"] {
        assert_eq!(m.get(k), Some(0), "{k}");
    }
}

#[test]
fn tiny_lfu_keeps_popular_keys_through_a_scan() {
    let hot_hits = |policy| {
        let m = TimedMap::builder()
            .max_capacity(200)
            .shards(1)
            .eviction_policy(policy)
            .build();
        // 100 popular keys, used often.
        for _ in 0..20 {
            for k in 0..100u32 {
                if m.get(&k).is_none() {
                    m.insert(k, k, Duration::from_secs(60));
                }
            }
        }
        // A scan of 10 000 keys, each used once (a cache-aside miss + insert).
        for k in 1_000..11_000u32 {
            if m.get(&k).is_none() {
                m.insert(k, k, Duration::from_secs(60));
            }
        }
        (0..100u32).filter(|k| m.get(k).is_some()).count()
    };
    let lfu = hot_hits(EvictionPolicy::TinyLfu);
    let lru = hot_hits(EvictionPolicy::Lru);
    assert!(lfu >= 95, "TinyLFU kept {lfu} of 100 popular keys");
    assert_eq!(lru, 0, "LRU is expected to lose them all to the scan");
}

#[test]
fn a_full_map_drops_expired_entries_before_evicting_live_ones() {
    let (m, events) = recording_map_bounded(2);
    m.insert("short".into(), 1, Duration::from_millis(1));
    m.insert("long".into(), 2, Duration::from_secs(3600));
    std::thread::sleep(Duration::from_millis(5));
    m.insert("new".into(), 3, Duration::from_secs(3600));
    assert_eq!(m.get("long"), Some(2));
    assert_eq!(m.get("new"), Some(3));
    wait_until("the expiry report", || !events.lock().unwrap().is_empty());
    assert_eq!(
        events.lock().unwrap().as_slice(),
        &[("short".to_string(), 1, ExpiryReason::Expired)]
    );
}

fn recording_map_bounded(cap: usize) -> (TimedMap<String, u32>, Events) {
    let events: Events = Arc::default();
    let sink = Arc::clone(&events);
    let m = TimedMap::builder()
        .max_capacity(cap)
        .shards(1)
        .eviction_listener(move |k: &String, v: &u32, why| {
            sink.lock().unwrap().push((k.clone(), *v, why));
        })
        .build();
    (m, events)
}

#[test]
fn bounded_concurrent_writers_account_for_every_entry() {
    let reports = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sink = Arc::clone(&reports);
    let m = Arc::new(
        TimedMap::builder()
            .max_capacity(100)
            .eviction_listener(move |_k: &u64, _v: &u64, why| {
                assert!(matches!(
                    why,
                    ExpiryReason::Evicted | ExpiryReason::Replaced
                ));
                sink.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
            .build(),
    );
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                let mut x = t + 1;
                for _ in 0..5_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = x % 1_000;
                    m.insert(k, k, Duration::from_secs(3600));
                    assert!(m.len() <= 100);
                    std::hint::black_box(m.get(&(x % 997)));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let reported = reports.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        reported + m.len(),
        20_000,
        "every insert left a trace exactly once"
    );
}

#[test]
fn retain_and_remove_expired() {
    let (m, events) = recording_map();
    for k in 0..10u32 {
        m.insert(k.to_string(), k, Duration::from_secs(60));
    }
    m.insert("gone".into(), 99, Duration::ZERO);
    m.retain(|_, v| *v % 2 == 0);
    assert_eq!(m.len(), 5);
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev.len(), 6);
    assert!(ev.contains(&("gone".to_string(), 99, ExpiryReason::Expired)));
    assert_eq!(
        ev.iter().filter(|e| e.2 == ExpiryReason::Removed).count(),
        5
    );
    m.insert("x".into(), 1, Duration::ZERO);
    assert_eq!(m.remove_expired(), 1);
    assert_eq!(m.len(), 5);
}
