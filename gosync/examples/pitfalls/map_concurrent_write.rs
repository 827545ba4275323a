//! Trap: writing a plain map from several goroutines (`fatal error: concurrent map writes`).
//!
//! Run: `cargo run -p gosync --example pitfall_map_concurrent_write`
#[path = "common.rs"]
mod common;

use std::thread;

use gosync::map::SyncMap;

fn main() {
    common::trap(
        "several goroutines writing one built-in map",
        "fatal error: concurrent map writes (when the runtime happens to notice), or corruption",
    );
    // With std's HashMap the same program does not compile: a `&mut HashMap` cannot be shared
    // between threads (compile_fail doctest in gosync::pitfalls). A concurrent map can be:
    let m = SyncMap::new();
    thread::scope(|s| {
        for t in 0..4u32 {
            let m = &m;
            s.spawn(move || {
                for i in 0..1000u32 {
                    m.store(t * 1000 + i, i);
                }
            });
        }
    });
    assert_eq!(m.len(), 4000);
    println!("4 threads stored {} entries", m.len());
    common::gosync(
        "the unsynchronised program does not compile; SyncMap, ShardedMap or RwMap share safely",
    );
}
