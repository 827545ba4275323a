//! User code the maps call (`Drop`, `Clone`) never runs under a lock a re-entrant call would
//! need, and a panic in it never leaks an entry.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use gosync::map::{ShardedMap, SyncMap};

/// Runs `f` on another thread and fails (instead of hanging) if it does not finish in time.
fn finishes(what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: deadlocked (still running after 10 s)")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

type Cell = Arc<OnceLock<Arc<ShardedMap<Probe, Probe>>>>;

/// A key or value whose `Drop` reads the map it lives in (the map has one shard, so every key
/// shares the lock). Equality and hashing look at `id` only.
#[derive(Clone)]
struct Probe {
    id: u32,
    map: Option<Cell>,
}

impl PartialEq for Probe {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id
    }
}
impl Eq for Probe {}
impl std::hash::Hash for Probe {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.id.hash(h)
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if let Some(m) = self.map.as_ref().and_then(|c| c.get()) {
            // Needs the shard's read lock.
            let _ = m.has(&Probe { id: 999, map: None });
        }
    }
}

fn reentrant_map() -> (Arc<ShardedMap<Probe, Probe>>, impl Fn(u32) -> Probe) {
    let cell: Cell = Arc::new(OnceLock::new());
    let m = Arc::new(ShardedMap::with_shards(1));
    cell.set(Arc::clone(&m)).ok().unwrap();
    let make = move |id| Probe {
        id,
        map: Some(Arc::clone(&cell)),
    };
    (m, make)
}

#[test]
fn sharded_pop_drops_the_key_and_value_outside_the_lock() {
    finishes("ShardedMap::pop / remove", || {
        let (m, make) = reentrant_map();
        m.set(make(1), make(1));
        drop(m.pop(&make(1)));
        m.set(make(2), make(2));
        assert!(m.remove(&make(2)));
    });
}

#[test]
fn sharded_remove_if_drops_outside_the_lock() {
    finishes("ShardedMap::remove_if", || {
        let (m, make) = reentrant_map();
        m.set(make(1), make(1));
        assert!(m.remove_if(&make(1), |_| true));
    });
}

#[test]
fn sharded_upsert_and_set_drop_outside_the_lock() {
    finishes("ShardedMap::upsert / set / set_if_absent", || {
        let (m, make) = reentrant_map();
        m.set(make(1), make(1));
        // `f` keeps the new value, so the old one is dropped by the map.
        drop(m.upsert(make(1), make(10), |_old, new| new));
        drop(m.set(make(1), make(11))); // the map keeps its key: the new key is dropped
        assert!(!m.set_if_absent(make(1), make(12)));
        m.clear();
    });
}

static LIVE: AtomicIsize = AtomicIsize::new(0);
static CLONE_PANICS: AtomicBool = AtomicBool::new(false);
/// Serialises the tests that use `LIVE`.
static COUNTED: Mutex<()> = Mutex::new(());

/// Counts live instances; its `Clone` panics while `CLONE_PANICS` is set.
#[derive(PartialEq, Debug)]
struct Counted(u32);

impl Counted {
    fn new(v: u32) -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Counted(v)
    }
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        if CLONE_PANICS.load(Ordering::SeqCst) {
            panic!("Counted::clone fails on purpose");
        }
        Counted::new(self.0)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn sync_map_swap_does_not_leak_when_clone_panics() {
    let _serial = COUNTED.lock().unwrap_or_else(|e| e.into_inner());
    {
        let m = SyncMap::new();
        m.store(1, Counted::new(1));
        CLONE_PANICS.store(true, Ordering::SeqCst);
        // The swap unlinks the old node, then clones its value for the caller: that panics.
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.swap(1, Counted::new(2))));
        CLONE_PANICS.store(false, Ordering::SeqCst);
        assert!(r.is_err(), "the clone was supposed to panic");
        assert_eq!(
            m.load(&1).map(|c| c.0),
            Some(2),
            "the swap itself took effect"
        );
    }
    // The map and everything it retired are gone: no instance may be left.
    assert_eq!(LIVE.load(Ordering::SeqCst), 0, "a value leaked");
}

/// `range`'s callback deletes (and overwrites) what it visits, past several reclamation
/// batches, and keeps reading the node it was handed afterwards. Memory safety here rests on
/// every retire being deferred to the retiring thread's guard (the AddressSanitizer run of
/// this test would report a use-after-free otherwise).
#[test]
fn sync_map_range_may_delete_what_it_visits() {
    let m = SyncMap::new();
    for i in 0..10_000u32 {
        m.store(i, format!("value {i}"));
    }
    let mut seen = 0;
    m.range(|k, v| {
        if k % 2 == 0 {
            m.delete(k);
        } else {
            m.store(*k, String::from("replaced"));
        }
        // `v` belongs to a node that was just unlinked and retired by this very thread.
        assert_eq!(v, &format!("value {k}"));
        seen += 1;
        true
    });
    assert_eq!(seen, 10_000);
    assert_eq!(m.len(), 5_000);
    assert_eq!(m.load(&1).as_deref(), Some("replaced"));
}
