//! A Redis connection pool with a tiny RESP client (no Redis crate needed):
//! `mark_unusable` after an error, `stats()` afterwards.
//!
//! ```sh
//! REDIS=127.0.0.1:6379 cargo run --example connpool_redis
//! ```
#[path = "connpool/managers.rs"]
mod managers;

use gosync::connpool::{Config, Pool};
use managers::{RedisManager, Reply};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(addr) = std::env::var("REDIS") else {
        eprintln!("set REDIS to host:port, e.g. REDIS=127.0.0.1:6379");
        return Ok(());
    };
    let pool = Pool::new(
        RedisManager { addr },
        Config {
            max_open: 4,
            max_idle: 4,
            ..Config::default()
        },
    );
    std::thread::scope(|s| {
        for i in 0..16 {
            let pool = &pool;
            s.spawn(move || {
                let mut conn = pool.get().expect("checkout");
                let key = format!("gosync:example:{i}");
                if conn.cmd(&["SET", &key, "1"]).is_err() {
                    conn.mark_unusable(); // fatih/pool's MarkUnusable: close, don't reuse
                    return;
                }
                assert_eq!(conn.cmd(&["INCR", &key]).ok(), Some(Reply::Int(2)));
            });
        }
    });
    println!("{:?}", pool.stats());
    Ok(())
}
