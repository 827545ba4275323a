//! The connection pools against real servers: PostgreSQL (blocking `postgres` and async
//! `tokio-postgres`), Redis and memcached, each started for the test in a temporary
//! directory by `support/servers.rs` and stopped afterwards. Limits are checked on the
//! server side (`pg_stat_activity`, Redis `INFO clients`, memcached `stats`).
//!
//! Without the servers installed these tests print a loud SKIPPED message and pass;
//! with `GOSYNC_REQUIRE_SERVERS=1` (CI) they fail instead.

#[path = "../examples/connpool/managers.rs"]
mod managers;
#[path = "support/servers.rs"]
mod servers;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gosync::connpool::{AsyncPool, Config, Error, KeyedPool, Pool, TcpDialer};
use managers::{AsyncPgManager, PgManager, RedisManager, Reply};
use servers::{Postgres, PG_PASSWORD};

/// Polls `f` until it returns true or `limit` passes; returns the last result.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

const COUNT_APP: &str = "SELECT count(*)::int FROM pg_stat_activity WHERE application_name = $1";

fn pg_manager(pg: &Postgres, password: &str, app: &str) -> PgManager {
    PgManager {
        config: pg.conn_str(password, app).parse().unwrap(),
    }
}

/// Backends PostgreSQL has for `app`, counted from a separate, unpooled connection.
fn pg_backends(monitor: &mut postgres::Client, app: &str) -> i32 {
    monitor.query_one(COUNT_APP, &[&app]).unwrap().get(0)
}

fn pg_monitor(pg: &Postgres) -> postgres::Client {
    pg.conn_str(PG_PASSWORD, "monitor")
        .parse::<postgres::Config>()
        .unwrap()
        .connect(postgres::NoTls)
        .unwrap()
}

#[test]
fn pg_max_open_never_exceeded_with_64_clients() {
    let Some(pg) = Postgres::start() else { return };
    const MAX: usize = 8;
    let app = "gosync-max-open";
    let pool = Pool::new(
        pg_manager(&pg, PG_PASSWORD, app),
        Config {
            max_open: MAX,
            max_idle: MAX,
            wait_timeout: Some(Duration::from_secs(60)),
            ..Config::default()
        },
    );
    let most = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..64 {
            let (pool, most) = (&pool, most.clone());
            s.spawn(move || {
                for _ in 0..3 {
                    let mut c = pool.get().expect("checkout");
                    c.simple_query("SELECT pg_sleep(0.005)").unwrap();
                    let n: i32 = c.query_one(COUNT_APP, &[&app]).unwrap().get(0);
                    most.fetch_max(n as usize, Ordering::SeqCst);
                }
            });
        }
    });
    let most = most.load(Ordering::SeqCst);
    assert!(
        most <= MAX,
        "PostgreSQL saw {most} connections, max_open is {MAX}"
    );
    assert!(
        most >= 2,
        "64 clients should have used several connections, saw {most}"
    );
    let s = pool.stats();
    assert!(s.open <= MAX && s.in_use == 0 && s.waiting == 0, "{s:?}");
    assert!(
        s.wait_count > 0,
        "64 clients on {MAX} connections must wait: {s:?}"
    );
    assert_eq!(pg_backends(&mut pg_monitor(&pg), app) as usize, s.open);
}

