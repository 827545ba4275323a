//! Trap: Lock and Unlock not paired (a missing Unlock hangs the next Lock; an extra Unlock is
//! `fatal error: sync: unlock of unlocked mutex`).
//!
//! Run: `cargo run -p gosync --example pitfall_mutex_unpaired`
#[path = "common.rs"]
mod common;

use gosync::Mutex;

fn withdraw(balance: &Mutex<i64>, amount: i64) -> Result<i64, String> {
    let mut b = balance.lock();
    if *b < amount {
        // An early return: in Go a forgotten Unlock on this path hangs every later Lock.
        return Err(format!("insufficient funds: {} < {amount}", *b));
    }
    *b -= amount;
    Ok(*b)
}

fn main() {
    common::trap(
        "Lock/Unlock not paired",
        "a path that returns without Unlock hangs the next Lock; a second Unlock is a fatal error",
    );
    let balance = Mutex::new(100);
    println!("withdraw 500 -> {:?}", withdraw(&balance, 500));
    // The early return above released the lock: the guard unlocked when it went out of scope.
    assert!(!balance.is_locked());
    println!("withdraw 30  -> {:?}", withdraw(&balance, 30));
    // A panic while locked also unlocks (no poisoning, as in Go).
    let msg = common::caught(|| {
        let _g = balance.lock();
        panic!("task failed while holding the lock");
    });
    assert!(msg.is_some() && !balance.is_locked());
    common::gosync(
        "the guard unlocks exactly once, on every path (return, `?`, panic); there is no unlock \
         method, so an extra unlock does not compile (see gosync::pitfalls)",
    );
}
