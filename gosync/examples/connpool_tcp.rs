//! The seed's fatih/pool example: a pool of TCP connections to an echo server (started in
//! this process), where dropping the pooled connection returns it and `mark_unusable`
//! closes it for real; then gomemcache's per-address free lists with `KeyedPool`.
//!
//! ```sh
//! cargo run --example connpool_tcp
//! ```
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

use gosync::connpool::{Config, KeyedPool, Pool, TcpDialer, TcpManager};

fn echo_server() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                for line in BufReader::new(s).lines().map_while(Result::ok) {
                    if writeln!(w, "{line}").is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn ask(conn: &mut TcpStream, msg: &str) -> String {
    writeln!(conn, "{msg}").unwrap();
    let mut line = String::new();
    BufReader::new(&*conn).read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

fn main() {
    let addr = echo_server();
    // fatih/pool: NewChannelPool(initialCap, maxCap, factory) -- here with a real max_open.
    let pool = Pool::new(
        TcpManager::new(addr.clone()),
        Config {
            max_open: 4,
            max_idle: 4,
            ..Config::default()
        },
    );
    {
        let mut conn = pool.get().unwrap();
        println!("echo: {}", ask(&mut conn, "hello"));
    } // PoolConn.Close(): back to the pool
    {
        let mut conn = pool.get().unwrap();
        conn.mark_unusable(); // PoolConn.MarkUnusable(): the next Close really closes
    }
    println!("after mark_unusable: {:?}", pool.stats());

    // gomemcache: freeconn map[addr][]*conn with MaxIdleConns per address.
    let servers = [echo_server(), echo_server()];
    let keyed = KeyedPool::new(
        TcpDialer::new(),
        Config {
            max_idle: 2,
            ..Config::default()
        },
    );
    std::thread::scope(|s| {
        for i in 0..8 {
            let (keyed, server) = (&keyed, &servers[i % 2]);
            s.spawn(move || {
                let mut conn = keyed.get(server).unwrap();
                assert_eq!(ask(&mut conn, "get k"), "get k");
            });
        }
    });
    for server in &servers {
        println!("{server}: {:?}", keyed.stats(server).unwrap());
    }
}
