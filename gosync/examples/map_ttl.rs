//! `TimedMap`: the seed's "map with expiry" (Go's `timedmap`): sessions that expire after a
//! per-entry time to live, with a callback that says why each one left.
//!
//! Expired entries are removed by one sweeper thread shared by every `TimedMap` of the process
//! (nothing to start or stop); the callback runs outside every lock, so it may use the map.
//!
//! Run: `cargo run -p gosync --example map_ttl`
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use gosync::map::{ExpiryReason, TimedMap};

fn main() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let sessions = TimedMap::with_callback(move |user: &String, token: &u64, why: ExpiryReason| {
        println!("  callback: session of {user} (token {token}) left: {why:?}");
        tx.lock().unwrap().send((user.clone(), why)).unwrap();
    });

    sessions.insert("alice".to_string(), 1, Duration::from_millis(100));
    sessions.insert("bob".to_string(), 2, Duration::from_millis(300));
    sessions.insert("carol".to_string(), 3, Duration::from_secs(60));
    println!("3 sessions, len = {}", sessions.len());

    // Bob stays active: each request refreshes his session.
    for _ in 0..3 {
        thread::sleep(Duration::from_millis(80));
        sessions.refresh("bob", Duration::from_millis(300));
    }
    println!(
        "after 240 ms: alice = {:?}, bob = {:?}",
        sessions.get("alice"),
        sessions.get("bob")
    );
    assert_eq!(sessions.get("alice"), None);
    assert_eq!(sessions.get("bob"), Some(2));

    // Carol logs in again (replaced), then logs out (removed).
    sessions.insert("carol".to_string(), 4, Duration::from_secs(60));
    assert_eq!(sessions.remove("carol"), Some(4));

    // Bob stops refreshing and expires.
    let mut events = Vec::new();
    while events.len() < 4 {
        events.push(
            rx.recv_timeout(Duration::from_secs(10))
                .expect("expiry callback"),
        );
    }
    assert!(events.contains(&("alice".to_string(), ExpiryReason::Expired)));
    assert!(events.contains(&("carol".to_string(), ExpiryReason::Replaced)));
    assert!(events.contains(&("carol".to_string(), ExpiryReason::Removed)));
    assert!(events.contains(&("bob".to_string(), ExpiryReason::Expired)));
    println!("all sessions gone, len = {}", sessions.len());
}