#[test]
fn pg_idle_time_and_lifetime_close_server_connections() {
    let Some(pg) = Postgres::start() else { return };
    let app = "gosync-expiry";
    let pool = Pool::new(
        pg_manager(&pg, PG_PASSWORD, app),
        Config {
            max_open: 4,
            max_idle: 4,
            max_idle_time: Some(Duration::from_secs(1)),
            ..Config::default()
        },
    );
    let mut monitor = pg_monitor(&pg);
    let conns: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
    // Counted while held: nothing can expire a checked-out connection.
    assert_eq!(pg_backends(&mut monitor, app), 4);
    drop(conns);
    assert_eq!(pool.stats().idle, 4);
    // No checkout happens: the cleaner alone must close them (Go's 1 s tick floor).
    assert!(
        eventually(Duration::from_secs(15), || pg_backends(&mut monitor, app)
            == 0),
        "idle connections still open on the server: {:?}",
        pool.stats()
    );
    let s = pool.stats();
    assert_eq!((s.open, s.idle, s.max_idle_time_closed), (0, 0, 4));

    pool.set_max_idle_time(None);
    pool.set_max_lifetime(Some(Duration::from_secs(1)));
    let conns: Vec<_> = (0..2).map(|_| pool.get().unwrap()).collect();
    assert_eq!(pg_backends(&mut monitor, app), 2);
    drop(conns); // closed now if already past their lifetime, else by the cleaner
    assert!(
        eventually(Duration::from_secs(15), || pg_backends(&mut monitor, app)
            == 0),
        "connections past max_lifetime still open on the server: {:?}",
        pool.stats()
    );
    assert_eq!(pool.stats().max_lifetime_closed, 2);
}

#[test]
fn pg_server_killed_mid_use_then_recovers() {
    let Some(pg) = Postgres::start() else { return };
    let app = "gosync-kill";
    let pool = Pool::new(
        pg_manager(&pg, PG_PASSWORD, app),
        Config {
            max_open: 4,
            max_idle: 4,
            wait_timeout: Some(Duration::from_secs(20)),
            ..Config::default()
        },
    );
    let mut conns: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
    let mut held = conns.split_off(2);
    drop(conns); // two idle, two in use
    assert_eq!(pool.stats().idle, 2);

    pg.kill();
    for c in &mut held {
        assert!(c.simple_query("SELECT 1").is_err(), "the server is gone");
    }
    drop(held); // has_broken (client closed): closed, not pooled
    let s = pool.stats();
    assert_eq!((s.broken_closed, s.idle), (2, 2), "{s:?}");

    // While it is down: the idle ones fail validation and are closed, then the dial fails
    // with the real error (connection refused), at once.
    let start = Instant::now();
    match pool.get() {
        Err(Error::Connect(e)) => assert!(e.to_string().contains("connect"), "{e}"),
        Err(e) => panic!("expected a connect error, got {e}"),
        Ok(_) => panic!("handed out a connection to a dead server"),
    }
    assert!(start.elapsed() < Duration::from_secs(15));
    let s = pool.stats();
    assert_eq!((s.open, s.idle, s.invalid_closed), (0, 0, 2), "{s:?}");

    pg.start_again();
    // Every connection handed out from now on works: no dead one comes back.
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..5 {
                    let mut c = pool.get().expect("the pool recovers");
                    let v: i32 = c.query_one("SELECT 41 + 1", &[]).unwrap().get(0);
                    assert_eq!(v, 42);
                }
            });
        }
    });
    let s = pool.stats();
    assert!(s.open <= 4 && s.in_use == 0, "{s:?}");
    assert_eq!(pg_backends(&mut pg_monitor(&pg), app) as usize, s.open);
}

#[test]
fn pg_wrong_password_is_an_auth_error_not_a_timeout() {
    let Some(pg) = Postgres::start() else { return };
    let pool = Pool::new(
        pg_manager(&pg, "not-the-password", "gosync-auth"),
        Config {
            max_open: 2,
            ..Config::default()
        },
    );
    let start = Instant::now();
    let err = pool.get().unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(15), "no 30 s wait");
    let pg_err = err
        .connect_error()
        .unwrap_or_else(|| panic!("not a connect error: {err}"));
    assert_eq!(
        pg_err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
        "{pg_err}"
    );
    assert!(
        err.to_string().contains("password authentication failed"),
        "{err}"
    );
    let s = pool.stats();
    assert_eq!((s.open, s.connect_errors), (0, 1));

    // The async pool says the same.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = AsyncPool::new(
            AsyncPgManager {
                config: pg
                    .conn_str("not-the-password", "gosync-auth")
                    .parse()
                    .unwrap(),
            },
            Config::default(),
        );
        let err = pool.get().await.unwrap_err();
        assert_eq!(
            err.connect_error().and_then(|e| e.code()),
            Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
            "{err}"
        );
    });
}

