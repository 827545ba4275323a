//! The seed's first map program: several goroutines write one built-in map.
//!
//! In Go it compiles, and the runtime kills the process — `fatal error: concurrent map writes` —
//! when it happens to catch two writers at once (not recoverable with `recover`); when it does
//! not catch them, the map is silently corrupted:
//!
//! ```go
//! m := make(map[int]int)
//! go func() { for { m[1] = 1 } }()
//! go func() { for { _ = m[2] } }()
//! select {}
//! ```
//!
//! In Rust the same program does not compile: a `HashMap` can only be written through
//! `&mut`, and a `&mut` cannot be shared by two threads (see the `compile_fail` example in the
//! `gosync::map` docs). This program shows the three ways the seed's chapter shares a map
//! instead, with the same four writers and one reader.
//!
//! Run: `cargo run -p gosync --example map_concurrent_write`
use std::thread;

use gosync::map::{RwMap, ShardedMap, SyncMap};

const WRITERS: u64 = 4;
const PER_WRITER: u64 = 10_000;

fn main() {
    // 1. The seed's fix: a map behind an RWMutex.
    let rw = RwMap::new();
    // 2. A sharded map (concurrent-map): writers of different shards do not wait for each other.
    let sharded = ShardedMap::new();
    // 3. sync.Map: reads never lock.
    let sync = SyncMap::new();

    thread::scope(|s| {
        for w in 0..WRITERS {
            let (rw, sharded, sync) = (&rw, &sharded, &sync);
            s.spawn(move || {
                for i in 0..PER_WRITER {
                    let k = w * PER_WRITER + i;
                    rw.set(k, i);
                    sharded.set(k, i);
                    sync.store(k, i);
                }
            });
        }
        // A reader running at the same time (the Go program's `_ = m[2]`).
        s.spawn(|| {
            let mut seen = 0;
            for k in 0..WRITERS * PER_WRITER {
                seen += usize::from(sync.load(&k).is_some());
            }
            println!("reader saw {seen} keys while the writers were running");
        });
    });

    let want = (WRITERS * PER_WRITER) as usize;
    assert_eq!(rw.len(), want);
    assert_eq!(sharded.count(), want);
    assert_eq!(sync.len(), want);
    println!(
        "RwMap: {} entries, ShardedMap: {} entries, SyncMap: {} entries",
        rw.len(),
        sharded.count(),
        sync.len()
    );
    println!("no crash, no lost write: the unsynchronised version is a compile error in Rust");
}
