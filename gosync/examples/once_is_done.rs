//! The seed's `5_extend_once.go`: Go's `Once` cannot say whether it has run, so the seed adds
//! an `inited` flag next to it. gosync's `Once::is_done` is that flag, built in.
//!
//! Run: `cargo run --example once_is_done`
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use gosync::Once;

#[derive(Debug, PartialEq)]
struct NotYetInitedError;

#[derive(Default)]
struct AnimalStore {
    once: Once,
    cats: AtomicU64,
}

impl AnimalStore {
    /// May be called concurrently; the setup runs once.
    fn init(&self) {
        self.once.call_once(|| {
            // longOperationSetupDbOpenFilesQueuesEtc()
            thread::sleep(Duration::from_millis(100));
            self.cats.store(3, Ordering::Relaxed);
        });
    }

    /// Another goroutine's view: refuses to work until `init` has finished. No extra flag:
    /// `is_done` is an acquire load, so everything `init` wrote is visible once it is true.
    fn count_of_cats(&self) -> Result<u64, NotYetInitedError> {
        if !self.once.is_done() {
            return Err(NotYetInitedError);
        }
        Ok(self.cats.load(Ordering::Relaxed))
    }
}

fn main() {
    let store = Arc::new(AnimalStore::default());
    println!("before init: {:?}", store.count_of_cats());
    assert_eq!(store.count_of_cats(), Err(NotYetInitedError));

    let s = Arc::clone(&store);
    let initializer = thread::spawn(move || s.init());
    println!("while init runs: {:?}", store.count_of_cats());

    initializer.join().unwrap();
    store.init(); // a no-op now
    println!("after init: {:?}", store.count_of_cats());
    assert_eq!(store.count_of_cats(), Ok(3));
}
