//! The seed's RWMutex counter: ten readers read a counter all the time, one writer increments
//! it now and then. Reads run in parallel; the writer still gets in promptly, because once it
//! asks for the lock new readers wait (write-preferring, as in Go).
//!
//! Run: `cargo run -p gosync --example rwmutex_counter`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync::RwMutex;

/// Go's `Counter { mu sync.RWMutex; count uint64 }`: the lock owns the count.
#[derive(Default)]
struct Counter {
    count: RwMutex<u64>,
}

impl Counter {
    fn incr(&self) {
        *self.count.write() += 1;
    }
    fn count(&self) -> u64 {
        *self.count.read()
    }
}

fn main() {
    let counter = Arc::new(Counter::default());
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));

    let readers: Vec<_> = (0..10)
        .map(|_| {
            let (counter, stop, reads) = (counter.clone(), stop.clone(), reads.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = counter.count();
                    reads.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();

    // One writer: five increments, 100 ms apart (the seed's writer loops forever, 1 s apart).
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        counter.incr();
        worst = worst.max(t.elapsed());
        println!(
            "writer: count = {} (readers so far: {} reads, {} holding now)",
            counter.count(),
            reads.load(Ordering::Relaxed),
            counter.count.readers()
        );
        thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(counter.count(), 5);
    println!(
        "done: count = 5 after {} reads; the slowest write waited {worst:?} for the readers",
        reads.load(Ordering::Relaxed)
    );
}
