//! Connection managers for PostgreSQL (blocking `postgres`, async `tokio-postgres`) and
//! Redis (a tiny RESP client over `TcpStream`), shared by the `connpool_*` examples and
//! the real-server tests.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use gosync::connpool::{AsyncManager, Manager};

/// Blocking PostgreSQL: one `postgres::Client` per pooled connection.
pub struct PgManager {
    pub config: postgres::Config,
}

impl Manager for PgManager {
    type Connection = postgres::Client;
    type Error = postgres::Error;
    fn connect(&self) -> Result<postgres::Client, postgres::Error> {
        self.config.connect(postgres::NoTls)
    }
    fn is_valid(&self, conn: &mut postgres::Client) -> Result<(), postgres::Error> {
        // An empty query is the cheapest round trip PostgreSQL answers.
        conn.simple_query("").map(|_| ())
    }
    fn has_broken(&self, conn: &mut postgres::Client) -> bool {
        conn.is_closed()
    }
}

/// Async PostgreSQL. The pool itself needs no runtime; `tokio-postgres` does: its
/// connection task is spawned on the current tokio runtime.
pub struct AsyncPgManager {
    pub config: tokio_postgres::Config,
}

impl AsyncManager for AsyncPgManager {
    type Connection = tokio_postgres::Client;
    type Error = tokio_postgres::Error;
    async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }
    async fn is_valid(
        &self,
        conn: &mut tokio_postgres::Client,
    ) -> Result<(), tokio_postgres::Error> {
        conn.simple_query("").await.map(|_| ())
    }
    fn has_broken(&self, conn: &mut tokio_postgres::Client) -> bool {
        conn.is_closed()
    }
}

/// A minimal Redis connection: sends commands as RESP arrays and reads one reply.
pub struct RedisConn {
    reader: BufReader<TcpStream>,
    /// Set when an I/O or protocol error left the stream in an unknown state.
    pub broken: bool,
}

/// A Redis reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl RedisConn {
    /// Runs one command, e.g. `conn.cmd(&["SET", "k", "v"])`.
    pub fn cmd(&mut self, args: &[&str]) -> io::Result<Reply> {
        let r = self.cmd_inner(args);
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    fn cmd_inner(&mut self, args: &[&str]) -> io::Result<Reply> {
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.reader.get_mut().write_all(req.as_bytes())?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "redis closed the connection",
            ));
        }
        let line = line.trim_end();
        let (kind, rest) = line.split_at(1);
        let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad reply {line:?}"));
        match kind {
            "+" => Ok(Reply::Status(rest.to_string())),
            "-" => Err(io::Error::other(format!("redis: {rest}"))),
            ":" => rest.parse().map(Reply::Int).map_err(|_| bad()),
            "$" => {
                let n: i64 = rest.parse().map_err(|_| bad())?;
                if n < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let mut buf = vec![0; n as usize + 2];
                io::Read::read_exact(&mut self.reader, &mut buf)?;
                buf.truncate(n as usize);
                Ok(Reply::Bulk(Some(buf)))
            }
            "*" => {
                let n: i64 = rest.parse().map_err(|_| bad())?;
                (0..n.max(0))
                    .map(|_| self.read_reply())
                    .collect::<io::Result<_>>()
                    .map(Reply::Array)
            }
            _ => Err(bad()),
        }
    }
}

/// Redis over plain TCP; validates with `PING`.
pub struct RedisManager {
    pub addr: String,
}

impl Manager for RedisManager {
    type Connection = RedisConn;
    type Error = io::Error;
    fn connect(&self) -> io::Result<RedisConn> {
        let addr = self
            .addr
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{e}")))?;
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(RedisConn {
            reader: BufReader::new(s),
            broken: false,
        })
    }
    fn is_valid(&self, conn: &mut RedisConn) -> io::Result<()> {
        match conn.cmd(&["PING"])? {
            Reply::Status(s) if s == "PONG" => Ok(()),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("PING answered {other:?}"),
            )),
        }
    }
    fn has_broken(&self, conn: &mut RedisConn) -> bool {
        conn.broken
    }
}
