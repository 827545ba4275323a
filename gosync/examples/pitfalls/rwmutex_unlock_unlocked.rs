//! Trap: unlocking an RWMutex that is not locked (extra Unlock / RUnlock).
//!
//! Run: `cargo run -p gosync --example pitfall_rwmutex_unlock_unlocked`
#[path = "common.rs"]
mod common;

use gosync::RwMutex;

fn main() {
    common::trap(
        "an extra Unlock or RUnlock",
        "fatal error: sync: Unlock of unlocked RWMutex / sync: RUnlock of unlocked RWMutex",
    );
    let m = RwMutex::new(String::from("v1"));
    {
        let r = m.read();
        println!("read: {}", *r);
    } // released here, once
    {
        let mut w = m.write();
        w.push_str("+patch");
    } // released here, once
    assert_eq!(m.readers(), 0);
    assert!(!m.is_write_locked());
    common::gosync(
        "each guard releases exactly once when dropped and there is no unlock method: an extra \
         unlock has nothing to call (compile_fail doctest in gosync::pitfalls)",
    );
}
