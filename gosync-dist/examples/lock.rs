//! The README's distributed-lock example (tests/readme.rs checks that the README shows this
//! code). Run it against a local etcd: `cargo run -p gosync-dist --example lock`.
use gosync_dist::{Mutex, Session, SessionOptions};

fn main() -> gosync_dist::Result<()> {
    let session = Session::blocking_connect(SessionOptions::new(["127.0.0.1:2379"]))?;
    let mutex = Mutex::new(&session, "locks/nightly-report")?;
    let guard = mutex.blocking_lock()?; // one holder at a time, across processes and hosts
    println!("fencing token {}", guard.token()); // hand it to the storage you write to
    guard.blocking_unlock()?;
    Ok(())
}
