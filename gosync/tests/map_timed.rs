//! TimedMap: expiry, callbacks with their reasons, refresh, and the sweeper's lifecycle.
//! Timing assertions are one-sided with generous limits (the machine is small and noisy).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gosync::map::{ExpiryReason, TimedMap};

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
