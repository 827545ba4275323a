//! A cache stampede tamed: 1000 readers miss the cache at the same moment; with SingleFlight
//! the expensive load runs once and all of them share its result.
//!
//! Run: `cargo run -p gosync --example singleflight_cache`

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use gosync::x::SingleFlight;

struct Cache {
    data: RwLock<HashMap<String, Arc<String>>>,
    flight: SingleFlight<String, Arc<String>>,
    loads: AtomicUsize,
}

impl Cache {
    fn get(&self, key: &str) -> (Arc<String>, bool) {
        if let Some(v) = self.data.read().unwrap().get(key) {
            return (v.clone(), false);
        }
        // Miss: only one caller per key loads; the others wait for its result.
        let (v, shared) = self.flight.run(key.to_string(), || {
            // A caller that missed just before the previous load finished finds it here.
            if let Some(v) = self.data.read().unwrap().get(key) {
                return v.clone();
            }
            let v = Arc::new(self.load_from_database(key));
            self.data
                .write()
                .unwrap()
                .insert(key.to_string(), v.clone());
            v
        });
        (v, shared)
    }

    fn load_from_database(&self, key: &str) -> String {
        self.loads.fetch_add(1, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(100)); // a slow query
        format!("profile of {key}")
    }
}

fn main() {
    const READERS: usize = 1000;
    let cache = Cache {
        data: RwLock::new(HashMap::new()),
        flight: SingleFlight::new(),
        loads: AtomicUsize::new(0),
    };
    let start = Barrier::new(READERS);
    let shared = AtomicUsize::new(0);
    let t0 = Instant::now();
    thread::scope(|s| {
        for _ in 0..READERS {
            s.spawn(|| {
                start.wait(); // everybody misses at once
                let (v, was_shared) = cache.get("user:42");
                assert_eq!(*v, "profile of user:42");
                if was_shared {
                    shared.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    let loads = cache.loads.load(Ordering::SeqCst);
    println!(
        "{READERS} readers, {loads} database load(s), {} shared the in-flight result, {:?}",
        shared.load(Ordering::SeqCst),
        t0.elapsed()
    );
    assert_eq!(loads, 1, "the stampede hit the database {loads} times");
}