#[test]
fn pg_async_cancelled_checkouts_leak_nothing() {
    let Some(pg) = Postgres::start() else { return };
    const MAX: usize = 4;
    let app = "gosync-async-cancel";
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = AsyncPool::new(
            AsyncPgManager {
                config: pg.conn_str(PG_PASSWORD, app).parse().unwrap(),
            },
            Config {
                max_open: MAX,
                max_idle: MAX,
                wait_timeout: Some(Duration::from_secs(60)),
                ..Config::default()
            },
        );
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..64u64 {
            let (pool, most) = (pool.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                for j in 0..3u64 {
                    // Many checkouts are cancelled by a short runtime timeout while queued,
                    // dialling or validating.
                    let limit = Duration::from_micros(((i * 7 + j * 13) % 5) * 1500);
                    if let Ok(r) = tokio::time::timeout(limit, pool.get()).await {
                        let c = r.expect("checkout");
                        c.simple_query("SELECT pg_sleep(0.002)").await.unwrap();
                        let n: i32 = c.query_one(COUNT_APP, &[&app]).await.unwrap().get(0);
                        most.fetch_max(n as usize, Ordering::SeqCst);
                    }
                }
            }));
        }
        // Abort a few tasks outright, wherever they are.
        for t in tasks.iter().step_by(9) {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        let most = most.load(Ordering::SeqCst);
        assert!(
            most <= MAX,
            "PostgreSQL saw {most} connections, max_open is {MAX}"
        );
        let s = pool.stats();
        assert_eq!((s.in_use, s.waiting), (0, 0), "leaked checkouts: {s:?}");
        assert!(s.open <= MAX, "{s:?}");

        // The server agrees with the pool's count (backends of cancelled dials go away).
        let (monitor, conn) = pg
            .conn_str(PG_PASSWORD, "monitor")
            .parse::<tokio_postgres::Config>()
            .unwrap()
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut server = -1;
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            server = monitor.query_one(COUNT_APP, &[&app]).await.unwrap().get(0);
            if server as usize == pool.stats().open {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(server as usize, pool.stats().open, "{:?}", pool.stats());

        // And every slot is usable: MAX checkouts at once succeed.
        let mut all = Vec::new();
        for _ in 0..MAX {
            all.push(
                pool.get_timeout(Duration::from_secs(10))
                    .await
                    .expect("no leaked slot"),
            );
        }
        for c in &all {
            c.simple_query("SELECT 1").await.unwrap();
        }
    });
}

// ---------------------------------------------------------------- Redis

fn redis_clients(conn: &mut managers::RedisConn) -> usize {
    let Reply::Bulk(Some(info)) = conn.cmd(&["INFO", "clients"]).unwrap() else {
        panic!("INFO returned no bulk string")
    };
    let info = String::from_utf8(info).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .expect("connected_clients in INFO")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn redis_max_open_and_kill_restart() {
    let Some(mut redis) = servers::redis() else {
        return;
    };
    const MAX: usize = 6;
    let pool = Pool::new(
        RedisManager { addr: redis.addr() },
        Config {
            max_open: MAX,
            max_idle: MAX,
            wait_timeout: Some(Duration::from_secs(60)),
            ..Config::default()
        },
    );
    let most = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for t in 0..64 {
            let (pool, most) = (&pool, most.clone());
            s.spawn(move || {
                for i in 0..10 {
                    let mut c = pool.get().expect("checkout");
                    let key = format!("k{t}");
                    assert_eq!(c.cmd(&["INCR", &key]).unwrap(), Reply::Int(i + 1));
                    most.fetch_max(redis_clients(&mut c), Ordering::SeqCst);
                }
            });
        }
    });
    let most = most.load(Ordering::SeqCst);
    assert!(most <= MAX, "Redis saw {most} clients, max_open is {MAX}");
    assert!(pool.stats().wait_count > 0);

    // Kill it with one connection in use and the rest idle.
    let mut held = pool.get().unwrap();
    redis.kill();
    assert!(held.cmd(&["PING"]).is_err());
    drop(held);
    assert_eq!(pool.stats().broken_closed, 1);
    match pool.get() {
        Err(Error::Connect(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        Err(e) => panic!("expected connection refused, got {e}"),
        Ok(_) => panic!("handed out a connection to a dead server"),
    }
    let s = pool.stats();
    assert_eq!(
        (s.open, s.idle),
        (0, 0),
        "dead idle connections were all dropped: {s:?}"
    );

    redis.start_again();
    for _ in 0..20 {
        let mut c = pool.get().expect("the pool recovers");
        assert_eq!(c.cmd(&["PING"]).unwrap(), Reply::Status("PONG".into()));
    }
}

// ---------------------------------------------------------------- memcached

fn mc_command(conn: &mut TcpStream, cmd: &str, end: &str) -> Vec<String> {
    conn.write_all(cmd.as_bytes()).unwrap();
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "memcached closed the connection"
        );
        let line = line.trim_end().to_string();
        let done = line == end || line.starts_with("ERROR") || line.starts_with("SERVER_ERROR");
        lines.push(line);
        if done {
            return lines;
        }
    }
}

