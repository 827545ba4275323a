//! Trap: copying an RWMutex (a mutex plus four counters of state; `go vet` warns).
//!
//! Run: `cargo run -p gosync --example pitfall_rwmutex_copy`
#[path = "common.rs"]
mod common;

use gosync::RwMutex;

#[derive(Default)]
struct Config {
    settings: RwMutex<Vec<String>>,
}

/// A borrow is the way to share it; Go's by-value parameter would copy the lock state.
fn print_settings(c: &Config) {
    println!("settings: {:?}", *c.settings.read());
}

fn main() {
    common::trap(
        "copying an RWMutex (by value parameter, assignment, range over structs)",
        "compiles; the copy keeps the reader count and writer state of the moment it was taken",
    );
    let c = Config::default();
    c.settings.write().push("timeout=5s".into());
    let reading = c.settings.read();
    print_settings(&c); // a second reader alongside `reading`: fine, nothing was copied
    drop(reading);
    assert_eq!(c.settings.readers(), 0);
    common::gosync(
        "RwMutex is neither Copy nor Clone; sharing is by reference (or Arc), so a copy of the \
         lock state cannot exist (compile_fail doctest in gosync::pitfalls)",
    );
}
