//! Shared by the pitfall examples: catching an expected panic and printing what happened.
#![allow(dead_code)]

use std::panic::{self, AssertUnwindSafe};

/// Runs `f`; returns the panic message if it panicked. The default panic hook is silenced
/// for the call so the expected panic does not print a backtrace hint.
pub fn caught(f: impl FnOnce()) -> Option<String> {
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(hook);
    let err = result.err()?;
    Some(
        err.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| err.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "<non-string panic>".into()),
    )
}

/// Prints the trap's header: what it is and what Go does.
pub fn trap(name: &str, go: &str) {
    println!("Trap: {name}\nGo:   {go}");
}

/// Prints what gosync does.
pub fn gosync(what: &str) {
    println!("gosync: {what}");
}

/// Tells how to see the detector's report when the example runs without it.
pub fn needs_detector(example: &str) {
    println!(
        "(built without the deadlock detector: run `cargo run -p gosync --features deadlock-detection --example {example}` to see its report)"
    );
}
