//! The notes' two re-entrant locks. Go's `sync.Mutex` deadlocks if the holder locks it again;
//! the notes build a re-entrant lock from a Mutex plus an owner and a recursion count, with the
//! owner being (1) the goroutine id or (2) a token the caller passes. gosync has both:
//! `ReentrantMutex` (owner = thread) and `TokenMutex` (owner = token).
//!
//! Run: `cargo run --example reentrant`
use std::cell::RefCell;
use std::sync::Arc;
use std::thread;

use gosync::{ReentrantMutex, TokenMutex};

/// Locks on every level of the recursion, like the notes' `foo` / `bar` pair.
fn walk(m: &ReentrantMutex<RefCell<Vec<u32>>>, depth: u32) {
    let g = m.lock();
    g.borrow_mut().push(depth);
    if depth > 0 {
        walk(m, depth - 1);
    }
}

fn main() {
    // Approach 1: owner = the current thread.
    let m = Arc::new(ReentrantMutex::new(RefCell::new(Vec::new())));
    walk(&m, 3);
    println!("ReentrantMutex after recursion: {:?}", m.lock().borrow());
    let m2 = Arc::clone(&m);
    let other = thread::spawn(move || {
        let g = m2.lock(); // waits for the other thread's last guard, never re-enters it
        g.borrow_mut().push(99);
        m2.is_owned_by_current_thread()
    });
    println!(
        "other thread owned it while inside: {}",
        other.join().unwrap()
    );
    println!("final: {:?}", m.lock().borrow());

    // Approach 2: owner = a token (e.g. a request id), which can move between threads.
    let tm = Arc::new(TokenMutex::new(String::from("ledger")));
    let request: u64 = 42;
    let outer = tm.lock(request);
    let inner = tm.lock(request); // same token: re-enters
    println!(
        "TokenMutex owner: {:?}, other token's try_lock: {}",
        tm.owner(),
        tm.try_lock(7).is_some()
    );
    drop(inner);
    drop(outer);
    println!(
        "after the token's last guard: owner {:?}, token 7 gets it: {}",
        tm.owner(),
        tm.try_lock(7).is_some()
    );
}
