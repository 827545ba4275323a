//! The notes' TryLock example: one thread holds the lock for a random while; the main thread
//! tries to take it without blocking and reports what happened.
//!
//! Run: `cargo run --example mutex_trylock`
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use gosync::Mutex;

fn main() {
    let mu = Arc::new(Mutex::new(()));
    let holder = {
        let mu = Arc::clone(&mu);
        thread::spawn(move || {
            let _g = mu.lock();
            // Hold it for 0..2 s (pseudo-random from the clock, like the notes' rand.Intn(2)).
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            thread::sleep(Duration::from_secs(u64::from(nanos % 2)));
        })
    };
    thread::sleep(Duration::from_secs(1));
    match mu.try_lock() {
        Some(_g) => println!("got the lock"),
        None => println!("can't get the lock"),
    }
    // gosync also has a bounded wait, which Go lacks:
    match mu.try_lock_for(Duration::from_secs(3)) {
        Some(_g) => println!("got the lock within 3 s"),
        None => println!("still can't get the lock after 3 s"),
    }
    holder.join().unwrap();
}
