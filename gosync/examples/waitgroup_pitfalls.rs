//! The seed's WaitGroup mistakes, one by one, and what gosync does with each.
//!
//! Run: `cargo run --example waitgroup_pitfalls`
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use gosync::WaitGroup;

/// Runs `f`, returning the panic message if it panicked.
fn caught(f: impl FnOnce()) -> Option<String> {
    let err = panic::catch_unwind(AssertUnwindSafe(f)).err()?;
    err.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
}

fn main() {
    // The expected panics below are caught and printed; keep the default hook quiet.
    panic::set_hook(Box::new(|_| {}));

    println!("1. A negative delta: Add(10); Add(-10); Add(-1)");
    let wg = WaitGroup::new();
    wg.add(10);
    wg.add(-10);
    let msg = caught(|| wg.add(-1));
    println!(
        "   Go: panic. gosync: panic {msg:?}; the counter is left at {}",
        wg.count()
    );
    assert_eq!(msg.as_deref(), Some("sync: negative WaitGroup counter"));

    println!("2. One Done too many: Add(1); Done(); Done()");
    wg.add(1);
    wg.done();
    let msg = caught(|| wg.done());
    println!(
        "   Go: panic. gosync: panic {msg:?}; still usable (count {})",
        wg.count()
    );
    assert_eq!(msg.as_deref(), Some("sync: negative WaitGroup counter"));

    println!("3. Add inside the task: Wait may run before any Add and return at once");
    let wg = Arc::new(WaitGroup::new());
    let finished = Arc::new(AtomicUsize::new(0));
    for ms in [100u64, 110, 120, 130] {
        let (wg, finished) = (Arc::clone(&wg), Arc::clone(&finished));
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(ms));
            wg.add(1); // too late: main may already have passed wait()
            finished.fetch_add(1, Ordering::SeqCst);
            wg.done();
        });
    }
    wg.wait();
    println!(
        "   Go and gosync alike: wait() returned with {} of 4 tasks finished (no way to detect it).",
        finished.load(Ordering::SeqCst)
    );
    println!("   The fix, made the easy path: wg.go(f) adds before it spawns.");
    let wg = Arc::new(WaitGroup::new());
    let finished = Arc::new(AtomicUsize::new(0));
    for ms in [100u64, 110, 120, 130] {
        let finished = Arc::clone(&finished);
        wg.go(move || {
            thread::sleep(Duration::from_millis(ms));
            finished.fetch_add(1, Ordering::SeqCst);
        });
    }
    wg.wait();
    println!(
        "   with wg.go: {} of 4 finished when wait() returned",
        finished.load(Ordering::SeqCst)
    );
    assert_eq!(finished.load(Ordering::SeqCst), 4);
    thread::sleep(Duration::from_millis(50)); // let the late tasks of the bad version finish

    println!("4. Reuse before the previous Wait returned: Done() then Add(1) while a waiter wakes");
    let mut msg = None;
    for _ in 0..1000 {
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let w = Arc::clone(&wg);
        let waiter = thread::spawn(move || caught(|| w.wait()));
        while wg.waiters() == 0 {
            thread::yield_now();
        }
        wg.done();
        wg.add(1); // the next round starts before the woken wait() has returned
        msg = waiter.join().unwrap();
        wg.done();
        if msg.is_some() {
            break;
        }
    }
    println!("   Go: the woken Wait panics (when it notices). gosync: the same, {msg:?}");
    println!("   (gosync's wait_timeout and waiters() also let a round end be observed safely)");

    println!("5. A forgotten Done: Wait hangs forever in Go");
    let wg = WaitGroup::new();
    wg.add(1);
    thread::scope(|s| {
        s.spawn(|| { /* forgot wg.done() */ });
    });
    let reached_zero = wg.wait_timeout(Duration::from_millis(50));
    println!(
        "   gosync: wait_timeout returns {reached_zero} (count still {}) instead of hanging;",
        wg.count()
    );
    wg.done();
    println!("   and wg.guard() / wg.go(f) call done on drop, even when the task panics:");
    let wg = Arc::new(WaitGroup::new());
    let task = wg.go(|| panic!("task failed"));
    wg.wait();
    println!(
        "   wait() returned after a panicking task; its panic: {:?}",
        {
            let e = task.join().unwrap_err();
            e.downcast_ref::<&str>().copied()
        }
    );

    println!("6. Copying a WaitGroup after first use (go vet's noCopy)");
    println!("   gosync: WaitGroup is neither Copy nor Clone. `let copy = *wg;` does not compile;");
    println!("   moving it into a struct is a move, so the old name cannot be used afterwards:");
    struct TestStruct {
        wait: WaitGroup,
    }
    let w = WaitGroup::new();
    w.add(1);
    let t = TestStruct { wait: w }; // a move, not a copy: `w.done()` here would not compile
    t.wait.done();
    t.wait.wait();
    println!("   Finished (count {})", t.wait.count());
}
