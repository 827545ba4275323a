//! The traps Go's sync documentation and the seed notes warn about, and what gosync does with
//! each: a compile error, a panic with Go's message, or a report from the
//! [deadlock detector](crate::detect).
//!
//! Every trap has a runnable program: `cargo run -p gosync --example pitfall_NAME` (add
//! `--features deadlock-detection` for the detector's reports). The traps that cannot compile
//! are kept below as `compile_fail` doctests, each beside the correct form, which must compile,
//! so that a test fails if either stops being true.
//!
//! | trap | Go | gosync | example |
//! |---|---|---|---|
//! | Mutex: Lock/Unlock not paired | hang, or `fatal error: sync: unlock of unlocked mutex` | the guard unlocks once on every path; no `unlock` to call twice (compile error) | `pitfall_mutex_unpaired` |
//! | Mutex: copying a locked mutex | compiles, `go vet` warns | not `Clone`/`Copy`: compile error | `pitfall_mutex_copy` |
//! | Mutex: re-locking on the same goroutine | hangs | detector: re-lock report; or `ReentrantMutex` | `pitfall_mutex_reentrant` |
//! | Mutex: lock-order deadlock | hangs when runs overlap | detector: inversion report before blocking, even without overlap | `pitfall_mutex_lock_order` |
//! | RWMutex: copying | compiles, `go vet` warns | compile error | `pitfall_rwmutex_copy` |
//! | RWMutex: write lock inside a read/write lock | hangs | detector: re-lock report | `pitfall_rwmutex_reentrant` |
//! | RWMutex: recursive read while a writer waits (factorial) | hangs | detector: recursive-read report | `pitfall_rwmutex_factorial` |
//! | RWMutex: unlock of unlocked | `fatal error: sync: RUnlock of unlocked RWMutex` | compile error | `pitfall_rwmutex_unlock_unlocked` |
//! | WaitGroup: negative counter | `panic: sync: negative WaitGroup counter` | the same panic, counter left usable | `pitfall_waitgroup_negative` |
//! | WaitGroup: Add inside the task (after Wait) | Wait returns early | same race, undetectable; `WaitGroup::go` adds before it spawns | `pitfall_waitgroup_add_after_wait` |
//! | WaitGroup: reuse before Wait returned | `panic: sync: WaitGroup is reused before previous Wait has returned` | the same panic | `pitfall_waitgroup_reuse` |
//! | Cond: Wait without holding the lock | `fatal error: sync: unlock of unlocked mutex` | `wait` takes the guard: compile error | `pitfall_cond_wait_without_lock` |
//! | Cond: a single Wait without re-checking | proceeds with the condition false | `wait_while` re-checks for you | `pitfall_cond_single_wait` |
//! | Once: Do inside its own function | deadlock | panic naming the problem | `pitfall_once_recursion` |
//! | Once: failed initialisation | counts as done, never retried | `TryOnce` retries; `OnceValues` keeps the error | `pitfall_once_failed_init` |
//! | map: concurrent writes to a built-in map | `fatal error: concurrent map writes` | compile error; `SyncMap` and friends | `pitfall_map_concurrent_write` |
//! | Pool: keeping oversized buffers (Go issue 23199) | memory stays pinned | `BufferPool` drops them | `pitfall_pool_oversized` |
//!
//! # Mutex and RwMutex cannot be copied
//!
//! Each block below names the error it must fail with (checked when the doc-tests run on a
//! nightly toolchain, as CI does), so it cannot pass by failing for another reason.
//!
//! ```compile_fail,E0599
//! let m = gosync::Mutex::new(0);
//! let copy = m.clone(); // error[E0599]: no method `clone` (Mutex is not Clone)
//! ```
//! Where Go copies a struct that holds a mutex (passing it by value), Rust moves it, and a
//! struct holding one cannot be made `Copy`:
//! ```compile_fail,E0204
//! #[derive(Clone, Copy)] // error[E0204]: `Copy` cannot be implemented: a Mutex is not Copy
//! struct Counter {
//!     count: gosync::Mutex<u64>,
//! }
//! ```
//! ```compile_fail,E0599
//! let rw = gosync::RwMutex::new(0);
//! let copy = rw.clone(); // error[E0599]: RwMutex is not Clone
//! ```
//! Sharing is by reference or `Arc`:
//! ```
//! let m = std::sync::Arc::new(gosync::Mutex::new(0));
//! let m2 = std::sync::Arc::clone(&m);
//! std::thread::spawn(move || *m2.lock() += 1).join().unwrap();
//! assert_eq!(*m.lock(), 1);
//! ```
//!
//! # Unlocking is the guard's job, exactly once
//!
//! ```compile_fail,E0599
//! let m = gosync::Mutex::new(0);
//! m.unlock(); // error[E0599]: no method `unlock`: only a guard can unlock, by being dropped
//! ```
//! A guard cannot be duplicated, so a second `RUnlock` cannot be written (and dropping one
//! guard twice is a use of a moved value):
//! ```compile_fail,E0277
//! let rw = gosync::RwMutex::new(0);
//! let r = rw.read();
//! let again: gosync::RwMutexReadGuard<'_, i32> = Clone::clone(&r); // error[E0277]: not Clone
//! ```
//! A guard cannot be unlocked by another thread (Go allows it; it is how unpaired unlocks
//! happen):
//! ```compile_fail,E0277
//! let m = gosync::Mutex::new(0);
//! std::thread::scope(|s| {
//!     let g = m.lock();
//!     s.spawn(move || drop(g)); // error[E0277]: MutexGuard is not Send
//! });
//! ```
//! The correct form: the guard lives in one scope on one thread.
//! ```
//! let rw = gosync::RwMutex::new(0);
//! {
//!     let r = rw.read();
//!     assert_eq!(*r, 0);
//! }
//! *rw.write() += 1;
//! assert_eq!(*rw.read(), 1);
//! ```
//!
//! # Cond::wait needs the lock held
//!
//! ```compile_fail,E0277
//! let mut m = gosync::Mutex::new(0);
//! let cond = gosync::Cond::new();
//! cond.wait(&mut m); // error[E0277]: `Mutex` is not a `CondGuard` (a guard is)
//! ```
//! ```
//! let m = gosync::Mutex::new(true);
//! let cond = gosync::Cond::new();
//! let mut ready = m.lock();
//! cond.wait_while(&mut ready, |ready| !*ready); // already true: returns at once
//! assert!(*ready);
//! ```
//!
//! # A plain map cannot be written from two threads
//!
//! ```compile_fail,E0499
//! let mut m = std::collections::HashMap::new();
//! std::thread::scope(|s| {
//!     s.spawn(|| { m.insert(1, "a"); });
//!     s.spawn(|| { m.insert(2, "b"); }); // error[E0499]: `m` borrowed as mutable twice
//! });
//! ```
//! ```
//! let m = gosync::map::SyncMap::new();
//! std::thread::scope(|s| {
//!     s.spawn(|| m.store(1, "a"));
//!     s.spawn(|| m.store(2, "b"));
//! });
//! assert_eq!(m.len(), 2);
//! ```
