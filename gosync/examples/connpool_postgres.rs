//! The seed's `database/sql` pool, with PostgreSQL: a blocking pool (the `postgres` crate)
//! and an async pool (`tokio-postgres`), Go's knobs, and `DBStats`.
//!
//! ```sh
//! PG="host=127.0.0.1 port=5432 user=postgres password=secret" cargo run --example connpool_postgres
//! ```
#[path = "connpool/managers.rs"]
mod managers;

use std::time::Duration;

use gosync::connpool::{AsyncPool, Config, Pool};
use managers::{AsyncPgManager, PgManager};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(conn_str) = std::env::var("PG") else {
        eprintln!("set PG to a libpq connection string, e.g. PG=\"host=127.0.0.1 user=postgres password=...\"");
        return Ok(());
    };
    let config = Config {
        max_open: 8,                                  // db.SetMaxOpenConns(8)
        max_idle: 4,                                  // db.SetMaxIdleConns(4)
        max_lifetime: Some(Duration::from_secs(300)), // db.SetConnMaxLifetime(5 * time.Minute)
        max_idle_time: Some(Duration::from_secs(60)), // db.SetConnMaxIdleTime(time.Minute)
        ..Config::default()
    };

    // Blocking: 32 threads share 8 connections.
    let pool = Pool::new(
        PgManager {
            config: conn_str.parse()?,
        },
        config.clone(),
    );
    std::thread::scope(|s| {
        for i in 0..32 {
            let pool = &pool;
            s.spawn(move || {
                let mut conn = pool.get().expect("checkout");
                let row = conn.query_one("SELECT $1::int + 1", &[&i]).expect("query");
                assert_eq!(row.get::<_, i32>(0), i + 1);
            });
        }
    });
    println!("blocking: {:?}", pool.stats());

    // Async: the same with tokio-postgres.
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let pool = AsyncPool::new(
            AsyncPgManager {
                config: conn_str.parse()?,
            },
            config,
        );
        let mut tasks = Vec::new();
        for i in 0..32i32 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let conn = pool.get().await.expect("checkout");
                let row = conn
                    .query_one("SELECT $1::int * 2", &[&i])
                    .await
                    .expect("query");
                assert_eq!(row.get::<_, i32>(0), i * 2);
            }));
        }
        for t in tasks {
            t.await?;
        }
        println!("async:    {:?}", pool.stats());
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
