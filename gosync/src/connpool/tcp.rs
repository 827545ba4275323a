//! Ready managers for plain TCP: [`TcpManager`] (one address) and [`TcpDialer`] (keyed
//! by address, for [`KeyedPool`](super::KeyedPool)).

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::{KeyedManager, Manager};

/// Dial settings shared by [`TcpManager`] and [`TcpDialer`].
#[derive(Clone, Debug)]
struct Dial {
    connect_timeout: Option<Duration>,
    nodelay: bool,
}

impl Dial {
    fn new() -> Self {
        Dial {
            connect_timeout: Some(Duration::from_secs(5)),
            nodelay: true,
        }
    }

    fn connect<A: ToSocketAddrs>(&self, addr: &A) -> io::Result<TcpStream> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            match self.connect_one(a) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(ErrorKind::InvalidInput, "address resolved to nothing")
        }))
    }

    fn connect_one(&self, a: SocketAddr) -> io::Result<TcpStream> {
        let s = match self.connect_timeout {
            Some(t) => TcpStream::connect_timeout(&a, t)?,
            None => TcpStream::connect(a)?,
        };
        s.set_nodelay(self.nodelay)?;
        Ok(s)
    }
}

/// Whether an idle stream is still usable: no pending socket error, not closed by the
/// peer, and no unread bytes (which would mean the protocol is out of step). Uses a
/// non-blocking one-byte `peek`, the same check Go's MySQL driver does on reuse.
fn check_idle(s: &mut TcpStream) -> io::Result<()> {
    if let Some(e) = s.take_error()? {
        return Err(e);
    }
    s.set_nonblocking(true)?;
    let mut b = [0u8; 1];
    let r = s.peek(&mut b);
    s.set_nonblocking(false)?;
    match r {
        Ok(0) => Err(io::Error::new(
            ErrorKind::ConnectionAborted,
            "connection closed by the server while idle",
        )),
        Ok(_) => Err(io::Error::new(
            ErrorKind::InvalidData,
            "unread data on an idle connection",
        )),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

fn broken(s: &mut TcpStream) -> bool {
    !matches!(s.take_error(), Ok(None))
}

/// A [`Manager`] for `TcpStream`s to one address (fatih/pool's factory).
///
/// Connects with a timeout (default 5 s) and `TCP_NODELAY`; validates idle streams with a
/// non-blocking peek (closed by the peer, stray bytes or a socket error → closed and
/// replaced); treats a pending socket error on return as broken.
#[derive(Clone, Debug)]
pub struct TcpManager {
    addr: String,
    dial: Dial,
}

impl TcpManager {
    /// A manager for `addr` (`"host:port"`, resolved on every connect).
    pub fn new(addr: impl Into<String>) -> Self {
        TcpManager {
            addr: addr.into(),
            dial: Dial::new(),
        }
    }

    /// Sets the connect timeout (`None` = the OS default).
    pub fn connect_timeout(mut self, t: Option<Duration>) -> Self {
        self.dial.connect_timeout = t;
        self
    }

    /// Sets `TCP_NODELAY` on new streams (default `true`).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.dial.nodelay = on;
        self
    }

    /// The address.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

impl Manager for TcpManager {
    type Connection = TcpStream;
    type Error = io::Error;
    fn connect(&self) -> io::Result<TcpStream> {
        self.dial.connect(&self.addr.as_str())
    }
    fn is_valid(&self, conn: &mut TcpStream) -> io::Result<()> {
        check_idle(conn)
    }
    fn has_broken(&self, conn: &mut TcpStream) -> bool {
        broken(conn)
    }
}

/// A [`KeyedManager`] that dials the key as an address (gomemcache's per-server pools):
/// any `K: ToSocketAddrs` such as `String`, `SocketAddr` or `(String, u16)`.
#[derive(Clone, Debug)]
pub struct TcpDialer {
    dial: Dial,
}

impl Default for TcpDialer {
    fn default() -> Self {
        Self::new()
    }
}

impl TcpDialer {
    /// A dialer with a 5 s connect timeout and `TCP_NODELAY`.
    pub fn new() -> Self {
        TcpDialer { dial: Dial::new() }
    }

    /// Sets the connect timeout (`None` = the OS default).
    pub fn connect_timeout(mut self, t: Option<Duration>) -> Self {
        self.dial.connect_timeout = t;
        self
    }
}

impl<K: ToSocketAddrs + Send + Sync + 'static> KeyedManager<K> for TcpDialer {
    type Connection = TcpStream;
    type Error = io::Error;
    fn connect(&self, key: &K) -> io::Result<TcpStream> {
        self.dial.connect(key)
    }
    fn is_valid(&self, _key: &K, conn: &mut TcpStream) -> io::Result<()> {
        check_idle(conn)
    }
    fn has_broken(&self, _key: &K, conn: &mut TcpStream) -> bool {
        broken(conn)
    }
}
