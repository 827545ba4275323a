//! The seed's `RWMap`: a map guarded by an RWMutex, with `Get`, `Set`, `Delete`, `Len` and
//! `Each` — here [`gosync::map::RwMap`].
//!
//! Readers share the lock; a writer excludes everyone. Unlike the Go version, `for_each` calls
//! its callback after releasing the lock, so the callback may write to the map (in Go, calling
//! `Set` from `Each` deadlocks on the non-reentrant RWMutex).
//!
//! Run: `cargo run -p gosync --example map_safe`
use std::sync::Arc;
use std::thread;

use gosync::map::RwMap;

fn main() {
    let m = Arc::new(RwMap::new());

    // Ten writers, each setting its own hundred keys.
    let writers: Vec<_> = (0..10)
        .map(|w| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                for i in 0..100 {
                    m.set(w * 100 + i, i * i);
                }
            })
        })
        .collect();
    // Readers running alongside.
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let m = Arc::clone(&m);
            thread::spawn(move || (0..1000).filter(|k| m.get(k).is_some()).count())
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    for (i, r) in readers.into_iter().enumerate() {
        println!(
            "reader {i} found {} keys while writers ran",
            r.join().unwrap()
        );
    }
    println!("len = {}", m.len());
    assert_eq!(m.len(), 1000);
    assert_eq!(m.get(&307), Some(49));

    // Each: delete the odd squares from inside the callback (no deadlock: the lock is free).
    m.for_each(|k, v| {
        if v % 2 == 1 {
            m.delete(k);
        }
        true
    });
    println!(
        "after deleting odd values from inside for_each: len = {}",
        m.len()
    );
    assert_eq!(m.len(), 500);
}
