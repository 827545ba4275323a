//! Trap: calling Once.Do from inside the function it runs (directly or indirectly).
//!
//! Run: `cargo run -p gosync --example pitfall_once_recursion`
#[path = "common.rs"]
mod common;

use gosync::Once;

static INIT: Once = Once::new();

fn init_config() {
    println!("initialising config ...");
    // Some helper deep inside initialisation "makes sure" the config is initialised.
    ensure_config();
}

fn ensure_config() {
    INIT.call_once(init_config);
}

fn main() {
    common::trap(
        "Once.Do called from its own function",
        "deadlock: the inner Do waits for the outer one forever",
    );
    let msg = common::caught(ensure_config);
    println!("panic: {msg:?}");
    let msg = msg.expect("recursive call_once must panic");
    assert!(msg.contains("inside its own initializer"), "{msg}");
    common::gosync("a panic that names the problem, instead of a hang");
}