fn mc_curr_connections(monitor: &mut TcpStream) -> usize {
    mc_command(monitor, "stats\r\n", "END")
        .iter()
        .find_map(|l| l.strip_prefix("STAT curr_connections "))
        .expect("curr_connections")
        .parse()
        .unwrap()
}

#[test]
fn memcached_keyed_pool_per_server_idle_limit_and_expiry() {
    let Some(a) = servers::memcached() else {
        return;
    };
    let Some(b) = servers::memcached() else {
        return;
    };
    let servers = [a.addr(), b.addr()];
    let mut monitors: Vec<TcpStream> = servers
        .iter()
        .map(|s| TcpStream::connect(s).unwrap())
        .collect();
    let base: Vec<usize> = monitors.iter_mut().map(mc_curr_connections).collect();

    let pool = KeyedPool::new(
        TcpDialer::new(),
        Config {
            max_idle: 2, // gomemcache's DefaultMaxIdleConns
            max_idle_time: Some(Duration::from_secs(1)),
            ..Config::default()
        },
    );
    std::thread::scope(|s| {
        for t in 0..16 {
            let (pool, servers) = (&pool, &servers);
            s.spawn(move || {
                for i in 0..20 {
                    let server = &servers[(t + i) % 2];
                    let mut c = pool.get(server).unwrap();
                    let key = format!("k{t}");
                    let set = format!("set {key} 0 0 {}\r\n{i}\r\n", i.to_string().len());
                    assert_eq!(mc_command(&mut c, &set, "STORED"), ["STORED"]);
                    let got = mc_command(&mut c, &format!("get {key}\r\n"), "END");
                    assert_eq!(got[1], i.to_string());
                }
            });
        }
    });
    for (server, monitor) in servers.iter().zip(&mut monitors) {
        let s = pool.stats(server).unwrap();
        assert!(s.idle <= 2 && s.in_use == 0, "{s:?}");
        assert!(
            s.max_idle_closed > 0,
            "16 clients on one server must overflow 2 idle: {s:?}"
        );
        // At most two pooled connections stay open on each server (the per-key limit);
        // closes reach memcached asynchronously, so poll.
        let base = base[servers.iter().position(|x| x == server).unwrap()];
        let mut seen = usize::MAX;
        assert!(
            eventually(Duration::from_secs(10), || {
                seen = mc_curr_connections(monitor);
                seen <= base + 2
            }),
            "memcached {server} has {seen} connections, expected at most {}",
            base + 2
        );
    }
    // The idle ones expire (max_idle_time) and the server sees them go.
    for (i, monitor) in monitors.iter_mut().enumerate() {
        assert!(
            eventually(Duration::from_secs(15), || mc_curr_connections(monitor)
                == base[i]),
            "idle memcached connections were not closed"
        );
    }
    assert_eq!(pool.total_stats().open, 0);
    assert!(pool.total_stats().max_idle_time_closed > 0);
}
