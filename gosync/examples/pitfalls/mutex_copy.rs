//! Trap: copying a Mutex that is in use (`go vet` warns; the copy carries the lock state).
//!
//! Run: `cargo run -p gosync --example pitfall_mutex_copy`
#[path = "common.rs"]
mod common;

use gosync::Mutex;

/// The seed's `Counter` with an embedded mutex.
struct Counter {
    count: Mutex<u64>,
}

/// Go's `foo(c Counter)` copied the struct, lock included. In Rust the only ways to hand it
/// over are a borrow (this function) or a move (the caller can no longer use it).
fn foo(c: &Counter) {
    *c.count.lock() += 1;
    println!("in foo");
}

fn main() {
    common::trap(
        "copying a Mutex (passing a struct that embeds one by value)",
        "compiles; the copy starts locked if the original was locked, and `go vet` is the only guard",
    );
    let c = Counter {
        count: Mutex::new(0),
    };
    {
        let mut g = c.count.lock();
        *g += 1;
    }
    foo(&c);
    assert_eq!(*c.count.lock(), 2);
    common::gosync(
        "Mutex is neither Copy nor Clone: `let c2 = c.count.clone()` does not compile, and passing \
         by value moves it, so the original cannot be used afterwards (compile_fail doctests in \
         gosync::pitfalls)",
    );
}
